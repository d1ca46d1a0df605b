/* 16550A UART. Enough of the chip for Linux's 8250 driver (autoconfig through the scratch
 * and loopback registers, FIFO detection, THRE and RX interrupts) and for polled guests.
 * Transmission is instantaneous: THR is always empty. A guest that writes faster than the
 * domain's console is delivered is stopped instead, after the write that filled the
 * domain's bounded console queue (the vCPU loops call machine_console_wait()), as a real
 * UART with a full FIFO holds back its sender; output is never dropped. */
#include "uart8250.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "machine_internal.h"

enum { UART_RBR_THR = 0, UART_IER = 1, UART_IIR_FCR = 2, UART_LCR = 3, UART_MCR = 4,
       UART_LSR = 5, UART_MSR = 6, UART_SCR = 7 };

#define IER_RDI 0x01   /* receive data available */
#define IER_THRI 0x02  /* transmitter holding register empty */
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_DCD 0x80
#define MSR_DSR 0x20
#define MSR_CTS 0x10

/* Caller holds u->lock. */
static void uart_tx_flush_locked(struct uart8250 *u)
{
    if (u->tx_len) {
        machine_console_output(u->m, u->tx, u->tx_len);
        u->tx_len = 0;
        atomic_store_explicit(&u->tx_pending, false, memory_order_relaxed);
    }
}

static uint8_t uart_iir(const struct uart8250 *u)
{
    uint8_t fifo = (u->fcr & FCR_ENABLE) ? IIR_FIFO : 0;
    if ((u->ier & IER_RDI) && u->rx_len)
        return IIR_RDI | fifo;
    if ((u->ier & IER_THRI) && u->thr_ipending)
        return IIR_THRI | fifo;
    return IIR_NONE | fifo;
}

/* Caller holds u->lock. The line is level-triggered, as the ISA 8250 behind a PIC is
 * treated by Linux; it changes only when the pending state does. */
static void uart_update_irq(struct uart8250 *u)
{
    bool level = !(uart_iir(u) & IIR_NONE) && (u->mcr & 0x08 /* OUT2 gates the line */);
    if (level != u->irq_level) {
        u->irq_level = level;
        machine_irq_set(u->m, u->irq, level);
    }
}

static void uart_rx_push_locked(struct uart8250 *u, uint8_t c)
{
    if (u->rx_len < UART_RX_MAX) {
        u->rx[(u->rx_head + u->rx_len) % UART_RX_MAX] = c;
        u->rx_len++;
    } else {
        u->lsr_extra |= 0x02; /* overrun */
    }
}

static uint64_t uart_read(void *opaque, uint64_t off, unsigned size)
{
    struct uart8250 *u = opaque;
    uint8_t v = 0xff;
    pthread_mutex_lock(&u->lock);
    if (off != UART_LSR || ++u->lsr_polls > 1)
        uart_tx_flush_locked(u);
    switch (off) {
    case UART_RBR_THR:
        if (u->lcr & LCR_DLAB) {
            v = u->dll;
        } else if (u->rx_len) {
            v = u->rx[u->rx_head];
            u->rx_head = (u->rx_head + 1) % UART_RX_MAX;
            u->rx_len--;
        } else {
            v = 0;
        }
        break;
    case UART_IER:
        v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
        break;
    case UART_IIR_FCR:
        v = uart_iir(u);
        if ((v & 0x0f) == IIR_THRI)
            u->thr_ipending = false; /* reading IIR acknowledges THRE */
        break;
    case UART_LCR: v = u->lcr; break;
    case UART_MCR: v = u->mcr; break;
    case UART_LSR:
        v = LSR_THRE | LSR_TEMT | (u->rx_len ? LSR_DR : 0) | u->lsr_extra;
        u->lsr_extra = 0;
        break;
    case UART_MSR:
        if (u->mcr & MCR_LOOP) /* outputs wired back to inputs */
            v = (uint8_t)(((u->mcr & 0x0c) << 4) | ((u->mcr & 0x01) << 5) |
                          ((u->mcr & 0x02) << 3));
        else
            v = MSR_DCD | MSR_DSR | MSR_CTS;
        break;
    case UART_SCR: v = u->scr; break;
    }
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
    return v;
}

