/* tm_palette.c - decoding of palettized weights; see tm_palette.h for the layouts. */
#include "tm_palette.h"

#include <stddef.h>
#include <string.h>

#include "tm_conv_2d_widened.h"
#include "tm_dsp.h"

/* Locals of a tm_palette_t: the decode loops store through int8/int16/int32 pointers that
   could alias the struct, so its fields are read once, here. */
typedef struct {
    const uint8_t *indices;
    const int8_t *table;
    int32_t bits, mask, channels, tables, count;
} tm_palette_view_t;

static inline tm_palette_view_t view_of(const tm_palette_t *p)
{
    tm_palette_view_t v;
    v.indices = p->indices;
    v.table = p->table;
    v.bits = p->bits;
    v.mask = (1 << p->bits) - 1;
    v.channels = p->channels;
    v.tables = p->tables;
    v.count = p->count;
    return v;
}

static inline int32_t index_at(const tm_palette_view_t *v, int32_t i)
{
    const int32_t bit = i * v->bits;
    return (v->indices[bit >> 3] >> (bit & 7)) & v->mask;
}

static inline const int8_t *channel_table(const tm_palette_view_t *v, int32_t channel)
{
    return v->tables == 1 ? v->table : v->table + ((size_t)channel << v->bits);
}

/* int8 filter: channel-major weights stream whole index bytes per channel (a channel's first
   index starts a byte when its weight count is even at 4 bits, a multiple of 4 at 2 bits);
   the depthwise (channel-minor) order picks the table per weight. */
/* DSP builds decode the int8 filter only off their speed paths (--optimize size, generic depthwise):
   built for size there (tm_palette.c's .text bound), for speed on the cores whose every path reads it. */
#if TM_DSP_AVAILABLE
#define TM_PALETTE_S8_ATTR TM_SIZE
#else
#define TM_PALETTE_S8_ATTR
#endif
TM_PALETTE_S8_ATTR static void decode_s8(const tm_palette_t *p, int32_t first, int32_t channels, int8_t *dst)
{
    const tm_palette_view_t v = view_of(p);
    const int32_t per_channel = v.count / v.channels;
    int32_t c, i = first * per_channel;
    if (p->channel_minor && v.tables > 1) { /* (depthwise: always the whole layer) */
        for (i = 0; i < v.count; ++i) {
            dst[i] = channel_table(&v, i % v.channels)[index_at(&v, i)];
        }
        return;
    }
    for (c = first; c < first + channels; ++c) {
        const int8_t *t = channel_table(&v, p->channel_minor ? 0 : c);
        const int32_t end = i + per_channel;
#if !TM_DSP_AVAILABLE /* (DSP builds: the weight-by-weight loop below, for size) */
        if (v.bits == 4 && (i & 1) == 0) {
            const uint8_t *idx = v.indices + (i >> 1);
            for (; i + 1 < end; i += 2, dst += 2) {
                const uint32_t b = *idx++;
                dst[0] = t[b & 15u];
                dst[1] = t[b >> 4];
            }
        } else if (v.bits == 2 && (i & 3) == 0) {
            const uint8_t *idx = v.indices + (i >> 2);
            for (; i + 3 < end; i += 4, dst += 4) {
                const uint32_t b = *idx++;
                dst[0] = t[b & 3u];
                dst[1] = t[(b >> 2) & 3u];
                dst[2] = t[(b >> 4) & 3u];
                dst[3] = t[b >> 6];
            }
        }
#endif
        for (; i < end; ++i) {
            *dst++ = t[index_at(&v, i)];
        }
    }
}

#if TM_DSP_AVAILABLE
/* Position of tap t of a filter row inside its group of four: (0, 2, 1, 3) of SXTB16 / ror 8. */
static const uint8_t tm_palette_group_order[4] = {0, 2, 1, 3};

/* Two taps as one int32 word of int16 halves, the first in the low half: PKHBT on a DSP core
   (gcc writes UXTH + ORR for the C expression). */
#if defined(__ARM_FEATURE_DSP) && !defined(TM_DSP_EMULATE)
static inline int32_t pair16(int32_t lo, int32_t hi)
{
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
}
#else
static inline int32_t pair16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xffffu) | ((uint32_t)hi << 16));
}
#endif

