/*
 * tm_depthwise_conv_2d_3x3.c - DEPTHWISE_CONV_2D, 3x3 filters (DSP cores; tm_depthwise_conv_2d_3x3_fits:
 * dilation 1, stride_w 1 or 2; any channel count and depth multiplier; given packed and scratch):
 *
 *   acc = bias_folded[oc] + sum over the 9 taps of filter[0][ky][kx][oc] * x   (x = zero point outside the image)
 *   out = clamp(tm_requant_rec(acc, multiplier2, round, e), act_min, act_max)
 *
 * Three input
 * rows are kept, widened to int16, in a channel-planar ring: channel c's plane is
 * TM_DW3_PLANE halfwords at scratch + 2 * c * TM_DW3_PLANE, and halfword 3 * col + slot
 * holds column col (input column col - pad_w, TM_DW3_COLS of them) of the input row
 * iy with (iy + pad_h) mod 3 = slot; padding columns and rows outside the image hold the
 * zero point (their terms are 0 with the folded bias). An output pixel's window is then 9
 * consecutive halfwords (3 columns x 3 slots), read as 5 words, and each output channel
 * runs along the output row with its taps in registers. The slots' order depends on the
 * output row: with q = (oy * stride_h) mod 3, the slot of its first input row, slot s holds
 * filter row (s - q) mod 3, so packed (compile time) has, per output channel oc,
 * TM_DW3_PACKED_CHANNEL int32 words: for each rotation q = 0, 1, 2 five tap words, the
 * int16 pairs (t0, t1), (t2, t3), (t4, t5), (t6, t7) of t[3 kx + s] = filter[0][(s - q) mod 3][kx][oc]
 * (the first in the low half), then t8 in the high half of the fifth word with e
 * (tm_requant_rec) in its low byte; then multiplier2, bias_folded[oc] + round, round
 * (tm_dsp.h tm_requant_rec).
 */
#include "tm_depthwise_conv_2d_3x3.h"

#include <stddef.h>

#include "tm_common.h"
#include "tm_dsp.h"

#if TM_DSP_AVAILABLE

/*
 * The 3x3 algorithm (above): one output row of a run of output channels (all of them when the
 * depth multiplier is 1, one otherwise), so a channel costs no call. x: the first channel's plane
 * at the row's first window, w: its five tap words of the ring rotation; job: the row's constants
 * (tm_dw3_job_t), rec = w + job->rec_offset bytes: (multiplier2, bias_folded + round, round).
 * Per pixel, with A = bias_folded + round + taps:
 *   A   = SMLAD x pairs 0..3 with w[0..3], then + x[8] * w[4].hi     (SMLABT)
 *   out = SSAT8((SMMLAR(A - round, multiplier2, A) + ((A - round) >> 31)) >> w[4].lo)
 * which is tm_requant_rec (tm_dsp.h) of acc = A - round (a fused activation narrower than int8
 * is clamped afterwards, over the whole output row). The window moves 3 * stride_w
 * halfwords a pixel, the output out_stride bytes; after a channel's row the window moves
 * x_next bytes (to the next plane) and the output back by out_back bytes (to the next channel).
 */
typedef struct {
    const int32_t *w_end;     /* past the run's last channel: w + TM_DW3_PACKED_CHANNEL * channels */
    int32_t rec_offset;       /* bytes from a channel's taps to its record (this row's rotation) */
    int32_t span;             /* bytes from the first window of a row to past the last */
    int32_t x_next;           /* bytes from past a channel's last window to the next channel's first */
    int32_t out_back;         /* output_w * out_stride - 1, + out_stride when odd (the assembly's odd rows
                                 start one output step back) */
    int32_t odd;              /* output_w is odd (the assembly's two-pixel loop enters at its second pixel) */
    int32_t out_stride;       /* output_c */
} tm_dw3_job_t;
typedef void tm_dw3_row_fn(const int16_t *x, int8_t *out, const int32_t *w, const tm_dw3_job_t *job);
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__GNUC__) && !defined(TM_DSP_EMULATE)
/*
 * Thumb-2: all 14 registers hold the pixel loop's values (r0 window, r1 output, r2 multiplier2,
 * r3 input pair, r4-r8 taps, r9 bias + round, r10 round, r11 output stride, r12 A, lr end),
 * 17.5 instructions a pixel (two a pass: one loop test and one output step per pair; an odd row
 * enters at the second pixel, its output pointer one step back), 15 a channel. The job's first
 * six words go to the stack under the current w: [sp] w, [sp, #4] w_end, #8 rec_offset, #12 span,
 * #16 x_next, #20 out_back, #24 odd.
 * Arguments: r0 x, r1 out, r2 w, r3 job.
 * STEP: bytes between windows (6 * stride_w).
 */
