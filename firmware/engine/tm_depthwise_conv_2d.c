/*
 * tm_depthwise_conv_2d.c - DEPTHWISE_CONV_2D int8: the dispatcher. The arithmetic is in
 * tm_depthwise_conv_2d.h; each algorithm is a file of its own and tm_depthwise_conv_2d_choose
 * (tm_depthwise_conv_2d.h) picks one per call.
 */
#include "tm_depthwise_conv_2d.h"

#include "tm_depthwise_conv_2d_3x3.h"
#include "tm_depthwise_conv_2d_3x3_scalar.h"
#include "tm_depthwise_conv_2d_dsp.h"
#include "tm_depthwise_conv_2d_generic.h"
#include "tm_depthwise_conv_2d_scalar.h"

void tm_depthwise_conv_2d_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output,
                             int8_t *scratch)
{
    switch (tm_depthwise_conv_2d_choose(p, scratch != NULL)) {
#if TM_DSP_AVAILABLE
    case TM_DEPTHWISE_CONV_2D_3X3:
        tm_depthwise_conv_2d_3x3_s8(p, input, output, scratch);
        return;
    case TM_DEPTHWISE_CONV_2D_DSP:
        tm_depthwise_conv_2d_dsp_s8(p, input, output);
        return;
#else
    case TM_DEPTHWISE_CONV_2D_3X3_SCALAR:
        tm_depthwise_conv_2d_3x3_scalar_s8(p, input, output, scratch);
        return;
    case TM_DEPTHWISE_CONV_2D_SCALAR:
        tm_depthwise_conv_2d_scalar_s8(p, input, output);
        return;
#endif
    default:
        tm_depthwise_conv_2d_generic_s8(p, input, output);
        return;
    }
}
