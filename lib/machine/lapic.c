/* A vCPU's local APIC for the emu backend (kvm has its own in the kernel). Enough for a
 * guest that enables it: priorities, EOI, the timer, self-IPIs and fixed interrupts from
 * the IOAPIC and MSIs (lapic_deliver); the PIC's interrupts come through LINT0 in ExtINT
 * mode, as on a PC. Register layout: Intel SDM vol. 3, chapter "Advanced Programmable
 * Interrupt Controller". */
#include <string.h>
#include <time.h>

#include "emu_irqchip.h"

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

/* Accept @vec into the IRR; the TMR bit records its trigger mode, so that its EOI can
 * tell the IOAPIC. False for an illegal vector. */
static bool set_irr(struct lapic *a, unsigned vec, bool level)
{
    uint32_t bit = 1u << (vec % 32);
    if (vec < 16 || vec > 255) {
        a->esr_pending |= 0x40;     /* receive illegal vector */
        return false;
    }
    a->irr[vec / 32] |= bit;
    if (level)
        a->tmr[vec / 32] |= bit;
    else
        a->tmr[vec / 32] &= ~bit;
    return true;
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
    case 0x02: v = (uint32_t)a->id << 24; break;
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
        else if (reg >= 0x18 && reg < 0x20)
            v = a->tmr[reg - 0x18];
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
    int eoi_vector = -1;
    (void)size;
    if (off & 0xf)
        return;
    pthread_mutex_lock(&a->lock);
    switch (reg) {
    case 0x08: a->tpr = v & 0xff; break;
    case 0x0b: {                                /* EOI */
        int k = highest(a->isr);
        if (k >= 0) {
            a->isr[k / 32] &= ~(1u << (k % 32));
            if (a->tmr[k / 32] & (1u << (k % 32)))
                eoi_vector = k;             /* level-triggered: broadcast to the IOAPIC */
        }
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
    case 0x28:                                  /* a write latches the errors seen since */
        a->esr = a->esr_pending;
        a->esr_pending = 0;
        break;
    case 0x30: {
        unsigned shorthand = (v >> 18) & 3, dest = a->icr_hi >> 24, mode = (v >> 8) & 7;
        a->icr_lo = v & ~(1u << 12);            /* delivered at once: never "pending" */
        /* Only the IPIs that reach this APIC itself: self, all-including-self, or its own
         * physical ID. Other CPUs' IPIs wait for emu SMP (they would go through the
         * irqchip's delivery, with this lock released). */
        if (mode == 0 && (shorthand == 1 || shorthand == 2 ||
                          (shorthand == 0 && !(v & (1u << 11)) && (dest == a->id || dest == 0xff))))
            set_irr(a, v & 0xff, false);
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
    /* outside the lock: the IOAPIC may deliver again at once, taking it */
    if (eoi_vector >= 0 && a->eoi)
        a->eoi(a->opaque, (unsigned)eoi_vector);
}

static const struct machine_dev_ops lapic_ops = { lapic_read, lapic_write };

/* The power-on register values (SDM: "Local APIC State After Power-Up or Reset"). */
static void reset_locked(struct lapic *a)
{
    a->tpr = a->ldr = a->esr = a->esr_pending = 0;
    a->icr_lo = a->icr_hi = a->divide = a->timer_init = 0;
    a->svr = 0xff;
    a->dfr = 0xffffffff;
    for (unsigned k = 0; k < 7; k++)
        a->lvt[k] = LVT_MASKED;
    memset(a->irr, 0, sizeof a->irr);
    memset(a->isr, 0, sizeof a->isr);
    memset(a->tmr, 0, sizeof a->tmr);
    a->timer_start_ns = a->timer_next_ns = 0;
}

int lapic_init(struct lapic *a, unsigned id, void (*notify)(void *),
               void (*eoi)(void *, unsigned), void *opaque)
{
    memset(a, 0, sizeof *a);
    if (pthread_mutex_init(&a->lock, NULL))
        return VMCORE_ENOMEM;
    a->id = (uint8_t)id;
    a->notify = notify;
    a->eoi = eoi;
    a->opaque = opaque;
    reset_locked(a);
    atomic_init(&a->out, false);
    atomic_init(&a->extint, true);
    return 0;
}

int lapic_map(struct lapic *a, struct machine *m)
{
    return machine_register_mmio(m, PLAT_LAPIC_BASE, 0x1000, &lapic_ops, a, "lapic");
}

void lapic_reset(struct lapic *a)
{
    pthread_mutex_lock(&a->lock);
    reset_locked(a);
    update(a);
    pthread_mutex_unlock(&a->lock);
}

bool lapic_match(struct lapic *a, uint8_t dest, bool logical)
{
    bool hit;
    pthread_mutex_lock(&a->lock);
    if (!logical) {
        hit = dest == 0xff || dest == a->id;
    } else {
        uint8_t ldr = (uint8_t)(a->ldr >> 24);
        if ((a->dfr >> 28) == 0xf)              /* flat: one bit per APIC */
            hit = (ldr & dest) != 0;
        else                                    /* cluster: 4-bit cluster, 4 members */
            hit = dest == 0xff ||
                  ((ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf) != 0);
    }
    pthread_mutex_unlock(&a->lock);
    return hit;
}

bool lapic_deliver(struct lapic *a, unsigned vector, bool level)
{
    bool ok = false;
    pthread_mutex_lock(&a->lock);
    /* a software-disabled APIC does not take fixed interrupts (KVM drops them too) */
    if (a->svr & 0x100)
        ok = set_irr(a, vector, level);
    update(a);
    pthread_mutex_unlock(&a->lock);
    return ok;
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
            set_irr(a, lvt & 0xff, false);
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

/* Snapshot layout: id (u8), tpr svr ldr dfr esr icr_lo icr_hi divide timer_init
 * esr_pending (u32 each), lvt[7], irr[8], isr[8], tmr[8] (u32 each), timer_start_ns
 * timer_next_ns (u64 each, host CLOCK_MONOTONIC; 0 = not running). */
void lapic_save(struct lapic *a, struct snap_buf *b)
{
    pthread_mutex_lock(&a->lock);
    snap_buf_u8(b, a->id);
    const uint32_t regs[10] = { a->tpr, a->svr, a->ldr, a->dfr, a->esr, a->icr_lo,
                                a->icr_hi, a->divide, a->timer_init, a->esr_pending };
    for (unsigned k = 0; k < 10; k++)
        snap_buf_u32(b, regs[k]);
    for (unsigned k = 0; k < 7; k++)
        snap_buf_u32(b, a->lvt[k]);
    for (unsigned k = 0; k < 8; k++)
        snap_buf_u32(b, a->irr[k]);
    for (unsigned k = 0; k < 8; k++)
        snap_buf_u32(b, a->isr[k]);
    for (unsigned k = 0; k < 8; k++)
        snap_buf_u32(b, a->tmr[k]);
    snap_buf_u64(b, a->timer_start_ns);
    snap_buf_u64(b, a->timer_next_ns);
    pthread_mutex_unlock(&a->lock);
}

int lapic_restore(struct lapic *a, struct snap_rd *r, int64_t shift_ns)
{
    uint8_t id = snap_rd_u8(r);
    uint32_t regs[10], lvt[7], irr[8], isr[8], tmr[8];
    for (unsigned k = 0; k < 10; k++)
        regs[k] = snap_rd_u32(r);
    for (unsigned k = 0; k < 7; k++)
        lvt[k] = snap_rd_u32(r);
    for (unsigned k = 0; k < 8; k++)
        irr[k] = snap_rd_u32(r);
    for (unsigned k = 0; k < 8; k++)
        isr[k] = snap_rd_u32(r);
    for (unsigned k = 0; k < 8; k++)
        tmr[k] = snap_rd_u32(r);
    uint64_t start = snap_rd_u64(r), next = snap_rd_u64(r);
    if (r->failed)
        return VMCORE_EIMAGE;
    if (id != a->id)
        return snap_rd_fail(r, "APIC ID %u, this vCPU's is %u", id, a->id);
    pthread_mutex_lock(&a->lock);
    a->tpr = regs[0];
    a->svr = regs[1];
    a->ldr = regs[2];
    a->dfr = regs[3];
    a->esr = regs[4];
    a->icr_lo = regs[5];
    a->icr_hi = regs[6];
    a->divide = regs[7];
    a->timer_init = regs[8];
    a->esr_pending = regs[9];
    memcpy(a->lvt, lvt, sizeof lvt);
    memcpy(a->irr, irr, sizeof irr);
    memcpy(a->isr, isr, sizeof isr);
    memcpy(a->tmr, tmr, sizeof tmr);
    a->timer_start_ns = start ? start + (uint64_t)shift_ns : 0;
    a->timer_next_ns = next ? next + (uint64_t)shift_ns : 0;
    update(a);
    pthread_mutex_unlock(&a->lock);
    return 0;
}
