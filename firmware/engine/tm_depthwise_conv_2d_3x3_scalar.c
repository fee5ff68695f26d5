/* tm_depthwise_conv_2d_3x3_scalar.c - 3x3 DEPTHWISE_CONV_2D on cores without SIMD; the arithmetic
   and the plane are in tm_depthwise_conv_2d_3x3_scalar.h. */
#include "tm_depthwise_conv_2d_3x3_scalar.h"

#include <stddef.h>

#include "tm_common.h"
#include "tm_dsp.h"

#if !TM_DSP_AVAILABLE

#if defined(__ARM_ARCH_6M__)
/* The plane's border (tm_depthwise_conv_2d_3x3_scalar.h): the input zero point wherever the window
   rows and columns lie outside the image, the same for every channel, so written once a layer;
   dw3s_plane then writes only the image part. */
static __attribute__((noinline)) void dw3s_plane_border(const tm_depthwise_conv_2d_params_t *p, int32_t *plane)
{
    const int32_t zero_point = -p->input_offset;
    int32_t *const end = plane + TM_DW3_SCALAR_ROWS(p) * TM_DW3_SCALAR_COLS(p);
    for (; plane < end; ++plane) {
        *plane = zero_point;
    }
}

/* Channel c of image in_n into the image part of the plane. Not inlined: on its own the gather keeps
   its pointers and stride in registers (Thumb-1 has eight for most instructions), two values a step. */
static __attribute__((noinline)) void dw3s_plane(const tm_depthwise_conv_2d_params_t *p, const int8_t *in_n,
                                                 int32_t c, int32_t *plane)
{
    const int32_t rows = TM_DW3_SCALAR_ROWS(p), cols = TM_DW3_SCALAR_COLS(p);
    const int32_t channels = p->input_c;
    const int32_t left = tm_min(p->pad_w, cols);
    const int32_t width = tm_min(p->pad_w + p->input_w, cols) - left; /* image columns in the plane */
    const int32_t top = tm_min(p->pad_h, rows);
    const int32_t bottom = tm_min(p->pad_h + p->input_h, rows);    /* first row past the image */
    const size_t row_stride = (size_t)p->input_w * channels;
    const int8_t *src_row;
    int32_t *dst_row;
    int32_t r;
    if (width <= 0 || bottom <= top) {
        return;
    }
    src_row = in_n + ((size_t)(top - p->pad_h) * p->input_w + (size_t)(left - p->pad_w)) * channels + c;
    dst_row = plane + (size_t)top * cols + left;
    for (r = top; r < bottom; ++r, src_row += row_stride, dst_row += cols) {
        const int8_t *src = src_row;
        int32_t *dst = dst_row;
        int32_t *const end = dst_row + width;
        for (; dst + 2 <= end; dst += 2, src += 2 * channels) {
            dst[0] = src[0];
            dst[1] = src[channels];
        }
        if (dst < end) {
            *dst = src[0];
        }
    }
}
#else
/* RV32's 31 registers do well with the plain loop, inlined, border and image each channel. */
static inline void dw3s_plane_border(const tm_depthwise_conv_2d_params_t *p, int32_t *plane)
{
    (void)p;
    (void)plane;
}

static void dw3s_plane(const tm_depthwise_conv_2d_params_t *p, const int8_t *in_n, int32_t c, int32_t *plane)
{
    const int32_t rows = TM_DW3_SCALAR_ROWS(p), cols = TM_DW3_SCALAR_COLS(p);
    const int32_t channels = p->input_c;
    const int32_t zero_point = -p->input_offset;
    const int32_t left = tm_min(p->pad_w, cols);
    const int32_t right = tm_min(p->pad_w + p->input_w, cols); /* first column past the image */
    int32_t r, q;
    for (r = 0; r < rows; ++r, plane += cols) {
        const int32_t iy = r - p->pad_h;
        if (iy < 0 || iy >= p->input_h) {
            for (q = 0; q < cols; ++q) {
                plane[q] = zero_point;
            }
            continue;
        }
        {
            const int8_t *src = in_n + ((size_t)iy * p->input_w + (left - p->pad_w)) * channels + c;
            for (q = 0; q < left; ++q) {
                plane[q] = zero_point;
            }
            for (; q < right; ++q, src += channels) {
                plane[q] = *src;
            }
            for (; q < cols; ++q) {
                plane[q] = zero_point;
            }
        }
    }
}

