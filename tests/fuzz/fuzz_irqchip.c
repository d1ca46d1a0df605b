/* Fuzz target: the emu backend's interrupt controllers (lib/machine/emu_irqchip.c,
 * ioapic.c, lapic.c, i8259.c) driven by guest and device traffic read from the input.
 * One machine with its irqchip serves every input; each input starts from a device reset,
 * all lines low and the LAPIC software-enabled. The input is a list of operations, each
 * an opcode byte followed by its arguments (little-endian; a short tail ends the list):
 *   0  IOAPIC MMIO write: offset (2, within the 4 KiB window + 8), size (1: 1/2/4/8), value (8)
 *   1  IOAPIC MMIO read:  offset (2), size (1)
 *   2  IOAPIC register write through IOREGSEL/IOWIN: register (1), value (4)
 *   3  device line: GSI (1, any value), level (1)
 *   4  MSI: address (8), data (4)
 *   5  INTA cycle (emu_irqchip_ack)
 *   6  LAPIC EOI
 *   7  LAPIC MMIO write: offset (2), value (4); 8  LAPIC MMIO read: offset (2)
 *   9  PIC/PIT port write: port (1: 0x20, 0x21, 0xa0, 0xa1, 0x40..0x43), value (1)
 * Besides the sanitizers, the target aborts when INTA returns something other than -1 or
 * a vector, or when the IOAPIC's version register no longer reads 0x00170020. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "fuzz.h"
#include "machine/emu_irqchip.h"
#include "machine/machine.h"

static struct machine *m;
static struct emu_irqchip *chip;

static void on_intr(void *opaque, unsigned cpu)
{
    (void)opaque;
    (void)cpu;
}

static void setup(void)
{
    char path[] = "/tmp/vmcore-fuzz-irqchip-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, "\xf4", 1) != 1)
        abort();
    close(fd);
    struct vmcore_config cfg = { 0 };
    cfg.memory_mib = 2;
    cfg.vcpus = 1;
    cfg.boot.kernel = path;
    cfg.boot.format = BOOT_FORMAT_RAW;
    cfg.boot.mode = BOOT_MODE_PROTECTED;
    struct vmcore_err err = { 0 };
    int rc = machine_create(&m, &cfg, NULL, &err);
    unlink(path);
    if (rc || emu_irqchip_create(&chip, m, 1, on_intr, NULL))
        abort();
}

static uint64_t take(const uint8_t **p, const uint8_t *end, unsigned n, bool *ok)
{
    uint64_t v = 0;
    if ((size_t)(end - *p) < n) {
        *ok = false;
        return 0;
    }
    memcpy(&v, *p, n);
    *p += n;
    return v;
}

static void w32(uint64_t gpa, uint32_t v)
{
    machine_mmio(m, gpa, true, 4, &v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned sizes[] = { 1, 2, 4, 8 };
    static const uint16_t ports[] = { 0x20, 0x21, 0xa0, 0xa1, 0x40, 0x41, 0x42, 0x43 };
    if (!m)
        setup();
    machine_reset_devices(m);
    for (unsigned g = 0; g < MACHINE_GSI_COUNT; g++)
        machine_irq_set(m, g, 0);
    w32(PLAT_LAPIC_BASE + 0xf0, 0x1ff);

    const uint8_t *p = data, *end = data + size;
    bool ok = true;
    while (ok && p < end) {
        unsigned op = *p++ % 10;
        uint64_t v = 0, off;
        unsigned sz;
        switch (op) {
        case 0:
            off = take(&p, end, 2, &ok) % 0x1008;
            sz = sizes[take(&p, end, 1, &ok) & 3];
            v = take(&p, end, 8, &ok);
            if (ok)
                machine_mmio(m, PLAT_IOAPIC_BASE + off, true, sz, &v);
            break;
        case 1:
            off = take(&p, end, 2, &ok) % 0x1008;
            sz = sizes[take(&p, end, 1, &ok) & 3];
            if (ok)
                machine_mmio(m, PLAT_IOAPIC_BASE + off, false, sz, &v);
            break;
        case 2: {
            uint32_t reg = (uint32_t)take(&p, end, 1, &ok);
            uint32_t val = (uint32_t)take(&p, end, 4, &ok);
            if (ok) {
                w32(PLAT_IOAPIC_BASE, reg);
                w32(PLAT_IOAPIC_BASE + 0x10, val);
            }
            break;
        }
        case 3: {
            unsigned gsi = (unsigned)take(&p, end, 1, &ok);
            int level = (int)(take(&p, end, 1, &ok) & 1);
            if (ok)
                machine_irq_set(m, gsi, level);
            break;
        }
        case 4: {
            uint64_t addr = take(&p, end, 8, &ok);
            uint32_t d = (uint32_t)take(&p, end, 4, &ok);
            if (ok)
                machine_msi(m, addr, d);
            break;
        }
        case 5: {
            int vec = emu_irqchip_ack(chip, 0);
            if (vec < -1 || vec > 255)
                abort();
            break;
        }
        case 6:
            w32(PLAT_LAPIC_BASE + 0xb0, 0);
            break;
        case 7:
            off = take(&p, end, 2, &ok) & 0xfff;
            v = take(&p, end, 4, &ok);
            if (ok)
                w32(PLAT_LAPIC_BASE + off, (uint32_t)v);
            break;
        case 8:
            off = take(&p, end, 2, &ok) & 0xfff;
            if (ok)
                machine_mmio(m, PLAT_LAPIC_BASE + off, false, 4, &v);
            break;
        default: {
            uint16_t port = ports[take(&p, end, 1, &ok) & 7];
            uint8_t b = (uint8_t)take(&p, end, 1, &ok);
            if (ok)
                machine_pio(m, port, true, 1, &b);
            break;
        }
        }
    }
    uint32_t ver = 0;
    w32(PLAT_IOAPIC_BASE, 1);
    machine_mmio(m, PLAT_IOAPIC_BASE + 0x10, false, 4, &ver);
    if (ver != 0x00170020)
        abort();
    return 0;
}
