"""SOFTMAX int8 -> int8 against tflite-micro: random depths, rows, input scales and betas."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml.compiler import requant

from .kernel_harness import (EngineLib, TensorSpec, check_arm_build, convert, first_op, one_op_model, options,
                             random_int8, random_scale, run_tflm)


def softmax_params(lib: EngineLib, model: bytes):
    graph, op = first_op(model, "SOFTMAX")
    t_in, t_out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    assert (float(t_out.scale[0]), int(t_out.zero_point[0])) == (requant.SOFTMAX_OUTPUT_SCALE,
                                                                 requant.SOFTMAX_OUTPUT_ZERO_POINT)
    q = requant.softmax_quant(op.options["beta"], float(t_in.scale[0]))
    depth = t_in.shape[-1]
    params = lib.params("tm_softmax_params_t", rows=int(np.prod(t_in.shape)) // depth, depth=depth,
                        input_multiplier=q.input_multiplier, input_left_shift=q.input_left_shift,
                        diff_min=q.diff_min)
    return params, graph, op


def check_against_tflm(model: bytes, rng: np.random.Generator, runs: int = 3) -> None:
    lib = EngineLib.build(["tm_softmax"])
    params, graph, op = softmax_params(lib, model)
    shape = graph.tensors[graph.inputs[0]].shape
    for run in range(runs):
        x = random_int8(rng, shape)
        if run == 1:   # many equal maxima and exact zeros of the difference
            x = (x // 32 * 32).astype(np.int8)
        expected = run_tflm(model, [x])[0]
        out = np.zeros(shape, dtype=np.int8)
        lib.call("tm_softmax_s8", params, x, out)
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("case", range(40))
def test_random_softmax_matches_tflm(case, rng):
    depth = int(rng.choice([1, 2, 3, 10, 12, 35, 100, 257, 1000])) if case % 2 else int(rng.integers(1, 64))
    rank = int(rng.integers(2, 5))
    shape = tuple(int(d) for d in rng.integers(1, 4, size=rank - 1)) + (depth,)
    shape = (1,) + shape[1:] if rank > 1 else shape
    scale = random_scale(rng, 1e-3, 1.0) if case % 4 else random_scale(rng, 0.05, 8.0)
    beta = 1.0 if case % 3 == 0 else float(np.float32(np.exp(rng.uniform(np.log(0.05), np.log(4.0)))))
    model = one_op_model("SOFTMAX", [TensorSpec(shape, scale, int(rng.integers(-128, 128)))],
                         [TensorSpec(shape, 1.0 / 256.0, -128)], options("Softmax", beta=beta))
    check_against_tflm(model, rng)


@pytest.mark.slow
def test_converted_softmax_matches_tflm(rng):
    import tensorflow as tf

    model = convert(lambda x: tf.nn.softmax(x), [(1, 10)], [(-6.0, 9.0)])
    check_against_tflm(model, rng)


def test_softmax_quant_values():
    """beta * scale * 2^26 quantized as a left shift; diff_min = -floor(31 * 2^26 / 2^shift)."""
    q = requant.softmax_quant(1.0, 0.1)
    multiplier, shift = requant.quantize_multiplier(float(np.float32(0.1)) * 2**26)
    assert (q.input_multiplier, q.input_left_shift) == (multiplier, shift)
    assert q.diff_min == -int(np.floor(31 * 2**26 / 2**shift))


def test_compiles_for_cortex_m4(tmp_path):
    check_arm_build("tm_softmax", tmp_path)
