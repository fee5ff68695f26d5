/*
 * tm_mean.h - MEAN, int8 (TFLite-Micro reduce.cc -> reference_ops::QuantizedMeanOrSum).
 *
 * The input has 4-D shape `dims` (rank < 4 padded with leading 1s); the axes
 * with reduce[j] != 0 are averaged, count = product of their sizes. Output
 * elements come in row-major order of the kept axes (keep_dims only changes
 * the output's shape, not its bytes). For each output element:
 *   s = sum_{reduced positions} in                       (int32)
 *   o = clamp(MBQM(s - input_zero_point * count, multiplier, shift)
 *             + output_zero_point, -128, 127)
 * where (multiplier, shift) is input_scale / output_scale quantized, with 1/count
 * folded in the way TFLite does it (integer division of the multiplier; see
 * tinyml.compiler.requant.mean_multiplier). MBQM = tm_multiply_by_quantized_multiplier.
 * With `requant` (compile time, for 2 <= -shift <= 23) MBQM(s - ...) + output_zero_point is
 * tm_requant (tm_common.h), the same value with one 64-bit multiply-accumulate.
 * GlobalAveragePooling2D is MEAN over axes {1, 2} of NHWC: one strided int32 sum per output
 * (a cold kernel, once per inference: plain C on every core, for code size).
 */
#ifndef TM_MEAN_H
#define TM_MEAN_H

#include "tm_common.h"

typedef struct {
    int32_t dims[4];
    int32_t reduce[4];
    int32_t count;
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t multiplier;
    int32_t shift;
    const tm_requant_t *requant; /* the same (multiplier, shift, output_zero_point) folded, or NULL */
} tm_mean_params_t;

void tm_mean_s8(const tm_mean_params_t *p, const int8_t *input, int8_t *output);

#endif /* TM_MEAN_H */
