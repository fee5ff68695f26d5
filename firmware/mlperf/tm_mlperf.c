/*
 * tm_mlperf.c - MLPerf Tiny / EEMBC runner protocol handler (see tm_mlperf.h).
 *
 * No printf: numbers are formatted by hand so the image stays small and the
 * output is identical with newlib-nano, picolibc and the host's libc.
 */
#include "tm_mlperf.h"

#include <math.h>
#include <string.h>

#include "tm_model.h"
#include "tm_port.h"

#ifndef TM_MLPERF_MODEL
#define TM_MLPERF_MODEL "tinyml" /* the runner looks up its data set by this name, e.g. ic01 */
#endif
/* Bytes one sample takes on the wire: the model's input bytes (x4 for float32
 * input). mlperf.cmake and platformio_model.py set it from the model; a longer
 * "db load" keeps the first TM_MLPERF_DB_BYTES bytes, as the reference keeps
 * the first N of its buffer. A build that sets nothing gets 8 KB. */
#ifndef TM_MLPERF_DB_BYTES
#define TM_MLPERF_DB_BYTES 8192u
#endif
#ifndef TM_MLPERF_OUTPUT_BYTES
#define TM_MLPERF_OUTPUT_BYTES 1024u
#endif
#ifndef TM_MLPERF_CMD_BYTES
#define TM_MLPERF_CMD_BYTES 1024u /* one command line, '%' excluded */
#endif
#if defined(TM_MLPERF_INPUT_UINT8) && defined(TM_MLPERF_INPUT_FLOAT32)
#error "TM_MLPERF_INPUT_UINT8 and TM_MLPERF_INPUT_FLOAT32 exclude each other"
#endif
#if defined(TM_MLPERF_INPUT_FLOAT32)
#define TM_MLPERF_INPUT_TYPE "float32"
#elif defined(TM_MLPERF_INPUT_UINT8)
#define TM_MLPERF_INPUT_TYPE "uint8"
#else
#define TM_MLPERF_INPUT_TYPE "int8"
#endif
/* What m-results prints: the dequantized outputs (a model ending in softmax, as
 * the reference models), their softmax (TM_MLPERF_RESULTS_SOFTMAX: a model that
 * ends in logits, so the runner's divide-by-sum and top-1 work), or one anomaly
 * score (TM_MLPERF_RESULTS_ANOMALY: ad01, the mean squared error between the
 * float input and the dequantized reconstruction). */
#if defined(TM_MLPERF_RESULTS_ANOMALY)
#define TM_MLPERF_RESULTS_KIND "anomaly-score"
#elif defined(TM_MLPERF_RESULTS_SOFTMAX)
#define TM_MLPERF_RESULTS_KIND "softmax"
#else
#define TM_MLPERF_RESULTS_KIND "dequantized"
#endif
#define TM_MLPERF_DEFAULT_RUNS 1u
#define TM_MLPERF_DEFAULT_WARMUP 10u

static char cmd_buf[TM_MLPERF_CMD_BYTES + 1u];
static size_t cmd_len;
static int cmd_overflow;

static uint8_t db_buf[TM_MLPERF_DB_BYTES];
static size_t db_expected; /* bytes announced by "db load N" */
static size_t db_loaded;   /* bytes received of them (those past TM_MLPERF_DB_BYTES are dropped) */

#if defined(TM_MLPERF_INPUT_FLOAT32)
#define TM_MLPERF_INPUT_WIDTH 4u
#else
#define TM_MLPERF_INPUT_WIDTH 1u
#endif
#if defined(TM_MLPERF_INPUT_FLOAT32) || defined(TM_MLPERF_INPUT_UINT8)
/* The model's int8 input, converted from db_buf at infer time. */
static int8_t input_buf[TM_MLPERF_DB_BYTES / TM_MLPERF_INPUT_WIDTH];
#endif

static int8_t output_buf[TM_MLPERF_OUTPUT_BYTES];
static int have_output;

/* ---- output ---- */

