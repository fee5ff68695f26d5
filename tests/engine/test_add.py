"""ADD (int8) against tflite-micro: same shapes and broadcasts, random scales, zero points
and fused activations."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml.compiler import quant

from .kernel_harness import (EngineLib, TensorSpec, check_arm_build, convert, first_op, one_op_model, options,
                             random_int8, random_scale, run_tflm)

ACTIVATIONS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]


def add_params(lib: EngineLib, model: bytes):
    graph, op = first_op(model, "ADD")
    t1, t2, to = (graph.tensors[i] for i in (*op.inputs, *op.outputs))
    q = quant.add_quant(float(t1.scale[0]), int(t1.zero_point[0]), float(t2.scale[0]), int(t2.zero_point[0]),
                        float(to.scale[0]), int(to.zero_point[0]), op.options["fused_activation_function"])
    dims, strides1, strides2 = quant.broadcast_4d(t1.shape, t2.shape)
    params = lib.params("tm_add_params_t", **vars(q), dims=dims, input1_strides=strides1,
                        input2_strides=strides2)
    return params, graph, op


def check_against_tflm(model: bytes, rng: np.random.Generator, runs: int = 3) -> None:
    lib = EngineLib.build(["tm_add"])
    params, graph, op = add_params(lib, model)
    out_shape = graph.tensors[op.outputs[0]].shape
    for _ in range(runs):
        inputs = [random_int8(rng, graph.tensors[i].shape) for i in graph.inputs]
        expected = run_tflm(model, inputs)[0]
        by_tensor = dict(zip(graph.inputs, inputs))
        out = np.zeros(out_shape, dtype=np.int8)
        lib.call("tm_add_s8", params, by_tensor[op.inputs[0]], by_tensor[op.inputs[1]], out)
        np.testing.assert_array_equal(out, expected)
        if expected.size >= 16:
            assert np.unique(expected).size > 1, "degenerate case: constant output"


def random_shapes(rng: np.random.Generator, broadcast: bool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    rank = int(rng.integers(1, 5))
    full = [int(rng.integers(1, 7)) for _ in range(rank)]
    if not broadcast:
        return tuple(full), tuple(full)
    shapes = []
    for _ in range(2):
        shape = [d if rng.random() < 0.5 else 1 for d in full]
        shape = shape[int(rng.integers(0, rank)):]       # drop leading dims sometimes
        shapes.append(tuple(shape) or (1,))
    if rng.random() < 0.5:
        shapes[0] = tuple(full)
    return shapes[0], shapes[1]


@pytest.mark.parametrize("broadcast", [False, True], ids=["same", "broadcast"])
@pytest.mark.parametrize("case", range(25))
def test_random_add_matches_tflm(broadcast, case, rng):
    shape1, shape2 = random_shapes(rng, broadcast)
    out_shape = tuple(np.broadcast_shapes(shape1, shape2))
    # input scales up to 100x apart; the output quantized over the range the sum can reach
    # (after the fused activation), as the converter would, so outputs do not all saturate
    activation = ACTIVATIONS[case % 4]
    scales = [random_scale(rng, 1e-3, 0.2), random_scale(rng, 1e-3, 0.2)]
    zps = [int(z) for z in rng.integers(-100, 101, size=2)]
    lo = sum(s * (-128 - z) for s, z in zip(scales, zps))
    hi = sum(s * (127 - z) for s, z in zip(scales, zps))
    lo, hi = {"NONE": (lo, hi), "RELU": (max(lo, 0.0), hi), "RELU6": (max(lo, 0.0), min(hi, 6.0)),
              "RELU_N1_TO_1": (max(lo, -1.0), min(hi, 1.0))}[activation]
    out_scale = float(np.float32(max(hi - lo, 0.05) / 255 * rng.uniform(0.7, 1.5)))
    scales.append(out_scale)
    zps.append(int(np.clip(round(-128 - lo / out_scale), -128, 127)))
    model = one_op_model(
        "ADD", [TensorSpec(shape1, scales[0], zps[0]), TensorSpec(shape2, scales[1], zps[1])],
        [TensorSpec(out_shape, scales[2], zps[2])],
        options("Add", fusedActivationFunction=activation))
    check_against_tflm(model, rng)


@pytest.mark.slow
@pytest.mark.parametrize("case", range(3))
def test_converted_add_matches_tflm(case, rng):
    """A residual add as the converter writes it (inputs with different ranges, ReLU fused)."""
    import tensorflow as tf

    shape = (1, int(rng.integers(2, 9)), int(rng.integers(2, 9)), int(rng.integers(1, 9)))
    shape2 = [shape, (1, 1, 1, shape[3]), (1, shape[1], shape[2], shape[3])][case]
    model = convert(lambda x, y: tf.nn.relu(x + y), [shape, shape2],
                    [(-1.0, 1.0), (-float(rng.uniform(0.1, 8)), float(rng.uniform(0.1, 8)))], seed=case)
    check_against_tflm(model, rng)


def test_broadcast_4d():
    assert quant.broadcast_4d((2, 3), (2, 3)) == ([1, 1, 1, 6], [0, 0, 0, 1], [0, 0, 0, 1])
    assert quant.broadcast_4d((1, 4, 4, 3), (3,)) == ([1, 4, 4, 3], [0, 12, 3, 1], [0, 0, 0, 1])
    assert quant.broadcast_4d((4, 1), (1, 5)) == ([1, 1, 4, 5], [0, 0, 1, 0], [0, 0, 0, 1])
    from tinyml.errors import TinymlError
    with pytest.raises(TinymlError, match="do not broadcast"):
        quant.broadcast_4d((2, 3), (4, 3))


def test_compiles_for_cortex_m4(tmp_path):
    check_arm_build("tm_add", tmp_path)
