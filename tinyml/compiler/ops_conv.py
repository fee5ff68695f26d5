"""Lowering of the convolution family: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED.

The precompute mirrors TFLM's Prepare: per-channel multipliers and shifts from
double(input_scale) * double(filter_scale) / double(output_scale) for the
convolutions, float(input_scale * filter_scale) / output_scale for a per-tensor
fully connected layer, activation ranges, and SAME/VALID padding offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..tflite_graph import Operator
from .layers import Arg, ConstArray, Layer, LoweringContext, c_name, lowering
from .requant import (REQUANT_MAX_SHIFT, REQUANT_MIN_SHIFT, REQUANT_POST_MAX_SHIFT, activation_range,
                    per_channel_multipliers, quantize_multiplier, requant_records, requant_unfit_reason,
                    sizing_all_fast_paths_active)


def _padding(op: Operator, padding: str, size: int, filter_size: int, stride: int, dilation: int,
             out_size: int, context: LoweringContext, axis: str) -> int:
    """TFLM ComputePaddingHeightWidth for one axis; checks the output size the model states."""
    effective = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        expected = (size + stride - 1) // stride
    elif padding == "VALID":
        expected = (size + stride - effective) // stride
    else:
        raise context.fail(op, f"option padding {padding}")
    if expected != out_size:
        raise context.fail(op, f"option output {axis} {out_size} (padding {padding} gives {expected})")
    total = (out_size - 1) * stride + effective - size
    return max(total // 2, 0)


def _per_channel_multipliers(input_scale: float, filter_scales: np.ndarray, output_scale: float,
                             channels: int) -> tuple[np.ndarray, np.ndarray]:
    # A per-tensor filter scale applies to every output channel, as in TFLM.
    scales = np.broadcast_to(np.asarray(filter_scales, dtype=np.float32).reshape(-1), (channels,))
    return per_channel_multipliers(input_scale, scales, output_scale)


def _filter_scales(context: LoweringContext, op: Operator, filter_tensor, channels: int, axis: int) -> np.ndarray:
    scales = filter_tensor.scale
    if scales.size not in (1, channels):
        raise context.fail(op, f"option filter quantization with {scales.size} scales for {channels} channels")
    if scales.size > 1 and filter_tensor.quantized_dimension != axis:
        raise context.fail(op, f"option filter quantized_dimension {filter_tensor.quantized_dimension}")
    if np.any(filter_tensor.zero_point != 0):
        raise context.fail(op, "option filter zero point not 0")
    return scales


def _bias(context: LoweringContext, op: Operator, channels: int) -> np.ndarray | None:
    bias = context.optional(op, 2)
    if bias is None:
        return None
    context.require_dtype(op, bias, "bias", np.int32)
    data = context.require_constant(op, bias, "bias").reshape(-1)
    if data.size != channels:
        raise context.fail(op, f"option bias of {data.size} values for {channels} channels")
    return data.astype(np.int32)


def _folded_bias(bias: np.ndarray | None, filter_rows: np.ndarray, input_offset: int) -> np.ndarray:
    """bias + input_offset * sum(filter row): lets the DSP path multiply raw int8 x int8.

    Exact because the im2col buffer pads with the input zero point, where
    (x + input_offset) = 0, so every tap may be summed.
    """
    sums = filter_rows.reshape(filter_rows.shape[0], -1).astype(np.int64).sum(axis=1)
    base = np.zeros(filter_rows.shape[0], np.int64) if bias is None else bias.astype(np.int64)
    folded = base + input_offset * sums
    return folded.astype(np.int32)  # wraps exactly as the int32 accumulator does


def _add_requant(consts: list[ConstArray], fields: dict, index: int, multipliers: np.ndarray, shifts: np.ndarray,
                 output_zero_point: int) -> bool:
    """The folded requantization records (tm_requant_t) when every channel allows them."""
    records = requant_records(multipliers, shifts, output_zero_point)
    fields["requant"] = "NULL"
    if records is None:
        return False
    consts.append(ConstArray(c_name(index, "requant"), "tm_requant_t", records))
    fields["requant"] = c_name(index, "requant")
    return True


def _io(context: LoweringContext, op: Operator):
    inp, out = context.int8_io(op)
    in_scale, in_zp = context.quant1(op, inp, "input")
    out_scale, out_zp = context.quant1(op, out, "output")
    return inp, out, in_scale, in_zp, out_scale, out_zp


def _window(context: LoweringContext, op: Operator, in_h: int, in_w: int, k_h: int, k_w: int,
            out) -> tuple[int, int, int, int, int, int]:
    """(stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w) of a sliding-window op, checked."""
    opts = op.options
    stride_h, stride_w = int(opts.get("stride_h", 1)), int(opts.get("stride_w", 1))
    dil_h, dil_w = int(opts.get("dilation_h_factor", 1)), int(opts.get("dilation_w_factor", 1))
    if min(stride_h, stride_w, dil_h, dil_w) < 1:
        raise context.fail(op, f"option stride {stride_h}x{stride_w} dilation {dil_h}x{dil_w}")
    padding = opts.get("padding", "SAME")
    pad_h = _padding(op, padding, in_h, k_h, stride_h, dil_h, out.shape[1], context, "height")
    pad_w = _padding(op, padding, in_w, k_w, stride_w, dil_w, out.shape[2], context, "width")
    return stride_h, stride_w, dil_h, dil_w, pad_h, pad_w


# Layer.extra key: the params arrays the chosen algorithm reads, when it reads only its DSP layout
# (tm_conv_2d_widened.c: filter16; tm_fully_connected_row16.c: filter16; tm_depthwise_conv_2d_3x3.c:
# packed), else None (it reads the arrays it is given). The lowering still makes every array (the
# palette encoder rebuilds the DSP layouts from the int8 filter); compiler/unread.py then drops the rest.
KERNEL_READS = "kernel_reads"


def _filter_consts(index: int, weights: np.ndarray, multipliers: np.ndarray, shifts: np.ndarray) -> list[ConstArray]:
    """The int8 filter and its per-channel (or per-tensor) multipliers and shifts, in flash."""
    return [
        ConstArray(c_name(index, "filter"), "int8_t", weights.reshape(-1)),
        ConstArray(c_name(index, "multiplier"), "int32_t", multipliers),
        ConstArray(c_name(index, "shift"), "int32_t", shifts),
    ]


@lowering("CONV_2D")
def lower_conv_2d(context: LoweringContext, op: Operator, index: int) -> Layer:
    inp, out, in_scale, in_zp, out_scale, out_zp = _io(context, op)
    filt = context.tensor(op, 1)
    context.require_dtype(op, filt, "filter", np.int8)
    weights = context.require_constant(op, filt, "filter")
    if len(inp.shape) != 4 or len(filt.shape) != 4 or len(out.shape) != 4:
        raise context.fail(op, "option rank (needs 4-D input, filter and output)")
    batches, in_h, in_w, in_c = inp.shape
    out_c, k_h, k_w, filter_c = filt.shape
    if out.shape[0] != batches or out.shape[3] != out_c:
        raise context.fail(op, f"option output shape {list(out.shape)}")
    if filter_c <= 0 or in_c % filter_c != 0 or out_c % (in_c // filter_c) != 0:
        raise context.fail(op, f"option groups (input depth {in_c}, filter depth {filter_c}, output depth {out_c})")
    stride_h, stride_w, dil_h, dil_w, pad_h, pad_w = _window(context, op, in_h, in_w, k_h, k_w, out)
    act_min, act_max = activation_range(context.activation(op), out_scale, out_zp)
    scales = _filter_scales(context, op, filt, out_c, 0)
    multipliers, shifts = _per_channel_multipliers(in_scale, scales, out_scale, out_c)
    bias = _bias(context, op, out_c)
    groups = in_c // filter_c
    if in_c == 1 and ((context.dsp and context.widen) or (context.folded and not context.dsp)):
        # One input channel: the same sums and per-channel requantization as a depthwise
        # convolution with depth multiplier output_c, whose 3x3 path keeps the taps in registers
        # (on cores without SIMD: in locals, over the int32 plane).
        layer = _depthwise_layer(context, op, index, inp, out,
                                 np.ascontiguousarray(weights[..., 0].transpose(1, 2, 0)[None]), bias, multipliers,
                                 shifts, in_zp, out_zp, (stride_h, stride_w, dil_h, dil_w, pad_h, pad_w),
                                 (act_min, act_max))
        if layer.scratch_bytes:
            return layer

    consts = _filter_consts(index, weights, multipliers, shifts)
    fields: dict = dict(
        batches=batches, input_h=in_h, input_w=in_w, input_c=in_c,
        output_h=out.shape[1], output_w=out.shape[2], output_c=out_c,
        filter_h=k_h, filter_w=k_w, filter_c=filter_c,
        stride_h=stride_h, stride_w=stride_w, dilation_h=dil_h, dilation_w=dil_w,
        pad_h=pad_h, pad_w=pad_w, input_offset=-in_zp, output_offset=out_zp,
        act_min=act_min, act_max=act_max,
        filter=c_name(index, "filter"), bias="NULL",
        multiplier=c_name(index, "multiplier"), shift=c_name(index, "shift"), bias_folded="NULL",
    )
    if bias is not None:
        consts.append(ConstArray(c_name(index, "bias"), "int32_t", bias))
        fields["bias"] = c_name(index, "bias")
    scratch = 0
    requant = _add_requant(consts, fields, index, multipliers, shifts, out_zp)
    path, note = "generic", None
    if context.folded and not context.dsp and groups == 1 and requant:
        consts.append(ConstArray(c_name(index, "bias_folded"), "int32_t", _folded_bias(bias, weights, -in_zp)))
        fields["bias_folded"] = c_name(index, "bias_folded")
        scratch = conv_dsp_scratch_bytes(k_h, k_w, filter_c, pad_h, pad_w)
        path = "im2col scalar" if scratch else "1x1 scalar"
    elif context.folded and not context.dsp:
        note = (f"grouped convolution ({in_c // filter_c} groups)" if groups != 1
                else f"folded requantization: {requant_unfit_reason(multipliers, shifts)}")
    if context.dsp and groups == 1:
        folded = _folded_bias(bias, weights, -in_zp)
        k16 = conv_k16_scratch_bytes(k_h, k_w, filter_c, pad_h, pad_w, stride_w, out.shape[2], dil_h, dil_w)
        packed = None
        if not k16:
            note = f"widened patch: patch {k_h}x{k_w}x{filter_c} or dilation {dil_h}x{dil_w} outside its bounds"
        elif context.widen:
            # |acc| <= |bias + input_offset * sum(w)| + 128 * sum|w| (inputs in [-128, 127]), in int64.
            rows = weights.reshape(out_c, -1).astype(np.int64)
            base = np.zeros(out_c, np.int64) if bias is None else bias.astype(np.int64)
            bound = np.abs(base - in_zp * rows.sum(axis=1)) + 128 * np.abs(rows).sum(axis=1)
            packed = conv_packed_records(multipliers, shifts, out_zp, bound)
            note = None if packed.records is not None else f"widened patch: {packed.reason}"
        if packed is not None and packed.records is not None:
            # Channels whose multiplier is 0 always give the zero point (TFLite's (0, 0) pair):
            # zero weights and bias make their accumulator 0, which any record maps to it.
            live = (np.asarray(multipliers) != 0)
            filter16 = conv_filter16(weights * live[:, None, None, None], folded * live, packed.records)
            consts.append(ConstArray(c_name(index, "filter16"), "int32_t", filter16))
            fields["filter16"] = c_name(index, "filter16")
            fields["filter16_post"] = int(packed.post)
            scratch = k16
            path = "widened patch" + (" (zero point after the shift)" if packed.post else "")
        elif requant:
            consts.append(ConstArray(c_name(index, "bias_folded"), "int32_t", folded))
            fields["bias_folded"] = c_name(index, "bias_folded")
            scratch = conv_dsp_scratch_bytes(k_h, k_w, filter_c, pad_h, pad_w)
            path = "im2col DSP" if scratch else "1x1 DSP"
        else:
            path = "generic"
            note = f"folded requantization: {requant_unfit_reason(multipliers, shifts)}" + (f"; {note}" if note else "")
    elif context.dsp:
        note = f"grouped convolution ({in_c // filter_c} groups)"
    macs = batches * out.shape[1] * out.shape[2] * out_c * k_h * k_w * filter_c
    return Layer(
        op.index, op.opcode, "tm_conv_2d_s8", "tm_conv_2d_params_t", "tm_conv_2d.h", "tm_conv_2d.c",
        fields, consts, [inp.index], [out.index],
        [Arg("tensor", inp.index, const=True), Arg("tensor", out.index), Arg("scratch" if scratch else "null")],
        scratch_bytes=scratch, macs=macs, params=int(weights.size + (0 if bias is None else bias.size)),
        extra={"path": path, "fallback": note if path == "generic" else None,
               KERNEL_READS: ("filter16",) if path.startswith("widened patch") else None},
    )


# The widened-patch bounds; the C header owns them (TM_CONV_2D_K16_MAX, TM_CONV_2D_K16_MAX_ROWS in
# tm_conv_2d.h) and tests/engine/test_interface.py fails when these differ.
CONV_K16_MAX = 1024
CONV_K16_MAX_ROWS = 16


def _round4(k: int) -> int:
    return (k + 3) // 4 * 4


def conv_k16_scratch_bytes(k_h: int, k_w: int, filter_c: int, pad_h: int, pad_w: int, stride_w: int, out_w: int,
                           dil_h: int, dil_w: int) -> int:
    """Scratch of the widened-patch DSP conv path (filter16), 0 when it does not apply: two int16
    patches of kp values and, unless a 1x1 filter reads the input in place, a ring of k_h
    zero-point-padded input rows. The C owns the figure (tm_conv_2d_widened_get_buffer_size in
    tm_conv_2d.h); tests/engine/test_interface.py holds this function to it over a grid of shapes.
    """
    kp = k_h * _round4(k_w * filter_c)
    if kp > CONV_K16_MAX or k_h > CONV_K16_MAX_ROWS or (dil_h, dil_w) != (1, 1):
        return 0
    direct = k_h == 1 and k_w == 1 and pad_h == 0 and pad_w == 0 and filter_c % 4 == 0
    row_bytes = ((out_w - 1) * stride_w + k_w) * filter_c // 4 * 4 + 8
    return 4 * kp + (0 if direct else k_h * row_bytes)


def packed_records(records: np.ndarray | None, acc_bound: np.ndarray | int) -> np.ndarray | None:
    """(multiplier2, round, e) per channel for tm_requant_rec (tm_dsp.h) from tm_requant_t records
    (M, round_hi, e - 1): multiplier2 = 2M - 2^32 as int32, round = 2 round_hi. None if some M is 0
    or an accumulator bound |acc| <= acc_bound (per channel) could take SRDHM(acc, M) + round out of
    int32 (|SRDHM(acc, M)| <= |acc|)."""
    if records is None:
        return None
    rec = np.asarray(records, np.int64).reshape(-1, 3)
    if sizing_all_fast_paths_active():
        rec = np.stack([np.full(len(rec), 1 << 30), np.zeros(len(rec), np.int64), rec[:, 2]], axis=1)
    elif np.any(rec[:, 0] == 0) or np.any(np.asarray(acc_bound, np.int64) + np.abs(2 * rec[:, 1]) >= (1 << 31) - 2):
        return None
    multiplier2 = ((2 * rec[:, 0]) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    return np.stack([multiplier2, (2 * rec[:, 1]).astype(np.int32), (rec[:, 2] + 1).astype(np.int32)], axis=1)


@dataclass(frozen=True)
class PackedRequant:
    """Per channel (multiplier2, round, e | post << 8) of tm_requant_rec (tm_dsp.h), or None and why not.

    post: the records add the output zero point after the shift (a channel's shift is above
    REQUANT_MAX_SHIFT, or the folded round would take the sum out of int32); else round holds it."""

    records: np.ndarray | None
    post: bool = False
    reason: str | None = None


def conv_packed_records(multipliers: np.ndarray, shifts: np.ndarray, output_zero_point: int,
                        acc_bound: np.ndarray | int) -> PackedRequant:
    """The widened-patch records for every right shift TFLite produces (1..31) and multiplier
    (0 or in [2^30, 2^31)), given |acc| <= acc_bound per channel. A channel whose multiplier is
    0 gets (2^30, e = 2) and must see an accumulator of 0 (the caller zeroes its weights and bias).
    Folded: round = 2^(e-1) + zp * 2^e (e <= 23); post: round = 2^(e-1), zp added after the shift.
    Both need |x| + |round| < 2^31 - 2 for x = SRDHM(acc, M), |x| <= (acc_bound * M + 2^30) / 2^31:
    x + round + (acc >> 31) inside int32 (the sums before it wrap harmlessly)."""
    m = np.asarray(multipliers, np.int64).reshape(-1)
    if sizing_all_fast_paths_active():   # sizing only: the records' shape, as if every channel fit
        return PackedRequant(np.zeros((m.size, 3), np.int32))
    shifts = np.asarray(shifts, np.int64).reshape(-1)
    dead = m == 0
    e = np.where(dead, REQUANT_MIN_SHIFT, -shifts)
    if ((e < 1) & ~dead).any():
        return PackedRequant(None, reason=f"{int(((e < 1) & ~dead).sum())} channel(s) without a right shift "
                                          f"(scale ratio >= 0.5)")
    reason = requant_unfit_reason(np.where(dead, 1 << 30, m), -np.maximum(e, REQUANT_MIN_SHIFT),
                                  max_shift=REQUANT_POST_MAX_SHIFT)
    if reason is not None:
        return PackedRequant(None, reason=reason)
    m = np.where(dead, 1 << 30, m)
    bound = np.where(dead, 0, np.broadcast_to(np.asarray(acc_bound, np.int64), m.shape))
    if (bound >= 1 << 31).any():
        return PackedRequant(None, reason="an accumulator bound at or above 2^31")
    x_bound = (bound * m + (1 << 30)) >> 31
    limit = (1 << 31) - 2
    half = np.int64(1) << (e - 1)
    folded_round = half + int(output_zero_point) * (np.int64(1) << e)
    post = not (bool((e <= REQUANT_MAX_SHIFT).all()) and bool((x_bound + np.abs(folded_round) < limit).all()))
    round_ = half if post else folded_round
    if (x_bound + round_ >= limit).any():
        return PackedRequant(None, reason="an accumulator bound too close to 2^31")
    multiplier2 = ((2 * m) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    word3 = e + (int(output_zero_point) * 256 if post else 0)
    return PackedRequant(np.stack([multiplier2, round_.astype(np.int32), word3.astype(np.int32)], axis=1), post)


def conv_filter16(weights: np.ndarray, bias_folded: np.ndarray, records: np.ndarray) -> np.ndarray:
    """filter16 of the widened-patch DSP path (tm_conv_2d.h), per output channel: the kp int16
    weights (each filter row of k_w * filter_c taps padded with zeros to a multiple of 4, each
    group of four taps in the order (0, 2, 1, 3) of SXTB16 / SXTB16 ror 8), then bias_folded,
    and the packed requant record (multiplier2, round, e; tm_dsp.h tm_requant_rec): as int32
    words (two int16 weights per word, the first in the low half), 4-byte aligned."""
    out_c, k_h = weights.shape[0], weights.shape[1]
    rows = weights.reshape(out_c, k_h, -1).astype(np.int16)
    width = rows.shape[2]
    padded = np.zeros((out_c, k_h, _round4(width)), np.int16)
    padded[:, :, :width] = rows
    grouped = padded.reshape(out_c, k_h, -1, 4)[..., [0, 2, 1, 3]].reshape(out_c, -1)
    tail = np.concatenate([np.asarray(bias_folded, np.int32).reshape(out_c, 1),
                           np.asarray(records, np.int32).reshape(out_c, 3)], axis=1)
    words = np.ascontiguousarray(grouped.astype("<i2")).view("<i4").reshape(out_c, -1)
    return np.concatenate([words, tail.astype("<i4")], axis=1).reshape(-1).astype(np.int32)


def conv_dsp_scratch_bytes(k_h: int, k_w: int, filter_c: int, pad_h: int, pad_w: int) -> int:
    """im2col scratch of the DSP conv path: two patches of k_h*k_w*filter_c int8.

    A 1x1 filter without padding reads its patch straight from the input. The C owns the figure
    (tm_conv_2d_im2col_get_buffer_size in tm_conv_2d.h; held to it by tests/engine/test_interface.py).
    """
    if k_h == 1 and k_w == 1 and pad_h == 0 and pad_w == 0:
        return 0
    return (2 * k_h * k_w * filter_c + 3) // 4 * 4


def depthwise_dsp_scratch_bytes(k_h: int, k_w: int, dil_h: int, dil_w: int, in_c: int, out_w: int,
                                stride_w: int) -> int:
    """The channel-planar int16 ring of the DSP 3x3 depthwise path (the C owns the figure:
    tm_depthwise_conv_2d_3x3_get_buffer_size in tm_depthwise_conv_2d.h, held to it by
    tests/engine/test_interface.py)."""
    if (k_h, k_w, dil_h, dil_w) == (3, 3, 1, 1) and stride_w in (1, 2):
        cols = (out_w - 1) * stride_w + 3
        return 2 * ((3 * cols + 2) & ~1) * in_c
    return 0


DW3_SCALAR_MAX_SCRATCH = 4096  # TM_DW3_SCALAR_MAX_SCRATCH in tm_depthwise_conv_2d.h


def depthwise_scalar3_scratch_bytes(k_h: int, k_w: int, dil_h: int, dil_w: int, out_h: int, out_w: int,
                                    stride_h: int, stride_w: int) -> int:
    """The int32 plane of tm_depthwise_conv_2d_3x3_scalar.c (one channel of every window), 0 when the
    path does not apply: tm_depthwise_conv_2d_3x3_scalar_get_buffer_size (tests/engine/test_interface.py)."""
    if (k_h, k_w, dil_h, dil_w) != (3, 3, 1, 1):
        return 0
    plane = 4 * ((out_h - 1) * stride_h + 3) * ((out_w - 1) * stride_w + 3)
    return plane if plane <= DW3_SCALAR_MAX_SCRATCH else 0


def depthwise_packed(weights: np.ndarray, bias_folded: np.ndarray, records: np.ndarray) -> np.ndarray:
    """packed of the DSP 3x3 depthwise path (tm_depthwise_conv_2d.h), per output channel: for each
    ring rotation q the taps t[3 kx + s] = filter[(s - q) mod 3][kx] as int16 pairs (t0, t1) .. (t6, t7)
    and (e, t8) (e of the requant record in the low byte), then multiplier2, bias_folded + round,
    round: 18 int32 words."""
    taps = np.asarray(weights, np.int64).reshape(3, 3, -1)  # [ky][kx][oc]
    channels = taps.shape[2]
    rec = np.asarray(records, np.int64).reshape(channels, 3)  # multiplier2, round, e
    out = np.zeros((channels, 18), np.int64)
    for q in range(3):
        seq = np.stack([taps[(s - q) % 3, kx] for kx in range(3) for s in range(3)], axis=1)  # [oc][9]
        low = seq & 0xFFFF
        out[:, 5 * q:5 * q + 4] = low[:, 0:8:2] | (low[:, 1:8:2] << 16)
        out[:, 5 * q + 4] = (low[:, 8] << 16) | rec[:, 2]
    out[:, 15] = rec[:, 0]
    out[:, 16] = np.asarray(bias_folded, np.int64) + rec[:, 1]
    out[:, 17] = rec[:, 1]
    return (out & 0xFFFFFFFF).astype(np.uint32).view(np.int32).reshape(-1)


@lowering("DEPTHWISE_CONV_2D")
def lower_depthwise_conv_2d(context: LoweringContext, op: Operator, index: int) -> Layer:
    inp, out, in_scale, in_zp, out_scale, out_zp = _io(context, op)
    filt = context.tensor(op, 1)
    context.require_dtype(op, filt, "filter", np.int8)
    weights = context.require_constant(op, filt, "filter")
    if len(inp.shape) != 4 or len(filt.shape) != 4 or len(out.shape) != 4 or filt.shape[0] != 1:
        raise context.fail(op, "option rank (needs 4-D input/output and a 1xHxWxC filter)")
    batches, in_h, in_w, in_c = inp.shape
    _, k_h, k_w, out_c = filt.shape
    if out.shape[0] != batches or out.shape[3] != out_c or out_c % in_c != 0:
        raise context.fail(op, f"option output depth {out.shape[3]} for input depth {in_c}, filter depth {out_c}")
    multiplier = out_c // in_c
    opts = op.options
    stated = int(opts.get("depth_multiplier", multiplier) or multiplier)
    if stated != multiplier:
        raise context.fail(op, f"option depth_multiplier {stated} (shapes give {multiplier})")
    window = _window(context, op, in_h, in_w, k_h, k_w, out)
    act = activation_range(context.activation(op), out_scale, out_zp)
    scales = _filter_scales(context, op, filt, out_c, 3)
    multipliers, shifts = _per_channel_multipliers(in_scale, scales, out_scale, out_c)
    return _depthwise_layer(context, op, index, inp, out, weights, _bias(context, op, out_c), multipliers, shifts,
                            in_zp, out_zp, window, act)


def _depthwise_layer(context: LoweringContext, op: Operator, index: int, inp, out, weights: np.ndarray,
                     bias: np.ndarray | None, multipliers: np.ndarray, shifts: np.ndarray, in_zp: int, out_zp: int,
                     window: tuple[int, int, int, int, int, int], act: tuple[int, int]) -> Layer:
    """A tm_depthwise_conv_2d_s8 layer from a checked [1][KH][KW][C_out] filter and its quantization."""
    batches, in_h, in_w, in_c = inp.shape
    _, k_h, k_w, out_c = weights.shape
    multiplier = out_c // in_c
    stride_h, stride_w, dil_h, dil_w, pad_h, pad_w = window
    act_min, act_max = act
    consts = _filter_consts(index, weights, multipliers, shifts)
    fields: dict = dict(
        batches=batches, input_h=in_h, input_w=in_w, input_c=in_c,
        output_h=out.shape[1], output_w=out.shape[2], output_c=out_c, depth_multiplier=multiplier,
        filter_h=k_h, filter_w=k_w,
        stride_h=stride_h, stride_w=stride_w, dilation_h=dil_h, dilation_w=dil_w,
        pad_h=pad_h, pad_w=pad_w, input_offset=-in_zp, output_offset=out_zp,
        act_min=act_min, act_max=act_max,
        filter=c_name(index, "filter"), bias="NULL",
        multiplier=c_name(index, "multiplier"), shift=c_name(index, "shift"), bias_folded="NULL",
    )
    if bias is not None:
        consts.append(ConstArray(c_name(index, "bias"), "int32_t", bias))
        fields["bias"] = c_name(index, "bias")
    requant = _add_requant(consts, fields, index, multipliers, shifts, out_zp)
    scratch = 0
    # --- 3x3 on a core without SIMD: one channel at a time over an int32 plane (tm_depthwise_conv_2d_3x3_scalar.h)
    plane = depthwise_scalar3_scratch_bytes(k_h, k_w, dil_h, dil_w, out.shape[1], out.shape[2], stride_h, stride_w)
    if context.folded and not context.dsp and requant and (multiplier == 1 or plane):
        folded = _folded_bias(bias, weights.reshape(-1, out_c).T, -in_zp)
        consts.append(ConstArray(c_name(index, "bias_folded"), "int32_t", folded))
        fields["bias_folded"] = c_name(index, "bias_folded")
        if plane:
            macs = batches * out.shape[1] * out.shape[2] * out_c * k_h * k_w
            return Layer(
                op.index, op.opcode, "tm_depthwise_conv_2d_s8", "tm_depthwise_conv_2d_params_t",
                "tm_depthwise_conv_2d.h", "tm_depthwise_conv_2d.c", fields, consts,
                [inp.index], [out.index],
                [Arg("tensor", inp.index, const=True), Arg("tensor", out.index), Arg("scratch")],
                scratch_bytes=plane, macs=macs, params=int(weights.size + (0 if bias is None else bias.size)),
                extra={"path": "3x3 scalar plane", "fallback": None},
            )
    if context.dsp and requant:
        # Per channel: the taps of channel c are weights[0, :, :, c].
        folded = _folded_bias(bias, weights.reshape(-1, out_c).T, -in_zp)
        if multiplier == 1:
            consts.append(ConstArray(c_name(index, "bias_folded"), "int32_t", folded))
            fields["bias_folded"] = c_name(index, "bias_folded")
        scratch = depthwise_dsp_scratch_bytes(k_h, k_w, dil_h, dil_w, in_c, out.shape[2], stride_w)
        bound = np.abs(folded.astype(np.int64)) + 128 * 128 * k_h * k_w
        records = packed_records(requant_records(multipliers, shifts, out_zp), bound)
        if records is None or not context.widen:
            scratch = 0
        if scratch:
            consts.append(ConstArray(c_name(index, "packed"), "int32_t", depthwise_packed(weights, folded, records)))
            fields["packed"] = c_name(index, "packed")
    path, note = "generic", None
    if scratch:
        path = "3x3 DSP"
    elif context.folded and requant and multiplier == 1:
        path = "depthwise DSP" if context.dsp else "depthwise scalar"
    elif context.folded:
        note = (f"folded requantization: {requant_unfit_reason(multipliers, shifts)}" if not requant
                else f"depth multiplier {multiplier}")
    macs = batches * out.shape[1] * out.shape[2] * out_c * k_h * k_w
    return Layer(
        op.index, op.opcode, "tm_depthwise_conv_2d_s8", "tm_depthwise_conv_2d_params_t",
        "tm_depthwise_conv_2d.h", "tm_depthwise_conv_2d.c",
        fields, consts, [inp.index], [out.index],
        [Arg("tensor", inp.index, const=True), Arg("tensor", out.index), Arg("scratch" if scratch else "null")],
        scratch_bytes=scratch, macs=macs, params=int(weights.size + (0 if bias is None else bias.size)),
        extra={"path": path, "fallback": note, KERNEL_READS: ("packed",) if path == "3x3 DSP" else None},
    )


@lowering("FULLY_CONNECTED")
def lower_fully_connected(context: LoweringContext, op: Operator, index: int) -> Layer:
    inp, out, in_scale, in_zp, out_scale, out_zp = _io(context, op)
    filt = context.tensor(op, 1)
    context.require_dtype(op, filt, "filter", np.int8)
    weights = context.require_constant(op, filt, "filter")
    opts = op.options
    if opts.get("weights_format", "DEFAULT") != "DEFAULT":
        raise context.fail(op, f"option weights_format {opts['weights_format']}")
    if len(filt.shape) != 2:
        raise context.fail(op, f"option filter rank {len(filt.shape)}")
    out_c, depth = filt.shape
    in_count = int(np.prod(inp.shape))
    if depth == 0 or in_count % depth != 0:
        raise context.fail(op, f"option input shape {list(inp.shape)} for filter {list(filt.shape)}")
    batches = in_count // depth
    if int(np.prod(out.shape)) != batches * out_c or out.shape[-1] != out_c:
        raise context.fail(op, f"option output shape {list(out.shape)}")
    act_min, act_max = activation_range(context.activation(op), out_scale, out_zp)
    filter_zp = filt.zero_point
    if filter_zp.size > 1 and np.any(filter_zp != filter_zp[0]):
        raise context.fail(op, "option per-channel filter zero points")
    filter_offset = -int(filter_zp[0]) if filter_zp.size else 0
    scales = filt.scale
    if scales.size == 1:
        # TFLM GetQuantizedConvolutionMultipler: float product, then a double division.
        product = np.float64(np.float32(in_scale) * np.float32(scales[0]))
        multipliers, shifts = (np.array([v], dtype=np.int32)
                               for v in quantize_multiplier(float(product / np.float64(out_scale))))
        per_channel = 0
    elif scales.size == out_c:
        if filt.quantized_dimension != 0:
            raise context.fail(op, f"option filter quantized_dimension {filt.quantized_dimension}")
        multipliers, shifts = _per_channel_multipliers(in_scale, scales, out_scale, out_c)
        per_channel = 1
    else:
        raise context.fail(op, f"option filter quantization with {scales.size} scales for {out_c} outputs")
    bias = _bias(context, op, out_c)
    consts = _filter_consts(index, weights, multipliers, shifts)
    fields: dict = dict(
        batches=batches, input_depth=depth, output_depth=out_c,
        input_offset=-in_zp, filter_offset=filter_offset, output_offset=out_zp,
        act_min=act_min, act_max=act_max, per_channel=per_channel,
        filter=c_name(index, "filter"), bias="NULL",
        multiplier=c_name(index, "multiplier"), shift=c_name(index, "shift"), bias_folded="NULL",
    )
    if bias is not None:
        consts.append(ConstArray(c_name(index, "bias"), "int32_t", bias))
        fields["bias"] = c_name(index, "bias")
    requant = _add_requant(consts, fields, index, multipliers, shifts, out_zp)
    path, note = "generic", None
    packed = None
    if context.dsp and filter_offset == 0 and context.widen:
        # The row path: int16-widened weights in the 1x1 widened-patch conv layout, records for every shift.
        folded = _folded_bias(bias, weights, -in_zp)
        rows = weights.astype(np.int64)
        base = np.zeros(out_c, np.int64) if bias is None else bias.astype(np.int64)
        bound = np.abs(base - in_zp * rows.sum(axis=1)) + 128 * np.abs(rows).sum(axis=1)
        channel_m = np.broadcast_to(multipliers, (out_c,))
        packed = conv_packed_records(channel_m, np.broadcast_to(shifts, (out_c,)), out_zp, bound)
        if packed.records is not None:
            live = channel_m != 0
            filter16 = conv_filter16(weights.reshape(out_c, 1, 1, depth) * live[:, None, None, None], folded * live,
                                     packed.records)
            consts.append(ConstArray(c_name(index, "filter16"), "int32_t", filter16))
            fields["filter16"] = c_name(index, "filter16")
            path = "row16" + (" (zero point after the shift)" if packed.post else "")
    if path == "generic" and context.folded and filter_offset == 0 and requant:
        consts.append(ConstArray(c_name(index, "bias_folded"), "int32_t", _folded_bias(bias, weights, -in_zp)))
        fields["bias_folded"] = c_name(index, "bias_folded")
        path = "DSP" if context.dsp else "scalar"
    elif path == "generic" and context.folded:
        note = (f"filter zero point {-filter_offset}" if filter_offset
                else f"folded requantization: {requant_unfit_reason(multipliers, shifts)}")
    return Layer(
        op.index, op.opcode, "tm_fully_connected_s8", "tm_fully_connected_params_t",
        "tm_fully_connected.h", "tm_fully_connected.c",
        fields, consts, [inp.index], [out.index],
        [Arg("tensor", inp.index, const=True), Arg("tensor", out.index)],
        macs=batches * out_c * depth, params=int(weights.size + (0 if bias is None else bias.size)),
        extra={"path": path, "fallback": note, KERNEL_READS: ("filter16",) if path.startswith("row16") else None},
    )
