"""RESHAPE against tflite-micro (a byte copy; also in place)."""

from __future__ import annotations

import numpy as np
import pytest

from .kernel_harness import (EngineLib, TensorSpec, check_arm_build, one_op_model, options, random_int8,
                             random_scale, run_tflm)


@pytest.mark.parametrize("case", range(8))
def test_reshape_matches_tflm(case, rng):
    lib = EngineLib.build(["tm_reshape"])
    dims = [int(d) for d in rng.integers(1, 7, size=4)]
    in_shape = tuple(dims)
    out_shape = (1, int(np.prod(dims))) if case % 2 else (dims[0] * dims[1], dims[2] * dims[3])
    scale, zero_point = random_scale(rng), int(rng.integers(-128, 128))
    model = one_op_model(
        "RESHAPE", [TensorSpec(in_shape, scale, zero_point),
                    TensorSpec((len(out_shape),), dtype="INT32", data=np.array(out_shape, dtype=np.int32))],
        [TensorSpec(out_shape, scale, zero_point)], options("Reshape", newShape=list(out_shape)))
    x = random_int8(rng, in_shape)
    expected = run_tflm(model, [x])[0]
    params = lib.params("tm_reshape_params_t", size=x.size)
    out = np.zeros(out_shape, dtype=np.int8)
    lib.call("tm_reshape_s8", params, x, out)
    np.testing.assert_array_equal(out, expected)
    in_place = x.copy()
    lib.call("tm_reshape_s8", params, in_place, in_place)
    np.testing.assert_array_equal(in_place.reshape(out_shape), expected)


def test_compiles_for_cortex_m4(tmp_path):
    check_arm_build("tm_reshape", tmp_path)
