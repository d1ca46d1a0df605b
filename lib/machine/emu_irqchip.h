/* The interrupt controllers and timer the emu backend emulates itself (kvm has them in the
 * kernel): a cascaded i8259 pair, an i8254 PIT, an IOAPIC and one local APIC per vCPU, and
 * struct emu_irqchip, which wires them as a PC does and is the machine's irq sink (device
 * lines and MSIs).
 *
 * Locks: each chip has its own. The IOAPIC delivers with its lock held, taking a LAPIC's
 * (order: IOAPIC, then LAPIC); a LAPIC calls its EOI hook after releasing its lock. The
 * notify hooks run with the chip's lock held and may only read the lock-free state
 * (lapic_pending, lapic_extint, emu_irqchip_pending). */
#ifndef VMCORE_MACHINE_EMU_IRQCHIP_H
#define VMCORE_MACHINE_EMU_IRQCHIP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "machine.h"
#include "platform.h"

/* ---- i8259 ---- */

struct i8259_chip {
    uint8_t irr, imr, isr, last_level;
    uint8_t base;           /* vector of IRQ 0 */
    uint8_t init_state;     /* 0 ready, 1..3 expecting ICW2..ICW4 */
    bool icw4, single, auto_eoi, read_isr;
};

/* Both PICs. @notify runs (with the PIC lock held) whenever the INTR output changes. */
struct i8259 {
    pthread_mutex_t lock;
    struct i8259_chip chip[2];
    bool intr;
    void (*notify)(void *opaque, bool intr);
    void *opaque;
};

int i8259_init(struct i8259 *p, struct machine *m, void (*notify)(void *, bool), void *opaque);
/* Back to the state a BIOS leaves (vectors 8 and 0x70, all masked but the cascade). */
void i8259_reset(struct i8259 *p);
void i8259_destroy(struct i8259 *p);
/* An interrupt line (0..15) changed level. Thread-safe. */
void i8259_set_irq(struct i8259 *p, unsigned irq, int level);
/* INTA: the vector of the highest-priority pending interrupt, -1 if none. */
int i8259_ack(struct i8259 *p);
/* Snapshot state (layout in i8259.c). Restore checks ranges and tells the CPU the INTR
 * level (the notify hook). */
void i8259_save(struct i8259 *p, struct snap_buf *b);
int i8259_restore(struct i8259 *p, struct snap_rd *r);

/* ---- i8254 ---- */

struct i8254_channel {
    uint32_t reload;        /* 1..65536 */
    uint64_t load_ns;       /* when counting started */
    uint8_t mode, access, rw_hi, wr_hi, latched, latch_hi;
    uint16_t latch, wr_lo;
    bool loaded;
};

struct i8254 {
    pthread_mutex_t lock;
    struct i8254_channel ch[3];
    struct machine *m;
    uint64_t next_irq_ns;   /* channel 0's next output edge; 0 = none */
};

int i8254_init(struct i8254 *t, struct machine *m);
/* Every channel unprogrammed, no timer running. */
void i8254_reset(struct i8254 *t);
void i8254_destroy(struct i8254 *t);
/* Raise IRQ 0 (machine_irq_set: GSI 0) for every timer period that ended by @now_ns.
 * Returns the time of the next edge (0 if the timer is idle), for the vCPU's wait. Called
 * from the vCPU thread. */
uint64_t i8254_poll(struct i8254 *t, uint64_t now_ns);
/* Snapshot state (layout in i8254.c); timestamps move by @shift_ns on restore. */
void i8254_save(struct i8254 *t, struct snap_buf *b);
int i8254_restore(struct i8254 *t, struct snap_rd *r, int64_t shift_ns);

/* ---- interrupt messages ---- */

/* Delivery modes of an IOAPIC redirection entry, an MSI data word and the ICR. */
enum apic_delivery {
    APIC_DM_FIXED = 0, APIC_DM_LOWEST = 1, APIC_DM_SMI = 2, APIC_DM_NMI = 4,
    APIC_DM_INIT = 5, APIC_DM_STARTUP = 6, APIC_DM_EXTINT = 7
};

