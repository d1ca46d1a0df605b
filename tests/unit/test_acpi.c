/* The ACPI tables (acpi.c, aml.c) and the PM block (acpi_pm.c) on a machine without a
 * CPU: tables for 1, 2 and 64 vCPUs found the way an OS finds them (RSDP scan, XSDT),
 * every checksum, the MADT and MCFG contents, and `iasl -d` of every table (errors fail);
 * then the PM registers as a guest drives them: status write-1-to-clear, the SCI level,
 * S5 ending the machine, the power button behind machine_shutdown(), the PM timer. */
#include "vt.h"
#include "vtmachine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "machine/aml.h"
#include "machine/machine_internal.h"
#include "machine/platform.h"

#define IASL "/usr/bin/iasl"
#define MAX_CPUS 64 /* CONFIG_MAX_VCPUS in lib/core/config.c */

struct fixture {
    struct vt_machine vm;
    struct machine *m;      /* vm.m, once make_machine() ran */
    struct vt_events seen;
};

static void make_machine(struct fixture *f, unsigned vcpus)
{
    f->vm.cfg.vcpus = vcpus;
    vt_machine_start(&f->vm);
    f->m = f->vm.m;
    machine_set_event_sink(f->m, &(struct machine_event_sink){ NULL, vt_record_exit, &f->seen });
    machine_set_irq_sink(f->m, &(struct machine_irq_sink){ vt_record_irq, NULL, &f->seen });
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    /* A raw image at 1 MiB keeps the BIOS area free: it gets the tables. */
    vt_machine_prepare(&f->vm, 16, 1);
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

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static uint8_t sum8(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    while (n--)
        s = (uint8_t)(s + *p++);
    return s;
}

/* Guest RAM at @gpa, which must lie in the ACPI area with @len bytes. */
static const uint8_t *acpi_at(struct machine *m, uint64_t gpa, uint64_t len)
{
    assert_true(gpa >= PLAT_ACPI_BASE && gpa + len <= PLAT_ACPI_END);
    return machine_ram(m) + gpa;
}

/* The RSDP as Linux finds it without boot_params: a 16-byte aligned signature with a
 * valid checksum in 0xe0000..0xfffff. 0 if there is none. */
static uint64_t find_rsdp(struct machine *m)
{
    const uint8_t *ram = machine_ram(m);
    for (uint64_t a = 0xe0000; a < 0x100000; a += 16)
        if (memcmp(ram + a, "RSD PTR ", 8) == 0 && sum8(ram + a, 20) == 0)
            return a;
    return 0;
}

/* A table at @gpa: its signature, a length inside the area, a zero checksum. */
static const uint8_t *table_at(struct machine *m, uint64_t gpa, const char *sig)
{
    const uint8_t *t = acpi_at(m, gpa, 36);
    assert_memory_equal(t, sig, 4);
    uint32_t len = rd32(t + 4);
    assert_true(len >= 36);
    acpi_at(m, gpa, len);
    assert_int_equal(sum8(t, len), 0);
    assert_memory_equal(t + 10, "VMCORE", 6);
    return t;
}

struct tables {
    const uint8_t *rsdp, *xsdt, *rsdt, *fadt, *facs, *dsdt, *madt, *mcfg;
};

static void walk(struct machine *m, struct tables *t)
{
    memset(t, 0, sizeof *t);
    uint64_t rsdp = find_rsdp(m);
    assert_int_equal(rsdp, 0xe0000);
    t->rsdp = acpi_at(m, rsdp, 36);
    assert_int_equal(t->rsdp[15], 2);                  /* ACPI 2.0+ */
    assert_int_equal(rd32(t->rsdp + 20), 36);
    assert_int_equal(sum8(t->rsdp, 36), 0);            /* the extended checksum */
    t->xsdt = table_at(m, rd64(t->rsdp + 24), "XSDT");
    t->rsdt = table_at(m, rd32(t->rsdp + 16), "RSDT");
    unsigned n = (rd32(t->xsdt + 4) - 36) / 8;
    assert_int_equal(n, 3);
    assert_int_equal((rd32(t->rsdt + 4) - 36) / 4, n);
    for (unsigned i = 0; i < n; i++) {
        uint64_t a = rd64(t->xsdt + 36 + i * 8);
        assert_int_equal(rd32(t->rsdt + 36 + i * 4), a); /* RSDT and XSDT agree */
        const uint8_t *p = acpi_at(m, a, 36);
        if (memcmp(p, "FACP", 4) == 0)
            t->fadt = table_at(m, a, "FACP");
        else if (memcmp(p, "APIC", 4) == 0)
            t->madt = table_at(m, a, "APIC");
        else if (memcmp(p, "MCFG", 4) == 0)
            t->mcfg = table_at(m, a, "MCFG");
        else
            fail_msg("unexpected table %.4s", (const char *)p);
    }
    assert_non_null(t->fadt);
    assert_non_null(t->madt);
    assert_non_null(t->mcfg);
    assert_int_equal(rd64(t->fadt + 140), rd32(t->fadt + 40)); /* X_DSDT = DSDT */
    t->dsdt = table_at(m, rd64(t->fadt + 140), "DSDT");
    assert_int_equal(rd64(t->fadt + 132), 0); /* X_FIRMWARE_CTRL: FIRMWARE_CTRL says it */
    t->facs = acpi_at(m, rd32(t->fadt + 36), 64);
    assert_memory_equal(t->facs, "FACS", 4);
    assert_int_equal(rd32(t->facs + 4), 64);
    assert_int_equal(rd32(t->fadt + 36) % 64, 0);
}

static void check_fadt(const uint8_t *f)
{
    assert_int_equal(f[8], 6);                         /* revision */
    assert_int_equal(rd32(f + 4), 276);
    assert_int_equal(rd16(f + 46), PLAT_SCI_IRQ);
    assert_int_equal(rd32(f + 48), 0);                 /* no SMI_CMD: ACPI always on */
    assert_int_equal(rd32(f + 56), PLAT_PM1A_EVT);
    assert_int_equal(rd32(f + 64), PLAT_PM1A_CNT);
    assert_int_equal(rd32(f + 76), PLAT_PM_TMR);
    assert_int_equal(rd32(f + 80), PLAT_GPE0);
    uint32_t flags = rd32(f + 112);
    assert_int_equal(flags & (1u << 4), 0);            /* fixed-feature power button */
    assert_int_equal(flags & (1u << 8), 0);            /* 24-bit timer */
    assert_int_equal(flags & (1u << 20), 0);           /* not hardware-reduced */
    assert_int_equal(flags & 1u, 1u);                  /* WBINVD */
    assert_int_equal(rd16(f + 109) & 2, 2);            /* 8042 */
    /* X_PM1a_EVT: system I/O at the PM block */
    assert_int_equal(f[148], 1);
    assert_int_equal(rd64(f + 152), PLAT_PM1A_EVT);
    assert_int_equal(rd64(f + 176), PLAT_PM1A_CNT);
    assert_int_equal(rd64(f + 212), PLAT_PM_TMR);
    assert_int_equal(rd64(f + 224), PLAT_GPE0);
}

static void check_madt(const uint8_t *t, unsigned ncpus)
{
    assert_int_equal(rd32(t + 36), PLAT_LAPIC_BASE);
    assert_int_equal(rd32(t + 40) & 1, 1);             /* PCAT_COMPAT */
    uint32_t len = rd32(t + 4);
    unsigned lapics = 0, ioapics = 0, nmis = 0;
    bool irq0 = false, sci = false;
    for (uint32_t off = 44; off < len;) {
        const uint8_t *e = t + off;
        assert_true(e[1] >= 2 && off + e[1] <= len);
        switch (e[0]) {
        case 0:
            assert_int_equal(e[1], 8);
            assert_int_equal(e[2], lapics);            /* processor UID */
            assert_int_equal(e[3], lapics);            /* APIC ID = index */
            assert_int_equal(rd32(e + 4) & 1, 1);      /* enabled */
            lapics++;
            break;
        case 1:
            assert_int_equal(e[2], PLAT_IOAPIC_ID);
            assert_int_equal(rd32(e + 4), PLAT_IOAPIC_BASE);
            assert_int_equal(rd32(e + 8), 0);
            ioapics++;
            break;
        case 2:
            assert_int_equal(e[2], 0);                 /* ISA */
            if (e[3] == 0) {
                assert_int_equal(rd32(e + 4), 2);
                irq0 = true;
            } else if (e[3] == PLAT_SCI_IRQ) {
                assert_int_equal(rd32(e + 4), PLAT_SCI_IRQ);
                assert_int_equal(rd16(e + 8), 0xd);    /* level, active high */
                sci = true;
            } else {
                fail_msg("override of IRQ %u", e[3]);
            }
            break;
        case 4:
            assert_int_equal(e[2], 0xff);
            assert_int_equal(e[5], 1);                 /* LINT1 */
            nmis++;
            break;
        default:
            fail_msg("unexpected MADT entry type %u", e[0]);
        }
        off += e[1];
    }
    assert_int_equal(lapics, ncpus);
    assert_int_equal(ioapics, 1);
    assert_int_equal(nmis, 1);
    assert_true(irq0);
    assert_true(sci);
}

static void check_mcfg(const uint8_t *t)
{
    assert_int_equal(rd32(t + 4), 36 + 8 + 16);
    assert_int_equal(rd64(t + 44), PLAT_PCI_ECAM_BASE);
    assert_int_equal(rd16(t + 52), 0);
    assert_int_equal(t[54], 0);
    assert_int_equal(t[55], 0);
}

static bool have_iasl(void)
{
    return access(IASL, X_OK) == 0;
}

/* Run `iasl -d` on @file in @dir; returns its output (malloc'd) and fails the test if
 * iasl exits non-zero or reports an error. */
static char *run_iasl(const char *dir, const char *file)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cd '%s' && " IASL " -d '%s' 2>&1", dir, file);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    size_t n;
    while ((n = fread(out + len, 1, cap - 1 - len, p)) > 0)
        len += n;
    out[len] = 0;
    int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || strstr(out, "Error") ||
        strstr(out, "error"))
        fail_msg("iasl -d %s failed (status 0x%x):\n%s", file, st, out);
    return out;
}

