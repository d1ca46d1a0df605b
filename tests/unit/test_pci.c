/* The PCI host as a guest drives it: config space through CF8/CFC and ECAM, BAR sizing,
 * moves and decode, capability lists, MSI/MSI-X delivery and INTx on the shared lines, and
 * hostile config writes. Two test devices sit on the bus: A (slot 1: I/O, MEM32 and a
 * MEM64 BAR holding its MSI-X table; MSI, MSI-X and a vendor capability) and B (slot 9,
 * which shares A's INTA line: I/O and MEM32 BARs, no capabilities). */
#include "vt.h"
#include "vtmachine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "machine/machine.h"
#include "machine/pci.h"
#include "machine/platform.h"

#define MSIX_PBA 0x800
#define MSIX_VECTORS 8
#define SLOT_A 1
#define SLOT_B 9

struct tdev {
    struct pci_device pci;
    unsigned reads, writes;
    uint64_t last_off, last_val;
    unsigned config_writes;
    unsigned resets;
};

struct msi_call {
    uint64_t addr;
    uint32_t data;
};

struct fixture {
    struct vt_machine vm;
    struct machine *m;      /* vm.m */
    struct tdev *a, *b;
    int level[MACHINE_GSI_COUNT];
    unsigned irq_changes;
    struct msi_call msi[64];
    unsigned nmsi;
};

static void on_irq(void *opaque, unsigned gsi, int level)
{
    struct fixture *f = opaque;
    f->level[gsi] = level;
    f->irq_changes++;
}

static void on_msi(void *opaque, uint64_t addr, uint32_t data)
{
    struct fixture *f = opaque;
    if (f->nmsi < 64)
        f->msi[f->nmsi] = (struct msi_call){ addr, data };
    f->nmsi++;
}

static uint64_t tdev_read(void *opaque, uint64_t off, unsigned size)
{
    struct tdev *t = opaque;
    t->reads++;
    return 0xab000000u | off;
}

static void tdev_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
    struct tdev *t = opaque;
    t->writes++;
    t->last_off = off;
    t->last_val = v;
}

static const struct machine_dev_ops tdev_bar_ops = { tdev_read, tdev_write };

static void tdev_config_write(struct pci_device *dev, unsigned off, unsigned size,
                              uint32_t value)
{
    struct tdev *t = (struct tdev *)dev;
    t->config_writes++;
    assert_true(off < PCI_CONFIG_SIZE && off + size <= PCI_CONFIG_SIZE);
}

static void tdev_reset(struct pci_device *dev) { ((struct tdev *)dev)->resets++; }
static void tdev_destroy(struct pci_device *dev) { free(dev); }

static const struct pci_device_ops tdev_ops = {
    .config_write = tdev_config_write,
    .reset = tdev_reset,
    .destroy = tdev_destroy,
};

