#include "model.h"

#ifdef TINYML_PROFILE
void tinyml_profile_layer_begin(int layer);
void tinyml_profile_layer_end(int layer);
#endif

int tinyml_model_invoke(const int8_t *input, int8_t *output)
{
    int32_t k, i;
#ifdef TINYML_PROFILE
    tinyml_profile_layer_begin(0);
#endif
    for (k = 0; k < TINYML_MODEL_OUTPUT_BYTES; k++) {
        int32_t acc = 0;
        for (i = 0; i < TINYML_MODEL_INPUT_BYTES; i++) {
            acc += (int32_t)input[i] * ((31 * i + 17 * k) % 7 - 3);
        }
        /* Arithmetic shift of a negative value: written as a floor division
         * so it is defined C, matching Python's >>. */
        acc = acc >= 0 ? acc / 64 : -((-acc + 63) / 64);
        output[k] = (int8_t)(acc > 127 ? 127 : (acc < -128 ? -128 : acc));
    }
#ifdef TINYML_PROFILE
    tinyml_profile_layer_end(0);
#endif
    return 0;
}

const char *tinyml_model_layer_name(int layer)
{
    return layer == 0 ? "FIXTURE_DOT" : "";
}
