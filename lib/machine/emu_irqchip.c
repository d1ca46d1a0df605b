/* The emu backend's interrupt wiring, as on a PC with an IOAPIC:
 *
 *   device line (GSI) --+--> i8259 pair (ISA IRQ 0..15) --INTR--> BSP's LINT0 (ExtINT)
 *                       +--> IOAPIC pin (GSI 0 -> pin 2) --message--> LAPIC(s)
 *   MSI (address/data) ------------------------------------message--> LAPIC(s)
 *
 * Both routes stay live: a guest without IOAPIC support uses the PIC through LINT0 (the
 * state the machine starts in), Linux switches to the IOAPIC by masking the PIC and LINT0.
 * A message goes to the LAPICs its destination names; one nobody accepts is dropped and
 * counted. emu runs one vCPU today: the array of LAPICs is sized by vcpus, but only the
 * first is mapped (see emu_irqchip_create). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_irqchip.h"

/* One vCPU's APIC as a machine device; the opaque of its hooks. */
struct irqchip_cpu {
    struct machine_device dev;
    struct lapic apic;
    struct emu_irqchip *c;
    unsigned index;
    bool ok;
    char name[16];
};

struct emu_irqchip {
    struct machine *m;
    struct machine_device pic_dev, pit_dev, ioapic_dev;
    struct i8259 pic;
    struct i8254 pit;
    struct ioapic ioapic;
    bool pic_ok, pit_ok, ioapic_ok;
    _Atomic bool pic_out;
    void (*intr)(void *opaque, unsigned cpu);
    void *opaque;
    _Atomic uint64_t ioapic_delivered, ioapic_dropped, msi_delivered, msi_dropped;
    unsigned ncpus;
    struct irqchip_cpu cpu[];
};

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/* ---- messages to the LAPICs ---- */

/* Fixed and lowest-priority messages set an IRR bit in the addressed APICs; lowest
 * priority picks the first addressed APIC that takes it (arbitration by priority is
 * allowed to be that simple: the SDM leaves the choice to the chipset). NMI, SMI, INIT,
 * start-up and ExtINT messages have no input on the software CPU: not accepted. */
static bool deliver(struct emu_irqchip *c, const struct apic_msg *msg)
{
    bool any = false;
    if (msg->mode != APIC_DM_FIXED && msg->mode != APIC_DM_LOWEST)
        return false;
    for (unsigned k = 0; k < c->ncpus; k++) {
        struct lapic *a = &c->cpu[k].apic;
        if (!lapic_match(a, msg->dest, msg->logical))
            continue;
        if (lapic_deliver(a, msg->vector, msg->level)) {
            any = true;
            if (msg->mode == APIC_DM_LOWEST)
                break;
        }
    }
    return any;
}

static bool ioapic_deliver(void *opaque, const struct apic_msg *msg)
{
    struct emu_irqchip *c = opaque;
    bool ok = deliver(c, msg);
    atomic_fetch_add_explicit(ok ? &c->ioapic_delivered : &c->ioapic_dropped, 1,
                              memory_order_relaxed);
    return ok;
}

/* MSI address (SDM vol. 3, "Message Address Register Format"): 0xfee in bits 31:20, the
 * destination ID in 19:12, bits 11:4 reserved, redirection hint 3, destination mode 2,
 * bits 1:0 don't care. Data: vector 7:0, delivery mode 10:8, bits 13:11 reserved, level
 * 14, trigger mode 15, bits 31:16 reserved (zero in an MSI-X entry; the 16-bit MSI data
 * register leaves them 0). */
#define MSI_ADDR_RESERVED 0xff0u
#define MSI_ADDR_RH (1u << 3)
#define MSI_ADDR_LOGICAL (1u << 2)
#define MSI_DATA_RESERVED 0xffff3800u
#define MSI_DATA_ASSERT (1u << 14)
#define MSI_DATA_LEVEL (1u << 15)

