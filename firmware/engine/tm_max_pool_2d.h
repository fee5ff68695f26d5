/*
 * tm_max_pool_2d.h - MAX_POOL_2D, int8, NHWC (TFLite-Micro reference_integer_ops::MaxPool).
 *
 * Input [batches, input_h, input_w, channels], output [batches, output_h, output_w, channels].
 * For output (b, y, x, c), the window starts at
 *   y0 = y * stride_h - pad_h,  x0 = x * stride_w - pad_w
 * and covers the filter_h x filter_w positions inside the input only:
 *   o = clamp(max(-128, max_{valid (fy, fx)} in[b, y0 + fy, x0 + fx, c]),
 *             activation_min, activation_max)
 * pad_h/pad_w are the top/left paddings of TFLite's SAME (or 0 for VALID),
 * output_h/output_w TFLite's output size (tinyml.compiler.requant.padding_2d).
 * Input and output share scale and zero point (TFLite's pooling requires it).
 */
#ifndef TM_MAX_POOL_2D_H
#define TM_MAX_POOL_2D_H

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
} tm_max_pool_2d_params_t;

void tm_max_pool_2d_s8(const tm_max_pool_2d_params_t *p, const int8_t *input, int8_t *output);

#endif /* TM_MAX_POOL_2D_H */
