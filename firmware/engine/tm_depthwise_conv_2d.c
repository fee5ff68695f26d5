/* tm_depthwise_conv_2d.c - DEPTHWISE_CONV_2D int8; the arithmetic is in tm_depthwise_conv_2d.h. */
#include "tm_depthwise_conv_2d.h"

#include <stddef.h>

#include "tm_common.h"
#include "tm_dsp.h"

/*
 * Loop order: for each output pixel the valid filter window is computed once,
 * then every output channel accumulates over it, walking the filter with stride
 * output_c and the input with stride input_c.
 */
static void depthwise_generic(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output)
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

/*
 * 3x3 filter, dilation 1, channels a multiple of 4, an output pixel whose window lies
 * inside the image: the nine taps unrolled, so the four accumulators and the input and
 * filter pointers stay in registers (on its own, not inlined, for the register allocator).
 * x: the window's top-left input byte (channel 0); row: bytes per input row.
 */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
TM_HOT static void dw3x3_inside_pixel(const int8_t *x, const int8_t *w, const int32_t *bias, const tm_requant_t *q,
                               int8_t *out, int32_t ch, int32_t row, int32_t act_min, int32_t act_max)
{
    const int8_t *const out_end = out + ch;
    const int32_t ch2 = 2 * ch;
    for (; out < out_end; x += 4, w += 4, bias += 4, q += 4, out += 4) {
        int32_t acc0 = bias[0], acc1 = bias[1], acc2 = bias[2], acc3 = bias[3];
        const int8_t *xr = x;
        const int8_t *wr = w;
        int32_t xv, wv;
        /* Tap (ky, kx): input xr + kx*ch, filter wr + kx*ch; both step a row at a time. */
#define TM_DW3_ROW()                                                       \
        xv = tm_read_s8x4(xr);                                             \
        wv = tm_read_s8x4(wr);                                             \
        TM_DW_ACCUMULATE_4(acc0, acc1, acc2, acc3, xv, wv);                \
        xv = tm_read_s8x4(xr + ch);                                        \
        wv = tm_read_s8x4(wr + ch);                                        \
        TM_DW_ACCUMULATE_4(acc0, acc1, acc2, acc3, xv, wv);                \
        xv = tm_read_s8x4(xr + ch2);                                       \
        wv = tm_read_s8x4(wr + ch2);                                       \
        TM_DW_ACCUMULATE_4(acc0, acc1, acc2, acc3, xv, wv)
        TM_DW3_ROW();
        xr += row;
        wr += ch2 + ch;
        TM_DW3_ROW();
        xr += row;
        wr += ch2 + ch;
        TM_DW3_ROW();
#undef TM_DW3_ROW
        out[0] = tm_requant_s8(acc0, &q[0], act_min, act_max);
        out[1] = tm_requant_s8(acc1, &q[1], act_min, act_max);
        out[2] = tm_requant_s8(acc2, &q[2], act_min, act_max);
        out[3] = tm_requant_s8(acc3, &q[3], act_min, act_max);
    }
}

/* 3x3, dilation 1, channels % 4 == 0: interior pixels as above, border pixels as depthwise_pixel_dsp. */
static void depthwise_3x3_dsp(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t ch = p->input_c;
    const int32_t row = p->input_w * ch;
    int32_t n, oy, ox;
    for (n = 0; n < p->batches; ++n) {
        const int8_t *in_n = input + (size_t)n * p->input_h * row;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int32_t rows_inside = iy0 >= 0 && iy0 + 2 < p->input_h;
            for (ox = 0; ox < p->output_w; ++ox, output += ch) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                if (rows_inside && ix0 >= 0 && ix0 + 2 < p->input_w) {
                    dw3x3_inside_pixel(in_n + (size_t)iy0 * row + (size_t)ix0 * ch, p->filter, p->bias_folded,
                                       p->requant, output, ch, row, p->act_min, p->act_max);
                } else {
                    depthwise_pixel_dsp(p, in_n, iy0, ix0, 0, output);
                }
            }
        }
    }
}

static void depthwise_dsp(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output)
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

void tm_depthwise_conv_2d_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output)
{
#if TM_DSP_AVAILABLE
    if (p->depth_multiplier == 1 && p->bias_folded != NULL && p->requant != NULL) {
        if (p->filter_h == 3 && p->filter_w == 3 && p->dilation_h == 1 && p->dilation_w == 1 &&
            (p->input_c & 3) == 0) {
            depthwise_3x3_dsp(p, input, output);
            return;
        }
        depthwise_dsp(p, input, output);
        return;
    }
#endif
    depthwise_generic(p, input, output);
}
