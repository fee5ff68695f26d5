/*
 * tm_port_stm32f405.c - STM32F405 as QEMU's netduinoplus2 emulates it:
 * USART1 (serial0) with interrupt-driven reception into a ring, SysTick as a
 * 64-bit timer, reset through SCB->AIRCR. Registers are written directly so
 * the port needs no vendor headers.
 *
 * Latency unit: QEMU runs with -icount shift=0, where every instruction
 * advances virtual time by 1 ns and DWT->CYCCNT reads 0. SysTick counts the
 * 168 MHz core clock of that virtual time, so
 *     instructions = ticks * 1e9 / 168e6 = ticks * 125 / 21
 * (resolution 125/21 ~ 6 instructions).
 */
#include <stdint.h>

#include "tm_cortex_m.h"
#include "tm_port.h"

#ifndef TM_UART_BAUD
#define TM_UART_BAUD 115200u
#endif
#ifndef TINYML_BOARD_NAME
#define TINYML_BOARD_NAME "stm32f405"
#endif

#define CORE_CLOCK_HZ 168000000u
#define APB2_CLOCK_HZ 84000000u
#define TM_RX_RING_BYTES 8192u
#include "tm_rx_ring.h"

#define REG32(addr) (*(volatile uint32_t *)(addr))

/* RCC, GPIOA, USART1 (RM0090). QEMU 7.2 models no RCC or GPIO: those writes
 * are ignored there and make the port correct on silicon. The PLL is left
 * alone: QEMU's core clock is fixed at 168 MHz. */
#define RCC_AHB1ENR REG32(0x40023830u)
#define RCC_APB2ENR REG32(0x40023844u)
#define GPIOA_MODER REG32(0x40020000u)
#define GPIOA_AFRH REG32(0x40020024u)
#define USART1_SR REG32(0x40011000u)
#define USART1_DR REG32(0x40011004u)
#define USART1_BRR REG32(0x40011008u)
#define USART1_CR1 REG32(0x4001100Cu)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_SR_ORE (1u << 3)
#define USART_CR1_UE (1u << 13)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RE (1u << 2)
#define USART1_IRQ 37u

/* Cortex-M4 NVIC (SysTick, idle and reset: tm_cortex_m.c). */
#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n))

static const tm_port_info_t stm32_info = {
    TINYML_BOARD_NAME,
    CORE_CLOCK_HZ,
    TM_UNIT_INSTRUCTIONS,
    TM_RX_RING_BYTES,
};

static tm_rx_ring_t rx_ring;

void USART1_IRQHandler(void);

void USART1_IRQHandler(void)
{
    while (USART1_SR & (USART_SR_RXNE | USART_SR_ORE)) {
        tm_rx_ring_push(&rx_ring, (uint8_t)USART1_DR); /* reading DR clears RXNE and ORE */
    }
}

void tm_port_init(void)
{
    RCC_AHB1ENR |= 1u << 0;  /* GPIOA */
    RCC_APB2ENR |= 1u << 4;  /* USART1 */
    /* PA9 = TX, PA10 = RX: alternate function 7. */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18);
    GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (0x77u << 4);

    tm_rx_ring_init(&rx_ring);
    USART1_BRR = (APB2_CLOCK_HZ + TM_UART_BAUD / 2u) / TM_UART_BAUD; /* oversampling 16 */
    USART1_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
    NVIC_ISER(USART1_IRQ / 32u) = 1u << (USART1_IRQ % 32u);

    tm_systick_start();
}

const tm_port_info_t *tm_port_info(void) { return &stm32_info; }

size_t tm_port_uart_read(uint8_t *buf, size_t max) { return tm_rx_ring_pop(&rx_ring, buf, max); }

void tm_port_uart_write(const uint8_t *buf, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        while (!(USART1_SR & USART_SR_TXE)) {
        }
        USART1_DR = buf[i];
    }
}

uint64_t tm_port_timer_now(void)
{
    return tm_systick_ticks() * 125u / 21u;
}

void tm_port_idle(void) { tm_cortex_m_idle(&rx_ring); }

void tm_port_reset(void)
{
    /* Let the RESET answer leave the shift register first. */
    while (!(USART1_SR & (1u << 6))) {
    }
    tm_cortex_m_reset();
}
