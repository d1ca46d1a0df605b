/* The whole state of a CPU, for snapshots (cpu_get_snapshot / cpu_set_snapshot). Only what
 * the architecture defines is saved; the software caches (TLB, translation cache, compiled
 * blocks, jump cache) are rebuilt from guest RAM after a restore. */
#include "x86.h"

void cpu_get_snapshot(const struct cpu *cc, struct cpu_snapshot *out)
{
    struct cpu *c = (struct cpu *)cc;
    memset(out, 0, sizeof *out);
    cpu_get_state(c, &out->arch);
    out->cr8 = c->cr8;
    memcpy(out->dr, c->dr, sizeof out->dr);
    out->star = c->star;
    out->lstar = c->lstar;
    out->cstar = c->cstar;
    out->sfmask = c->sfmask;
    out->kgsbase = c->kgsbase;
    out->sysenter_cs = c->sysenter_cs;
    out->sysenter_esp = c->sysenter_esp;
    out->sysenter_eip = c->sysenter_eip;
    out->pat = c->pat;
    out->tsc_offset = c->tsc_offset;
    out->apic_base = c->apic_base;
    out->misc_enable = c->misc_enable;
    out->feature_control = c->feature_control;
    out->tsc_aux = c->tsc_aux;
    memcpy(out->pmc, c->pmc, sizeof out->pmc);
    memcpy(out->perfevtsel, c->perfevtsel, sizeof out->perfevtsel);
    for (unsigned k = 0; k < 16; k++)
        memcpy(out->xmm[k], c->xmm[k].b, 16);
    out->mxcsr = c->mxcsr;
    out->fcw = c->fcw;
    out->fsw = c->fsw;
    out->ftw = c->ftw;
    memcpy(out->fpr, c->fpr, sizeof out->fpr);
    out->sti_shadow = c->sti_shadow;
    out->halted = c->halted;
}

void cpu_set_snapshot(struct cpu *c, const struct cpu_snapshot *s)
{
    cpu_set_state(c, &s->arch);
    c->cr8 = s->cr8;
    memcpy(c->dr, s->dr, sizeof c->dr);
    c->star = s->star;
    c->lstar = s->lstar;
    c->cstar = s->cstar;
    c->sfmask = s->sfmask;
    c->kgsbase = s->kgsbase;
    c->sysenter_cs = s->sysenter_cs;
    c->sysenter_esp = s->sysenter_esp;
    c->sysenter_eip = s->sysenter_eip;
    c->pat = s->pat;
    c->tsc_offset = s->tsc_offset;
    c->apic_base = s->apic_base;
    c->misc_enable = s->misc_enable;
    c->feature_control = s->feature_control;
    c->tsc_aux = s->tsc_aux;
    memcpy(c->pmc, s->pmc, sizeof c->pmc);
    memcpy(c->perfevtsel, s->perfevtsel, sizeof c->perfevtsel);
    for (unsigned k = 0; k < 16; k++)
        memcpy(c->xmm[k].b, s->xmm[k], 16);
    c->mxcsr = s->mxcsr;
    c->fcw = s->fcw;
    c->fsw = s->fsw;
    c->ftw = s->ftw;
    memcpy(c->fpr, s->fpr, sizeof c->fpr);
    c->sti_shadow = s->sti_shadow;
    c->halted = s->halted;
    c->in_delivery = c->delivering_df = 0;
    c->stop_block = 0;
    c->io_stop = 0;
    c->jit_link = NULL;
    /* Nothing translated before survives: RAM was replaced underneath. */
    tlb_flush(c);
    tcache_flush(c->tc);
    cpu_update_mode(c);
    jc_bump(c);
}

void cpu_cpuid(const struct cpu *c, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
    cpu_cpuid_leaf(c, leaf, subleaf, out);
}
