#include "tm_quantize.h"

/* roundf without libm: truncate, then step by the exact remainder (v - t is
   exact in float for |v| < 2^23; larger floats are already integers). */
static int32_t tm_round_half_away(float v)
{
    const float limit = 1073741824.0f; /* 2^30: far outside int8 after any zero point */
    int32_t t;
    float remainder;
    if (!(v > -limit)) { /* also NaN */
        return -(int32_t)1073741824;
    }
    if (v > limit) {
        return (int32_t)1073741824;
    }
    t = (int32_t)v;
    remainder = v - (float)t;
    if (remainder >= 0.5f) {
        ++t;
    } else if (remainder <= -0.5f) {
        --t;
    }
    return t;
}

void tm_quantize_f32_s8(const tm_quantize_f32_params_t *p, const float *input, int8_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        output[i] = tm_clamp_s8(tm_round_half_away(input[i] / p->scale) + p->zero_point);
    }
}

void tm_quantize_s8(const tm_quantize_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t x = input[i] - p->input_zero_point;
        output[i] = tm_clamp_s8(tm_multiply_by_quantized_multiplier(x, p->multiplier, p->shift) +
                                p->output_zero_point);
    }
}
