/*
 * tm_port_rv32_virt.c - tm_port.h for qemu-system-riscv32 -M virt -bios none.
 *
 * Stands in for the ESP32-C3's RISC-V core (rv32imc): the same ISA and compiler
 * flags, so the core and engine compiled for the C3 are exercised here.
 *
 *  UART   NS16550A at 0x10000000 (byte-spaced registers, 3.6864 MHz input clock),
 *         receive interrupt through the PLIC (source 10) into a ring buffer.
 *  Timer  minstret/minstreth. Under -icount shift=0 QEMU advances its virtual
 *         clock one ns per instruction and reports that count for both mcycle and
 *         minstret, so the figure is an exact instruction count.
 *  Reset  SiFive test device at 0x100000 (0x7777 = reset, 0x5555 = power off).
 */
#include "tm_port.h"

#include <stdint.h>

#ifndef TINYML_BOARD_NAME
#define TINYML_BOARD_NAME "rv32_virt"
#endif

#ifndef TM_UART_BAUD
#define TM_UART_BAUD 115200u
#endif

/* The ESP32-C3 clock: instruction counts convert to time as if one instruction
 * retired per cycle at this rate. */
#define RV32_VIRT_CLOCK_HZ 160000000u

#define UART_BASE 0x10000000u
#define UART_CLOCK_HZ 3686400u
#define UART_RBR 0u /* receive buffer (read, DLAB=0) */
#define UART_THR 0u /* transmit holding (write, DLAB=0) */
#define UART_DLL 0u /* divisor low (DLAB=1) */
#define UART_IER 1u /* interrupt enable (DLAB=0) */
#define UART_DLM 1u /* divisor high (DLAB=1) */
#define UART_FCR 2u /* FIFO control (write) */
#define UART_LCR 3u
#define UART_MCR 4u
#define UART_LSR 5u
#define UART_LCR_8N1 0x03u
#define UART_LCR_DLAB 0x80u
#define UART_FCR_ENABLE_CLEAR 0x07u /* enable FIFOs, clear RX and TX */
#define UART_FCR_TRIGGER_1 0x00u    /* RX interrupt at one byte */
#define UART_IER_RDA 0x01u          /* received data available */
#define UART_MCR_OUT2 0x08u         /* gates the interrupt line on PC UARTs */
#define UART_LSR_DR 0x01u           /* data ready */
#define UART_LSR_THRE 0x20u         /* transmit holding register empty */

#define PLIC_BASE 0x0c000000u
#define PLIC_UART_SOURCE 10u
#define PLIC_PRIORITY(src) (PLIC_BASE + 4u * (src))
#define PLIC_ENABLE_HART0_M (PLIC_BASE + 0x2000u)
#define PLIC_THRESHOLD_HART0_M (PLIC_BASE + 0x200000u)
#define PLIC_CLAIM_HART0_M (PLIC_BASE + 0x200004u)

#define TEST_DEVICE 0x100000u
#define TEST_RESET 0x7777u

#define MIE_MEIE (1u << 11)
#define MSTATUS_MIE (1u << 3)
#define MCAUSE_INTERRUPT 0x80000000u
#define MCAUSE_MACHINE_EXTERNAL 11u

#define TM_RX_RING_BYTES 4096u
#include "tm_rx_ring.h"

static inline void reg8_write(uint32_t addr, uint8_t value) { *(volatile uint8_t *)addr = value; }
static inline uint8_t reg8_read(uint32_t addr) { return *(volatile uint8_t *)addr; }
static inline void reg32_write(uint32_t addr, uint32_t value) { *(volatile uint32_t *)addr = value; }
static inline uint32_t reg32_read(uint32_t addr) { return *(volatile uint32_t *)addr; }

static tm_rx_ring_t rx_ring;

static const tm_port_info_t port_info = {
    .board = TINYML_BOARD_NAME,
    .clock_hz = RV32_VIRT_CLOCK_HZ,
    .latency_unit = TM_UNIT_INSTRUCTIONS,
    .rx_buffer_bytes = TM_RX_RING_BYTES,
};

static void uart_drain_to_ring(void) {
    while (reg8_read(UART_BASE + UART_LSR) & UART_LSR_DR) {
        tm_rx_ring_push(&rx_ring, reg8_read(UART_BASE + UART_RBR));
    }
}

