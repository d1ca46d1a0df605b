/* The CPU object and its run loop. */
#include <stdio.h>
#include <stdlib.h>

#include "x86.h"

static void cpu_reset(struct cpu *c)
{
    memset(c->r, 0, sizeof c->r);
    c->r[2] = 0x600;
    c->rip = 0xfff0;
    flags_set(c, 2);
    for (unsigned s = 0; s < CPU_NSEG; s++) {
        c->seg[s].sel = 0;
        c->seg[s].base = 0;
        c->seg[s].limit = 0xffff;
        c->seg[s].attr = 0x93;
    }
    c->seg[CPU_CS].sel = 0xf000;
    c->seg[CPU_CS].base = 0xffff0000;
    c->seg[CPU_CS].attr = 0x9b;
    c->seg[CPU_LDTR].attr = 0x82;
    c->seg[CPU_TR].attr = 0x8b;
    c->gdt_base = c->idt_base = 0;
    c->gdt_limit = c->idt_limit = 0xffff;
    c->idt_limit = 0x3ff;
    c->cr0 = 0x60000010;
    c->cr2 = c->cr3 = c->cr4 = c->cr8 = 0;
    c->efer = 0;
    c->pat = 0x0007040600070406ULL;
    c->apic_base = 0xfee00900;
    c->misc_enable = 1;          /* fast strings, as firmware leaves it */
    c->feature_control = c->tsc_aux = 0;
    c->pmc[0] = c->pmc[1] = c->perfevtsel[0] = c->perfevtsel[1] = 0;
    c->mxcsr = 0x1f80;
    c->fcw = 0x37f;             /* x87 as after FNINIT: stack empty */
    c->fsw = c->ftw = 0;
    c->halted = 0;
    cpu_update_mode(c);
}

struct cpu *cpu_new(uint8_t *ram, uint64_t ram_size, const struct cpu_io *io)
{
    struct cpu *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ram = ram;
    c->ram_size = ram_size;
    if (io)
        c->io = *io;
    c->tc = tcache_new(ram_size);
    if (!c->tc) {
        free(c);
        return NULL;
    }
    atomic_init(&c->kick, false);
    atomic_init(&c->intr, false);
    cpu_reset(c);
    tlb_flush(c);
    return c;
}

void cpu_free(struct cpu *c)
{
    if (!c)
        return;
    tcache_free(c->tc);
    free(c);
}

bool cpu_jit_usable(char *why, size_t n)
{
    return jit_usable(why, n);
}

bool cpu_set_jit(struct cpu *c, bool on)
{
    return tcache_set_jit(c, on);
}

void cpu_get_state(const struct cpu *cc, struct cpu_state *out)
{
    struct cpu *c = (struct cpu *)cc;
    memcpy(out->gpr, c->r, sizeof out->gpr);
    out->rip = c->rip;
    out->rflags = flags_get(c);
    memcpy(out->seg, c->seg, sizeof out->seg);
    out->gdt_base = c->gdt_base;
    out->gdt_limit = c->gdt_limit;
    out->idt_base = c->idt_base;
    out->idt_limit = c->idt_limit;
    out->cr0 = c->cr0;
    out->cr2 = c->cr2;
    out->cr3 = c->cr3;
    out->cr4 = c->cr4;
    out->efer = c->efer;
}

void cpu_set_state(struct cpu *c, const struct cpu_state *st)
{
    memcpy(c->r, st->gpr, sizeof c->r);
    c->rip = st->rip;
    flags_set(c, st->rflags);
    memcpy(c->seg, st->seg, sizeof c->seg);
    c->gdt_base = st->gdt_base;
    c->gdt_limit = st->gdt_limit;
    c->idt_base = st->idt_base;
    c->idt_limit = st->idt_limit;
    bool mode_change = c->cr0 != (st->cr0 | CR0_ET) || c->cr4 != st->cr4 ||
                       c->efer != st->efer;
    c->cr0 = st->cr0 | CR0_ET;
    c->cr2 = st->cr2;
    c->cr3 = st->cr3;
    c->cr4 = st->cr4;
    c->efer = st->efer;
    if ((c->efer & EFER_LME) && (c->cr0 & CR0_PG))
        c->efer |= EFER_LMA;
    c->halted = 0;
    tlb_flush(c);
    if (mode_change)
        tcache_flush(c->tc);
    cpu_update_mode(c);
    jc_bump(c);
}

