"""`tinyml prepare`'s search under budgets: width/depth, prune ratio and weight encoding.

Before any training every candidate is sized on the board (tinyml.budgets: an untrained
instance of the architecture exported, quantized, its weights encoded and compiled for the
board's target): family members x prune ratios x weight encodings. Candidates that break a
budget are dropped there; when none is left, one line names the smallest reachable figure
of each broken budget and nothing is trained.

After training (tinyml/prepare.py trains the chosen architecture and, pruned from it, at
most a few more pruned variants), each trained variant's int8 model is encoded in every
encoding that fits (palettized from the trained int8 weights, not retrained) and evaluated:
host TFLite-Micro accuracy on validation (what the choice uses) and test (reported), the
compiled flash and arena, and the instructions of one inference, measured on the board's
emulator where it has one (the firmware built as `tinyml flash` builds it, a few
validation samples over the serial protocol, outputs checked against TFLite-Micro), else
MACs x the target's instructions per MAC, labelled as an estimate.

The choice: the candidates within --accuracy-tolerance of the best validation accuracy,
of them the one with the fewest instructions, then the least flash; with --max-macs the only
budget, the best validation accuracy (accuracy_first). tinyml/prepare.py then trains the
chosen route again on train + validation (the final fit). The Pareto front over
(validation accuracy, weight flash, instructions) goes into the report.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .budgets import (WEIGHT_ENCODINGS, Budgets, MemberFigures, check_encoding, compile_weights, encode_weights,
                      figures_of_tflite, instructions_per_mac, member_figures, nothing_fits_message)
from .errors import TinymlError

if TYPE_CHECKING:
    from .boards import Board
    from .models import InputShape, StudentConfig

# Prune ratios sized for every member (and the --max-macs ratio of each member); 0.95 keeps the
# smallest reachable figures honest (every layer at its 4-channel floor).
SEARCH_PRUNE_RATIOS = (0.5, 0.7, 0.85, 0.95)
DEFAULT_PRUNED_VARIANTS = 2        # trained beside the chosen architecture, pruned from it
SAME_SHAPE_ROUTES = 1              # wider members trained and pruned to the chosen shape, beside it
INSTRUCTION_SAMPLES = 4            # validation samples run on the emulator per candidate


def check_weights_option(weights: str) -> None:
    """`prepare --weights`: 'auto' (the search chooses) or one encoding."""
    if weights != "auto":
        check_encoding(weights)


def encodings_for(weights: str) -> tuple[str, ...]:
    return WEIGHT_ENCODINGS if weights == "auto" else (weights,)


@dataclass
class SizedCandidate:
    """One architecture (a family member, maybe pruned) with one weight encoding, sized before training."""

    member: str                 # the family member trained
    ratio: float | None         # prune ratio applied to it (None: unpruned)
    student: str                # the architecture after pruning
    figures: MemberFigures      # figures.student is the candidate's label
    pruning_source: bool = False    # a wider member sized only as a route to a family shape

    @property
    def encoding(self) -> str:
        return self.figures.encoding

    @property
    def fits(self) -> bool:
        return self.figures.fits

    def as_dict(self) -> dict[str, Any]:
        return {"member": self.member, "ratio": self.ratio, "architecture": self.student, **self.figures.as_dict()}


def architecture_label(student: str, member: str, ratio: float | None) -> str:
    return student if ratio is None else f"{student} ({member} pruned {ratio:g})"


def candidate_label(student: str, member: str, ratio: float | None, encoding: str) -> str:
    return f"{architecture_label(student, member, ratio)} {encoding}"


def size_candidates(family: list[StudentConfig], input_shape: InputShape, num_classes: int, board: Board,
                    budgets: Budgets, encodings: tuple[str, ...], fixed_ratio: float | None,
                    say: Callable[[str], None],
                    pruning_sources: list[StudentConfig] | None = None) -> list[SizedCandidate]:
    """Every member x prune ratio x encoding sized before training: unpruned, SEARCH_PRUNE_RATIOS and
    the ratio that meets --max-macs; only `fixed_ratio` when --prune gives one. `pruning_sources`
    (tinyml.models.pruning_sources) are sized only pruned, after the family: never architectures of
    their own, only other routes to a shape the family reaches (same_shape_routes)."""
    from .prune import config_at_ratio, ratio_for_macs

    sources = [] if fixed_ratio is not None else list(pruning_sources or [])
    sized: list[SizedCandidate] = []
    for config in list(family) + sources:
        member_ratios: list[float | None] = [fixed_ratio]
        if fixed_ratio is None:
            extra = set(SEARCH_PRUNE_RATIOS)
            if budgets.max_macs is not None:
                needed = ratio_for_macs(config, input_shape, num_classes, budgets.max_macs)
                if needed is not None:
                    extra.add(needed)
            member_ratios += sorted(extra)
        if config in sources:           # never a student of its own
            member_ratios = member_ratios[1:]
        seen: set[str] = set()
        for ratio in member_ratios:
            arch = config if ratio is None else config_at_ratio(config, input_shape, num_classes, ratio)
            if arch.name() in seen:     # a steeper ratio that keeps the same channels (4 a layer at least)
                continue
            seen.add(arch.name())
            row = []
            for encoding in encodings:
                figures = member_figures(arch, input_shape, num_classes, board, budgets, encoding=encoding)
                figures = replace(figures, student=candidate_label(arch.name(), config.name(), ratio, encoding))
                sized.append(SizedCandidate(config.name(), ratio, arch.name(), figures, config in sources))
                row.append(f"{encoding} {figures.constants_bytes:,} B{'' if figures.fits else ' (over)'}")
            say(f"  {architecture_label(arch.name(), config.name(), ratio)}: {sized[-1].figures.macs:,} MACs; "
                f"flash {', '.join(row)}")
    return sized


def check_reachable(sized: list[SizedCandidate], board: Board, budgets: Budgets) -> None:
    """Nothing fits: one line naming, for each broken budget, the smallest figure any candidate reaches."""
    if not any(candidate.fits for candidate in sized):
        raise TinymlError(nothing_fits_message([c.figures for c in sized], board, budgets))


@dataclass
class Architecture:
    """A trainable architecture the sweep compares: a member, maybe pruned, with its best fitting sizing."""

    member: str
    ratio: float | None
    student: str
    figures: MemberFigures      # the fitting encoding with the least flash (int8 when it fits)


def fitting_architectures(sized: list[SizedCandidate]) -> list[Architecture]:
    """What the family sweep trains briefly: every member that fits unpruned in some encoding, and
    for the members that fit only pruned, their gentlest fitting ratio (the most capacity left);
    ordered small -> large by parameters."""
    by_arch: dict[tuple[str, float | None], list[SizedCandidate]] = {}
    for candidate in sized:
        if candidate.fits and not candidate.pruning_source:     # those only reach family shapes
            by_arch.setdefault((candidate.member, candidate.ratio), []).append(candidate)
    chosen: list[Architecture] = []
    for member in dict.fromkeys(c.member for c in sized):
        ratios = sorted((r for m, r in by_arch if m == member), key=lambda r: -1.0 if r is None else r)
        if not ratios:
            continue
        ratio = ratios[0]
        options = by_arch[(member, ratio)]
        best = next((c for c in options if c.encoding == "int8"), None) or min(
            options, key=lambda c: c.figures.constants_bytes)
        chosen.append(Architecture(member, ratio, best.student, best.figures))
    # One architecture per shape: the sweep trains each from scratch, so a shape reached both by a
    # member and by pruning a wider one is the same dense student there (the routes differ only
    # after the sweep: same_shape_routes). Kept: the first member in family order (the narrowest).
    unique: dict[str, Architecture] = {}
    for architecture in chosen:
        unique.setdefault(shape_of(architecture.student), architecture)
    return sorted(unique.values(), key=lambda a: a.figures.params)


def shape_of(student: str) -> str:
    """One name per network: with explicit channels (-c...) the width multiplier no longer counts,
    so w2.00-d3 pruned 0.4 and w4.00-d3 pruned 0.7 (both -c8.8.20.20) are one shape."""
    from .models import StudentConfig

    config = StudentConfig.parse(student)
    return config.name() if config.channels is None else replace(config, width=1.0).name()


@dataclass(frozen=True)
class Route:
    """How an architecture is reached: its member trained, then pruned at ratio (None: as trained)."""

    member: str
    ratio: float | None


def same_shape_routes(sized: list[SizedCandidate], student: str, chosen: Route, count: int) -> list[Route]:
    """Other fitting routes to the chosen architecture's very shape: a wider member trained, then
    pruned to it with distillation fine-tuning (on digits, c40.52 pruned 0.3 = c28.36). Trained
    beside the chosen route; the validation split decides between them. In sizing order (the
    family small -> large, then the pruning sources), at most `count`."""
    routes: list[Route] = []
    for candidate in sized:
        route = Route(candidate.member, candidate.ratio)
        if shape_of(candidate.student) == shape_of(student) and candidate.fits and route != chosen \
                and route not in routes:
            routes.append(route)
    return routes[:count]


def pruned_variant_ratios(sized: list[SizedCandidate], member: str, base_ratio: float | None,
                          count: int) -> list[float]:
    """The further prune ratios of the chosen member that fit in some encoding (the gentlest first)."""
    floor = base_ratio or 0.0
    ratios = sorted({c.ratio for c in sized if c.member == member and c.fits and c.ratio is not None
                     and c.ratio > floor})
    return ratios[:count]


def fitting_encodings(sized: list[SizedCandidate], member: str, ratio: float | None) -> list[str]:
    return [c.encoding for c in sized if c.member == member and c.ratio == ratio and c.fits]


# ---------------------------------------------------------------- after training


@dataclass
class Evaluated:
    """One trained variant in one encoding, measured."""

    label: str
    member: str
    ratio: float | None
    student: str
    encoding: str
    quantization: str                   # "ptq" or "qat"
    val_accuracy: float                 # host TFLite-Micro, int8 (encoded) model
    test_accuracy: float
    constants_bytes: int                # compiled flash with this encoding (what --max-flash counts)
    arena_bytes: int
    macs: int
    instructions: float                 # per inference: measured (median) or estimated
    instructions_source: str            # "measured on <board>'s emulator" or "estimate: ..."
    device_agreement: float | None      # emulator outputs == host TFLite-Micro, on the measured samples
    fits: bool
    over: list[str] = field(default_factory=list)
    front: bool = False
    chosen: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def dominates(a: Evaluated, b: Evaluated) -> bool:
    """a is at least as good as b on accuracy, flash and instructions, and better on one."""
    at_least = (a.val_accuracy >= b.val_accuracy and a.constants_bytes <= b.constants_bytes
                and a.instructions <= b.instructions)
    better = (a.val_accuracy > b.val_accuracy or a.constants_bytes < b.constants_bytes
              or a.instructions < b.instructions)
    return at_least and better


def mark_front(rows: list[Evaluated]) -> None:
    for row in rows:
        row.front = not any(dominates(other, row) for other in rows if other is not row)


def choose(rows: list[Evaluated], tolerance: float, accuracy_first: bool = False) -> Evaluated:
    """Among the fitting rows (of the routes to one architecture and encoding, the best on
    validation): within `tolerance` of the best validation accuracy, the fewest instructions,
    then the least flash, then the best accuracy. `accuracy_first` (the budgets name neither
    flash nor time, see accuracy_first): the best validation accuracy, then the fewest
    instructions, then the least flash, of the int8 rows and the palettes whose int8 model does
    not fit."""
    fitting = [row for row in rows if row.fits]
    if not fitting:
        raise TinymlError("no trained candidate meets the budgets: " + "; ".join(
            f"{row.label} breaks {', '.join(row.over)}" for row in rows))
    # Routes to one architecture in one encoding cost the same on the board (their measured
    # instructions may differ by a few): of them only the best on validation competes.
    best_route: dict[tuple[str, str], Evaluated] = {}
    for row in fitting:
        key = (shape_of(row.student), row.encoding)
        if key not in best_route or row.val_accuracy > best_route[key].val_accuracy:
            best_route[key] = row
    fitting = list(best_route.values())
    if accuracy_first:
        # A palette is its int8 model's weights clustered: it cannot know more than that model, so
        # scoring above it on validation is noise (on digits' seed 4 one image of 270 chose
        # palette4/layer at 1.5x the instructions); where the int8 model fits, it stands for both.
        int8_fits = {shape_of(row.student) for row in fitting if row.encoding == "int8"}
        fitting = [row for row in fitting if row.encoding == "int8" or shape_of(row.student) not in int8_fits]
    best = max(row.val_accuracy for row in fitting)
    near = [row for row in fitting if row.val_accuracy >= best - (0.0 if accuracy_first else tolerance) - 1e-12]
    picked = min(near, key=lambda row: (row.instructions, row.constants_bytes, -row.val_accuracy))
    picked.chosen = True
    return picked


def accuracy_first(budgets: Budgets) -> bool:
    """--max-macs is the only budget: every fitting candidate meets what the user asked for, and
    fewer instructions or less flash than that buy nothing asked for. Trading accuracy for them
    within --accuracy-tolerance then cost digits' seed 0 its target: c16.16 at 98.15% validation
    was kept over c28.36 at 98.52% (one image of 270 apart) and scored 97.50% on the device
    (benchmarks/results/tinydigits.md)."""
    others = (budgets.max_flash_bytes, budgets.max_ram_bytes, budgets.max_weight_bytes, budgets.max_latency_ms)
    return budgets.max_macs is not None and all(value is None for value in others)


@dataclass
class InstructionCount:
    per_inference: float
    source: str
    agreement: float | None
    samples: int


def count_instructions(board: Board, tflite: bytes, weights: str, optimize: str, inputs: np.ndarray,
                       expected: np.ndarray, macs: int, work: Path) -> InstructionCount:
    """Instructions of one inference: measured on the board's emulator (its firmware, built as
    `tinyml flash` builds it, running the model compiled with `weights`), median over `inputs`;
    without an emulator, MACs x the target's instructions per MAC (an estimate)."""
    if not can_measure_on(board):
        per_mac = instructions_per_mac(board.compile_target, optimize)
        return InstructionCount(macs * per_mac, f"estimate: {macs:,} MACs x {per_mac} instructions/MAC "
                                f"({board.name} has no emulator)", None, 0)
    from .compiler import compile_tflite
    from .host.build import build_firmware
    from .host.session import BoardSession
    from .tflite_graph import load_tflite

    work.mkdir(parents=True, exist_ok=True)
    model = work / "model.tflite"
    model.write_bytes(tflite)
    compiled = work / "compiled"        # one path for every candidate: the firmware build stays incremental
    shutil.rmtree(compiled, ignore_errors=True)
    compile_tflite(model, compiled, target=board.compile_target, optimize=optimize, weights=weights)
    image = build_firmware(board, compiled, work / "build")
    with BoardSession.boot(board, image, expected_sha256=load_tflite(tflite).sha256) as session:
        results = sorted(session.link.infer([(i, sample.tobytes()) for i, sample in enumerate(inputs)]),
                         key=lambda r: r.index)
    latencies = [float(r.latency) for r in results]
    agreement = float(np.mean([r.output == expected[r.index].tobytes() for r in results]))
    return InstructionCount(statistics.median(latencies), f"measured on {board.name}'s emulator (median of "
                            f"{len(results)} inferences)", agreement, len(results))


