"""SOFTMAX golden case, computed by hand (see golden_harness.py for the three checks)."""

from __future__ import annotations

import numpy as np
import pytest

from .golden_harness import GoldenCase, check_case
from .kernel_harness import TensorSpec, one_op_model, options

# Softmax over the last axis, beta 1, input scale 0.5; output (1/256, -128): q = 256 * p - 128.
#   row 0: [20, 20, -100] -> logits [10, 10, -50]: exp(-60) ~ 1e-26 is 0 in 8 bits,
#          p = [0.5, 0.5, 0] -> [0, 0, -128]
#   row 1: [7, -120, -120] -> logits [3.5, -60, -60]: p = [1, 0, 0] -> 256 - 128 = 128,
#          saturates to 127 -> [127, -128, -128]
X = np.array([[20, 20, -100], [7, -120, -120]], dtype=np.int8)
MODEL = one_op_model("SOFTMAX", [TensorSpec(X.shape, 0.5, 0)], [TensorSpec(X.shape, 1.0 / 256.0, -128)],
                     options("Softmax", beta=1.0))
SOFTMAX = GoldenCase("softmax_two_rows", MODEL, X, np.array([[0, 0, -128], [127, -128, -128]], dtype=np.int8))

# Input scale ln 2, so exp(q * s) = 2^q: the probabilities are ratios of powers of two.
#   [3, 1, 0, -2] -> 8 : 2 : 1 : 0.25, sum 11.25; q = round(256 * p) - 128:
#   256 * 8 / 11.25 = 182.04 -> 182 -> 54;    256 * 2 / 11.25 = 45.51 -> 46 -> -82
#   256 * 1 / 11.25 = 22.76 -> 23 -> -105;    256 * 0.25 / 11.25 = 5.69 -> 6 -> -122
LN2 = float(np.float32(np.log(2.0)))
XP = np.array([[3, 1, 0, -2]], dtype=np.int8)
POWERS = GoldenCase("softmax_powers_of_two",
                    one_op_model("SOFTMAX", [TensorSpec(XP.shape, LN2, 0)], [TensorSpec(XP.shape, 1.0 / 256.0, -128)],
                                 options("Softmax", beta=1.0)),
                    XP, np.array([[54, -82, -105, -122]], dtype=np.int8))

CASES = [SOFTMAX, POWERS]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_softmax_golden(case):
    check_case(case)
