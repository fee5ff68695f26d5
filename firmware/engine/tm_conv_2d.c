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

/* The Thumb-2 assembly kernels on a real DSP core with an optimising gcc/clang (the int8
   2x2 inline-assembly loop needs 14 free registers, which -O0's frame pointer does not leave;
   -O0 builds take the C twins). */
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
    const int8_t *b = row1 != NULL ? row1 : row0; /* one row: its words loop alone, its tail twice */
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
        for (; row1 == NULL && i < k4; i += 4) { /* one row (a batch-1 FULLY_CONNECTED): no second patch */
            const int32_t av = tm_read_s8x4(row0 + i);
            const int32_t w0v = tm_read_s8x4(w0 + i), w1v = tm_read_s8x4(w1 + i);
            const int32_t a_even = TM_SXTB16(av), a_odd = TM_SXTB16_ROR8(av);
            acc00 = TM_SMLAD(a_even, TM_SXTB16(w0v), acc00);
            acc00 = TM_SMLAD(a_odd, TM_SXTB16_ROR8(w0v), acc00);
            acc01 = TM_SMLAD(a_even, TM_SXTB16(w1v), acc01);
            acc01 = TM_SMLAD(a_odd, TM_SXTB16_ROR8(w1v), acc01);
        }
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

#else /* no DSP extension: RV32IMC, Cortex-M0 (armv6-m) */

/*
 * Dot products of one or two patches (row0, row1) with `channels` filter rows of length k,
 * for cores without SIMD multiply-accumulate: 2 patches x 2 channels per pass, four taps
 * unrolled, so each loaded byte serves two multiplies (8 loads, 16 MUL + ADD per 16 MACs on
 * RV32IM: about 3 instructions a MAC). The same int32 sums as the DSP path.
 */
#if defined(__ARM_ARCH_6M__) && defined(__GNUC__) && defined(__OPTIMIZE__)
/*
 * Thumb-1 (armv6-m: LDRSB only with a register offset, MULS only on r0-r7): one tap index i for
 * the four rows, the accumulators in r8-r11 (ADD reaches the high registers), per tap 4 LDRSB,
 * 1 MOV, 4 MULS + 4 ADD and the index step: 15 instructions per 4 MACs with CMP + BNE.
 * Arguments: r0 a, r1 b, r2 w0, r3 w1; stack: k (> 0), acc[4] (in and out).
 */
