#include "model.h"

/* Written by the static constructors of ctor_probe.cc, in .bss otherwise. */
extern volatile uint32_t tm_ctor_probe_stamp[TINYML_MODEL_OUTPUT_BYTES];

int tinyml_model_invoke(const int8_t *input, int8_t *output)
{
    int k;
    for (k = 0; k < TINYML_MODEL_OUTPUT_BYTES; k++) {
        output[k] = (int8_t)(input[k] + (int8_t)tm_ctor_probe_stamp[k]);
    }
    return 0;
}

const char *tinyml_model_layer_name(int layer)
{
    return layer == 0 ? "CTOR_PROBE" : "";
}
