/* A local APIC for the emu backend's one vCPU (kvm has its own in the kernel). Enough for
 * a guest that enables it: priorities, EOI, the timer and self-IPIs; the PIC's interrupts
 * come through LINT0 in ExtINT mode, as on a PC. */
#include <string.h>
#include <time.h>

#include "emu_irqchip.h"

#define LAPIC_BASE 0xfee00000ull
#define LVT_MASKED (1u << 16)
#define LVT_PERIODIC (1u << 17)
enum { LVT_CMCI, LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR };

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int highest(const uint32_t v[8])
{
    for (int k = 7; k >= 0; k--)
        if (v[k])
            return k * 32 + 31 - __builtin_clz(v[k]);
    return -1;
}

static unsigned ppr(const struct lapic *a)
{
    int isr = highest(a->isr);
    unsigned isrv = isr < 0 ? 0 : (unsigned)isr & 0xf0;
    return (a->tpr & 0xf0) >= isrv ? a->tpr & 0xff : isrv;
}

static bool pending_locked(const struct lapic *a)
{
    int v = highest(a->irr);
    return (a->svr & 0x100) && v >= 0 && ((unsigned)v & 0xf0) > (ppr(a) & 0xf0);
}

static void update(struct lapic *a)
{
    uint32_t l = a->lvt[LVT_LINT0];
    bool out = pending_locked(a);
    bool ext = !(a->svr & 0x100) || (!(l & LVT_MASKED) && ((l >> 8) & 7) == 7);
    if (out != atomic_load(&a->out) || ext != atomic_load(&a->extint)) {
        atomic_store(&a->out, out);
        atomic_store(&a->extint, ext);
        if (a->notify)
            a->notify(a->opaque);
    }
}

static void set_irr(struct lapic *a, unsigned vec)
{
    if (vec < 16) {
        a->esr |= 0x40;     /* illegal vector */
        return;
    }
    a->irr[vec / 32] |= 1u << (vec % 32);
}

/* Timer counts down at 1 GHz / divisor. */
static uint64_t tick_ns(const struct lapic *a)
{
    unsigned d = (a->divide & 3) | ((a->divide >> 1) & 4);
    return d == 7 ? 1 : 2ull << d;
}

static uint32_t timer_current(const struct lapic *a, uint64_t now)
{
    if (!a->timer_init || !a->timer_next_ns)
        return 0;
    uint64_t ticks = (now - a->timer_start_ns) / tick_ns(a);
    if (a->lvt[LVT_TIMER] & LVT_PERIODIC)
        return a->timer_init - (uint32_t)(ticks % a->timer_init);
    return ticks >= a->timer_init ? 0 : a->timer_init - (uint32_t)ticks;
}

static uint64_t lapic_read(void *opaque, uint64_t off, unsigned size)
{
    struct lapic *a = opaque;
    uint32_t v = 0;
    unsigned reg = (unsigned)off >> 4;
    (void)size;
    pthread_mutex_lock(&a->lock);
    switch (reg) {
    case 0x02: v = 0; break;                    /* ID: APIC 0 */
    case 0x03: v = 0x00050014; break;           /* version 0x14, 6 LVT entries */
    case 0x08: v = a->tpr; break;
    case 0x0a: v = ppr(a); break;
    case 0x0d: v = a->ldr; break;
    case 0x0e: v = a->dfr; break;
    case 0x0f: v = a->svr; break;
    case 0x28: v = a->esr; break;
    case 0x30: v = a->icr_lo; break;
    case 0x31: v = a->icr_hi; break;
    case 0x2f: v = a->lvt[LVT_CMCI]; break;
    case 0x32: case 0x33: case 0x34: case 0x35: case 0x36: case 0x37:
        v = a->lvt[reg - 0x31];
        break;
    case 0x38: v = a->timer_init; break;
    case 0x39: v = timer_current(a, now_ns()); break;
    case 0x3e: v = a->divide; break;
    default:
        if (reg >= 0x10 && reg < 0x18)
            v = a->isr[reg - 0x10];
        else if (reg >= 0x20 && reg < 0x28)
            v = a->irr[reg - 0x20];
        break;
    }
    pthread_mutex_unlock(&a->lock);
    return (off & 0xf) ? 0 : v;
}

