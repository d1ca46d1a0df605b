/* The emu backend's IOAPIC (kvm has one in the kernel): the 82093AA register interface of
 * an IOAPIC version 0x20, which adds the EOI register Linux uses for level-triggered pins.
 * Register layout and redirection-entry format: Intel's 82093AA datasheet, sections 3.0-3.2.
 *
 *   MMIO +0x00 IOREGSEL (register index), +0x10 IOWIN (the selected register), +0x40 EOI
 *   registers 0 ID, 1 version, 2 arbitration ID, 0x10 + 2n / 0x11 + 2n pin n's entry
 *
 * Only 32-bit accesses at those three offsets do anything: others read 0 and are ignored,
 * as on the chip, whose datasheet allows only aligned dword accesses. */
#include <string.h>

#include "emu_irqchip.h"

#define IOAPIC_VERSION 0x20
#define IOREGSEL 0x00
#define IOWIN 0x10
#define IOEOI 0x40

/* Redirection-entry bits. */
#define RE_VECTOR 0xffull
#define RE_MODE_SHIFT 8
#define RE_LOGICAL (1ull << 11)
#define RE_DELIVS (1ull << 12)      /* delivery status: always idle, we deliver at once */
#define RE_POLARITY (1ull << 13)
#define RE_REMOTE_IRR (1ull << 14)
#define RE_LEVEL (1ull << 15)
#define RE_MASKED (1ull << 16)
#define RE_DEST_SHIFT 56
/* What the guest can write: vector, mode, destination mode, polarity, trigger, mask and
 * the destination byte. Delivery status and remote IRR are read-only; bits 17-55 are
 * reserved and read 0. */
#define RE_WRITABLE (RE_VECTOR | (7ull << RE_MODE_SHIFT) | RE_LOGICAL | RE_POLARITY | \
                     RE_LEVEL | RE_MASKED | (0xffull << RE_DEST_SHIFT))

/* Send pin @pin's entry if its state allows: unmasked, and for a level-triggered pin the
 * line asserted and no interrupt of it still in service (remote IRR clear). Lock held. */
static void service(struct ioapic *io, unsigned pin)
{
    uint64_t e = io->redir[pin];
    bool level = e & RE_LEVEL;
    if (e & RE_MASKED)
        return;
    if (level && (!(io->asserted & (1u << pin)) || (e & RE_REMOTE_IRR)))
        return;
    struct apic_msg msg = {
        .vector = (uint8_t)(e & RE_VECTOR),
        .mode = (uint8_t)((e >> RE_MODE_SHIFT) & 7),
        .dest = (uint8_t)(e >> RE_DEST_SHIFT),
        .logical = e & RE_LOGICAL,
        .level = level,
    };
    /* A level interrupt nobody accepted leaves remote IRR clear: the next assertion,
     * EOI or reprogramming tries again. */
    if (io->deliver(io->opaque, &msg) && level)
        io->redir[pin] |= RE_REMOTE_IRR;
}

void ioapic_set_irq(struct ioapic *io, unsigned pin, int level)
{
    if (pin >= PLAT_IOAPIC_PINS)
        return;
    uint32_t bit = 1u << pin;
    pthread_mutex_lock(&io->lock);
    bool was = io->asserted & bit;
    if (level) {
        io->asserted |= bit;
        /* edge: only a rising edge sends (one lost while masked stays lost, as on the
         * chip); level: every assertion retries a delivery nobody accepted yet */
        if (!was || (io->redir[pin] & RE_LEVEL))
            service(io, pin);
    } else {
        io->asserted &= ~bit;
    }
    pthread_mutex_unlock(&io->lock);
}

static void eoi_locked(struct ioapic *io, unsigned vector)
{
    for (unsigned pin = 0; pin < PLAT_IOAPIC_PINS; pin++) {
        uint64_t e = io->redir[pin];
        if ((e & RE_VECTOR) != vector || !(e & RE_LEVEL) || !(e & RE_REMOTE_IRR))
            continue;
        io->redir[pin] = e & ~RE_REMOTE_IRR;
        service(io, pin);
    }
}

void ioapic_eoi(struct ioapic *io, unsigned vector)
{
    pthread_mutex_lock(&io->lock);
    eoi_locked(io, vector & 0xff);
    pthread_mutex_unlock(&io->lock);
}

static uint32_t reg_read(const struct ioapic *io, unsigned reg)
{
    switch (reg) {
    case 0x00: return (uint32_t)(io->id & 0xf) << 24;
    case 0x01: return (uint32_t)(PLAT_IOAPIC_PINS - 1) << 16 | IOAPIC_VERSION;
    case 0x02: return (uint32_t)(io->id & 0xf) << 24;   /* arbitration ID: loaded from ID */
    default:
        if (reg >= 0x10 && reg < 0x10 + 2 * PLAT_IOAPIC_PINS) {
            uint64_t e = io->redir[(reg - 0x10) / 2];
            return (uint32_t)(reg & 1 ? e >> 32 : e);
        }
        return 0;
    }
}

