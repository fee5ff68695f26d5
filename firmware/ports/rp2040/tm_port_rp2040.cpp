/*
 * tm_port_rp2040.cpp - tm_port.h for the RP2040 (Raspberry Pi Pico, Cortex-M0+) on the
 * Arduino Mbed OS RP2040 core (PlatformIO's `raspberrypi` platform), plus the framework entry point.
 *
 * Built by PlatformIO only (firmware/platformio.ini, env:pico): the core's headers are not on
 * this project's CI machines. The engine code this board runs (armv6-m Thumb-1, --target
 * cortex-m0) is checked and measured on QEMU mps2-an385 instead.
 *
 *  UART   Arduino `Serial`: the USB CDC device, which buffers reception in its FIFO
 *         (TM_RX_BUFFER_BYTES, the bytes the host may keep in flight).
 *  Timer  the RP2040's 64-bit 1 MHz timer (pico-sdk time_us_64()) scaled to core cycles: a
 *         Cortex-M0+ has no cycle counter and Mbed OS owns SysTick, so latencies have a
 *         resolution of one microsecond (clock_hz / 10^6 cycles).
 *  Entry  setup()/loop(): port, model and protocol init, then poll; MLPerf Tiny mode with
 *         -DTINYML_PROTOCOL_MLPERF.
 */
#include <Arduino.h>

#include "hardware/timer.h"

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
#define TM_UART_BAUD 115200
#endif
#ifndef TM_RX_BUFFER_BYTES
#define TM_RX_BUFFER_BYTES 256
#endif
#ifndef TINYML_BOARD_NAME
#define TINYML_BOARD_NAME "rp2040_pico"
#endif

namespace {

tm_port_info_t port_info = {TINYML_BOARD_NAME, 0u, TM_UNIT_CYCLES, TM_RX_BUFFER_BYTES};

}  // namespace

extern "C" void tm_port_init(void) {
    Serial.begin(TM_UART_BAUD);
    port_info.clock_hz = static_cast<uint32_t>(SystemCoreClock);
}

extern "C" const tm_port_info_t *tm_port_info(void) { return &port_info; }

extern "C" size_t tm_port_uart_read(uint8_t *buf, size_t max) {
    int available = Serial.available();
    if (available <= 0 || max == 0) {
        return 0;
    }
    size_t want = static_cast<size_t>(available) < max ? static_cast<size_t>(available) : max;
    return Serial.readBytes(reinterpret_cast<char *>(buf), want);
}

extern "C" void tm_port_uart_write(const uint8_t *buf, size_t len) {
    while (len > 0) {
        size_t sent = Serial.write(buf, len);
        buf += sent;
        len -= sent;
    }
}

extern "C" uint64_t tm_port_timer_now(void) {
    return time_us_64() * static_cast<uint64_t>(port_info.clock_hz / 1000000u);
}

extern "C" void tm_port_idle(void) {}

extern "C" void tm_port_reset(void) {
    Serial.flush();
    NVIC_SystemReset();
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
