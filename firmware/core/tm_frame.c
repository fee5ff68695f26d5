/*
 * tm_frame.c - CRC-32, COBS and the frame parser/writer of the board link.
 *
 * COBS (Cheshire & Baker): the frame is cut at each zero byte into blocks; a
 * block is written as code = 1 + its length, then its bytes, and the zero is
 * implied. A block of 254 non-zero bytes has code 0xFF and no implied zero.
 * So the encoded frame holds no zero and 0x00 delimits frames: a receiver
 * that starts mid-stream or sees garbage resynchronises at the next 0x00.
 */
#include "tm_frame.h"

#include "tm_protocol.h"

/* Half-byte table: 64 bytes of flash instead of 1 KB for the byte table, at
 * two lookups per byte; CRC time is small beside an inference. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t tm_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
    size_t i;
    crc = ~crc;
    for (i = 0; i < len; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
    }
    return ~crc;
}

int32_t tm_cobs_decode(uint8_t *buf, size_t len)
{
    size_t read = 0;
    size_t write = 0;
    while (read < len) {
        uint32_t code = buf[read++];
        uint32_t i;
        if (code == 0u || read + code - 1u > len) {
            return -1;
        }
        for (i = 1; i < code; i++) {
            uint8_t byte = buf[read++];
            if (byte == 0u) {
                return -1;
            }
            buf[write++] = byte; /* write <= read - 1: in place is safe */
        }
        if (code != 0xFFu && read < len) {
            buf[write++] = 0u;
        }
    }
    return (int32_t)write;
}

void tm_frame_parser_init(tm_frame_parser_t *parser, uint8_t *buf, uint32_t cap)
{
    parser->buf = buf;
    parser->cap = cap;
    parser->len = 0;
    parser->overflow = 0;
}

static uint32_t get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static tm_feed_status_t finish_frame(tm_frame_parser_t *parser, tm_frame_t *frame)
{
    int32_t decoded = tm_cobs_decode(parser->buf, parser->len);
    uint32_t body;
    if (decoded < 0 || (uint32_t)decoded < TM_FRAME_HEADER_BYTES + TM_FRAME_CRC_BYTES) {
        return TM_FEED_ERR_FRAMING;
    }
    body = (uint32_t)decoded - TM_FRAME_CRC_BYTES;
    if (tm_crc32(0u, parser->buf, body) != get_u32le(parser->buf + body)) {
        return TM_FEED_ERR_CRC;
    }
    frame->version = parser->buf[0];
    frame->type = parser->buf[1];
    frame->seq = (uint16_t)(parser->buf[2] | (parser->buf[3] << 8));
    frame->payload = parser->buf + TM_FRAME_HEADER_BYTES;
    frame->payload_len = body - TM_FRAME_HEADER_BYTES;
    return TM_FEED_FRAME;
}

size_t tm_frame_parser_feed(tm_frame_parser_t *parser, const uint8_t *data, size_t len,
                            tm_feed_status_t *status, tm_frame_t *frame)
{
    size_t i;
    *status = TM_FEED_MORE;
    for (i = 0; i < len; i++) {
        uint8_t byte = data[i];
        if (byte != 0u) {
            if (parser->len < parser->cap) {
                parser->buf[parser->len++] = byte;
            } else {
                parser->overflow = 1;
            }
            continue;
        }
        /* Delimiter: whatever was collected is one frame. */
        if (parser->overflow) {
            *status = TM_FEED_ERR_TOO_LARGE;
        } else if (parser->len > 0u) {
            *status = finish_frame(parser, frame);
        }
        parser->len = 0;
        parser->overflow = 0;
        if (*status != TM_FEED_MORE) {
            return i + 1u;
        }
    }
    return len;
}

static void put_byte(tm_frame_writer_t *writer, uint8_t byte)
{
    if (byte == 0u) {
        writer->block[0] = (uint8_t)writer->used;
        writer->write(writer->block, writer->used);
        writer->used = 1;
        return;
    }
    writer->block[writer->used++] = byte;
    if (writer->used == 255u) {
        writer->block[0] = 0xFFu;
        writer->write(writer->block, 255u);
        writer->used = 1;
    }
}

void tm_frame_put(tm_frame_writer_t *writer, const uint8_t *data, size_t len)
{
    size_t i;
    writer->crc = tm_crc32(writer->crc, data, len);
    for (i = 0; i < len; i++) {
        put_byte(writer, data[i]);
    }
}

void tm_frame_begin(tm_frame_writer_t *writer, tm_write_fn write, uint8_t version,
                    uint8_t type, uint16_t seq)
{
    uint8_t header[TM_FRAME_HEADER_BYTES];
    header[0] = version;
    header[1] = type;
    header[2] = (uint8_t)(seq & 0xFFu);
    header[3] = (uint8_t)(seq >> 8);
    writer->write = write;
    writer->used = 1;
    writer->crc = 0;
    tm_frame_put(writer, header, sizeof header);
}

void tm_frame_end(tm_frame_writer_t *writer)
{
    static const uint8_t delimiter = 0u;
    uint8_t crc[TM_FRAME_CRC_BYTES];
    uint32_t value = writer->crc;
    uint32_t i;
    for (i = 0; i < TM_FRAME_CRC_BYTES; i++) {
        crc[i] = (uint8_t)(value >> (8u * i));
    }
    for (i = 0; i < TM_FRAME_CRC_BYTES; i++) {
        put_byte(writer, crc[i]);
    }
    writer->block[0] = (uint8_t)writer->used;
    writer->write(writer->block, writer->used);
    writer->write(&delimiter, 1u);
}
