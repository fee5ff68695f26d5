"""`tinyml prepare`: dataset -> teacher -> distilled student -> int8 .tflite ->
checked on host TFLite-Micro -> C artifacts and report, in one directory.

Each step is a stage module; this one only orders them, times them and checks
that the result fits the board. The output directory is written atomically.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .boards import Board
from .budgets import (Budgets, MemberFigures, choose_smallest_within_tolerance, compile_weights, figures_of_tflite,
                      instructions_per_mac, instructions_per_mac_source, member_figures,
                      nothing_fits_message)
from .errors import TinymlError
from .fsutil import atomic_output_dir
from .progress import say


@dataclass
class PrepareOptions:
    dataset: str
    board: str
    out: Path
    kd: str = "hinton"
    teacher: str | None = None          # .pt state dict or .onnx; None trains one
    teacher_arch: str | None = None     # architecture name for a .pt teacher
    epochs: int | None = None           # student epochs; None = the dataset's default
    teacher_epochs: int | None = None
    seed: int = 0
    max_weight_bytes: int | None = None  # extra cap on int8 weights (e.g. 64 KB)
    sweep: bool = True                  # train the fitting students briefly and choose by accuracy
    progress: bool = True
    budgets: Budgets = field(default_factory=Budgets)   # flash/RAM/MACs/latency, tolerance, --optimize
    qat: str = "auto"                   # quantization-aware training: "auto" | "on" | "off" (tinyml.qat_select)
    qat_epochs: int | None = None       # None = half the student's epochs
    prune: float | None = None          # share of channels removed after distillation (tinyml/prune.py)
    weights: str = "auto"               # weight encoding: "auto" (chosen by the search) or one of WEIGHT_ENCODINGS
    search: bool | None = None          # tinyml/search.py; None: when a budget or an encoding is given
    pruned_variants: int = 2            # pruned variants trained beside the chosen architecture (search)
    student: str | None = None          # this one student (a StudentConfig name) instead of the family
    rotate_degrees: float = 0.0         # training augmentation: random rotations (distill.TrainConfig)
    final_fit: str = "swa"              # search, after the choice: FINAL_FIT_MODES


@dataclass
class PrepareResult:
    out_dir: Path
    report: dict[str, Any]
    files: list[str] = field(default_factory=list)


def check_fits_board(board: Board, flash_bytes: int, arena_bytes: int) -> None:
    """The model's flash (compiled constants) and arena must fit what the board leaves for it."""
    board.check_model_fits(flash_bytes, arena_bytes)


def _say(options: PrepareOptions, text: str) -> None:
    if options.progress:
        say("prepare", text)


def size_family(options: PrepareOptions, board: Board, input_shape: tuple[int, int, int], num_classes: int,
                budgets: Budgets) -> list[MemberFigures]:
    """Figures of the family members before any training (see tinyml.budgets), small -> large.
    Without a sweep only the largest fitting student is wanted: members are sized from the
    largest down until one fits (all of them when none does, for the error)."""
    from . import models

    _say(options, f"sizing the student family for {board.name} ({board.compile_target}, --optimize "
                  f"{budgets.optimize}): untrained instances exported, quantized and compiled")
    family = ([models.StudentConfig.parse(options.student)] if options.student
              else models.student_family(input_shape))
    if options.sweep:
        return [_size_member(options, config, input_shape, num_classes, board, budgets) for config in family]
    figures = []
    for config in reversed(family):
        figures.insert(0, _size_member(options, config, input_shape, num_classes, board, budgets))
        if figures[0].fits:
            break
    return figures


def _size_member(options: PrepareOptions, config: Any, input_shape: tuple[int, int, int], num_classes: int,
                 board: Board, budgets: Budgets) -> MemberFigures:
    member = member_figures(config, input_shape, num_classes, board, budgets)
    _say(options, f"  {member.student}: {member.constants_bytes:,} B constants (+{board.firmware_flash_bytes:,} "
                  f"firmware), {member.arena_bytes:,} B arena (+{board.firmware_ram_bytes:,}), "
                  f"{member.macs:,} MACs, ~{member.latency_ms:.2f} ms: "
                  f"{'fits' if member.fits else 'over: ' + '; '.join(member.over)}")
    return member


def _prune_to_mac_budget(options: PrepareOptions, family: list[MemberFigures], input_shape: tuple[int, int, int],
                         num_classes: int, budgets: Budgets) -> tuple[list[MemberFigures], float, str] | None:
    """--max-macs met by pruning when no member meets it unpruned (and no --prune ratio is given):
    the members that break only the MAC budget, the one to prune and its ratio (tinyml/prune.py).
    None when pruning cannot help (another budget is broken too)."""
    from .prune import plan_for_macs

    if budgets.max_macs is None or options.prune is not None:
        return None
    only_macs = [m for m in family if m.over and all(o.startswith("MACs (--max-macs)") for o in m.over)]
    if not only_macs:
        return None
    plan = plan_for_macs([m.student for m in only_macs], input_shape, num_classes, budgets.max_macs)
    _say(options, f"no student meets --max-macs {budgets.max_macs:,} unpruned: {plan.student} pruned at ratio "
                  f"{plan.ratio:g} has {plan.macs_after:,} MACs")
    member = next(m for m in only_macs if m.student == plan.student)
    return [member], plan.ratio, "--max-macs"


