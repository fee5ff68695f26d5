"""Our ONNX -> TF converter, op by op against onnxruntime, then whole torch models.

Each op test builds a tiny ONNX graph with onnx.helper, runs it in onnxruntime
(NCHW) and through convert_onnx (NHWC), and asserts the max abs error <= 1e-4.
Run with `-s` to see the error per case.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinyml.errors import TinymlError
from tinyml.onnx_to_tf.converter import SUPPORTED_OPS, TfModel, convert_onnx

TOLERANCE = 1e-4
RNG = np.random.default_rng(1234)


def _init(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _weights(*shape: int) -> np.ndarray:
    return (RNG.standard_normal(shape) * 0.5).astype(np.float32)


def _model(nodes, input_shape, initializers=(), opset: int = 17, output: str = "y",
           input_type=TensorProto.FLOAT) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), "g", [helper.make_tensor_value_info("x", input_type, input_shape)],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
                              initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _graph_op_types(converted: TfModel) -> set[str]:
    return {op.type for op in converted.concrete_function.graph.get_operations()}


def _run_both(model: onnx.ModelProto, input_shape, x: np.ndarray | None = None,
              allow_transpose: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(onnxruntime output, converter output in ONNX layout) on one random input."""
    if x is None:
        x = RNG.standard_normal(input_shape).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0]
    converted = convert_onnx(model)
    if not allow_transpose:   # the layout is handled at conversion time, never by a runtime transpose
        assert "Transpose" not in _graph_op_types(converted)
    tf_input = x.transpose(0, 2, 3, 1) if x.ndim == 4 else x
    got = converted.module(tf_input).numpy()
    if expected.ndim == 4:
        got = got.transpose(0, 3, 1, 2)   # 4-D outputs come back NHWC
    assert got.shape == expected.shape
    return expected, got


def _check(model, input_shape, label: str, x: np.ndarray | None = None, allow_transpose: bool = False) -> float:
    expected, got = _run_both(model, input_shape, x, allow_transpose)
    error = float(np.max(np.abs(expected - got)))
    print(f"max_abs_error {label}: {error:.3g}")
    assert error <= TOLERANCE, f"{label}: max abs error {error}"
    return error


# ----------------------------------------------------------------------------- Conv

CONV_CASES = [
    # (cin, cout, group, kernel, strides, pads, dilations, bias, hw, auto_pad)
    (3, 8, 1, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), True, (8, 8), None),      # SAME
    (3, 8, 1, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), True, (8, 8), None),      # needs PAD
    (3, 4, 1, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), False, (7, 7), None),     # SAME on odd size
    (2, 4, 1, (3, 5), (1, 2), (0, 1, 2, 0), (1, 1), True, (9, 10), None),     # asymmetric pads
    (2, 4, 1, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), True, (9, 9), None),      # dilated SAME
    (2, 4, 1, (3, 3), (2, 2), (2, 2, 2, 2), (2, 2), True, (9, 9), None),      # dilated and strided
    (3, 5, 1, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), True, (6, 6), None),      # pointwise
    (3, 5, 1, (1, 1), (2, 2), (0, 0, 0, 0), (1, 1), True, (7, 7), None),      # strided pointwise
    (4, 4, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), True, (8, 8), None),      # depthwise
    (4, 8, 4, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), True, (8, 8), None),      # depthwise x2, stride 2
    (4, 4, 4, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), False, (8, 8), None),     # depthwise dilated
    (4, 4, 4, (3, 3), (1, 2), (1, 1, 1, 1), (1, 1), True, (8, 8), None),      # depthwise uneven strides
    (4, 6, 2, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), True, (6, 6), None),      # grouped
    (3, 4, 1, (3, 3), (2, 2), None, (1, 1), True, (8, 8), "SAME_UPPER"),
    (3, 4, 1, (3, 3), (2, 2), None, (1, 1), True, (8, 8), "SAME_LOWER"),
    (3, 4, 1, (3, 3), (1, 1), None, (1, 1), True, (8, 8), "VALID"),
    (1, 4, 1, (5, 5), (1, 1), (0, 0, 0, 0), (1, 1), True, (5, 5), None),      # 1x1 output
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[f"conv{i}" for i in range(len(CONV_CASES))])
def test_conv(case) -> None:
    cin, cout, group, kernel, strides, pads, dilations, bias, hw, auto_pad = case
    attrs = {"strides": list(strides), "dilations": list(dilations), "group": group,
             "kernel_shape": list(kernel)}
    if auto_pad:
        attrs["auto_pad"] = auto_pad
    else:
        attrs["pads"] = list(pads)
    inits = [_init("w", _weights(cout, cin // group, *kernel))]
    inputs = ["x", "w"]
    if bias:
        inits.append(_init("b", _weights(cout)))
        inputs.append("b")
    node = helper.make_node("Conv", inputs, ["y"], name="conv", **attrs)
    _check(_model([node], [1, cin, *hw], inits), [1, cin, *hw], f"Conv {case}")


# ----------------------------------------------------------------------------- dense

@pytest.mark.parametrize("trans_b,alpha,beta,bias_shape", [
    (0, 1.0, 1.0, (5,)), (1, 1.0, 1.0, (5,)), (1, 0.5, 2.0, (1, 5)), (1, 1.0, 1.0, None)])
def test_gemm(trans_b, alpha, beta, bias_shape) -> None:
    w = _weights(5, 12) if trans_b else _weights(12, 5)
    inits = [_init("w", w)]
    inputs = ["x", "w"]
    if bias_shape:
        inits.append(_init("c", _weights(*bias_shape)))
        inputs.append("c")
    node = helper.make_node("Gemm", inputs, ["y"], transB=trans_b, alpha=alpha, beta=beta)
    _check(_model([node], [1, 12], inits), [1, 12], f"Gemm transB={trans_b} alpha={alpha} beta={beta} {bias_shape}")


def test_matmul_add() -> None:
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])]
    _check(_model(nodes, [1, 7], [_init("w", _weights(7, 3)), _init("b", _weights(3))]), [1, 7], "MatMul+Add")


