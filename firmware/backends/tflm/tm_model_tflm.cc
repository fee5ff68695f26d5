/*
 * tm_model_tflm.cc - tm_model.h over TensorFlow Lite for Microcontrollers,
 * with the artifacts `tinyml emit` writes (model_data.h/.cc, model_ops.h,
 * model_io.h; docs/ARTIFACTS.md).
 *
 * Vendor kernels come from the TFLM tree the build links: CMSIS-NN on Cortex-M,
 * ESP-NN on ESP32 (firmware/platformio.ini). This file is the same for both.
 *
 * Per-layer profile (TINYML_PROFILE): a tflite::MicroProfilerInterface that
 * timestamps every operator with the port's timer (tm_port_timer_now), so the
 * times are in the port's latency unit like the engine's. TFLM invokes one
 * "event" per operator in execution order, which is the layer order the host
 * reports (operators of the subgraph 0, the only one our models have).
 *
 * Arena: TINYML_ARENA_BYTES_32BIT is host TFLite-Micro's figure with the
 * pointer-holding structs at their 32-bit size (tinyml/tflm_arena.py; the 64-bit
 * host's own figure overstates a 32-bit core's need). TINYML_ARENA_SLACK adds
 * room for vendor kernels' scratch buffers, which the host's reference kernels
 * do not ask for. The backend reports the arena it really used.
 *
 * No static constructors: the resolver and the interpreter are constructed in
 * place in tm_model_init, so the image boots the same whether or not a port's
 * startup runs .init_array (they all do). LOAD frames write straight into the
 * input tensor (no second input-sized buffer); an inference may reuse that
 * memory, which invoke_clobbers_load tells the core.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <new>

extern "C" {
#include "tm_model.h"
#include "tm_port.h"
}

#include "model_data.h"
#include "model_io.h"
#include "model_ops.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/schema/schema_generated.h"

#ifndef TINYML_ARENA_SLACK
#define TINYML_ARENA_SLACK 512
#endif
#ifndef TINYML_ARENA_BYTES_32BIT /* model_io.h of an older `tinyml emit` */
#define TINYML_ARENA_BYTES_32BIT TINYML_ARENA_BYTES
#endif
#ifndef TINYML_TFLM_MAX_LAYERS
#define TINYML_TFLM_MAX_LAYERS 64
#endif

namespace {

constexpr size_t kArenaBytes = ((TINYML_ARENA_BYTES_32BIT + TINYML_ARENA_SLACK + 15) / 16) * 16;
alignas(16) uint8_t tensor_arena[kArenaBytes];

#ifdef TINYML_PROFILE
// Records begin/end of each operator; TFLM calls BeginEvent with the op's name.
class LayerProfiler : public tflite::MicroProfilerInterface {
  public:
    uint32_t BeginEvent(const char *tag) override {
        if (count_ < TINYML_TFLM_MAX_LAYERS) {
            names_[count_] = tag;
            start_[count_] = tm_port_timer_now();
        }
        return count_++;
    }
    void EndEvent(uint32_t event_handle) override {
        if (event_handle < TINYML_TFLM_MAX_LAYERS) {
            time_[event_handle] = tm_port_timer_now() - start_[event_handle];
        }
    }
    void Reset() { count_ = 0; }
    uint32_t count() const { return count_ < TINYML_TFLM_MAX_LAYERS ? count_ : TINYML_TFLM_MAX_LAYERS; }
    const char *name(uint32_t i) const { return names_[i]; }
    uint64_t time(uint32_t i) const { return time_[i]; }

  private:
    // Never deleted (constructed in place): without this, the virtual
    // destructor's deleting variant links operator delete, free and sbrk.
    void operator delete(void *) {}

