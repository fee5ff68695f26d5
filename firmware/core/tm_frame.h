/*
 * tm_frame.h - framing of the board link: CRC-32, COBS, a streaming frame
 * parser and a streaming frame writer. Pure functions over caller buffers:
 * no port calls, no globals, so the fuzzer and the host tests drive it alone.
 */
#ifndef TM_FRAME_H
#define TM_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* crc = CRC-32/IEEE (reflected polynomial 0xEDB88320, init and xorout
 * 0xFFFFFFFF), continued from a previous value; start with crc = 0. */
uint32_t tm_crc32(uint32_t crc, const uint8_t *data, size_t len);

/* Decodes one COBS block sequence in place (without the 0x00 delimiter).
 * Returns the decoded length, or -1 when the encoding is invalid. */
int32_t tm_cobs_decode(uint8_t *buf, size_t len);

typedef struct {
    uint8_t version;
    uint8_t type;
    uint16_t seq;
    const uint8_t *payload; /* points into the parser's buffer until the next feed */
    uint32_t payload_len;
} tm_frame_t;

typedef enum {
    TM_FEED_MORE = 0,      /* no complete frame yet */
    TM_FEED_FRAME,         /* *frame holds a frame that passed its CRC */
    TM_FEED_ERR_CRC,       /* a frame arrived damaged */
    TM_FEED_ERR_FRAMING,   /* invalid COBS or too short to be a frame */
    TM_FEED_ERR_TOO_LARGE  /* more bytes before the delimiter than the buffer holds */
} tm_feed_status_t;

typedef struct {
    uint8_t *buf;
    uint32_t cap;
    uint32_t len;
    uint8_t overflow; /* dropping bytes until the next delimiter */
} tm_frame_parser_t;

/* buf must hold the largest encoded frame (tm_frame_encoded_max). */
void tm_frame_parser_init(tm_frame_parser_t *parser, uint8_t *buf, uint32_t cap);

/* Consumes bytes up to and including the first frame delimiter in data, and
 * returns how many it consumed; *status tells what that delimiter ended.
 * Empty frames (back-to-back delimiters, sent to resynchronise) are skipped. */
size_t tm_frame_parser_feed(tm_frame_parser_t *parser, const uint8_t *data, size_t len,
                            tm_feed_status_t *status, tm_frame_t *frame);

/* Bytes on the wire of a frame with this payload, worst case: COBS adds one
 * byte per 254 and one more, plus the delimiter. */
#define tm_frame_encoded_max(payload_len) \
    (((payload_len) + 8u) + (((payload_len) + 8u) / 254u) + 2u)

typedef void (*tm_write_fn)(const uint8_t *buf, size_t len);

/* Streams one frame through a 255-byte COBS block, so no second copy of the
 * payload is needed: header, payload and CRC are encoded as they go out. */
typedef struct {
    uint8_t block[255];
    uint32_t used; /* block[0] is the code byte of the block being filled */
    uint32_t crc;
    tm_write_fn write;
} tm_frame_writer_t;

void tm_frame_begin(tm_frame_writer_t *writer, tm_write_fn write, uint8_t version,
                    uint8_t type, uint16_t seq);
void tm_frame_put(tm_frame_writer_t *writer, const uint8_t *data, size_t len);
void tm_frame_end(tm_frame_writer_t *writer);

#endif /* TM_FRAME_H */
