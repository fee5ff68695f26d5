/*
 * tm_pad.h - PAD / PADV2, int8 (TFLite-Micro pad.cc -> reference_ops::Pad).
 *
 * The input has 4-D shape `input_dims` (rank < 4 padded with leading 1s and
 * zero paddings). The output has shape
 *   out_dims[j] = pad_before[j] + input_dims[j] + pad_after[j]
 * and out[i] = in[i - pad_before] where that index is inside the input,
 * pad_value elsewhere. pad_value is the output zero point for PAD (real 0)
 * and the constant for PADV2, as TFLM picks it.
 */
#ifndef TM_PAD_H
#define TM_PAD_H

#include "tm_common.h"

typedef struct {
    int32_t input_dims[4];
    int32_t pad_before[4];
    int32_t pad_after[4];
    int32_t pad_value;
} tm_pad_params_t;

void tm_pad_s8(const tm_pad_params_t *p, const int8_t *input, int8_t *output);

#endif /* TM_PAD_H */
