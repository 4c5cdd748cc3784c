/* edge-lstm's firmware: the model's C library behind a byte protocol on UART0 (the CMSDK APB UART of
 * Arm's MPS2 boards, QEMU's included; a real board's port is the same four functions).
 *
 * Host -> board, one command byte, then its payload (little-endian):
 *   'I'                       -> "ELM1" + u32 x 8: features, classes, steps, int8, flash data, RAM, max rows, stack peak
 *   'C' u32 n, n x features f32 -> 'L' + classes f32 (logits) + u32 SysTick ticks of edge_lstm_classify
 *   'S' features f32            -> 'L' + classes f32 (logits after this row) + u32 ticks of edge_lstm_step
 *   'R'                       -> 'K' (edge_lstm_reset)
 *   'B' u32 n, u32 len, path  -> 'K', then per sequence the answer of 'C': n sequences read from a file of
 *                                the host through semihosting (records: u32 rows, rows x features f32).
 *                                QEMU's bulk channel: its UART moves ~30 KB/s, a test set would take
 *                                minutes. Only edge-lstm's QEMU device sends it (a board without a
 *                                debugger attached faults on semihosting).
 *   anything else             -> 'E'
 * A fault answers "FAULT" and stops. Ticks: SysTick on the processor clock (cycles on a board; under
 * QEMU's -icount shift=0, 40 instructions a tick at the MPS2's 25 MHz). */
#include <stdint.h>
#include "edge_lstm.h"
#include "fw.h"

#ifndef EL_MAX_ROWS
#define EL_MAX_ROWS 256
#endif
#define UART0 0x40004000u
#define REG(a) (*(volatile uint32_t *)(a))
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)

extern uint32_t _sstack, _estack; /* link.ld */
static volatile uint32_t fw_systick_wraps;

void fw_systick(void) { fw_systick_wraps++; } /* SysTick's handler: the 24-bit counter wrapped */

static uint32_t fw_stack_peak(void) { /* the stack used since reset: startup.c painted it */
    const uint32_t *p = &_sstack;
    while (p < &_estack && *p == FW_STACK_PAINT) p++;
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)p);
}

static float fw_rows[EL_MAX_ROWS * EDGE_LSTM_FEATURES];
static float fw_logits[EDGE_LSTM_CLASSES];

static void uart_init(void) {
    REG(UART0 + 0x10) = 16; /* BAUDDIV */
    REG(UART0 + 0x08) = 3;  /* TX and RX on */
}
static void put(uint8_t c) {
    while (REG(UART0 + 0x04) & 1u) {
    }
    REG(UART0) = c;
}
static uint8_t get(void) {
    while (!(REG(UART0 + 0x04) & 2u)) {
    }
    return (uint8_t)REG(UART0);
}
static void put_bytes(const void *p, uint32_t n) {
    const uint8_t *b = p;
    while (n--) put(*b++);
}
static void get_bytes(void *p, uint32_t n) {
    uint8_t *b = p;
    while (n--) *b++ = get();
}
static void put_u32(uint32_t v) { put_bytes(&v, 4); }

static int semihost(int op, void *arg) {
    register int r0 __asm("r0") = op;
    register void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
static int host_read(int fh, void *buf, uint32_t n) { /* 0: all n bytes read */
    uint32_t args[3] = {(uint32_t)fh, (uint32_t)buf, n};
    return semihost(0x06, args); /* SYS_READ: the bytes NOT read */
}

void fw_fault(void) {
    put_bytes("FAULT", 5);
    for (;;) {
    }
}

static uint64_t ticks_now(void);

static void classify_answer(uint32_t n) {
    const uint64_t t0 = ticks_now();
    edge_lstm_classify(fw_rows, (int)n, fw_logits);
    const uint64_t t1 = ticks_now();
    put('L');
    put_bytes(fw_logits, sizeof fw_logits);
    put_u32((uint32_t)(t1 - t0));
}

static void from_host_file(void) {
    uint32_t n, len;
    static char path[512];
    get_bytes(&n, 4);
    get_bytes(&len, 4);
    if (len >= sizeof path) {
        put('E');
        return;
    }
    get_bytes(path, len);
    path[len] = 0;
    uint32_t open_args[3] = {(uint32_t)path, 1 /* "rb" */, len};
    const int fh = semihost(0x01, open_args); /* SYS_OPEN */
    if (fh < 0) {
        put('E');
        return;
    }
    put('K');
    for (uint32_t i = 0; i < n; i++) {
        uint32_t rows = 0;
        if (host_read(fh, &rows, 4) != 0 || rows > EL_MAX_ROWS ||
            host_read(fh, fw_rows, rows * EDGE_LSTM_FEATURES * 4u) != 0) {
            put('E');
            break;
        }
        classify_answer(rows);
    }
    uint32_t close_args[1] = {(uint32_t)fh};
    semihost(0x02, close_args); /* SYS_CLOSE */
}

static uint64_t ticks_now(void) {
    uint32_t wraps, val;
    do {
        wraps = fw_systick_wraps;
        val = SYST_CVR;
    } while (wraps != fw_systick_wraps);
    return ((uint64_t)wraps << 24) + (0xFFFFFFu - val);
}

int main(void) {
    uart_init();
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt on wrap, on */
    for (;;) {
        const uint8_t cmd = get();
        if (cmd == 'I') {
            put_bytes("ELM1", 4);
            put_u32(EDGE_LSTM_FEATURES);
            put_u32(EDGE_LSTM_CLASSES);
            put_u32(EDGE_LSTM_STEPS);
            put_u32(EDGE_LSTM_INT8);
            put_u32(EDGE_LSTM_FLASH_DATA_BYTES);
            put_u32(EDGE_LSTM_RAM_BYTES);
            put_u32(EL_MAX_ROWS);
            put_u32(fw_stack_peak());
        } else if (cmd == 'C' || cmd == 'S') {
            uint32_t n = 1;
            if (cmd == 'C') get_bytes(&n, 4);
            if (n > EL_MAX_ROWS) {
                put('E');
                continue;
            }
            get_bytes(fw_rows, n * EDGE_LSTM_FEATURES * 4u);
            if (cmd == 'C') {
                classify_answer(n);
                continue;
            }
            const uint64_t t0 = ticks_now();
            edge_lstm_step(fw_rows, fw_logits);
            const uint64_t t1 = ticks_now();
            put('L');
            put_bytes(fw_logits, sizeof fw_logits);
            put_u32((uint32_t)(t1 - t0));
        } else if (cmd == 'B') {
            from_host_file();
        } else if (cmd == 'R') {
            edge_lstm_reset();
            put('K');
        } else {
            put('E');
        }
    }
}
