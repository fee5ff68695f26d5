"""Figures of `tinyml prepare` against issue 4's targets (printed, never asserted).

    python benchmarks/bench_prepare.py                 # digits on stm32f405, then mnist5k with <= 64 KB of weights
    python benchmarks/bench_prepare.py --kd-modes      # + every distillation mode on digits
    python benchmarks/bench_prepare.py --only digits

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
    print(f"  flash {r['flash_bytes']:,} B, arena {r['arena_bytes']:,} B (TFLM, measured)")
    return r


def mnist(work: Path) -> dict:
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
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["digits", "mnist5k"])
    parser.add_argument("--kd-modes", action="store_true", help="also run fitnets, attention and none on digits")
    parser.add_argument("--keep", type=Path, help="keep the outputs here instead of a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.only in (None, "digits"):
            digits(work)
            if args.kd_modes:
                for kd in ("fitnets", "attention", "none"):
                    digits(work, kd)
        if args.only in (None, "mnist5k"):
            mnist(work)


if __name__ == "__main__":
    main()
