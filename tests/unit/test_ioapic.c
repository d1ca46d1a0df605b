/* The emu backend's interrupt controllers without a CPU (lib/machine/emu_irqchip.c,
 * ioapic.c, lapic.c): a machine with the irqchip as its irq sink, programmed through MMIO
 * and ports as a guest would, device lines raised with machine_irq_set() and MSIs sent with
 * machine_msi(), and the CPU's side read back as the vCPU loop does (emu_irqchip_pending,
 * emu_irqchip_ack: the INTA cycle). */
#include "vt.h"
#include "vtmachine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "machine/emu_irqchip.h"
#include "machine/machine.h"

#define IOAPIC PLAT_IOAPIC_BASE
#define LAPIC PLAT_LAPIC_BASE
#define RE_LEVEL (1u << 15)
#define RE_MASKED (1u << 16)
#define RE_REMOTE_IRR (1u << 14)
#define RE_LOGICAL (1u << 11)

struct fixture {
    struct vt_machine vm;
    struct machine *m;      /* vm.m */
    struct emu_irqchip *c;
    unsigned intr_calls;
};

static void on_intr(void *opaque, unsigned cpu)
{
    struct fixture *f = opaque;
    (void)cpu;
    f->intr_calls++;
}

static int create_machine(struct fixture *f, unsigned ncpus)
{
    vt_machine_create(&f->vm, 4, ncpus);
    f->m = f->vm.m;
    return emu_irqchip_create(&f->c, f->m, ncpus, on_intr, f);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_int_equal(create_machine(f, 1), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vt_machine_destroy(&f->vm);
    emu_irqchip_free(f->c);
    free(f);
    return 0;
}

/* ---- guest accesses ---- */

static void w32(struct machine *m, uint64_t gpa, uint32_t v) { vt_mmio_write(m, gpa, 4, v); }
static uint32_t r32(struct machine *m, uint64_t gpa) { return (uint32_t)vt_mmio_read(m, gpa, 4); }
static void outb(struct machine *m, uint16_t port, uint8_t v) { vt_pio_write(m, port, 1, v); }
static uint8_t inb(struct machine *m, uint16_t port) { return (uint8_t)vt_pio_read(m, port, 1); }

static uint32_t io_read(struct machine *m, unsigned reg)
{
    w32(m, IOAPIC + 0x00, reg);
    return r32(m, IOAPIC + 0x10);
}

static void io_write(struct machine *m, unsigned reg, uint32_t v)
{
    w32(m, IOAPIC + 0x00, reg);
    w32(m, IOAPIC + 0x10, v);
}

/* Program pin @pin as Linux does: the high half (destination) first, then the low. */
static void redir(struct machine *m, unsigned pin, uint32_t lo, uint8_t dest)
{
    io_write(m, 0x11 + 2 * pin, (uint32_t)dest << 24);
    io_write(m, 0x10 + 2 * pin, lo);
}

static void lapic_enable(struct machine *m)
{
    w32(m, LAPIC + 0xf0, 0x1ff);        /* SVR: enabled, spurious vector 0xff */
}

static void lapic_eoi(struct machine *m)
{
    w32(m, LAPIC + 0xb0, 0);
}

static bool lapic_bit(struct machine *m, unsigned base, unsigned vec)
{
    return r32(m, LAPIC + base + (vec / 32) * 0x10) & (1u << (vec % 32));
}

#define IRR 0x200
#define ISR 0x100
#define TMR 0x180

static struct emu_irqchip_counts counts(struct fixture *f)
{
    struct emu_irqchip_counts n;
    emu_irqchip_get_counts(f->c, &n);
    return n;
}

/* Nothing pending for the CPU: no INTR, and an INTA cycle finds nothing. */
static void assert_idle(struct fixture *f)
{
    assert_false(emu_irqchip_pending(f->c, 0));
    assert_int_equal(emu_irqchip_ack(f->c, 0), -1);
}

/* ---- tests ---- */

static void test_registers(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(io_read(f->m, 0x01), 0x00170020);
    assert_int_equal(io_read(f->m, 0x00), PLAT_IOAPIC_ID << 24);
    for (unsigned pin = 0; pin < PLAT_IOAPIC_PINS; pin++) {
        assert_int_equal(io_read(f->m, 0x10 + 2 * pin), RE_MASKED);
        assert_int_equal(io_read(f->m, 0x11 + 2 * pin), 0);
    }
    /* the ID takes 4 bits; version and arbitration are read-only */
    io_write(f->m, 0x00, 0xff000000);
    assert_int_equal(io_read(f->m, 0x00), 0x0f000000);
    assert_int_equal(io_read(f->m, 0x02), 0x0f000000);
    io_write(f->m, 0x01, 0);
    assert_int_equal(io_read(f->m, 0x01), 0x00170020);
    /* IOREGSEL reads back; registers past the table read 0 and ignore writes */
    w32(f->m, IOAPIC, 0x40);
    assert_int_equal(r32(f->m, IOAPIC), 0x40);
    w32(f->m, IOAPIC + 0x10, 0x1234);
    assert_int_equal(r32(f->m, IOAPIC + 0x10), 0);
    /* reserved entry bits read 0; delivery status and remote IRR are read-only */
    io_write(f->m, 0x10 + 2 * 5, 0xffffffff);
    assert_int_equal(io_read(f->m, 0x10 + 2 * 5), 0x1afff);
    io_write(f->m, 0x11 + 2 * 5, 0xffffffff);
    assert_int_equal(io_read(f->m, 0x11 + 2 * 5), 0xff000000);
    /* accesses of other sizes and offsets: read 0, written nowhere */
    w32(f->m, IOAPIC, 0x40);
    uint8_t b = 0x01;
    machine_mmio(f->m, IOAPIC, true, 1, &b);
    assert_int_equal(r32(f->m, IOAPIC), 0x40);
    uint64_t q = 0x5555;
    machine_mmio(f->m, IOAPIC + 0x10, false, 8, &q);
    assert_int_equal(q, 0);
    assert_int_equal(r32(f->m, IOAPIC + 0x20), 0);
    assert_int_equal(r32(f->m, IOAPIC + 0x14), 0);
    /* the LAPIC's ID register names APIC 0 */
    assert_int_equal(r32(f->m, LAPIC + 0x20), 0);
}

/* Edge: one interrupt per rising edge, none for a line that stays up. */
static void test_edge(void **state)
{
    struct fixture *f = *state;
    lapic_enable(f->m);
    redir(f->m, 4, 0x41, 0);
    unsigned calls = f->intr_calls;
    machine_irq_set(f->m, 4, 1);
    assert_true(f->intr_calls > calls);
    assert_true(emu_irqchip_pending(f->c, 0));
    assert_true(lapic_bit(f->m, IRR, 0x41));
    assert_false(lapic_bit(f->m, TMR, 0x41));
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x41);
    assert_true(lapic_bit(f->m, ISR, 0x41));
    lapic_eoi(f->m);
    assert_false(lapic_bit(f->m, ISR, 0x41));
    machine_irq_set(f->m, 4, 1);                /* still up: no new edge */
    assert_idle(f);
    machine_irq_set(f->m, 4, 0);
    machine_irq_set(f->m, 4, 1);
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x41);
    lapic_eoi(f->m);
    /* an edge while masked is lost, and unmasking does not bring it back */
    machine_irq_set(f->m, 4, 0);
    redir(f->m, 4, 0x41 | RE_MASKED, 0);
    machine_irq_set(f->m, 4, 1);
    assert_idle(f);
    redir(f->m, 4, 0x41, 0);
    assert_idle(f);
    assert_int_equal(counts(f).ioapic_delivered, 2);
}

