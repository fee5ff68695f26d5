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

from .boards import load_board
from .errors import TinymlError
from .progress import say
from .host.build import compiled_dir_for, ensure_compiled  # noqa: F401  (their owner is the board link)

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


def run_demo(out_dir: Path, board_name: str = "stm32f405", epochs: int | None = None, samples: int | None = None,
             progress: bool = True, optimize: str = "speed", tflm: "TflmSource | None" = None) -> DemoResult:
    """tflm given: the firmware runs the emitted model on TFLite-Micro instead of the compiled C."""
    from .host.session import BoardSession
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

    # One board session: compile, build, boot QEMU, check the model hash, bench, always stop.
    t = time.perf_counter()
    with BoardSession.build_and_boot(board, model_dir, out_dir / "build", optimize=optimize,
                                     backend="tflm" if tflm else "engine", tflm=tflm,
                                     progress=progress) as session:
        bench = session.bench(model_dir, out_dir / "bench", samples=samples, fresh=True, progress=progress)
        image = session.image
    assert image is not None
    stages["compile_build"] = session.stage_seconds.get("build", 0.0)
    stages["bench"] = round(time.perf_counter() - t - stages["compile_build"], 2)
    firmware = {"elf": str(image.path), "flash_bytes": image.flash_bytes, "ram_bytes": image.ram_bytes,
                "text_bytes": image.text_bytes}
    return DemoResult(out_dir=out_dir, prepare=prepared.report, bench=bench.report, firmware=firmware,
                      wall_seconds=round(time.perf_counter() - started, 2), stage_seconds=stages)
