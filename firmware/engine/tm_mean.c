/* tm_mean.c - MEAN int8; the arithmetic is in tm_mean.h. */
#include "tm_mean.h"

/* One output from its zero-point-corrected sum s - input_zero_point * count. */
static inline int8_t mean_out(const tm_mean_params_t *p, int32_t sum)
{
    if (p->requant != NULL) {
        return tm_clamp_s8(tm_requant(sum, p->requant));
    }
    return tm_clamp_s8(tm_multiply_by_quantized_multiplier(sum, p->multiplier, p->shift) + p->output_zero_point);
}

/* Per-channel mean over H and W of NHWC (global average pooling): one strided int32 sum per output. */
static void mean_hw(const tm_mean_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t pixels = p->dims[1] * p->dims[2];
    const int32_t channels = p->dims[3];
    const int32_t offset = p->input_zero_point * p->count;
    int32_t b, c, i;
    for (b = 0; b < p->dims[0]; ++b, input += pixels * channels) {
        for (c = 0; c < channels; ++c) {
            const int8_t *x = input + c;
            int32_t sum = 0;
            for (i = 0; i < pixels; ++i, x += channels) {
                sum += *x;
            }
            *output++ = mean_out(p, sum - offset);
        }
    }
}

void tm_mean_s8(const tm_mean_params_t *p, const int8_t *input, int8_t *output)
{
    /* out_n: extent of axis j in the output loop, red_n: in the reduction loop. */
    int32_t out_n[4], red_n[4], stride[4];
    int32_t o0, o1, o2, o3, r0, r1, r2, r3, j;
    if (!p->reduce[0] && p->reduce[1] && p->reduce[2] && !p->reduce[3]) {
        mean_hw(p, input, output);
        return;
    }
    stride[3] = 1;
    for (j = 3; j >= 0; --j) {
        out_n[j] = p->reduce[j] ? 1 : p->dims[j];
        red_n[j] = p->reduce[j] ? p->dims[j] : 1;
        if (j > 0) {
            stride[j - 1] = stride[j] * p->dims[j];
        }
    }
    for (o0 = 0; o0 < out_n[0]; ++o0) {
        for (o1 = 0; o1 < out_n[1]; ++o1) {
            for (o2 = 0; o2 < out_n[2]; ++o2) {
                for (o3 = 0; o3 < out_n[3]; ++o3) {
                    const int8_t *base = input + o0 * stride[0] + o1 * stride[1] + o2 * stride[2] + o3;
                    int32_t sum = 0;
                    for (r0 = 0; r0 < red_n[0]; ++r0) {
                        for (r1 = 0; r1 < red_n[1]; ++r1) {
                            for (r2 = 0; r2 < red_n[2]; ++r2) {
                                const int8_t *row = base + r0 * stride[0] + r1 * stride[1] + r2 * stride[2];
                                for (r3 = 0; r3 < red_n[3]; ++r3) {
                                    sum += row[r3];
                                }
                            }
                        }
                    }
                    *output++ = mean_out(p, sum - p->input_zero_point * p->count);
                }
            }
        }
    }
}
