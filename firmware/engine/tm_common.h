/*
 * tm_common.h - fixed-point helpers shared by the tinyml engine kernels.
 *
 * Everything here reproduces TFLite's integer arithmetic bit for bit
 * (tensorflow/lite/kernels/internal/common.h and gemmlowp's fixedpoint.h),
 * so a kernel built on it gives the same bytes as TFLite-Micro.
 *
 * Conventions of every kernel in firmware/engine/:
 *   - tensors are int8, row-major, NHWC for 4-D tensors; shapes of lower
 *     rank are padded with leading 1s to 4-D by the compiler;
 *   - a real value r is stored as q with r = scale * (q - zero_point);
 *   - a multiplier/shift pair (M, s) stands for the real factor
 *     M * 2^(s - 31), M in [2^30, 2^31) (or 0), s > 0 a left shift (TFLite's
 *     convention); tinyml/compiler/requant.py computes the pairs;
 *   - no dynamic memory, no floating point except in the float I/O kernels
 *     (QUANTIZE f32->s8, DEQUANTIZE s8->f32), as in TFLite.
 *
 * Rounding variant.  TFLite has two builds of MultiplyByQuantizedMultiplier:
 *   double rounding (default):
 *     MBQM(x, M, s) = RDBP(SRDHM(x * 2^max(s,0), M), max(-s,0))
 *   single rounding (-DTFLITE_SINGLE_ROUNDING):
 *     MBQM(x, M, s) = (x * M + 2^(30-s)) >> (31 - s)      (64-bit)
 * The pip `tflite-micro` package uses DOUBLE rounding: the engine's tests
 * (tests/engine/test_quantize.py::test_rounding_variant) compare both against
 * it on inputs where the two differ; only double rounding matches.  Define
 * TM_SINGLE_ROUNDING to build the engine for a TFLM built with single rounding.
 *
 *   SRDHM(a, b) = saturate((a * b + nudge) / 2^31)   (64-bit, / truncates,
 *                 nudge = 2^30 if a*b >= 0 else 1 - 2^30; SRDHM(MIN, MIN) = MAX)
 *   RDBP(x, e)  = (x >> e) + (remainder > threshold)  round half away from 0
 *                 remainder = x & (2^e - 1),
 *                 threshold = (2^e - 1) / 2 + (x < 0)
 *
 * Right shifts of negative values are arithmetic (gcc, clang, armcc: C99
 * leaves it implementation-defined).
 */
#ifndef TM_COMMON_H
#define TM_COMMON_H

#include <stdint.h>
#include <stddef.h>

/*
 * TM_HOT marks the multiply-accumulate loops. gcc's pre-register-allocation
 * scheduler (-fschedule-insns, on at -O2 for Arm) hoists all loads and SXTB16s of
 * an unrolled tap/patch block ahead of the SMLADs, which needs more registers
 * than the Cortex-M has and spills accumulators to the stack; without it, each
 * tap's operands die right after its multiply-accumulates.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__arm__)
#define TM_HOT __attribute__((optimize("no-schedule-insns")))
#else
#define TM_HOT
#endif

/* TM_SIZE marks once-per-layer code built for size whatever the file's -O level (gcc's
 * function attribute; clang has none and rejects it, so there it is plain -O code). */
#if defined(__GNUC__) && !defined(__clang__)
#define TM_SIZE __attribute__((optimize("Os")))
#else
#define TM_SIZE
#endif

#define TM_INT8_MIN (-128)
#define TM_INT8_MAX 127

static inline int32_t tm_min(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int32_t tm_max(int32_t a, int32_t b) { return a > b ? a : b; }

static inline int32_t tm_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

static inline int8_t tm_clamp_s8(int32_t x)
{
    return (int8_t)tm_clamp(x, TM_INT8_MIN, TM_INT8_MAX);
}

/* x * 2^e without undefined behaviour on negative x (wraps like TFLite's
   x * (1 << e) does on every target we build for). */
static inline int32_t tm_shift_left(int32_t x, int32_t e)
{
    return (int32_t)((uint32_t)x << e);
}

/* gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), saturated.
 * The nudged, truncating division equals a floor shift: for ab >= 0,
 * (ab + 2^30) / 2^31 truncates as it floors; for ab < 0,
 * trunc((ab + 1 - 2^30) / 2^31) = ceil(...) = floor((ab + 2^30) / 2^31).
 * So SRDHM(a, b) = (ab + 2^30) >> 31 (one SMULL, no 64-bit division). */
static inline int32_t tm_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + (INT64_C(1) << 30)) >> 31);
}

