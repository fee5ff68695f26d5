/*
 * tm_palette.h - palettized weights: packed 2- or 4-bit indices into int8 tables,
 * decoded into the exact array a kernel path reads (tinyml compile --weights palette4|palette2).
 *
 * A layer's weights w[i], i < count, in the order of its int8 filter (TFLite layout:
 * [C_out][...] for CONV_2D and FULLY_CONNECTED, [1][KH][KW][C_out] for DEPTHWISE_CONV_2D,
 * channel_minor = 1), are stored as
 *
 *   idx(i) = (indices[i * bits / 8] >> ((i * bits) % 8)) & (2^bits - 1)
 *   w[i]   = table[ch(i) * 2^bits + idx(i)]
 *
 * with ch(i) = 0 for one table per layer (tables = 1), else the output channel of w[i]:
 * i % channels (channel_minor) or i / (count / channels). Decoding writes, once per
 * invocation, into scratch that the compiler's memory plan reserves for the layer:
 *
 *   TM_PALETTE_S8        the int8 filter itself (generic, scalar and im2col DSP paths);
 *   TM_PALETTE_FILTER16  filter16 of the widened-patch conv / row16 FC path (tm_conv_2d.h):
 *                        per channel, rows filter rows of width taps widened to int16, each
 *                        row padded with zeros to rw = width rounded up to 4 and each group
 *                        of four taps in the order (0, 2, 1, 3), then the channel's 4 tail words;
 *   TM_PALETTE_DW3       packed of the 3x3 DSP depthwise path (tm_depthwise_conv_2d.h): per
 *                        channel, for each rotation q the taps t[3 kx + s] = w[(s - q) mod 3][kx]
 *                        as int16 pairs, (t8 << 16) | (tail[0] & 0xffff), then tail[1..3].
 *
 * The DSP layouts are decoded only in builds whose kernels read them (TM_DSP_AVAILABLE);
 * other builds of the same model.c decode the int8 filter. The values are the table's
 * int8 values, so the kernels compute the same sums as with the int8 weights: byte-identical.
 *
 * Cost: one table lookup per weight per invocation (the kernels then run unchanged); the
 * fast paths loop over output channels inside each pixel, so a per-channel decode there
 * would repeat for every pixel pair.
 */
#ifndef TM_PALETTE_H
#define TM_PALETTE_H

#include <stdint.h>

#include "tm_conv_2d.h"
#include "tm_fully_connected.h"

#define TM_PALETTE_S8 0
#define TM_PALETTE_FILTER16 1
#define TM_PALETTE_DW3 2

typedef struct {
    int32_t count;          /* weights */
    int32_t channels;       /* output channels */
    int32_t bits;           /* 2 or 4 */
    int32_t tables;         /* 1 (per layer) or channels */
    int32_t channel_minor;  /* 1: channel = i % channels (depthwise filter) */
    const uint8_t *indices; /* count * bits / 8 bytes, rounded up */
    const int8_t *table;    /* [tables][1 << bits] */
    int32_t layout;         /* TM_PALETTE_S8, _FILTER16 or _DW3 */
    int32_t rows, width;    /* FILTER16: filter rows per channel, taps per row */
    const int32_t *tail;    /* FILTER16, DW3: [channels][4] words, or NULL */
    int32_t chunk;          /* FULLY_CONNECTED, CONV_2D (FILTER16): output channels decoded at a time
                               (0: whole layer) */
    int32_t fc_lookup;      /* FULLY_CONNECTED, FILTER16: DSP builds look the weights up in the dot
                               product instead of decoding them (tm_palette_fully_connected_s8) */
} tm_palette_t;

/* Writes the decoded weights to dst (4-byte aligned; the compiler sizes it). */
void tm_palette_decode(const tm_palette_t *p, void *dst);

/* Output channels first .. first + channels - 1 only (channel-major layouts: S8 of CONV_2D and
   FULLY_CONNECTED, FILTER16), written from dst on. */
void tm_palette_decode_channels(const tm_palette_t *p, int32_t first, int32_t channels, void *dst);

/*
 * FULLY_CONNECTED (batches 1) with palettized weights, `chunk` output channels at a time:
 * each block's weights are decoded into scratch (chunk channels of the layout the build
 * reads), then tm_fully_connected_s8 computes those channels with the block's bias and
 * requantization: the same sums, so the same bytes. Every weight is used once per
 * invocation either way, so blocks cost no extra decoding and keep the scratch small.
 *
 * fc_lookup (DSP builds; rows starting on a whole index byte: depth even at 4 bits, a multiple
 * of 4 at 2 bits; one table per layer, or at 2 bits one per channel): nothing is decoded.
 * Scratch holds the input row as int16 pairs, zero-padded to a multiple of four, then for one
 * table 256 words (4 bits: the pair (table[b & 15], table[b >> 4]) of index byte b) or 512
 * (2 bits: per b the pairs of its four weights) built from the layer's table; four output
 * channels run at a time, per index byte one lookup and one SMLAD per pair (tm_palette.c
 * counts the instructions). 2 bits with a table per channel: a channel at a time through its
 * 16 nibble pairs. Then the channel's tail words (bias_folded, requantization) as in
 * tm_fully_connected_row16.h.
 */
void tm_palette_fully_connected_s8(const tm_fully_connected_params_t *p, const tm_palette_t *palette,
                                   const int8_t *input, int8_t *output, int8_t *scratch);

/*
 * CONV_2D on the widened-patch path (DSP builds, FILTER16) `chunk` output channels at a time, so
 * that only a block of the decoded filter16 is in the arena: each block's channels are decoded into
 * `decoded` (tm_palette_conv_2d_block_bytes(p, chunk) bytes), then the widened conv computes those
 * channels of every pixel (tm_conv_2d_widened_channels_s8, its scratch: tm_conv_2d_get_buffer_size).
 * The same sums per channel, so the same bytes; the price is the input patches widened once per
 * block instead of once (and the padded rows refilled per block).
 */
#if TM_DSP_AVAILABLE
void tm_palette_conv_2d_s8(const tm_conv_2d_params_t *p, const tm_palette_t *palette, const int8_t *input,
                           int8_t *output, int8_t *scratch, int32_t *decoded);
#endif

/* Bytes of `channels` decoded filter16 channels of conv p (tm_conv_2d_widened.c: kp / 2 + 4 words each). */
static inline int32_t tm_palette_conv_2d_block_bytes(const tm_conv_2d_params_t *p, int32_t channels)
{
    return channels * (TM_CONV_2D_KP(p) / 2 + 4) * 4;
}

#endif /* TM_PALETTE_H */