#define TM_ARG __attribute__((unused)) /* read by the assembly, per the AAPCS */
__attribute__((naked, noinline)) static void dot_rows_scalar_pair(TM_ARG const int8_t *a, TM_ARG const int8_t *b,
                                                                  TM_ARG const int8_t *w0, TM_ARG const int8_t *w1,
                                                                  TM_ARG int32_t k, TM_ARG int32_t *acc)
{
    __asm__ volatile(
        ".syntax unified\n\t"
        "push {r4-r7, lr}\n\t"
        "mov r4, r8\n\t"
        "mov r5, r9\n\t"
        "mov r6, r10\n\t"
        "mov r7, r11\n\t"
        "push {r4-r7}\n\t"
        "ldr r4, [sp, #40]\n\t"       /* acc: 36 bytes pushed, then k, acc */
        "ldr r5, [r4, #0]\n\t"
        "mov r8, r5\n\t"
        "ldr r5, [r4, #4]\n\t"
        "mov r9, r5\n\t"
        "ldr r5, [r4, #8]\n\t"
        "mov r10, r5\n\t"
        "ldr r5, [r4, #12]\n\t"
        "mov r11, r5\n\t"
        "ldr r4, [sp, #36]\n\t"       /* k */
        "mov r12, r4\n\t"
        "movs r4, #0\n\t"             /* i */
        "1:\n\t"
        "ldrsb r5, [r0, r4]\n\t"      /* a[i] */
        "ldrsb r6, [r2, r4]\n\t"      /* w0[i] */
        "mov r7, r5\n\t"
        "muls r7, r6\n\t"
        "add r8, r7\n\t"              /* acc00 += a * w0 */
        "ldrsb r7, [r1, r4]\n\t"      /* b[i] */
        "muls r6, r7\n\t"
        "add r10, r6\n\t"             /* acc10 += b * w0 */
        "ldrsb r6, [r3, r4]\n\t"      /* w1[i] */
        "muls r7, r6\n\t"
        "add r11, r7\n\t"             /* acc11 += b * w1 */
        "muls r5, r6\n\t"
        "add r9, r5\n\t"              /* acc01 += a * w1 */
        "adds r4, #1\n\t"
        "cmp r4, r12\n\t"
        "bne 1b\n\t"
        "ldr r4, [sp, #40]\n\t"
        "mov r5, r8\n\t"
        "str r5, [r4, #0]\n\t"
        "mov r5, r9\n\t"
        "str r5, [r4, #4]\n\t"
        "mov r5, r10\n\t"
        "str r5, [r4, #8]\n\t"
        "mov r5, r11\n\t"
        "str r5, [r4, #12]\n\t"
        "pop {r4-r7}\n\t"
        "mov r8, r4\n\t"
        "mov r9, r5\n\t"
        "mov r10, r6\n\t"
        "mov r11, r7\n\t"
        "pop {r4-r7, pc}\n\t"
        ".syntax divided\n\t");
}
#undef TM_ARG
#else
static inline void dot_rows_scalar_pair(const int8_t *a, const int8_t *b, const int8_t *w0, const int8_t *w1,
                                        int32_t k, int32_t *acc)
{
    int32_t c00 = acc[0], c01 = acc[1], c10 = acc[2], c11 = acc[3];
    const int8_t *const a_end = a + (k & ~3);
    for (; a != a_end; a += 4, b += 4, w0 += 4, w1 += 4) {
        int32_t x = a[0], y = b[0], u = w0[0], v = w1[0];
        c00 += x * u; c01 += x * v; c10 += y * u; c11 += y * v;
        x = a[1]; y = b[1]; u = w0[1]; v = w1[1];
        c00 += x * u; c01 += x * v; c10 += y * u; c11 += y * v;
        x = a[2]; y = b[2]; u = w0[2]; v = w1[2];
        c00 += x * u; c01 += x * v; c10 += y * u; c11 += y * v;
        x = a[3]; y = b[3]; u = w0[3]; v = w1[3];
        c00 += x * u; c01 += x * v; c10 += y * u; c11 += y * v;
    }
    for (k &= 3; k > 0; --k, ++a, ++b, ++w0, ++w1) {
        const int32_t x = *a, y = *b, u = *w0, v = *w1;
        c00 += x * u; c01 += x * v; c10 += y * u; c11 += y * v;
    }
    acc[0] = c00;
    acc[1] = c01;
    acc[2] = c10;
    acc[3] = c11;
}
#endif

/* One patch against two filter rows (a batch-1 FULLY_CONNECTED, the last odd pixel). */
static inline void dot_row_scalar_pair(const int8_t *a, const int8_t *w0, const int8_t *w1, int32_t k, int32_t *acc)
{
    int32_t c0 = acc[0], c1 = acc[1];
    const int8_t *const a_end = a + (k & ~3);
    for (; a != a_end; a += 4, w0 += 4, w1 += 4) {
        int32_t x = a[0];
        c0 += x * w0[0]; c1 += x * w1[0];
        x = a[1];
        c0 += x * w0[1]; c1 += x * w1[1];
        x = a[2];
        c0 += x * w0[2]; c1 += x * w1[2];
        x = a[3];
        c0 += x * w0[3]; c1 += x * w1[3];
    }
    for (k &= 3; k > 0; --k, ++a, ++w0, ++w1) {
        c0 += (int32_t)*a * *w0;
        c1 += (int32_t)*a * *w1;
    }
    acc[0] = c0;
    acc[1] = c1;
}

