/*
 * tm_depthwise_conv_2d_generic.c - DEPTHWISE_CONV_2D, the reference algorithm: any filter, stride,
 * dilation, padding and depth multiplier, on any core. For every output element
 * (n, oy, ox, oc = ic * depth_multiplier + m):
 *
 *   acc = [bias[oc]] + sum over ky, kx with (iy, ix) inside the image of
 *             filter[0][ky][kx][oc] * (input[n][iy][ix][ic] + input_offset)
 *   out = clamp(MBQM(acc, multiplier[oc], shift[oc]) + output_offset, act_min, act_max)
 *
 * iy = oy * stride_h - pad_h + ky * dilation_h, ix likewise; taps outside the image are skipped.
 * With requant, MBQM + output_offset is tm_requant (tm_requant_channel_s8, tm_common.h). No scratch.
 */
#include "tm_depthwise_conv_2d_generic.h"

#include <stddef.h>

#include "tm_common.h"

/*
 * Loop order: for each output pixel the valid filter window is computed once,
 * then every output channel accumulates over it, walking the filter with stride
 * output_c and the input with stride input_c.
 */
void tm_depthwise_conv_2d_generic_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t n, oy, ox, ic, m, ky, kx;
    for (n = 0; n < p->batches; ++n) {
        const int8_t *in_n = input + (size_t)n * p->input_h * p->input_w * p->input_c;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            /* First and one-past-last filter rows whose input row is inside the image. */
            int32_t ky_begin = 0, ky_end = p->filter_h;
            while (ky_begin < ky_end && iy0 + ky_begin * p->dilation_h < 0) {
                ++ky_begin;
            }
            while (ky_end > ky_begin && iy0 + (ky_end - 1) * p->dilation_h >= p->input_h) {
                --ky_end;
            }
            for (ox = 0; ox < p->output_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t kx_begin = 0, kx_end = p->filter_w;
                while (kx_begin < kx_end && ix0 + kx_begin * p->dilation_w < 0) {
                    ++kx_begin;
                }
                while (kx_end > kx_begin && ix0 + (kx_end - 1) * p->dilation_w >= p->input_w) {
                    --kx_end;
                }
                for (ic = 0; ic < p->input_c; ++ic) {
                    for (m = 0; m < p->depth_multiplier; ++m) {
                        const int32_t oc = ic * p->depth_multiplier + m;
                        int32_t acc = 0;
                        for (ky = ky_begin; ky < ky_end; ++ky) {
                            const int8_t *x_row =
                                in_n + ((size_t)(iy0 + ky * p->dilation_h) * p->input_w) * p->input_c + ic;
                            const int8_t *w_row = p->filter + (size_t)ky * p->filter_w * p->output_c + oc;
                            for (kx = kx_begin; kx < kx_end; ++kx) {
                                const int32_t x = x_row[(size_t)(ix0 + kx * p->dilation_w) * p->input_c];
                                acc += (int32_t)w_row[(size_t)kx * p->output_c] * (x + p->input_offset);
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
}