static bool msi_decode(uint64_t addr, uint32_t data, struct apic_msg *msg)
{
    unsigned mode = (data >> 8) & 7;
    if ((addr >> 20) != 0xfee || (addr & MSI_ADDR_RESERVED) || (data & MSI_DATA_RESERVED))
        return false;
    if (mode != APIC_DM_FIXED && mode != APIC_DM_LOWEST)
        return false;                       /* reserved, or no such input (see deliver) */
    if ((data & 0xff) < 16)
        return false;                       /* vectors 0..15 are illegal for the APIC */
    /* a level-triggered deassert message has nothing to deliver */
    if ((data & MSI_DATA_LEVEL) && !(data & MSI_DATA_ASSERT))
        return false;
    *msg = (struct apic_msg){
        .vector = (uint8_t)data,
        .mode = (uint8_t)mode,
        .dest = (uint8_t)(addr >> 12),
        .logical = addr & MSI_ADDR_LOGICAL,
        .level = data & MSI_DATA_LEVEL,
    };
    /* Redirection hint: the message may go to any one of the APICs addressed. */
    if (addr & MSI_ADDR_RH)
        msg->mode = APIC_DM_LOWEST;
    return true;
}

void emu_irqchip_msi(struct emu_irqchip *c, uint64_t addr, uint32_t data)
{
    struct apic_msg msg;
    bool ok = msi_decode(addr, data, &msg) && deliver(c, &msg);
    atomic_fetch_add_explicit(ok ? &c->msi_delivered : &c->msi_dropped, 1,
                              memory_order_relaxed);
}

/* ---- lines ---- */

void emu_irqchip_set_irq(struct emu_irqchip *c, unsigned gsi, int level)
{
    if (gsi >= MACHINE_GSI_COUNT)
        return;
    /* ISA IRQ 2 is the PICs' cascade and the IOAPIC pin that the PIT's IRQ 0 takes (the
     * MADT's override): no device line drives it. */
    if (gsi == 2)
        return;
    if (gsi < MACHINE_GSI_PCI_FIRST)
        i8259_set_irq(&c->pic, gsi, level);
    ioapic_set_irq(&c->ioapic, gsi == 0 ? 2 : gsi, level);
}

static void sink_set_irq(void *opaque, unsigned gsi, int level)
{
    emu_irqchip_set_irq(opaque, gsi, level);
}

static void sink_msi(void *opaque, uint64_t addr, uint32_t data)
{
    emu_irqchip_msi(opaque, addr, data);
}

/* ---- the CPU's side ---- */

/* Only the BSP's LINT0 is wired to the PIC as ExtINT, as a PC's BIOS leaves it. */
bool emu_irqchip_pending(struct emu_irqchip *c, unsigned cpu)
{
    if (cpu >= c->ncpus)
        return false;
    struct lapic *a = &c->cpu[cpu].apic;
    return lapic_pending(a) ||
           (cpu == 0 && lapic_extint(a) && atomic_load(&c->pic_out));
}

int emu_irqchip_ack(struct emu_irqchip *c, unsigned cpu)
{
    if (cpu >= c->ncpus)
        return -1;
    struct lapic *a = &c->cpu[cpu].apic;
    int v = lapic_ack(a);
    if (v >= 0)
        return v;
    if (cpu == 0 && lapic_extint(a) && atomic_load(&c->pic_out))
        return i8259_ack(&c->pic);
    return -1;
}

/* All timers are polled from the one vCPU thread; with emu SMP each vCPU polls its own
 * LAPIC and one of them the PIT. */
uint64_t emu_irqchip_poll(struct emu_irqchip *c, uint64_t now)
{
    uint64_t next = i8254_poll(&c->pit, now);
    for (unsigned k = 0; k < c->ncpus; k++) {
        uint64_t t = lapic_poll(&c->cpu[k].apic, now);
        if (t && (!next || t < next))
            next = t;
    }
    return next;
}

void emu_irqchip_get_counts(struct emu_irqchip *c, struct emu_irqchip_counts *out)
{
    out->ioapic_delivered = atomic_load(&c->ioapic_delivered);
    out->ioapic_dropped = atomic_load(&c->ioapic_dropped);
    out->msi_delivered = atomic_load(&c->msi_delivered);
    out->msi_dropped = atomic_load(&c->msi_dropped);
}

/* ---- hooks ---- */

static void pic_notify(void *opaque, bool level)
{
    struct emu_irqchip *c = opaque;
    atomic_store(&c->pic_out, level);
    if (c->intr)
        c->intr(c->opaque, 0);
}

