/*
 * tm_depthwise_conv_2d_3x3_scalar.h - DEPTHWISE_CONV_2D with a 3x3 filter on cores without SIMD
 * multiply-accumulate (RV32IMC, Cortex-M0/M0+): one channel at a time over a zero-point-padded
 * int32 plane. Parameters and arithmetic: tm_depthwise_conv_2d.h.
 *
 * Algorithm TM_DEPTHWISE_CONV_2D_3X3_SCALAR of tm_depthwise_conv_2d_choose: 3x3 filters,
 * dilation 1, any depth multiplier, with bias_folded and requant (the compiler's folded data for
 * rv32 / cortex-m0) and a scratch of tm_depthwise_conv_2d_3x3_scalar_get_buffer_size(p) bytes
 * (at most TM_DW3_SCALAR_MAX_SCRATCH; both in tm_depthwise_conv_2d.h).
 *
 * For every input channel ic, the plane holds rows = (output_h - 1) * stride_h + 3 rows of
 * cols = (output_w - 1) * stride_w + 3 int32:
 *   plane[r][q] = input[n][r - pad_h][q - pad_w][ic], or the input zero point outside the image
 * and each of its output channels c = ic * depth_multiplier + k (a one-channel CONV_2D is
 * lowered to this with multiplier output_c) has its nine taps w[3 ky + kx] = filter[0][ky][kx][c]
 * in locals; then
 *   acc = bias_folded[c] + sum over ky, kx < 3 of w[3 ky + kx] * plane[oy * stride_h + ky][ox * stride_w + kx]
 *   out[n][oy][ox][c] = clamp(tm_requant(acc, &requant[c]), act_min, act_max)
 * bias_folded = bias + input_offset * sum of the taps, so the zero points of the padding give
 * the terms TFLite-Micro leaves out (their x + input_offset is 0): the same int32 sum.
 * Each multiply-accumulate is a word load of the plane and one of a tap (immediate offsets;
 * Thumb-1's LDRSB has only a register offset), a 32-bit multiply and an add, instead of the
 * four-channel pixel loop's byte loads with their per-channel address arithmetic.
 */
#ifndef TM_DEPTHWISE_CONV_2D_3X3_SCALAR_H
#define TM_DEPTHWISE_CONV_2D_3X3_SCALAR_H

#include "tm_depthwise_conv_2d.h"

#if !TM_DSP_AVAILABLE
/* scratch: tm_depthwise_conv_2d_3x3_scalar_get_buffer_size(p) bytes, 4-byte aligned. */
void tm_depthwise_conv_2d_3x3_scalar_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output,
                                        int8_t *scratch);
#endif

#endif /* TM_DEPTHWISE_CONV_2D_3X3_SCALAR_H */
