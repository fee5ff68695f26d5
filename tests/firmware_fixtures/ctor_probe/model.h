/*
 * Test fixture obeying the model.h contract: its output shows whether the C++
 * static constructor in ctor_probe.cc ran before main (the port's startup must
 * run .init_array and its linker script keep it). Not a network.
 */
#ifndef TINYML_CTOR_PROBE_MODEL_H
#define TINYML_CTOR_PROBE_MODEL_H

#include <stdint.h>

#define TINYML_MODEL_SHA256 "c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7"
#define TINYML_MODEL_INPUT_BYTES 4
#define TINYML_MODEL_OUTPUT_BYTES 4
#define TINYML_MODEL_INPUT_RANK 2
#define TINYML_MODEL_INPUT_DIMS {1, 4}
#define TINYML_MODEL_OUTPUT_RANK 2
#define TINYML_MODEL_OUTPUT_DIMS {1, 4}
#define TINYML_MODEL_INPUT_SCALE 1.0f
#define TINYML_MODEL_INPUT_ZERO_POINT 0
#define TINYML_MODEL_OUTPUT_SCALE 1.0f
#define TINYML_MODEL_OUTPUT_ZERO_POINT 0
#define TINYML_MODEL_ARENA_BYTES 0
#define TINYML_MODEL_NUM_LAYERS 1

/* out[k] = in[k] + (int8_t)ctor_stamp[k], where ctor_stamp holds what the
 * constructors wrote (all zero if none ran). */
int tinyml_model_invoke(const int8_t *input, int8_t *output);
const char *tinyml_model_layer_name(int layer);

#endif
