/*
 * tm_fully_connected_generic.c - FULLY_CONNECTED, the reference algorithm (any weight zero point,
 * per-tensor or per-channel scales, on any core). For every output element (b, oc), with
 * c = oc when per_channel else 0:
 *
 *   acc = [bias[oc]] + sum over i < input_depth of (filter[oc][i] + filter_offset) * (input[b][i] + input_offset)
 *   out = clamp(MBQM(acc, multiplier[c], shift[c]) + output_offset, act_min, act_max)
 *
 * With requant, MBQM + output_offset is tm_requant (tm_requant_channel_s8, tm_common.h).
 */
#include "tm_fully_connected_generic.h"

#include <stddef.h>

#include "tm_common.h"

void tm_fully_connected_generic_s8(const tm_fully_connected_params_t *p, const int8_t *input, int8_t *output)
{
    /* Read once: output is int8_t, which may alias *p as far as C knows, so each store would
       otherwise make the compiler read these again for the next channel. */
    const tm_requant_t *const requant = p->requant;
    const int32_t *const multiplier = p->multiplier;
    const int32_t *const shift = p->shift;
    const int32_t *const bias = p->bias;
    const int32_t output_offset = p->output_offset, act_min = p->act_min, act_max = p->act_max;
    const int32_t filter_offset = p->filter_offset, input_offset = p->input_offset;
    int32_t b, oc, i;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = input + (size_t)b * p->input_depth;
        for (oc = 0; oc < p->output_depth; ++oc) {
            const int8_t *w = p->filter + (size_t)oc * p->input_depth;
            const int32_t c = p->per_channel ? oc : 0;
            int32_t acc = 0;
            for (i = 0; i < p->input_depth; ++i) {
                acc += ((int32_t)w[i] + filter_offset) * ((int32_t)x[i] + input_offset);
            }
            if (bias != NULL) {
                acc += bias[oc];
            }
            *output++ = tm_requant_channel_s8(acc, requant, multiplier, shift, c, output_offset, act_min, act_max);
        }
    }
}
