/* System instructions: segments and descriptor tables, control registers, MSRs, CPUID,
 * far transfers, IRET, SYSCALL/SYSENTER, port I/O, HLT. */
#include <stdio.h>
#include <time.h>

#include "x86.h"
#include "x87.h"

void cpu_update_mode(struct cpu *c)
{
    struct cpu_seg *cs = &c->seg[CPU_CS];
    if (!(c->cr0 & CR0_PE))
        c->mode = MODE_REAL;
    else if (c->efer & EFER_LMA)
        c->mode = MODE_LONG;
    else
        c->mode = MODE_PROT;
    c->code64 = c->mode == MODE_LONG && (cs->attr & 0x2000);
    c->csz = c->code64 ? 8 : (cs->attr & 0x4000) ? 4 : 2;
    c->ssz = c->code64 ? 8 : (c->seg[CPU_SS].attr & 0x4000) ? 4 : 2;
    c->cpl = c->mode == MODE_REAL ? 0 : (cs->sel & 3);
    c->umask_shift = c->cpl == 3 ? 3 : 0;
    c->need_r = (uint8_t)(P_R << c->umask_shift);
    c->need_w = (uint8_t)(P_W << c->umask_shift);
    for (unsigned s = 0; s < 6; s++)
        c->sbase[s] = (c->code64 && s < CPU_FS) ? 0 : c->seg[s].base;
    /* jump-cache entries are per linear address, code size and CPL (the key has both),
     * so a privilege or mode switch needs no new epoch: paging changes bump it */
    jc_rekey(c);
}

void seg_load_real(struct cpu *c, unsigned s, uint16_t sel)
{
    c->seg[s].sel = sel;
    c->seg[s].base = (uint64_t)sel << 4;
    if (c->mode == MODE_REAL && s == CPU_CS) {
        /* keep the hidden limit/attributes (unreal mode), but CS is a 16-bit code segment */
        c->seg[s].attr = (c->seg[s].attr & ~0x4000u) | 0x9b;
    }
    if (c->seg[s].attr & 0x10000)
        c->seg[s].attr = 0x93;
    c->sbase[s] = c->seg[s].base;
    if (s == CPU_CS || s == CPU_SS)
        cpu_update_mode(c);
}

bool desc_read(struct cpu *c, uint16_t sel, uint64_t *lo, uint64_t *hi)
{
    uint64_t base;
    uint32_t limit;
    if (sel & 4) {
        if (c->seg[CPU_LDTR].attr & 0x10000 || !(c->seg[CPU_LDTR].attr & 0x80))
            return false;
        base = c->seg[CPU_LDTR].base;
        limit = c->seg[CPU_LDTR].limit;
    } else {
        base = c->gdt_base;
        limit = c->gdt_limit;
    }
    if ((uint32_t)(sel & ~7) + 7 > limit)
        return false;
    *lo = mem_read_sys(c, base + (sel & ~7u), 8);
    *hi = 0;
    if ((c->efer & EFER_LMA) && !((*lo >> 44) & 1) && (uint32_t)(sel & ~7) + 15 <= limit)
        *hi = mem_read_sys(c, base + (sel & ~7u) + 8, 8);
    return true;
}

void desc_to_seg(struct cpu_seg *s, uint16_t sel, uint64_t lo, uint64_t hi)
{
    uint32_t limit = (uint32_t)((lo & 0xffff) | ((lo >> 32) & 0xf0000));
    s->sel = sel;
    s->base = ((lo >> 16) & 0xffffff) | ((lo >> 32) & 0xff000000ULL);
    if (!((lo >> 44) & 1))
        s->base |= (hi & 0xffffffffULL) << 32;
    s->attr = (uint32_t)(((lo >> 40) & 0xff) | (((lo >> 52) & 0xf) << 12));
    s->limit = (lo & (1ULL << 55)) ? (limit << 12) | 0xfff : limit;
}

static void set_accessed(struct cpu *c, uint16_t sel, uint64_t lo)
{
    if (!(lo & (1ULL << 40))) {
        uint64_t base = (sel & 4) ? c->seg[CPU_LDTR].base : c->gdt_base;
        mem_write_sys(c, base + (sel & ~7u) + 5, 1, ((lo >> 40) & 0xff) | 1);
    }
}

void seg_load(struct cpu *c, unsigned s, uint16_t sel)
{
    uint64_t lo, hi;
    struct cpu_seg d;
    unsigned dpl, rpl = sel & 3;
    if (c->mode == MODE_REAL) {
        seg_load_real(c, s, sel);
        return;
    }
    if ((sel & ~3) == 0) {
        if (s == CPU_SS && !(c->code64 && c->cpl < 3 && rpl == c->cpl))
            cpu_fault(c, EX_GP, 0);
        c->seg[s].sel = sel;
        c->seg[s].base = 0;
        c->seg[s].limit = 0;
        c->seg[s].attr = 0x10000 | (s == CPU_SS ? (unsigned)c->cpl << 5 : 0);
        c->sbase[s] = (c->code64 && s < CPU_FS) ? 0 : 0;
        if (s == CPU_SS)
            cpu_update_mode(c);
        return;
    }
    if (!desc_read(c, sel, &lo, &hi))
        cpu_fault(c, EX_GP, sel & ~3u);
    desc_to_seg(&d, sel, lo, hi);
    dpl = (d.attr >> 5) & 3;
    if (!(d.attr & 0x10))
        cpu_fault(c, EX_GP, sel & ~3u);
    if (s == CPU_SS) {
        if ((d.attr & 0xa) != 0x2 || rpl != c->cpl || dpl != c->cpl)
            cpu_fault(c, EX_GP, sel & ~3u);
        if (!(d.attr & 0x80))
            cpu_fault(c, EX_SS, sel & ~3u);
    } else {
        if ((d.attr & 0xa) == 0x8)  /* execute-only code */
            cpu_fault(c, EX_GP, sel & ~3u);
        if (!(d.attr & 0x4) || !(d.attr & 0x8)) {  /* data or non-conforming code */
            if (dpl < c->cpl || dpl < rpl)
                cpu_fault(c, EX_GP, sel & ~3u);
        }
        if (!(d.attr & 0x80))
            cpu_fault(c, EX_NP, sel & ~3u);
    }
    set_accessed(c, sel, lo);
    d.attr |= 1;
    if (c->mode == MODE_LONG && (s == CPU_FS || s == CPU_GS))
        d.base &= 0xffffffffULL;
    c->seg[s] = d;
    c->sbase[s] = (c->code64 && s < CPU_FS) ? 0 : d.base;
    if (s == CPU_SS)
        cpu_update_mode(c);
}

