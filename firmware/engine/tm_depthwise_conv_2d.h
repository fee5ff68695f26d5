/*
 * tm_depthwise_conv_2d.h - DEPTHWISE_CONV_2D, int8 activations, int8 per-channel
 * weights, int32 bias.
 *
 * Layouts (TFLite): input [N][H][W][C_in], filter [1][KH][KW][C_out],
 * output [N][OH][OW][C_out], C_out = C_in * depth_multiplier; output channel
 * oc = ic * depth_multiplier + m reads input channel ic only.
 *
 * For every output element (n, oy, ox, oc = ic * depth_multiplier + m):
 *
 *   acc = bias[oc] + sum over ky < KH, kx < KW, with
 *             iy = oy*stride_h - pad_h + ky*dilation_h inside [0, H) and
 *             ix = ox*stride_w - pad_w + kx*dilation_w inside [0, W)
 *         of filter[0][ky][kx][oc] * (input[n][iy][ix][ic] + input_offset)
 *   out = clamp(MBQM(acc, multiplier[oc], shift[oc]) + output_offset, act_min, act_max)
 *
 * input_offset = -input_zero_point, output_offset = output_zero_point, MBQM is
 * TFLite's MultiplyByQuantizedMultiplier (tm_common.h). Padded taps contribute
 * nothing, as in TFLite-Micro. With requant (compile time) MBQM(acc) + output_offset
 * is tm_requant (tm_common.h).
 *
 * Algorithms (one file each; tm_depthwise_conv_2d.c dispatches with tm_depthwise_conv_2d_choose
 * below, and each file's header comment writes its own math):
 *   TM_DEPTHWISE_CONV_2D_GENERIC  tm_depthwise_conv_2d_generic.c  the formula above, any layer
 *   TM_DEPTHWISE_CONV_2D_3X3      tm_depthwise_conv_2d_3x3.c      DSP cores, 3x3 filter, dilation 1,
 *                                 stride_w 1 or 2, given packed and scratch: a widened int16 ring of rows
 *   TM_DEPTHWISE_CONV_2D_DSP      tm_depthwise_conv_2d_dsp.c      DSP cores, depth multiplier 1, given
 *                                 bias_folded and requant: four channels per word
 *   TM_DEPTHWISE_CONV_2D_SCALAR   tm_depthwise_conv_2d_scalar.c   cores without SIMD, the same data:
 *                                 four channels per pass, MUL + ADD
 *   TM_DEPTHWISE_CONV_2D_3X3_SCALAR  tm_depthwise_conv_2d_3x3_scalar.c  cores without SIMD, 3x3 filter,
 *                                 dilation 1, any depth multiplier, given bias_folded, requant and
 *                                 scratch: one channel at a time over a zero-point-padded int32 plane
 * The compiler (tinyml/compiler/ops_conv.py) gives each layer the data of one algorithm and the
 * scratch of tm_depthwise_conv_2d_get_buffer_size; tests/engine/test_interface.py holds its
 * figures to these C functions.
 */
#ifndef TM_DEPTHWISE_CONV_2D_H
#define TM_DEPTHWISE_CONV_2D_H

#include <stdint.h>

#include "tm_common.h"
#include "tm_dsp.h"

typedef struct {
    int32_t batches;
    int32_t input_h, input_w, input_c;
    int32_t output_h, output_w, output_c;
    int32_t depth_multiplier;         /* output_c / input_c */
    int32_t filter_h, filter_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_h, pad_w;             /* top and left padding */
    int32_t input_offset;             /* -input zero point */
    int32_t output_offset;            /* output zero point */
    int32_t act_min, act_max;
    const int8_t *filter;             /* [filter_h][filter_w][output_c] */
    const int32_t *bias;              /* [output_c] or NULL */
    const int32_t *multiplier;        /* [output_c], Q31 */
    const int32_t *shift;             /* [output_c], > 0 left */
    const int32_t *bias_folded;       /* [output_c] for the DSP path, or NULL */
    const tm_requant_t *requant;      /* [output_c] folded requantization, or NULL */
    const int32_t *packed;            /* DSP 3x3 path: [output_c][TM_DW3_PACKED_CHANNEL], or NULL */
} tm_depthwise_conv_2d_params_t;

/* Words per output channel of `packed`: 3 rotations x 5 tap words, then 3 requant words. */
#define TM_DW3_PACKED_CHANNEL 18

/* Columns of the 3x3 algorithm's padded rows (every window of the output row), halfwords a plane. */
#define TM_DW3_COLS(p) (((p)->output_w - 1) * (p)->stride_w + 3)
#define TM_DW3_PLANE(p) ((3 * TM_DW3_COLS(p) + 2) & ~1)

/* The layer's shape suits the 3x3 algorithm: 3x3 filter, dilation 1, stride_w 1 or 2. */
static inline int32_t tm_depthwise_conv_2d_3x3_fits(const tm_depthwise_conv_2d_params_t *p)
{
    return p->filter_h == 3 && p->filter_w == 3 && p->dilation_h == 1 && p->dilation_w == 1 &&
           (p->stride_w == 1 || p->stride_w == 2);
}

/* Scratch bytes of the 3x3 algorithm (0 when the shape does not suit it): input_c planes of
   TM_DW3_PLANE halfwords (the last window's fifth word reads one halfword past its last tap). */