/* gemmlowp RoundingDivideByPOT: x / 2^e rounded half away from zero, 0 <= e <= 31. */
static inline int32_t tm_rdbp(int32_t x, int32_t e)
{
    const int32_t mask = (int32_t)((UINT32_C(1) << e) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT for a positive exponent e:
   x * 2^e, saturated to int32. */
static inline int32_t tm_sat_shift_left(int32_t x, int32_t e)
{
    const int32_t threshold = (int32_t)((UINT32_C(1) << (31 - e)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return tm_shift_left(x, e);
}

/* TFLite MultiplyByQuantizedMultiplier: round(x * M * 2^(shift - 31)). */
static inline int32_t tm_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift)
{
#if defined(TM_SINGLE_ROUNDING)
    const int32_t total_shift = 31 - shift;
    const int64_t round = INT64_C(1) << (total_shift - 1);
    return (int32_t)(((int64_t)x * multiplier + round) >> total_shift);
#else
    const int32_t left_shift = shift > 0 ? shift : 0;
    const int32_t right_shift = shift > 0 ? 0 : -shift;
    return tm_rdbp(tm_srdhm(tm_shift_left(x, left_shift), multiplier), right_shift);
#endif
}

/*
 * Requantization folded at compile time (tinyml/compiler/requant.py requant_records).
 * For a multiplier M = 0 or M in [2^30, 2^31) and a right shift e = -shift with
 * 2 <= e <= 23 (every conv/FC layer TFLite converts in practice), double-rounding
 *   MBQM(acc, M, -e) + zp = RDBP(SRDHM(acc, M), e) + zp
 * is one 64-bit multiply-accumulate and a shift of its high word:
 *   x = floor((acc*M + 2^30) / 2^31)                         (SRDHM, no saturation: M > 0)
 *   RDBP(x, e) = floor((x + 2^(e-1) - neg) / 2^e),  neg = (x < 0)
 *   =>  RDBP(x, e) + zp = floor((acc*M + 2^30 + 2^(30+e) - neg*2^31 + zp*2^(31+e)) / 2^(31+e))
 * (nested floors of integer divisions compose). neg = (acc*M < -2^30); using
 * neg = (acc < 0) instead changes nothing: the two differ only for acc = -1 with
 * M <= 2^30, where no multiple of 2^(31+e) lies between the two numerators (e >= 1).
 * As 32-bit halves, with s = acc >> 31 (0 or -1):
 *   low  = 2^30 | (acc & 2^31)                 (2^30 - neg*2^31 mod 2^32)
 *   high = round_hi + s,  round_hi = 2^(e-2) + zp * 2^(e-1)   (compile time)
 *   out  = (int32)((high:low + acc * M) >> 32) >> (e - 1)     (SMLAL, ASR)
 * |high| stays below 2^31 for e <= 23. tests/engine/test_requant.py checks it
 * against tm_multiply_by_quantized_multiplier.
 */
typedef struct {
    int32_t multiplier; /* M */
    int32_t round_hi;   /* 2^(e-2) + output_zero_point * 2^(e-1) */
    int32_t shift;      /* e - 1 */
} tm_requant_t;

/*
 * armv6-m (Cortex-M0/M0+) has no 32x32->64 multiply: a 64-bit product is a library call
 * (__aeabi_lmul). There (or with TM_REQUANT_MUL16, for tests) the high word of
 * high:low + acc * M is built from four 16x16 products, M >= 0:
 *   acc = ah * 2^16 + al (al unsigned), M = mh * 2^16 + ml
 *   acc * M = ah*mh * 2^32 + (al*mh + ah*ml) * 2^16 + al*ml
 * with the carries out of the low word added by hand (each product fits 32 bits:
 * |ah|, mh < 2^16; al, ml < 2^16).
 */
#if defined(__ARM_ARCH_6M__) || defined(TM_REQUANT_MUL16)
static inline int32_t tm_requant_parts(int32_t acc, int32_t multiplier, int32_t round_hi, int32_t shift)
{
    const uint32_t al = (uint32_t)acc & 0xffffu, ml = (uint32_t)multiplier & 0xffffu;
    const int32_t ah = acc >> 16, mh = (int32_t)((uint32_t)multiplier >> 16);
    const uint32_t ll = al * ml;                       /* < 2^32 */
    const uint32_t lh = al * (uint32_t)mh;             /* < 2^31 */
    const int32_t hl = ah * (int32_t)ml;               /* |.| < 2^31 */
    uint32_t lo = ((uint32_t)acc & 0x80000000u) | 0x40000000u;
    uint32_t hi = (uint32_t)(round_hi + (acc >> 31)) + (uint32_t)(ah * mh);
    uint32_t t;
    t = lo + ll;
    hi += t < lo;
    lo = t;
    t = lo + (lh << 16);
    hi += (t < lo) + (lh >> 16);
    lo = t;
    t = lo + ((uint32_t)hl << 16);
    hi += (uint32_t)(t < lo) + (uint32_t)(hl >> 16);
    return (int32_t)hi >> shift;
}
#else
/* MBQM(acc) + output zero point, per the record above, from its three fields. */
static inline int32_t tm_requant_parts(int32_t acc, int32_t multiplier, int32_t round_hi, int32_t shift)
{
    const uint32_t low = ((uint32_t)acc & 0x80000000u) | 0x40000000u;
    const int32_t high = round_hi + (acc >> 31);
    const int64_t sum = (int64_t)(((uint64_t)(uint32_t)high << 32) | low) + (int64_t)acc * multiplier;
    return (int32_t)(sum >> 32) >> shift;
}
#endif

static inline int32_t tm_requant(int32_t acc, const tm_requant_t *q)
{
    return tm_requant_parts(acc, q->multiplier, q->round_hi, q->shift);
}

/* tm_requant clamped to the fused activation range, as int8. */
static inline int8_t tm_requant_s8(int32_t acc, const tm_requant_t *q, int32_t act_min, int32_t act_max)
{
    int32_t v = tm_requant(acc, q);
    v = v < act_min ? act_min : v;
    v = v > act_max ? act_max : v;
    return (int8_t)v;
}

/* One output channel's requantization: the folded record when the compiler made
   one, else TFLite's MBQM with the multiplier/shift pair plus the zero point. */
static inline int8_t tm_requant_channel_s8(int32_t acc, const tm_requant_t *requant, const int32_t *multiplier,
                                           const int32_t *shift, int32_t c, int32_t output_offset,
                                           int32_t act_min, int32_t act_max)
{
    int32_t v;
    if (requant != NULL) {
        return tm_requant_s8(acc, &requant[c], act_min, act_max);
    }
    v = tm_multiply_by_quantized_multiplier(acc, multiplier[c], shift[c]) + output_offset;
    v = v < act_min ? act_min : v;
    v = v > act_max ? act_max : v;
    return (int8_t)v;
}

#endif /* TM_COMMON_H */
