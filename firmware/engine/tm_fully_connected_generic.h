/* tm_fully_connected_generic.h - FULLY_CONNECTED, the reference algorithm (tm_fully_connected_generic.c). */
#ifndef TM_FULLY_CONNECTED_GENERIC_H
#define TM_FULLY_CONNECTED_GENERIC_H

#include "tm_fully_connected.h"

void tm_fully_connected_generic_s8(const tm_fully_connected_params_t *p, const int8_t *input, int8_t *output);

#endif /* TM_FULLY_CONNECTED_GENERIC_H */