#define TM_DW3_PIXEL_ASM(STEP, STORE)                                                  \
    "ldr r3, [r0], #" STEP "\n\t"                                                  \
    "smlad r12, r3, r4, r9\n\t"                                                    \
    "ldr r3, [r0, #4 - " STEP "]\n\t"                                              \
    "smlad r12, r3, r5, r12\n\t"                                                   \
    "ldr r3, [r0, #8 - " STEP "]\n\t"                                              \
    "smlad r12, r3, r6, r12\n\t"                                                   \
    "ldr r3, [r0, #12 - " STEP "]\n\t"                                             \
    "smlad r12, r3, r7, r12\n\t"                                                   \
    "ldr r3, [r0, #16 - " STEP "]\n\t"                                             \
    "smlabt r12, r3, r8, r12\n\t"                                                  \
    "sub r3, r12, r10\n\t"                                                         \
    "smmlar r12, r3, r2, r12\n\t"                                                  \
    "add r12, r12, r3, asr #31\n\t"                                                \
    "asr r12, r12, r8\n\t"                                                         \
    "ssat r12, #8, r12\n\t" STORE
#define TM_DW3_ROW_ASM(STEP)                                                       \
    "push {r4-r11, lr}\n\t"                                                        \
    "ldm r3, {r4-r10}\n\t"                                                         \
    "mov r11, r10\n\t"                                                             \
    "mls r1, r9, r11, r1\n\t"                                                      \
    "push {r2, r4-r9}\n\t"                                                         \
    "2:\n\t"                                                                       \
    "ldrd r12, lr, [sp, #8]\n\t"                                                   \
    "add lr, r0\n\t"                                                               \
    "add r12, r2\n\t"                                                              \
    "ldm r2, {r4-r8}\n\t"                                                          \
    "ldm r12, {r2, r9, r10}\n\t"                                                   \
    "ldr r3, [sp, #24]\n\t"                                                        \
    "cbnz r3, 3f\n\t"                                                              \
    "1:\n\t" TM_DW3_PIXEL_ASM(STEP, "strb r12, [r1]\n\t")                           \
    "3:\n\t" TM_DW3_PIXEL_ASM(STEP, "strb r12, [r1, r11]\n\tadd r1, r1, r11, lsl #1\n\t")  \
    "cmp r0, lr\n\t"                                                               \
    "bne 1b\n\t"                                                                   \
    "ldrd r3, r12, [sp, #16]\n\t"                                                  \
    "add r0, r3\n\t"                                                               \
    "sub r1, r12\n\t"                                                              \
    "ldrd r2, r3, [sp]\n\t"                                                        \
    "add r2, #72\n\t"                                                              \
    "cmp r2, r3\n\t"                                                               \
    "str r2, [sp]\n\t"                                                             \
    "bne 2b\n\t"                                                                   \
    "add sp, #28\n\t"                                                              \
    "pop {r4-r11, pc}\n\t"
#define TM_ARG __attribute__((unused)) /* read by the assembly, per the AAPCS */
#define TM_DW3_ROW(NAME, STEP)                                                                              \
    __attribute__((naked, noinline)) static void NAME(TM_ARG const int16_t *x, TM_ARG int8_t *out,          \
                                                      TM_ARG const int32_t *w, TM_ARG const tm_dw3_job_t *job) \
    {                                                                                                       \
        __asm__ volatile(TM_DW3_ROW_ASM(STEP));                                                             \
    }
TM_DW3_ROW(dw3_row_s1, "6")
TM_DW3_ROW(dw3_row_s2, "12")
#undef TM_DW3_ROW
/*
 * The ring fill of four channels a group (dw3_fill): dims = (plane bytes, input bytes a pixel,
 * pixels >= 1, groups >= 1). Two pixels a pass (an odd count enters at the second), LDRSB + STRH a
 * value with the four plane pointers post-incremented: 2.5 instructions a value.
 */
#define TM_DW3_FILL_PIXEL_ASM                                                      \
    "ldrsb r7, [r1]\n\t"                                                           \
    "ldrsb r8, [r1, #1]\n\t"                                                       \
    "ldrsb r9, [r1, #2]\n\t"                                                       \
    "ldrsb r10, [r1, #3]\n\t"                                                      \
    "add r1, r3\n\t"                                                               \
    "strh r7, [r0], #6\n\t"                                                        \
    "strh r8, [r4], #6\n\t"                                                        \
    "strh r9, [r5], #6\n\t"                                                        \
    "strh r10, [r6], #6\n\t"