static void lapic_notify(void *opaque)
{
    struct irqchip_cpu *cpu = opaque;
    if (cpu->c->intr)
        cpu->c->intr(cpu->c->opaque, cpu->index);
}

static void lapic_eoi(void *opaque, unsigned vector)
{
    struct irqchip_cpu *cpu = opaque;
    ioapic_eoi(&cpu->c->ioapic, vector);
}

/* ---- devices ----
 * Reset through the machine; no destroy hook: emu_irqchip_free() releases them once the
 * machine (and every device that could still raise a line) is gone. */

static void pic_dev_reset(struct machine_device *d)
{
    i8259_reset(&container_of(d, struct emu_irqchip, pic_dev)->pic);
}

static void pit_dev_reset(struct machine_device *d)
{
    i8254_reset(&container_of(d, struct emu_irqchip, pit_dev)->pit);
}

static void ioapic_dev_reset(struct machine_device *d)
{
    ioapic_reset(&container_of(d, struct emu_irqchip, ioapic_dev)->ioapic);
}

static void lapic_dev_reset(struct machine_device *d)
{
    lapic_reset(&container_of(d, struct irqchip_cpu, dev)->apic);
}

/* Snapshots: each chip's state, as its own file lays it out. */
static int pic_dev_save(struct machine_device *d, struct snap_buf *b)
{
    i8259_save(&container_of(d, struct emu_irqchip, pic_dev)->pic, b);
    return 0;
}

static int pic_dev_restore(struct machine_device *d, struct snap_rd *r, int64_t shift_ns)
{
    (void)shift_ns;
    return i8259_restore(&container_of(d, struct emu_irqchip, pic_dev)->pic, r);
}

static int pit_dev_save(struct machine_device *d, struct snap_buf *b)
{
    i8254_save(&container_of(d, struct emu_irqchip, pit_dev)->pit, b);
    return 0;
}

static int pit_dev_restore(struct machine_device *d, struct snap_rd *r, int64_t shift_ns)
{
    return i8254_restore(&container_of(d, struct emu_irqchip, pit_dev)->pit, r, shift_ns);
}

static int ioapic_dev_save(struct machine_device *d, struct snap_buf *b)
{
    ioapic_save(&container_of(d, struct emu_irqchip, ioapic_dev)->ioapic, b);
    return 0;
}

static int ioapic_dev_restore(struct machine_device *d, struct snap_rd *r, int64_t shift_ns)
{
    (void)shift_ns;
    return ioapic_restore(&container_of(d, struct emu_irqchip, ioapic_dev)->ioapic, r);
}

static int lapic_dev_save(struct machine_device *d, struct snap_buf *b)
{
    lapic_save(&container_of(d, struct irqchip_cpu, dev)->apic, b);
    return 0;
}

static int lapic_dev_restore(struct machine_device *d, struct snap_rd *r, int64_t shift_ns)
{
    return lapic_restore(&container_of(d, struct irqchip_cpu, dev)->apic, r, shift_ns);
}

static const struct machine_device_ops pic_dev_ops = {
    .type = "i8259", .reset = pic_dev_reset, .save = pic_dev_save, .restore = pic_dev_restore,
};
static const struct machine_device_ops pit_dev_ops = {
    .type = "i8254", .reset = pit_dev_reset, .save = pit_dev_save, .restore = pit_dev_restore,
};
static const struct machine_device_ops ioapic_dev_ops = {
    .type = "ioapic", .reset = ioapic_dev_reset, .save = ioapic_dev_save,
    .restore = ioapic_dev_restore,
};
static const struct machine_device_ops lapic_dev_ops = {
    .type = "lapic", .reset = lapic_dev_reset, .save = lapic_dev_save,
    .restore = lapic_dev_restore,
};