static char *read_text(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
    s[n] = 0;
    fclose(fp);
    return s;
}

static void dump(const char *dir, const char *name, const uint8_t *t, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s.dat", dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(t, 1, len, fp), len);
    fclose(fp);
}

static void iasl_all(struct tables *t)
{
    if (!have_iasl()) {
        vt_missing("needs %s (Debian package acpica-tools)", IASL);
        return;
    }
    char dir[] = "/tmp/vmcore-acpi-dump-XXXXXX";
    assert_non_null(mkdtemp(dir));
    /* Not the RSDP: this iasl (20200925) reads a binary file's first bytes as a table
     * header, "RSD " with a length of "PTR ", and rejects it; walk() checks the RSDP. */
    struct { const char *name; const uint8_t *t; size_t len; } all[] = {
        { "xsdt", t->xsdt, rd32(t->xsdt + 4) }, { "rsdt", t->rsdt, rd32(t->rsdt + 4) },
        { "facp", t->fadt, rd32(t->fadt + 4) }, { "facs", t->facs, 64 },
        { "dsdt", t->dsdt, rd32(t->dsdt + 4) }, { "apic", t->madt, rd32(t->madt + 4) },
        { "mcfg", t->mcfg, rd32(t->mcfg + 4) },
    };
    char path[256];
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        dump(dir, all[i].name, all[i].t, all[i].len);
        snprintf(path, sizeof path, "%s.dat", all[i].name);
        free(run_iasl(dir, path));
    }
    snprintf(path, sizeof path, "%s/dsdt.dsl", dir);
    char *dsl = read_text(path);
    static const char *const want[] = {
        "PNP0A08", "PNP0A03", "_PRT", "_S5", "PNP0501", "PNP0303", "PNP0F13", "PNP0C02",
        "ACPI0007", "WordBusNumber", "QWordMemory", "DWordMemory",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(dsl, want[i]))
            fail_msg("the disassembled DSDT has no %s:\n%s", want[i], dsl);
    free(dsl);
    /* The MADT as iasl reads it: the local APIC address and the override of the SCI. */
    snprintf(path, sizeof path, "%s/apic.dsl", dir);
    char *madt = read_text(path);
    assert_non_null(strstr(madt, "FEE00000"));
    free(madt);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    assert_int_equal(system(path), 0);
}

