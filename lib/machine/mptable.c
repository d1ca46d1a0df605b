/* An Intel MultiProcessor Specification 1.4 table, the way Linux finds the CPUs (and their
 * LAPIC IDs), the IOAPIC and the ISA interrupt wiring without ACPI: a floating pointer
 * structure in the last KiB of base memory pointing at a configuration table. The wiring
 * matches KVM's in-kernel irqchip: ISA IRQ n goes to IOAPIC pin n; LINT0 is ExtINT (the
 * 8259), LINT1 NMI. */
#include <string.h>

#include "loader.h"

#define MPF_ADDR BOOT_LOWMEM_END        /* 0x9fc00, scanned by Linux */
#define MPC_ADDR (MPF_ADDR + 16)
#define MP_IOAPIC_ADDR 0xfec00000u
#define MP_LAPIC_ADDR 0xfee00000u
#define MP_ISA_IRQS 16

enum { MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_INTSRC = 3, MP_LINTSRC = 4 };


static uint8_t checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    while (len--)
        sum = (uint8_t)(sum + *p++);
    return (uint8_t)-sum;
}

size_t mptable_size(unsigned ncpus)
{
    return 16 + 44 + (size_t)ncpus * 20 + 8 + 8 + MP_ISA_IRQS * 8 + 2 * 8;
}

int mptable_write(uint8_t *ram, uint64_t ram_size, unsigned ncpus)
{
    if (ncpus == 0 || ncpus > 254 || MPF_ADDR + mptable_size(ncpus) > ram_size ||
        MPF_ADDR + mptable_size(ncpus) > BOOT_HIGHMEM_START)
        return VMCORE_ELIMIT;
    uint8_t *mpc = ram + MPC_ADDR, *e = mpc + 44;
    uint8_t ioapic_id = (uint8_t)ncpus;
    uint16_t count = 0;
    memset(ram + MPF_ADDR, 0, mptable_size(ncpus));

    for (unsigned i = 0; i < ncpus; i++, count++, e += 20) {
        e[0] = MP_PROCESSOR;
        e[1] = (uint8_t)i;                      /* LAPIC ID, as CPUID leaf 1 reports it */
        e[2] = 0x14;                            /* LAPIC version */
        e[3] = (uint8_t)(0x01 | (i == 0 ? 0x02 : 0)); /* enabled, BSP */
        put_le32(e + 4, 0x600);                    /* family 6 */
        put_le32(e + 8, 0x201);                    /* FPU, APIC */
    }
    e[0] = MP_BUS;
    memcpy(e + 2, "ISA   ", 6);
    e += 8, count++;
    e[0] = MP_IOAPIC;
    e[1] = ioapic_id;
    e[2] = 0x11;
    e[3] = 0x01;                                /* enabled */
    put_le32(e + 4, MP_IOAPIC_ADDR);
    e += 8, count++;
    for (unsigned irq = 0; irq < MP_ISA_IRQS; irq++, e += 8, count++) {
        e[0] = MP_INTSRC;
        e[1] = 0;                               /* INT */
        e[4] = 0;                               /* ISA bus */
        e[5] = (uint8_t)irq;
        e[6] = ioapic_id;
        e[7] = (uint8_t)irq;
    }
    e[0] = MP_LINTSRC, e[1] = 3 /* ExtINT */, e[6] = 0xff, e[7] = 0;
    e += 8, count++;
    e[0] = MP_LINTSRC, e[1] = 1 /* NMI */, e[6] = 0xff, e[7] = 1;
    e += 8, count++;

    uint16_t len = (uint16_t)(e - mpc);
    memcpy(mpc, "PCMP", 4);
    put_le16(mpc + 4, len);
    mpc[6] = 4;                                 /* spec 1.4 */
    memcpy(mpc + 8, "VMCORE  ", 8);
    memcpy(mpc + 16, "LIBVMCORE   ", 12);
    put_le16(mpc + 34, count);
    put_le32(mpc + 36, MP_LAPIC_ADDR);
    mpc[7] = checksum(mpc, len);

    uint8_t *mpf = ram + MPF_ADDR;
    memcpy(mpf, "_MP_", 4);
    put_le32(mpf + 4, MPC_ADDR);
    mpf[8] = 1;                                 /* length in 16-byte units */
    mpf[9] = 4;
    mpf[10] = checksum(mpf, 16);
    return 0;
}