static void put_str(const char *s) { tm_port_uart_write((const uint8_t *)s, strlen(s)); }

static void put_u64(uint64_t value)
{
    char digits[21];
    size_t n = sizeof digits;
    do {
        digits[--n] = (char)('0' + (value % 10u));
        value /= 10u;
    } while (value != 0u);
    tm_port_uart_write((const uint8_t *)&digits[n], sizeof digits - n);
}

static void put_i64(int64_t value)
{
    if (value < 0) {
        put_str("-");
        put_u64((uint64_t)(-(value + 1)) + 1u);
    } else {
        put_u64((uint64_t)value);
    }
}

static void put_hex_byte(uint8_t byte)
{
    static const char hex[] = "0123456789abcdef";
    char pair[2] = {hex[byte >> 4], hex[byte & 0xFu]};
    tm_port_uart_write((const uint8_t *)pair, 2u);
}

static void put_line_end(void) { put_str("\r\n"); }

static void put_error(const char *message)
{
    put_str("e-[");
    put_str(message);
    put_str("]");
    put_line_end();
}

/* ---- time ---- */

static const char *unit_name(uint32_t unit)
{
    switch (unit) {
    case TM_UNIT_CYCLES:
        return "cycles";
    case TM_UNIT_INSTRUCTIONS:
        return "instructions";
    case TM_UNIT_NANOSECONDS:
        return "nanoseconds";
    default:
        return "unknown";
    }
}

/* Timer ticks to microseconds: ns directly, cycles and instructions through
 * the core clock (an instruction count reads as one instruction per cycle). */
static uint64_t ticks_to_us(uint64_t ticks)
{
    const tm_port_info_t *port = tm_port_info();
    if (port->latency_unit == TM_UNIT_NANOSECONDS) {
        return ticks / 1000u;
    }
    uint64_t hz = port->clock_hz != 0u ? port->clock_hz : 1000000u;
    return (ticks / hz) * 1000000u + ((ticks % hz) * 1000000u) / hz;
}

static void put_lap(uint64_t ticks)
{
    put_str("m-lap-us-");
    put_u64(ticks_to_us(ticks));
    put_line_end();
    put_str("m-tinyml-lap-ticks-");
    put_u64(ticks);
    put_line_end();
}

/* ---- commands ---- */

static int parse_uint(const char *s, uint32_t *out)
{
    uint32_t value = 0u;
    if (s == NULL || *s == '\0') {
        return -1;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || value > (UINT32_MAX - 9u) / 10u) {
            return -1;
        }
        value = value * 10u + (uint32_t)(*s - '0');
    }
    *out = value;
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Splits cmd_buf in place at spaces; returns the number of tokens. */
static size_t tokenize(char *line, char **tokens, size_t max_tokens)
{
    size_t count = 0u;
    char *p = line;
    while (*p != '\0' && count < max_tokens) {
        while (*p == ' ') {
            *p++ = '\0';
        }
        if (*p == '\0') {
            break;
        }
        tokens[count++] = p;
        while (*p != '\0' && *p != ' ') {
            p++;
        }
    }
    return count;
}

static void cmd_profile(void)
{
    const tm_model_info_t *model = tm_model_info();
    const tm_port_info_t *port = tm_port_info();
    put_str("m-profile-[tinyml MLPerf Tiny firmware]");
    put_line_end();
    put_str("m-model-[" TM_MLPERF_MODEL "]");
    put_line_end();
    put_str("m-tinyml-board-[");
    put_str(port->board);
    put_str("]");
    put_line_end();
    put_str("m-tinyml-backend-[");
    put_str(model->backend);
    put_str("]");
    put_line_end();
    put_str("m-tinyml-sha256-[");
    put_str(model->model_sha256);
    put_str("]");
    put_line_end();
    put_str("m-tinyml-input-bytes-");
    put_u64(model->input_bytes);
    put_line_end();
    put_str("m-tinyml-output-bytes-");
    put_u64(model->output_bytes);
    put_line_end();
    put_str("m-tinyml-clock-hz-");
    put_u64(port->clock_hz);
    put_line_end();
    put_str("m-tinyml-latency-unit-[");
    put_str(unit_name(port->latency_unit));
    put_str("]");
    put_line_end();
    put_str("m-tinyml-input-[" TM_MLPERF_INPUT_TYPE "]");
    put_line_end();
    put_str("m-tinyml-results-[" TM_MLPERF_RESULTS_KIND "]");
    put_line_end();
    put_str("m-tinyml-db-bytes-");
    put_u64(TM_MLPERF_DB_BYTES);
    put_line_end();
}

