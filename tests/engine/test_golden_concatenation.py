"""CONCATENATION golden case, computed by hand (see golden_harness.py for the three checks)."""

from __future__ import annotations

import numpy as np
import pytest

from .golden_harness import GoldenCase, check_case
from .kernel_harness import TensorSpec, one_op_model, options

# Along the last axis of (1,2,1) and a constant (1,2,2), all tensors (0.5, 0): each row is
# a's element followed by b's two:
#   a = [[1], [2]], b = [[3, 127], [-128, 6]]  ->  [[1, 3, 127], [2, -128, 6]]
A = np.array([1, 2], dtype=np.int8).reshape(1, 2, 1)
B = np.array([3, 127, -128, 6], dtype=np.int8).reshape(1, 2, 2)
MODEL = one_op_model("CONCATENATION", [TensorSpec(A.shape, 0.5, 0), TensorSpec(B.shape, 0.5, 0, data=B)],
                     [TensorSpec((1, 2, 3), 0.5, 0)], options("Concatenation", axis=2))
CONCAT = GoldenCase("concatenation_last_axis", MODEL, A,
                    np.array([1, 3, 127, 2, -128, 6], dtype=np.int8).reshape(1, 2, 3))

CASES = [CONCAT]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_concatenation_golden(case):
    check_case(case)