# ----------------------------------------------------------------------------- activations

@pytest.mark.parametrize("low,high", [(0.0, 6.0), (0.0, None), (-1.0, 1.0), (None, 0.5), (-0.3, 2.0)])
def test_clip(low, high) -> None:
    inits, inputs = [], ["x", "", ""]
    if low is not None:
        inits.append(_init("lo", np.float32(low)))
        inputs[1] = "lo"
    if high is not None:
        inits.append(_init("hi", np.float32(high)))
        inputs[2] = "hi"
    while inputs[-1] == "":
        inputs.pop()
    node = helper.make_node("Clip", inputs, ["y"])
    _check(_model([node], [1, 3, 4, 4], inits), [1, 3, 4, 4], f"Clip({low}, {high})")


def test_clip_opset6_attributes() -> None:
    node = helper.make_node("Clip", ["x"], ["y"], min=0.0, max=6.0)
    x = (RNG.standard_normal((1, 2, 3, 3)) * 8).astype(np.float32)
    _check(_model([node], [1, 2, 3, 3], opset=6), [1, 2, 3, 3], "Clip opset 6", x)


@pytest.mark.parametrize("op,attrs,opset", [("Relu", {}, 17), ("LeakyRelu", {"alpha": 0.1}, 17),
                                            ("Sigmoid", {}, 17), ("Tanh", {}, 17), ("HardSwish", {}, 17),
                                            ("Identity", {}, 17), ("Dropout", {}, 17)])
def test_unary(op, attrs, opset) -> None:
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    x = (RNG.standard_normal((1, 3, 5, 5)) * 4).astype(np.float32)
    _check(_model([node], [1, 3, 5, 5], opset=opset), [1, 3, 5, 5], op, x)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape,axis", [((1, 10), -1), ((1, 10), 1), ((1, 4, 3, 3), 1)])
def test_softmax(op, shape, axis) -> None:
    node = helper.make_node(op, ["x"], ["y"], axis=axis)
    _check(_model([node], list(shape)), list(shape), f"{op} {shape} axis={axis}")


def test_softmax_opset11_default_axis() -> None:
    _check(_model([helper.make_node("Softmax", ["x"], ["y"])], [1, 6], opset=11), [1, 6], "Softmax opset 11")


def test_batch_normalization() -> None:
    c = 4
    inits = [_init("s", _weights(c) + 1), _init("b", _weights(c)), _init("m", _weights(c)),
             _init("v", np.abs(_weights(c)) + 0.5)]
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)
    _check(_model([node], [1, c, 5, 5], inits), [1, c, 5, 5], "BatchNormalization")