    uint32_t count_ = 0;
    const char *names_[TINYML_TFLM_MAX_LAYERS] = {};
    uint64_t start_[TINYML_TFLM_MAX_LAYERS] = {};
    uint64_t time_[TINYML_TFLM_MAX_LAYERS] = {};
};
// Constructed in place in tm_model_init like the resolver: a static object
// would need a constructor and an atexit-registered destructor.
alignas(LayerProfiler) uint8_t profiler_storage[sizeof(LayerProfiler)];
LayerProfiler *profiler = nullptr;
#define TINYML_PROFILER_ARG profiler
#else
#define TINYML_PROFILER_ARG nullptr
#endif

// Storage for the resolver and the interpreter: constructed in place at init
// (no heap, and no static constructor to depend on).
alignas(tinyml::ModelOpResolver) uint8_t resolver_storage[sizeof(tinyml::ModelOpResolver)];
alignas(tflite::MicroInterpreter) uint8_t interpreter_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter *interpreter = nullptr;

tm_model_info_t info = {
    "tflm",
    TINYML_MODEL_SHA256,
    TINYML_INPUT_BYTES,
    TINYML_OUTPUT_BYTES,
    TINYML_INPUT_RANK,
    TINYML_INPUT_DIMS,
    TINYML_OUTPUT_RANK,
    TINYML_OUTPUT_DIMS,
    TINYML_INPUT_SCALE,
    TINYML_INPUT_ZERO_POINT,
    TINYML_OUTPUT_SCALE,
    TINYML_OUTPUT_ZERO_POINT,
    static_cast<uint32_t>(kArenaBytes),
    0u,
    nullptr, /* load_buffer: the input tensor, once allocated */
    1u,      /* invoke_clobbers_load */
};

// Status codes of tm_model_init, so a HELLO tells what failed.
enum InitStatus {
    kInitOk = 0,
    kInitSchemaVersion = 1,
    kInitOpResolver = 2,
    kInitAllocate = 3,
    kInitTensorMismatch = 4,
};

}  // namespace

extern "C" int tm_model_init(void) {
    const tflite::Model *model = tflite::GetModel(g_model_data);
    if (model->version() != TFLITE_SCHEMA_VERSION) {
        return kInitSchemaVersion;
    }
    tinyml::ModelOpResolver *resolver = new (resolver_storage) tinyml::ModelOpResolver();
#ifdef TINYML_PROFILE
    profiler = new (profiler_storage) LayerProfiler();
#endif
    if (tinyml::RegisterModelOps(*resolver) != kTfLiteOk) {
        return kInitOpResolver;
    }
    interpreter = new (interpreter_storage)
        tflite::MicroInterpreter(model, *resolver, tensor_arena, kArenaBytes, nullptr, TINYML_PROFILER_ARG);
    if (interpreter->AllocateTensors() != kTfLiteOk) {
        interpreter = nullptr;
        return kInitAllocate;
    }
    TfLiteTensor *input = interpreter->input(0);
    TfLiteTensor *output = interpreter->output(0);
    if (input->type != kTfLiteInt8 || output->type != kTfLiteInt8 || input->bytes != TINYML_INPUT_BYTES ||
        output->bytes != TINYML_OUTPUT_BYTES) {
        interpreter = nullptr;
        return kInitTensorMismatch;
    }
    info.arena_bytes = static_cast<uint32_t>(interpreter->arena_used_bytes());
    info.load_buffer = input->data.int8;
    const tflite::SubGraph *graph = model->subgraphs()->Get(0);
    info.num_layers = graph->operators()->size();
    return kInitOk;
}

extern "C" const tm_model_info_t *tm_model_info(void) { return &info; }

extern "C" int tm_model_invoke(const int8_t *input, int8_t *output) {
    if (interpreter == nullptr) {
        return -1;
    }
    int8_t *input_tensor = interpreter->input(0)->data.int8;
    if (input != input_tensor) { /* LOAD frames already wrote it in place */
        memcpy(input_tensor, input, TINYML_INPUT_BYTES);
    }
#ifdef TINYML_PROFILE
    profiler->Reset();
#endif
    if (interpreter->Invoke() != kTfLiteOk) {
        return -2;
    }
    memcpy(output, interpreter->output(0)->data.int8, TINYML_OUTPUT_BYTES);
    return 0;
}

extern "C" const char *tm_model_layer_name(uint32_t layer) {
#ifdef TINYML_PROFILE
    if (profiler != nullptr && layer < profiler->count() && profiler->name(layer) != nullptr) {
        return profiler->name(layer);
    }
#endif
    (void)layer;
    return "";
}

extern "C" uint64_t tm_model_layer_time(uint32_t layer) {
#ifdef TINYML_PROFILE
    return profiler != nullptr && layer < profiler->count() ? profiler->time(layer) : 0u;
#else
    (void)layer;
    return 0u;
#endif
}
