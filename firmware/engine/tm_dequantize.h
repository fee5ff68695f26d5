/*
 * tm_dequantize.h - DEQUANTIZE int8 -> float32 (TFLite-Micro reference_ops::Dequantize).
 *
 *   o = scale * (x - zero_point)
 * TFLite computes it in double and rounds to float once; the exact product of a
 * float32 scale and an integer below 2^9 has at most 33 significant bits, so
 * the float32 multiply here rounds the same exact value the same way.
 * `size` elements, any shape.
 */
#ifndef TM_DEQUANTIZE_H
#define TM_DEQUANTIZE_H

#include "tm_common.h"

typedef struct {
    int32_t size;
    float scale;
    int32_t zero_point;
} tm_dequantize_params_t;

void tm_dequantize_s8_f32(const tm_dequantize_params_t *p, const int8_t *input, float *output);

#endif /* TM_DEQUANTIZE_H */
