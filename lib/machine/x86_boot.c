/* The CPU state loaders leave for the boot vCPU: segment registers as a loaded descriptor
 * leaves them, the boot GDT in guest RAM, and identity page tables for long mode. */
#include <string.h>

#include "loader.h"

/* VMX access-rights encodings (machine.h) of the boot descriptors. */
#define ATTR_CODE32 0xc09b
#define ATTR_CODE64 0xa09b
#define ATTR_DATA 0xc093
#define ATTR_USER_DATA 0xc0f3
#define ATTR_USER_CODE64 0xa0fb
#define ATTR_USER_CODE32 0xc0fb
#define ATTR_TSS_BUSY 0x008b
#define ATTR_UNUSABLE 0x10000

#define CR0_PE 0x1u
#define CR0_ET 0x10u
#define CR0_NE 0x20u
#define CR0_PG 0x80000000u
#define CR4_PAE 0x20u
#define EFER_LME 0x100u
#define EFER_LMA 0x400u

#define PTE_P 0x1u
#define PTE_RW 0x2u
#define PTE_US 0x4u
#define PTE_PS 0x80u


static uint64_t gdt_descriptor(uint32_t attr)
{
    /* Flat: base 0, limit 0xfffff pages. */
    return 0xffffull | (uint64_t)(attr & 0xff) << 40 | 0xfull << 48 |
           (uint64_t)((attr >> 12) & 0xf) << 52;
}

static struct x86_segment flat_segment(uint16_t sel, uint32_t attr)
{
    return (struct x86_segment){ .selector = sel, .base = 0, .limit = 0xffffffff, .attr = attr };
}

static void common_state(struct x86_boot_state *bs)
{
    bs->rflags = 0x2;
    bs->tr = (struct x86_segment){ .selector = 0, .base = 0, .limit = 0x67,
                                   .attr = ATTR_TSS_BUSY };
    bs->ldt = (struct x86_segment){ .attr = ATTR_UNUSABLE };
}

void x86_boot_real(struct x86_boot_state *bs, uint64_t entry)
{
    memset(bs, 0, sizeof *bs);
    common_state(bs);
    uint16_t cs = (uint16_t)((entry >> 4) & 0xf000);
    bs->cs = (struct x86_segment){ .selector = cs, .base = (uint64_t)cs << 4, .limit = 0xffff,
                                   .attr = 0x9b };
    struct x86_segment data = { .selector = 0, .base = 0, .limit = 0xffff, .attr = 0x93 };
    bs->ds = bs->es = bs->fs = bs->gs = bs->ss = data;
    bs->rip = entry & 0xffff;
    bs->gpr[X86_RSP] = 0x7000;
    bs->idt = (struct x86_dtable){ .base = 0, .limit = 0x3ff };
    bs->cr0 = CR0_ET;
}

static int write_gdt(struct loader *lc)
{
    static const uint32_t attrs[] = { 0, ATTR_CODE32, ATTR_CODE64, ATTR_DATA, ATTR_USER_DATA,
                                      ATTR_USER_CODE64, ATTR_USER_CODE32 };
    enum { N = sizeof attrs / sizeof attrs[0] };
    int rc = loader_claim(lc, BOOT_GDT_ADDR, N * 8, "the boot GDT");
    if (rc)
        return rc;
    for (unsigned i = 1; i < N; i++)
        put_le64(lc->ram + BOOT_GDT_ADDR + i * 8, gdt_descriptor(attrs[i]));
    memset(lc->ram + BOOT_GDT_ADDR, 0, 8);
    lc->bs->gdt = (struct x86_dtable){ .base = BOOT_GDT_ADDR, .limit = N * 8 - 1 };
    return 0;
}

int x86_boot_protected(struct loader *lc, uint64_t entry)
{
    struct x86_boot_state *bs = lc->bs;
    memset(bs, 0, sizeof *bs);
    if (entry > 0xffffffffu)
        return loader_fail(lc, "entry 0x%llx is beyond 4 GiB in protected mode",
                           (unsigned long long)entry);
    int rc = write_gdt(lc);
    if (rc)
        return rc;
    common_state(bs);
    bs->cs = flat_segment(BOOT_SEL_CODE32, ATTR_CODE32);
    bs->ds = bs->es = bs->fs = bs->gs = bs->ss = flat_segment(BOOT_SEL_DATA, ATTR_DATA);
    bs->rip = entry;
    bs->gpr[X86_RSP] = BOOT_STACK_TOP;
    bs->cr0 = CR0_PE | CR0_ET | CR0_NE;
    return 0;
}

int x86_boot_long(struct loader *lc, uint64_t entry)
{
    struct x86_boot_state *bs = lc->bs;
    memset(bs, 0, sizeof *bs);
    int rc = write_gdt(lc);
    if (rc)
        return rc;
    if ((rc = loader_claim(lc, BOOT_PML4_ADDR, BOOT_PAGETABLES_END - BOOT_PML4_ADDR,
                           "the identity page tables")))
        return rc;
    /* Identity map of the low 4 GiB (RAM and the 32-bit MMIO window) with 2 MiB pages,
     * user-accessible so that CPL3 guests can run on the same tables. */
    uint8_t *pml4 = lc->ram + BOOT_PML4_ADDR, *pdpt = lc->ram + BOOT_PDPT_ADDR;
    memset(pml4, 0, BOOT_PAGETABLES_END - BOOT_PML4_ADDR);
    put_le64(pml4, BOOT_PDPT_ADDR | PTE_P | PTE_RW | PTE_US);
    for (uint64_t i = 0; i < 4; i++) {
        put_le64(pdpt + i * 8, (BOOT_PD_ADDR + i * 0x1000) | PTE_P | PTE_RW | PTE_US);
        for (uint64_t j = 0; j < 512; j++)
            put_le64(lc->ram + BOOT_PD_ADDR + i * 0x1000 + j * 8,
                  ((i << 30) | (j << 21)) | PTE_P | PTE_RW | PTE_US | PTE_PS);
    }
    common_state(bs);
    bs->cs = flat_segment(BOOT_SEL_CODE64, ATTR_CODE64);
    bs->ds = bs->es = bs->fs = bs->gs = bs->ss = flat_segment(BOOT_SEL_DATA, ATTR_DATA);
    bs->rip = entry;
    bs->gpr[X86_RSP] = BOOT_STACK_TOP;
    bs->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
    bs->cr3 = BOOT_PML4_ADDR;
    bs->cr4 = CR4_PAE;
    bs->efer = EFER_LME | EFER_LMA;
    return 0;
}
