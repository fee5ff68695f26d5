"""Graph -> layers: validate every op and option, and precompute what TFLM does at Prepare.

A `Layer` is everything the C writer needs for one kernel call: the params
struct fields (ints or C expressions), the constant arrays they point at, and
the tensor arguments. Nothing here knows about memory offsets (see planner.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import TinymlError
from ..tflite_graph import Graph, Operator, Tensor
from .fold import fold_static_shapes

TARGETS = ("generic", "cortex-m4", "cortex-m7", "rv32", "cortex-m0")
DSP_TARGETS = ("cortex-m4", "cortex-m7")
# Cores without SIMD multiply-accumulate whose convolutions and fully connected layers take the
# folded bias and requantization records (the scalar 2x2 block of tm_support_dot_s8.c); "generic" keeps
# TFLite's reference arithmetic.
SCALAR_TARGETS = ("rv32", "cortex-m0")
OPTIMIZE = ("speed", "size")
FUSED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


@dataclass
class ConstArray:
    """A `static const` array in model.c (flash)."""

    name: str
    ctype: str             # "int8_t", "uint8_t", "int16_t", "int32_t", "float", "tm_requant_t" (rows of 3 int32)
    values: np.ndarray     # flattened (tm_requant_t: shape (n, 3))

    @property
    def nbytes(self) -> int:
        return int(self.values.size) * {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "int32_t": 4, "float": 4,
                                        "tm_requant_t": 4}[self.ctype]


@dataclass
class Arg:
    """A kernel argument after the params pointer."""

    kind: str              # "tensor", "const" (a ConstArray), "array" (of tensor/const pointers), "scratch", "null"
    tensor: int = -1
    ctype: str = "int8_t"  # element type the kernel expects (pointer target)
    const: bool = False    # input (const pointer) or output
    name: str = ""         # ConstArray name for "const"
    items: list["Arg"] = field(default_factory=list)  # for "array"


@dataclass
class Layer:
    op_index: int
    opcode: str
    kernel: str                      # C function, e.g. "tm_conv_2d_s8"
    params_type: str                 # e.g. "tm_conv_2d_params_t"
    header: str                      # e.g. "tm_conv_2d.h"
    source: str                      # e.g. "tm_conv_2d.c"
    fields: dict[str, Any]           # params struct: field -> int or C expression (str)
    consts: list[ConstArray]
    inputs: list[int]                # activation tensors read
    outputs: list[int]               # activation tensors written
    args: list[Arg]
    scratch_bytes: int = 0
    macs: int = 0
    params: int = 0                  # weights + biases in the model
    alias: bool = False              # no code: the output is the input's storage (RESHAPE)
    in_place: bool = False           # output may take over inputs[0]'s storage (elementwise)
    extra: dict[str, Any] = field(default_factory=dict)


class LoweringContext:
    """What an op lowering needs: the graph, the target, and helpers for messages and constants."""

    def __init__(self, graph: Graph, target: str, optimize: str = "speed") -> None:
        self.graph = graph
        self.target = target
        self.dsp = target in DSP_TARGETS
        self.folded = target in DSP_TARGETS or target in SCALAR_TARGETS
        # "size" leaves out the layouts that trade flash for speed (int16-widened
        # weights of widened-patch convolutions and packed 3x3 depthwise taps).
        self.widen = optimize == "speed"

    def int8_io(self, op: Operator) -> tuple[Tensor, Tensor]:
        """The op's first input and output, both int8, the input an activation (not a constant)."""
        inp = self.tensor(op, 0)
        out = self.tensor(op, 0, "output")
        self.require_dtype(op, inp, "input", np.int8)
        self.require_dtype(op, out, "output", np.int8)
        self.require_activation(op, inp, "input")
        return inp, out

    def fail(self, op: Operator, what: str) -> TinymlError:
        return TinymlError(f"unsupported {op.opcode} {what} at operator {op.index}")

    def tensor(self, op: Operator, slot: int, role: str = "input") -> Tensor:
        indices = op.inputs if role == "input" else op.outputs
        if slot >= len(indices) or indices[slot] < 0:
            raise TinymlError(f"{op.opcode} at operator {op.index} lacks {role} {slot}")
        return self.graph.tensors[indices[slot]]

    def optional(self, op: Operator, slot: int) -> Tensor | None:
        if slot >= len(op.inputs) or op.inputs[slot] < 0:
            return None
        return self.graph.tensors[op.inputs[slot]]

    def require_dtype(self, op: Operator, tensor: Tensor, role: str, *dtypes: Any) -> None:
        if tensor.dtype not in [np.dtype(d) for d in dtypes]:
            names = "/".join(np.dtype(d).name for d in dtypes)
            raise self.fail(op, f"{role} type {np.dtype(tensor.dtype).name} (engine needs {names})")

    def require_constant(self, op: Operator, tensor: Tensor, role: str) -> np.ndarray:
        if tensor.data is None:
            raise self.fail(op, f"option non-constant {role}")
        return tensor.data

    def require_activation(self, op: Operator, tensor: Tensor, role: str) -> None:
        if tensor.data is not None:
            raise self.fail(op, f"option constant {role}")

    def quant1(self, op: Operator, tensor: Tensor, role: str) -> tuple[float, int]:
        """Per-tensor (scale, zero point) of an activation."""
        if tensor.scale.size != 1 or tensor.zero_point.size != 1:
            raise self.fail(op, f"option {role} quantization with {tensor.scale.size} scales (needs per-tensor)")
        return float(tensor.scale[0]), int(tensor.zero_point[0])

    def activation(self, op: Operator) -> str:
        act = op.options.get("fused_activation_function", "NONE")
        if act not in FUSED_ACTIVATIONS:
            raise self.fail(op, f"option fused_activation_function {act}")
        return act


