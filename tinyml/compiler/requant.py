"""What TFLite-Micro computes at Prepare, computed at compile time instead.

Each helper mirrors one TFLite/TFLM routine in the same precision (tensor
scales are float32, the arithmetic on them double, unless TFLite itself uses
float), so the integers the engine's kernels get are the ones TFLM's kernels
get, and the outputs match byte for byte. Multiplier/shift pairs follow
TFLite's convention: real = multiplier * 2^(shift - 31), shift > 0 shifts left
(see firmware/engine/tm_common.h).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import math
from dataclasses import dataclass

import numpy as np

from ..errors import TinymlError

INT8_MIN = -128
INT8_MAX = 127

# ADD rescales both inputs to a common scale with 20 spare bits (TFLM add_common.cc, int8).
ADD_LEFT_SHIFT = 20
# Softmax's exp() input is Q5.26 (TFLM softmax_common.cc kScaledDiffIntegerBits).
SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5
SOFTMAX_OUTPUT_SCALE = 1.0 / 256.0
SOFTMAX_OUTPUT_ZERO_POINT = -128

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def _f32(value: float) -> float:
    """A tensor scale as TFLite holds it: float32, widened exactly to double."""
    return float(np.float32(value))


def _round_half_away(value: float) -> int:
    """TfLiteRound / std::round: halves go away from zero (Python's round() goes to even)."""
    magnitude = math.floor(abs(value) + 0.5)
    return int(magnitude) if value >= 0 else -int(magnitude)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = multiplier * 2^(shift - 31), multiplier in [2^30, 2^31).

    0 gives (0, 0); multipliers so small that every result would round to 0
    (shift < -31) give (0, 0) as TFLite does.
    """
    real = float(real)
    if not math.isfinite(real):
        raise TinymlError(f"quantized multiplier {real} is not finite (a scale is zero or invalid)")
    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)
    q_fixed = _round_half_away(fraction * float(1 << 31))
    if abs(q_fixed) > (1 << 31):
        raise TinymlError(f"quantized multiplier {real}: rounding overflow")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if q_fixed > (1 << 31) - 1:
        raise TinymlError(f"quantized multiplier {real} does not fit in int32")
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def quantize_multiplier_smaller_than_one(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplierSmallerThanOneExp: 0 < real < 1, shift <= 0."""
    if not 0.0 < real < 1.0:
        raise TinymlError(f"multiplier {real} must be in (0, 1) (scales out of range)")
    multiplier, shift = quantize_multiplier(real)
    if shift > 0:
        raise TinymlError(f"multiplier {real} gives a left shift {shift}")
    return multiplier, shift


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplierGreaterThanOne: real > 1, shift >= 0."""
    if not real > 1.0:
        raise TinymlError(f"multiplier {real} must be greater than 1 (scales out of range)")
    multiplier, shift = quantize_multiplier(real)
    if shift < 0:
        raise TinymlError(f"multiplier {real} gives a right shift {shift}")
    return multiplier, shift


def activation_range(fused: str, scale: float, zero_point: int) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized for an int8 output.

    The bound is zero_point + round(f / scale), the division in float32 as
    TFLite does it.
    """
    fused = (fused or "NONE").upper()
    if fused not in ACTIVATIONS:
        raise TinymlError(f"fused activation {fused} is not supported (only {', '.join(ACTIVATIONS)})")
    scale32 = np.float32(scale)
    if not (np.isfinite(scale32) and scale32 > 0):
        raise TinymlError(f"output scale {scale} must be positive")

    def quantize(real: float) -> int:
        with np.errstate(over="ignore"):
            q = np.float32(real) / scale32
        q = float(np.clip(q, -2.0**31, 2.0**31 - 1))  # TFLite would overflow here; clamping keeps the range
        return int(zero_point) + _round_half_away(q)

    if fused == "RELU":
        return max(INT8_MIN, quantize(0.0)), INT8_MAX
    if fused == "RELU6":
        return max(INT8_MIN, quantize(0.0)), min(INT8_MAX, quantize(6.0))
    if fused == "RELU_N1_TO_1":
        return max(INT8_MIN, quantize(-1.0)), min(INT8_MAX, quantize(1.0))
    return INT8_MIN, INT8_MAX


def requantize_multiplier(input_scale: float, output_scale: float) -> tuple[int, int]:
    """QUANTIZE int8 -> int8 and MEAN before folding the count: input_scale / output_scale."""
    return quantize_multiplier(_f32(input_scale) / _f32(output_scale))


def per_channel_multipliers(input_scale: float, filter_scales: np.ndarray | list[float],
                            output_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """TFLite PopulateConvolutionQuantizationParams: per output channel
    input_scale * filter_scale[c] / output_scale, all in double. Returns int32 arrays."""
    scales = np.asarray(filter_scales, dtype=np.float32).reshape(-1)
    multipliers = np.zeros(scales.size, dtype=np.int32)
    shifts = np.zeros(scales.size, dtype=np.int32)
    for channel, filter_scale in enumerate(scales):
        real = _f32(input_scale) * float(filter_scale) / _f32(output_scale)
        multipliers[channel], shifts[channel] = quantize_multiplier(real)
    return multipliers, shifts


@dataclass(frozen=True)
class AddQuant:
    """The int8 ADD parameters (tm_add_params_t's arithmetic fields)."""

    input1_offset: int
    input2_offset: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    output_offset: int
    left_shift: int
    activation_min: int
    activation_max: int


def add_quant(input1_scale: float, input1_zero_point: int, input2_scale: float, input2_zero_point: int,
              output_scale: float, output_zero_point: int, fused: str = "NONE") -> AddQuant:
    """TFLM add_common.cc CalculateOpDataAdd for int8."""
    s1, s2, so = _f32(input1_scale), _f32(input2_scale), _f32(output_scale)
    if min(s1, s2, so) <= 0:
        raise TinymlError("ADD: scales must be positive")
    twice_max_input_scale = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier_smaller_than_one(s1 / twice_max_input_scale)
    m2, sh2 = quantize_multiplier_smaller_than_one(s2 / twice_max_input_scale)
    real_output = twice_max_input_scale / (float(1 << ADD_LEFT_SHIFT) * so)
    mo, sho = quantize_multiplier_smaller_than_one(real_output)
    lo, hi = activation_range(fused, so, output_zero_point)
    return AddQuant(-int(input1_zero_point), -int(input2_zero_point), m1, sh1, m2, sh2, mo, sho,
                    int(output_zero_point), ADD_LEFT_SHIFT, lo, hi)


def multiply_by_quantized_multiplier(x, multiplier: int, shift: int) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier, double rounding (tm_common.h), on int32 values:
    RDBP(SRDHM(x * 2^max(shift, 0), multiplier), max(-shift, 0)), as int64."""
    x = np.asarray(x, dtype=np.int64)
    left, right = max(int(shift), 0), max(-int(shift), 0)
    x = ((x << left) + (1 << 31)) % (1 << 32) - (1 << 31)          # int32 wrap, as tm_shift_left
    m = int(multiplier)
    both_min = (x == -(1 << 31)) & (m == -(1 << 31))                   # SRDHM's one saturating case
    high = np.where(both_min, (1 << 31) - 1, (x * m + (1 << 30)) >> 31)
    mask = (1 << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + (remainder > threshold)


def add_tables(q: AddQuant) -> tuple[np.ndarray, np.ndarray]:
    """tm_add's per-input tables: for a = -128..127,
    MBQM((a + input_offset) * 2^left_shift, input_multiplier, input_shift) (256 int32 each)."""
    a = np.arange(-128, 128, dtype=np.int64)
    tables = []
    for offset, multiplier, shift in ((q.input1_offset, q.input1_multiplier, q.input1_shift),
                                      (q.input2_offset, q.input2_multiplier, q.input2_shift)):
        scaled = (a + offset) << q.left_shift                              # wrapped to int32 below
        tables.append(multiply_by_quantized_multiplier(scaled, multiplier, shift).astype(np.int32))
    return tables[0], tables[1]


@dataclass(frozen=True)
class SoftmaxQuant:
    input_multiplier: int
    input_left_shift: int
    diff_min: int


def softmax_quant(beta: float, input_scale: float) -> SoftmaxQuant:
    """TFLM softmax_common.cc CalculateSoftmaxParams for int8 input:
    PreprocessSoftmaxScaling (double-rounding build) and CalculateInputRadius."""
    bits = SOFTMAX_SCALED_DIFF_INTEGER_BITS
    max_real_multiplier = float((1 << 31) - 1)
    real = min(float(np.float32(beta)) * _f32(input_scale) * float(1 << (31 - bits)), max_real_multiplier)
    multiplier, left_shift = quantize_multiplier_greater_than_one(real)
    # CalculateInputRadius(input_integer_bits=5, left_shift, total_signed_bits=31)
    max_input_rescaled = 1.0 * ((1 << bits) - 1) * float(1 << (31 - bits)) / float(1 << left_shift)
    diff_min = -int(math.floor(max_input_rescaled))
    return SoftmaxQuant(multiplier, left_shift, diff_min)


def mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """TFLM reduce MEAN (int8): QuantizeMultiplier(input_scale / output_scale), then
    QuantizedMeanOrSum folds 1/count into it with integer arithmetic."""
    if count <= 0:
        raise TinymlError("MEAN: nothing to reduce (an axis has size 0)")
    multiplier, shift = requantize_multiplier(input_scale, output_scale)
    # shift = 63 - CountLeadingZeros(count), clamped to <= 32 and >= -31 after the fold;
    # 2^fold <= count keeps the folded multiplier below 2^31, and it is >= 0 so // truncates.
    fold = min(int(count).bit_length() - 1, 32, 31 + shift)
    return (multiplier << fold) // int(count), shift - fold


def padding_2d(in_size: int, filter_size: int, stride: int, padding: str, dilation: int = 1) -> tuple[int, int]:
    """TFLite ComputeOutSize and ComputePadding: (output size, padding before)."""
    padding = padding.upper()
    if stride <= 0 or filter_size <= 0 or dilation <= 0:
        raise TinymlError(f"stride {stride}, filter {filter_size} and dilation {dilation} must be positive")
    effective_filter = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        out_size = (in_size + stride - 1) // stride
    elif padding == "VALID":
        out_size = (in_size + stride - effective_filter) // stride
    else:
        raise TinymlError(f"padding {padding} is not supported (SAME or VALID)")
    if out_size <= 0:
        raise TinymlError(f"window {effective_filter} is larger than the input {in_size}")
    total = (out_size - 1) * stride + effective_filter - in_size
    return out_size, max(total, 0) // 2


def broadcast_4d(shape1: tuple[int, ...] | list[int], shape2: tuple[int, ...] | list[int]
                 ) -> tuple[list[int], list[int], list[int]]:
    """Output dims and per-input element strides (0 where an input broadcasts) for a
    binary op, shapes right-aligned and padded to 4-D (numpy/TFLite broadcasting).
    Same shapes collapse to one flat row: ([1, 1, 1, n], [0, 0, 0, 1], [0, 0, 0, 1])."""
    a, b = [int(d) for d in shape1], [int(d) for d in shape2]
    if len(a) > 4 or len(b) > 4:
        raise TinymlError(f"broadcast of shapes {a} and {b}: rank above 4 is not supported")
    if a == b:
        n = int(np.prod(a, dtype=np.int64))
        return [1, 1, 1, n], [0, 0, 0, 1], [0, 0, 0, 1]
    a, b = [1] * (4 - len(a)) + a, [1] * (4 - len(b)) + b
    dims = []
    for da, db in zip(a, b):
        if da != db and 1 not in (da, db):
            raise TinymlError(f"shapes {list(shape1)} and {list(shape2)} do not broadcast")
        dims.append(max(da, db))

    def strides(shape: list[int]) -> list[int]:
        result, step = [0] * 4, 1
        for axis in range(3, -1, -1):
            result[axis] = step if shape[axis] != 1 else 0
            step *= shape[axis]
        return result

    return dims, strides(a), strides(b)


def reduce_axes_4d(shape: tuple[int, ...] | list[int], axes: list[int] | np.ndarray) -> tuple[list[int], list[int], int]:
    """MEAN over `axes` of a rank <= 4 tensor as the engine sees it: (dims padded to 4-D with
    leading 1s, reduce flags per dim, number of elements averaged). Negative axes count from the end."""
    rank = len(shape)
    if rank > 4:
        raise TinymlError(f"MEAN of a rank-{rank} tensor: at most rank 4 is supported")
    offset = 4 - rank
    dims = [1] * offset + [int(d) for d in shape]
    reduce = [0, 0, 0, 0]
    for axis in np.asarray(axes, dtype=np.int64).reshape(-1):
        axis = int(axis)
        if not -rank <= axis < rank:
            raise TinymlError(f"MEAN axis {axis} is out of range for a rank-{rank} tensor")
        reduce[offset + (axis % rank)] = 1
    count = int(np.prod([d for d, r in zip(dims, reduce) if r], dtype=np.int64))
    return dims, reduce, count


def pad_4d(shape: tuple[int, ...] | list[int], paddings: np.ndarray | list[list[int]]
           ) -> tuple[list[int], list[int], list[int]]:
    """PAD's (input dims, pad before, pad after), each padded to 4-D with leading 1s / 0s."""
    rank = len(shape)
    pads = np.asarray(paddings, dtype=np.int64).reshape(-1, 2)
    if rank > 4 or pads.shape[0] != rank:
        raise TinymlError(f"PAD of a rank-{rank} tensor with paddings {pads.tolist()}: needs rank <= 4 and one pair per dim")
    if (pads < 0).any():
        raise TinymlError(f"PAD with negative paddings {pads.tolist()}")
    lead = 4 - rank
    return ([1] * lead + [int(d) for d in shape], [0] * lead + [int(p) for p in pads[:, 0]],
            [0] * lead + [int(p) for p in pads[:, 1]])


def concatenation_layout(shapes: list[tuple[int, ...]] | list[list[int]], axis: int) -> tuple[int, list[int]]:
    """CONCATENATION along `axis` as (outer, inner per input): the output is, for each of
    `outer` steps, inner[0] bytes of input 0, inner[1] of input 1, ..."""
    rank = len(shapes[0])
    if not -rank <= axis < rank:
        raise TinymlError(f"CONCATENATION axis {axis} is out of range for rank {rank}")
    axis %= rank
    for shape in shapes:
        if len(shape) != rank or any(int(a) != int(b) for i, (a, b) in enumerate(zip(shape, shapes[0])) if i != axis):
            raise TinymlError(f"CONCATENATION of shapes {[list(s) for s in shapes]} along axis {axis}: other dims differ")
    outer = int(np.prod([int(d) for d in shapes[0][:axis]], dtype=np.int64))
    inner = [int(np.prod([int(d) for d in shape[axis:]], dtype=np.int64)) for shape in shapes]
    return outer, inner


# Right shifts the folded requantization covers (firmware/engine/tm_common.h tm_requant_t).
REQUANT_MIN_SHIFT = 2
REQUANT_MAX_SHIFT = 23
# Right shifts the conv records with the zero point added after the shift cover (ops_conv.conv_packed_records).
REQUANT_POST_MAX_SHIFT = 31


_SIZING_ALL_FAST_PATHS = False


@contextmanager
def sizing_all_fast_paths() -> Iterator[None]:
    """For sizing only (never for code): every requantization takes its one-multiply records, as
    if each channel's multiplier and shift allowed them. Whether they do depends on the weight
    and activation scales, so an untrained model may lack records (and with them the folded
    bias, the widened DSP layouts and their scratch) that the trained one gets; lowered in this
    mode, a model has every such array, the most constants its architecture can need."""
    global _SIZING_ALL_FAST_PATHS
    previous, _SIZING_ALL_FAST_PATHS = _SIZING_ALL_FAST_PATHS, True
    try:
        yield
    finally:
        _SIZING_ALL_FAST_PATHS = previous


def sizing_all_fast_paths_active() -> bool:
    return _SIZING_ALL_FAST_PATHS


def requant_records(multipliers: np.ndarray, shifts: np.ndarray, output_zero_point: int,
                    any_multiplier: bool = False) -> np.ndarray | None:
    """Per channel (multiplier, round_hi, shift - 1) of tm_requant_t, or None when a channel's
    pair is outside what the one-multiply form covers (then the kernels run TFLite's MBQM).

    With e = -shift in [2, 23] and a multiplier 0 or in [2^30, 2^31) (any_multiplier: any in
    [0, 2^31), as MEAN's multiplier with 1/count folded in; the DSP kernels' packed records
    need the normalised ones): round_hi = 2^(e-2) + output_zero_point * 2^(e-1) (see tm_common.h
    for the derivation)."""
    m = np.asarray(multipliers, dtype=np.int64).reshape(-1)
    if m.size != np.asarray(shifts).size or m.size == 0:
        return None
    if not _SIZING_ALL_FAST_PATHS and requant_unfit_reason(multipliers, shifts, any_multiplier) is not None:
        return None
    if _SIZING_ALL_FAST_PATHS:   # placeholder values of the right shape (see sizing_all_fast_paths)
        m = np.full_like(m, 1 << 30)
        e = np.clip(-np.asarray(shifts, dtype=np.int64).reshape(-1), REQUANT_MIN_SHIFT, REQUANT_MAX_SHIFT)
    else:
        e = _record_shifts(m, shifts)
    round_hi = (np.int64(1) << (e - 2)) + int(output_zero_point) * (np.int64(1) << (e - 1))
    return np.stack([m, round_hi, e - 1], axis=1).astype(np.int32)


def _record_shifts(m: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Right shifts e = -shift per channel, REQUANT_MIN_SHIFT where the multiplier is 0: such a
    channel's output is the zero point whatever the shift (TFLite gives (0, 0) for multipliers
    below 2^-31), and the records need e >= 2."""
    e = -np.asarray(shifts, dtype=np.int64).reshape(-1)
    return np.where(m == 0, REQUANT_MIN_SHIFT, e)


def requant_unfit_reason(multipliers: np.ndarray, shifts: np.ndarray, any_multiplier: bool = False,
                         max_shift: int = REQUANT_MAX_SHIFT) -> str | None:
    """Why requant_records (max_shift 23: the zero point folded into the record) or the conv
    records with the zero point added after the shift (max_shift 31) cannot hold these
    multiplier/shift pairs, or None when they can."""
    m = np.asarray(multipliers, dtype=np.int64).reshape(-1)
    if m.size != np.asarray(shifts).size or m.size == 0:
        return "no multipliers"
    e = _record_shifts(m, shifts)
    low = 0 if any_multiplier else 1 << 30
    bad_m = ~((m == 0) | ((m >= low) & (m < 1 << 31)))
    if bad_m.any():
        return f"{int(bad_m.sum())} channel(s) with a multiplier outside [2^30, 2^31)"
    if (e < REQUANT_MIN_SHIFT).any():
        return (f"{int((e < REQUANT_MIN_SHIFT).sum())} channel(s) with a right shift below {REQUANT_MIN_SHIFT} "
                f"(scale ratio >= 0.25; min {int(e.min())})")
    if (e > max_shift).any():
        return f"{int((e > max_shift).sum())} channel(s) with a right shift above {max_shift} (max {int(e.max())})"
    return None
