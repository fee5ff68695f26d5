/*
 * tm_conv_2d_im2col.c - CONV_2D by im2col (groups 1, given bias_folded and requant):
 *
 *   acc = bias_folded[oc] + sum over all k = filter_h * filter_w * filter_c taps of filter * x
 *   bias_folded[oc] = bias[oc] + input_offset * sum(filter[oc])   (compile time)
 *   out = clamp(tm_requant(acc, requant[oc]), act_min, act_max)
 *
 * where padded taps read x = input_zero_point (so filter * (x + input_offset) = 0 and the
 * sum equals the generic one). The patches of two output pixels are gathered into the scratch
 * buffer (tm_conv_2d_im2col_get_buffer_size: whole filter rows copied at once, padding rows
 * filled); a 1x1 filter without padding reads its patches straight from the input. Each pair
 * of patches then runs tm_s8_dot_rows_2x2 (tm_support_dot_s8.h: SXTB16 + SMLAD on DSP cores,
 * the scalar 2 x 2 block elsewhere) against every filter row.
 */
#include "tm_conv_2d_im2col.h"

#include <stddef.h>
#include <string.h>

#include "tm_common.h"
#include "tm_dsp.h"
#include "tm_support_dot_s8.h"

/* n int8 from src to dst, four at a time (no library call for the few bytes of a filter row). */
static void copy_s8(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const int32_t v = tm_read_s8x4(src + i);
        memcpy(dst + i, &v, sizeof v);
    }
    for (; i < n; ++i) {
        dst[i] = src[i];
    }
}

static void fill_s8(int8_t *dst, int8_t value, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        dst[i] = value;
    }
}

/*
 * Gathers the k = filter_h * filter_w * input_c patch of output pixel (oy, ox); pads with
 * the zero point. Without dilation a filter row inside the image is filter_w * input_c
 * contiguous input bytes: one copy per row, not one per tap.
 */
static void im2col(const tm_conv_2d_params_t *p, const int8_t *in_n, int32_t oy, int32_t ox, int8_t *patch)
{
    const int8_t pad_value = (int8_t)(-p->input_offset);
    const int32_t c = p->input_c;
    const int32_t row_bytes = p->filter_w * c;
    const int32_t iy0 = oy * p->stride_h - p->pad_h;
    const int32_t ix0 = ox * p->stride_w - p->pad_w;
    const int32_t whole_row =
        p->dilation_w == 1 && ix0 >= 0 && ix0 + p->filter_w <= p->input_w;
    int32_t ky, kx;
    for (ky = 0; ky < p->filter_h; ++ky, patch += row_bytes) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        const int8_t *in_row;
        if (iy < 0 || iy >= p->input_h) {
            fill_s8(patch, pad_value, row_bytes);
            continue;
        }
        in_row = in_n + (size_t)iy * p->input_w * c;
        if (whole_row) {
            copy_s8(patch, in_row + (size_t)ix0 * c, row_bytes);
        } else {
            for (kx = 0; kx < p->filter_w; ++kx) {
                const int32_t ix = ix0 + kx * p->dilation_w;
                if (ix < 0 || ix >= p->input_w) {
                    fill_s8(patch + kx * c, pad_value, c);
                } else {
                    copy_s8(patch + kx * c, in_row + (size_t)ix * c, c);
                }
            }
        }
    }
}

void tm_conv_2d_im2col_s8(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
    const int32_t k = p->filter_h * p->filter_w * p->input_c;
    const int32_t pixels = p->output_h * p->output_w;
    const int32_t direct = tm_conv_2d_im2col_get_buffer_size(p) == 0;
    int32_t n, pixel;
    for (n = 0; n < p->batches; ++n) {
        const int8_t *in_n = input + (size_t)n * p->input_h * p->input_w * p->input_c;
        int8_t *out_n = output + (size_t)n * pixels * p->output_c;
        int32_t oy = 0, ox = 0; /* of `pixel`, stepped without divisions */
        for (pixel = 0; pixel < pixels; pixel += 2) {
            const int32_t two = pixel + 1 < pixels;
            int32_t oy1 = oy, ox1 = ox + 1;
            const int8_t *row0;
            const int8_t *row1 = NULL;
            if (ox1 == p->output_w) {
                ox1 = 0;
                ++oy1;
            }
            if (direct) {
                row0 = in_n + ((size_t)oy * p->stride_h * p->input_w + (size_t)ox * p->stride_w) * p->input_c;
                if (two) {
                    row1 = in_n + ((size_t)oy1 * p->stride_h * p->input_w + (size_t)ox1 * p->stride_w) * p->input_c;
                }
            } else {
                im2col(p, in_n, oy, ox, scratch);
                row0 = scratch;
                if (two) {
                    im2col(p, in_n, oy1, ox1, scratch + k);
                    row1 = scratch + k;
                }
            }
            tm_s8_dot_rows_2x2(row0, row1, p->filter, k, p->output_c, p->bias_folded, p->requant, 1, p->act_min,
                               p->act_max, out_n + (size_t)pixel * p->output_c,
                               out_n + (size_t)(pixel + 1) * p->output_c);
            ox = ox1 + 1;
            oy = oy1;
            if (ox == p->output_w) {
                ox = 0;
                ++oy;
            }
        }
    }
}
