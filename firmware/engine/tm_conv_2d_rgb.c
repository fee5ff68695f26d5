/* tm_conv_2d_rgb.c - CONV_2D with few input channels; the arithmetic and layouts are in tm_conv_2d_rgb.h. */
#include "tm_conv_2d_rgb.h"

#include <stddef.h>
#include <string.h>

#include "tm_common.h"
#include "tm_dsp.h"

#if TM_DSP_AVAILABLE

/* The Thumb-2 block on a real DSP core with an optimising gcc/clang (it needs every register). */
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__GNUC__) && defined(__OPTIMIZE__) && \
    !defined(TM_DSP_EMULATE)
#define TM_RGB_ASM 1
#else
#define TM_RGB_ASM 0
#endif

/*
 * The band of output row iy0 (tm_conv_2d_rgb.h): cols columns of kh rows of c bytes, the zero
 * point outside the image. Column by column, rows in order, each run written as one word: its
 * bytes past c land on the next run (written next) or, after the last, in the band's 4 spare
 * bytes, which meet zero weights. Reads stay inside the input: the last input pixel of a row
 * is copied byte by byte when c < 4.
 */
static void rgb_band(const tm_conv_2d_params_t *p, const int8_t *in_n, int32_t iy0, int8_t *band)
{
    const int32_t c = p->input_c, kh = p->filter_h, cols = TM_CONV_2D_RGB_COLS(p);
    const int32_t pad4 = (int32_t)(((uint32_t)(-p->input_offset) & 0xffu) * 0x01010101u);
    const int32_t in_row = p->input_w * c;
    const int32_t first = tm_min(p->pad_w, cols);                    /* columns left of the image */
    const int32_t last = tm_min(p->pad_w + p->input_w, cols);        /* first column right of it */
    const int8_t *rows[TM_CONV_2D_K16_MAX_ROWS];                      /* each filter row's input row, or NULL */
    int8_t *dst = band;
    int32_t j, ky;
    for (ky = 0; ky < kh; ++ky) {
        const int32_t iy = iy0 + ky;
        rows[ky] = iy >= 0 && iy < p->input_h ? in_n + (size_t)iy * in_row - p->pad_w * c : NULL;
    }
    for (j = 0; j < first; ++j) {
        for (ky = 0; ky < kh; ++ky, dst += c) {
            memcpy(dst, &pad4, 4);
        }
    }
    for (; j < last; ++j) {
        const int32_t edge = c < 4 && j == p->pad_w + p->input_w - 1; /* a word would read past the row */
        for (ky = 0; ky < kh; ++ky, dst += c) {
            if (rows[ky] == NULL) {
                memcpy(dst, &pad4, 4);
            } else if (!edge) {
                const int32_t v = tm_read_s8x4(rows[ky] + j * c);
                memcpy(dst, &v, 4);
            } else {
                int32_t i;
                for (i = 0; i < c; ++i) {
                    dst[i] = rows[ky][j * c + i];
                }
            }
        }
    }
    for (; j < cols; ++j) {
        for (ky = 0; ky < kh; ++ky, dst += c) {
            memcpy(dst, &pad4, 4);
        }
    }
}

/* kp int8 at src widened into the interleaved pair buffer (dst: pixel a's first word, or b's). */
static void rgb_widen(const int8_t *src, int32_t kp, int32_t *dst)
{
    int32_t i;
    for (i = 0; i < kp; i += 4, dst += 4) {
        const int32_t v = tm_read_s8x4(src + i);
        dst[0] = TM_SXTB16(v);
        dst[1] = TM_SXTB16_ROR8(v);
    }
}

/*
 * Two pixels x two channels: ab, the interleaved pair buffer of kp taps (ab_end = ab + kp
 * words), times the filter16 channels at w (kp / 2 + 4 words each) for `pairs` channel pairs,
 * outputs at out0 (pixel a) and out1 (pixel b), clamped to [act_min, act_max].
 */
#if TM_RGB_ASM
/*
 * Thumb-2, per four taps: LDM of a's and b's two words, LDRD of each channel's two weight words,
 * 8 SMLAD (13 instructions per 16 MACs). Registers: r0 patch, r1 channel 0's weights, r2 channel
 * 1's, r3 ab_end, r4-r7 the accumulators (a0, b0, a1, b1), r8-r11 patch words, r12/lr weight
 * words; after the taps r8-r11 take a channel's record (bias_folded, multiplier2, round, e_post),
 * then r8/lr the clamp bounds and r0 an output pointer. Arguments: r0 ab, r1 w, r2 ab_end,
 * r3 pairs; on the stack out0, out1, act_min, act_max ([sp, #44..#56] after the prologue).
 * Locals: [sp] ab, [sp, #4] pairs left. Channel stride: kp / 2 + 4 words = (ab_end - ab) / 2 + 16 bytes.
 */
