"""Graph pass before lowering: fold shape arithmetic whose values are static.

Keras' `Flatten` (and other layers written for a dynamic batch) becomes
SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE in a `.tflite`: the RESHAPE's target
shape is computed at run time from the input's shape. On a microcontroller
every shape is known when the model is compiled, so these ops are evaluated
here, their outputs become constants, and the ops disappear. What is left for
the lowering is a RESHAPE with a constant shape (an alias, no code).

Only integer tensors (int32/int64, the type of shapes) are folded; int8
activations are never touched. An op is folded when every input it reads is
known: a constant, or (for SHAPE) a tensor whose shape is static.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from ..errors import TinymlError
from ..tflite_graph import Graph, Operator, Tensor

_SHAPE_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))

Evaluate = Callable[[Operator, list["np.ndarray | None"], list[Tensor]], np.ndarray]
_FOLDERS: dict[str, Evaluate] = {}


def _folder(*opcodes: str) -> Callable[[Evaluate], Evaluate]:
    def register(function: Evaluate) -> Evaluate:
        for opcode in opcodes:
            _FOLDERS[opcode] = function
        return function

    return register


def foldable_ops() -> list[str]:
    return sorted(_FOLDERS)


@_folder("SHAPE")
def _shape(op: Operator, values: list[np.ndarray | None], inputs: list[Tensor]) -> np.ndarray:
    return np.asarray(inputs[0].shape, dtype=np.int64)


def _slice_bound(value: int, size: int, stride: int, is_begin: bool, masked: bool) -> int:
    """TFLite's StridedSlice start/stop for one axis (negative indices wrap, masks take the full range)."""
    if masked:
        if is_begin:
            return 0 if stride > 0 else size - 1
        return size if stride > 0 else -1
    if value < 0:
        value += size
    if stride > 0:
        return min(max(value, 0), size)
    return min(max(value, -1), size - 1)


@_folder("STRIDED_SLICE")
def _strided_slice(op: Operator, values: list[np.ndarray | None], inputs: list[Tensor]) -> np.ndarray:
    data, begin, end = values[0], values[1], values[2]
    strides = values[3] if len(values) > 3 and values[3] is not None else np.ones_like(begin)
    options = op.options
    if options.get("ellipsis_mask", 0) or options.get("new_axis_mask", 0) or options.get("offset", False):
        raise _NotFoldable
    begin_mask, end_mask = int(options.get("begin_mask", 0)), int(options.get("end_mask", 0))
    shrink = int(options.get("shrink_axis_mask", 0))
    index: list[slice | int] = []
    for axis in range(data.ndim):
        if axis >= len(begin):
            index.append(slice(None))
            continue
        size, stride = data.shape[axis], int(strides[axis])
        start = _slice_bound(int(begin[axis]), size, stride, True, bool(begin_mask >> axis & 1))
        if shrink >> axis & 1:
            index.append(start)
            continue
        stop = _slice_bound(int(end[axis]), size, stride, False, bool(end_mask >> axis & 1))
        index.append(slice(start, stop if stop >= 0 else None, stride))
    return np.asarray(data[tuple(index)])


@_folder("PACK")
def _pack(op: Operator, values: list[np.ndarray | None], inputs: list[Tensor]) -> np.ndarray:
    return np.stack([np.asarray(v) for v in values], axis=int(op.options.get("axis", 0)))


@_folder("CONCATENATION")
def _concatenation(op: Operator, values: list[np.ndarray | None], inputs: list[Tensor]) -> np.ndarray:
    if op.options.get("fused_activation_function", "NONE") != "NONE":
        raise _NotFoldable
    return np.concatenate([np.atleast_1d(v) for v in values], axis=int(op.options.get("axis", 0)))


@_folder("GATHER")
def _gather(op: Operator, values: list[np.ndarray | None], inputs: list[Tensor]) -> np.ndarray:
    if op.options.get("batch_dims", 0):
        raise _NotFoldable
    return np.take(values[0], values[1].astype(np.int64), axis=int(op.options.get("axis", 0)))


@_folder("SLICE")
def _slice(op: Operator, values: list[np.ndarray | None], inputs: list[Tensor]) -> np.ndarray:
    data, begin, size = values
    index = tuple(slice(int(b), None if int(s) < 0 else int(b) + int(s)) for b, s in zip(begin, size))
    return np.asarray(data[index])


@_folder("REDUCE_PROD")
def _reduce_prod(op: Operator, values: list[np.ndarray | None], inputs: list[Tensor]) -> np.ndarray:
    axes = tuple(int(a) for a in np.atleast_1d(values[1]))
    return np.prod(values[0], axis=axes, keepdims=bool(op.options.get("keep_dims", False)))


@_folder("MUL", "ADD", "SUB", "FLOOR_DIV")
def _arithmetic(op: Operator, values: list[np.ndarray | None], inputs: list[Tensor]) -> np.ndarray:
    if op.options.get("fused_activation_function", "NONE") != "NONE":
        raise _NotFoldable
    a, b = values[0], values[1]
    return {"MUL": np.multiply, "ADD": np.add, "SUB": np.subtract, "FLOOR_DIV": np.floor_divide}[op.opcode](a, b)


