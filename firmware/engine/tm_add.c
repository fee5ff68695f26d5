/* tm_add.c - ADD int8; the arithmetic is in tm_add.h. */
#include "tm_add.h"
#include "tm_dsp.h"

/* MBQM, one copy for the reference path's three uses (code size: the tables run otherwise). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int32_t add_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    return tm_multiply_by_quantized_multiplier(x, multiplier, shift);
}

static int32_t tm_add_rescale(int32_t x, int32_t offset, int32_t left_shift, int32_t multiplier, int32_t shift)
{
    return add_mbqm(tm_shift_left(x + offset, left_shift), multiplier, shift);
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
                        add_mbqm(sum, p->output_multiplier, p->output_shift) +
                        p->output_offset;
                    *output++ = (int8_t)tm_clamp(out, p->activation_min, p->activation_max);
                }
            }
        }
    }
}

#if !TM_DSP_AVAILABLE
/* n contiguous elements of both inputs (the same-shape ADD of a residual block). */
static void add_table_contiguous(const int32_t *t1, const int32_t *t2, const tm_requant_t *q, int32_t lo,
                                 int32_t hi, const int8_t *a, const int8_t *b, int8_t *out, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = tm_requant_s8(t1[a[i]] + t2[b[i]], q, lo, hi);
    }
}
#endif

/* n elements, input k stepping sk elements (0: broadcast, 1: contiguous). */
static void add_table_strided(const int32_t *t1, const int32_t *t2, const tm_requant_t *q, int32_t lo, int32_t hi,
                              const int8_t *a, int32_t sa, const int8_t *b, int32_t sb, int8_t *out, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i, a += sa, b += sb) {
        out[i] = tm_requant_s8(t1[*a] + t2[*b], q, lo, hi);
    }
}

#if TM_DSP_AVAILABLE
/*
 * The same-shape table path on a core with the DSP extension (tm_add.h): four elements of each
 * input per word, flipped to unsigned table indices a + 128 with one EOR (the tables start at
 * a = -128), each byte picked by UXTB/UBFX/LSR into an LDR's scaled index, and the output record
 * applied as tm_requant_rec (tm_dsp.h) with multiplier2 = 2M mod 2^32, round = 2 round_hi and
 * e = shift + 1 (M != 0: the caller checks; |a' + b'| < 2^29 and |round| <= 2^30 + 2^22 keep
 * acc + round inside int32). About 12 instructions an element instead of 22.
 */
static inline int32_t add_requant_dsp(int32_t acc, int32_t multiplier2, int32_t round, int32_t e)
{
    const int32_t ra = (int32_t)((uint32_t)acc + (uint32_t)round);
    const int32_t v = (int32_t)((uint32_t)TM_SMMLAR(acc, multiplier2, ra) + (uint32_t)(acc >> 31));
    return TM_SSAT8(v >> e);
}

static TM_HOT void add_table_contiguous_dsp(const int32_t *t1, const int32_t *t2, const tm_requant_t *q,
                                            int32_t lo, int32_t hi, const int8_t *a, const int8_t *b,
                                            int8_t *out, int32_t n)
{
    const int32_t multiplier2 = (int32_t)((uint32_t)q->multiplier << 1);
    const int32_t round = (int32_t)((uint32_t)q->round_hi << 1);
    const int32_t e = q->shift + 1;
    const int clamp = lo != TM_INT8_MIN || hi != TM_INT8_MAX;
    int32_t i = 0;
    if (!clamp) {
        for (; i + 4 <= n; i += 4) {
            const uint32_t ua = (uint32_t)tm_read_s8x4(a + i) ^ 0x80808080u;
            const uint32_t ub = (uint32_t)tm_read_s8x4(b + i) ^ 0x80808080u;
            out[i] = (int8_t)add_requant_dsp(t1[ua & 0xffu] + t2[ub & 0xffu], multiplier2, round, e);
            out[i + 1] = (int8_t)add_requant_dsp(t1[(ua >> 8) & 0xffu] + t2[(ub >> 8) & 0xffu], multiplier2, round, e);
            out[i + 2] =
                (int8_t)add_requant_dsp(t1[(ua >> 16) & 0xffu] + t2[(ub >> 16) & 0xffu], multiplier2, round, e);
            out[i + 3] = (int8_t)add_requant_dsp(t1[ua >> 24] + t2[ub >> 24], multiplier2, round, e);
        }
    }
    for (; i < n; ++i) {
        const int32_t v = add_requant_dsp(t1[a[i] + 128] + t2[b[i] + 128], multiplier2, round, e);
        out[i] = (int8_t)tm_clamp(v, lo, hi);
    }
}
#endif

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
#if TM_DSP_AVAILABLE
                if (sa == 1 && sb == 1 && p->requant->multiplier != 0) {
                    add_table_contiguous_dsp(p->input1_table, p->input2_table, p->requant, p->activation_min,
                                             p->activation_max, a, b, output, n);
                    output += n;
                    continue;
                }
#else
                if (sa == 1 && sb == 1) {
                    add_table_contiguous(t1, t2, p->requant, p->activation_min, p->activation_max, a, b, output, n);
                    output += n;
                    continue;
                }
#endif
                /* broadcast rows (and, with the DSP extension, a multiplier of 0: the zero point) */
                add_table_strided(t1, t2, p->requant, p->activation_min, p->activation_max, a, sa, b, sb, output, n);
                output += n;
            }
        }
    }
}