/* The next four index bytes as one little-endian word (an unaligned LDR on Cortex-M4/M7). */
static inline uint32_t load4(const uint8_t *idx)
{
    uint32_t x;
    memcpy(&x, idx, sizeof(x));
    return x;
}

/* 2 bits: one byte (i3 << 6 | i2 << 4 | i1 << 2 | i0) per group -> (t0, t2), (t1, t3): the bits
   0x33 of the byte and of the byte >> 2 index pairs[(hi << 4) | lo] = (table[lo], table[hi]),
   16 words built per table (pairs_2bit, rows of 16): AND, LDR per word. With rows of 4, the
   same 16 words are the pairs of a nibble (hi << 2 | lo), as the FC lookup reads them. */
/* (l0..l3 | h): one row of pairs_2bit */
static inline void pair_row(int32_t *pairs, uint32_t h, uint32_t l0, uint32_t l1, uint32_t l2, uint32_t l3)
{
    pairs[0] = (int32_t)(l0 | h);
    pairs[1] = (int32_t)(l1 | h);
    pairs[2] = (int32_t)(l2 | h);
    pairs[3] = (int32_t)(l3 | h);
}

/* Straight-line: a table per channel builds its pairs once per channel. */
__attribute__((noinline)) static void pairs_2bit(const int8_t *table, int32_t *pairs, int32_t row)
{
    const uint32_t l0 = (uint16_t)table[0], l1 = (uint16_t)table[1], l2 = (uint16_t)table[2],
                   l3 = (uint16_t)table[3];
    pair_row(pairs, l0 << 16, l0, l1, l2, l3);
    pair_row(pairs + row, l1 << 16, l0, l1, l2, l3);
    pair_row(pairs + 2 * row, l2 << 16, l0, l1, l2, l3);
    pair_row(pairs + 3 * row, l3 << 16, l0, l1, l2, l3);
}

/* Channels of whole groups (decode_filter16), a layer's block in one call: per channel
   `groups` groups of four taps, then its 4 tail words.
   4 bits: the indices of taps t0..t3 are the bytes b0 = (i1 << 4 | i0), b1 = (i3 << 4 | i2)
   -> the words (t0, t2), (t1, t3) of the (0, 2, 1, 3) group order, two groups per step from
   one word of indices. 2 bits: one index byte per group -> two pair words, built from the
   channel's table into pairs (52 words: 0..0x33) when it is not the previous channel's. */
__attribute__((noinline)) static void channels_whole(const int8_t *table, int32_t table_step, const uint8_t *idx,
                                                     int32_t groups, const int32_t *tail, int32_t channels,
                                                     int32_t *out, int32_t bits, int32_t *pairs)
{
    const int8_t *paired = NULL;
    for (; channels > 0; --channels, table += table_step, tail += 4, out += 4) {
        int32_t n;
        if (bits == 4) {
            for (n = groups >> 1; n > 0; --n, idx += 4, out += 4) {
                const uint32_t x = load4(idx);
                out[0] = pair16(table[x & 15u], table[(x >> 8) & 15u]);
                out[1] = pair16(table[(x >> 4) & 15u], table[(x >> 12) & 15u]);
                out[2] = pair16(table[(x >> 16) & 15u], table[(x >> 24) & 15u]);
                out[3] = pair16(table[(x >> 20) & 15u], table[x >> 28]);
            }
            if (groups & 1) {
                const uint32_t b0 = idx[0], b1 = idx[1];
                out[0] = pair16(table[b0 & 15u], table[b1 & 15u]);
                out[1] = pair16(table[b0 >> 4], table[b1 >> 4]);
                idx += 2;
                out += 2;
            }
        } else {
            if (table != paired) {
                pairs_2bit(table, pairs, 16);
                paired = table;
            }
            for (n = groups; n > 0; --n, out += 2) {
                const uint32_t b = *idx++;
                out[0] = pairs[b & 0x33u];
                out[1] = pairs[(b >> 2) & 0x33u];
            }
        }
        memcpy(out, tail, 4 * sizeof(int32_t));
    }
}

/* Channels whose rows are whole groups (width a multiple of 4: no padding) are runs of groups
   starting on whole index bytes (their weight counts are multiples of 4): 4 bits, the whole block
   in one call; 2 bits through the pair words of the channel's table. Otherwise (the first conv's
   few taps, odd FC depths) tap by tap, each row padded. */