static void cmd_help(void)
{
    put_str("m-help-[name, profile, timestamp, db load N, db HEX, db print, infer N W, results]");
    put_line_end();
}

static void cmd_db(char **tokens, size_t count)
{
    if (count < 2u) {
        put_error("db needs load N, print or hex bytes");
        return;
    }
    if (strcmp(tokens[1], "load") == 0) {
        uint32_t n;
        if (count < 3u || parse_uint(tokens[2], &n) != 0 || n == 0u) {
            put_error("db load needs a byte count > 0");
            return;
        }
        db_expected = n;
        db_loaded = 0u;
        put_str("m-[Expecting ");
        put_u64(n);
        put_str(" bytes]");
        put_line_end();
        return;
    }
    if (strcmp(tokens[1], "print") == 0) {
        size_t kept = db_loaded < TM_MLPERF_DB_BYTES ? db_loaded : TM_MLPERF_DB_BYTES;
        for (size_t i = 0u; i < kept; i += 32u) {
            put_str("m-buffer-");
            for (size_t j = i; j < kept && j < i + 32u; j++) {
                put_hex_byte(db_buf[j]);
            }
            put_line_end();
        }
        return;
    }
    if (db_expected == 0u) {
        put_error("db data before db load N");
        return;
    }
    const char *hex = tokens[1];
    size_t digits = strlen(hex);
    if ((digits & 1u) != 0u) {
        put_error("odd number of hex digits");
        return;
    }
    for (size_t i = 0u; i < digits; i += 2u) {
        int high = hex_value(hex[i]);
        int low = hex_value(hex[i + 1u]);
        if (high < 0 || low < 0) {
            put_error("invalid hex digit");
            return;
        }
        if (db_loaded >= db_expected) {
            break; /* as the reference: digits beyond the announced size are dropped */
        }
        if (db_loaded < TM_MLPERF_DB_BYTES) {
            db_buf[db_loaded] = (uint8_t)((high << 4) | low);
        }
        db_loaded++;
        if (db_loaded == db_expected) {
            put_str("m-load-done");
            put_line_end();
        }
    }
}

/* A float with three decimals, rounded half away from zero, as "%0.3f" prints it. */
static void put_fixed3(float value)
{
    float scaled = value * 1000.0f;
    int negative = scaled < 0.0f;
    if (negative) {
        scaled = -scaled;
    }
    uint64_t milli = (uint64_t)(scaled + 0.5f);
    if (negative && milli != 0u) {
        put_str("-");
    }
    put_u64(milli / 1000u);
    put_str(".");
    uint32_t frac = (uint32_t)(milli % 1000u);
    char three[3] = {(char)('0' + frac / 100u), (char)('0' + (frac / 10u) % 10u), (char)('0' + frac % 10u)};
    tm_port_uart_write((const uint8_t *)three, 3u);
}

static float dequantize(int8_t q, float scale, int32_t zero_point) { return (float)((int32_t)q - zero_point) * scale; }

#if defined(TM_MLPERF_INPUT_FLOAT32)
static float db_float(size_t i)
{
    float x; /* the runner's float32 files are little-endian, as every supported core */
    memcpy(&x, &db_buf[4u * i], sizeof x);
    return x;
}
#endif

/* db_buf -> the model's int8 input. Bytes a short load did not write keep what
 * the previous sample left (zeros after boot), as in the reference firmware. */
