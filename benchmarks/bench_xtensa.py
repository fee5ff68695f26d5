"""Figures for the Xtensa work (issue 14), printed, never asserted, stored in
benchmarks/results/xtensa.{md,json}:

  * the engine on the Xtensa LX106 (ports/xtensa_lx106_sim, QEMU sim): image
    size, outputs equal to host tflite-micro's, instructions per inference
    (CCOUNT x 25 under -icount shift=0, exact to 25 instructions);
  * the same model on rv32_virt (rv32imc, the C3's ISA) for comparison, same
    generic C path, same inputs.

    nice python3 benchmarks/bench_xtensa.py [--model MODEL.tflite] [--samples 8]

Without --model it builds the small CNN of tinyml.testing.keras_models (conv, depthwise, dense).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an int8 .tflite the engine compiles (default: a small CNN)")
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()

    from tinyml.boards import load_board
    from tinyml.compiler.compile import compile_tflite
    from tinyml.host.build import build_firmware
    from tinyml.host.emulator import start_emulator
    from tinyml.host.link import BoardLink
    from tinyml.host.selfcheck import run_selfcheck, write_selfcheck_inputs
    from tinyml.host.transport import open_port
    from tinyml.verify import io_quantization, run_tflm

    work = Path(tempfile.mkdtemp(prefix="bench-xtensa-"))
    os.environ.setdefault("TINYML_STATE_DIR", str(work / "state"))
    if args.model:
        model = args.model.read_bytes()
        model_name = args.model.name
    else:
        from tinyml.testing.keras_models import small_int8_model

        model = small_int8_model()
        model_name = "small CNN of tinyml.testing.keras_models (as tests/test_rv32.py)"
    (work / "model.tflite").write_bytes(model)
    compiled = compile_tflite(work / "model.tflite", work / "compiled", target="generic")
    print(f"model {model_name}: {compiled.macs:,} MACs, weights {compiled.weight_bytes:,} B, "
          f"arena {compiled.arena_bytes:,} B")

    in_q, _ = io_quantization(model)
    rng = np.random.default_rng(0)
    inputs = rng.integers(-128, 128, size=(args.samples, *in_q.shape[1:]), dtype=np.int8)
    expected = [np.asarray(e, dtype=np.int8).tobytes() for e in run_tflm(model, inputs)]

    lx106 = load_board("xtensa_lx106_sim")
    write_selfcheck_inputs(work / "selfcheck", [x.tobytes() for x in inputs], len(expected[0]))
    image = build_firmware(lx106, work / "compiled", work / "build-lx106",
                           extra=[f"-DTINYML_SELFCHECK_DIR={work / 'selfcheck'}"])
    started = time.monotonic()
    run = run_selfcheck(lx106, image)
    wall = time.monotonic() - started
    lx_agree = sum(got == want for got, want in zip(run.outputs, expected))
    lx_mean = float(np.mean(run.latencies))
    # The image holds the inputs too: report them apart from code and constants.
    inputs_bytes = int(inputs.size)
    print(f"\nxtensa_lx106_sim (xtensa-lx106-elf-gcc 12, picolibc, QEMU sim): image {image.flash_bytes:,} B "
          f"text+data ({inputs_bytes:,} B of it compiled-in inputs) / {image.bss_bytes:,} B bss")
    print(f"  {lx_agree}/{len(expected)} outputs equal host TFLite-Micro's; {lx_mean:,.0f} instructions per "
          f"inference ({lx_mean / max(compiled.macs, 1):.1f} per MAC); QEMU run {wall:.2f} s wall")

    rv32 = load_board("rv32_virt")
    rv_image = build_firmware(rv32, work / "compiled", work / "build-rv32")
    emulated = start_emulator(rv32, rv_image)
    try:
        transport = open_port(emulated.port, rv32.baud)
        try:
            link = BoardLink(transport)
            link.hello()
            results = sorted(link.infer((i, x.tobytes()) for i, x in enumerate(inputs)), key=lambda r: r.index)
        finally:
            transport.close()
    finally:
        emulated.stop()
    rv_agree = sum(r.output == expected[r.index] for r in results)
    rv_mean = float(np.mean([r.latency for r in results]))
    print(f"rv32_virt, same generic C: {rv_agree}/{len(expected)} equal; {rv_mean:,.0f} instructions per inference "
          f"({rv_mean / max(compiled.macs, 1):.1f} per MAC); image {rv_image.flash_bytes:,} B / {rv_image.bss_bytes:,} B")

    figures = {
        "model": model_name, "macs": compiled.macs, "samples": len(expected),
        "xtensa_lx106_sim": {"agreement": lx_agree, "instructions_mean": lx_mean, "text_data_bytes": image.flash_bytes,
                             "inputs_bytes": inputs_bytes, "bss_bytes": image.bss_bytes, "qemu_wall_s": round(wall, 3)},
        "rv32_virt_generic": {"agreement": rv_agree, "instructions_mean": rv_mean,
                              "text_data_bytes": rv_image.flash_bytes, "bss_bytes": rv_image.bss_bytes},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "xtensa.json").write_text(json.dumps(figures, indent=2) + "\n")
    (RESULTS / "xtensa.md").write_text(
        f"# Engine on Xtensa LX106 (QEMU sim) and rv32imc (QEMU virt), generic C\n\n"
        f"Model: {model_name}, {compiled.macs:,} MACs, {len(expected)} random int8 inputs.\n\n"
        "| core | outputs equal to tflite-micro | instructions / inference | per MAC | text+data B | bss B |\n"
        "| --- | --- | --- | --- | --- | --- |\n"
        f"| xtensa_lx106_sim | {lx_agree}/{len(expected)} | {lx_mean:,.0f} (to 25) | {lx_mean / max(compiled.macs, 1):.1f} "
        f"| {image.flash_bytes:,} (incl. {inputs_bytes:,} of inputs) | {image.bss_bytes:,} |\n"
        f"| rv32_virt | {rv_agree}/{len(expected)} | {rv_mean:,.0f} | {rv_mean / max(compiled.macs, 1):.1f} "
        f"| {rv_image.flash_bytes:,} | {rv_image.bss_bytes:,} |\n")
    print(f"\nwritten {RESULTS / 'xtensa.md'} and xtensa.json")


if __name__ == "__main__":
    main()
