/* Two cascaded 8259A programmable interrupt controllers (ports 0x20 and 0xa0): edge
 * triggered, fully nested priority, specific and non-specific EOI, auto-EOI, IRR/ISR
 * reads. Used by the emu backend only (kvm's is in the kernel). */
#include <string.h>

#include "emu_irqchip.h"

/* Highest-priority bit of @v (IRQ 0 first), 8 if none. */
static unsigned prio(uint8_t v)
{
    return v ? (unsigned)__builtin_ctz(v) : 8;
}

/* The IRQ this chip would raise now, or -1: pending, unmasked, above anything in service. */
static int chip_pending(const struct i8259_chip *c)
{
    unsigned p = prio(c->irr & ~c->imr);
    if (p == 8 || p >= prio(c->isr))
        return -1;
    return (int)p;
}

static void update(struct i8259 *p)
{
    struct i8259_chip *s = &p->chip[1], *m = &p->chip[0];
    /* the slave's output is the master's IRQ 2 input (edge) */
    bool slave_out = chip_pending(s) >= 0;
    if (slave_out && !(m->last_level & 4))
        m->irr |= 4;
    if (slave_out)
        m->last_level |= 4;
    else
        m->last_level &= (uint8_t)~4;
    bool out = chip_pending(m) >= 0;
    if (out != p->intr) {
        p->intr = out;
        if (p->notify)
            p->notify(p->opaque, out);
    }
}

void i8259_set_irq(struct i8259 *p, unsigned irq, int level)
{
    struct i8259_chip *c;
    uint8_t bit;
    if (irq > 15)
        return;
    c = &p->chip[irq >> 3];
    bit = (uint8_t)(1u << (irq & 7));
    pthread_mutex_lock(&p->lock);
    if (level) {
        if (!(c->last_level & bit))
            c->irr |= bit;
        c->last_level |= bit;
    } else {
        c->last_level &= (uint8_t)~bit;
    }
    update(p);
    pthread_mutex_unlock(&p->lock);
}

static int chip_ack(struct i8259_chip *c, int irq)
{
    uint8_t bit = (uint8_t)(1u << irq);
    c->irr &= (uint8_t)~bit;
    if (!c->auto_eoi)
        c->isr |= bit;
    return c->base + irq;
}

int i8259_ack(struct i8259 *p)
{
    int v, irq;
    pthread_mutex_lock(&p->lock);
    irq = chip_pending(&p->chip[0]);
    if (irq < 0) {
        v = p->chip[0].base + 7;    /* spurious */
    } else if (irq == 2) {
        int s = chip_pending(&p->chip[1]);
        chip_ack(&p->chip[0], 2);
        v = s < 0 ? p->chip[1].base + 7 : chip_ack(&p->chip[1], s);
    } else {
        v = chip_ack(&p->chip[0], irq);
    }
    update(p);
    pthread_mutex_unlock(&p->lock);
    return v;
}

static uint64_t pic_read(void *opaque, uint64_t off, unsigned size, unsigned n)
{
    struct i8259 *p = opaque;
    struct i8259_chip *c = &p->chip[n];
    uint64_t v;
    (void)size;
    pthread_mutex_lock(&p->lock);
    if (off == 0)
        v = c->read_isr ? c->isr : c->irr;
    else
        v = c->imr;
    pthread_mutex_unlock(&p->lock);
    return v;
}

static void pic_write(void *opaque, uint64_t off, unsigned size, uint64_t val, unsigned n)
{
    struct i8259 *p = opaque;
    struct i8259_chip *c = &p->chip[n];
    uint8_t v = (uint8_t)val;
    (void)size;
    pthread_mutex_lock(&p->lock);
    if (off == 0) {
        if (v & 0x10) {                 /* ICW1 */
            c->icw4 = v & 1;
            c->single = v & 2;
            c->init_state = 1;
            c->imr = 0;
            c->isr = 0;
            c->irr = 0;
            c->last_level = 0;
            c->auto_eoi = false;
            c->read_isr = false;
        } else if (v & 0x08) {          /* OCW3 */
            if (v & 2)
                c->read_isr = v & 1;
        } else {                        /* OCW2 */
            unsigned cmd = v >> 5;
            if (cmd == 1 || cmd == 5) {         /* non-specific EOI */
                unsigned b = prio(c->isr);
                if (b < 8)
                    c->isr &= (uint8_t)~(1u << b);
            } else if (cmd == 3 || cmd == 7) {  /* specific EOI */
                c->isr &= (uint8_t)~(1u << (v & 7));
            }
        }
    } else {
        switch (c->init_state) {
        case 1:
            c->base = v & 0xf8;
            c->init_state = c->single ? (c->icw4 ? 3 : 0) : 2;
            break;
        case 2:
            c->init_state = c->icw4 ? 3 : 0;
            break;
        case 3:
            c->auto_eoi = v & 2;
            c->init_state = 0;
            break;
        default:
            c->imr = v;
            break;
        }
    }
    update(p);
    pthread_mutex_unlock(&p->lock);
}

