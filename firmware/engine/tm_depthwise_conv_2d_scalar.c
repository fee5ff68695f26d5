/*
 * tm_depthwise_conv_2d_scalar.c - DEPTHWISE_CONV_2D on cores without SIMD (RV32IMC, armv6-m; depth
 * multiplier 1, given bias_folded and requant):
 *
 *   acc = bias_folded[c] + sum over ky, kx of filter[0][ky][kx][c] * x   (x = zero point outside the image)
 *   bias_folded[c] = bias[c] + input_offset * sum of channel c's taps   (compile time)
 *   out = clamp(tm_requant(acc, requant[c]), act_min, act_max)
 */
#include "tm_depthwise_conv_2d_scalar.h"

#include <stddef.h>

#include "tm_common.h"
#include "tm_dsp.h"

#if !TM_DSP_AVAILABLE /* no DSP extension: RV32IMC, Cortex-M0 (armv6-m) */

/*
 * Depth multiplier 1 with bias_folded and requant, on cores without SIMD multiply-accumulate:
 * per output pixel, four channels at a time, each tap one byte load of input and filter per
 * channel and a MUL + ADD (about 4.5 instructions a MAC on RV32IM). Taps outside the image
 * read the zero point (x + input_offset = 0, as the folded bias assumes).
 */
void tm_depthwise_conv_2d_scalar_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t channels = p->input_c;
    const int32_t c4 = channels & ~3;
    const int32_t tap_dx = p->dilation_w * channels;
    const int32_t tap_dy = p->dilation_h * p->input_w * channels;
    const int32_t pad = -p->input_offset;
    /* Read once: the int8 output stores may alias *p as far as C knows. */
    const tm_requant_t *const requant = p->requant;
    const int32_t act_min = p->act_min, act_max = p->act_max;
    int32_t n, oy, ox, c, ky, kx;
    for (n = 0; n < p->batches; ++n) {
        const int8_t *in_n = input + (size_t)n * p->input_h * p->input_w * channels;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->output_w; ++ox, output += channels) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int32_t inside = iy0 >= 0 && iy0 + (p->filter_h - 1) * p->dilation_h < p->input_h &&
                                       ix0 >= 0 && ix0 + (p->filter_w - 1) * p->dilation_w < p->input_w;
                const int8_t *corner = in_n + ((size_t)iy0 * p->input_w + ix0) * channels;
                for (c = 0; c < c4; c += 4) {
                    const int8_t *w = p->filter + c;
                    int32_t a0 = p->bias_folded[c], a1 = p->bias_folded[c + 1];
                    int32_t a2 = p->bias_folded[c + 2], a3 = p->bias_folded[c + 3];
                    const int8_t *row = corner + c;
                    if (inside) { /* no checks per tap */
                        for (ky = 0; ky < p->filter_h; ++ky, row += tap_dy) {
                            const int8_t *x = row;
                            for (kx = 0; kx < p->filter_w; ++kx, x += tap_dx, w += channels) {
                                a0 += (int32_t)x[0] * w[0];
                                a1 += (int32_t)x[1] * w[1];
                                a2 += (int32_t)x[2] * w[2];
                                a3 += (int32_t)x[3] * w[3];
                            }
                        }
                    }
                    for (ky = 0; !inside && ky < p->filter_h; ++ky, row += tap_dy) {
                        const int32_t iy = iy0 + ky * p->dilation_h;
                        const int8_t *x = row;
                        for (kx = 0; kx < p->filter_w; ++kx, x += tap_dx, w += channels) {
                            if (iy >= 0 && iy < p->input_h && ix0 + kx * p->dilation_w >= 0 &&
                                ix0 + kx * p->dilation_w < p->input_w) {
                                a0 += (int32_t)x[0] * w[0];
                                a1 += (int32_t)x[1] * w[1];
                                a2 += (int32_t)x[2] * w[2];
                                a3 += (int32_t)x[3] * w[3];
                            } else {
                                a0 += pad * w[0];
                                a1 += pad * w[1];
                                a2 += pad * w[2];
                                a3 += pad * w[3];
                            }
                        }
                    }
                    output[c] = tm_requant_s8(a0, &requant[c], act_min, act_max);
                    output[c + 1] = tm_requant_s8(a1, &requant[c + 1], act_min, act_max);
                    output[c + 2] = tm_requant_s8(a2, &requant[c + 2], act_min, act_max);
                    output[c + 3] = tm_requant_s8(a3, &requant[c + 3], act_min, act_max);
                }
                for (; c < channels; ++c) {
                    const int8_t *w = p->filter + c;
                    int32_t a = p->bias_folded[c];
                    for (ky = 0; ky < p->filter_h; ++ky) {
                        const int32_t iy = iy0 + ky * p->dilation_h;
                        for (kx = 0; kx < p->filter_w; ++kx, w += channels) {
                            const int32_t ix = ix0 + kx * p->dilation_w;
                            const int32_t x = iy >= 0 && iy < p->input_h && ix >= 0 && ix < p->input_w
                                                  ? in_n[((size_t)iy * p->input_w + ix) * channels + c]
                                                  : pad;
                            a += x * *w;
                        }
                    }
                    output[c] = tm_requant_s8(a, &requant[c], act_min, act_max);
                }
            }
        }
    }
}

#endif /* !TM_DSP_AVAILABLE */
