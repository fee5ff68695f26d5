/*
 * startup_stm32f405.c - vector table and reset handler: copy .data from
 * flash, zero .bss, enable the FPU (the image is built -mfloat-abi=hard),
 * run the static constructors (C++: the TFLite-Micro backend), call main.
 */
#include <stdint.h>

#include "tm_cortex_m.h"

extern uint32_t _estack;
extern int main(void);

void Reset_Handler(void);
void Default_Handler(void);
void USART1_IRQHandler(void);

void Default_Handler(void)
{
    for (;;) {
    }
}

void Reset_Handler(void)
{
    tm_cortex_m_init_ram();
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10, CP11 full access */
    __asm volatile("dsb\n\tisb");
    tm_cortex_m_run_constructors(); /* stm32f405.ld keeps them in link order */
    (void)main();
    for (;;) {
    }
}

#define NUM_IRQS 82

typedef void (*vector_t)(void);

/* 16 system exceptions, then the STM32F405's 82 interrupts; USART1 is IRQ 37. */
__attribute__((section(".isr_vector"), used)) const vector_t vector_table[16 + NUM_IRQS] = {
    (vector_t)(uintptr_t)&_estack,
    Reset_Handler,
    Default_Handler, /* NMI */
    Default_Handler, /* HardFault */
    Default_Handler, /* MemManage */
    Default_Handler, /* BusFault */
    Default_Handler, /* UsageFault */
    0, 0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMon */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
    [16 ... 16 + 36] = Default_Handler,
    [16 + 37] = USART1_IRQHandler,
    [16 + 38 ... 16 + NUM_IRQS - 1] = Default_Handler,
};
