"""Figures for the real-board work (issue 7), printed, never asserted:

  * image sizes of the same compiled model for rv32_virt (ESP32-C3 ISA) and the
    stm32 port (Cortex-M4 F446RE, Cortex-M7 H743ZI), built with this project's CMake;
  * instructions per inference and the per-layer profile on rv32_virt (QEMU);
  * the same model driven over the MLPerf Tiny protocol (latency as the runner sees it).

    nice python3 benchmarks/bench_boards.py [--model MODEL.tflite] [--samples 8]

Without --model it builds the small CNN of tinyml.testing.keras_models (conv, depthwise, dense).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an int8 .tflite the engine compiles (default: a small CNN)")
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()

    from tinyml.boards import load_board
    from tinyml.compiler.compile import compile_tflite
    from tinyml.host.build import build_firmware
    from tinyml.host.mlperf import build_mlperf_firmware, run_mlperf
    from tinyml.host.profile import format_table
    from tinyml.host.session import BoardSession
    from tinyml.verify import io_quantization, run_tflm

    work = Path(tempfile.mkdtemp(prefix="bench-boards-"))
    os.environ.setdefault("TINYML_STATE_DIR", str(work / "state"))
    if args.model:
        model = args.model.read_bytes()
    else:
        from tinyml.testing.keras_models import small_int8_model

        model = small_int8_model()
    (work / "model.tflite").write_bytes(model)
    compiled = compile_tflite(work / "model.tflite", work / "compiled", target="rv32", profile=True)
    print(f"model {compiled.sha256[:16]}…  {compiled.macs:,} MACs, weights {compiled.weight_bytes:,} B, "
          f"arena {compiled.arena_bytes:,} B")

    print("\nimage sizes (text+data / bss, bytes):")
    rv32 = load_board("rv32_virt")
    image = build_firmware(rv32, work / "compiled", work / "build-rv32", profile=True)
    print(f"  rv32_virt (rv32imc, picolibc)      {image.flash_bytes:>8,} / {image.bss_bytes:,}")
    for board in ("nucleo_f446re", "nucleo_h743zi"):
        stm = build_firmware(load_board(board), work / "compiled", work / f"build-{board}")
        print(f"  {board:<34} {stm.flash_bytes:>8,} / {stm.bss_bytes:,}")

    in_q, out_q = io_quantization(model)
    rng = np.random.default_rng(0)
    inputs = rng.integers(-128, 128, size=(args.samples, *in_q.shape[1:]), dtype=np.int8)
    expected = run_tflm(model, inputs)
    with BoardSession.boot(rv32, image, expected_sha256=compiled.sha256) as session:
        results = list(session.link.infer((i, x.tobytes()) for i, x in enumerate(inputs)))
        agree = sum(r.output == expected[r.index].tobytes() for r in results)
        lat = np.array([r.latency for r in results])
        print(f"\nrv32_virt: {agree}/{len(results)} outputs equal host TFLite-Micro's; "
              f"{lat.mean():,.0f} instructions per inference ({lat.mean() / max(compiled.macs, 1):.1f} per MAC), "
              f"{lat.mean() / 160:,.0f} us at the C3's 160 MHz if one instruction took one cycle")
        profile, _ = session.profile(work / "compiled", sample=inputs[0].tobytes())
        print("\nper-layer profile on rv32_virt:\n" + format_table(profile))

    vectors = work / "vectors"
    vectors.mkdir()
    np.savez(vectors / "test_vectors.npz", inputs=inputs, outputs=expected,
             labels=expected.reshape(len(expected), -1).argmax(axis=1).astype(np.int64))
    (vectors / "manifest.json").write_text(json.dumps({"model_sha256": compiled.sha256,
                                                       "output": {"scale": out_q.scale, "zero_point": out_q.zero_point}}))
    mlperf_image = build_mlperf_firmware(rv32, work / "compiled", work / "build-mlperf")
    with BoardSession.boot(rv32, mlperf_image, protocol="mlperf-tiny") as session:
        result = run_mlperf(session.port, vectors, work / "mlperf-report", runs=10, warmup=1)
    r = result.report
    print(f"MLPerf Tiny protocol on rv32_virt: agreement {r['agreement']:.0%}, "
          f"{r['latency_instructions']['mean']:,.0f} instructions per inference "
          f"(m-lap-us mean {r['latency_us_mean']:,.1f} us), report in {result.out_dir}")


if __name__ == "__main__":
    main()
