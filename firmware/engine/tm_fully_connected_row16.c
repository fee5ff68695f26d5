/* tm_fully_connected_row16.c - one input row x int16-widened weights; see tm_fully_connected_row16.h. */
#include "tm_fully_connected_row16.h"

#include <stddef.h>
#include <string.h>

#if TM_DSP_AVAILABLE

/* As tm_conv_2d.c: the assembly on a real DSP core with an optimising gcc/clang. */
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__GNUC__) && defined(__OPTIMIZE__) && \
    !defined(TM_DSP_EMULATE)
#define TM_FC_ROW16_ASM 1
#else
#define TM_FC_ROW16_ASM 0
#endif

/*
 * acc[j] += sum over the words x..x_end (four int8 each) of the taps of channel j, whose weights
 * start at w + j * stride bytes (two int16 words per input word), j = 0..3.
 */
#if TM_FC_ROW16_ASM
/*
 * Thumb-2: per input word one LDR and two SXTB16, per channel one LDRD and two SMLAD, CMP + BNE:
 * 17 instructions per 16 MACs. r0 x, r1 x_end, r2 w (then the even half), r3 stride (then the odd
 * half), r4-r7 the four channels' weight pointers, r8-r11 the accumulators, r12 and lr the weights;
 * acc on the stack.
 */
#define TM_ARG __attribute__((unused)) /* read by the assembly, per the AAPCS */
__attribute__((naked, noinline)) static void dot4(TM_ARG const int8_t *x, TM_ARG const int8_t *x_end,
                                                  TM_ARG const int32_t *w, TM_ARG int32_t stride,
                                                  TM_ARG int32_t *acc)
{
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "mov r4, r2\n\t"
        "add r5, r4, r3\n\t"
        "add r6, r5, r3\n\t"
        "add r7, r6, r3\n\t"
        "ldr r12, [sp, #36]\n\t"
        "ldm r12, {r8-r11}\n\t"
        "cmp r0, r1\n\t"
        "beq 2f\n\t"
        "1:\n\t"
        "ldr r12, [r0], #4\n\t"
        "sxtb16 r2, r12\n\t"
        "sxtb16 r3, r12, ror #8\n\t"
        "ldrd r12, lr, [r4], #8\n\t"
        "smlad r8, r2, r12, r8\n\t"
        "smlad r8, r3, lr, r8\n\t"
        "ldrd r12, lr, [r5], #8\n\t"
        "smlad r9, r2, r12, r9\n\t"
        "smlad r9, r3, lr, r9\n\t"
        "ldrd r12, lr, [r6], #8\n\t"
        "smlad r10, r2, r12, r10\n\t"
        "smlad r10, r3, lr, r10\n\t"
        "ldrd r12, lr, [r7], #8\n\t"
        "smlad r11, r2, r12, r11\n\t"
        "smlad r11, r3, lr, r11\n\t"
        "cmp r0, r1\n\t"
        "bne 1b\n\t"
        "2:\n\t"
        "ldr r12, [sp, #36]\n\t"
        "stm r12, {r8-r11}\n\t"
        "pop {r4-r11, pc}\n\t");
}
#undef TM_ARG
#else
TM_HOT static void dot4(const int8_t *x, const int8_t *x_end, const int32_t *w, int32_t stride, int32_t *acc)
{
    const int32_t *w0 = w;
    const int32_t *w1 = w0 + stride / 4, *w2 = w1 + stride / 4, *w3 = w2 + stride / 4;
    int32_t c0 = acc[0], c1 = acc[1], c2 = acc[2], c3 = acc[3];
    for (; x != x_end; x += 4, w0 += 2, w1 += 2, w2 += 2, w3 += 2) {
        const int32_t v = tm_read_s8x4(x);
        const int32_t even = TM_SXTB16(v), odd = TM_SXTB16_ROR8(v);
        c0 = TM_SMLAD(odd, w0[1], TM_SMLAD(even, w0[0], c0));
        c1 = TM_SMLAD(odd, w1[1], TM_SMLAD(even, w1[0], c1));
        c2 = TM_SMLAD(odd, w2[1], TM_SMLAD(even, w2[0], c2));
        c3 = TM_SMLAD(odd, w3[1], TM_SMLAD(even, w3[0], c3));
    }
    acc[0] = c0;
    acc[1] = c1;
    acc[2] = c2;
    acc[3] = c3;
}
#endif

/* One channel's dot product over whole words (the channels left after the blocks of four). */
static int32_t dot1(const int8_t *x, const int8_t *x_end, const int32_t *w, int32_t acc)
{
    for (; x != x_end; x += 4, w += 2) {
        const int32_t v = tm_read_s8x4(x);
        acc = TM_SMLAD(TM_SXTB16_ROR8(v), w[1], TM_SMLAD(TM_SXTB16(v), w[0], acc));
    }
    return acc;
}

void tm_fully_connected_row16_s8(const int8_t *x, const int32_t *filter16, int32_t depth, int32_t channels,
                                 int32_t act_min, int32_t act_max, int8_t *out)
{
    const int32_t kp = (depth + 3) & ~3;
    const int32_t stride = kp / 2 + 4; /* words per channel */
    const int32_t words = depth / 4;
    const int8_t *const x_end = x + 4 * words;
    int32_t last = 0, oc, j;
    if (depth & 3) { /* the last, partial word: zeros past depth (their weights are 0 too) */
        memcpy(&last, x_end, (size_t)(depth & 3));
    }
    for (oc = 0; oc < channels; oc += 4) {
        const int32_t block = channels - oc < 4 ? channels - oc : 4;
        const int32_t *w = filter16 + (size_t)oc * stride;
        int32_t acc[4] = {0, 0, 0, 0};
        if (block == 4) {
            dot4(x, x_end, w, 4 * stride, acc);
        } else {
            for (j = 0; j < block; ++j) {
                acc[j] = dot1(x, x_end, w + j * stride, 0);
            }
        }
        for (j = 0; j < block; ++j) {
            const int32_t *wj = w + j * stride;
            const int32_t *rec = wj + kp / 2;
            int32_t a = acc[j];
            if (depth & 3) {
                a = TM_SMLAD(TM_SXTB16_ROR8(last), wj[2 * words + 1], TM_SMLAD(TM_SXTB16(last), wj[2 * words], a));
            }
            out[oc + j] = (int8_t)tm_clamp(tm_requant_rec(a + rec[0], rec[1], rec[2], rec[3]), act_min, act_max);
        }
    }
}

#endif /* TM_DSP_AVAILABLE */
