/*
 * fuzz_core.c - fuzz target: arbitrary bytes on the line into the firmware
 * core (frame parser + protocol handler) with a stub port and the fixture
 * model. libFuzzer entry point LLVMFuzzerTestOneInput; mini_fuzzer.c drives the
 * same entry point when only gcc is available.
 *
 * Input layout: byte 0 picks the read chunk size (1..64) so frames are split
 * at every position; the rest is what arrives on the UART. Every byte the core
 * sends back must form valid frames (COBS + CRC), checked here, so a handler
 * that writes garbage fails as loudly as one that crashes.
 */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_core.h"
#include "tm_frame.h"
#include "tm_port.h"
#include "tm_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *line;
static size_t line_len, line_pos, chunk;
static jmp_buf reset_jump;

/* Board -> host bytes, checked frame by frame. */
static uint8_t out_frame[tm_frame_encoded_max(TM_MAX_PAYLOAD) + 16];
static size_t out_len;

static const tm_port_info_t fuzz_info = {"fuzz", 1000000u, TM_UNIT_CYCLES, 4096u};

void tm_port_init(void) {}
const tm_port_info_t *tm_port_info(void) { return &fuzz_info; }
void tm_port_idle(void) {}
uint64_t tm_port_timer_now(void) { return 0u; }
void tm_port_reset(void) { longjmp(reset_jump, 1); }

size_t tm_port_uart_read(uint8_t *buf, size_t max)
{
    size_t n = line_len - line_pos;
    if (n > chunk) {
        n = chunk;
    }
    if (n > max) {
        n = max;
    }
    memcpy(buf, line + line_pos, n);
    line_pos += n;
    return n;
}

static void check_frame(void)
{
    int32_t len = tm_cobs_decode(out_frame, out_len);
    uint32_t crc;
    if (len < 8) {
        fprintf(stderr, "core sent an invalid frame (%d bytes decoded)\n", (int)len);
        abort();
    }
    crc = (uint32_t)out_frame[len - 4] | ((uint32_t)out_frame[len - 3] << 8) |
          ((uint32_t)out_frame[len - 2] << 16) | ((uint32_t)out_frame[len - 1] << 24);
    if (crc != tm_crc32(0u, out_frame, (size_t)len - 4u) || out_frame[0] != TM_PROTOCOL_VERSION) {
        fprintf(stderr, "core sent a frame with a bad CRC or version\n");
        abort();
    }
}

void tm_port_uart_write(const uint8_t *buf, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        if (buf[i] == 0u) {
            check_frame();
            out_len = 0;
        } else if (out_len < sizeof out_frame) {
            out_frame[out_len++] = buf[i];
        } else {
            fprintf(stderr, "core sent a frame longer than max_payload\n");
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1u) {
        return 0;
    }
    chunk = (size_t)(data[0] % 64u) + 1u;
    line = data + 1;
    line_len = size - 1u;
    line_pos = 0;
    out_len = 0;
    if (setjmp(reset_jump) == 0) {
        tm_core_init(0);
    }
    /* After a RESET the core starts over on the rest of the line, as a board does. */
    while (line_pos < line_len) {
        if (setjmp(reset_jump) != 0) {
            tm_core_init(0);
            continue;
        }
        (void)tm_core_poll();
    }
    return 0;
}
