/*
 * mini_fuzzer.c - a small coverage-guided fuzzer for gcc, used when clang's
 * libFuzzer is not installed. The target is compiled with
 * -fsanitize-coverage=trace-pc, so every basic block calls
 * __sanitizer_cov_trace_pc; consecutive block addresses are hashed into an
 * edge bitmap (AFL style: edge = hash(prev) ^ hash(pc)). An input that lights
 * a new edge joins the corpus; inputs are mutated from the corpus (bit flips,
 * byte sets, inserts, deletes, splices, delimiters, valid-frame inserts).
 * Sanitizers (ASan, UBSan) turn memory errors into aborts.
 *
 *   mini_fuzzer [-seconds S] [-runs N] [-seed X]
 *
 * Stops at whichever budget is reached first (-runs 0: time only). The last
 * line says "N runs, E edges, corpus C, no crash"; a crash aborts instead.
 *
 * This file itself is compiled without coverage instrumentation.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tm_frame.h"
#include "tm_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void __sanitizer_cov_trace_pc(void);

#define MAP_BITS 16
#define MAP_SIZE (1u << MAP_BITS)
#define MAX_INPUT 12000u
#define MAX_CORPUS 4096u

static uint8_t edge_map[MAP_SIZE];
static uint8_t seen_map[MAP_SIZE];
static uintptr_t prev_block;
/* The edges lit by the current run, so run_one clears and scans only those
 * instead of the whole 64 KiB map twice per execution (most of an
 * execution's time otherwise: an input lights a few hundred edges). */
static uint32_t lit_edges[MAP_SIZE];
static size_t lit_count;

void __sanitizer_cov_trace_pc(void)
{
    uintptr_t pc = (uintptr_t)__builtin_return_address(0);
    uintptr_t block = (pc >> 1) * 0x9E3779B97F4A7C15ull;
    uint32_t edge = (uint32_t)((block ^ prev_block) >> (8 * sizeof(uintptr_t) - MAP_BITS));
    if (!edge_map[edge]) {
        edge_map[edge] = 1;
        lit_edges[lit_count++] = edge;
    }
    prev_block = block >> 1;
}

typedef struct {
    uint8_t *data;
    size_t size;
} input_t;

static input_t corpus[MAX_CORPUS];
static size_t corpus_count;
static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return n ? (uint32_t)(rng_state % n) : 0u;
}

/* Runs one input; returns how many new edges it lit. */
static size_t run_one(const uint8_t *data, size_t size)
{
    size_t i, fresh = 0;
    prev_block = 0;
    lit_count = 0;
    LLVMFuzzerTestOneInput(data, size);
    for (i = 0; i < lit_count; i++) {
        uint32_t edge = lit_edges[i];
        edge_map[edge] = 0;
        if (!seen_map[edge]) {
            seen_map[edge] = 1;
            fresh++;
        }
    }
    return fresh;
}

static void add_to_corpus(const uint8_t *data, size_t size)
{
    input_t *slot;
    if (corpus_count < MAX_CORPUS) {
        slot = &corpus[corpus_count++];
    } else {
        slot = &corpus[rnd(MAX_CORPUS)];
        free(slot->data);
    }
    slot->data = malloc(size ? size : 1u);
    if (slot->data == NULL) {
        abort();
    }
    memcpy(slot->data, data, size);
    slot->size = size;
}

static uint8_t frame_buf[MAX_INPUT];
static size_t frame_len;

static void collect(const uint8_t *buf, size_t len)
{
    if (frame_len + len <= sizeof frame_buf) {
        memcpy(frame_buf + frame_len, buf, len);
        frame_len += len;
    }
}

/* One valid frame of a random request type, appended by mutations and seeds. */
static size_t valid_frame(uint8_t *out, size_t cap)
{
    static const uint8_t types[] = {TM_MSG_HELLO, TM_MSG_INFER,       TM_MSG_PROFILE, TM_MSG_RESET,
                                    TM_MSG_LOAD,  TM_MSG_INFER_LOADED, 0x33};
    uint8_t payload[6 + 3 * 64];
    size_t payload_len = 0, i;
    tm_frame_writer_t writer;
    uint8_t type = types[rnd(sizeof types)];
    if (type == TM_MSG_HELLO) {
        payload[0] = TM_PROTOCOL_VERSION;
        payload[1] = 0;
        payload_len = 2;
    } else if (type == TM_MSG_INFER) {
        uint32_t count = rnd(4);
        memset(payload, 0, 6);
        payload[0] = (uint8_t)rnd(256);
        payload[4] = (uint8_t)count;
        for (i = 0; i < count * 64u; i++) {
            payload[6 + i] = (uint8_t)rnd(256);
        }
        payload_len = 6 + count * 64u - (rnd(8) == 0 ? 1u : 0u);
    } else if (type == TM_MSG_LOAD) {
        /* A few load ids and offsets around the fixture's 64-byte input, so
         * in-order, gapped, repeated and out-of-range chunks all occur. */
        uint32_t offset = rnd(72), len = rnd(80);
        memset(payload, 0, 8);
        payload[0] = (uint8_t)rnd(3);
        payload[4] = (uint8_t)offset;
        for (i = 0; i < len; i++) {
            payload[8 + i] = (uint8_t)rnd(256);
        }
        payload_len = 8 + len;
    } else if (type == TM_MSG_INFER_LOADED) {
        memset(payload, 0, 8);
        payload[0] = (uint8_t)rnd(3);
        payload[4] = (uint8_t)rnd(256);
        payload_len = 8u - (rnd(8) == 0 ? 1u : 0u);
    }
    frame_len = 0;
    tm_frame_begin(&writer, collect, (uint8_t)(rnd(16) == 0 ? 2 : TM_PROTOCOL_VERSION), type,
                   (uint16_t)rnd(65536));
    tm_frame_put(&writer, payload, payload_len);
    tm_frame_end(&writer);
    if (frame_len > cap) {
        return 0;
    }
    memcpy(out, frame_buf, frame_len);
    return frame_len;
}

