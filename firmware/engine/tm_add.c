/* tm_add.c - ADD int8; the arithmetic is in tm_add.h. */
#include "tm_add.h"

static int32_t tm_add_rescale(int32_t x, int32_t offset, int32_t left_shift, int32_t multiplier, int32_t shift)
{
    return tm_multiply_by_quantized_multiplier(tm_shift_left(x + offset, left_shift), multiplier, shift);
}

/* The innermost row (i0, i1, i2) of an input with its (broadcast) strides. */
static const int8_t *add_row(const int8_t *input, const int32_t *strides, int32_t i0, int32_t i1, int32_t i2)
{
    return input + i0 * strides[0] + i1 * strides[1] + i2 * strides[2];
}

static void add_reference(const tm_add_params_t *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < p->dims[0]; ++i0) {
        for (i1 = 0; i1 < p->dims[1]; ++i1) {
            for (i2 = 0; i2 < p->dims[2]; ++i2) {
                const int8_t *a = add_row(input1, p->input1_strides, i0, i1, i2);
                const int8_t *b = add_row(input2, p->input2_strides, i0, i1, i2);
                for (i3 = 0; i3 < p->dims[3]; ++i3) {
                    const int32_t sum =
                        tm_add_rescale(a[i3 * p->input1_strides[3]], p->input1_offset, p->left_shift,
                                       p->input1_multiplier, p->input1_shift) +
                        tm_add_rescale(b[i3 * p->input2_strides[3]], p->input2_offset, p->left_shift,
                                       p->input2_multiplier, p->input2_shift);
                    const int32_t out =
                        tm_multiply_by_quantized_multiplier(sum, p->output_multiplier, p->output_shift) +
                        p->output_offset;
                    *output++ = (int8_t)tm_clamp(out, p->activation_min, p->activation_max);
                }
            }
        }
    }
}

/* n contiguous elements of both inputs (the same-shape ADD of a residual block). */
static void add_table_contiguous(const int32_t *t1, const int32_t *t2, const tm_requant_t *q, int32_t lo,
                                 int32_t hi, const int8_t *a, const int8_t *b, int8_t *out, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = tm_requant_s8(t1[a[i]] + t2[b[i]], q, lo, hi);
    }
}

/* n elements, input k stepping sk elements (0: broadcast, 1: contiguous). */
static void add_table_strided(const int32_t *t1, const int32_t *t2, const tm_requant_t *q, int32_t lo, int32_t hi,
                              const int8_t *a, int32_t sa, const int8_t *b, int32_t sb, int8_t *out, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i, a += sa, b += sb) {
        out[i] = tm_requant_s8(t1[*a] + t2[*b], q, lo, hi);
    }
}

void tm_add_s8(const tm_add_params_t *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    const int32_t *t1;
    const int32_t *t2;
    const int32_t n = p->dims[3];
    const int32_t sa = p->input1_strides[3], sb = p->input2_strides[3];
    int32_t i0, i1, i2;
#if defined(TM_SINGLE_ROUNDING)
    /* the tables and the record are the double-rounding values (tm_common.h) */
    add_reference(p, input1, input2, output);
    return;
#endif
    if (p->input1_table == NULL || p->input2_table == NULL || p->requant == NULL) {
        add_reference(p, input1, input2, output);
        return;
    }
    t1 = p->input1_table + 128; /* indexed by the signed input */
    t2 = p->input2_table + 128;
    for (i0 = 0; i0 < p->dims[0]; ++i0) {
        for (i1 = 0; i1 < p->dims[1]; ++i1) {
            for (i2 = 0; i2 < p->dims[2]; ++i2) {
                const int8_t *a = add_row(input1, p->input1_strides, i0, i1, i2);
                const int8_t *b = add_row(input2, p->input2_strides, i0, i1, i2);
                if (sa == 1 && sb == 1) {
                    add_table_contiguous(t1, t2, p->requant, p->activation_min, p->activation_max, a, b, output, n);
                } else {
                    add_table_strided(t1, t2, p->requant, p->activation_min, p->activation_max, a, sa, b, sb,
                                      output, n);
                }
                output += n;
            }
        }
    }
}
