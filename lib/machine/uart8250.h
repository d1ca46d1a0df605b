/* A 16550A-compatible UART (the "8250" Linux's driver probes), used as COM1. */
#ifndef VMCORE_MACHINE_UART8250_H
#define VMCORE_MACHINE_UART8250_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine.h"

#define UART_RX_MAX 4096 /* host-side receive queue (the 16-byte FIFO the guest sees is virtual) */
#define UART_TX_MAX 128  /* output gathered before one console event */

struct uart8250 {
    struct machine_device dev;  /* added to the machine, which destroys it */
    struct machine *m;
    unsigned irq;
    pthread_mutex_t lock;
    uint8_t ier, lcr, mcr, lsr_extra, msr, scr, fcr, dll, dlm;
    bool thr_ipending;  /* "transmitter empty" interrupt pending until IIR read or THR write */
    bool irq_level;
    unsigned lsr_polls;  /* LSR reads since the last transmitted byte */
    uint8_t rx[UART_RX_MAX];
    size_t rx_head, rx_len;
    uint8_t tx[UART_TX_MAX];
    size_t tx_len;
    atomic_bool tx_pending; /* tx_len > 0, readable without the lock */
};

/* Create a UART decoding [@base, @base+8) and driving ISA @irq (claimed), added to the
 * machine as device @name; the machine owns it from then on (*@out stays valid until
 * machine_destroy). VMCORE_ENOMEM, or machine_map()'s and machine_irq_claim()'s errors. */
int uart8250_create(struct machine *m, uint16_t base, unsigned irq, const char *name,
                    struct uart8250 **out);
/* Queue received bytes (thread-safe); bytes beyond the queue's room are dropped. */
size_t uart8250_receive(struct uart8250 *u, const void *data, size_t len);
/* Hand gathered output to the console now. The UART itself flushes on a newline, on a
 * full buffer, and once the guest does anything but the transmit pattern (one LSR read,
 * one THR write): a second LSR read in a row means it waits for something else. */
void uart8250_flush(struct uart8250 *u);

#endif
