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
    """Histogram with plain tick labels (no offset or scientific notation: a latency
    of 541,234 reads as such, not as "+5.4e5") and each mark labelled with its value."""
    from matplotlib.ticker import FuncFormatter

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.hist(values, bins=min(50, max(5, len(np.unique(values)))), color="#4477aa")
    top = ax.get_ylim()[1]
    for k, (name, value) in enumerate((marks or {}).items()):
        ax.axvline(value, color="#cc3311", linestyle="--", linewidth=1)
        ax.text(value, top * (0.95 - 0.12 * k), f" {name} {value:,.0f}", color="#cc3311", fontsize=8, va="top",
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 1})
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}"))
    ax.tick_params(axis="x", labelsize=8)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("samples")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fraction_axis_start(values: Sequence[float]) -> float:
    """Where a chart of fractions near 1.0 starts its axis so their differences show:
    below the smallest by half the spread (at least 2 points), never below 0."""
    low, high = min(values), max(values)
    return max(0.0, low - max(0.02, 0.5 * (high - low)))


def plot_fractions(names: Sequence[str], values: Sequence[float], path: Path, title: str) -> Path:
    """Horizontal bars of fractions, each labelled with its value; the axis starts at
    fraction_axis_start (stated on the axis), so 98.6% and 98.9% do not look equal."""
    plt = _pyplot()
    start = fraction_axis_start(values)
    fig, ax = plt.subplots(figsize=(6.5, 0.55 * len(names) + 1.4))
    positions = range(len(names))
    ax.barh(positions, [v - start for v in values], left=start, color="#4477aa", height=0.6)
    for y, value in zip(positions, values):
        ax.text(value, y, f" {100 * value:.2f}%", va="center", ha="left", fontsize=8)
    ax.set_yticks(list(positions), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(start, 1.0 + (1.0 - start) * 0.18)  # room for the value labels; no ticks past 1
    ax.set_xticks([t for t in ax.get_xticks() if start <= t <= 1.0 + 1e-9])
    ax.set_xlabel(f"fraction (axis starts at {start:.2f}, not 0)" if start > 0 else "fraction")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
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


# Where a point's label may go, in points from the point, tried in this order.
_LABEL_OFFSETS = ((5, 5), (5, -11), (-5, 5), (-5, -11), (5, 15), (5, -21), (-5, 15), (-5, -21), (5, 25), (5, -31),
                  (-5, 25), (-5, -31), (5, 35), (5, -41))


def place_labels(ax, points: Sequence[tuple[float, float, str]], fontsize: float = 7, obstacles: Sequence = ()) -> list:
    """Annotate each (x, y, name) at the first offset whose text box overlaps no label placed
    before it, no marker and none of `obstacles` (other texts); returns the labels' boxes
    (display pixels). Call once the layout is final."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    markers = []
    for x, y, _ in points:
        px, py = ax.transData.transform((x, y))
        markers.append(Bbox.from_extents(px - 4, py - 4, px + 4, py + 4))
    blocked = [*markers, *(text.get_window_extent(renderer) for text in obstacles)]
    boxes: list = []
    for x, y, name in sorted(points, key=lambda p: (p[0], p[1])):
        # First choice: free and inside the axes; else free anywhere; else the first offset.
        choice = None
        for must_be_inside in (True, False):
            for dx, dy in _LABEL_OFFSETS:
                label = _label(ax, name, (x, y), (dx, dy), fontsize)
                box = _text_box(label, renderer)
                label.remove()
                inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
                if (inside or not must_be_inside) and not any(box.overlaps(other) for other in (*boxes, *blocked)):
                    choice = (dx, dy)
                    break
            if choice:
                break
        label = _label(ax, name, (x, y), choice or _LABEL_OFFSETS[0], fontsize)
        boxes.append(_text_box(label, renderer))
    return boxes


def _text_box(label, renderer):
    """The label's text box (not its leader line), with a gap of 2 pixels around it."""
    from matplotlib.text import Text

    label.update_positions(renderer)   # an annotation places its text at draw time
    return Text.get_window_extent(label, renderer).padded(2)


def _label(ax, name: str, xy: tuple[float, float], offset: tuple[int, int], fontsize: float):
    dx, dy = offset
    return ax.annotate(name, xy, textcoords="offset points", xytext=(dx, dy), fontsize=fontsize,
                       ha="left" if dx > 0 else "right", va="bottom",
                       arrowprops={"arrowstyle": "-", "color": "#999999", "linewidth": 0.5, "shrinkA": 0,
                                   "shrinkB": 3})


def _thousands(minor: bool = False):
    """Tick labels as 12,345 (no offset or power-of-ten notation); minor ticks unlabelled."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _pos: "" if minor else f"{value:,.0f}")


def plot_sweep(panels: Sequence[dict], path: Path, title: str, highlight: str | None = None) -> tuple[Path, list]:
    """Side-by-side scatters of the same students, each panel a dict with xlabel, ylabel,
    points [(x, y, name)], off_budget [(x, name)] (students over a budget, not trained:
    drawn as crosses on the bottom edge) and budgets {label: x} (dashed vertical lines).
    Labels never overlap (place_labels). Returns the path and every panel's label boxes."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    layouts = []
    budget_texts: list[list] = []
    for ax, panel in zip(axes[0], panels):
        budget_texts.append([])
        points = list(panel["points"])
        ys = [y for _, y, _ in points] or [0.0, 1.0]
        low, high = min(ys), max(ys)
        pad = max(0.01, (high - low) * 0.25)
        floor = low - pad
        for x, y, name in points:
            chosen = name == highlight
            ax.scatter([x], [y], color="#cc3311" if chosen else "#4477aa", s=45 if chosen else 22, zorder=3)
        for x, _name in panel.get("off_budget", []):
            ax.scatter([x], [floor], marker="x", color="#999999", s=22, zorder=3)
        for label, value in panel.get("budgets", {}).items():
            # Written along its line, inside the axes, so no budget label runs off the figure.
            ax.axvline(value, color="#ee7733", linestyle="--", linewidth=1)
            budget_texts[-1].append(ax.text(value, 0.98, f"{label} ", transform=ax.get_xaxis_transform(),
                                            color="#ee7733", fontsize=7, va="top", ha="right", rotation=90))
        xs = [x for x, _, _ in points] + [x for x, _ in panel.get("off_budget", [])] + list(panel.get("budgets", {}).values())
        if xs and max(xs) > 8 * min(xs):   # log only when it spans about a decade: else its ticks crowd
            ax.set_xscale("log")
        ax.xaxis.set_major_formatter(_thousands())
        ax.xaxis.set_minor_formatter(_thousands(minor=True))
        ax.tick_params(axis="x", labelsize=8)
        ax.set_ylim(floor - pad * 0.6, high + pad)
        ax.margins(x=0.12)
        ax.set_xlabel(panel["xlabel"])
        ax.set_ylabel(panel["ylabel"])
        ax.grid(alpha=0.3)
        layouts.append(points + [(x, floor, name) for x, name in panel.get("off_budget", [])])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.canvas.draw()   # settle the limits (margins, log scale) before measuring label boxes
    boxes = [place_labels(ax, layout, obstacles=texts) for ax, layout, texts in zip(axes[0], layouts, budget_texts)]
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path, boxes
