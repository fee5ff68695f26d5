"""Budgets a student must meet, and the exact figures they are checked against
before any training.

The figures of a family member come from the real path on an untrained (random)
instance of its architecture: export to ONNX, our converter, int8 quantization,
then the engine compiler's lowering and memory plan (`compiled_size`). The compiled
constants and the planned arena follow from the layer shapes, the target and
`--optimize`, except for the fast-path arrays (one-multiply requantization records,
folded biases, int16-widened DSP layouts and their scratch), which a layer gets only
when its scales allow: those are counted as if every layer had them, so the figure
is what the trained model needs at most, and equal to it when every layer takes its
fast path (the common case; `tinyml prepare` checks the trained model again with the
same function and reports whether the figures are equal). The firmware's own share comes
from the board profile (`firmware_flash_bytes`, `firmware_ram_bytes`, measured).

Latency before training is an estimate: MACs x the engine's measured
instructions per MAC for the board's compile target (benchmarks/results/engine.md)
at one instruction per clock cycle; `tinyml bench` measures the real one.
"""

from __future__ import annotations

import functools
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .errors import TinymlError

if TYPE_CHECKING:
    from .boards import Board
    from .models import InputShape, StudentConfig

OPTIMIZE_CHOICES = ("speed", "size")
# Instructions per MAC of the engine on the digits CNN of benchmarks/bench_engine.py (620,736 MACs,
# conv / depthwise / dense like the students), measured on QEMU with -icount: the Cortex-M4 and generic C
# in benchmarks/results/engine-quick.md, --optimize size in engine-size.md, rv32 (QEMU virt) and
# Cortex-M0 (Thumb-1 on mps2-an385) in engine-nosimd.md; tests/test_budgets.py holds these to those files.
# The Cortex-M7 runs the same DSP code as the M4. The no-SIMD cores have no size trade (one layout).
INSTRUCTIONS_PER_MAC: dict[tuple[str, str], float] = {
    ("cortex-m4", "speed"): 1.27, ("cortex-m4", "size"): 3.02,
    ("cortex-m7", "speed"): 1.27, ("cortex-m7", "size"): 3.02,
    ("generic", "speed"): 11.27, ("generic", "size"): 11.27,
    ("rv32", "speed"): 4.94, ("rv32", "size"): 4.94,
    ("cortex-m0", "speed"): 6.32, ("cortex-m0", "size"): 6.32,
}
DEFAULT_ACCURACY_TOLERANCE = 0.005      # half a point
# How a candidate's weights are stored in flash: int8, or palettized (tinyml/palettize.py clusters the
# .tflite's weights per layer or per output channel, `compile --weights paletteN` packs them). palette2
# per layer is left out: one 4-value table for a whole layer cost digits half its accuracy
# (benchmarks/results/palette.md), and every encoding the search keeps is evaluated after training.
WEIGHT_ENCODINGS = ("int8", "palette4/layer", "palette4/channel", "palette2/channel")


def check_encoding(encoding: str) -> None:
    if encoding not in WEIGHT_ENCODINGS:
        raise TinymlError(f"unknown weight encoding '{encoding}' (choose from {', '.join(WEIGHT_ENCODINGS)})")


def compile_weights(encoding: str) -> str:
    """The compiler's --weights for an encoding ('palette4/layer' -> 'palette4')."""
    check_encoding(encoding)
    return encoding.split("/")[0]


def encode_weights(tflite: bytes, encoding: str) -> bytes:
    """The .tflite whose weights the encoding can store: itself for int8, else its weights clustered
    (tinyml.palettize) to 2^bits values per layer or output channel; still a valid int8 model."""
    weights = compile_weights(encoding)
    if weights == "int8":
        return tflite
    from .palettize import palettize_tflite

    return palettize_tflite(tflite, int(weights.removeprefix("palette")), encoding.split("/")[1]).model


