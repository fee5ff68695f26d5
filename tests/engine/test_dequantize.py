"""DEQUANTIZE int8 -> float32 against tflite-micro (float bytes compared), and a converter
model with float input and output: QUANTIZE -> AVERAGE_POOL_2D -> DEQUANTIZE run on the
engine's kernels end to end."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml.compiler import requant
from tinyml.tflite_graph import load_tflite

from .kernel_harness import (EngineLib, TensorSpec, check_arm_build, convert, one_op_model, random_int8,
                             random_scale, run_tflm)


@pytest.mark.parametrize("case", range(16))
def test_dequantize_matches_tflm(case, rng):
    lib = EngineLib.build(["tm_dequantize"])
    shape = (1, int(rng.integers(1, 9)), int(rng.integers(1, 65)))
    scale = random_scale(rng, 1e-6, 10.0)
    zero_point = int(rng.integers(-128, 128))
    model = one_op_model("DEQUANTIZE", [TensorSpec(shape, scale, zero_point)], [TensorSpec(shape, dtype="FLOAT32")])
    x = random_int8(rng, shape)
    x.flat[: min(x.size, 256)] = np.arange(-128, 128, dtype=np.int8)[: min(x.size, 256)]
    expected = run_tflm(model, [x])[0]
    assert expected.dtype == np.float32
    graph = load_tflite(model)
    t_in = graph.tensors[graph.operators[0].inputs[0]]
    params = lib.params("tm_dequantize_params_t", size=x.size, scale=float(t_in.scale[0]),
                        zero_point=int(t_in.zero_point[0]))
    out = np.zeros(shape, dtype=np.float32)
    lib.call("tm_dequantize_s8_f32", params, x, out)
    np.testing.assert_array_equal(out.view(np.uint32), expected.view(np.uint32))


@pytest.mark.slow
def test_float_io_model_end_to_end(rng):
    import tensorflow as tf

    shape = (1, 6, 6, 3)
    model = convert(lambda x: tf.nn.avg_pool2d(x, 2, 2, "VALID"), [shape], [(-1.5, 2.5)], float_io=True)
    graph = load_tflite(model)
    assert [op.opcode for op in graph.operators] == ["QUANTIZE", "AVERAGE_POOL_2D", "DEQUANTIZE"]
    quantize, pool, dequantize = graph.operators
    lib = EngineLib.build(["tm_quantize", "tm_average_pool_2d", "tm_dequantize"])
    t_q = graph.tensors[quantize.outputs[0]]
    t_p = graph.tensors[pool.outputs[0]]
    o = pool.options
    out_h, pad_h = requant.padding_2d(6, o["filter_height"], o["stride_h"], o["padding"])
    out_w, pad_w = requant.padding_2d(6, o["filter_width"], o["stride_w"], o["padding"])
    act_min, act_max = requant.activation_range(o["fused_activation_function"], float(t_p.scale[0]),
                                              int(t_p.zero_point[0]))
    p_quantize = lib.params("tm_quantize_f32_params_t", size=int(np.prod(shape)), scale=float(t_q.scale[0]),
                            zero_point=int(t_q.zero_point[0]))
    p_pool = lib.params("tm_average_pool_2d_params_t", batches=1, input_h=6, input_w=6, channels=3,
                        output_h=out_h, output_w=out_w, filter_h=o["filter_height"], filter_w=o["filter_width"],
                        stride_h=o["stride_h"], stride_w=o["stride_w"], pad_h=pad_h, pad_w=pad_w,
                        activation_min=act_min, activation_max=act_max)
    p_dequantize = lib.params("tm_dequantize_params_t", size=out_h * out_w * 3, scale=float(t_p.scale[0]),
                              zero_point=int(t_p.zero_point[0]))
    for _ in range(3):
        x = rng.uniform(-2.0, 3.0, size=shape).astype(np.float32)
        expected = run_tflm(model, [x])[0]
        q = np.zeros(shape, dtype=np.int8)
        pooled = np.zeros((1, out_h, out_w, 3), dtype=np.int8)
        out = np.zeros((1, out_h, out_w, 3), dtype=np.float32)
        lib.call("tm_quantize_f32_s8", p_quantize, x, q)
        lib.call("tm_average_pool_2d_s8", p_pool, q, pooled)
        lib.call("tm_dequantize_s8_f32", p_dequantize, pooled, out)
        np.testing.assert_array_equal(out.view(np.uint32), expected.view(np.uint32))


def test_compiles_for_cortex_m4(tmp_path):
    check_arm_build("tm_dequantize", tmp_path)
