/* tm_depthwise_conv_2d.c - DEPTHWISE_CONV_2D int8; the arithmetic is in tm_depthwise_conv_2d.h. */
#include "tm_depthwise_conv_2d.h"

#include <stddef.h>
#include <string.h>

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
 * 3x3 filter, dilation 1, channels a multiple of 4, activation range all of int8: one output
 * pixel. x0, x1, x2: its three window rows in the group-planar ring (tm_depthwise_conv_2d.h:
 * for four channels, three consecutive words per row, the next four channels gstride bytes on);
 * w: the packed filter (per four channels 9 widened tap pairs, 4 folded biases, 4 requant records).
 * The taps are unrolled with immediate offsets, so pointers and accumulators stay in registers.
 */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
TM_HOT static void dw3x3_pixel(const int8_t *x0, const int8_t *x1, const int8_t *x2, const int32_t *w,
                               int8_t *out, int32_t ch, int32_t gstride)
{
    const int8_t *const out_end = out + ch;
    for (; out < out_end; x0 += gstride, x1 += gstride, x2 += gstride, w += TM_DW3_PACKED_GROUP, out += 4) {
        int32_t acc0 = w[18], acc1 = w[19], acc2 = w[20], acc3 = w[21];
        int32_t xv, x_even, x_odd, w_even, w_odd;
        /* Tap t: input word at xp, filter taps widened at compile time: (c, c+2) and (c+1, c+3). */
#define TM_DW3_TAP(xp, t)                                                  \
        xv = tm_read_s8x4(xp);                                             \
        x_even = TM_SXTB16(xv);                                            \
        x_odd = TM_SXTB16_ROR8(xv);                                        \
        w_even = w[2 * (t)];                                               \
        w_odd = w[2 * (t) + 1];                                            \
        acc0 = TM_SMLABB(x_even, w_even, acc0);                            \
        acc1 = TM_SMLABB(x_odd, w_odd, acc1);                              \
        acc2 = TM_SMLATT(x_even, w_even, acc2);                            \
        acc3 = TM_SMLATT(x_odd, w_odd, acc3)
        TM_DW3_TAP(x0, 0);
        TM_DW3_TAP(x0 + 4, 1);
        TM_DW3_TAP(x0 + 8, 2);
        TM_DW3_TAP(x1, 3);
        TM_DW3_TAP(x1 + 4, 4);
        TM_DW3_TAP(x1 + 8, 5);
        TM_DW3_TAP(x2, 6);
        TM_DW3_TAP(x2 + 4, 7);
        TM_DW3_TAP(x2 + 8, 8);
#undef TM_DW3_TAP
#define TM_DW3_OUT(j, acc)                                                                              \
        out[j] = (int8_t)tm_requant_rec((acc), w[22 + 3 * (j)], w[23 + 3 * (j)], w[24 + 3 * (j)])
        TM_DW3_OUT(0, acc0);
        TM_DW3_OUT(1, acc1);
        TM_DW3_OUT(2, acc2);
        TM_DW3_OUT(3, acc3);
#undef TM_DW3_OUT
    }
}

/*
 * 3x3, dilation 1, channels % 4 == 0, full int8 activation range, with scratch and the packed
 * filter (tm_depthwise_conv_2d.h): three padded input rows in a group-planar ring (slot iy mod 3,
 * each input row copied once; rows outside the image and columns outside it hold zero points),
 * then every output pixel is an unrolled nine-tap window with no bounds checks.
 */
static void depthwise_3x3_dsp(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output,
                              int8_t *scratch)
{
    const int32_t ch = p->input_c;
    const int32_t row = p->input_w * ch;
    const int32_t cols = TM_DW3_PADDED_W(p);
    const int32_t gstride = 4 * cols;
    const int32_t slot_bytes = cols * ch;
    const int32_t step = 4 * p->stride_w;
    const int32_t pad4 = (int32_t)(((uint32_t)(-p->input_offset) & 0xffu) * 0x01010101u);
    int32_t n, oy, ox, r, col, g;
    for (n = 0; n < p->batches; ++n) {
        const int8_t *in_n = input + (size_t)n * p->input_h * row;
        int32_t held[3] = {INT32_MIN, INT32_MIN, INT32_MIN}; /* input row in each slot */
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int8_t *x[3];
            for (r = 0; r < 3; ++r) {
                const int32_t iy = iy0 + r;
                const int32_t slot = ((iy % 3) + 3) % 3;
                int8_t *buf = scratch + slot * slot_bytes;
                if (held[slot] != iy) {
                    const int32_t inside = iy >= 0 && iy < p->input_h;
                    held[slot] = iy;
                    for (col = 0; col < cols; ++col) {
                        const int32_t ix = col - p->pad_w;
                        int8_t *dst = buf + 4 * col;
                        if (inside && ix >= 0 && ix < p->input_w) {
                            const int8_t *src = in_n + (size_t)iy * row + (size_t)ix * ch;
                            for (g = 0; g < ch; g += 4, dst += gstride) {
                                const int32_t v = tm_read_s8x4(src + g);
                                memcpy(dst, &v, sizeof v);
                            }
                        } else {
                            for (g = 0; g < ch; g += 4, dst += gstride) {
                                memcpy(dst, &pad4, sizeof pad4);
                            }
                        }
                    }
                }
                x[r] = buf;
            }
            for (ox = 0; ox < p->output_w; ++ox, output += ch) {
                dw3x3_pixel(x[0], x[1], x[2], p->packed, output, ch, gstride);
                x[0] += step;
                x[1] += step;
                x[2] += step;
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

void tm_depthwise_conv_2d_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output,
                             int8_t *scratch)
{
#if TM_DSP_AVAILABLE
    if (p->depth_multiplier == 1 && p->bias_folded != NULL && p->requant != NULL) {
        if (scratch != NULL && p->packed != NULL && TM_DEPTHWISE_CONV_2D_SCRATCH_BYTES(p) > 0) {
            depthwise_3x3_dsp(p, input, output, scratch);
            return;
        }
        depthwise_dsp(p, input, output);
        return;
    }
#endif
    (void)scratch;
    depthwise_generic(p, input, output);
}