static void decode_filter16(const tm_palette_t *p, int32_t first, int32_t channels, int32_t *dst)
{
    const tm_palette_view_t v = view_of(p);
    const int32_t width = p->width, rw = (width + 3) & ~3, per_channel = p->rows * width;
    const int32_t *tail = p->tail + 4 * (size_t)first;
    int32_t c, row, t, i = first * per_channel;
    if (rw == width) {
        const int32_t step = v.tables == 1 ? 0 : 1 << v.bits;
        int32_t pairs[52];
        channels_whole(channel_table(&v, first), step, v.indices + ((i * v.bits) >> 3), per_channel >> 2, tail,
                       channels, dst, v.bits, pairs);
        return;
    }
    for (c = first; c < first + channels; ++c, tail += 4, dst += 4) {
        const int8_t *table = channel_table(&v, c);
        for (row = 0; row < p->rows; ++row, dst += rw >> 1) {
            int16_t *w16 = (int16_t *)(void *)dst;
            for (t = 0; t < rw; ++t) {
                w16[(t & ~3) + tm_palette_group_order[t & 3]] = (int16_t)(t < width ? table[index_at(&v, i++)] : 0);
            }
        }
        memcpy(dst, tail, 4 * sizeof(int32_t));
    }
}

/* Halfword offsets, in a channel's record of 18 words, of the three int16 copies of tap
   w[3 ky + kx] (one per rotation q: t[3 kx + s] = w[3 ((s - q) mod 3) + kx] is halfword 10 q + 3 kx + s,
   t8 the high half of word 5 q + 4). */
static const uint8_t tm_palette_dw3_halves[9][3] = {
    {0, 11, 22}, {3, 14, 25}, {6, 17, 29}, {1, 12, 20}, {4, 15, 23}, {7, 19, 26}, {2, 10, 21}, {5, 13, 24}, {9, 16, 27},
};

/* The next channel's tap: its three int16 copies (STRH with a register offset each), then the
   next channel's record and table. The value is read once: int8 table loads may alias the stores. */
#define TM_DW3_NEXT(index)                                                                         \
    do {                                                                                           \
        const int16_t w = t[index];                                                                \
        h[o0] = w;                                                                                 \
        h[o1] = w;                                                                                 \
        h[o2] = w;                                                                                 \
        h += 36;                                                                                   \
        t += step;                                                                                 \
    } while (0)

/* Tap-major: the depthwise indices are channel-minor, so a tap's indices of successive channels
   are successive in the index bytes (whole bytes per tap when channels * bits is a multiple of 8):
   per weight one lookup and its three int16 stores, no per-channel gathering of nine taps. */
static void decode_dw3(const tm_palette_t *p, int32_t *dst)
{
    const tm_palette_view_t v = view_of(p);
    const int32_t row_bits = v.channels * v.bits;          /* one tap's indices over all channels */
    const int32_t step = v.tables == 1 ? 0 : 1 << v.bits;  /* table advance per channel */
    const int32_t *tail = p->tail;
    int32_t *rec;
    int32_t c, k;
    /* The e words first: the taps' stores fill their high halves; then the requant words. */
    for (rec = dst, c = 0; c < v.channels; ++c, rec += 18, tail += 4) {
        const int32_t e = tail[0];
        rec[4] = e;
        rec[9] = e;
        rec[14] = e;
        rec[15] = tail[1];
        rec[16] = tail[2];
        rec[17] = tail[3];
    }
    for (k = 0; k < 9; ++k) {
        const int32_t o0 = tm_palette_dw3_halves[k][0], o1 = tm_palette_dw3_halves[k][1],
                      o2 = tm_palette_dw3_halves[k][2];
        int16_t *h = (int16_t *)(void *)dst;
        const int8_t *t = v.table;
        if ((row_bits & 7) == 0) {
            const uint8_t *idx = v.indices + ((k * row_bits) >> 3), *const end = idx + (row_bits >> 3);
            if (v.bits == 4) {
                while (idx != end) {
                    const uint32_t b = *idx++;
                    TM_DW3_NEXT(b & 15u);
                    TM_DW3_NEXT(b >> 4);
                }
            } else {
                while (idx != end) {
                    const uint32_t b = *idx++;
                    TM_DW3_NEXT(b & 3u);
                    TM_DW3_NEXT((b >> 2) & 3u);
                    TM_DW3_NEXT((b >> 4) & 3u);
                    TM_DW3_NEXT(b >> 6);
                }
            }
        } else {
            int32_t bit = k * row_bits;
            for (c = 0; c < v.channels; ++c, bit += v.bits) {
                TM_DW3_NEXT((v.indices[bit >> 3] >> (bit & 7)) & v.mask);
            }
        }
    }
}
#undef TM_DW3_NEXT
#endif /* TM_DSP_AVAILABLE */

