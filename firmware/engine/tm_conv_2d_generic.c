/*
 * tm_conv_2d_generic.c - CONV_2D, the reference algorithm: any stride, dilation, padding,
 * groups and quantization, on any core. For every output element (n, oy, ox, oc), with
 * g = oc / (output_c / groups):
 *
 *   acc = [bias[oc]] + sum over ky, kx, c < filter_c with (iy, ix) inside the image of
 *             filter[oc][ky][kx][c] * (input[n][iy][ix][g * filter_c + c] + input_offset)
 *   out = clamp(MBQM(acc, multiplier[oc], shift[oc]) + output_offset, act_min, act_max)
 *
 * iy = oy * stride_h - pad_h + ky * dilation_h, ix likewise; taps outside the image are
 * skipped (TFLite-Micro's reference kernel). With requant, MBQM + output_offset is tm_requant
 * (tm_requant_channel_s8, tm_common.h). No scratch.
 */
#include "tm_conv_2d_generic.h"

#include <stddef.h>

#include "tm_common.h"

void tm_conv_2d_generic_s8(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t groups = p->input_c / p->filter_c;
    const int32_t channels_per_group = p->output_c / groups;
    const int32_t filter_row = p->filter_h * p->filter_w * p->filter_c;
    int32_t n, oy, ox, oc, ky, kx, c;
    for (n = 0; n < p->batches; ++n) {
        const int8_t *in_n = input + (size_t)n * p->input_h * p->input_w * p->input_c;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->output_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                for (oc = 0; oc < p->output_c; ++oc) {
                    const int8_t *w = p->filter + (size_t)oc * filter_row;
                    const int32_t c0 = (oc / channels_per_group) * p->filter_c;
                    int32_t acc = 0;
                    for (ky = 0; ky < p->filter_h; ++ky) {
                        const int32_t iy = iy0 + ky * p->dilation_h;
                        if (iy < 0 || iy >= p->input_h) {
                            continue;
                        }
                        for (kx = 0; kx < p->filter_w; ++kx) {
                            const int32_t ix = ix0 + kx * p->dilation_w;
                            const int8_t *x;
                            const int8_t *wk;
                            if (ix < 0 || ix >= p->input_w) {
                                continue;
                            }
                            x = in_n + ((size_t)iy * p->input_w + ix) * p->input_c + c0;
                            wk = w + (ky * p->filter_w + kx) * p->filter_c;
                            for (c = 0; c < p->filter_c; ++c) {
                                acc += (int32_t)wk[c] * ((int32_t)x[c] + p->input_offset);
                            }
                        }
                    }
                    if (p->bias != NULL) {
                        acc += p->bias[oc];
                    }
                    *output++ = tm_requant_channel_s8(acc, p->requant, p->multiplier, p->shift, oc,
                                                      p->output_offset, p->act_min, p->act_max);
                }
            }
        }
    }
}
