/* The interrupt controller and timer the emu backend emulates itself (kvm has them in the
 * kernel): a cascaded i8259 pair, an i8254 PIT and a local APIC. They register their ports
 * and MMIO with the machine and receive device interrupts through the machine_irq_sink. */
#ifndef VMCORE_MACHINE_EMU_IRQCHIP_H
#define VMCORE_MACHINE_EMU_IRQCHIP_H

#include <pthread.h>
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

#endif
