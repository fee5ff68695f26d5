"""Values flowing through the conversion: a TF tensor (or a numpy constant) plus
how its axes relate to the ONNX tensor it stands for.

The TF graph is NHWC while ONNX is NCHW. Instead of inserting TRANSPOSE ops we
record, per value, which ONNX axis each TF axis holds (`perm`) and, after a
flatten of a feature map, which ONNX element each TF element of the last axis
holds (`order`). Ops consume these layouts: weights are permuted at conversion
time, axes remapped, and only the graph outputs are put back in ONNX order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import TinymlError

NHWC = (0, 2, 3, 1)   # TF axis i holds ONNX (NCHW) axis NHWC[i]


@dataclass
class Value:
    data: Any                       # tf.Tensor, or np.ndarray for a constant (always in ONNX layout)
    perm: tuple[int, ...]           # TF axis i holds ONNX axis perm[i]
    order: np.ndarray | None = None  # TF element j of the last axis is ONNX element order[j] of the last axis
    nonnegative: bool = False       # every element >= 0 (after ReLU): zero padding equals -inf padding for max

    @property
    def is_const(self) -> bool:
        return isinstance(self.data, np.ndarray)

    @property
    def rank(self) -> int:
        return len(self.perm)

    @property
    def tf_shape(self) -> tuple[int, ...]:
        if self.is_const:
            return tuple(self.data.shape)
        return tuple(int(d) for d in self.data.shape)

    @property
    def onnx_shape(self) -> tuple[int, ...]:
        shape = self.tf_shape
        return tuple(shape[self.perm.index(axis)] for axis in range(self.rank))

    @property
    def is_plain(self) -> bool:
        """TF tensor is laid out exactly like the ONNX tensor."""
        return self.perm == tuple(range(self.rank)) and self.order is None

    def tf_axis(self, onnx_axis: int) -> int:
        return self.perm.index(normalize_axis(onnx_axis, self.rank))


def constant(array: np.ndarray) -> Value:
    array = np.asarray(array)
    return Value(array, tuple(range(array.ndim)), nonnegative=bool(array.size and np.all(array >= 0)))


def activation(tensor: Any, perm: tuple[int, ...] | None = None, order: np.ndarray | None = None,
               nonnegative: bool = False) -> Value:
    rank = len(tensor.shape)
    perm = tuple(range(rank)) if perm is None else tuple(perm)
    if order is not None and np.array_equal(order, np.arange(len(order))):
        order = None
    return Value(tensor, perm, order, nonnegative)


def normalize_axis(axis: int, rank: int) -> int:
    axis = int(axis)
    if not -rank <= axis < rank:
        raise TinymlError(f"axis {axis} out of range for a rank-{rank} tensor")
    return axis % rank


def renumber(onnx_axes: list[int]) -> tuple[int, ...]:
    """Given the ONNX axis ids kept (in TF order), renumber them 0..k-1 keeping their relative order."""
    ranking = sorted(onnx_axes)
    return tuple(ranking.index(axis) for axis in onnx_axes)


def const_like(array: np.ndarray, like: Value) -> np.ndarray:
    """An ONNX-layout constant that broadcasts against `like`, rearranged to broadcast against
    like's TF tensor (numpy broadcasting rules: trailing axes align)."""
    array = np.asarray(array, dtype=np.float32)
    if array.ndim > like.rank:
        raise TinymlError(f"constant of shape {array.shape} broadcasts to a higher rank than the tensor "
                          f"{like.onnx_shape}")
    if like.is_plain:
        return array
    full = array.reshape((1,) * (like.rank - array.ndim) + array.shape)
    full = np.transpose(full, like.perm)
    if like.order is not None and full.shape[-1] > 1:
        if full.shape[-1] != len(like.order):
            raise TinymlError("constant does not match the flattened tensor it combines with")
        full = full[..., like.order]
    # Drop leading ones again so TFLite sees the small constant (e.g. a per-channel (C,) vector).
    while full.ndim > array.ndim and full.shape[0] == 1:
        full = full[0]
    return np.ascontiguousarray(full)


@dataclass
class Node:
    """One ONNX node with its attributes decoded and its inputs resolved to values."""

    name: str
    op_type: str
    attrs: dict[str, Any]
    inputs: list[Value | None]
    num_outputs: int
    opset: int
    used_outputs: list[bool] = field(default_factory=list)

    def input(self, index: int) -> Value:
        value = self.inputs[index] if index < len(self.inputs) else None
        if value is None:
            raise self.error(f"needs input {index}")
        return value

    def optional(self, index: int) -> Value | None:
        return self.inputs[index] if index < len(self.inputs) else None

    def const_input(self, index: int, what: str) -> np.ndarray:
        value = self.input(index)
        if not value.is_const:
            raise self.error(f"needs a constant {what} (input {index}), got a computed tensor")
        return value.data

    def activation_input(self, index: int) -> Value:
        value = self.input(index)
        if value.is_const:
            raise self.error(f"input {index} is a constant; only computed tensors are supported here")
        return value

    def error(self, message: str) -> TinymlError:
        return TinymlError(f"ONNX op '{self.op_type}' at node '{self.name}': {message}")
