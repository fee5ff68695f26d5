"""CONCATENATION (int8) against tflite-micro: 2-4 inputs, ranks 1-4, every axis."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml.compiler import requant

from .kernel_harness import (EngineLib, TensorSpec, check_arm_build, convert, first_op, one_op_model, options,
                             pointer_array, random_int8, random_scale, run_tflm)


def check_against_tflm(model: bytes, rng: np.random.Generator) -> None:
    lib = EngineLib.build(["tm_concatenation"])
    graph, op = first_op(model, "CONCATENATION")
    shapes = [graph.tensors[i].shape for i in op.inputs]
    outer, inner = requant.concatenation_layout(shapes, op.options["axis"])
    params = lib.params("tm_concatenation_params_t", num_inputs=len(shapes), outer=outer, inner=inner)
    for _ in range(2):
        inputs = [random_int8(rng, graph.tensors[i].shape) for i in graph.inputs]
        expected = run_tflm(model, inputs)[0]
        by_tensor = dict(zip(graph.inputs, inputs))
        ordered = [by_tensor[i] for i in op.inputs]
        pointers = pointer_array(ordered)
        out = np.zeros(graph.tensors[op.outputs[0]].shape, dtype=np.int8)
        lib.call("tm_concatenation_s8", params, pointers, out)
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("case", range(24))
def test_random_concatenation_matches_tflm(case, rng):
    rank = int(rng.integers(1, 5))
    axis = int(rng.integers(-rank, rank))
    base = [int(d) for d in rng.integers(1, 5, size=rank)]
    shapes = []
    for _ in range(int(rng.integers(2, 5))):
        shape = list(base)
        shape[axis] = int(rng.integers(1, 6))
        shapes.append(tuple(shape))
    out_shape = list(base)
    out_shape[axis] = sum(s[axis] for s in shapes)
    scale, zero_point = random_scale(rng), int(rng.integers(-128, 128))
    model = one_op_model("CONCATENATION", [TensorSpec(s, scale, zero_point) for s in shapes],
                         [TensorSpec(tuple(out_shape), scale, zero_point)],
                         options("Concatenation", axis=axis, fusedActivationFunction="NONE"))
    check_against_tflm(model, rng)


def test_tflm_rejects_differing_quantization(rng):
    """TFLM's int8 CONCATENATION never requantizes: it refuses inputs whose scale differs from
    the output's (the converter gives all of them the same parameters), so the kernel is a copy
    and the compiler must refuse such models too."""
    shapes = [(1, 3, 3, 2), (1, 3, 3, 5)]
    model = one_op_model("CONCATENATION", [TensorSpec(shapes[0], 0.02, 5), TensorSpec(shapes[1], 0.3, -40)],
                         [TensorSpec((1, 3, 3, 7), 0.1, 0)], options("Concatenation", axis=3))
    with pytest.raises(RuntimeError):
        run_tflm(model, [random_int8(rng, s) for s in shapes])


@pytest.mark.slow
def test_converted_concatenation_matches_tflm(rng):
    import tensorflow as tf

    model = convert(lambda x, y: tf.concat([x, y], axis=3), [(1, 4, 4, 3), (1, 4, 4, 2)], [(-1.0, 1.0), (-4.0, 2.0)])
    check_against_tflm(model, rng)


def test_compiles_for_cortex_m4(tmp_path):
    check_arm_build("tm_concatenation", tmp_path)
