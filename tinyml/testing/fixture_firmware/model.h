/*
 * Test fixture obeying the model.h contract of docs/ARTIFACTS.md: a fixed
 * integer function, not a network. Only protocol tests use it; the QEMU test
 * and the demo build real compiled models. tests/test_firmware_native.py holds
 * its Python twin (fixture_model_outputs).
 */
#ifndef TINYML_FIXTURE_MODEL_H
#define TINYML_FIXTURE_MODEL_H

#include <stdint.h>

#define TINYML_MODEL_SHA256 "f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1"
#define TINYML_MODEL_INPUT_BYTES 64
#define TINYML_MODEL_OUTPUT_BYTES 10
#define TINYML_MODEL_INPUT_RANK 4
#define TINYML_MODEL_INPUT_DIMS {1, 8, 8, 1}
#define TINYML_MODEL_OUTPUT_RANK 2
#define TINYML_MODEL_OUTPUT_DIMS {1, 10}
#define TINYML_MODEL_INPUT_SCALE 0.00392157f
#define TINYML_MODEL_INPUT_ZERO_POINT (-128)
#define TINYML_MODEL_OUTPUT_SCALE 0.1f
#define TINYML_MODEL_OUTPUT_ZERO_POINT 5
#define TINYML_MODEL_ARENA_BYTES 0
#define TINYML_MODEL_NUM_LAYERS 1

/* out[k] = clamp((sum_i in[i] * w(i, k)) >> 6, -128, 127), w(i, k) = (31 i + 17 k) mod 7 - 3 */
int tinyml_model_invoke(const int8_t *input, int8_t *output);
const char *tinyml_model_layer_name(int layer);

#endif