static void uart_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    struct uart8250 *u = opaque;
    uint8_t v = (uint8_t)value;
    pthread_mutex_lock(&u->lock);
    if (off == UART_RBR_THR && !(u->lcr & LCR_DLAB))
        u->lsr_polls = 0;
    else
        uart_tx_flush_locked(u);
    switch (off) {
    case UART_RBR_THR:
        if (u->lcr & LCR_DLAB) {
            u->dll = v;
        } else if (u->mcr & MCR_LOOP) {
            uart_rx_push_locked(u, v);
            u->thr_ipending = true;
        } else {
            u->tx[u->tx_len++] = v;
            atomic_store_explicit(&u->tx_pending, true, memory_order_relaxed);
            if (v == '\n' || u->tx_len == UART_TX_MAX)
                uart_tx_flush_locked(u);
            u->thr_ipending = true;
        }
        break;
    case UART_IER:
        if (u->lcr & LCR_DLAB) {
            u->dlm = v;
        } else {
            /* Enabling THRE while the holder is empty raises it at once (8250 behaviour
             * the Linux driver's THRE test relies on). */
            if ((v & IER_THRI) && !(u->ier & IER_THRI))
                u->thr_ipending = true;
            u->ier = v & 0x0f;
        }
        break;
    case UART_IIR_FCR:
        u->fcr = v & 0xc9;
        if (v & FCR_CLEAR_RX)
            u->rx_head = u->rx_len = 0;
        break;
    case UART_LCR: u->lcr = v; break;
    case UART_MCR: u->mcr = v & 0x1f; break;
    case UART_SCR: u->scr = v; break;
    default: break; /* LSR, MSR: read-only */
    }
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
}

static const struct machine_dev_ops uart_ops = { uart_read, uart_write };

static void uart_destroy(struct machine_device *dev)
{
    struct uart8250 *u = (struct uart8250 *)((char *)dev - offsetof(struct uart8250, dev));
    pthread_mutex_destroy(&u->lock);
    free(u);
}

/* Registers to their power-on values; host input already queued stays (it was typed),
 * gathered output goes out first. */
static void uart_reset(struct machine_device *dev)
{
    struct uart8250 *u = (struct uart8250 *)((char *)dev - offsetof(struct uart8250, dev));
    pthread_mutex_lock(&u->lock);
    uart_tx_flush_locked(u);
    u->ier = u->lcr = u->mcr = u->lsr_extra = u->scr = u->fcr = u->dlm = 0;
    u->dll = 0x0c;
    u->thr_ipending = false;
    u->lsr_polls = 0;
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
}

/* Snapshot layout: ier lcr mcr lsr_extra msr scr fcr dll dlm (u8 each), thr_ipending,
 * irq_level (u8), lsr_polls (u32), the receive queue (u32 count, the bytes oldest first),
 * gathered output (u32 count, the bytes). */
static int uart_save(struct machine_device *dev, struct snap_buf *b)
{
    struct uart8250 *u = (struct uart8250 *)((char *)dev - offsetof(struct uart8250, dev));
    pthread_mutex_lock(&u->lock);
    uint8_t regs[9] = { u->ier, u->lcr, u->mcr, u->lsr_extra, u->msr, u->scr, u->fcr,
                        u->dll, u->dlm };
    snap_buf_put(b, regs, sizeof regs);
    snap_buf_u8(b, u->thr_ipending);
    snap_buf_u8(b, u->irq_level);
    snap_buf_u32(b, u->lsr_polls);
    snap_buf_u32(b, (uint32_t)u->rx_len);
    for (size_t i = 0; i < u->rx_len; i++)
        snap_buf_u8(b, u->rx[(u->rx_head + i) % UART_RX_MAX]);
    snap_buf_u32(b, (uint32_t)u->tx_len);
    snap_buf_put(b, u->tx, u->tx_len);
    pthread_mutex_unlock(&u->lock);
    return 0;
}

