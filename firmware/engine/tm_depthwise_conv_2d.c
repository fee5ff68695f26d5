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
 * The 3x3 path (tm_depthwise_conv_2d.h): one output row of one output channel. x: the
 * channel plane at the row's first window, w: the five tap words of the ring rotation; job:
 * the row's constants (tm_dw3_job_t), rec = w + job->rec_offset bytes: (multiplier2,
 * bias_folded + round, round). Per pixel, with A = bias_folded + round + taps:
 *   A   = SMLAD x pairs 0..3 with w[0..3], then + x[8] * w[4].hi     (SMLABT)
 *   out = SSAT8((SMMLAR(A - round, multiplier2, A) + ((A - round) >> 31)) >> w[4].lo)
 * which is tm_requant_rec (tm_dsp.h) of acc = A - round; the _clamp kernels then clamp out
 * to [act_min, act_max] (a fused activation narrower than int8). The window moves 3 * stride_w
 * halfwords a pixel, the output output_c bytes.
 */
typedef struct {
    int32_t rec_offset;       /* bytes from a channel's taps to its record (this row's rotation) */
    int32_t out_stride;       /* output_c */
    int32_t span;             /* bytes from the first window of a row to past the last */
    int32_t act_min, act_max;
} tm_dw3_job_t;
typedef void tm_dw3_row_fn(const int16_t *x, int8_t *out, const int32_t *w, const tm_dw3_job_t *job);
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__GNUC__) && !defined(TM_DSP_EMULATE)
/*
 * Thumb-2: all 14 registers hold the loop's values (r0 window, r1 output, r2 multiplier2,
 * r3 input pair, r4-r8 taps, r9 bias + round, r10 round, r11 output stride, r12 A, lr end),
 * 19 instructions a pixel (27 with the clamp, whose bounds go on the stack). Arguments: r0 x,
 * r1 out, r2 w, r3 job. STEP: bytes between windows (6 * stride_w).
 */
#define TM_DW3_ROW_ASM(STEP, CLAMP_SETUP, CLAMP, CLAMP_DONE)                       \
    "push {r4-r11, lr}\n\t"                                                        \
    "ldr r11, [r3, #4]\n\t"                                                        \
    "ldr lr, [r3, #8]\n\t"                                                         \
    "add lr, r0\n\t"                                                               \
    "ldr r12, [r3]\n\t"                                                            \
    "add r12, r2\n\t" CLAMP_SETUP                                                  \
    "ldm r2, {r4-r8}\n\t"                                                          \
    "ldm r12, {r2, r9, r10}\n\t"                                                   \
    "1:\n\t"                                                                       \
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
    "ssat r12, #8, r12\n\t" CLAMP                                                  \
    "strb r12, [r1]\n\t"                                                           \
    "add r1, r1, r11\n\t"                                                          \
    "cmp r0, lr\n\t"                                                               \
    "bne 1b\n\t" CLAMP_DONE                                                        \
    "pop {r4-r11, pc}\n\t"
/* The bounds go to the stack: [sp] act_min, [sp, #4] act_max. */
#define TM_DW3_CLAMP_SETUP                                                         \
    "ldr r4, [r3, #12]\n\t"                                                        \
    "ldr r5, [r3, #16]\n\t"                                                        \
    "push {r4, r5}\n\t"
#define TM_DW3_CLAMP                                                               \
    "ldr r3, [sp]\n\t"                                                             \
    "cmp r12, r3\n\t"                                                              \
    "it lt\n\t"                                                                    \
    "movlt r12, r3\n\t"                                                            \
    "ldr r3, [sp, #4]\n\t"                                                         \
    "cmp r12, r3\n\t"                                                              \
    "it gt\n\t"                                                                    \
    "movgt r12, r3\n\t"
#define TM_ARG __attribute__((unused)) /* read by the assembly, per the AAPCS */
#define TM_DW3_ROW(NAME, STEP, CLAMP_SETUP, CLAMP, CLAMP_DONE)                                             \
    __attribute__((naked, noinline)) static void NAME(TM_ARG const int16_t *x, TM_ARG int8_t *out,          \
                                                      TM_ARG const int32_t *w, TM_ARG const tm_dw3_job_t *job) \
    {                                                                                                       \
        __asm__ volatile(TM_DW3_ROW_ASM(STEP, CLAMP_SETUP, CLAMP, CLAMP_DONE));                             \
    }
