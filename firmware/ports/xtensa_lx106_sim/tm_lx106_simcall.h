/*
 * tm_lx106_simcall.h - QEMU's Xtensa semihosting (`simcall`, with -semihosting):
 * a2 = call number, a3..a5 = arguments, result back in a2 (errno in a3).
 * Call numbers of the Xtensa ISS / QEMU target/xtensa/xtensa-semi.c.
 */
#ifndef TM_LX106_SIMCALL_H
#define TM_LX106_SIMCALL_H

#include <stdint.h>

#define TM_SIMCALL_EXIT 1
#define TM_SIMCALL_WRITE 4

static inline int32_t tm_lx106_simcall(int32_t call, int32_t arg1, int32_t arg2, int32_t arg3) {
    register int32_t a2 __asm__("a2") = call;
    register int32_t a3 __asm__("a3") = arg1;
    register int32_t a4 __asm__("a4") = arg2;
    register int32_t a5 __asm__("a5") = arg3;
    __asm__ volatile("simcall" : "+r"(a2), "+r"(a3) : "r"(a4), "r"(a5) : "memory");
    return a2;
}

/* Ends the emulator; QEMU exits with status. */
static inline __attribute__((noreturn)) void tm_lx106_exit(int32_t status) {
    (void)tm_lx106_simcall(TM_SIMCALL_EXIT, status, 0, 0);
    for (;;) {
    }
}

#endif /* TM_LX106_SIMCALL_H */