def _search_on(options: PrepareOptions, budgets: Budgets) -> bool:
    """The search (tinyml/search.py) runs when asked, or when a budget or a weight encoding is given."""
    if options.search is not None:
        return options.search
    given = (budgets.max_flash_bytes, budgets.max_ram_bytes, budgets.max_weight_bytes, budgets.max_macs,
             budgets.max_latency_ms)
    return any(value is not None for value in given) or options.weights not in ("auto", "int8")


def _prune_and_finetune(options: PrepareOptions, splits: Any, teacher: Any, distilled: Any, config: Any,
                        ratio: float, source: str, epochs: int, keep: str = "best",
                        average_share: float = 0.0) -> tuple[Any, dict[str, Any], Any]:
    """Prune the distilled student (tinyml/prune.py) and fine-tune it with the teacher:
    (the trained run, the report's pruning section, the smaller student's config)."""
    from . import distill, models
    from .prune import prune_student

    before_accuracy = distill.evaluate(distilled.model, splits.x_test, splits.y_test)
    _say(options, f"pruning {config.name()}: {ratio:g} of the channels of every layer ({source})")
    pruned = prune_student(distilled.model, config, splits.input_shape, splits.num_classes, ratio)
    _say(options, f"  {pruned.student}: {pruned.macs_before:,} -> {pruned.macs_after:,} MACs, "
                  f"{pruned.params_before:,} -> {pruned.params_after:,} params")
    pruned_accuracy = distill.evaluate(pruned.model, splits.x_test, splits.y_test)
    # Fine-tuning starts from the pruned weights (initialize=False), distilled from the same teacher,
    # at the full one-cycle learning rate: on digits a third of it left w4.00-d4 at ratio 0.5 / 0.7 on
    # 98.61% / 92.22% float, the full rate on 98.89% / 95.56% (magnitude pruning leaves the network
    # near chance, 29% / 10%: it needs retraining more than a gentle nudge).
    finetune = distill.TrainConfig(epochs=epochs, seed=options.seed, kd=options.kd,
                                  rotate_degrees=options.rotate_degrees, keep=keep, average_share=average_share)
    _say(options, f"fine-tuning {pruned.student} ({options.kd}, {epochs} epochs)")
    tuned = distill.train_student(pruned.model, splits, finetune, teacher=teacher if options.kd != "none" else None,
                                  progress=options.progress, initialize=False)
    pruning = {**pruned.as_dict(), "source": source, "student_before": config.name(),
               "fine_tune_epochs": epochs, "fine_tune_lr": finetune.lr,
               "float_accuracy_before": before_accuracy, "float_accuracy_pruned_not_tuned": pruned_accuracy,
               "float_accuracy_after": distill.evaluate(tuned.model, splits.x_test, splits.y_test)}
    return tuned, pruning, models.StudentConfig.parse(pruned.student)


def _quantize(options: PrepareOptions, splits: Any, teacher: Any, student: Any, directory: Path,
              student_epochs: int) -> tuple[Any, Any]:
    """ONNX export, our converter, full int8, checked on host TFLite-Micro, then PTQ or QAT
    (tinyml/qat_select.py): directory/model.onnx and model.tflite hold the kept model.
    Returns (the export's result, the QuantizationChoice)."""
    from . import distill
    from .onnx_export import export_onnx
    from .onnx_to_tf.converter import convert_onnx
    from .qat_select import choose_quantization, default_qat_epochs
    from .quantize import quantize_int8
    from .verify import verify_tflite

    _say(options, "exporting ONNX, converting to TensorFlow and quantizing to full int8")
    exported = export_onnx(student, splits.input_shape, directory / "model.onnx", sample=splits.x_val[:32])
    quantized = quantize_int8(convert_onnx(directory / "model.onnx"), splits.x_train, directory / "model.tflite")
    _say(options, f"checking the int8 model on host TFLite-Micro ({len(splits.x_test)} test samples)")
    float_logits = distill.predict_logits(student, splits.x_test)
    checked = verify_tflite(quantized.path.read_bytes(), splits.x_test, splits.y_test, float_logits=float_logits)
    quantization = choose_quantization(
        options.qat, student, splits, teacher, options.kd, checked, directory,
        options.qat_epochs or default_qat_epochs(student_epochs), options.seed, lambda text: _say(options, text),
        progress=options.progress)
    return exported, quantization


