"""PNG plots shared by the reports (prepare, compile, bench).

matplotlib is imported lazily with the non-interactive Agg backend so that
plotting works on machines without a display and costs nothing when unused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix


MAX_LABELLED_CLASSES = 40  # beyond this, ticks and counts are unreadable
MAX_FIGURE_INCHES = 12.0   # the figure stops growing here, however many classes (memory stays bounded)


def plot_confusion(matrix: np.ndarray, labels: Sequence[str], path: Path, title: str) -> Path:
    plt = _pyplot()
    n = len(labels)
    side = min(MAX_FIGURE_INCHES, max(4.0, 0.45 * n + 2))
    fig, ax = plt.subplots(figsize=(side, min(MAX_FIGURE_INCHES, max(3.5, 0.45 * n + 1.5))))
    ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    if n <= MAX_LABELLED_CLASSES:
        ax.set_xticks(range(n), labels, rotation=90 if n > 12 else 0)
        ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 20:
        high = matrix.max() / 2 if matrix.size else 0
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                        color="white" if count > high else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_histogram(values: np.ndarray, path: Path, title: str, xlabel: str, marks: dict[str, float] | None = None) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(values, bins=min(50, max(5, len(np.unique(values)))), color="#4477aa")
    for name, value in (marks or {}).items():
        ax.axvline(value, color="#cc3311", linestyle="--", linewidth=1)
        ax.text(value, ax.get_ylim()[1] * 0.95, f" {name}", color="#cc3311", fontsize=8, va="top")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("samples")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(series: dict[str, Sequence[float]], path: Path, title: str, xlabel: str, ylabel: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in series.items():
        ax.plot(range(1, len(values) + 1), values, label=name, marker="." if len(values) < 40 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_scatter(points: Sequence[tuple[float, float, str]], path: Path, title: str, xlabel: str, ylabel: str,
                 highlight: str | None = None, xlog: bool = False) -> Path:
    """Labelled points (x, y, name); the one named `highlight` is drawn in red."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for x, y, name in points:
        chosen = name == highlight
        ax.scatter([x], [y], color="#cc3311" if chosen else "#4477aa", s=40 if chosen else 20, zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if xlog:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_bars(names: Sequence[str], values: Sequence[float], path: Path, title: str, ylabel: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * len(names) + 2), 3.5))
    ax.bar(range(len(names)), values, color="#4477aa")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
