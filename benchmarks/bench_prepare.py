"""Figures of `tinyml prepare` against issue 4's targets (printed, never asserted).

    python benchmarks/bench_prepare.py                 # digits on stm32f405, then mnist5k with <= 64 KB of weights
    python benchmarks/bench_prepare.py --kd-modes      # + every distillation mode on digits
    python benchmarks/bench_prepare.py --only digits
    python benchmarks/bench_prepare.py --seeds 0 1 2 3 4  # digits once per seed: the spread the README quotes

Targets: digits on stm32f405 in <= 60 s wall, int8 accuracy on host TFLite-Micro
>= 97% and no more than 1.0 point below the float student, distilled >= alone;
mnist5k int8 >= 95% with <= 64 KB of weights. Wall time is measured around the
whole `tinyml prepare` command (a fresh process, imports included).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_prepare(out: Path, *args: str) -> tuple[dict, float]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tinyml.cli", "prepare", "--out", str(out), "--quiet", *args], check=True,
                   stdout=subprocess.DEVNULL)
    return json.loads((out / "report.json").read_text()), time.perf_counter() - started


def mark(ok: bool) -> str:
    return "met" if ok else "NOT met"


def digits(work: Path, kd: str = "hinton") -> dict:
    r, wall = run_prepare(work / f"digits-{kd}", "--dataset", "digits", "--board", "stm32f405", "--kd", kd)
    gap = 100 * (r["student_float_accuracy"] - r["student_int8_accuracy"])
    print(f"digits/stm32f405 --kd {kd}: student {r['student']} ({r['params']:,} params, {r['macs']:,} MACs)")
    print(f"  teacher {r['teacher_accuracy']:.2%}  alone {r['student_alone_accuracy']:.2%}  "
          f"distilled float {r['student_float_accuracy']:.2%}  int8 (TFLM) {r['student_int8_accuracy']:.2%}  "
          f"agreement {r['int8_float_agreement']:.2%}")
    print(f"  wall {wall:.1f} s (<= 60 s: {mark(wall <= 60)}); stages {r['stage_seconds']}")
    print(f"  int8 >= 97%: {mark(r['student_int8_accuracy'] >= 0.97)}; int8 within 1.0 point of float "
          f"({gap:+.2f}): {mark(gap <= 1.0)}; distilled >= alone: "
          f"{mark(r['student_float_accuracy'] >= r['student_alone_accuracy'])}")
    print(f"  flash {r['flash_bytes']:,} B, arena {r['arena_bytes']:,} B (TFLM, measured); engine "
          f"({r['engine']['optimize']}) {r['engine']['constants_bytes']:,} B constants, "
          f"{r['engine']['arena_bytes']:,} B arena; selection: {r['selection']}")
    return r


def mnist(work: Path) -> dict:
    from machine_facts import machine_facts

    facts = machine_facts()  # before the run: the commit and tree that are measured
    r, wall = run_prepare(work / "mnist5k", "--dataset", "mnist5k", "--board", "stm32f405", "--max-weight-kb", "64",
                          "--no-sweep")
    from tinyml.compiler import compile_tflite
    from tinyml.tflite_graph import load_tflite

    graph = load_tflite(work / "mnist5k" / "model.tflite")
    # The model's weights: its constant tensors (int8 weights, int32 biases), as TFLM stores them.
    weight_bytes = sum(t.nbytes for t in graph.tensors if t.is_constant)
    compiled = compile_tflite(work / "mnist5k" / "model.tflite", work / "mnist5k-compiled", target="cortex-m4")
    print(f"mnist5k/stm32f405 (--max-weight-kb 64): student {r['student']} ({r['params']:,} params, "
          f"{r['macs']:,} MACs), wall {wall:.1f} s")
    print(f"  teacher {r['teacher_accuracy']:.2%}  alone {r['student_alone_accuracy']:.2%}  distilled float "
          f"{r['student_float_accuracy']:.2%}  int8 (TFLM) {r['student_int8_accuracy']:.2%}")
    print(f"  weights (int8 weights + int32 biases): {weight_bytes:,} B; compiled engine constants (adds "
          f"per-channel multipliers, shifts, folded biases): {compiled.weight_bytes:,} B; .tflite file "
          f"{r['flash_bytes']:,} B")
    print(f"  int8 >= 95%: {mark(r['student_int8_accuracy'] >= 0.95)}; <= 64 KB of weights: "
          f"{mark(weight_bytes <= 64 * 1024)}")
    stored = {"facts": facts, "command": "tinyml prepare --dataset mnist5k --board stm32f405 --max-weight-kb 64 "
              "--no-sweep", "student": r["student"], "params": r["params"], "macs": r["macs"],
              "weight_bytes": weight_bytes, "engine_constants_bytes": compiled.weight_bytes,
              "tflite_bytes": r["flash_bytes"], "wall_seconds": round(wall, 1),
              **{key: r[key] for key in SPREAD_KEYS}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "prepare_mnist5k.json").write_text(json.dumps(stored, indent=2) + "\n")
    (RESULTS / "prepare_mnist5k.md").write_text("\n".join([
        "# `tinyml prepare --dataset mnist5k --board stm32f405 --max-weight-kb 64 --no-sweep`", "",
        "`python benchmarks/bench_prepare.py --only mnist5k`", "",
        f"student {r['student']}: {r['params']:,} params, {r['macs']:,} MACs; teacher "
        f"{r['teacher_accuracy']:.2%}, alone {r['student_alone_accuracy']:.2%}, distilled float "
        f"{r['student_float_accuracy']:.2%}, int8 on host TFLite-Micro {r['student_int8_accuracy']:.2%}; "
        f"weights (int8 weights + int32 biases) {weight_bytes:,} B, engine constants {compiled.weight_bytes:,} B, "
        f".tflite {r['flash_bytes']:,} B; wall {wall:.1f} s", "",
        f"Commit {facts['commit'][:10]}{' (dirty)' if facts['dirty'] else ''}, {facts['cpu']}, {facts['cores']} "
        f"cores, load {facts['load_average_1m']}."]) + "\n")
    return r


RESULTS = Path(__file__).resolve().parent / "results"
SPREAD_KEYS = ("teacher_accuracy", "student_alone_accuracy", "student_float_accuracy", "student_int8_accuracy",
               "int8_float_agreement")


def seed_spread(work: Path, seeds: list[int]) -> dict:
    """digits on stm32f405 once per seed (split, initialisation, batch order all follow the seed);
    prints and stores min / max / mean / standard deviation of each accuracy under benchmarks/results/."""
    import platform
    import statistics

    import tinyml

    runs = []
    for seed in seeds:
        r, wall = run_prepare(work / f"digits-seed{seed}", "--dataset", "digits", "--board", "stm32f405",
                              "--seed", str(seed))
        runs.append({"seed": seed, "student": r["student"], "wall_seconds": round(wall, 1),
                     **{key: r[key] for key in SPREAD_KEYS}})
        print(f"seed {seed}: {r['student']}  " + "  ".join(f"{key.removesuffix('_accuracy')} {r[key]:.2%}"
                                                          for key in SPREAD_KEYS) + f"  wall {wall:.1f} s", flush=True)
    spread = {}
    for key in SPREAD_KEYS:
        values = [run[key] for run in runs]
        spread[key] = {"min": min(values), "max": max(values), "mean": statistics.fmean(values),
                       "stdev": statistics.stdev(values) if len(values) > 1 else 0.0}
    result = {"dataset": "digits", "board": "stm32f405", "seeds": seeds, "runs": runs, "spread": spread,
              "machine": {"cpu_pins": tinyml.NUMERICS_PINS, "machine": platform.machine(),
                          "python": platform.python_version()}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "prepare_seeds.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# `tinyml prepare --dataset digits --board stm32f405` over seeds {', '.join(map(str, seeds))}", "",
             "`python benchmarks/bench_prepare.py --seeds " + " ".join(map(str, seeds)) + "`", "",
             "| seed | student | teacher | alone | distilled | int8 (TFLM) | agreement | wall |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {run['seed']} | {run['student']} | " + " | ".join(f"{100 * run[k]:.2f}%" for k in SPREAD_KEYS)
              + f" | {run['wall_seconds']} s |" for run in runs]
    lines += ["", "| accuracy | min | max | mean | stdev (points) |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {key.removesuffix('_accuracy')} | {100 * v['min']:.2f}% | {100 * v['max']:.2f}% | "
              f"{100 * v['mean']:.2f}% | {100 * v['stdev']:.2f} |" for key, v in spread.items()]
    (RESULTS / "prepare_seeds.md").write_text("\n".join(lines) + "\n")
    for key, v in spread.items():
        print(f"{key}: {v['min']:.2%} .. {v['max']:.2%} (mean {v['mean']:.2%}, stdev {100 * v['stdev']:.2f} points)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["digits", "mnist5k"])
    parser.add_argument("--kd-modes", action="store_true", help="also run fitnets, attention and none on digits")
    parser.add_argument("--keep", type=Path, help="keep the outputs here instead of a temporary directory")
    parser.add_argument("--seeds", type=int, nargs="+", help="only the seed spread of digits on stm32f405")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.seeds:
            seed_spread(work, args.seeds)
            return
        if args.only in (None, "digits"):
            digits(work)
            if args.kd_modes:
                for kd in ("fitnets", "attention", "none"):
                    digits(work, kd)
        if args.only in (None, "mnist5k"):
            mnist(work)


if __name__ == "__main__":
    main()