static struct tdev *tdev_new(uint16_t device_id, bool caps)
{
    struct tdev *t = calloc(1, sizeof *t);
    assert_non_null(t);
    pci_device_init(&t->pci, &tdev_ops, &(struct pci_id){ .vendor = 0x1af4, .device = device_id,
                                                         .class_code = 0x020000,
                                                         .intx_pin = 1 });
    assert_int_equal(pci_bar_define(&t->pci, 0, PCI_BAR_IO, 32, &tdev_bar_ops, t), 0);
    assert_int_equal(pci_bar_define(&t->pci, 1, PCI_BAR_MEM32, 4096, &tdev_bar_ops, t), 0);
    if (caps) {
        assert_int_equal(pci_bar_define(&t->pci, 2, PCI_BAR_MEM64 | PCI_BAR_PREFETCH, 16384,
                                        &tdev_bar_ops, t), 0);
        assert_int_equal(pci_msi_init(&t->pci, 4, true, true), 0x40);
        assert_int_equal(pci_msix_init(&t->pci, MSIX_VECTORS, 2, 0, MSIX_PBA), 0x58);
        assert_int_equal(pci_cap_add(&t->pci, PCI_CAP_ID_VNDR, 5), 0x64);
    }
    return t;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    vt_machine_create(&f->vm, 4, 1);
    f->m = f->vm.m;
    machine_set_irq_sink(f->m, &(struct machine_irq_sink){ on_irq, on_msi, f });
    f->a = tdev_new(0x1000, true);
    assert_int_equal(pci_device_register(f->m, &f->a->pci, "test-a", -1), 0);
    f->b = tdev_new(0x1001, false);
    assert_int_equal(pci_device_register(f->m, &f->b->pci, "test-b", SLOT_B), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vt_machine_destroy(&f->vm);
    free(f);
    return 0;
}

/* ---- the guest's accessors ---- */

static uint32_t cf8_addr(unsigned bus, unsigned slot, unsigned fn, unsigned off)
{
    return 0x80000000u | bus << 16 | slot << 11 | fn << 8 | (off & 0xfc);
}

static uint32_t cfg_rd(struct machine *m, unsigned slot, unsigned off, unsigned size)
{
    vt_pio_write(m, 0xcf8, 4, cf8_addr(0, slot, 0, off));
    return (uint32_t)vt_pio_read(m, 0xcfc + (off & 3), size);
}

static void cfg_wr(struct machine *m, unsigned slot, unsigned off, unsigned size, uint32_t v)
{
    vt_pio_write(m, 0xcf8, 4, cf8_addr(0, slot, 0, off));
    vt_pio_write(m, 0xcfc + (off & 3), size, v);
}

static uint64_t ecam(unsigned slot, unsigned fn, unsigned off)
{
    return PLAT_PCI_ECAM_BASE + ((uint64_t)slot << 15) + ((uint64_t)fn << 12) + off;
}

/* ---- tests ---- */

static void test_host_bridge_ids(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(cfg_rd(f->m, 0, 0, 4), 0x29c08086);
    assert_int_equal(cfg_rd(f->m, 0, 2, 2), 0x29c0);
    assert_int_equal(cfg_rd(f->m, 0, 1, 1), 0x80);
    assert_int_equal(cfg_rd(f->m, 0, 8, 4) >> 8, 0x060000);   /* host bridge class */
    assert_int_equal(cfg_rd(f->m, 0, PCI_HEADER_TYPE, 1), 0);
    assert_int_equal(vt_mmio_read(f->m, ecam(0, 0, 0), 4), 0x29c08086);
    assert_int_equal(vt_mmio_read(f->m, ecam(0, 0, 0), 8) & 0xffffffff, 0x29c08086);
    assert_int_equal(vt_mmio_read(f->m, ecam(0, 0, 0xb), 1), 0x06);
    /* read-only IDs stay */
    cfg_wr(f->m, 0, 0, 4, 0x12345678);
    vt_mmio_write(f->m, ecam(0, 0, 0), 2, 0xffff);
    assert_int_equal(cfg_rd(f->m, 0, 0, 4), 0x29c08086);
    /* the test devices, through both paths */
    assert_int_equal(cfg_rd(f->m, SLOT_A, 0, 4), 0x10001af4);
    assert_int_equal(vt_mmio_read(f->m, ecam(SLOT_B, 0, 0), 4), 0x10011af4);
    assert_ptr_equal(pci_device_at(f->m, SLOT_A), &f->a->pci);
    assert_non_null(pci_device_at(f->m, 0));
    assert_null(pci_device_at(f->m, 2));
    assert_null(pci_device_at(f->m, 99));
}

static void test_absent_and_cf8(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(cfg_rd(f->m, 5, 0, 4), 0xffffffffu);
    assert_int_equal(cfg_rd(f->m, 5, 2, 2), 0xffff);
    assert_int_equal(vt_mmio_read(f->m, ecam(5, 0, 0), 4), 0xffffffffu);
    assert_int_equal(vt_mmio_read(f->m, ecam(31, 7, 0xffc), 4), 0xffffffffu);
    assert_int_equal(vt_mmio_read(f->m, ecam(0, 1, 0), 4), 0xffffffffu);   /* function 1 */
    vt_mmio_write(f->m, ecam(5, 0, 4), 4, 0xffffffff);                      /* ignored */
    vt_pio_write(f->m, 0xcf8, 4, cf8_addr(1, 0, 0, 0));                     /* bus 1 */
    assert_int_equal(vt_pio_read(f->m, 0xcfc, 4), 0xffffffffu);
    vt_pio_write(f->m, 0xcf8, 4, 0x00000000);                               /* not enabled */
    assert_int_equal(vt_pio_read(f->m, 0xcfc, 4), 0xffffffffu);
    /* Linux's mechanism #1 probe reads the address register back */
    vt_pio_write(f->m, 0xcf8, 4, 0x80000000);
    assert_int_equal(vt_pio_read(f->m, 0xcf8, 4), 0x80000000);
    vt_pio_write(f->m, 0xcf8, 4, 0xffffffff);
    assert_int_equal(vt_pio_read(f->m, 0xcf8, 4), 0x80fffffc);
    /* byte accesses to the address register do nothing (and mechanism #2's probe fails) */
    vt_pio_write(f->m, 0xcf8, 4, 0x80000000);
    vt_pio_write(f->m, 0xcfb, 1, 0x01);
    vt_pio_write(f->m, 0xcf8, 1, 0x00);
    assert_int_equal(vt_pio_read(f->m, 0xcf8, 1), 0xff);
    assert_int_equal(vt_pio_read(f->m, 0xcf8, 4), 0x80000000);
    /* the extended space is ECAM's: zero on a conventional device, read-only */
    assert_int_equal(vt_mmio_read(f->m, ecam(SLOT_A, 0, 0x100), 4), 0);
    vt_mmio_write(f->m, ecam(SLOT_A, 0, 0x100), 4, 0xffffffff);
    assert_int_equal(vt_mmio_read(f->m, ecam(SLOT_A, 0, 0x100), 4), 0);
    assert_int_equal(vt_mmio_read(f->m, ecam(SLOT_A, 0, 0xffe), 4), 0xffff0000u); /* clipped */
}

static void test_bar_sizing(void **state)
{
    struct fixture *f = *state;
    struct machine *m = f->m;
    /* registration placed them: I/O from 0xc000, MEM32 at the window's base, MEM64 in the
     * 64-bit window */
    assert_int_equal(cfg_rd(m, SLOT_A, 0x10, 4), 0xc001);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x14, 4), (uint32_t)PLAT_PCI_MMIO32_BASE);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x18, 4), (uint32_t)PLAT_PCI_MMIO64_BASE | 0xc);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x1c, 4), PLAT_PCI_MMIO64_BASE >> 32);
    assert_int_equal(cfg_rd(m, SLOT_B, 0x10, 4), 0xc021);
    assert_int_equal(cfg_rd(m, SLOT_B, 0x14, 4), (uint32_t)PLAT_PCI_MMIO32_BASE + 0x1000);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x20, 4), 0);                  /* undefined BAR */
    /* the sizing protocol */
    cfg_wr(m, SLOT_A, 0x10, 4, 0xffffffff);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x10, 4), 0xffffffe1);
    cfg_wr(m, SLOT_A, 0x14, 4, 0xffffffff);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x14, 4), 0xfffff000);
    cfg_wr(m, SLOT_A, 0x18, 4, 0xffffffff);
    cfg_wr(m, SLOT_A, 0x1c, 4, 0xffffffff);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x18, 4), 0xffffc00c);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x1c, 4), 0xffffffff);
    cfg_wr(m, SLOT_A, 0x20, 4, 0xffffffff);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x20, 4), 0);
    cfg_wr(m, SLOT_A, PCI_ROM_ADDRESS, 4, 0xffffffff);                 /* no ROM */
    assert_int_equal(cfg_rd(m, SLOT_A, PCI_ROM_ADDRESS, 4), 0);
    /* the same through ECAM, with the low type bits read-only */
    vt_mmio_write(m, ecam(SLOT_A, 0, 0x10), 4, 0xd000);
    assert_int_equal(vt_mmio_read(m, ecam(SLOT_A, 0, 0x10), 4), 0xd001);
    vt_mmio_write(m, ecam(SLOT_A, 0, 0x14), 4, 0xc8000007);
    assert_int_equal(vt_mmio_read(m, ecam(SLOT_A, 0, 0x14), 4), 0xc8000000);
    /* decode was off the whole time: no failures counted, nothing mapped */
    assert_int_equal(pci_bar_map_failures(m), 0);
    assert_false(machine_space_busy(m, MACHINE_PIO, 0xc000, 32));
    assert_false(machine_space_busy(m, MACHINE_MMIO, 0xc8000000, 4096));
}

