/*
 * tm_conv_2d_widened.c - CONV_2D by widened patches (DSP cores; tm_conv_2d_widened_fits: groups 1,
 * dilation 1, kp <= TM_CONV_2D_K16_MAX, filter_h <= TM_CONV_2D_K16_MAX_ROWS; given filter16):
 *
 *   acc = bias_folded[oc] + sum over ky < filter_h, i < rw of w16[oc][ky * rw + i] * x16[ky * rw + i]
 *   out = clamp(tm_requant_rec(acc, multiplier2, round, e_post), act_min, act_max)
 *
 * Each filter row of filter_w * filter_c taps is
 * padded with zeros to rw = a multiple of 4, kp = filter_h * rw, and the compiler stores per output
 * channel the weights widened to int16, each group of four taps t..t+3 of a row in the
 * order (t, t+2, t+1, t+3), two per int32 word (the first in the low half):
 *   w16[oc][ky*rw + 4j + {0,1,2,3}] = filter[oc][ky][4j + {0,2,1,3}]  (0 past the row)
 * followed by four words: bias_folded[oc] and the packed requantization (multiplier2,
 * round, e) of tm_requant_rec (tm_dsp.h; the same result as tm_requant, saturated to
 * int8, for the accumulator bound the compiler checks): kp/2 + 4 words per channel.
 * Every right shift 1..31 has such a record: above 23 (filter16_post = 1) the zero point is
 * added after the shift (tm_dsp.h). This path needs neither bias_folded nor requant, so a
 * layer whose shifts the tm_requant_t records cannot hold still runs here.
 * The input rows a pixel needs are kept padded with the zero point in a ring of filter_h
 * rows (TM_CONV_2D_ROW_BYTES each; a 1x1 filter without padding with filter_c % 4 == 0
 * reads the input in place), each pixel's patch is read from them four bytes at a time
 * and widened once (SXTB16, SXTB16 ror 8: the same order; the bytes past a filter row
 * meet zero weights), and every output channel is SMLAD over kp/2 int16 pairs: for
 * kp 4 or 8 and the activation range all of int8 the patch stays in registers for all
 * channels of the pixel, else 2 pixels x 2 channels at a time (then clamped to
 * [act_min, act_max]). The same terms plus zeros, so the same int32 sum.
 */
#include "tm_conv_2d_widened.h"

#include <stddef.h>
#include <string.h>

#include "tm_common.h"
#include "tm_dsp.h"

#if TM_DSP_AVAILABLE

/* rows x rw int8 (rw % 4 == 0) at x[r] + offset, widened to int16 in the filter16 order. */
/*
 * rows x rw int8 (rw % 4 == 0) at x[r] + offset, widened to int16 in the filter16 order, into
 * the pixel's half of the interleaved pair buffer: per four taps two words of pixel a, then two
 * of pixel b (dst: the buffer for a, the buffer + 4 int16 for b).
 */
