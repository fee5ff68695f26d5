/*
 * tm_conv_2d.h - CONV_2D, int8 activations, int8 per-channel weights, int32 bias.
 *
 * Layouts (TFLite): input [N][H][W][C_in], filter [C_out][KH][KW][C_f],
 * output [N][OH][OW][C_out], with C_f = C_in / groups, and output channel oc
 * reading input channels g*C_f .. g*C_f + C_f - 1, g = oc / (C_out / groups).
 *
 * For every output element (n, oy, ox, oc):
 *
 *   acc = bias[oc] + sum over ky < KH, kx < KW, c < C_f, with
 *             iy = oy*stride_h - pad_h + ky*dilation_h inside [0, H) and
 *             ix = ox*stride_w - pad_w + kx*dilation_w inside [0, W)
 *         of filter[oc][ky][kx][c] * (input[n][iy][ix][g*C_f + c] + input_offset)
 *   out = clamp(MBQM(acc, multiplier[oc], shift[oc]) + output_offset, act_min, act_max)
 *
 * where input_offset = -input_zero_point, output_offset = output_zero_point, and
 * MBQM is TFLite's MultiplyByQuantizedMultiplier (tm_common.h): the rounding
 * doubling high multiply by multiplier (Q31) and a rounding shift by shift
 * (> 0 left, < 0 right). Padded taps contribute nothing, as in TFLite-Micro.
 * The int32 accumulator is exact for any layer TFLite itself runs.
 *
 * requant (compile time, when every channel's pair allows it) replaces
 * MBQM(acc) + output_offset by tm_requant (tm_common.h): one SMLAL and a shift.
 *
 * DSP path (built with __ARM_FEATURE_DSP and groups == 1, given bias_folded and requant):
 *   acc = bias_folded[oc] + sum over all taps of filter * x
 *   bias_folded[oc] = bias[oc] + input_offset * sum(filter[oc])   (compile time)
 * where padded taps read x = input_zero_point (so filter * (x + input_offset) = 0
 * and the two sums are equal). Patches of two output pixels are gathered into
 * the scratch buffer (im2col, TM_CONV_2D_SCRATCH_BYTES: whole filter rows are
 * copied at once, padding rows filled), then a 2 pixel x 2 channel block is
 * multiplied four bytes at a time with SXTB16 + SMLAD (on a Cortex-M with an
 * optimising gcc, an inline-assembly loop of 22 instructions per 16 MACs when the
 * second patch starts k bytes after the first, as in the scratch buffer and for
 * 1x1 stride-1 convolutions; the same sums in the same order, so the same bytes).
 * A 1x1 filter without padding reads its patches straight from the input.
 *
 * Widened patches (given filter16: groups 1, dilation 1, kp <= TM_CONV_2D_K16_MAX,
 * filter_h <= TM_CONV_2D_K16_MAX_ROWS): each filter row of filter_w * filter_c taps is
 * padded with zeros to rw = a multiple of 4, kp = filter_h * rw, and the compiler stores per output
 * channel the weights widened to int16, each group of four taps t..t+3 of a row in the
 * order (t, t+2, t+1, t+3), two per int32 word (the first in the low half):
 *   w16[oc][ky*rw + 4j + {0,1,2,3}] = filter[oc][ky][4j + {0,2,1,3}]  (0 past the row)
 * followed by four words: bias_folded[oc] and the packed requantization (multiplier2,
 * round, e) of tm_requant_rec (tm_dsp.h; the same result as tm_requant, saturated to
 * int8, for the accumulator bound the compiler checks): kp/2 + 4 words per channel.
 * Every right shift 1..31 has such a record: above 23 (filter16_post = 1) the zero point is
 * added after the shift (tm_dsp.h). This path needs neither bias_folded nor requant, so a
 * layer whose shifts the tm_requant_t records cannot hold still runs here.
 * The input rows a pixel needs are kept padded with the zero point in a ring of filter_h
 * rows (TM_CONV_2D_ROW_BYTES each; a 1x1 filter without padding with filter_c % 4 == 0
 * reads the input in place), each pixel's patch is read from them four bytes at a time
 * and widened once (SXTB16, SXTB16 ror 8: the same order; the bytes past a filter row
 * meet zero weights), and every output channel is SMLAD over kp/2 int16 pairs: for
 * kp 4 or 8 and the activation range all of int8 the patch stays in registers for all
 * channels of the pixel, else 2 pixels x 2 channels at a time (then clamped to
 * [act_min, act_max]). The same terms plus zeros, so the same int32 sum.
 */