void tm_s8_dot_rows_2x2(const int8_t *row0, const int8_t *row1, const int8_t *filter, int32_t k,
                        int32_t channels, const int32_t *bias_folded, const tm_requant_t *requant,
                        int32_t per_channel, int32_t act_min, int32_t act_max, int8_t *out0, int8_t *out1)
{
    int32_t oc = 0;
    for (; oc < channels; oc += 2) {
        const int32_t two = oc + 1 < channels;
        const int8_t *w0 = filter + (size_t)oc * k;
        const int8_t *w1 = two ? w0 + k : w0; /* an odd last channel: its row twice, one result kept */
        const tm_requant_t *q0 = &requant[per_channel ? oc : 0];
        const tm_requant_t *q1 = &requant[per_channel && two ? oc + 1 : 0];
        int32_t acc[4];
        acc[0] = acc[2] = bias_folded[oc];
        acc[1] = acc[3] = bias_folded[two ? oc + 1 : oc];
        if (row1 != NULL) {
            dot_rows_scalar_pair(row0, row1, w0, w1, k, acc);
        } else {
            dot_row_scalar_pair(row0, w0, w1, k, acc);
        }
        out0[oc] = tm_requant_s8(acc[0], q0, act_min, act_max);
        if (two) {
            out0[oc + 1] = tm_requant_s8(acc[1], q1, act_min, act_max);
        }
        if (row1 != NULL) {
            out1[oc] = tm_requant_s8(acc[2], q0, act_min, act_max);
            if (two) {
                out1[oc + 1] = tm_requant_s8(acc[3], q1, act_min, act_max);
            }
        }
    }
}

#endif /* TM_DSP_AVAILABLE */

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

static void conv_im2col(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch)
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

#if TM_DSP_AVAILABLE

/* rows x rw int8 (rw % 4 == 0) at x[r] + offset, widened to int16 in the filter16 order. */
/*
 * rows x rw int8 (rw % 4 == 0) at x[r] + offset, widened to int16 in the filter16 order, into
 * the pixel's half of the interleaved pair buffer: per four taps two words of pixel a, then two
 * of pixel b (dst: the buffer for a, the buffer + 4 int16 for b).
 */
static void widen_rows_s8(const int8_t *const *x, int32_t rows, int32_t offset, int32_t rw, int16_t *dst)
{
    int32_t r, i;
    for (r = 0; r < rows; ++r) {
        const int8_t *src = x[r] + offset;
        for (i = 0; i < rw; i += 4, dst += 8) {
            const int32_t v = tm_read_s8x4(src + i);
            const int32_t even = TM_SXTB16(v), odd = TM_SXTB16_ROR8(v);
            memcpy(dst, &even, sizeof even);
            memcpy(dst + 2, &odd, sizeof odd);
        }
    }
}

/* rec: the record after a channel's kp / 2 weight words in filter16: bias_folded, then the
   packed requantization (multiplier2, round, e) of tm_requant_rec (tm_dsp.h). */
static inline int32_t requant_rec(int32_t acc, const int32_t *rec)
{
    return tm_requant_rec(acc + rec[0], rec[1], rec[2], rec[3]);
}

/*
 * Two pixels x two channels of the widened-patch path: ab, the interleaved pair buffer of kp
 * taps (kp % 4 == 0; ab_end = ab + 2 * kp int16), times filter16 channels c and c + 1 (w, and
 * w + stride words), for `pairs` channel pairs; outputs at out0[c], out1[c] (pixel a, b), clamped
 * to [act_min, act_max] when that is narrower than int8. The accumulators start at 0 and take
 * the folded bias after the taps (the same int32 sum).
 */
#if TM_CONV_2D_ASM
/*
 * Thumb-2, per four taps: LDM of a's and b's two words, LDRD of each channel's two weight words,
 * 8 SMLAD: 13 instructions per 16 MACs, the four accumulators in r4-r7. Arguments: r0 ab,
 * r1 w, r2 ab_end, r3 pairs; stack: out0, out1, stride (bytes), act_min, act_max. Locals on the
 * stack: ab, pairs left.
 */
#define TM_BLOCK_REQUANT(ACC, CLAMP)                                               \
    "add r12, " ACC ", r10\n\t"                                                    \
    "smmlar r12, " ACC ", r9, r12\n\t"                                             \
    "add r12, r12, " ACC ", asr #31\n\t"                                           \
    "asr r12, r12, r11\n\t" TM_BLOCK_POST                                          \
    "ssat r12, #8, r12\n\t" CLAMP