static void tables_for(void **state, unsigned ncpus)
{
    struct fixture *f = *state;
    make_machine(f, ncpus);
    struct tables t;
    walk(f->m, &t);
    check_fadt(t.fadt);
    check_madt(t.madt, ncpus);
    check_mcfg(t.mcfg);
    iasl_all(&t);
}

static void test_tables_1(void **state) { tables_for(state, 1); }
static void test_tables_2(void **state) { tables_for(state, 2); }
static void test_tables_64(void **state) { tables_for(state, MAX_CPUS); }

/* The configuration caps vcpus where the tables still describe every CPU. */
static void test_max_vcpus(void **state)
{
    (void)state;
    char json[256];
    vmcore_ctx *ctx = NULL;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    snprintf(json, sizeof json, "{\"backend\":\"emu\",\"vcpus\":%d,\"boot\":{\"kernel\":"
             "\"/proc/self/exe\",\"format\":\"raw\"}}", MAX_CPUS + 1);
    vmcore_domain *d = NULL;
    assert_int_equal(vmcore_domain_new_json(&d, ctx, json), VMCORE_ECONFIG);
    assert_null(d);
    assert_string_equal(vmcore_ctx_last_error_path(ctx), "vcpus");
    vmcore_ctx_free(ctx);
}

/* A raw image loaded below 1 MiB owns low memory: no tables are written over it. */
static void test_raw_low_no_tables(void **state)
{
    struct fixture *f = *state;
    f->vm.cfg.boot.mode = BOOT_MODE_REAL;
    make_machine(f, 1);
    assert_int_equal(find_rsdp(f->m), 0);
    assert_int_equal(machine_ram(f->m)[0x7c00], 0xf4);
}