/* Level: remote IRR holds the pin until the EOI, which redelivers a line still up. */
static void test_level_eoi(void **state)
{
    struct fixture *f = *state;
    lapic_enable(f->m);
    redir(f->m, 17, 0x51 | RE_LEVEL, 0);
    machine_irq_set(f->m, 17, 1);
    assert_true(io_read(f->m, 0x10 + 2 * 17) & RE_REMOTE_IRR);
    assert_true(lapic_bit(f->m, TMR, 0x51));
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x51);
    machine_irq_set(f->m, 17, 1);               /* asserted again: remote IRR holds it */
    assert_idle(f);
    lapic_eoi(f->m);                            /* broadcast: the line is still up */
    assert_true(lapic_bit(f->m, IRR, 0x51));
    assert_true(io_read(f->m, 0x10 + 2 * 17) & RE_REMOTE_IRR);
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x51);
    machine_irq_set(f->m, 17, 0);               /* the device was serviced */
    lapic_eoi(f->m);
    assert_false(io_read(f->m, 0x10 + 2 * 17) & RE_REMOTE_IRR);
    assert_idle(f);

    /* the IOAPIC's own EOI register (version 0x20) does the same */
    machine_irq_set(f->m, 17, 1);
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x51);
    w32(f->m, IOAPIC + 0x40, 0x52);             /* another vector: nothing */
    assert_idle(f);
    w32(f->m, IOAPIC + 0x40, 0x51);
    assert_true(lapic_bit(f->m, IRR, 0x51));
    lapic_eoi(f->m);                            /* ends the first in service */
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x51);
    machine_irq_set(f->m, 17, 0);
    lapic_eoi(f->m);
    assert_false(io_read(f->m, 0x10 + 2 * 17) & RE_REMOTE_IRR);

    /* switching the pin to edge clears remote IRR (the 82093AA's way, before EOI) */
    machine_irq_set(f->m, 17, 1);
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x51);
    redir(f->m, 17, 0x51 | RE_MASKED, 0);
    assert_false(io_read(f->m, 0x10 + 2 * 17) & RE_REMOTE_IRR);
    lapic_eoi(f->m);
    machine_irq_set(f->m, 17, 0);
    assert_idle(f);
}

