/*
 * tm_depthwise_conv_2d.h - DEPTHWISE_CONV_2D, int8 activations, int8 per-channel
 * weights, int32 bias.
 *
 * Layouts (TFLite): input [N][H][W][C_in], filter [1][KH][KW][C_out],
 * output [N][OH][OW][C_out], C_out = C_in * depth_multiplier; output channel
 * oc = ic * depth_multiplier + m reads input channel ic only.
 *
 * For every output element (n, oy, ox, oc = ic * depth_multiplier + m):
 *
 *   acc = bias[oc] + sum over ky < KH, kx < KW, with
 *             iy = oy*stride_h - pad_h + ky*dilation_h inside [0, H) and
 *             ix = ox*stride_w - pad_w + kx*dilation_w inside [0, W)
 *         of filter[0][ky][kx][oc] * (input[n][iy][ix][ic] + input_offset)
 *   out = clamp(MBQM(acc, multiplier[oc], shift[oc]) + output_offset, act_min, act_max)
 *
 * input_offset = -input_zero_point, output_offset = output_zero_point, MBQM is
 * TFLite's MultiplyByQuantizedMultiplier (tm_common.h). Padded taps contribute
 * nothing, as in TFLite-Micro. With requant (compile time) MBQM(acc) + output_offset
 * is tm_requant (tm_common.h).
 *
 * DSP path (__ARM_FEATURE_DSP, depth_multiplier 1, given bias_folded and requant):
 *   acc = bias_folded[c] + sum over all taps of filter[0][ky][kx][c] * x
 *   bias_folded[c] = bias[c] + input_offset * sum over taps of filter[0][ky][kx][c]  (compile time)
 * where taps outside the image read x = input_zero_point (their term is then 0 in
 * both sums). Four channels per 32-bit word: SXTB16 splits input and filter words
 * into even/odd channel pairs, SMLABB/SMLATT accumulate each channel. Output pixels
 * whose window lies inside the image walk the taps without bounds checks; border
 * pixels walk only their taps inside the image, with bias[c] and the input offset
 * added in 16-bit lanes (SADD16) instead of the folded bias.
 * 3x3 filters (dilation 1, stride_w 1 or 2), any channel count and depth multiplier, with
 * the scratch buffer and `packed` (out = SSAT8(...), then clamped to [act_min, act_max]
 * when that is narrower than int8): three input
 * rows are kept, widened to int16, in a channel-planar ring: channel c's plane is
 * TM_DW3_PLANE halfwords at scratch + 2 * c * TM_DW3_PLANE, and halfword 3 * col + slot
 * holds column col (input column col - pad_w, TM_DW3_COLS of them) of the input row
 * iy with (iy + pad_h) mod 3 = slot; padding columns and rows outside the image hold the
 * zero point (their terms are 0 with the folded bias). An output pixel's window is then 9
 * consecutive halfwords (3 columns x 3 slots), read as 5 words, and each output channel
 * runs along the output row with its taps in registers. The slots' order depends on the
 * output row: with q = (oy * stride_h) mod 3, the slot of its first input row, slot s holds
 * filter row (s - q) mod 3, so packed (compile time) has, per output channel oc,
 * TM_DW3_PACKED_CHANNEL int32 words: for each rotation q = 0, 1, 2 five tap words, the
 * int16 pairs (t0, t1), (t2, t3), (t4, t5), (t6, t7) of t[3 kx + s] = filter[0][(s - q) mod 3][kx][oc]
 * (the first in the low half), then t8 in the high half of the fifth word with e
 * (tm_requant_rec) in its low byte; then multiplier2, bias_folded[oc] + round, round
 * (tm_dsp.h tm_requant_rec).
 */
#ifndef TM_DEPTHWISE_CONV_2D_H
#define TM_DEPTHWISE_CONV_2D_H

#include <stdint.h>

#include "tm_common.h"

typedef struct {
    int32_t batches;
    int32_t input_h, input_w, input_c;
    int32_t output_h, output_w, output_c;
    int32_t depth_multiplier;         /* output_c / input_c */
    int32_t filter_h, filter_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_h, pad_w;             /* top and left padding */
    int32_t input_offset;             /* -input zero point */
    int32_t output_offset;            /* output zero point */
    int32_t act_min, act_max;
    const int8_t *filter;             /* [filter_h][filter_w][output_c] */
    const int32_t *bias;              /* [output_c] or NULL */
    const int32_t *multiplier;        /* [output_c], Q31 */
    const int32_t *shift;             /* [output_c], > 0 left */
    const int32_t *bias_folded;       /* [output_c] for the DSP path, or NULL */
    const tm_requant_t *requant;      /* [output_c] folded requantization, or NULL */
    const int32_t *packed;            /* DSP 3x3 path: [output_c][TM_DW3_PACKED_CHANNEL], or NULL */
} tm_depthwise_conv_2d_params_t;

/* Words per output channel of `packed`: 3 rotations x 5 tap words, then 3 requant words. */
#define TM_DW3_PACKED_CHANNEL 18

/*
 * Scratch bytes of the DSP 3x3 path (0: none; the compiler computes the same): 3x3 filter,
 * dilation 1, stride_w 1 or 2; input_c planes of TM_DW3_PLANE halfwords (the last window's
 * fifth word reads one halfword past its last tap).
 */
#define TM_DEPTHWISE_CONV_2D_SCRATCH_BYTES(p)                                                       \
    (((p)->filter_h == 3 && (p)->filter_w == 3 && (p)->dilation_h == 1 && (p)->dilation_w == 1 &&   \
      ((p)->stride_w == 1 || (p)->stride_w == 2))                                                   \
         ? 2 * TM_DW3_PLANE(p) * (p)->input_c                                                      \
         : 0)
/* Columns of the 3x3 path's padded rows (every window of the output row), halfwords a plane. */
#define TM_DW3_COLS(p) (((p)->output_w - 1) * (p)->stride_w + 3)
#define TM_DW3_PLANE(p) ((3 * TM_DW3_COLS(p) + 2) & ~1)

/* scratch: TM_DEPTHWISE_CONV_2D_SCRATCH_BYTES(p) bytes, or NULL. */
void tm_depthwise_conv_2d_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output,
                             int8_t *scratch);

#endif /* TM_DEPTHWISE_CONV_2D_H */