/* The legacy devices are devices of the model like any other: listed by name, owning
 * their interrupt lines. */
static void test_devices_listed(void **state)
{
    struct fixture *f = *state;
    make_machine(f, 1);
    static const char *const names[][2] = {
        { "com1", "uart8250" }, { "debug-exit", "debug-exit" }, { "i8042", "i8042" },
        { "cmos", "cmos" }, { "acpi-pm", "acpi-pm" },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct machine_device *d = machine_device_find(f->m, names[i][0]);
        assert_non_null(d);
        assert_string_equal(d->ops->type, names[i][1]);
    }
    assert_string_equal(machine_irq_owner(f->m, 4), "com1");
    assert_string_equal(machine_irq_owner(f->m, 1), "i8042");
    assert_string_equal(machine_irq_owner(f->m, 12), "i8042");
}

static void test_aml_encodings(void **state)
{
    (void)state;
    struct aml a;
    aml_init(&a);
    aml_int(&a, 0);
    aml_int(&a, 1);
    aml_int(&a, 0x2a);
    aml_int(&a, 0x1234);
    aml_int(&a, 0x12345678);
    aml_int(&a, 0x123456789ull);
    aml_int(&a, UINT64_MAX);
    static const uint8_t ints[] = { 0x00, 0x01, 0x0a, 0x2a, 0x0b, 0x34, 0x12,
                                    0x0c, 0x78, 0x56, 0x34, 0x12,
                                    0x0e, 0x89, 0x67, 0x45, 0x23, 0x01, 0, 0, 0, 0xff };
    assert_int_equal(a.len, sizeof ints);
    assert_memory_equal(a.buf, ints, sizeof ints);
    aml_free(&a);

    aml_init(&a);
    aml_eisaid(&a, "PNP0A08");
    static const uint8_t eisa[] = { 0x0c, 0x41, 0xd0, 0x0a, 0x08 };
    assert_memory_equal(a.buf, eisa, sizeof eisa);
    aml_free(&a);

    aml_init(&a);
    aml_name(&a, "\\_SB.PCI0");
    aml_name(&a, "A.BB.CCC");
    static const uint8_t names[] = { '\\', 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0',
                                     0x2f, 3, 'A', '_', '_', '_', 'B', 'B', '_', '_',
                                     'C', 'C', 'C', '_' };
    assert_int_equal(a.len, sizeof names);
    assert_memory_equal(a.buf, names, sizeof names);
    aml_free(&a);

    /* PkgLength: one byte up to 63, two bytes beyond (counting themselves). */
    aml_init(&a);
    aml_scope(&a, "_SB");
    aml_end(&a);
    static const uint8_t small[] = { 0x10, 0x05, '_', 'S', 'B', '_' };
    assert_memory_equal(a.buf, small, sizeof small);
    aml_free(&a);
    aml_init(&a);
    aml_scope(&a, "_SB");
    uint8_t fill[100] = { 0 };
    aml_bytes(&a, fill, sizeof fill);
    aml_end(&a);
    assert_int_equal(a.len, 1 + 2 + 4 + 100);
    assert_int_equal(a.buf[1], 0x40 | ((2 + 4 + 100) & 0xf));
    assert_int_equal(a.buf[2], (2 + 4 + 100) >> 4);
    assert_int_equal(aml_error(&a), 0);
    aml_free(&a);

    /* Bad use sticks. */
    aml_init(&a);
    aml_end(&a);
    assert_int_equal(aml_error(&a), VMCORE_EINVAL);
    aml_free(&a);
    aml_init(&a);
    aml_name(&a, "1BAD");
    assert_int_equal(aml_error(&a), VMCORE_EINVAL);
    aml_free(&a);
    aml_init(&a);
    aml_name(&a, "TOOLONG");
    assert_int_equal(aml_error(&a), VMCORE_EINVAL);
    aml_free(&a);
    aml_init(&a);
    aml_eisaid(&a, "pnp0a08");
    assert_int_equal(aml_error(&a), VMCORE_EINVAL);
    aml_free(&a);
}