#endif

#if defined(__ARM_ARCH_6M__)
/*
 * The outputs of a channel whose sums suit the split requantization, in Thumb-1: GCC keeps the
 * nine taps, three row pointers and the requantization fields in too few low registers (about 115
 * instructions an output). Here the row's three plane values come in with one LDM, the taps and
 * fields are word loads off the record (immediate offsets), and the per-layer steps and bounds sit
 * in high registers (ADD, CMP and MOV reach them): 1 + 3 x 10 + 3 instructions of sums, 20 of
 * requantization, 4-6 of clamp, 4 of store and loop per output, 8 more at the end of a row.
 */
typedef struct {
    int32_t w[9];       /*  0: taps */
    int32_t bias;       /* 36 */
    int32_t m0, m1, m2; /* 40, 44, 48: tm_dw3s_split_requant_t's */
    int32_t half;       /* 52: 256 */
    int32_t round_hi;   /* 56 */
    int32_t shift;      /* 60 */
    int32_t lo, hi;     /* 64, 68: activation bounds */
    int32_t row_step;   /* 72: bytes from past a window row's third value to the next row's first */
    int32_t back_step;  /* 76: bytes from past the window's last row to the next window */
    int32_t out_step;   /* 80: output channels */
    int32_t row_jump;   /* 84: bytes from past a row's last window to the next row's first */
    int8_t *out_end;    /* 88: past the channel's last output */
    int32_t row_out;    /* 92: output bytes a row spans (output_w * out_step) */
} dw3s_row_t;
/* The assembly below reads the fields at these offsets. */
typedef char dw3s_row_offsets_checked[(offsetof(dw3s_row_t, bias) == 36 && offsetof(dw3s_row_t, shift) == 60 &&
                                       offsetof(dw3s_row_t, out_step) == 80 && offsetof(dw3s_row_t, row_out) == 92)
                                          ? 1
                                          : -1];

