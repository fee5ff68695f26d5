/*
 * tm_model.h - the model API the firmware core calls, whatever runs the model.
 *
 * Backends: "engine" (the interpreter-free C that `tinyml compile` writes, the
 * default) and "tflm" (TFLite-Micro with the artifacts `tinyml emit` writes,
 * for real boards). Exactly one backend is linked into an image.
 */
#ifndef TM_MODEL_H
#define TM_MODEL_H

#include <stdint.h>

#define TM_MODEL_MAX_RANK 4

typedef struct {
    const char *backend;      /* "engine" or "tflm" */
    const char *model_sha256; /* sha256 of the .tflite, 64 lowercase hex chars */
    uint32_t input_bytes;
    uint32_t output_bytes;
    uint32_t input_rank;
    int32_t input_dims[TM_MODEL_MAX_RANK];
    uint32_t output_rank;
    int32_t output_dims[TM_MODEL_MAX_RANK];
    float input_scale;
    int32_t input_zero_point;
    float output_scale;
    int32_t output_zero_point;
    uint32_t arena_bytes;     /* arena the backend really uses */
    uint32_t num_layers;
    /* input_bytes of static RAM that LOAD frames fill for inputs larger than
     * one frame, or NULL (then inputs must fit one INFER frame). Last, so a
     * backend that does not set it leaves it NULL. */
    int8_t *load_buffer;
    /* Nonzero when an inference may overwrite load_buffer (it is the model's
     * input tensor in an arena whose memory later layers reuse): the core then
     * forgets a load once any inference ran. */
    uint8_t invoke_clobbers_load;
} tm_model_info_t;

/* Prepares the backend; returns 0 on success. Called once at boot. */
int tm_model_init(void);

const tm_model_info_t *tm_model_info(void);

/* One inference: input_bytes int8 in, output_bytes int8 out. 0 on success. */
int tm_model_invoke(const int8_t *input, int8_t *output);

/* Per-layer profile (builds with TINYML_PROFILE): op name of layer i and the
 * time it took in the last invoke, in the port's latency unit. */
const char *tm_model_layer_name(uint32_t layer);
uint64_t tm_model_layer_time(uint32_t layer);

#endif /* TM_MODEL_H */
