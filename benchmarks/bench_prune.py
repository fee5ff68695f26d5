"""Structured pruning on digits (issue 18 item 2): accuracy against MACs, measured end to end.

    python benchmarks/bench_prune.py                         # ratios 0 0.25 0.5 0.7 0.85, the <=30K-MAC points
    python benchmarks/bench_prune.py --ratios 0 0.5 --samples 60

Every point is a fresh `tinyml prepare --dataset digits --board stm32f405 --no-sweep` (the
largest student, w4.00-d4, trained and distilled as usual) with `--prune RATIO`, so the
"before" model is the same for every ratio (training is seeded and deterministic). For each:
int8 accuracy on host TFLite-Micro over the whole test split (from report.json), MACs,
params, int8 weight bytes, then the engine compiled for the Cortex-M4, the firmware built,
booted on the emulated STM32F405 (QEMU, -icount shift=0) and benched over the test split:
on-device accuracy and instructions per inference. The <=30,000-MAC points: w4.00-d4 pruned
at the smallest ratio that gets there, `--max-macs 30K` (the family member that meets it
unpruned) and `--max-macs 20K` (met by pruning, tinyml.prune.plan_for_macs).

Targets (printed, never asserted): >= 2x fewer MACs for <= 0.5 point int8 drop, with the
instructions falling accordingly; >= 98.6% with <= 30,000 MACs.
Stores benchmarks/results/prune.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_facts import machine_facts  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BOARD = "stm32f405"
BASE_STUDENT = "w4.00-d4"


def run_prepare(out: Path, extra: list[str]) -> tuple[dict, float]:
    started = time.perf_counter()
    command = [sys.executable, "-m", "tinyml.cli", "prepare", "--dataset", "digits", "--board", BOARD,
               "--out", str(out), "--quiet", *extra]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=3600)
    return json.loads((out / "report.json").read_text()), time.perf_counter() - started


def on_device(model_dir: Path, work: Path, samples: int | None) -> dict:
    """Compile, build, boot QEMU, bench: on-device accuracy and instructions per inference."""
    from tinyml.boards import load_board
    from tinyml.host.session import BoardSession

    board = load_board(BOARD)
    with BoardSession.build_and_boot(board, model_dir, work / "build", optimize="speed") as session:
        bench = session.bench(model_dir, work / "bench", samples=samples, fresh=True, progress=False)
        image = session.image
    report = bench.report
    return {"samples": report["samples"], "on_device_accuracy": report["on_device_accuracy"],
            "agreement_with_host": report["agreement"], "instructions_mean": report["latency_instructions"]["mean"],
            "instructions_p50": report["latency_instructions"]["p50"],
            "model_flash_bytes": report["memory"]["model_flash_bytes"], "arena_bytes": report["memory"]["arena_bytes"],
            "firmware_flash_bytes": image.flash_bytes if image else None}


def point(label: str, extra: list[str], work: Path, samples: int | None) -> dict:
    from tinyml import models

    out = work / re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_")   # the firmware build runs through a shell
    print(f"[bench_prune] {label}: tinyml prepare {' '.join(extra)}", flush=True)
    report, wall = run_prepare(out, extra)
    footprint = models.footprint(models.StudentConfig.parse(report["student"]), (8, 8, 1), 10)
    pruning = report.get("pruning")
    row = {"label": label, "options": " ".join(extra), "student": report["student"],
           "ratio": pruning["ratio"] if pruning else 0.0, "macs": report["macs"], "params": report["params"],
           "weight_bytes": footprint.weight_bytes, "tflite_bytes": report["flash_bytes"],
           "engine_constants_bytes": report["engine"]["constants_bytes"],
           "float_accuracy": report["student_float_accuracy"], "int8_accuracy": report["student_int8_accuracy"],
           "prepare_wall_seconds": round(wall, 1), "pruning": pruning}
    row["device"] = on_device(out, work / f"{out.name}-device", samples)
    d = row["device"]
    print(f"[bench_prune]   {row['student']}: {row['macs']:,} MACs, {row['params']:,} params, {row['weight_bytes']:,} B "
          f"weights; int8 host {row['int8_accuracy']:.2%}, device {d['on_device_accuracy']:.2%} "
          f"({d['samples']} samples), {d['instructions_mean']:,.0f} instructions", flush=True)
    return row


def markdown(rows: list[dict], facts: dict, command: str, base: dict, findings: list[str]) -> str:
    lines = [f"# Structured pruning on digits ({BOARD}, emulated, -icount shift=0)", "", f"`{command}`", "",
             f"Commit {facts['commit']}{' (dirty)' if facts.get('dirty') else ''}, {facts.get('cpu', '')}; "
             f"measured {facts['measured_at']}.", "",
             "| point | student | ratio | MACs | params | weight B | engine flash B | float | int8 (host TFLM) | "
             "int8 on device | instructions | vs unpruned (MACs / instr.) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        d = r["device"]
        lines.append(
            f"| {r['label']} | {r['student']} | {r['ratio']:g} | {r['macs']:,} | {r['params']:,} | {r['weight_bytes']:,} | "
            f"{r['engine_constants_bytes']:,} | {r['float_accuracy']:.2%} | {r['int8_accuracy']:.2%} | "
            f"{d['on_device_accuracy']:.2%} ({d['samples']}) | {d['instructions_mean']:,.0f} | "
            f"{base['macs'] / r['macs']:.2f}x / {base['device']['instructions_mean'] / d['instructions_mean']:.2f}x |")
    lines += ["", *[f"- {f}" for f in findings], "", "![accuracy vs MACs](prune.png)", ""]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    from tinyml.plots import _pyplot, place_labels

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    swept = sorted((r for r in rows if r["label"].startswith("ratio")), key=lambda r: r["macs"])
    ax.plot([r["macs"] for r in swept], [100 * r["int8_accuracy"] for r in swept], "-o", color="#4477aa",
            label=f"{BASE_STUDENT} pruned (int8, host TFLite-Micro)")
    others = [r for r in rows if not r["label"].startswith("ratio")]
    ax.scatter([r["macs"] for r in others], [100 * r["int8_accuracy"] for r in others], color="#cc3311", zorder=3,
               label="--max-macs points (a member as is / pruned by the budget)")
    ax.axvline(30_000, color="#999999", linestyle="--", linewidth=0.8)
    ax.axhline(98.6, color="#999999", linestyle=":", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlim(min(r["macs"] for r in rows) / 1.5, max(r["macs"] for r in rows) * 3)   # room for the labels
    ax.set_xlabel("MACs per inference (log)")
    ax.set_ylabel("int8 test accuracy (%)")
    ax.set_title("digits: structured pruning, accuracy vs MACs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    place_labels(ax, [(r["macs"], 100 * r["int8_accuracy"], r["student"]) for r in rows])   # once the layout is final
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.7, 0.85])
    parser.add_argument("--samples", type=int, default=None, help="On-device samples (default: the whole test split).")
    parser.add_argument("--no-budget-points", action="store_true", help="Skip the <= 30,000-MAC points.")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()

    from tinyml import models
    from tinyml.prune import ratio_for_macs

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-prune-"))
    facts = machine_facts()     # before the runs: the commit that was measured
    command = "python benchmarks/bench_prune.py " + " ".join(sys.argv[1:])
    plan = [(f"ratio {ratio:g}", ["--no-sweep"] + (["--prune", f"{ratio:g}"] if ratio > 0 else []))
            for ratio in args.ratios]
    if not args.no_budget_points:
        to_30k = ratio_for_macs(models.StudentConfig.parse(BASE_STUDENT), (8, 8, 1), 10, 30_000)
        if to_30k is not None and to_30k not in args.ratios:
            plan.append((f"ratio {to_30k:g} (<=30K)", ["--no-sweep", "--prune", f"{to_30k:g}"]))
        plan += [("--max-macs 30K", ["--max-macs", "30K"]), ("--max-macs 20K", ["--max-macs", "20K"])]
    rows: list[dict] = []
    for label, extra in plan:
        rows.append(point(label, extra, work, args.samples))
        store(rows, facts, command, final=len(rows) == len(plan))   # a stopped run keeps what it measured
    print(f"[bench_prune] stored {RESULTS / 'prune.json'}, prune.md, prune.png (work in {work})")


def store(rows: list[dict], facts: dict, command: str, final: bool) -> None:
    base = next((r for r in rows if r["ratio"] == 0.0 and r["label"].startswith("ratio")), rows[0])
    findings = []
    for r in rows:
        if r is base:
            continue
        drop = 100 * (base["int8_accuracy"] - r["int8_accuracy"])
        mac_factor = base["macs"] / r["macs"]
        instr_factor = base["device"]["instructions_mean"] / r["device"]["instructions_mean"]
        findings.append(f"{r['label']} ({r['student']}): {mac_factor:.2f}x fewer MACs, {instr_factor:.2f}x fewer "
                        f"instructions, int8 {r['int8_accuracy']:.2%} ({drop:+.2f} points below unpruned); "
                        f">= 2x MACs for <= 0.5 point: {'met' if mac_factor >= 2 and drop <= 0.5 else 'not met'}; "
                        f"<= 30,000 MACs with >= 98.6%: "
                        f"{'met' if r['macs'] <= 30_000 and r['int8_accuracy'] >= 0.986 else 'not met'}")
    if final:
        for line in findings:
            print(f"[bench_prune] {line}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"what": "digits, w4.00-d4 pruned at a sweep of ratios through `tinyml prepare --prune` and <= 30K-MAC "
                       "points; int8 accuracy on host TFLite-Micro over the whole test split; on-device accuracy and "
                       "instructions on the emulated STM32F405 (QEMU -icount shift=0)",
               "command": command, "complete": final, **facts, "rows": rows, "findings": findings}
    (RESULTS / "prune.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / "prune.md").write_text(markdown(rows, facts, command, base, findings))
    plot(rows, RESULTS / "prune.png")


if __name__ == "__main__":
    main()