/* Load CS for a far transfer to a code segment; privilege rules for JMP/CALL. */
static void load_cs(struct cpu *c, uint16_t sel, unsigned new_cpl)
{
    uint64_t lo, hi;
    struct cpu_seg d;
    if ((sel & ~3) == 0)
        cpu_fault(c, EX_GP, 0);
    if (!desc_read(c, sel, &lo, &hi))
        cpu_fault(c, EX_GP, sel & ~3u);
    desc_to_seg(&d, sel, lo, hi);
    if ((d.attr & 0x18) != 0x18)
        cpu_fault(c, EX_GP, sel & ~3u);
    if (!(d.attr & 0x80))
        cpu_fault(c, EX_NP, sel & ~3u);
    set_accessed(c, sel, lo);
    d.attr |= 1;
    d.sel = (uint16_t)((sel & ~3) | new_cpl);
    c->seg[CPU_CS] = d;
    cpu_update_mode(c);
}

void far_transfer(struct cpu *c, uint16_t sel, uint64_t off, bool call, unsigned osz)
{
    if (c->mode == MODE_REAL) {
        if (call) {
            push(c, osz, c->seg[CPU_CS].sel);
            push(c, osz, c->rip);
        }
        seg_load_real(c, CPU_CS, sel);
        c->rip = off & sz_mask(osz);
        return;
    }
    {
        uint64_t lo, hi;
        unsigned type, dpl;
        if ((sel & ~3) == 0 || !desc_read(c, sel, &lo, &hi))
            cpu_fault(c, EX_GP, sel & ~3u);
        type = (lo >> 40) & 0x1f;
        dpl = (lo >> 45) & 3;
        if ((type & 0x18) != 0x18)
            cpu_stop_error(c, "far %s through a gate or TSS (selector 0x%x type %u) is not "
                           "implemented", call ? "call" : "jump", sel, type);
        if ((type & 4) ? dpl > c->cpl : (dpl != c->cpl || (sel & 3) > c->cpl))
            cpu_fault(c, EX_GP, sel & ~3u);
        if (call) {
            uint16_t ocs = c->seg[CPU_CS].sel;
            uint64_t orip = c->rip;
            uint64_t sp = sp_get(c);
            /* push before loading CS so a fault leaves CS intact */
            mem_write(c, seg_lin(c, CPU_SS, (sp - osz) & amask(c->ssz)), osz, ocs);
            mem_write(c, seg_lin(c, CPU_SS, (sp - 2 * osz) & amask(c->ssz)), osz, orip);
            load_cs(c, sel, c->cpl);
            sp_set(c, sp - 2 * osz);
        } else {
            load_cs(c, sel, c->cpl);
        }
        c->rip = c->code64 ? off : off & sz_mask(osz == 8 ? 4 : osz);
    }
}

OP(op_retf)
{
    unsigned osz = i->osz;
    uint64_t sp = sp_get(c), ip, nsp;
    uint16_t cs;
    ip = mem_read(c, seg_lin(c, CPU_SS, sp), osz);
    cs = (uint16_t)mem_read(c, seg_lin(c, CPU_SS, (sp + osz) & amask(c->ssz)), osz);
    sp += 2 * osz + (i->op ? (i->imm & 0xffff) : 0);
    if (c->mode == MODE_REAL) {
        sp_set(c, sp);
        seg_load_real(c, CPU_CS, cs);
        c->rip = ip & sz_mask(osz);
        return;
    }
    if ((cs & 3) < c->cpl)
        cpu_fault(c, EX_GP, cs & ~3u);
    if ((cs & 3) > c->cpl) {
        uint16_t ss;
        nsp = mem_read(c, seg_lin(c, CPU_SS, sp & amask(c->ssz)), osz);
        ss = (uint16_t)mem_read(c, seg_lin(c, CPU_SS, (sp + osz) & amask(c->ssz)), osz);
        load_cs(c, cs, cs & 3);
        seg_load(c, CPU_SS, ss);
        reg_set(c, 4, osz, nsp + (i->op ? (i->imm & 0xffff) : 0));
        for (unsigned s = 0; s < 6; s++)
            if (s != CPU_CS && s != CPU_SS && ((c->seg[s].attr >> 5) & 3) < c->cpl &&
                (c->seg[s].attr & 0x1c) != 0x1c)
                seg_load(c, s, 0);
    } else {
        load_cs(c, cs, c->cpl);
        sp_set(c, sp);
    }
    c->rip = c->code64 ? ip : ip & 0xffffffffULL & sz_mask(osz == 8 ? 4 : osz);
}

static uint64_t flags_merge(struct cpu *c, uint64_t old, uint64_t v, unsigned osz, unsigned cpl)
{
    uint64_t mask = F_ARITH | F_TF | F_DF | F_NT | F_AC | F_ID | F_RF;
    if (c->mode == MODE_REAL || cpl == 0)
        mask |= F_IOPL | F_IF;
    else if (cpl <= ((old >> 12) & 3))
        mask |= F_IF;
    if (osz == 2)
        mask &= 0xffff;
    return (old & ~mask) | (v & mask);
}