__attribute__((naked, noinline)) static void dw3_fill4(TM_ARG int16_t *dst, TM_ARG const int8_t *src,
                                                       TM_ARG const int32_t *dims)
{
    __asm__ volatile("push {r4-r11, lr}\n\t"
                     "ldm r2, {r2, r3, r12, lr}\n\t"
                     "4:\n\t"
                     "add r4, r0, r2\n\t"
                     "add r5, r4, r2\n\t"
                     "add r6, r5, r2\n\t"
                     "add r11, r12, r12, lsl #1\n\t"
                     "add r11, r0, r11, lsl #1\n\t"
                     "push {r0, r1}\n\t"
                     "tst r12, #1\n\t"
                     "bne 3f\n\t"
                     "1:\n\t" TM_DW3_FILL_PIXEL_ASM "3:\n\t" TM_DW3_FILL_PIXEL_ASM
                     "cmp r0, r11\n\t"
                     "bne 1b\n\t"
                     "pop {r0, r1}\n\t"
                     "add r0, r0, r2, lsl #2\n\t"
                     "add r1, #4\n\t"
                     "subs lr, #1\n\t"
                     "bne 4b\n\t"
                     "pop {r4-r11, pc}\n\t");
}
#define TM_DW3_FILL_ASM 1
/* Words dst .. end (a multiple of four apart, at least four) set to value: STM, four words a store. */
__attribute__((naked, noinline)) static void dw3_set4(TM_ARG uint32_t *dst, TM_ARG const uint32_t *end,
                                                      TM_ARG uint32_t value)
{
    __asm__ volatile("push {r4, lr}\n\t"
                     "mov r3, r2\n\t"
                     "mov r4, r2\n\t"
                     "mov lr, r2\n\t"
                     "1:\n\t"
                     "stmia r0!, {r2, r3, r4, lr}\n\t"
                     "cmp r0, r1\n\t"
                     "bne 1b\n\t"
                     "pop {r4, pc}\n\t");
}
#undef TM_DW3_FILL_PIXEL_ASM
#undef TM_DW3_ROW_ASM
#undef TM_DW3_PIXEL_ASM
#undef TM_ARG
#else
static inline void dw3_row(const int16_t *x, int8_t *out, const int32_t *w, const tm_dw3_job_t *job, int32_t step)
{
    for (; w != job->w_end; w += TM_DW3_PACKED_CHANNEL) {
        const int32_t *const rec = (const int32_t *)(const void *)((const int8_t *)(const void *)w + job->rec_offset);
        const int16_t *const x_end = (const int16_t *)(const void *)((const int8_t *)(const void *)x + job->span);
        for (; x != x_end; x += step, out += job->out_stride) {
            int32_t a = TM_SMLAD(tm_read_s16x2(x), w[0], rec[1]);
            int32_t acc;
            a = TM_SMLAD(tm_read_s16x2(x + 2), w[1], a);
            a = TM_SMLAD(tm_read_s16x2(x + 4), w[2], a);
            a = TM_SMLAD(tm_read_s16x2(x + 6), w[3], a);
            a = TM_SMLATT((int32_t)((uint32_t)(uint16_t)x[8] << 16), w[4], a);
            acc = (int32_t)((uint32_t)a - (uint32_t)rec[2]);
            a = (int32_t)((uint32_t)TM_SMMLAR(acc, rec[0], a) + (uint32_t)(acc >> 31));
            *out = (int8_t)TM_SSAT8(a >> (w[4] & 0xff));
        }
        x = (const int16_t *)(const void *)((const int8_t *)(const void *)x + job->x_next);
        out -= job->out_back - job->odd * job->out_stride;
    }
}
#define TM_DW3_ROW(NAME, STEP)                                                                 \
    static void NAME(const int16_t *x, int8_t *out, const int32_t *w, const tm_dw3_job_t *job) \
    {                                                                                          \
        dw3_row(x, out, w, job, STEP);                                                         \
    }
TM_DW3_ROW(dw3_row_s1, 3)
TM_DW3_ROW(dw3_row_s2, 6)
#undef TM_DW3_ROW
#endif

/*
 * One ring slot of every channel plane (planes `plane` halfwords apart), `pixels` columns from
 * dst on (3 halfwords a column): the pixels of `cin` channels at src, widened, or the zero
 * point `pad` where src is NULL. Channel-major, so each loop has one store pattern.
 */
