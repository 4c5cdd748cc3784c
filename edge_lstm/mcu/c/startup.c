/* edge-lstm's firmware harness for Cortex-M: vector table, reset (FPU on, .data copied, .bss zeroed,
 * the stack painted so main.c can measure its peak) and the two functions the compiler may call. Bare
 * metal on purpose: no vendor HAL, so the same ELF runs on QEMU's MPS2 boards and the numbers count the
 * model, not a framework. The handlers it points at are main.c's. */
#include <stdint.h>
#include <stddef.h>
#include "fw.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;

void Reset_Handler(void) {
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20); /* CPACR: CP10, CP11 full access */
    __asm volatile("dsb\n isb");
#endif
    for (uint32_t *s = &_sidata, *d = &_sdata; d < &_edata;) *d++ = *s++;
    for (uint32_t *d = &_sbss; d < &_ebss;) *d++ = 0;
    uint32_t *sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *d = &_sstack; d < sp - 16; d++) *d = FW_STACK_PAINT;
    main();
    for (;;) {
    }
}

static void Default_Handler(void) { fw_fault(); }

__attribute__((section(".vectors"), used)) const void *const fw_vectors[16] = {
    &_estack, (const void *)Reset_Handler, (const void *)Default_Handler, (const void *)Default_Handler,
    (const void *)Default_Handler, (const void *)Default_Handler, (const void *)Default_Handler, 0, 0, 0, 0,
    (const void *)Default_Handler, (const void *)Default_Handler, 0, (const void *)Default_Handler,
    (const void *)fw_systick,
};

void *memset(void *d, int c, size_t n) {
    unsigned char *p = d;
    while (n--) *p++ = (unsigned char)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n) {
    unsigned char *p = d;
    const unsigned char *q = s;
    while (n--) *p++ = *q++;
    return d;
}
