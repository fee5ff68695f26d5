/*
 * tm_fully_connected.c - FULLY_CONNECTED int8: the dispatcher (the arithmetic is in
 * tm_fully_connected.h). Given filter16 (DSP cores): each row runs tm_fully_connected_row16_s8;
 * given bias_folded and requant (filter_offset 0): two rows at a time run tm_s8_dot_rows_2x2
 * (tm_support_dot_s8.h); else tm_fully_connected_generic_s8.
 */
#include "tm_fully_connected.h"

#include <stddef.h>

#include "tm_common.h"
#include "tm_fully_connected_generic.h"
#include "tm_fully_connected_row16.h"
#include "tm_support_dot_s8.h"

#if TM_DSP_AVAILABLE
/* Each row against the int16-widened weights (tm_fully_connected_row16.h). */
static void fully_connected_row16(const tm_fully_connected_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t b;
    for (b = 0; b < p->batches; ++b) {
        tm_fully_connected_row16_s8(input + (size_t)b * p->input_depth, p->filter16, p->input_depth, p->output_depth,
                                    p->act_min, p->act_max, output + (size_t)b * p->output_depth);
    }
}
#endif

/* Two rows at a time through tm_s8_dot_rows_2x2 (DSP: SXTB16 + SMLAD; RV32IMC, Cortex-M0: the scalar 2x2 block). */
static void fully_connected_rows(const tm_fully_connected_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t b;
    for (b = 0; b < p->batches; b += 2) {
        const int32_t two = b + 1 < p->batches;
        const int8_t *x0 = input + (size_t)b * p->input_depth;
        int8_t *y0 = output + (size_t)b * p->output_depth;
        tm_s8_dot_rows_2x2(x0, two ? x0 + p->input_depth : NULL, p->filter, p->input_depth, p->output_depth,
                           p->bias_folded, p->requant, p->per_channel, p->act_min, p->act_max, y0,
                           y0 + p->output_depth);
    }
}

void tm_fully_connected_s8(const tm_fully_connected_params_t *p, const int8_t *input, int8_t *output)
{
    switch (tm_fully_connected_choose(p)) {
#if TM_DSP_AVAILABLE
    case TM_FULLY_CONNECTED_ROW16:
        fully_connected_row16(p, input, output);
        return;
#endif
    case TM_FULLY_CONNECTED_ROWS:
        fully_connected_rows(p, input, output);
        return;
    default:
        tm_fully_connected_generic_s8(p, input, output);
        return;
    }
}
