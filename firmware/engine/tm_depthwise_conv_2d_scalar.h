/* tm_depthwise_conv_2d_scalar.h - DEPTHWISE_CONV_2D, four channels per pass on cores without SIMD (tm_depthwise_conv_2d_scalar.c). */
#ifndef TM_DEPTHWISE_CONV_2D_SCALAR_H
#define TM_DEPTHWISE_CONV_2D_SCALAR_H

#include "tm_depthwise_conv_2d.h"

#if !TM_DSP_AVAILABLE
void tm_depthwise_conv_2d_scalar_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output);
#endif

#endif /* TM_DEPTHWISE_CONV_2D_SCALAR_H */
