"""Check an int8 `.tflite` on the real TFLite-Micro kernels on the host.

The `tflite-micro` package is the ground truth for int8 outputs and for the
arena size: the firmware backends are judged against what it computes here.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import TinymlError

_ARENA_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")


@dataclass
class TensorQuant:
    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int


@dataclass
class VerifyResult:
    samples: int
    int8_accuracy: float
    int8_float_agreement: float | None  # arg-max agreement with the float model, when given
    arena_bytes: int                    # measured by TFLM's recording allocator
    inputs: np.ndarray                  # int8 inputs fed to TFLM, (N, *input_shape[1:])
    outputs: np.ndarray                 # int8 outputs TFLM gave, (N, *output_shape[1:])
    predictions: np.ndarray             # arg-max class per sample
    input: TensorQuant
    output: TensorQuant


def _interpreter(model: bytes, arena_size: int | None = None):
    from tflite_micro.python.tflite_micro import runtime

    try:
        return runtime.Interpreter.from_bytes(model, arena_size=arena_size)
    except Exception as exc:  # the runtime raises RuntimeError/ValueError with TFLM's text
        raise TinymlError(f"TFLite-Micro cannot load the model: {str(exc).strip().splitlines()[0]}") from exc


def _quant(details: dict) -> TensorQuant:
    q = details["quantization_parameters"]
    scales, zps = q["scales"], q["zero_points"]
    return TensorQuant(
        shape=tuple(int(d) for d in details["shape"]),
        dtype=np.dtype(details["dtype"]).name,
        scale=float(scales[0]) if len(scales) else 0.0,
        zero_point=int(zps[0]) if len(zps) else 0,
    )


def io_quantization(model: bytes) -> tuple[TensorQuant, TensorQuant]:
    it = _interpreter(model)
    return _quant(it.get_input_details(0)), _quant(it.get_output_details(0))


def quantize_input(x: np.ndarray, quant: TensorQuant) -> np.ndarray:
    """Float NHWC in [0, 1] to int8 with the model's input scale and zero point."""
    q = np.round(x.astype(np.float64) / quant.scale) + quant.zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def _require_int8(in_q: TensorQuant, out_q: TensorQuant) -> None:
    if in_q.dtype != "int8" or out_q.dtype != "int8":
        raise TinymlError(
            f"model input/output are {in_q.dtype}/{out_q.dtype}, expected int8/int8 (a full-integer model)"
        )


def run_tflm(model: bytes, inputs: np.ndarray) -> np.ndarray:
    """int8 outputs of TFLite-Micro for each int8 input (batch of one per invoke)."""
    it = _interpreter(model)
    in_q = _quant(it.get_input_details(0))
    out_q = _quant(it.get_output_details(0))
    _require_int8(in_q, out_q)
    expected = in_q.shape[1:]
    if tuple(inputs.shape[1:]) != expected:
        raise TinymlError(f"inputs have shape {tuple(inputs.shape[1:])} per sample, the model takes {expected}")
    outputs = np.empty((len(inputs), *out_q.shape[1:]), dtype=np.int8)
    for i, sample in enumerate(inputs):
        it.set_input(sample.reshape(in_q.shape).astype(np.int8), 0)
        it.invoke()
        outputs[i] = it.get_output(0).reshape(out_q.shape[1:])
    return outputs


def allocation_report(model: bytes) -> str:
    """TFLM's RecordingMicroAllocator report after one invoke (arena head, tail
    and what the tail holds). It prints to the C stderr, so fd 2 is redirected
    to a file for the call."""
    it = _interpreter(model)
    in_q = _quant(it.get_input_details(0))
    it.set_input(np.zeros(in_q.shape, dtype=np.dtype(in_q.dtype)), 0)
    it.invoke()
    with tempfile.TemporaryFile(mode="w+b") as capture:
        saved = os.dup(2)
        try:
            os.dup2(capture.fileno(), 2)
            it.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        return capture.read().decode(errors="replace")


def measure_arena(model: bytes) -> int:
    """Arena bytes TFLite-Micro really allocates for the model (head + tail).

    Note the host build is 64-bit: pointer-holding structs are larger than on a
    32-bit MCU (tinyml.tflm_arena gives the 32-bit figure).
    """
    match = _ARENA_TOTAL.search(allocation_report(model))
    if not match:
        raise TinymlError("TFLite-Micro did not report its arena allocation")
    return int(match.group(1))


def verify_tflite(
    model: bytes | str | Path,
    x: np.ndarray,
    y: np.ndarray,
    float_logits: np.ndarray | None = None,
) -> VerifyResult:
    """Run the int8 model on every sample of (x, y): accuracy, agreement, arena.

    x is float NHWC in [0, 1] (quantized here with the model's input parameters)
    or already int8.
    """
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    in_q, out_q = io_quantization(data)
    _require_int8(in_q, out_q)
    inputs = x.astype(np.int8) if x.dtype == np.int8 else quantize_input(x, in_q)
    inputs = inputs.reshape((len(inputs), *in_q.shape[1:]))
    outputs = run_tflm(data, inputs)
    predictions = outputs.reshape(len(outputs), -1).argmax(axis=1)
    agreement = None
    if float_logits is not None:
        agreement = float(np.mean(predictions == np.asarray(float_logits).argmax(axis=1)))
    return VerifyResult(
        samples=len(x),
        int8_accuracy=float(np.mean(predictions == np.asarray(y))),
        int8_float_agreement=agreement,
        arena_bytes=measure_arena(data),
        inputs=inputs,
        outputs=outputs,
        predictions=predictions,
        input=in_q,
        output=out_q,
    )