void cpu_invalidate_ram(struct cpu *c, uint64_t gpa, uint64_t len)
{
    uint64_t end = gpa + len;
    uint8_t stop = c->stop_block;
    for (uint64_t a = gpa; a < end && a < c->ram_size; a = (a | 0xfff) + 1) {
        uint64_t n = ((a | 0xfff) + 1 < end ? (a | 0xfff) + 1 : end) - a;
        if (tcache_page_has_code(c->tc, a >> 12))
            tcache_write(c, a, (unsigned)n);
    }
    c->stop_block = stop;
}

void cpu_kick(struct cpu *c)
{
    atomic_store(&c->kick, true);
}

void cpu_set_intr(struct cpu *c, bool level)
{
    atomic_store(&c->intr, level);
}

bool cpu_interruptible(const struct cpu *c)
{
    return (c->rflags & F_IF) != 0;
}

const char *cpu_error(const struct cpu *c)
{
    return c->errmsg;
}

void cpu_get_stats(const struct cpu *c, struct cpu_stats *out)
{
    out->instructions = c->icount;
    out->tcache_hits = c->tc_hits;
    out->tcache_misses = c->tc_misses;
    out->jit_blocks = c->jit_blocks;
}

/* Accept a pending external interrupt. Returns true if one was delivered. */
static bool take_interrupt(struct cpu *c)
{
    int v;
    if (!atomic_load_explicit(&c->intr, memory_order_relaxed) || !(c->rflags & F_IF))
        return false;
    if (c->sti_shadow) {
        c->sti_shadow = 0;
        return false;
    }
    v = c->io.intr_ack ? c->io.intr_ack(c->io.opaque) : -1;
    if (v < 0)
        return false;
    c->insn_rip = c->rip;
    cpu_deliver(c, v, EV_EXT, 0, 0);
    return true;
}

enum cpu_exit cpu_run(struct cpu *c, uint64_t budget)
{
    enum cpu_exit r;
    c->exit = 0;
    c->io_stop = 0;
    c->budget_end = budget ? c->icount + c->exc_count + budget : UINT64_MAX;
    if (setjmp(c->jb)) {
        /* an exception was delivered (or the CPU stopped); go on from the handler */
    }
    while (!c->exit) {
        if (c->stop_block == STOP_FLUSH) {
            /* a mode change asked for it: no block runs now */
            tcache_flush(c->tc);
            jc_bump(c);
            c->stop_block = 0;
        }
        if (c->io_stop) {
            c->exit = CPU_EXIT_STOP;
            break;
        }
        if (atomic_load_explicit(&c->kick, memory_order_relaxed)) {
            atomic_store(&c->kick, false);
            c->exit = CPU_EXIT_KICK;
            break;
        }
        if (c->icount + c->exc_count >= c->budget_end) {
            c->exit = CPU_EXIT_KICK;
            break;
        }
        if (c->sti_shadow && !atomic_load_explicit(&c->intr, memory_order_relaxed))
            c->sti_shadow = 0;
        take_interrupt(c);
        if (c->halted) {
            c->exit = CPU_EXIT_HLT;
            break;
        }
        c->stop_block = false;
        c->icount_end = c->budget_end - c->exc_count;   /* exceptions come back here */
        /* chain blocks while nothing asks for the outer loop's attention */
        tcache_run(c);
    }
    r = (enum cpu_exit)c->exit;
    c->exit = 0;
    return r;
}
