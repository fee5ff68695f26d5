"""Helpers for the engine tests: Keras model -> int8 .tflite -> compile_tflite ->
shared library (host gcc) -> run via ctypes, and the same input on tflite-micro.

Converted models and built libraries are cached per test session (in-process
dict + one temp directory): converting with TF costs about a second.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tinyml.paths import firmware_dir  # noqa: E402

ENGINE_DIR = firmware_dir() / "engine"
C_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
M4_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]

_WORK = Path(tempfile.mkdtemp(prefix="tinyml-engine-tests-"))
atexit.register(shutil.rmtree, _WORK, True)
_MODELS: dict[str, Path] = {}
_ENGINES: dict[tuple, "Engine"] = {}


def work_dir() -> Path:
    return _WORK


def convert_keras(build: Callable[[], "object"], input_shape: Sequence[int], seed: int = 0,
                  low: float = -1.0, high: float = 1.0, key: str | None = None) -> Path:
    """Build a Keras model with `build()` and convert it to a full-int8 .tflite (cached by key).

    Representative data is uniform in [low, high): the range sets the input
    scale and zero point.
    """
    if key is not None and key in _MODELS:
        return _MODELS[key]
    import tensorflow as tf

    from tinyml.tf_convert import keras_to_int8

    tf.keras.utils.set_random_seed(seed)
    model = build()
    rng = np.random.default_rng(seed)
    samples = [[rng.uniform(low, high, size=(1, *input_shape)).astype(np.float32)] for _ in range(24)]
    raw = keras_to_int8(model, samples)
    digest = hashlib.sha256(raw).hexdigest()[:16]
    path = _WORK / f"model_{digest}.tflite"
    path.write_bytes(raw)
    if key is not None:
        _MODELS[key] = path
    return path


def narrow_activations(path: Path, zero_point: int = -100, levels: int = 100) -> Path:
    """A copy of the model whose CONV_2D / DEPTHWISE_CONV_2D outputs with a fused RELU6 are
    requantized to (6 / levels, zero_point): the activation range [zero_point, zero_point + levels]
    is then narrower than int8 on both sides, as deep layers of real models can get it."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(path.read_bytes(), 0))
    codes = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    for graph in model.subgraphs:
        for op in graph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            name = codes.get(max(code.builtinCode, code.deprecatedBuiltinCode))
            options = op.builtinOptions
            if name in ("CONV_2D", "DEPTHWISE_CONV_2D") and options.fusedActivationFunction == \
                    schema.ActivationFunctionType.RELU6:
                quant = graph.tensors[op.outputs[0]].quantization
                quant.scale, quant.zeroPoint = [6.0 / levels], [zero_point]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out = path.with_name(path.stem + "_narrow.tflite")
    out.write_bytes(bytes(builder.Output()))
    return out


def scale_channels(layer, rng: np.random.Generator, spread: float = 8.0) -> None:
    """Multiply each output channel's kernel by its own random factor (distinct per-channel scales)."""
    weights = layer.get_weights()
    kernel = weights[0]
    axis = -1 if kernel.ndim != 4 or layer.__class__.__name__ != "DepthwiseConv2D" else 2
    shape = [1] * kernel.ndim
    shape[axis] = kernel.shape[axis]
    factors = np.exp(rng.uniform(-np.log(spread), np.log(spread), size=kernel.shape[axis]))
    if layer.__class__.__name__ == "DepthwiseConv2D":
        # kernel [kh, kw, in, multiplier]: scale each (in, m) channel
        factors = np.exp(rng.uniform(-np.log(spread), np.log(spread), size=kernel.shape[2:]))
        kernel = kernel * factors[None, None]
    else:
        kernel = kernel * factors.reshape(shape)
    weights[0] = kernel.astype(np.float32)
    if len(weights) > 1:
        weights[1] = rng.normal(0, 0.5, size=weights[1].shape).astype(np.float32)
    layer.set_weights(weights)


