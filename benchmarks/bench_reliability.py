"""Reliability figure (issue 15 item 8), printed, never asserted, stored in
benchmarks/results/reliability.{md,json}: one bench of 10,000 samples against
the native port (firmware/ports/native, fixture model) through a line that drops
1% of bytes, flips 1% and duplicates 1% (both directions, all at once) and
resets the board 3 times mid-run; then checks that no sample was lost, none
counted twice and none misscored.

    nice -n 10 python3 benchmarks/bench_reliability.py [--samples 10000] [--fault-rate 0.01] [--seed 15]

Each run is stored as one row per fault rate (a later run at the same rate
replaces it). A run the link gives up on (BoardLink's retry limit) is stored
too, with the error and what the log held by then: the samples it never
reached count as lost.

It drives the public functions only: tinyml.host.transport.FaultyTransport
(the fault injector) and tinyml.host.harness.run_bench (the bench). The three
resets are three FaultyTransports of their own, each with one
reset_after_bytes, stacked under the byte faults so their RESET frames reach
the board whole (a damaged RESET frame would be no reset at all).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from machine_facts import machine_facts  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


class FaultsAfterHello:
    """Routes the run's opening HELLO over the clean line and everything after
    its answer through the faulty one. Why: run_bench says HELLO 4 times at
    most, and a HELLO answer (about 100 wire bytes) survives 3% byte faults one
    time in twenty, so the run would mostly end before it began; HELLOs after
    each reset do go through the faults."""

    def __init__(self, clean, faulty) -> None:
        self.clean, self.faulty = clean, faulty
        self.url, self.baud = clean.url, clean.baud
        self._answered = False
        self._faulty_on = False

    @property
    def faults(self):  # run_bench stores what was injected in its report
        return self.faulty.faults

    @property
    def bytes_written(self) -> int:
        return self.clean.bytes_written

    @property
    def bytes_read(self) -> int:
        return self.clean.bytes_read

    def write(self, data: bytes) -> None:
        # The first request after bytes came back: HELLO was answered whole
        # (hello() returns only on a complete frame), so the faults start here.
        self._faulty_on = self._faulty_on or self._answered
        (self.faulty if self._faulty_on else self.clean).write(data)

    def read(self, max_bytes: int = 65536) -> bytes:
        if self._faulty_on:
            return self.faulty.read(max_bytes)
        data = self.clean.read(max_bytes)
        self._answered = self._answered or bool(data)
        return data

    def discard_input(self) -> None:
        self.clean.discard_input()

    def close(self) -> None:
        self.faulty.close()
BYTE_FAULT_RATE = 0.01  # the figure: 1% of bytes dropped, 1% flipped, 1% duplicated
RESETS = 3


def _reset_offsets(samples: int, rate: float) -> list[int]:
    """Host-to-board byte counts at which the resets fire: about a quarter, half and three
    quarters of the way. A sample's request is 81 wire bytes and its answer 33; each of the
    3 byte faults spoils a byte with probability `rate`, so a round trip arrives whole with
    probability (1 - rate) ** (3 * 114) and a sample costs 81 bytes over that (4% extra
    bytes for duplicates aside). 0.8 of that estimate: the last reset must fall inside the run."""
    per_sample = 0.8 * 81 / (1.0 - rate) ** (3 * 114)
    return [int(samples * per_sample * k / (RESETS + 1)) for k in range(1, RESETS + 1)]


class ProgressLines:
    """A line every `every_s` seconds while the bench runs: samples in its log so far
    (run_bench writes one JSON line per answered sample and flushes it)."""

    def __init__(self, log: Path, total: int, every_s: float = 30.0) -> None:
        self.log, self.total, self.every_s = log, total, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(self.every_s):
            done = max(0, self._count() - 1)  # the first line is the run's header
            print(f"reliability: {done}/{self.total} samples after {time.monotonic() - started:.0f} s", flush=True)

    def _count(self) -> int:
        try:
            with self.log.open("rb") as handle:
                return sum(1 for _ in handle)
        except OSError:
            return 0

    def __enter__(self) -> "ProgressLines":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--fault-rate", type=float, default=BYTE_FAULT_RATE,
                        help="probability per byte of each fault: drop, flip and duplicate")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--batch", type=int, default=1,
                        help="samples per INFER frame (1: at 3%% byte faults a 64-sample frame never arrives whole)")
    parser.add_argument("--max-retries", type=int, default=0,
                        help="sends of one sample before the link gives up (0: no limit; the run then ends only "
                        "if the board answers nothing for 30 s). At 1%% each a round trip arrives whole 3.2%% "
                        "of the time, so the link's default of 40 gives up on 27%% of samples")
    parser.add_argument("--min-timeout", type=float, default=0.05,
                        help="the link's shortest reply timeout in s (its default 0.5 s suits serial lines; the "
                        "native port answers in milliseconds, and at 1%% most sends are lost)")
    args = parser.parse_args()
    if args.samples < RESETS + 1:
        print(f"error: --samples must be at least {RESETS + 1}", file=sys.stderr)
        return 2
    if not 0.0 <= args.fault_rate < 0.2:
        print(f"error: --fault-rate {args.fault_rate} is outside [0, 0.2)", file=sys.stderr)
        return 2

    from tinyml.testing.fixture_boards import fixture_image, running_board
    from tinyml.testing.fixture_model import OUTPUT_BYTES, fixture_outputs, write_fixture_model_dir
    from tinyml.errors import TinymlError
    from tinyml.host.harness import LOG_NAME, run_bench
    from tinyml.host.transport import FaultPlan, FaultyTransport, open_port

    rate = args.fault_rate
    facts = machine_facts()  # before the run: the commit and tree that are measured
    offsets = _reset_offsets(args.samples, rate)
    error: str | None = None
    report: dict | None = None
    with tempfile.TemporaryDirectory(prefix="tinyml-bench-reliability-") as tmp:
        work = Path(tmp)
        print("reliability: building the native-port firmware (fixture model)", flush=True)
        model_dir = write_fixture_model_dir(work / "model", count=args.samples, seed=args.seed)
        image = fixture_image(work)
        with running_board(image) as board:
            line = open_port(board.port)
            reset_layers = []
            for number, offset in enumerate(offsets):
                line = FaultyTransport(line, FaultPlan(reset_after_bytes=offset, seed=args.seed + 100 + number))
                reset_layers.append(line)
            faulty = FaultyTransport(line, FaultPlan(drop=rate, flip=rate, duplicate=rate, seed=args.seed))
            switch = FaultsAfterHello(line, faulty)
            print(f"reliability: {args.samples} samples, {rate:.2%} of bytes dropped, flipped and "
                  f"duplicated, resets after {offsets} bytes sent", flush=True)
            started = time.monotonic()
            try:
                with ProgressLines(work / "bench" / LOG_NAME, args.samples):
                    report = run_bench(board.port, model_dir, work / "bench", transport=switch, progress=False,
                                       hello_timeout_s=1.5, batch=args.batch,
                                       max_retries=args.max_retries or None,
                                       min_timeout_s=args.min_timeout).report
            except TinymlError as exc:
                error = str(exc)
                print(f"reliability: the run ended early: {error}", flush=True)
            finally:
                faulty.close()
            wall = time.monotonic() - started
        # Independent of the harness's own scoring: the log read back, line by line.
        log = work / "bench" / LOG_NAME
        records = [json.loads(l) for l in log.read_text().splitlines() if l.strip()] if log.exists() else []
    samples = [r for r in records if "index" in r]
    indices = [int(r["index"]) for r in samples]
    # The inputs as write_fixture_model_dir draws them (same seed), scored by the fixture's twin.
    rng_inputs = np.random.default_rng(args.seed).integers(-128, 128, (args.samples, 8, 8, 1), dtype=np.int8)
    expected = fixture_outputs(rng_inputs)
    labels = expected.argmax(axis=1).astype(np.int64)
    labels[::7] = (labels[::7] + 1) % OUTPUT_BYTES
    seen = set(indices)
    lost = sorted(set(range(args.samples)) - seen)
    counted_twice = len(indices) - len(seen)
    wrong_output = {i for r, i in zip(samples, indices) if bytes.fromhex(r["output"]) != expected[i].tobytes()}
    device_pred = {i: int(np.frombuffer(bytes.fromhex(r["output"]), dtype=np.int8).argmax())
                   for r, i in zip(samples, indices)}
    true_accuracy = float(np.mean([device_pred.get(i, -1) == labels[i] for i in range(args.samples)]))
    misscored = [i for r, i in zip(samples, indices)
                 if r["label"] != labels[i] or r["pred"] != device_pred[i] or r["agree"] != (i not in wrong_output)]
    resets_fired = sum(layer.faults.resets_injected for layer in reset_layers)
    accuracy_matches = report is not None and abs(true_accuracy - report["on_device_accuracy"]) < 1e-12
    row = {
        "samples": args.samples,
        "byte_fault_rate": rate,
        "completed": error is None,
        "error": error,
        "faults_injected": {k: v for k, v in vars(faulty.faults).items() if k != "log"},
        "resets_injected": resets_fired,
        "reset_after_bytes": offsets,
        "logged_samples": len(samples),
        "lost": len(lost),
        "counted_twice": counted_twice,
        "wrong_outputs": len(wrong_output),
        "misscored": len(misscored),
        "report_accuracy": report["on_device_accuracy"] if report else None,
        "recomputed_accuracy": true_accuracy,
        "link": report["link"] if report else None,
        "wire_efficiency": round(report["wire_efficiency"], 4) if report else None,
        "wall_seconds": round(wall, 1),
        "samples_per_second": round(len(samples) / wall, 2),
        "seed": args.seed,
        "batch": args.batch,
        "max_retries": args.max_retries or None,
        "min_timeout_s": args.min_timeout,
    }
    clean = (error is None and not lost and not counted_twice and not wrong_output and not misscored
             and resets_fired == RESETS and accuracy_matches)
    row["verdict"] = ("nothing lost, counted twice or misscored" if clean else
                      f"run ended early ({len(lost)} samples never reached); of those logged: "
                      f"{counted_twice} counted twice, {len(misscored)} misscored, {len(wrong_output)} wrong"
                      if error else "FAULTY")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stored = RESULTS / "reliability.json"
    rows = json.loads(stored.read_text())["runs"] if stored.exists() else []
    rows = [r for r in rows if r["reliability"]["byte_fault_rate"] != rate] + [{"facts": facts, "reliability": row}]
    rows.sort(key=lambda r: -r["reliability"]["byte_fault_rate"])
    stored.write_text(json.dumps({"runs": rows}, indent=2) + "\n")
    lines = ["# Bench under mixed line faults and board resets (native port, fixture model)", "",
             "Each byte fault (drop, flip, duplicate) at the given rate per byte, both directions, "
             f"plus {RESETS} injected board resets; batch of 1 sample per frame.", "",
             "| fault rate each | samples | completed | dropped | flipped | duplicated | resets | retries "
             "| lost | counted twice | misscored | wrong outputs | accuracy (report / recomputed) | wall s | commit |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for entry in rows:
        r, f = entry["reliability"], entry["reliability"]["faults_injected"]
        acc = f"{r['report_accuracy']:.4f}" if r["report_accuracy"] is not None else "-"
        lines.append(f"| {r['byte_fault_rate']:.2%} | {r['samples']} | {'yes' if r['completed'] else 'no'} | "
                     f"{f['dropped']} | {f['flipped']} | {f['duplicated']} | {r['resets_injected']} | "
                     f"{r['link']['retries'] if r['link'] else '-'} | {r['lost']} | {r['counted_twice']} | "
                     f"{r['misscored']} | {r['wrong_outputs']} | {acc} / {r['recomputed_accuracy']:.4f} | "
                     f"{r['wall_seconds']} | {entry['facts']['commit'][:10]}{' (dirty)' if entry['facts']['dirty'] else ''} |")
    lines += ["", *(f"- {e['reliability']['byte_fault_rate']:.2%}: {e['reliability']['verdict']}"
                    + (f" ({e['reliability']['error']})" if e['reliability']['error'] else "") for e in rows),
              "", f"Machine: {facts['cpu']}, {facts['cores']} cores, load {facts['load_average_1m']} at the last run."]
    (RESULTS / "reliability.md").write_text("\n".join(lines) + "\n")
    f = row["faults_injected"]
    print(f"reliability: {len(samples)}/{args.samples} samples logged, lost {len(lost)}, counted twice "
          f"{counted_twice}, wrong outputs {len(wrong_output)}, misscored {len(misscored)}; faults {f}, "
          f"resets {resets_fired}, {wall:.0f} s -> benchmarks/results/reliability.json")
    print(f"reliability: {row['verdict']}")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
