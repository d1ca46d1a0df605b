/* The ACPI tables of the machine, generated per machine (the vCPU count varies) into the
 * reserved BIOS area [PLAT_ACPI_BASE, PLAT_ACPI_END) of guest RAM: RSDP, XSDT and RSDT,
 * FADT with its FACS and DSDT, MADT and MCFG (ACPI 6.x chapter 5.2). Every address comes
 * from platform.h, so what the tables announce is what the devices decode.
 *
 * The guest sees: the PM block of acpi_pm.c (fixed-feature power button, PM timer, S5 via
 * the DSDT's _S5 package), ACPI always enabled (no SMI command port), the 8042 and legacy
 * devices flagged in IAPC_BOOT_ARCH, no VGA, and no reset register: a reset goes through
 * the i8042's reset line (which ends the machine, as a reset does today). */
#include <string.h>

#include "aml.h"
#include "loader.h"
#include "machine_internal.h"
#include "platform.h"

#define ACPI_OEM_ID "VMCORE"        /* 6 bytes */
#define ACPI_OEM_TABLE_ID "VMCOREPC" /* 8 bytes */
#define ACPI_OEM_REVISION 1
#define ACPI_CREATOR_ID "VMCR"
#define ACPI_CREATOR_REVISION 1

#define ACPI_HEADER_LEN 36
#define RSDP_LEN 36
#define FACS_LEN 64
#define FADT_LEN 276                /* revision 6 */
#define MCFG_LEN (ACPI_HEADER_LEN + 8 + 16)

/* Generic address structure address spaces and access sizes. */
#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1
#define GAS_ACCESS_WORD 2
#define GAS_ACCESS_DWORD 3

/* FADT flags */
#define FADT_WBINVD (1u << 0)
#define FADT_PROC_C1 (1u << 2)
#define FADT_SLP_BUTTON (1u << 5)   /* set: no fixed-feature sleep button */
#define FADT_FIX_RTC (1u << 6)      /* set: RTC wake status is not a fixed feature */
/* IAPC_BOOT_ARCH */
#define BOOT_ARCH_LEGACY_DEVICES (1u << 0)
#define BOOT_ARCH_8042 (1u << 1)
#define BOOT_ARCH_VGA_NOT_PRESENT (1u << 2)

/* MADT */
#define MADT_PCAT_COMPAT 1u
enum { MADT_LAPIC = 0, MADT_IOAPIC = 1, MADT_ISO = 2, MADT_LAPIC_NMI = 4 };
#define MPS_INTI_ACTIVE_HIGH 0x1
#define MPS_INTI_LEVEL 0xc

/* The most processor entries with 8-bit APIC IDs (0xff is the broadcast ID, 0xfe is kept
 * clear of it as firmware does); more would need x2APIC entries. The configuration caps
 * vcpus lower (CONFIG_MAX_VCPUS in core/config.c). */
#define ACPI_MAX_XAPIC_CPUS 254

static void checksum(uint8_t *p, size_t len, size_t at)
{
    uint8_t sum = 0;
    p[at] = 0;
    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + p[i]);
    p[at] = (uint8_t)-sum;
}

/* A bump allocator over the ACPI area; every table is placed once. */
struct acpi_area {
    uint8_t *host;      /* host address of PLAT_ACPI_BASE */
    uint64_t used;
    bool full;
};

static uint8_t *area_alloc(struct acpi_area *a, size_t len, size_t align, uint64_t *gpa)
{
    uint64_t off = (a->used + align - 1) & ~(uint64_t)(align - 1);
    if (a->full || off + len > PLAT_ACPI_END - PLAT_ACPI_BASE) {
        a->full = true;
        *gpa = 0;
        return NULL;
    }
    a->used = off + len;
    *gpa = PLAT_ACPI_BASE + off;
    memset(a->host + off, 0, len);
    return a->host + off;
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
    memcpy(t, sig, 4);
    put_le32(t + 4, len);
    t[8] = rev;
    memcpy(t + 10, ACPI_OEM_ID, 6);
    memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
    put_le32(t + 24, ACPI_OEM_REVISION);
    memcpy(t + 28, ACPI_CREATOR_ID, 4);
    put_le32(t + 32, ACPI_CREATOR_REVISION);
}

