"""ADD golden case, computed by hand (see golden_harness.py for the three checks)."""

from __future__ import annotations

import numpy as np
import pytest

from .golden_harness import GoldenCase, check_case
from .kernel_harness import TensorSpec, one_op_model, options

# out = round((s1 * (x1 - zp1) + s2 * (x2 - zp2)) / s_out) + zp_out; x2 is a constant of the model.
#   x1: s 0.5, zp 0;  x2: s 0.25, zp 2;  out: s 1, zp -1
#   x1 = [1, 4, -7, 127]  -> [0.5, 2.0, -3.5, 63.5]
#   x2 = [4, -7, 1, 127]  -> (x2 - 2) * 0.25 = [0.5, -2.25, -0.25, 31.25]
#   sums [1.0, -0.25, -3.75, 94.75] -> rounded [1, 0, -4, 95] -> + zp_out = [0, -1, -5, 94]
X1 = np.array([[1, 4, -7, 127]], dtype=np.int8)
X2 = np.array([[4, -7, 1, 127]], dtype=np.int8)
MODEL = one_op_model("ADD", [TensorSpec(X1.shape, 0.5, 0), TensorSpec(X2.shape, 0.25, 2, data=X2)],
                     [TensorSpec((1, 4), 1.0, -1)], options("Add"))
ADD = GoldenCase("add_two_scales", MODEL, X1, np.array([[0, -1, -5, 94]], dtype=np.int8))

CASES = [ADD]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_add_golden(case):
    check_case(case)