/* A masked level pin delivers once unmasked, if its line is still asserted. */
static void test_masked_level(void **state)
{
    struct fixture *f = *state;
    lapic_enable(f->m);
    redir(f->m, 18, 0x61 | RE_LEVEL | RE_MASKED, 0);
    machine_irq_set(f->m, 18, 1);
    assert_idle(f);
    redir(f->m, 18, 0x61 | RE_LEVEL, 0);
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x61);
    /* masking while in service keeps remote IRR; the EOI then has nothing to send */
    redir(f->m, 18, 0x61 | RE_LEVEL | RE_MASKED, 0);
    lapic_eoi(f->m);
    assert_idle(f);
    assert_false(io_read(f->m, 0x10 + 2 * 18) & RE_REMOTE_IRR);
    machine_irq_set(f->m, 18, 0);
    redir(f->m, 18, 0x61 | RE_LEVEL, 0);        /* line low: nothing */
    assert_idle(f);
}

/* ISA IRQ 0 (the PIT) is IOAPIC pin 2, as the MADT's override says; pin 0 stays quiet. */
static void test_irq0_on_pin2(void **state)
{
    struct fixture *f = *state;
    lapic_enable(f->m);
    redir(f->m, 0, 0x30, 0);
    redir(f->m, 2, 0x32, 0);
    machine_irq_set(f->m, 0, 1);
    machine_irq_set(f->m, 0, 0);
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x32);
    lapic_eoi(f->m);
    assert_idle(f);
    /* the PIT itself: channel 0, mode 2, a short period; a poll past it fires */
    outb(f->m, 0x43, 0x34);
    outb(f->m, 0x40, 100);
    outb(f->m, 0x40, 0);
    uint64_t next = emu_irqchip_poll(f->c, 0);
    assert_true(next > 0);
    emu_irqchip_poll(f->c, next + 1000000);
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x32);
    lapic_eoi(f->m);
    /* GSI 2 is the cascade: no device drives it, not even into pin 2 */
    machine_irq_set(f->m, 2, 1);
    machine_irq_set(f->m, 2, 0);
    assert_idle(f);
}

/* Both routes at once: ISA lines reach the PIC (through LINT0 ExtINT) and the IOAPIC;
 * PCI GSIs only the IOAPIC. */