#ifndef TM_CONV_2D_H
#define TM_CONV_2D_H

#include <stdint.h>

#include "tm_common.h"
#include "tm_dsp.h"

typedef struct {
    int32_t batches;
    int32_t input_h, input_w, input_c;
    int32_t output_h, output_w, output_c;
    int32_t filter_h, filter_w, filter_c; /* filter_c = input_c / groups */
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_h, pad_w;                 /* top and left padding */
    int32_t input_offset;                 /* -input zero point */
    int32_t output_offset;                /* output zero point */
    int32_t act_min, act_max;             /* fused activation, in output units */
    const int8_t *filter;                 /* [output_c][filter_h][filter_w][filter_c] */
    const int32_t *bias;                  /* [output_c] or NULL */
    const int32_t *multiplier;            /* [output_c], Q31 */
    const int32_t *shift;                 /* [output_c], > 0 left */
    const int32_t *bias_folded;           /* [output_c] for the DSP path, or NULL */
    const tm_requant_t *requant;          /* [output_c] folded requantization, or NULL */
    const int32_t *filter16;              /* DSP widened-patch path: [output_c][kp / 2 + 4], or NULL */
    int32_t filter16_post;                /* 1: filter16's records add the zero point after the shift */
} tm_conv_2d_params_t;

/* Widened-patch path (filter16): padded filter row rw, patch kp (two int16 patches of
   scratch: at most 4 KB), at most TM_CONV_2D_K16_MAX_ROWS filter rows, padded input row bytes. */
#define TM_CONV_2D_K16_MAX 1024
#define TM_CONV_2D_K16_MAX_ROWS 16
#define TM_CONV_2D_RW(p) (((p)->filter_w * (p)->filter_c + 3) / 4 * 4)
#define TM_CONV_2D_KP(p) ((p)->filter_h * TM_CONV_2D_RW(p))
#define TM_CONV_2D_DIRECT16(p)                                                                \
    ((p)->filter_h == 1 && (p)->filter_w == 1 && (p)->pad_h == 0 && (p)->pad_w == 0 && ((p)->filter_c & 3) == 0)
#define TM_CONV_2D_ROW_BYTES(p) ((((p)->output_w - 1) * (p)->stride_w + (p)->filter_w) * (p)->filter_c / 4 * 4 + 8)

/* Scratch bytes the DSP path needs (0: none); the compiler computes the same. */
#define TM_CONV_2D_SCRATCH_BYTES(p)                                                          \
    ((p)->filter16 != NULL                                                                   \
         ? 4 * TM_CONV_2D_KP(p) + (TM_CONV_2D_DIRECT16(p) ? 0 : (p)->filter_h * TM_CONV_2D_ROW_BYTES(p)) \
     : ((p)->filter_h == 1 && (p)->filter_w == 1 && (p)->pad_h == 0 && (p)->pad_w == 0)     \
         ? 0                                                                                 \
         : ((2 * (p)->filter_h * (p)->filter_w * (p)->filter_c + 3) / 4 * 4))

/* scratch: TM_CONV_2D_SCRATCH_BYTES(p) bytes, or NULL (then the generic path runs). */
void tm_conv_2d_s8(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch);

/*
 * Shared with FULLY_CONNECTED (DSP path only): out0/out1[oc] for oc < channels,
 * the dot products of rows row0 and row1 (row1 NULL: one row) of length k with
 * the filter rows, acc = bias_folded[oc] + sum filter * row, requantized with
 * requant[per_channel ? oc : 0] and clamped to [act_min, act_max].
 */
void tm_s8_dot_rows_2x2(const int8_t *row0, const int8_t *row1, const int8_t *filter, int32_t k,
                        int32_t channels, const int32_t *bias_folded, const tm_requant_t *requant,
                        int32_t per_channel, int32_t act_min, int32_t act_max, int8_t *out0, int8_t *out1);

#endif /* TM_CONV_2D_H */