static void dw3_fill(int16_t *dst, int32_t plane, int32_t cin, const int8_t *src, int32_t pixels, int16_t pad)
{
    const int32_t span = 3 * pixels;
    int32_t c = 0, i;
    if (src != NULL) {
#if defined(TM_DW3_FILL_ASM)
        if (cin >= 4 && pixels > 0) {
            const int32_t dims[4] = {2 * plane, cin, pixels, cin >> 2};
            dw3_fill4(dst, src, dims);
            c = cin & ~3;
            dst += c * plane;
        }
#else
        for (; c + 4 <= cin; c += 4, dst += 4 * plane) { /* LDRSB + STRH a value: no unpacking */
            const int8_t *s = src + c;
            int16_t *d0 = dst, *d1 = dst + plane, *d2 = dst + 2 * plane, *d3 = dst + 3 * plane;
            for (i = 0; i < span; i += 3, s += cin) {
                d0[i] = s[0];
                d1[i] = s[1];
                d2[i] = s[2];
                d3[i] = s[3];
            }
        }
#endif
        for (; c < cin; ++c, dst += plane) {
            const int8_t *s = src + c;
            for (i = 0; i < span; i += 3, s += cin) {
                dst[i] = *s;
            }
        }
    }
    for (; c < cin; ++c, dst += plane) {
        for (i = 0; i < span; i += 3) {
            dst[i] = pad;
        }
    }
}

/*
 * 3x3, dilation 1, stride_w 1 or 2, with scratch and `packed`
 * (tm_depthwise_conv_2d.h): the padding columns of the channel-planar ring are set once, each
 * input row is widened into its slot once (slot (iy + pad_h) mod 3; rows outside the image hold
 * the zero point, whose terms the folded bias cancels), then each output channel runs along the output
 * row with its taps in registers, the ring's rotation picking their order.
 */
void tm_depthwise_conv_2d_3x3_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output,
                              int8_t *scratch)
{
    const int32_t cin = p->input_c, mult = p->depth_multiplier, cout = p->output_c;
    const int32_t cols = TM_DW3_COLS(p);
    const int32_t plane = TM_DW3_PLANE(p);
    const int32_t row = p->input_w * cin;
    const int32_t inside = tm_min(p->input_w, cols - p->pad_w); /* image columns in the ring */
    const int16_t pad = (int16_t)(-p->input_offset);
    const uint32_t pad2 = (uint32_t)(uint16_t)pad * 0x10001u;
    const int32_t clamp = p->act_min != TM_INT8_MIN || p->act_max != TM_INT8_MAX;
    tm_dw3_job_t job;
    tm_dw3_row_fn *const row_fn = p->stride_w == 1 ? dw3_row_s1 : dw3_row_s2;
    int16_t *const planes = (int16_t *)(void *)scratch;
    int32_t n, oy, m, i;
    job.out_stride = cout;
    job.span = 6 * p->stride_w * p->output_w;
    job.x_next = 2 * plane - job.span;
    job.odd = p->output_w & 1;
    job.out_back = (p->output_w + job.odd) * cout - 1;
    for (n = 0; n < p->batches; ++n) {
        const int8_t *in_n = input + (size_t)n * p->input_h * row;
        int32_t next = -p->pad_h, slot = 0; /* the next input row to load and its slot */
        /* The whole ring to the zero point, two words a pass: the padding columns and the rows
           above the image are then never written again (only image columns are filled). */
        uint32_t *word = (uint32_t *)(void *)scratch;
        uint32_t *const words_end = word + plane / 2 * cin;
#if defined(TM_DW3_FILL_ASM)
        if (words_end - word >= 4) {
            word += (words_end - word) & ~3;
            dw3_set4((uint32_t *)(void *)scratch, word, pad2);
        }
#endif
        for (; word != words_end; ++word) {
            *word = pad2;
        }
        for (oy = 0; oy < p->output_h; ++oy, output += p->output_w * cout) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int32_t *w;
            int8_t *out = output;
            const int16_t *x = planes;
            for (; next < iy0 + 3; ++next, slot = slot == 2 ? 0 : slot + 1) {
                if (next >= iy0 && next >= 0) { /* rows above the image: the zero point already */
                    dw3_fill(planes + 3 * p->pad_w + slot, plane, cin,
                             next >= 0 && next < p->input_h ? in_n + (size_t)next * row : NULL, inside, pad);
                }
            }
            /* Rows iy0, iy0 + 1, iy0 + 2 are now in slots slot, slot + 1, slot + 2 (mod 3). */
            w = p->packed + 5 * slot;
            job.rec_offset = 4 * (15 - 5 * slot);
            if (mult == 1) { /* one call: channel c reads plane c */
                job.w_end = w + TM_DW3_PACKED_CHANNEL * cout;
                row_fn(x, out, w, &job);
            } else {
                for (m = 0; out < output + cout; ++out, w += TM_DW3_PACKED_CHANNEL) {
                    job.w_end = w + TM_DW3_PACKED_CHANNEL;
                    row_fn(x, out, w, &job);
                    if (++m == mult) { /* output channel oc reads input channel oc / mult */
                        m = 0;
                        x += plane;
                    }
                }
            }
            for (i = 0; clamp && i < p->output_w * cout; ++i) { /* an activation narrower than int8 */
                output[i] = (int8_t)tm_clamp(output[i], p->act_min, p->act_max);
            }
        }
    }
}

#endif /* TM_DSP_AVAILABLE */
