/*
 * tm_add.h - ADD, int8 (TFLite-Micro reference_integer_ops::Add / BroadcastAdd).
 *
 * For every output element o with inputs a (input1) and b (input2):
 *   a' = MBQM((a + input1_offset) * 2^left_shift, input1_multiplier, input1_shift)
 *   b' = MBQM((b + input2_offset) * 2^left_shift, input2_multiplier, input2_shift)
 *   o  = clamp(MBQM(a' + b', output_multiplier, output_shift) + output_offset,
 *              activation_min, activation_max)
 * with MBQM = tm_multiply_by_quantized_multiplier, input offsets = -zero points,
 * output_offset = output zero point, left_shift = 20, and the multipliers of
 * scale1 / (2 max(scale1, scale2)), scale2 / (2 max(...)) and
 * 2 max(...) / (2^20 output_scale) (tinyml.compiler.requant.add_quant).
 *
 * Broadcast: the output has 4-D shape `dims` (rank < 4 padded with leading 1s);
 * input k's element for output index (i0, i1, i2, i3) is at
 *   sum_j i_j * inputk_strides[j]
 * where a stride is 0 on a dimension the input broadcasts (size 1) and the
 * row-major element stride otherwise. Same-shape ADD: dims = {1, 1, 1, n},
 * strides {0, 0, 0, 1}. Output is written contiguously, row-major.
 *
 * Fast path (tables from the compiler, tinyml.compiler.requant.add_tables): a' and b'
 * depend on one int8 each, so input1_table[a + 128] = a' and input2_table[b + 128] = b'
 * (256 int32 each, computed with the formula above); when `requant` is not NULL
 * (output pair normalised, right shift 2..23, as ADD always has) the last step is
 *   o = clamp(tm_requant(a' + b', requant), activation_min, activation_max)
 * which equals MBQM(a' + b', output_multiplier, output_shift) + output_offset
 * (tm_common.h; |a' + b'| < 2^29 so SRDHM never saturates). Per element: two loads,
 * two table reads, one add, one SMLAL-shaped requantization. Either table NULL: the
 * formula above is evaluated per element (the reference).
 * With the DSP extension (tm_dsp.h) a same-shape row whose output multiplier is not 0 reads
 * four elements of each input per word and requantizes with tm_requant_rec (multiplier2 =
 * 2M mod 2^32, round = 2 round_hi, e = shift + 1; the same value, see tm_add.c).
 */
#ifndef TM_ADD_H
#define TM_ADD_H

#include "tm_common.h"

typedef struct {
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t input1_multiplier;
    int32_t input1_shift;
    int32_t input2_multiplier;
    int32_t input2_shift;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t output_offset;
    int32_t left_shift;
    int32_t activation_min;
    int32_t activation_max;
    int32_t dims[4];
    int32_t input1_strides[4];
    int32_t input2_strides[4];
    const int32_t *input1_table; /* 256 entries, a' for a = -128..127, or NULL */
    const int32_t *input2_table; /* 256 entries, b' for b = -128..127, or NULL */
    const tm_requant_t *requant; /* output requantization record, or NULL */
} tm_add_params_t;

void tm_add_s8(const tm_add_params_t *p, const int8_t *input1, const int8_t *input2, int8_t *output);

#endif /* TM_ADD_H */
