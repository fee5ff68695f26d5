"""QUANTIZE golden cases, computed by hand (see golden_harness.py for the three checks)."""

from __future__ import annotations

import numpy as np
import pytest

from .golden_harness import GoldenCase, check_case
from .kernel_harness import TensorSpec, one_op_model

# float -> int8, s 0.5, zp -3: q = round(x / 0.5) - 3, clamped to [-128, 127]
#   0.0 -> 0 - 3 = -3;  1.0 -> 2 - 3 = -1;  -1.2 -> round(-2.4) = -2, -5;
#   100.0 -> 200 - 3 = 197 -> 127;  0.75 -> round(1.5) = 2 (ties away from zero), -1
XF = np.array([[0.0, 1.0, -1.2, 100.0, 0.75]], dtype=np.float32)
FROM_FLOAT = GoldenCase(
    "quantize_float", one_op_model("QUANTIZE", [TensorSpec(XF.shape, dtype="FLOAT32")], [TensorSpec(XF.shape, 0.5, -3)]),
    XF, np.array([[-3, -1, -5, 127, -1]], dtype=np.int8))

# int8 -> int8 (requantize), (0.5, 0) -> (0.25, 5): q = x * 2 + 5
#   1 -> 7;  -3 -> -1;  70 -> 145 -> 127;  -70 -> -135 -> -128
XQ = np.array([[1, -3, 70, -70]], dtype=np.int8)
REQUANTIZE = GoldenCase(
    "quantize_int8_rescale",
    one_op_model("QUANTIZE", [TensorSpec(XQ.shape, 0.5, 0)], [TensorSpec(XQ.shape, 0.25, 5)]),
    XQ, np.array([[7, -1, 127, -128]], dtype=np.int8))

CASES = [FROM_FLOAT, REQUANTIZE]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_quantize_golden(case):
    check_case(case)
