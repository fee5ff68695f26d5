"""Figures of the emulated Cortex-M0+ board (`mps2_an385_m0`, issue 16 item 4), printed, never asserted.

    OMP_NUM_THREADS=1 nice python3 benchmarks/bench_m0board.py --model-dir OUT   # a `tinyml prepare` output

1. `tinyml flash --board mps2_an385_m0` then `tinyml bench --board mps2_an385_m0` (the CLI, as a
   user runs it) over the model directory's test split: on-device accuracy against host int8,
   byte agreement with TFLite-Micro, instructions per inference (SysTick x 40 under -icount
   shift=0), image flash and RAM, model constants and arena.
2. The same compiled C (MODEL_DIR/compiled-cortex-m0) on benchmarks/bench_engine.py's semihost
   runner (model.c + engine linked with newlib's semihosting, also -mcpu=cortex-m0 on
   mps2-an385, SysTick calibrated against a 2-instruction loop, per-layer hooks compiled in)
   over the first --semihost-samples inputs, and the two counts per input side by side.

Results: benchmarks/results/m0board.json and .md (with the commit and machine facts).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_engine  # noqa: E402
from machine_facts import machine_facts  # noqa: E402

BOARD = "mps2_an385_m0"
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class M0BoardFigures:
    model_dir: str
    macs: int
    samples: int
    on_device_accuracy: float
    host_int8_accuracy: float
    agreement: float
    instructions_p50: float
    instructions_min: float
    instructions_max: float
    instructions_per_mac: float
    latency_ms_at_133mhz: float
    firmware_flash_bytes: int
    firmware_ram_bytes: int
    model_flash_bytes: int
    arena_bytes: int
    semihost_samples: int
    semihost_instructions_p50: float
    semihost_agreement: float
    semihost_instructions_per_tick: float
    firmware_minus_semihost: list[float]
    one_at_a_time_p50: float
    one_at_a_time_minus_semihost: list[float]
    flash_seconds: float
    bench_seconds: float


def _tinyml(*args: str) -> float:
    """Runs the tinyml CLI (stderr shown), returns its wall time in seconds."""
    import time

    start = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).with_name("tinyml")), *args], check=False)
    if done.returncode != 0:
        raise SystemExit(f"tinyml {' '.join(args)} failed (exit {done.returncode})")
    return time.perf_counter() - start


def measure(model_dir: Path, semihost_samples: int, work: Path) -> M0BoardFigures:
    from tinyml.host.build import default_engine_dir

    bench_dir = work / "bench"
    flash_s = _tinyml("flash", "--board", BOARD, "--model-dir", str(model_dir))
    try:
        bench_s = _tinyml("bench", "--board", BOARD, "--model-dir", str(model_dir), "--out", str(bench_dir), "--fresh")
    finally:
        _tinyml("emulator", "stop", BOARD)
    report = json.loads((bench_dir / "report.json").read_text())
    log = [json.loads(line) for line in (bench_dir / "bench_samples.jsonl").read_text().splitlines() if line.strip()]
    by_index = {int(row["index"]): float(row["latency"]) for row in log if "latency" in row}

    compiled = model_dir / "compiled-cortex-m0"
    info = json.loads((compiled / "compile.json").read_text())
    vectors = np.load(model_dir / "test_vectors.npz")
    count = min(semihost_samples, len(vectors["inputs"]))
    semi, semi_agree, _ = bench_engine.run_semihost(compiled, vectors["inputs"][:count], vectors["outputs"][:count],
                                                    work / "semihost", default_engine_dir(), "cortex-m0")
    per_tick = _semihost_instructions_per_tick(work / "semihost" / "bench.elf")
    one = _one_request_at_a_time(model_dir, vectors["inputs"][:count], work / "one")
    lat = report["latency_instructions"]
    memory = report["memory"]
    macs = int(info.get("macs") or 0)
    return M0BoardFigures(
        model_dir=str(model_dir), macs=macs, samples=int(report["samples"]),
        on_device_accuracy=float(report["on_device_accuracy"]), host_int8_accuracy=float(report["host_int8_accuracy"]),
        agreement=float(report["agreement"]), instructions_p50=float(lat["p50"]), instructions_min=float(lat["min"]),
        instructions_max=float(lat["max"]), instructions_per_mac=float(lat["p50"]) / max(macs, 1),
        latency_ms_at_133mhz=float(lat["p50"]) / 133e3,
        firmware_flash_bytes=int(memory["firmware_flash_bytes"]), firmware_ram_bytes=int(memory["firmware_ram_bytes"]),
        model_flash_bytes=int(memory["model_flash_bytes"]), arena_bytes=int(memory["arena_bytes"]),
        semihost_samples=count, semihost_instructions_p50=float(np.median(semi)), semihost_agreement=semi_agree,
        semihost_instructions_per_tick=per_tick,
        firmware_minus_semihost=[by_index[i] - semi[i] for i in range(count) if i in by_index],
        one_at_a_time_p50=float(np.median(one)), one_at_a_time_minus_semihost=[a - b for a, b in zip(one, semi)],
        flash_seconds=round(flash_s, 1), bench_seconds=round(bench_s, 1))


def _one_request_at_a_time(model_dir: Path, inputs: np.ndarray, work: Path) -> list[float]:
    """Instructions per inference with one request in flight: no UART byte arrives while the model
    runs, so no receive interrupt is counted in it (a streamed bench sends the next request meanwhile)."""
    from tinyml.boards import load_board
    from tinyml.host.session import BoardSession

    with BoardSession.build_and_boot(load_board(BOARD), model_dir, work) as session:
        return [float(next(iter(session.link.infer([(i, x.tobytes())], batch=1))).latency)
                for i, x in enumerate(inputs)]


def _semihost_instructions_per_tick(elf: Path) -> float:
    """Re-runs the semihost image's calibration line: 2,000,000 instructions over the SysTick ticks they took."""
    run = subprocess.run(["qemu-system-arm", "-M", "mps2-an385", "-icount", "shift=0", "-nographic", "-monitor", "none",
                          "-serial", "none", "-semihosting", "-kernel", str(elf)],
                         capture_output=True, text=True, timeout=600)
    ticks = next(int(line.split()[1]) for line in run.stdout.splitlines() if line.startswith("calibrate"))
    return 2_000_000 / ticks


