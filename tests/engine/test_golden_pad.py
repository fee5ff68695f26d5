"""PAD golden case, computed by hand (see golden_harness.py for the three checks)."""

from __future__ import annotations

import numpy as np
import pytest

from .golden_harness import GoldenCase, check_case
from .kernel_harness import TensorSpec, one_op_model

# 1x1x2x1 -> 1x2x4x1: one row above, two columns to the right, filled with the zero point -3
# (the quantized 0.0):
#   [[ 5, -7]]  ->  [[-3, -3, -3, -3],
#                    [ 5, -7, -3, -3]]
X = np.array([5, -7], dtype=np.int8).reshape(1, 1, 2, 1)
PADDINGS = np.array([[0, 0], [1, 0], [0, 2], [0, 0]], dtype=np.int32)
MODEL = one_op_model("PAD", [TensorSpec(X.shape, 0.5, -3), TensorSpec((4, 2), dtype="INT32", data=PADDINGS)],
                     [TensorSpec((1, 2, 4, 1), 0.5, -3)])
PAD = GoldenCase("pad_top_right", MODEL, X,
                 np.array([-3, -3, -3, -3, 5, -7, -3, -3], dtype=np.int8).reshape(1, 2, 4, 1))

CASES = [PAD]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_pad_golden(case):
    check_case(case)
