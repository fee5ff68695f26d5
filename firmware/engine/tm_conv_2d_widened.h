/* tm_conv_2d_widened.h - CONV_2D, the widened-patch algorithm (tm_conv_2d_widened.c; DSP cores). */
#ifndef TM_CONV_2D_WIDENED_H
#define TM_CONV_2D_WIDENED_H

#include "tm_conv_2d.h"

#if TM_DSP_AVAILABLE
/* Given filter16 and tm_conv_2d_widened_fits(p); scratch: tm_conv_2d_widened_get_buffer_size(p) bytes. */
void tm_conv_2d_widened_s8(const tm_conv_2d_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch);
/* Output channels first .. first + channels - 1 only (of every pixel; the others untouched), with
   filter16 (in place of p->filter16) starting at channel first's record: a block of the layer's
   channels, e.g. decoded by tm_palette_conv_2d_s8. */
void tm_conv_2d_widened_channels_s8(const tm_conv_2d_params_t *p, const int32_t *filter16, int32_t first,
                                    int32_t channels, const int8_t *input, int8_t *output, int8_t *scratch);
#endif

#endif /* TM_CONV_2D_WIDENED_H */
