/*
 * tm_conv_2d.h - CONV_2D, int8 activations, int8 per-channel weights, int32 bias.
 *
 * Layouts (TFLite): input [N][H][W][C_in], filter [C_out][KH][KW][C_f],
 * output [N][OH][OW][C_out], with C_f = C_in / groups, and output channel oc
 * reading input channels g*C_f .. g*C_f + C_f - 1, g = oc / (C_out / groups).
 *
 * For every output element (n, oy, ox, oc):
 *
 *   acc = bias[oc] + sum over ky < KH, kx < KW, c < C_f, with
 *             iy = oy*stride_h - pad_h + ky*dilation_h inside [0, H) and
 *             ix = ox*stride_w - pad_w + kx*dilation_w inside [0, W)
 *         of filter[oc][ky][kx][c] * (input[n][iy][ix][g*C_f + c] + input_offset)
 *   out = clamp(MBQM(acc, multiplier[oc], shift[oc]) + output_offset, act_min, act_max)
 *
 * where input_offset = -input_zero_point, output_offset = output_zero_point, and
 * MBQM is TFLite's MultiplyByQuantizedMultiplier (tm_common.h): the rounding
 * doubling high multiply by multiplier (Q31) and a rounding shift by shift
 * (> 0 left, < 0 right). Padded taps contribute nothing, as in TFLite-Micro.
 * The int32 accumulator is exact for any layer TFLite itself runs.
 *
 * requant (compile time, when every channel's pair allows it) replaces
 * MBQM(acc) + output_offset by tm_requant (tm_common.h): one SMLAL and a shift.
 *
 * Algorithms (one file each; tm_conv_2d.c dispatches with tm_conv_2d_choose below, and each
 * file's header comment writes its own math):
 *   TM_CONV_2D_GENERIC  tm_conv_2d_generic.c  the formula above, any layer
 *   TM_CONV_2D_IM2COL   tm_conv_2d_im2col.c   groups 1, given bias_folded and requant: patches of
 *                       two pixels gathered (im2col), then 2 pixel x 2 channel dot products
 *                       (tm_support_dot_s8.c: SMLAD on DSP cores, a scalar block elsewhere)
 *   TM_CONV_2D_WIDENED  tm_conv_2d_widened.c  DSP cores, given filter16: int16-widened weights
 *                       and patches, packed requantization records (the layer then carries no
 *                       int8 filter, bias or multipliers: see tm_conv_2d_has_data)
 * The compiler (tinyml/compiler/ops_conv.py) gives each layer the data of one algorithm and
 * the scratch of tm_conv_2d_get_buffer_size; tests/engine/test_interface.py holds its figures
 * to these C functions.
 */
#ifndef TM_CONV_2D_H
#define TM_CONV_2D_H

#include <stdint.h>

#include "tm_common.h"
#include "tm_dsp.h"

typedef struct {
    int32_t batches;
    int32_t input_h, input_w, input_c;
    int32_t output_h, output_w, output_c;
    int32_t filter_h, filter_w, filter_c; /* filter_c = input_c / groups */
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_h, pad_w;                 /* top and left padding */
    int32_t input_offset;                 /* -input zero point */
    int32_t output_offset;                /* output zero point */
    int32_t act_min, act_max;             /* fused activation, in output units */
    const int8_t *filter;                 /* [output_c][filter_h][filter_w][filter_c] */
    const int32_t *bias;                  /* [output_c] or NULL */
    const int32_t *multiplier;            /* [output_c], Q31 */
    const int32_t *shift;                 /* [output_c], > 0 left */
    const int32_t *bias_folded;           /* [output_c] for the im2col algorithm, or NULL */
    const tm_requant_t *requant;          /* [output_c] folded requantization, or NULL */
    const int32_t *filter16;              /* widened-patch algorithm: [output_c][kp / 2 + 4] (layout in
                                             tm_conv_2d_widened.c), or NULL */
    int32_t filter16_post;                /* 1: filter16's records add the zero point after the shift */
} tm_conv_2d_params_t;

/* Widened-patch algorithm (tm_conv_2d_widened.c): padded filter row rw, patch kp (two int16
   patches of scratch: at most 4 KB), at most TM_CONV_2D_K16_MAX_ROWS filter rows, padded input row bytes. */
#define TM_CONV_2D_K16_MAX 1024
#define TM_CONV_2D_K16_MAX_ROWS 16
#define TM_CONV_2D_RW(p) (((p)->filter_w * (p)->filter_c + 3) / 4 * 4)
#define TM_CONV_2D_KP(p) ((p)->filter_h * TM_CONV_2D_RW(p))
#define TM_CONV_2D_DIRECT16(p)                                                                \
    ((p)->filter_h == 1 && (p)->filter_w == 1 && (p)->pad_h == 0 && (p)->pad_w == 0 && ((p)->filter_c & 3) == 0)