static const int8_t *model_input(const tm_model_info_t *model)
{
#if defined(TM_MLPERF_INPUT_FLOAT32)
    /* TFLite's QUANTIZE: round(x / scale) half away from zero, plus the zero point, saturated. */
    for (uint32_t i = 0u; i < model->input_bytes; i++) {
        int32_t rounded = (int32_t)roundf(db_float(i) / model->input_scale) + model->input_zero_point;
        input_buf[i] = (int8_t)(rounded < -128 ? -128 : (rounded > 127 ? 127 : rounded));
    }
    return input_buf;
#elif defined(TM_MLPERF_INPUT_UINT8)
    for (uint32_t i = 0u; i < model->input_bytes; i++) {
        input_buf[i] = (int8_t)(db_buf[i] ^ 0x80u); /* uint8 x -> int8 x - 128 */
    }
    return input_buf;
#else
    (void)model;
    return (const int8_t *)db_buf;
#endif
}

static void cmd_results(void)
{
    const tm_model_info_t *model = tm_model_info();
    if (!have_output) {
        put_error("no results: run infer first");
        return;
    }
    put_str("m-results-[");
#if defined(TM_MLPERF_RESULTS_ANOMALY)
    float sum = 0.0f;
    for (uint32_t i = 0u; i < model->output_bytes; i++) {
        float error = db_float(i) - dequantize(output_buf[i], model->output_scale, model->output_zero_point);
        sum += error * error;
    }
    put_fixed3(sum / (float)model->output_bytes);
#elif defined(TM_MLPERF_RESULTS_SOFTMAX)
    float top = dequantize(output_buf[0], model->output_scale, model->output_zero_point);
    for (uint32_t i = 1u; i < model->output_bytes; i++) {
        float value = dequantize(output_buf[i], model->output_scale, model->output_zero_point);
        top = value > top ? value : top;
    }
    float total = 0.0f;
    for (uint32_t i = 0u; i < model->output_bytes; i++) {
        total += expf(dequantize(output_buf[i], model->output_scale, model->output_zero_point) - top);
    }
    for (uint32_t i = 0u; i < model->output_bytes; i++) {
        if (i != 0u) {
            put_str(",");
        }
        put_fixed3(expf(dequantize(output_buf[i], model->output_scale, model->output_zero_point) - top) / total);
    }
#else
    for (uint32_t i = 0u; i < model->output_bytes; i++) {
        if (i != 0u) {
            put_str(",");
        }
        put_fixed3(dequantize(output_buf[i], model->output_scale, model->output_zero_point));
    }
#endif
    put_str("]");
    put_line_end();
    put_str("m-tinyml-output-[");
    for (uint32_t i = 0u; i < model->output_bytes; i++) {
        if (i != 0u) {
            put_str(",");
        }
        put_i64(output_buf[i]);
    }
    put_str("]");
    put_line_end();
}

