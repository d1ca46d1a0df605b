/* The 8254 programmable interval timer (ports 0x40-0x43), driven by the host's monotonic
 * clock: counters are computed from elapsed time, channel 0 raises IRQ 0. Modes 0 (one
 * shot) and 2/3 (periodic) generate interrupts; reads return the live count. Used by
 * the emu backend only. */
#include <string.h>
#include <time.h>

#include "emu_irqchip.h"

#define PIT_HZ 1193182ULL

static uint64_t ticks_since(const struct i8254_channel *c, uint64_t now)
{
    return now > c->load_ns ? (now - c->load_ns) * PIT_HZ / 1000000000ULL : 0;
}

static uint64_t period_ns(const struct i8254_channel *c)
{
    uint64_t ns = (uint64_t)c->reload * 1000000000ULL / PIT_HZ;
    return ns ? ns : 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint16_t count_now(const struct i8254_channel *c, uint64_t now)
{
    uint64_t t = ticks_since(c, now);
    if (!c->loaded)
        return 0;
    if (c->mode == 2 || c->mode == 3)
        return (uint16_t)(c->reload - t % c->reload);
    return t >= c->reload ? (uint16_t)(0x10000 - (t - c->reload) % 0x10000)
                          : (uint16_t)(c->reload - t);
}

static void channel_loaded(struct i8254 *t, unsigned n, uint16_t v, uint64_t now)
{
    struct i8254_channel *c = &t->ch[n];
    c->reload = v ? v : 0x10000;
    c->load_ns = now;
    c->loaded = true;
    if (n == 0)
        t->next_irq_ns = now + period_ns(c);
}

static uint64_t pit_read(void *opaque, uint64_t off, unsigned size)
{
    struct i8254 *t = opaque;
    uint64_t v = 0xff;
    (void)size;
    if (off > 2)
        return 0xff;
    pthread_mutex_lock(&t->lock);
    {
        struct i8254_channel *c = &t->ch[off];
        uint16_t cnt = c->latched ? c->latch : count_now(c, now_ns());
        switch (c->access) {
        case 1: v = cnt & 0xff; c->latched = 0; break;
        case 2: v = cnt >> 8; c->latched = 0; break;
        default:
            v = c->rw_hi ? cnt >> 8 : cnt & 0xff;
            if (c->rw_hi)
                c->latched = 0;
            c->rw_hi ^= 1;
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return v;
}

static void pit_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct i8254 *t = opaque;
    uint8_t v = (uint8_t)val;
    uint64_t now = now_ns();
    (void)size;
    pthread_mutex_lock(&t->lock);
    if (off == 3) {
        unsigned n = v >> 6, access = (v >> 4) & 3;
        if (n == 3) {
            /* read-back: latch the counts of the selected channels */
            for (unsigned k = 0; k < 3; k++)
                if ((v & (2u << k)) && !(v & 0x20)) {
                    t->ch[k].latch = count_now(&t->ch[k], now);
                    t->ch[k].latched = 1;
                }
        } else if (access == 0) {
            t->ch[n].latch = count_now(&t->ch[n], now);
            t->ch[n].latched = 1;
            t->ch[n].rw_hi = 0;
        } else {
            struct i8254_channel *c = &t->ch[n];
            c->access = (uint8_t)access;
            c->mode = (v >> 1) & 7;
            if (c->mode > 5)
                c->mode &= 3;
            c->rw_hi = c->wr_hi = 0;
            c->latched = 0;
            c->loaded = false;
            if (n == 0)
                t->next_irq_ns = 0;
        }
    } else {
        struct i8254_channel *c = &t->ch[off];
        switch (c->access) {
        case 1: channel_loaded(t, (unsigned)off, v, now); break;
        case 2: channel_loaded(t, (unsigned)off, (uint16_t)(v << 8), now); break;
        default:
            if (!c->wr_hi) {
                c->wr_lo = v;
                c->wr_hi = 1;
            } else {
                c->wr_hi = 0;
                channel_loaded(t, (unsigned)off, (uint16_t)(c->wr_lo | v << 8), now);
            }
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
}

static const struct machine_dev_ops pit_ops = { pit_read, pit_write };

static void reset_locked(struct i8254 *t)
{
    memset(t->ch, 0, sizeof t->ch);
    for (unsigned k = 0; k < 3; k++) {
        t->ch[k].access = 3;
        t->ch[k].reload = 0x10000;
    }
    t->next_irq_ns = 0;
}

void i8254_reset(struct i8254 *t)
{
    pthread_mutex_lock(&t->lock);
    reset_locked(t);
    pthread_mutex_unlock(&t->lock);
}

int i8254_init(struct i8254 *t, struct machine *m)
{
    int rc;
    memset(t, 0, sizeof *t);
    t->m = m;
    if (pthread_mutex_init(&t->lock, NULL))
        return VMCORE_ENOMEM;
    reset_locked(t);
    if ((rc = machine_register_pio(m, 0x40, 4, &pit_ops, t, "pit"))) {
        pthread_mutex_destroy(&t->lock);
        return rc;
    }
    return 0;
}

void i8254_destroy(struct i8254 *t)
{
    pthread_mutex_destroy(&t->lock);
}

uint64_t i8254_poll(struct i8254 *t, uint64_t now)
{
    bool fire = false;
    uint64_t next;
    pthread_mutex_lock(&t->lock);
    {
        struct i8254_channel *c = &t->ch[0];
        if (t->next_irq_ns && now >= t->next_irq_ns) {
            fire = true;
            if (c->mode == 2 || c->mode == 3) {
                uint64_t p = period_ns(c);
                t->next_irq_ns += p;
                if (t->next_irq_ns <= now)      /* fell behind: do not replay a backlog */
                    t->next_irq_ns = now + p;
            } else {
                t->next_irq_ns = 0;             /* one shot */
            }
        }
        next = t->next_irq_ns;
    }
    pthread_mutex_unlock(&t->lock);
    if (fire) {
        machine_irq_set(t->m, 0, 1);
        machine_irq_set(t->m, 0, 0);
    }
    return next;
}

/* Snapshot layout: per channel reload (u32), load_ns (u64, host CLOCK_MONOTONIC), mode
 * access rw_hi wr_hi latched latch_hi (u8 each), latch wr_lo (u16 each), loaded (u8); then
 * next_irq_ns (u64, 0 = none). */
void i8254_save(struct i8254 *t, struct snap_buf *b)
{
    pthread_mutex_lock(&t->lock);
    for (unsigned k = 0; k < 3; k++) {
        const struct i8254_channel *c = &t->ch[k];
        snap_buf_u32(b, c->reload);
        snap_buf_u64(b, c->load_ns);
        uint8_t v[6] = { c->mode, c->access, c->rw_hi, c->wr_hi, c->latched, c->latch_hi };
        snap_buf_put(b, v, sizeof v);
        snap_buf_u16(b, c->latch);
        snap_buf_u16(b, c->wr_lo);
        snap_buf_u8(b, c->loaded);
    }
    snap_buf_u64(b, t->next_irq_ns);
    pthread_mutex_unlock(&t->lock);
}

int i8254_restore(struct i8254 *t, struct snap_rd *r, int64_t shift_ns)
{
    struct i8254_channel ch[3];
    memset(ch, 0, sizeof ch);
    for (unsigned k = 0; k < 3; k++) {
        struct i8254_channel *c = &ch[k];
        uint8_t v[6];
        c->reload = snap_rd_u32(r);
        c->load_ns = snap_rd_u64(r) + (uint64_t)shift_ns;
        snap_rd_get(r, v, sizeof v);
        c->mode = v[0];
        c->access = v[1];
        c->rw_hi = v[2];
        c->wr_hi = v[3];
        c->latched = v[4];
        c->latch_hi = v[5];
        c->latch = snap_rd_u16(r);
        c->wr_lo = snap_rd_u16(r);
        uint8_t loaded = snap_rd_u8(r);
        if (r->failed)
            return VMCORE_EIMAGE;
        if (c->reload < 1 || c->reload > 0x10000)
            return snap_rd_fail(r, "channel %u: reload value %u (1..65536)", k, c->reload);
        if (c->mode > 5 || c->access > 3 || loaded > 1)
            return snap_rd_fail(r, "channel %u: mode %u, access %u or loaded %u out of range",
                                k, c->mode, c->access, loaded);
        c->loaded = loaded;
    }
    uint64_t next = snap_rd_u64(r);
    if (r->failed)
        return VMCORE_EIMAGE;
    pthread_mutex_lock(&t->lock);
    memcpy(t->ch, ch, sizeof ch);
    t->next_irq_ns = next ? next + (uint64_t)shift_ns : 0;
    pthread_mutex_unlock(&t->lock);
    return 0;
}
