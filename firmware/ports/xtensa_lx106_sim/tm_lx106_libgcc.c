/*
 * tm_lx106_libgcc.c - the integer helpers GCC calls on the LX106 that Debian's
 * libgcc for xtensa-lx106-elf leaves out (__divsi3, __udivsi3, __umodsi3,
 * __muldi3): on an ESP8266 they sit in the boot ROM and the SDK's linker
 * script gives their addresses, so the toolchain does not ship them. Same
 * contracts as libgcc's; written without `/`, `%` or 64-bit `*`, which would
 * call these very functions. The LX106 multiplies 32x32->32 (MUL32), which
 * the 64-bit product is built from.
 */
#include <stdint.h>

int32_t __divsi3(int32_t dividend, int32_t divisor);
uint32_t __udivsi3(uint32_t dividend, uint32_t divisor);
uint32_t __umodsi3(uint32_t dividend, uint32_t divisor);
int64_t __muldi3(int64_t a, int64_t b);

/* Restoring division, one quotient bit a step. Division by zero is undefined
 * in C; it gives an all-ones quotient here, as the ESP8266 ROM does not trap either. */
static uint32_t udivmod32(uint32_t dividend, uint32_t divisor, uint32_t *remainder) {
    uint32_t quotient = 0u;
    uint32_t rest = 0u;
    if (divisor == 0u) {
        *remainder = dividend;
        return 0xffffffffu;
    }
    for (int bit = 31; bit >= 0; bit--) {
        rest = (rest << 1) | ((dividend >> bit) & 1u);
        if (rest >= divisor) {
            rest -= divisor;
            quotient |= 1u << bit;
        }
    }
    *remainder = rest;
    return quotient;
}

uint32_t __udivsi3(uint32_t dividend, uint32_t divisor) {
    uint32_t remainder;
    return udivmod32(dividend, divisor, &remainder);
}

uint32_t __umodsi3(uint32_t dividend, uint32_t divisor) {
    uint32_t remainder;
    (void)udivmod32(dividend, divisor, &remainder);
    return remainder;
}

/* Truncates toward zero, as C's `/` does. */
int32_t __divsi3(int32_t dividend, int32_t divisor) {
    uint32_t magnitude_n = dividend < 0 ? 0u - (uint32_t)dividend : (uint32_t)dividend;
    uint32_t magnitude_d = divisor < 0 ? 0u - (uint32_t)divisor : (uint32_t)divisor;
    uint32_t remainder;
    uint32_t quotient = udivmod32(magnitude_n, magnitude_d, &remainder);
    return (int32_t)(((dividend < 0) != (divisor < 0)) ? 0u - quotient : quotient);
}

/* 32x32->64 from four 16x16->32 products. */
static uint64_t umul32_wide(uint32_t a, uint32_t b) {
    uint32_t a_low = a & 0xffffu;
    uint32_t a_high = a >> 16;
    uint32_t b_low = b & 0xffffu;
    uint32_t b_high = b >> 16;
    uint32_t low_low = a_low * b_low;
    uint32_t low_high = a_low * b_high;
    uint32_t high_low = a_high * b_low;
    uint32_t high_high = a_high * b_high;
    uint32_t middle = (low_low >> 16) + (low_high & 0xffffu) + (high_low & 0xffffu);
    uint32_t low = (low_low & 0xffffu) | (middle << 16);
    uint32_t high = high_high + (low_high >> 16) + (high_low >> 16) + (middle >> 16);
    return ((uint64_t)high << 32) | low;
}

/* The low 64 bits of the product, the same for signed and unsigned operands. */
int64_t __muldi3(int64_t a, int64_t b) {
    uint64_t ua = (uint64_t)a;
    uint64_t ub = (uint64_t)b;
    uint32_t a_low = (uint32_t)ua;
    uint32_t a_high = (uint32_t)(ua >> 32);
    uint32_t b_low = (uint32_t)ub;
    uint32_t b_high = (uint32_t)(ub >> 32);
    uint32_t cross = a_high * b_low + a_low * b_high;
    return (int64_t)(umul32_wide(a_low, b_low) + ((uint64_t)cross << 32));
}