#define TM_BLOCK_CLAMP                                                             \
    "ldr r8, [sp, #56]\n\t"                                                        \
    "cmp r12, r8\n\t"                                                              \
    "it lt\n\t"                                                                    \
    "movlt r12, r8\n\t"                                                            \
    "ldr r8, [sp, #60]\n\t"                                                        \
    "cmp r12, r8\n\t"                                                              \
    "it gt\n\t"                                                                    \
    "movgt r12, r8\n\t"
#define TM_BLOCK_ASM(CLAMP)                                                        \
    "push {r4-r11, lr}\n\t"                                                        \
    "sub sp, #8\n\t"                                                               \
    "str r0, [sp]\n\t"                                                             \
    "str r3, [sp, #4]\n\t"                                                         \
    "mov r3, r2\n\t"                                                               \
    "ldr r12, [sp, #52]\n\t"                                                       \
    "add r2, r1, r12\n\t"                                                          \
    "3:\n\t"                                                                       \
    "movs r4, #0\n\t"                                                              \
    "movs r5, #0\n\t"                                                              \
    "movs r6, #0\n\t"                                                              \
    "movs r7, #0\n\t"                                                              \
    "1:\n\t"                                                                       \
    "ldm r0!, {r8-r11}\n\t"                                                        \
    "ldrd r12, lr, [r1], #8\n\t"                                                   \
    "smlad r4, r8, r12, r4\n\t"                                                    \
    "smlad r4, r9, lr, r4\n\t"                                                     \
    "smlad r5, r10, r12, r5\n\t"                                                   \
    "smlad r5, r11, lr, r5\n\t"                                                    \
    "ldrd r12, lr, [r2], #8\n\t"                                                   \
    "smlad r6, r8, r12, r6\n\t"                                                    \
    "smlad r6, r9, lr, r6\n\t"                                                     \
    "smlad r7, r10, r12, r7\n\t"                                                   \
    "smlad r7, r11, lr, r7\n\t"                                                    \
    "cmp r0, r3\n\t"                                                               \
    "bne 1b\n\t"                                                                   \
    "ldm r1, {r8-r11}\n\t"                                                         \
    "ldr r0, [sp, #44]\n\t"                                                        \
    "ldr lr, [sp, #48]\n\t"                                                        \
    "add r4, r8\n\t"                                                               \
    "add r5, r8\n\t"                                                               \
    TM_BLOCK_REQUANT("r4", CLAMP)                                                  \
    "strb r12, [r0]\n\t"                                                           \
    TM_BLOCK_REQUANT("r5", CLAMP)                                                  \
    "strb r12, [lr]\n\t"                                                           \
    "ldm r2, {r8-r11}\n\t"                                                         \
    "add r6, r8\n\t"                                                               \
    "add r7, r8\n\t"                                                               \
    TM_BLOCK_REQUANT("r6", CLAMP)                                                  \
    "strb r12, [r0, #1]\n\t"                                                       \
    TM_BLOCK_REQUANT("r7", CLAMP)                                                  \
    "strb r12, [lr, #1]\n\t"                                                       \
    "adds r0, #2\n\t"                                                              \
    "str r0, [sp, #44]\n\t"                                                        \
    "add lr, lr, #2\n\t"                                                           \
    "str lr, [sp, #48]\n\t"                                                        \
    "add r1, r2, #16\n\t"                                                          \
    "ldr r12, [sp, #52]\n\t"                                                       \
    "add r2, r1, r12\n\t"                                                          \
    "ldr r0, [sp]\n\t"                                                             \
    "ldr r12, [sp, #4]\n\t"                                                        \
    "subs r12, #1\n\t"                                                             \
    "str r12, [sp, #4]\n\t"                                                        \
    "bne 3b\n\t"                                                                   \
    "add sp, #8\n\t"                                                               \
    "pop {r4-r11, pc}\n\t"
#define TM_ARG __attribute__((unused)) /* read by the assembly, per the AAPCS */
#define TM_BLOCK(NAME, CLAMP)                                                                               \
    __attribute__((naked, noinline)) static void NAME(TM_ARG const int32_t *ab, TM_ARG const int32_t *w,    \
                                                      TM_ARG const int32_t *ab_end, TM_ARG int32_t pairs,   \
                                                      TM_ARG int8_t *out0, TM_ARG int8_t *out1,             \
                                                      TM_ARG int32_t stride, TM_ARG int32_t act_min,        \
                                                      TM_ARG int32_t act_max)                               \
    {                                                                                                       \
        __asm__ volatile(TM_BLOCK_ASM(CLAMP));                                                              \
    }
