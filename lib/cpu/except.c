/* Exceptions and interrupts: delivery through the real-mode IVT or the protected/long
 * mode IDT, double and triple faults. */
#include <stdarg.h>
#include <stdio.h>

#include "x86.h"

static void escalate(struct cpu *c, int vec, int has_err, uint32_t err);

_Noreturn void cpu_stop_error(struct cpu *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
    c->exit = CPU_EXIT_ERROR;
    c->in_delivery = 0;
    longjmp(c->jb, 1);
}

static _Noreturn void triple_fault(struct cpu *c, int vec)
{
    snprintf(c->errmsg, sizeof c->errmsg, "triple fault at rip=0x%llx (exception %d)",
             (unsigned long long)c->insn_rip, vec);
    c->exit = CPU_EXIT_SHUTDOWN;
    c->in_delivery = 0;
    c->delivering_df = 0;
    longjmp(c->jb, 1);
}

_Noreturn void cpu_raise(struct cpu *c, int vec, int has_err, uint32_t err)
{
    c->rip = c->insn_rip;
    c->exc_count++;     /* a fault loop retires nothing but must still end a slice */
    escalate(c, vec, has_err, err);
    longjmp(c->jb, 1);
}

_Noreturn void cpu_fault(struct cpu *c, int vec, uint32_t err) { cpu_raise(c, vec, 1, err); }
_Noreturn void cpu_ud(struct cpu *c) { cpu_raise(c, EX_UD, 0, 0); }
_Noreturn void cpu_gp0(struct cpu *c) { cpu_raise(c, EX_GP, 1, 0); }

static void escalate(struct cpu *c, int vec, int has_err, uint32_t err)
{
    if (c->in_delivery) {
        /* a fault while delivering an exception */
        if (c->delivering_df)
            triple_fault(c, vec);
        c->delivering_df = 1;
        c->in_delivery = 0;
        cpu_deliver(c, EX_DF, EV_EXC, 1, 0);
        c->delivering_df = 0;
        return;
    }
    cpu_deliver(c, vec, EV_EXC, has_err, err);
}

/* Push during delivery: uses supervisor rights, since the new stack belongs to the
 * handler's privilege level. */
static void dpush(struct cpu *c, uint64_t ssbase, uint64_t *sp, uint64_t spmask, unsigned sz,
                  uint64_t v)
{
    *sp = (*sp - sz) & spmask;
    uint64_t lin = ssbase + *sp;
    if (!(c->efer & EFER_LMA))
        lin &= 0xffffffffULL;
    mem_write_sys(c, lin, sz, v);
}

static void deliver_real(struct cpu *c, int vec)
{
    uint64_t f = flags_get(c);
    uint16_t ip, cs;
    if ((unsigned)vec * 4 + 3 > c->idt_limit)
        cpu_raise(c, EX_GP, 1, (uint32_t)vec * 8 + 2);
    ip = (uint16_t)mem_read_sys(c, c->idt_base + (unsigned)vec * 4, 2);
    cs = (uint16_t)mem_read_sys(c, c->idt_base + (unsigned)vec * 4 + 2, 2);
    push(c, 2, f);
    push(c, 2, c->seg[CPU_CS].sel);
    push(c, 2, c->rip);
    flags_set(c, f & ~(F_IF | F_TF | F_AC));
    seg_load_real(c, CPU_CS, cs);
    c->rip = ip;
}

