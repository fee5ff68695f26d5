"""`tinyml prepare`: dataset -> teacher -> distilled student -> int8 .tflite ->
checked on host TFLite-Micro -> C artifacts and report, in one directory.

Each step is a stage module; this one only orders them, times them and checks
that the result fits the board. The output directory is written atomically.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .boards import Board, load_board
from .errors import TinymlError
from .fsutil import atomic_output_dir


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
    sweep: bool = True                  # train the student family for the accuracy-vs-size plot
    progress: bool = True


@dataclass
class PrepareResult:
    out_dir: Path
    report: dict[str, Any]
    files: list[str] = field(default_factory=list)


def check_fits_board(board: Board, flash_bytes: int, arena_bytes: int) -> None:
    """The model's real flash and arena must fit what the board leaves for it."""
    if flash_bytes > board.model_flash_budget:
        raise TinymlError(
            f"model too big for {board.name}: {flash_bytes:,} bytes of flash, {board.model_flash_budget:,} available "
            f"(over by {flash_bytes - board.model_flash_budget:,})"
        )
    if arena_bytes > board.model_ram_budget:
        raise TinymlError(
            f"model too big for {board.name}: {arena_bytes:,} bytes of arena, {board.model_ram_budget:,} of RAM "
            f"available (over by {arena_bytes - board.model_ram_budget:,})"
        )


def _say(options: PrepareOptions, text: str) -> None:
    if options.progress:
        print(f"[prepare] {text}", flush=True)