static void widen_rows_s8(const int8_t *const *x, int32_t rows, int32_t offset, int32_t rw, int16_t *dst)
{
    int32_t *d = (int32_t *)(void *)dst; /* word-aligned: the pair kernels LDM from it */
    int32_t r;
    for (r = 0; r < rows; ++r) {
        const int8_t *src = x[r] + offset;
        const int8_t *const end = src + rw;
#if TM_DSP_ASM
        /* Four taps: LDR, two SXTB16, STRD (the pair buffer's layout); a compare and branch per
           sixteen, entered by TBB on (rw / 4) mod 4 where the groups left make a multiple of four:
           4.25 instructions per four taps. */
        int32_t even, odd, v;
        __asm__ volatile("ubfx %[v], %[rw], #2, #2\n\t"
                         "tbb [pc, %[v]]\n\t"
                         "8:\n\t"
                         ".byte (1f - 8b) / 2, (7f - 8b) / 2, (6f - 8b) / 2, (5f - 8b) / 2\n\t"
                         "1:\n\t"
                         "ldr %[v], [%[src]], #4\n\t"
                         "sxtb16 %[even], %[v]\n\t"
                         "sxtb16 %[odd], %[v], ror #8\n\t"
                         "strd %[even], %[odd], [%[d]], #16\n\t"
                         "5:\n\t"
                         "ldr %[v], [%[src]], #4\n\t"
                         "sxtb16 %[even], %[v]\n\t"
                         "sxtb16 %[odd], %[v], ror #8\n\t"
                         "strd %[even], %[odd], [%[d]], #16\n\t"
                         "6:\n\t"
                         "ldr %[v], [%[src]], #4\n\t"
                         "sxtb16 %[even], %[v]\n\t"
                         "sxtb16 %[odd], %[v], ror #8\n\t"
                         "strd %[even], %[odd], [%[d]], #16\n\t"
                         "7:\n\t"
                         "ldr %[v], [%[src]], #4\n\t"
                         "sxtb16 %[even], %[v]\n\t"
                         "sxtb16 %[odd], %[v], ror #8\n\t"
                         "strd %[even], %[odd], [%[d]], #16\n\t"
                         "cmp %[src], %[end]\n\t"
                         "bne 1b\n\t"
                         : [src] "+r"(src), [d] "+r"(d), [even] "=&r"(even), [odd] "=&r"(odd), [v] "=&r"(v)
                         : [rw] "r"(rw), [end] "r"(end)
                         : "cc", "memory");
#else
        for (; src != end; src += 4, d += 4) {
            const int32_t v = tm_read_s8x4(src);
            d[0] = TM_SXTB16(v);
            d[1] = TM_SXTB16_ROR8(v);
        }
#endif
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
 * to [act_min, act_max] when that is narrower than int8. The C twin's accumulators start at 0 and
 * take the folded bias after the taps, the assembly's start at it (the same wrapping int32 sum).
 */
#if TM_DSP_ASM
/*
 * Thumb-2, per four taps: LDM of a's and b's two words, LDRD of each channel's two weight words,
 * 8 SMLAD, and a compare and branch per 32 taps: 11.25 instructions per 16 MACs, the four
 * accumulators in r4-r7, which start at their channel's folded bias (read kp * 2 bytes past the
 * channel's weights; the same int32 sum). Arguments: r0 ab, r1 w, r2 ab_end, r3 pairs; stack:
 * out0, out1, stride (bytes), act_min, act_max. Locals on the stack: ab, the end of out0.
 */
/* Four taps of both pixels times both channels (8 SMLAD); the loop runs eight of them per
   compare and branch, entered (TBB on the group count mod 8) where the groups left make a multiple
   of eight. */
#define TM_BLOCK_TAPS4                                                             \
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
    "smlad r7, r11, lr, r7\n\t"
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
    "ldr r12, [sp, #44]\n\t"                                                       \
    "add r3, r12, r3, lsl #1\n\t"                                                  \
    "str r3, [sp, #4]\n\t"                                                         \
    "mov r3, r2\n\t"                                                               \
    "ldr r12, [sp, #52]\n\t"                                                       \
    "add r2, r1, r12\n\t"                                                          \
    "3:\n\t"                                                                       \
    "sub r12, r3, r0\n\t"                                                          \
    "add r8, r1, r12, lsr #1\n\t"                                                  \
    "ldr r4, [r8]\n\t"                                                             \
    "mov r5, r4\n\t"                                                               \
    "add r8, r2, r12, lsr #1\n\t"                                                  \
    "ldr r6, [r8]\n\t"                                                             \
    "mov r7, r6\n\t"                                                               \
    "ubfx r8, r12, #4, #3\n\t"                                                     \
    "tbb [pc, r8]\n\t"                                                             \
    "8:\n\t"                                                                       \
    ".byte (1f - 8b) / 2\n\t"                                                      \
    ".byte (15f - 8b) / 2\n\t"                                                     \
    ".byte (14f - 8b) / 2\n\t"                                                     \
    ".byte (13f - 8b) / 2\n\t"                                                     \
    ".byte (12f - 8b) / 2\n\t"                                                     \
    ".byte (11f - 8b) / 2\n\t"                                                     \
    ".byte (10f - 8b) / 2\n\t"                                                     \
    ".byte (9f - 8b) / 2\n\t"                                                      \
    "1:\n\t" TM_BLOCK_TAPS4                                                        \
    "9:\n\t" TM_BLOCK_TAPS4                                                        \
    "10:\n\t" TM_BLOCK_TAPS4                                                       \
    "11:\n\t" TM_BLOCK_TAPS4                                                       \
    "12:\n\t" TM_BLOCK_TAPS4                                                       \
    "13:\n\t" TM_BLOCK_TAPS4                                                       \
    "14:\n\t" TM_BLOCK_TAPS4                                                       \
    "15:\n\t" TM_BLOCK_TAPS4                                                       \
    "cmp r0, r3\n\t"                                                               \
    "bne 1b\n\t"                                                                   \
    "ldm r1, {r8-r11}\n\t"                                                         \
    "ldr r0, [sp, #44]\n\t"                                                        \
    "ldr lr, [sp, #48]\n\t"                                                        \
    TM_BLOCK_REQUANT("r4", CLAMP)                                                  \
    "strb r12, [r0], #1\n\t"                                                       \
    TM_BLOCK_REQUANT("r5", CLAMP)                                                  \
    "strb r12, [lr], #1\n\t"                                                       \
    "ldm r2, {r8-r11}\n\t"                                                         \
    TM_BLOCK_REQUANT("r6", CLAMP)                                                  \
    "strb r12, [r0], #1\n\t"                                                       \
    TM_BLOCK_REQUANT("r7", CLAMP)                                                  \
    "strb r12, [lr], #1\n\t"                                                       \
    "str r0, [sp, #44]\n\t"                                                        \
    "str lr, [sp, #48]\n\t"                                                        \
    "add r1, r2, #16\n\t"                                                          \
    "ldr r12, [sp, #52]\n\t"                                                       \
    "add r2, r1, r12\n\t"                                                          \
    "ldr r12, [sp, #4]\n\t"                                                        \
    "cmp r0, r12\n\t"                                                              \
    "ldr r0, [sp]\n\t"                                                             \
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
#undef TM_BLOCK_TAPS4
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
#if TM_DSP_ASM
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

/* The widened-patch algorithm (above) over output channels first .. first + channels - 1, filter16
   holding those channels' records (from channel first's on). TM_HOT (tm_common.h): without the pre-allocation scheduler
   the pixel-pair loop keeps more of its values in registers (fewer instructions per pixel). */
TM_HOT void tm_conv_2d_widened_channels_s8(const tm_conv_2d_params_t *p, const int32_t *filter16, int32_t first,
                                           int32_t channels, const int8_t *input, int8_t *output, int8_t *scratch)
{
    const int32_t c = p->input_c;
    const int32_t rw = TM_CONV_2D_RW(p);
    const int32_t kp = TM_CONV_2D_KP(p);
    const int32_t kh = p->filter_h;
    const int32_t in_row = p->input_w * c;
    const int32_t step = p->stride_w * c;
    const int32_t oc_n = channels;      /* computed per pixel */
    const int32_t out_c = p->output_c;  /* output bytes per pixel */
    const int32_t direct = TM_CONV_2D_DIRECT16(p);
    const int32_t padded = TM_CONV_2D_ROW_BYTES(p);
    const int32_t left = p->pad_w * c;
    const int32_t pad4 = (int32_t)(((uint32_t)(-p->input_offset) & 0xffu) * 0x01010101u);
    int16_t *wide = (int16_t *)(void *)scratch; /* 2 x kp int16, then the ring of kh padded rows */
    int32_t *const wide32 = (int32_t *)(void *)scratch; /* the same pair buffer as words */
    int8_t *out_a = NULL;                               /* pixel a's output while its pair waits for b */
    const int8_t *output_end;
    int8_t *ring = scratch + 4 * kp;
    /* A direct 1x1 with stride 1 reads the input pixels in output order: all rows as one. */
    const int32_t flat = direct && p->stride_h == 1 && p->stride_w == 1;
    tm_dot16_pairs_fn *const pairs_fn = dot16_pairs_for(p);
    const int32_t row_kernels = kp <= 8 && p->act_min == TM_INT8_MIN && p->act_max == TM_INT8_MAX && !p->filter16_post;
    const int32_t out_h = flat ? 1 : p->output_h, out_w = flat ? p->output_h * p->output_w : p->output_w;
    int32_t n, oy, ox, r, i;
    output += first;
    output_end = output + (size_t)p->batches * p->output_h * p->output_w * out_c;
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
                /* A block of the channels (oc_n < out_c) writes a pixel's part at a time. */
                const int32_t pixels = oc_n == out_c ? out_w : 1;
                for (ox = 0; ox < out_w; ox += pixels, output += pixels * out_c) {
                    if (kp == 4) {
                        dot16_row_4(p0 + ox * step, p1 + ox * step, step, pixels, filter16, oc_n, output);
                    } else {
                        dot16_row_8(p0 + ox * step, p1 + ox * step, step, pixels, filter16, oc_n, output);
                    }
                }
                continue;
            }
            /* Pixels pair in output order, across rows too (an odd row width leaves none alone
               before the last): a's patch is widened into the pair buffer before the ring moves on. */
            for (ox = 0; ox < out_w; ++ox, output += out_c) {
                widen_rows_s8(x, kh, ox * step, rw, out_a == NULL ? wide : wide + 4);
                if (out_a == NULL) {
                    out_a = output;
                    if (output + out_c != output_end) {
                        continue;
                    }
                    for (i = 0; i < kp; i += 4) { /* the last pixel alone: b = a, out1 = out0 */
                        wide32[i + 2] = wide32[i];
                        wide32[i + 3] = wide32[i + 1];
                    }
                }
                dot16_rows_2x2(wide32, filter16, kp, oc_n, out_a, output, p->act_min, p->act_max, pairs_fn);
                out_a = NULL;
            }
        }
    }
}

void tm_conv_2d_widened_s8(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
    tm_conv_2d_widened_channels_s8(p, p->filter16, 0, p->output_c, input, output, scratch);
}

#endif /* TM_DSP_AVAILABLE */
