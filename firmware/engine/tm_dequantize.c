#include "tm_dequantize.h"

void tm_dequantize_s8_f32(const tm_dequantize_params_t *p, const int8_t *input, float *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        output[i] = p->scale * (float)(input[i] - p->zero_point);
    }
}