#define TM_CONV_2D_ROW_BYTES(p) ((((p)->output_w - 1) * (p)->stride_w + (p)->filter_w) * (p)->filter_c / 4 * 4 + 8)

/* The layer's shape suits the widened-patch algorithm (groups 1, dilation 1, kp and rows bounded). */
static inline int32_t tm_conv_2d_widened_fits(const tm_conv_2d_params_t *p)
{
    return p->filter_c == p->input_c && p->dilation_h == 1 && p->dilation_w == 1 &&
           TM_CONV_2D_KP(p) <= TM_CONV_2D_K16_MAX && p->filter_h <= TM_CONV_2D_K16_MAX_ROWS;
}

/* Scratch bytes of the widened-patch algorithm (0 when the shape does not suit it): two int16
   patches of kp, then (unless a 1x1 filter reads the input in place) a ring of filter_h padded rows. */
static inline int32_t tm_conv_2d_widened_get_buffer_size(const tm_conv_2d_params_t *p)
{
    if (!tm_conv_2d_widened_fits(p)) {
        return 0;
    }
    return 4 * TM_CONV_2D_KP(p) + (TM_CONV_2D_DIRECT16(p) ? 0 : p->filter_h * TM_CONV_2D_ROW_BYTES(p));
}

/* Scratch bytes of the im2col algorithm: two patches of filter_h * filter_w * filter_c int8
   (rounded up to a word), none for a 1x1 filter without padding, which reads the input in place. */
static inline int32_t tm_conv_2d_im2col_get_buffer_size(const tm_conv_2d_params_t *p)
{
    if (p->filter_h == 1 && p->filter_w == 1 && p->pad_h == 0 && p->pad_w == 0) {
        return 0;
    }
    return (2 * p->filter_h * p->filter_w * p->filter_c + 3) / 4 * 4;
}

typedef enum {
    TM_CONV_2D_GENERIC = 0,
    TM_CONV_2D_IM2COL = 1,
    TM_CONV_2D_WIDENED = 2
} tm_conv_2d_algorithm_t;

/*
 * The algorithm tm_conv_2d_s8 runs for p in this build (DSP cores, or TM_DSP_EMULATE, or
 * neither), given a scratch buffer or not: the layer's data picks it (filter16: widened;
 * bias_folded and requant: im2col), and a shape or build it does not suit runs the generic C.
 * A new algorithm: its enum value, its case here and in tm_conv_2d.c.
 */
static inline tm_conv_2d_algorithm_t tm_conv_2d_choose(const tm_conv_2d_params_t *p, int32_t has_scratch)
{
#if TM_DSP_AVAILABLE
    if (p->filter16 != NULL) {
        return has_scratch && tm_conv_2d_widened_fits(p) ? TM_CONV_2D_WIDENED : TM_CONV_2D_GENERIC;
    }
#endif
    if (p->bias_folded != NULL && p->requant != NULL && p->filter_c == p->input_c &&
        (has_scratch || tm_conv_2d_im2col_get_buffer_size(p) == 0)) {
        return TM_CONV_2D_IM2COL;
    }
    return TM_CONV_2D_GENERIC;
}

/*
 * 1 when p gives every array the algorithm reads. The compiler emits only the arrays of the
 * algorithm it chose (tinyml/compiler/unread.py: a widened layer has filter16 and no int8 filter),
 * so this holds for tm_conv_2d_choose's pick on the compiler's data: tests/engine/test_interface.py
 * checks it for every lowered layer (not at run time, where it would cost every call).
 */
static inline int32_t tm_conv_2d_has_data(const tm_conv_2d_params_t *p, tm_conv_2d_algorithm_t algorithm)
{
    switch (algorithm) {
    case TM_CONV_2D_WIDENED:
        return p->filter16 != NULL;
    case TM_CONV_2D_IM2COL:
        return p->filter != NULL && p->bias_folded != NULL && p->requant != NULL;
    default:
        return p->filter != NULL && (p->requant != NULL || (p->multiplier != NULL && p->shift != NULL));
    }
}

/* Scratch bytes tm_conv_2d_s8 needs for p in this build (the chosen algorithm's; 0: none). */
static inline int32_t tm_conv_2d_get_buffer_size(const tm_conv_2d_params_t *p)
{
    switch (tm_conv_2d_choose(p, 1)) {
    case TM_CONV_2D_WIDENED:
        return tm_conv_2d_widened_get_buffer_size(p);
    case TM_CONV_2D_IM2COL:
        return tm_conv_2d_im2col_get_buffer_size(p);
    default:
        return 0;
    }
}
#define TM_CONV_2D_SCRATCH_BYTES(p) tm_conv_2d_get_buffer_size(p)

/* scratch: tm_conv_2d_get_buffer_size(p) bytes, or NULL (then the generic path runs). */
void tm_conv_2d_s8(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch);

#endif /* TM_CONV_2D_H */