# ----------------------------------------------------------------------------- elementwise

@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("const_shape", [(1, 3, 1, 1), (3, 1, 1), (1,), (5,), ()])
def test_binary_with_constant(op, const_shape) -> None:
    const = _weights(*const_shape) if const_shape else np.float32(0.7)
    if op == "Div":
        const = np.where(np.abs(const) < 0.2, 0.5, const).astype(np.float32)
    node = helper.make_node(op, ["x", "c"], ["y"])
    _check(_model([node], [1, 3, 4, 5], [_init("c", const)]), [1, 3, 4, 5], f"{op} const {const_shape}")


@pytest.mark.parametrize("op", ["Add", "Sub"])
def test_binary_constant_first(op) -> None:
    node = helper.make_node(op, ["c", "x"], ["y"])
    _check(_model([node], [1, 3, 4, 4], [_init("c", _weights(1, 3, 1, 1))]), [1, 3, 4, 4], f"const {op} x")


@pytest.mark.parametrize("op", ["Add", "Mul"])
def test_binary_two_tensors(op) -> None:
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, ["x", "r"], ["y"])]
    _check(_model(nodes, [1, 3, 4, 4]), [1, 3, 4, 4], f"{op} residual")


def test_add_after_flatten_permutes_constant() -> None:
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Add", ["f", "c"], ["a"]),
             helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Gemm", ["r", "w"], ["y"], transB=1)]
    inits = [_init("c", _weights(2 * 3 * 3)), _init("w", _weights(4, 18))]
    _check(_model(nodes, [1, 2, 3, 3], inits), [1, 2, 3, 3], "Flatten+Add const+Gemm")


# ----------------------------------------------------------------------------- pooling

POOL_CASES = [
    # (kernel, strides, pads, ceil_mode, hw, relu_first)
    ((2, 2), (2, 2), (0, 0, 0, 0), 0, (8, 8), False),
    ((3, 3), (1, 1), (1, 1, 1, 1), 0, (6, 6), False),     # SAME
    ((3, 3), (2, 2), (1, 1, 1, 1), 0, (8, 8), True),      # zero pad is safe after ReLU
    ((3, 3), (2, 2), (1, 1, 1, 1), 0, (7, 7), False),     # SAME on odd size
    ((2, 2), (2, 2), (0, 0, 0, 0), 1, (7, 7), True),      # ceil_mode adds a window
    ((3, 2), (1, 2), (1, 0, 1, 1), 0, (6, 7), True),      # asymmetric
]


@pytest.mark.parametrize("case", POOL_CASES, ids=[f"maxpool{i}" for i in range(len(POOL_CASES))])
def test_max_pool(case) -> None:
    kernel, strides, pads, ceil_mode, hw, relu_first = case
    nodes = [helper.make_node("Relu", ["x"], ["r"])] if relu_first else []
    nodes.append(helper.make_node("MaxPool", ["r" if relu_first else "x"], ["y"], kernel_shape=list(kernel),
                                  strides=list(strides), pads=list(pads), ceil_mode=ceil_mode))
    _check(_model(nodes, [1, 3, *hw]), [1, 3, *hw], f"MaxPool {case}")


def test_max_pool_explicit_pads_on_signed_input_is_refused() -> None:
    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[3, 3], strides=[2, 2],
                            pads=[1, 1, 1, 1])
    with pytest.raises(TinymlError, match="MaxPool' at node 'pool'.*negative"):
        convert_onnx(_model([node], [1, 3, 8, 8]))


@pytest.mark.parametrize("kernel,strides,pads,include_pad,hw", [
    ((2, 2), (2, 2), (0, 0, 0, 0), 0, (8, 8)),
    ((3, 3), (1, 1), (1, 1, 1, 1), 0, (6, 6)),   # SAME excludes the padding from the count
    ((3, 3), (1, 1), (1, 1, 1, 1), 1, (6, 6)),
    ((3, 3), (2, 2), (1, 1, 1, 1), 0, (8, 8)),   # explicit pads + count correction
    ((3, 3), (2, 2), (1, 1, 1, 1), 1, (8, 8)),
    ((3, 2), (2, 1), (0, 1, 2, 0), 0, (7, 6)),
    ((3, 2), (2, 1), (0, 1, 2, 0), 1, (7, 6)),
])
def test_average_pool(kernel, strides, pads, include_pad, hw) -> None:
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=list(kernel), strides=list(strides),
                            pads=list(pads), count_include_pad=include_pad)
    _check(_model([node], [1, 3, *hw]), [1, 3, *hw], f"AveragePool k={kernel} s={strides} p={pads} "
           f"count_include_pad={include_pad}")


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pool(op) -> None:
    _check(_model([helper.make_node(op, ["x"], ["y"])], [1, 5, 4, 3]), [1, 5, 4, 3], op)


