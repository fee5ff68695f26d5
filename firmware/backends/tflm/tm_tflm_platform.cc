/*
 * tm_tflm_platform.cc - the two platform hooks TFLite-Micro asks of a target,
 * for builds that compile a TFLM tree's sources (CMake without TINYML_TFLM_LIB,
 * and PlatformIO). They replace the tree's micro_time.cc / debug_log.cc, which
 * the source lists leave out: a tree exported for several targets holds one
 * pair per target, and cortex_m_generic's micro_time.cc needs a CMSIS device
 * header to reach DWT.
 *
 * Time: the port's latency timer (cycles, instructions on QEMU, or ns).
 * Log: dropped. The UART carries the framed protocol, and TFLM's messages would
 * corrupt it; a failed init is reported by HELLO's model_failed status instead.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern "C" {
#include "tm_port.h"
}

#include "tensorflow/lite/micro/debug_log.h"
#include "tensorflow/lite/micro/micro_time.h"

extern "C" void DebugLog(const char *format, va_list args) {
    (void)format;
    (void)args;
}

extern "C" int DebugVsnprintf(char *buffer, size_t buf_size, const char *format, va_list vlist) {
    return vsnprintf(buffer, buf_size, format, vlist);
}

namespace tflite {

// 0: the port's unit is not always seconds-based (instructions on QEMU); TFLM
// only uses this to print profiles in ms, which this firmware never does.
uint32_t ticks_per_second() { return 0u; }

uint32_t GetCurrentTimeTicks() { return static_cast<uint32_t>(tm_port_timer_now()); }

}  // namespace tflite