/* noinline: one copy for tm_palette_decode and the FC blocks (tm_palette.c's .text bound) */
__attribute__((noinline)) void tm_palette_decode_channels(const tm_palette_t *p, int32_t first, int32_t channels, void *dst)
{
#if TM_DSP_AVAILABLE
    if (p->layout == TM_PALETTE_FILTER16) {
        decode_filter16(p, first, channels, (int32_t *)dst);
        return;
    }
    if (p->layout == TM_PALETTE_DW3) {
        decode_dw3(p, (int32_t *)dst);
        return;
    }
#endif
    decode_s8(p, first, channels, (int8_t *)dst);
}

void tm_palette_decode(const tm_palette_t *p, void *dst)
{
    tm_palette_decode_channels(p, 0, p->channels, dst);
}

#if TM_DSP_AVAILABLE
/* Os: a call per block, around the decode loop and the conv's pixel loop (tm_palette.c's .text bound) */
TM_SIZE void tm_palette_conv_2d_s8(const tm_conv_2d_params_t *p, const tm_palette_t *palette, const int8_t *input,
                                   int8_t *output, int8_t *scratch, int32_t *decoded)
{
    const int32_t chunk = palette->chunk;
    int32_t first;
    for (first = 0; first < p->output_c; first += chunk) {
        const int32_t channels = p->output_c - first < chunk ? p->output_c - first : chunk;
        tm_palette_decode_channels(palette, first, channels, decoded);
        tm_conv_2d_widened_channels_s8(p, decoded, first, channels, input, output, scratch);
    }
}

/*
 * FULLY_CONNECTED without decoding (fc_lookup, tm_palette.h). Per index byte, the int16 pairs
 * SMLAD consumes come from a 256-word table built once per invocation from the layer's int8
 * table: 4 bits, one byte = two weights (w0, w1) -> pairs[b]; 2 bits, one byte = four weights
 * -> the two words pairs[2b] = (w0, w1), pairs[2b + 1] = (w2, w3) (one address, one LDRD).
 * The input row is widened once into int16 pairs (x0, x1), zeros past depth up to a multiple
 * of four, directly below the table: the loop stops where the table starts.
 *
 * lookup4: per four input bytes, 4 channels: LDRD of the inputs, per channel two (LDRB, LDR,
 * SMLAD) at 4 bits or (LDRB, ADD, LDRD, SMLAD, SMLAD) at 2 bits, CMP + BNE: 27 (4 bits) or
 * 23 (2 bits) instructions per 16 MACs. At 4 bits a row of depth 2 mod 4 reads one index byte
 * past it (the next row's or the array's padding): its pair meets the zero inputs.
 */
#if TM_DSP_ASM
#define TM_ARG __attribute__((unused)) /* read by the assembly, per the AAPCS */
/* r0 x pairs (ends at pairs), r1 first channel's indices, r2 bytes per channel, r3 pairs,
   [sp] acc, [sp, #4] bits; r4-r7 the four channels' indices, r8-r11 their sums, r1 r2 four inputs. */
