/*
 * tm_dsp.h - the Arm DSP-extension operations the convolution-family kernels use,
 * as ACLE intrinsics on cores that have them and as plain C (TM_DSP_EMULATE)
 * on the host, so tests can run the DSP data flow bit for bit.
 */
#ifndef TM_DSP_H
#define TM_DSP_H

#include <stdint.h>
#include <string.h>

#include "tm_common.h"

/*
 * DSP helpers shared by the convolution-family kernels. TM_DSP_AVAILABLE is 1 on
 * cores with the DSP extension (__ARM_FEATURE_DSP: Cortex-M4/M7/M33...) unless
 * TM_FORCE_GENERIC is defined; TM_DSP_EMULATE gives plain-C equivalents so a
 * host build can check the DSP path's data flow bit for bit.
 *   SXTB16(x)      = { (int16)(int8)x[7:0], (int16)(int8)x[23:16] }
 *   SXTB16_ROR8(x) = { (int16)(int8)x[15:8], (int16)(int8)x[31:24] }
 *   SMLAD(a, b, c) = c + a.lo * b.lo + a.hi * b.hi   (wrapping int32)
 *   SMLABB(a, b, c) = c + a.lo * b.lo,  SMLATT(a, b, c) = c + a.hi * b.hi
 *   SADD16(a, b)   = { a.lo + b.lo, a.hi + b.hi }  (each wrapping int16)
 *   SXTAB16(a, x)  = SADD16(a, SXTB16(x)),  SXTAB16_ROR8(a, x) = SADD16(a, SXTB16_ROR8(x))
 *   SSAT8(x)       = x clamped to [-128, 127]
 *   SMMLAR(a, b, c) = bits 63..32 of (c * 2^32 + a * b + 2^31)  (wrapping 64-bit)
 */
#if !defined(TM_FORCE_GENERIC) && defined(__ARM_FEATURE_DSP)
#define TM_DSP_AVAILABLE 1
#include <arm_acle.h>
#define TM_SXTB16(x) ((int32_t)__sxtb16(x))
#define TM_SMLAD(a, b, c) ((int32_t)__smlad((a), (b), (c)))
#define TM_SMLABB(a, b, c) ((int32_t)__smlabb((a), (b), (c)))
#define TM_SMLATT(a, b, c) ((int32_t)__smlatt((a), (b), (c)))
#define TM_SADD16(a, b) ((int32_t)__sadd16((a), (b)))
#define TM_SSAT8(x) ((int32_t)__ssat((x), 8))
#define TM_SXTAB16(a, x) ((int32_t)__sxtab16((a), (x)))
static inline int32_t tm_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
#define TM_SXTB16_ROR8(x) tm_sxtb16_ror8(x)
static inline int32_t tm_sxtab16_ror8(int32_t a, int32_t x)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}
#define TM_SXTAB16_ROR8(a, x) tm_sxtab16_ror8((a), (x))
static inline int32_t tm_smmlar(int32_t a, int32_t b, int32_t c)
{
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}
#define TM_SMMLAR(a, b, c) tm_smmlar((a), (b), (c))
#elif !defined(TM_FORCE_GENERIC) && defined(TM_DSP_EMULATE)
#define TM_DSP_AVAILABLE 1
static inline int32_t tm_sxtb16_emulated(int32_t x)
{
    const uint32_t u = (uint32_t)x;
    const uint32_t lo = (uint32_t)(uint16_t)(int16_t)(int8_t)(u & 0xffu);
    const uint32_t hi = (uint32_t)(uint16_t)(int16_t)(int8_t)((u >> 16) & 0xffu);
    return (int32_t)(lo | (hi << 16));
}
static inline int32_t tm_smlad_emulated(int32_t a, int32_t b, int32_t c)
{
    const int32_t a_lo = (int16_t)((uint32_t)a & 0xffffu), a_hi = (int16_t)((uint32_t)a >> 16);
    const int32_t b_lo = (int16_t)((uint32_t)b & 0xffffu), b_hi = (int16_t)((uint32_t)b >> 16);
    return (int32_t)((uint32_t)c + (uint32_t)(a_lo * b_lo) + (uint32_t)(a_hi * b_hi));
}
static inline int32_t tm_sadd16_emulated(int32_t a, int32_t b)
{
    const uint32_t lo = ((uint32_t)a + (uint32_t)b) & 0xffffu;
    const uint32_t hi = (((uint32_t)a >> 16) + ((uint32_t)b >> 16)) & 0xffffu;
    return (int32_t)(lo | (hi << 16));
}
#define TM_SADD16(a, b) tm_sadd16_emulated((a), (b))
#define TM_SSAT8(x) ((x) < -128 ? -128 : ((x) > 127 ? 127 : (x)))
#define TM_SXTAB16(a, x) tm_sadd16_emulated((a), tm_sxtb16_emulated(x))
#define TM_SXTAB16_ROR8(a, x) tm_sadd16_emulated((a), TM_SXTB16_ROR8(x))
static inline int32_t tm_smmlar_emulated(int32_t a, int32_t b, int32_t c)
{
    const uint64_t sum = ((uint64_t)(uint32_t)c << 32) + (uint64_t)((int64_t)a * b) + 0x80000000u;
    return (int32_t)(uint32_t)(sum >> 32);
}
#define TM_SMMLAR(a, b, c) tm_smmlar_emulated((a), (b), (c))
#define TM_SXTB16(x) tm_sxtb16_emulated(x)
#define TM_SXTB16_ROR8(x) tm_sxtb16_emulated((int32_t)(((uint32_t)(x) >> 8) | ((uint32_t)(x) << 24)))
#define TM_SMLAD(a, b, c) tm_smlad_emulated((a), (b), (c))
#define TM_SMLABB(a, b, c) ((int32_t)((uint32_t)(c) + (uint32_t)((int32_t)(int16_t)((uint32_t)(a) & 0xffffu) * \
                                                               (int16_t)((uint32_t)(b) & 0xffffu))))