#define TM_BLOCK_POST ""
TM_BLOCK(dot16_pairs, "")
TM_BLOCK(dot16_pairs_clamp, TM_BLOCK_CLAMP)
#undef TM_BLOCK_POST
/* filter16_post records: the zero point in r11's bits 8 and up, added after the shift (ASR
   by r11 reads its low byte: e). */
#define TM_BLOCK_POST "add r12, r12, r11, asr #8\n\t"
TM_BLOCK(dot16_pairs_post, TM_BLOCK_CLAMP)
#undef TM_BLOCK_POST
#undef TM_BLOCK
#undef TM_BLOCK_ASM
#undef TM_BLOCK_CLAMP
#undef TM_BLOCK_REQUANT
#undef TM_ARG
#else
TM_HOT static void dot16_pairs(const int32_t *ab, const int32_t *w, const int32_t *ab_end, int32_t pairs,
                               int8_t *out0, int8_t *out1, int32_t stride, int32_t act_min, int32_t act_max)
{
    for (; pairs > 0; --pairs, out0 += 2, out1 += 2) {
        const int32_t *w1 = w + stride / 4;
        const int32_t *x;
        int32_t acc00 = 0, acc10 = 0, acc01 = 0, acc11 = 0;
        for (x = ab; x != ab_end; x += 4, w += 2, w1 += 2) {
            acc00 = TM_SMLAD(x[0], w[0], TM_SMLAD(x[1], w[1], acc00));
            acc10 = TM_SMLAD(x[2], w[0], TM_SMLAD(x[3], w[1], acc10));
            acc01 = TM_SMLAD(x[0], w1[0], TM_SMLAD(x[1], w1[1], acc01));
            acc11 = TM_SMLAD(x[2], w1[0], TM_SMLAD(x[3], w1[1], acc11));
        }
        out0[0] = (int8_t)tm_clamp(requant_rec(acc00, w), act_min, act_max);
        out1[0] = (int8_t)tm_clamp(requant_rec(acc10, w), act_min, act_max);
        out0[1] = (int8_t)tm_clamp(requant_rec(acc01, w1), act_min, act_max);
        out1[1] = (int8_t)tm_clamp(requant_rec(acc11, w1), act_min, act_max);
        w = w1 + 4;
    }
}
#define dot16_pairs_clamp dot16_pairs
#define dot16_pairs_post dot16_pairs
#endif

/*
 * The interleaved pair buffer ab (kp taps of pixels a and b) times every filter16 channel,
 * outputs at out0 / out1 (the same pointer when there is only pixel a: then b = a in ab).
 */
typedef void tm_dot16_pairs_fn(const int32_t *ab, const int32_t *w, const int32_t *ab_end, int32_t pairs,
                               int8_t *out0, int8_t *out1, int32_t stride, int32_t act_min, int32_t act_max);

/* The pair kernel of a layer: the zero point after the shift, a clamp narrower than int8, or neither. */
static tm_dot16_pairs_fn *dot16_pairs_for(const tm_conv_2d_params_t *p)
{
    if (p->filter16_post) {
        return dot16_pairs_post;
    }
    return p->act_min == TM_INT8_MIN && p->act_max == TM_INT8_MAX ? dot16_pairs : dot16_pairs_clamp;
}

#if defined(__GNUC__)
__attribute__((always_inline)) /* one call site: the per-pair choice of kernel and its arguments fold away */
#endif
static inline void dot16_rows_2x2(const int32_t *ab, const int32_t *w, int32_t kp, int32_t channels, int8_t *out0,
                                  int8_t *out1, int32_t act_min, int32_t act_max, tm_dot16_pairs_fn *pairs_fn)
{
    const int32_t stride = kp / 2 + 4; /* words per channel */
    const int32_t pairs = channels / 2;
    if (pairs > 0) {
        pairs_fn(ab, w, ab + kp, pairs, out0, out1, 4 * stride, act_min, act_max);
    }
    if (channels & 1) {
        const int32_t *x;
        const int32_t *wl = w + 2 * pairs * stride;
        int32_t acc0 = 0, acc1 = 0;
        for (x = ab; x != ab + kp; x += 4, wl += 2) {
            acc0 = TM_SMLAD(x[0], wl[0], TM_SMLAD(x[1], wl[1], acc0));
            acc1 = TM_SMLAD(x[2], wl[0], TM_SMLAD(x[3], wl[1], acc1));
        }
        out1[2 * pairs] = (int8_t)tm_clamp(requant_rec(acc1, wl), act_min, act_max);
        out0[2 * pairs] = (int8_t)tm_clamp(requant_rec(acc0, wl), act_min, act_max);
    }
}