void cpu_deliver(struct cpu *c, int vec, int kind, int has_err, uint32_t err)
{
    uint64_t lo, hi = 0, off, f;
    unsigned type, dpl, gsz;
    uint16_t sel;
    uint32_t ext = kind == EV_EXT ? 1 : 0;
    bool lm = c->efer & EFER_LMA;
    uint64_t dlo, dhi;
    struct cpu_seg ncs;
    unsigned ncpl;

    c->stop_block = true;
    c->halted = 0;
    if (kind == EV_EXC)
        c->in_delivery = 1;
    if (c->mode == MODE_REAL) {
        deliver_real(c, vec);
        c->in_delivery = 0;
        return;
    }
    gsz = lm ? 16 : 8;
    if ((unsigned)vec * gsz + gsz - 1 > c->idt_limit)
        cpu_raise(c, EX_GP, 1, (uint32_t)vec * 8 + 2 + ext);
    lo = mem_read_sys(c, c->idt_base + (unsigned)vec * gsz, 8);
    if (lm)
        hi = mem_read_sys(c, c->idt_base + (unsigned)vec * gsz + 8, 8);
    type = (lo >> 40) & 0x1f;
    dpl = (lo >> 45) & 3;
    if (kind == EV_SOFT && dpl < c->cpl)
        cpu_raise(c, EX_GP, 1, (uint32_t)vec * 8 + 2);
    if (!((lo >> 47) & 1))
        cpu_raise(c, EX_NP, 1, (uint32_t)vec * 8 + 2 + ext);
    if (type == 5)
        cpu_stop_error(c, "task gate in IDT vector %d: task switching is not implemented", vec);
    if (lm ? (type != 0xe && type != 0xf)
           : (type != 0xe && type != 0xf && type != 6 && type != 7))
        cpu_raise(c, EX_GP, 1, (uint32_t)vec * 8 + 2 + ext);
    sel = (uint16_t)(lo >> 16);
    off = (lo & 0xffff) | ((lo >> 32) & 0xffff0000ULL);
    if (lm)
        off |= hi << 32;
    if ((sel & ~3) == 0)
        cpu_raise(c, EX_GP, 1, ext);
    if (!desc_read(c, sel, &dlo, &dhi))
        cpu_raise(c, EX_GP, 1, (sel & ~3u) + ext);
    desc_to_seg(&ncs, sel, dlo, dhi);
    if (!(ncs.attr & 0x80))
        cpu_raise(c, EX_NP, 1, (sel & ~3u) + ext);
    if ((ncs.attr & 0x18) != 0x18)
        cpu_raise(c, EX_GP, 1, (sel & ~3u) + ext);
    ncpl = (ncs.attr & 0x4) ? c->cpl : (ncs.attr >> 5) & 3;   /* conforming keeps CPL */
    if (ncpl > c->cpl)
        cpu_raise(c, EX_GP, 1, (sel & ~3u) + ext);
    f = flags_get(c);

    if (lm) {
        unsigned ist = (lo >> 32) & 7;
        uint64_t sp = c->r[4], oss = c->seg[CPU_SS].sel, osp = c->r[4];
        uint16_t nss = 0;
        if (ist || ncpl < c->cpl) {
            tss_stack(c, ncpl, ist, &nss, &sp);
        }
        sp &= ~0xfULL;
        dpush(c, 0, &sp, ~0ULL, 8, oss);
        dpush(c, 0, &sp, ~0ULL, 8, osp);
        dpush(c, 0, &sp, ~0ULL, 8, f);
        dpush(c, 0, &sp, ~0ULL, 8, c->seg[CPU_CS].sel);
        dpush(c, 0, &sp, ~0ULL, 8, c->rip);
        if (has_err)
            dpush(c, 0, &sp, ~0ULL, 8, err);
        if (ncpl < c->cpl) {
            c->seg[CPU_SS].sel = (uint16_t)ncpl;
            c->seg[CPU_SS].base = 0;
            c->seg[CPU_SS].limit = 0xffffffff;
            c->seg[CPU_SS].attr = 0x10000 | (ncpl << 5);
        }
        c->r[4] = sp;
    } else {
        bool g32 = type >= 8;
        unsigned psz = g32 ? 4 : 2;
        uint64_t sp, ssbase, spmask;
        if (ncpl < c->cpl) {
            uint16_t nss;
            uint64_t nsp, slo, shi;
            struct cpu_seg nssd;
            tss_stack(c, ncpl, 0, &nss, &nsp);
            if ((nss & ~3) == 0 || !desc_read(c, nss, &slo, &shi))
                cpu_raise(c, EX_TS, 1, nss & ~3u);
            desc_to_seg(&nssd, nss, slo, shi);
            if (!(nssd.attr & 0x80))
                cpu_raise(c, EX_SS, 1, nss & ~3u);
            spmask = (nssd.attr & 0x4000) ? 0xffffffffULL : 0xffff;
            sp = nsp & spmask;
            ssbase = nssd.base;
            dpush(c, ssbase, &sp, spmask, psz, c->seg[CPU_SS].sel);
            dpush(c, ssbase, &sp, spmask, psz, c->r[4]);
            dpush(c, ssbase, &sp, spmask, psz, f);
            dpush(c, ssbase, &sp, spmask, psz, c->seg[CPU_CS].sel);
            dpush(c, ssbase, &sp, spmask, psz, c->rip);
            if (has_err)
                dpush(c, ssbase, &sp, spmask, psz, err);
            c->seg[CPU_SS] = nssd;
            c->seg[CPU_SS].sel = (uint16_t)((nss & ~3) | ncpl);
            reg_set(c, 4, spmask == 0xffff ? 2 : 4, sp);
        } else {
            spmask = amask(c->ssz);
            sp = c->r[4] & spmask;
            ssbase = c->seg[CPU_SS].base;
            dpush(c, ssbase, &sp, spmask, psz, f);
            dpush(c, ssbase, &sp, spmask, psz, c->seg[CPU_CS].sel);
            dpush(c, ssbase, &sp, spmask, psz, c->rip);
            if (has_err)
                dpush(c, ssbase, &sp, spmask, psz, err);
            reg_set(c, 4, c->ssz, sp);
        }
        if (!g32)
            off &= 0xffff;
    }
    c->seg[CPU_CS] = ncs;
    c->seg[CPU_CS].sel = (uint16_t)((sel & ~3) | ncpl);
    f &= ~(F_TF | F_NT | F_RF | F_VM);
    if (!(type & 1))
        f &= ~F_IF;
    flags_set(c, f);
    c->rip = off;
    cpu_update_mode(c);
    c->in_delivery = 0;
}
