/*
 * tm_conv_2d_rgb.h - CONV_2D with few input channels (an image model's first layer, RGB or
 * grey): widened patches without per-row padding. Parameters and arithmetic: tm_conv_2d.h.
 *
 * The widened-patch path of tm_conv_2d.c pads every filter row of filter_w * filter_c taps
 * to a multiple of 4; for a 3x3x3 filter that is 36 taps for 27 (a third of the multiplies
 * are by zero). Here the patch is one run of kc = filter_h * filter_w * filter_c taps, padded
 * once to kp = kc rounded up to 4.
 *
 * Applies (TM_CONV_2D_RGB_APPLIES) with filter16 in this file's layout (the compiler chooses it
 * and calls tm_conv_2d_rgb_s8), groups 1, dilation 1, filter_c = input_c <= 4 and kp <=
 * TM_CONV_2D_RGB_MAX_TAPS (at most TM_CONV_2D_K16_MAX_ROWS filter rows), on a core with the DSP extension; otherwise tm_conv_2d_rgb_s8 runs
 * tm_conv_2d_s8's generic path.
 *
 * Column band (scratch): for output row oy (iy0 = oy * stride_h - pad_h), every padded input
 * column j < cols = (output_w - 1) * stride_w + filter_w holds the filter_h input rows as one
 * run, filter_c bytes each:
 *   band[(j * filter_h + ky) * filter_c + c] = input[iy0 + ky][j - pad_w][c]
 * or the input zero point outside the image (its term is 0 with the folded bias). Output
 * pixel ox's patch is then the kc consecutive bytes at band + ox * stride_w * filter_h *
 * filter_c, in tap order t = (kx * filter_h + ky) * filter_c + c (column-major).
 *
 * filter16 (compile time, tinyml.compiler.ops_conv.conv_rgb_filter16): per output channel the
 * kp int16 weights w16[t] = filter[oc][ky][kx][c] in that tap order (0 for t >= kc), each group
 * of four taps in the order (t, t+2, t+1, t+3) of SXTB16 / SXTB16 ror 8, two per int32 word (the
 * first in the low half), then four words: bias_folded[oc] and the packed record (multiplier2,
 * round, e_post) of tm_requant_rec (tm_dsp.h): kp / 2 + 4 words a channel, as in tm_conv_2d.h.
 *   acc = bias_folded[oc] + sum over t < kp of w16[t] * patch[t]   (bytes past kc meet zero weights)
 *   out = clamp(tm_requant_rec(acc, multiplier2, round, e_post), act_min, act_max)
 * The same terms as tm_conv_2d.h's sum plus zeros, so the same int32 sum and the same bytes.
 *
 * Two output pixels a, b at a time: their patches are widened into one interleaved buffer
 * (per four taps: a's two words, then b's), and every pair of output channels is a 2 pixel x
 * 2 channel block of SMLADs.
 */
#ifndef TM_CONV_2D_RGB_H
#define TM_CONV_2D_RGB_H

#include "tm_conv_2d.h"

#define TM_CONV_2D_RGB_MAX_CHANNELS 4
#define TM_CONV_2D_RGB_MAX_TAPS 256
#define TM_CONV_2D_RGB_KP(p) (((p)->filter_h * (p)->filter_w * (p)->filter_c + 3) / 4 * 4)
#define TM_CONV_2D_RGB_COLS(p) (((p)->output_w - 1) * (p)->stride_w + (p)->filter_w)

/* The shapes this path takes (the compiler checks the same, ops_conv.conv_rgb_scratch_bytes). */
#define TM_CONV_2D_RGB_APPLIES(p)                                                                        \
    ((p)->filter16 != NULL && (p)->filter_c == (p)->input_c && (p)->input_c <= TM_CONV_2D_RGB_MAX_CHANNELS && \
     (p)->dilation_h == 1 && (p)->dilation_w == 1 && TM_CONV_2D_RGB_KP(p) <= TM_CONV_2D_RGB_MAX_TAPS &&        \
     (p)->filter_h <= TM_CONV_2D_K16_MAX_ROWS)

/* Scratch: two widened patches (4 * kp bytes), then the band and 4 bytes a last patch word may read. */
#define TM_CONV_2D_RGB_SCRATCH_BYTES(p) \
    (4 * TM_CONV_2D_RGB_KP(p) + (TM_CONV_2D_RGB_COLS(p) * (p)->filter_h * (p)->filter_c + 4 + 3) / 4 * 4)

/* scratch: TM_CONV_2D_RGB_SCRATCH_BYTES(p) bytes, 4-byte aligned. */
void tm_conv_2d_rgb_s8(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch);

#endif /* TM_CONV_2D_RGB_H */
