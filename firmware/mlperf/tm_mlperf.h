/*
 * tm_mlperf.h - the MLPerf Tiny / EEMBC runner protocol, device side.
 *
 * ASCII commands terminated by '%', answered by "m-..." lines (errors "e-[...]")
 * and "m-ready" after each one, so the MLPerf Tiny runner (EEMBC EnergyRunner,
 * performance mode) can drive a tinyml image like a reference submission:
 *
 *   name%           m-name-dut-[tinyml]
 *   profile%        m-profile-[...]  m-model-[TM_MLPERF_MODEL]  + m-tinyml-* facts
 *   timestamp%      m-lap-us-T
 *   db load N%      m-[Expecting N bytes]         (N = the model's input bytes)
 *   db HEX...%      bytes appended; m-load-done when N bytes have arrived
 *   db print%       m-buffer-HEX (32 bytes a line)
 *   infer N W%      W warm-up runs, then N timed runs between two m-lap-us lines,
 *                   then the results of the last run
 *   results%        m-results-[f,f,...] (dequantized, 3 decimals)
 *                   m-tinyml-output-[i,i,...] (the int8 bytes, for exact checks)
 *
 * The loaded bytes are the model's int8 input tensor as is; build with
 * TM_MLPERF_INPUT_UINT8 to take the runner's raw uint8 files instead (each byte
 * minus 128, the reference image-classification convention).
 * Times: m-lap-us converts the port's timer with its clock_hz; the raw count
 * follows as m-tinyml-lap-ticks (cycles, instructions or ns: see profile).
 */
#ifndef TM_MLPERF_H
#define TM_MLPERF_H

#include <stddef.h>
#include <stdint.h>

/* Announces the mode and m-init-done, then m-ready. model_status is what
 * tm_model_init returned (non-zero is reported as an e-[...] line). */
void tm_mlperf_init(int model_status);

/* Feeds received bytes; runs every command completed by a '%'. */
void tm_mlperf_feed(const uint8_t *data, size_t len);

/* Reads what the UART buffered and feeds it. 1 when bytes came, else 0. */
int tm_mlperf_poll(void);

/* tm_port_init, tm_model_init, tm_mlperf_init, then poll forever (idling the
 * port when the line is quiet): main() of an MLPerf Tiny image. */
void tm_mlperf_run(void);

#endif /* TM_MLPERF_H */