@pytest.mark.parametrize("axes,keepdims", [([2, 3], 1), ([2, 3], 0), ([1], 1), ([1], 0), ([2], 0), ([3], 0),
                                           ([-1, -2], 0), ([1, 2, 3], 0)])
@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax"])
def test_reduce(op, axes, keepdims) -> None:
    nodes = [helper.make_node(op, ["x"], ["y"], axes=axes, keepdims=keepdims)]
    # Keeping (N, C, W) or (N, C, H) of an NHWC tensor as the graph output is the one case needing a transpose.
    permuted_output = not keepdims and axes in ([2], [3])
    _check(_model(nodes, [1, 3, 4, 5], opset=13), [1, 3, 4, 5], f"{op} axes={axes} keepdims={keepdims}",
           allow_transpose=permuted_output)


def test_reduce_mean_opset18_axes_input() -> None:
    node = helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=0)
    model = _model([node], [1, 3, 4, 4], [_init("axes", np.array([2, 3], dtype=np.int64))], opset=18)
    _check(model, [1, 3, 4, 4], "ReduceMean opset 18")


# ----------------------------------------------------------------------------- shapes and layout

def _conv_then(nodes_after, hw=(4, 4), cout=3):
    conv = helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1])
    return [conv, *nodes_after], [_init("w", _weights(cout, 2, 3, 3))], [1, 2, *hw]


@pytest.mark.parametrize("flatten", ["Flatten", "Reshape"])
def test_flatten_feature_map_into_gemm_keeps_nchw_order(flatten) -> None:
    if flatten == "Flatten":
        flat = helper.make_node("Flatten", ["c"], ["f"], axis=1)
        extra = []
    else:
        flat = helper.make_node("Reshape", ["c", "shape"], ["f"])
        extra = [_init("shape", np.array([1, -1], dtype=np.int64))]
    nodes, inits, shape = _conv_then([flat, helper.make_node("Gemm", ["f", "g"], ["y"], transB=1)])
    inits += extra + [_init("g", _weights(5, 3 * 4 * 4))]
    _check(_model(nodes, shape, inits), shape, f"Conv+{flatten}+Gemm")


def test_flatten_feature_map_as_output() -> None:
    nodes, inits, shape = _conv_then([helper.make_node("Flatten", ["c"], ["y"])])
    _check(_model(nodes, shape, inits), shape, "Conv+Flatten output")


def test_flatten_feature_map_into_matmul() -> None:
    nodes, inits, shape = _conv_then([helper.make_node("Flatten", ["c"], ["f"]),
                                      helper.make_node("MatMul", ["f", "g"], ["y"])])
    _check(_model(nodes, shape, inits + [_init("g", _weights(48, 5))]), shape, "Conv+Flatten+MatMul")


def test_shape_arithmetic_reshape() -> None:
    """x.view(x.size(0), -1) as the legacy exporter writes it without constant folding."""
    nodes, inits, shape = _conv_then([
        helper.make_node("Shape", ["c"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["c", "target"], ["f"]),
        helper.make_node("Gemm", ["f", "g"], ["y"], transB=1)])
    inits += [_init("zero", np.array(0, dtype=np.int64)), _init("ax0", np.array([0], dtype=np.int64)),
              _init("minus1", np.array([-1], dtype=np.int64)), _init("g", _weights(5, 48))]
    _check(_model(nodes, shape, inits), shape, "Shape/Gather/Unsqueeze/Concat/Reshape")


def test_transpose_to_nhwc_then_flatten_is_free() -> None:
    nodes, inits, shape = _conv_then([helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 3, 1]),
                                      helper.make_node("Flatten", ["t"], ["f"]),
                                      helper.make_node("Gemm", ["f", "g"], ["y"], transB=1)])
    _check(_model(nodes, shape, inits + [_init("g", _weights(5, 48))]), shape, "Transpose+Flatten+Gemm")


