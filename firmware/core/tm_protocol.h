/*
 * tm_protocol.h - numbers of the board link protocol (firmware/PROTOCOL.md).
 *
 * host/protocol.py mirrors every value here; change both together and bump
 * TM_PROTOCOL_VERSION when a frame's meaning changes.
 */
#ifndef TM_PROTOCOL_H
#define TM_PROTOCOL_H

#define TM_PROTOCOL_VERSION 1u
#define TM_FIRMWARE_VERSION "0.1.0"

/* Frame = COBS(header | payload | crc32) 0x00.
 * header: u8 version, u8 type, u16 seq (little-endian).
 * crc32: IEEE 802.3 (zlib's crc32) over header and payload, little-endian. */
#define TM_FRAME_HEADER_BYTES 4u
#define TM_FRAME_CRC_BYTES 4u

/* Largest payload a board accepts or sends; a port may lower it. */
#ifndef TM_MAX_PAYLOAD
#define TM_MAX_PAYLOAD 4096u
#endif

/* Host -> board requests; the board's answer has the same seq and type | 0x80. */
#define TM_MSG_HELLO 0x01u   /* u16 host protocol version */
#define TM_MSG_INFER 0x02u   /* u32 first_index, u16 count, count * input_bytes */
#define TM_MSG_RESET 0x03u   /* empty */
#define TM_MSG_PROFILE 0x04u /* empty: per-layer times of the last inference */
#define TM_MSG_LOAD 0x05u    /* u32 load_id, u32 offset, bytes: part of one input */
#define TM_MSG_INFER_LOADED 0x06u /* u32 load_id, u32 first_index: run the loaded input */
#define TM_MSG_REPLY 0x80u

/* Board -> host, unsolicited. */
#define TM_MSG_BOOT 0x7Eu  /* u16 protocol version, u16 reserved; seq 0 */
#define TM_MSG_ERROR 0x7Fu /* u16 code, u16 reserved, u32 detail; seq of the bad frame */

/* Error codes carried by TM_MSG_ERROR. */
#define TM_ERR_CRC 1u          /* frame failed its CRC; seq unknown (0xFFFF) */
#define TM_ERR_FRAMING 2u      /* bad COBS or shorter than header + crc */
#define TM_ERR_TOO_LARGE 3u    /* frame longer than the board's buffer; detail = limit */
#define TM_ERR_VERSION 4u      /* frame version differs; detail = board's version */
#define TM_ERR_UNKNOWN_TYPE 5u /* detail = the type */
#define TM_ERR_LENGTH 6u       /* payload length wrong for its type; detail = length */
#define TM_ERR_MODEL 7u        /* model invoke failed; detail = backend status */
#define TM_ERR_BATCH 8u        /* count is 0 or too large; detail = largest count */
#define TM_ERR_LOAD 9u         /* LOAD out of order / INFER_LOADED of an incomplete or
                                  other input; detail = bytes loaded for that load_id */
#define TM_ERR_OUTPUT 10u      /* the output does not fit one answer; detail = output_bytes */

/* HELLO answer, after the four strings: u32 feature bits. */
#define TM_FEATURE_LOAD 0x1u /* LOAD and INFER_LOADED: inputs larger than one frame */

#define TM_SEQ_UNKNOWN 0xFFFFu

#endif /* TM_PROTOCOL_H */
