/* tm_depthwise_conv_2d_generic.h - DEPTHWISE_CONV_2D, the reference algorithm (tm_depthwise_conv_2d_generic.c). */
#ifndef TM_DEPTHWISE_CONV_2D_GENERIC_H
#define TM_DEPTHWISE_CONV_2D_GENERIC_H

#include "tm_depthwise_conv_2d.h"

void tm_depthwise_conv_2d_generic_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output);

#endif /* TM_DEPTHWISE_CONV_2D_GENERIC_H */
