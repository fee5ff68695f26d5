"""A trained float student -> int8 .tflite -> host TFLite-Micro check -> C artifacts,
the tail of `tinyml prepare` shared by the stages that train a student another
way (`tinyml update`, `tinyml federate`). Writes into a directory the caller
made (an atomic_output_dir), so the caller decides what else goes beside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from .boards import Board


@dataclass
class DeployedModel:
    sha256: str
    int8_accuracy: float              # on (x_test, y_test), host TFLite-Micro
    int8_float_agreement: float
    flash_bytes: int
    arena_bytes: int
    params: int
    macs: int
    ops: list[str]
    predictions: np.ndarray           # int8 arg-max per test sample
    files: list[str]


def quantize_student(model: nn.Module, input_shape: tuple[int, int, int], calibration: np.ndarray,
                     directory: Path) -> bytes:
    """model.onnx and model.tflite (full int8) of a float student in `directory`; returns the .tflite bytes."""
    from .onnx_export import export_onnx
    from .onnx_to_tf.converter import convert_onnx
    from .quantize import quantize_int8

    export_onnx(model, input_shape, directory / "model.onnx", sample=calibration[:32])
    quantized = quantize_int8(convert_onnx(directory / "model.onnx"), calibration, directory / "model.tflite")
    return quantized.path.read_bytes()


def int8_accuracy(model_bytes: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of an int8 .tflite on host TFLite-Micro."""
    from .verify import io_quantization, quantize_input, run_tflm

    if len(x) == 0:
        return float("nan")
    in_q, _ = io_quantization(model_bytes)
    inputs = quantize_input(x, in_q).reshape((len(x), *in_q.shape[1:]))
    outputs = run_tflm(model_bytes, inputs)
    return float(np.mean(outputs.reshape(len(x), -1).argmax(axis=1) == np.asarray(y)))


def deploy_student(model: nn.Module, input_shape: tuple[int, int, int], labels: list[str], calibration: np.ndarray,
                   x_test: np.ndarray, y_test: np.ndarray, board: Board, directory: Path,
                   extra_manifest: dict[str, Any]) -> DeployedModel:
    """Everything `tinyml prepare` writes about the model (docs/ARTIFACTS.md), for `model`."""
    from . import distill, models
    from .artifacts import TestVectors, write_artifacts
    from .prepare import check_fits_board
    from .tflite_graph import load_tflite
    from .verify import verify_tflite

    model_bytes = quantize_student(model, input_shape, calibration, directory)
    float_logits = distill.predict_logits(model, x_test)
    checked = verify_tflite(model_bytes, x_test, y_test, float_logits=float_logits)
    check_fits_board(board, len(model_bytes), checked.arena_bytes)
    graph = load_tflite(model_bytes)
    footprint = models.footprint(model, input_shape, len(labels))
    extra = {"board": board.name, "params": footprint.params, "macs": footprint.macs,
             "preprocess": {"kind": "scale", "input_range": [0.0, 1.0], "layout": "NHWC"}, **extra_manifest}
    vectors = TestVectors(checked.inputs, checked.outputs, np.asarray(y_test, np.int64), list(labels))
    files, manifest = write_artifacts(directory, model_bytes, graph, vectors, list(labels),
                                      arena_bytes=checked.arena_bytes, extra_manifest=extra)
    return DeployedModel(
        sha256=manifest["model_sha256"], int8_accuracy=checked.int8_accuracy,
        int8_float_agreement=float(checked.int8_float_agreement or 0.0), flash_bytes=len(model_bytes),
        arena_bytes=checked.arena_bytes, params=footprint.params, macs=footprint.macs, ops=graph.ops,
        predictions=checked.predictions, files=["model.onnx", "model.tflite", *files],
    )