OP(op_iret)
{
    unsigned osz = i->osz;
    uint64_t sp = sp_get(c), m = amask(c->ssz), ip, fl, nsp = 0, old = flags_get(c);
    uint16_t cs, ss = 0;
    ip = mem_read(c, seg_lin(c, CPU_SS, sp), osz);
    cs = (uint16_t)mem_read(c, seg_lin(c, CPU_SS, (sp + osz) & m), osz);
    fl = mem_read(c, seg_lin(c, CPU_SS, (sp + 2 * osz) & m), osz);
    if (c->mode == MODE_REAL) {
        sp_set(c, sp + 3 * osz);
        seg_load_real(c, CPU_CS, cs);
        flags_set(c, flags_merge(c, old, fl, osz, 0));
        c->rip = ip & sz_mask(osz);
        c->stop_block = true;
        return;
    }
    if (old & F_NT)
        cpu_stop_error(c, "IRET with NT set (task return) is not implemented");
    if (!(c->efer & EFER_LMA) && (fl & F_VM) && c->cpl == 0 && osz == 4)
        cpu_stop_error(c, "IRET to virtual-8086 mode is not implemented");
    if ((cs & 3) < c->cpl)
        cpu_fault(c, EX_GP, cs & ~3u);
    if (c->code64 || (cs & 3) > c->cpl) {
        nsp = mem_read(c, seg_lin(c, CPU_SS, (sp + 3 * osz) & m), osz);
        ss = (uint16_t)mem_read(c, seg_lin(c, CPU_SS, (sp + 4 * osz) & m), osz);
    }
    {
        unsigned ocpl = c->cpl;
        load_cs(c, cs, cs & 3);
        flags_set(c, flags_merge(c, old, fl, osz, ocpl));
        if (c->code64 || (c->efer & EFER_LMA && (ocpl != c->cpl || osz == 8)) || ocpl != c->cpl) {
            if ((ss & ~3) == 0 && (c->efer & EFER_LMA) && c->code64 && c->cpl < 3) {
                c->seg[CPU_SS].sel = ss;
                c->seg[CPU_SS].attr = 0x10000 | ((unsigned)c->cpl << 5);
                c->seg[CPU_SS].base = 0;
                cpu_update_mode(c);
            } else {
                seg_load(c, CPU_SS, ss);
            }
            if (c->ssz == 8 || osz == 8)
                c->r[4] = nsp;
            else
                reg_set(c, 4, c->ssz, nsp);
            if (ocpl != c->cpl)
                for (unsigned s = 0; s < 6; s++)
                    if (s != CPU_CS && s != CPU_SS && !(c->seg[s].attr & 0x10000) &&
                        ((c->seg[s].attr >> 5) & 3) < c->cpl &&
                        (c->seg[s].attr & 0x1c) != 0x1c)
                        seg_load(c, s, 0);
        } else {
            sp_set(c, sp + 3 * osz);
        }
    }
    c->rip = c->code64 ? ip : ip & 0xffffffffULL & sz_mask(osz == 8 ? 4 : osz);
    c->stop_block = true;
}

void tss_stack(struct cpu *c, unsigned dpl, unsigned ist, uint16_t *ss, uint64_t *sp)
{
    struct cpu_seg *tr = &c->seg[CPU_TR];
    if (tr->attr & 0x10000 || !(tr->attr & 0x80))
        cpu_fault(c, EX_TS, tr->sel & ~3u);
    if (c->efer & EFER_LMA) {
        uint32_t off = ist ? 36 + (ist - 1) * 8 : 4 + dpl * 8;
        if (off + 7 > tr->limit)
            cpu_fault(c, EX_TS, tr->sel & ~3u);
        *sp = mem_read_sys(c, tr->base + off, 8);
        *ss = (uint16_t)dpl;
    } else if ((tr->attr & 0xf) == 0x9 || (tr->attr & 0xf) == 0xb) {
        uint32_t off = 4 + dpl * 8;
        if (off + 5 > tr->limit)
            cpu_fault(c, EX_TS, tr->sel & ~3u);
        *sp = mem_read_sys(c, tr->base + off, 4);
        *ss = (uint16_t)mem_read_sys(c, tr->base + off + 4, 2);
    } else {
        uint32_t off = 2 + dpl * 4;
        *sp = mem_read_sys(c, tr->base + off, 2);
        *ss = (uint16_t)mem_read_sys(c, tr->base + off + 2, 2);
    }
}

/* ---- control registers ---- */

uint64_t cr_read(struct cpu *c, unsigned n)
{
    switch (n) {
    case 0: return c->cr0;
    case 2: return c->cr2;
    case 3: return c->cr3;
    case 4: return c->cr4;
    case 8: return c->cr8;
    default: cpu_ud(c);
    }
}

#define CR4_SUPPORTED (CR4_PSE | CR4_PAE | CR4_PGE | CR4_OSFXSR | CR4_OSXMMEXCPT | 0x8 | 0x4)