__attribute__((naked, noinline)) static void lookup4(TM_ARG const int32_t *x, TM_ARG const uint8_t *idx,
                                                     TM_ARG int32_t stride, TM_ARG const int32_t *pairs,
                                                     TM_ARG int32_t *acc, TM_ARG int32_t bits)
{
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "mov r4, r1\n\t"
        "add r5, r4, r2\n\t"
        "add r6, r5, r2\n\t"
        "add r7, r6, r2\n\t"
        "ldr r12, [sp, #36]\n\t"
        "ldm r12, {r8-r11}\n\t"
        "ldr r12, [sp, #40]\n\t"
        "cmp r12, #4\n\t"
        "bne 3f\n\t"
        "1:\n\t"
        "ldrd r1, r2, [r0], #8\n\t"
        "ldrb r12, [r4], #1\n\t"
        "ldr r12, [r3, r12, lsl #2]\n\t"
        "smlad r8, r1, r12, r8\n\t"
        "ldrb lr, [r4], #1\n\t"
        "ldr lr, [r3, lr, lsl #2]\n\t"
        "smlad r8, r2, lr, r8\n\t"
        "ldrb r12, [r5], #1\n\t"
        "ldr r12, [r3, r12, lsl #2]\n\t"
        "smlad r9, r1, r12, r9\n\t"
        "ldrb lr, [r5], #1\n\t"
        "ldr lr, [r3, lr, lsl #2]\n\t"
        "smlad r9, r2, lr, r9\n\t"
        "ldrb r12, [r6], #1\n\t"
        "ldr r12, [r3, r12, lsl #2]\n\t"
        "smlad r10, r1, r12, r10\n\t"
        "ldrb lr, [r6], #1\n\t"
        "ldr lr, [r3, lr, lsl #2]\n\t"
        "smlad r10, r2, lr, r10\n\t"
        "ldrb r12, [r7], #1\n\t"
        "ldr r12, [r3, r12, lsl #2]\n\t"
        "smlad r11, r1, r12, r11\n\t"
        "ldrb lr, [r7], #1\n\t"
        "ldr lr, [r3, lr, lsl #2]\n\t"
        "smlad r11, r2, lr, r11\n\t"
        "cmp r0, r3\n\t"
        "bne 1b\n\t"
        "b 4f\n\t"
        "3:\n\t"
        "ldrd r1, r2, [r0], #8\n\t"
        "ldrb r12, [r4], #1\n\t"
        "add r12, r3, r12, lsl #3\n\t"
        "ldrd r12, lr, [r12]\n\t"
        "smlad r8, r1, r12, r8\n\t"
        "smlad r8, r2, lr, r8\n\t"
        "ldrb r12, [r5], #1\n\t"
        "add r12, r3, r12, lsl #3\n\t"
        "ldrd r12, lr, [r12]\n\t"
        "smlad r9, r1, r12, r9\n\t"
        "smlad r9, r2, lr, r9\n\t"
        "ldrb r12, [r6], #1\n\t"
        "add r12, r3, r12, lsl #3\n\t"
        "ldrd r12, lr, [r12]\n\t"
        "smlad r10, r1, r12, r10\n\t"
        "smlad r10, r2, lr, r10\n\t"
        "ldrb r12, [r7], #1\n\t"
        "add r12, r3, r12, lsl #3\n\t"
        "ldrd r12, lr, [r12]\n\t"
        "smlad r11, r1, r12, r11\n\t"
        "smlad r11, r2, lr, r11\n\t"
        "cmp r0, r3\n\t"
        "bne 3b\n\t"
        "4:\n\t"
        "ldr r12, [sp, #36]\n\t"
        "stm r12, {r8-r11}\n\t"
        "pop {r4-r11, pc}\n\t");
}
#undef TM_ARG
#else
static void lookup4(const int32_t *x, const uint8_t *idx, int32_t stride, const int32_t *pairs, int32_t *acc,
                    int32_t bits)
{
    int32_t j;
    for (; x != pairs; x += 2, idx += bits == 4 ? 2 : 1) {
        for (j = 0; j < 4; ++j) {
            const uint8_t *b = idx + j * stride;
            if (bits == 4) {
                acc[j] = TM_SMLAD(x[1], pairs[b[1]], TM_SMLAD(x[0], pairs[b[0]], acc[j]));
            } else {
                acc[j] = TM_SMLAD(x[1], pairs[2 * b[0] + 1], TM_SMLAD(x[0], pairs[2 * b[0]], acc[j]));
            }
        }
    }
}
#endif

/* One channel of 2-bit indices with its own table (per-channel tables): per index byte two
   nibble lookups and two SMLAD against the widened row x..x_end. */
static int32_t dot_nibbles(const int32_t *x, const int32_t *x_end, const uint8_t *idx, const int32_t *q)
{
    int32_t acc = 0;
    for (; x != x_end; x += 2) {
        const uint32_t b = *idx++;
        acc = TM_SMLAD(x[1], q[b >> 4], TM_SMLAD(x[0], q[b & 15u], acc));
    }
    return acc;
}