static void test_pic_and_ioapic(void **state)
{
    struct fixture *f = *state;
    lapic_enable(f->m);
    w32(f->m, LAPIC + 0x350, 0x700);            /* LINT0: ExtINT, unmasked */
    outb(f->m, 0x21, 0x00);                     /* unmask every PIC input */
    outb(f->m, 0xa1, 0x00);
    machine_irq_set(f->m, 17, 1);               /* pin 17 masked, and not a PIC input */
    assert_int_equal(inb(f->m, 0x20), 0);       /* IRR of both PICs */
    assert_int_equal(inb(f->m, 0xa0), 0);
    assert_idle(f);
    redir(f->m, 17, 0x71 | RE_LEVEL, 0);
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x71);
    assert_int_equal(inb(f->m, 0x20), 0);
    machine_irq_set(f->m, 17, 0);
    lapic_eoi(f->m);
    /* ISA IRQ 3: its IOAPIC pin is masked, the PIC delivers vector 8 + 3 */
    machine_irq_set(f->m, 3, 1);
    assert_true(emu_irqchip_pending(f->c, 0));
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x0b);
    outb(f->m, 0x20, 0x20);                     /* PIC EOI */
    machine_irq_set(f->m, 3, 0);
    /* with its pin unmasked as well, one edge gives both vectors (the guest masks one) */
    redir(f->m, 3, 0x43, 0);
    machine_irq_set(f->m, 3, 1);
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x43);
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x0b);
    /* Linux in IOAPIC mode: LINT0 masked, the PIC no longer reaches the CPU */
    outb(f->m, 0x20, 0x20);
    lapic_eoi(f->m);
    machine_irq_set(f->m, 3, 0);
    w32(f->m, LAPIC + 0x350, 0x10700);
    machine_irq_set(f->m, 4, 1);
    assert_int_equal(inb(f->m, 0x20), 0x10);    /* pending in the PIC, not for the CPU */
    assert_idle(f);
}

static void test_msi(void **state)
{
    struct fixture *f = *state;
    lapic_enable(f->m);
    machine_msi(f->m, 0xfee00000, 0x0061);      /* APIC ID 0, fixed, edge */
    assert_true(emu_irqchip_pending(f->c, 0));
    assert_false(lapic_bit(f->m, TMR, 0x61));
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x61);
    lapic_eoi(f->m);
    machine_msi(f->m, 0xfee00008, 0x0162);      /* lowest priority, redirection hint */
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x62);
    lapic_eoi(f->m);
    machine_msi(f->m, 0xfeeff003, 0x0063);      /* broadcast; bits 1:0 are don't-care */
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x63);
    lapic_eoi(f->m);
    /* level-triggered assert: the TMR records it (its EOI goes to the IOAPIC: no entry) */
    machine_msi(f->m, 0xfee00000, 0xc064);
    assert_true(lapic_bit(f->m, TMR, 0x64));
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x64);
    lapic_eoi(f->m);
    /* logical, flat model: LDR bit 0 */
    w32(f->m, LAPIC + 0xd0, 0x01000000);
    machine_msi(f->m, 0xfee01004, 0x0065);
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x65);
    lapic_eoi(f->m);
    machine_msi(f->m, 0xfee02004, 0x0066);      /* LDR bit 1: nobody */
    assert_idle(f);
    /* logical, cluster model: cluster 1, member bit 0 */
    w32(f->m, LAPIC + 0xe0, 0x0fffffff);
    w32(f->m, LAPIC + 0xd0, 0x11000000);
    machine_msi(f->m, 0xfee11004, 0x0067);
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x67);
    lapic_eoi(f->m);
    machine_msi(f->m, 0xfee21004, 0x0068);      /* cluster 2 */
    assert_idle(f);
    struct emu_irqchip_counts n = counts(f);
    assert_int_equal(n.msi_delivered, 6);
    assert_int_equal(n.msi_dropped, 2);
}

/* Messages the hardware would not accept, or that name nobody: dropped, counted. */
static void test_msi_dropped(void **state)
{
    struct fixture *f = *state;
    static const struct { uint64_t addr; uint32_t data; } bad[] = {
        { 0xfee00010, 0x0061 },     /* reserved address bits 11:4 */
        { 0xfee00800, 0x0061 },
        { 0xfee00000, 0x10061 },    /* reserved data bits 31:16 */
        { 0xfee00000, 0x0861 },     /* reserved data bits 13:11 */
        { 0xfed00000, 0x0061 },     /* not the interrupt window */
        { 0x1fee00000, 0x0061 },    /* above 4 GiB */
        { 0xfef00000, 0x0061 },
        { 0xfee00000, 0x0005 },     /* vector below 16 */
        { 0xfee00000, 0x000f },
        { 0xfee01000, 0x0061 },     /* APIC ID 1: no such CPU */
        { 0xfee00000, 0x0361 },     /* delivery mode 3: reserved */
        { 0xfee00000, 0x0661 },     /* 6: reserved for MSI */
        { 0xfee00000, 0x0461 },     /* NMI, SMI, INIT, ExtINT: no such input */
        { 0xfee00000, 0x0261 },
        { 0xfee00000, 0x0561 },
        { 0xfee00000, 0x0761 },
        { 0xfee00000, 0x8061 },     /* level-triggered deassert */
        { UINT64_MAX, UINT32_MAX },
    };
    lapic_enable(f->m);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        machine_msi(f->m, bad[k].addr, bad[k].data);
        assert_idle(f);
    }
    assert_int_equal(counts(f).msi_dropped, sizeof bad / sizeof bad[0]);
    assert_int_equal(counts(f).msi_delivered, 0);
    /* a software-disabled APIC takes no fixed interrupts */
    w32(f->m, LAPIC + 0xf0, 0xff);
    machine_msi(f->m, 0xfee00000, 0x0061);
    assert_idle(f);
    assert_int_equal(counts(f).msi_dropped, sizeof bad / sizeof bad[0] + 1);
    assert_int_equal(r32(f->m, LAPIC + 0x200 + 0x30), 0);
}

