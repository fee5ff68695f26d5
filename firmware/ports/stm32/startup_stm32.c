/*
 * startup_stm32.c - vector table and reset handler of the stm32 port.
 *
 * The table stops at the port's UART interrupt: no higher interrupt is ever
 * enabled, so the hardware never fetches a vector beyond it.
 */
#include <stdint.h>

#include "stm32_regs.h"

extern uint32_t _estack;
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss;
/* Static constructors (the TFLite-Micro backend is C++). */
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);
void USART2_IRQHandler(void);
void USART3_IRQHandler(void);

void Reset_Handler(void) {
    /* FPU first: the C below may be compiled to use FP registers. */
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb 0xF\n\tisb 0xF" ::: "memory");
    const uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0u;
    }
    for (void (**ctor)(void) = __init_array_start; ctor < __init_array_end; ctor++) {
        (*ctor)();
    }
    (void)main();
    for (;;) {
    }
}

/* Faults and unexpected interrupts stop here, where a debugger shows them. */
void Default_Handler(void) {
    for (;;) {
    }
}

#define H1 Default_Handler
#define H4 H1, H1, H1, H1
#define H16 H4, H4, H4, H4
#define H32 H16, H16

#if defined(STM32F446xx)
#define IRQ_VECTORS 39u /* IRQ 0..38, USART2 = 38 */
#elif defined(STM32H743xx)
#define IRQ_VECTORS 40u /* IRQ 0..39, USART3 = 39 */
#endif

typedef struct {
    uint32_t *initial_sp;
    void (*exceptions[15])(void);
    void (*irqs[IRQ_VECTORS])(void);
} vector_table_t;

__attribute__((section(".isr_vector"), used)) const vector_table_t vector_table = {
    &_estack,
    {
        Reset_Handler, H1 /* NMI */, H1 /* HardFault */, H1 /* MemManage */,
        H1 /* BusFault */, H1 /* UsageFault */, 0, 0, 0, 0, H1 /* SVCall */,
        H1 /* DebugMonitor */, 0, H1 /* PendSV */, SysTick_Handler,
    },
#if defined(STM32F446xx)
    {H32, H4, H1, H1, USART2_IRQHandler},
#elif defined(STM32H743xx)
    {H32, H4, H1, H1, H1, USART3_IRQHandler},
#endif
};
