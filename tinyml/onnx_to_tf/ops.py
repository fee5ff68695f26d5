"""One function per ONNX op: `(node) -> list of output values`, emitting TF ops that
TFLite converts to builtins (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, MEAN, ...).

Activations are NHWC in TF; see values.py for how layouts are tracked. Ops whose
inputs are all constants are evaluated with numpy at conversion time (shape
arithmetic such as `x.view(x.size(0), -1)`).
"""

from __future__ import annotations

import math
import os
from typing import Callable

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # before TF's first import: no C++ info spam
import tensorflow as tf  # noqa: E402

from .values import NHWC, Node, Value, activation, const_like, constant, normalize_axis, renumber  # noqa: E402

OpFunction = Callable[[Node], list[Value]]
OPS: dict[str, OpFunction] = {}


def _op(*names: str) -> Callable[[OpFunction], OpFunction]:
    def register(function: OpFunction) -> OpFunction:
        for name in names:
            OPS[name] = function
        return function
    return register


def _f32(array: np.ndarray) -> tf.Tensor:
    return tf.constant(np.asarray(array, dtype=np.float32))


def _ints(values, length: int, default: int) -> tuple[int, ...]:
    if values is None:
        return (default,) * length
    return tuple(int(v) for v in values)


def _require_nhwc(node: Node, x: Value) -> None:
    if x.rank != 4:
        raise node.error(f"needs a 4-D NCHW input, got shape {x.onnx_shape} (only 2-D spatial ops are supported)")
    if x.perm != NHWC or x.order is not None:
        raise node.error("its input is not in a layout our NHWC graph holds without a TRANSPOSE "
                         "(reshape/transpose before a spatial op)")


# ---------------------------------------------------------------- spatial helpers

def _tf_same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME padding (extra pixel at the end), = ONNX SAME_UPPER."""
    effective = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _output_size(size: int, kernel: int, stride: int, dilation: int, begin: int, end: int) -> int:
    return (size + begin + end - ((kernel - 1) * dilation + 1)) // stride + 1


class _Window:
    """Kernel, strides, dilations and pads (top, left, bottom, right) of a 2-D conv or pool."""

    def __init__(self, node: Node, x: Value, kernel: tuple[int, int]) -> None:
        self.kernel = kernel
        self.strides = _ints(node.attrs.get("strides"), 2, 1)
        self.dilations = _ints(node.attrs.get("dilations"), 2, 1)
        self.size = x.onnx_shape[2:]
        auto_pad = node.attrs.get("auto_pad", "NOTSET")
        if auto_pad in ("NOTSET", ""):
            pads = _ints(node.attrs.get("pads"), 4, 0)
            if len(pads) != 4:
                raise node.error(f"pads {pads} are not 2-D")
            if min(pads) < 0:
                raise node.error(f"negative pads {pads} are not supported")
            self.pads = pads
        elif auto_pad == "VALID":
            self.pads = (0, 0, 0, 0)
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            same = [_tf_same_pads(self.size[i], kernel[i], self.strides[i], self.dilations[i]) for i in range(2)]
            if auto_pad == "SAME_LOWER":
                same = [(end, begin) for begin, end in same]
            self.pads = (same[0][0], same[1][0], same[0][1], same[1][1])
        else:
            raise node.error(f"auto_pad '{auto_pad}' is not supported")
        if len(self.kernel) != 2 or len(self.strides) != 2 or len(self.dilations) != 2:
            raise node.error("only 2-D kernels are supported")
        self.output = tuple(_output_size(self.size[i], kernel[i], self.strides[i], self.dilations[i],
                                         self.pads[i], self.pads[i + 2]) for i in range(2))
        if min(self.output) <= 0:
            raise node.error(f"kernel {kernel} does not fit the padded {self.size[0]}x{self.size[1]} input")
        self._trim_unused_end_pads()

    def _trim_unused_end_pads(self) -> None:
        # End padding no window reaches changes nothing; dropping it lets more cases map to SAME/VALID.
        pads = list(self.pads)
        for i in range(2):
            effective = (self.kernel[i] - 1) * self.dilations[i] + 1
            reached = (self.output[i] - 1) * self.strides[i] + effective
            pads[i + 2] = max(0, min(pads[i + 2], reached - self.size[i] - pads[i]))
        self.pads = tuple(pads)

    @property
    def is_valid(self) -> bool:
        return not any(self.pads)

    @property
    def is_tf_same(self) -> bool:
        """The pads are exactly what TF's SAME computes, and so is the output size."""
        for i in range(2):
            same = _tf_same_pads(self.size[i], self.kernel[i], self.strides[i], self.dilations[i])
            if same != (self.pads[i], self.pads[i + 2]):
                return False
            if self.output[i] != math.ceil(self.size[i] / self.strides[i]):
                return False
        return True

    def tf_padding(self) -> list[list[int]]:
        top, left, bottom, right = self.pads
        return [[0, 0], [top, bottom], [left, right], [0, 0]]