def test_reshape_vector_to_single_channel_image_then_conv() -> None:
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]),
             helper.make_node("Conv", ["r", "w"], ["y"], pads=[1, 1, 1, 1])]
    inits = [_init("shape", np.array([1, 1, 6, 6], dtype=np.int64)), _init("w", _weights(4, 1, 3, 3))]
    _check(_model(nodes, [1, 36], inits), [1, 36], "Reshape (1,36)->(1,1,6,6)+Conv")


def test_global_pool_squeeze_gemm() -> None:
    nodes, inits, shape = _conv_then([helper.make_node("GlobalAveragePool", ["c"], ["p"]),
                                      helper.make_node("Squeeze", ["p", "axes"], ["s"]),
                                      helper.make_node("Gemm", ["s", "g"], ["y"], transB=1)])
    inits += [_init("axes", np.array([2, 3], dtype=np.int64)), _init("g", _weights(5, 3))]
    _check(_model(nodes, shape, inits), shape, "GlobalAveragePool+Squeeze+Gemm")


def test_concat_channels() -> None:
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "w2"], ["b"]),
             helper.make_node("Concat", ["a", "b"], ["y"], axis=1)]
    inits = [_init("w1", _weights(3, 2, 3, 3)), _init("w2", _weights(4, 2, 1, 1))]
    _check(_model(nodes, [1, 2, 5, 5], inits), [1, 2, 5, 5], "Concat axis=1")


@pytest.mark.parametrize("pads,value,mode", [([0, 0, 1, 2, 0, 0, 2, 1], 0.0, "constant"),
                                             ([0, 0, 1, 1, 0, 0, 1, 1], 0.5, "constant"),
                                             ([0, 1, 0, 0, 0, 2, 0, 0], 0.0, "constant"),
                                             ([0, 0, 1, 2, 0, 0, 1, 0], 0.0, "reflect")])
def test_pad(pads, value, mode) -> None:
    node = helper.make_node("Pad", ["x", "pads", "value"], ["y"], mode=mode)
    inits = [_init("pads", np.array(pads, dtype=np.int64)), _init("value", np.float32(value))]
    _check(_model([node], [1, 3, 4, 4], inits), [1, 3, 4, 4], f"Pad {pads} {mode} {value}")


def test_constant_node_feeds_clip() -> None:
    nodes = [helper.make_node("Constant", [], ["lo"], value=numpy_helper.from_array(np.float32(0.0))),
             helper.make_node("Constant", [], ["hi"], value_float=6.0),
             helper.make_node("Clip", ["x", "lo", "hi"], ["y"])]
    _check(_model(nodes, [1, 2, 3, 3]), [1, 2, 3, 3], "Constant+Clip")


def test_dynamic_batch_is_accepted() -> None:
    model = _model([helper.make_node("Relu", ["x"], ["y"])], ["N", 2, 3, 3])
    converted = convert_onnx(model)
    assert converted.input_shape == (1, 3, 3, 2)


def test_tf_model_call_on_a_batch() -> None:
    nodes, inits, shape = _conv_then([helper.make_node("GlobalAveragePool", ["c"], ["p"]),
                                      helper.make_node("Flatten", ["p"], ["y"])])
    model = _model(nodes, shape, inits)
    converted = convert_onnx(model)
    assert isinstance(converted, TfModel) and converted.output_names == ["y"]
    x = RNG.standard_normal((3, 4, 4, 2)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = np.concatenate([session.run(None, {"x": xi[None].transpose(0, 3, 1, 2)})[0] for xi in x])
    assert np.max(np.abs(converted(x) - expected)) <= TOLERANCE


# ----------------------------------------------------------------------------- errors

def test_unsupported_op_names_op_and_node() -> None:
    w = _init("W", _weights(1, 8, 3))
    r = _init("R", _weights(1, 8, 2))
    node = helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="lstm_1", hidden_size=2)
    with pytest.raises(TinymlError) as info:
        convert_onnx(_model([node], [1, 1, 3], [w, r]))
    message = str(info.value)
    assert message.startswith("unsupported ONNX op 'LSTM' at node 'lstm_1' (supported: ")
    assert "Conv" in message and "\n" not in message
    assert "LSTM" not in SUPPORTED_OPS and {"Conv", "Gemm", "Relu", "Clip", "GlobalAveragePool"} <= SUPPORTED_OPS