void cr_write(struct cpu *c, unsigned n, uint64_t v)
{
    bool flush = false;
    switch (n) {
    case 0: {
        uint64_t old = c->cr0;
        if (v >> 32)
            cpu_fault(c, EX_GP, 0);
        if ((v & CR0_PG) && !(v & CR0_PE))
            cpu_fault(c, EX_GP, 0);
        v |= CR0_ET;
        if ((v & CR0_PG) && !(old & CR0_PG) && (c->efer & EFER_LME)) {
            if (!(c->cr4 & CR4_PAE))
                cpu_fault(c, EX_GP, 0);
            c->efer |= EFER_LMA;
        }
        if (!(v & CR0_PG) && (old & CR0_PG) && (c->efer & EFER_LMA)) {
            if (c->code64)
                cpu_fault(c, EX_GP, 0);
            c->efer &= ~EFER_LMA;
        }
        c->cr0 = v;
        tlb_flush(c);
        if ((old ^ v) & (CR0_PE | CR0_PG | CR0_WP))
            flush = true;
        cpu_update_mode(c);
        break;
    }
    case 2: c->cr2 = v; break;
    case 3:
        if (!(c->efer & EFER_LMA))
            v &= 0xffffffffULL;
        c->cr3 = v;
        tlb_flush(c);
        break;
    case 4:
        if (v & ~CR4_SUPPORTED)
            cpu_fault(c, EX_GP, 0);
        if ((c->efer & EFER_LMA) && !(v & CR4_PAE))
            cpu_fault(c, EX_GP, 0);
        if ((c->cr4 ^ v) & (CR4_PAE | CR4_PSE))
            flush = true;
        c->cr4 = v;
        tlb_flush(c);
        break;
    case 8: c->cr8 = v & 0xf; break;
    default: cpu_ud(c);
    }
    c->stop_block = flush ? STOP_FLUSH : 1;
}

OP(op_mov_cr)
{
    unsigned n = i->reg, sz = c->code64 ? 8 : 4;
    if (c->cpl)
        cpu_gp0(c);
    if (i->lock && n == 0)
        n = 8;  /* AMD's alternate CR8 encoding */
    if (i->op)
        cr_write(c, n, reg_get(c, i->rm, sz));
    else
        reg_set(c, i->rm, sz, cr_read(c, n));
}

OP(op_mov_dr)
{
    unsigned n = i->reg, sz = c->code64 ? 8 : 4;
    if (c->cpl)
        cpu_gp0(c);
    if (n > 7)
        cpu_ud(c);
    if (n == 4 || n == 5)
        n += 2;
    if (i->op)
        c->dr[n] = reg_get(c, i->rm, sz);
    else
        reg_set(c, i->rm, sz, n == 6 ? (c->dr[6] | 0xffff0ff0) : n == 7 ? (c->dr[7] | 0x400)
                                                                    : c->dr[n]);
}

OP(op_clts)
{
    if (c->cpl)
        cpu_gp0(c);
    c->cr0 &= ~CR0_TS;
}

OP(op_invd)
{
    if (c->cpl)
        cpu_gp0(c);
}

/* ---- MSRs ---- */

#define MSR_TSC 0x10
#define MSR_PLATFORM_ID 0x17
#define MSR_FEATURE_CONTROL 0x3a
#define MSR_BIOS_SIGN_ID 0x8b
#define MSR_PMC0 0xc1
#define MSR_PMC1 0xc2
#define MSR_PERFEVTSEL0 0x186
#define MSR_PERFEVTSEL1 0x187
#define MSR_DEBUGCTL 0x1d9
#define MSR_ARCH_CAPABILITIES 0x10a
#define MSR_APIC_BASE 0x1b
#define MSR_SYSENTER_CS 0x174
#define MSR_SYSENTER_ESP 0x175
#define MSR_SYSENTER_EIP 0x176
#define MSR_MISC_ENABLE 0x1a0
#define MSR_PAT 0x277
#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SFMASK 0xc0000084
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_KGS_BASE 0xc0000102
#define MSR_TSC_AUX 0xc0000103

/* IA32_ARCH_CAPABILITIES: this CPU executes nothing speculatively, so it is not affected by
 * Meltdown (RDCL_NO), speculative store bypass (SSB_NO), MDS, TAA, the MMIO stale-data bugs
 * (SBDR_SSDP_NO, FBSDP_NO, PSDP_NO), post-barrier RSB predictions (PBRSB_NO), branch
 * history injection (BHI_NO), GDS or RFDS. Guests then skip the mitigations (for Linux:
 * no page-table isolation, so no CR3 switch, TLB flush and jump-cache flush per syscall). */
#define ARCH_CAP_NOT_AFFECTED ((1ULL << 0) | (1ULL << 4) | (1ULL << 5) | (1ULL << 8) | \
                               (1ULL << 13) | (1ULL << 14) | (1ULL << 15) | (1ULL << 20) | \
                               (1ULL << 24) | (1ULL << 26) | (1ULL << 27))

/* The identity CPUID presents: an Intel family 6 model 23 stepping 10 (Core 2, "Penryn"
 * E0: SSE4.1 but not SSE4.2, the set this emulator implements), with only the features this
 * emulator implements. These are the registers that identity implies beyond the
 * architectural ones. */
#define CPUID_SIGNATURE 0x0001067au
#define UCODE_REVISION 0xa0bULL                 /* IA32_BIOS_SIGN_ID[63:32] */
#define FEATURE_CONTROL_LOCK 1ULL               /* no VMX/SMX: the lock is the only bit */
#define MISC_ENABLE_FAST_STRING 1ULL
#define MISC_ENABLE_LIMIT_CPUID (1ULL << 22)

static uint64_t tsc_now(struct cpu *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* a 1 GHz time stamp counter */
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec + c->tsc_offset;
}