def _subsample(y: tf.Tensor, strides: tuple[int, int], output: tuple[int, int]) -> tf.Tensor:
    """Strided output taken from a stride-1 result (for stride and dilation together)."""
    return y[:, : (output[0] - 1) * strides[0] + 1: strides[0], : (output[1] - 1) * strides[1] + 1: strides[1], :]


# ---------------------------------------------------------------- convolution and dense

@_op("Conv")
def conv(node: Node) -> list[Value]:
    x = node.activation_input(0)
    _require_nhwc(node, x)
    weight = node.const_input(1, "weight").astype(np.float32)
    if weight.ndim != 4:
        raise node.error(f"only 2-D convolutions are supported, weight shape {weight.shape}")
    bias_value = node.optional(2)
    bias = None if bias_value is None else node.const_input(2, "bias").astype(np.float32)
    out_channels, group_in, kh, kw = weight.shape
    channels = x.onnx_shape[1]
    group = int(node.attrs.get("group", 1))
    if group_in * group != channels or out_channels % group:
        raise node.error(f"weight {weight.shape} with group={group} does not match {channels} input channels")
    kernel = _ints(node.attrs.get("kernel_shape"), 2, 0) if "kernel_shape" in node.attrs else (kh, kw)
    if tuple(kernel) != (kh, kw):
        raise node.error(f"kernel_shape {kernel} differs from the weight's {(kh, kw)}")
    window = _Window(node, x, (kh, kw))
    depthwise = group == channels and group > 1
    strided_and_dilated = max(window.strides) > 1 and max(window.dilations) > 1
    uneven_depthwise = depthwise and window.strides[0] != window.strides[1]
    subsample = strided_and_dilated or uneven_depthwise

    inp = x.data
    if window.is_valid:
        padding = "VALID"
    elif window.is_tf_same and not subsample:
        padding = "SAME"
    else:
        inp = tf.pad(inp, window.tf_padding())
        padding = "VALID"
    strides = (1, 1) if subsample else window.strides

    def one_conv(tensor: tf.Tensor, w: np.ndarray) -> tf.Tensor:
        # ONNX (M, C, kh, kw) -> TF (kh, kw, C, M)
        return tf.nn.conv2d(tensor, _f32(w.transpose(2, 3, 1, 0)), strides=[1, *strides, 1], padding=padding,
                            dilations=[1, *window.dilations, 1])

    if group == 1:
        y = one_conv(inp, weight)
    elif depthwise:
        multiplier = out_channels // channels
        # Output channel c*multiplier + m reads input channel c: ONNX (C*mult, 1, kh, kw) -> TF (kh, kw, C, mult).
        filters = weight.reshape(channels, multiplier, kh, kw).transpose(2, 3, 0, 1)
        y = tf.nn.depthwise_conv2d(inp, _f32(filters), strides=[1, strides[0], strides[0], 1], padding=padding,
                                   dilations=list(window.dilations))
    else:
        per_group = out_channels // group
        parts = tf.split(inp, group, axis=-1)
        y = tf.concat([one_conv(part, weight[g * per_group:(g + 1) * per_group]) for g, part in enumerate(parts)],
                      axis=-1)
    if subsample:
        y = _subsample(y, window.strides, window.output)
    if bias is not None:
        y = tf.nn.bias_add(y, _f32(bias))
    return [activation(y, NHWC)]


