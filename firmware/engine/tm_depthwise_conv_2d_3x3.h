/* tm_depthwise_conv_2d_3x3.h - DEPTHWISE_CONV_2D, 3x3 filters through a widened ring of rows on DSP cores (tm_depthwise_conv_2d_3x3.c). */
#ifndef TM_DEPTHWISE_CONV_2D_3X3_H
#define TM_DEPTHWISE_CONV_2D_3X3_H

#include "tm_depthwise_conv_2d.h"

#if TM_DSP_AVAILABLE
/* Given packed and tm_depthwise_conv_2d_3x3_fits(p); scratch: tm_depthwise_conv_2d_3x3_get_buffer_size(p) bytes. */
void tm_depthwise_conv_2d_3x3_s8(const tm_depthwise_conv_2d_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch);
#endif

#endif /* TM_DEPTHWISE_CONV_2D_3X3_H */
