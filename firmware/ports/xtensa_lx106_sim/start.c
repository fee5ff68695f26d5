/*
 * start.c - reset entry of the xtensa_lx106_sim port (qemu-system-xtensa -M sim -cpu lx106).
 *
 * QEMU starts the core at the ELF entry, here the reset vector 0x50000000
 * (.text.start, first in the linker script). The entry jumps over two literal
 * words (l32r only reaches backwards), sets the stack (a1 in the call0 ABI),
 * clears .bss in C and calls main; main's return value ends the emulator with
 * that exit status through the semihosting exit call. Written as top-level asm
 * in C so the build needs no assembler language.
 */
#include <stdint.h>

#include "tm_lx106_simcall.h"

extern uint32_t __bss_start[];
extern uint32_t __bss_end[];
int main(void);
void tm_lx106_start(void);

__asm__(".section .text.start, \"ax\"\n"
        ".global _start\n"
        ".align 4\n"
        "_start:\n"
        "    j 1f\n"
        "    .align 4\n"
        "2:  .word __stack_top\n"
        "3:  .word tm_lx106_start\n"
        "1:  l32r a1, 2b\n"
        "    l32r a0, 3b\n"
        "    callx0 a0\n"
        "4:  j 4b\n");

void tm_lx106_start(void) {
    for (uint32_t *word = __bss_start; word < __bss_end; word++) {
        *word = 0u;
    }
    tm_lx106_exit(main());
}