static void cmd_infer(char **tokens, size_t count)
{
    const tm_model_info_t *model = tm_model_info();
    uint32_t runs = TM_MLPERF_DEFAULT_RUNS;
    uint32_t warmup = TM_MLPERF_DEFAULT_WARMUP;
    if (count >= 2u && (parse_uint(tokens[1], &runs) != 0 || runs == 0u)) {
        put_error("infer needs a run count > 0");
        return;
    }
    if (count >= 3u && parse_uint(tokens[2], &warmup) != 0) {
        put_error("infer needs a warm-up count >= 0");
        return;
    }
    if (model->output_bytes > TM_MLPERF_OUTPUT_BYTES) {
        put_error("model output larger than TM_MLPERF_OUTPUT_BYTES");
        return;
    }
    if ((uint64_t)model->input_bytes * TM_MLPERF_INPUT_WIDTH > TM_MLPERF_DB_BYTES) {
        put_error("the model's input is larger than TM_MLPERF_DB_BYTES: build with it set from the model");
        return;
    }
#if defined(TM_MLPERF_RESULTS_ANOMALY)
    if (model->output_bytes != model->input_bytes) {
        put_error("anomaly score needs an output as large as the input (an autoencoder)");
        return;
    }
#endif
    int status = 0;
    const int8_t *input = model_input(model);
    put_str("m-warmup-start-");
    put_u64(warmup);
    put_line_end();
    for (uint32_t i = 0u; i < warmup && status == 0; i++) {
        status = tm_model_invoke(input, output_buf);
    }
    put_str("m-warmup-done");
    put_line_end();
    put_str("m-infer-start-");
    put_u64(runs);
    put_line_end();
    uint64_t start = tm_port_timer_now();
    for (uint32_t i = 0u; i < runs && status == 0; i++) {
        status = tm_model_invoke(input, output_buf);
    }
    uint64_t end = tm_port_timer_now();
    put_lap(start);
    put_lap(end);
    put_str("m-infer-done");
    put_line_end();
    if (status != 0) {
        have_output = 0;
        put_str("e-[model invoke failed: ");
        put_i64(status);
        put_str("]");
        put_line_end();
        return;
    }
    have_output = 1;
    cmd_results();
}

static void run_command(char *line)
{
    char *tokens[4];
    size_t count = tokenize(line, tokens, 4u);
    if (count == 0u) {
        /* an empty command still gets its m-ready, the runner's way to sync */
    } else if (strcmp(tokens[0], "name") == 0) {
        put_str("m-name-dut-[tinyml]");
        put_line_end();
    } else if (strcmp(tokens[0], "profile") == 0) {
        cmd_profile();
    } else if (strcmp(tokens[0], "help") == 0) {
        cmd_help();
    } else if (strcmp(tokens[0], "timestamp") == 0) {
        put_lap(tm_port_timer_now());
    } else if (strcmp(tokens[0], "db") == 0) {
        cmd_db(tokens, count);
    } else if (strcmp(tokens[0], "infer") == 0) {
        cmd_infer(tokens, count);
    } else if (strcmp(tokens[0], "results") == 0) {
        cmd_results();
    } else {
        put_str("e-[Unknown command: ");
        put_str(tokens[0]);
        put_str("]");
        put_line_end();
    }
    put_str("m-ready");
    put_line_end();
}

void tm_mlperf_feed(const uint8_t *data, size_t len)
{
    for (size_t i = 0u; i < len; i++) {
        char c = (char)data[i];
        if (c == '%') {
            if (cmd_overflow) {
                put_error("command too long");
                put_str("m-ready");
                put_line_end();
            } else {
                cmd_buf[cmd_len] = '\0';
                run_command(cmd_buf);
            }
            cmd_len = 0u;
            cmd_overflow = 0;
        } else if (c == '\r' || c == '\n') {
            /* terminals add line ends; the protocol has none */
        } else if (cmd_len < TM_MLPERF_CMD_BYTES) {
            cmd_buf[cmd_len++] = c;
        } else {
            cmd_overflow = 1;
        }
    }
}

int tm_mlperf_poll(void)
{
    uint8_t chunk[64];
    size_t n = tm_port_uart_read(chunk, sizeof chunk);
    if (n == 0u) {
        return 0;
    }
    tm_mlperf_feed(chunk, n);
    return 1;
}

void tm_mlperf_init(int model_status)
{
    cmd_len = 0u;
    cmd_overflow = 0;
    db_expected = 0u;
    db_loaded = 0u;
    have_output = 0;
    put_str("m-timestamp-mode-performance");
    put_line_end();
    if (model_status != 0) {
        put_str("e-[model init failed: ");
        put_i64(model_status);
        put_str("]");
        put_line_end();
    }
    put_str("m-init-done");
    put_line_end();
    put_str("m-ready");
    put_line_end();
}

void tm_mlperf_run(void)
{
    tm_port_init();
    tm_mlperf_init(tm_model_init());
    for (;;) {
        if (!tm_mlperf_poll()) {
            tm_port_idle();
        }
    }
}
