/*
 * tm_rx_ring.h -- the UART receive ring every interrupt-driven port shares.
 *
 * One producer (the UART interrupt: tm_rx_ring_push) and one consumer (the
 * main loop, through tm_port_uart_read: tm_rx_ring_pop). head and tail are
 * free-running 32-bit counts of bytes pushed and popped, so
 *
 *     fill = head - tail   (mod 2^32, exact across the wrap)
 *
 * and all TM_RX_RING_BYTES slots are usable; a slot is bytes[count & (N - 1)],
 * which needs N to be a power of two. Each side writes only its own counter,
 * so no lock is needed on a single core. A full ring drops the byte and counts
 * it: the host keeps at most rx_buffer_bytes (= TM_RX_RING_BYTES, from HELLO)
 * in flight, so a drop means a host that broke that rule or a noisy line, and
 * the protocol's CRC and retransmission recover either way.
 */
#ifndef TM_RX_RING_H
#define TM_RX_RING_H

#include <stddef.h>
#include <stdint.h>

#ifndef TM_RX_RING_BYTES
#define TM_RX_RING_BYTES 8192u
#endif

#if (TM_RX_RING_BYTES & (TM_RX_RING_BYTES - 1u)) != 0u
#error "TM_RX_RING_BYTES must be a power of two"
#endif

typedef struct {
    volatile uint8_t bytes[TM_RX_RING_BYTES];
    volatile uint32_t head;    /* bytes pushed; written by the interrupt only */
    volatile uint32_t tail;    /* bytes popped; written by the main loop only */
    volatile uint32_t dropped; /* bytes lost to a full ring */
} tm_rx_ring_t;

static inline void tm_rx_ring_init(tm_rx_ring_t *ring)
{
    ring->head = 0u;
    ring->tail = 0u;
    ring->dropped = 0u;
}

/* Interrupt side. */
static inline void tm_rx_ring_push(tm_rx_ring_t *ring, uint8_t byte)
{
    uint32_t head = ring->head;
    if (head - ring->tail < TM_RX_RING_BYTES) {
        ring->bytes[head & (TM_RX_RING_BYTES - 1u)] = byte;
        ring->head = head + 1u;
    } else {
        ring->dropped++;
    }
}

/* Main-loop side: moves up to max bytes into buf, returns how many. */
static inline size_t tm_rx_ring_pop(tm_rx_ring_t *ring, uint8_t *buf, size_t max)
{
    size_t count = 0u;
    uint32_t tail = ring->tail;
    const uint32_t head = ring->head;
    while (count < max && tail != head) {
        buf[count++] = ring->bytes[tail & (TM_RX_RING_BYTES - 1u)];
        tail++;
    }
    ring->tail = tail;
    return count;
}

static inline int tm_rx_ring_empty(const tm_rx_ring_t *ring)
{
    return ring->head == ring->tail;
}

#endif /* TM_RX_RING_H */