OP(op_rdmsr)
{
    uint64_t v;
    if (c->cpl)
        cpu_gp0(c);
    switch ((uint32_t)c->r[1]) {
    case MSR_TSC: v = tsc_now(c); break;
    case MSR_PLATFORM_ID: v = 0; break;                  /* platform id 0 */
    case MSR_FEATURE_CONTROL: v = c->feature_control; break;
    case MSR_BIOS_SIGN_ID: v = UCODE_REVISION << 32; break;
    case MSR_PMC0: case MSR_PMC1: v = c->pmc[c->r[1] & 1 ? 0 : 1]; break;
    case MSR_PERFEVTSEL0: case MSR_PERFEVTSEL1: v = c->perfevtsel[c->r[1] & 1]; break;
    case MSR_DEBUGCTL: v = 0; break;
    case MSR_APIC_BASE: v = c->apic_base; break;
    case MSR_SYSENTER_CS: v = c->sysenter_cs; break;
    case MSR_SYSENTER_ESP: v = c->sysenter_esp; break;
    case MSR_SYSENTER_EIP: v = c->sysenter_eip; break;
    case MSR_MISC_ENABLE: v = c->misc_enable; break;
    case MSR_PAT: v = c->pat; break;
    case MSR_EFER: v = c->efer; break;
    case MSR_STAR: v = c->star; break;
    case MSR_LSTAR: v = c->lstar; break;
    case MSR_CSTAR: v = c->cstar; break;
    case MSR_SFMASK: v = c->sfmask; break;
    case MSR_FS_BASE: v = c->seg[CPU_FS].base; break;
    case MSR_GS_BASE: v = c->seg[CPU_GS].base; break;
    case MSR_KGS_BASE: v = c->kgsbase; break;
    case MSR_TSC_AUX: v = c->tsc_aux; break;
    case MSR_ARCH_CAPABILITIES: v = ARCH_CAP_NOT_AFFECTED; break;
    default: cpu_gp0(c);
    }
    reg_set(c, 0, 4, v);
    reg_set(c, 2, 4, v >> 32);
}

static bool canonical(uint64_t v)
{
    return (uint64_t)((int64_t)(v << 16) >> 16) == v;
}

OP(op_wrmsr)
{
    uint64_t v = (c->r[0] & 0xffffffff) | (c->r[2] << 32);
    if (c->cpl)
        cpu_gp0(c);
    switch ((uint32_t)c->r[1]) {
    case MSR_TSC: c->tsc_offset = v - tsc_now(c) + c->tsc_offset; break;
    case MSR_FEATURE_CONTROL:
        if ((c->feature_control & FEATURE_CONTROL_LOCK) || (v & ~FEATURE_CONTROL_LOCK))
            cpu_gp0(c);
        c->feature_control = v;
        break;
    case MSR_BIOS_SIGN_ID: break;       /* the write before CPUID that latches the revision */
    /* Two general counters that never count: CPUID leaf 0xA reports no architectural PMU
     * and Linux's P6 driver does not know model 23, so nothing expects them to. */
    case MSR_PMC0: case MSR_PMC1: c->pmc[c->r[1] & 1 ? 0 : 1] = v & 0xffffffffffULL; break;
    case MSR_PERFEVTSEL0: case MSR_PERFEVTSEL1:
        if (v >> 32)
            cpu_gp0(c);
        c->perfevtsel[c->r[1] & 1] = v;
        break;
    case MSR_DEBUGCTL:                  /* LBR and BTF are not implemented: only 0 */
        if (v)
            cpu_gp0(c);
        break;
    case MSR_APIC_BASE:
        /* reserved: bits 0-7, 9, 10 (no x2APIC) and those above 40 physical address bits */
        if (v & (0x6ffULL | ~0xffffffffffULL))
            cpu_gp0(c);
        c->apic_base = v;
        break;
    case MSR_SYSENTER_CS: c->sysenter_cs = v & 0xffff; break;
    case MSR_SYSENTER_ESP: c->sysenter_esp = v; break;
    case MSR_SYSENTER_EIP: c->sysenter_eip = v; break;
    case MSR_MISC_ENABLE: c->misc_enable = v; break;
    case MSR_PAT: c->pat = v; break;
    case MSR_EFER: {
        uint64_t nv = (v & (EFER_SCE | EFER_LME | EFER_NXE)) | (c->efer & EFER_LMA);
        if (v & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE))
            cpu_gp0(c);
        if ((c->cr0 & CR0_PG) && ((nv ^ c->efer) & EFER_LME))
            cpu_gp0(c);
        c->efer = nv;
        tlb_flush(c);
        c->stop_block = STOP_FLUSH;
        cpu_update_mode(c);
        break;
    }
    case MSR_STAR: c->star = v; break;
    case MSR_LSTAR: if (!canonical(v)) cpu_gp0(c); c->lstar = v; break;
    case MSR_CSTAR: if (!canonical(v)) cpu_gp0(c); c->cstar = v; break;
    case MSR_SFMASK: c->sfmask = v & 0xffffffff; break;
    case MSR_FS_BASE: if (!canonical(v)) cpu_gp0(c); c->seg[CPU_FS].base = v; break;
    case MSR_GS_BASE: if (!canonical(v)) cpu_gp0(c); c->seg[CPU_GS].base = v; break;
    case MSR_KGS_BASE: if (!canonical(v)) cpu_gp0(c); c->kgsbase = v; break;
    case MSR_TSC_AUX:
        if (v >> 32)
            cpu_gp0(c);
        c->tsc_aux = v;
        break;
    default: cpu_gp0(c);
    }
    cpu_update_mode(c);
}

OP(op_rdtsc)
{
    uint64_t v;
    if ((c->cr4 & CR4_TSD) && c->cpl)
        cpu_gp0(c);
    v = tsc_now(c);
    reg_set(c, 0, 4, v);
    reg_set(c, 2, 4, v >> 32);
}

OP(op_rdtscp)
{
    op_rdtsc(c, i);
    reg_set(c, 1, 4, c->tsc_aux);
}

/* ---- CPUID: exactly what this emulator implements ---- */

