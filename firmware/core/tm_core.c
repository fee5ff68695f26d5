/*
 * tm_core.c - the protocol handler (firmware/PROTOCOL.md).
 *
 * Reception is buffered by the port (interrupt into a ring), so while an INFER
 * frame's samples run, the host's next frames accumulate there: the core
 * handles frames strictly in arrival order, one at a time, and answers each.
 */
#include "tm_core.h"

#include <string.h>

#include "tm_model.h"
#include "tm_port.h"
#include "tm_protocol.h"

/* Encoded request frames up to TM_MAX_PAYLOAD bytes of payload. */
#define RX_FRAME_CAP tm_frame_encoded_max(TM_MAX_PAYLOAD)

static uint8_t rx_frame[RX_FRAME_CAP];
static uint8_t rx_chunk[64];
static uint8_t tx_payload[TM_MAX_PAYLOAD];
static tm_frame_parser_t parser;
static int model_ready_status;

/* Progress of the input LOAD frames assemble in the backend's load_buffer:
 * bytes [0, loaded_bytes) belong to load loaded_id. A load starts at offset 0
 * and grows without gaps, so INFER_LOADED runs only a complete input of the
 * id it names, whatever frames the line lost or repeated. */
static uint32_t loaded_id;
static uint32_t loaded_bytes;

/* After an inference: a backend whose invoke may overwrite the load buffer
 * no longer holds the loaded input, so a repeated INFER_LOADED gets a load
 * error (the host then sends the sample again) instead of a wrong answer. */
static void forget_clobbered_load(const tm_model_info_t *model)
{
    if (model->invoke_clobbers_load) {
        loaded_bytes = 0u;
    }
}

static void put_u16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    put_u16(p, v & 0xFFFFu);
    put_u16(p + 2, v >> 16);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get_u16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }

static uint32_t get_u32(const uint8_t *p) { return get_u16(p) | (get_u16(p + 2) << 16); }

static void put_f32(uint8_t *p, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    put_u32(p, bits);
}

static void send_frame(uint8_t type, uint16_t seq, const uint8_t *payload, size_t len)
{
    tm_frame_writer_t writer;
    tm_frame_begin(&writer, tm_port_uart_write, (uint8_t)TM_PROTOCOL_VERSION, type, seq);
    tm_frame_put(&writer, payload, len);
    tm_frame_end(&writer);
}

static void send_error(uint16_t seq, uint32_t code, uint32_t detail)
{
    uint8_t payload[8];
    put_u16(payload, code);
    put_u16(payload + 2, 0u);
    put_u32(payload + 4, detail);
    send_frame((uint8_t)TM_MSG_ERROR, seq, payload, sizeof payload);
}

/* Appends a u8-length-prefixed string; strings longer than 255 are cut. */
static size_t put_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    if (n > 255u) {
        n = 255u;
    }
    p[0] = (uint8_t)n;
    memcpy(p + 1, s, n);
    return n + 1u;
}

static uint32_t max_batch(const tm_model_info_t *model)
{
    /* Both the request (6 + n * in) and the answer (8 + n * (4 + out)) must fit. */
    uint32_t by_input = (TM_MAX_PAYLOAD - 6u) / (model->input_bytes ? model->input_bytes : 1u);
    uint32_t by_output = (TM_MAX_PAYLOAD - 8u) / (4u + model->output_bytes);
    uint32_t n = by_input < by_output ? by_input : by_output;
    return n > 0xFFFFu ? 0xFFFFu : n;
}

static void handle_hello(const tm_frame_t *frame)
{
    const tm_port_info_t *port = tm_port_info();
    const tm_model_info_t *model = tm_model_info();
    uint8_t *p = tx_payload;
    uint32_t i;
    if (frame->payload_len != 2u) {
        send_error(frame->seq, TM_ERR_LENGTH, frame->payload_len);
        return;
    }
    put_u16(p, TM_PROTOCOL_VERSION);
    put_u16(p + 2, TM_MAX_PAYLOAD);
    put_u32(p + 4, port->rx_buffer_bytes);
    put_u32(p + 8, port->clock_hz);
    p[12] = (uint8_t)port->latency_unit;
    p[13] = (uint8_t)(model_ready_status == 0 ? 0u : 1u);
    put_u16(p + 14, max_batch(model));
    put_u32(p + 16, model->input_bytes);
    put_u32(p + 20, model->output_bytes);
    put_u32(p + 24, model->arena_bytes);
    put_f32(p + 28, model->input_scale);
    put_u32(p + 32, (uint32_t)model->input_zero_point);
    put_f32(p + 36, model->output_scale);
    put_u32(p + 40, (uint32_t)model->output_zero_point);
    p[44] = (uint8_t)model->input_rank;
    p[45] = (uint8_t)model->output_rank;
    put_u16(p + 46, model->num_layers);
    for (i = 0; i < TM_MODEL_MAX_RANK; i++) {
        put_u32(p + 48 + 4 * i, (uint32_t)model->input_dims[i]);
        put_u32(p + 64 + 4 * i, (uint32_t)model->output_dims[i]);
    }
    p += 80;
    p += put_str(p, TM_FIRMWARE_VERSION);
    p += put_str(p, port->board);
    p += put_str(p, model->backend);
    p += put_str(p, model->model_sha256);
    put_u32(p, model->load_buffer != NULL ? TM_FEATURE_LOAD : 0u);
    p += 4;
    send_frame((uint8_t)(TM_MSG_HELLO | TM_MSG_REPLY), frame->seq, tx_payload,
               (size_t)(p - tx_payload));
}