static void test_bar_move(void **state)
{
    struct fixture *f = *state;
    struct machine *m = f->m;
    struct tdev *a = f->a;
    assert_int_equal(vt_pio_read(m, 0xc004, 1), 0xff);                      /* decode off */
    assert_int_equal(a->reads, 0);
    cfg_wr(m, SLOT_A, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    assert_int_equal(vt_pio_read(m, 0xc004, 4), 0xab000004);
    assert_int_equal(vt_mmio_read(m, PLAT_PCI_MMIO32_BASE + 0x10, 4), 0xab000010);
    assert_int_equal(vt_mmio_read(m, PLAT_PCI_MMIO64_BASE + 0x1000, 4), 0xab001000);
    vt_mmio_write(m, PLAT_PCI_MMIO32_BASE + 0x20, 4, 0x55);
    assert_int_equal(a->last_off, 0x20);
    assert_int_equal(a->last_val, 0x55);
    /* an I/O move with decode on: old place gone, new place decodes */
    cfg_wr(m, SLOT_A, 0x10, 4, 0xd000);
    assert_int_equal(vt_pio_read(m, 0xc004, 4), 0xffffffffu);
    assert_int_equal(vt_pio_read(m, 0xd004, 4), 0xab000004);
    /* a memory move, written as two 16-bit halves */
    cfg_wr(m, SLOT_A, 0x16, 2, 0xc800);
    assert_int_equal(vt_mmio_read(m, PLAT_PCI_MMIO32_BASE + 0x10, 4), 0xffffffffu);
    assert_int_equal(vt_mmio_read(m, 0xc8000010, 4), 0xab000010);
    /* a 64-bit move, upper half */
    cfg_wr(m, SLOT_A, 0x1c, 4, 0x11);
    assert_int_equal(vt_mmio_read(m, PLAT_PCI_MMIO64_BASE + 0x1000, 4), 0xffffffffu);
    assert_int_equal(vt_mmio_read(m, 0x1100000000ull + 0x1000, 4), 0xab001000);
    /* decode off unmaps everything */
    cfg_wr(m, SLOT_A, PCI_COMMAND, 2, 0);
    assert_int_equal(vt_pio_read(m, 0xd004, 4), 0xffffffffu);
    assert_int_equal(vt_mmio_read(m, 0xc8000010, 4), 0xffffffffu);
    assert_false(machine_space_busy(m, MACHINE_MMIO, 0x1100000000ull, 16384));
    /* bus mastering is the guest's to grant */
    assert_false(pci_bus_master(&a->pci));
    cfg_wr(m, SLOT_A, PCI_COMMAND, 2, PCI_COMMAND_MASTER);
    assert_true(pci_bus_master(&a->pci));
    /* memory on alone */
    cfg_wr(m, SLOT_A, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    assert_int_equal(vt_pio_read(m, 0xd004, 4), 0xffffffffu);
    assert_int_equal(vt_mmio_read(m, 0xc8000010, 4), 0xab000010);
    assert_int_equal(pci_bar_map_failures(m), 0);
    /* a reset puts everything back where registration placed it, decode off */
    machine_reset_devices(m);
    assert_int_equal(a->resets, 1);
    assert_int_equal(cfg_rd(m, SLOT_A, PCI_COMMAND, 2), 0);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x14, 4), (uint32_t)PLAT_PCI_MMIO32_BASE);
    assert_int_equal(vt_mmio_read(m, 0xc8000010, 4), 0xffffffffu);
    cfg_wr(m, SLOT_A, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    assert_int_equal(vt_mmio_read(m, PLAT_PCI_MMIO32_BASE + 0x10, 4), 0xab000010);
}

static void test_bar_bad_places(void **state)
{
    struct fixture *f = *state;
    struct machine *m = f->m;
    struct tdev *a = f->a, *b = f->b;
    cfg_wr(m, SLOT_A, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    cfg_wr(m, SLOT_B, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    uint64_t b_mem = PLAT_PCI_MMIO32_BASE + 0x1000;
    /* onto RAM */
    cfg_wr(m, SLOT_A, 0x14, 4, 0x1000);
    assert_int_equal(pci_bar_map_failures(m), 1);
    assert_int_equal(vt_mmio_read(m, PLAT_PCI_MMIO32_BASE, 4), 0xffffffffu);
    /* onto the LAPIC and the IOAPIC (whether or not anything is mapped there) */
    unsigned reads = a->reads;
    cfg_wr(m, SLOT_A, 0x14, 4, (uint32_t)PLAT_LAPIC_BASE);
    assert_int_equal(pci_bar_map_failures(m), 2);
    cfg_wr(m, SLOT_A, 0x14, 4, (uint32_t)PLAT_LAPIC_BASE + 0x8000);    /* the MSI window */
    assert_int_equal(pci_bar_map_failures(m), 3);
    cfg_wr(m, SLOT_A, 0x14, 4, (uint32_t)PLAT_IOAPIC_BASE);
    assert_int_equal(pci_bar_map_failures(m), 4);
    vt_mmio_read(m, PLAT_IOAPIC_BASE, 4);
    vt_mmio_read(m, PLAT_LAPIC_BASE, 4);
    assert_int_equal(a->reads, reads);
    /* onto ECAM */
    cfg_wr(m, SLOT_A, 0x14, 4, (uint32_t)PLAT_PCI_ECAM_BASE);
    assert_int_equal(pci_bar_map_failures(m), 5);
    assert_int_equal(vt_mmio_read(m, ecam(0, 0, 0), 4), 0x29c08086);
    /* onto B's memory BAR: B keeps it */
    cfg_wr(m, SLOT_A, 0x14, 4, (uint32_t)b_mem);
    assert_int_equal(pci_bar_map_failures(m), 6);
    reads = b->reads;
    assert_int_equal(vt_mmio_read(m, b_mem + 8, 4), 0xab000008);
    assert_int_equal(b->reads, reads + 1);
    /* B moves away: A's BAR, waiting there, now decodes */
    cfg_wr(m, SLOT_B, 0x14, 4, 0xd0000000);
    reads = a->reads;
    assert_int_equal(vt_mmio_read(m, b_mem + 8, 4), 0xab000008);
    assert_int_equal(a->reads, reads + 1);
    assert_int_equal(vt_mmio_read(m, 0xd0000008, 4), 0xab000008);
    assert_int_equal(pci_bar_map_failures(m), 6);
    /* I/O over 0xcf8, over COM1, onto B's I/O BAR, past the port space */
    cfg_wr(m, SLOT_A, 0x10, 4, 0xce0);
    cfg_wr(m, SLOT_A, 0x10, 4, 0x3e0);
    cfg_wr(m, SLOT_A, 0x10, 4, 0xc020);
    cfg_wr(m, SLOT_A, 0x10, 4, 0xfffffff0);
    assert_int_equal(pci_bar_map_failures(m), 10);
    assert_int_equal(cfg_rd(m, 0, 0, 4), 0x29c08086);
    /* the 64-bit BAR at the top of the address space (wrapping) */
    cfg_wr(m, SLOT_A, 0x18, 4, 0xffffc000);
    cfg_wr(m, SLOT_A, 0x1c, 4, 0xffffffff);
    assert_true(pci_bar_map_failures(m) >= 11);
    /* decode off forgets the refused places; the machine tears down cleanly */
    cfg_wr(m, SLOT_A, PCI_COMMAND, 2, 0);
    machine_reset_devices(m);
    cfg_wr(m, SLOT_A, PCI_COMMAND, 2, PCI_COMMAND_IO);
    assert_int_equal(vt_pio_read(m, 0xc000, 4), 0xab000000);
}

static void test_cap_list(void **state)
{
    struct fixture *f = *state;
    struct machine *m = f->m;
    assert_true(cfg_rd(m, SLOT_A, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
    assert_false(cfg_rd(m, SLOT_B, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
    assert_int_equal(cfg_rd(m, SLOT_B, PCI_CAPABILITY_LIST, 1), 0);
    uint8_t want[] = { PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX, PCI_CAP_ID_VNDR };
    unsigned n = 0;
    for (unsigned p = cfg_rd(m, SLOT_A, PCI_CAPABILITY_LIST, 1); p; n++) {
        assert_true(n < 3);
        assert_true(p >= 0x40 && !(p & 3));
        assert_int_equal(cfg_rd(m, SLOT_A, p, 1), want[n]);
        p = cfg_rd(m, SLOT_A, p + 1, 1);
    }
    assert_int_equal(n, 3);
    /* the list is read-only to the guest */
    cfg_wr(m, SLOT_A, PCI_CAPABILITY_LIST, 1, 0x80);
    cfg_wr(m, SLOT_A, 0x40, 2, 0xffff);
    assert_int_equal(cfg_rd(m, SLOT_A, PCI_CAPABILITY_LIST, 1), 0x40);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x40, 2), 0x5805);
    /* MSI control: 4 vectors capable, 64-bit, per-vector masking */
    assert_int_equal(cfg_rd(m, SLOT_A, 0x42, 2), 0x184);
    /* MSI-X: 8 entries, table at 0 and PBA at 0x800 of BAR 2 */
    assert_int_equal(cfg_rd(m, SLOT_A, 0x5a, 2), MSIX_VECTORS - 1);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x5c, 4), 2);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x60, 4), MSIX_PBA | 2);
    /* the capability area is full after 192 bytes */
    struct tdev *t = tdev_new(0x1002, false);
    for (int i = 0; i < 48; i++)
        assert_int_equal(pci_cap_add(&t->pci, PCI_CAP_ID_VNDR, 4), 0x40 + 4 * i);
    assert_int_equal(pci_cap_add(&t->pci, PCI_CAP_ID_VNDR, 4), VMCORE_ELIMIT);
    assert_int_equal(pci_cap_add(&t->pci, PCI_CAP_ID_VNDR, 1), VMCORE_EINVAL);
    pci_device_cleanup(&t->pci);
    free(t);
}

static void test_msi(void **state)
{
    struct fixture *f = *state;
    struct machine *m = f->m;
    struct pci_device *a = &f->a->pci;
    cfg_wr(m, SLOT_A, 0x44, 4, 0xfee01000);
    cfg_wr(m, SLOT_A, 0x48, 4, 0);
    cfg_wr(m, SLOT_A, 0x4c, 2, 0x4040);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x44, 4), 0xfee01000);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x4c, 4), 0x4040);
    assert_false(pci_msi_enabled(a));
    cfg_wr(m, SLOT_A, 0x42, 2, 0x0021);              /* enable, 4 vectors (MME = 2) */
    assert_true(pci_msi_enabled(a));
    assert_false(pci_msix_enabled(a));
    assert_int_equal(cfg_rd(m, SLOT_A, 0x42, 2), 0x01a5);
    pci_irq_notify(a, 2);
    assert_int_equal(f->nmsi, 1);
    assert_int_equal(f->msi[0].addr, 0xfee01000);
    assert_int_equal(f->msi[0].data, 0x4042);
    pci_irq_notify(a, 4);                             /* not enabled: dropped */
    assert_int_equal(f->nmsi, 1);
    /* masked vector 1: pending, delivered on unmask */
    cfg_wr(m, SLOT_A, 0x50, 4, 0x2);
    pci_irq_notify(a, 1);
    assert_int_equal(f->nmsi, 1);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x54, 4), 0x2);
    cfg_wr(m, SLOT_A, 0x54, 4, 0);                    /* pending bits are read-only */
    assert_int_equal(cfg_rd(m, SLOT_A, 0x54, 4), 0x2);
    cfg_wr(m, SLOT_A, 0x50, 4, 0);
    assert_int_equal(f->nmsi, 2);
    assert_int_equal(f->msi[1].data, 0x4041);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x54, 4), 0);
    /* MSI on: no INTx */
    assert_int_equal(f->irq_changes, 0);
    assert_int_equal(f->level[plat_pci_intx_gsi(SLOT_A, 0)], 0);
    /* MME larger than capable is clamped to 4 vectors */
    cfg_wr(m, SLOT_A, 0x42, 2, 0x0071);
    pci_irq_notify(a, 7);
    assert_int_equal(f->nmsi, 2);
    /* a reset turns MSI off: the next notify is INTx */
    machine_reset_devices(m);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x42, 2), 0x0184);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x44, 4), 0);
    pci_irq_notify(a, 0);
    assert_int_equal(f->nmsi, 2);
    assert_int_equal(f->level[plat_pci_intx_gsi(SLOT_A, 0)], 1);
}