void cpu_cpuid_leaf(const struct cpu *c, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    r[0] = r[1] = r[2] = r[3] = 0;
    /* Past the highest leaf an Intel CPU returns the highest basic leaf, 0xA here, which is
     * all zeros: the default below. */
    switch (leaf) {
    case 0:
        /* leaves 2-6 and 8-0xA read as zeros: no cache descriptors, no MONITOR, no
         * architectural PMU (0xA version 0). IA32_MISC_ENABLE[22] limits the leaf to 2. */
        r[0] = (c->misc_enable & MISC_ENABLE_LIMIT_CPUID) ? 2 : 0xa;
        memcpy(&r[1], "Genu", 4);   /* "GenuineIntel" in ebx, edx, ecx */
        memcpy(&r[3], "ineI", 4);
        memcpy(&r[2], "ntel", 4);
        break;
    case 1:
        r[0] = CPUID_SIGNATURE;     /* family 6, model 23, stepping 10 */
        r[1] = 0x00010800;          /* CLFLUSH 64 bytes, 1 logical CPU, APIC id 0 */
        r[2] = (1u << 0)            /* SSE3 (sse.c; FISTTP in x87.c); no MONITOR/MWAIT */
             | (1u << 9)            /* SSSE3 (sse.c: the XMM forms; MMX is not reported) */
             | (1u << 13)           /* CMPXCHG16B */
             | (1u << 19)           /* SSE4.1 (sse.c); not SSE4.2 */
             | (1u << 23);          /* POPCNT */
        r[3] = (x87_available() ? 1u : 0u)  /* FPU (x87.c) */
             | (1u << 3)            /* PSE */
             | (1u << 4)            /* TSC */
             | (1u << 5)            /* MSR */
             | (1u << 6)            /* PAE */
             | (1u << 8)            /* CX8 */
             | (1u << 9)            /* APIC (the emu backend's local APIC) */
             | (1u << 11)           /* SEP */
             | (1u << 13)           /* PGE */
             | (1u << 15)           /* CMOV */
             | (1u << 16)           /* PAT */
             | (1u << 19)           /* CLFSH */
             | (1u << 24)           /* FXSR */
             | (1u << 25)           /* SSE */
             | (1u << 26);          /* SSE2 */
        break;
    case 7:
        if (sub == 0)
            r[3] = 1u << 29;        /* IA32_ARCH_CAPABILITIES */
        break;
    case 0x80000000:
        r[0] = 0x80000008;
        break;
    case 0x80000001:
        r[2] = 1u << 0;             /* LAHF/SAHF in 64-bit mode */
        r[3] = (1u << 11)           /* SYSCALL */
             | (1u << 20)           /* NX */
             | (1u << 27)           /* RDTSCP (IA32_TSC_AUX) */
             | (1u << 29);          /* LM */
        break;
    case 0x80000002: case 0x80000003: case 0x80000004: {
        static const char brand[48] = "Intel(R) Core(TM)2 class CPU (vmcore emu)";
        memcpy(r, brand + (leaf - 0x80000002) * 16, 16);
        break;
    }
    case 0x80000007:
        r[3] = 1u << 8;             /* invariant TSC: a 1 GHz count of CLOCK_MONOTONIC */
        break;
    case 0x80000008:
        r[0] = 0x3028;              /* 40 physical, 48 linear address bits */
        break;
    default:
        break;
    }
}

OP(op_cpuid)
{
    uint32_t r[4];
    cpu_cpuid_leaf(c, (uint32_t)c->r[0], (uint32_t)c->r[1], r);
    reg_set(c, 0, 4, r[0]);
    reg_set(c, 3, 4, r[1]);
    reg_set(c, 1, 4, r[2]);
    reg_set(c, 2, 4, r[3]);
}

/* ---- descriptor tables ---- */

OP(op_grp6)
{
    unsigned op = i->reg & 7;
    if (c->mode == MODE_REAL && op != 0)
        cpu_ud(c);
    switch (op) {
    case 0: rm_write(c, i, i->mod == 3 ? i->osz : 2, c->seg[CPU_LDTR].sel); break;
    case 1: rm_write(c, i, i->mod == 3 ? i->osz : 2, c->seg[CPU_TR].sel); break;
    case 2: case 3: {
        uint16_t sel = (uint16_t)rm_read(c, i, 2);
        uint64_t lo, hi;
        struct cpu_seg d;
        unsigned want = op == 2 ? 0x2 : 0x9;
        if (c->cpl)
            cpu_gp0(c);
        if ((sel & ~3) == 0) {
            if (op == 3)
                cpu_gp0(c);
            c->seg[CPU_LDTR].sel = sel;
            c->seg[CPU_LDTR].attr = 0x10000;
            break;
        }
        if ((sel & 4) || !desc_read(c, sel, &lo, &hi))
            cpu_fault(c, EX_GP, sel & ~3u);
        desc_to_seg(&d, sel, lo, hi);
        if ((d.attr & 0x1f) != want && !(op == 3 && (d.attr & 0x1f) == 1))
            cpu_fault(c, EX_GP, sel & ~3u);
        if (!(d.attr & 0x80))
            cpu_fault(c, EX_NP, sel & ~3u);
        if (op == 3) {
            /* mark the TSS busy */
            mem_write_sys(c, c->gdt_base + (sel & ~7u) + 5, 1, ((lo >> 40) & 0xff) | 2);
            d.attr |= 2;
            c->seg[CPU_TR] = d;
        } else {
            c->seg[CPU_LDTR] = d;
        }
        break;
    }
    case 4: case 5: {
        uint16_t sel = (uint16_t)rm_read(c, i, 2);
        uint64_t lo, hi;
        bool ok = (sel & ~3) && desc_read(c, sel, &lo, &hi) && ((lo >> 44) & 1);
        if (ok) {
            unsigned type = (lo >> 40) & 0xf;
            ok = op == 4 ? (!(type & 8) || (type & 2)) : (!(type & 8) && (type & 2));
        }
        flags_set_arith(c, F_ZF, ok ? F_ZF : 0);
        break;
    }
    default:
        cpu_ud(c);
    }
}

