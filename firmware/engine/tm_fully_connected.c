/* tm_fully_connected.c - FULLY_CONNECTED int8; the arithmetic is in tm_fully_connected.h. */
#include "tm_fully_connected.h"

#include <stddef.h>

#include "tm_common.h"
#include "tm_conv_2d.h"
#include "tm_fully_connected_row16.h"

static void fully_connected_generic(const tm_fully_connected_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t b, oc, i;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = input + (size_t)b * p->input_depth;
        for (oc = 0; oc < p->output_depth; ++oc) {
            const int8_t *w = p->filter + (size_t)oc * p->input_depth;
            const int32_t c = p->per_channel ? oc : 0;
            int32_t acc = 0;
            for (i = 0; i < p->input_depth; ++i) {
                acc += ((int32_t)w[i] + p->filter_offset) * ((int32_t)x[i] + p->input_offset);
            }
            if (p->bias != NULL) {
                acc += p->bias[oc];
            }
            *output++ = tm_requant_channel_s8(acc, p->requant, p->multiplier, p->shift, c, p->output_offset,
                                              p->act_min, p->act_max);
        }
    }
}

void tm_fully_connected_s8(const tm_fully_connected_params_t *p, const int8_t *input, int8_t *output)
{
#if TM_DSP_AVAILABLE
    if (p->filter16 != NULL) {
        int32_t b;
        for (b = 0; b < p->batches; ++b) {
            tm_fully_connected_row16_s8(input + (size_t)b * p->input_depth, p->filter16, p->input_depth,
                                        p->output_depth, p->act_min, p->act_max,
                                        output + (size_t)b * p->output_depth);
        }
        return;
    }
#endif
    if (p->bias_folded != NULL && p->requant != NULL && p->filter_offset == 0) {
        /* DSP: SXTB16 + SMLAD; other cores (RV32IMC, Cortex-M0): the scalar 2x2 block */
        int32_t b;
        for (b = 0; b < p->batches; b += 2) {
            const int32_t two = b + 1 < p->batches;
            const int8_t *x0 = input + (size_t)b * p->input_depth;
            int8_t *y0 = output + (size_t)b * p->output_depth;
            tm_s8_dot_rows_2x2(x0, two ? x0 + p->input_depth : NULL, p->filter, p->input_depth, p->output_depth,
                               p->bias_folded, p->requant, p->per_channel, p->act_min, p->act_max, y0,
                               y0 + p->output_depth);
        }
        return;
    }
    fully_connected_generic(p, input, output);
}
