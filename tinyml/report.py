"""The `prepare` report: report.json, report.md and PNG plots beside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .plots import confusion_matrix, plot_confusion, plot_curves, plot_scatter


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _markdown(report: dict[str, Any], plots: list[str]) -> str:
    r = report
    lines = [
        f"# tinyml prepare: {r['dataset']} on {r['board']}",
        "",
        f"Student `{r['student']}` distilled with `{r['kd']}` from a {r['teacher']} teacher; "
        f"{r['samples']['test']} test samples (never used for training, calibration or model choice).",
        "",
        "| model | test accuracy |",
        "| --- | --- |",
        f"| teacher | {_pct(r['teacher_accuracy'])} |",
        f"| student alone (same recipe, no KD) | {_pct(r['student_alone_accuracy'])} |",
        f"| student distilled, float | {_pct(r['student_float_accuracy'])} |",
        f"| student distilled, int8 on TFLite-Micro | {_pct(r['student_int8_accuracy'])} |",
        "",
        f"int8 / float arg-max agreement: {_pct(r['int8_float_agreement'])}",
        "",
        "| footprint | value | board budget |",
        "| --- | --- | --- |",
        f"| flash (.tflite) | {r['flash_bytes']:,} B | {r['board_flash_budget']:,} B |",
        f"| arena (TFLite-Micro, measured) | {r['arena_bytes']:,} B | {r['board_ram_budget']:,} B |",
        f"| params | {r['params']:,} | |",
        f"| MACs per inference | {r['macs']:,} | |",
        "",
        f"Ops: {', '.join(r['ops'])}. Wall time {r['wall_seconds']:.1f} s "
        f"({', '.join(f'{k} {v:.1f} s' for k, v in r['stage_seconds'].items())}).",
    ]
    if r.get("family"):
        lines += ["", "## Student family (float accuracy, trained alone)", "",
                  "| student | params | MACs | weight bytes | arena estimate | accuracy | epochs | fits |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for m in r["family"]:
            mark = " (chosen)" if m["chosen"] else ""
            lines.append(f"| {m['student']}{mark} | {m['params']:,} | {m['macs']:,} | {m['weight_bytes']:,} | "
                         f"{m['arena_bytes']:,} | {_pct(m['float_accuracy'])} | {m['epochs']} | "
                         f"{'yes' if m['fits_board'] else 'no'} |")
    lines += [""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def write_prepare_report(
    directory: Path,
    report: dict[str, Any],
    history: dict[str, list[dict[str, Any]]],
    predictions: np.ndarray,
    y_true: np.ndarray,
    labels: list[str],
) -> list[str]:
    plots = []
    matrix = confusion_matrix(y_true, predictions, len(labels))
    plot_confusion(matrix, labels, directory / "confusion_matrix.png",
                   f"int8 student on TFLite-Micro: {100 * report['student_int8_accuracy']:.2f}%")
    plots.append("confusion_matrix.png")
    curves = {f"{name} val acc": [h["val_acc"] for h in runs] for name, runs in history.items() if runs}
    if curves:
        plot_curves(curves, directory / "training_curves.png", "validation accuracy per epoch", "epoch", "accuracy")
        plots.append("training_curves.png")
    if report.get("family"):
        points = [(m["weight_bytes"], m["float_accuracy"], m["student"]) for m in report["family"]]
        chosen = next((m["student"] for m in report["family"] if m["chosen"]), None)
        plot_scatter(points, directory / "accuracy_vs_size.png", "student family: accuracy against int8 weight bytes",
                     "int8 weight bytes", "float test accuracy", highlight=chosen, xlog=True)
        plots.append("accuracy_vs_size.png")
    report = {**report, "confusion_matrix": matrix.tolist(), "plots": plots}
    (directory / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (directory / "report.md").write_text(_markdown(report, plots))
    return ["report.json", "report.md", *plots]
