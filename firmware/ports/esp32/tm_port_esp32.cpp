/*
 * tm_port_esp32.cpp - tm_port.h for ESP32 (Xtensa LX6), ESP32-S3 (LX7) and
 * ESP32-C3 (RISC-V) on the Arduino-ESP32 core, plus the framework entry point.
 *
 * Built by PlatformIO (firmware/platformio.ini). The ESP-IDF/Arduino headers
 * are not on this project's CI machines, so CI compiles this file (compile-only,
 * for Xtensa with LLVM and for rv32imc) against a declarations-only stand-in
 * of exactly the Arduino API used here (tests/compile_only/arduino/Arduino.h,
 * tests/test_xtensa.py): using anything more fails there. The RISC-V code path
 * of the C3 (core + engine + model) runs on QEMU through ports/rv32_virt.
 *
 *  UART   Arduino `Serial`: UART0 through the board's USB bridge (ESP32), or
 *         the native USB-Serial/JTAG when built with ARDUINO_USB_CDC_ON_BOOT=1
 *         (S3, C3). The driver buffers reception (interrupt + ring), as
 *         tm_port.h asks; TM_RX_BUFFER_BYTES sets its size.
 *  Timer  the CPU cycle counter (CCOUNT on Xtensa, the performance counter on
 *         the C3) through ESP.getCycleCount(), extended to 64 bits here. It is
 *         per core: the Arduino loop task stays on one core, and idle polls
 *         keep the extension current (a wrap takes 2^32 cycles, 17.9 s at 240 MHz;
 *         one inference must stay below that).
 *  Entry  setup()/loop(): port, model and protocol init, then poll; MLPerf Tiny
 *         mode with -DTINYML_PROTOCOL_MLPERF.
 */
#include <Arduino.h>

extern "C" {
#include "tm_model.h"
#include "tm_port.h"
#ifdef TINYML_PROTOCOL_MLPERF
#include "tm_mlperf.h"
#else
#include "tm_core.h"
#endif
}

#ifndef TM_UART_BAUD
#define TM_UART_BAUD 921600
#endif
#ifndef TM_RX_BUFFER_BYTES
#define TM_RX_BUFFER_BYTES 8192
#endif
#ifndef TINYML_BOARD_NAME
#define TINYML_BOARD_NAME "esp32dev"
#endif

namespace {

tm_port_info_t port_info = {TINYML_BOARD_NAME, 0u, TM_UNIT_CYCLES, TM_RX_BUFFER_BYTES};
uint32_t timer_high = 0;
uint32_t timer_last_low = 0;
portMUX_TYPE timer_lock = portMUX_INITIALIZER_UNLOCKED;

}  // namespace

extern "C" void tm_port_init(void) {
    // The RX buffer must be sized before begin() allocates it.
    Serial.setRxBufferSize(TM_RX_BUFFER_BYTES);
    Serial.begin(TM_UART_BAUD);
    port_info.clock_hz = static_cast<uint32_t>(getCpuFrequencyMhz()) * 1000000u;
    timer_high = 0;
    timer_last_low = ESP.getCycleCount();
}

extern "C" const tm_port_info_t *tm_port_info(void) { return &port_info; }

extern "C" size_t tm_port_uart_read(uint8_t *buf, size_t max) {
    int available = Serial.available();
    if (available <= 0 || max == 0) {
        return 0;
    }
    size_t want = static_cast<size_t>(available) < max ? static_cast<size_t>(available) : max;
    return Serial.read(buf, want);
}

extern "C" void tm_port_uart_write(const uint8_t *buf, size_t len) {
    while (len > 0) {
        size_t sent = Serial.write(buf, len);
        buf += sent;
        len -= sent;
    }
}

extern "C" uint64_t tm_port_timer_now(void) {
    portENTER_CRITICAL(&timer_lock);
    uint32_t low = ESP.getCycleCount();
    if (low < timer_last_low) {
        timer_high++;
    }
    timer_last_low = low;
    uint64_t now = (static_cast<uint64_t>(timer_high) << 32) | low;
    portEXIT_CRITICAL(&timer_lock);
    return now;
}

extern "C" void tm_port_idle(void) {
    (void)tm_port_timer_now(); // keep the 64-bit extension ahead of a wrap
    if (Serial.available() <= 0) {
        vTaskDelay(1); // lets the idle task run (task watchdog); the driver keeps receiving
    }
}

extern "C" void tm_port_reset(void) {
    Serial.flush();
    ESP.restart();
}

void setup() {
    tm_port_init();
#ifdef TINYML_PROTOCOL_MLPERF
    tm_mlperf_init(tm_model_init());
#else
    tm_core_init(tm_model_init());
#endif
}

void loop() {
#ifdef TINYML_PROTOCOL_MLPERF
    int busy = tm_mlperf_poll();
#else
    int busy = tm_core_poll();
#endif
    if (!busy) {
        tm_port_idle();
    }
}
