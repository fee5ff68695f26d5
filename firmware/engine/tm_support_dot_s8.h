/*
 * tm_support_dot_s8.h - the int8 dot-product rows shared by CONV_2D's im2col algorithm and
 * FULLY_CONNECTED's folded path (CMSIS-NN's arm_nn_mat_mult_kernel_s8_s16 role).
 *
 * out0/out1[oc] for oc < channels, the dot products of rows row0 and row1 (row1 NULL: one row)
 * of length k with the filter rows (filter[oc][0..k)):
 *
 *   acc = bias_folded[oc] + sum over i < k of filter[oc][i] * row[i]
 *   out = clamp(tm_requant(acc, requant[per_channel ? oc : 0]), act_min, act_max)
 *
 * bias_folded = bias + input_offset * sum(filter row) (compile time), so raw int8 x int8
 * products are summed; padded taps must read the input zero point (their term is then 0).
 *
 * DSP cores (and TM_DSP_EMULATE): 2 rows x 2 channels, four bytes at a time with SXTB16 + SMLAD
 * (on a Cortex-M with an optimising gcc, an inline-assembly loop of 22 instructions per 16 MACs
 * when the second row starts k bytes after the first, as in the im2col scratch and for 1x1
 * stride-1 convolutions); one row (a batch-1 FULLY_CONNECTED) without a second patch.
 * Cores without SIMD (RV32IMC, armv6-m): the same 2 x 2 block, four taps unrolled, each loaded
 * byte used by two MUL + ADD; on armv6-m a Thumb-1 assembly loop. The same int32 sums in every
 * form, so the same bytes.
 */
#ifndef TM_SUPPORT_DOT_S8_H
#define TM_SUPPORT_DOT_S8_H

#include <stdint.h>

#include "tm_common.h"

void tm_s8_dot_rows_2x2(const int8_t *row0, const int8_t *row1, const int8_t *filter, int32_t k,
                        int32_t channels, const int32_t *bias_folded, const tm_requant_t *requant,
                        int32_t per_channel, int32_t act_min, int32_t act_max, int8_t *out0, int8_t *out1);

#endif /* TM_SUPPORT_DOT_S8_H */
