/*
 * tm_fully_connected_row16.h - FULLY_CONNECTED, one input row against int16-widened weights
 * (the DSP path of tm_fully_connected.h when the compiler gives filter16).
 *
 * filter16 has the layout of the widened-patch conv (tm_conv_2d.h) for a 1x1 filter over
 * `depth` input channels: kp = depth rounded up to 4, per output channel kp/2 words of int16
 * weights, each group of four taps t..t+3 in the order (t, t+2, t+1, t+3) (zeros past depth),
 * then bias_folded and the packed requantization (multiplier2, round, e_post) of
 * tm_requant_rec (tm_dsp.h): kp/2 + 4 words per channel.
 *
 *   acc[oc] = bias_folded[oc] + sum over i < depth of filter[oc][i] * x[i]
 *   out[oc] = clamp(tm_requant_rec(acc[oc]), act_min, act_max)
 *
 * Four input bytes are widened once (SXTB16, SXTB16 ror 8: the filter16 order) and multiplied
 * into four output channels with SMLAD: on a Cortex-M, an assembly loop of 17 instructions per
 * 16 MACs. The same terms as TFLite's sum plus zeros, so the same int32 accumulator.
 */
#ifndef TM_FULLY_CONNECTED_ROW16_H
#define TM_FULLY_CONNECTED_ROW16_H

#include <stdint.h>

#include "tm_common.h"
#include "tm_dsp.h"

#if TM_DSP_AVAILABLE
void tm_fully_connected_row16_s8(const int8_t *x, const int32_t *filter16, int32_t depth, int32_t channels,
                                 int32_t act_min, int32_t act_max, int8_t *out);
#endif

#endif /* TM_FULLY_CONNECTED_ROW16_H */