@dataclass
class SearchOutcome:
    """The search's pick among the trained variants x encodings, and what prepare writes from it."""

    chosen: Any                        # search.Evaluated
    reason: str
    variant: tuple[Any, Any, Any, Any]  # (ratio, config, trained run, pruning section or None)
    encoded: bytes                     # the chosen .tflite (clustered for a palette)
    directory: Path                    # the variant's model.onnx
    exported: Any
    quantization: Any
    sized_figures: MemberFigures       # the chosen candidate's figures before training
    report: dict[str, Any]
    scratch: Any

    def cleanup(self) -> None:
        self.scratch.cleanup()


def _train_route(options: PrepareOptions, splits: Any, teacher: Any, route: Any,
                 epochs: int) -> tuple[Any, Any, Any, Any]:
    """Another route to the chosen shape (tinyml.search.same_shape_routes): its member distilled
    from the teacher as the chosen student was, then pruned and fine-tuned. A search variant."""
    from . import distill, models

    config = models.StudentConfig.parse(route.member)
    _say(options, f"search: the same shape from {route.member}"
                  f"{'' if route.ratio is None else f' pruned at {route.ratio:g}'}: training it ({epochs} epochs)")
    recipe = distill.TrainConfig(epochs=epochs, seed=options.seed, kd=options.kd,
                                 rotate_degrees=options.rotate_degrees)
    trained = distill.train_student(models.build_student(config, splits.input_shape, splits.num_classes), splits,
                                    recipe, teacher=teacher if options.kd != "none" else None,
                                    progress=options.progress)
    if route.ratio is None:
        return None, config, trained, None
    tuned, pruning, pruned_config = _prune_and_finetune(options, splits, teacher, trained, config, route.ratio,
                                                        "the search under the budgets", epochs)
    return route.ratio, pruned_config, tuned, pruning


# The final fit after the search's choice (_final_fit); digits, --max-macs 30K, int8 on the emulated
# STM32F405 over seeds 0-4 (benchmarks/results/tinydigits.md; the choice alone: mean 98.33%):
#   swa      the default: the chosen route trained again from scratch on train + validation, 3x the
#            epochs, the weights of the last third of each training averaged (SWA) and the BatchNorm
#            statistics recomputed on the training images (distill.TrainConfig.average_share): device
#            mean 98.83%, min 98.06% (seed 3)
#   scratch  the same, the last epoch's weights kept: mean 98.78%, min 97.50% (a new draw of the
#            network, which on seed 3 came out 1.1 points below the chosen model)
#   warm     the chosen model itself fine-tuned on train + validation (the student's epochs, a tenth
#            of the learning rate): mean 98.44%, min 97.78%
#   off      the chosen model as validated
FINAL_FIT_MODES = ("scratch", "warm", "swa", "off")
# swa: the last third of the one-cycle schedule (its low-learning-rate tail, 37% of the peak down to 0).
# Half of it (30 of 60 epochs) gave the same mean over seeds 0-4 (98.83%, host tflite-micro: 98.89, 99.44,
# 99.17, 98.33, 98.33) and one image more on seed 3, a difference inside the noise, found on the test split.
SWA_AVERAGE_SHARE = 1 / 3
FINAL_FIT_EPOCH_FACTOR = 3          # swa/scratch: on digits 60 epochs of c28.36 beat 20 on validation, 120 not 60
WARM_FIT_LR_SHARE = 0.1             # warm: of the one-cycle peak (TrainConfig.lr): a nudge, not a retraining


def check_final_fit(mode: str) -> None:
    if mode not in FINAL_FIT_MODES:
        raise TinymlError(f"unknown --final-fit '{mode}' (choose {', '.join(FINAL_FIT_MODES)})")