static void gas_io(uint8_t *g, uint16_t port, uint8_t bits, uint8_t access)
{
    g[0] = GAS_SYSTEM_IO;
    g[1] = bits;
    g[2] = 0;
    g[3] = access;
    put_le64(g + 4, port);
}

/* ---- DSDT ---- */

static void name_eisaid(struct aml *a, const char *name, const char *id)
{
    aml_name_decl(a, name);
    aml_eisaid(a, id);
}

static void name_int(struct aml *a, const char *name, uint64_t v)
{
    aml_name_decl(a, name);
    aml_int(a, v);
}

/* Name(_CRS, ResourceTemplate() { <res> }): @res holds descriptors without the end tag. */
static void name_crs(struct aml *a, struct aml *res)
{
    aml_res_end(res);
    if (aml_error(res)) {
        if (!a->error)
            a->error = aml_error(res); /* the DSDT fails as its template did */
    } else {
        aml_name_decl(a, "_CRS");
        aml_buffer(a, res->buf, res->len);
    }
    aml_free(res);
}

static void dsdt_pci_root(struct aml *a)
{
    aml_device(a, "PCI0");
    name_eisaid(a, "_HID", "PNP0A08");  /* PCI Express root bridge (ECAM through MCFG) */
    name_eisaid(a, "_CID", "PNP0A03");  /* and a PCI bus for drivers that know only that */
    name_int(a, "_SEG", 0);
    name_int(a, "_BBN", 0);
    name_int(a, "_UID", 0);

    struct aml res;
    aml_init(&res);
    aml_res_word(&res, AML_SPACE_BUS, 0, 0);           /* bus 0 only (ECAM covers it) */
    aml_res_io(&res, 0xcf8, 1, 8);                      /* configuration mechanism #1 */
    /* The I/O the bridge forwards: the PC convention (everything but the configuration
     * ports), which holds the legacy devices below 0x1000 and the BAR window
     * PLAT_PCI_IO_BASE..PLAT_PCI_IO_END. */
    aml_res_word(&res, AML_SPACE_IO, 0x0000, 0x0cf7);
    aml_res_word(&res, AML_SPACE_IO, 0x0d00, (uint16_t)(PLAT_PCI_IO_END - 1));
    aml_res_dword_mem(&res, (uint32_t)PLAT_PCI_MMIO32_BASE, (uint32_t)(PLAT_PCI_MMIO32_END - 1));
    aml_res_qword_mem(&res, PLAT_PCI_MMIO64_BASE, PLAT_PCI_MMIO64_END - 1);
    name_crs(a, &res);

    /* Every slot's INTA..INTD straight to its GSI (Source 0: a global interrupt, no link
     * device), the swizzle the PCI host uses. */
    aml_name_decl(a, "_PRT");
    aml_package(a, 32 * 4);
    for (unsigned slot = 0; slot < 32; slot++) {
        for (unsigned pin = 0; pin < 4; pin++) {
            aml_package(a, 4);
            aml_int(a, ((uint64_t)slot << 16) | 0xffff);    /* any function of the slot */
            aml_int(a, pin);
            aml_int(a, 0);
            aml_int(a, plat_pci_intx_gsi(slot, pin));
            aml_end(a);
        }
    }
    aml_end(a);
    aml_end(a); /* PCI0 */
}

static void dsdt_legacy(struct aml *a)
{
    struct aml res;

    /* Motherboard resources: the ECAM window, which Linux only trusts (for MCFG) when
     * firmware reserves it here or in e820 (both are done). */
    aml_device(a, "MRES");
    name_eisaid(a, "_HID", "PNP0C02");
    name_int(a, "_UID", 0);
    aml_init(&res);
    aml_res_mem32_fixed(&res, (uint32_t)PLAT_PCI_ECAM_BASE, (uint32_t)PLAT_PCI_ECAM_SIZE);
    name_crs(a, &res);
    aml_end(a);

    aml_device(a, "COM1");
    name_eisaid(a, "_HID", "PNP0501");  /* 16550A-compatible UART */
    name_int(a, "_UID", 1);
    aml_init(&res);
    aml_res_io(&res, 0x3f8, 1, 8);
    aml_res_irq(&res, 4);
    name_crs(a, &res);
    aml_end(a);

    aml_device(a, "KBD");
    name_eisaid(a, "_HID", "PNP0303");  /* i8042 keyboard port */
    aml_init(&res);
    aml_res_io(&res, 0x60, 1, 1);
    aml_res_io(&res, 0x64, 1, 1);
    aml_res_irq(&res, 1);
    name_crs(a, &res);
    aml_end(a);

    aml_device(a, "MOU");
    name_eisaid(a, "_HID", "PNP0F13");  /* i8042 AUX (PS/2 mouse) port */
    aml_init(&res);
    aml_res_irq(&res, 12);
    name_crs(a, &res);
    aml_end(a);

    /* The CMOS clock raises no interrupts (cmos.c has no alarm or update IRQ), so its
     * resources name no IRQ 8 for a driver to wait on. */
    aml_device(a, "RTC");
    name_eisaid(a, "_HID", "PNP0B00");
    aml_init(&res);
    aml_res_io(&res, 0x70, 1, 2);
    name_crs(a, &res);
    aml_end(a);
}