/* Direct-mode machine trap vector: the only enabled source is the PLIC. */
__attribute__((interrupt("machine"), aligned(4))) static void trap_handler(void) {
    uint32_t mcause;
    __asm__ volatile("csrr %0, mcause" : "=r"(mcause));
    if (mcause == (MCAUSE_INTERRUPT | MCAUSE_MACHINE_EXTERNAL)) {
        uint32_t source = reg32_read(PLIC_CLAIM_HART0_M);
        if (source == PLIC_UART_SOURCE) {
            uart_drain_to_ring();
        }
        if (source != 0u) {
            reg32_write(PLIC_CLAIM_HART0_M, source);
        }
        return;
    }
    /* An exception is a firmware bug: stop where a debugger can see it. */
    for (;;) {
        __asm__ volatile("wfi");
    }
}

void tm_port_init(void) {
    uint32_t divisor = UART_CLOCK_HZ / (16u * TM_UART_BAUD);
    if (divisor == 0u) {
        divisor = 1u;
    }
    reg8_write(UART_BASE + UART_IER, 0u);
    reg8_write(UART_BASE + UART_LCR, UART_LCR_DLAB);
    reg8_write(UART_BASE + UART_DLL, (uint8_t)(divisor & 0xffu));
    reg8_write(UART_BASE + UART_DLM, (uint8_t)(divisor >> 8));
    reg8_write(UART_BASE + UART_LCR, UART_LCR_8N1);
    reg8_write(UART_BASE + UART_FCR, UART_FCR_ENABLE_CLEAR | UART_FCR_TRIGGER_1);
    reg8_write(UART_BASE + UART_MCR, UART_MCR_OUT2);
    tm_rx_ring_init(&rx_ring);

    reg32_write(PLIC_PRIORITY(PLIC_UART_SOURCE), 1u);
    reg32_write(PLIC_ENABLE_HART0_M, 1u << PLIC_UART_SOURCE);
    reg32_write(PLIC_THRESHOLD_HART0_M, 0u);

    uintptr_t vector = (uintptr_t)&trap_handler;
    __asm__ volatile("csrw mtvec, %0" ::"r"(vector));
    __asm__ volatile("csrs mie, %0" ::"r"(MIE_MEIE));
    reg8_write(UART_BASE + UART_IER, UART_IER_RDA);
    __asm__ volatile("csrs mstatus, %0" ::"r"(MSTATUS_MIE));
}

const tm_port_info_t *tm_port_info(void) { return &port_info; }

size_t tm_port_uart_read(uint8_t *buf, size_t max) { return tm_rx_ring_pop(&rx_ring, buf, max); }

void tm_port_uart_write(const uint8_t *buf, size_t len) {
    for (size_t i = 0u; i < len; i++) {
        while ((reg8_read(UART_BASE + UART_LSR) & UART_LSR_THRE) == 0u) {
        }
        reg8_write(UART_BASE + UART_THR, buf[i]);
    }
}

uint64_t tm_port_timer_now(void) {
    uint32_t high;
    uint32_t low;
    uint32_t high_again;
    /* Re-read when the low word wrapped between the two reads of the high word. */
    do {
        __asm__ volatile("csrr %0, minstreth" : "=r"(high));
        __asm__ volatile("csrr %0, minstret" : "=r"(low));
        __asm__ volatile("csrr %0, minstreth" : "=r"(high_again));
    } while (high != high_again);
    return ((uint64_t)high << 32) | low;
}

void tm_port_idle(void) {
    /* Interrupts off around the check so a byte landing between the check and
     * wfi cannot be missed: wfi still wakes on the pending (enabled) source. */
    __asm__ volatile("csrc mstatus, %0" ::"r"(MSTATUS_MIE));
    if (tm_rx_ring_empty(&rx_ring)) {
        __asm__ volatile("wfi");
    }
    __asm__ volatile("csrs mstatus, %0" ::"r"(MSTATUS_MIE));
}

void tm_port_reset(void) {
    reg32_write(TEST_DEVICE, TEST_RESET);
    for (;;) {
        __asm__ volatile("wfi");
    }
}
