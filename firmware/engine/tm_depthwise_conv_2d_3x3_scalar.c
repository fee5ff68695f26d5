/* tm_depthwise_conv_2d_3x3_scalar.c - 3x3 DEPTHWISE_CONV_2D on cores without SIMD; the arithmetic
   and the plane are in tm_depthwise_conv_2d_3x3_scalar.h. */
#include "tm_depthwise_conv_2d_3x3_scalar.h"

#include <stddef.h>

#include "tm_common.h"
#include "tm_dsp.h"

#if !TM_DSP_AVAILABLE

/* Channel c of image in_n into the plane (tm_depthwise_conv_2d_3x3_scalar.h), zero point around it. */
static void dw3s_plane(const tm_depthwise_conv_2d_params_t *p, const int8_t *in_n, int32_t c, int32_t *plane)
{
    const int32_t rows = TM_DW3_SCALAR_ROWS(p), cols = TM_DW3_SCALAR_COLS(p);
    const int32_t channels = p->input_c;
    const int32_t zero_point = -p->input_offset;
    const int32_t left = tm_min(p->pad_w, cols);
    const int32_t right = tm_min(p->pad_w + p->input_w, cols); /* first column past the image */
    int32_t r, q;
    for (r = 0; r < rows; ++r, plane += cols) {
        const int32_t iy = r - p->pad_h;
        if (iy < 0 || iy >= p->input_h) {
            for (q = 0; q < cols; ++q) {
                plane[q] = zero_point;
            }
            continue;
        }
        {
            const int8_t *src = in_n + ((size_t)iy * p->input_w + (left - p->pad_w)) * channels + c;
            for (q = 0; q < left; ++q) {
                plane[q] = zero_point;
            }
            for (; q < right; ++q, src += channels) {
                plane[q] = *src;
            }
            for (; q < cols; ++q) {
                plane[q] = zero_point;
            }
        }
    }
}

static void depthwise_3x3_scalar(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output,
                                 int32_t *plane)
{
    const int32_t channels = p->output_c, cols = TM_DW3_SCALAR_COLS(p);
    const int32_t sh = p->stride_h, sw = p->stride_w;
    const int32_t lo = p->act_min, hi = p->act_max;
    const int32_t mult = p->depth_multiplier;
    int32_t n, c, oy, ox;
    for (n = 0; n < p->batches; ++n) {
        const int8_t *in_n = input + (size_t)n * p->input_h * p->input_w * p->input_c;
        int8_t *out_n = output + (size_t)n * p->output_h * p->output_w * channels;
        int32_t m = 0, ic = 0; /* output channel c reads input channel ic = c / mult (no division on armv6-m) */
        for (c = 0; c < channels; ++c) {
            const int8_t *f = p->filter + c;
            const int32_t w0 = f[0], w1 = f[channels], w2 = f[2 * channels];
            const int32_t w3 = f[3 * channels], w4 = f[4 * channels], w5 = f[5 * channels];
            const int32_t w6 = f[6 * channels], w7 = f[7 * channels], w8 = f[8 * channels];
            const int32_t bias = p->bias_folded[c];
            const tm_requant_t *q = &p->requant[c];
            int8_t *out = out_n + c;
            if (m == 0) {
                dw3s_plane(p, in_n, ic++, plane);
            }
            m = m + 1 == mult ? 0 : m + 1;
            for (oy = 0; oy < p->output_h; ++oy) {
                const int32_t *x0 = plane + (size_t)oy * sh * cols;
                const int32_t *x1 = x0 + cols;
                const int32_t *x2 = x1 + cols;
                for (ox = 0; ox < p->output_w; ++ox, x0 += sw, x1 += sw, x2 += sw, out += channels) {
                    int32_t acc = bias + x0[0] * w0;
                    acc += x0[1] * w1;
                    acc += x0[2] * w2;
                    acc += x1[0] * w3;
                    acc += x1[1] * w4;
                    acc += x1[2] * w5;
                    acc += x2[0] * w6;
                    acc += x2[1] * w7;
                    acc += x2[2] * w8;
                    *out = tm_requant_s8(acc, q, lo, hi);
                }
            }
        }
    }
}

void tm_depthwise_conv_2d_3x3_scalar_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output,
                                        int8_t *scratch)
{
    depthwise_3x3_scalar(p, input, output, (int32_t *)(void *)scratch);
}

#endif /* !TM_DSP_AVAILABLE */
