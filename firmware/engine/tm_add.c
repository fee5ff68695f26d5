#include "tm_add.h"

static int32_t tm_add_rescale(int32_t x, int32_t offset, int32_t left_shift, int32_t multiplier, int32_t shift)
{
    return tm_multiply_by_quantized_multiplier(tm_shift_left(x + offset, left_shift), multiplier, shift);
}

void tm_add_s8(const tm_add_params_t *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < p->dims[0]; ++i0) {
        for (i1 = 0; i1 < p->dims[1]; ++i1) {
            for (i2 = 0; i2 < p->dims[2]; ++i2) {
                const int8_t *a = input1 + i0 * p->input1_strides[0] + i1 * p->input1_strides[1] +
                                  i2 * p->input1_strides[2];
                const int8_t *b = input2 + i0 * p->input2_strides[0] + i1 * p->input2_strides[1] +
                                  i2 * p->input2_strides[2];
                for (i3 = 0; i3 < p->dims[3]; ++i3) {
                    const int32_t sum =
                        tm_add_rescale(a[i3 * p->input1_strides[3]], p->input1_offset, p->left_shift,
                                       p->input1_multiplier, p->input1_shift) +
                        tm_add_rescale(b[i3 * p->input2_strides[3]], p->input2_offset, p->left_shift,
                                       p->input2_multiplier, p->input2_shift);
                    const int32_t out =
                        tm_multiply_by_quantized_multiplier(sum, p->output_multiplier, p->output_shift) +
                        p->output_offset;
                    *output++ = (int8_t)tm_clamp(out, p->activation_min, p->activation_max);
                }
            }
        }
    }
}