static inline int32_t tm_depthwise_conv_2d_3x3_get_buffer_size(const tm_depthwise_conv_2d_params_t *p)
{
    return tm_depthwise_conv_2d_3x3_fits(p) ? 2 * TM_DW3_PLANE(p) * p->input_c : 0;
}
#define TM_DEPTHWISE_CONV_2D_SCRATCH_BYTES(p) tm_depthwise_conv_2d_3x3_get_buffer_size(p)

/* The 3x3 algorithm without SIMD: one channel's int32 plane of every window, at most 4 KB. */
#define TM_DW3_SCALAR_ROWS(p) (((p)->output_h - 1) * (p)->stride_h + 3)
#define TM_DW3_SCALAR_COLS(p) (((p)->output_w - 1) * (p)->stride_w + 3)
#define TM_DW3_SCALAR_MAX_SCRATCH 4096

/* Scratch bytes of the 3x3 algorithm for cores without SIMD (0 when the shape does not suit it). */
static inline int32_t tm_depthwise_conv_2d_3x3_scalar_get_buffer_size(const tm_depthwise_conv_2d_params_t *p)
{
    if (p->filter_h != 3 || p->filter_w != 3 || p->dilation_h != 1 || p->dilation_w != 1) {
        return 0;
    }
    const int32_t bytes = 4 * TM_DW3_SCALAR_ROWS(p) * TM_DW3_SCALAR_COLS(p);
    return bytes <= TM_DW3_SCALAR_MAX_SCRATCH ? bytes : 0;
}

typedef enum {
    TM_DEPTHWISE_CONV_2D_GENERIC = 0,
    TM_DEPTHWISE_CONV_2D_3X3 = 1,
    TM_DEPTHWISE_CONV_2D_DSP = 2,
    TM_DEPTHWISE_CONV_2D_SCALAR = 3,
    TM_DEPTHWISE_CONV_2D_3X3_SCALAR = 4
} tm_depthwise_conv_2d_algorithm_t;

/*
 * The algorithm tm_depthwise_conv_2d_s8 runs for p in this build, given a scratch buffer or not:
 * the layer's data picks it (packed: 3x3; bias_folded and requant with depth multiplier 1: four
 * channels at a time), a shape or build it does not suit runs the generic C. A new algorithm:
 * its enum value, its case here and in tm_depthwise_conv_2d.c.
 */
static inline tm_depthwise_conv_2d_algorithm_t tm_depthwise_conv_2d_choose(const tm_depthwise_conv_2d_params_t *p,
                                                                           int32_t has_scratch)
{
#if TM_DSP_AVAILABLE
    if (has_scratch && p->packed != NULL && tm_depthwise_conv_2d_3x3_get_buffer_size(p) > 0) {
        return TM_DEPTHWISE_CONV_2D_3X3;
    }
    if (p->depth_multiplier == 1 && p->bias_folded != NULL && p->requant != NULL) {
        return TM_DEPTHWISE_CONV_2D_DSP;
    }
#else
    if (has_scratch && p->bias_folded != NULL && p->requant != NULL &&
        tm_depthwise_conv_2d_3x3_scalar_get_buffer_size(p) > 0) {
        return TM_DEPTHWISE_CONV_2D_3X3_SCALAR;
    }
    if (p->depth_multiplier == 1 && p->bias_folded != NULL && p->requant != NULL) {
        return TM_DEPTHWISE_CONV_2D_SCALAR;
    }
#endif
    return TM_DEPTHWISE_CONV_2D_GENERIC;
}

/*
 * 1 when p gives every array the algorithm reads. The compiler emits only the arrays of the
 * algorithm it chose (tinyml/compiler/unread.py: a 3x3 DSP layer has packed and no int8 filter),
 * so this holds for tm_depthwise_conv_2d_choose's pick on the compiler's data:
 * tests/engine/test_interface.py checks it for every lowered layer.
 */
static inline int32_t tm_depthwise_conv_2d_has_data(const tm_depthwise_conv_2d_params_t *p,
                                                    tm_depthwise_conv_2d_algorithm_t algorithm)
{
    switch (algorithm) {
    case TM_DEPTHWISE_CONV_2D_3X3:
        return p->packed != NULL;
    case TM_DEPTHWISE_CONV_2D_DSP:
    case TM_DEPTHWISE_CONV_2D_SCALAR:
    case TM_DEPTHWISE_CONV_2D_3X3_SCALAR:
        return p->filter != NULL && p->bias_folded != NULL && p->requant != NULL;
    default:
        return p->filter != NULL && (p->requant != NULL || (p->multiplier != NULL && p->shift != NULL));
    }
}

/* Scratch bytes tm_depthwise_conv_2d_s8 needs for p in this build (0: none). */
static inline int32_t tm_depthwise_conv_2d_get_buffer_size(const tm_depthwise_conv_2d_params_t *p)
{
    switch (tm_depthwise_conv_2d_choose(p, 1)) {
    case TM_DEPTHWISE_CONV_2D_3X3:
        return tm_depthwise_conv_2d_3x3_get_buffer_size(p);
    case TM_DEPTHWISE_CONV_2D_3X3_SCALAR:
        return tm_depthwise_conv_2d_3x3_scalar_get_buffer_size(p);
    default:
        return 0;
    }
}

/* scratch: tm_depthwise_conv_2d_get_buffer_size(p) bytes, or NULL. */
void tm_depthwise_conv_2d_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output,
                             int8_t *scratch);

#endif /* TM_DEPTHWISE_CONV_2D_H */