TM_DW3_ROW(dw3_row_s1, "6", "", "", "")
TM_DW3_ROW(dw3_row_s2, "12", "", "", "")
TM_DW3_ROW(dw3_row_s1_clamp, "6", TM_DW3_CLAMP_SETUP, TM_DW3_CLAMP, "add sp, #8\n\t")
TM_DW3_ROW(dw3_row_s2_clamp, "12", TM_DW3_CLAMP_SETUP, TM_DW3_CLAMP, "add sp, #8\n\t")
#undef TM_DW3_ROW
#undef TM_DW3_CLAMP
#undef TM_DW3_CLAMP_SETUP
#undef TM_DW3_ROW_ASM
#undef TM_ARG
#else
static inline void dw3_row(const int16_t *x, int8_t *out, const int32_t *w, const tm_dw3_job_t *job, int32_t step)
{
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
        *out = (int8_t)tm_clamp(TM_SSAT8(a >> (w[4] & 0xff)), job->act_min, job->act_max);
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
#define dw3_row_s1_clamp dw3_row_s1
#define dw3_row_s2_clamp dw3_row_s2
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
        for (; c + 4 <= cin; c += 4, dst += 4 * plane) {
            const int8_t *s = src + c;
            for (i = 0; i < span; i += 3, s += cin) {
                const int32_t v = tm_read_s8x4(s);
                const int32_t even = TM_SXTB16(v), odd = TM_SXTB16_ROR8(v);
                dst[i] = (int16_t)even;
                dst[i + plane] = (int16_t)odd;
                dst[i + 2 * plane] = (int16_t)(even >> 16);
                dst[i + 3 * plane] = (int16_t)(odd >> 16);
            }
        }
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
static void depthwise_3x3_dsp(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output,
                              int8_t *scratch)
{
    const int32_t cin = p->input_c, mult = p->depth_multiplier, cout = p->output_c;
    const int32_t cols = TM_DW3_COLS(p);
    const int32_t plane = TM_DW3_PLANE(p);
    const int32_t row = p->input_w * cin;
    const int32_t inside = tm_min(p->input_w, cols - p->pad_w); /* image columns in the ring */
    const int16_t pad = (int16_t)(-p->input_offset);
    const int32_t clamp = p->act_min != TM_INT8_MIN || p->act_max != TM_INT8_MAX;
    tm_dw3_job_t job;
    tm_dw3_row_fn *const row_fn = p->stride_w == 1 ? (clamp ? dw3_row_s1_clamp : dw3_row_s1)
                                                   : (clamp ? dw3_row_s2_clamp : dw3_row_s2);
    int16_t *const planes = (int16_t *)(void *)scratch;
    int32_t n, oy, r, m;
    job.out_stride = cout;
    job.span = 6 * p->stride_w * p->output_w;
    job.act_min = p->act_min;
    job.act_max = p->act_max;
    for (r = 0; r < 3; ++r) { /* the padding columns of every slot, once */
        dw3_fill(planes + r, plane, cin, NULL, p->pad_w, pad);
        dw3_fill(planes + 3 * (p->pad_w + inside) + r, plane, cin, NULL, cols - p->pad_w - inside, pad);
    }
    for (n = 0; n < p->batches; ++n) {
        const int8_t *in_n = input + (size_t)n * p->input_h * row;
        int32_t next = -p->pad_h, slot = 0; /* the next input row to load and its slot */
        for (oy = 0; oy < p->output_h; ++oy, output += p->output_w * cout) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int32_t *w;
            int8_t *out = output;
            const int16_t *x = planes;
            for (; next < iy0 + 3; ++next, slot = slot == 2 ? 0 : slot + 1) {
                if (next >= iy0) {
                    dw3_fill(planes + 3 * p->pad_w + slot, plane, cin,
                             next >= 0 && next < p->input_h ? in_n + (size_t)next * row : NULL, inside, pad);
                }
            }
            /* Rows iy0, iy0 + 1, iy0 + 2 are now in slots slot, slot + 1, slot + 2 (mod 3). */
            w = p->packed + 5 * slot;
            job.rec_offset = 4 * (15 - 5 * slot);
            for (m = 0; out < output + cout; ++out, w += TM_DW3_PACKED_CHANNEL) {
                row_fn(x, out, w, &job);
                if (++m == mult) { /* output channel oc reads input channel oc / mult */
                    m = 0;
                    x += plane;
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

#else /* no DSP extension: RV32IMC, Cortex-M0 (armv6-m) */

/*
 * Depth multiplier 1 with bias_folded and requant, on cores without SIMD multiply-accumulate:
 * per output pixel, four channels at a time, each tap one byte load of input and filter per
 * channel and a MUL + ADD (about 4.5 instructions a MAC on RV32IM). Taps outside the image
 * read the zero point (x + input_offset = 0, as the folded bias assumes).
 */
static void depthwise_scalar(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t channels = p->input_c;
    const int32_t c4 = channels & ~3;
    const int32_t tap_dx = p->dilation_w * channels;
    const int32_t tap_dy = p->dilation_h * p->input_w * channels;
    const int32_t pad = -p->input_offset;
    int32_t n, oy, ox, c, ky, kx;
    for (n = 0; n < p->batches; ++n) {
        const int8_t *in_n = input + (size_t)n * p->input_h * p->input_w * channels;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->output_w; ++ox, output += channels) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int32_t inside = iy0 >= 0 && iy0 + (p->filter_h - 1) * p->dilation_h < p->input_h &&
                                       ix0 >= 0 && ix0 + (p->filter_w - 1) * p->dilation_w < p->input_w;
                const int8_t *corner = in_n + ((size_t)iy0 * p->input_w + ix0) * channels;
                for (c = 0; c < c4; c += 4) {
                    const int8_t *w = p->filter + c;
                    int32_t a0 = p->bias_folded[c], a1 = p->bias_folded[c + 1];
                    int32_t a2 = p->bias_folded[c + 2], a3 = p->bias_folded[c + 3];
                    const int8_t *row = corner + c;
                    if (inside) { /* no checks per tap */
                        for (ky = 0; ky < p->filter_h; ++ky, row += tap_dy) {
                            const int8_t *x = row;
                            for (kx = 0; kx < p->filter_w; ++kx, x += tap_dx, w += channels) {
                                a0 += (int32_t)x[0] * w[0];
                                a1 += (int32_t)x[1] * w[1];
                                a2 += (int32_t)x[2] * w[2];
                                a3 += (int32_t)x[3] * w[3];
                            }
                        }
                    }
                    for (ky = 0; !inside && ky < p->filter_h; ++ky, row += tap_dy) {
                        const int32_t iy = iy0 + ky * p->dilation_h;
                        const int8_t *x = row;
                        for (kx = 0; kx < p->filter_w; ++kx, x += tap_dx, w += channels) {
                            if (iy >= 0 && iy < p->input_h && ix0 + kx * p->dilation_w >= 0 &&
                                ix0 + kx * p->dilation_w < p->input_w) {
                                a0 += (int32_t)x[0] * w[0];
                                a1 += (int32_t)x[1] * w[1];
                                a2 += (int32_t)x[2] * w[2];
                                a3 += (int32_t)x[3] * w[3];
                            } else {
                                a0 += pad * w[0];
                                a1 += pad * w[1];
                                a2 += pad * w[2];
                                a3 += pad * w[3];
                            }
                        }
                    }
                    output[c] = tm_requant_s8(a0, &p->requant[c], p->act_min, p->act_max);
                    output[c + 1] = tm_requant_s8(a1, &p->requant[c + 1], p->act_min, p->act_max);
                    output[c + 2] = tm_requant_s8(a2, &p->requant[c + 2], p->act_min, p->act_max);
                    output[c + 3] = tm_requant_s8(a3, &p->requant[c + 3], p->act_min, p->act_max);
                }
                for (; c < channels; ++c) {
                    const int8_t *w = p->filter + c;
                    int32_t a = p->bias_folded[c];
                    for (ky = 0; ky < p->filter_h; ++ky) {
                        const int32_t iy = iy0 + ky * p->dilation_h;
                        for (kx = 0; kx < p->filter_w; ++kx, w += channels) {
                            const int32_t ix = ix0 + kx * p->dilation_w;
                            const int32_t x = iy >= 0 && iy < p->input_h && ix >= 0 && ix < p->input_w
                                                  ? in_n[((size_t)iy * p->input_w + ix) * channels + c]
                                                  : pad;
                            a += x * *w;
                        }
                    }
                    output[c] = tm_requant_s8(a, &p->requant[c], p->act_min, p->act_max);
                }
            }
        }
    }
}

#endif /* TM_DSP_AVAILABLE */

void tm_depthwise_conv_2d_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output,
                             int8_t *scratch)
{
#if TM_DSP_AVAILABLE
    if (scratch != NULL && p->packed != NULL && TM_DEPTHWISE_CONV_2D_SCRATCH_BYTES(p) > 0) {
        depthwise_3x3_dsp(p, input, output, scratch);
        return;
    }
    if (p->depth_multiplier == 1 && p->bias_folded != NULL && p->requant != NULL) {
        depthwise_dsp(p, input, output);
        return;
    }
#else
    if (p->depth_multiplier == 1 && p->bias_folded != NULL && p->requant != NULL) {
        depthwise_scalar(p, input, output);
        return;
    }
#endif
    (void)scratch;
    depthwise_generic(p, input, output);
}
