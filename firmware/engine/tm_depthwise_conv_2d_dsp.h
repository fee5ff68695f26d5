/* tm_depthwise_conv_2d_dsp.h - DEPTHWISE_CONV_2D, four channels per word on DSP cores (tm_depthwise_conv_2d_dsp.c). */
#ifndef TM_DEPTHWISE_CONV_2D_DSP_H
#define TM_DEPTHWISE_CONV_2D_DSP_H

#include "tm_depthwise_conv_2d.h"

#if TM_DSP_AVAILABLE
void tm_depthwise_conv_2d_dsp_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output);
#endif

#endif /* TM_DEPTHWISE_CONV_2D_DSP_H */