/* Build the DSDT's AML (the definition block after the header) into @a. */
static void dsdt_body(struct aml *a, unsigned ncpus)
{
    aml_scope(a, "\\_SB");
    dsdt_pci_root(a);
    dsdt_legacy(a);
    /* One processor device per vCPU; its _UID is the MADT entry's ACPI processor UID. */
    for (unsigned i = 0; i < ncpus; i++) {
        char name[5];
        static const char hex[] = "0123456789ABCDEF";
        name[0] = 'C';
        name[1] = hex[(i >> 8) & 0xf];
        name[2] = hex[(i >> 4) & 0xf];
        name[3] = hex[i & 0xf];
        name[4] = 0;
        aml_device(a, name);
        aml_name_decl(a, "_HID");
        aml_string(a, "ACPI0007");
        name_int(a, "_UID", i);
        aml_end(a);
    }
    aml_end(a); /* \_SB */

    /* S5 (soft off): SLP_TYP for PM1a and PM1b, then two reserved values. S1..S4 are
     * absent, so an OS offers no sleep states. */
    aml_name_decl(a, "\\_S5");
    aml_package(a, 4);
    aml_int(a, PLAT_SLP_TYP_S5);
    aml_int(a, PLAT_SLP_TYP_S5);
    aml_int(a, 0);
    aml_int(a, 0);
    aml_end(a);
}

/* ---- the tables ---- */

static void fill_facs(uint8_t *t)
{
    memcpy(t, "FACS", 4);
    put_le32(t + 4, FACS_LEN);
    /* hardware signature 0, no waking vector (no S1..S4), global lock free, no flags */
    t[32] = 2;                              /* version */
}

static void fill_fadt(uint8_t *t, uint64_t facs, uint64_t dsdt)
{
    header(t, "FACP", FADT_LEN, 6);
    /* FIRMWARE_CTRL only: the FACS is below 4 GiB, and with X_FIRMWARE_CTRL set as well
     * ACPICA installs the same FACS twice. */
    put_le32(t + 36, (uint32_t)facs);
    put_le32(t + 40, (uint32_t)dsdt);       /* DSDT (X_DSDT agrees) */
    t[45] = 0;                              /* preferred PM profile: unspecified */
    put_le16(t + 46, PLAT_SCI_IRQ);         /* SCI_INT */
    put_le32(t + 48, 0);                    /* SMI_CMD 0: ACPI is always enabled */
    put_le32(t + 56, PLAT_PM1A_EVT);
    put_le32(t + 64, PLAT_PM1A_CNT);
    put_le32(t + 76, PLAT_PM_TMR);
    put_le32(t + 80, PLAT_GPE0);
    t[88] = 4;                              /* PM1_EVT_LEN */
    t[89] = 2;                              /* PM1_CNT_LEN */
    t[91] = 4;                              /* PM_TMR_LEN */
    t[92] = 4;                              /* GPE0_BLK_LEN: 2 status + 2 enable bytes */
    put_le16(t + 96, 101);                  /* P_LVL2_LAT > 100: no C2 */
    put_le16(t + 98, 1001);                 /* P_LVL3_LAT > 1000: no C3 */
    t[108] = 0x32;                          /* CENTURY: the CMOS byte cmos.c keeps it in */
    put_le16(t + 109, BOOT_ARCH_LEGACY_DEVICES | BOOT_ARCH_8042 | BOOT_ARCH_VGA_NOT_PRESENT);
    /* Fixed-feature power button (PWR_BUTTON clear); the 24-bit timer (TMR_VAL_EXT
     * clear); no reset register (RESET_REG_SUP clear: see the file comment). */
    put_le32(t + 112, FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_FIX_RTC);
    t[131] = 0;                             /* FADT minor version */
    put_le64(t + 140, dsdt);                /* X_DSDT */
    gas_io(t + 148, PLAT_PM1A_EVT, 32, GAS_ACCESS_WORD);
    gas_io(t + 172, PLAT_PM1A_CNT, 16, GAS_ACCESS_WORD);
    gas_io(t + 208, PLAT_PM_TMR, 32, GAS_ACCESS_DWORD);
    gas_io(t + 220, PLAT_GPE0, 32, GAS_ACCESS_BYTE);
    memcpy(t + 268, "VMCORE\0\0", 8);       /* hypervisor vendor identity */
    checksum(t, FADT_LEN, 9);
}

