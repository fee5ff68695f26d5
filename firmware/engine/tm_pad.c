#include <string.h>

#include "tm_pad.h"

void tm_pad_s8(const tm_pad_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t out_dims[4];
    int32_t i0, i1, i2, j;
    for (j = 0; j < 4; ++j) {
        out_dims[j] = p->pad_before[j] + p->input_dims[j] + p->pad_after[j];
    }
    for (i0 = 0; i0 < out_dims[0]; ++i0) {
        const int32_t in0 = i0 - p->pad_before[0];
        const int inside0 = in0 >= 0 && in0 < p->input_dims[0];
        for (i1 = 0; i1 < out_dims[1]; ++i1) {
            const int32_t in1 = i1 - p->pad_before[1];
            const int inside1 = inside0 && in1 >= 0 && in1 < p->input_dims[1];
            for (i2 = 0; i2 < out_dims[2]; ++i2) {
                const int32_t in2 = i2 - p->pad_before[2];
                /* one innermost row: [before | input row | after], or all padding */
                if (inside1 && in2 >= 0 && in2 < p->input_dims[2]) {
                    const int8_t *row =
                        input + ((in0 * p->input_dims[1] + in1) * p->input_dims[2] + in2) * p->input_dims[3];
                    memset(output, p->pad_value, (size_t)p->pad_before[3]);
                    output += p->pad_before[3];
                    memcpy(output, row, (size_t)p->input_dims[3]);
                    output += p->input_dims[3];
                    memset(output, p->pad_value, (size_t)p->pad_after[3]);
                    output += p->pad_after[3];
                } else {
                    memset(output, p->pad_value, (size_t)out_dims[3]);
                    output += out_dims[3];
                }
            }
        }
    }
}