#define TM_RGB_REQUANT(ACC, OUT, CLAMP)                                            \
    "add r12, " ACC ", r10\n\t"                                                    \
    "smmlar r12, " ACC ", r9, r12\n\t"                                             \
    "add r12, r12, " ACC ", asr #31\n\t"                                           \
    "asr r12, r12, r11\n\t"                                                        \
    "add r12, r12, r11, asr #8\n\t"                                                \
    "ssat r12, #8, r12\n\t" CLAMP                                                  \
    "strb r12, " OUT "\n\t"
#define TM_RGB_CLAMP                                                               \
    "cmp r12, r8\n\t"                                                              \
    "it lt\n\t"                                                                    \
    "movlt r12, r8\n\t"                                                            \
    "cmp r12, lr\n\t"                                                              \
    "it gt\n\t"                                                                    \
    "movgt r12, lr\n\t"
#define TM_RGB_BOUNDS                                                              \
    "ldr r8, [sp, #52]\n\t"                                                        \
    "ldr lr, [sp, #56]\n\t"
#define TM_RGB_PAIRS_ASM(BOUNDS, CLAMP)                                            \
    "push {r4-r11, lr}\n\t"                                                        \
    "sub sp, #8\n\t"                                                               \
    "str r0, [sp]\n\t"                                                             \
    "str r3, [sp, #4]\n\t"                                                         \
    "mov r3, r2\n\t"                                                               \
    "sub r12, r3, r0\n\t"                                                          \
    "add r2, r1, r12, lsr #1\n\t"                                                  \
    "add r2, r2, #16\n\t"                                                          \
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
    "add r4, r8\n\t"                                                               \
    "add r5, r8\n\t" BOUNDS                                                        \
    "ldr r0, [sp, #44]\n\t"                                                        \
    TM_RGB_REQUANT("r4", "[r0]", CLAMP)                                            \
    "ldr r0, [sp, #48]\n\t"                                                        \
    TM_RGB_REQUANT("r5", "[r0]", CLAMP)                                            \
    "ldm r2, {r8-r11}\n\t"                                                         \
    "add r6, r8\n\t"                                                               \
    "add r7, r8\n\t" BOUNDS                                                        \
    TM_RGB_REQUANT("r7", "[r0, #1]", CLAMP)                                        \
    "adds r0, #2\n\t"                                                              \
    "str r0, [sp, #48]\n\t"                                                        \
    "ldr r0, [sp, #44]\n\t"                                                        \
    TM_RGB_REQUANT("r6", "[r0, #1]", CLAMP)                                        \
    "adds r0, #2\n\t"                                                              \
    "str r0, [sp, #44]\n\t"                                                        \
    "add r1, r2, #16\n\t"                                                          \
    "ldr r0, [sp]\n\t"                                                             \
    "sub r12, r3, r0\n\t"                                                          \
    "add r2, r1, r12, lsr #1\n\t"                                                  \
    "add r2, r2, #16\n\t"                                                          \
    "ldr r12, [sp, #4]\n\t"                                                        \
    "subs r12, #1\n\t"                                                             \
    "str r12, [sp, #4]\n\t"                                                        \
    "bne 3b\n\t"                                                                   \
    "add sp, #8\n\t"                                                               \
    "pop {r4-r11, pc}\n\t"
#define TM_ARG __attribute__((unused)) /* read by the assembly, per the AAPCS */
#define TM_RGB_PAIRS(NAME, BOUNDS, CLAMP)                                                                     \
    __attribute__((naked, noinline)) static void NAME(TM_ARG const int32_t *ab, TM_ARG const int32_t *w,      \
                                                      TM_ARG const int32_t *ab_end, TM_ARG int32_t pairs,     \
                                                      TM_ARG int8_t *out0, TM_ARG int8_t *out1,               \
                                                      TM_ARG int32_t act_min, TM_ARG int32_t act_max)         \
    {                                                                                                         \
        __asm__ volatile(TM_RGB_PAIRS_ASM(BOUNDS, CLAMP));                                                    \
    }
TM_RGB_PAIRS(rgb_pairs, "", "")
TM_RGB_PAIRS(rgb_pairs_clamp, TM_RGB_BOUNDS, TM_RGB_CLAMP)
#undef TM_RGB_PAIRS
#undef TM_ARG
#undef TM_RGB_PAIRS_ASM
#undef TM_RGB_BOUNDS
#undef TM_RGB_CLAMP
#undef TM_RGB_REQUANT
#else

