"""`tinyml prepare` under budgets (issue 18 item 4): what the search chooses on digits, and that choice
on the emulated STM32F405.

For each run: `tinyml prepare --dataset digits --board stm32f405 <budgets>` (the search sizes members x
prune ratios x weight encodings before training, trains a few, evaluates each encoding on the trained
int8 model, measures instructions on the emulated board), then the prepare output as `tinyml bench`
runs it: compiled with the encoding prepare recorded (host.build.ensure_compiled), firmware built,
QEMU netduinoplus2 booted, the whole test split streamed. Prints and stores
benchmarks/results/budget-search.{json,md}.

  python benchmarks/bench_budget_search.py [--work DIR] [--runs flash8k macs30k ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_facts import machine_facts  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BOARD = "stm32f405"
RUNS: dict[str, list[str]] = {
    "flash8k": ["--max-flash", "8KB"],
    "macs30k": ["--max-macs", "30K"],
    "flash16k-macs100k": ["--max-flash", "16KB", "--max-macs", "100K"],
}
# Issue 18's digits targets, read against the device figures.
TARGETS = {"macs30k": ("digits >= 98.6% with <= 30,000 MACs", 0.986),
           "flash8k": ("digits >= 98.3% with <= 8 KB of encoded weights", 0.983)}


def prepare(name: str, extra: list[str], work: Path) -> tuple[Path, float]:
    out = work / name
    log = work / f"{name}.prepare.log"
    print(f"[bench_budget_search] {name}: tinyml prepare --dataset digits --board {BOARD} {' '.join(extra)} "
          f"(progress in {log})", flush=True)
    started = time.perf_counter()
    with log.open("w") as handle:
        subprocess.run([sys.executable, "-m", "tinyml.cli", "prepare", "--dataset", "digits", "--board", BOARD,
                        "--out", str(out), *extra], check=True, stdout=handle, stderr=subprocess.STDOUT,
                       timeout=7200)
    return out, round(time.perf_counter() - started, 1)


def on_device(model_dir: Path, work: Path) -> dict:
    """What `tinyml bench --board stm32f405 --model-dir DIR` measures (one session: build, boot, bench, stop)."""
    from tinyml.boards import load_board
    from tinyml.host.session import BoardSession

    board = load_board(BOARD)
    started = time.perf_counter()
    with BoardSession.build_and_boot(board, model_dir, work / "build") as session:
        bench = session.bench(model_dir, work / "bench", samples=None, fresh=True, progress=False)
    compiled = json.loads((model_dir / f"compiled-{board.compile_target}" / "compile.json").read_text())
    r = bench.report
    return {"samples": r["samples"], "on_device_accuracy": r["on_device_accuracy"], "agreement_with_host": r["agreement"],
            "instructions_p50": r["latency_instructions"]["p50"], "compiled_weights": compiled["weights"],
            "compiled_weight_bytes": compiled["weight_bytes"], "model_flash_bytes": r["memory"]["model_flash_bytes"],
            "arena_bytes": r["memory"]["arena_bytes"], "wall_seconds": round(time.perf_counter() - started, 1)}


def summarize(name: str, extra: list[str], model_dir: Path, prepare_s: float, device: dict) -> dict:
    report = json.loads((model_dir / "report.json").read_text())
    search = report["search"]
    row = {"run": name, "budgets": " ".join(extra), "chosen": search["chosen"], "student": report["student"],
           "weight_encoding": report["weight_encoding"], "macs": report["macs"],
           "constants_bytes": report["engine"]["constants_bytes"], "quantization": report["quantization"]["kept"],
           "host_int8_accuracy": report["student_int8_accuracy"], "prepare_wall_seconds": prepare_s,
           "candidates_sized": search["candidates_sized"], "candidates_fitting": search["candidates_fitting"],
           "trained_variants": [v["student"] for v in search["trained_variants"]],
           "front": [{k: e[k] for k in ("label", "val_accuracy", "test_accuracy", "constants_bytes", "instructions",
                                         "chosen")} for e in search["evaluated"] if e["front"]],
           "evaluated": len(search["evaluated"]), "device": device}
    if name in TARGETS:
        text, goal = TARGETS[name]
        row["target"] = {"text": text, "goal": goal, "met": device["on_device_accuracy"] >= goal}
    return row


def markdown(rows: list[dict], facts: dict, command: str) -> str:
    lines = ["# `tinyml prepare` under budgets on digits: the search's choice on the emulated STM32F405", "",
             f"`{command}` at commit {facts['commit'][:7]}{' (dirty)' if facts['dirty'] else ''}, {facts['cpu']}, "
             f"{facts['cores']} cores (shared; load {facts['load_average_1m']}), {facts['measured_at']}.", "",
             "Prepare with the default epochs; then the output as `tinyml bench` runs it (compiled with the recorded "
             "`--weights`, QEMU netduinoplus2 `-icount shift=0`, whole test split).", "",
             "| budgets | chosen | MACs | flash (constants) | quantization | host int8 | on device | agreement | "
             "p50 instructions | prepare | bench |", "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        d = r["device"]
        lines.append(f"| `{r['budgets']}` | {r['chosen']} | {r['macs']:,} | {d['compiled_weight_bytes']:,} B | "
                     f"{r['quantization'].upper()} | {100 * r['host_int8_accuracy']:.2f}% | "
                     f"{100 * d['on_device_accuracy']:.2f}% | {100 * d['agreement_with_host']:.1f}% | "
                     f"{d['instructions_p50']:,.0f} | {r['prepare_wall_seconds']:.0f} s | {d['wall_seconds']:.0f} s |")
    for r in rows:
        lines += ["", f"## `{r['budgets']}`: Pareto front ({r['evaluated']} evaluated of {r['candidates_fitting']} "
                      f"fitting / {r['candidates_sized']} sized; trained {', '.join(r['trained_variants'])})", "",
                  "| candidate | val acc | test acc (host int8) | flash | instructions (measured) |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for e in r["front"]:
            lines.append(f"| {e['label']}{' **(chosen)**' if e['chosen'] else ''} | {100 * e['val_accuracy']:.2f}% | "
                         f"{100 * e['test_accuracy']:.2f}% | {e['constants_bytes']:,} B | {e['instructions']:,.0f} |")
        if "target" in r:
            t = r["target"]
            lines += ["", f"Target {t['text']}: {'met' if t['met'] else 'not met'} "
                          f"({100 * r['device']['on_device_accuracy']:.2f}% on the device)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--runs", nargs="+", choices=sorted(RUNS), default=list(RUNS))
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-budget-search-"))
    work.mkdir(parents=True, exist_ok=True)
    facts = machine_facts()
    command = "python benchmarks/bench_budget_search.py " + " ".join(sys.argv[1:])
    rows = []
    for name in args.runs:
        model_dir, prepare_s = prepare(name, RUNS[name], work)
        device = on_device(model_dir, work / f"{name}-device")
        rows.append(summarize(name, RUNS[name], model_dir, prepare_s, device))
        d = device
        print(f"[bench_budget_search] {name}: {rows[-1]['chosen']}: {d['compiled_weight_bytes']:,} B, "
              f"{100 * d['on_device_accuracy']:.2f}% on device (agreement {100 * d['agreement_with_host']:.1f}%), "
              f"p50 {d['instructions_p50']:,.0f} instructions; prepare {prepare_s:.0f} s", flush=True)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "budget-search.json").write_text(json.dumps({
            "what": "tinyml prepare under budgets on digits (the search's choice), then benched on the emulated "
                    "STM32F405 over the whole test split", "command": command, **facts, "rows": rows}, indent=2) + "\n")
        (RESULTS / "budget-search.md").write_text(markdown(rows, facts, command))
    print(f"[bench_budget_search] stored {RESULTS / 'budget-search.json'} and budget-search.md (work in {work})")


if __name__ == "__main__":
    main()