static void handle_infer(const tm_frame_t *frame)
{
    const tm_model_info_t *model = tm_model_info();
    uint32_t first, count, i;
    uint8_t *record;
    if (frame->payload_len < 6u) {
        send_error(frame->seq, TM_ERR_LENGTH, frame->payload_len);
        return;
    }
    first = get_u32(frame->payload);
    count = get_u16(frame->payload + 4);
    if (count == 0u || count > max_batch(model)) {
        send_error(frame->seq, TM_ERR_BATCH, max_batch(model));
        return;
    }
    if (frame->payload_len != 6u + count * model->input_bytes) {
        send_error(frame->seq, TM_ERR_LENGTH, frame->payload_len);
        return;
    }
    if (model_ready_status != 0) {
        send_error(frame->seq, TM_ERR_MODEL, (uint32_t)model_ready_status);
        return;
    }
    put_u32(tx_payload, first);
    put_u16(tx_payload + 4, count);
    put_u16(tx_payload + 6, 0u);
    record = tx_payload + 8;
    for (i = 0; i < count; i++) {
        const int8_t *input = (const int8_t *)(frame->payload + 6u + i * model->input_bytes);
        uint64_t start, elapsed;
        int status;
        start = tm_port_timer_now();
        status = tm_model_invoke(input, (int8_t *)(record + 4));
        elapsed = tm_port_timer_now() - start;
        if (status != 0) {
            send_error(frame->seq, TM_ERR_MODEL, (uint32_t)status);
            return;
        }
        put_u32(record, elapsed > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)elapsed);
        record += 4u + model->output_bytes;
    }
    forget_clobbered_load(model);
    send_frame((uint8_t)(TM_MSG_INFER | TM_MSG_REPLY), frame->seq, tx_payload,
               (size_t)(record - tx_payload));
}

/* Runs one input and answers with an INFER result record of one sample. */
static void answer_one(const tm_frame_t *frame, uint8_t type, uint32_t first, const int8_t *input)
{
    const tm_model_info_t *model = tm_model_info();
    uint64_t start, elapsed;
    int status;
    start = tm_port_timer_now();
    status = tm_model_invoke(input, (int8_t *)(tx_payload + 12));
    elapsed = tm_port_timer_now() - start;
    if (status != 0) {
        send_error(frame->seq, TM_ERR_MODEL, (uint32_t)status);
        return;
    }
    put_u32(tx_payload, first);
    put_u16(tx_payload + 4, 1u);
    put_u16(tx_payload + 6, 0u);
    put_u32(tx_payload + 8, elapsed > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)elapsed);
    send_frame(type, frame->seq, tx_payload, 12u + model->output_bytes);
}

/* LOAD: load_id:u32 offset:u32 bytes -> load_id:u32 loaded:u32.
 * offset 0 starts load load_id over; a later offset must continue that load
 * with no gap (offset <= loaded; a repeated frame rewrites the same bytes). */
static void handle_load(const tm_frame_t *frame)
{
    const tm_model_info_t *model = tm_model_info();
    uint32_t id, offset, len;
    uint8_t answer[8];
    if (model->load_buffer == NULL) {
        send_error(frame->seq, TM_ERR_UNKNOWN_TYPE, frame->type);
        return;
    }
    if (frame->payload_len < 8u) {
        send_error(frame->seq, TM_ERR_LENGTH, frame->payload_len);
        return;
    }
    id = get_u32(frame->payload);
    offset = get_u32(frame->payload + 4);
    len = (uint32_t)frame->payload_len - 8u;
    if (offset > model->input_bytes || len > model->input_bytes - offset) {
        send_error(frame->seq, TM_ERR_LENGTH, frame->payload_len);
        return;
    }
    if (offset == 0u) {
        loaded_id = id;
        loaded_bytes = 0u;
    } else if (id != loaded_id || offset > loaded_bytes) {
        send_error(frame->seq, TM_ERR_LOAD, id == loaded_id ? loaded_bytes : 0u);
        return;
    }
    memcpy(model->load_buffer + offset, frame->payload + 8, len);
    if (offset + len > loaded_bytes) {
        loaded_bytes = offset + len;
    }
    put_u32(answer, id);
    put_u32(answer + 4, loaded_bytes);
    send_frame((uint8_t)(TM_MSG_LOAD | TM_MSG_REPLY), frame->seq, answer, sizeof answer);
}

/* INFER_LOADED: load_id:u32 first_index:u32 -> an INFER answer of one record.
 * The loaded input stays, so a repeated request gives the same answer. */
