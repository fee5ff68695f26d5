#include "tm_softmax.h"

#define TM_ACCUMULATION_BITS 12 /* integer bits of the sum of exps (Q12.19) */

/* exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8. */
static int32_t tm_exp_quarter(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668; /* exp(-1/8) */
    const int32_t one_third = 715827883;
    const int32_t x = a + (1 << 28); /* a + 1/8 */
    const int32_t x2 = tm_srdhm(x, x);
    const int32_t x3 = tm_srdhm(x2, x);
    const int32_t x4 = tm_srdhm(x2, x2);
    /* x^4/24 + x^3/6 + x^2/2 = ((x^4/4 + x^3) / 3 + x^2) / 2 */
    const int32_t tail = tm_rdbp(tm_srdhm(tm_rdbp(x4, 2) + x3, one_third) + x2, 1);
    return exp_minus_one_eighth + tm_srdhm(exp_minus_one_eighth, x + tail);
}

/* exp(a) for a <= 0 in Q5.26, result Q0.31. */
static int32_t tm_exp_negative(int32_t a)
{
    /* exp(-2^k) in Q0.31 for k = -2..4 */
    static const int32_t exp_minus_pow2[7] = {1672461947, 1302514674, 790015084, 290630308,
                                               39332535,   720401,     242};
    const int32_t quarter = 1 << 24;
    const int32_t residue = (a & (quarter - 1)) - quarter; /* in [-1/4, 0) */
    const int32_t rest = residue - a;                      /* multiple of 1/4, >= 0 */
    int32_t result = tm_exp_quarter(residue * 32);         /* Q5.26 -> Q0.31 */
    int32_t k;
    for (k = 0; k < 7; ++k) {
        if (rest & (1 << (24 + k))) {
            result = tm_srdhm(result, exp_minus_pow2[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1), Q0.31 in and out (Newton-Raphson, Q2.29 inside). */
static int32_t tm_one_over_one_plus(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = 1515870810 + tm_srdhm(half_denominator, -1010580540); /* 48/17 - 32/17 d */
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t one_minus_dx = (1 << 29) - tm_srdhm(half_denominator, x);
        x += tm_sat_shift_left(tm_srdhm(x, one_minus_dx), 2);
    }
    return tm_sat_shift_left(x, 1);
}

static uint32_t tm_count_leading_zeros(uint32_t x)
{
#if defined(__GNUC__)
    return x == 0 ? 32u : (uint32_t)__builtin_clz(x);
#else
    uint32_t n = 0;
    while (n < 32u && !(x & (UINT32_C(0x80000000) >> n))) {
        ++n;
    }
    return n;
#endif
}

static int32_t tm_softmax_exp(const tm_softmax_params_t *p, int32_t diff)
{
    return tm_exp_negative(tm_multiply_by_quantized_multiplier(diff, p->input_multiplier, p->input_left_shift));
}

void tm_softmax_s8(const tm_softmax_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *in = input + r * p->depth;
        int8_t *out = output + r * p->depth;
        int32_t max_in_row = TM_INT8_MIN;
        int32_t sum = 0;
        uint32_t headroom;
        int32_t bits_over_unit, reciprocal;
        for (c = 0; c < p->depth; ++c) {
            max_in_row = tm_max(max_in_row, in[c]);
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            if (diff >= p->diff_min) {
                sum += tm_rdbp(tm_softmax_exp(p, diff), TM_ACCUMULATION_BITS);
            }
        }
        headroom = tm_count_leading_zeros((uint32_t)sum);
        bits_over_unit = TM_ACCUMULATION_BITS - (int32_t)headroom;
        reciprocal = tm_one_over_one_plus((int32_t)(((uint32_t)sum << headroom) - UINT32_C(0x80000000)));
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t scaled =
                    tm_rdbp(tm_srdhm(reciprocal, tm_softmax_exp(p, diff)), bits_over_unit + 31 - 8);
                out[c] = tm_clamp_s8(scaled + TM_INT8_MIN);
            } else {
                out[c] = TM_INT8_MIN;
            }
        }
    }
}
