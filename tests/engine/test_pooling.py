"""MAX_POOL_2D and AVERAGE_POOL_2D against tflite-micro: random shapes, filters, strides,
SAME/VALID padding, fused activations, scales and zero points."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml.compiler import requant

from .kernel_harness import (EngineLib, TensorSpec, check_arm_build, convert, first_op, one_op_model, options,
                             random_int8, random_scale, run_tflm)

ACTIVATIONS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]
KERNELS = {"MAX_POOL_2D": "tm_max_pool_2d", "AVERAGE_POOL_2D": "tm_average_pool_2d"}


def pool_params(lib: EngineLib, model: bytes, opcode: str):
    """What the compiler puts in tm_*_pool_2d_params_t for the model's pooling op."""
    graph, op = first_op(model, opcode)
    t_in, t_out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    o = op.options
    batches, in_h, in_w, channels = t_in.shape
    out_h, pad_h = requant.padding_2d(in_h, o["filter_height"], o["stride_h"], o["padding"])
    out_w, pad_w = requant.padding_2d(in_w, o["filter_width"], o["stride_w"], o["padding"])
    assert (batches, out_h, out_w, channels) == t_out.shape
    act_min, act_max = requant.activation_range(o["fused_activation_function"], float(t_out.scale[0]),
                                              int(t_out.zero_point[0]))
    kernel = KERNELS[opcode]
    params = lib.params(f"{kernel}_params_t", batches=batches, input_h=in_h, input_w=in_w, channels=channels,
                        output_h=out_h, output_w=out_w, filter_h=o["filter_height"], filter_w=o["filter_width"],
                        stride_h=o["stride_h"], stride_w=o["stride_w"], pad_h=pad_h, pad_w=pad_w,
                        activation_min=act_min, activation_max=act_max)
    return params, tuple(t_out.shape)


def check_against_tflm(model: bytes, opcode: str, rng: np.random.Generator, runs: int = 3) -> None:
    kernel = KERNELS[opcode]
    lib = EngineLib.build([kernel])
    params, out_shape = pool_params(lib, model, opcode)
    graph, op = first_op(model, opcode)
    for _ in range(runs):
        x = random_int8(rng, graph.tensors[graph.inputs[0]].shape)
        expected = run_tflm(model, [x])[0]
        out = np.zeros(out_shape, dtype=np.int8)
        lib.call(f"{kernel}_s8", params, x, out)
        np.testing.assert_array_equal(out, expected)


def random_pool_model(rng: np.random.Generator, opcode: str) -> bytes:
    padding = str(rng.choice(["SAME", "VALID"]))
    in_h, in_w = int(rng.integers(1, 13)), int(rng.integers(1, 13))
    filter_h, filter_w = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    if padding == "VALID":
        filter_h, filter_w = min(filter_h, in_h), min(filter_w, in_w)
    stride_h, stride_w = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    out_h, _ = requant.padding_2d(in_h, filter_h, stride_h, padding)
    out_w, _ = requant.padding_2d(in_w, filter_w, stride_w, padding)
    batches, channels = int(rng.choice([1, 1, 2])), int(rng.integers(1, 9))
    scale, zero_point = random_scale(rng, 1e-3, 0.5), int(rng.integers(-128, 128))
    opts = options("Pool2D", padding=padding, strideW=stride_w, strideH=stride_h, filterWidth=filter_w,
                   filterHeight=filter_h, fusedActivationFunction=str(rng.choice(ACTIVATIONS)))
    return one_op_model(opcode, [TensorSpec((batches, in_h, in_w, channels), scale, zero_point)],
                        [TensorSpec((batches, out_h, out_w, channels), scale, zero_point)], opts)


@pytest.mark.parametrize("opcode", list(KERNELS))
@pytest.mark.parametrize("case", range(30))
def test_random_pool_matches_tflm(opcode, case, rng):
    check_against_tflm(random_pool_model(rng, opcode), opcode, rng)


@pytest.mark.parametrize("shape, padding", [((1, 25, 5, 64), "VALID"), ((2, 8, 8, 12), "VALID"),
                                            ((1, 7, 6, 5), "SAME")])
def test_global_average_pool_matches_tflm(shape, padding, rng):
    """A window as large as the input (the MLPerf models' global pooling): its rows are one run
    in memory; with SAME padding every window is clipped to the input."""
    opts = options("Pool2D", padding=padding, strideW=1, strideH=1, filterWidth=shape[2], filterHeight=shape[1],
                   fusedActivationFunction="NONE")
    out_hw = (1, 1) if padding == "VALID" else shape[1:3]
    model = one_op_model("AVERAGE_POOL_2D", [TensorSpec(shape, 0.05, -3)],
                         [TensorSpec((shape[0], *out_hw, shape[3]), 0.05, -3)], opts)
    check_against_tflm(model, "AVERAGE_POOL_2D", rng)


@pytest.mark.slow
@pytest.mark.parametrize("opcode", list(KERNELS))
@pytest.mark.parametrize("case", range(4))
def test_converted_pool_matches_tflm(opcode, case, rng):
    """Pooling as TensorFlow's converter writes it (Keras-style pool, ReLU fused by the converter)."""
    import tensorflow as tf

    shape = (1, int(rng.integers(3, 12)), int(rng.integers(3, 12)), int(rng.integers(1, 6)))
    size, stride = int(rng.integers(2, 4)), int(rng.integers(1, 3))
    padding = ["SAME", "VALID"][case % 2]
    pool = tf.nn.max_pool2d if opcode == "MAX_POOL_2D" else tf.nn.avg_pool2d
    relu = case >= 2
    model = convert(lambda x: (tf.nn.relu if relu else tf.identity)(pool(x, size, stride, padding)),
                    [shape], [(-float(rng.uniform(0.5, 4)), float(rng.uniform(0.5, 4)))], seed=case)
    check_against_tflm(model, opcode, rng)


def test_activation_bound_rounds_like_tflm(rng):
    """RELU6 at scale 0.8: 6 / 0.8 is 7.4999999 in double but 7.5 in float32, so TFLite's bound
    is zero point + 8; a 1x1 max pool shows the clamp."""
    opts = options("Pool2D", padding="VALID", strideW=1, strideH=1, filterWidth=1, filterHeight=1,
                   fusedActivationFunction="RELU6")
    model = one_op_model("MAX_POOL_2D", [TensorSpec((1, 4, 4, 2), 0.8, 0)], [TensorSpec((1, 4, 4, 2), 0.8, 0)], opts)
    check_against_tflm(model, "MAX_POOL_2D", rng)
    x = np.full((1, 4, 4, 2), 100, dtype=np.int8)
    assert run_tflm(model, [x])[0].max() == 8


@pytest.mark.parametrize("opcode", list(KERNELS))
def test_tflm_rejects_differing_quantization(opcode, rng):
    """TFLM's int8 pooling requires the output's scale and zero point to equal the input's
    (the kernels rely on it, the compiler must refuse other models)."""
    opts = options("Pool2D", padding="VALID", strideW=2, strideH=2, filterWidth=2, filterHeight=2)
    for out_scale, out_zp in ((0.2, 5), (0.1, -3)):
        model = one_op_model(opcode, [TensorSpec((1, 4, 4, 1), 0.1, 5)], [TensorSpec((1, 2, 2, 1), out_scale, out_zp)],
                             opts)
        with pytest.raises(RuntimeError):
            run_tflm(model, [random_int8(rng, (1, 4, 4, 1))])


@pytest.mark.parametrize("kernel", list(KERNELS.values()))
def test_compiles_for_cortex_m4(kernel, tmp_path):
    check_arm_build(kernel, tmp_path)
