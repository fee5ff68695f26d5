/*
 * tm_mlperf.h - the MLPerf Tiny / EEMBC runner protocol, device side.
 *
 * ASCII commands terminated by '%', answered by "m-..." lines (errors "e-[...]")
 * and "m-ready" after each one, so the MLPerf Tiny runner (EEMBC EnergyRunner,
 * performance mode) can drive a tinyml image like a reference submission:
 *
 *   name%           m-name-dut-[tinyml]
 *   profile%        m-profile-[...]  m-model-[TM_MLPERF_MODEL]  + m-tinyml-* facts
 *                   (board, backend, sha256, input/output bytes, clock, latency
 *                   unit, input type, results kind, db bytes)
 *   timestamp%      m-lap-us-T
 *   db load N%      m-[Expecting N bytes]
 *   db HEX...%      bytes appended; m-load-done when N bytes have arrived
 *   db print%       m-buffer-HEX (32 bytes a line)
 *   infer N W%      W warm-up runs, then N timed runs between two m-lap-us lines,
 *                   then the results of the last run
 *   results%        m-results-[f,f,...] (3 decimals, see below)
 *                   m-tinyml-output-[i,i,...] (the int8 bytes, for exact checks)
 *
 * The db buffer holds one sample as the runner sends it (TM_MLPERF_DB_BYTES, set
 * from the model by the build). As in the reference firmware, a shorter load
 * infers on what it wrote (the rest as the previous sample left it) and a longer
 * one keeps its first TM_MLPERF_DB_BYTES bytes.
 * db bytes: the model's int8 input as is; with TM_MLPERF_INPUT_UINT8 the runner's
 * raw uint8 files (each byte minus 128); with TM_MLPERF_INPUT_FLOAT32 float32
 * values (ad01's spectrogram frames), quantized as TFLite's QUANTIZE does.
 * m-results: the dequantized outputs (the reference models end in softmax); with
 * TM_MLPERF_RESULTS_SOFTMAX their softmax (a model ending in logits, so the
 * runner's divide-by-sum and top-1 score it right); with TM_MLPERF_RESULTS_ANOMALY
 * one anomaly score, the mean squared error between the float input and the
 * dequantized output (ad01).
 * Only performance mode: there is no energy mode (m-timestamp-mode-energy,
 * 9600 baud through the IO manager, timestamps on a GPIO pin); the host driver
 * refuses a device that answers without m-lap-us times.
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
