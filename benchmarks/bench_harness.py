"""Figures of the board link and the on-device bench (printed, never asserted;
stored in benchmarks/results/harness.json and .md with the commit and machine).

    python benchmarks/bench_harness.py                      # native port + fault plans (fixture model)
    python benchmarks/bench_harness.py --model-dir OUT      # + a `tinyml prepare` output on emulated STM32F405
    python benchmarks/bench_harness.py --prepare            # prepares the digits student first (minutes)

Prints wire efficiency, throughput and latency per setup, retries per fault
plan, and for the emulated board: agreement, on-device vs host int8 accuracy,
and the time of each stage (compile, build, boot, bench).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FIGURES: dict[str, Any] = {}


def say(key: str, line: str, figures: dict[str, Any]) -> None:
    """Prints a figure line and keeps its numbers for benchmarks/results/harness.json."""
    print(line, flush=True)
    FIGURES[key] = {"line": line, **figures}


def faulty_url_figures(work: Path, board_port: str, model_dir: Path) -> None:
    """`tinyml bench --port faulty://...`: the whole bench through the pyserial fault scheme."""
    from tinyml.host.harness import run_bench

    for name, query in (("faulty:// drop+flip+duplicate 1e-3/byte", "drop=0.001&flip=0.001&duplicate=0.001&seed=11"),
                        ("faulty:// 1e-3/byte + reset + garbage",
                         "drop=0.001&flip=0.001&duplicate=0.001&reset_after_bytes=20000"
                         "&garbage_after_bytes=40000&seed=12")):
        started = time.monotonic()
        r = run_bench(f"faulty://{board_port}?{query}", model_dir, work / f"faulty_{len(FIGURES)}", samples=1000,
                      progress=False, fresh=True).report
        elapsed = time.monotonic() - started
        f = r["faults_injected"]
        say(name, f"{name:40s}: {r['samples']} samples, agreement {r['agreement']:.4f}, "
            f"retries {r['link']['retries']}, "
            f"boots {r['link']['boots_seen']}, injected drop {f['dropped']} flip {f['flipped']} dup {f['duplicated']} "
            f"resets {f['resets_injected']}, {elapsed:.1f} s",
            {"samples": r["samples"], "agreement": r["agreement"], "retries": r["link"]["retries"],
             "boots_seen": r["link"]["boots_seen"], "faults": f, "seconds": round(elapsed, 2)})


def store_results() -> None:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    facts = {"commit": commit, "machine": platform.machine(), "cpus": os.cpu_count(),
             "python": platform.python_version(),
             "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "harness.json").write_text(json.dumps({"facts": facts, "figures": FIGURES}, indent=2) + "\n")
    lines = [f"# Board link figures (benchmarks/bench_harness.py)", "",
             f"commit {commit}, {facts['machine']}, {facts['cpus']} CPUs, {facts['date']}", "", "```"]
    lines += [v["line"] for v in FIGURES.values()] + ["```", ""]
    (RESULTS / "harness.md").write_text("\n".join(lines))
    print(f"stored in {RESULTS / 'harness.json'} and harness.md")


def host_port_figures(work: Path) -> None:
    import numpy as np

    from tinyml.testing.fixture_boards import fixture_image, running_board
    from tinyml.testing.fixture_model import fixture_outputs, write_fixture_model_dir
    from tinyml.host.harness import run_bench
    from tinyml.host.link import BoardLink
    from tinyml.host.transport import FaultPlan, FaultyTransport, open_port

    model_dir = write_fixture_model_dir(work / "fixture_model", count=2000)
    with running_board(fixture_image(work)) as board:
        for batch in (1, 8, 32):
            r = run_bench(board.port, model_dir, work / f"bench_host_b{batch}", batch=batch, progress=False).report
            say(f"native port batch {batch}", f"native port, batch {batch:2d}: {r['samples']} samples, wire_efficiency "
                f"{r['wire_efficiency']:.3f}, host-side rate {r['host_samples_per_s']:.0f} samples/s, agreement "
                f"{r['agreement']:.3f}", {"samples": r["samples"], "wire_efficiency": r["wire_efficiency"],
                                          "host_samples_per_s": r["host_samples_per_s"], "agreement": r["agreement"]})
        faulty_url_figures(work, board.port, model_dir)
        plans = {
            "drop 3e-4/byte": FaultPlan(drop=3e-4, seed=1),
            "flip 3e-4/byte": FaultPlan(flip=3e-4, seed=2),
            "duplicate 3e-4/byte": FaultPlan(duplicate=3e-4, seed=3),
            "delay 10% chunks 0.1 s": FaultPlan(delay=0.1, delay_s=0.1, seed=4),
            "reset mid-run": FaultPlan(reset_after_bytes=20000, seed=5),
            "garbage burst": FaultPlan(garbage_after_bytes=20000, seed=6),
            "all of them": FaultPlan(drop=2e-4, flip=2e-4, duplicate=2e-4, delay=0.05, delay_s=0.1,
                                     reset_after_bytes=30000, garbage_after_bytes=15000, seed=7),
        }
        inputs = np.random.default_rng(0).integers(-128, 128, (1000, 64), dtype=np.int8)
        expected = fixture_outputs(inputs)
        for name, plan in plans.items():
            transport = FaultyTransport(open_port(board.port), plan)
            link = BoardLink(transport, reply_timeout_s=1.0)
            started = time.monotonic()
            link.hello(attempts=10, timeout_s=0.3)
            results = list(link.infer((i, inputs[i].tobytes()) for i in range(len(inputs))))
            elapsed = time.monotonic() - started
            transport.close()
            exact = sorted(r.index for r in results) == list(range(len(inputs))) and all(
                r.output == expected[r.index].tobytes() for r in results)
            payload = link.stats.payload_sent + link.stats.payload_received
            efficiency = payload / (transport.bytes_written + transport.bytes_read)
            say(f"fault {name}", f"fault {name:24s}: complete and correct {exact}, retries {link.stats.retries:3d}, "
                f"boots {link.stats.boots_seen}, wire_efficiency {efficiency:.3f}, {elapsed:.2f} s",
                {"complete_and_correct": exact, "retries": link.stats.retries, "boots_seen": link.stats.boots_seen,
                 "wire_efficiency": efficiency, "seconds": round(elapsed, 2)})


def emulated_figures(model_dir: Path, work: Path) -> None:
    from tinyml.boards import load_board
    from tinyml.host.session import BoardSession

    board = load_board("stm32f405")
    started = time.monotonic()
    with BoardSession.build_and_boot(board, model_dir, work / "build") as session:
        report = session.bench(model_dir, work / "bench_qemu", fresh=True, progress=False).report
        image = session.image
    times = {**session.stage_seconds, "total": time.monotonic() - started}
    lat = report["latency_instructions"]
    line = (f"emulated {board.name}: image text {image.text_bytes} B, data {image.data_bytes} B, "
            f"bss {image.bss_bytes} B\n"
            f"  samples {report['samples']}, agreement {report['agreement']:.4f} ({report['disagreements']} differ), "
            f"on-device accuracy {report['on_device_accuracy']:.4f}, host int8 accuracy "
            f"{report['host_int8_accuracy']:.4f}\n"
            f"  latency (instructions) p50 {lat['p50']:.0f} p90 {lat['p90']:.0f} p99 {lat['p99']:.0f} "
            f"(p50 {report['latency_us']['p50'] / 1000:.3f} ms at 1 instruction per cycle, 168 MHz); host-side rate "
            f"{report['host_samples_per_s']:.1f} samples/s, wire_efficiency {report['wire_efficiency']:.3f}, "
            f"retries {report['link']['retries']}, line_rate_fraction {report['line_rate_fraction']}\n"
            "  stage times: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    say("emulated stm32f405", line, {"report": {k: report[k] for k in (
        "samples", "agreement", "on_device_accuracy", "host_int8_accuracy", "latency_instructions", "latency_us",
        "memory", "host_samples_per_s", "wire_efficiency")}, "stage_seconds": times})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, help="a `tinyml prepare` output (model.tflite, manifest, vectors)")
    parser.add_argument("--prepare", action="store_true", help="prepare the digits student first")
    parser.add_argument("--skip-host", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_harness.") as tmp:
        work = Path(tmp)
        if not args.skip_host:
            host_port_figures(work)
        model_dir = args.model_dir
        if args.prepare:
            from tinyml.prepare import PrepareOptions, prepare

            t = time.monotonic()
            model_dir = prepare(PrepareOptions(dataset="digits", board="stm32f405", out=work / "prepared",
                                               sweep=False, progress=False)).out_dir
            print(f"prepare digits: {time.monotonic() - t:.1f} s")
        if model_dir is not None:
            emulated_figures(Path(model_dir), work)
    store_results()


if __name__ == "__main__":
    main()