def test_not_an_onnx_file(tmp_path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x00\xffthis is not protobuf" * 10)
    with pytest.raises(TinymlError, match="not an ONNX model"):
        convert_onnx(bad)
    with pytest.raises(TinymlError, match="does not exist"):
        convert_onnx(tmp_path / "missing.onnx")


def test_two_inputs_refused() -> None:
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "g",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2]) for n in "ab"],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(TinymlError, match="exactly one input, it has 2"):
        convert_onnx(model)


def test_non_float_input_refused() -> None:
    model = _model([helper.make_node("Cast", ["x"], ["y"], to=1)], [1, 4], input_type=TensorProto.INT64)
    with pytest.raises(TinymlError, match="is INT64; a float32 input is required"):
        convert_onnx(model)


def test_dynamic_spatial_dims_refused() -> None:
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [1, 3, "H", "W"])
    with pytest.raises(TinymlError, match="dynamic dimension 'H' at axis 2"):
        convert_onnx(model)


def test_softmax_over_spatial_axis_refused() -> None:
    model = _model([helper.make_node("Softmax", ["x"], ["y"], axis=2, name="sm")], [1, 3, 4, 4])
    with pytest.raises(TinymlError, match="Softmax' at node 'sm'"):
        convert_onnx(model)


def test_conv_weight_must_be_constant() -> None:
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]),
                               helper.make_node("Conv", ["x", "r"], ["y"], name="c")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 3, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(TinymlError, match="needs a constant weight"):
        convert_onnx(model)


# ----------------------------------------------------------------------------- whole torch models

def _torch_models():
    import torch
    from torch import nn

    class MobileNetish(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
                nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
                nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU(),
                nn.Conv2d(16, 24, 1), nn.ReLU())
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(24, 10)

        def forward(self, x):
            return self.classifier(torch.flatten(self.pool(self.features(x)), 1))

    class FlattenHead(nn.Module):
        """No global pool: a 2x2x6 feature map flattened in NCHW order into the classifier."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.conv2 = nn.Conv2d(6, 6, 3, stride=2, padding=1)
            self.avg = nn.AvgPool2d(3, stride=1, padding=1)
            self.fc = nn.Linear(6 * 2 * 2, 4)

        def forward(self, x):
            x = self.pool(torch.relu(self.conv1(x)))
            x = self.avg(torch.relu(self.conv2(x)))
            return self.fc(x.view(x.size(0), -1))

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(2, 8, 3, padding=1)
            self.branch = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU6(),
                                        nn.Conv2d(8, 8, 1))
            self.side = nn.Conv2d(8, 4, 1)
            self.fc = nn.Linear(12, 3)

        def forward(self, x):
            x = torch.relu(self.stem(x))
            x = x + self.branch(x)
            x = torch.cat([x, self.side(x)], dim=1)
            x = torch.mean(x, dim=(2, 3))
            return torch.softmax(self.fc(x), dim=1)

    return [("mobilenetish", MobileNetish(), (8, 8, 1)), ("flatten_head", FlattenHead(), (8, 8, 3)),
            ("residual", Residual(), (6, 6, 2))]


@pytest.mark.parametrize("index", range(3), ids=["mobilenetish", "flatten_head", "residual"])
def test_torch_model_through_export_and_converter(index, tmp_path) -> None:
    import torch

    from tinyml.onnx_export import export_onnx

    torch.manual_seed(index)
    name, model, shape = _torch_models()[index]
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):   # non-trivial statistics so folding matters
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    model.eval()
    x = np.random.default_rng(index).random((4, *shape), dtype=np.float32)
    exported = export_onnx(model, shape, tmp_path / f"{name}.onnx", sample=x)
    converted = convert_onnx(exported.path)
    with torch.no_grad():
        expected = model(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
    error = float(np.max(np.abs(converted(x) - expected)))
    print(f"max_abs_error whole model {name}: {error:.3g} (onnx nodes {exported.node_counts})")
    assert error <= TOLERANCE
