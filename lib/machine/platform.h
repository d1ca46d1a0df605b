/* The guest-physical and port layout of the PC platform, shared by the PCI host, the ACPI
 * tables, the interrupt controllers and both backends. One place, so that what the ACPI
 * tables announce is what the devices decode.
 *
 *   RAM                0 .. ram_size (at most 3 GiB; the legacy hole 0x9fc00..1 MiB is
 *                      reserved in e820 and holds the ACPI tables at 0xe0000..)
 *   PCI MMIO (32-bit)  0xc0000000 .. 0xe0000000
 *   PCI ECAM           0xe0000000 .. +1 MiB (bus 0 only), reserved in e820 and in the DSDT
 *   IOAPIC             0xfec00000 (4 KiB), ID 0, GSI base 0, 24 pins
 *   LAPIC              0xfee00000 (4 KiB), APIC ID = vCPU index
 *   PCI MMIO (64-bit)  0x1000000000 .. 0x2000000000 (64 GiB at 64 GiB)
 *   PCI I/O            0xc000 .. 0x10000
 *   ACPI PM block      0x600: PM1a_EVT (4 bytes), 0x604 PM1a_CNT (2), 0x608 PM_TMR (4),
 *                      0x620 GPE0 (4: 2 status, 2 enable); SCI on ISA IRQ 9 (level,
 *                      active high, per the MADT's override)
 */
#ifndef VMCORE_MACHINE_PLATFORM_H
#define VMCORE_MACHINE_PLATFORM_H

#include <stdint.h>

#define PLAT_PCI_MMIO32_BASE 0xc0000000ull
#define PLAT_PCI_MMIO32_END  0xe0000000ull
#define PLAT_PCI_ECAM_BASE   0xe0000000ull
#define PLAT_PCI_ECAM_SIZE   0x00100000ull   /* bus 0: 32 devices x 8 functions x 4 KiB */
#define PLAT_PCI_MMIO64_BASE 0x1000000000ull
#define PLAT_PCI_MMIO64_END  0x2000000000ull
#define PLAT_PCI_IO_BASE     0xc000u
#define PLAT_PCI_IO_END      0x10000u

#define PLAT_IOAPIC_BASE     0xfec00000ull
#define PLAT_IOAPIC_ID       0
#define PLAT_IOAPIC_PINS     24
#define PLAT_LAPIC_BASE      0xfee00000ull

#define PLAT_PM_BASE         0x600u
#define PLAT_PM1A_EVT        (PLAT_PM_BASE + 0x00)  /* PM1_STS (2) + PM1_EN (2) */
#define PLAT_PM1A_CNT        (PLAT_PM_BASE + 0x04)  /* 2 bytes */
#define PLAT_PM_TMR          (PLAT_PM_BASE + 0x08)  /* 4 bytes, 3.579545 MHz, 24-bit */
#define PLAT_GPE0            (PLAT_PM_BASE + 0x20)  /* GPE0_STS (2) + GPE0_EN (2) */
#define PLAT_PM_LEN          0x24u
#define PLAT_SCI_IRQ         9
/* SLP_TYP of the _S5 package the DSDT declares; PM1a_CNT with SLP_EN and this type ends
 * the machine ("powered off"). */
#define PLAT_SLP_TYP_S5      5

/* The ACPI tables live in the reserved BIOS area (Linux scans 0xe0000..0xfffff for the
 * RSDP; boot_params.acpi_rsdp_addr also names it). */
#define PLAT_ACPI_BASE       0xe0000ull
#define PLAT_ACPI_END        0x100000ull

/* PCI INTx routing, the same in the PCI host and the DSDT's _PRT: device @slot's pin
 * @pin (0 = INTA .. 3 = INTD) drives GSI 16 + ((slot + pin) % 8). */
static inline unsigned plat_pci_intx_gsi(unsigned slot, unsigned pin)
{
    return 16 + ((slot + pin) & 7);
}

#endif