/* ---- the PM block ---- */

static void outw(struct machine *m, uint16_t port, uint16_t v) { vt_pio_write(m, port, 2, v); }
static uint16_t inw(struct machine *m, uint16_t port) { return (uint16_t)vt_pio_read(m, port, 2); }
static uint32_t inl(struct machine *m, uint16_t port) { return (uint32_t)vt_pio_read(m, port, 4); }

#define PWRBTN 0x100
#define SLP_EN 0x2000
#define STS_MASK 0xfffe /* TMR_STS comes by itself every 2.3 s */

static void test_pm_status_and_sci(void **state)
{
    struct fixture *f = *state;
    make_machine(f, 1);
    assert_string_equal(machine_irq_owner(f->m, PLAT_SCI_IRQ), "acpi-pm");
    assert_int_equal(inw(f->m, PLAT_PM1A_EVT) & STS_MASK, 0);
    /* Not listening: the button does nothing. */
    assert_false(acpi_pm_power_button(f->m));
    assert_int_equal(inw(f->m, PLAT_PM1A_EVT) & PWRBTN, 0);
    assert_int_equal(f->seen.irq_level[PLAT_SCI_IRQ], 0);

    outw(f->m, PLAT_PM1A_EVT + 2, PWRBTN);
    assert_int_equal(inw(f->m, PLAT_PM1A_EVT + 2), PWRBTN);
    assert_true(acpi_pm_power_button(f->m));
    assert_int_equal(inw(f->m, PLAT_PM1A_EVT) & PWRBTN, PWRBTN);
    assert_int_equal(f->seen.irq_level[PLAT_SCI_IRQ], 1);
    /* Disabling the event drops the SCI; the status stays. */
    outw(f->m, PLAT_PM1A_EVT + 2, 0);
    assert_int_equal(f->seen.irq_level[PLAT_SCI_IRQ], 0);
    outw(f->m, PLAT_PM1A_EVT + 2, PWRBTN);
    assert_int_equal(f->seen.irq_level[PLAT_SCI_IRQ], 1);
    /* Writing 0 leaves the status; writing 1 clears it, and the SCI goes down. */
    outw(f->m, PLAT_PM1A_EVT, 0);
    assert_int_equal(inw(f->m, PLAT_PM1A_EVT) & PWRBTN, PWRBTN);
    outw(f->m, PLAT_PM1A_EVT, PWRBTN);
    assert_int_equal(inw(f->m, PLAT_PM1A_EVT) & PWRBTN, 0);
    assert_int_equal(f->seen.irq_level[PLAT_SCI_IRQ], 0);
    /* A byte write of the high status byte clears too. */
    assert_true(acpi_pm_power_button(f->m));
    uint8_t one = 1;
    machine_pio(f->m, PLAT_PM1A_EVT + 1, true, 1, &one);
    assert_int_equal(inw(f->m, PLAT_PM1A_EVT) & PWRBTN, 0);
    assert_int_equal(f->seen.irq_level[PLAT_SCI_IRQ], 0);
    /* A dword read sees status and enable together. */
    assert_int_equal(inl(f->m, PLAT_PM1A_EVT) >> 16, PWRBTN);
    /* SCI_EN always reads as set. */
    outw(f->m, PLAT_PM1A_CNT, 0);
    assert_int_equal(inw(f->m, PLAT_PM1A_CNT) & 1, 1);
    /* GPE0: no events, the enables are stored. */
    outw(f->m, PLAT_GPE0 + 2, 0x00ff);
    assert_int_equal(inw(f->m, PLAT_GPE0 + 2), 0x00ff);
    assert_int_equal(inw(f->m, PLAT_GPE0), 0);
    assert_int_equal(f->seen.irq_level[PLAT_SCI_IRQ], 0);
    /* A reset clears the enables. */
    machine_reset_devices(f->m);
    assert_int_equal(inw(f->m, PLAT_PM1A_EVT + 2), 0);
    assert_false(acpi_pm_power_button(f->m));
    assert_int_equal(f->seen.exits, 0);
}

