/* tm_palette.c - decoding of palettized weights; see tm_palette.h for the layouts. */
#include "tm_palette.h"

#include <stddef.h>
#include <string.h>

#include "tm_dsp.h"

static inline int32_t index_at(const tm_palette_t *p, int32_t i)
{
    const int32_t bit = i * p->bits;
    return (p->indices[bit >> 3] >> (bit & 7)) & ((1 << p->bits) - 1);
}

/* The table of weight i's group (the layer's, or its output channel's). */
static inline const int8_t *table_of(const tm_palette_t *p, int32_t i, int32_t per_channel)
{
    int32_t channel;
    if (p->tables == 1) {
        return p->table;
    }
    channel = p->channel_minor ? i % p->channels : i / per_channel;
    return p->table + ((size_t)channel << p->bits);
}

/* int8 filter: one table per layer streams whole index bytes; per-channel tables
   switch table at each channel (channel-major) or each weight (channel-minor). */
static void decode_s8(const tm_palette_t *p, int8_t *dst)
{
    const int32_t per_channel = p->count / p->channels;
    int32_t i;
    if (p->tables == 1 && p->bits == 4) {
        const int8_t *t = p->table;
        for (i = 0; i + 1 < p->count; i += 2) {
            const uint32_t b = p->indices[i >> 1];
            dst[i] = t[b & 15u];
            dst[i + 1] = t[b >> 4];
        }
        if (i < p->count) {
            dst[i] = t[p->indices[i >> 1] & 15u];
        }
        return;
    }
    if (!p->channel_minor) {
        int32_t c;
        for (c = 0, i = 0; c < p->channels; ++c) {
            const int8_t *t = table_of(p, i, per_channel);
            const int32_t end = i + per_channel;
            for (; i < end; ++i) {
                dst[i] = t[index_at(p, i)];
            }
        }
        return;
    }
    for (i = 0; i < p->count; ++i) {
        dst[i] = table_of(p, i, per_channel)[index_at(p, i)];
    }
}

#if TM_DSP_AVAILABLE
/* Position of tap t of a filter row inside its group of four: (0, 2, 1, 3) of SXTB16 / ror 8. */
static const uint8_t tm_palette_group_order[4] = {0, 2, 1, 3};

static void decode_filter16(const tm_palette_t *p, int32_t *dst)
{
    const int32_t rw = (p->width + 3) & ~3;
    const int32_t per_channel = p->rows * p->width;
    int32_t c, row, t, i = 0;
    for (c = 0; c < p->channels; ++c) {
        const int8_t *table = table_of(p, i, per_channel);
        int16_t *w16 = (int16_t *)(void *)dst;
        for (row = 0; row < p->rows; ++row, w16 += rw) {
            if (rw != p->width) {
                memset(w16 + (p->width & ~3), 0, 4 * sizeof(int16_t));
            }
            for (t = 0; t + 3 < p->width; t += 4, i += 4) {
                w16[t] = table[index_at(p, i)];
                w16[t + 2] = table[index_at(p, i + 1)];
                w16[t + 1] = table[index_at(p, i + 2)];
                w16[t + 3] = table[index_at(p, i + 3)];
            }
            for (; t < p->width; ++t, ++i) {
                w16[(t & ~3) + tm_palette_group_order[t & 3]] = table[index_at(p, i)];
            }
        }
        dst += p->rows * rw / 2;
        memcpy(dst, p->tail + 4 * (size_t)c, 4 * sizeof(int32_t));
        dst += 4;
    }
}

static inline uint32_t pair16(int32_t lo, int32_t hi)
{
    return (uint32_t)(uint16_t)lo | ((uint32_t)(uint16_t)hi << 16);
}

static void decode_dw3(const tm_palette_t *p, int32_t *dst)
{
    int32_t c, q, k;
    for (c = 0; c < p->channels; ++c, dst += 18) {
        int32_t tap[3][3]; /* [ky][kx] */
        int32_t seq[9];
        for (k = 0; k < 9; ++k) {
            const int32_t i = k * p->channels + c;
            tap[k / 3][k % 3] = table_of(p, i, 0)[index_at(p, i)];
        }
        for (q = 0; q < 3; ++q) {
            int32_t kx, s;
            for (kx = 0; kx < 3; ++kx) {
                for (s = 0; s < 3; ++s) {
                    seq[3 * kx + s] = tap[(s - q + 3) % 3][kx];
                }
            }
            for (k = 0; k < 4; ++k) {
                dst[5 * q + k] = (int32_t)pair16(seq[2 * k], seq[2 * k + 1]);
            }
            dst[5 * q + 4] = (int32_t)(((uint32_t)(uint16_t)seq[8] << 16) | (uint32_t)p->tail[4 * (size_t)c]);
        }
        dst[15] = p->tail[4 * (size_t)c + 1];
        dst[16] = p->tail[4 * (size_t)c + 2];
        dst[17] = p->tail[4 * (size_t)c + 3];
    }
}
#endif /* TM_DSP_AVAILABLE */

void tm_palette_decode(const tm_palette_t *p, void *dst)
{
#if TM_DSP_AVAILABLE
    if (p->layout == TM_PALETTE_FILTER16) {
        decode_filter16(p, (int32_t *)dst);
        return;
    }
    if (p->layout == TM_PALETTE_DW3) {
        decode_dw3(p, (int32_t *)dst);
        return;
    }
#endif
    decode_s8(p, (int8_t *)dst);
}
