"""Fuzz figure (issue 15 item 8), printed, never asserted, stored in
benchmarks/results/fuzz.{md,json}: executions of the firmware's frame parser
and protocol handler under AddressSanitizer + UBSan (firmware/fuzz/run_fuzz.sh),
the coverage edges reached and the crashes found.

    nice -n 10 python3 benchmarks/bench_fuzz.py [--runs 10000000] [--seconds 7200] [--seed 1]

The run stops at --runs executions or --seconds, whichever comes first; a
crash (sanitizer report, invalid frame sent back) ends it early and is stored
as one crash with the fuzzer's last lines, so a bad run is recorded, not lost.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_facts import machine_facts  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RUN_FUZZ = ROOT / "firmware" / "fuzz" / "run_fuzz.sh"
# mini_fuzzer's closing line, and libFuzzer's ("Done N runs in S second(s)" + "cov: E").
MINI_DONE = re.compile(r"mini_fuzzer: (\d+) runs, (\d+) edges, corpus (\d+), no crash")
LIBFUZZER_DONE = re.compile(r"Done (\d+) runs in (\d+) second")
LIBFUZZER_COV = re.compile(r"cov: (\d+)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000_000, help="execution budget")
    parser.add_argument("--seconds", type=int, default=7200, help="time budget")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.runs < 1 or args.seconds < 1:
        print("error: --runs and --seconds must be positive", file=sys.stderr)
        return 2
    print(f"fuzz: building and running the frame parser under ASan/UBSan "
          f"(budget {args.runs} executions or {args.seconds} s)", flush=True)
    facts = machine_facts()  # before the run: the commit and tree that are measured
    with tempfile.TemporaryDirectory(prefix="tinyml-bench-fuzz-") as out:
        started = time.monotonic()
        done = subprocess.run(["sh", str(RUN_FUZZ), "--seconds", str(args.seconds), "--runs", str(args.runs),
                               "--out", out], capture_output=True, text=True,
                              env={**os.environ, "FUZZ_SEED": str(args.seed)}, timeout=args.seconds + 600)
        wall = time.monotonic() - started
    text = done.stdout + done.stderr
    mini = MINI_DONE.search(done.stdout)
    if mini:
        fuzzer, executions, edges = "mini_fuzzer (gcc trace-pc)", int(mini.group(1)), int(mini.group(2))
    else:
        libf = LIBFUZZER_DONE.search(text)
        cov = LIBFUZZER_COV.findall(text)
        fuzzer = "libFuzzer"
        executions = int(libf.group(1)) if libf else None
        edges = int(cov[-1]) if cov else None
    crashed = done.returncode != 0
    row = {
        "fuzzer": fuzzer,
        "sanitizers": "address,undefined",
        "executions": executions,
        "edges": edges,
        "crashes": 1 if crashed else 0,
        "exit_status": done.returncode,
        "wall_seconds": round(wall, 1),
        "executions_per_second": round(executions / wall) if executions else None,
        "budget_runs": args.runs,
        "budget_seconds": args.seconds,
        "seed": args.seed,
        "tail": text.strip().splitlines()[-5:] if crashed else [],
    }
    result = {"facts": facts, "fuzz": row}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fuzz.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "fuzz.md").write_text(
        "# Fuzz run of the firmware frame parser (ASan + UBSan)\n\n"
        f"Commit {facts['commit']}{' (dirty)' if facts['dirty'] else ''}, {facts['cpu']}, "
        f"{facts['cores']} cores, load {facts['load_average_1m']}, {facts['measured_at']}.\n\n"
        "| fuzzer | executions | edges | crashes | wall s | exec/s |\n|---|---|---|---|---|---|\n"
        f"| {fuzzer} | {executions} | {edges} | {row['crashes']} | {row['wall_seconds']} | "
        f"{row['executions_per_second']} |\n")
    print(f"fuzz: {executions} executions, {edges} edges, {row['crashes']} crashes in {wall:.0f} s "
          f"-> benchmarks/results/fuzz.json")
    if crashed:
        print("\n".join(row["tail"]), file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