static void test_pm_sleep(void **state)
{
    struct fixture *f = *state;
    make_machine(f, 1);
    /* Sleep types the DSDT does not offer leave the machine running. */
    for (unsigned typ = 0; typ < 8; typ++)
        if (typ != PLAT_SLP_TYP_S5)
            outw(f->m, PLAT_PM1A_CNT, (uint16_t)(typ << 10 | SLP_EN));
    assert_int_equal(f->seen.exits, 0);
    assert_false(machine_stopped(f->m));
    /* ... as if woken at once: WAK_STS (write 1 to clear), and no SCI for it. */
    assert_int_equal(inw(f->m, PLAT_PM1A_EVT) & 0x8000, 0x8000);
    assert_int_equal(f->seen.irq_level[PLAT_SCI_IRQ], 0);
    outw(f->m, PLAT_PM1A_EVT, 0x8000);
    assert_int_equal(inw(f->m, PLAT_PM1A_EVT) & 0x8000, 0);
    /* SLP_TYP without SLP_EN is only stored; SLP_EN reads back as 0. */
    outw(f->m, PLAT_PM1A_CNT, PLAT_SLP_TYP_S5 << 10);
    assert_int_equal(f->seen.exits, 0);
    assert_int_equal(inw(f->m, PLAT_PM1A_CNT) & 0x3c00, PLAT_SLP_TYP_S5 << 10);
    /* S5 with SLP_EN, as a byte write of the high byte: powered off. */
    uint8_t hi = (uint8_t)((PLAT_SLP_TYP_S5 << 10 | SLP_EN) >> 8);
    assert_int_equal(machine_pio(f->m, PLAT_PM1A_CNT + 1, true, 1, &hi), MACHINE_STOP);
    assert_int_equal(f->seen.exits, 1);
    assert_int_equal(f->seen.kind, VMCORE_EXIT_STATUS);
    assert_int_equal(f->seen.status, 0);
    assert_string_equal(f->seen.reason, "powered off");
    assert_true(machine_stopped(f->m));
}

static void test_pm_sleep_word(void **state)
{
    struct fixture *f = *state;
    make_machine(f, 1);
    outw(f->m, PLAT_PM1A_CNT, PLAT_SLP_TYP_S5 << 10 | SLP_EN | 1);
    assert_int_equal(f->seen.exits, 1);
    assert_string_equal(f->seen.reason, "powered off");
}