def instructions_per_mac_source(target: str, optimize: str) -> str:
    """Where the instructions-per-MAC figure comes from, for the reports."""
    if target in ("cortex-m4", "cortex-m7"):
        where = "measured on QEMU's Cortex-M4" + (" (the M7 runs the same DSP code)" if target == "cortex-m7" else "")
        stored = "engine-quick.md" if optimize == "speed" else "engine-size.md"
        return f"{where}, digits CNN, --optimize {optimize}; benchmarks/results/{stored}"
    if target == "generic":
        return "measured: generic C on QEMU's Cortex-M4, digits CNN; benchmarks/results/engine-quick.md"
    if (target, optimize) in INSTRUCTIONS_PER_MAC:
        machine = "QEMU virt" if target == "rv32" else "QEMU mps2-an385 (Thumb-1 code)"
        return f"measured on {machine}, digits CNN; benchmarks/results/engine-nosimd.md"
    return f"an estimate for {target}: the generic C figure (no {target} measurement stored)"


@dataclass(frozen=True)
class Budgets:
    """What the user asks of the model on top of the board's own flash and RAM."""

    max_flash_bytes: int | None = None      # the model's flash: compiled constants
    max_ram_bytes: int | None = None        # the model's RAM: the planned arena
    max_weight_bytes: int | None = None     # int8 weights + int32 biases (as in the .tflite)
    max_macs: int | None = None
    max_latency_ms: float | None = None     # estimated on the board's clock, see module docstring
    accuracy_tolerance: float = DEFAULT_ACCURACY_TOLERANCE   # choose the smallest within this of the best
    optimize: str = "speed"

    def check(self) -> None:
        if self.optimize not in OPTIMIZE_CHOICES:
            raise TinymlError(f"unknown optimization '{self.optimize}' (choose speed or size)")
        for name in ("max_flash_bytes", "max_ram_bytes", "max_weight_bytes", "max_macs", "max_latency_ms"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise TinymlError(f"--{name.removesuffix('_bytes').replace('_', '-')} must be positive, got {value}")
        if not 0.0 <= self.accuracy_tolerance < 1.0:
            raise TinymlError(f"--accuracy-tolerance must be in [0, 100) points, got {100 * self.accuracy_tolerance:g}")


_SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024 ** 2, "MB": 1024 ** 2, "MIB": 1024 ** 2}
_COUNT_UNITS = {"": 1, "K": 1_000, "M": 1_000_000, "G": 1_000_000_000}


def parse_bytes(text: str, option: str) -> int:
    """'16KB', '16K', '16KiB' -> 16384 (KB = 1024 bytes, as the board profiles); '2048' -> 2048."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).upper() if match else ""
    if not match or unit not in _SIZE_UNITS:
        raise TinymlError(f"{option}: '{text}' is not a size (e.g. 16KB, 1.5MB, 2048)")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_count(text: str, option: str) -> int:
    """'100K' -> 100,000; '2M' -> 2,000,000; '30000' -> 30000."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]?)\s*", str(text).replace(",", "").replace("_", ""))
    unit = match.group(2).upper() if match else ""
    if not match or unit not in _COUNT_UNITS:
        raise TinymlError(f"{option}: '{text}' is not a count (e.g. 100K, 2M, 30000)")
    return int(float(match.group(1)) * _COUNT_UNITS[unit])


def instructions_per_mac(target: str, optimize: str) -> float:
    return INSTRUCTIONS_PER_MAC.get((target, optimize), INSTRUCTIONS_PER_MAC[("generic", "speed")])


def estimated_latency_ms(macs: int, board: Board, optimize: str) -> float:
    return macs * instructions_per_mac(board.compile_target, optimize) / board.clock_hz * 1e3


@dataclass
class MemberFigures:
    """Exact figures of one family member for a board, computed before training."""

    student: str
    params: int
    macs: int
    weight_bytes: int           # int8 weights + int32 biases
    tflite_bytes: int           # the int8 .tflite (what the tflm backend stores)
    constants_bytes: int        # the engine's compiled constants for the chosen --optimize (flash)
    arena_bytes: int            # the engine's planned arena (RAM)
    flash_needed: int           # constants + the board's firmware share
    ram_needed: int             # arena + the board's firmware share
    latency_ms: float           # estimate, see the module docstring
    over: list[str] = field(default_factory=list)   # budgets it breaks, one phrase each
    encoding: str = "int8"      # how the weights are stored (WEIGHT_ENCODINGS): constants count it

    @property
    def fits(self) -> bool:
        return not self.over

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fits": self.fits}


