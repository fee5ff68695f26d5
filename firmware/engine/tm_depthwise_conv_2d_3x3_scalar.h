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
 * four-channel pixel loop's byte loads with their per-channel address arithmetic. On armv6-m a
 * channel whose sums stay below 2^20 (below: every int8 filter with a bias under about 900,000)
 * runs in Thumb-1 assembly with the three-product requantization below (about 7 instructions a
 * multiply-accumulate with the plane, instead of 15-24 in the C GCC makes of the loop).
 */
#ifndef TM_DEPTHWISE_CONV_2D_3X3_SCALAR_H
#define TM_DEPTHWISE_CONV_2D_3X3_SCALAR_H

#include "tm_depthwise_conv_2d.h"

#if !TM_DSP_AVAILABLE

/*
 * Without a 32x32->64 multiply (armv6-m; TM_REQUANT_MUL16 builds the same on a host, for tests) the
 * requantization of tm_common.h (high word of round_hi:(+-2^30) + acc * M, then >> shift) takes
 * four 16x16 products and their carries. A channel whose sums are bounded, |acc| < 2^20, needs
 * only three 32-bit products: with M = m2 * 2^22 + m1 * 2^11 + m0 (m0, m1 < 2^11, m2 < 2^9),
 *   acc * M +- 2^30 = 2^22 * (acc * m2 +- 2^8) + 2^11 * acc * m1 + acc * m0
 * and nested floors of divisions by powers of two compose, so
 *   t0 = floor(acc * m0 / 2^11)                    |acc * m0| < 2^31
 *   t1 = floor((acc * m1 + t0) / 2^11)             |acc * m1 + t0| <= 2^20 * 2^11 - ... < 2^31
 *   high word = floor((acc * m2 + t1 +- 2^8) / 2^10)
 * (+ for acc >= 0, - below, as tm_common.h's low word 2^30 | (acc & 2^31)). The bound holds
 * when |bias_folded| + 128 * sum |w| < 2^20, since every plane value is an int8.
 */
#if defined(__ARM_ARCH_6M__) || defined(TM_REQUANT_MUL16)
#define TM_DW3S_SPLIT_REQUANT 1
#else
#define TM_DW3S_SPLIT_REQUANT 0
#endif
#define TM_DW3S_SPLIT_BOUND (INT32_C(1) << 20)

#if TM_DW3S_SPLIT_REQUANT
typedef struct {
    int32_t m0, m1, m2; /* the multiplier's bits 0-10, 11-21 and 22-30 */
    int32_t round_hi;   /* tm_requant_t's */
    int32_t shift;
} tm_dw3s_split_requant_t;

static inline void tm_dw3s_split_requant_init(tm_dw3s_split_requant_t *s, const tm_requant_t *q)
{
    const uint32_t m = (uint32_t)q->multiplier; /* 0 or in [2^30, 2^31) */
    s->m0 = (int32_t)(m & 0x7ffu);
    s->m1 = (int32_t)((m >> 11) & 0x7ffu);
    s->m2 = (int32_t)(m >> 22);
    s->round_hi = q->round_hi;
    s->shift = q->shift;
}

/* Whether every sum bias + taps . plane of this channel stays below TM_DW3S_SPLIT_BOUND in size. */
static inline int32_t tm_dw3s_split_requant_fits(const int32_t *w, int32_t bias)
{
    int32_t k, bound;
    if (bias <= -TM_DW3S_SPLIT_BOUND || bias >= TM_DW3S_SPLIT_BOUND) {
        return 0;
    }
    bound = bias < 0 ? -bias : bias;
    for (k = 0; k < 9; ++k) {
        bound += 128 * (w[k] < 0 ? -w[k] : w[k]); /* |w| <= 128: no overflow */
    }
    return bound < TM_DW3S_SPLIT_BOUND;
}

/* tm_requant(acc, q) for |acc| < TM_DW3S_SPLIT_BOUND, from the record's split. */
static inline int32_t tm_dw3s_split_requant(int32_t acc, const tm_dw3s_split_requant_t *s)
{
    const int32_t sign = acc >> 31; /* 0 or -1 */
    int32_t t = (acc * s->m0) >> 11;
    t = (acc * s->m1 + t) >> 11;
    t = acc * s->m2 + t + 256 - (sign & 512);
    return ((t >> 10) + s->round_hi) >> s->shift;
}
#endif

/* scratch: tm_depthwise_conv_2d_3x3_scalar_get_buffer_size(p) bytes, 4-byte aligned. */
void tm_depthwise_conv_2d_3x3_scalar_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output,
                                        int8_t *scratch);
#endif

#endif /* TM_DEPTHWISE_CONV_2D_3X3_SCALAR_H */
