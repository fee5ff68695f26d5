"""Compare the engine's C kernels with tflite-micro, byte for byte.

Three pieces:
  - `one_op_model` writes a one-operator int8 `.tflite` directly with TFLite's
    flatbuffer schema (any shape, quantization and option, in milliseconds),
    and `convert` makes one with TensorFlow's converter from a `tf.function`
    (what real models contain);
  - `run_tflm` runs a model in the `tflite-micro` package (the oracle);
  - `EngineLib` compiles kernel sources into a shared library with host gcc
    (once per session and set of sources) and calls them through ctypes, with
    params structs laid out from the kernels' own headers.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from tinyml.paths import firmware_dir
from tinyml.tflite_graph import load_tflite

ENGINE_DIR = firmware_dir() / "engine"
HOST_CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-shared", "-fPIC"]
ARM_CFLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
              "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-c"]


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return schema


# ---------------------------------------------------------------- models


@dataclass
class TensorSpec:
    """A tensor of a one-op model; `data` makes it a constant (e.g. MEAN's axes)."""

    shape: Sequence[int]
    scale: float = 1.0
    zero_point: int = 0
    dtype: str = "INT8"              # TensorType name: INT8, INT32, FLOAT32
    data: np.ndarray | None = field(default=None, repr=False)

    @property
    def quantized(self) -> bool:
        return self.dtype == "INT8"


def options(name: str, **fields: Any) -> Any:
    """A builtin options object, e.g. options("Pool2D", padding="SAME", strideW=2).

    Enum fields (padding, fusedActivationFunction) take their names.
    """
    schema = _schema()
    obj = getattr(schema, f"{name}OptionsT")()
    enums = {"padding": schema.Padding, "fusedActivationFunction": schema.ActivationFunctionType}
    for key, value in fields.items():
        if not hasattr(obj, key):
            raise AttributeError(f"{name}OptionsT has no field {key}")
        if key in enums and isinstance(value, str):
            value = getattr(enums[key], value)
        setattr(obj, key, value)
    return obj


def one_op_model(opcode: str, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
                 builtin_options: Any = None) -> bytes:
    """A `.tflite` with one builtin operator; non-constant inputs are the model inputs, in order."""
    import flatbuffers

    schema = _schema()
    code = getattr(schema.BuiltinOperator, opcode)
    model = schema.ModelT()
    model.version = 3
    model.description = "tinyml engine test"
    model.operatorCodes = [schema.OperatorCodeT(deprecatedBuiltinCode=min(code, 127), version=1,
                                                builtinCode=code)]
    model.buffers = [schema.BufferT()]
    sub = schema.SubGraphT()
    sub.tensors, sub.inputs, sub.outputs = [], [], []

    def add_tensor(spec: TensorSpec, name: str) -> int:
        tensor = schema.TensorT()
        tensor.shape = [int(d) for d in spec.shape]
        tensor.type = getattr(schema.TensorType, spec.dtype)
        tensor.name = name
        if spec.quantized:
            tensor.quantization = schema.QuantizationParametersT(
                scale=[float(spec.scale)], zeroPoint=[int(spec.zero_point)])
        if spec.data is not None:
            model.buffers.append(schema.BufferT(
                data=np.frombuffer(np.ascontiguousarray(spec.data).tobytes(), dtype=np.uint8)))
            tensor.buffer = len(model.buffers) - 1
        sub.tensors.append(tensor)
        return len(sub.tensors) - 1

    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs = []
    for i, spec in enumerate(inputs):
        index = add_tensor(spec, f"input{i}")
        op.inputs.append(index)
        if spec.data is None:
            sub.inputs.append(index)
    op.outputs = [add_tensor(spec, f"output{i}") for i, spec in enumerate(outputs)]
    sub.outputs = list(op.outputs)
    if builtin_options is not None:
        type_name = type(builtin_options).__name__[:-1]   # "Pool2DOptionsT" -> "Pool2DOptions"
        op.builtinOptionsType = getattr(schema.BuiltinOptions, type_name)
        op.builtinOptions = builtin_options
    sub.operators = [op]
    model.subgraphs = [sub]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def convert(fn: Callable, input_shapes: Sequence[Sequence[int]], input_ranges: Sequence[tuple[float, float]],
            seed: int = 0, float_io: bool = False) -> bytes:
    """Int8 `.tflite` of a `tf.function`, calibrated on uniform random inputs in `input_ranges`.

    float_io keeps float32 model inputs/outputs (the converter then adds
    QUANTIZE/DEQUANTIZE ops at the edges).
    """
    from tinyml.tf_convert import function_to_int8

    rng = np.random.default_rng(seed)
    samples = [[rng.uniform(lo, hi, shape).astype(np.float32) for shape, (lo, hi) in zip(input_shapes, input_ranges)]
               for _ in range(16)]
    return function_to_int8(fn, input_shapes, samples, float_io=float_io)


def run_tflm(model: bytes, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run one inference in tflite-micro; returns every model output."""
    from tflite_micro.python.tflite_micro import runtime

    total = sum(np.asarray(x).nbytes for x in inputs)
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=64 * 1024 + 16 * total + 4 * len(model))
    for i, x in enumerate(inputs):
        interpreter.set_input(np.ascontiguousarray(x), i)
    interpreter.invoke()
    return [np.array(interpreter.get_output(i)) for i in range(len(load_tflite(model).outputs))]


def random_int8(rng: np.random.Generator, shape: Sequence[int]) -> np.ndarray:
    return rng.integers(-128, 128, size=tuple(shape), dtype=np.int8)


def random_scale(rng: np.random.Generator, lo: float = 1e-3, hi: float = 1.0) -> float:
    """A float32 scale, log-uniform in [lo, hi]."""
    return float(np.float32(np.exp(rng.uniform(np.log(lo), np.log(hi)))))


# ---------------------------------------------------------------- kernels

_C_TYPES = {"int32_t": ctypes.c_int32, "uint32_t": ctypes.c_uint32, "int16_t": ctypes.c_int16,
            "int8_t": ctypes.c_int8, "uint8_t": ctypes.c_uint8, "float": ctypes.c_float}
_STRUCT = re.compile(r"typedef\s+struct\s*\{(?P<body>[^}]*)\}\s*(?P<name>\w+)\s*;", re.S)
_FIELD = re.compile(r"^\s*(?:const\s+)?(?P<type>\w+)\s+(?P<names>[^;]+);", re.M)
_DECLARATOR = re.compile(r"^\s*(?P<ptr>\*\s*)?(?P<name>\w+)\s*(?:\[(?P<n>\w+)\])?\s*$")
_DEFINE = re.compile(r"^#define\s+(\w+)\s+\(?(-?\d+)\)?\s*$", re.M)


def header_structs(header: Path) -> dict[str, type[ctypes.Structure]]:
    """ctypes mirrors of the `typedef struct {...} name;` in a kernel header (and tm_common.h)."""
    text = header.read_text()
    common = (header.parent / "tm_common.h")
    defines = {name: int(value) for name, value in _DEFINE.findall(common.read_text() + "\n" + text)}
    structs: dict[str, type[ctypes.Structure]] = {}
    for match in _STRUCT.finditer(text):
        body = re.sub(r"/\*.*?\*/", "", match["body"], flags=re.S)
        fields: list[tuple[str, Any]] = []
        for line in _FIELD.finditer(body):
            for declarator in line["names"].split(","):   # `int32_t input_h, input_w, input_c;`
                f = _DECLARATOR.match(declarator)
                if f is None:
                    raise ValueError(f"{header.name}: cannot read the field '{declarator.strip()}'")
                ctype: Any = ctypes.c_void_p if f["ptr"] else _C_TYPES[line["type"]]
                if f["n"]:
                    ctype = ctype * (defines[f["n"]] if f["n"] in defines else int(f["n"]))
                fields.append((f["name"], ctype))
        structs[match["name"]] = type(match["name"], (ctypes.Structure,), {"_fields_": fields})
    return structs


def _pointer(array: np.ndarray | None) -> ctypes.c_void_p:
    return ctypes.c_void_p(None if array is None else array.ctypes.data)


class EngineLib:
    """Kernel sources compiled for the host; call kernels with numpy arrays."""

    _cache: dict[str, "EngineLib"] = {}
    _build_dir: Path | None = None

    def __init__(self, library: Path, headers: Sequence[Path]) -> None:
        self.cdll = ctypes.CDLL(str(library))
        self.structs: dict[str, type[ctypes.Structure]] = {}
        for header in headers:
            self.structs.update(header_structs(header))

    @classmethod
    def build(cls, kernels: Sequence[str], defines: Sequence[str] = ()) -> "EngineLib":
        """Compile firmware/engine/<kernel>.c for each kernel (e.g. "tm_add"); cached."""
        sources = [ENGINE_DIR / f"{k}.c" for k in kernels]
        digest = hashlib.sha256()
        for path in [*sources, ENGINE_DIR / "tm_common.h", *(ENGINE_DIR / f"{k}.h" for k in kernels)]:
            digest.update(path.name.encode() + path.read_bytes())
        digest.update(" ".join(defines).encode())
        key = digest.hexdigest()[:16]
        if key not in cls._cache:
            if cls._build_dir is None:
                cls._build_dir = Path(tempfile.mkdtemp(prefix="tinyml-engine-"))
                atexit.register(shutil.rmtree, cls._build_dir, True)
            library = cls._build_dir / f"engine-{key}.so"
            command = ["gcc", *HOST_CFLAGS, f"-I{ENGINE_DIR}", *(f"-D{d}" for d in defines),
                       *map(str, sources), "-o", str(library)]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"gcc failed:\n{' '.join(command)}\n{result.stderr}")
            cls._cache[key] = cls(library, [ENGINE_DIR / f"{k}.h" for k in kernels])
        return cls._cache[key]

    def params(self, type_name: str, **values: Any) -> ctypes.Structure:
        """A params struct; every field must be given (arrays from sequences, shorter ones zero-filled)."""
        struct = self.structs[type_name]()
        names = [name for name, _ in struct._fields_]
        missing = set(names) - set(values)
        unknown = set(values) - set(names)
        if missing or unknown:
            raise TypeError(f"{type_name}: missing {sorted(missing)}, unknown {sorted(unknown)}")
        for name, ctype in struct._fields_:
            value = values[name]
            if isinstance(ctype, type) and issubclass(ctype, ctypes.Array):
                array = getattr(struct, name)
                for i, v in enumerate(value):
                    array[i] = v
            else:
                setattr(struct, name, value)
        return struct

    def call(self, function: str, params: ctypes.Structure, *arrays: np.ndarray | None) -> None:
        """function(&params, arrays...): each array passed as a pointer to its data."""
        getattr(self.cdll, function)(ctypes.byref(params), *map(_pointer, arrays))


def pointer_array(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """A C array of data pointers (e.g. CONCATENATION's inputs); keep `arrays` alive."""
    return np.array([a.ctypes.data for a in arrays], dtype=np.uintp)


# ---------------------------------------------------------------- cross-compile


def arm_text_bytes(kernel: str, workdir: Path) -> int:
    """Compile firmware/engine/<kernel>.c for cortex-m4 and return its .text size."""
    gcc = shutil.which("arm-none-eabi-gcc")
    size = shutil.which("arm-none-eabi-size")
    if gcc is None or size is None:
        raise FileNotFoundError("arm-none-eabi-gcc / arm-none-eabi-size not installed")
    obj = workdir / f"{kernel}.o"
    command = [gcc, *ARM_CFLAGS, f"-I{ENGINE_DIR}", str(ENGINE_DIR / f"{kernel}.c"), "-o", str(obj)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"arm-none-eabi-gcc failed:\n{' '.join(command)}\n{result.stderr}")
    out = subprocess.run([size, str(obj)], capture_output=True, text=True, check=True).stdout
    return int(out.splitlines()[1].split()[0])


def check_arm_build(kernel: str, workdir: Path) -> int:
    """Test helper: the kernel compiles warning-free for cortex-m4; prints and returns its .text bytes."""
    import pytest

    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    text = arm_text_bytes(kernel, workdir)
    print(f"{kernel}: cortex-m4 .text {text} bytes")
    assert text > 0
    return text


def first_op(model: bytes, opcode: str):
    """(graph, operator) of a model whose operators are `opcode` possibly wrapped in QUANTIZE/DEQUANTIZE."""
    graph = load_tflite(model)
    ops = [op for op in graph.operators if op.opcode == opcode]
    assert len(ops) == 1, f"expected one {opcode}, got {[op.opcode for op in graph.operators]}"
    return graph, ops[0]
