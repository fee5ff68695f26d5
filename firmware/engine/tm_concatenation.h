/*
 * tm_concatenation.h - CONCATENATION, int8 (TFLite-Micro concatenation.cc ->
 * reference_ops::Concatenation).
 *
 * With `outer` = product of the dimensions before the axis and, for input k,
 * inner[k] = its size along the axis times the product of the dimensions
 * after it (its bytes per outer step), the output is, for each outer step,
 * the inner[0] bytes of input 0, then inner[1] bytes of input 1, and so on.
 * Any axis is reduced to (outer, inner[]) at compile time.
 *
 * Bytes are copied unchanged: TFLM's int8 CONCATENATION never requantizes,
 * it refuses (at Prepare) inputs whose scale or zero point differs from the
 * output's, and the converter gives all of them the same parameters; the
 * compiler refuses such models too. Up to TM_CONCATENATION_MAX_INPUTS
 * inputs (TFLM's limit); `inputs` is an array of num_inputs pointers.
 */
#ifndef TM_CONCATENATION_H
#define TM_CONCATENATION_H

#include "tm_common.h"

#define TM_CONCATENATION_MAX_INPUTS 10

typedef struct {
    int32_t num_inputs;
    int32_t outer;
    int32_t inner[TM_CONCATENATION_MAX_INPUTS];
} tm_concatenation_params_t;

void tm_concatenation_s8(const tm_concatenation_params_t *p, const int8_t *const *inputs, int8_t *output);

#endif /* TM_CONCATENATION_H */
