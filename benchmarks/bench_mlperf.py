"""MLPerf Tiny runner protocol on the emulated STM32F405 with the four reference
models (printed, never asserted).

    python benchmarks/bench_mlperf.py [--samples 5] [--optimize speed|size] [--models DIR]

Each model (ic01 ResNet-8, kws01 DS-CNN, vww01 MobileNetV1 0.25, ad01 FC
autoencoder) is compiled for the Cortex-M4, built into the MLPerf Tiny image
(`tinyml flash --protocol mlperf-tiny`'s build), booted in QEMU netduinoplus2
with `-icount shift=0` and driven by host/mlperf.py with random int8 inputs:
instructions per inference (SysTick, see firmware/PROTOCOL.md), the m-lap-us
time the runner sees (those instructions at the 168 MHz clock), agreement with
host tflite-micro, the image's flash and RAM, and the wall time per sample over
the emulated UART. Results go to benchmarks/results/mlperf.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from tinyml.testing.mlperf_models import MODELS, bench_vectors, models_dir as default_models_dir
    from tinyml.boards import load_board
    from tinyml.compiler import compile_tflite
    from tinyml.host.emulator import start_emulator
    from tinyml.host.mlperf import build_mlperf_firmware, mlperf_build_options, run_mlperf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--optimize", choices=["speed", "size"], default="speed")
    parser.add_argument("--models", type=Path, default=None, help="folder of the reference .tflite files")
    args = parser.parse_args()
    models_dir = args.models or default_models_dir()
    if models_dir is None:
        sys.exit("error: MLPerf Tiny reference models not found (give --models DIR)")
    board = load_board("stm32f405")
    rows = []
    with tempfile.TemporaryDirectory(prefix="tinyml-bench-mlperf-") as tmp:
        work = Path(tmp)
        for name, file_name in MODELS.items():
            directory = work / name
            directory.mkdir()
            started = time.monotonic()
            compiled = compile_tflite(models_dir / file_name, directory / "compiled", target=board.compile_target,
                                      optimize=args.optimize)
            data = bench_vectors(directory, models_dir / file_name, compiled.sha256, seed=len(name), samples=args.samples)
            image = build_mlperf_firmware(board, directory / "compiled", directory / "build")
            built = time.monotonic()
            _, input_type, results_kind = mlperf_build_options(directory / "compiled")
            emulated = start_emulator(board, image)
            try:
                report = run_mlperf(emulated.port, data["vectors"], directory / "report").report
            finally:
                emulated.stop()
            instructions = report["latency_instructions"]["p50"]
            row = {"model": name, "file": file_name, "macs": compiled.macs, "instructions_p50": instructions,
                   "instructions_per_mac": instructions / compiled.macs, "lap_us_mean": report["latency_us_mean"],
                   "agreement": report["agreement"], "runner_accuracy": report["on_device_accuracy"],
                   "host_accuracy": report["host_int8_accuracy"], "input": input_type, "results": results_kind,
                   "db_bytes": len(data["inputs"][0].tobytes()) * (4 if input_type == "float32" else 1),
                   "flash_bytes": image.flash_bytes, "ram_bytes": image.ram_bytes, "samples": report["samples"],
                   "wall_s_per_sample": report["elapsed_s"] / report["samples"],
                   "compile_build_s": built - started, "optimize": args.optimize}
            rows.append(row)
            print(f"{name:6s} {compiled.macs:>10,} MACs  {instructions:>12,.0f} instr ({row['instructions_per_mac']:.2f}"
                  f"/MAC)  m-lap-us {row['lap_us_mean']:>9,.0f}  agreement {row['agreement']:.0%}  runner accuracy "
                  f"{row['runner_accuracy']:.0%} (host {row['host_accuracy']:.0%})  {input_type} in, {results_kind}  "
                  f"db {row['db_bytes']:,} B  flash {image.flash_bytes:,} B  RAM {image.ram_bytes:,} B  "
                  f"{row['wall_s_per_sample']:.1f} s/sample", flush=True)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "mlperf.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["# MLPerf Tiny runner protocol on the emulated STM32F405", "",
             f"`python benchmarks/bench_mlperf.py --samples {args.samples} --optimize {args.optimize}`: random int8 "
             "inputs, labels = host tflite-micro's classes (ad01: its highest scores), so the runner's accuracy "
             "measures agreement with the host; instructions from SysTick under `-icount shift=0`, m-lap-us = "
             "those instructions at 168 MHz.", "",
             "| model | MACs | instructions (p50) | instr/MAC | m-lap-us | agreement | runner accuracy | input | "
             "m-results | db bytes | flash B | RAM B | s/sample (emulated UART) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['macs']:,} | {r['instructions_p50']:,.0f} | {r['instructions_per_mac']:.2f} | "
                     f"{r['lap_us_mean']:,.0f} | {r['agreement']:.0%} | {r['runner_accuracy']:.0%} | {r['input']} | "
                     f"{r['results']} | {r['db_bytes']:,} | {r['flash_bytes']:,} | {r['ram_bytes']:,} | "
                     f"{r['wall_s_per_sample']:.1f} |")
    (results / "mlperf.md").write_text("\n".join(lines) + "\n")
    print(f"-> {results / 'mlperf.md'}")


if __name__ == "__main__":
    main()