OP(op_lar)
{
    uint16_t sel = (uint16_t)rm_read(c, i, 2);
    uint64_t lo, hi;
    if (c->mode == MODE_REAL)
        cpu_ud(c);
    if ((sel & ~3) && desc_read(c, sel, &lo, &hi)) {
        reg_set(c, i->reg, i->osz, (lo >> 32) & 0x00f0ff00);
        flags_set_arith(c, F_ZF, F_ZF);
    } else {
        flags_set_arith(c, F_ZF, 0);
    }
}

OP(op_lsl)
{
    uint16_t sel = (uint16_t)rm_read(c, i, 2);
    uint64_t lo, hi;
    struct cpu_seg d;
    if (c->mode == MODE_REAL)
        cpu_ud(c);
    if ((sel & ~3) && desc_read(c, sel, &lo, &hi)) {
        desc_to_seg(&d, sel, lo, hi);
        reg_set(c, i->reg, i->osz, d.limit);
        flags_set_arith(c, F_ZF, F_ZF);
    } else {
        flags_set_arith(c, F_ZF, 0);
    }
}

OP(op_grp7)
{
    unsigned op = i->reg & 7;
    if (i->mod == 3) {
        unsigned rm = i->rm & 7;
        if (op == 7 && rm == 0 && c->code64) {          /* SWAPGS */
            uint64_t t;
            if (c->cpl)
                cpu_gp0(c);
            t = c->seg[CPU_GS].base;
            c->seg[CPU_GS].base = c->kgsbase;
            c->kgsbase = t;
            c->sbase[CPU_GS] = c->seg[CPU_GS].base;
            return;
        }
        if (op == 7 && rm == 1) {                        /* RDTSCP */
            op_rdtscp(c, i);
            return;
        }
        if (op == 4) {
            rm_write(c, i, i->osz, c->cr0 & 0xffff);
            return;
        }
        if (op == 6)
            goto lmsw;
        cpu_ud(c);
    }
    switch (op) {
    case 0: case 1: {       /* SGDT / SIDT */
        uint64_t a = ea(c, i);
        mem_write(c, a, 2, op ? c->idt_limit : c->gdt_limit);
        if (c->code64)
            mem_write(c, a + 2, 8, op ? c->idt_base : c->gdt_base);
        else
            mem_write(c, a + 2, 4, op ? c->idt_base : c->gdt_base);
        return;
    }
    case 2: case 3: {       /* LGDT / LIDT */
        uint64_t a = ea(c, i), base;
        uint16_t limit;
        if (c->cpl)
            cpu_gp0(c);
        limit = (uint16_t)mem_read(c, a, 2);
        if (c->code64)
            base = mem_read(c, a + 2, 8);
        else
            base = mem_read(c, a + 2, 4) & (i->osz == 2 ? 0xffffff : 0xffffffff);
        if (op == 2) {
            c->gdt_base = base;
            c->gdt_limit = limit;
        } else {
            c->idt_base = base;
            c->idt_limit = limit;
        }
        return;
    }
    case 4:
        rm_write(c, i, 2, c->cr0 & 0xffff);
        return;
    case 6:
    lmsw: {
        uint64_t v = rm_read(c, i, 2);
        if (c->cpl)
            cpu_gp0(c);
        /* LMSW sets PE but never clears it */
        cr_write(c, 0, (c->cr0 & ~0xeULL) | (v & 0xf) | (c->cr0 & CR0_PE));
        return;
    }
    case 7:
        if (c->cpl)
            cpu_gp0(c);
        tlb_flush_page(c, ea(c, i));
        return;
    default:
        cpu_ud(c);
    }
}

OP(op_mov_rm_seg)
{
    unsigned s = i->reg & 7;
    if (s > 5)
        cpu_ud(c);
    rm_write(c, i, i->mod == 3 ? i->osz : 2, c->seg[s].sel);
}

OP(op_mov_seg_rm)
{
    unsigned s = i->reg & 7;
    if (s > 5 || s == CPU_CS)
        cpu_ud(c);
    seg_load(c, s, (uint16_t)rm_read(c, i, 2));
    if (s == CPU_SS)
        c->sti_shadow = 2;
}

OP(op_lxs)
{
    uint64_t a, off;
    uint16_t sel;
    if (i->mod == 3)
        cpu_ud(c);
    a = ea(c, i);
    off = mem_read(c, a, i->osz);
    sel = (uint16_t)mem_read(c, a + i->osz, 2);
    seg_load(c, i->op, sel);
    reg_set(c, i->reg, i->osz, off);
}

/* ---- fast system calls ---- */

static void flat_seg(struct cpu_seg *s, uint16_t sel, bool code, bool l, unsigned dpl)
{
    s->sel = sel;
    s->base = 0;
    s->limit = 0xffffffff;
    s->attr = (code ? 0xb : 0x3) | 0x10 | (dpl << 5) | 0x80 | 0x8000 |
              (l ? 0x2000 : 0x4000);
}

OP(op_syscall)
{
    uint16_t sel = (uint16_t)(c->star >> 32);
    if (!(c->efer & EFER_SCE))
        cpu_ud(c);
    if (c->mode == MODE_LONG) {
        uint64_t f = flags_get(c);
        c->r[1] = c->rip;
        c->r[11] = f & ~F_RF;
        flat_seg(&c->seg[CPU_CS], sel & ~3, true, true, 0);
        flat_seg(&c->seg[CPU_SS], (uint16_t)((sel + 8) & ~3), false, false, 0);
        c->rip = c->code64 ? c->lstar : c->cstar;
        flags_set(c, f & ~c->sfmask & ~F_RF);
    } else if (c->mode == MODE_PROT) {
        uint64_t f = flags_get(c);
        c->r[1] = c->rip & 0xffffffff;
        flat_seg(&c->seg[CPU_CS], sel & ~3, true, false, 0);
        flat_seg(&c->seg[CPU_SS], (uint16_t)((sel + 8) & ~3), false, false, 0);
        c->rip = c->star & 0xffffffff;
        flags_set(c, f & ~(F_VM | F_IF | F_RF));
    } else {
        cpu_ud(c);
    }
    cpu_update_mode(c);
}

