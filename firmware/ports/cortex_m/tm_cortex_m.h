/*
 * tm_cortex_m.h - what the bare-metal Cortex-M ports share (qemu_stm32f405,
 * qemu_mps2_an385): the C runtime's start, SysTick as a 64-bit tick count, the
 * idle wait for a received byte and the system reset.
 *
 * SysTick is a 24-bit down-counter reloaded with 2^24 - 1; its wrap interrupt
 * counts the wraps, so
 *
 *   ticks = wraps * 2^24 + (2^24 - 1 - current value)
 *
 * A wrap whose interrupt has not run yet (read in a masked section, or just
 * before the handler) has already restarted the counter: the pending flag with a
 * value in the upper half of the range means that wrap is not in `wraps` yet.
 */
#ifndef TM_CORTEX_M_H
#define TM_CORTEX_M_H

#include <stdint.h>

#include "tm_rx_ring.h"

/* Initialized data copied from flash, .bss zeroed (the port's linker script names them). */
void tm_cortex_m_init_ram(void);
/* The static constructors in link order (the TFLite-Micro backend is C++). */
void tm_cortex_m_run_constructors(void);
/* SysTick on the core clock, wrapping every 2^24 ticks, its interrupt counting the wraps. */
void tm_systick_start(void);
/* Core clock ticks since tm_systick_start(). */
uint64_t tm_systick_ticks(void);
void SysTick_Handler(void);
/* Sleep until an interrupt unless RING already holds a byte. Interrupts are
 * masked between the check and WFI, so a byte arriving in between still wakes
 * the core (WFI wakes on a pending interrupt, masked or not). */
void tm_cortex_m_idle(const tm_rx_ring_t *ring);
/* SCB->AIRCR SYSRESETREQ (QEMU reloads the image); the port lets its UART drain first. */
void tm_cortex_m_reset(void) __attribute__((noreturn));

#endif /* TM_CORTEX_M_H */
