"""DEPTHWISE_CONV_2D golden case, computed by hand (see golden_harness.py for the three checks)."""

from __future__ import annotations

import numpy as np
import pytest

from .golden_harness import BiasSpec, GoldenCase, check_case
from .kernel_harness import TensorSpec, one_op_model, options

# 2x2 input with 2 channels, depth multiplier 2 (output channel oc = 2 * ic + m), 2x2 VALID -> 1x1x4.
#   s_in 0.5, zp_in 0; s_w 0.5; s_out 1, zp_out 0 -> M = 0.25 = 0.5 * 2^-1, rounded twice as
#   TFLite does (see test_golden_conv_2d.py): acc * 0.5 to nearest (halves up), then / 2 (halves
#   away from zero); bias in units of 0.25
#   x(h,w) = [ic0, ic1]: (0,0) [4,-4], (0,1) [8,2], (1,0) [12,6], (1,1) [16,-8]
#   taps in order (0,0),(0,1),(1,0),(1,1):
#   oc0 (ic0, w 1,1,1,1, bias 2):   4+8+12+16 = 40, +2 = 42; *0.5 = 21; /2 = 10.5 -> 11
#   oc1 (ic0, w 1,-1,1,-1, bias 0): 4-8+12-16 = -8;          *0.5 = -4; /2 = -2
#   oc2 (ic1, w 2,2,2,2, bias 0):   2*(-4+2+6-8) = -8;       *0.5 = -4; /2 = -2
#   oc3 (ic1, w 3,0,0,1, bias 4):   -12 + -8 = -20, +4 = -16; *0.5 = -8; /2 = -4
X = np.array([4, -4, 8, 2, 12, 6, 16, -8], dtype=np.int8).reshape(1, 2, 2, 2)
# filter [1, kh, kw, oc]: per tap (h,w) the 4 output channels' weights
W = np.array([[1, 1, 2, 3], [1, -1, 2, 0], [1, 1, 2, 0], [1, -1, 2, 1]], dtype=np.int8).reshape(1, 2, 2, 4)
MODEL = one_op_model(
    "DEPTHWISE_CONV_2D",
    [TensorSpec(X.shape, 0.5, 0), TensorSpec(W.shape, 0.5, 0, data=W),
     BiasSpec([2, 0, 0, 4], 0.25)],
    [TensorSpec((1, 1, 1, 4), 1.0, 0)],
    options("DepthwiseConv2D", padding="VALID", strideW=1, strideH=1, depthMultiplier=2,
            dilationWFactor=1, dilationHFactor=1))
MULTIPLIER_2 = GoldenCase("depthwise_multiplier2", MODEL, X, np.array([11, -2, -2, -4], dtype=np.int8).reshape(1, 1, 1, 4))

CASES = [MULTIPLIER_2]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_depthwise_conv_2d_golden(case):
    check_case(case)
