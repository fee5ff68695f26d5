"""What the three MicroPython forms share: the module's Python-facing description
(the attributes every form exposes, so `m.input_shape` etc. read the same whatever was
built), names, and the targets `tinyml compile` offers for MicroPython."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import TinymlError
from ..tflite_graph import Graph

PY_TARGET = "micropython-py"
MODULE_TARGET = "micropython-module"
NATMOD_TARGET = "micropython-natmod"
TARGETS = (PY_TARGET, MODULE_TARGET, NATMOD_TARGET)
DEFAULT_MODULE_NAME = "model"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
_DTYPES = {np.dtype(np.int8): "int8", np.dtype(np.float32): "float32"}


def check_module_name(name: str) -> str:
    """A Python module name that is also a C identifier (MicroPython's QSTRs, file names)."""
    if not _IDENTIFIER.match(name):
        raise TinymlError(f"module name '{name}' is not a Python identifier of at most 32 characters")
    return name


@dataclass(frozen=True)
class ModelInterface:
    """The attributes of the module on the device (the same for all three forms)."""

    sha256: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_dtype: str
    output_dtype: str
    input_bytes: int
    output_bytes: int
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int

    @classmethod
    def of(cls, graph: Graph) -> "ModelInterface":
        inp = graph.tensors[graph.inputs[0]]
        out = graph.tensors[graph.outputs[0]]
        for tensor, role in ((inp, "input"), (out, "output")):
            if np.dtype(tensor.dtype) not in _DTYPES:
                raise TinymlError(f"model {role} type {np.dtype(tensor.dtype).name}: MicroPython modules take "
                                  "int8 or float32")

        def quant(tensor) -> tuple[float, int]:
            scale = float(np.float32(tensor.scale[0])) if tensor.scale.size else 0.0
            zero_point = int(tensor.zero_point[0]) if tensor.zero_point.size else 0
            return scale, zero_point

        in_scale, in_zp = quant(inp)
        out_scale, out_zp = quant(out)
        return cls(graph.sha256, tuple(int(d) for d in inp.shape), tuple(int(d) for d in out.shape),
                   _DTYPES[np.dtype(inp.dtype)], _DTYPES[np.dtype(out.dtype)], int(inp.nbytes), int(out.nbytes),
                   in_scale, in_zp, out_scale, out_zp)
