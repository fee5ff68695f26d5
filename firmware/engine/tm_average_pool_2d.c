#include "tm_average_pool_2d.h"

void tm_average_pool_2d_s8(const tm_average_pool_2d_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t b, y, x, c, fy;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * p->input_h * p->input_w * p->channels;
        for (y = 0; y < p->output_h; ++y) {
            const int32_t y0 = y * p->stride_h - p->pad_h;
            const int32_t fy_start = tm_max(0, -y0);
            const int32_t fy_end = tm_min(p->filter_h, p->input_h - y0);
            for (x = 0; x < p->output_w; ++x) {
                const int32_t x0 = x * p->stride_w - p->pad_w;
                const int32_t fx_start = tm_max(0, -x0);
                const int32_t fx_end = tm_min(p->filter_w, p->input_w - x0);
                const int32_t count = (fy_end - fy_start) * (fx_end - fx_start);
                /* window rows spanning the whole input width are one run in memory (global pooling) */
                const int32_t whole = fx_end - fx_start == p->input_w;
                const int32_t rows = whole ? (fy_end > fy_start) : fy_end - fy_start;
                const int32_t run = (whole ? count : fx_end - fx_start) * p->channels;
                const int8_t *const first = image + ((y0 + fy_start) * p->input_w + x0 + fx_start) * p->channels;
                for (c = 0; c < p->channels; ++c) {
                    int32_t sum = 0;
                    for (fy = 0; fy < rows; ++fy) {
                        const int8_t *px = first + fy * p->input_w * p->channels + c;
                        const int8_t *const end = px + run;
                        for (; px < end; px += p->channels) {
                            sum += *px;
                        }
                    }
                    if (count > 0) {
                        sum = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                    }
                    *output++ = (int8_t)tm_clamp(sum, p->activation_min, p->activation_max);
                }
            }
        }
    }
}