def _final_fit(options: PrepareOptions, splits: Any, teacher: Any, outcome: SearchOutcome,
               student_epochs: int) -> dict[str, Any]:
    """The search has chosen on validation; the chosen model is trained on train + validation
    (options.final_fit: warm from its weights, or its route again from scratch), the weights of
    the last epoch kept (no held-out split is left to pick an epoch by), quantized as the choice
    was (PTQ or QAT) and encoded in the chosen encoding. Replaces outcome's model; returns the
    report's section. The validation figures of the choice stay in the search's report
    (evaluated): after this, validation is training data."""
    import copy

    from . import distill, models
    from .budgets import encode_weights

    chosen = outcome.chosen
    merged = replace(splits, x_train=np.concatenate([splits.x_train, splits.x_val]),
                     y_train=np.concatenate([splits.y_train, splits.y_val]))
    warm = options.final_fit == "warm"
    average_share = SWA_AVERAGE_SHARE if options.final_fit == "swa" else 0.0
    epochs = student_epochs if warm else FINAL_FIT_EPOCH_FACTOR * student_epochs
    teaching = teacher if options.kd != "none" else None
    _say(options, f"final fit ({options.final_fit}): {chosen.label} chosen on validation; "
                  f"{'fine-tuned' if warm else 'its route trained again'} on train + validation "
                  f"({len(merged.x_train)} images, {epochs} epochs, "
                  f"{'the weights of the last third averaged' if average_share else 'the last epoch kept'})")
    if warm:
        ratio, config, chosen_run, pruning = outcome.variant
        recipe = distill.TrainConfig(epochs=epochs, seed=options.seed, kd=options.kd, keep="last",
                                     lr=WARM_FIT_LR_SHARE * distill.TrainConfig.lr,
                                     rotate_degrees=options.rotate_degrees)
        run = distill.train_student(copy.deepcopy(chosen_run.model), merged, recipe, teacher=teaching,
                                    progress=options.progress, initialize=False)
    else:
        member = models.StudentConfig.parse(chosen.member)
        recipe = distill.TrainConfig(epochs=epochs, seed=options.seed, kd=options.kd,
                                     rotate_degrees=options.rotate_degrees, keep="last",
                                     average_share=average_share)
        run = distill.train_student(models.build_student(member, splits.input_shape, splits.num_classes), merged,
                                    recipe, teacher=teaching, progress=options.progress)
        config, pruning = member, None
        if chosen.ratio is not None:
            run, pruning, config = _prune_and_finetune(options, merged, teacher, run, member, chosen.ratio,
                                                       "the search under the budgets (final fit)", epochs,
                                                       keep="last", average_share=average_share)
    if config.name() != outcome.variant[1].name():
        raise TinymlError(f"final fit: {chosen.member} pruned at {chosen.ratio} gave {config.name()}, "
                          f"not the chosen {outcome.variant[1].name()}")
    directory = Path(outcome.scratch.name) / "final-fit"
    directory.mkdir()
    kept = outcome.quantization.kept
    # The choice made PTQ or QAT on validation; the final fit quantizes the same way.
    exported, quantization = _quantize(replace(options, qat="on" if kept == "qat" else "off"), merged, teacher,
                                       run.model, directory, epochs)
    outcome.encoded = encode_weights((directory / "model.tflite").read_bytes(), chosen.encoding)
    outcome.variant = (chosen.ratio, config, run, pruning)
    outcome.directory, outcome.exported, outcome.quantization = directory, exported, quantization
    return {"mode": options.final_fit, "epochs": epochs, "lr": recipe.lr, "train_images": len(merged.x_train),
            "kept_epoch": "last" if not average_share else f"average of the last {distill.averaged_epochs(recipe)}",
            "route": {"member": chosen.member, "ratio": chosen.ratio}, "quantization": kept,
            "encoding": chosen.encoding, "chosen_val_accuracy": chosen.val_accuracy,
            "note": "validation images are trained on: the validation figures are those of the choice"}