/* Redirection entries naming absent CPUs or unsupported modes: dropped, counted, and a
 * level pin stays free to deliver once reprogrammed. */
static void test_redirect_to_nobody(void **state)
{
    struct fixture *f = *state;
    lapic_enable(f->m);
    redir(f->m, 5, 0x45, 3);                    /* physical APIC 3 */
    machine_irq_set(f->m, 5, 1);
    assert_idle(f);
    redir(f->m, 19, 0x46 | RE_LEVEL, 9);
    machine_irq_set(f->m, 19, 1);
    assert_false(io_read(f->m, 0x10 + 2 * 19) & RE_REMOTE_IRR);
    redir(f->m, 20, 0x47 | RE_LOGICAL, 0x80);   /* logical: no LDR matches */
    machine_irq_set(f->m, 20, 1);
    redir(f->m, 21, 0x48 | (4u << 8), 0);       /* NMI */
    machine_irq_set(f->m, 21, 1);
    redir(f->m, 22, 0x08, 0);                   /* illegal vector: the ESR says so */
    machine_irq_set(f->m, 22, 1);
    assert_idle(f);
    w32(f->m, LAPIC + 0x280, 0);                /* ESR: latch */
    assert_true(r32(f->m, LAPIC + 0x280) & 0x40);
    assert_int_equal(counts(f).ioapic_dropped, 5);
    redir(f->m, 19, 0x46 | RE_LEVEL, 0);        /* to APIC 0: the asserted line arrives */
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x46);
}

/* Guest reset (machine_reset_devices) masks every entry and disables the LAPIC. */
static void test_reset(void **state)
{
    struct fixture *f = *state;
    lapic_enable(f->m);
    redir(f->m, 7, 0x57 | RE_LEVEL, 0);
    machine_irq_set(f->m, 7, 1);
    assert_true(emu_irqchip_pending(f->c, 0));
    machine_reset_devices(f->m);
    assert_int_equal(io_read(f->m, 0x10 + 2 * 7), RE_MASKED);
    assert_int_equal(r32(f->m, LAPIC + 0xf0), 0xff);
    assert_false(emu_irqchip_pending(f->c, 0));
    assert_non_null(machine_device_find(f->m, "ioapic"));
    assert_non_null(machine_device_find(f->m, "lapic0"));
    assert_non_null(machine_device_find(f->m, "i8259"));
    assert_non_null(machine_device_find(f->m, "i8254"));
    assert_string_equal(machine_irq_owner(f->m, 0), "i8254");
}

/* Bad arguments, and a second irqchip on the same machine failing without disturbing the
 * first. */
static void test_create_errors(void **state)
{
    struct fixture *f = *state;
    struct emu_irqchip *c = (struct emu_irqchip *)1;
    assert_int_equal(emu_irqchip_create(&c, f->m, 0, on_intr, f), VMCORE_EINVAL);
    assert_null(c);
    assert_int_equal(emu_irqchip_create(&c, f->m, EMU_IRQCHIP_MAX_CPUS + 1, on_intr, f),
                     VMCORE_EINVAL);
    assert_int_equal(emu_irqchip_create(&c, f->m, 1, on_intr, f), VMCORE_EBUSY);
    assert_null(c);
    assert_int_equal(io_read(f->m, 0x01), 0x00170020);
    lapic_enable(f->m);
    machine_msi(f->m, 0xfee00000, 0x0061);
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x61);
    emu_irqchip_free(NULL);
}

