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


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


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
        f"| throughput | {report['throughput_sps']:.1f} samples/s |",
        f"| wire efficiency (payload / bytes on the wire) | {report['wire_efficiency']:.3f} |",
        f"| line rate used | {_pct(report['line_rate_fraction'])}"
        + ("" if report["line_rate_fraction"] is not None else " (no real baud on this port)") + " |",
        f"| retries | {link['retries']} |",
        "",
    ]
    if unit == "instructions":
        lines += ["Latency is in emulated instructions (QEMU -icount shift=0, derived from SysTick at "
                  f"{report['clock_hz'] / 1e6:g} MHz), not cycles of real silicon.", ""]
    if report.get("resumed_samples"):
        lines += [f"{report['resumed_samples']} samples came from the resumed log; throughput and wire "
                  "figures cover this session only.", ""]
    lines += [f"![{name}]({name})" for name in plot_names]
    return "\n".join(lines) + "\n"


def write_bench_report(out_dir: Path, report: dict[str, Any], labels_true: np.ndarray,
                       labels_device: np.ndarray, latencies: np.ndarray, label_names: list[str]) -> list[Path]:
    """Writes report.json, report.md and the plots; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    unit = report["latency_unit"]
    lat = report[f"latency_{unit}"]
    names = [
        _atomic_plot(out_dir / "bench_latency.png", lambda p: plots.plot_histogram(
            latencies, p, f"Latency per inference on {report['board']}", unit,
            {"p50": lat["p50"], "p99": lat["p99"]})),
        _atomic_plot(out_dir / "bench_confusion.png", lambda p: plots.plot_confusion(
            plots.confusion_matrix(labels_true, labels_device, len(label_names)), label_names, p,
            f"On-device confusion ({report['samples']} samples)")),
        _atomic_plot(out_dir / "bench_accuracy.png", lambda p: plots.plot_bars(
            ["on-device", "host int8", "agreement"],
            [report["on_device_accuracy"], report["host_int8_accuracy"], report["agreement"]], p,
            "On-device against host TFLite-Micro", "fraction")),
    ]
    report = dict(report, plots=names)
    _atomic_text(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    _atomic_text(out_dir / "report.md", _markdown(report, names))
    return [out_dir / "report.json", out_dir / "report.md", *(out_dir / n for n in names)]
