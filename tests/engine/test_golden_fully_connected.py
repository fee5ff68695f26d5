"""FULLY_CONNECTED golden case, computed by hand (see golden_harness.py for the three checks)."""

from __future__ import annotations

import numpy as np
import pytest

from .golden_harness import BiasSpec, GoldenCase, check_case
from .kernel_harness import TensorSpec, one_op_model, options

# s_in 0.5, zp_in 1; s_w 0.25; s_out 0.25, zp_out -3 -> M = 0.5 * 0.25 / 0.25 = 0.5; bias in units of 0.125
#   x = [3, 5, -1, 1], x - zp_in = [2, 4, -2, 0]
#   out0: w [1, 2, 3, 4],       2 + 8 - 6 + 0 = 4,         +6 = 10, *0.5 = 5, -3 = 2
#   out1: w [-5, 1, 0, 7],      -10 + 4 + 0 + 0 = -6,      +0,      *0.5 = -3, -3 = -6
#   out2: w [127, 127, -127, 0], 254 + 508 + 254 = 1016,   +0,      *0.5 = 508, -3 = 505 -> saturates to 127
X = np.array([[3, 5, -1, 1]], dtype=np.int8)
W = np.array([[1, 2, 3, 4], [-5, 1, 0, 7], [127, 127, -127, 0]], dtype=np.int8)
MODEL = one_op_model(
    "FULLY_CONNECTED",
    [TensorSpec(X.shape, 0.5, 1), TensorSpec(W.shape, 0.25, 0, data=W),
     BiasSpec([6, 0, 0], 0.125)],
    [TensorSpec((1, 3), 0.25, -3)],
    options("FullyConnected", fusedActivationFunction="NONE"))
DENSE = GoldenCase("fully_connected_3x4", MODEL, X, np.array([[2, -6, 127]], dtype=np.int8))

CASES = [DENSE]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_fully_connected_golden(case):
    check_case(case)
