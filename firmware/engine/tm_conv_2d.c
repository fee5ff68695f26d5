/*
 * tm_conv_2d.c - CONV_2D int8: the dispatcher. The arithmetic is in tm_conv_2d.h; each
 * algorithm is a file of its own (tm_conv_2d_generic.c, tm_conv_2d_im2col.c,
 * tm_conv_2d_widened.c) and tm_conv_2d_choose (tm_conv_2d.h) picks one per call.
 */
#include "tm_conv_2d.h"

#include "tm_conv_2d_generic.h"
#include "tm_conv_2d_im2col.h"
#include "tm_conv_2d_widened.h"

void tm_conv_2d_s8(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
    switch (tm_conv_2d_choose(p, scratch != NULL)) {
#if TM_DSP_AVAILABLE
    case TM_CONV_2D_WIDENED:
        tm_conv_2d_widened_s8(p, input, output, scratch);
        return;
#endif
    case TM_CONV_2D_IM2COL:
        tm_conv_2d_im2col_s8(p, input, output, scratch); /* DSP: SMLAD; other cores: the scalar 2x2 block */
        return;
    default:
        tm_conv_2d_generic_s8(p, input, output);
        return;
    }
}
