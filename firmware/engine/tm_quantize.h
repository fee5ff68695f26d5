/*
 * tm_quantize.h - QUANTIZE (TFLite-Micro quantize.cc), two variants.
 *
 * float32 -> int8 (reference_ops::AffineQuantize), float arithmetic as TFLite:
 *   o = clamp(round(x / scale) + zero_point, -128, 127)
 *   x / scale in float32, round half away from zero (roundf); NaN gives -128.
 *
 * int8 -> int8 requantize (reference_ops::Requantize):
 *   o = clamp(MBQM(x - input_zero_point, multiplier, shift) + output_zero_point, -128, 127)
 *   (multiplier, shift) = input_scale / output_scale quantized
 *   (tinyml.compiler.requant.requantize_multiplier); MBQM = tm_multiply_by_quantized_multiplier.
 *
 * `size` elements, any shape.
 */
#ifndef TM_QUANTIZE_H
#define TM_QUANTIZE_H

#include "tm_common.h"

typedef struct {
    int32_t size;
    float scale;
    int32_t zero_point;
} tm_quantize_f32_params_t;

typedef struct {
    int32_t size;
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t multiplier;
    int32_t shift;
} tm_quantize_params_t;

void tm_quantize_f32_s8(const tm_quantize_f32_params_t *p, const float *input, int8_t *output);
void tm_quantize_s8(const tm_quantize_params_t *p, const int8_t *input, int8_t *output);

#endif /* TM_QUANTIZE_H */