static size_t mutate(uint8_t *buf, size_t size)
{
    uint32_t rounds = 1 + rnd(6), r;
    for (r = 0; r < rounds; r++) {
        switch (rnd(8)) {
        case 0:
            if (size) buf[rnd((uint32_t)size)] ^= (uint8_t)(1u << rnd(8));
            break;
        case 1:
            if (size) buf[rnd((uint32_t)size)] = (uint8_t)rnd(256);
            break;
        case 2:
            if (size) buf[rnd((uint32_t)size)] = 0u; /* a delimiter in the middle */
            break;
        case 3: { /* delete a range */
            size_t at, n;
            if (size < 2) break;
            at = rnd((uint32_t)size);
            n = 1 + rnd((uint32_t)(size - at));
            memmove(buf + at, buf + at + n, size - at - n);
            size -= n;
            break;
        }
        case 4: { /* duplicate a range */
            size_t at, n;
            if (size < 1) break;
            at = rnd((uint32_t)size);
            n = 1 + rnd((uint32_t)(size - at));
            if (size + n > MAX_INPUT) break;
            memmove(buf + at + n, buf + at, size - at);
            size += n;
            break;
        }
        case 5: { /* splice in a piece of another corpus entry */
            const input_t *other = &corpus[rnd((uint32_t)corpus_count)];
            size_t n = other->size ? 1 + rnd((uint32_t)other->size) : 0;
            size_t at = rnd((uint32_t)size + 1);
            if (size + n > MAX_INPUT) break;
            memmove(buf + at + n, buf + at, size - at);
            memcpy(buf + at, other->data, n);
            size += n;
            break;
        }
        case 6: { /* insert a valid frame */
            uint8_t frame[600];
            size_t n = valid_frame(frame, sizeof frame);
            size_t at = rnd((uint32_t)size + 1);
            if (size + n > MAX_INPUT) break;
            memmove(buf + at + n, buf + at, size - at);
            memcpy(buf + at, frame, n);
            size += n;
            break;
        }
        default: /* a long run without delimiter (overflow path) */
            if (size + 300 <= MAX_INPUT && rnd(4) == 0) {
                memset(buf + size, 0x41, 300);
                size += 300;
            } else if (size) {
                buf[0] = (uint8_t)rnd(256);
            }
            break;
        }
    }
    return size;
}

int main(int argc, char **argv)
{
    double seconds = 10.0;
    unsigned long runs = 0, max_runs = 0, i;
    static uint8_t buf[MAX_INPUT];
    size_t edges = 0;
    struct timespec start, now;
    int a;
    for (a = 1; a + 1 < argc; a += 2) {
        if (strcmp(argv[a], "-seconds") == 0) {
            seconds = atof(argv[a + 1]);
        } else if (strcmp(argv[a], "-runs") == 0) {
            max_runs = strtoul(argv[a + 1], NULL, 10);
        } else if (strcmp(argv[a], "-seed") == 0) {
            rng_state ^= strtoull(argv[a + 1], NULL, 10) * 0x9E3779B97F4A7C15ull;
        }
    }
    /* Seeds: empty input, and lines of valid frames. */
    edges += run_one(buf, 0);
    add_to_corpus(buf, 0);
    for (i = 0; i < 16; i++) {
        size_t size = 1, k;
        buf[0] = (uint8_t)rnd(256);
        for (k = 0; k < 1 + rnd(4); k++) {
            size += valid_frame(buf + size, MAX_INPUT - size);
        }
        edges += run_one(buf, size);
        add_to_corpus(buf, size);
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        const input_t *parent = &corpus[rnd((uint32_t)corpus_count)];
        size_t size, fresh;
        memcpy(buf, parent->data, parent->size);
        size = mutate(buf, parent->size);
        fresh = run_one(buf, size);
        runs++;
        if (fresh) {
            edges += fresh;
            add_to_corpus(buf, size);
        }
        if ((runs & 1023u) == 0u || (max_runs && runs >= max_runs)) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if ((max_runs && runs >= max_runs) ||
                (double)(now.tv_sec - start.tv_sec) + 1e-9 * (double)(now.tv_nsec - start.tv_nsec) >= seconds) {
                break;
            }
        }
    }
    printf("mini_fuzzer: %lu runs, %zu edges, corpus %zu, no crash\n", runs, edges, corpus_count);
    return 0;
}