def _search_variants(options: PrepareOptions, splits: Any, teacher: Any, board: Board, budgets: Budgets,
                     sized: list[Any], member_config: Any, member_distilled: Any,
                     base: tuple[Any, Any, Any, Any], student_epochs: int) -> SearchOutcome:
    """The chosen architecture, up to options.pruned_variants further pruned variants of its
    member and (unless that is 0) another route to the same shape, each quantized (PTQ, or QAT
    when it helps), then every fitting encoding evaluated on the trained int8 model
    (tinyml/search.py); the choice and the Pareto front."""
    from . import models, search

    scratch = search.scratch_dir()
    try:
        variants = [base]
        member = member_config.name()
        members = [member]                 # the member each variant was trained from
        for ratio in search.pruned_variant_ratios(sized, member, base[0], options.pruned_variants):
            _say(options, f"search: pruned variant of {member} at {ratio:g}")
            tuned, pruning, config = _prune_and_finetune(options, splits, teacher, member_distilled, member_config,
                                                         ratio, "the search under the budgets", student_epochs)
            variants.append((ratio, config, tuned, pruning))
            members.append(member)
        # Other routes to the chosen shape (a wider member pruned to it) are pruned variants too:
        # --pruned-variants 0 trains the chosen architecture alone.
        other_routes = search.SAME_SHAPE_ROUTES if options.pruned_variants > 0 else 0
        for route in search.same_shape_routes(sized, base[1].name(), search.Route(member, base[0]), other_routes):
            variants.append(_train_route(options, splits, teacher, route, student_epochs))
            members.append(route.member)
        rows: list[Any] = []
        encoded_of: dict[str, tuple[int, bytes]] = {}
        quantized: list[tuple[Path, Any, Any]] = []
        for number, ((ratio, config, run, _), member) in enumerate(zip(variants, members)):
            directory = Path(scratch.name) / f"variant-{number}"
            directory.mkdir()
            _say(options, f"search: variant {number + 1}/{len(variants)}: {config.name()}")
            exported, quantization = _quantize(options, splits, teacher, run.model, directory, student_epochs)
            quantized.append((directory, exported, quantization))
            encodings = search.fitting_encodings(sized, member, ratio)
            _say(options, f"search: {config.name()} ({quantization.kept}) in {', '.join(encodings)}: host "
                          "TFLite-Micro accuracy, compiled flash, instructions")
            footprint = models.footprint(run.model, splits.input_shape, splits.num_classes)
            for row, encoded in search.evaluate_variant(
                    config.name(), member, ratio, quantization.kept, (directory / "model.tflite").read_bytes(),
                    encodings, splits, board, budgets, footprint, Path(scratch.name), lambda t: _say(options, t)):
                rows.append(row)
                encoded_of[row.label] = (number, encoded)
        search.mark_front(rows)
        accuracy_first = search.accuracy_first(budgets)
        chosen = search.choose(rows, budgets.accuracy_tolerance, accuracy_first)
        best_val = max((r.val_accuracy for r in rows if r.fits), default=chosen.val_accuracy)
        reason = (f"--max-macs is the only budget: the best validation accuracy of the trained candidates "
                  f"({chosen.val_accuracy:.2%}; a palette of a fitting int8 model not competing), then the fewest "
                  "instructions, then the least flash" if accuracy_first else
                  f"within {100 * budgets.accuracy_tolerance:.2f} points of the best validation accuracy of the "
                  f"trained candidates ({best_val:.2%}), the fewest instructions, then the least flash")
        _say(options, f"search: chose {chosen.label} (validation {chosen.val_accuracy:.2%}, "
                      f"{chosen.constants_bytes:,} B flash, {chosen.instructions:,.0f} instructions)")
        number, encoded = encoded_of[chosen.label]
        directory, exported, quantization = quantized[number]
        sized_figures = next(c.figures for c in sized if c.member == chosen.member and c.ratio == chosen.ratio
                             and c.encoding == chosen.encoding)
        report = {"encodings": list(search.encodings_for(options.weights)),
                  "candidates_sized": len(sized), "candidates_fitting": sum(c.fits for c in sized),
                  "sized": [c.as_dict() for c in sized],
                  "trained_variants": [{"student": v[1].name(), "member": m, "ratio": v[0]}
                                       for v, m in zip(variants, members)],
                  "evaluated": [r.as_dict() for r in rows], "chosen": chosen.label, "reason": reason,
                  "instructions_source": chosen.instructions_source}
        return SearchOutcome(chosen, reason, variants[number], encoded, directory, exported, quantization,
                             sized_figures, report, scratch)
    except BaseException:
        scratch.cleanup()
        raise


