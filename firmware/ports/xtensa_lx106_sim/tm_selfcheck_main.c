/*
 * tm_selfcheck_main.c - entry point of the xtensa_lx106_sim image: runs the
 * model on every input of tm_selfcheck_inputs.h and prints what it computed,
 * one line each, for the host to compare with tflite-micro byte for byte:
 *
 *   selfcheck board=NAME backend=engine sha256=HEX samples=N
 *   sample I status S latency L output HEX     (L in the port's latency unit)
 *   selfcheck end
 *
 * main's return value (0, or how many invokes failed) is QEMU's exit status.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tm_model.h"
#include "tm_port.h"
#include "tm_selfcheck_inputs.h"

static int8_t selfcheck_output[TM_SELFCHECK_OUTPUT_BYTES] __attribute__((aligned(8)));

static void put_str(const char *text) { tm_port_uart_write((const uint8_t *)text, strlen(text)); }

static void put_u32(uint32_t value) {
    char digits[11];
    size_t at = sizeof(digits);
    do {
        digits[--at] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    tm_port_uart_write((const uint8_t *)&digits[at], sizeof(digits) - at);
}

static void put_hex(const int8_t *bytes, size_t count) {
    static const char hex[] = "0123456789abcdef";
    char pair[2];
    for (size_t i = 0u; i < count; i++) {
        uint8_t byte = (uint8_t)bytes[i];
        pair[0] = hex[byte >> 4];
        pair[1] = hex[byte & 0x0fu];
        tm_port_uart_write((const uint8_t *)pair, sizeof(pair));
    }
}

int main(void) {
    tm_port_init();
    const tm_port_info_t *port = tm_port_info();
    int failed = tm_model_init() != 0 ? 1 : 0;
    const tm_model_info_t *model = tm_model_info();
    put_str("selfcheck board=");
    put_str(port->board);
    put_str(" backend=");
    put_str(model->backend);
    put_str(" sha256=");
    put_str(model->model_sha256);
    put_str(" samples=");
    put_u32(TM_SELFCHECK_SAMPLES);
    put_str("\n");
    if (model->input_bytes != TM_SELFCHECK_INPUT_BYTES || model->output_bytes != TM_SELFCHECK_OUTPUT_BYTES) {
        put_str("selfcheck error: tm_selfcheck_inputs.h was written for another model\n");
        return 2;
    }
    for (uint32_t i = 0u; i < TM_SELFCHECK_SAMPLES; i++) {
        uint64_t start = tm_port_timer_now();
        int status = tm_model_invoke(tm_selfcheck_inputs[i], selfcheck_output);
        uint64_t took = tm_port_timer_now() - start;
        put_str("sample ");
        put_u32(i);
        put_str(" status ");
        put_u32((uint32_t)status);
        put_str(" latency ");
        put_u32(took > 0xffffffffu ? 0xffffffffu : (uint32_t)took);
        put_str(" output ");
        put_hex(selfcheck_output, TM_SELFCHECK_OUTPUT_BYTES);
        put_str("\n");
        failed += status != 0 ? 1 : 0;
    }
    put_str("selfcheck end\n");
    return failed;
}
