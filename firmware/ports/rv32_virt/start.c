/*
 * start.c - reset entry of the rv32_virt port (qemu-system-riscv32 -M virt -bios none).
 *
 * QEMU's reset stub jumps to 0x80000000 in machine mode with a0 = hart id and
 * a1 = device tree. The ELF is loaded in place (RAM only, no flash), so .data
 * is already initialised; only .bss (and .tbss) need clearing. Harts other
 * than 0 park in wfi: the machine runs one hart, but `-smp N` must not corrupt
 * RAM. Written as a naked C function so the build needs no assembler language.
 * Static constructors (C++) run in tm_rv32_boot, before main.
 */
#include <stdint.h>

int main(void);
void _start(void);
void tm_rv32_boot(void);

/* Static constructors, in link order (rv32_virt.ld keeps them). */
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

/* C part of the boot, once .bss is clear: constructors, then main. */
void tm_rv32_boot(void) {
    for (void (**ctor)(void) = __init_array_start; ctor < __init_array_end; ctor++) {
        (*ctor)();
    }
    (void)main();
}

__attribute__((naked, section(".text.start"))) void _start(void) {
    __asm__ volatile(
        ".option push\n"
        ".option norelax\n"
        "la gp, __global_pointer$\n" /* gp-relative addressing of small data */
        ".option pop\n"
        "bnez a0, 3f\n"
        "la sp, __stack_top\n"
        /* picolibc keeps errno in TLS; the one thread uses the image's own block. */
        "la tp, __tls_base\n"
        "la t0, __bss_start\n"
        "la t1, __bss_end\n"
        "1: bgeu t0, t1, 2f\n"
        "sw zero, 0(t0)\n"
        "addi t0, t0, 4\n"
        "j 1b\n"
        "2: call tm_rv32_boot\n"
        /* main returned: power off through the SiFive test device. */
        "li t0, 0x100000\n"
        "li t1, 0x5555\n"
        "sw t1, 0(t0)\n"
        "3: wfi\n"
        "j 3b\n");
}
