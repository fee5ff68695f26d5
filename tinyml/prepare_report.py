"""The `prepare` report: report.json, report.md and PNG plots beside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .plots import confusion_matrix, plot_confusion, plot_curves, plot_sweep


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
        f"| flash, engine's compiled constants (`--optimize {r['engine']['optimize']}`) | "
        f"{r['engine']['constants_bytes']:,} B | {r['board_flash_budget']:,} B |",
        f"| RAM, engine's planned arena | {r['engine']['arena_bytes']:,} B | {r['board_ram_budget']:,} B |",
        f"| flash, .tflite (TFLite-Micro backend) | {r['flash_bytes']:,} B | |",
        f"| arena, TFLite-Micro (measured on the host) | {r['arena_bytes']:,} B | |",
        f"| latency, estimated before training | {r['engine']['estimated_latency_ms']:.3f} ms | |",
        f"| params | {r['params']:,} | |",
        f"| MACs per inference | {r['macs']:,} | |",
        "",
        f"Ops: {', '.join(r['ops'])}. Wall time {r['wall_seconds']:.1f} s "
        f"({', '.join(f'{k} {v:.1f} s' for k, v in r['stage_seconds'].items())}).",
    ]
    if r.get("quantization"):
        lines += ["", *_quantization_section(r)]
    if r.get("pruning"):
        lines += ["", *_pruning_table(r["pruning"])]
    if r.get("search"):
        lines += ["", *_search_section(r)]
    if r.get("family"):
        lines += ["", *_family_table(r)]
    lines += [""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def _quantization_section(r: dict[str, Any]) -> list[str]:
    q = r["quantization"]
    lines = ["## Quantization: post-training vs quantization-aware training", "",
             f"Kept: **{q['kept'].upper()}** ({q['reason']}).", "",
             "| int8 model (host TFLite-Micro) | validation | test |", "| --- | ---: | ---: |",
             f"| float student | {_pct(q['float_val_accuracy'])} | {_pct(r['student_float_accuracy'])} |",
             f"| post-training quantization | {_pct(q['ptq_int8_val_accuracy'])} | {_pct(q['ptq_int8_accuracy'])} |",
             f"| quantization-aware training | {_pct(q['qat_int8_val_accuracy'])} | {_pct(q['qat_int8_accuracy'])} |"]
    agreement = q.get("qat_tflite_vs_fake_quant")
    if agreement:
        lines += ["", f"QAT ({q['qat_epochs']} epochs): the .tflite's activation scales are the learned ones; its int8 "
                  f"outputs equal the fake-quantized PyTorch net's on {_pct(agreement['output_bytes_equal'])} of the "
                  f"output bytes (max difference {agreement['max_abs_output_difference']}), arg-max agreement "
                  f"{_pct(agreement['argmax_agreement'])}."]
    return lines


def _pruning_table(p: dict[str, Any]) -> list[str]:
    kept = ", ".join(f"{layer['layer']} {layer['before']}->{layer['after']}" for layer in p["layers"])
    return [f"## Structured pruning ({p['source']} {p['ratio']:g})", "",
            "| | before | after |", "| --- | ---: | ---: |",
            f"| student | {p['student_before']} | {p['student']} |",
            f"| MACs | {p['macs_before']:,} | {p['macs_after']:,} |",
            f"| params | {p['params_before']:,} | {p['params_after']:,} |",
            f"| float test accuracy | {_pct(p['float_accuracy_before'])} | {_pct(p['float_accuracy_after'])} |",
            "", f"Pruned, before fine-tuning: {_pct(p['float_accuracy_pruned_not_tuned'])}; fine-tuned "
            f"{p['fine_tune_epochs']} epochs with the teacher; int8 after: {_pct(p['int8_accuracy_after'])}.",
            f"Output channels per layer: {kept}."]


def _search_section(r: dict[str, Any]) -> list[str]:
    """The search under the budgets: every trained variant x encoding, the Pareto front marked."""
    s = r["search"]
    lines = ["## Search under the budgets: width/depth, prune ratio, QAT, weight encoding", "",
             f"{s['candidates_sized']} candidates (members x prune ratios x encodings {', '.join(s['encodings'])}) "
             f"sized before training, {s['candidates_fitting']} within the budgets; trained: "
             f"{', '.join(v['student'] for v in s['trained_variants'])}. Chosen: **{s['chosen']}** ({s['reason']}).",
             "", "Accuracy: int8 on host TFLite-Micro, the encoded model (validation chooses, test reports). Flash: "
             "the engine's compiled constants with that encoding (what `--max-flash` counts). Instructions: "
             f"{s['instructions_source']}. Front: not dominated on (validation accuracy, flash, instructions).", "",
             "| candidate | quantization | val acc | test acc | flash | arena | MACs | instructions | front | budgets |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    swept = [a for a in s.get("architectures", []) if a.get("val_accuracy") is not None]
    if swept:
        lines[3:3] = ["", "Architectures compared before the variants (trained alone from scratch, a few epochs; "
                      "validation accuracy): " + ", ".join(
                          f"{a['student']}{'' if a['ratio'] is None else ' (' + a['member'] + ' pruned ' + format(a['ratio'], 'g') + ')'}"
                          f" {_pct(a['val_accuracy'])}" for a in swept) + "."]
    for e in s["evaluated"]:
        mark = " **(chosen)**" if e["chosen"] else ""
        estimated = "" if e["device_agreement"] is not None else " (est.)"
        lines.append(f"| {e['label']}{mark} | {e['quantization'].upper()} | {_pct(e['val_accuracy'])} | "
                     f"{_pct(e['test_accuracy'])} | {e['constants_bytes']:,} B | {e['arena_bytes']:,} B | "
                     f"{e['macs']:,} | {e['instructions']:,.0f}{estimated} | {'yes' if e['front'] else ''} | "
                     f"{'fits' if e['fits'] else 'over: ' + '; '.join(e['over'])} |")
    return lines


def plot_pareto_front(report: dict[str, Any], path: Path) -> tuple[Path, list]:
    """Validation accuracy of the evaluated candidates against flash and against instructions
    (front points starred, the chosen one red, the budget lines dashed)."""
    s = report["search"]
    budgets = report.get("budgets", {})
    flash_lines = {"--max-flash": budgets["max_flash_bytes"]} if budgets.get("max_flash_bytes") else {}
    rows = s["evaluated"]

    def name(e: dict[str, Any]) -> str:
        # Short: the pruned widths stand for the student ("c8.8.16.16"), "p4/l" for palette4/layer.
        student = e["student"].rsplit("-", 1)[-1] if e["ratio"] is not None else e["student"]
        encoding = e["encoding"].replace("palette", "p").replace("/layer", "/l").replace("/channel", "/c")
        return f"{'*' if e['front'] else ''}{student} {encoding}"

    chosen = next((name(e) for e in rows if e["chosen"]), None)
    unit = "instructions per inference" + ("" if all(e["device_agreement"] is not None for e in rows)
                                           else " (some estimated)")
    panels = [
        {"xlabel": "weight flash: compiled constants with the encoding, bytes", "ylabel": "validation accuracy (int8)",
         "points": [(e["constants_bytes"], e["val_accuracy"], name(e)) for e in rows], "budgets": flash_lines},
        {"xlabel": unit, "ylabel": "validation accuracy (int8)",
         "points": [(e["instructions"], e["val_accuracy"], name(e)) for e in rows], "budgets": {}},
    ]
    return plot_sweep(panels, path, f"trained candidates on {report['board']} (*: Pareto front; red: chosen)",
                      highlight=chosen)


def _family_table(r: dict[str, Any]) -> list[str]:
    e = r["engine"]
    lines = ["## Student family sweep", "",
             f"Selection: {r.get('selection', '')}. Flash and arena are computed before training from an "
             f"untrained instance compiled for {e['target']} (`--optimize {e['optimize']}`, every fast-path array "
             f"counted); the trained model's figures "
             f"{'equal them' if e.get('figures_match') else ('are within them' if e.get('figures_within') else 'EXCEED them')}. Latency is estimated: MACs x "
             f"{e['instructions_per_mac']} instructions per MAC ({e.get('instructions_per_mac_source', '')}) at one "
             "instruction per cycle on the board's clock. "
             "Accuracy: each fitting student trained alone for a few epochs (validation: what the choice uses; "
             "test: reported only).", "",
             "| student | params | MACs | est. latency | flash (constants) | arena | board flash / RAM needed | "
             "val acc | test acc | epochs | budgets |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for m in r["family"]:
        mark = " **(chosen)**" if m["chosen"] else ""
        verdict = "fits" if m["fits"] else "over: " + "; ".join(m["over"])
        lines.append(f"| {m['student']}{mark} | {m['params']:,} | {m['macs']:,} | {m['latency_ms']:.3f} ms | "
                     f"{m['constants_bytes']:,} B | {m['arena_bytes']:,} B | {m['flash_needed']:,} / "
                     f"{m['ram_needed']:,} B | {_pct(m.get('val_accuracy'))} | {_pct(m.get('float_accuracy'))} | "
                     f"{m.get('epochs') or '-'} | {verdict} |")
    return lines


def plot_family_sweep(report: dict[str, Any], path: Path) -> tuple[Path, list]:
    """Validation accuracy of the swept students against model flash and against MACs, with the budget lines."""
    family = report["family"]
    budgets = report.get("budgets", {})
    trained = [m for m in family if m.get("val_accuracy") is not None]
    untrained = [m for m in family if m.get("val_accuracy") is None]
    flash_lines = {f"{report['board']} flash for the model": report["board_flash_budget"]}
    if budgets.get("max_flash_bytes"):
        flash_lines["--max-flash"] = budgets["max_flash_bytes"]
    mac_lines: dict[str, float] = {}
    if budgets.get("max_macs"):
        mac_lines["--max-macs"] = budgets["max_macs"]
    if budgets.get("max_latency_ms") and report.get("board_clock_hz"):
        mac_lines[f"--max-latency-ms {budgets['max_latency_ms']:g}"] = (
            budgets["max_latency_ms"] / 1e3 * report["board_clock_hz"] / report["engine"]["instructions_per_mac"])
    ylabel = "validation accuracy (sweep)"
    panels = [
        {"xlabel": f"model flash: compiled constants, bytes ({report['engine']['optimize']})", "ylabel": ylabel,
         "points": [(m["constants_bytes"], m["val_accuracy"], m["student"]) for m in trained],
         "off_budget": [(m["constants_bytes"], m["student"]) for m in untrained], "budgets": flash_lines},
        {"xlabel": "MACs per inference", "ylabel": ylabel,
         "points": [(m["macs"], m["val_accuracy"], m["student"]) for m in trained],
         "off_budget": [(m["macs"], m["student"]) for m in untrained], "budgets": mac_lines},
    ]
    chosen = next((m["student"] for m in family if m["chosen"]), None)
    return plot_sweep(panels, path, f"student family on {report['board']} (red: chosen; x: over a budget, "
                      "not trained)", highlight=chosen)


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
    if any(m.get("val_accuracy") is not None for m in report.get("family", [])):
        plot_family_sweep(report, directory / "accuracy_vs_size.png")
        plots.append("accuracy_vs_size.png")
    if report.get("search", {}).get("evaluated"):
        plot_pareto_front(report, directory / "pareto_front.png")
        plots.append("pareto_front.png")
    report = {**report, "confusion_matrix": matrix.tolist(), "plots": plots}
    (directory / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (directory / "report.md").write_text(_markdown(report, plots))
    return ["report.json", "report.md", *plots]
