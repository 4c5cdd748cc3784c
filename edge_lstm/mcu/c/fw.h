/* What the firmware's two files share: startup.c (reset, vectors) points at main.c's handlers. */
#ifndef EDGE_LSTM_FW_H
#define EDGE_LSTM_FW_H
#define FW_STACK_PAINT 0x5AA5C33Cu /* what the stack is filled with at reset */
int main(void);
void fw_fault(void);   /* any fault: "FAULT" on the UART, then stop */
void fw_systick(void); /* SysTick: counts the counter's wraps */
#endif