static void lapic_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct lapic *a = opaque;
    uint32_t v = (uint32_t)val;
    unsigned reg = (unsigned)off >> 4;
    (void)size;
    if (off & 0xf)
        return;
    pthread_mutex_lock(&a->lock);
    switch (reg) {
    case 0x08: a->tpr = v & 0xff; break;
    case 0x0b: {                                /* EOI */
        int k = highest(a->isr);
        if (k >= 0)
            a->isr[k / 32] &= ~(1u << (k % 32));
        break;
    }
    case 0x0d: a->ldr = v & 0xff000000; break;
    case 0x0e: a->dfr = v | 0x0fffffff; break;
    case 0x0f:
        a->svr = v & 0x3ff;
        if (!(v & 0x100))                       /* disabling masks every LVT */
            for (unsigned k = 0; k < 7; k++)
                a->lvt[k] |= LVT_MASKED;
        break;
    case 0x28: a->esr = 0; break;
    case 0x30: {
        unsigned shorthand = (v >> 18) & 3, dest = a->icr_hi >> 24, mode = (v >> 8) & 7;
        a->icr_lo = v & ~(1u << 12);            /* delivered at once: never "pending" */
        if (mode == 0 && (shorthand == 1 || shorthand == 2 || (shorthand == 0 && dest == 0)))
            set_irr(a, v & 0xff);
        break;
    }
    case 0x31: a->icr_hi = v & 0xff000000; break;
    case 0x2f: a->lvt[LVT_CMCI] = v & 0x117ff; break;
    case 0x32: case 0x33: case 0x34: case 0x35: case 0x36: case 0x37:
        if (!(a->svr & 0x100))
            v |= LVT_MASKED;
        a->lvt[reg - 0x31] = v & (reg == 0x32 ? 0x710ff : 0x1f7ff);
        break;
    case 0x38:
        a->timer_init = v;
        a->timer_start_ns = now_ns();
        a->timer_next_ns = v ? a->timer_start_ns + (uint64_t)v * tick_ns(a) : 0;
        break;
    case 0x3e: a->divide = v & 0xb; break;
    default: break;
    }
    update(a);
    pthread_mutex_unlock(&a->lock);
}

static const struct machine_dev_ops lapic_ops = { lapic_read, lapic_write };

int lapic_init(struct lapic *a, struct machine *m, void (*notify)(void *), void *opaque)
{
    int rc;
    memset(a, 0, sizeof *a);
    if (pthread_mutex_init(&a->lock, NULL))
        return VMCORE_ENOMEM;
    a->notify = notify;
    a->opaque = opaque;
    a->svr = 0xff;
    a->dfr = 0xffffffff;
    for (unsigned k = 0; k < 7; k++)
        a->lvt[k] = LVT_MASKED;
    atomic_init(&a->out, false);
    atomic_init(&a->extint, true);
    if ((rc = machine_register_mmio(m, LAPIC_BASE, 0x1000, &lapic_ops, a, "lapic"))) {
        pthread_mutex_destroy(&a->lock);
        return rc;
    }
    return 0;
}

void lapic_destroy(struct lapic *a)
{
    pthread_mutex_destroy(&a->lock);
}

bool lapic_extint(struct lapic *a)
{
    return atomic_load(&a->extint);
}

bool lapic_pending(struct lapic *a)
{
    return atomic_load(&a->out);
}

int lapic_ack(struct lapic *a)
{
    int v = -1;
    pthread_mutex_lock(&a->lock);
    if (pending_locked(a)) {
        v = highest(a->irr);
        a->irr[v / 32] &= ~(1u << (v % 32));
        a->isr[v / 32] |= 1u << (v % 32);
    }
    update(a);
    pthread_mutex_unlock(&a->lock);
    return v;
}

uint64_t lapic_poll(struct lapic *a, uint64_t now)
{
    uint64_t next;
    pthread_mutex_lock(&a->lock);
    if (a->timer_next_ns && now >= a->timer_next_ns) {
        uint32_t lvt = a->lvt[LVT_TIMER];
        if (!(lvt & LVT_MASKED))
            set_irr(a, lvt & 0xff);
        if ((lvt & LVT_PERIODIC) && a->timer_init) {
            uint64_t p = (uint64_t)a->timer_init * tick_ns(a);
            a->timer_next_ns += p;
            if (a->timer_next_ns <= now)
                a->timer_next_ns = now + p;
        } else {
            a->timer_next_ns = 0;
        }
        update(a);
    }
    next = a->timer_next_ns;
    pthread_mutex_unlock(&a->lock);
    return next;
}
