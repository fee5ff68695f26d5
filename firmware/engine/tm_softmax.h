/*
 * tm_softmax.h - SOFTMAX, int8 -> int8 (TFLite-Micro reference_ops::Softmax,
 * gemmlowp fixed point). Output scale 1/256, zero point -128 (TFLite requires it).
 *
 * The input is `rows` vectors of `depth` elements (softmax over the last axis).
 * For each row with maximum m and each element x:
 *   d  = x - m                                   (<= 0)
 *   if d < diff_min: contributes 0 and o = -128
 *   z  = MBQM(d, input_multiplier, input_left_shift)    Q5.26, = beta*scale*d
 *   e  = exp(z)                                   Q0.31, exp_on_negative_values
 *   S  = sum of RDBP(e, 12) over the row          Q12.19
 *   1/S: with h = clz(S), num_bits_over_unit = 12 - h and
 *        r = one_over_one_plus_x((S << h) - 2^31) Q0.31 (Newton-Raphson)
 *   o  = clamp(RDBP(SRDHM(r, e), num_bits_over_unit + 23) - 128, -128, 127)
 * exp: exact on the residue a mod 1/4 by a 4th-order Taylor polynomial around
 * -1/8, then one multiply by exp(-2^k) for each set bit k (-2..4) of the rest.
 * input_multiplier, input_left_shift, diff_min: tinyml.compiler.requant.softmax_quant
 * (beta * input_scale * 2^26 quantized; diff_min = -floor(31 * 2^26 / 2^left_shift)).
 * S stays below 2^31 for depth <= 4096.
 */
#ifndef TM_SOFTMAX_H
#define TM_SOFTMAX_H

#include "tm_common.h"

typedef struct {
    int32_t rows;
    int32_t depth;
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} tm_softmax_params_t;

void tm_softmax_s8(const tm_softmax_params_t *p, const int8_t *input, int8_t *output);

#endif /* TM_SOFTMAX_H */