static uint64_t master_read(void *o, uint64_t off, unsigned sz) { return pic_read(o, off, sz, 0); }
static uint64_t slave_read(void *o, uint64_t off, unsigned sz) { return pic_read(o, off, sz, 1); }
static void master_write(void *o, uint64_t off, unsigned sz, uint64_t v) { pic_write(o, off, sz, v, 0); }
static void slave_write(void *o, uint64_t off, unsigned sz, uint64_t v) { pic_write(o, off, sz, v, 1); }

static const struct machine_dev_ops master_ops = { master_read, master_write };
static const struct machine_dev_ops slave_ops = { slave_read, slave_write };

/* The BIOS's setup, which guests booted without one expect: vectors 8 and 0x70,
 * everything masked but the cascade. */
static void reset_locked(struct i8259 *p)
{
    memset(p->chip, 0, sizeof p->chip);
    p->chip[0].base = 0x08;
    p->chip[1].base = 0x70;
    p->chip[0].imr = 0xfb;
    p->chip[1].imr = 0xff;
    update(p);
}

void i8259_reset(struct i8259 *p)
{
    pthread_mutex_lock(&p->lock);
    reset_locked(p);
    pthread_mutex_unlock(&p->lock);
}

int i8259_init(struct i8259 *p, struct machine *m, void (*notify)(void *, bool), void *opaque)
{
    int rc;
    memset(p, 0, sizeof *p);
    if (pthread_mutex_init(&p->lock, NULL))
        return VMCORE_ENOMEM;
    p->notify = notify;
    p->opaque = opaque;
    reset_locked(p);
    if ((rc = machine_register_pio(m, 0x20, 2, &master_ops, p, "pic-master")) ||
        (rc = machine_register_pio(m, 0xa0, 2, &slave_ops, p, "pic-slave"))) {
        machine_unmap(m, MACHINE_PIO, 0x20, p);     /* no-op if the first failed */
        pthread_mutex_destroy(&p->lock);
        return rc;
    }
    return 0;
}

void i8259_destroy(struct i8259 *p)
{
    pthread_mutex_destroy(&p->lock);
}

/* Snapshot layout, for the master then the slave: irr imr isr last_level base init_state
 * (u8 each), then icw4 single auto_eoi read_isr (u8 each, 0 or 1); then the INTR output
 * (u8). */
void i8259_save(struct i8259 *p, struct snap_buf *b)
{
    pthread_mutex_lock(&p->lock);
    for (unsigned k = 0; k < 2; k++) {
        const struct i8259_chip *c = &p->chip[k];
        uint8_t v[10] = { c->irr, c->imr, c->isr, c->last_level, c->base, c->init_state,
                          c->icw4, c->single, c->auto_eoi, c->read_isr };
        snap_buf_put(b, v, sizeof v);
    }
    snap_buf_u8(b, p->intr);
    pthread_mutex_unlock(&p->lock);
}

int i8259_restore(struct i8259 *p, struct snap_rd *r)
{
    uint8_t v[2][10];
    snap_rd_get(r, v, sizeof v);
    uint8_t intr = snap_rd_u8(r);
    if (r->failed)
        return VMCORE_EIMAGE;
    for (unsigned k = 0; k < 2; k++) {
        if (v[k][5] > 3)
            return snap_rd_fail(r, "%s PIC: initialisation step %u (at most 3)",
                                k ? "slave" : "master", v[k][5]);
        for (unsigned f = 6; f < 10; f++)
            if (v[k][f] > 1)
                return snap_rd_fail(r, "%s PIC: a flag that is neither 0 nor 1",
                                    k ? "slave" : "master");
    }
    if (intr > 1)
        return snap_rd_fail(r, "an INTR level that is neither 0 nor 1");
    pthread_mutex_lock(&p->lock);
    for (unsigned k = 0; k < 2; k++) {
        struct i8259_chip *c = &p->chip[k];
        c->irr = v[k][0];
        c->imr = v[k][1];
        c->isr = v[k][2];
        c->last_level = v[k][3];
        c->base = v[k][4];
        c->init_state = v[k][5];
        c->icw4 = v[k][6];
        c->single = v[k][7];
        c->auto_eoi = v[k][8];
        c->read_isr = v[k][9];
    }
    /* the output as these registers give it; tell the CPU */
    p->intr = !intr;
    update(p);
    if (p->intr != (intr != 0)) {
        pthread_mutex_unlock(&p->lock);
        return snap_rd_fail(r, "the INTR level does not follow from the registers");
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}