@_folder("CAST")
def _cast(op: Operator, values: list[np.ndarray | None], inputs: list[Tensor]) -> np.ndarray:
    return np.asarray(values[0])


@_folder("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def _reshape_constant(op: Operator, values: list[np.ndarray | None], inputs: list[Tensor]) -> np.ndarray:
    return np.asarray(values[0])  # reshaped to the output tensor's shape by the caller


class _NotFoldable(Exception):
    """An option this pass does not evaluate: the op stays for the lowering to judge."""


def _known_inputs(op: Operator, known: dict[int, np.ndarray]) -> list[np.ndarray | None] | None:
    values: list[np.ndarray | None] = []
    for position, tensor_index in enumerate(op.inputs):
        if tensor_index < 0:
            values.append(None)
        elif op.opcode == "SHAPE" and position == 0:
            values.append(None)  # only the static shape is read
        elif tensor_index in known:
            values.append(known[tensor_index])
        else:
            return None
    return values


def _static_shape(tensor: Tensor) -> bool:
    return all(d >= 0 for d in tensor.shape)


def fold_static_shapes(graph: Graph) -> Graph:
    """A copy of `graph` with every foldable shape computation evaluated.

    Folded ops are removed and their outputs become constant tensors; a RESHAPE
    whose shape input became constant gets its output shape checked against it.
    Operators keep their original indices, so errors still name the .tflite's
    operator. The graph's sha256 is the file's: the model on the board is the
    same model."""
    tensors = list(graph.tensors)
    known: dict[int, np.ndarray] = {t.index: t.data for t in tensors if t.data is not None}
    graph_outputs = set(graph.outputs)
    kept: list[Operator] = []
    for op in graph.operators:
        outputs = [tensors[i] for i in op.outputs]
        folder = _FOLDERS.get(op.opcode)
        value = None
        if (folder is not None and len(outputs) == 1 and outputs[0].dtype in _SHAPE_DTYPES
                and outputs[0].index not in graph_outputs):
            inputs = [tensors[i] if i >= 0 else None for i in op.inputs]
            values = _known_inputs(op, known)
            shape_ready = op.opcode != "SHAPE" or (inputs and inputs[0] is not None and _static_shape(inputs[0]))
            if values is not None and shape_ready:
                try:
                    value = folder(op, values, inputs)
                except _NotFoldable:
                    value = None
                except (ValueError, IndexError, TypeError) as exc:
                    raise TinymlError(f"{op.opcode} at operator {op.index}: cannot evaluate its static shape "
                                      f"arithmetic ({exc})") from exc
        if value is None:
            kept.append(op)
            continue
        out = outputs[0]
        value = np.asarray(value).astype(out.dtype)
        if _static_shape(out) and out.shape and value.size == int(np.prod(out.shape)):
            value = value.reshape(out.shape)
        elif _static_shape(out) and out.shape and value.shape != tuple(out.shape):
            raise TinymlError(f"{op.opcode} at operator {op.index}: folded to shape {list(value.shape)}, "
                              f"the model says {list(out.shape)}")
        known[out.index] = value
        tensors[out.index] = dataclasses.replace(out, shape=tuple(value.shape), data=value)
    for op in kept:
        if op.opcode == "RESHAPE" and len(op.inputs) > 1 and op.inputs[1] in known:
            _check_reshape(op, tensors, known[op.inputs[1]])
    return dataclasses.replace(graph, tensors=tensors, operators=kept)


def _check_reshape(op: Operator, tensors: list[Tensor], new_shape: np.ndarray) -> None:
    """The folded target shape (with one -1 resolved) must be the shape the output tensor declares."""
    inp, out = tensors[op.inputs[0]], tensors[op.outputs[0]]
    if not _static_shape(inp):
        return
    target = [int(d) for d in np.atleast_1d(new_shape)]
    elements = int(np.prod(inp.shape, dtype=np.int64))
    if target.count(-1) == 1:
        rest = int(np.prod([d for d in target if d != -1], dtype=np.int64))
        if rest == 0 or elements % rest:
            raise TinymlError(f"RESHAPE at operator {op.index}: cannot reshape {list(inp.shape)} to {target}")
        target[target.index(-1)] = elements // rest
    if int(np.prod(target, dtype=np.int64)) != elements:
        raise TinymlError(f"RESHAPE at operator {op.index}: cannot reshape {list(inp.shape)} to {target}")
    if _static_shape(out) and list(out.shape) != target:
        # The converter declares placeholder shapes for tensors it sizes at run time (a Dense on a 3-D
        # Keras tensor with a dynamic batch): the engine plans memory from declared shapes.
        raise TinymlError(f"RESHAPE at operator {op.index}: the model sizes tensors at run time (shape arithmetic "
                          f"gives {target}, the tensor declares {list(out.shape)}); the engine needs static shapes: "
                          "build the Keras model with a fixed batch (tf.keras.Input(..., batch_size=1))")
    if not _static_shape(out):
        tensors[out.index] = dataclasses.replace(out, shape=tuple(target))
