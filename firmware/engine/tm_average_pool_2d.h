/*
 * tm_average_pool_2d.h - AVERAGE_POOL_2D, int8, NHWC
 * (TFLite-Micro reference_integer_ops::AveragePool).
 *
 * Input [batches, input_h, input_w, channels], output [batches, output_h, output_w, channels].
 * For output (b, y, x, c), the window starts at
 *   y0 = y * stride_h - pad_h,  x0 = x * stride_w - pad_w
 * and only the n positions inside the input count (padding is not averaged in):
 *   s = sum_{valid (fy, fx)} in[b, y0 + fy, x0 + fx, c]
 *   o = clamp(s > 0 ? (s + n/2) / n : (s - n/2) / n,  activation_min, activation_max)
 * (C division truncates toward zero, so this rounds half away from zero).
 * Zero points cancel because input and output share scale and zero point.
 * pad_h/pad_w, output_h/output_w: tinyml.compiler.requant.padding_2d.
 */
#ifndef TM_AVERAGE_POOL_2D_H
#define TM_AVERAGE_POOL_2D_H

#include "tm_common.h"

typedef struct {
    int32_t batches;
    int32_t input_h;
    int32_t input_w;
    int32_t channels;
    int32_t output_h;
    int32_t output_w;
    int32_t filter_h;
    int32_t filter_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_h;
    int32_t pad_w;
    int32_t activation_min;
    int32_t activation_max;
} tm_average_pool_2d_params_t;

void tm_average_pool_2d_s8(const tm_average_pool_2d_params_t *p, const int8_t *input, int8_t *output);

#endif /* TM_AVERAGE_POOL_2D_H */
