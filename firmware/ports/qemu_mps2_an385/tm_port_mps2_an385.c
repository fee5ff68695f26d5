/*
 * tm_port_mps2_an385.c - tm_port.h for a Cortex-M0 image on QEMU's mps2-an385
 * (the image is Thumb-1 code built -mcpu=cortex-m0; the machine's Cortex-M3
 * runs it unchanged). Only what armv6-m has is used: SysTick, NVIC_ISER,
 * SCB->AIRCR, CPSID/CPSIE/WFI, so the same code is correct on an M0/M0+.
 *
 *  UART   CMSDK APB UART0 at 0x40004000, which QEMU connects to the first
 *         -serial; its receive interrupt (IRQ 0) fills a ring, transmission
 *         polls STATE.TXFULL. The UART holds one received byte, and QEMU
 *         offers the next only after DATA was read, so nothing is lost while
 *         the core is busy: the bytes wait in the pty.
 *  Timer  SysTick on the processor clock, which QEMU runs at the AN385's
 *         SYSCLK of 25 MHz. Under -icount shift=0 every instruction advances
 *         virtual time by 1 ns, so one tick is 1e9 / 25e6 = 40 instructions:
 *             instructions = ticks * 40   (resolution 40 instructions).
 *         The count is of Thumb-1 instructions, each of which a real M0+ takes
 *         one cycle or more for (loads, stores and taken branches take two).
 *  Reset  SCB->AIRCR SYSRESETREQ (QEMU reloads the image).
 */
#include <stdint.h>

#include "tm_cortex_m.h"
#include "tm_port.h"

#ifndef TM_UART_BAUD
#define TM_UART_BAUD 115200u
#endif
#ifndef TINYML_BOARD_NAME
#define TINYML_BOARD_NAME "mps2_an385_m0"
#endif

/* The RP2040's clock (boards/mps2_an385_m0.toml): reported so instruction
 * counts read as time on the M0+ board this one stands in for. */
#define REPORTED_CLOCK_HZ 133000000u
#define SYSCLK_HZ 25000000u
#define INSTRUCTIONS_PER_TICK 40u /* 1 ns per instruction / (1 / 25 MHz) */
#define TM_RX_RING_BYTES 8192u
#include "tm_rx_ring.h"

#define REG32(addr) (*(volatile uint32_t *)(addr))

/* CMSDK APB UART (ARM DDI0479C). */
#define UART0_DATA REG32(0x40004000u)
#define UART0_STATE REG32(0x40004004u)
#define UART0_CTRL REG32(0x40004008u)
#define UART0_INTCLEAR REG32(0x4000400Cu) /* INTSTATUS on read, write 1 to clear */
#define UART0_BAUDDIV REG32(0x40004010u)
#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)
#define UART_STATE_RXOVERRUN (1u << 3)
#define UART_CTRL_TX_EN (1u << 0)
#define UART_CTRL_RX_EN (1u << 1)
#define UART_CTRL_RX_INTEN (1u << 3)
#define UART_INT_RX (1u << 1)
#define UART0_RX_IRQ 0u

/* NVIC as armv6-m has it (SysTick, idle and reset: tm_cortex_m.c). */
#define NVIC_ISER REG32(0xE000E100u)

static const tm_port_info_t mps2_info = {
    TINYML_BOARD_NAME,
    REPORTED_CLOCK_HZ,
    TM_UNIT_INSTRUCTIONS,
    TM_RX_RING_BYTES,
};

static tm_rx_ring_t rx_ring;

void UART0_RX_IRQHandler(void);

void UART0_RX_IRQHandler(void)
{
    /* Clear first: a byte arriving after the last read below sets it again. */
    UART0_INTCLEAR = UART_INT_RX;
    while (UART0_STATE & UART_STATE_RXFULL) {
        tm_rx_ring_push(&rx_ring, (uint8_t)UART0_DATA); /* reading DATA clears RXFULL */
    }
}

void tm_port_init(void)
{
    tm_rx_ring_init(&rx_ring);
    UART0_BAUDDIV = (SYSCLK_HZ + TM_UART_BAUD / 2u) / TM_UART_BAUD; /* >= 16 */
    UART0_STATE = UART_STATE_RXOVERRUN;                              /* write 1 to clear */
    UART0_CTRL = UART_CTRL_TX_EN | UART_CTRL_RX_EN | UART_CTRL_RX_INTEN;
    NVIC_ISER = 1u << UART0_RX_IRQ;

    tm_systick_start();
}

const tm_port_info_t *tm_port_info(void) { return &mps2_info; }

size_t tm_port_uart_read(uint8_t *buf, size_t max) { return tm_rx_ring_pop(&rx_ring, buf, max); }

void tm_port_uart_write(const uint8_t *buf, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        while (UART0_STATE & UART_STATE_TXFULL) {
        }
        UART0_DATA = buf[i];
    }
}

uint64_t tm_port_timer_now(void)
{
    return tm_systick_ticks() * INSTRUCTIONS_PER_TICK;
}

void tm_port_idle(void) { tm_cortex_m_idle(&rx_ring); }

void tm_port_reset(void)
{
    /* Let the RESET answer leave: the last byte is out once TXFULL clears. */
    while (UART0_STATE & UART_STATE_TXFULL) {
    }
    tm_cortex_m_reset();
}
