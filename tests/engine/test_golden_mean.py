"""MEAN golden case, computed by hand (see golden_harness.py for the three checks)."""

from __future__ import annotations

import numpy as np
import pytest

from .golden_harness import GoldenCase, check_case
from .kernel_harness import TensorSpec, one_op_model, options

# Mean over H and W of a 2x2x2 input (keep dims), input and output share (0.5, 0):
#   ch0: 1 + 2 + 3 + 6 = 12, /4 = 3
#   ch1: -1 - 2 - 3 - 5 = -11, /4 = -2.75 -> -3
X = np.array([1, -1, 2, -2, 3, -3, 6, -5], dtype=np.int8).reshape(1, 2, 2, 2)
MODEL = one_op_model("MEAN", [TensorSpec(X.shape, 0.5, 0), TensorSpec((2,), dtype="INT32",
                                                                      data=np.array([1, 2], dtype=np.int32))],
                     [TensorSpec((1, 1, 1, 2), 0.5, 0)], options("Reducer", keepDims=True))
MEAN = GoldenCase("mean_hw", MODEL, X, np.array([3, -3], dtype=np.int8).reshape(1, 1, 1, 2))

# The same input, output requantized to (0.375, 1): out = round(mean_q * 0.5 / 0.375) + 1
#   ch0: 3 * 0.5 = 1.5, / 0.375 = 4, + 1 = 5
#   ch1: -2.75 * 0.5 = -1.375, / 0.375 = -3.67 -> -4, + 1 = -3
RESCALED = GoldenCase(
    "mean_hw_rescaled",
    one_op_model("MEAN", [TensorSpec(X.shape, 0.5, 0), TensorSpec((2,), dtype="INT32", data=np.array([1, 2], dtype=np.int32))],
                 [TensorSpec((1, 1, 1, 2), 0.375, 1)], options("Reducer", keepDims=True)),
    X, np.array([5, -3], dtype=np.int8).reshape(1, 1, 1, 2))

CASES = [MEAN, RESCALED]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_mean_golden(case):
    check_case(case)