#define TM_SMLATT(a, b, c) ((int32_t)((uint32_t)(c) + (uint32_t)((int32_t)(int16_t)((uint32_t)(a) >> 16) * \
                                                               (int16_t)((uint32_t)(b) >> 16))))
#else
#define TM_DSP_AVAILABLE 0
#endif

/* The Thumb-2 assembly kernels run on a real DSP core with an optimising gcc/clang (the int8
   2x2 inline-assembly loop needs 14 free registers, which -O0's frame pointer does not leave;
   -O0 builds and TM_DSP_EMULATE take the C twins). */
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__GNUC__) && defined(__OPTIMIZE__) && \
    !defined(TM_DSP_EMULATE) && !defined(TM_FORCE_GENERIC)
#define TM_DSP_ASM 1
#else
#define TM_DSP_ASM 0
#endif

/* Four int8 from any address (the compiler emits one LDR where unaligned loads are legal). */
static inline int32_t tm_read_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#if TM_DSP_AVAILABLE

/* Two int16 from any address (one LDR where unaligned loads are legal). */
static inline int32_t tm_read_s16x2(const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
#endif

#if TM_DSP_AVAILABLE
/*
 * tm_requant in the form of the packed records (multiplier2, round, e) of the widened-patch
 * conv and 3x3 depthwise paths, saturated to int8: for a record (M, round_hi, e - 1) with M in [2^30, 2^31)
 * (not 0), multiplier2 = 2M - 2^32 (as int32) and round = 2 round_hi = 2^(e-1) + zp * 2^e:
 *   SMMLAR(acc, 2M - 2^32, acc + round) = acc + round + floor((2 acc M + 2^31) / 2^32) - acc
 *                                       = SRDHM(acc, M) + round = x + round
 *   RDBP(x, e) + zp = floor((x + 2^(e-1) - neg + zp * 2^e) / 2^e) = (x + round + (acc >> 31)) >> e
 * (neg = x < 0 may be taken as acc < 0, as in tm_common.h; x + round stays inside int32 for
 * e <= 23, so the wrapping sums are exact).
 */
/*
 * Shifts above 23 (trained layers have channels up to 31): the zero point no longer fits in
 * round, so the widened-patch conv records (e_post) carry it in bits 8 and up: round = 2^(e-1),
 * e_post = e + zp * 2^8, and the zero point is added after the shift (Arm's register-shift ASR
 * reads only the low byte, so the assembly shifts by e_post itself). Folded records have
 * e_post = e. Either way 1 <= e <= 31 and |acc| + |round| < 2^31 - 2 (ops_conv.conv_packed_records).
 */
static inline int32_t tm_requant_rec(int32_t acc, int32_t multiplier2, int32_t round, int32_t e_post)
{
    const int32_t ra = (int32_t)((uint32_t)acc + (uint32_t)round);
    const int32_t v = (int32_t)((uint32_t)TM_SMMLAR(acc, multiplier2, ra) + (uint32_t)(acc >> 31));
    return TM_SSAT8((v >> (e_post & 0xff)) + (e_post >> 8));
}

/* tm_requant (tm_common.h) saturated to int8: a fused activation whose range is all of int8. */
static inline int8_t tm_requant_full_s8(int32_t acc, const tm_requant_t *q)
{
    const int32_t v = tm_requant(acc, q);
    return (int8_t)TM_SSAT8(v);
}
#endif

#endif /* TM_DSP_H */
