"""`tinyml demo`: the whole chain on the emulated STM32F405, end to end.

prepare (digits student) -> compile (interpreter-free C, Cortex-M4 path) ->
build the firmware -> boot QEMU -> bench the whole test split over the serial
link -> reports. This module only orders the stages; each is its own module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .boards import Board, load_board
from .errors import TinymlError

if TYPE_CHECKING:
    from .host.build import TflmSource


@dataclass
class DemoResult:
    out_dir: Path
    prepare: dict[str, Any]
    bench: dict[str, Any]
    firmware: dict[str, Any]
    wall_seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)


def compiled_dir_for(model_dir: Path, board: Board) -> Path:
    """Where the compiled C of a prepare/emit directory goes for a board's target."""
    return Path(model_dir) / f"compiled-{board.compile_target}"


def ensure_compiled(model_dir: Path, board: Board, profile: bool = False, optimize: str = "speed") -> Path:
    """The compiled model for the board: model_dir itself when it holds model.c,
    else model_dir/model.tflite compiled for the board's target (optimize: the
    compiler's speed / size trade, `tinyml compile --optimize`)."""
    from .compiler import compile_tflite

    model_dir = Path(model_dir)
    if (model_dir / "model.c").is_file():
        return model_dir
    tflite = model_dir / "model.tflite"
    if not tflite.is_file():
        raise TinymlError(f"{model_dir} holds neither model.c (tinyml compile) nor model.tflite (tinyml prepare/emit)")
    out = compiled_dir_for(model_dir, board)
    compile_tflite(tflite, out, target=board.compile_target, profile=profile, optimize=optimize)
    return out


def run_demo(out_dir: Path, board_name: str = "stm32f405", epochs: int | None = None, samples: int | None = None,
             progress: bool = True, optimize: str = "speed", tflm: "TflmSource | None" = None) -> DemoResult:
    """tflm given: the firmware runs the emitted model on TFLite-Micro instead of the compiled C."""
    from .host.build import build_firmware
    from .host.emulator import start_emulator
    from .host.harness import run_bench
    from .prepare import PrepareOptions, prepare

    started = time.perf_counter()
    stages: dict[str, float] = {}
    board = load_board(board_name)
    if not board.emulator:
        raise TinymlError(f"the demo runs on an emulated board; {board.name} has no emulator")
    out_dir = Path(out_dir)
    model_dir = out_dir / "model"

    t = time.perf_counter()
    prepared = prepare(PrepareOptions(dataset="digits", board=board.name, out=model_dir, epochs=epochs,
                                      progress=progress, sweep=False))
    stages["prepare"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    if tflm is None:
        image = build_firmware(board, ensure_compiled(model_dir, board, optimize=optimize), out_dir / "build")
    else:
        image = build_firmware(board, model_dir, out_dir / "build", backend="tflm", tflm=tflm)
    stages["compile_build"] = round(time.perf_counter() - t, 2)
    if progress:
        print(f"[demo] firmware {image.path.name}: flash {image.flash_bytes:,} B, RAM {image.ram_bytes:,} B", flush=True)

    t = time.perf_counter()
    emulated = start_emulator(board, image)
    try:
        if progress:
            print(f"[demo] {board.name} emulated by QEMU on {emulated.port}", flush=True)
        bench = run_bench(emulated.port, model_dir, out_dir / "bench", baud=board.baud, samples=samples,
                          progress=progress)
    finally:
        emulated.stop()
    stages["bench"] = round(time.perf_counter() - t, 2)
    firmware = {"elf": str(image.path), "flash_bytes": image.flash_bytes, "ram_bytes": image.ram_bytes,
                "text_bytes": image.text_bytes}
    return DemoResult(out_dir=out_dir, prepare=prepared.report, bench=bench.report, firmware=firmware,
                      wall_seconds=round(time.perf_counter() - started, 2), stage_seconds=stages)
