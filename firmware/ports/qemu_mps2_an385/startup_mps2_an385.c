/*
 * startup_mps2_an385.c - vector table and reset handler for the Cortex-M0
 * image on mps2-an385: copy .data from flash, zero .bss, run the static
 * constructors (C++: the TFLite-Micro backend), call main. No FPU to enable
 * (armv6-m, soft float).
 */
#include <stdint.h>

#include "tm_cortex_m.h"

extern uint32_t _estack;
extern int main(void);

void Reset_Handler(void);
void Default_Handler(void);
void UART0_RX_IRQHandler(void);

void Default_Handler(void)
{
    for (;;) {
    }
}

void Reset_Handler(void)
{
    tm_cortex_m_init_ram();
    tm_cortex_m_run_constructors(); /* mps2_an385_m0.ld keeps them in link order */
    (void)main();
    for (;;) {
    }
}

/* AN385 wires 32 interrupts to the NVIC (QEMU num-irq 32); UART0's receive
 * interrupt is IRQ 0, its transmit interrupt IRQ 1 (unused: transmission polls). */
#define NUM_IRQS 32

typedef void (*vector_t)(void);

/* The 16 system exceptions as armv6-m has them (no MemManage, BusFault,
 * UsageFault or DebugMon: reserved there), then the AN385's interrupts. */
__attribute__((section(".isr_vector"), used)) const vector_t vector_table[16 + NUM_IRQS] = {
    (vector_t)(uintptr_t)&_estack,
    Reset_Handler,
    Default_Handler, /* NMI */
    Default_Handler, /* HardFault */
    0, 0, 0, 0, 0, 0, 0,
    Default_Handler, /* SVCall */
    0, 0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
    [16 + 0] = UART0_RX_IRQHandler,
    [16 + 1 ... 16 + NUM_IRQS - 1] = Default_Handler,
};