@_op("Gemm")
def gemm(node: Node) -> list[Value]:
    a = node.activation_input(0)
    if a.rank != 2 or a.perm != (0, 1):
        raise node.error(f"needs a 2-D input, got shape {a.onnx_shape}")
    if int(node.attrs.get("transA", 0)):
        raise node.error("transA=1 on a computed tensor would need a TRANSPOSE")
    weight = node.const_input(1, "B (weight)").astype(np.float32)
    if int(node.attrs.get("transB", 0)):
        weight = weight.T
    weight = weight * float(node.attrs.get("alpha", 1.0))
    if a.order is not None:
        weight = weight[a.order]   # the flattened input arrives in NHWC element order
    y = tf.matmul(a.data, _f32(np.ascontiguousarray(weight)))
    if node.optional(2) is not None:
        bias = node.const_input(2, "C (bias)").astype(np.float32) * float(node.attrs.get("beta", 1.0))
        bias = np.broadcast_to(bias, (1, weight.shape[1]) if bias.ndim == 2 else (weight.shape[1],))
        if bias.ndim == 2 and bias.shape[0] == 1:
            bias = bias[0]
        y = tf.nn.bias_add(y, _f32(bias)) if bias.ndim == 1 else y + _f32(bias)
    return [activation(y)]


@_op("MatMul")
def matmul(node: Node) -> list[Value]:
    a, b = node.input(0), node.input(1)
    if a.is_const and b.is_const:
        return [constant(np.matmul(a.data, b.data))]
    if a.is_const:
        raise node.error("a constant first operand is not supported")
    if a.perm != tuple(range(a.rank)):
        raise node.error(f"input of shape {a.onnx_shape} is not in ONNX order (would need a TRANSPOSE)")
    if b.is_const:
        weight = b.data.astype(np.float32)
        if weight.ndim != 2:
            raise node.error(f"needs a 2-D constant weight, got {weight.shape}")
        if a.order is not None:
            weight = weight[a.order]
        return [activation(tf.matmul(a.data, _f32(np.ascontiguousarray(weight))))]
    if a.order is not None or not b.is_plain:
        raise node.error("both operands computed and not in ONNX order")
    return [activation(tf.matmul(a.data, b.data))]


# ---------------------------------------------------------------- activations

def _unary(x: Value, y: tf.Tensor, nonnegative: bool = False) -> list[Value]:
    return [activation(y, x.perm, x.order, nonnegative)]


@_op("Relu")
def relu(node: Node) -> list[Value]:
    x = node.activation_input(0)
    return _unary(x, tf.nn.relu(x.data), nonnegative=True)


@_op("Clip")
def clip(node: Node) -> list[Value]:
    x = node.activation_input(0)
    if node.opset < 11:
        low, high = node.attrs.get("min"), node.attrs.get("max")
    else:
        low_v, high_v = node.optional(1), node.optional(2)
        low = None if low_v is None else float(node.const_input(1, "min"))
        high = None if high_v is None else float(node.const_input(2, "max"))
    if low is not None and high is not None and low > high:
        raise node.error(f"min {low} > max {high}")
    if low == 0.0 and high == 6.0:
        y = tf.nn.relu6(x.data)
    elif low == 0.0 and high is None:
        y = tf.nn.relu(x.data)
    else:
        y = x.data
        if low is not None:
            y = tf.maximum(y, _f32(low))
        if high is not None:
            y = tf.minimum(y, _f32(high))
    return _unary(x, y, nonnegative=x.nonnegative or (low is not None and low >= 0))


@_op("LeakyRelu")
def leaky_relu(node: Node) -> list[Value]:
    x = node.activation_input(0)
    return _unary(x, tf.nn.leaky_relu(x.data, alpha=float(node.attrs.get("alpha", 0.01))))


@_op("Sigmoid")
def sigmoid(node: Node) -> list[Value]:
    x = node.activation_input(0)
    return _unary(x, tf.math.sigmoid(x.data), nonnegative=True)


@_op("Tanh")
def tanh(node: Node) -> list[Value]:
    x = node.activation_input(0)
    return _unary(x, tf.math.tanh(x.data))


@_op("HardSwish")
def hard_swish(node: Node) -> list[Value]:
    x = node.activation_input(0)
    # x * relu6(x + 3) / 6: the pattern TFLite fuses into HARD_SWISH.
    return _unary(x, x.data * tf.nn.relu6(x.data + 3.0) * (1.0 / 6.0))


