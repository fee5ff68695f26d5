"""DEQUANTIZE golden case, computed by hand (see golden_harness.py for the three checks)."""

from __future__ import annotations

import numpy as np
import pytest

from .golden_harness import GoldenCase, check_case
from .kernel_harness import TensorSpec, one_op_model

# int8 -> float, s 0.5, zp -3: x = (q + 3) * 0.5, exact in float32
#   -3 -> 0.0;  0 -> 1.5;  5 -> 4.0;  -128 -> -62.5;  127 -> 65.0
X = np.array([[-3, 0, 5, -128, 127]], dtype=np.int8)
DEQUANTIZE = GoldenCase(
    "dequantize", one_op_model("DEQUANTIZE", [TensorSpec(X.shape, 0.5, -3)], [TensorSpec(X.shape, dtype="FLOAT32")]),
    X, np.array([[0.0, 1.5, 4.0, -62.5, 65.0]], dtype=np.float32))

CASES = [DEQUANTIZE]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_dequantize_golden(case):
    check_case(case)