static void handle_infer_loaded(const tm_frame_t *frame)
{
    const tm_model_info_t *model = tm_model_info();
    uint32_t id;
    if (model->load_buffer == NULL) {
        send_error(frame->seq, TM_ERR_UNKNOWN_TYPE, frame->type);
        return;
    }
    if (frame->payload_len != 8u) {
        send_error(frame->seq, TM_ERR_LENGTH, frame->payload_len);
        return;
    }
    id = get_u32(frame->payload);
    if (id != loaded_id || loaded_bytes != model->input_bytes) {
        send_error(frame->seq, TM_ERR_LOAD, id == loaded_id ? loaded_bytes : 0u);
        return;
    }
    if (12u + model->output_bytes > TM_MAX_PAYLOAD) {
        send_error(frame->seq, TM_ERR_OUTPUT, model->output_bytes);
        return;
    }
    if (model_ready_status != 0) {
        send_error(frame->seq, TM_ERR_MODEL, (uint32_t)model_ready_status);
        return;
    }
    answer_one(frame, (uint8_t)(TM_MSG_INFER_LOADED | TM_MSG_REPLY), get_u32(frame->payload + 4),
               model->load_buffer);
    forget_clobbered_load(model);
}

static void handle_profile(const tm_frame_t *frame)
{
    const tm_model_info_t *model = tm_model_info();
    uint8_t *p = tx_payload;
    uint8_t *end = tx_payload + TM_MAX_PAYLOAD;
    uint32_t layer;
    uint32_t sent = 0;
    put_u16(p + 2, 0u);
    p += 4;
    for (layer = 0; layer < model->num_layers; layer++) {
        const char *name = tm_model_layer_name(layer);
        size_t name_len = strlen(name) > 255u ? 255u : strlen(name);
        if (p + 8 + 1 + name_len > end) {
            break;
        }
        put_u64(p, tm_model_layer_time(layer));
        p += 8;
        p += put_str(p, name);
        sent++;
    }
    put_u16(tx_payload, sent);
    send_frame((uint8_t)(TM_MSG_PROFILE | TM_MSG_REPLY), frame->seq, tx_payload,
               (size_t)(p - tx_payload));
}

void tm_core_handle_frame(const tm_frame_t *frame)
{
    if (frame->version != TM_PROTOCOL_VERSION) {
        send_error(frame->seq, TM_ERR_VERSION, TM_PROTOCOL_VERSION);
        return;
    }
    switch (frame->type) {
    case TM_MSG_HELLO:
        handle_hello(frame);
        break;
    case TM_MSG_INFER:
        handle_infer(frame);
        break;
    case TM_MSG_PROFILE:
        handle_profile(frame);
        break;
    case TM_MSG_LOAD:
        handle_load(frame);
        break;
    case TM_MSG_INFER_LOADED:
        handle_infer_loaded(frame);
        break;
    case TM_MSG_RESET:
        send_frame((uint8_t)(TM_MSG_RESET | TM_MSG_REPLY), frame->seq, tx_payload, 0u);
        tm_port_reset();
        break;
    default:
        send_error(frame->seq, TM_ERR_UNKNOWN_TYPE, frame->type);
        break;
    }
}

void tm_core_init(int model_status)
{
    uint8_t payload[4];
    model_ready_status = model_status;
    loaded_id = 0u;
    loaded_bytes = 0u;
    tm_frame_parser_init(&parser, rx_frame, (uint32_t)sizeof rx_frame);
    put_u16(payload, TM_PROTOCOL_VERSION);
    put_u16(payload + 2, (uint32_t)(model_status == 0 ? 0 : 1));
    send_frame((uint8_t)TM_MSG_BOOT, 0u, payload, sizeof payload);
}

int tm_core_poll(void)
{
    size_t got = tm_port_uart_read(rx_chunk, sizeof rx_chunk);
    size_t used = 0;
    while (used < got) {
        tm_feed_status_t status;
        tm_frame_t frame;
        used += tm_frame_parser_feed(&parser, rx_chunk + used, got - used, &status, &frame);
        switch (status) {
        case TM_FEED_FRAME:
            tm_core_handle_frame(&frame);
            break;
        case TM_FEED_ERR_CRC:
            send_error(TM_SEQ_UNKNOWN, TM_ERR_CRC, 0u);
            break;
        case TM_FEED_ERR_FRAMING:
            send_error(TM_SEQ_UNKNOWN, TM_ERR_FRAMING, 0u);
            break;
        case TM_FEED_ERR_TOO_LARGE:
            send_error(TM_SEQ_UNKNOWN, TM_ERR_TOO_LARGE, TM_MAX_PAYLOAD);
            break;
        case TM_FEED_MORE:
        default:
            break;
        }
    }
    return got > 0u;
}

void tm_core_run(void)
{
    int model_status;
    tm_port_init();
    model_status = tm_model_init();
    tm_core_init(model_status);
    for (;;) {
        if (!tm_core_poll()) {
            tm_port_idle();
        }
    }
}
