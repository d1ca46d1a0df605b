/* The interrupt controller and timer the emu backend emulates itself (kvm has them in the
 * kernel): a cascaded i8259 pair, an i8254 PIT and a local APIC. They register their ports
 * and MMIO with the machine and receive device interrupts through the machine_irq_sink. */
#ifndef VMCORE_MACHINE_EMU_IRQCHIP_H
#define VMCORE_MACHINE_EMU_IRQCHIP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "machine.h"

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
void i8259_destroy(struct i8259 *p);
/* An interrupt line (0..15) changed level. Thread-safe. */
void i8259_set_irq(struct i8259 *p, unsigned irq, int level);
/* INTA: the vector of the highest-priority pending interrupt, -1 if none. */
int i8259_ack(struct i8259 *p);

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
void i8254_destroy(struct i8254 *t);
/* Raise IRQ 0 for every timer period that ended by @now_ns. Returns the time of the next
 * edge (0 if the timer is idle), for the vCPU's wait. Called from the vCPU thread. */
uint64_t i8254_poll(struct i8254 *t, uint64_t now_ns);

/* The local APIC of the (single) vCPU at 0xfee00000: ID, TPR/PPR, EOI, SVR, ISR/IRR, the
 * LVT timer (one shot and periodic, on a 1 GHz bus clock divided as programmed), LINT0 in
 * ExtINT mode for the PIC, and self-IPIs through the ICR. Other IPIs are dropped (one CPU). */
struct lapic {
    pthread_mutex_t lock;
    uint32_t tpr, svr, ldr, dfr, esr, icr_lo, icr_hi, divide, timer_init;
    uint32_t lvt[7];        /* CMCI, timer, thermal, perf, LINT0, LINT1, error */
    uint32_t irr[8], isr[8];
    uint64_t timer_start_ns, timer_next_ns;
    _Atomic bool out;       /* a fixed interrupt is pending above the priority */
    _Atomic bool extint;    /* the PIC's output passes through LINT0 */
    void (*notify)(void *opaque);
    void *opaque;
};

int lapic_init(struct lapic *a, struct machine *m, void (*notify)(void *), void *opaque);
void lapic_destroy(struct lapic *a);
/* @notify runs with the APIC's lock held whenever lapic_pending() or lapic_extint() may
 * have changed; it must not call back into the APIC except through these two. */
/* LINT0 passes the PIC's output (the APIC is disabled, or LINT0 is ExtINT and unmasked). */
bool lapic_extint(struct lapic *a);
/* A fixed interrupt is pending above the processor priority. */
bool lapic_pending(struct lapic *a);
/* INTA: the highest pending vector (moved to in-service), or -1. */
int lapic_ack(struct lapic *a);
/* Fire the timer if due; returns the next deadline (0 = idle). vCPU thread. */
uint64_t lapic_poll(struct lapic *a, uint64_t now_ns);

#endif