static int uart_restore(struct machine_device *dev, struct snap_rd *r, int64_t shift_ns)
{
    struct uart8250 *u = (struct uart8250 *)((char *)dev - offsetof(struct uart8250, dev));
    (void)shift_ns;
    uint8_t regs[9];
    snap_rd_get(r, regs, sizeof regs);
    uint8_t thr = snap_rd_u8(r), irq = snap_rd_u8(r);
    uint32_t polls = snap_rd_u32(r);
    uint32_t rx = snap_rd_u32(r);
    if (rx > UART_RX_MAX)
        return snap_rd_fail(r, "receive queue of %u bytes (at most %u)", rx, UART_RX_MAX);
    pthread_mutex_lock(&u->lock);
    snap_rd_get(r, u->rx, rx);
    u->rx_head = 0;
    u->rx_len = rx;
    uint32_t tx = snap_rd_u32(r);
    if (tx > UART_TX_MAX) {
        pthread_mutex_unlock(&u->lock);
        return snap_rd_fail(r, "output buffer of %u bytes (at most %u)", tx, UART_TX_MAX);
    }
    snap_rd_get(r, u->tx, tx);
    u->tx_len = tx;
    atomic_store(&u->tx_pending, tx > 0);
    u->ier = regs[0];
    u->lcr = regs[1];
    u->mcr = regs[2];
    u->lsr_extra = regs[3];
    u->msr = regs[4];
    u->scr = regs[5];
    u->fcr = regs[6];
    u->dll = regs[7];
    u->dlm = regs[8];
    u->thr_ipending = thr != 0;
    u->irq_level = irq != 0;
    u->lsr_polls = polls;
    pthread_mutex_unlock(&u->lock);
    if (thr > 1 || irq > 1)
        return snap_rd_fail(r, "a flag that is neither 0 nor 1");
    return 0;
}

static const struct machine_device_ops uart_device_ops = {
    .type = "uart8250", .reset = uart_reset, .destroy = uart_destroy,
    .save = uart_save, .restore = uart_restore,
};

int uart8250_create(struct machine *m, uint16_t base, unsigned irq, const char *name,
                    struct uart8250 **out)
{
    *out = NULL;
    struct uart8250 *u = calloc(1, sizeof *u);
    if (!u)
        return VMCORE_ENOMEM;
    u->m = m;
    u->irq = irq;
    u->dll = 0x0c; /* 9600 baud, the power-on divisor */
    atomic_init(&u->tx_pending, false);
    if (pthread_mutex_init(&u->lock, NULL)) {
        free(u);
        return VMCORE_ENOMEM;
    }
    int rc = machine_irq_claim(m, irq, name);
    if (rc == 0)
        rc = machine_device_add(m, &u->dev, &uart_device_ops, name);
    if (rc) {
        uart_destroy(&u->dev);
        return rc;
    }
    /* From here the machine owns u. */
    rc = machine_map(m, MACHINE_PIO, base, 8, &uart_ops, u, name, MACHINE_RANGE_CONSOLE);
    if (rc == 0)
        *out = u;
    return rc;
}

size_t uart8250_receive(struct uart8250 *u, const void *data, size_t len)
{
    const uint8_t *p = data;
    pthread_mutex_lock(&u->lock);
    size_t room = UART_RX_MAX - u->rx_len;
    size_t n = len < room ? len : room;
    for (size_t i = 0; i < n; i++)
        uart_rx_push_locked(u, p[i]);
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
    return n;
}

void uart8250_flush(struct uart8250 *u)
{
    if (!atomic_load_explicit(&u->tx_pending, memory_order_relaxed))
        return;
    pthread_mutex_lock(&u->lock);
    uart_tx_flush_locked(u);
    pthread_mutex_unlock(&u->lock);
}