OP(op_sysret)
{
    uint16_t sel = (uint16_t)(c->star >> 48);
    if (!(c->efer & EFER_SCE))
        cpu_ud(c);
    if (c->mode == MODE_REAL || c->cpl)
        cpu_gp0(c);
    if (c->mode == MODE_LONG) {
        if (i->osz == 8) {
            if (!canonical(c->r[1]))
                cpu_gp0(c);
            flat_seg(&c->seg[CPU_CS], (uint16_t)((sel + 16) | 3), true, true, 3);
            c->rip = c->r[1];
        } else {
            flat_seg(&c->seg[CPU_CS], sel | 3, true, false, 3);
            c->rip = c->r[1] & 0xffffffff;
        }
        flags_set(c, (c->r[11] & 0x3c7fd7) | 2);
    } else {
        flat_seg(&c->seg[CPU_CS], sel | 3, true, false, 3);
        c->rip = c->r[1] & 0xffffffff;
        flags_set(c, flags_get(c) | F_IF);
    }
    c->seg[CPU_SS].sel = (uint16_t)((sel + 8) | 3);
    flat_seg(&c->seg[CPU_SS], (uint16_t)((sel + 8) | 3), false, false, 3);
    cpu_update_mode(c);
}

OP(op_sysenter)
{
    uint16_t cs = (uint16_t)c->sysenter_cs;
    if (c->mode == MODE_REAL || (cs & ~3) == 0)
        cpu_gp0(c);
    flags_set(c, flags_get(c) & ~(F_VM | F_IF | F_RF));
    flat_seg(&c->seg[CPU_CS], cs & ~3, true, c->mode == MODE_LONG, 0);
    flat_seg(&c->seg[CPU_SS], (uint16_t)((cs + 8) & ~3), false, false, 0);
    cpu_update_mode(c);
    c->rip = c->code64 ? c->sysenter_eip : c->sysenter_eip & 0xffffffff;
    c->r[4] = c->code64 ? c->sysenter_esp : c->sysenter_esp & 0xffffffff;
}

OP(op_sysexit)
{
    uint16_t cs = (uint16_t)c->sysenter_cs;
    if (c->mode == MODE_REAL || c->cpl || (cs & ~3) == 0)
        cpu_gp0(c);
    if (i->osz == 8) {
        flat_seg(&c->seg[CPU_CS], (uint16_t)((cs + 32) | 3), true, true, 3);
        flat_seg(&c->seg[CPU_SS], (uint16_t)((cs + 40) | 3), false, false, 3);
        c->rip = c->r[2];
        c->r[4] = c->r[1];
    } else {
        flat_seg(&c->seg[CPU_CS], (uint16_t)((cs + 16) | 3), true, false, 3);
        flat_seg(&c->seg[CPU_SS], (uint16_t)((cs + 24) | 3), false, false, 3);
        c->rip = c->r[2] & 0xffffffff;
        c->r[4] = c->r[1] & 0xffffffff;
    }
    cpu_update_mode(c);
}

/* ---- port I/O, interrupts flag, HLT ---- */

bool io_allowed(struct cpu *c, uint16_t port, unsigned sz);
bool io_allowed(struct cpu *c, uint16_t port, unsigned sz)
{
    struct cpu_seg *tr = &c->seg[CPU_TR];
    uint32_t base;
    uint16_t bits;
    if (c->mode == MODE_REAL || c->cpl <= ((flags_get(c) >> 12) & 3))
        return true;
    /* the TSS I/O permission bitmap */
    if (tr->attr & 0x10000 || tr->limit < 0x67)
        return false;
    base = (uint32_t)mem_read_sys(c, tr->base + 0x66, 2);
    if (base + port / 8 + 1 > tr->limit)
        return false;
    bits = (uint16_t)mem_read_sys(c, tr->base + base + port / 8, 2);
    return ((bits >> (port & 7)) & ((1u << sz) - 1)) == 0;
}

OP(op_in)
{
    uint16_t port = i->op ? (uint16_t)c->r[2] : (uint16_t)(i->imm & 0xff);
    uint64_t v = 0;
    unsigned sz = i->osz == 8 ? 4 : i->osz;
    if (!io_allowed(c, port, sz))
        cpu_gp0(c);
    v = sz_mask(sz);
    if (c->io.pio && c->io.pio(c->io.opaque, port, false, sz, &v))
        c->io_stop = 1;
    reg_set(c, 0, sz, v);
    c->stop_block = true;
}

OP(op_out)
{
    uint16_t port = i->op ? (uint16_t)c->r[2] : (uint16_t)(i->imm & 0xff);
    unsigned sz = i->osz == 8 ? 4 : i->osz;
    uint64_t v = reg_get(c, 0, sz);
    if (!io_allowed(c, port, sz))
        cpu_gp0(c);
    if (c->io.pio && c->io.pio(c->io.opaque, port, true, sz, &v))
        c->io_stop = 1;
    c->stop_block = true;
}

OP(op_cli)
{
    if (c->mode != MODE_REAL && c->cpl > ((flags_get(c) >> 12) & 3))
        cpu_gp0(c);
    c->rflags &= ~F_IF;
}

OP(op_sti)
{
    if (c->mode != MODE_REAL && c->cpl > ((flags_get(c) >> 12) & 3))
        cpu_gp0(c);
    if (!(c->rflags & F_IF))
        c->sti_shadow = 2;
    c->rflags |= F_IF;
    c->stop_block = true;
}

OP(op_hlt)
{
    if (c->cpl)
        cpu_gp0(c);
    c->halted = 1;
    c->stop_block = true;
}

OP(op_ud) { cpu_ud(c); }