static size_t madt_len(unsigned ncpus)
{
    return ACPI_HEADER_LEN + 8 + (size_t)ncpus * 8 + 12 + 2 * 10 + 6;
}

static void fill_madt(uint8_t *t, unsigned ncpus)
{
    size_t len = madt_len(ncpus);
    header(t, "APIC", (uint32_t)len, 3);
    put_le32(t + 36, (uint32_t)PLAT_LAPIC_BASE);
    put_le32(t + 40, MADT_PCAT_COMPAT);     /* dual 8259s present (masked by the OS) */
    uint8_t *e = t + 44;
    for (unsigned i = 0; i < ncpus; i++, e += 8) {
        e[0] = MADT_LAPIC;
        e[1] = 8;
        e[2] = (uint8_t)i;                  /* ACPI processor UID: the DSDT device's _UID */
        e[3] = (uint8_t)i;                  /* APIC ID = vCPU index */
        put_le32(e + 4, 1);                 /* enabled */
    }
    e[0] = MADT_IOAPIC;
    e[1] = 12;
    e[2] = PLAT_IOAPIC_ID;
    put_le32(e + 4, (uint32_t)PLAT_IOAPIC_BASE);
    put_le32(e + 8, 0);                     /* GSI base */
    e += 12;
    /* ISA IRQ 0 (the PIT) is IOAPIC pin 2; flags conform to the ISA bus (edge, high). */
    e[0] = MADT_ISO;
    e[1] = 10;
    e[2] = 0;                               /* ISA */
    e[3] = 0;
    put_le32(e + 4, 2);
    put_le16(e + 8, 0);
    e += 10;
    /* The SCI: level-triggered, active high, as acpi_pm.c drives it. */
    e[0] = MADT_ISO;
    e[1] = 10;
    e[2] = 0;
    e[3] = PLAT_SCI_IRQ;
    put_le32(e + 4, PLAT_SCI_IRQ);
    put_le16(e + 8, MPS_INTI_LEVEL | MPS_INTI_ACTIVE_HIGH);
    e += 10;
    /* LINT1 of every processor is the NMI input. */
    e[0] = MADT_LAPIC_NMI;
    e[1] = 6;
    e[2] = 0xff;                            /* all processors */
    put_le16(e + 3, 0);
    e[5] = 1;                               /* LINT1 */
    checksum(t, len, 9);
}

static void fill_mcfg(uint8_t *t)
{
    header(t, "MCFG", MCFG_LEN, 1);
    uint8_t *e = t + 44;                    /* after 8 reserved bytes */
    put_le64(e, PLAT_PCI_ECAM_BASE);
    put_le16(e + 8, 0);                     /* segment */
    e[10] = 0;                              /* first bus */
    e[11] = (uint8_t)((PLAT_PCI_ECAM_SIZE >> 20) - 1); /* last bus: 1 MiB per bus */
    checksum(t, MCFG_LEN, 9);
}

static void fill_rsdp(uint8_t *p, uint64_t rsdt, uint64_t xsdt)
{
    memcpy(p, "RSD PTR ", 8);
    memcpy(p + 9, ACPI_OEM_ID, 6);
    p[15] = 2;                              /* ACPI 2.0+: the XSDT is valid */
    put_le32(p + 16, (uint32_t)rsdt);
    put_le32(p + 20, RSDP_LEN);
    put_le64(p + 24, xsdt);
    checksum(p, 20, 8);                     /* the ACPI 1.0 part */
    checksum(p, RSDP_LEN, 32);              /* the whole structure */
}

