/*
 * tm_model_clobber.c - test backend: LOAD frames fill the "input tensor", and
 * every inference overwrites it afterwards (as later layers reuse that arena
 * memory in TFLite-Micro), so the core must forget the load
 * (invoke_clobbers_load) rather than run a stale input twice.
 */
#include <string.h>

#include "model.h"
#include "tm_model.h"

static int8_t input_tensor[TINYML_MODEL_INPUT_BYTES];

static const tm_model_info_t clobber_info = {
    "clobber",
    TINYML_MODEL_SHA256,
    TINYML_MODEL_INPUT_BYTES,
    TINYML_MODEL_OUTPUT_BYTES,
    TINYML_MODEL_INPUT_RANK,
    TINYML_MODEL_INPUT_DIMS,
    TINYML_MODEL_OUTPUT_RANK,
    TINYML_MODEL_OUTPUT_DIMS,
    TINYML_MODEL_INPUT_SCALE,
    TINYML_MODEL_INPUT_ZERO_POINT,
    TINYML_MODEL_OUTPUT_SCALE,
    TINYML_MODEL_OUTPUT_ZERO_POINT,
    TINYML_MODEL_ARENA_BYTES,
    TINYML_MODEL_NUM_LAYERS,
    input_tensor,
    1u, /* invoke_clobbers_load */
};

int tm_model_init(void)
{
    return 0;
}

const tm_model_info_t *tm_model_info(void)
{
    return &clobber_info;
}

int tm_model_invoke(const int8_t *input, int8_t *output)
{
    int status;
    if (input != input_tensor) {
        memcpy(input_tensor, input, TINYML_MODEL_INPUT_BYTES);
    }
    status = tinyml_model_invoke(input_tensor, output);
    memset(input_tensor, 0x5A, TINYML_MODEL_INPUT_BYTES); /* the arena reused by later layers */
    return status;
}

const char *tm_model_layer_name(uint32_t layer)
{
    return tinyml_model_layer_name((int)layer);
}

uint64_t tm_model_layer_time(uint32_t layer)
{
    (void)layer;
    return 0u;
}