static void reg_write(struct ioapic *io, unsigned reg, uint32_t v)
{
    if (reg == 0x00) {
        io->id = (uint8_t)((v >> 24) & 0xf);
        return;
    }
    if (reg < 0x10 || reg >= 0x10 + 2 * PLAT_IOAPIC_PINS)
        return;                 /* version, arbitration and unimplemented: read-only */
    unsigned pin = (reg - 0x10) / 2;
    uint64_t old = io->redir[pin], e;
    if (reg & 1)
        e = (old & 0xffffffffull) | (uint64_t)v << 32;
    else
        e = (old & ~0xffffffffull) | v;
    e = (e & RE_WRITABLE) | (old & RE_REMOTE_IRR);
    /* Switching a pin to edge clears remote IRR: the 82093AA's only way to do it before
     * the EOI register, which older kernels still use (and KVM honours). */
    if (!(e & RE_LEVEL))
        e &= ~RE_REMOTE_IRR;
    io->redir[pin] = e;
    /* A level line asserted while masked (or while its entry was being set up) is sent
     * once the entry allows it. Edges seen while masked are not kept. */
    if (e & RE_LEVEL)
        service(io, pin);
}

static uint64_t ioapic_read(void *opaque, uint64_t off, unsigned size)
{
    struct ioapic *io = opaque;
    uint32_t v = 0;
    if (size != 4 || (off != IOREGSEL && off != IOWIN))
        return 0;
    pthread_mutex_lock(&io->lock);
    v = off == IOREGSEL ? io->sel : reg_read(io, io->sel);
    pthread_mutex_unlock(&io->lock);
    return v;
}

static void ioapic_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct ioapic *io = opaque;
    uint32_t v = (uint32_t)val;
    if (size != 4)
        return;
    pthread_mutex_lock(&io->lock);
    if (off == IOREGSEL)
        io->sel = (uint8_t)v;
    else if (off == IOWIN)
        reg_write(io, io->sel, v);
    else if (off == IOEOI)
        eoi_locked(io, v & 0xff);
    pthread_mutex_unlock(&io->lock);
}

static const struct machine_dev_ops ioapic_ops = { ioapic_read, ioapic_write };

void ioapic_reset(struct ioapic *io)
{
    pthread_mutex_lock(&io->lock);
    io->id = PLAT_IOAPIC_ID;
    io->sel = 0;
    for (unsigned k = 0; k < PLAT_IOAPIC_PINS; k++)
        io->redir[k] = RE_MASKED;
    pthread_mutex_unlock(&io->lock);
}

int ioapic_init(struct ioapic *io, bool (*deliver)(void *, const struct apic_msg *),
                void *opaque)
{
    memset(io, 0, sizeof *io);
    if (pthread_mutex_init(&io->lock, NULL))
        return VMCORE_ENOMEM;
    io->deliver = deliver;
    io->opaque = opaque;
    ioapic_reset(io);
    return 0;
}

int ioapic_map(struct ioapic *io, struct machine *m)
{
    return machine_register_mmio(m, PLAT_IOAPIC_BASE, 0x1000, &ioapic_ops, io, "ioapic");
}

void ioapic_destroy(struct ioapic *io)
{
    pthread_mutex_destroy(&io->lock);
}

/* Snapshot layout: id sel (u8 each), the 24 redirection entries (u64 each), the asserted
 * pins (u32, bit n = pin n). */
void ioapic_save(struct ioapic *io, struct snap_buf *b)
{
    pthread_mutex_lock(&io->lock);
    snap_buf_u8(b, io->id);
    snap_buf_u8(b, io->sel);
    for (unsigned k = 0; k < PLAT_IOAPIC_PINS; k++)
        snap_buf_u64(b, io->redir[k]);
    snap_buf_u32(b, io->asserted);
    pthread_mutex_unlock(&io->lock);
}

int ioapic_restore(struct ioapic *io, struct snap_rd *r)
{
    uint8_t id = snap_rd_u8(r), sel = snap_rd_u8(r);
    uint64_t redir[PLAT_IOAPIC_PINS];
    for (unsigned k = 0; k < PLAT_IOAPIC_PINS; k++)
        redir[k] = snap_rd_u64(r);
    uint32_t asserted = snap_rd_u32(r);
    if (r->failed)
        return VMCORE_EIMAGE;
    if (asserted >> PLAT_IOAPIC_PINS)
        return snap_rd_fail(r, "asserted pins 0x%x beyond the %u pins", asserted,
                            PLAT_IOAPIC_PINS);
    pthread_mutex_lock(&io->lock);
    io->id = id;
    io->sel = sel;
    memcpy(io->redir, redir, sizeof redir);
    io->asserted = asserted;
    pthread_mutex_unlock(&io->lock);
    return 0;
}