/* Every output of one channel (output_h >= 1 rows of output_w >= 1) from plane x into out, out + out_step, ... */
/* The parameters arrive in r0-r3 (AAPCS): a naked function names them only for its callers. */
#define TM_DW3S_ASM_ARG __attribute__((unused))
__attribute__((naked, noinline)) static void dw3s_rows_m0(TM_DW3S_ASM_ARG const int32_t *x,
                                                          TM_DW3S_ASM_ARG const dw3s_row_t *r,
                                                          TM_DW3S_ASM_ARG int8_t *out)
{
    __asm__ volatile(
        ".syntax unified\n"
        "push {r4-r7, lr}\n"
        "mov r4, r8\n mov r5, r9\n mov r6, r10\n mov r7, r11\n"
        "push {r4-r7}\n"
        "ldr r4, [r1, #80]\n mov lr, r4\n ldr r3, [r1, #92]\n adds r3, r3, r2\n mov ip, r3\n"
        "ldr r4, [r1, #72]\n mov r9, r4\n"
        "ldr r4, [r1, #76]\n mov r8, r4\n"
        "ldr r4, [r1, #64]\n mov r10, r4\n"
        "ldr r4, [r1, #68]\n mov r11, r4\n"
        "mov r7, r2\n"
        "1:\n"
        "ldr r2, [r1, #36]\n"
        "ldmia r0!, {r3, r4, r5}\n"
        "ldr r6, [r1, #0]\n muls r3, r6, r3\n adds r2, r2, r3\n"
        "ldr r6, [r1, #4]\n muls r4, r6, r4\n adds r2, r2, r4\n"
        "ldr r6, [r1, #8]\n muls r5, r6, r5\n adds r2, r2, r5\n"
        "add r0, r9\n"
        "ldmia r0!, {r3, r4, r5}\n"
        "ldr r6, [r1, #12]\n muls r3, r6, r3\n adds r2, r2, r3\n"
        "ldr r6, [r1, #16]\n muls r4, r6, r4\n adds r2, r2, r4\n"
        "ldr r6, [r1, #20]\n muls r5, r6, r5\n adds r2, r2, r5\n"
        "add r0, r9\n"
        "ldmia r0!, {r3, r4, r5}\n"
        "ldr r6, [r1, #24]\n muls r3, r6, r3\n adds r2, r2, r3\n"
        "ldr r6, [r1, #28]\n muls r4, r6, r4\n adds r2, r2, r4\n"
        "ldr r6, [r1, #32]\n muls r5, r6, r5\n adds r2, r2, r5\n"
        "add r0, r8\n"
        /* tm_dw3s_split_requant */
        "ldr r3, [r1, #40]\n muls r3, r2, r3\n asrs r3, r3, #11\n"
        "ldr r4, [r1, #44]\n muls r4, r2, r4\n adds r3, r3, r4\n asrs r3, r3, #11\n"
        "ldr r4, [r1, #48]\n muls r4, r2, r4\n adds r3, r3, r4\n"
        "ldr r4, [r1, #52]\n adds r3, r3, r4\n"
        "asrs r4, r2, #31\n lsls r4, r4, #9\n adds r3, r3, r4\n"
        "asrs r3, r3, #10\n"
        "ldr r4, [r1, #56]\n adds r3, r3, r4\n"
        "ldr r4, [r1, #60]\n asrs r3, r3, r4\n"
        "cmp r3, r10\n bge 2f\n mov r3, r10\n"
        "2:\n"
        "cmp r3, r11\n ble 3f\n mov r3, r11\n"
        "3:\n"
        "strb r3, [r7]\n"
        "add r7, lr\n"
        "cmp r7, ip\n"
        "bne 1b\n"
        /* end of a row: the plane's next window row, the next row's end, unless the last */
        "ldr r3, [r1, #84]\n adds r0, r0, r3\n"
        "ldr r3, [r1, #88]\n cmp r7, r3\n beq 4f\n"
        "ldr r3, [r1, #92]\n add ip, r3\n"
        "b 1b\n"
        "4:\n"
        "pop {r4-r7}\n"
        "mov r8, r4\n mov r9, r5\n mov r10, r6\n mov r11, r7\n"
        "pop {r4-r7, pc}\n");
}
#endif

#if TM_DW3S_SPLIT_REQUANT
/* The outputs of one channel whose sums suit the split requantization (the caller checked). */
static void dw3s_channel_split(const tm_depthwise_conv_2d_params_t *p, const int32_t *plane, const int32_t *taps,
                               int32_t bias, const tm_requant_t *q, int8_t *out)
{
    const int32_t cols = TM_DW3_SCALAR_COLS(p);
    tm_dw3s_split_requant_t split;
    int32_t k;
    tm_dw3s_split_requant_init(&split, q);
#if defined(__ARM_ARCH_6M__)
    {
        const int32_t row_bytes = 4 * p->stride_h * cols;
        dw3s_row_t r;
        for (k = 0; k < 9; ++k) {
            r.w[k] = taps[k];
        }
        r.bias = bias;
        r.m0 = split.m0;
        r.m1 = split.m1;
        r.m2 = split.m2;
        r.half = 256;
        r.round_hi = split.round_hi;
        r.shift = split.shift;
        r.lo = p->act_min;
        r.hi = p->act_max;
        r.row_step = 4 * cols - 12;
        r.back_step = 4 * p->stride_w - 2 * 4 * cols - 12;
        r.out_step = p->output_c;
        r.row_jump = row_bytes - 4 * p->stride_w * p->output_w;
        r.row_out = p->output_w * p->output_c;
        r.out_end = out + (size_t)p->output_h * r.row_out;
        dw3s_rows_m0(plane, &r, out);
    }
#else
    /* The same sums and split requantization in C (a host built with TM_REQUANT_MUL16, for tests). */
    int32_t oy, ox;
    for (oy = 0; oy < p->output_h; ++oy) {
        for (ox = 0; ox < p->output_w; ++ox) {
            const int32_t *x = plane + (size_t)(oy * p->stride_h) * cols + ox * p->stride_w;
            int32_t acc = bias, v;
            for (k = 0; k < 9; ++k) {
                acc += x[(k / 3) * cols + k % 3] * taps[k];
            }
            v = tm_dw3s_split_requant(acc, &split);
            v = v < p->act_min ? p->act_min : v;
            v = v > p->act_max ? p->act_max : v;
            out[((size_t)oy * p->output_w + ox) * p->output_c] = (int8_t)v;
        }
    }
#endif
}
#endif

