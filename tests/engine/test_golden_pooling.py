"""MAX_POOL_2D and AVERAGE_POOL_2D golden cases, computed by hand (see golden_harness.py)."""

from __future__ import annotations

import numpy as np
import pytest

from .golden_harness import GoldenCase, check_case
from .kernel_harness import TensorSpec, one_op_model, options

# A 2x6 input, 2x2 windows, stride 2 -> 1x3; input and output share (0.5, 0).
#   x = [[1, -3, 7, 8, -9, -10],
#        [4,  3, -5, 6, -3, -4]]
#   windows: {1,-3,4,3}, {7,8,-5,6}, {-9,-10,-3,-4}
#   max:     4, 8, -3
#   average: 5/4 = 1.25 -> 1;  16/4 = 4;  -26/4 = -6.5 -> -7 (ties round away from zero)
X = np.array([1, -3, 7, 8, -9, -10, 4, 3, -5, 6, -3, -4], dtype=np.int8).reshape(1, 2, 6, 1)


def _pool(opcode: str) -> bytes:
    return one_op_model(opcode, [TensorSpec(X.shape, 0.5, 0)], [TensorSpec((1, 1, 3, 1), 0.5, 0)],
                        options("Pool2D", padding="VALID", strideW=2, strideH=2, filterWidth=2, filterHeight=2))


MAX = GoldenCase("max_pool_2x2", _pool("MAX_POOL_2D"), X, np.array([4, 8, -3], dtype=np.int8).reshape(1, 1, 3, 1))
AVERAGE = GoldenCase("average_pool_2x2", _pool("AVERAGE_POOL_2D"), X,
                     np.array([1, 4, -7], dtype=np.int8).reshape(1, 1, 3, 1))

CASES = [MAX, AVERAGE]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_pooling_golden(case):
    check_case(case)