def c_name(layer_index: int, what: str) -> str:
    return f"l{layer_index}_{what}"


Lowering = Callable[[LoweringContext, Operator, int], Layer]
_LOWERINGS: dict[str, Lowering] = {}


def lowering(*opcodes: str) -> Callable[[Lowering], Lowering]:
    def register(function: Lowering) -> Lowering:
        for opcode in opcodes:
            _LOWERINGS[opcode] = function
        return function

    return register


def supported_ops() -> list[str]:
    _load_lowerings()
    return sorted(_LOWERINGS)


def support_summary() -> list[tuple[str, str]]:
    """What the compiler takes, from its own tables, as (topic, text) rows for `tinyml compile --help`."""
    from .fold import foldable_ops

    return [
        ("ops", ", ".join(supported_ops())),
        ("folded", "shape arithmetic whose values are static, evaluated at compile time (Keras' Flatten): "
                   + ", ".join(foldable_ops())),
        ("activations", "fused " + ", ".join(FUSED_ACTIVATIONS)),
        ("targets", f"{', '.join(TARGETS)} (DSP path: {', '.join(DSP_TARGETS)})"),
        ("optimize", ", ".join(OPTIMIZE)),
        ("tensors", "int8 activations, per-tensor quantized; int8 weights per tensor or per channel; int32 "
                    "biases; float32 only into a first QUANTIZE and out of a last DEQUANTIZE; one input, one output"),
    ]


def _load_lowerings() -> None:
    # The op modules register themselves on import.
    from . import ops_conv  # noqa: F401
    from . import ops_misc  # noqa: F401


def lower_graph(graph: Graph, target: str, optimize: str = "speed") -> list[Layer]:
    """Validate the graph and lower each operator; raises TinymlError on the first unsupported one."""
    _load_lowerings()
    if target not in TARGETS:
        raise TinymlError(f"unknown target '{target}' (choose from {', '.join(TARGETS)})")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TinymlError(
            f"model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; the engine needs one of each"
        )
    # Shapes first (Keras' Flatten computes its RESHAPE target at run time), then
    # "float model" before any op: a float model's ops are not what is wrong with it.
    graph = fold_static_shapes(graph)
    _check_int8_body(graph)
    for op in graph.operators:
        if op.opcode not in _LOWERINGS:
            raise TinymlError(f"unsupported op '{op.opcode}' at operator {op.index}")
    if optimize not in OPTIMIZE:
        raise TinymlError(f"unknown optimization '{optimize}' (choose from {', '.join(OPTIMIZE)})")
    context = LoweringContext(graph, target, optimize)
    return [_LOWERINGS[op.opcode](context, op, layer_index) for layer_index, op in enumerate(graph.operators)]


def _check_int8_body(graph: Graph) -> None:
    """Float I/O is fine only when QUANTIZE/DEQUANTIZE bracket an int8 body."""
    float_tensors = [t for t in graph.tensors if t.data is None and t.dtype == np.float32]
    if not float_tensors:
        return
    bracket = set()
    for op in graph.operators:
        if op.opcode == "QUANTIZE" and op.inputs and op.inputs[0] == graph.inputs[0]:
            bracket.add(op.inputs[0])
        if op.opcode == "DEQUANTIZE" and op.outputs and op.outputs[0] == graph.outputs[0]:
            bracket.add(op.outputs[0])
    inner = [t for t in float_tensors if t.index not in bracket]
    if inner:
        quantized = (np.int8, np.uint8, np.int16)
        if not any(t.dtype in quantized for t in graph.tensors if t.data is None):
            raise TinymlError("float model: the engine runs full-int8 models (quantize it first, tinyml convert)")
        raise TinymlError(
            f"float tensor '{inner[0].name}' inside the model: the engine needs an int8 body "
            "(float only at the input QUANTIZE and output DEQUANTIZE)"
        )
