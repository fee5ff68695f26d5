"""The TFLite-Micro backend on the emulated STM32F405, beside the engine (issue 13).

    TINYML_TFLM_DIR=TREE TINYML_TFLM_LIB=TREE/gen/.../libtensorflow-microlite.a \
        nice python3 benchmarks/bench_tflm.py --digits build/digits [--samples 20] [--tflm-commit 90b983c]

Needs a TFLite-Micro tree built for Cortex-M4F, which CI cannot fetch: this is
run by hand, and its figures say so. For each model (the digits student of a
`tinyml prepare` output, and the four MLPerf Tiny models in
/work/shared/models/mlperf-tiny/, on random int8 inputs: they come without a
dataset), it emits the artifacts (`tinyml emit`: Register_*_INT8 resolver,
32-bit arena), builds the firmware with the tflm backend, boots QEMU
netduinoplus2 (`-icount shift=0`), benches the samples, then does the same with
the engine backend (`tinyml compile --target cortex-m4`) on the same samples.

Columns: byte agreement of the board's outputs with host TFLite-Micro (tflm and
engine), agreement of the two backends with each other, p50 instructions per
inference, arena (the one the board reports in HELLO: TFLM's arena_used_bytes;
the engine's static arena) against the host's 64-bit and our 32-bit estimate,
flash (.text + .data) and RAM (.data + .bss) of each image.
Results go to benchmarks/results/tflm.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MLPERF_DIR = Path("/work/shared/models/mlperf-tiny")
MLPERF_MODELS = {"ad01": "ad01_int8.tflite", "kws": "kws_ref_model.tflite",
                 "resnet": "pretrainedResnet_quant.tflite", "vww": "vww_96_int8.tflite"}


@dataclass
class BackendRun:
    agreement_with_host: float
    p50_instructions: float
    arena_bytes: int
    flash_bytes: int
    ram_bytes: int
    outputs: list[str]


@dataclass
class ModelFigures:
    name: str
    samples: int
    ops: list[str]
    host_arena_64bit: int
    arena_32bit_estimate: int
    tflm: BackendRun
    engine: BackendRun
    tflm_engine_agreement: float


def emit_model(name: str, out: Path, digits_dir: Path | None, samples: int) -> Path:
    from tinyml.artifacts import emit_artifacts, read_test_vectors
    from tinyml.tflite_graph import load_tflite

    if name == "digits":
        assert digits_dir is not None
        vectors = read_test_vectors(digits_dir / "test_vectors.npz")
        emit_artifacts(digits_dir / "model.tflite", out, vectors.inputs, vectors.labels, vectors.label_names)
        return out
    model = MLPERF_DIR / MLPERF_MODELS[name]
    graph = load_tflite(model)
    shape = graph.tensors[graph.inputs[0]].shape
    rng = np.random.default_rng(13)
    inputs = rng.integers(-128, 128, size=(samples, *shape[1:]), dtype=np.int8)
    emit_artifacts(model, out, inputs, np.zeros(samples, dtype=np.int64))
    return out


def run_backend(board, model_dir: Path, backend: str, work: Path, samples: int | None, tflm) -> BackendRun:
    from tinyml.demo import ensure_compiled
    from tinyml.errors import TinymlError
    from tinyml.host.build import build_firmware
    from tinyml.host.emulator import start_emulator
    from tinyml.host.harness import run_bench

    if backend == "engine":
        image = build_firmware(board, ensure_compiled(model_dir, board), work / "build-engine")
    else:
        image = build_firmware(board, model_dir, work / "build-tflm", backend="tflm", tflm=tflm)
    print(f"  {backend}: image {image.flash_bytes:,} B flash, {image.ram_bytes:,} B RAM", flush=True)
    for attempt in (1, 2, 3):
        emulated = start_emulator(board, image)
        try:
            bench = run_bench(emulated.port, model_dir, work / f"bench-{backend}", baud=board.baud, samples=samples,
                              progress=False)
            break
        except TinymlError as exc:
            # A loaded machine can stall QEMU's pty long enough for a write timeout:
            # the run starts over (the figures are instruction counts, not times).
            print(f"  {backend}: attempt {attempt} failed ({exc})", flush=True)
            if attempt == 3:
                raise
        finally:
            emulated.stop()
    report = bench.report
    records = [json.loads(line) for line in bench.log.read_text().splitlines() if line.strip()]
    by_index = {r["index"]: r["output"] for r in records if "index" in r}
    return BackendRun(agreement_with_host=float(report["agreement"]),
                      p50_instructions=float(report["latency_instructions"]["p50"]),
                      arena_bytes=int(report["arena_bytes"]), flash_bytes=image.flash_bytes,
                      ram_bytes=image.ram_bytes, outputs=[by_index[i] for i in sorted(by_index)])


def bench_model(name: str, work: Path, digits_dir: Path | None, samples: int, tflm) -> ModelFigures:
    from tinyml.boards import load_board

    board = load_board("stm32f405")
    model_dir = emit_model(name, work / "model", digits_dir, samples)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    count = None if name == "digits" else samples
    tflm_run = run_backend(board, model_dir, "tflm", work, count, tflm)
    engine_run = run_backend(board, model_dir, "engine", work, count, tflm)
    same = np.mean([a == b for a, b in zip(tflm_run.outputs, engine_run.outputs)])
    return ModelFigures(name, len(tflm_run.outputs), manifest["ops"], manifest["arena_bytes"],
                        manifest["arena_bytes_32bit"], tflm_run, engine_run, float(same))


def markdown(figures: list[ModelFigures], meta: dict) -> str:
    lines = [
        "# TFLite-Micro backend on the emulated STM32F405 (issue 13)",
        "",
        f"Measured by hand, outside CI, {meta['date']}: TFLite-Micro {meta['tflm_commit']} built for Cortex-M4F "
        f"({meta['tflm_build']}); QEMU netduinoplus2 `-icount shift=0` (latency in instructions). "
        "Digits: the whole test split of a `tinyml prepare --dataset digits` student; MLPerf Tiny models: "
        f"{meta['samples']} random int8 inputs each (no dataset here). Agreement: byte-for-byte outputs.",
        "",
        "| model | samples | tflm = host | engine = host | tflm = engine | tflm p50 instr | engine p50 instr "
        "| tflm arena (board) | 32-bit estimate | host 64-bit | engine arena | tflm flash / RAM | engine flash / RAM |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for f in figures:
        t, e = f.tflm, f.engine
        lines.append(
            f"| {f.name} | {f.samples} | {t.agreement_with_host:.2%} | {e.agreement_with_host:.2%} | "
            f"{f.tflm_engine_agreement:.2%} | {t.p50_instructions:,.0f} | {e.p50_instructions:,.0f} | "
            f"{t.arena_bytes:,} | {f.arena_32bit_estimate:,} | {f.host_arena_64bit:,} | {e.arena_bytes:,} | "
            f"{t.flash_bytes:,} / {t.ram_bytes:,} | {e.flash_bytes:,} / {e.ram_bytes:,} |")
    lines += ["", "Ops: " + "; ".join(f"{f.name}: {', '.join(f.ops)}" for f in figures), ""]
    over = max(figures, key=lambda f: f.tflm.arena_bytes - f.arena_32bit_estimate)
    lines += [
        "Arena: the board's figure is TFLM's `arena_used_bytes` (HELLO). The image reserves the 32-bit "
        "estimate of `tinyml emit` (`TINYML_ARENA_BYTES_32BIT`, tinyml/tflm_arena.py) plus "
        "`TINYML_ARENA_SLACK` (512 B) for the CMSIS-NN scratch buffers the host's reference kernels do not "
        f"request; largest excess of the board over the estimate: {over.name}, "
        f"{over.tflm.arena_bytes - over.arena_32bit_estimate:+,} B. The 64-bit host figure overstates the "
        "board's by " + ", ".join(f"{f.name} {f.host_arena_64bit / f.tflm.arena_bytes - 1:.1%}" for f in figures)
        + ".",
        "",
        "The engine's arena is its static plan (`tinyml compile`); its flash includes the widened weights of "
        "`--optimize speed`. Only VWW's input (27,648 B) is larger than one frame: it travels as LOAD frames, "
        "which the tflm image writes straight into the input tensor (no load buffer).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tinyml.host.build import TflmSource

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=Path, required=True, help="a `tinyml prepare --dataset digits` output")
    parser.add_argument("--samples", type=int, default=20, help="random inputs per MLPerf Tiny model")
    parser.add_argument("--models", default="digits,ad01,kws,resnet,vww")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_tflm"))
    parser.add_argument("--tflm-commit", default="unknown", help="the TFLite-Micro commit the tree is at")
    parser.add_argument("--tflm-build", default="make TARGET=cortex_m_generic TARGET_ARCH=cortex-m4+fp "
                        "OPTIMIZED_KERNEL_DIR=cmsis_nn BUILD_TYPE=release, Debian arm-none-eabi-gcc 12.2")
    args = parser.parse_args()
    tflm = TflmSource.resolve()
    figures = []
    for name in args.models.split(","):
        started = time.perf_counter()
        print(f"[bench_tflm] {name}", flush=True)
        result = bench_model(name, args.work / name, args.digits, args.samples, tflm)
        print(f"  tflm = host {result.tflm.agreement_with_host:.2%}, engine = host "
              f"{result.engine.agreement_with_host:.2%}, tflm = engine {result.tflm_engine_agreement:.2%}; p50 "
              f"{result.tflm.p50_instructions:,.0f} vs {result.engine.p50_instructions:,.0f} instructions; arena "
              f"{result.tflm.arena_bytes:,} (estimate {result.arena_32bit_estimate:,}, host "
              f"{result.host_arena_64bit:,}) ({time.perf_counter() - started:.0f} s)", flush=True)
        figures.append(result)
        text = write_results(figures, args, tflm)  # after each model: a later failure keeps these
    print(text)


def write_results(figures: list[ModelFigures], args: argparse.Namespace, tflm) -> str:
    meta = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "tflm_commit": args.tflm_commit,
            "tflm_build": args.tflm_build, "samples": args.samples, "tflm_lib": str(tflm.library or ""),
            "measured": "by hand, outside CI"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    for f in figures:
        row = asdict(f)
        row["tflm"].pop("outputs")
        row["engine"].pop("outputs")
        rows.append(row)
    (RESULTS / "tflm.json").write_text(json.dumps({"meta": meta, "models": rows}, indent=2) + "\n")
    text = markdown(figures, meta)
    (RESULTS / "tflm.md").write_text(text)
    return text


if __name__ == "__main__":
    main()
