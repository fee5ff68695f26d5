"""TF module -> full-int8 `.tflite` (int8 input and output, per-channel weights, builtins only).

The converter is TFLite's own (post-training full-integer quantization with a
representative dataset); this module checks what it produced: int8 I/O and no
DEQUANTIZE / TRANSPOSE / custom op, which a microcontroller build could not run
or would run slowly.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .errors import TinymlError
from .fsutil import normal_permissions
from .onnx_to_tf.converter import TfModel, convert_onnx
from .progress import say
from .tflite_graph import load_tflite

# Ops that mean the model is not a clean int8 graph for the board.
FORBIDDEN_OPS = frozenset({"DEQUANTIZE", "TRANSPOSE"})


@dataclass
class QuantizedModel:
    path: Path
    size_bytes: int
    ops: list[str]                      # distinct builtin op names in first-use order, e.g. ["CONV_2D", ...]
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]


def _calibration_samples(representative: np.ndarray, input_shape: tuple[int, ...], count: int) -> np.ndarray:
    data = np.asarray(representative, dtype=np.float32)
    sample_shape = tuple(input_shape[1:])
    if data.shape == sample_shape:
        data = data[None]
    if data.ndim != len(input_shape) or data.shape[1:] != sample_shape:
        raise TinymlError(f"calibration data has shape {data.shape}; the model takes (N, "
                          f"{', '.join(map(str, sample_shape))})")
    if len(data) == 0:
        raise TinymlError("calibration data is empty")
    if not np.all(np.isfinite(data)):
        raise TinymlError("calibration data contains NaN or infinity")
    if count < 1:
        raise TinymlError(f"num_calibration must be at least 1, got {count}")
    if len(data) > count:
        # A fixed-seed subset, so class-sorted training data still covers every class.
        pick = np.sort(np.random.default_rng(0).choice(len(data), size=count, replace=False))
        data = data[pick]
    return data


@contextmanager
def _quiet_converter() -> Iterator[list[str]]:
    """Silence the converter's absl/TF logging and its C++ chatter on fd 2 for the duration;
    yields a list that receives the captured stderr text (for error messages)."""
    captured: list[str] = []
    loggers = [logging.getLogger(name) for name in ("tensorflow", "absl")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    sys.stderr.flush()
    saved_fd = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


def _converter_error(exc: Exception, captured: list[str]) -> TinymlError:
    lines = [line.strip() for line in (str(exc) + "\n" + "".join(captured)).splitlines()]
    errors = [line for line in lines if "error:" in line.lower()]
    detail = errors[0] if errors else next((line for line in lines if line), type(exc).__name__)
    return TinymlError(f"TFLite int8 conversion failed: {detail[:300]}")


def int8_flatbuffer(converter, samples: Sequence[Sequence[np.ndarray]], float_io: bool = False,
                    per_channel: bool = True) -> bytes:
    """Run a `tf.lite.TFLiteConverter` as full-integer post-training quantization.

    `samples` is the representative data: one list of model inputs (each with
    its batch dimension of 1) per calibration step. Weights are int8 per
    channel, activations int8, builtin int8 ops only; input and output are
    int8 unless `float_io` (then the converter adds QUANTIZE/DEQUANTIZE at the
    edges). `per_channel=False` gives every weight tensor one scale (the older
    per-tensor scheme, kept to measure what it costs). The converter's logging
    is silenced; a failure is a TinymlError."""
    import tensorflow as tf

    def representative_dataset():
        for inputs in samples:
            yield [np.asarray(x, dtype=np.float32) for x in inputs]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter._experimental_disable_per_channel = not per_channel
    if not float_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    # The Keras path prints its export listing on stdout, the float-I/O path warns about input statistics.
    with _quiet_converter() as captured, contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            return bytes(converter.convert())
        except Exception as exc:  # noqa: BLE001 - the converter raises many types (ConverterError, RuntimeError...)
            failure = exc
    raise _converter_error(failure, captured) from failure


def write_atomic(path: Path, flatbuffer: bytes) -> None:
    """Write the model through a temporary file in the same folder: a failure leaves nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(flatbuffer)
        normal_permissions(Path(tmp_name))  # mkstemp made it 0600
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def quantize_int8(tf_model: TfModel, representative: np.ndarray, path: Path,
                  num_calibration: int = 200, per_channel: bool = True) -> QuantizedModel:
    """Full-integer quantize `tf_model` with TFLite's converter and write the `.tflite` atomically.

    `representative` is training-split data, NHWC float (N, H, W, C); up to
    `num_calibration` samples calibrate the activation ranges.
    """
    import tensorflow as tf

    path = Path(path)
    samples = _calibration_samples(representative, tf_model.input_shape, num_calibration)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([tf_model.concrete_function], tf_model.module)
    flatbuffer = int8_flatbuffer(converter, [[sample[None]] for sample in samples], per_channel=per_channel)
    result = check_int8_model(flatbuffer)
    write_atomic(path, flatbuffer)
    result.path = path
    return result


def check_int8_model(flatbuffer: bytes) -> QuantizedModel:
    """Read op list and I/O quantization; raise TinymlError unless it is a clean full-int8 model."""
    graph = load_tflite(bytes(flatbuffer))
    ops = graph.ops
    for op in ops:
        if op in FORBIDDEN_OPS or op.startswith("CUSTOM"):
            raise TinymlError(f"the int8 model contains {op}; only int8 builtin ops can run on the board")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TinymlError(f"the int8 model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
                          "one of each is supported")
    (inp,), (out,) = [graph.tensors[i] for i in graph.inputs], [graph.tensors[i] for i in graph.outputs]
    for role, tensor in (("input", inp), ("output", out)):
        if np.dtype(tensor.dtype) != np.int8:
            raise TinymlError(f"the model {role} is {np.dtype(tensor.dtype).name}, not int8")
        if tensor.scale.size != 1 or tensor.zero_point.size != 1:
            raise TinymlError(f"the model {role} has no per-tensor quantization")
    return QuantizedModel(path=Path(), size_bytes=len(flatbuffer), ops=ops,
                          input_scale=float(inp.scale[0]), input_zero_point=int(inp.zero_point[0]),
                          output_scale=float(out.scale[0]), output_zero_point=int(out.zero_point[0]),
                          input_shape=tuple(inp.shape), output_shape=tuple(out.shape))


def convert_onnx_to_tflite(onnx_path: str | Path, calibration: np.ndarray, path: Path,
                           num_calibration: int | None = None) -> QuantizedModel:
    """`tinyml convert`: ONNX file -> our TF graph -> full-int8 `.tflite` at `path`.

    All of `calibration` calibrates unless `num_calibration` caps it."""
    say("convert", f"converting {Path(onnx_path).name} to TensorFlow (NHWC)")
    tf_model = convert_onnx(onnx_path)
    if len(tf_model.output_names) != 1:
        raise TinymlError(f"the ONNX model has {len(tf_model.output_names)} outputs; one is supported")
    count = len(np.asarray(calibration)) if num_calibration is None else num_calibration
    say("convert", f"quantizing to full int8 with {min(count, len(calibration))} calibration samples")
    return quantize_int8(tf_model, calibration, path, num_calibration=max(count, 1))