def member_figures(config: StudentConfig, input_shape: InputShape, num_classes: int, board: Board,
                   budgets: Budgets, encoding: str = "int8") -> MemberFigures:
    """The figures of an untrained instance of `config` on a board, its weights stored as
    `encoding`, checked against the budgets."""
    from . import models

    footprint = models.footprint(config, input_shape, num_classes)
    tflite = untrained_tflite(config, tuple(int(d) for d in input_shape), int(num_classes))
    return figures_of_tflite(config.name(), tflite, footprint, board, budgets, before_training=True,
                             encoding=encoding)


@functools.lru_cache(maxsize=256)
def untrained_tflite(config: StudentConfig, input_shape: InputShape, num_classes: int) -> bytes:
    """An untrained (seeded random) instance of `config` taken through export to ONNX, our converter
    and int8 quantization: the .tflite training would give, up to the weight values. The sizes do
    not depend on the calibration values, so fixed random inputs in [0, 1) calibrate it."""
    import numpy as np
    import torch

    from . import models
    from .onnx_export import export_onnx
    from .onnx_to_tf.converter import convert_onnx
    from .quantize import quantize_int8

    torch.manual_seed(0)
    network = models.build_student(config, input_shape, num_classes).eval()
    calibration = np.random.default_rng(0).random((8, *input_shape), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="tinyml-budget-") as tmp:
        work = Path(tmp)
        export_onnx(network, input_shape, work / "model.onnx", sample=calibration[:4])
        quantized = quantize_int8(convert_onnx(work / "model.onnx"), calibration, work / "model.tflite")
        return quantized.path.read_bytes()


def figures_of_tflite(name: str, tflite: bytes, footprint: Any, board: Board, budgets: Budgets,
                      before_training: bool = False, encoding: str = "int8") -> MemberFigures:
    """The figures of an int8 .tflite on a board. before_training: of an untrained instance,
    so the value-dependent fast-path arrays are all counted (compiled_size(all_fast_paths=True))
    and the arena is the larger of both layouts; after training: the model as compiled.
    encoding: the weights stored as WEIGHT_ENCODINGS says (the .tflite is clustered here first
    when it is not already), so flash counts the packed indices and tables."""
    tflite_bytes, constants, arena = _encoded_sizes(tflite, board.compile_target, budgets.optimize, encoding,
                                                    before_training)
    figures = MemberFigures(
        student=name, params=footprint.params, macs=footprint.macs, weight_bytes=footprint.weight_bytes,
        tflite_bytes=tflite_bytes, constants_bytes=constants, arena_bytes=arena,
        flash_needed=constants + board.firmware_flash_bytes, ram_needed=arena + board.firmware_ram_bytes,
        latency_ms=round(estimated_latency_ms(footprint.macs, board, budgets.optimize), 4), encoding=encoding,
    )
    figures.over = budget_violations(figures, board, budgets)
    return figures


@functools.lru_cache(maxsize=1024)
def _encoded_sizes(tflite: bytes, target: str, optimize: str, encoding: str,
                   before_training: bool) -> tuple[int, int, int]:
    """(.tflite bytes after encoding, compiled constants, arena) of figures_of_tflite. Cached: they
    depend on nothing else, and the search sizes the same untrained architecture again for the family
    table and for every budget asked in one process (clustering and compiling are the slow part)."""
    from .compiler import compiled_size

    weights = compile_weights(encoding)
    if weights != "int8":
        tflite = encode_weights(tflite, encoding)
    compiled = compiled_size(tflite, target, optimize, weights=weights)
    constants, arena = compiled.constants_bytes, compiled.arena_bytes
    if before_training:
        bound = compiled_size(tflite, target, optimize, all_fast_paths=True, weights=weights)
        constants, arena = max(constants, bound.constants_bytes), max(arena, bound.arena_bytes)
    return len(tflite), constants, arena