int emu_irqchip_create(struct emu_irqchip **out, struct machine *m, unsigned ncpus,
                       void (*intr)(void *opaque, unsigned cpu), void *opaque)
{
    struct emu_irqchip *c;
    int rc;
    *out = NULL;
    if (ncpus < 1 || ncpus > EMU_IRQCHIP_MAX_CPUS)
        return VMCORE_EINVAL;
    c = calloc(1, sizeof *c + ncpus * sizeof c->cpu[0]);
    if (!c)
        return VMCORE_ENOMEM;
    c->m = m;
    c->ncpus = ncpus;
    c->intr = intr;
    c->opaque = opaque;
    atomic_init(&c->pic_out, false);
    atomic_init(&c->ioapic_delivered, 0);
    atomic_init(&c->ioapic_dropped, 0);
    atomic_init(&c->msi_delivered, 0);
    atomic_init(&c->msi_dropped, 0);

    if ((rc = i8259_init(&c->pic, m, pic_notify, c)))
        goto fail;
    c->pic_ok = true;
    if ((rc = i8254_init(&c->pit, m)))
        goto fail;
    c->pit_ok = true;
    /* the PIT drives ISA IRQ 0 (machine_irq_set(0) from i8254_poll) */
    if ((rc = machine_irq_claim(m, 0, "i8254")))
        goto fail;
    if ((rc = ioapic_init(&c->ioapic, ioapic_deliver, c)))
        goto fail;
    c->ioapic_ok = true;
    if ((rc = ioapic_map(&c->ioapic, m)))
        goto fail;
    for (unsigned k = 0; k < ncpus; k++) {
        struct irqchip_cpu *cpu = &c->cpu[k];
        cpu->c = c;
        cpu->index = k;
        snprintf(cpu->name, sizeof cpu->name, "lapic%u", k);
        if ((rc = lapic_init(&cpu->apic, k, lapic_notify, lapic_eoi, cpu)))
            goto fail;
        cpu->ok = true;
    }
    /* Every LAPIC sits at the same address, and which one an access reaches depends on the
     * vCPU making it, which the machine's bus does not pass to a handler. One vCPU today:
     * the BSP's is mapped. emu SMP must route LAPIC accesses by the accessing vCPU. */
    if ((rc = lapic_map(&c->cpu[0].apic, m)))
        goto fail;
    /* Devices last, and only once no add can fail: the machine has no way to take a
     * device back out of its list. A name already taken is the one failure it has. */
    if (machine_device_find(m, "i8259") || machine_device_find(m, "i8254") ||
        machine_device_find(m, "ioapic")) {
        rc = VMCORE_EBUSY;
        goto fail;
    }
    for (unsigned k = 0; k < ncpus; k++)
        if (machine_device_find(m, c->cpu[k].name)) {
            rc = VMCORE_EBUSY;
            goto fail;
        }
    machine_device_add(m, &c->pic_dev, &pic_dev_ops, "i8259");
    machine_device_add(m, &c->pit_dev, &pit_dev_ops, "i8254");
    machine_device_add(m, &c->ioapic_dev, &ioapic_dev_ops, "ioapic");
    for (unsigned k = 0; k < ncpus; k++)
        machine_device_add(m, &c->cpu[k].dev, &lapic_dev_ops, c->cpu[k].name);
    machine_set_irq_sink(m, &(struct machine_irq_sink){ sink_set_irq, sink_msi, c });
    *out = c;
    return 0;
fail:
    /* Take back whatever range got mapped (unmapping one that is not is a no-op). */
    machine_unmap(m, MACHINE_PIO, 0x20, &c->pic);
    machine_unmap(m, MACHINE_PIO, 0xa0, &c->pic);
    machine_unmap(m, MACHINE_PIO, 0x40, &c->pit);
    machine_unmap(m, MACHINE_MMIO, PLAT_IOAPIC_BASE, &c->ioapic);
    machine_unmap(m, MACHINE_MMIO, PLAT_LAPIC_BASE, &c->cpu[0].apic);
    emu_irqchip_free(c);
    return rc;
}

void emu_irqchip_free(struct emu_irqchip *c)
{
    if (!c)
        return;
    for (unsigned k = 0; k < c->ncpus; k++)
        if (c->cpu[k].ok)
            lapic_destroy(&c->cpu[k].apic);
    if (c->ioapic_ok)
        ioapic_destroy(&c->ioapic);
    if (c->pit_ok)
        i8254_destroy(&c->pit);
    if (c->pic_ok)
        i8259_destroy(&c->pic);
    free(c);
}
