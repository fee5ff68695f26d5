/*
 * tm_depthwise_conv_2d_dsp.c - DEPTHWISE_CONV_2D, four channels per word (DSP cores, depth
 * multiplier 1, given bias_folded and requant):
 *
 *   acc = bias_folded[c] + sum over all taps of filter[0][ky][kx][c] * x
 *   bias_folded[c] = bias[c] + input_offset * sum over taps of filter[0][ky][kx][c]  (compile time)
 * where taps outside the image read x = input_zero_point (their term is then 0 in
 * both sums). Four channels per 32-bit word: SXTB16 splits input and filter words
 * into even/odd channel pairs, SMLABB/SMLATT accumulate each channel. Output pixels
 * whose window lies inside the image walk the taps without bounds checks; border
 * pixels walk only their taps inside the image, with bias[c] and the input offset
 * added in 16-bit lanes (SADD16) instead of the folded bias.
 *   out = clamp(tm_requant(acc, requant[c]), act_min, act_max)
 */
#include "tm_depthwise_conv_2d_dsp.h"

#include <stddef.h>

#include "tm_common.h"
#include "tm_dsp.h"

#if TM_DSP_AVAILABLE

/* One tap for channels c..c+3: xv and wv hold their four input and four filter bytes. */
#define TM_DW_ACCUMULATE_4(acc0, acc1, acc2, acc3, xv, wv)                   \
    do {                                                                     \
        const int32_t x_even = TM_SXTB16(xv), x_odd = TM_SXTB16_ROR8(xv);   \
        const int32_t w_even = TM_SXTB16(wv), w_odd = TM_SXTB16_ROR8(wv);   \
        acc0 = TM_SMLABB(x_even, w_even, acc0);                              \
        acc1 = TM_SMLABB(x_odd, w_odd, acc1);                                \
        acc2 = TM_SMLATT(x_even, w_even, acc2);                              \
        acc3 = TM_SMLATT(x_odd, w_odd, acc3);                                \
    } while (0)

/*
 * One output pixel at (iy0, ix0) = its window's top-left input position. inside:
 * the whole window is in the image (no checks per tap); otherwise taps outside read
 * the zero point (their term is 0) in the 1..3 tail channels, and are skipped in the
 * word path, which then adds the input offset itself (SADD16) to an unfolded bias.
 */
