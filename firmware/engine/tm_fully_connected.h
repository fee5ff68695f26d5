/*
 * tm_fully_connected.h - FULLY_CONNECTED, int8 activations and weights, int32 bias,
 * per-tensor or per-channel weight scales.
 *
 * Layouts (TFLite): input [batches][input_depth] (any shape flattened so),
 * filter [output_depth][input_depth], output [batches][output_depth]
 * (keep_num_dims only changes the shape, not the bytes).
 *
 * For every output element (b, oc), with c = oc when per_channel else 0:
 *
 *   acc = bias[oc] + sum over i < input_depth of
 *             (filter[oc][i] + filter_offset) * (input[b][i] + input_offset)
 *   out = clamp(MBQM(acc, multiplier[c], shift[c]) + output_offset, act_min, act_max)
 *
 * input_offset = -input_zero_point, filter_offset = -filter_zero_point (0 for
 * TFLite's symmetric int8 weights), output_offset = output_zero_point, MBQM is
 * TFLite's MultiplyByQuantizedMultiplier (tm_common.h).
 *
 * requant (compile time, when the multiplier/shift pairs allow it) replaces
 * MBQM(acc) + output_offset by tm_requant (tm_common.h).
 *
 * DSP path (__ARM_FEATURE_DSP, filter_offset == 0, given bias_folded and requant):
 *   acc = bias_folded[oc] + sum filter[oc][i] * input[b][i]
 *   bias_folded[oc] = bias[oc] + input_offset * sum_i filter[oc][i]   (compile time)
 * computed two batches x two channels at a time by tm_s8_dot_rows_2x2 (tm_support_dot_s8.h,
 * shared with CONV_2D's im2col algorithm: SXTB16 + SMLAD, or the scalar block on cores without SIMD).
 * Otherwise tm_fully_connected_generic.c runs the formula above.
 *
 * Given filter16 (the compiler's speed trade on DSP targets; it needs neither bias_folded nor
 * requant, and covers every shift TFLite produces), each row runs tm_fully_connected_row16_s8:
 * int16-widened weights, four output channels per pass (the layer then carries no int8 filter,
 * bias or multipliers: see tm_fully_connected_has_data).
 */
#ifndef TM_FULLY_CONNECTED_H
#define TM_FULLY_CONNECTED_H

#include <stdint.h>

#include "tm_common.h"
#include "tm_dsp.h"

typedef struct {
    int32_t batches;
    int32_t input_depth;
    int32_t output_depth;
    int32_t input_offset;       /* -input zero point */
    int32_t filter_offset;      /* -filter zero point */
    int32_t output_offset;      /* output zero point */
    int32_t act_min, act_max;
    int32_t per_channel;        /* 1: multiplier/shift have output_depth entries, 0: one */
    const int8_t *filter;       /* [output_depth][input_depth] */
    const int32_t *bias;        /* [output_depth] or NULL */
    const int32_t *multiplier;  /* Q31 */
    const int32_t *shift;       /* > 0 left */
    const int32_t *bias_folded; /* [output_depth] for the DSP path, or NULL */
    const tm_requant_t *requant; /* folded requantization (as multiplier), or NULL */
    const int32_t *filter16;    /* DSP row path (tm_fully_connected_row16.h), or NULL */
} tm_fully_connected_params_t;

typedef enum {
    TM_FULLY_CONNECTED_GENERIC = 0,
    TM_FULLY_CONNECTED_ROWS = 1,
    TM_FULLY_CONNECTED_ROW16 = 2
} tm_fully_connected_algorithm_t;

/*
 * The algorithm tm_fully_connected_s8 runs for p in this build: filter16 on DSP cores (row16),
 * bias_folded and requant with filter_offset 0 (the 2 x 2 dot rows), else the generic C. None
 * needs scratch. A new algorithm: its enum value, its case here and in tm_fully_connected.c.
 */
static inline tm_fully_connected_algorithm_t tm_fully_connected_choose(const tm_fully_connected_params_t *p)
{
#if TM_DSP_AVAILABLE
    if (p->filter16 != NULL) {
        return TM_FULLY_CONNECTED_ROW16;
    }
#endif
    if (p->bias_folded != NULL && p->requant != NULL && p->filter_offset == 0) {
        return TM_FULLY_CONNECTED_ROWS;
    }
    return TM_FULLY_CONNECTED_GENERIC;
}

/*
 * 1 when p gives every array the algorithm reads. The compiler emits only the arrays of the
 * algorithm it chose (tinyml/compiler/unread.py: a row16 layer has filter16 and no int8 filter),
 * so this holds for tm_fully_connected_choose's pick on the compiler's data:
 * tests/engine/test_interface.py checks it for every lowered layer.
 */
static inline int32_t tm_fully_connected_has_data(const tm_fully_connected_params_t *p,
                                                  tm_fully_connected_algorithm_t algorithm)
{
    switch (algorithm) {
    case TM_FULLY_CONNECTED_ROW16:
        return p->filter16 != NULL;
    case TM_FULLY_CONNECTED_ROWS:
        return p->filter != NULL && p->bias_folded != NULL && p->requant != NULL;
    default:
        return p->filter != NULL && (p->requant != NULL || (p->multiplier != NULL && p->shift != NULL));
    }
}

void tm_fully_connected_s8(const tm_fully_connected_params_t *p, const int8_t *input, int8_t *output);

#endif /* TM_FULLY_CONNECTED_H */
