#include "tm_max_pool_2d.h"

void tm_max_pool_2d_s8(const tm_max_pool_2d_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t b, y, x, c, fy, fx;
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
                for (c = 0; c < p->channels; ++c) {
                    int32_t best = TM_INT8_MIN;
                    for (fy = fy_start; fy < fy_end; ++fy) {
                        const int8_t *row = image + ((y0 + fy) * p->input_w + x0) * p->channels + c;
                        for (fx = fx_start; fx < fx_end; ++fx) {
                            best = tm_max(best, row[fx * p->channels]);
                        }
                    }
                    *output++ = (int8_t)tm_clamp(best, p->activation_min, p->activation_max);
                }
            }
        }
    }
}
