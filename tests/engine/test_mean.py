"""MEAN (int8) against tflite-micro: axes {1, 2} (global average pooling) and others, keep_dims
both ways, input and output quantization equal or different."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml.compiler import requant

from .kernel_harness import (EngineLib, TensorSpec, check_arm_build, convert, first_op, one_op_model, options,
                             random_scale, run_tflm)


def mean_params(lib: EngineLib, model: bytes, folded: bool = False):
    """The params as the compiler makes them; folded: with the tm_requant_t record when one exists
    (returned too, to keep it alive), else MBQM at run time."""
    graph, op = first_op(model, "MEAN")
    t_in, t_axes, t_out = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    dims, reduce, count = requant.reduce_axes_4d(t_in.shape, t_axes.data)
    multiplier, shift = requant.mean_multiplier(float(t_in.scale[0]), float(t_out.scale[0]), count)
    out_zp = int(t_out.zero_point[0])
    record = requant.requant_records(np.array([multiplier]), np.array([shift]), out_zp, any_multiplier=True)
    record = np.ascontiguousarray(record, dtype=np.int32) if folded and record is not None else None
    params = lib.params("tm_mean_params_t", dims=dims, reduce=reduce, count=count,
                        input_zero_point=int(t_in.zero_point[0]), output_zero_point=out_zp,
                        multiplier=multiplier, shift=shift, requant=None if record is None else record.ctypes.data)
    return params, graph, op, record


def structured_input(rng: np.random.Generator, shape) -> np.ndarray:
    """Random int8 whose last-axis slices have different levels, so means differ."""
    base = rng.integers(-110, 110, size=shape[-1:])
    noise = rng.integers(-40, 41, size=shape)
    return np.clip(base + noise, -128, 127).astype(np.int8)


def check_against_tflm(model: bytes, rng: np.random.Generator, runs: int = 3, defines=()) -> None:
    lib = EngineLib.build(["tm_mean"], defines=defines)
    for folded in (False, True):
        params, graph, op, _record = mean_params(lib, model, folded)
        out_shape = graph.tensors[op.outputs[0]].shape
        for _ in range(runs):
            x = structured_input(rng, graph.tensors[graph.inputs[0]].shape)
            expected = run_tflm(model, [x])[0]
            out = np.zeros(out_shape, dtype=np.int8)
            lib.call("tm_mean_s8", params, x, out)
            np.testing.assert_array_equal(out, expected)


AXES = [[1, 2], [2, 1], [1], [2], [3], [-1], [1, 2, 3], [0, 1, 2, 3], [0]]


@pytest.mark.parametrize("case", range(36))
def test_random_mean_matches_tflm(case, rng):
    rank = 4 if case % 6 else int(rng.integers(2, 4))
    shape = tuple(int(d) for d in rng.integers(1, 9, size=rank))
    shape = (int(rng.choice([1, 1, 2])),) + shape[1:]
    axes = AXES[case % len(AXES)] if rank == 4 else [int(rng.integers(0, rank))]
    keep_dims = bool(case % 2)
    reduced = {a % rank for a in axes}
    out_shape = tuple((1 if i in reduced else d) for i, d in enumerate(shape) if keep_dims or i not in reduced)
    in_scale, in_zp = random_scale(rng, 1e-3, 0.5), int(rng.integers(-128, 128))
    if case % 3 == 0:
        out_scale, out_zp = in_scale, in_zp                 # what GlobalAveragePooling2D usually gets
    else:
        out_scale = float(np.float32(in_scale * np.exp(rng.uniform(np.log(0.25), np.log(2.0)))))
        out_zp = int(rng.integers(-128, 128))
    model = one_op_model(
        "MEAN", [TensorSpec(shape, in_scale, in_zp),
                 TensorSpec((len(axes),), dtype="INT32", data=np.array(axes, dtype=np.int32))],
        [TensorSpec(out_shape, out_scale, out_zp)], options("Reducer", keepDims=keep_dims))
    check_against_tflm(model, rng)


@pytest.mark.slow
@pytest.mark.parametrize("keep_dims", [False, True])
def test_converted_global_average_pool_matches_tflm(keep_dims, rng):
    import tensorflow as tf

    shape = (1, int(rng.integers(2, 11)), int(rng.integers(2, 11)), int(rng.integers(1, 17)))
    model = convert(lambda x: tf.reduce_mean(x, axis=[1, 2], keepdims=keep_dims), [shape], [(-2.0, 3.0)])
    check_against_tflm(model, rng)


@pytest.mark.parametrize("case", range(8))
def test_dsp_global_mean_matches_tflm(case, rng):
    """Global average pooling in a DSP build (TM_DSP_EMULATE): channels % 4 == 0, more than 256
    pixels, extreme inputs included (all -128 / all 127: sums past int16)."""
    hw = [(1, 1), (2, 3), (16, 16), (17, 16), (23, 29), (8, 8), (16, 17), (33, 9)][case]
    shape = (int(rng.choice([1, 2])), hw[0], hw[1], 4 * int(rng.integers(1, 7)))
    in_scale, in_zp = random_scale(rng, 1e-3, 0.5), int(rng.integers(-128, 128))
    out_scale = float(np.float32(in_scale * np.exp(rng.uniform(np.log(0.25), np.log(2.0)))))
    out_zp = int(rng.integers(-128, 128))
    model = one_op_model(
        "MEAN", [TensorSpec(shape, in_scale, in_zp),
                 TensorSpec((2,), dtype="INT32", data=np.array([1, 2], dtype=np.int32))],
        [TensorSpec((shape[0], shape[3]), out_scale, out_zp)], options("Reducer", keepDims=False))
    check_against_tflm(model, rng, defines=["TM_DSP_EMULATE"])
    lib = EngineLib.build(["tm_mean"], defines=["TM_DSP_EMULATE"])
    params, graph, op, _record = mean_params(lib, model, folded=True)
    for value in (-128, 127):
        x = np.full(shape, value, dtype=np.int8)
        x[..., 1] = -value - 1
        expected = run_tflm(model, [x])[0]
        out = np.zeros((shape[0], shape[3]), dtype=np.int8)
        lib.call("tm_mean_s8", params, x, out)
        np.testing.assert_array_equal(out, expected)


def test_mean_multiplier_folds_count():
    """1/count is folded into the multiplier with TFLite's integer division."""
    m, s = requant.requantize_multiplier(0.1, 0.1)
    assert (m, s) == (1 << 30, 1)
    assert requant.mean_multiplier(0.1, 0.1, 1) == (1 << 30, 1)
    assert requant.mean_multiplier(0.1, 0.1, 49) == ((1 << 30 << 5) // 49, 1 - 5)
    assert requant.reduce_axes_4d((1, 7, 7, 16), [1, 2]) == ([1, 7, 7, 16], [0, 1, 1, 0], 49)
    assert requant.reduce_axes_4d((5, 16), [-1]) == ([1, 1, 5, 16], [0, 0, 0, 1], 16)


def test_compiles_for_cortex_m4(tmp_path):
    check_arm_build("tm_mean", tmp_path)