@dataclass
class Engine:
    """A compiled model loaded from a shared library."""

    lib: ctypes.CDLL
    out_dir: Path
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_dtype: np.dtype
    output_dtype: np.dtype
    compile_info: dict

    def invoke(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=self.input_dtype).reshape(self.input_shape)
        out = np.zeros(self.output_shape, dtype=self.output_dtype)
        status = self.lib.tinyml_model_invoke(x.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p))
        assert status == 0
        return out

    def run(self, inputs: np.ndarray) -> np.ndarray:
        return np.stack([self.invoke(x) for x in inputs])


def engine_sources(compile_json: dict) -> list[Path]:
    return [ENGINE_DIR / name for name in compile_json["engine_sources"]]


def build_engine(model: Path, target: str = "generic", defines: Sequence[str] = (), opt: str = "-O1",
                 optimize: str = "speed") -> Engine:
    """compile_tflite + gcc -shared; cached per (model, target, defines, opt, optimize)."""
    from tinyml.compiler import compile_tflite
    from tinyml.tflite_graph import load_tflite

    key = (str(model), target, tuple(defines), opt) + ((optimize,) if optimize != "speed" else ())
    if key in _ENGINES:
        return _ENGINES[key]
    tag = hashlib.sha256(repr(key).encode()).hexdigest()[:12]
    out_dir = _WORK / f"c_{tag}"
    result = compile_tflite(model, out_dir, target=target, optimize=optimize)
    info = json.loads((out_dir / "compile.json").read_text())
    lib_path = out_dir / "libmodel.so"
    command = ["gcc", *C_FLAGS, opt, "-shared", "-fPIC", *[f"-D{d}" for d in defines],
               f"-I{ENGINE_DIR}", f"-I{out_dir}", str(out_dir / "model.c"),
               *map(str, engine_sources(info)), "-o", str(lib_path)]
    subprocess.run(command, check=True, capture_output=True, text=True)
    lib = ctypes.CDLL(str(lib_path))
    lib.tinyml_model_invoke.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.tinyml_model_invoke.restype = ctypes.c_int
    lib.tinyml_model_layer_name.argtypes = [ctypes.c_int]
    lib.tinyml_model_layer_name.restype = ctypes.c_char_p
    graph = load_tflite(model)
    inp, out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    engine = Engine(lib, out_dir, inp.shape, out.shape, np.dtype(inp.dtype), np.dtype(out.dtype), info)
    assert result.arena_bytes == info["arena_bytes"]
    _ENGINES[key] = engine
    return engine


def tflm_outputs(model: Path, inputs: np.ndarray) -> np.ndarray:
    """tflite-micro's outputs, one invoke per input (any I/O dtype)."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_file(str(model))
    outputs = []
    for x in inputs:
        detail = interpreter.get_input_details(0)
        interpreter.set_input(x.reshape(detail["shape"]).astype(detail["dtype"]), 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0).copy())
    return np.stack(outputs)


def random_inputs(engine: Engine, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (count, *engine.input_shape)
    if engine.input_dtype == np.int8:
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    return rng.uniform(-1, 1, size=shape).astype(engine.input_dtype)


def assert_engine_matches_tflm(model: Path, count: int = 6, seed: int = 0, target: str = "generic",
                               defines: Sequence[str] = (), optimize: str = "speed") -> Engine:
    engine = build_engine(model, target, defines, optimize=optimize)
    inputs = random_inputs(engine, count, seed)
    ours = engine.run(inputs)
    theirs = tflm_outputs(model, inputs).reshape(ours.shape)
    if not np.array_equal(ours.view(np.uint8), theirs.view(np.uint8)):
        diff = np.argwhere(ours != theirs)
        first = tuple(diff[0])
        raise AssertionError(
            f"{len(diff)} of {ours.size} outputs differ from tflite-micro, first at {first}: "
            f"ours {ours[first]} tflm {theirs[first]} ({model.name}, target {target}, {list(defines)})"
        )
    return engine


def arm_gcc_available() -> bool:
    return shutil.which("arm-none-eabi-gcc") is not None


def qemu_arm_available() -> bool:
    return shutil.which("qemu-arm") is not None and arm_gcc_available()