def format_md(fig: M0BoardFigures, facts: dict) -> str:
    diffs = fig.firmware_minus_semihost
    spread = f"{min(diffs):+,.0f} to {max(diffs):+,.0f}" if diffs else "n/a"
    one = fig.one_at_a_time_minus_semihost
    one_spread = f"{min(one):+,.0f} to {max(one):+,.0f}" if one else "n/a"
    return (
        f"# Emulated Cortex-M0+ board ({BOARD}: armv6-m firmware on QEMU mps2-an385, -icount shift=0)\n\n"
        f"Model: `{fig.model_dir}` ({fig.macs:,} MACs), commit {facts['commit'][:7]}"
        f"{' + uncommitted changes' if facts['dirty'] else ''}, {facts['measured_at']}.\n\n"
        "| figure | value |\n| --- | ---: |\n"
        f"| samples (whole test split) | {fig.samples} |\n"
        f"| on-device accuracy / host int8 | {fig.on_device_accuracy:.2%} / {fig.host_int8_accuracy:.2%} |\n"
        f"| byte agreement with TFLite-Micro | {fig.agreement:.0%} |\n"
        f"| instructions per inference, firmware (p50; min-max) | {fig.instructions_p50:,.0f} "
        f"({fig.instructions_min:,.0f}-{fig.instructions_max:,.0f}) |\n"
        f"| instructions per MAC | {fig.instructions_per_mac:.2f} |\n"
        f"| as time at the RP2040's 133 MHz, 1 IPC | {fig.latency_ms_at_133mhz:.2f} ms |\n"
        f"| semihost runner, same model.c ({fig.semihost_samples} inputs, p50) | {fig.semihost_instructions_p50:,.0f} "
        f"(agreement {fig.semihost_agreement:.0%}) |\n"
        f"| firmware - semihost, per input, streamed bench (UART receive interrupts during inference) | {spread} instructions |\n"
        f"| firmware, one request at a time ({fig.semihost_samples} inputs, p50) | {fig.one_at_a_time_p50:,.0f} |\n"
        f"| firmware one at a time - semihost (its per-layer timer hooks), per input | {one_spread} instructions |\n"
        f"| semihost calibration: instructions per SysTick tick | {fig.semihost_instructions_per_tick:.3f} |\n"
        f"| image flash (text+data) / RAM (data+bss) | {fig.firmware_flash_bytes:,} B / {fig.firmware_ram_bytes:,} B |\n"
        f"| model constants / arena | {fig.model_flash_bytes:,} B / {fig.arena_bytes:,} B |\n"
        f"| `tinyml flash` / `tinyml bench` wall time | {fig.flash_seconds:.1f} s / {fig.bench_seconds:.1f} s |\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="a `tinyml prepare` output")
    parser.add_argument("--semihost-samples", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-m0board-"))
    os.environ.setdefault("TINYML_STATE_DIR", str(work / "state"))
    figures = measure(args.model_dir.resolve(), args.semihost_samples, work)
    facts = machine_facts()
    text = format_md(figures, facts)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "m0board.json").write_text(json.dumps({"machine": facts, "figures": asdict(figures)}, indent=2) + "\n")
    (RESULTS / "m0board.md").write_text(text)


if __name__ == "__main__":
    main()