def prepare(options: PrepareOptions) -> PrepareResult:
    from . import data, distill, models
    from .emit import TestVectors, write_artifacts
    from .onnx_export import export_onnx
    from .onnx_to_tf.converter import convert_onnx
    from .quantize import quantize_int8
    from .report import write_prepare_report
    from .tflite_graph import load_tflite
    from .verify import verify_tflite

    started = time.perf_counter()
    stages: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        stages[name] = round(now - since, 2)
        return now

    if options.kd not in ("none", "hinton", "fitnets", "attention"):
        raise TinymlError(f"unknown distillation '{options.kd}' (choose hinton, fitnets, attention or none)")
    board = load_board(options.board)
    splits = data.load_dataset(options.dataset, seed=options.seed)
    epochs = distill.recommended_epochs(splits.name)
    student_epochs = options.epochs or epochs["student"]
    teacher_epochs = options.teacher_epochs or epochs["teacher"]
    config, estimate = models.pick_student(board, splits.input_shape, splits.num_classes, options.max_weight_bytes)
    _say(options, f"{splits.name}: {len(splits.x_train)}/{len(splits.x_val)}/{len(splits.x_test)} train/val/test, "
                  f"{splits.num_classes} classes; student {config.name()} for {board.name} "
                  f"(~{estimate.weight_bytes:,} B weights, ~{estimate.arena_bytes:,} B arena)")
    t = lap("data", started)

    recipe = distill.TrainConfig(epochs=student_epochs, seed=options.seed, kd="none")
    if options.teacher:
        teacher = distill.load_teacher(options.teacher, options.teacher_arch, splits)
        if options.kd in ("fitnets", "attention") and not teacher.has_features:
            raise TinymlError(f"--kd {options.kd} needs the teacher's intermediate features; an ONNX teacher only "
                              "gives logits: use --kd hinton, or a .pt teacher")
        teacher_history: list[dict] = []
    else:
        teacher_model = models.build_teacher(splits.input_shape, splits.num_classes)
        trained = distill.train_teacher(teacher_model, splits,
                                        distill.TrainConfig(epochs=teacher_epochs, seed=options.seed, kd="none"),
                                        progress=options.progress)
        teacher, teacher_history = trained.model, trained.history
    teacher_accuracy = distill.evaluate(teacher, splits.x_test, splits.y_test)
    t = lap("teacher", t)

    alone = distill.train_student(models.build_student(config, splits.input_shape, splits.num_classes), splits,
                                  recipe, teacher=None, progress=options.progress)
    t = lap("student_alone", t)
    kd_recipe = distill.TrainConfig(epochs=student_epochs, seed=options.seed, kd=options.kd)
    distilled = alone
    if options.kd != "none":
        distilled = distill.train_student(models.build_student(config, splits.input_shape, splits.num_classes), splits,
                                          kd_recipe, teacher=teacher, progress=options.progress)
    t = lap("student_distilled", t)

    sweep: list[dict[str, Any]] = []
    if options.sweep:
        sweep_epochs = max(3, student_epochs // 3)
        for member in models.student_family(splits.input_shape):
            fp = models.footprint(member, splits.input_shape, splits.num_classes)
            if member == config:
                accuracy = distill.evaluate(alone.model, splits.x_test, splits.y_test)
                epochs_used = student_epochs
            else:
                run = distill.train_student(models.build_student(member, splits.input_shape, splits.num_classes),
                                            splits, distill.TrainConfig(epochs=sweep_epochs, seed=options.seed, kd="none"),
                                            progress=False)
                accuracy, epochs_used = distill.evaluate(run.model, splits.x_test, splits.y_test), sweep_epochs
            fits = fp.weight_bytes <= board.model_flash_budget and fp.arena_bytes <= board.model_ram_budget
            sweep.append({"student": member.name(), "params": fp.params, "macs": fp.macs,
                          "weight_bytes": fp.weight_bytes, "arena_bytes": fp.arena_bytes,
                          "float_accuracy": accuracy, "epochs": epochs_used, "fits_board": fits,
                          "chosen": member == config})
        t = lap("family_sweep", t)

    with atomic_output_dir(Path(options.out), keep_existing=False) as tmp:
        exported = export_onnx(distilled.model, splits.input_shape, tmp / "model.onnx", sample=splits.x_val[:32])
        tf_model = convert_onnx(tmp / "model.onnx")
        quantized = quantize_int8(tf_model, splits.x_train, tmp / "model.tflite")
        t = lap("convert_quantize", t)

        float_logits = distill.predict_logits(distilled.model, splits.x_test)
        model_bytes = quantized.path.read_bytes()
        checked = verify_tflite(model_bytes, splits.x_test, splits.y_test, float_logits=float_logits)
        check_fits_board(board, len(model_bytes), checked.arena_bytes)
        t = lap("verify_tflm", t)

        graph = load_tflite(model_bytes)
        footprint = models.footprint(distilled.model, splits.input_shape, splits.num_classes)
        extra = {
            "dataset": splits.name, "board": board.name, "student": config.name(),
            "params": footprint.params, "macs": footprint.macs,
            "preprocess": {"kind": "scale", "input_range": [0.0, 1.0], "layout": "NHWC"},
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
            "seed": options.seed,
            "epochs": {"student": student_epochs, "teacher": 0 if options.teacher else teacher_epochs},
            "samples": {"train": len(splits.x_train), "val": len(splits.x_val), "test": len(splits.x_test)},
            "teacher": options.teacher or "trained",
            "teacher_accuracy": teacher_accuracy,
            "student_alone_accuracy": distill.evaluate(alone.model, splits.x_test, splits.y_test),
            "student_float_accuracy": distill.evaluate(distilled.model, splits.x_test, splits.y_test),
            "student_int8_accuracy": checked.int8_accuracy,
            "int8_float_agreement": checked.int8_float_agreement,
            "flash_bytes": len(model_bytes),
            "arena_bytes": checked.arena_bytes,
            "board_flash_budget": board.model_flash_budget,
            "board_ram_budget": board.model_ram_budget,
            "macs": footprint.macs,
            "params": footprint.params,
            "onnx_max_abs_error": exported.max_abs_error,
            "ops": graph.ops,
            "model_sha256": manifest["model_sha256"],
            "family": sweep,
            "stage_seconds": stages,
        }
        report["wall_seconds"] = round(time.perf_counter() - started, 2)
        history = {"teacher": teacher_history, "student_alone": alone.history, "student_distilled": distilled.history}
        files += write_prepare_report(tmp, report, history, checked.predictions, splits.y_test, list(splits.labels))
        # What `tinyml update` starts from (tinyml/continual.py): the float student and a replay memory.
        from .continual import save_prepare_state
        files += save_prepare_state(tmp, distilled.model, config.name(), splits, options.dataset, options.seed)
    _say(options, f"done in {report['wall_seconds']:.1f} s -> {options.out}")
    return PrepareResult(out_dir=Path(options.out), report=report, files=files)
