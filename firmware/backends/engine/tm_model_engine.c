/*
 * tm_model_engine.c - tm_model.h over the interpreter-free C that
 * `tinyml compile` writes (model.h / model.c, kernels in firmware/engine).
 *
 * The generated code has its own static arena and no init step, so this
 * backend only describes the model and, with TINYML_PROFILE, times each layer
 * through the hooks the generated code calls.
 */
#include <stdint.h>

#include "model.h"
#include "tm_model.h"
#include "tm_port.h"

#define ENGINE_NUM_LAYERS ((uint32_t)(TINYML_MODEL_NUM_LAYERS))

/* Where LOAD frames assemble one input that is larger than a frame; sized by
 * the model at build time (27 KB for a 96x96x3 model, static like the arena). */
static int8_t load_buffer[TINYML_MODEL_INPUT_BYTES];

static const tm_model_info_t engine_info = {
    "engine",
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
    ENGINE_NUM_LAYERS,
    load_buffer,
    0u, /* invoke_clobbers_load: the buffer is the backend's own */
};

#ifdef TINYML_PROFILE
static uint64_t layer_start[ENGINE_NUM_LAYERS];
static uint64_t layer_time[ENGINE_NUM_LAYERS];

void tinyml_profile_layer_begin(int layer);
void tinyml_profile_layer_end(int layer);

void tinyml_profile_layer_begin(int layer)
{
    if (layer >= 0 && (uint32_t)layer < ENGINE_NUM_LAYERS) {
        layer_start[layer] = tm_port_timer_now();
    }
}

void tinyml_profile_layer_end(int layer)
{
    if (layer >= 0 && (uint32_t)layer < ENGINE_NUM_LAYERS) {
        layer_time[layer] = tm_port_timer_now() - layer_start[layer];
    }
}
#endif

int tm_model_init(void) { return 0; }

const tm_model_info_t *tm_model_info(void) { return &engine_info; }

int tm_model_invoke(const int8_t *input, int8_t *output)
{
    return tinyml_model_invoke(input, output);
}

const char *tm_model_layer_name(uint32_t layer)
{
    if (layer >= ENGINE_NUM_LAYERS) {
        return "";
    }
    return tinyml_model_layer_name((int)layer);
}

uint64_t tm_model_layer_time(uint32_t layer)
{
#ifdef TINYML_PROFILE
    return layer < ENGINE_NUM_LAYERS ? layer_time[layer] : 0u;
#else
    (void)layer;
    return 0u; /* built without TINYML_PROFILE: no per-layer times */
#endif
}
