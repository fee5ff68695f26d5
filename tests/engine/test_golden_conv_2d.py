"""CONV_2D golden cases, computed by hand (see golden_harness.py for the three checks).

Requantization: out = requant(acc) + zp_out, acc = sum((x - zp_in) * w) + bias (bias in
units of s_in * s_w), M = s_in * s_w / s_out. TFLite writes M = m * 2^-n with m in [0.5, 1) and
rounds twice: first acc * m to the nearest integer (halves up), then / 2^n (halves away
from zero). The two roundings can differ from round(acc * M): case 1 shows where.
"""

from __future__ import annotations

import numpy as np
import pytest

from .golden_harness import BiasSpec, GoldenCase, check_case
from .kernel_harness import TensorSpec, one_op_model, options


def _conv(name, x, s_in, zp_in, w, s_w, bias, s_out, zp_out, expected, **opts) -> GoldenCase:
    out_shape = expected.shape
    model = one_op_model(
        "CONV_2D",
        [TensorSpec(x.shape, s_in, zp_in), TensorSpec(w.shape, s_w, 0, data=w),
         BiasSpec(bias, s_in * s_w)],
        [TensorSpec(out_shape, s_out, zp_out)],
        options("Conv2D", dilationWFactor=1, dilationHFactor=1, **opts))
    return GoldenCase(name, model, x, expected)


# Case 1: VALID, stride 1, a 2x2 filter with a negative tap, both zero points set.
#   s_in 0.5, zp_in -1; s_w 0.25; s_out 0.5, zp_out 2  ->  M = 0.25 = 0.5 * 2^-1; bias 8 (= 1.0)
#   x - zp_in = [[2,3,4],[5,6,7],[8,9,10]], w = [[1,-2],[3,4]]
#   (0,0): 2*1 + 3*-2 + 5*3 + 6*4 = 35, +8 = 43; *0.5 = 21.5 -> 22; /2 = 11;            +2 = 13
#   (0,1): 3*1 + 4*-2 + 6*3 + 7*4 = 41, +8 = 49; *0.5 = 24.5 -> 25; /2 = 12.5 -> 13;    +2 = 15
#   (1,0): 5*1 + 6*-2 + 8*3 + 9*4 = 53, +8 = 61; *0.5 = 30.5 -> 31; /2 = 15.5 -> 16;    +2 = 18
#   (1,1): 6*1 + 7*-2 + 9*3 + 10*4 = 59, +8 = 67; *0.5 = 33.5 -> 34; /2 = 17;           +2 = 19
#   (one rounding, round(49 * 0.25) = round(12.25), would give 14 and 17 in the middle: the double
#   rounding is TFLite's, and the engine must copy it bit for bit)
VALID = _conv("conv_valid_2x2", np.arange(1, 10, dtype=np.int8).reshape(1, 3, 3, 1), 0.5, -1,
              np.array([1, -2, 3, 4], dtype=np.int8).reshape(1, 2, 2, 1), 0.25, [8], 0.5, 2,
              np.array([13, 15, 18, 19], dtype=np.int8).reshape(1, 2, 2, 1),
              padding="VALID", strideW=1, strideH=1)

# Case 2: SAME, stride 2, 3x3 filters, 3 output channels, fused RELU, saturation.
#   x = [[1,2,3],[4,5,6],[7,8,9]], s_in 1, zp_in 0; s_w 1; s_out 2, zp_out -10 -> M = 0.5 (one
#   rounding step; every product below is a whole number)
#   SAME with stride 2 on 3x3: output 2x2, one row/column of padding each side (pads add 0),
#   so the windows centred on x(0,0), x(0,2), x(2,0), x(2,2) see 2x2 corners:
#   corner sums: 1+2+4+5 = 12, 2+3+5+6 = 16, 4+5+7+8 = 24, 5+6+8+9 = 28
#   ch0, all +1, bias 0:   12/2 = 6 -> -4;  16/2 = 8 -> -2;  24/2 = 12 -> 2;  28/2 = 14 -> 4
#   ch1, all +1, bias 250: (12+250)/2 = 131 -> 121; 266/2 = 133 -> 123; 274/2 = 137 -> 127;
#                          278/2 = 139 -> 129, saturates to 127
#   ch2, all -1, bias 0:   -6 -> -16, -8 -> -18, ... all below zp_out: RELU clamps to -10
SAME = _conv("conv_same_stride2_relu", np.arange(1, 10, dtype=np.int8).reshape(1, 3, 3, 1), 1.0, 0,
             np.stack([np.ones(9), np.ones(9), -np.ones(9)]).astype(np.int8).reshape(3, 3, 3, 1), 1.0,
             [0, 250, 0], 2.0, -10,
             np.array([[[-4, 121, -10], [-2, 123, -10]], [[2, 127, -10], [4, 127, -10]]],
                      dtype=np.int8).reshape(1, 2, 2, 3),
             padding="SAME", strideW=2, strideH=2, fusedActivationFunction="RELU")

CASES = [VALID, SAME]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_conv_2d_golden(case):
    check_case(case)
