/*
 * interface_probe.c - exports the engine's interface functions (static inline in the kernels'
 * headers) for tests/engine/test_interface.py, which holds the compiler's figures to them.
 * Built twice: plain (cores without DSP, or any core for the generic data) and -DTM_DSP_EMULATE
 * (the DSP build's choices).
 */
#include "tm_conv_2d.h"
#include "tm_depthwise_conv_2d.h"
#include "tm_fully_connected.h"

int32_t probe_conv_2d_k16_max(void) { return TM_CONV_2D_K16_MAX; }
int32_t probe_conv_2d_k16_max_rows(void) { return TM_CONV_2D_K16_MAX_ROWS; }
int32_t probe_dw3_packed_channel(void) { return TM_DW3_PACKED_CHANNEL; }
int32_t probe_dsp_available(void) { return TM_DSP_AVAILABLE; }

int32_t probe_conv_2d_choose(const tm_conv_2d_params_t *p, int32_t has_scratch)
{
    return (int32_t)tm_conv_2d_choose(p, has_scratch);
}
int32_t probe_conv_2d_has_data(const tm_conv_2d_params_t *p, int32_t has_scratch)
{
    return tm_conv_2d_has_data(p, tm_conv_2d_choose(p, has_scratch));
}
int32_t probe_conv_2d_get_buffer_size(const tm_conv_2d_params_t *p) { return tm_conv_2d_get_buffer_size(p); }
int32_t probe_conv_2d_widened_get_buffer_size(const tm_conv_2d_params_t *p)
{
    return tm_conv_2d_widened_get_buffer_size(p);
}
int32_t probe_conv_2d_im2col_get_buffer_size(const tm_conv_2d_params_t *p)
{
    return tm_conv_2d_im2col_get_buffer_size(p);
}

int32_t probe_depthwise_conv_2d_choose(const tm_depthwise_conv_2d_params_t *p, int32_t has_scratch)
{
    return (int32_t)tm_depthwise_conv_2d_choose(p, has_scratch);
}
int32_t probe_depthwise_conv_2d_has_data(const tm_depthwise_conv_2d_params_t *p, int32_t has_scratch)
{
    return tm_depthwise_conv_2d_has_data(p, tm_depthwise_conv_2d_choose(p, has_scratch));
}
int32_t probe_depthwise_conv_2d_get_buffer_size(const tm_depthwise_conv_2d_params_t *p)
{
    return tm_depthwise_conv_2d_get_buffer_size(p);
}
int32_t probe_depthwise_conv_2d_3x3_get_buffer_size(const tm_depthwise_conv_2d_params_t *p)
{
    return tm_depthwise_conv_2d_3x3_get_buffer_size(p);
}

int32_t probe_fully_connected_choose(const tm_fully_connected_params_t *p)
{
    return (int32_t)tm_fully_connected_choose(p);
}
int32_t probe_fully_connected_has_data(const tm_fully_connected_params_t *p)
{
    return tm_fully_connected_has_data(p, tm_fully_connected_choose(p));
}