#if defined(__GNUC__)
__attribute__((noinline)) /* on its own the tap loops keep their values in registers */
#endif
TM_HOT static void depthwise_pixel_dsp(const tm_depthwise_conv_2d_params_t *p, const int8_t *in_n, int32_t iy0,
                                int32_t ix0, int32_t inside, int8_t *out)
{
    const int32_t channels = p->input_c;
    const int32_t c4 = channels & ~3;
    const int32_t tap_dx = p->dilation_w * channels;
    const int32_t tap_dy = p->dilation_h * p->input_w * channels;
    const int8_t pad = (int8_t)(-p->input_offset);
    int32_t ky_begin = 0, ky_end = p->filter_h, kx_begin = 0, kx_end = p->filter_w;
    int32_t c, ky, kx;
    /* The window's taps inside the image: [ky_begin, ky_end) x [kx_begin, kx_end). */
    while (ky_begin < ky_end && iy0 + ky_begin * p->dilation_h < 0) {
        ++ky_begin;
    }
    while (ky_end > ky_begin && iy0 + (ky_end - 1) * p->dilation_h >= p->input_h) {
        --ky_end;
    }
    while (kx_begin < kx_end && ix0 + kx_begin * p->dilation_w < 0) {
        ++kx_begin;
    }
    while (kx_end > kx_begin && ix0 + (kx_end - 1) * p->dilation_w >= p->input_w) {
        --kx_end;
    }
    for (c = 0; c < channels; c += 4) {
        const int8_t *w = p->filter + c;
        int32_t acc0 = p->bias_folded[c];
        int32_t acc1 = 0, acc2 = 0, acc3 = 0;
        if (c < c4) {
            acc1 = p->bias_folded[c + 1];
            acc2 = p->bias_folded[c + 2];
            acc3 = p->bias_folded[c + 3];
        }
        if (c < c4 && inside) {
            const int8_t *row = in_n + ((size_t)iy0 * p->input_w + ix0) * channels + c;
            for (ky = 0; ky < p->filter_h; ++ky, row += tap_dy) {
                const int8_t *x = row;
                for (kx = 0; kx < p->filter_w; ++kx, x += tap_dx, w += channels) {
                    const int32_t xv = tm_read_s8x4(x), wv = tm_read_s8x4(w);
                    TM_DW_ACCUMULATE_4(acc0, acc1, acc2, acc3, xv, wv);
                }
            }
        } else if (c < c4) {
            /* Border pixel: only the taps inside the image, so the bias without the folded
               input offset, and the offset added to the inputs (16-bit lanes, exact: |x + off| <= 255). */
            const int32_t off_pair = (int32_t)(((uint32_t)p->input_offset & 0xffffu) * 0x00010001u);
            acc0 = acc1 = acc2 = acc3 = 0;
            if (p->bias != NULL) {
                acc0 = p->bias[c];
                acc1 = p->bias[c + 1];
                acc2 = p->bias[c + 2];
                acc3 = p->bias[c + 3];
            }
            for (ky = ky_begin; ky < ky_end; ++ky) {
                const int8_t *x = in_n + ((size_t)(iy0 + ky * p->dilation_h) * p->input_w +
                                          (ix0 + kx_begin * p->dilation_w)) * channels + c;
                const int8_t *wk = w + (ky * p->filter_w + kx_begin) * channels;
                for (kx = kx_begin; kx < kx_end; ++kx, x += tap_dx, wk += channels) {
                    const int32_t xv = tm_read_s8x4(x), wv = tm_read_s8x4(wk);
                    const int32_t x_even = TM_SADD16(TM_SXTB16(xv), off_pair);
                    const int32_t x_odd = TM_SADD16(TM_SXTB16_ROR8(xv), off_pair);
                    const int32_t w_even = TM_SXTB16(wv), w_odd = TM_SXTB16_ROR8(wv);
                    acc0 = TM_SMLABB(x_even, w_even, acc0);
                    acc1 = TM_SMLABB(x_odd, w_odd, acc1);
                    acc2 = TM_SMLATT(x_even, w_even, acc2);
                    acc3 = TM_SMLATT(x_odd, w_odd, acc3);
                }
            }
        } else {
            /* The last 1..3 channels, one at a time. */
            int32_t t;
            for (t = c; t < channels; ++t) {
                int32_t acc = p->bias_folded[t];
                const int8_t *wt = p->filter + t;
                for (ky = 0; ky < p->filter_h; ++ky) {
                    const int32_t iy = iy0 + ky * p->dilation_h;
                    for (kx = 0; kx < p->filter_w; ++kx, wt += channels) {
                        const int32_t ix = ix0 + kx * p->dilation_w;
                        int32_t x = pad;
                        if (iy >= 0 && iy < p->input_h && ix >= 0 && ix < p->input_w) {
                            x = in_n[((size_t)iy * p->input_w + ix) * channels + t];
                        }
                        acc += (int32_t)*wt * x;
                    }
                }
                out[t] = tm_requant_s8(acc, &p->requant[t], p->act_min, p->act_max);
            }
            break;
        }
        out[c] = tm_requant_s8(acc0, &p->requant[c], p->act_min, p->act_max);
        out[c + 1] = tm_requant_s8(acc1, &p->requant[c + 1], p->act_min, p->act_max);
        out[c + 2] = tm_requant_s8(acc2, &p->requant[c + 2], p->act_min, p->act_max);
        out[c + 3] = tm_requant_s8(acc3, &p->requant[c + 3], p->act_min, p->act_max);
    }
}

void tm_depthwise_conv_2d_dsp_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t span_h = (p->filter_h - 1) * p->dilation_h;
    const int32_t span_w = (p->filter_w - 1) * p->dilation_w;
    int32_t n, oy, ox;
    for (n = 0; n < p->batches; ++n) {
        const int8_t *in_n = input + (size_t)n * p->input_h * p->input_w * p->input_c;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int32_t rows_inside = iy0 >= 0 && iy0 + span_h < p->input_h;
            for (ox = 0; ox < p->output_w; ++ox, output += p->output_c) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int32_t inside = rows_inside && ix0 >= 0 && ix0 + span_w < p->input_w;
                depthwise_pixel_dsp(p, in_n, iy0, ix0, inside, output);
            }
        }
    }
}

#endif /* TM_DSP_AVAILABLE */