TM_HOT static void rgb_pairs_c(const int32_t *ab, const int32_t *w, const int32_t *ab_end, int32_t pairs,
                               int8_t *out0, int8_t *out1, int32_t act_min, int32_t act_max)
{
    const int32_t stride = (int32_t)(ab_end - ab) / 2 + 4; /* words a channel */
    for (; pairs > 0; --pairs, out0 += 2, out1 += 2) {
        const int32_t *w1 = w + stride;
        const int32_t *x;
        int32_t acc00 = 0, acc10 = 0, acc01 = 0, acc11 = 0;
        for (x = ab; x != ab_end; x += 4, w += 2, w1 += 2) {
            acc00 = TM_SMLAD(x[1], w[1], TM_SMLAD(x[0], w[0], acc00));
            acc10 = TM_SMLAD(x[3], w[1], TM_SMLAD(x[2], w[0], acc10));
            acc01 = TM_SMLAD(x[1], w1[1], TM_SMLAD(x[0], w1[0], acc01));
            acc11 = TM_SMLAD(x[3], w1[1], TM_SMLAD(x[2], w1[0], acc11));
        }
        out0[0] = (int8_t)tm_clamp(tm_requant_rec(acc00 + w[0], w[1], w[2], w[3]), act_min, act_max);
        out1[0] = (int8_t)tm_clamp(tm_requant_rec(acc10 + w[0], w[1], w[2], w[3]), act_min, act_max);
        out0[1] = (int8_t)tm_clamp(tm_requant_rec(acc01 + w1[0], w1[1], w1[2], w1[3]), act_min, act_max);
        out1[1] = (int8_t)tm_clamp(tm_requant_rec(acc11 + w1[0], w1[1], w1[2], w1[3]), act_min, act_max);
        w = w1 + 4;
    }
}
#define rgb_pairs rgb_pairs_c
#define rgb_pairs_clamp rgb_pairs_c
#endif

typedef void tm_rgb_pairs_fn(const int32_t *ab, const int32_t *w, const int32_t *ab_end, int32_t pairs,
                             int8_t *out0, int8_t *out1, int32_t act_min, int32_t act_max);

/* The last channel of an odd count: pixels a and b against one filter16 channel. */
static void rgb_single(const int32_t *ab, const int32_t *w, const int32_t *ab_end, int8_t *out0, int8_t *out1,
                       int32_t act_min, int32_t act_max)
{
    const int32_t *x;
    int32_t acc0 = 0, acc1 = 0;
    for (x = ab; x != ab_end; x += 4, w += 2) {
        acc0 = TM_SMLAD(x[1], w[1], TM_SMLAD(x[0], w[0], acc0));
        acc1 = TM_SMLAD(x[3], w[1], TM_SMLAD(x[2], w[0], acc1));
    }
    *out1 = (int8_t)tm_clamp(tm_requant_rec(acc1 + w[0], w[1], w[2], w[3]), act_min, act_max);
    *out0 = (int8_t)tm_clamp(tm_requant_rec(acc0 + w[0], w[1], w[2], w[3]), act_min, act_max);
}

static void conv_rgb(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
    const int32_t kp = TM_CONV_2D_RGB_KP(p);
    const int32_t oc_n = p->output_c, pairs = oc_n / 2;
    const int32_t step = p->stride_w * p->filter_h * p->filter_c; /* band bytes between pixels */
    int32_t *const ab = (int32_t *)(void *)scratch; /* 2 x kp int16 */
    int8_t *const band = scratch + 4 * kp;
    const int32_t *const ab_end = ab + kp;
    const int32_t *const w_last = p->filter16 + (size_t)2 * pairs * (kp / 2 + 4);
    const int32_t full_range = p->act_min == TM_INT8_MIN && p->act_max == TM_INT8_MAX;
    tm_rgb_pairs_fn *const pairs_fn = full_range ? rgb_pairs : rgb_pairs_clamp;
    int32_t n, oy, ox;
    for (n = 0; n < p->batches; ++n) {
        const int8_t *in_n = input + (size_t)n * p->input_h * p->input_w * p->input_c;
        for (oy = 0; oy < p->output_h; ++oy) {
            rgb_band(p, in_n, oy * p->stride_h - p->pad_h, band);
            for (ox = 0; ox < p->output_w; ox += 2, output += 2 * oc_n) {
                const int32_t two = ox + 1 < p->output_w;
                int8_t *const out1 = two ? output + oc_n : output;
                rgb_widen(band + ox * step, kp, ab);
                rgb_widen(band + (ox + two) * step, kp, ab + 2); /* pixel b, or a again */
                if (pairs > 0) {
                    pairs_fn(ab, p->filter16, ab_end, pairs, output, out1, p->act_min, p->act_max);
                }
                if (oc_n & 1) {
                    rgb_single(ab, w_last, ab_end, output + oc_n - 1, out1 + oc_n - 1, p->act_min, p->act_max);
                }
            }
            output -= (ox - p->output_w) * oc_n; /* an odd row wrote one pixel, not two */
        }
    }
}

#endif /* TM_DSP_AVAILABLE */

void tm_conv_2d_rgb_s8(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
#if TM_DSP_AVAILABLE
    if (scratch != NULL && TM_CONV_2D_RGB_APPLIES(p)) {
        conv_rgb(p, input, output, scratch);
        return;
    }
#endif
    (void)scratch;
    {
        /* filter16 is in this file's layout, not tm_conv_2d.c's: run the reference path. */
        tm_conv_2d_params_t reference = *p;
        reference.filter16 = NULL;
        reference.bias_folded = NULL;
        tm_conv_2d_s8(&reference, input, output, NULL);
    }
}
