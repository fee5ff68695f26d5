/*
 * tm_port.h - what a target provides to the firmware core.
 *
 * One C file per board family implements all of it (UART, timer, init), so a
 * port to a new board is one file plus a build entry. The core never touches
 * registers; it only calls these functions.
 */
#ifndef TM_PORT_H
#define TM_PORT_H

#include <stddef.h>
#include <stdint.h>

/* Unit of tm_port_timer_now(). Cycles come from a cycle counter (DWT on
 * Cortex-M, CCOUNT on Xtensa, mcycle on RISC-V); instructions come from an
 * emulator whose virtual clock advances one tick per executed instruction
 * (QEMU -icount shift=0), where a cycle count would be fiction. */
#define TM_UNIT_CYCLES 0u
#define TM_UNIT_INSTRUCTIONS 1u
/* Wall-clock nanoseconds, for the host (POSIX) port only. */
#define TM_UNIT_NANOSECONDS 2u

typedef struct {
    const char *board;     /* board profile name, as in boards/NAME.toml */
    uint32_t clock_hz;     /* core clock */
    uint32_t latency_unit; /* TM_UNIT_CYCLES, TM_UNIT_INSTRUCTIONS or TM_UNIT_NANOSECONDS */
    uint32_t rx_buffer_bytes; /* received bytes the port buffers while the core is busy:
                                 the host keeps at most this many bytes in flight */
} tm_port_info_t;

/* Clocks, UART (at TM_UART_BAUD when the build defines it), timer. */
void tm_port_init(void);

const tm_port_info_t *tm_port_info(void);

/* Copies up to max received bytes into buf and returns how many; never blocks.
 * Reception must be buffered (interrupt or DMA into a ring) so the host can
 * stream the next samples while a model runs. */
size_t tm_port_uart_read(uint8_t *buf, size_t max);

/* Sends len bytes; returns when they are queued or sent. */
void tm_port_uart_write(const uint8_t *buf, size_t len);

/* Monotonic count in latency_unit, extended to 64 bits by the port. */
uint64_t tm_port_timer_now(void);

/* Called when the line is quiet: may sleep until the next interrupt (WFI)
 * or, on the native port, wait for input. Must return when bytes arrive. */
void tm_port_idle(void);

/* Resets the board (the RESET command). Does not return on hardware. */
void tm_port_reset(void);

#endif /* TM_PORT_H */
