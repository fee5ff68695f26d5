#include <string.h>

#include "tm_concatenation.h"

void tm_concatenation_s8(const tm_concatenation_params_t *p, const int8_t *const *inputs, int8_t *output)
{
    int32_t o, k;
    for (o = 0; o < p->outer; ++o) {
        for (k = 0; k < p->num_inputs; ++k) {
            const int32_t n = p->inner[k];
            memcpy(output, inputs[k] + o * n, (size_t)n);
            output += n;
        }
    }
}