static bool acpi_tables_wanted(const struct vmcore_config *cfg)
{
    /* A raw image loaded below 1 MiB owns low memory: it gets no memory map to tell it
     * where firmware data lies, and it may itself sit in the BIOS area. Every other format
     * keeps the BIOS area reserved (loader_reserve_bios, e820). Under boot.format "auto"
     * a file that is nothing else loads as raw at 1 MiB (the config allows no
     * load_address or mode there), so it gets the tables too. */
    return !(cfg->boot.format == BOOT_FORMAT_RAW && loader_raw_load_address(cfg) < PLAT_ACPI_END);
}

int acpi_build(struct machine *m, const struct vmcore_config *cfg, uint64_t *rsdp_gpa)
{
    *rsdp_gpa = 0;
    unsigned ncpus = m->ncpus;
    if (!acpi_tables_wanted(cfg))
        return 0;
    if (ncpus == 0 || ncpus > ACPI_MAX_XAPIC_CPUS)
        return VMCORE_ELIMIT;
    if (m->ram_size < PLAT_ACPI_END)
        return VMCORE_ELIMIT;

    struct aml dsdt_aml;
    aml_init(&dsdt_aml);
    dsdt_body(&dsdt_aml, ncpus);
    int rc = aml_error(&dsdt_aml);
    if (rc) {
        aml_free(&dsdt_aml);
        return rc;
    }

    struct acpi_area area = { .host = m->ram + PLAT_ACPI_BASE };
    uint64_t rsdp, facs, dsdt, fadt, madt, mcfg, xsdt, rsdt;
    /* The RSDP first: 16-byte aligned at the start of the area Linux scans. */
    uint8_t *p_rsdp = area_alloc(&area, RSDP_LEN, 16, &rsdp);
    uint8_t *p_facs = area_alloc(&area, FACS_LEN, 64, &facs);
    size_t dsdt_len = ACPI_HEADER_LEN + dsdt_aml.len;
    uint8_t *p_dsdt = area_alloc(&area, dsdt_len, 16, &dsdt);
    uint8_t *p_fadt = area_alloc(&area, FADT_LEN, 16, &fadt);
    uint8_t *p_madt = area_alloc(&area, madt_len(ncpus), 16, &madt);
    uint8_t *p_mcfg = area_alloc(&area, MCFG_LEN, 16, &mcfg);
    enum { NTABLES = 3 };
    uint8_t *p_xsdt = area_alloc(&area, ACPI_HEADER_LEN + NTABLES * 8, 16, &xsdt);
    uint8_t *p_rsdt = area_alloc(&area, ACPI_HEADER_LEN + NTABLES * 4, 16, &rsdt);
    /* loader_linux hands the kernel BOOT_ACPI_RSDP_ADDR before the tables exist. */
    if (area.full || dsdt_len > UINT32_MAX || rsdp != BOOT_ACPI_RSDP_ADDR) {
        aml_free(&dsdt_aml);
        return VMCORE_ELIMIT;
    }

    header(p_dsdt, "DSDT", (uint32_t)dsdt_len, 2); /* revision 2: 64-bit integers */
    memcpy(p_dsdt + ACPI_HEADER_LEN, dsdt_aml.buf, dsdt_aml.len);
    checksum(p_dsdt, dsdt_len, 9);
    aml_free(&dsdt_aml);

    fill_facs(p_facs);
    fill_fadt(p_fadt, facs, dsdt);
    fill_madt(p_madt, ncpus);
    fill_mcfg(p_mcfg);

    const uint64_t tables[NTABLES] = { fadt, madt, mcfg };
    header(p_xsdt, "XSDT", ACPI_HEADER_LEN + NTABLES * 8, 1);
    header(p_rsdt, "RSDT", ACPI_HEADER_LEN + NTABLES * 4, 1);
    for (unsigned i = 0; i < NTABLES; i++) {
        put_le64(p_xsdt + ACPI_HEADER_LEN + i * 8, tables[i]);
        put_le32(p_rsdt + ACPI_HEADER_LEN + i * 4, (uint32_t)tables[i]);
    }
    checksum(p_xsdt, ACPI_HEADER_LEN + NTABLES * 8, 9);
    checksum(p_rsdt, ACPI_HEADER_LEN + NTABLES * 4, 9);
    fill_rsdp(p_rsdp, rsdt, xsdt);
    *rsdp_gpa = rsdp;
    return 0;
}
