/*
 * tm_core.h - the firmware core: the protocol handler between a port's UART
 * and the model API. It owns no main loop, so a firmware that has one (an
 * RTOS task, an Arduino loop, an MLPerf Tiny mode) calls tm_core_poll from it.
 */
#ifndef TM_CORE_H
#define TM_CORE_H

#include <stdint.h>

#include "tm_frame.h"

/* Resets the parser and announces the boot with a BOOT frame. Call after
 * tm_port_init and tm_model_init; model_status is what tm_model_init returned. */
void tm_core_init(int model_status);

/* Reads what the UART has buffered and answers every complete frame in it.
 * Returns 1 when it did something, 0 when the line was idle. */
int tm_core_poll(void);

/* Answers one frame that passed its CRC (exposed for tests and the fuzzer). */
void tm_core_handle_frame(const tm_frame_t *frame);

/* tm_port_init, tm_model_init, tm_core_init, then poll forever, idling the
 * port when the line is quiet. What main() of every port image calls. */
void tm_core_run(void);

#endif /* TM_CORE_H */
