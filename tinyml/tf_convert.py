"""TensorFlow-side models -> full-int8 `.tflite`: a Keras model (in memory, `.keras`
or `.h5`), a SavedModel folder, or a float `.tflite`.

The one Keras/TF -> int8 helper of the project: `tinyml convert` uses it, and so
do the engine tests (tests/engine/*_harness.py). Quantization is TFLite's own
post-training full-integer quantization (quantize.int8_flatbuffer), the same
as for ONNX models; `convert_model` then checks the result is a clean int8
graph (quantize.check_int8_model) and writes it atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import TinymlError
from .preflight import KERAS_SUFFIXES, model_kind  # noqa: F401  (checked before TensorFlow loads; re-exported)
from .quantize import (QuantizedModel, _calibration_samples, _converter_error, _quiet_converter, check_int8_model,
                       int8_flatbuffer, write_atomic)



def keras_to_int8(model: Any, samples: Sequence[Sequence[np.ndarray]], float_io: bool = False) -> bytes:
    """A Keras model in memory -> int8 flatbuffer, calibrated on `samples` (see int8_flatbuffer)."""
    import tensorflow as tf

    return int8_flatbuffer(tf.lite.TFLiteConverter.from_keras_model(model), samples, float_io)


def function_to_int8(function: Callable, input_shapes: Sequence[Sequence[int]],
                     samples: Sequence[Sequence[np.ndarray]], float_io: bool = False) -> bytes:
    """A Python function of float32 tensors of `input_shapes` (traced by tf.function) -> int8 flatbuffer."""
    import tensorflow as tf

    specs = [tf.TensorSpec(shape, tf.float32) for shape in input_shapes]
    concrete = tf.function(function).get_concrete_function(*specs)
    return int8_flatbuffer(tf.lite.TFLiteConverter.from_concrete_functions([concrete]), samples, float_io)


def saved_model_to_int8(directory: Path, samples: Sequence[Sequence[np.ndarray]]) -> bytes:
    import tensorflow as tf

    return int8_flatbuffer(tf.lite.TFLiteConverter.from_saved_model(str(directory)), samples)


def float_tflite_to_int8(flatbuffer: bytes, samples: Sequence[Sequence[np.ndarray]]) -> bytes:
    """A float `.tflite` -> int8: TFLite's calibrator records activation ranges
    on `samples`, then its MLIR quantizer rewrites the model (what
    TFLiteConverter does after its own float conversion; TF has no public entry
    point that starts from a .tflite)."""
    import tensorflow as tf
    from tensorflow.lite.python import convert as tflite_convert
    from tensorflow.lite.python.optimize import calibrator

    def dataset():
        for inputs in samples:
            yield [np.asarray(x, dtype=np.float32) for x in inputs]

    with _quiet_converter() as captured:
        try:
            prepared = calibrator.add_intermediate_tensors(flatbuffer)
            calibrated = calibrator.Calibrator(prepared).calibrate(dataset)
            return bytes(tflite_convert.mlir_quantize(calibrated, input_data_type=tf.int8,
                                                      output_data_type=tf.int8))
        except Exception as exc:  # noqa: BLE001 - calibrator and quantizer raise many types
            failure = exc
    raise _converter_error(failure, captured) from failure


def _input_shape_of_tflite(flatbuffer: bytes) -> tuple[int, ...]:
    from .tflite_graph import load_tflite

    graph = load_tflite(flatbuffer)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TinymlError(f"the model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
                          "one of each is supported")
    tensor = graph.tensors[graph.inputs[0]]
    if np.dtype(tensor.dtype) != np.float32:
        raise TinymlError(f"the .tflite input is {np.dtype(tensor.dtype).name}, not float32: it is already "
                          "quantized (compile or emit it directly)")
    return tuple(tensor.shape)


def _single_input_shape(shapes: list[Any], what: str) -> tuple[int, ...]:
    if len(shapes) != 1:
        raise TinymlError(f"the {what} has {len(shapes)} inputs; one is supported")
    return tuple(-1 if d is None else int(d) for d in shapes[0])


def _load_keras(path: Path) -> Any:
    import tensorflow as tf

    with _quiet_converter() as captured:
        try:
            return tf.keras.models.load_model(str(path), compile=False)
        except Exception as exc:  # noqa: BLE001 - Keras raises ValueError, OSError, TypeError...
            failure = exc
    detail = str(failure).strip().splitlines()[0] if str(failure).strip() else type(failure).__name__
    raise TinymlError(f"cannot load Keras model {path}: {detail[:200]}") from failure


def _saved_model_input_shape(directory: Path) -> tuple[int, ...]:
    import tensorflow as tf

    with _quiet_converter() as captured:
        try:
            loaded = tf.saved_model.load(str(directory))
            signature = loaded.signatures["serving_default"]
            specs = [s for s in signature.structured_input_signature[1].values()]
        except Exception as exc:  # noqa: BLE001
            failure = exc
        else:
            failure = None
    if failure is not None:
        raise TinymlError(f"cannot load SavedModel {directory}: "
                          f"{(str(failure).strip().splitlines() or [type(failure).__name__])[0][:200]}") from failure
    return _single_input_shape([spec.shape.as_list() for spec in specs], "SavedModel's serving signature")


def convert_model(model_path: str | Path, calibration: np.ndarray, out_path: Path,
                  num_calibration: int | None = None,
                  progress: Callable[[str], None] | None = None) -> QuantizedModel:
    """`tinyml convert`: ONNX, Keras, SavedModel or float .tflite -> a checked full-int8 `.tflite`.

    All of `calibration` (float samples, NHWC for images) calibrates unless
    `num_calibration` caps it; its per-sample shape must be the model's input.
    `progress` receives one line per stage (loading TensorFlow takes seconds)."""
    model_path = Path(model_path)
    kind = model_kind(model_path)
    say = progress or (lambda text: None)
    count = len(np.asarray(calibration)) if num_calibration is None else num_calibration
    say(f"{kind.replace('_', ' ')} model {model_path.name}: full-int8 quantization calibrated on "
        f"{min(count, len(np.asarray(calibration)))} samples (TensorFlow's converter)")
    if kind == "onnx":
        from .quantize import convert_onnx_to_tflite

        return convert_onnx_to_tflite(model_path, calibration, out_path, num_calibration)
    if kind == "keras":
        model = _load_keras(model_path)
        input_shape = _single_input_shape([model.input_shape] if not isinstance(model.input_shape, list)
                                          else model.input_shape, "Keras model")
        samples = _calibration_samples(calibration, input_shape, max(count, 1))
        flatbuffer = keras_to_int8(model, [[s[None]] for s in samples])
    elif kind == "saved_model":
        samples = _calibration_samples(calibration, _saved_model_input_shape(model_path), max(count, 1))
        flatbuffer = saved_model_to_int8(model_path, [[s[None]] for s in samples])
    else:
        raw = model_path.read_bytes()
        samples = _calibration_samples(calibration, _input_shape_of_tflite(raw), max(count, 1))
        flatbuffer = float_tflite_to_int8(raw, [[s[None]] for s in samples])
    result = check_int8_model(flatbuffer)
    write_atomic(Path(out_path), flatbuffer)
    result.path = Path(out_path)
    return result