/*
 * One output row of the widened-patch path for KP = 4 or 8 (full int8 activation range): pixel
 * i's patch is the KP/4 words at p0, p1 + i * step, widened into registers (SXTB16, SXTB16 ror 8:
 * the filter16 order), then every filter16 channel is KP/2 SMLAD and tm_requant_rec.
 */
#if TM_CONV_2D_ASM
/*
 * Thumb-2, one pixel at a time: its patch words widened into r9-r11, lr, then per channel one
 * LDM of the weights and folded bias, KP/2 SMLAD, one LDM of the record (multiplier2, round, e)
 * and the requantization: 14 instructions an output for KP 8. Arguments: r0 p0, r1 p1, r2 step,
 * r3 pixels; stack: filter16, channels, out. The loop state (step, end of p0, filter16) lives in
 * three words on the stack.
 */
#define TM_DOT16_ROW_ASM(LOAD_P1, WIDEN_P1, WEIGHTS, MACS, RECORD, REQUANT)                         \
    "push {r4-r11, lr}\n\t"                                                                       \
    "ldr r4, [sp, #36]\n\t"                                                                       \
    "mla r3, r3, r2, r0\n\t"                                                                      \
    "push {r2, r3, r4}\n\t"                                                                       \
    "ldr r3, [sp, #56]\n\t"                                                                       \
    "2:\n\t"                                                                                      \
    "ldr r4, [r0]\n\t" LOAD_P1                                                                    \
    "ldr r6, [sp]\n\t"                                                                            \
    "add r0, r6\n\t"                                                                              \
    "add r1, r6\n\t"                                                                              \
    "sxtb16 r9, r4\n\t"                                                                           \
    "sxtb16 r10, r4, ror #8\n\t" WIDEN_P1                                                         \
    "ldr r2, [sp, #8]\n\t"                                                                        \
    "ldr r12, [sp, #52]\n\t"                                                                      \
    "add r12, r3\n\t"                                                                             \
    "1:\n\t" WEIGHTS MACS RECORD REQUANT                                                          \
    "ssat r5, #8, r5\n\t"                                                                         \
    "strb r5, [r3], #1\n\t"                                                                       \
    "cmp r3, r12\n\t"                                                                             \
    "bne 1b\n\t"                                                                                  \
    "ldr r4, [sp, #4]\n\t"                                                                        \
    "cmp r0, r4\n\t"                                                                              \
    "bne 2b\n\t"                                                                                  \
    "add sp, #12\n\t"                                                                             \
    "pop {r4-r11, pc}\n\t"
