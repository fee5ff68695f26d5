/*
 * tm_reshape.h - RESHAPE (also SQUEEZE, EXPAND_DIMS), int8: out = in, `size` bytes.
 *
 * Row-major bytes do not change; the compiler makes the output alias the input
 * when it can and calls this only when the two buffers differ. The buffers may
 * overlap (memmove).
 */
#ifndef TM_RESHAPE_H
#define TM_RESHAPE_H

#include "tm_common.h"

typedef struct {
    int32_t size;
} tm_reshape_params_t;

void tm_reshape_s8(const tm_reshape_params_t *p, const int8_t *input, int8_t *output);

#endif /* TM_RESHAPE_H */