def can_measure_on(board: Board) -> bool:
    """An emulated board built with the project's CMake: the firmware runs and counts instructions."""
    build = board.build or {}
    port = build.get("port") if build.get("system") == "cmake" else build.get("cmake_port")
    return bool(board.emulator) and bool(port) and board.latency_unit == "instructions"


def evaluate_variant(label_student: str, member: str, ratio: float | None, quantization: str, tflite: bytes,
                     encodings: list[str], splits: Any, board: Board, budgets: Budgets, footprint: Any,
                     work: Path, say: Callable[[str], None]) -> list[tuple[Evaluated, bytes]]:
    """The trained int8 variant in each encoding: accuracy on host TFLite-Micro (validation, test),
    compiled figures after training, instructions. Returns each row with its encoded .tflite."""
    from .verify import verify_tflite

    rows = []
    for encoding in encodings:
        encoded = encode_weights(tflite, encoding)
        val = verify_tflite(encoded, splits.x_val, splits.y_val)
        test = verify_tflite(encoded, splits.x_test, splits.y_test).int8_accuracy
        figures = figures_of_tflite(label_student, encoded, footprint, board, budgets, encoding=encoding)
        probe = val.inputs[:INSTRUCTION_SAMPLES]
        count = count_instructions(board, encoded, compile_weights(encoding), budgets.optimize, probe,
                                   val.outputs[:INSTRUCTION_SAMPLES], figures.macs, work / "device")
        over = list(figures.over)
        if budgets.max_latency_ms is not None and count.samples:
            # Measured now: the budget is checked against the board's instructions at its clock, not the estimate.
            over = [o for o in over if "--max-latency-ms" not in o]
            measured_ms = count.per_inference / board.clock_hz * 1e3
            if measured_ms > budgets.max_latency_ms:
                over.append(f"latency measured on the emulator at {board.clock_hz / 1e6:g} MHz (--max-latency-ms): "
                            f"needs {measured_ms:,.3f} ms, has {budgets.max_latency_ms:,.3f} ms")
        row = Evaluated(candidate_label(label_student, member, ratio, encoding), member, ratio, label_student,
                        encoding, quantization, val.int8_accuracy, test, figures.constants_bytes,
                        figures.arena_bytes, figures.macs, count.per_inference, count.source, count.agreement,
                        not over, over)
        agreement = "" if count.agreement is None else f", outputs = TFLite-Micro on {count.agreement:.0%}"
        say(f"  {row.label}: validation {row.val_accuracy:.2%}, flash {row.constants_bytes:,} B, "
            f"{row.instructions:,.0f} instructions ({'measured' if count.samples else 'estimated'}{agreement})"
            f"{'' if row.fits else ': over ' + '; '.join(row.over)}")
        rows.append((row, encoded))
    return rows


def scratch_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="tinyml-search-")
