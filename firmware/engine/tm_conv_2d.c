/* tm_conv_2d.c - CONV_2D int8; the arithmetic is in tm_conv_2d.h. */
#include "tm_conv_2d.h"

#include <stddef.h>
#include <string.h>

#include "tm_common.h"

static void conv_generic(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output)
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

#if TM_DSP_AVAILABLE

/* The 2x2 inner loop in Thumb-2 assembly on a real DSP core with an optimising gcc/clang
   (it needs 14 free registers, which -O0's frame pointer does not leave). */
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__GNUC__) && defined(__OPTIMIZE__) && \
    !defined(TM_DSP_EMULATE)
#define TM_CONV_2D_ASM 1
#else
#define TM_CONV_2D_ASM 0
#endif

/* Dot products of one or two patches (row0, row1) with `channels` filter rows of length k. */
void tm_s8_dot_rows_2x2(const int8_t *row0, const int8_t *row1, const int8_t *filter, int32_t k,
                        int32_t channels, const int32_t *bias_folded, const tm_requant_t *requant,
                        int32_t per_channel, int32_t act_min, int32_t act_max, int8_t *out0, int8_t *out1)
{
    const int32_t k4 = k & ~3;
    const int8_t *b = row1 != NULL ? row1 : row0; /* one row: compute it twice, store once */
    int32_t oc = 0;
    for (; oc + 1 < channels; oc += 2) {
        const int8_t *w0 = filter + (size_t)oc * k;
        const int8_t *w1 = w0 + k;
        const tm_requant_t *q0 = &requant[per_channel ? oc : 0];
        const tm_requant_t *q1 = &requant[per_channel ? oc + 1 : 0];
        int32_t acc00 = bias_folded[oc], acc01 = bias_folded[oc + 1];
        int32_t acc10 = acc00, acc11 = acc01;
        int32_t i = 0;
#if TM_CONV_2D_ASM
        if (b == row0 + k && k4 > 0) {
            /* The second patch and the second filter row both start k bytes after the first:
               with pa / pw on them, the first ones are at [pa - k] / [pw - k], and the loop is
               4 LDR + 8 SXTB16 + 8 SMLAD + CMP + BNE per 16 MACs with every accumulator in a
               register. Same arithmetic as the C loop below (and the C99 path). */
            const int8_t *pa = row0 + k;
            const int8_t *pw = w1;
            const int8_t *const pa_end = pa + k4;
            const int32_t neg_k = -k;
            int32_t a, bq, w, ae, be, we;
            __asm__ volatile(
                "1:\n\t"
                "ldr %[a], [%[pa], %[nk]]\n\t"
                "ldr %[bq], [%[pa]], #4\n\t"
                "ldr %[w], [%[pw], %[nk]]\n\t"
                "sxtb16 %[ae], %[a]\n\t"
                "sxtb16 %[a], %[a], ror #8\n\t"
                "sxtb16 %[be], %[bq]\n\t"
                "sxtb16 %[bq], %[bq], ror #8\n\t"
                "sxtb16 %[we], %[w]\n\t"
                "sxtb16 %[w], %[w], ror #8\n\t"
                "smlad %[c00], %[ae], %[we], %[c00]\n\t"
                "smlad %[c00], %[a], %[w], %[c00]\n\t"
                "smlad %[c10], %[be], %[we], %[c10]\n\t"
                "smlad %[c10], %[bq], %[w], %[c10]\n\t"
                "ldr %[w], [%[pw]], #4\n\t"
                "sxtb16 %[we], %[w]\n\t"
                "sxtb16 %[w], %[w], ror #8\n\t"
                "smlad %[c01], %[ae], %[we], %[c01]\n\t"
                "smlad %[c01], %[a], %[w], %[c01]\n\t"
                "smlad %[c11], %[be], %[we], %[c11]\n\t"
                "smlad %[c11], %[bq], %[w], %[c11]\n\t"
                "cmp %[pa], %[end]\n\t"
                "bne 1b\n\t"
                : [c00] "+r"(acc00), [c01] "+r"(acc01), [c10] "+r"(acc10), [c11] "+r"(acc11), [pa] "+r"(pa),
                  [pw] "+r"(pw), [a] "=&r"(a), [bq] "=&r"(bq), [w] "=&r"(w), [ae] "=&r"(ae), [be] "=&r"(be),
                  [we] "=&r"(we)
                : [nk] "r"(neg_k), [end] "r"(pa_end)
                : "cc", "memory");
            i = k4;
        }
#endif
        for (; i < k4; i += 4) {
            const int32_t av = tm_read_s8x4(row0 + i), bv = tm_read_s8x4(b + i);
            const int32_t w0v = tm_read_s8x4(w0 + i), w1v = tm_read_s8x4(w1 + i);
            const int32_t a_even = TM_SXTB16(av), a_odd = TM_SXTB16_ROR8(av);
            const int32_t b_even = TM_SXTB16(bv), b_odd = TM_SXTB16_ROR8(bv);
            const int32_t w0_even = TM_SXTB16(w0v), w0_odd = TM_SXTB16_ROR8(w0v);
            const int32_t w1_even = TM_SXTB16(w1v), w1_odd = TM_SXTB16_ROR8(w1v);
            acc00 = TM_SMLAD(a_even, w0_even, acc00);
            acc00 = TM_SMLAD(a_odd, w0_odd, acc00);
            acc01 = TM_SMLAD(a_even, w1_even, acc01);
            acc01 = TM_SMLAD(a_odd, w1_odd, acc01);
            acc10 = TM_SMLAD(b_even, w0_even, acc10);
            acc10 = TM_SMLAD(b_odd, w0_odd, acc10);
            acc11 = TM_SMLAD(b_even, w1_even, acc11);
            acc11 = TM_SMLAD(b_odd, w1_odd, acc11);
        }
        for (; i < k; ++i) {
            acc00 += (int32_t)row0[i] * w0[i];
            acc01 += (int32_t)row0[i] * w1[i];
            acc10 += (int32_t)b[i] * w0[i];
            acc11 += (int32_t)b[i] * w1[i];
        }
        out0[oc] = tm_requant_s8(acc00, q0, act_min, act_max);
        out0[oc + 1] = tm_requant_s8(acc01, q1, act_min, act_max);
        if (row1 != NULL) {
            out1[oc] = tm_requant_s8(acc10, q0, act_min, act_max);
            out1[oc + 1] = tm_requant_s8(acc11, q1, act_min, act_max);
        }
    }
    if (oc < channels) {
        const int8_t *w0 = filter + (size_t)oc * k;
        const tm_requant_t *q0 = &requant[per_channel ? oc : 0];
        int32_t acc0 = bias_folded[oc], acc1 = bias_folded[oc];
        int32_t i;
        for (i = 0; i < k4; i += 4) {
            const int32_t wv = tm_read_s8x4(w0 + i);
            const int32_t w_even = TM_SXTB16(wv), w_odd = TM_SXTB16_ROR8(wv);
            const int32_t av = tm_read_s8x4(row0 + i), bv = tm_read_s8x4(b + i);
            acc0 = TM_SMLAD(TM_SXTB16(av), w_even, acc0);
            acc0 = TM_SMLAD(TM_SXTB16_ROR8(av), w_odd, acc0);
            acc1 = TM_SMLAD(TM_SXTB16(bv), w_even, acc1);
            acc1 = TM_SMLAD(TM_SXTB16_ROR8(bv), w_odd, acc1);
        }
        for (; i < k; ++i) {
            acc0 += (int32_t)row0[i] * w0[i];
            acc1 += (int32_t)b[i] * w0[i];
        }
        out0[oc] = tm_requant_s8(acc0, q0, act_min, act_max);
        if (row1 != NULL) {
            out1[oc] = tm_requant_s8(acc1, q0, act_min, act_max);
        }
    }
}

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

static void conv_dsp(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
    const int32_t k = p->filter_h * p->filter_w * p->input_c;
    const int32_t pixels = p->output_h * p->output_w;
    const int32_t direct = TM_CONV_2D_SCRATCH_BYTES(p) == 0;
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

#endif /* TM_DSP_AVAILABLE */

void tm_conv_2d_s8(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
#if TM_DSP_AVAILABLE
    if (p->bias_folded != NULL && p->requant != NULL && p->filter_c == p->input_c &&
        (scratch != NULL || TM_CONV_2D_SCRATCH_BYTES(p) == 0)) {
        conv_dsp(p, input, output, scratch);
        return;
    }
#endif
    (void)scratch;
    conv_generic(p, input, output);
}