#define TM_ARG __attribute__((unused)) /* read by the assembly, per the AAPCS */
__attribute__((naked, noinline)) static void dot16_row_4(TM_ARG const int8_t *p0, TM_ARG const int8_t *p1,
                                                       TM_ARG int32_t step, TM_ARG int32_t pixels,
                                                       TM_ARG const int32_t *filter16, TM_ARG int32_t channels,
                                                       TM_ARG int8_t *out)
{
    __asm__ volatile(TM_DOT16_ROW_ASM("", "",
                                      "ldm r2!, {r4-r6}\n\t",
                                      "smlad r6, r9, r4, r6\n\t"
                                      "smlad r6, r10, r5, r6\n\t",
                                      "ldm r2!, {r4, r5, r7}\n\t",
                                      "add r5, r6, r5\n\t"
                                      "smmlar r5, r6, r4, r5\n\t"
                                      "add r5, r5, r6, asr #31\n\t"
                                      "asr r5, r5, r7\n\t"));
}
__attribute__((naked, noinline)) static void dot16_row_8(TM_ARG const int8_t *p0, TM_ARG const int8_t *p1,
                                                       TM_ARG int32_t step, TM_ARG int32_t pixels,
                                                       TM_ARG const int32_t *filter16, TM_ARG int32_t channels,
                                                       TM_ARG int8_t *out)
{
    __asm__ volatile(TM_DOT16_ROW_ASM("ldr r5, [r1]\n\t",
                                      "sxtb16 r11, r5\n\t"
                                      "sxtb16 lr, r5, ror #8\n\t",
                                      "ldm r2!, {r4-r8}\n\t",
                                      "smlad r8, r9, r4, r8\n\t"
                                      "smlad r8, r10, r5, r8\n\t"
                                      "smlad r8, r11, r6, r8\n\t"
                                      "smlad r8, lr, r7, r8\n\t",
                                      "ldm r2!, {r4-r6}\n\t",
                                      "add r5, r8, r5\n\t"
                                      "smmlar r5, r8, r4, r5\n\t"
                                      "add r5, r5, r8, asr #31\n\t"
                                      "asr r5, r5, r6\n\t"));
}
#undef TM_ARG
#undef TM_DOT16_ROW_ASM
#else
static void dot16_row(const int8_t *p0, const int8_t *p1, int32_t step, int32_t pixels, const int32_t *filter16,
                      int32_t channels, int8_t *out, int32_t kp)
{
    int32_t px;
    for (px = 0; px < pixels; ++px, p0 += step, p1 += step) {
        const int32_t v0 = tm_read_s8x4(p0);
        const int32_t v1 = kp > 4 ? tm_read_s8x4(p1) : 0;
        const int32_t a[4] = {TM_SXTB16(v0), TM_SXTB16_ROR8(v0), TM_SXTB16(v1), TM_SXTB16_ROR8(v1)};
        const int32_t *w = filter16;
        const int8_t *const out_end = out + channels;
        for (; out < out_end; ++out, w += kp / 2 + 4) {
            int32_t acc = w[kp / 2], i;
            for (i = 0; i < kp / 2; ++i) {
                acc = TM_SMLAD(a[i], w[i], acc);
            }
            *out = (int8_t)tm_requant_rec(acc, w[kp / 2 + 1], w[kp / 2 + 2], w[kp / 2 + 3]);
        }
    }
}
static void dot16_row_4(const int8_t *p0, const int8_t *p1, int32_t step, int32_t pixels, const int32_t *filter16,
                        int32_t channels, int8_t *out)
{
    dot16_row(p0, p1, step, pixels, filter16, channels, out, 4);
}
static void dot16_row_8(const int8_t *p0, const int8_t *p1, int32_t step, int32_t pixels, const int32_t *filter16,
                        int32_t channels, int8_t *out)
{
    dot16_row(p0, p1, step, pixels, filter16, channels, out, 8);
}
#endif