def _softmax(node: Node, function) -> list[Value]:
    x = node.activation_input(0)
    default = -1 if node.opset >= 13 else 1
    axis = normalize_axis(node.attrs.get("axis", default), x.rank)
    onnx_shape = x.onnx_shape
    if node.opset < 13 and any(d != 1 for d in onnx_shape[axis + 1:]):
        raise node.error(f"opset-{node.opset} softmax over the flattened axes {axis}.. is not supported")
    if x.tf_axis(axis) != x.rank - 1:
        tail = [x.tf_axis(a) for a in range(axis + 1, x.rank) if onnx_shape[a] != 1]
        raise node.error(f"softmax over axis {axis} which is not the last axis in the NHWC graph"
                         + (" (flatten first)" if tail else ""))
    return _unary(x, function(x.data, axis=-1), nonnegative=function is tf.nn.softmax)


@_op("Softmax")
def softmax(node: Node) -> list[Value]:
    return _softmax(node, tf.nn.softmax)


@_op("LogSoftmax")
def log_softmax(node: Node) -> list[Value]:
    return _softmax(node, tf.nn.log_softmax)


@_op("BatchNormalization")
def batch_normalization(node: Node) -> list[Value]:
    x = node.activation_input(0)
    if int(node.attrs.get("training_mode", 0)) or any(node.used_outputs[1:]):
        raise node.error("training-mode batch normalization is not supported")
    scale, offset, mean, var = (node.const_input(i, what).astype(np.float64)
                                for i, what in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")))
    eps = float(node.attrs.get("epsilon", 1e-5))
    multiplier = scale / np.sqrt(var + eps)
    shift = offset - mean * multiplier
    shape = (-1,) + (1,) * (x.rank - 2)   # per channel (ONNX axis 1)
    y = x.data * _f32(const_like(multiplier.reshape(shape), x)) + _f32(const_like(shift.reshape(shape), x))
    return _unary(x, y)


# ---------------------------------------------------------------- elementwise binary

def _binary(node: Node, tf_function, np_function) -> list[Value]:
    a, b = node.input(0), node.input(1)
    if a.is_const and b.is_const:
        return [constant(np_function(a.data, b.data))]
    if a.is_const or b.is_const:
        ref = b if a.is_const else a
        const = a.data if a.is_const else b.data
        if const.ndim > ref.rank:
            raise node.error(f"constant of shape {const.shape} has a higher rank than the tensor {ref.onnx_shape}")
        c = _f32(const_like(const, ref))
        y = tf_function(c, ref.data) if a.is_const else tf_function(ref.data, c)
        return [activation(y, ref.perm, ref.order)]
    if a.rank != b.rank or a.perm != b.perm or not _same_order(a.order, b.order):
        raise node.error(f"operands {a.onnx_shape} and {b.onnx_shape} are in different layouts")
    return [activation(tf_function(a.data, b.data), a.perm, a.order, a.nonnegative and b.nonnegative
                       and np_function is np.add)]


def _same_order(first: np.ndarray | None, second: np.ndarray | None) -> bool:
    if first is None or second is None:
        return first is None and second is None
    return np.array_equal(first, second)


@_op("Add")
def add(node: Node) -> list[Value]:
    return _binary(node, tf.add, np.add)


@_op("Sub")
def sub(node: Node) -> list[Value]:
    return _binary(node, tf.subtract, np.subtract)


@_op("Mul")
def mul(node: Node) -> list[Value]:
    return _binary(node, tf.multiply, np.multiply)


@_op("Div")
def div(node: Node) -> list[Value]:
    a, b = node.input(0), node.input(1)
    if b.is_const and not a.is_const:
        if np.any(b.data == 0):
            raise node.error("division by a constant containing zero")
        # Multiplying by the reciprocal keeps it a MUL, which every int8 kernel set has.
        return _binary(Node(node.name, node.op_type, node.attrs, [a, constant(1.0 / b.data.astype(np.float32))],
                            node.num_outputs, node.opset, node.used_outputs), tf.multiply, np.multiply)
    if a.is_const and b.is_const and np.issubdtype(a.data.dtype, np.integer):
        return [constant(a.data // b.data)]
    return _binary(node, tf.divide, np.divide)


# ---------------------------------------------------------------- pooling and reductions

def _pool_kernel(node: Node) -> tuple[int, int]:
    kernel = node.attrs.get("kernel_shape")
    if kernel is None or len(kernel) != 2:
        raise node.error(f"only 2-D pooling is supported (kernel_shape {kernel})")
    return int(kernel[0]), int(kernel[1])


def _ceil_extra(node: Node, window: _Window) -> tuple[int, int]:
    """Extra bottom/right padding that ceil_mode=1 adds (0 when it changes nothing)."""
    if not int(node.attrs.get("ceil_mode", 0)):
        return 0, 0
    extra = []
    for i in range(2):
        span = window.size[i] + window.pads[i] + window.pads[i + 2]
        effective = (window.kernel[i] - 1) * window.dilations[i] + 1
        out = -(-(span - effective) // window.strides[i]) + 1
        if (out - 1) * window.strides[i] >= window.size[i] + window.pads[i]:
            out -= 1    # the last window would start in the end padding: ONNX drops it
        extra.append(max((out - 1) * window.strides[i] + effective - span, 0))
    return extra[0], extra[1]


@_op("MaxPool")
def max_pool(node: Node) -> list[Value]:
    x = node.activation_input(0)
    _require_nhwc(node, x)
    if len(node.used_outputs) > 1 and node.used_outputs[1]:
        raise node.error("the Indices output is not supported")
    window = _Window(node, x, _pool_kernel(node))
    if max(window.dilations) > 1:
        raise node.error(f"dilations {window.dilations} are not supported for pooling")
    extra = _ceil_extra(node, window)
    if any(extra):
        top, left, bottom, right = window.pads
        window.pads = (top, left, bottom + extra[0], right + extra[1])
        window.output = tuple(_output_size(window.size[i], window.kernel[i], window.strides[i], 1,
                                           window.pads[i], window.pads[i + 2]) for i in range(2))
    inp, padding = x.data, "VALID"
    if window.is_tf_same and not window.is_valid:
        padding = "SAME"   # TF's SAME max pool ignores the padding, like ONNX's -inf padding
    elif not window.is_valid:
        if not x.nonnegative:
            raise node.error(f"pads {window.pads} differ from SAME and the input may be negative: zero padding "
                             "would change the max (put a ReLU before it or use SAME-equivalent pads)")
        inp = tf.pad(inp, window.tf_padding())   # inputs are >= 0, so padding with 0 cannot win a max
    y = tf.nn.max_pool2d(inp, ksize=list(window.kernel), strides=list(window.strides), padding=padding)
    return [activation(y, NHWC, nonnegative=x.nonnegative)]


@_op("AveragePool")
def average_pool(node: Node) -> list[Value]:
    x = node.activation_input(0)
    _require_nhwc(node, x)
    window = _Window(node, x, _pool_kernel(node))
    if max(window.dilations) > 1:
        raise node.error(f"dilations {window.dilations} are not supported for pooling")
    if any(_ceil_extra(node, window)):
        raise node.error("ceil_mode=1 that changes the output size is not supported for AveragePool")
    include_pad = bool(int(node.attrs.get("count_include_pad", 0)))
    kernel, strides = list(window.kernel), list(window.strides)
    if window.is_valid:
        y = tf.nn.avg_pool2d(x.data, kernel, strides, "VALID")
    elif not include_pad and window.is_tf_same:
        # TF's SAME average divides by the number of real (unpadded) elements, as count_include_pad=0 does.
        y = tf.nn.avg_pool2d(x.data, kernel, strides, "SAME")
    else:
        y = tf.nn.avg_pool2d(tf.pad(x.data, window.tf_padding()), kernel, strides, "VALID")
        if not include_pad:
            y = y * _f32(_padding_correction(window))
    return [activation(y, NHWC, nonnegative=x.nonnegative)]


def _padding_correction(window: _Window) -> np.ndarray:
    """Per output pixel: kernel area / number of unpadded elements, shape (1, Ho, Wo, 1)."""
    counts = []
    for i in range(2):
        begin = np.arange(window.output[i]) * window.strides[i] - window.pads[i]
        end = begin + window.kernel[i]
        counts.append(np.minimum(end, window.size[i]) - np.maximum(begin, 0))
    real = np.outer(counts[0], counts[1]).astype(np.float64)
    return (window.kernel[0] * window.kernel[1] / real).reshape(1, *window.output, 1)


def _reduce(node: Node, x: Value, axes: list[int], keepdims: bool, function) -> list[Value]:
    tf_axes = sorted(x.tf_axis(a) for a in axes)
    if x.order is not None and x.rank - 1 in tf_axes:
        raise node.error("reducing over a flattened feature map is not supported")
    y = function(x.data, axis=tf_axes, keepdims=keepdims)
    if keepdims:
        return [activation(y, x.perm, x.order, x.nonnegative)]
    kept = [x.perm[i] for i in range(x.rank) if i not in tf_axes]
    return [activation(y, renumber(kept), x.order, x.nonnegative)]


@_op("GlobalAveragePool")
def global_average_pool(node: Node) -> list[Value]:
    x = node.activation_input(0)
    return _reduce(node, x, list(range(2, x.rank)), True, tf.reduce_mean)


@_op("GlobalMaxPool")
def global_max_pool(node: Node) -> list[Value]:
    x = node.activation_input(0)
    return _reduce(node, x, list(range(2, x.rank)), True, tf.reduce_max)


def _reduce_node(node: Node, function) -> list[Value]:
    x = node.activation_input(0)
    if node.optional(1) is not None:
        axes = [int(a) for a in node.const_input(1, "axes").reshape(-1)]
    else:
        axes = node.attrs.get("axes")
    if not axes:
        if int(node.attrs.get("noop_with_empty_axes", 0)):
            return [x]
        axes = list(range(x.rank))
    axes = sorted({normalize_axis(a, x.rank) for a in axes})
    return _reduce(node, x, axes, bool(int(node.attrs.get("keepdims", 1))), function)


@_op("ReduceMean")
def reduce_mean(node: Node) -> list[Value]:
    return _reduce_node(node, tf.reduce_mean)


@_op("ReduceMax")
def reduce_max(node: Node) -> list[Value]:
    return _reduce_node(node, tf.reduce_max)


# ---------------------------------------------------------------- shape ops

def _flatten_to(node: Node, x: Value, axis: int) -> Value:
    """ONNX Flatten(axis) of x, keeping ONNX's element order through `order` instead of a TRANSPOSE."""
    shape = x.onnx_shape
    outer, inner = int(np.prod(shape[:axis], dtype=np.int64)), int(np.prod(shape[axis:], dtype=np.int64))
    if x.is_const:
        return constant(x.data.reshape(outer, inner))
    if x.order is not None:
        if x.rank == 2 and axis == 1:
            return x
        raise node.error("reshaping an already flattened feature map again is not supported")
    if x.perm[:axis] != tuple(range(axis)):
        raise node.error(f"flattening axes {axis}.. of a tensor held as {x.perm} would need a TRANSPOSE")
    # TF holds the inner block transposed by perm[axis:]; element j of the TF row is ONNX element order[j].
    inner_shape = shape[axis:]
    inner_perm = [p - axis for p in x.perm[axis:]]
    order = np.arange(inner, dtype=np.int64).reshape(inner_shape).transpose(inner_perm).reshape(-1)
    y = tf.reshape(x.data, (outer, inner))
    return activation(y, None, order, x.nonnegative)


@_op("Flatten")
def flatten(node: Node) -> list[Value]:
    x = node.input(0)
    axis = int(node.attrs.get("axis", 1))
    axis = axis + x.rank if axis < 0 else axis
    if not 0 <= axis <= x.rank:
        raise node.error(f"axis {axis} out of range")
    return [_flatten_to(node, x, axis)]


def _target_shape(node: Node, current: tuple[int, ...], requested: np.ndarray) -> tuple[int, ...]:
    allow_zero = int(node.attrs.get("allowzero", 0))
    shape = [int(d) for d in requested.reshape(-1)]
    for i, d in enumerate(shape):
        if d == 0 and not allow_zero:
            if i >= len(current):
                raise node.error(f"shape {shape} copies a dimension the input does not have")
            shape[i] = current[i]
    total = int(np.prod(current, dtype=np.int64))
    if shape.count(-1) > 1:
        raise node.error(f"shape {shape} has more than one -1")
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        if known == 0 or total % known:
            raise node.error(f"cannot reshape {current} to {shape}")
        shape[shape.index(-1)] = total // known
    if int(np.prod(shape, dtype=np.int64)) != total:
        raise node.error(f"cannot reshape {current} to {shape}")
    return tuple(shape)


@_op("Reshape")
def reshape(node: Node) -> list[Value]:
    x = node.input(0)
    target = _target_shape(node, x.onnx_shape, node.const_input(1, "shape"))
    if x.is_const:
        return [constant(x.data.reshape(target))]
    if target == x.onnx_shape:
        return [x]
    if x.is_plain:
        if len(target) == 4 and (target[1] == 1 or target[2] * target[3] == 1):
            # With one channel, or 1x1 spatial, NCHW and NHWC hold the elements in the same order.
            n, c, h, w = target
            return [activation(tf.reshape(x.data, (n, h, w, c)), NHWC, nonnegative=x.nonnegative)]
        return [activation(tf.reshape(x.data, target), nonnegative=x.nonnegative)]
    if len(target) == 2:
        # A flatten at the axis where the leading dims multiply to target[0].
        shape = x.onnx_shape
        for axis in range(x.rank + 1):
            if int(np.prod(shape[:axis], dtype=np.int64)) == target[0] and x.perm[:axis] == tuple(range(axis)):
                return [_flatten_to(node, x, axis)]
    raise node.error(f"reshaping {x.onnx_shape} to {target} from the NHWC graph would need a TRANSPOSE")


@_op("Squeeze")
def squeeze(node: Node) -> list[Value]:
    x = node.input(0)
    if node.optional(1) is not None:
        axes = [int(a) for a in node.const_input(1, "axes").reshape(-1)]
    else:
        axes = node.attrs.get("axes")
    shape = x.onnx_shape
    axes = [i for i, d in enumerate(shape) if d == 1] if not axes else [normalize_axis(a, x.rank) for a in axes]
    if any(shape[a] != 1 for a in axes):
        raise node.error(f"cannot squeeze axes {axes} of shape {shape}")
    if x.is_const:
        return [constant(np.squeeze(x.data, axis=tuple(axes)))]
    tf_axes = sorted(x.tf_axis(a) for a in axes)
    if x.order is not None and x.rank - 1 in tf_axes:
        raise node.error("cannot squeeze a flattened axis")
    kept = [x.perm[i] for i in range(x.rank) if i not in tf_axes]
    y = tf.squeeze(x.data, axis=tf_axes)
    return [activation(y, renumber(kept), x.order, x.nonnegative)]


@_op("Unsqueeze")
def unsqueeze(node: Node) -> list[Value]:
    x = node.input(0)
    if node.optional(1) is not None:
        axes = [int(a) for a in node.const_input(1, "axes").reshape(-1)]
    else:
        axes = list(node.attrs.get("axes", []))
    rank = x.rank + len(axes)
    axes = sorted(normalize_axis(a, rank) for a in axes)
    target = list(x.onnx_shape)
    for a in axes:
        target.insert(a, 1)
    if x.is_const:
        return [constant(x.data.reshape(target))]
    if not x.is_plain:
        raise node.error(f"unsqueezing a tensor held as {x.perm} is not supported")
    reshaped = Node(node.name, "Reshape", {}, [x, constant(np.array(target, dtype=np.int64))], 1, node.opset, [True])
    return reshape(reshaped)


@_op("Transpose")
def transpose(node: Node) -> list[Value]:
    x = node.input(0)
    order = node.attrs.get("perm")
    order = list(range(x.rank))[::-1] if order is None else [int(p) for p in order]
    if x.is_const:
        return [constant(np.transpose(x.data, order))]
    if x.order is not None:
        raise node.error("transposing a flattened feature map is not supported")
    # No data moves: only the bookkeeping of which ONNX axis each TF axis holds changes.
    new_perm = tuple(order.index(p) for p in x.perm)
    return [activation(x.data, new_perm, None, x.nonnegative)]


@_op("Concat")
def concat(node: Node) -> list[Value]:
    values = [v for v in node.inputs if v is not None]
    if not values:
        raise node.error("has no inputs")
    axis = int(node.attrs["axis"])
    if all(v.is_const for v in values):
        return [constant(np.concatenate([v.data for v in values], axis=axis))]
    ref = next(v for v in values if not v.is_const)
    axis = normalize_axis(axis, ref.rank)
    tensors = []
    for v in values:
        if v.is_const:
            if v.data.ndim != ref.rank:
                raise node.error("constant operand of a different rank")
            tensors.append(_f32(np.transpose(v.data, ref.perm)))
        elif v.perm != ref.perm or v.order is not None:
            raise node.error("operands are in different layouts")
        else:
            tensors.append(v.data)
    if ref.order is not None:
        raise node.error("concatenating flattened feature maps is not supported")
    y = tf.concat(tensors, axis=ref.tf_axis(axis))
    return [activation(y, ref.perm, None, all(v.nonnegative for v in values))]


@_op("Pad")
def pad(node: Node) -> list[Value]:
    x = node.activation_input(0)
    mode = node.attrs.get("mode", "constant")
    if node.opset < 11:
        pads = [int(p) for p in node.attrs.get("pads", [])]
        value = float(node.attrs.get("value", 0.0))
        axes = list(range(x.rank))
    else:
        pads = [int(p) for p in node.const_input(1, "pads").reshape(-1)]
        value_input = node.optional(2)
        value = 0.0 if value_input is None else float(node.const_input(2, "constant_value").reshape(-1)[0])
        axes_input = node.optional(3)
        axes = (list(range(x.rank)) if axes_input is None
                else [normalize_axis(a, x.rank) for a in node.const_input(3, "axes").reshape(-1)])
    if len(pads) != 2 * len(axes):
        raise node.error(f"pads {pads} do not match {len(axes)} axes")
    if min(pads, default=0) < 0:
        raise node.error(f"negative pads {pads} (cropping) are not supported")
    paddings = [[0, 0] for _ in range(x.rank)]
    for i, axis in enumerate(axes):
        paddings[x.tf_axis(axis)] = [pads[i], pads[i + len(axes)]]
    if x.order is not None and any(paddings[-1]):
        raise node.error("padding a flattened feature map is not supported")
    if mode == "constant":
        y = tf.pad(x.data, paddings, constant_values=value)
    elif mode == "reflect":
        y = tf.pad(x.data, paddings, mode="REFLECT")
    else:
        raise node.error(f"mode '{mode}' is not supported (constant, reflect)")
    return [activation(y, x.perm, x.order, x.nonnegative and (mode != "constant" or value >= 0))]


# ---------------------------------------------------------------- pass-through and constants

@_op("Identity")
def identity(node: Node) -> list[Value]:
    return [node.input(0)]


@_op("Dropout")
def dropout(node: Node) -> list[Value]:
    if len(node.used_outputs) > 1 and node.used_outputs[1]:
        raise node.error("the mask output is not supported (inference only)")
    return [node.input(0)]


@_op("Constant")
def constant_node(node: Node) -> list[Value]:
    attrs = node.attrs
    if "value" in attrs:
        return [constant(attrs["value"])]
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in attrs:
            return [constant(np.array(attrs[key], dtype=dtype))]
    raise node.error(f"unsupported constant attributes {sorted(attrs)}")


@_op("Shape")
def shape_op(node: Node) -> list[Value]:
    shape = np.array(node.input(0).onnx_shape, dtype=np.int64)
    start = int(node.attrs.get("start", 0))
    end = node.attrs.get("end")
    return [constant(shape[start:None if end is None else int(end)])]


@_op("Gather")
def gather(node: Node) -> list[Value]:
    data, indices = node.input(0), node.input(1)
    if not (data.is_const and indices.is_const):
        raise node.error("only constant (shape) gathers are supported")
    return [constant(np.take(data.data, indices.data, axis=int(node.attrs.get("axis", 0))))]


_ONNX_TO_NUMPY = {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64}


@_op("Cast")
def cast(node: Node) -> list[Value]:
    x = node.input(0)
    to = int(node.attrs["to"])
    if x.is_const and to in _ONNX_TO_NUMPY:
        return [constant(x.data.astype(_ONNX_TO_NUMPY[to]))]
    if not x.is_const and to == 1:
        return [x]
    raise node.error(f"cast to ONNX type {to} of a computed tensor is not supported")


SUPPORTED_OPS: frozenset[str] = frozenset(OPS)