static void test_shutdown_button(void **state)
{
    struct fixture *f = *state;
    make_machine(f, 1);
    outw(f->m, PLAT_PM1A_EVT + 2, PWRBTN);
    machine_shutdown(f->m);
    assert_false(machine_stopped(f->m));
    assert_int_equal(f->seen.exits, 0);
    assert_int_equal(f->seen.irq_level[PLAT_SCI_IRQ], 1);
    assert_int_equal(inw(f->m, PLAT_PM1A_EVT) & PWRBTN, PWRBTN);
    /* The guest answers the press as Linux does: clear the status, enter S5. */
    outw(f->m, PLAT_PM1A_EVT, PWRBTN);
    assert_int_equal(f->seen.irq_level[PLAT_SCI_IRQ], 0);
    outw(f->m, PLAT_PM1A_CNT, PLAT_SLP_TYP_S5 << 10 | SLP_EN);
    assert_int_equal(f->seen.exits, 1);
    assert_int_equal(f->seen.status, 0);
    assert_string_equal(f->seen.reason, "powered off");
}

static void test_shutdown_no_button(void **state)
{
    struct fixture *f = *state;
    make_machine(f, 1);
    machine_shutdown(f->m);
    assert_true(machine_stopped(f->m));
    assert_int_equal(f->seen.exits, 1);
    assert_int_equal(f->seen.kind, VMCORE_EXIT_SIGNAL);
    assert_int_equal(f->seen.status, 15 /* SIGTERM */);
    assert_string_equal(f->seen.reason, "shut down on request");
    assert_int_equal(f->seen.irq_level[PLAT_SCI_IRQ], 0);
}

static void test_pm_timer(void **state)
{
    struct fixture *f = *state;
    make_machine(f, 1);
    uint32_t a = inl(f->m, PLAT_PM_TMR), b;
    assert_true(a < (1u << 24));
    /* 3.58 MHz: it moves within microseconds; the loop only waits for that. */
    do {
        usleep(100);
        b = inl(f->m, PLAT_PM_TMR);
        assert_true(b < (1u << 24));
    } while (b == a);
    uint8_t top = 0;
    machine_pio(f->m, PLAT_PM_TMR + 3, false, 1, &top);
    assert_int_equal(top, 0);
    /* Writes to the timer are ignored. */
    uint32_t zero = 0;
    machine_pio(f->m, PLAT_PM_TMR, true, 4, &zero);
    assert_int_equal(f->seen.exits, 0);
}

/* Hostile accesses: every size at every offset of both ranges, and across their ends. */
static void test_pm_any_access(void **state)
{
    struct fixture *f = *state;
    make_machine(f, 1);
    for (unsigned port = PLAT_PM_BASE; port < PLAT_PM_BASE + PLAT_PM_LEN; port++) {
        for (unsigned size = 1; size <= 8; size *= 2) {
            uint64_t v = 0;
            machine_pio(f->m, (uint16_t)port, false, size, &v);
            /* Write zeros except over PM1_CNT's high byte (S5 is tested above) and
             * ones to the status registers. */
            v = 0;
            if (port + size <= PLAT_PM1A_CNT || port > PLAT_PM1A_CNT + 1)
                v = UINT64_MAX;
            machine_pio(f->m, (uint16_t)port, true, size, &v);
        }
    }
    assert_false(machine_stopped(f->m));
    /* The gap between the blocks is nobody's. */
    uint64_t before = machine_unclaimed_count(f->m);
    uint8_t v;
    machine_pio(f->m, PLAT_PM_BASE + 0x10, false, 1, &v);
    assert_int_equal(v, 0xff);
    assert_int_equal(machine_unclaimed_count(f->m), before + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aml_encodings),
        cmocka_unit_test_setup_teardown(test_tables_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tables_2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tables_64, setup, teardown),
        cmocka_unit_test(test_max_vcpus),
        cmocka_unit_test_setup_teardown(test_raw_low_no_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devices_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pm_status_and_sci, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pm_sleep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pm_sleep_word, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_button, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_no_button, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pm_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pm_any_access, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