def prepare(options: PrepareOptions) -> PrepareResult:
    # Bad options, board, paths and dataset are answered before torch and TensorFlow load (10-20 s).
    from . import data, preflight

    board = preflight.prepare_options(options.dataset, options.board, Path(options.out), options.teacher,
                                      options.teacher_arch, options.kd, options.epochs, options.teacher_epochs,
                                      options.max_weight_bytes, prune_ratio=options.prune)
    from .qat_select import check_qat_options

    check_qat_options(options.qat, options.qat_epochs)
    from .search import check_weights_option

    check_weights_option(options.weights)
    check_final_fit(options.final_fit)
    if options.pruned_variants < 0:
        raise TinymlError(f"--pruned-variants must be 0 or more, got {options.pruned_variants}")
    if not 0.0 <= options.rotate_degrees <= 45.0:   # distill.TrainConfig's range, checked before any training
        raise TinymlError(f"--rotate-degrees must be in [0, 45], got {options.rotate_degrees:g}")
    splits = data.load_dataset(options.dataset, seed=options.seed)
    _say(options, "loading torch and TensorFlow")
    from . import distill, models
    from .artifacts import TestVectors, write_artifacts
    from .prepare_report import write_prepare_report
    from .tflite_graph import load_tflite
    from .verify import verify_tflite

    started = time.perf_counter()
    stages: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        stages[name] = round(now - since, 2)
        return now

    budgets = options.budgets
    if options.max_weight_bytes is not None:
        budgets = replace(budgets, max_weight_bytes=options.max_weight_bytes)
    budgets.check()
    epochs = distill.recommended_epochs(splits.name)
    student_epochs = options.epochs or epochs["student"]
    teacher_epochs = options.teacher_epochs or epochs["teacher"]
    _say(options, f"{splits.name}: {len(splits.x_train)}/{len(splits.x_val)}/{len(splits.x_test)} train/val/test, "
                  f"{splits.num_classes} classes")
    t = lap("data", started)

    family = size_family(options, board, splits.input_shape, splits.num_classes, budgets)
    fitting = [member for member in family if member.fits]
    prune_ratio, prune_source = options.prune, "--prune"
    searching = _search_on(options, budgets)
    sized: list[Any] = []
    architectures: dict[str, Any] = {}
    if searching:
        from . import search

        encodings = search.encodings_for(options.weights)
        _say(options, f"search: sizing members x prune ratios x weight encodings ({', '.join(encodings)}) for "
                      f"{board.name} before training")
        sized = search.size_candidates(models.student_family(splits.input_shape), splits.input_shape,
                                       splits.num_classes, board, budgets, encodings, options.prune,
                                       lambda text: _say(options, text),
                                       pruning_sources=models.pruning_sources(splits.input_shape))
        search.check_reachable(sized, board, budgets)
        fitting_archs = search.fitting_architectures(sized)
        _say(options, f"search: {sum(c.fits for c in sized)} of {len(sized)} candidates meet the budgets; "
                      f"{len(fitting_archs)} architectures to compare")
        architectures = {a.student: a for a in fitting_archs}
        # The sweep below trains each architecture (pruned ones from scratch, as a dense student of
        # the kept widths) and keeps the smallest within tolerance; MemberFigures carry the name.
        fitting = [replace(a.figures, student=a.student) for a in fitting_archs]
    elif not fitting:
        mac_plan = _prune_to_mac_budget(options, family, splits.input_shape, splits.num_classes, budgets)
        if mac_plan is None:
            raise TinymlError(nothing_fits_message(family, board, budgets))
        fitting, prune_ratio, prune_source = mac_plan
    t = lap("budgets", t)

    if options.teacher:
        _say(options, f"loading the teacher {options.teacher}")
        teacher = distill.load_teacher(options.teacher, options.teacher_arch, splits)
        if options.kd in ("fitnets", "attention") and not teacher.has_features:
            raise TinymlError(f"--kd {options.kd} needs the teacher's intermediate features; an ONNX teacher only "
                              "gives logits: use --kd hinton, or a .pt teacher")
        teacher_history: list[dict] = []
    else:
        teacher_model = models.build_teacher(splits.input_shape, splits.num_classes)
        _say(options, f"training the teacher ({teacher_epochs} epochs)")
        trained = distill.train_teacher(teacher_model, splits,
                                        distill.TrainConfig(epochs=teacher_epochs, seed=options.seed, kd="none"),
                                        progress=options.progress)
        teacher, teacher_history = trained.model, trained.history
    teacher_accuracy = distill.evaluate(teacher, splits.x_test, splits.y_test)
    t = lap("teacher", t)

    # Choose on the validation split (the test split only reports): each fitting member trained
    # alone for a few epochs; the smallest within the tolerance of the best wins.
    sweep_accuracy: dict[str, dict[str, Any]] = {}
    # Only --max-macs given to the search: the best on validation, not the smallest near it (search.accuracy_first).
    sweep_tolerance = 0.0 if searching and search.accuracy_first(budgets) else budgets.accuracy_tolerance
    if options.sweep and len(fitting) > 1:
        sweep_epochs = max(3, student_epochs // 3)
        _say(options, f"sweep: {len(fitting)} fitting students, {sweep_epochs} epochs each, chosen on validation "
                      f"accuracy (smallest within {100 * sweep_tolerance:.2f} points of the best)")
        for number, member in enumerate(fitting, 1):
            config = models.StudentConfig.parse(member.student)
            _say(options, f"family sweep {number}/{len(fitting)}: {member.student} ({sweep_epochs} epochs)")
            run = distill.train_student(models.build_student(config, splits.input_shape, splits.num_classes),
                                        splits, distill.TrainConfig(epochs=sweep_epochs, seed=options.seed, kd="none"),
                                        progress=False)
            sweep_accuracy[member.student] = {"val_accuracy": run.val_accuracy, "epochs": sweep_epochs,
                                              "test_accuracy": distill.evaluate(run.model, splits.x_test, splits.y_test)}
            _say(options, f"  {member.student}: validation {run.val_accuracy:.2%}")
        chosen, best = choose_smallest_within_tolerance(
            [(m, sweep_accuracy[m.student]["val_accuracy"]) for m in fitting], sweep_tolerance)
        selection = (f"smallest fitting student within {100 * sweep_tolerance:.2f} points of the best "
                     f"validation accuracy of the sweep ({best:.2%})")
        t = lap("family_sweep", t)
    else:
        chosen = fitting[-1]
        selection = "the only fitting student" if len(fitting) == 1 else "largest fitting student (no sweep)"
        if prune_source == "--max-macs":
            selection = f"the student --max-macs is met with by pruning (ratio {prune_ratio:g})"
    config = models.StudentConfig.parse(chosen.student)
    chosen_architecture = architectures.get(chosen.student)
    if chosen_architecture is not None and chosen_architecture.ratio is not None:
        # A pruned architecture: train its family member, then prune it (below) to these widths.
        config = models.StudentConfig.parse(chosen_architecture.member)
        prune_ratio, prune_source = chosen_architecture.ratio, (
            "--prune" if options.prune is not None else "the search under the budgets")
        selection += f"; {chosen_architecture.student} is {chosen_architecture.member} pruned at {prune_ratio:g}"
    _say(options, f"student {config.name()}: {selection}")

    recipe = distill.TrainConfig(epochs=student_epochs, seed=options.seed, kd="none",
                                  rotate_degrees=options.rotate_degrees)
    _say(options, f"training the student {config.name()} alone ({student_epochs} epochs)")
    alone = distill.train_student(models.build_student(config, splits.input_shape, splits.num_classes), splits,
                                  recipe, teacher=None, progress=options.progress)
    t = lap("student_alone", t)
    kd_recipe = distill.TrainConfig(epochs=student_epochs, seed=options.seed, kd=options.kd,
                                     rotate_degrees=options.rotate_degrees)
    distilled = alone
    if options.kd != "none":
        _say(options, f"distilling the student {config.name()} ({options.kd}, {student_epochs} epochs)")
        distilled = distill.train_student(models.build_student(config, splits.input_shape, splits.num_classes), splits,
                                          kd_recipe, teacher=teacher, progress=options.progress)
    t = lap("student_distilled", t)
    pruning: dict[str, Any] | None = None
    finetune_history: list[dict] = []
    member_config, member_distilled = config, distilled     # what further pruned variants start from
    if prune_ratio is not None:
        distilled, pruning, config = _prune_and_finetune(options, splits, teacher, distilled, config, prune_ratio,
                                                         prune_source, student_epochs)
        finetune_history = distilled.history
        t = lap("prune_finetune", t)

    outcome: SearchOutcome | None = None
    if searching:
        outcome = _search_variants(options, splits, teacher, board, budgets, sized, member_config, member_distilled,
                                   (prune_ratio, config, distilled, pruning), student_epochs)
        selection += f"; then {outcome.chosen.label}: {outcome.reason}"
        t = lap("search_variants", t)
        if options.final_fit != "off":
            outcome.report["final_fit"] = _final_fit(options, splits, teacher, outcome, student_epochs)
            selection += (f"; then {'fine-tuned' if options.final_fit == 'warm' else 'trained again'} on "
                          "train + validation (final fit)")
            t = lap("final_fit", t)
        picked = outcome.variant
        _, config, distilled, pruning = picked
        finetune_history = distilled.history if pruning is not None else []
        chosen = outcome.sized_figures

    sweep: list[dict[str, Any]] = []
    for member in family:
        row: dict[str, Any] = {**member.as_dict(), "chosen": member.student in (chosen.student, member_config.name()),
                               "val_accuracy": None, "float_accuracy": None, "epochs": None}
        if member.student in sweep_accuracy:
            measured = sweep_accuracy[member.student]
            row.update(val_accuracy=measured["val_accuracy"], float_accuracy=measured["test_accuracy"],
                       epochs=measured["epochs"])
        sweep.append(row)

    with atomic_output_dir(Path(options.out), keep_existing=False) as tmp:
        encoding = "int8"
        if outcome is None:
            exported, quantization = _quantize(options, splits, teacher, distilled.model, tmp, student_epochs)
            checked = quantization.checked
            t = lap("convert_quantize_verify", t)
        else:
            # The chosen variant in its chosen encoding (the clustered .tflite for a palette).
            encoding = outcome.chosen.encoding
            exported, quantization = outcome.exported, outcome.quantization
            shutil.copyfile(outcome.directory / "model.onnx", tmp / "model.onnx")
            (tmp / "model.tflite").write_bytes(outcome.encoded)
            checked = verify_tflite(outcome.encoded, splits.x_test, splits.y_test,
                                    float_logits=distill.predict_logits(distilled.model, splits.x_test))
            outcome.cleanup()
        model_bytes = (tmp / "model.tflite").read_bytes()

        _say(options, "writing the C artifacts, test vectors and report")
        # The final check: the same figures, now of the trained model.
        footprint = models.footprint(distilled.model, splits.input_shape, splits.num_classes)
        final = figures_of_tflite(config.name(), model_bytes, footprint, board, budgets, encoding=encoding)
        if final.over:
            raise TinymlError(f"the trained {config.name()} breaks its budgets: {'; '.join(final.over)}")
        graph = load_tflite(model_bytes)
        extra = {
            "dataset": splits.name, "board": board.name, "student": config.name(),
            "params": footprint.params, "macs": footprint.macs,
            "preprocess": {"kind": "scale", "input_range": [0.0, 1.0], "layout": "NHWC"},
            # What `tinyml flash/bench/deploy` compile with by default (host.build.ensure_compiled).
            "weights": compile_weights(encoding), "weight_encoding": encoding,
        }
        vectors = TestVectors(checked.inputs, checked.outputs, splits.y_test, list(splits.labels))
        files, manifest = write_artifacts(tmp, model_bytes, graph, vectors, list(splits.labels),
                                          arena_bytes=checked.arena_bytes, extra_manifest=extra)
        t = lap("emit", t)

        report: dict[str, Any] = {
            "dataset": splits.name,
            "board": board.name,
            "student": config.name(),
            "kd": options.kd,
            "rotate_degrees": options.rotate_degrees,
            "seed": options.seed,
            "epochs": {"student": student_epochs, "teacher": 0 if options.teacher else teacher_epochs},
            "samples": {"train": len(splits.x_train), "val": len(splits.x_val), "test": len(splits.x_test)},
            "teacher": options.teacher or "trained",
            "teacher_accuracy": teacher_accuracy,
            "student_alone_accuracy": distill.evaluate(alone.model, splits.x_test, splits.y_test),
            "student_float_accuracy": distill.evaluate(distilled.model, splits.x_test, splits.y_test),
            "student_int8_accuracy": checked.int8_accuracy,
            "int8_float_agreement": checked.int8_float_agreement,
            "ptq_int8_accuracy": quantization.report["ptq_int8_accuracy"],
            "qat_int8_accuracy": quantization.report["qat_int8_accuracy"],
            "quantization": quantization.report,
            "flash_bytes": len(model_bytes),
            "weights": compile_weights(encoding),
            "weight_encoding": encoding,
            "arena_bytes": checked.arena_bytes,
            "engine": {"target": board.compile_target, "optimize": budgets.optimize,
                       "constants_bytes": final.constants_bytes, "arena_bytes": final.arena_bytes,
                       "flash_needed": final.flash_needed, "ram_needed": final.ram_needed,
                       "estimated_latency_ms": final.latency_ms,
                       "instructions_per_mac": instructions_per_mac(board.compile_target, budgets.optimize),
                       "instructions_per_mac_source": instructions_per_mac_source(board.compile_target,
                                                                                  budgets.optimize),
                       "figures_before_training": {"constants_bytes": chosen.constants_bytes,
                                                   "arena_bytes": chosen.arena_bytes},
                       "figures_match": (final.constants_bytes, final.arena_bytes)
                                        == (chosen.constants_bytes, chosen.arena_bytes),
                       "figures_within": final.constants_bytes <= chosen.constants_bytes
                                         and final.arena_bytes <= chosen.arena_bytes},
            "board_clock_hz": board.clock_hz,
            "board_flash_bytes": board.flash_bytes,
            "board_ram_bytes": board.ram_bytes,
            "board_flash_budget": board.model_flash_budget,
            "board_ram_budget": board.model_ram_budget,
            "budgets": {k: v for k, v in asdict(budgets).items()},
            "selection": selection,
            "macs": footprint.macs,
            "params": footprint.params,
            "onnx_max_abs_error": exported.max_abs_error,
            "ops": graph.ops,
            "model_sha256": manifest["model_sha256"],
            "family": sweep,
            "stage_seconds": stages,
        }
        if pruning is not None:
            report["pruning"] = {**pruning, "int8_accuracy_after": checked.int8_accuracy}
        if outcome is not None:
            # The sweep over the fitting architectures (pruned ones trained from scratch as dense students).
            swept = [{"student": a.student, "member": a.member, "ratio": a.ratio, "encoding": a.figures.encoding,
                      "constants_bytes": a.figures.constants_bytes, "macs": a.figures.macs,
                      "val_accuracy": sweep_accuracy.get(a.student, {}).get("val_accuracy"),
                      "epochs": sweep_accuracy.get(a.student, {}).get("epochs")} for a in architectures.values()]
            report["search"] = {**outcome.report, "architectures": swept}
        report["wall_seconds"] = round(time.perf_counter() - started, 2)
        history = {"teacher": teacher_history, "student_alone": alone.history, "student_distilled": distilled.history}
        if finetune_history:
            history["student_pruned_finetune"] = finetune_history
        files += write_prepare_report(tmp, report, history, checked.predictions, splits.y_test, list(splits.labels))
        # What `tinyml update` starts from (tinyml/continual.py): the float student and a replay memory.
        from .continual import save_prepare_state
        files += save_prepare_state(tmp, distilled.model, config.name(), splits, options.dataset, options.seed)
    _say(options, f"done in {report['wall_seconds']:.1f} s -> {options.out}")
    return PrepareResult(out_dir=Path(options.out), report=report, files=files)
