"""The bench report: report.json, report.md and PNG plots, each written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tinyml import plots


def _atomic_text(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    os.replace(temp, path)


def _atomic_plot(path: Path, draw: Callable[[Path], object]) -> str:
    temp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    draw(temp)
    os.replace(temp, path)
    return path.name


def per_class_scores(labels: np.ndarray, predicted: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    """Precision and recall of the on-device predictions per class (None where undefined)."""
    rows = []
    for index, name in enumerate(names):
        true_positive = int(((predicted == index) & (labels == index)).sum())
        predicted_count, support = int((predicted == index).sum()), int((labels == index).sum())
        rows.append({"class": name, "support": support, "predicted": predicted_count,
                     "precision": true_positive / predicted_count if predicted_count else None,
                     "recall": true_positive / support if support else None})
    return rows


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _bytes(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,} B"


def _time(us: float) -> str:
    return f"{us / 1000:,.3f} ms" if us >= 1000 else f"{us:,.1f} µs"


def _markdown(report: dict[str, Any], plot_names: list[str]) -> str:
    unit = report["latency_unit"]
    lat = report[f"latency_{unit}"]
    link = report["link"]
    lines = [
        f"# On-device benchmark: {report['board']} ({report['backend']})",
        "",
        f"Model `{report['model_sha256']}` on firmware {report['firmware_version']} "
        f"(protocol v{report['protocol_version']}), port `{report['port']}` at {report['baud']} baud.",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| samples | {report['samples']} |",
        f"| on-device accuracy | {_pct(report['on_device_accuracy'])} |",
        f"| host int8 accuracy (TFLite-Micro) | {_pct(report['host_int8_accuracy'])} |",
        f"| agreement (output bytes equal host's) | {_pct(report['agreement'])} ({report['disagreements']} differ) |",
        f"| latency p50 / p90 / p99 ({unit}) | {lat['p50']:,.0f} / {lat['p90']:,.0f} / {lat['p99']:,.0f} |",
        f"| latency mean, min..max ({unit}) | {lat['mean']:,.0f}, {lat['min']:,}..{lat['max']:,} |",
    ]
    us = report.get("latency_us")
    if us:
        lines += [f"| latency p50 / p90 / p99 (time, see below) | {_time(us['p50'])} / {_time(us['p90'])} / "
                  f"{_time(us['p99'])} |"]
        if report.get("board_inferences_per_s"):
            lines += [f"| inferences per second on the board (1 / mean latency) | "
                      f"{report['board_inferences_per_s']:,.1f} |"]
    memory = report.get("memory") or {}
    if memory:
        lines += [
            f"| firmware image: flash (text + data) / RAM (data + bss) | {_bytes(memory.get('firmware_flash_bytes'))}"
            f" / {_bytes(memory.get('firmware_ram_bytes'))} |",
            f"| model flash ({memory.get('model_flash_source', '')}) | {_bytes(memory.get('model_flash_bytes'))} |",
            f"| model RAM (arena, as the board reports it) | {_bytes(memory.get('arena_bytes'))} |",
        ]
    lines += [
        f"| host-side rate (link + {'emulator on the host CPU' if unit == 'instructions' else 'board'}; "
        f"not the board's speed) | {report.get('host_samples_per_s', report.get('throughput_sps', 0.0)):.1f} "
        "samples/s |",
        f"| wire efficiency (payload / bytes on the wire) | {report['wire_efficiency']:.3f} |",
        f"| line rate used | {_pct(report['line_rate_fraction'])}"
        + ("" if report["line_rate_fraction"] is not None else " (no real baud on this port)") + " |",
        f"| retries | {link['retries']} |",
        "",
    ]
    if report.get("latency_time_basis"):
        lines += [f"Latency as time: {report['latency_time_basis']}.", ""]
    if report.get("resumed_samples"):
        lines += [f"{report['resumed_samples']} samples came from the resumed log; the host-side rate and wire "
                  "figures cover this session only.", ""]
    per_class = report.get("per_class") or []
    if per_class:
        lines += ["## Per class (on-device predictions)", "", "| class | samples | precision | recall |",
                  "| --- | ---: | ---: | ---: |"]
        lines += [f"| {row['class']} | {row['support']} | {_pct(row['precision'])} | {_pct(row['recall'])} |"
                  for row in per_class]
        lines += [""]
    profile = report.get("profile")
    if profile:
        lines += [f"Per-layer profile: [{profile['md']}]({profile['md']}) (![per-layer time]({profile['png']}))", ""]
    lines += [f"![{name}]({name})" for name in plot_names]
    return "\n".join(lines) + "\n"


def link_profile(out_dir: Path, files: list[Path]) -> None:
    """Names the per-layer profile (profile.md/.json/.png) in report.json and report.md."""
    out_dir = Path(out_dir)
    report = json.loads((out_dir / "report.json").read_text())
    by_suffix = {Path(f).suffix: Path(f).name for f in files}
    report["profile"] = {"md": by_suffix.get(".md"), "json": by_suffix.get(".json"), "png": by_suffix.get(".png")}
    _atomic_text(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    _atomic_text(out_dir / "report.md", _markdown(report, report.get("plots", [])))


def write_bench_report(out_dir: Path, report: dict[str, Any], labels_true: np.ndarray,
                       labels_device: np.ndarray, latencies: np.ndarray, label_names: list[str]) -> list[Path]:
    """Writes report.json, report.md and the plots; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    unit = report["latency_unit"]
    lat = report[f"latency_{unit}"]
    names = [
        _atomic_plot(out_dir / "bench_latency.png", lambda p: plots.plot_histogram(
            latencies, p, f"Latency per inference on {report['board']} ({report['samples']} samples)",
            f"latency ({unit})", {"p50": lat["p50"], "p99": lat["p99"]})),
        _atomic_plot(out_dir / "bench_confusion.png", lambda p: plots.plot_confusion(
            plots.confusion_matrix(labels_true, labels_device, len(label_names)), label_names, p,
            f"On-device confusion ({report['samples']} samples)")),
        _atomic_plot(out_dir / "bench_accuracy.png", lambda p: plots.plot_fractions(
            ["on-device accuracy", "host int8 accuracy (TFLite-Micro)", "byte agreement with host"],
            [report["on_device_accuracy"], report["host_int8_accuracy"], report["agreement"]], p,
            f"On-device against host TFLite-Micro ({report['samples']} samples)")),
    ]
    report = dict(report, plots=names)
    if "per_class" not in report:
        report["per_class"] = per_class_scores(labels_true, labels_device, label_names)
    _atomic_text(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    _atomic_text(out_dir / "report.md", _markdown(report, names))
    return [out_dir / "report.json", out_dir / "report.md", *(out_dir / n for n in names)]