/* The widened-patch path (filter16, tm_conv_2d.h). */
static void conv_k16(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
    const int32_t c = p->input_c;
    const int32_t rw = TM_CONV_2D_RW(p);
    const int32_t kp = TM_CONV_2D_KP(p);
    const int32_t kh = p->filter_h;
    const int32_t in_row = p->input_w * c;
    const int32_t step = p->stride_w * c;
    const int32_t oc_n = p->output_c;
    const int32_t direct = TM_CONV_2D_DIRECT16(p);
    const int32_t padded = TM_CONV_2D_ROW_BYTES(p);
    const int32_t left = p->pad_w * c;
    const int32_t pad4 = (int32_t)(((uint32_t)(-p->input_offset) & 0xffu) * 0x01010101u);
    int16_t *wide = (int16_t *)(void *)scratch; /* 2 x kp int16, then the ring of kh padded rows */
    int8_t *ring = scratch + 4 * kp;
    /* A direct 1x1 with stride 1 reads the input pixels in output order: all rows as one. */
    const int32_t flat = direct && p->stride_h == 1 && p->stride_w == 1;
    tm_dot16_pairs_fn *const pairs_fn = dot16_pairs_for(p);
    const int32_t row_kernels = kp <= 8 && p->act_min == TM_INT8_MIN && p->act_max == TM_INT8_MAX && !p->filter16_post;
    const int32_t out_h = flat ? 1 : p->output_h, out_w = flat ? p->output_h * p->output_w : p->output_w;
    int32_t n, oy, ox, r, i;
    for (n = 0; n < p->batches; ++n) {
        const int8_t *in_n = input + (size_t)n * p->input_h * in_row;
        int32_t held[TM_CONV_2D_K16_MAX_ROWS]; /* input row in each ring slot */
        for (r = 0; r < kh; ++r) {
            held[r] = INT32_MIN;
        }
        for (oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int8_t *x[TM_CONV_2D_K16_MAX_ROWS];
            for (r = 0; r < kh; ++r) {
                const int32_t iy = iy0 + r;
                if (direct) {
                    x[r] = in_n + (size_t)iy * in_row;
                } else {
                    const int32_t slot = ((iy % kh) + kh) % kh;
                    int8_t *buf = ring + slot * padded;
                    if (held[slot] != iy) {
                        const int32_t inside = iy >= 0 && iy < p->input_h;
                        const int8_t *src = inside ? in_n + (size_t)iy * in_row : in_n; /* buf[i]: src[i - left] */
                        const int32_t lo = inside ? tm_min(left, padded) : padded;
                        const int32_t hi = inside ? tm_min(left + in_row, padded) : padded;
                        held[slot] = iy;
                        for (i = 0; i < lo; ++i) {
                            buf[i] = (int8_t)pad4;
                        }
                        for (; i + 4 <= hi; i += 4) {
                            const int32_t v = tm_read_s8x4(src + (i - left));
                            memcpy(buf + i, &v, sizeof v);
                        }
                        for (; i < hi; ++i) {
                            buf[i] = src[i - left];
                        }
                        for (; i < padded; ++i) {
                            buf[i] = (int8_t)pad4;
                        }
                    }
                    x[r] = buf;
                }
            }
            if (row_kernels) {
                /* the row kernels: SSAT only, the zero point folded into the records */
                /* Word j of a patch: row j / (rw / 4), bytes 4 * (j % (rw / 4)) on. */
                const int8_t *const p0 = x[0];
                const int8_t *const p1 = kp == 4 ? p0 : (rw == 4 ? x[1] : p0 + 4);
                if (kp == 4) {
                    dot16_row_4(p0, p1, step, out_w, p->filter16, oc_n, output);
                } else {
                    dot16_row_8(p0, p1, step, out_w, p->filter16, oc_n, output);
                }
                output += out_w * oc_n;
                continue;
            }
            for (ox = 0; ox < out_w; ox += 2, output += 2 * oc_n) {
                const int32_t two = ox + 1 < out_w;
                widen_rows_s8(x, kh, ox * step, rw, wide);
                widen_rows_s8(x, kh, (ox + two) * step, rw, wide + 4); /* pixel b, or a again */
                dot16_rows_2x2((const int32_t *)(const void *)wide, p->filter16, kp, oc_n, output,
                               two ? output + oc_n : output, p->act_min, p->act_max, pairs_fn);
            }
            output -= (ox - out_w) * oc_n; /* an odd row wrote one pixel, not two */
        }
    }
}

#endif /* TM_DSP_AVAILABLE */

void tm_conv_2d_s8(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
#if TM_DSP_AVAILABLE
    if (p->filter16 != NULL) {
        if (scratch != NULL && p->filter_c == p->input_c && p->dilation_h == 1 && p->dilation_w == 1 &&
            TM_CONV_2D_KP(p) <= TM_CONV_2D_K16_MAX && p->filter_h <= TM_CONV_2D_K16_MAX_ROWS) {
            conv_k16(p, input, output, scratch);
            return;
        }
        conv_generic(p, input, output);
        return;
    }
#endif
    if (p->bias_folded != NULL && p->requant != NULL && p->filter_c == p->input_c &&
        (scratch != NULL || TM_CONV_2D_SCRATCH_BYTES(p) == 0)) {
        conv_im2col(p, input, output, scratch); /* DSP: SMLAD; other cores: the scalar 2x2 block */
        return;
    }
    conv_generic(p, input, output);
}
