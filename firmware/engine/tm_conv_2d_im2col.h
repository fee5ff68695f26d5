/* tm_conv_2d_im2col.h - CONV_2D, the im2col algorithm (tm_conv_2d_im2col.c). */
#ifndef TM_CONV_2D_IM2COL_H
#define TM_CONV_2D_IM2COL_H

#include "tm_conv_2d.h"

/* groups 1, given bias_folded and requant; scratch: tm_conv_2d_im2col_get_buffer_size(p) bytes. */
void tm_conv_2d_im2col_s8(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch);

#endif /* TM_CONV_2D_IM2COL_H */