/* One interrupt message, as the IOAPIC or an MSI sends it to the local APICs. */
struct apic_msg {
    uint8_t vector;
    uint8_t mode;           /* enum apic_delivery */
    uint8_t dest;           /* APIC ID (physical) or MDA (logical); 0xff: broadcast */
    bool logical;
    bool level;             /* level-triggered: the LAPIC's EOI goes back to the IOAPIC */
};

/* ---- local APIC ---- */

/* One vCPU's local APIC: ID, TPR/PPR, EOI (broadcast to the IOAPIC for level-triggered
 * vectors, as the TMR records), SVR, ISR/IRR/TMR, LDR/DFR, the LVT timer (one shot and
 * periodic, on a 1 GHz bus clock divided as programmed), LINT0 in ExtINT mode for the PIC,
 * and self-IPIs through the ICR. Other IPIs are dropped (emu runs one vCPU). */
struct lapic {
    pthread_mutex_t lock;
    uint8_t id;             /* APIC ID: the vCPU index */
    uint32_t tpr, svr, ldr, dfr, esr, icr_lo, icr_hi, divide, timer_init;
    uint32_t esr_pending;   /* errors since the last ESR write, which moves them to esr */
    uint32_t lvt[7];        /* CMCI, timer, thermal, perf, LINT0, LINT1, error */
    uint32_t irr[8], isr[8], tmr[8];
    uint64_t timer_start_ns, timer_next_ns;
    _Atomic bool out;       /* a fixed interrupt is pending above the priority */
    _Atomic bool extint;    /* the PIC's output passes through LINT0 */
    void (*notify)(void *opaque);
    void (*eoi)(void *opaque, unsigned vector);
    void *opaque;
};

/* @notify runs with the APIC's lock held whenever lapic_pending() or lapic_extint() may
 * have changed; it must not call back into the APIC except through these two. @eoi (may be
 * NULL) runs without the lock when the guest ends a level-triggered interrupt. */
int lapic_init(struct lapic *a, unsigned id, void (*notify)(void *),
               void (*eoi)(void *, unsigned), void *opaque);
/* Claim the 4 KiB window at PLAT_LAPIC_BASE for @a. */
int lapic_map(struct lapic *a, struct machine *m);
/* The power-on state (software-disabled, every LVT masked); the ID stays. */
void lapic_reset(struct lapic *a);
void lapic_destroy(struct lapic *a);
/* Whether a message for @dest (physical APIC ID, or logical MDA through LDR/DFR, flat or
 * cluster model) addresses this APIC. */
bool lapic_match(struct lapic *a, uint8_t dest, bool logical);
/* Accept a fixed interrupt: IRR (and TMR for level-triggered) set. False when the APIC is
 * software-disabled or the vector is illegal (< 16, which sets the ESR): not accepted. */
bool lapic_deliver(struct lapic *a, unsigned vector, bool level);
/* LINT0 passes the PIC's output (the APIC is disabled, or LINT0 is ExtINT and unmasked). */
bool lapic_extint(struct lapic *a);
/* A fixed interrupt is pending above the processor priority. */
bool lapic_pending(struct lapic *a);
/* INTA: the highest pending vector (moved to in-service), or -1. */
int lapic_ack(struct lapic *a);
/* Fire the timer if due; returns the next deadline (0 = idle). vCPU thread. */
uint64_t lapic_poll(struct lapic *a, uint64_t now_ns);
/* Snapshot state (layout in lapic.c); timestamps move by @shift_ns on restore, which also
 * recomputes the lock-free outputs and calls the notify hook. */
void lapic_save(struct lapic *a, struct snap_buf *b);
int lapic_restore(struct lapic *a, struct snap_rd *r, int64_t shift_ns);

/* ---- IOAPIC ---- */

/* An 82093AA-compatible IOAPIC (version 0x20, with the EOI register) of PLAT_IOAPIC_PINS
 * pins at PLAT_IOAPIC_BASE. Pin levels are logical (1 = asserted): the programmed polarity
 * is kept for the guest to read but not applied, as KVM's in-kernel IOAPIC does. */
