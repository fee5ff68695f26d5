/* tm_conv_2d_generic.h - CONV_2D, the reference algorithm (tm_conv_2d_generic.c). */
#ifndef TM_CONV_2D_GENERIC_H
#define TM_CONV_2D_GENERIC_H

#include "tm_conv_2d.h"

void tm_conv_2d_generic_s8(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output);

#endif /* TM_CONV_2D_GENERIC_H */