/* Os: the once-per-invocation setup and the per-channel requantization (tm_palette.c's .text bound) */
TM_SIZE static void fully_connected_lookup(const tm_fully_connected_params_t *p,
                                                                   const tm_palette_t *palette, const int8_t *input,
                                                                   int8_t *output, int32_t *scratch)
{
    const int32_t depth = p->input_depth, bits = palette->bits, channels = p->output_depth;
    const int32_t stride = depth * bits / 8, quads = (depth + 3) / 4;
    const int8_t *t = palette->table;
    const int32_t *rec = palette->tail;
    int32_t *const pairs = scratch + 2 * quads;
    int16_t *const x16 = (int16_t *)(void *)scratch;
    int32_t q[16];
    int32_t i, oc;
    for (i = 0; i < 4 * quads; ++i) {
        x16[i] = (int16_t)(i < depth ? input[i] : 0);
    }
    /* 4 bits: pairs[16 h + l] = (t[l], t[h]). 2 bits, one table: pairs[2 (16 h + l)] = q[l],
       pairs[2 (16 h + l) + 1] = q[h]. */
    if (bits == 4) {
        int32_t *w = pairs;
        for (i = 0; i < 16; ++i) {
            const int32_t high = t[i];
            for (oc = 0; oc < 16; ++oc) {
                *w++ = pair16(t[oc], high);
            }
        }
    } else if (palette->tables == 1) {
        int32_t *w = pairs;
        pairs_2bit(t, q, 4); /* q[n] = (t[n & 3], t[n >> 2]) */
        for (i = 0; i < 16; ++i) {
            for (oc = 0; oc < 16; ++oc, w += 2) {
                w[0] = q[oc];
                w[1] = q[i];
            }
        }
    }
    /* one table: four channels at a time, the last channels of a count that is not a multiple
       of four one at a time (the kernel's four rows all that channel's, stride 0); 2 bits with
       a table per channel: a channel at a time, its 16 nibble pairs first */
    for (oc = 0; oc < channels; oc += i) {
        int32_t acc[4] = {0, 0, 0, 0};
        const uint8_t *idx = palette->indices + (size_t)oc * stride;
        if (palette->tables > 1) {
            i = 1;
            pairs_2bit(t + 4 * oc, q, 4);
            acc[0] = dot_nibbles(scratch, pairs, idx, q);
        } else {
            i = channels - oc < 4 ? 1 : 4;
            lookup4(scratch, idx, i == 4 ? stride : 0, pairs, acc, bits);
        }
        for (int32_t j = 0; j < i; ++j, rec += 4) {
            output[oc + j] = (int8_t)tm_clamp(tm_requant_rec(acc[j] + rec[0], rec[1], rec[2], rec[3]), p->act_min,
                                             p->act_max);
        }
    }
}
#endif /* TM_DSP_AVAILABLE */

TM_SIZE void tm_palette_fully_connected_s8(const tm_fully_connected_params_t *p,
                                                                    const tm_palette_t *palette,
                                                                    const int8_t *input, int8_t *output,
                                                                    int8_t *scratch)
{
    tm_fully_connected_params_t block = *p;
    int32_t first;
#if TM_DSP_AVAILABLE
    if (palette->fc_lookup && p->filter16 != NULL) {
        fully_connected_lookup(p, palette, input, output, (int32_t *)(void *)scratch);
        return;
    }
#endif
    for (first = 0; first < p->output_depth; first += palette->chunk) {
        const int32_t channels = p->output_depth - first < palette->chunk ? p->output_depth - first : palette->chunk;
        tm_palette_decode_channels(palette, first, channels, scratch);
        block.output_depth = channels;
        block.filter = scratch;
        block.filter16 = p->filter16 != NULL ? (const int32_t *)(const void *)scratch : NULL;
        block.bias = p->bias != NULL ? p->bias + first : NULL;
        block.bias_folded = p->bias_folded != NULL ? p->bias_folded + first : NULL;
        if (p->per_channel) {
            block.multiplier = p->multiplier + first;
            block.shift = p->shift + first;
            block.requant = p->requant != NULL ? p->requant + first : NULL;
        }
        tm_fully_connected_s8(&block, input, output + first);
    }
}