/* An irqchip for several vCPUs: a LAPIC each (one mapped, see emu_irqchip_create); the
 * others are software-disabled, so messages to them are dropped, not lost in memory. */
static void test_many_cpus(void **state)
{
    (void)state;
    struct fixture *f = calloc(1, sizeof *f);
    assert_int_equal(create_machine(f, 4), 0);
    assert_non_null(machine_device_find(f->m, "lapic3"));
    assert_null(machine_device_find(f->m, "lapic4"));
    lapic_enable(f->m);
    machine_msi(f->m, 0xfee02000, 0x0061);      /* APIC 2: disabled */
    machine_msi(f->m, 0xfee00000, 0x0062);      /* APIC 0 */
    machine_msi(f->m, 0xfee04000, 0x0063);      /* APIC 4: absent */
    assert_int_equal(emu_irqchip_ack(f->c, 0), 0x62);
    assert_false(emu_irqchip_pending(f->c, 2));
    assert_false(emu_irqchip_pending(f->c, 99));
    assert_int_equal(emu_irqchip_ack(f->c, 99), -1);
    assert_int_equal(counts(f).msi_dropped, 2);
    struct fixture *ff = f;
    teardown((void **)&ff);
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Random guest traffic (fixed seed): MMIO of every size at every offset of the IOAPIC
 * and LAPIC windows, line changes, MSIs, INTA cycles. Nothing may crash or reach past the
 * registers (ASan builds check); afterwards the chip still answers. */
static void test_random_traffic(void **state)
{
    struct fixture *f = *state;
    static const unsigned sizes[] = { 1, 2, 4, 8 };
    lapic_enable(f->m);
    for (unsigned k = 0; k < 200000; k++) {
        uint64_t r = rnd(), v = rnd();
        unsigned size = sizes[r & 3];
        uint64_t off = (r >> 8) & 0xfff;
        switch ((r >> 4) & 15) {
        case 0: case 1: case 2: case 3:         /* IOREGSEL, IOWIN, EOI: the live ones */
            off = (r >> 8) & 1 ? 0x10 : (r >> 9) & 1 ? 0x40 : 0;
            if ((r >> 10) & 1)
                v = (v & 0xff000000) | 0x10 | ((v >> 8) & 0x3f);
            /* fall through */
        case 4: case 5:
            machine_mmio(f->m, IOAPIC + off, (r >> 20) & 1, size, &v);
            break;
        case 6:
            machine_mmio(f->m, IOAPIC + 0x1000 - size + ((r >> 20) & 7), (r >> 24) & 1,
                         size, &v);
            break;
        case 7: case 8:
            machine_irq_set(f->m, (unsigned)(v % 30), (int)((v >> 8) & 1));
            break;
        case 9: {                               /* mostly well-formed, often not */
            uint64_t dest_bits = (r >> 14) & 1 ? 0xff00c : 0xc;
            uint64_t addr = (r >> 12) & 1 ? 0xfee00000 | (v & dest_bits) : v;
            uint32_t data = (uint32_t)(v >> 20);
            if ((r >> 13) & 1)
                data &= 0xc7ff;
            machine_msi(f->m, addr, data);
            break;
        }
        case 10: case 11:
            emu_irqchip_ack(f->c, 0);
            break;
        case 12:
            lapic_eoi(f->m);
            break;
        case 13:                                /* LAPIC registers, not the ones that stop it */
            if (off != 0xf0 && off != 0x350)
                machine_mmio(f->m, LAPIC + off, (r >> 20) & 1, size, &v);
            break;
        default:
            emu_irqchip_pending(f->c, 0);
            break;
        }
    }
    assert_int_equal(io_read(f->m, 0x01), 0x00170020);
    struct emu_irqchip_counts n = counts(f);
    print_message("ioapic %llu delivered %llu dropped, msi %llu delivered %llu dropped\n",
                  (unsigned long long)n.ioapic_delivered, (unsigned long long)n.ioapic_dropped,
                  (unsigned long long)n.msi_delivered, (unsigned long long)n.msi_dropped);
    assert_true(n.ioapic_delivered > 0 && n.msi_dropped > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_eoi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_masked_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irq0_on_pin2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pic_and_ioapic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msi_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_to_nobody, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),
        cmocka_unit_test(test_many_cpus),
        cmocka_unit_test_setup_teardown(test_random_traffic, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