struct ioapic {
    pthread_mutex_t lock;
    uint8_t id, sel;
    uint64_t redir[PLAT_IOAPIC_PINS];
    uint32_t asserted;      /* pins whose line is at 1 */
    /* Send @msg; true if some APIC accepted it. Called with the IOAPIC's lock held. */
    bool (*deliver)(void *opaque, const struct apic_msg *msg);
    void *opaque;
};

int ioapic_init(struct ioapic *io, bool (*deliver)(void *, const struct apic_msg *),
                void *opaque);
/* Claim the 4 KiB window at PLAT_IOAPIC_BASE. */
int ioapic_map(struct ioapic *io, struct machine *m);
/* Every entry masked, ID PLAT_IOAPIC_ID; the line levels stay (the devices hold them). */
void ioapic_reset(struct ioapic *io);
void ioapic_destroy(struct ioapic *io);
/* Pin @pin's line is now @level (pins out of range are ignored). Thread-safe. */
void ioapic_set_irq(struct ioapic *io, unsigned pin, int level);
/* End of a level-triggered interrupt of @vector (a LAPIC's EOI broadcast): remote IRR of
 * the entries with that vector cleared, redelivered if their line is still asserted. */
void ioapic_eoi(struct ioapic *io, unsigned vector);
/* Snapshot state (layout in ioapic.c). */
void ioapic_save(struct ioapic *io, struct snap_buf *b);
int ioapic_restore(struct ioapic *io, struct snap_rd *r);

/* ---- the aggregate ---- */

struct emu_irqchip;

/* What went where, for tests and diagnostics. */
struct emu_irqchip_counts {
    uint64_t ioapic_delivered, ioapic_dropped;  /* dropped: no APIC accepted the message */
    uint64_t msi_delivered, msi_dropped;        /* dropped: malformed, or none accepted */
};

#define EMU_IRQCHIP_MAX_CPUS 64

/* Create the PICs, the PIT, the IOAPIC and @ncpus LAPICs (APIC ID = index) for @m, add
 * them to the machine as devices (reset by machine_reset_devices), map their ports and
 * MMIO, claim GSI 0 for the PIT, and make the irqchip the machine's irq sink.
 * @intr(@opaque, cpu) runs, with some chip's lock held, whenever emu_irqchip_pending(cpu)
 * may have changed.
 * The caller owns the result and frees it with emu_irqchip_free() after machine_destroy():
 * the machine's own devices (added before the irqchip, so destroyed after it) may raise
 * interrupts until they are gone. VMCORE_EINVAL for @ncpus outside 1..64, VMCORE_ENOMEM,
 * VMCORE_EBUSY when GSI 0 or a device name is taken, or machine_map()'s error. */
int emu_irqchip_create(struct emu_irqchip **out, struct machine *m, unsigned ncpus,
                       void (*intr)(void *opaque, unsigned cpu), void *opaque);
void emu_irqchip_free(struct emu_irqchip *c);
/* The machine_irq_sink's two entries: GSI 0..15 to the PIC input of that number and the
 * IOAPIC pin (GSI 0, the PIT, to pin 2; GSI 2, the cascade, nowhere), GSI 16..23 to the
 * IOAPIC only; an MSI (address 0xfeeXXXXX, data per the SDM's message format) to the
 * LAPICs it names. Malformed MSIs are dropped and counted. Thread-safe. */
void emu_irqchip_set_irq(struct emu_irqchip *c, unsigned gsi, int level);
void emu_irqchip_msi(struct emu_irqchip *c, uint64_t addr, uint32_t data);
/* vCPU @cpu's INTA: its LAPIC's highest pending vector, else (the BSP, LINT0 ExtINT) the
 * PIC's; -1 if none. */
int emu_irqchip_ack(struct emu_irqchip *c, unsigned cpu);
/* Whether vCPU @cpu's INTR input is asserted. Lock-free. */
bool emu_irqchip_pending(struct emu_irqchip *c, unsigned cpu);
/* Fire due timer interrupts (PIT, LAPIC timers); the next deadline, 0 if none. */
uint64_t emu_irqchip_poll(struct emu_irqchip *c, uint64_t now_ns);
void emu_irqchip_get_counts(struct emu_irqchip *c, struct emu_irqchip_counts *out);

#endif