static void depthwise_3x3_scalar(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output,
                                 int32_t *plane)
{
    const int32_t channels = p->output_c, cols = TM_DW3_SCALAR_COLS(p);
    const int32_t sh = p->stride_h, sw = p->stride_w;
    const int32_t lo = p->act_min, hi = p->act_max;
    const int32_t mult = p->depth_multiplier;
    int32_t n, c, oy, ox;
    for (n = 0; n < p->batches; ++n) {
        const int8_t *in_n = input + (size_t)n * p->input_h * p->input_w * p->input_c;
        int8_t *out_n = output + (size_t)n * p->output_h * p->output_w * channels;
        int32_t m = 0, ic = 0; /* output channel c reads input channel ic = c / mult (no division on armv6-m) */
        dw3s_plane_border(p, plane);
        for (c = 0; c < channels; ++c) {
            const int8_t *f = p->filter + c;
            const int32_t w0 = f[0], w1 = f[channels], w2 = f[2 * channels];
            const int32_t w3 = f[3 * channels], w4 = f[4 * channels], w5 = f[5 * channels];
            const int32_t w6 = f[6 * channels], w7 = f[7 * channels], w8 = f[8 * channels];
            const int32_t bias = p->bias_folded[c];
            const tm_requant_t *q = &p->requant[c];
            int8_t *out = out_n + c;
            if (m == 0) {
                dw3s_plane(p, in_n, ic++, plane);
            }
            m = m + 1 == mult ? 0 : m + 1;
#if TM_DW3S_SPLIT_REQUANT
            {
                const int32_t taps[9] = {w0, w1, w2, w3, w4, w5, w6, w7, w8};
                if (tm_dw3s_split_requant_fits(taps, bias)) {
                    dw3s_channel_split(p, plane, taps, bias, q, out);
                    continue;
                }
            }
#endif
            for (oy = 0; oy < p->output_h; ++oy) {
                const int32_t *x0 = plane + (size_t)oy * sh * cols;
                const int32_t *x1 = x0 + cols;
                const int32_t *x2 = x1 + cols;
                for (ox = 0; ox < p->output_w; ++ox, x0 += sw, x1 += sw, x2 += sw, out += channels) {
                    int32_t acc = bias + x0[0] * w0;
                    acc += x0[1] * w1;
                    acc += x0[2] * w2;
                    acc += x1[0] * w3;
                    acc += x1[1] * w4;
                    acc += x1[2] * w5;
                    acc += x2[0] * w6;
                    acc += x2[1] * w7;
                    acc += x2[2] * w8;
                    *out = tm_requant_s8(acc, q, lo, hi);
                }
            }
        }
    }
}

void tm_depthwise_conv_2d_3x3_scalar_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output,
                                        int8_t *scratch)
{
    depthwise_3x3_scalar(p, input, output, (int32_t *)(void *)scratch);
}

#endif /* !TM_DSP_AVAILABLE */
