/* tm_support_dot_s8.c - int8 dot-product rows, 2 rows x 2 channels; the math is in tm_support_dot_s8.h. */
#include "tm_support_dot_s8.h"

#include <stddef.h>

#include "tm_common.h"
#include "tm_dsp.h"

#if TM_DSP_AVAILABLE

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
#if TM_DSP_ASM
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