static void test_msix(void **state)
{
    struct fixture *f = *state;
    struct machine *m = f->m;
    struct pci_device *a = &f->a->pci;
    uint64_t bar = PLAT_PCI_MMIO64_BASE;
    cfg_wr(m, SLOT_A, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    /* every entry starts masked */
    for (unsigned v = 0; v < MSIX_VECTORS; v++)
        assert_int_equal(vt_mmio_read(m, bar + 16 * v + 12, 4), 1);
    /* entry 3 through the BAR: a 64-bit address write, data, unmask */
    vt_mmio_write(m, bar + 0x30, 8, 0x00000000fee02000ull);
    vt_mmio_write(m, bar + 0x38, 4, 0x4055);
    vt_mmio_write(m, bar + 0x3c, 4, 0xfffffffe);            /* reserved bits stay 0 */
    assert_int_equal(vt_mmio_read(m, bar + 0x30, 4), 0xfee02000);
    assert_int_equal(vt_mmio_read(m, bar + 0x34, 4), 0);
    assert_int_equal(vt_mmio_read(m, bar + 0x38, 4), 0x4055);
    assert_int_equal(vt_mmio_read(m, bar + 0x3c, 4), 0);
    assert_int_equal(vt_mmio_read(m, bar + 0x30, 8), 0xfee02000ull);
    assert_int_equal(vt_mmio_read(m, bar + 0x34, 8), 0x0000405500000000ull);
    assert_int_equal(f->a->reads, 0);                 /* the device saw none of it */
    assert_false(pci_msix_enabled(a));
    cfg_wr(m, SLOT_A, 0x5a, 2, 0x8000);               /* MSI-X enable */
    assert_true(pci_msix_enabled(a));
    pci_irq_notify(a, 3);
    assert_int_equal(f->nmsi, 1);
    assert_int_equal(f->msi[0].addr, 0xfee02000);
    assert_int_equal(f->msi[0].data, 0x4055);
    pci_irq_notify(a, MSIX_VECTORS);                  /* no such entry */
    pci_irq_notify(a, 0);                             /* masked entry: pending */
    assert_int_equal(f->nmsi, 1);
    assert_int_equal(vt_mmio_read(m, bar + MSIX_PBA, 8), 0x1);
    /* mask entry 3: pending, and delivered on unmask */
    vt_mmio_write(m, bar + 0x3c, 4, 1);
    pci_irq_notify(a, 3);
    assert_int_equal(f->nmsi, 1);
    assert_int_equal(vt_mmio_read(m, bar + MSIX_PBA, 4), 0x9);
    vt_mmio_write(m, bar + MSIX_PBA, 4, 0);                 /* the PBA is read-only */
    assert_int_equal(vt_mmio_read(m, bar + MSIX_PBA, 4), 0x9);
    vt_mmio_write(m, bar + 0x3c, 4, 0);
    assert_int_equal(f->nmsi, 2);
    assert_int_equal(f->msi[1].data, 0x4055);
    assert_int_equal(vt_mmio_read(m, bar + MSIX_PBA, 4), 0x1);
    /* the function mask holds every vector */
    cfg_wr(m, SLOT_A, 0x5a, 2, 0xc000);
    pci_irq_notify(a, 3);
    assert_int_equal(f->nmsi, 2);
    assert_int_equal(vt_mmio_read(m, bar + MSIX_PBA, 1), 0x9);
    cfg_wr(m, SLOT_A, 0x5a, 2, 0x8000);
    assert_int_equal(f->nmsi, 3);
    assert_int_equal(vt_mmio_read(m, bar + MSIX_PBA, 1), 0x1);
    /* the rest of the BAR still reaches the device; odd accesses to the table are safe */
    assert_int_equal(vt_mmio_read(m, bar + 0x1000, 4), 0xab001000);
    vt_mmio_write(m, bar + 0x7f, 8, ~0ull);                 /* straddles the table's end */
    vt_mmio_read(m, bar + 0x7d, 8);
    vt_mmio_write(m, bar + MSIX_PBA + 7, 2, ~0ull);
    /* MSI-X on: no INTx, even with MSI disabled */
    assert_int_equal(f->irq_changes, 0);
    /* reset: off, entries masked, nothing pending */
    machine_reset_devices(m);
    cfg_wr(m, SLOT_A, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    assert_int_equal(cfg_rd(m, SLOT_A, 0x5a, 2), MSIX_VECTORS - 1);
    assert_int_equal(vt_mmio_read(m, bar + 0x3c, 4), 1);
    assert_int_equal(vt_mmio_read(m, bar + 0x30, 4), 0);
    assert_int_equal(vt_mmio_read(m, bar + MSIX_PBA, 8), 0);
}

static void test_intx(void **state)
{
    struct fixture *f = *state;
    struct machine *m = f->m;
    unsigned gsi = plat_pci_intx_gsi(SLOT_A, 0);
    assert_int_equal(gsi, plat_pci_intx_gsi(SLOT_B, 0));  /* the two share a line */
    assert_int_equal(cfg_rd(m, SLOT_A, PCI_INTERRUPT_PIN, 1), 1);
    assert_int_equal(cfg_rd(m, SLOT_A, PCI_INTERRUPT_LINE, 1), gsi);
    for (unsigned g = 16; g < 24; g++)
        assert_string_equal(machine_irq_owner(m, g), "pci-host");
    pci_irq_notify(&f->a->pci, 0);
    assert_int_equal(f->level[gsi], 1);
    assert_true(cfg_rd(m, SLOT_A, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
    pci_intx_set(&f->b->pci, true);
    pci_intx_set(&f->a->pci, false);
    assert_int_equal(f->level[gsi], 1);               /* B still drives it */
    assert_false(cfg_rd(m, SLOT_A, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
    pci_intx_set(&f->b->pci, false);
    assert_int_equal(f->level[gsi], 0);
    /* INTx disable: the status bit shows the request, the line stays low */
    unsigned changes = f->irq_changes;
    cfg_wr(m, SLOT_A, PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
    pci_intx_set(&f->a->pci, true);
    assert_int_equal(f->irq_changes, changes);
    assert_int_equal(f->level[gsi], 0);
    assert_true(cfg_rd(m, SLOT_A, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
    cfg_wr(m, SLOT_A, PCI_COMMAND, 2, 0);
    assert_int_equal(f->level[gsi], 1);
    cfg_wr(m, SLOT_A, PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
    assert_int_equal(f->level[gsi], 0);
    /* the status bit is read-only to the guest */
    cfg_wr(m, SLOT_A, PCI_STATUS, 2, 0xffff);
    assert_true(cfg_rd(m, SLOT_A, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
    /* a reset deasserts */
    cfg_wr(m, SLOT_A, PCI_COMMAND, 2, 0);
    assert_int_equal(f->level[gsi], 1);
    machine_reset_devices(m);
    assert_int_equal(f->level[gsi], 0);
}

static void test_register_errors(void **state)
{
    struct fixture *f = *state;
    struct machine *m = f->m;
    struct tdev *t = tdev_new(0x1003, true);
    assert_int_equal(pci_device_register(m, &t->pci, "test-c", 0), VMCORE_EINVAL);
    assert_int_equal(pci_device_register(m, &t->pci, "test-c", 32), VMCORE_EINVAL);
    assert_int_equal(pci_device_register(m, &t->pci, "test-c", SLOT_B), VMCORE_EBUSY);
    assert_int_equal(pci_device_register(m, &t->pci, "test-a", -1), VMCORE_EBUSY);
    assert_null(pci_device_at(m, 2));
    /* BAR definitions that are not valid */
    struct pci_device *p = &t->pci;
    assert_int_equal(pci_bar_define(p, 0, PCI_BAR_IO, 32, NULL, NULL), VMCORE_EINVAL); /* taken */
    assert_int_equal(pci_bar_define(p, 3, PCI_BAR_MEM32, 4096, NULL, NULL), VMCORE_EINVAL);
    assert_int_equal(pci_bar_define(p, 5, PCI_BAR_MEM64, 4096, NULL, NULL), VMCORE_EINVAL);
    assert_int_equal(pci_bar_define(p, 4, PCI_BAR_IO, 24, NULL, NULL), VMCORE_EINVAL);
    assert_int_equal(pci_bar_define(p, 4, PCI_BAR_IO, 512, NULL, NULL), VMCORE_EINVAL);
    assert_int_equal(pci_bar_define(p, 4, PCI_BAR_IO | PCI_BAR_PREFETCH, 16, NULL, NULL),
                     VMCORE_EINVAL);
    assert_int_equal(pci_bar_define(p, 4, PCI_BAR_MEM32, 8, NULL, NULL), VMCORE_EINVAL);
    assert_int_equal(pci_bar_define(p, 4, 7, 4096, NULL, NULL), VMCORE_EINVAL);
    assert_int_equal(pci_bar_define(p, 6, PCI_BAR_MEM32, 4096, NULL, NULL), VMCORE_EINVAL);
    assert_int_equal(pci_msi_init(p, 4, false, false), VMCORE_EINVAL);  /* has MSI */
    assert_int_equal(pci_msix_init(p, 4, 0, 0, 0x100), VMCORE_EINVAL);  /* has MSI-X */
    /* nothing was kept: it registers fine after, in the lowest free slot */
    assert_int_equal(pci_device_register(m, &t->pci, "test-c", -1), 0);
    assert_ptr_equal(pci_device_at(m, 2), &t->pci);
    assert_int_equal(pci_device_register(m, &t->pci, "test-d", -1), VMCORE_EINVAL);
    assert_int_equal(pci_bar_define(p, 4, PCI_BAR_MEM32, 4096, NULL, NULL), VMCORE_EINVAL);
    /* its BARs follow the others' */
    assert_int_equal(cfg_rd(m, 2, 0x10, 4), 0xc041);
    assert_int_equal(cfg_rd(m, 2, 0x14, 4), (uint32_t)PLAT_PCI_MMIO32_BASE + 0x2000);
    assert_int_equal(cfg_rd(m, 2, 0x18, 4), (uint32_t)PLAT_PCI_MMIO64_BASE + 0x4000 + 0xc);
    /* MSI-X arguments */
    struct tdev *u = tdev_new(0x1004, false);
    p = &u->pci;
    assert_int_equal(pci_msix_init(p, 4, 0, 0, 0x100), VMCORE_EINVAL);  /* an I/O BAR */
    assert_int_equal(pci_msix_init(p, 4, 1, 4, 0x100), VMCORE_EINVAL);  /* unaligned */
    assert_int_equal(pci_msix_init(p, 4, 1, 0, 0x20), VMCORE_EINVAL);   /* overlap */
    assert_int_equal(pci_msix_init(p, 0, 1, 0, 0x100), VMCORE_EINVAL);
    assert_int_equal(pci_msix_init(p, 2049, 1, 0, 0x100), VMCORE_EINVAL);
    assert_int_equal(pci_msix_init(p, 256, 1, 0, 0xff8), VMCORE_EINVAL); /* past the BAR */
    assert_int_equal(pci_msix_init(p, 4, 1, 0, 0x100), 0x40);
    assert_int_equal(pci_msi_init(p, 3, false, false), VMCORE_EINVAL);
    assert_int_equal(pci_msi_init(p, 64, false, false), VMCORE_EINVAL);
    /* the slots run out */
    int free_slots = 0;
    for (unsigned s = 1; s < PCI_SLOTS; s++)
        free_slots += pci_device_at(m, s) == NULL;
    static char names[32][16];
    for (int i = 0; i < free_slots; i++) {
        struct tdev *x = calloc(1, sizeof *x);
        pci_device_init(&x->pci, &tdev_ops, &(struct pci_id){ .vendor = 0x1af4, .intx_pin = 2 });
        snprintf(names[i], sizeof names[i], "fill%d", i);
        assert_int_equal(pci_device_register(m, &x->pci, names[i], -1), 0);
    }
    assert_int_equal(pci_device_register(m, &u->pci, "test-u", -1), VMCORE_ELIMIT);
    pci_device_cleanup(&u->pci);
    free(u);
}

/* A guest that writes anything anywhere: random sizes, offsets and values through both
 * paths, random CF8 addresses, interleaved with BAR accesses and interrupts. The host must
 * stay whole: IDs intact, a reset brings the devices back. */
static void test_random_config_writes(void **state)
{
    struct fixture *f = *state;
    struct machine *m = f->m;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    static const unsigned slots[] = { 0, SLOT_A, SLOT_B, 5 };
    for (unsigned i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned slot = slots[x & 3];
        unsigned size = 1u << ((x >> 2) & 3);               /* 1, 2, 4, 8 */
        unsigned off = (x >> 4) & 0xfff;
        if (x & (1ull << 62))
            off &= 0x7f;                                      /* the header, more often */
        uint32_t v = (uint32_t)(x >> 20);
        switch ((x >> 16) & 7) {
        case 0: case 1: case 2:
            vt_mmio_write(m, ecam(slot, 0, off), size, (uint64_t)v << 16 | v);
            break;
        case 3:
            if (size == 8)
                size = 4;
            cfg_wr(m, slot, off & 0xff, size, v);
            break;
        case 4:
            vt_pio_write(m, 0xcf8, 4, (uint32_t)(x >> 32));
            vt_pio_write(m, 0xcfc + (x >> 40 & 3), size > 4 ? 4 : size, v);
            break;
        case 5:
            vt_mmio_read(m, ecam(slot, 0, off), size);
            vt_pio_read(m, 0xcfc + (x >> 40 & 3), size > 4 ? 4 : size);
            break;
        case 6:
            pci_irq_notify(x & 1 ? &f->a->pci : &f->b->pci, (unsigned)(x >> 50) & 15);
            if (x & 2)
                pci_intx_set(&f->a->pci, false);
            break;
        case 7: {
            /* wherever the BARs now are */
            struct pci_device *d = x & 1 ? &f->a->pci : &f->b->pci;
            unsigned bi = (x >> 50) % 3;
            uint64_t base = pci_config_get(d, PCI_BAR0 + 4 * bi, 4) & ~0xfu;
            if (bi == 2)
                base |= (uint64_t)pci_config_get(d, PCI_BAR0 + 12, 4) << 32;
            if (bi == 0)
                vt_pio_write(m, (uint16_t)(base + (off & 31)), size > 4 ? 4 : size, v);
            else
                vt_mmio_write(m, base + (off & 0x3fff), size, v);
            break;
        }
        }
    }
    assert_int_equal(cfg_rd(m, 0, 0, 4), 0x29c08086);
    assert_int_equal(cfg_rd(m, SLOT_A, 0, 4), 0x10001af4);
    assert_int_equal(cfg_rd(m, SLOT_A, PCI_CAPABILITY_LIST, 1), 0x40);
    machine_reset_devices(m);
    assert_int_equal(cfg_rd(m, SLOT_A, PCI_COMMAND, 2), 0);
    assert_int_equal(cfg_rd(m, SLOT_B, 0x14, 4), (uint32_t)PLAT_PCI_MMIO32_BASE + 0x1000);
    cfg_wr(m, SLOT_B, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    assert_int_equal(vt_mmio_read(m, PLAT_PCI_MMIO32_BASE + 0x1004, 4), 0xab000004);
    assert_int_equal(f->level[plat_pci_intx_gsi(SLOT_A, 0)], 0);
    assert_true(f->a->config_writes > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_host_bridge_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absent_and_cf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_sizing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_move, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_bad_places, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_config_writes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
