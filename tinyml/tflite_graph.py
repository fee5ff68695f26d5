"""The project's one `.tflite` reader: a flat, numpy-friendly view of a TFLite model.

It uses the flatbuffer schema that ships with the tflite-micro package (no
TensorFlow import, which costs seconds). Only single-subgraph models are read;
anything else is a TinymlError with a one-line message.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TinymlError

_FILE_IDENTIFIER = b"TFL3"

# TensorType enum value -> numpy dtype (types without a numpy equivalent are absent).
_NUMPY_DTYPES: dict[str, Any] = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64,
    "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "UINT16": np.uint16,
    "INT32": np.int32, "UINT32": np.uint32, "INT64": np.int64, "UINT64": np.uint64,
    "BOOL": np.bool_, "COMPLEX64": np.complex64, "COMPLEX128": np.complex128,
}


def _schema():
    # Imported lazily: the generated module is large and only needed here.
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return schema


def _enum_names(enum_class: type) -> dict[int, str]:
    return {value: name for name, value in vars(enum_class).items()
            if not name.startswith("_") and isinstance(value, int)}


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: np.ndarray            # float32, empty when not quantized
    zero_point: np.ndarray       # int64, empty when not quantized
    quantized_dimension: int
    data: np.ndarray | None = field(default=None, repr=False)  # constant contents, None for activations

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    @property
    def is_constant(self) -> bool:
        return self.data is not None


@dataclass
class Operator:
    index: int
    opcode: str                  # builtin name, e.g. "CONV_2D"; "CUSTOM:<name>" for custom ops
    inputs: list[int]            # tensor indices, -1 = optional input absent
    outputs: list[int]
    options: dict[str, Any]      # builtin options in snake_case, enums as their names
    version: int = 1


@dataclass
class Graph:
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    sha256: str
    size_bytes: int
    version: int
    description: str

    @property
    def ops(self) -> list[str]:
        """Distinct opcodes in first-use order."""
        return list(dict.fromkeys(op.opcode for op in self.operators))


def _snake(name: str) -> str:
    # dilationWFactor -> dilation_w_factor, keepNumDims -> keep_num_dims
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _options_dict(options: Any, schema: Any) -> dict[str, Any]:
    """Builtin options object -> {snake_case: value}, enums given by name."""
    if options is None:
        return {}
    enum_fields = {
        "padding": _enum_names(schema.Padding),
        "fused_activation_function": _enum_names(schema.ActivationFunctionType),
        "weights_format": _enum_names(schema.FullyConnectedOptionsWeightsFormat),
        "quantized_bias_type": _enum_names(schema.TensorType),
        "mode": _enum_names(schema.MirrorPadMode),
        "combiner": _enum_names(schema.CombinerType),
        "kernel_type": _enum_names(schema.LSTMKernelType),
        "in_data_type": _enum_names(schema.TensorType),
        "out_data_type": _enum_names(schema.TensorType),
        "output_type": _enum_names(schema.TensorType),
    }
    result: dict[str, Any] = {}
    for key, value in vars(options).items():
        name = _snake(key)
        if name in enum_fields and isinstance(value, int) and not isinstance(value, bool):
            value = enum_fields[name].get(value, value)
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, bytes):
            value = value.decode(errors="replace")
        elif value is not None and hasattr(value, "__dict__"):
            value = _options_dict(value, schema)
        result[name] = value
    return result


def _buffer_bytes(buffer: Any, raw: bytes, what: str) -> bytes | None:
    if buffer is None:
        return None
    if buffer.data is not None and len(buffer.data) > 0:
        data = buffer.data
        return data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    # Models over 2 GB keep buffers after the flatbuffer, addressed by offset/size.
    if buffer.offset > 1 and buffer.size > 0:
        end = buffer.offset + buffer.size
        if end > len(raw):
            raise TinymlError(f"{what}: buffer past the end of the file (truncated?)")
        return raw[buffer.offset:end]
    return None


def _read_tensor(index: int, t: Any, buffers: list[Any], raw: bytes, type_names: dict[int, str], what: str) -> Tensor:
    type_name = type_names.get(t.type, str(t.type))
    if type_name not in _NUMPY_DTYPES:
        raise TinymlError(f"{what}: tensor {index} has unsupported type {type_name}")
    dtype = np.dtype(_NUMPY_DTYPES[type_name])
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
    name = t.name.decode() if isinstance(t.name, bytes) else (t.name or "")
    q = t.quantization
    scale = np.asarray(q.scale if q is not None and q.scale is not None else [], dtype=np.float32).reshape(-1)
    zero_point = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [],
                            dtype=np.int64).reshape(-1)
    quantized_dimension = int(q.quantizedDimension) if q is not None else 0
    data = None
    if 0 <= t.buffer < len(buffers):
        content = _buffer_bytes(buffers[t.buffer], raw, what)
        if content is not None:
            count = int(np.prod(shape, dtype=np.int64))
            if len(content) != count * dtype.itemsize:
                raise TinymlError(
                    f"{what}: tensor {index} '{name}' buffer holds {len(content)} bytes, "
                    f"shape {list(shape)} {dtype.name} needs {count * dtype.itemsize}"
                )
            data = np.frombuffer(content, dtype=dtype).reshape(shape).copy()
    elif t.buffer != 0:
        raise TinymlError(f"{what}: tensor {index} refers to missing buffer {t.buffer}")
    return Tensor(index, name, shape, dtype, scale, zero_point, quantized_dimension, data)


def load_tflite(source: str | Path | bytes) -> Graph:
    """Read a single-subgraph `.tflite` from a path or its bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
        what = "model"
    else:
        path = Path(source)
        what = str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise TinymlError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(raw) < 8 or raw[4:8] != _FILE_IDENTIFIER:
        raise TinymlError(f"{what} is not a TFLite model (no TFL3 identifier)")
    schema = _schema()
    try:
        model = schema.ModelT.InitFromPackedBuf(raw, 0)
    except Exception as exc:  # the flatbuffer reader raises anything on corrupt bytes
        raise TinymlError(f"{what}: corrupt or truncated TFLite file ({type(exc).__name__})") from exc
    subgraphs = model.subgraphs or []
    if len(subgraphs) != 1:
        raise TinymlError(f"{what}: {len(subgraphs)} subgraphs, only single-subgraph models are supported")
    subgraph = subgraphs[0]
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = _enum_names(schema.TensorType)
    buffers = model.buffers or []
    try:
        tensors = [_read_tensor(i, t, buffers, raw, type_names, what) for i, t in enumerate(subgraph.tensors or [])]
        operator_codes = model.operatorCodes or []
        operators = []
        for index, op in enumerate(subgraph.operators or []):
            if not 0 <= op.opcodeIndex < len(operator_codes):
                raise TinymlError(f"{what}: operator {index} has bad opcode index {op.opcodeIndex}")
            code = operator_codes[op.opcodeIndex]
            # Old files keep the code in deprecatedBuiltinCode (< 127); new ones in builtinCode.
            builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
            if builtin == schema.BuiltinOperator.CUSTOM:
                custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
                opcode = f"CUSTOM:{custom}"
            else:
                opcode = op_names.get(builtin, f"BUILTIN_{builtin}")
            inputs = [int(i) for i in (op.inputs if op.inputs is not None else [])]
            outputs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
            for i in (*inputs, *outputs):
                if i >= len(tensors) or i < -1:
                    raise TinymlError(f"{what}: operator {index} ({opcode}) refers to missing tensor {i}")
            operators.append(Operator(index, opcode, inputs, outputs,
                                      _options_dict(op.builtinOptions, schema), int(code.version)))
        graph_inputs = [int(i) for i in (subgraph.inputs if subgraph.inputs is not None else [])]
        graph_outputs = [int(i) for i in (subgraph.outputs if subgraph.outputs is not None else [])]
        for i in (*graph_inputs, *graph_outputs):
            if not 0 <= i < len(tensors):
                raise TinymlError(f"{what}: graph input/output refers to missing tensor {i}")
    except TinymlError:
        raise
    except Exception as exc:
        raise TinymlError(f"{what}: corrupt TFLite file ({type(exc).__name__}: {exc})") from exc
    description = model.description.decode() if isinstance(model.description, bytes) else (model.description or "")
    return Graph(
        tensors=tensors,
        operators=operators,
        inputs=graph_inputs,
        outputs=graph_outputs,
        sha256=hashlib.sha256(raw).hexdigest(),
        size_bytes=len(raw),
        version=int(model.version),
        description=description,
    )
