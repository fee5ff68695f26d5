/*
 * tm_port_xtensa_lx106_sim.c - tm_port.h for qemu-system-xtensa -M sim -cpu lx106 -semihosting.
 *
 * Stands in for Espressif's Xtensa cores in CI: the LX106 is the ESP8266's core
 * (call0 ABI, no FPU, 32-bit multiply), the nearest Xtensa that Debian has a
 * GCC and QEMU a machine for. The image is a self-check (see port.cmake), so
 * only output is used:
 *
 *  UART   none on this machine: writes go to QEMU's stdout through simcall
 *         write(1, ...); nothing is ever received.
 *  Timer  instructions, from CCOUNT: QEMU derives CCOUNT from its virtual clock
 *         at the lx106 config's 40 MHz, and under -icount shift=0 (the board
 *         profile's args) one instruction takes one virtual ns, so CCOUNT
 *         advances once per 25 instructions. Counts are exact to 25 instructions.
 *  Reset  the semihosting exit call.
 */
#include "tm_port.h"

#include <stdint.h>

#include "tm_lx106_simcall.h"

#ifndef TINYML_BOARD_NAME
#define TINYML_BOARD_NAME "xtensa_lx106_sim"
#endif

/* The ESP8266's default CPU clock. */
#define LX106_CLOCK_HZ 80000000u
#define STDOUT_FD 1
/* 1 ns per instruction (-icount shift=0) / 25 ns per CCOUNT tick (40 MHz). */
#define INSTRUCTIONS_PER_CCOUNT 25u

static const tm_port_info_t port_info = {
    .board = TINYML_BOARD_NAME,
    .clock_hz = LX106_CLOCK_HZ,
    .latency_unit = TM_UNIT_INSTRUCTIONS,
    .rx_buffer_bytes = 0u,
};

static uint32_t timer_high;
static uint32_t timer_last_low;

void tm_port_init(void) {
    timer_high = 0u;
    __asm__ volatile("rsr %0, ccount" : "=a"(timer_last_low));
}

const tm_port_info_t *tm_port_info(void) { return &port_info; }

size_t tm_port_uart_read(uint8_t *buf, size_t max) {
    (void)buf;
    (void)max;
    return 0u;
}

void tm_port_uart_write(const uint8_t *buf, size_t len) {
    while (len > 0u) {
        int32_t sent = tm_lx106_simcall(TM_SIMCALL_WRITE, STDOUT_FD, (int32_t)(uintptr_t)buf, (int32_t)len);
        if (sent <= 0) {
            return; /* QEMU's stdout is gone: nothing left to tell */
        }
        buf += sent;
        len -= (size_t)sent;
    }
}

uint64_t tm_port_timer_now(void) {
    uint32_t low;
    __asm__ volatile("rsr %0, ccount" : "=a"(low));
    if (low < timer_last_low) {
        timer_high++;
    }
    timer_last_low = low;
    return (((uint64_t)timer_high << 32) | low) * INSTRUCTIONS_PER_CCOUNT;
}

void tm_port_idle(void) {}

void tm_port_reset(void) { tm_lx106_exit(0); }
