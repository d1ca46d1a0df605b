/* Fuzz target: the PCI host (lib/machine/pci.c) as a hostile guest drives it. Each input is
 * a program of byte-coded accesses run against a fresh machine with two devices: A (slot
 * 1: an I/O BAR, a MEM32 BAR, a MEM64 BAR holding its MSI-X table; MSI, MSI-X and a vendor
 * capability) and B (slot 9, on A's INTx line: I/O and MEM32 BARs).
 *
 * An operation is one opcode byte (its low 3 bits pick the kind, bits 3-4 an access size
 * of 1, 2, 4 or 8 bytes) followed by its operands, little-endian; a program that runs out
 * reads zeros:
 *   0  ECAM write   slot (1), register (2, & 0xfff), value (8)
 *   1  ECAM read    slot (1), register (2)
 *   2  CF8 write    value (4), as a 32-bit access (bit 5 of the opcode: the given size)
 *   3  CFC write    port offset (1, & 3), value (4)
 *   4  CFC read     port offset (1)
 *   5  BAR access   device/BAR (1: bit 0 device, bits 1-2 BAR), offset (2), value (8);
 *                   bit 5 of the opcode: a read. At wherever the BAR now is.
 *   6  interrupt    device (1: bit 0), vector (1); bit 5: pci_intx_set(level = bit 6)
 *   7  reset        machine_reset_devices()
 * After the program the host bridge's IDs must still read back, and a reset must bring A's
 * BAR 1 back to where registration placed it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "fuzz.h"
#include "machine/machine.h"
#include "machine/pci.h"
#include "machine/platform.h"

struct fdev {
    struct pci_device pci;
    uint64_t sink;
};

static uint64_t fdev_read(void *opaque, uint64_t off, unsigned size) { return off; }

static void fdev_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
    ((struct fdev *)opaque)->sink ^= off ^ v;
}

static const struct machine_dev_ops fdev_bar_ops = { fdev_read, fdev_write };
static void fdev_destroy(struct pci_device *dev) { free(dev); }
static const struct pci_device_ops fdev_ops = { .destroy = fdev_destroy };

static struct fdev *fdev_new(struct machine *m, const char *name, int slot, bool caps)
{
    struct fdev *d = calloc(1, sizeof *d);
    if (!d)
        abort();
    pci_device_init(&d->pci, &fdev_ops, &(struct pci_id){ .vendor = 0x1af4, .device = 0x1000,
                                                         .class_code = 0x020000,
                                                         .intx_pin = 1 });
    if (pci_bar_define(&d->pci, 0, PCI_BAR_IO, 32, &fdev_bar_ops, d) ||
        pci_bar_define(&d->pci, 1, PCI_BAR_MEM32, 4096, &fdev_bar_ops, d))
        abort();
    if (caps && (pci_bar_define(&d->pci, 2, PCI_BAR_MEM64, 16384, &fdev_bar_ops, d) ||
                 pci_msi_init(&d->pci, 4, true, true) < 0 ||
                 pci_msix_init(&d->pci, 8, 2, 0, 0x800) < 0 ||
                 pci_cap_add(&d->pci, PCI_CAP_ID_VNDR, 5) < 0))
        abort();
    if (pci_device_register(m, &d->pci, name, slot))
        abort();
    return d;
}

static void on_irq(void *opaque, unsigned gsi, int level) { }
static void on_msi(void *opaque, uint64_t addr, uint32_t data) { }

struct reader {
    const uint8_t *p;
    size_t n;
};

static uint64_t take(struct reader *r, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++) {
        if (r->n) {
            v |= (uint64_t)*r->p << (8 * i);
            r->p++;
            r->n--;
        }
    }
    return v;
}

static uint64_t bar_base(struct pci_device *d, unsigned bi)
{
    uint64_t lo = pci_config_get(d, PCI_BAR0 + 4 * bi, 4);
    if (bi == 0)
        return lo & ~3ull;
    if (bi == 2)
        return (lo & ~0xfull) | (uint64_t)pci_config_get(d, PCI_BAR0 + 12, 4) << 32;
    return lo & ~0xfull;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vmcore_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.memory_mib = 4;
    cfg.vcpus = 1;
    cfg.boot.kernel = (char *)fuzz_hlt_kernel();
    cfg.boot.format = BOOT_FORMAT_RAW;
    cfg.boot.mode = BOOT_MODE_PROTECTED;
    struct machine *m = NULL;
    struct vmcore_err err = { 0 };
    if (machine_create(&m, &cfg, NULL, &err))
        abort();
    machine_set_irq_sink(m, &(struct machine_irq_sink){ on_irq, on_msi, NULL });
    struct fdev *dev[2] = { fdev_new(m, "fuzz-a", 1, true), fdev_new(m, "fuzz-b", 9, false) };

    struct reader r = { data, size };
    while (r.n) {
        unsigned op = (unsigned)take(&r, 1);
        unsigned sz = 1u << ((op >> 3) & 3);
        uint64_t v = 0;
        switch (op & 7) {
        case 0: {
            unsigned slot = (unsigned)take(&r, 1) & 31, reg = (unsigned)take(&r, 2) & 0xfff;
            v = take(&r, 8);
            machine_mmio(m, PLAT_PCI_ECAM_BASE + ((uint64_t)slot << 15) + reg, true, sz, &v);
            break;
        }
        case 1: {
            unsigned slot = (unsigned)take(&r, 1) & 31, reg = (unsigned)take(&r, 2) & 0xfff;
            machine_mmio(m, PLAT_PCI_ECAM_BASE + ((uint64_t)slot << 15) + reg, false, sz, &v);
            break;
        }
        case 2:
            v = take(&r, 4);
            machine_pio(m, 0xcf8, true, (op & 0x20) ? (sz > 4 ? 4 : sz) : 4, &v);
            break;
        case 3: {
            unsigned port = 0xcfc + ((unsigned)take(&r, 1) & 3);
            v = take(&r, 4);
            machine_pio(m, (uint16_t)port, true, sz > 4 ? 4 : sz, &v);
            break;
        }
        case 4: {
            unsigned port = 0xcfc + ((unsigned)take(&r, 1) & 3);
            machine_pio(m, (uint16_t)port, false, sz > 4 ? 4 : sz, &v);
            break;
        }
        case 5: {
            unsigned sel = (unsigned)take(&r, 1);
            uint64_t off = take(&r, 2);
            v = take(&r, 8);
            struct pci_device *d = &dev[sel & 1]->pci;
            unsigned bi = (sel >> 1) & 3;
            if (bi == 3)
                bi = 2;
            uint64_t base = bar_base(d, bi);
            bool rd = op & 0x20;
            if (bi == 0)
                machine_pio(m, (uint16_t)(base + (off & 31)), !rd, sz > 4 ? 4 : sz, &v);
            else
                machine_mmio(m, base + (off & 0x3fff), !rd, sz, &v);
            break;
        }
        case 6: {
            struct pci_device *d = &dev[take(&r, 1) & 1]->pci;
            unsigned vector = (unsigned)take(&r, 1);
            if (op & 0x20)
                pci_intx_set(d, op & 0x40);
            else
                pci_irq_notify(d, vector);
            break;
        }
        case 7:
            machine_reset_devices(m);
            break;
        }
    }

    uint32_t id = 0;
    machine_mmio(m, PLAT_PCI_ECAM_BASE, false, 4, &id);
    if (id != 0x29c08086)
        abort();
    machine_reset_devices(m);
    if (pci_config_get(&dev[0]->pci, PCI_BAR0 + 4, 4) != (uint32_t)PLAT_PCI_MMIO32_BASE)
        abort();
    machine_destroy(m);
    return 0;
}