# (label, figure of a member, limit from board and budgets, unit) for every budget that applies.
def _limits(board: Board, budgets: Budgets) -> list[tuple[str, Callable[[MemberFigures], float], float, str]]:
    limits: list[tuple[str, Callable[[MemberFigures], float], float, str]] = [
        (f"flash on {board.name} (model + {board.firmware_flash_bytes:,} B of firmware)",
         lambda f: f.flash_needed, board.flash_bytes, "B"),
        (f"RAM on {board.name} (arena + {board.firmware_ram_bytes:,} B of firmware)",
         lambda f: f.ram_needed, board.ram_bytes, "B"),
    ]
    if budgets.max_flash_bytes is not None:
        limits.append(("model flash (--max-flash)", lambda f: f.constants_bytes, budgets.max_flash_bytes, "B"))
    if budgets.max_ram_bytes is not None:
        limits.append(("model RAM (--max-ram)", lambda f: f.arena_bytes, budgets.max_ram_bytes, "B"))
    if budgets.max_weight_bytes is not None:
        limits.append(("int8 weights (--max-weight-kb)", lambda f: f.weight_bytes, budgets.max_weight_bytes, "B"))
    if budgets.max_macs is not None:
        limits.append(("MACs (--max-macs)", lambda f: f.macs, budgets.max_macs, "MACs"))
    if budgets.max_latency_ms is not None:
        limits.append((f"estimated latency at {board.clock_hz / 1e6:g} MHz (--max-latency-ms)",
                       lambda f: f.latency_ms, budgets.max_latency_ms, "ms"))
    return limits


def _amount(value: float, unit: str) -> str:
    return f"{value:,.3f} ms" if unit == "ms" else f"{int(value):,} {unit}"


def budget_violations(figures: MemberFigures, board: Board, budgets: Budgets) -> list[str]:
    return [f"{label}: needs {_amount(value(figures), unit)}, has {_amount(limit, unit)}"
            for label, value, limit, unit in _limits(board, budgets) if value(figures) > limit]


def nothing_fits_message(family: list[MemberFigures], board: Board, budgets: Budgets) -> str:
    """One line: for every budget some member breaks, the smallest figure the family reaches."""
    parts = []
    for label, value, limit, unit in _limits(board, budgets):
        best = min(family, key=value)
        if value(best) > limit:
            parts.append(f"{label} is {_amount(limit, unit)}, the smallest reachable is "
                         f"{_amount(value(best), unit)} ({best.student})")
    if not parts:   # each budget is met by some member, never all by one
        smallest = family[0]
        parts.append(f"each budget is met by some student but none meets all; the smallest, {smallest.student}, "
                     f"breaks {'; '.join(smallest.over)}")
    return f"no student fits {board.name} within the budgets: {'; '.join(parts)}"


def largest_fitting_student(board: Board, input_shape: InputShape, num_classes: int,
                            budgets: Budgets | None = None) -> StudentConfig:
    """The largest member of the student family whose figures fit the board and budgets (sized
    from the largest down); one line naming the smallest reachable figures when none does."""
    from . import models

    budgets = budgets or Budgets()
    sized: list[MemberFigures] = []
    for config in reversed(models.student_family(input_shape)):
        figures = member_figures(config, input_shape, num_classes, board, budgets)
        if figures.fits:
            return config
        sized.insert(0, figures)
    raise TinymlError(nothing_fits_message(sized, board, budgets))


def choose_smallest_within_tolerance(candidates: list[tuple[MemberFigures, float]], tolerance: float
                                     ) -> tuple[MemberFigures, float]:
    """Among fitting (figures, validation accuracy) pairs, ordered small -> large: the first
    whose accuracy is within `tolerance` of the best one. Returns it and the best accuracy."""
    if not candidates:
        raise TinymlError("no fitting student to choose from")
    best = max(accuracy for _, accuracy in candidates)
    for figures, accuracy in candidates:
        if accuracy >= best - tolerance - 1e-12:
            return figures, best
    raise AssertionError("unreachable: the best candidate is within any tolerance of itself")
