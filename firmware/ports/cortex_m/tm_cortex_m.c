/* tm_cortex_m.c - the C runtime's start, the SysTick count, idle and reset; see tm_cortex_m.h. */
#include "tm_cortex_m.h"

#define REG32(addr) (*(volatile uint32_t *)(addr))
#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define SCB_ICSR REG32(0xE000ED04u)
#define ICSR_PENDSTSET (1u << 26)
#define SCB_AIRCR REG32(0xE000ED0Cu)
#define AIRCR_SYSRESETREQ 0x05FA0004u /* VECTKEY | SYSRESETREQ */
#define SYSTICK_RELOAD 0x00FFFFFFu

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss;
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

static volatile uint32_t systick_wraps;

void tm_cortex_m_init_ram(void)
{
    const uint32_t *src = &_sidata;
    uint32_t *dst;
    for (dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0u;
    }
}

void tm_cortex_m_run_constructors(void)
{
    for (void (**ctor)(void) = __init_array_start; ctor < __init_array_end; ctor++) {
        (*ctor)();
    }
}

void SysTick_Handler(void) { systick_wraps++; }

void tm_systick_start(void)
{
    systick_wraps = 0;
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* core clock, interrupt on wrap, enable */
}

uint64_t tm_systick_ticks(void)
{
    uint32_t wraps, value, pending;
    do {
        wraps = systick_wraps;
        value = SYST_CVR;
        pending = SCB_ICSR & ICSR_PENDSTSET;
    } while (wraps != systick_wraps);
    if (pending && value > SYSTICK_RELOAD / 2u) {
        wraps++;
    }
    return (uint64_t)wraps * (SYSTICK_RELOAD + 1u) + (SYSTICK_RELOAD - value);
}

void tm_cortex_m_idle(const tm_rx_ring_t *ring)
{
    __asm volatile("cpsid i" ::: "memory");
    if (tm_rx_ring_empty(ring)) {
        __asm volatile("wfi");
    }
    __asm volatile("cpsie i" ::: "memory");
}

void tm_cortex_m_reset(void)
{
    SCB_AIRCR = AIRCR_SYSRESETREQ;
    for (;;) {
    }
}
