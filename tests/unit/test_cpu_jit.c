/* The block compiler (lib/cpu/jit.c) against the interpreter.
 *
 * Every program runs on three CPUs made with different VMCORE_EMU_JIT settings: "0"
 * (interpreter only), unset (a block is compiled on its 8th run) and "eager" (compiled on
 * its first run). Their end states must be identical: registers, arithmetic flags, RIP,
 * memory, instruction counts, MMIO traffic and exceptions.
 *   - jit_vs_interp_random_32/_64: seeded (VMCORE_TEST_SEED) random loops over the forms
 *     the JIT compiles inline (and some it does not), with memory operands into a data
 *     area (including page-crossing accesses) and forward conditional branches;
 *   - budget_exact: cpu_run(budget) on an endless chained loop;
 *   - kick_stops_chained_loop: cpu_kick() from another thread ends cpu_run(0);
 *   - smc_hot_loop: a compiled loop rewriting an immediate of its own block;
 *   - mmio_from_compiled_code: loads and stores outside RAM reach the mmio callback;
 *   - user_mode_perm: #PF from compiled stores/loads at CPL3 (U/S, R/W) and CPL0 (WP);
 *   - rotates_inline, bt_inline: ROL/ROR (every width, form and edge count) and BT..BTC
 *     of registers after and before each kind of flag writer and reader the JIT tells
 *     apart.
 * Guest code is assembled by the small encoder below. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cpu/cpu.h"
#include "cpuguest.h"

#define RAM (4u << 20)
#define CODE 0x100000u
#define DATA 0x200000u          /* random programs' data area: 3 pages */
#define DATA_LEN 0x3000u
#define STACK 0x90000u
#define ITERS 20

#define FL_ARITH ((uint64_t)0x8d5)

enum { M_INTERP, M_DEFAULT, M_EAGER, NMODES };
static const char *const mode_env[NMODES] = { "0", NULL, "eager" };
static const char *const mode_name[NMODES] = { "interpreter", "default", "eager" };

static char *saved_env;         /* VMCORE_EMU_JIT as the test was started */

static void restore_env(void)
{
    if (saved_env)
        setenv("VMCORE_EMU_JIT", saved_env, 1);
    else
        unsetenv("VMCORE_EMU_JIT");
}

/* ---- MMIO log ---- */

struct mmio_ev { uint64_t gpa, val; uint8_t write, size; };
struct mlog { unsigned n, reads; struct mmio_ev ev[1024]; };

static int mmio_cb(void *opaque, uint64_t gpa, bool is_write, unsigned size, void *data)
{
    struct mlog *l = opaque;
    uint64_t v = 0;
    if (is_write) {
        memcpy(&v, data, size);
    } else {
        v = gpa * 0x9e3779b1ULL + (uint64_t)l->reads++ * 0x10101ULL;
        if (size < 8)
            v &= (1ULL << (size * 8)) - 1;
        memcpy(data, &v, size);
    }
    if (l->n < sizeof l->ev / sizeof l->ev[0])
        l->ev[l->n] = (struct mmio_ev){ gpa, v, is_write, (uint8_t)size };
    l->n++;
    return 0;
}

/* ---- the three CPUs ---- */

struct rig {
    uint8_t *ram[NMODES];
    struct cpu *cpu[NMODES];
    struct mlog log[NMODES];
};

static struct rig *rig_new(void)
{
    struct rig *r = calloc(1, sizeof *r);
    assert_non_null(r);
    for (int m = 0; m < NMODES; m++) {
        r->ram[m] = aligned_alloc(4096, RAM);
        assert_non_null(r->ram[m]);
        memset(r->ram[m], 0, RAM);
        struct cpu_io io = { .mmio = mmio_cb, .opaque = &r->log[m] };
        if (mode_env[m])
            setenv("VMCORE_EMU_JIT", mode_env[m], 1);
        else
            unsetenv("VMCORE_EMU_JIT");
        r->cpu[m] = cpu_new(r->ram[m], RAM, &io);
        assert_non_null(r->cpu[m]);
    }
    restore_env();
    return r;
}

static void rig_free(struct rig *r)
{
    for (int m = 0; m < NMODES; m++) {
        cpu_free(r->cpu[m]);
        free(r->ram[m]);
    }
    free(r);
}

/* Copy [gpa, gpa+len) of @src into every CPU's RAM (behind the CPU's back). */
static void rig_load(struct rig *r, uint64_t gpa, const void *src, size_t len)
{
    for (int m = 0; m < NMODES; m++) {
        memcpy(r->ram[m] + gpa, src, len);
        cpu_invalidate_ram(r->cpu[m], gpa, len);
    }
}

static void state32(struct cpu_state *st, uint64_t rip)
{
    memset(st, 0, sizeof *st);
    st->seg[CPU_CS] = (struct cpu_seg){ 0x8, 0, 0xffffffff, 0xc09b };
    for (int s = 0; s < 6; s++)
        if (s != CPU_CS)
            st->seg[s] = (struct cpu_seg){ 0x10, 0, 0xffffffff, 0xc093 };
    st->seg[CPU_TR] = (struct cpu_seg){ 0, 0, 0xffff, 0x8b };
    st->seg[CPU_LDTR] = (struct cpu_seg){ 0, 0, 0, 0x10000 };
    st->cr0 = 0x11;             /* PE, ET: no paging; no IDT, so a fault is a shutdown */
    st->rip = rip;
    st->rflags = 2;
    st->gpr[4] = STACK;
}

/* 64-bit: linear 0..4 MiB -> physical (2 MiB pages), the harness's halting IDT. */
static void setup64(struct rig *r)
{
    for (int m = 0; m < NMODES; m++) {
        cg_map_linear_2m(r->ram[m], 0);
        cg_write_gdt_idt(r->ram[m], 0);
        cpu_invalidate_ram(r->cpu[m], 0, 0x10000);
    }
}

/* The random programs' data pages, linear DATA + k * 4 KiB, map to physical pages in a
 * scrambled order so that an access crossing a page boundary must really be split (RAM is
 * one host mapping: contiguous linear == contiguous host would hide it). Page table at
 * 0x7000 for linear 2..4 MiB (64-bit) or 0..4 MiB (32-bit paging, PD at 0x1000); the
 * rest is identity-mapped. */
#define SCRAMBLE_PT 0x7000u
static const unsigned scramble[3] = { 2, 0, 1 };

static void map_scrambled(struct rig *r, bool m64)
{
    for (int m = 0; m < NMODES; m++) {
        uint8_t *ram = r->ram[m];
        if (m64) {
            uint64_t *pd = (uint64_t *)(ram + 0x3000), *pt = (uint64_t *)(ram + SCRAMBLE_PT);
            pd[1] = SCRAMBLE_PT | 3;
            for (unsigned k = 0; k < 512; k++)
                pt[k] = (0x200000 + ((uint64_t)(k < 3 ? scramble[k] : k) << 12)) | 3;
        } else {
            uint32_t *pd = (uint32_t *)(ram + 0x1000), *pt = (uint32_t *)(ram + SCRAMBLE_PT);
            memset(pd, 0, 0x1000);
            pd[0] = SCRAMBLE_PT | 3;
            for (unsigned k = 0; k < 1024; k++) {
                unsigned p = k >= (DATA >> 12) && k < (DATA >> 12) + 3
                             ? (DATA >> 12) + scramble[k - (DATA >> 12)] : k;
                pt[k] = (p << 12) | 3;
            }
        }
        cpu_invalidate_ram(r->cpu[m], 0, 0x10000);
    }
}

static void state64(struct cpu_state *st, uint64_t rip)
{
    cg_long_mode_state(st, 0x80000011);
    st->gdt_base = CG_GDT;
    st->gdt_limit = 23;
    st->idt_base = CG_IDT;
    st->idt_limit = 32 * 16 - 1;
    st->rip = rip;
    st->rflags = 2;
    st->gpr[4] = STACK;
}

/* ---- a small x86 assembler ---- */

struct as {
    uint8_t b[8192];
    unsigned n;
    uint64_t org;               /* guest address of b[0] */
    bool m64;
};

static void ab(struct as *a, unsigned v)
{
    assert_true(a->n < sizeof a->b);
    a->b[a->n++] = (uint8_t)v;
}
static void a4(struct as *a, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        ab(a, (v >> (8 * k)) & 0xff);
}
static uint64_t here(const struct as *a) { return a->org + a->n; }

/* An r/m operand: a register (reg >= 0), or memory [base + index << scale + disp];
 * base/index -1 = none; abs: [disp32] (64-bit: through SIB, not RIP-relative);
 * riprel: 64-bit [rip + disp32] with @target the absolute address. */
struct rm {
    int reg, base, index;
    unsigned scale;
    int32_t disp;
    bool riprel;
    uint64_t target;
};
static struct rm RR(int r) { return (struct rm){ .reg = r, .base = -1, .index = -1 }; }
static struct rm MB(int base, int index, unsigned scale, int32_t disp)
{
    return (struct rm){ .reg = -1, .base = base, .index = index, .scale = scale, .disp = disp };
}

/* [66] [REX] opcode bytes, ModRM, [SIB], [disp], imm (@immsz bytes). @rex40: emit a REX
 * even without bits (8-bit SPL..DIL / R8B..). */
static void insn(struct as *a, unsigned osz, const uint8_t *opc, unsigned nopc, unsigned reg,
                 struct rm o, bool rex40, unsigned immsz, uint64_t imm)
{
    unsigned rex = (osz == 8 ? 8 : 0) | ((reg & 8) ? 4 : 0);
    if (o.reg >= 0)
        rex |= (o.reg & 8) ? 1 : 0;
    else
        rex |= ((o.base >= 0 && (o.base & 8)) ? 1 : 0) | ((o.index >= 0 && (o.index & 8)) ? 2 : 0);
    if (osz == 2)
        ab(a, 0x66);
    if (rex || rex40) {
        assert_true(a->m64);
        ab(a, 0x40 | rex);
    }
    for (unsigned k = 0; k < nopc; k++)
        ab(a, opc[k]);
    if (o.reg >= 0) {
        ab(a, 0xc0 | (reg & 7) << 3 | (o.reg & 7));
    } else if (o.riprel) {
        ab(a, (reg & 7) << 3 | 5);
        unsigned at = a->n;
        a4(a, 0);
        /* rip-relative: from the end of the instruction (after the immediate) */
        int64_t d = (int64_t)o.target - (int64_t)(here(a) + immsz);
        memcpy(a->b + at, &(int32_t){ (int32_t)d }, 4);
    } else if (o.base < 0) {
        if (o.index < 0 && !a->m64) {
            ab(a, (reg & 7) << 3 | 5);          /* [disp32] */
        } else {
            ab(a, (reg & 7) << 3 | 4);
            ab(a, o.scale << 6 | (o.index < 0 ? 4 : (o.index & 7)) << 3 | 5);
        }
        a4(a, (uint32_t)o.disp);
    } else {
        unsigned mod = (o.disp == 0 && (o.base & 7) != 5) ? 0 : (o.disp >= -128 && o.disp <= 127) ? 1 : 2;
        if (o.index >= 0 || (o.base & 7) == 4) {
            ab(a, mod << 6 | (reg & 7) << 3 | 4);
            ab(a, o.scale << 6 | (o.index >= 0 ? (o.index & 7) : 4) << 3 | (o.base & 7));
        } else {
            ab(a, mod << 6 | (reg & 7) << 3 | (o.base & 7));
        }
        if (mod == 1)
            ab(a, (uint8_t)o.disp);
        else if (mod == 2)
            a4(a, (uint32_t)o.disp);
    }
    for (unsigned k = 0; k < immsz; k++)
        ab(a, (imm >> (8 * k)) & 0xff);
}
static void i1(struct as *a, unsigned osz, unsigned op, unsigned reg, struct rm o)
{
    uint8_t b = (uint8_t)op;
    insn(a, osz, &b, 1, reg, o, false, 0, 0);
}
static void i2(struct as *a, unsigned osz, unsigned op2, unsigned reg, struct rm o)
{
    uint8_t b[2] = { 0x0f, (uint8_t)op2 };
    insn(a, osz, b, 2, reg, o, false, 0, 0);
}
/* mov r32, imm32 (zero-extends in 64-bit mode) */
static void mov_ri32(struct as *a, int r, uint32_t v)
{
    if (r & 8)
        ab(a, 0x41);
    ab(a, 0xb8 + (r & 7));
    a4(a, v);
}
/* dec r; jnz @target (rel32) */
static void dec_jnz(struct as *a, unsigned osz, int r, uint64_t target)
{
    i1(a, osz, 0xff, 1, RR(r));
    ab(a, 0x0f);
    ab(a, 0x85);
    a4(a, (uint32_t)(target - (here(a) + 4)));
}
/* ---- random programs ---- */

static const int avail32[] = { 0, 1, 2, 3, 6, 7 };
static const int avail64[] = { 0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 };

static unsigned rn(unsigned n) { return (unsigned)(cg_rnd() % n); }

static int rreg(const struct as *a)
{
    return a->m64 ? avail64[rn(sizeof avail64 / sizeof avail64[0])]
                  : avail32[rn(sizeof avail32 / sizeof avail32[0])];
}
static int counter_reg(const struct as *a) { return a->m64 ? 15 : 5; }
static unsigned rosz(const struct as *a) { return a->m64 && rn(2) ? 8 : 4; }

/* Two byte registers and whether they need a REX (64-bit: SIL/DIL/BPL/R8B..; without
 * REX, codes 4-7 are AH..BH). */
static bool byte_regs(const struct as *a, int *x, int *y)
{
    if (!a->m64 || rn(2)) {
        *x = (int)rn(8);
        *y = (int)rn(8);
        return false;
    }
    *x = rreg(a);
    *y = rreg(a);
    return true;
}

/* A memory operand of @sz bytes inside the data area; emits the moves that set up its
 * base and index registers. A quarter of them sit on a page boundary. */
static struct rm mem_operand(struct as *a, unsigned sz)
{
    uint64_t target;
    if (rn(4) == 0)
        target = DATA + 0x1000 * (1 + rn(2)) - 8 + rn(12);
    else
        target = DATA + rn(DATA_LEN - 8);
    (void)sz;
    int32_t disp = rn(2) ? (int32_t)rn(256) - 128 : (int32_t)rn(0x2000) - 0x1000;
    unsigned form = rn(a->m64 ? 6 : 5);
    int base = rreg(a), index;
    do
        index = rreg(a);
    while (index == base);
    unsigned scale = rn(4);
    uint32_t iv = rn(64);
    switch (form) {
    case 0: case 1:     /* [base + disp] */
        mov_ri32(a, base, (uint32_t)(target - (uint64_t)(int64_t)disp));
        return MB(base, -1, 0, disp);
    case 2: case 3:     /* [base + index << scale + disp] */
        mov_ri32(a, index, iv);
        mov_ri32(a, base, (uint32_t)(target - ((uint64_t)iv << scale) - (uint64_t)(int64_t)disp));
        return MB(base, index, scale, disp);
    case 4:             /* [index << scale + disp32] or [disp32] */
        if (rn(2)) {
            int32_t d = (int32_t)(target - ((uint64_t)iv << scale));
            mov_ri32(a, index, iv);
            return MB(-1, index, scale, d);
        }
        return MB(-1, -1, 0, (int32_t)target);
    default: {          /* [rip + disp32] */
        struct rm o = MB(-1, -1, 0, 0);
        o.riprel = true;
        o.target = target;
        return o;
    }
    }
}

/* One random instruction (with its address setup when it has a memory operand). */
static void rand_insn(struct as *a)
{
    unsigned osz = rosz(a);
    int d = rreg(a), s = rreg(a), x, y;
    bool rex;
    switch (rn(32)) {
    case 0: i1(a, osz, 0x89, (unsigned)s, RR(d)); break;                 /* mov r, r */
    case 1: i1(a, osz, 0x8b, (unsigned)d, RR(s)); break;
    case 2:                                                              /* mov r, imm */
        if (osz == 8 && rn(2)) {        /* REX.W B8+r imm64 */
            ab(a, 0x48 | ((d & 8) ? 1 : 0));
            ab(a, 0xb8 + (d & 7));
            uint64_t v = cg_rnd();
            for (int k = 0; k < 8; k++)
                ab(a, (v >> (8 * k)) & 0xff);
        } else if (osz == 8) {
            insn(a, 8, (const uint8_t[]){ 0xc7 }, 1, 0, RR(d), false, 4, (uint32_t)cg_rnd());
        } else {
            mov_ri32(a, d, (uint32_t)cg_rnd());
        }
        break;
    case 3:                                                              /* movzx r32, r8 */
        rex = byte_regs(a, &x, &y);
        insn(a, rn(4) ? 4 : (a->m64 ? 8 : 4), (const uint8_t[]){ 0x0f, 0xb6 }, 2,
             (unsigned)d, RR(x), rex, 0, 0);
        break;
    case 4: case 5:                                                      /* ALU r/m, r */
        i1(a, osz, rn(8) * 8 + 1, (unsigned)s, RR(d));
        break;
    case 6:                                                              /* ALU r, r/m */
        i1(a, osz, rn(8) * 8 + 3, (unsigned)s, RR(d));
        break;
    case 7:                                                 /* 8-bit ALU rr, MOV rr */
        rex = byte_regs(a, &x, &y);
        insn(a, 1, (const uint8_t[]){ (uint8_t)((rn(4) ? rn(8) * 8 : 0x88) + (rn(2) ? 0 : 2)) },
             1, (unsigned)x, RR(y), rex, 0, 0);
        break;
    case 8: case 9: {                                                    /* ALU r, imm */
        unsigned op = rn(8);
        if (rn(2))
            insn(a, osz, (const uint8_t[]){ 0x83 }, 1, op, RR(d), false, 1, cg_rnd());
        else
            insn(a, osz, (const uint8_t[]){ 0x81 }, 1, op, RR(d), false, 4, rn(2) ? cg_rnd() : rn(300));
        break;
    }
    case 10: {                                                           /* ALU r, [m] */
        struct rm m = mem_operand(a, osz);
        i1(a, osz, rn(8) * 8 + 3, (unsigned)rreg(a), m);
        break;
    }
    case 11: {                                          /* memory destinations */
        unsigned k = rn(5), op = rn(8);
        if (k == 0) {                                   /* ALU [m], r */
            struct rm m = mem_operand(a, osz);
            i1(a, osz, op * 8 + 1, (unsigned)rreg(a), m);
        } else if (k == 1) {                            /* ALU [m], imm8 / imm32 */
            struct rm m = mem_operand(a, osz);
            if (rn(2))
                insn(a, osz, (const uint8_t[]){ 0x83 }, 1, op, m, false, 1, cg_rnd());
            else
                insn(a, osz, (const uint8_t[]){ 0x81 }, 1, op, m, false, 4, cg_rnd());
        } else if (k == 2) {                            /* 8-bit ALU [m], r8 / imm8 */
            int r8 = a->m64 ? rreg(a) : (int)rn(8);
            struct rm m = mem_operand(a, 1);
            if (rn(2))      /* [m], r8 or r8, [m] */
                insn(a, 1, (const uint8_t[]){ (uint8_t)(op * 8 + (rn(2) ? 2 : 0)) }, 1,
                     (unsigned)r8, m, a->m64, 0, 0);
            else
                insn(a, 1, (const uint8_t[]){ 0x80 }, 1, op, m, false, 1, cg_rnd());
        } else if (k == 3) {                            /* 16-bit ALU [m], imm16 */
            struct rm m = mem_operand(a, 2);
            insn(a, 2, (const uint8_t[]){ 0x81 }, 1, op, m, false, 2, cg_rnd());
        } else {                                        /* mov [m], imm (1, 2, 4, 8 bytes) */
            unsigned sz = rn(2) ? osz : rn(2) ? 1 : 2;
            struct rm m = mem_operand(a, sz);
            insn(a, sz, (const uint8_t[]){ sz == 1 ? 0xc6 : 0xc7 }, 1, 0, m, false,
                 sz == 1 ? 1 : sz == 2 ? 2 : 4, cg_rnd());
        }
        break;
    }
    case 12: i1(a, osz, 0x85, (unsigned)s, RR(d)); break;                /* test */
    case 13:                                                             /* inc/dec */
        if (!a->m64 && rn(2))
            ab(a, (rn(2) ? 0x40 : 0x48) + (unsigned)d);
        else
            i1(a, osz, 0xff, rn(2), RR(d));
        break;
    case 14: {                                                           /* lea, any regs */
        int b = (int)rn(a->m64 ? 16 : 8), i;
        do
            i = (int)rn(a->m64 ? 16 : 8);
        while (i == 4);
        int32_t disp = rn(2) ? (int32_t)rn(256) - 128 : (int32_t)cg_rnd();
        struct rm m = rn(4) ? MB(b, rn(2) ? i : -1, rn(4), disp) : MB(-1, i, rn(4), disp);
        if (m.index < 0)
            m.scale = 0;
        i1(a, osz, 0x8d, (unsigned)d, m);
        break;
    }
    case 15: case 16: {                                                  /* shifts, rotates */
        static const unsigned ops[] = { 4, 5, 7, 0, 1 };
        unsigned op = ops[rn(5)];
        if (op < 2 && rn(4) == 0) {     /* 8-bit rotate, by imm or CL */
            rex = byte_regs(a, &x, &y);
            if (rn(2))
                insn(a, 1, (const uint8_t[]){ 0xd2 }, 1, op, RR(x), rex, 0, 0);
            else
                insn(a, 1, (const uint8_t[]){ 0xc0 }, 1, op, RR(x), rex, 1, rn(20));
        } else if (op < 2 && rn(3) == 0) {
            i1(a, rn(4) ? osz : 2, 0xd3, op, RR(d));
        } else if (rn(4) == 0) {
            i1(a, osz, 0xd1, op, RR(d));
        } else {
            insn(a, osz, (const uint8_t[]){ 0xc1 }, 1, op, RR(d), false, 1,
                 rn(4) ? rn(osz * 8) : rn(256));
        }
        break;
    }
    case 17:                                                             /* imul r, r/m, imm */
        if (rn(2))
            insn(a, 4, (const uint8_t[]){ 0x69 }, 1, (unsigned)d, RR(s), false, 4, cg_rnd());
        else
            insn(a, osz, (const uint8_t[]){ 0x6b }, 1, (unsigned)d, RR(s), false, 1, cg_rnd());
        break;
    case 18: case 19: {                                                  /* loads */
        unsigned k = rn(4);
        if (k == 0) {           /* mov r8, [m] */
            int r8 = a->m64 ? rreg(a) : (int)rn(8);
            struct rm m = mem_operand(a, 1);
            insn(a, 1, (const uint8_t[]){ 0x8a }, 1, (unsigned)r8, m, a->m64, 0, 0);
        } else if (k == 1) {    /* movzx r, byte/word [m] */
            unsigned w = rn(2);
            struct rm m = mem_operand(a, w ? 2 : 1);
            i2(a, osz, w ? 0xb7 : 0xb6, (unsigned)d, m);
        } else {
            struct rm m = mem_operand(a, osz);
            i1(a, osz, 0x8b, (unsigned)d, m);
        }
        break;
    }
    case 20: case 21: {                                                  /* stores */
        unsigned k = rn(5);
        if (k == 0) {
            int r8 = a->m64 ? rreg(a) : (int)rn(8);
            struct rm m = mem_operand(a, 1);
            insn(a, 1, (const uint8_t[]){ 0x88 }, 1, (unsigned)r8, m, a->m64, 0, 0);
        } else if (k == 1) {    /* 16-bit store: not an inline form */
            struct rm m = mem_operand(a, 2);
            i1(a, 2, 0x89, (unsigned)rreg(a), m);
        } else {
            struct rm m = mem_operand(a, osz);
            i1(a, osz, 0x89, (unsigned)rreg(a), m);
        }
        break;
    }
    case 22: i1(a, osz, 0xf7, rn(2) ? 3 : 2, RR(d)); break;             /* neg / not */
    case 23: i2(a, osz, rn(2) ? 0xa3 : 0xab, (unsigned)s, RR(d)); break; /* bt / bts */
    case 24:                                                             /* setcc */
        rex = byte_regs(a, &x, &y);
        insn(a, 1, (const uint8_t[]){ 0x0f, (uint8_t)(0x90 + rn(16)) }, 2, 0, RR(x), rex, 0, 0);
        break;
    case 25: i2(a, osz, 0x40 + rn(16), (unsigned)d, RR(s)); break;       /* cmovcc */
    case 26: i1(a, 2, rn(8) * 8 + 1, (unsigned)s, RR(d)); break;         /* 16-bit ALU */
    case 27: i2(a, osz, 0xaf, (unsigned)d, RR(s)); break;                /* imul r, r/m */
    case 28: i2(a, 4, rn(2) ? 0xbe : 0xbf, (unsigned)d, RR(s)); break;   /* movsx */
    case 30: {                  /* test [m]/r, imm; test [m], r; movsx(d) [m]; imul r, [m] */
        unsigned k = rn(6), tsz = rn(3) ? osz : 1;
        if (k == 0) {
            insn(a, tsz, (const uint8_t[]){ tsz == 1 ? 0xf6 : 0xf7 }, 1, 0,
                 rn(2) ? RR(a->m64 ? d : (int)rn(4)) : mem_operand(a, tsz), false,
                 tsz == 1 ? 1 : 4, cg_rnd());
        } else if (k == 1) {
            int r8 = a->m64 ? rreg(a) : (int)rn(8);
            insn(a, tsz, (const uint8_t[]){ tsz == 1 ? 0x84 : 0x85 }, 1,
                 (unsigned)(tsz == 1 ? r8 : s), mem_operand(a, tsz), tsz == 1 && a->m64, 0, 0);
        } else if (k == 2) {                            /* test al/eax/rax, imm */
            if (tsz == 8)
                ab(a, 0x48);
            ab(a, tsz == 1 ? 0xa8 : 0xa9);
            for (unsigned b = 0; b < (tsz == 1 ? 1u : 4u); b++)
                ab(a, (uint8_t)cg_rnd());
        } else if (k == 3) {                            /* movsx r, byte/word [m] */
            unsigned w = rn(2);
            i2(a, osz, w ? 0xbf : 0xbe, (unsigned)d, mem_operand(a, w ? 2 : 1));
        } else if (k == 4 && a->m64) {                  /* movsxd r64, r/m32 */
            i1(a, 8, 0x63, (unsigned)d, rn(2) ? RR(s) : mem_operand(a, 4));
        } else {                                        /* imul r, [m] */
            i2(a, osz, 0xaf, (unsigned)d, mem_operand(a, osz));
        }
        break;
    }
    case 29:                                                             /* mul r/m */
        if (rn(2))
            i1(a, osz, 0xf7, 4, RR(s));
        else
            i1(a, osz, 0xf7, 4, mem_operand(a, osz));
        break;
    default: i1(a, osz, 0x87, (unsigned)s, RR(d)); break;                /* xchg */
    }
}

/* mov counter, ITERS / loop: body / dec counter / jnz loop / hlt */
static void gen_program(struct as *a)
{
    unsigned n = 4 + rn(28);
    mov_ri32(a, counter_reg(a), ITERS);
    uint64_t loop = here(a);
    for (unsigned k = 0; k < n; k++) {
        if (rn(5) == 0) {
            /* a forward branch over 1-3 instructions: a side exit of the block */
            bool near = rn(2), jmp = rn(8) == 0;
            unsigned at;
            if (jmp) {
                ab(a, 0xeb);
            } else if (near) {
                ab(a, 0x70 + rn(16));
            } else {
                ab(a, 0x0f);
                ab(a, 0x80 + rn(16));
            }
            at = a->n;
            if (near || jmp)
                ab(a, 0);
            else
                a4(a, 0);
            for (unsigned j = 1 + rn(3); j; j--)
                rand_insn(a);
            if (near || jmp) {
                assert_true(a->n - (at + 1) < 128);
                a->b[at] = (uint8_t)(a->n - (at + 1));
            } else {
                uint32_t rel = a->n - (at + 4);
                memcpy(a->b + at, &rel, 4);
            }
        } else if (rn(10) == 0) {
            /* the stack: push r; 0-2 instructions; pop r', or call +0; pop r' (the
             * position-independent-code idiom) */
            int p = rreg(a), q = rreg(a);
            if (rn(2)) {
                if (p & 8)
                    ab(a, 0x41);
                ab(a, 0x50 + (p & 7));
                for (unsigned j = rn(3); j; j--)
                    rand_insn(a);
            } else {
                ab(a, 0xe8);
                a4(a, 0);
            }
            if (q & 8)
                ab(a, 0x41);
            ab(a, 0x58 + (q & 7));
        } else {
            rand_insn(a);
        }
    }
    dec_jnz(a, 4, counter_reg(a), loop);
    ab(a, 0xf4);
}

struct result {
    enum cpu_exit exit;
    struct cpu_state st;
    struct cpu_stats stats;
};

static void dump_bytes(const char *what, const uint8_t *b, unsigned n)
{
    fprintf(stderr, "%s (%u bytes):", what, n);
    for (unsigned k = 0; k < n; k++)
        fprintf(stderr, "%s%02x", k % 32 ? " " : "\n  ", b[k]);
    fprintf(stderr, "\n");
}

static void random_programs(bool m64, unsigned count)
{
    static uint8_t data[DATA_LEN];
    struct rig *r = rig_new();
    struct as *a = malloc(sizeof *a);
    unsigned failures = 0;
    assert_non_null(a);
    cg_seed(m64 ? 0x6a17640001ULL : 0x6a17320001ULL);
    if (m64)
        setup64(r);
    map_scrambled(r, m64);
    for (unsigned t = 0; t < count && failures < 3; t++) {
        struct cpu_state init;
        struct result res[NMODES];
        memset(a, 0, sizeof *a);
        a->org = CODE;
        a->m64 = m64;
        gen_program(a);
        for (unsigned k = 0; k < DATA_LEN; k++)
            data[k] = (uint8_t)cg_rnd();
        if (m64)
            state64(&init, CODE);
        else
            state32(&init, CODE);
        if (!m64 && t % 2) {    /* 32-bit: every other program with paging on */
            init.cr0 |= 0x80000000;
            init.cr3 = 0x1000;
        }
        for (int g = 0; g < 16; g++)
            if (g != 4)
                init.gpr[g] = cg_rnd();
        init.rflags = 2 | (cg_rnd() & FL_ARITH);
        rig_load(r, CODE, a->b, a->n);
        rig_load(r, DATA, data, DATA_LEN);
        for (int m = 0; m < NMODES; m++) {
            cpu_set_state(r->cpu[m], &init);
            res[m].exit = cpu_run(r->cpu[m], 1000000);
            cpu_get_state(r->cpu[m], &res[m].st);
        }
        for (int m = 1; m < NMODES; m++) {
            bool bad = res[m].exit != res[0].exit || res[m].st.rip != res[0].st.rip ||
                       ((res[m].st.rflags ^ res[0].st.rflags) & FL_ARITH) ||
                       memcmp(res[m].st.gpr, res[0].st.gpr, sizeof res[0].st.gpr) ||
                       memcmp(r->ram[m] + DATA, r->ram[0] + DATA, DATA_LEN);
            if (!bad)
                continue;
            failures++;
            fprintf(stderr, "MISMATCH %d-bit program #%u, %s vs interpreter "
                    "(rerun with the seed printed above)\n", m64 ? 64 : 32, t, mode_name[m]);
            dump_bytes("code at 0x100000", a->b, a->n);
            fprintf(stderr, "  exit %d vs %d, rip 0x%" PRIx64 " vs 0x%" PRIx64
                    ", flags 0x%" PRIx64 " vs 0x%" PRIx64 "\n", res[m].exit, res[0].exit,
                    res[m].st.rip, res[0].st.rip, res[m].st.rflags & FL_ARITH,
                    res[0].st.rflags & FL_ARITH);
            for (int g = 0; g < 16; g++)
                fprintf(stderr, "  r%-2d init 0x%016" PRIx64 " got 0x%016" PRIx64
                        " want 0x%016" PRIx64 "%s\n", g, init.gpr[g], res[m].st.gpr[g],
                        res[0].st.gpr[g], res[m].st.gpr[g] != res[0].st.gpr[g] ? "  <--" : "");
            fprintf(stderr, "  init flags 0x%" PRIx64 "\n", init.rflags);
            for (unsigned k = 0; k < DATA_LEN; k++)
                if (r->ram[m][DATA + k] != r->ram[0][DATA + k])
                    fprintf(stderr, "  data 0x%x: got %02x want %02x\n", DATA + k,
                            r->ram[m][DATA + k], r->ram[0][DATA + k]);
        }
        if (res[0].exit != CPU_EXIT_HLT) {
            fprintf(stderr, "program #%u did not halt: exit %d (%s)\n", t, res[0].exit,
                    cpu_error(r->cpu[0]));
            dump_bytes("code", a->b, a->n);
            failures++;
        }
    }
    free(a);
    rig_free(r);
    assert_int_equal(failures, 0);
}

static void test_jit_vs_interp_random_32(void **state)
{
    (void)state;
    random_programs(false, 800);
}

static void test_jit_vs_interp_random_64(void **state)
{
    (void)state;
    random_programs(true, 800);
}

/* ---- budget ---- */

/* cpu_run(budget) repeatedly on an endless loop: the same exits, instruction counts and
 * EAX in every mode. */
static void budget_case(const uint8_t *code, size_t n)
{
    static const uint64_t budgets[] = { 1, 2, 3, 5, 8, 13, 100, 1000, 12345, 1, 7, 50000 };
    struct rig *r = rig_new();
    setup64(r);
    rig_load(r, CODE, code, n);
    uint64_t want_icount[sizeof budgets / sizeof budgets[0]], want_eax[sizeof budgets / sizeof budgets[0]];
    for (int m = 0; m < NMODES; m++) {
        struct cpu_state st;
        state64(&st, CODE);
        cpu_set_state(r->cpu[m], &st);
        uint64_t total = 0;
        for (unsigned b = 0; b < sizeof budgets / sizeof budgets[0]; b++) {
            struct cpu_stats stats;
            enum cpu_exit e = cpu_run(r->cpu[m], budgets[b]);
            cpu_get_stats(r->cpu[m], &stats);
            cpu_get_state(r->cpu[m], &st);
            total += budgets[b];
            if (e != CPU_EXIT_KICK)
                fail_msg("%s: budget %" PRIu64 ": exit %d", mode_name[m], budgets[b], e);
            if (stats.instructions < total)
                fail_msg("%s: %" PRIu64 " instructions after budgets summing to %" PRIu64,
                         mode_name[m], stats.instructions, total);
            if (m == 0) {
                want_icount[b] = stats.instructions;
                want_eax[b] = st.gpr[0];
            } else if (stats.instructions != want_icount[b] || st.gpr[0] != want_eax[b]) {
                fail_msg("%s: after budget #%u (%" PRIu64 "): icount %" PRIu64 " eax %" PRIu64
                         ", interpreter icount %" PRIu64 " eax %" PRIu64, mode_name[m], b,
                         budgets[b], stats.instructions, st.gpr[0], want_icount[b], want_eax[b]);
            }
        }
    }
    rig_free(r);
}

static void test_budget_exact(void **state)
{
    /* l: inc eax / jmp l */
    static const uint8_t one[] = { 0xff, 0xc0, 0xeb, 0xfc };
    /* l: inc eax / add ebx, eax / jmp m / (pad) / m: inc ecx / jmp l  -- two blocks */
    static const uint8_t two[] = { 0xff, 0xc0, 0x01, 0xc3, 0xeb, 0x02, 0x90, 0x90,
                                   0xff, 0xc1, 0xeb, 0xf4 };
    (void)state;
    budget_case(one, sizeof one);
    budget_case(two, sizeof two);
}

/* ---- kick ---- */

struct kicker { struct cpu *cpu; };

static void *kick_thread(void *p)
{
    struct kicker *k = p;
    nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
    cpu_kick(k->cpu);
    return NULL;
}

static void on_alarm(int sig)
{
    static const char msg[] = "kick_stops_chained_loop: cpu_run did not return 10 s after "
                              "cpu_kick (BUG)\n";
    (void)sig;
    if (write(2, msg, sizeof msg - 1) < 0)
        _exit(1);
    _exit(1);
}

static void test_kick_stops_chained_loop(void **state)
{
    /* l: inc eax / jmp m / m: inc ecx / jmp l: two blocks chained into each other */
    static const uint8_t code[] = { 0xff, 0xc0, 0xeb, 0x00, 0xff, 0xc1, 0xeb, 0xf8 };
    (void)state;
    struct rig *r = rig_new();
    setup64(r);
    rig_load(r, CODE, code, sizeof code);
    for (int m = M_DEFAULT; m < NMODES; m++) {
        struct cpu_state st;
        state64(&st, CODE);
        cpu_set_state(r->cpu[m], &st);
        struct kicker k = { r->cpu[m] };
        pthread_t th;
        signal(SIGALRM, on_alarm);
        alarm(10);
        assert_int_equal(pthread_create(&th, NULL, kick_thread, &k), 0);
        enum cpu_exit e = cpu_run(r->cpu[m], 0);
        alarm(0);
        pthread_join(th, NULL);
        assert_int_equal(e, CPU_EXIT_KICK);
        cpu_get_state(r->cpu[m], &st);
        /* it really ran (and the loop stayed consistent) */
        assert_true(st.gpr[0] > 1000);
        assert_true(st.gpr[0] == st.gpr[1] || st.gpr[0] == st.gpr[1] + 1);
        /* the kick is consumed: a budgeted run goes on normally */
        assert_int_equal(cpu_run(r->cpu[m], 100), CPU_EXIT_KICK);
    }
    rig_free(r);
}

/* ---- self-modifying code ---- */

static void run_all(struct rig *r, const struct cpu_state *init, uint64_t budget,
                    struct result *res)
{
    for (int m = 0; m < NMODES; m++) {
        cpu_set_state(r->cpu[m], init);
        res[m].exit = cpu_run(r->cpu[m], budget);
        cpu_get_state(r->cpu[m], &res[m].st);
        cpu_get_stats(r->cpu[m], &res[m].stats);
    }
}

static void smc_case(bool m64, bool store_first, uint64_t want_eax)
{
    struct rig *r = rig_new();
    struct as a = { .org = CODE, .m64 = m64 };
    struct cpu_state init;
    struct result res[NMODES];
    uint64_t imm_at;
    /* xor eax,eax / xor ecx,ecx / l: [mov [imm], ecx] add eax, imm32 / inc ecx /
     * [mov [imm], ecx] / cmp ecx, 20 / jne l / hlt */
    i1(&a, 4, 0x31, 0, RR(0));
    i1(&a, 4, 0x31, 1, RR(1));
    uint64_t loop = here(&a);
    /* the store's length does not depend on its displacement: emit it with a guess,
     * then patch once the address of the immediate is known */
    unsigned st_at = 0, st_len = 0;
    struct rm dst = MB(-1, -1, 0, 0);
    if (m64) {
        dst.riprel = true;
    }
    if (store_first) {
        st_at = a.n;
        i1(&a, 4, 0x89, 1, dst);
        st_len = a.n - st_at;
    }
    insn(&a, 4, (const uint8_t[]){ 0x81 }, 1, 0, RR(0), false, 4, 1);   /* add eax, 1 */
    imm_at = here(&a) - 4;
    i1(&a, 4, 0xff, 0, RR(1));
    if (!store_first) {
        st_at = a.n;
        i1(&a, 4, 0x89, 1, dst);
        st_len = a.n - st_at;
    }
    insn(&a, 4, (const uint8_t[]){ 0x83 }, 1, 7, RR(1), false, 1, 20);
    ab(&a, 0x75);
    ab(&a, (uint8_t)(loop - (here(&a) + 1)));
    ab(&a, 0xf4);
    /* patch the store's displacement (last 4 bytes of it) */
    int32_t disp = m64 ? (int32_t)(imm_at - (CODE + st_at + st_len)) : (int32_t)imm_at;
    memcpy(a.b + st_at + st_len - 4, &disp, 4);

    if (m64) {
        setup64(r);
        state64(&init, CODE);
    } else {
        state32(&init, CODE);
    }
    rig_load(r, CODE, a.b, a.n);
    run_all(r, &init, 100000, res);
    for (int m = 0; m < NMODES; m++) {
        if (res[m].exit != CPU_EXIT_HLT || res[m].st.gpr[0] != want_eax ||
            res[m].st.gpr[1] != 20 || res[m].stats.instructions != res[0].stats.instructions) {
            dump_bytes("smc code", a.b, a.n);
            fail_msg("%s (%d-bit, store %s the add): exit %d eax %" PRIu64 " (want %" PRIu64
                     ") ecx %" PRIu64 " icount %" PRIu64 " (interpreter %" PRIu64 ")",
                     mode_name[m], m64 ? 64 : 32, store_first ? "before" : "after",
                     res[m].exit, res[m].st.gpr[0], want_eax, res[m].st.gpr[1],
                     res[m].stats.instructions, res[0].stats.instructions);
        }
        uint32_t imm;
        memcpy(&imm, r->ram[m] + imm_at, 4);
        assert_int_equal(imm, store_first ? 19 : 20);
    }
    rig_free(r);
}

/* The loop's first block rewrites the immediate of the next block (on another page), which
 * it chains into, every iteration:
 *   xor eax,eax / xor ecx,ecx / l: inc ecx / mov [b+1], ecx / jmp b
 *   b (page + 4 KiB): mov edx, imm32 / add eax, edx / cmp ecx, 20 / jne l / hlt
 * => eax = 1 + 2 + ... + 20 */
static void smc_other_block(bool m64)
{
    struct rig *r = rig_new();
    struct as a = { .org = CODE, .m64 = m64 };
    struct as b = { .org = CODE + 0x1000, .m64 = m64 };
    struct cpu_state init;
    struct result res[NMODES];
    i1(&a, 4, 0x31, 0, RR(0));
    i1(&a, 4, 0x31, 1, RR(1));
    uint64_t loop = here(&a);
    i1(&a, 4, 0xff, 0, RR(1));
    struct rm dst = MB(-1, -1, 0, (int32_t)(b.org + 1));
    if (m64) {
        dst.riprel = true;
        dst.target = b.org + 1;
    }
    i1(&a, 4, 0x89, 1, dst);
    ab(&a, 0xe9);
    a4(&a, (uint32_t)(b.org - (here(&a) + 4)));
    mov_ri32(&b, 2, 12345);
    i1(&b, 4, 0x01, 2, RR(0));
    insn(&b, 4, (const uint8_t[]){ 0x83 }, 1, 7, RR(1), false, 1, 20);
    ab(&b, 0x0f);
    ab(&b, 0x85);
    a4(&b, (uint32_t)(loop - (here(&b) + 4)));
    ab(&b, 0xf4);
    if (m64) {
        setup64(r);
        state64(&init, CODE);
    } else {
        state32(&init, CODE);
    }
    rig_load(r, a.org, a.b, a.n);
    rig_load(r, b.org, b.b, b.n);
    run_all(r, &init, 100000, res);
    for (int m = 0; m < NMODES; m++)
        if (res[m].exit != CPU_EXIT_HLT || res[m].st.gpr[0] != 210 || res[m].st.gpr[1] != 20 ||
            res[m].stats.instructions != res[0].stats.instructions)
            fail_msg("%s (%d-bit, store into the next block): exit %d eax %" PRIu64
                     " (want 210) ecx %" PRIu64 " icount %" PRIu64 " (interpreter %" PRIu64 ")",
                     mode_name[m], m64 ? 64 : 32, res[m].exit, res[m].st.gpr[0],
                     res[m].st.gpr[1], res[m].stats.instructions, res[0].stats.instructions);
    rig_free(r);
}

static void test_smc_hot_loop(void **state)
{
    (void)state;
    smc_other_block(true);
    smc_other_block(false);
    /* the store follows the add: iteration k (ecx = k after inc) adds the k-1 written by
     * the previous one (1 the first time): 1 + (1 + 2 + ... + 19) */
    smc_case(true, false, 1 + 190);
    smc_case(false, false, 1 + 190);
    /* the store precedes the add in the same block: each iteration adds the ecx it just
     * wrote, 0 + 1 + ... + 19 */
    smc_case(true, true, 190);
    smc_case(false, true, 190);
}

/* ---- MMIO ---- */

static void mmio_case(bool m64)
{
    struct rig *r = rig_new();
    struct as a = { .org = CODE, .m64 = m64 };
    struct cpu_state init;
    struct result res[NMODES];
    const uint64_t base = m64 ? 0x400000 : 0x10000000;  /* gpa outside the 4 MiB of RAM */
    const int cnt = counter_reg(&a);
    unsigned per_iter = 0;
    /* mov edi, base / xor ecx, ecx / mov cnt, 10 / l: */
    mov_ri32(&a, 7, (uint32_t)base);
    i1(&a, 4, 0x31, 1, RR(1));
    i1(&a, 4, 0x31, 3, RR(3));
    mov_ri32(&a, cnt, 10);
    uint64_t loop = here(&a);
    i1(&a, 4, 0x89, 1, MB(7, 1, 2, 0));                         /* mov [rdi+rcx*4], ecx */
    i1(&a, 4, 0x8b, 0, MB(7, -1, 0, 0x100));                    /* mov eax, [rdi+0x100] */
    i1(&a, 1, 0x88, 1, MB(7, 1, 0, 0x200));                     /* mov [rdi+rcx+0x200], cl */
    i2(&a, 4, 0xb6, 2, MB(7, -1, 0, 0x301));                    /* movzx edx, byte [rdi+0x301] */
    i2(&a, 4, 0xb7, 6, MB(7, 1, 1, 0x402));                     /* movzx esi, word [rdi+rcx*2+0x402] */
    i1(&a, 4, 0x03, 0, MB(7, -1, 0, 0x600));                    /* add eax, [rdi+0x600] */
    i1(&a, 1, 0x8a, 3, MB(7, -1, 0, 0x700));                    /* mov bl, [rdi+0x700] */
    per_iter = 7;
    if (m64) {
        i1(&a, 8, 0x89, 0, MB(7, 1, 3, 0x800));                 /* mov [rdi+rcx*8+0x800], rax */
        i1(&a, 8, 0x8b, 2, MB(7, -1, 0, 0x900));                /* mov rdx, [rdi+0x900] */
        per_iter += 2;
    }
    i1(&a, 4, 0x01, 0, RR(3));                                  /* add ebx, eax */
    i1(&a, 4, 0x01, 2, RR(3));                                  /* add ebx, edx */
    i1(&a, 4, 0x01, 6, RR(3));                                  /* add ebx, esi */
    i1(&a, 4, 0xff, 0, RR(1));                                  /* inc ecx */
    dec_jnz(&a, 4, cnt, loop);
    ab(&a, 0xf4);

    if (m64) {
        setup64(r);
        for (int m = 0; m < NMODES; m++) {
            uint64_t *pd = (uint64_t *)(r->ram[m] + 0x3000);
            pd[2] = 0x400000 | 0x83;        /* linear 4 MiB -> gpa 4 MiB: not RAM */
        }
        state64(&init, CODE);
    } else {
        state32(&init, CODE);
    }
    rig_load(r, CODE, a.b, a.n);
    run_all(r, &init, 100000, res);
    for (int m = 0; m < NMODES; m++) {
        struct mlog *l = &r->log[m], *l0 = &r->log[0];
        assert_int_equal(res[m].exit, CPU_EXIT_HLT);
        assert_int_equal(l->n, 10 * per_iter);
        for (unsigned k = 0; k < l->n; k++) {
            const struct mmio_ev *e = &l->ev[k], *w = &l0->ev[k];
            if (e->gpa != w->gpa || e->write != w->write || e->size != w->size ||
                e->val != w->val)
                fail_msg("%d-bit %s: mmio access #%u: %s 0x%" PRIx64 " size %u val 0x%" PRIx64
                         "; interpreter: %s 0x%" PRIx64 " size %u val 0x%" PRIx64,
                         m64 ? 64 : 32, mode_name[m], k, e->write ? "write" : "read", e->gpa,
                         e->size, e->val, w->write ? "write" : "read", w->gpa, w->size, w->val);
        }
        assert_memory_equal(res[m].st.gpr, res[0].st.gpr, sizeof res[0].st.gpr);
        assert_int_equal(res[m].st.rip, res[0].st.rip);
        /* nothing leaked into RAM at the same offsets */
        for (unsigned k = 0; k < 0x1000; k++)
            assert_int_equal(r->ram[m][(base & (RAM - 1)) + k], 0);
    }
    /* the interpreter's own log, checked by hand for the first iteration and the last */
    const struct mlog *l = &r->log[0];
    assert_int_equal(l->ev[0].gpa, base);
    assert_int_equal(l->ev[0].write, 1);
    assert_int_equal(l->ev[0].size, 4);
    assert_int_equal(l->ev[0].val, 0);
    assert_int_equal(l->ev[1].gpa, base + 0x100);
    assert_int_equal(l->ev[1].write, 0);
    assert_int_equal(l->ev[2].gpa, base + 0x200);
    assert_int_equal(l->ev[2].size, 1);
    assert_int_equal(l->ev[3].size, 1);
    assert_int_equal(l->ev[4].size, 2);
    const struct mmio_ev *last = &l->ev[9 * per_iter];
    assert_int_equal(last->gpa, base + 9 * 4);
    assert_int_equal(last->val, 9);
    assert_int_equal(l->ev[9 * per_iter + 4].gpa, base + 0x402 + 9 * 2);
    rig_free(r);
}

static void test_mmio_from_compiled_code(void **state)
{
    (void)state;
    mmio_case(false);
    mmio_case(true);
}

/* ---- user mode and page permissions ---- */

#define PT0 0x10000u            /* page tables for 0..4 MiB, 4 KiB pages */
#define TSS 0x8000u
#define UCODE 0x102000u
#define USTACK 0x80000u
#define SUPPAGE 0x300000u       /* supervisor-only */
#define ROPAGE 0x302000u        /* read-only (user) */

static void setup_user(struct rig *r)
{
    static const uint64_t gdt[5] = {
        0, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL,
        0x00cff3000000ffffULL,  /* 0x18: user data (sel 0x1b) */
        0x00affb000000ffffULL,  /* 0x20: user 64-bit code (sel 0x23) */
    };
    for (int m = 0; m < NMODES; m++) {
        uint8_t *ram = r->ram[m];
        memset(ram, 0, 0x20000);
        cg_write_gdt_idt(ram, 0);
        memcpy(ram + CG_GDT, gdt, sizeof gdt);
        uint64_t *pml4 = (uint64_t *)(ram + 0x1000), *pdpt = (uint64_t *)(ram + 0x2000);
        uint64_t *pd = (uint64_t *)(ram + 0x3000);
        pml4[0] = 0x2000 | 7;
        pdpt[0] = 0x3000 | 7;
        for (unsigned t = 0; t < 2; t++) {
            uint64_t *pt = (uint64_t *)(ram + PT0 + t * 0x1000);
            pd[t] = (PT0 + t * 0x1000) | 7;
            for (unsigned k = 0; k < 512; k++)
                pt[k] = ((uint64_t)t << 21 | (uint64_t)k << 12) | 7;
        }
        uint64_t *pt1 = (uint64_t *)(ram + PT0 + 0x1000);
        pt1[(SUPPAGE >> 12) & 511] &= ~4ULL;
        pt1[(ROPAGE >> 12) & 511] &= ~2ULL;
        uint64_t rsp0 = STACK;
        memcpy(ram + TSS + 4, &rsp0, 8);
        cpu_invalidate_ram(r->cpu[m], 0, 0x20000);
    }
}

/* @target: the faulting page; @store: the access; @user: from CPL3 (else CPL0, WP=1) */
static void perm_case(struct rig *r, uint64_t target, bool store, bool user, uint32_t want_err)
{
    struct as a = { .org = CODE, .m64 = true };
    struct as u = { .org = UCODE, .m64 = true };
    struct cpu_state init;
    struct result res[NMODES];
    struct as *lp = user ? &u : &a;
    uint64_t access_rip;

    setup_user(r);
    if (user) {
        /* CPL0: touch the page (fills the TLB with its permissions), then IRETQ to CPL3 */
        i1(&a, 4, 0x8b, 2, MB(-1, -1, 0, (int32_t)target));            /* mov edx, [t] */
        if (target == SUPPAGE)
            i1(&a, 4, 0x89, 2, MB(-1, -1, 0, (int32_t)target));        /* mov [t], edx */
        ab(&a, 0x6a), ab(&a, 0x1b);                                     /* push 0x1b */
        ab(&a, 0x68), a4(&a, USTACK);                                   /* push USTACK */
        ab(&a, 0x6a), ab(&a, 0x02);                                     /* push 2 */
        ab(&a, 0x6a), ab(&a, 0x23);                                     /* push 0x23 */
        ab(&a, 0x68), a4(&a, UCODE);                                    /* push UCODE */
        ab(&a, 0x48), ab(&a, 0xcf);                                     /* iretq */
    }
    /* mov esi, target - 80 / mov r15d, 20 / l: mov [rsi], eax  (or mov eax, [rsi]) /
     * add rsi, 8 / dec r15d / jnz l / hlt: the 11th iteration faults, compiled by then */
    mov_ri32(lp, 6, (uint32_t)(target - 80));
    mov_ri32(lp, 15, 20);
    uint64_t loop = here(lp);
    access_rip = loop;
    if (store)
        i1(lp, 4, 0x89, 0, MB(6, -1, 0, 0));
    else
        i1(lp, 4, 0x8b, 0, MB(6, -1, 0, 0));
    insn(lp, 8, (const uint8_t[]){ 0x83 }, 1, 0, RR(6), false, 1, 8);
    dec_jnz(lp, 4, 15, loop);
    ab(lp, 0xf4);

    state64(&init, CODE);
    init.gdt_limit = 5 * 8 - 1;
    init.seg[CPU_TR] = (struct cpu_seg){ 0x28, TSS, 0x67, 0x8b };
    init.cr0 = 0x80010011;      /* PE, ET, WP, PG */
    init.gpr[0] = 0x5a5a5a5a;
    rig_load(r, CODE, a.b, a.n);
    if (user)
        rig_load(r, UCODE, u.b, u.n);
    run_all(r, &init, 100000, res);
    for (int m = 0; m < NMODES; m++) {
        const char *what = store ? "store" : "load";
        struct cpu_state *st = &res[m].st;
        uint64_t err, frip, fcs;
        if (res[m].exit != CPU_EXIT_HLT || st->gpr[0] != 14)
            fail_msg("%s: %s at CPL%d to 0x%" PRIx64 ": exit %d, eax %" PRIu64 " (want 14 = #PF)",
                     mode_name[m], what, user ? 3 : 0, target, res[m].exit, st->gpr[0]);
        memcpy(&err, r->ram[m] + st->gpr[4], 8);
        memcpy(&frip, r->ram[m] + st->gpr[4] + 8, 8);
        memcpy(&fcs, r->ram[m] + st->gpr[4] + 16, 8);
        if (err != want_err || st->cr2 != target || frip != access_rip ||
            st->gpr[6] != target || (fcs & 3) != (user ? 3u : 0u))
            fail_msg("%s: %s at CPL%d to 0x%" PRIx64 ": err 0x%" PRIx64 " (want 0x%x) cr2 0x%"
                     PRIx64 " rip 0x%" PRIx64 " (want 0x%" PRIx64 ") rsi 0x%" PRIx64 " cs 0x%"
                     PRIx64, mode_name[m], what, user ? 3 : 0, target, err, want_err, st->cr2,
                     frip, access_rip, st->gpr[6], fcs);
        uint32_t v;
        memcpy(&v, r->ram[m] + target, 4);
        assert_int_equal(v, 0);     /* the faulting access wrote nothing */
        /* the 10 accesses before the fault happened, in the page before */
        if (store)
            for (unsigned k = 0; k < 10; k++) {
                memcpy(&v, r->ram[m] + target - 80 + 8 * k, 4);
                assert_int_equal(v, 0x5a5a5a5a);
            }
        assert_int_equal(res[m].stats.instructions, res[0].stats.instructions);
        assert_int_equal(st->gpr[15], res[0].st.gpr[15]);
    }
}

static void test_user_mode_perm(void **state)
{
    (void)state;
    struct rig *r = rig_new();
    perm_case(r, SUPPAGE, true, true, 7);   /* present | write | user */
    perm_case(r, ROPAGE, true, true, 7);
    perm_case(r, SUPPAGE, false, true, 5);  /* present | user */
    perm_case(r, ROPAGE, true, false, 3);   /* present | write (CR0.WP) */
    rig_free(r);
}

/* Returns and indirect jumps between compiled blocks: a loop calls two functions and jumps
 * through a table whose target alternates, so exits find their next block through the
 * jump cache as often as through their chain slot. Same result and count as the
 * interpreter. */
static void test_indirect_branches(void **state)
{
    static const uint8_t code[] = {
        0xbd, 0x64, 0x00, 0x00, 0x00,               /* 00: mov ebp, 100 */
        0xe8, 0x1e, 0x00, 0x00, 0x00,               /* 05: top: call f1 (0x28) */
        0xe8, 0x22, 0x00, 0x00, 0x00,               /* 0a: call f2 (0x31) */
        0x89, 0xe9,                                 /* 0f: mov ecx, ebp */
        0x83, 0xe1, 0x01,                           /* 11: and ecx, 1 */
        0xff, 0x24, 0x8d, 0x00, 0x01, 0x10, 0x00,   /* 14: jmp [ecx*4 + 0x100100] */
        0x83, 0xc2, 0x03,                           /* 1b: t0: add edx, 3 */
        0xeb, 0x03,                                 /* 1e: jmp next */
        0x83, 0xc2, 0x05,                           /* 20: t1: add edx, 5 */
        0x4d,                                       /* 23: next: dec ebp */
        0x75, 0xdf,                                 /* 24: jnz top (0x05) */
        0xf4,                                       /* 26: hlt */
        0x90,                                       /* 27 */
        0x83, 0xc0, 0x07,                           /* 28: f1: add eax, 7 */
        0xc3,                                       /* 2b: ret */
        0x90, 0x90, 0x90, 0x90, 0x90,               /* 2c */
        0x6b, 0xc0, 0x03,                           /* 31: f2: imul eax, eax, 3 */
        0xc3,                                       /* 34: ret */
    };
    uint32_t table[2] = { CODE + 0x1b, CODE + 0x20 };
    struct rig *r = rig_new();
    rig_load(r, CODE, code, sizeof code);
    rig_load(r, CODE + 0x100, table, sizeof table);
    struct cpu_state st;
    state32(&st, CODE);
    struct result res[NMODES];
    run_all(r, &st, 0, res);
    for (int m = 0; m < NMODES; m++) {
        if (res[m].exit != CPU_EXIT_HLT)
            fail_msg("%s: exit %d at rip 0x%" PRIx64, mode_name[m], res[m].exit, res[m].st.rip);
        if (res[m].st.gpr[0] != res[0].st.gpr[0] || res[m].st.gpr[2] != res[0].st.gpr[2] ||
            res[m].st.gpr[4] != res[0].st.gpr[4] ||
            res[m].stats.instructions != res[0].stats.instructions)
            fail_msg("%s: eax %" PRIx64 " edx %" PRIu64 " esp %" PRIx64 " icount %" PRIu64
                     "; interpreter %" PRIx64 " %" PRIu64 " %" PRIx64 " %" PRIu64, mode_name[m],
                     res[m].st.gpr[0], res[m].st.gpr[2], res[m].st.gpr[4],
                     res[m].stats.instructions, res[0].st.gpr[0], res[0].st.gpr[2],
                     res[0].st.gpr[4], res[0].stats.instructions);
    }
    assert_int_equal(res[0].st.gpr[2], 50 * 3 + 50 * 5);
    rig_free(r);
}

/* An instruction that starts on one page and ends on the next is one cached block that
 * depends on both: a loop rewrites the part of `mov eax, imm32` that lies on the second page
 * (its own page: self-modifying code), and the new immediate must take effect. */
static void test_cross_page_smc(void **state)
{
    uint8_t code[0x1013] = { 0 };
    const uint32_t at = 0xffd;                              /* mov eax: 3 + 2 bytes */
    memcpy(code, "\xbd\x14\x00\x00\x00\x31\xdb\x31\xc9\xe9", 10);  /* mov ebp,20; xor; xor; jmp */
    uint32_t rel = at - 0xe;
    memcpy(code + 10, &rel, 4);
    static const uint8_t loop[] = {
        0xb8, 0x11, 0x22, 0x33, 0x44,                       /* ffd: mov eax, 0x44332211 */
        0x01, 0xc3,                                         /* 1002: add ebx, eax */
        0x41,                                               /* 1004: inc ecx */
        0x88, 0x0d, 0x00, 0x10, 0x10, 0x00,                 /* 1005: mov [0x101000], cl */
        0x4d,                                               /* 100b: dec ebp */
        0x0f, 0x85, 0xeb, 0xff, 0xff, 0xff,                 /* 100c: jnz ffd */
        0xf4,                                               /* 1012: hlt */
    };
    memcpy(code + at, loop, sizeof loop);
    uint32_t want = 0;
    for (unsigned n = 1; n <= 20; n++)
        want += 0x44002211u | (n == 1 ? 0x33u : n - 1) << 16;
    struct rig *r = rig_new();
    rig_load(r, CODE, code, sizeof code);
    struct cpu_state st;
    state32(&st, CODE);
    struct result res[NMODES];
    run_all(r, &st, 0, res);
    for (int m = 0; m < NMODES; m++)
        if (res[m].exit != CPU_EXIT_HLT || (uint32_t)res[m].st.gpr[3] != want ||
            res[m].stats.instructions != res[0].stats.instructions)
            fail_msg("%s: exit %d ebx 0x%" PRIx64 " (want 0x%x), %" PRIu64 " instructions "
                     "(interpreter %" PRIu64 ")", mode_name[m], res[m].exit, res[m].st.gpr[3],
                     want, res[m].stats.instructions, res[0].stats.instructions);
    rig_free(r);
}

/* The same kind of instruction when the page table points its second page somewhere else:
 * the cached block must not be used with the old bytes (32-bit paging, 4 KiB pages). */
static void test_cross_page_remap(void **state)
{
    enum { PD = 0x3000, PT = 0x4000, ALT = 0x200000 };
    uint32_t pd[1024] = { PT | 3 }, pt[1024];
    for (unsigned k = 0; k < 1024; k++)
        pt[k] = k << 12 | 3;
    uint8_t head[0x1000] = { 0 };
    memcpy(head, "\xbd\x0a\x00\x00\x00\x31\xdb\xe9", 8);      /* mov ebp,10; xor ebx; jmp */
    uint32_t rel = 0xffd - 0xc;
    memcpy(head + 8, &rel, 4);
    memcpy(head + 0xffd, "\xb8\x11\x22", 3);                    /* mov eax, 0x??..2211 */
    uint8_t tail[12] = { 0x33, 0x44, 0x01, 0xc3, 0x4d, 0x0f, 0x85, 0xf2, 0xff, 0xff, 0xff, 0xf4 };
    struct rig *r = rig_new();
    rig_load(r, PD, pd, sizeof pd);
    rig_load(r, PT, pt, sizeof pt);
    rig_load(r, CODE, head, sizeof head);
    rig_load(r, CODE + 0x1000, tail, sizeof tail);
    tail[0] = 0x55, tail[1] = 0x66;
    rig_load(r, ALT, tail, sizeof tail);
    struct cpu_state st;
    state32(&st, CODE);
    st.cr0 |= 0x80000000;
    st.cr3 = PD;
    for (unsigned round = 0; round < 2; round++) {
        struct result res[NMODES];
        uint32_t want = 10 * (round ? 0x66552211u : 0x44332211u);
        if (round) {
            pt[(CODE >> 12) + 1] = ALT | 3;                 /* the code's second page moves */
            rig_load(r, PT, pt, sizeof pt);
        }
        run_all(r, &st, 0, res);                            /* (a new CR3 load: TLB flushed) */
        for (int m = 0; m < NMODES; m++)
            if (res[m].exit != CPU_EXIT_HLT || (uint32_t)res[m].st.gpr[3] != want)
                fail_msg("round %u, %s: exit %d ebx 0x%" PRIx64 " (want 0x%x)", round,
                         mode_name[m], res[m].exit, res[m].st.gpr[3], want);
    }
    rig_free(r);
}

/* More hot code than the 32 MiB code arena and the 65536-block table hold: 250000 tiny
 * blocks (add eax, 1; jmp to the next) at 0x204000, run twice. Blocks are evicted, compiled
 * code fills the arena, the cache is flushed under the running guest and blocks are
 * compiled again; the result and the instruction count must be the interpreter's, and more
 * blocks than exist must have been compiled. */
static void test_code_arena_flush(void **state)
{
    enum { NBLK = 250000, ROUNDS = 2, BASE = 0x204000 };
    size_t n = (size_t)NBLK * 5 + 16, k = 0;
    uint8_t *code = malloc(n);
    assert_non_null(code);
    code[k++] = 0xbd;                                   /* mov ebp, ROUNDS */
    memcpy(code + k, &(uint32_t){ ROUNDS }, 4);
    k += 4;
    size_t top = k;
    for (unsigned b = 0; b < NBLK; b++) {
        code[k++] = 0x83, code[k++] = 0xc0, code[k++] = 0x01;  /* add eax, 1 */
        code[k++] = 0xeb, code[k++] = 0x00;                   /* jmp next */
    }
    code[k++] = 0x4d;                                   /* dec ebp */
    code[k++] = 0x0f, code[k++] = 0x85;                 /* jnz top */
    int32_t rel = (int32_t)top - (int32_t)(k + 4);
    memcpy(code + k, &rel, 4);
    k += 4;
    code[k++] = 0xf4;                                   /* hlt */
    assert_true(BASE + k < RAM);
    struct rig *r = rig_new();
    rig_load(r, BASE, code, k);
    free(code);
    struct cpu_state st;
    state32(&st, BASE);
    struct result res[NMODES];
    run_all(r, &st, 0, res);
    for (int m = 0; m < NMODES; m++) {
        if (res[m].exit != CPU_EXIT_HLT || res[m].st.gpr[0] != (uint64_t)NBLK * ROUNDS)
            fail_msg("%s: exit %d, eax %" PRIu64 " (want HLT, %u)", mode_name[m], res[m].exit,
                     res[m].st.gpr[0], NBLK * ROUNDS);
        if (res[m].stats.instructions != res[0].stats.instructions)
            fail_msg("%s: %" PRIu64 " instructions, interpreter %" PRIu64, mode_name[m],
                     res[m].stats.instructions, res[0].stats.instructions);
    }
    if (getenv("VMCORE_EMU_JIT") == NULL || strcmp(getenv("VMCORE_EMU_JIT"), "0"))
        assert_true(res[2].stats.jit_blocks > NBLK);    /* eager: compiled again after a flush */
    printf("[ info ] eager: %" PRIu64 " blocks compiled for %u\n", res[2].stats.jit_blocks, NBLK);
    rig_free(r);
}

/* ---- rotates: every inline form of ROL/ROR against the interpreter ---- */

static const unsigned rot_counts[] = { 0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65,
                                       0xff };

/* rotate (op 0 ROL, 1 ROR) of register @d, @sz bytes: form 0 by 1 (D0/D1), 1 by imm8
 * (C0/C1), 2 by CL (D2/D3). 8-bit: 32-bit code's 4-7 are AH..BH, 64-bit code uses REX. */
static void rot_insn(struct as *a, unsigned sz, unsigned op, unsigned form, unsigned cnt, int d)
{
    static const uint8_t opc[3] = { 0xd1, 0xc1, 0xd3 };
    if (op >= 4) {              /* BT/BTS/BTR/BTC (op 4-7) of @d by imm8 (form 1) or ECX */
        if (form == 1)
            insn(a, sz, (const uint8_t[]){ 0x0f, 0xba }, 2, op, RR(d), false, 1, cnt);
        else
            insn(a, sz, (const uint8_t[]){ 0x0f, (uint8_t)(0xa3 + 8 * (op - 4)) }, 2, 1, RR(d),
                 false, 0, 0);
        return;
    }
    uint8_t o = (uint8_t)(opc[form] - (sz == 1 ? 1 : 0));
    insn(a, sz, &o, 1, op, RR(d), sz == 1 && a->m64, form == 1 ? 1 : 0, cnt);
}

/* One loop body: [@pre: a flag writer] the rotate [@post: a reader, a writer, another
 * rotate] pushf; pop cap; lea acc, [cap + acc*2] (every iteration's flags folded into acc,
 * which the rig compares as a register). @pre 8-11: the writer, then a load, so that the
 * host's flags are gone and jit.c redoes the writer from its lazy state. */
static void rot_program(struct as *a, unsigned sz, unsigned op, unsigned form, unsigned cnt,
                        unsigned pre, unsigned post, int d)
{
    int cap = a->m64 ? 14 : 7, acc = a->m64 ? 13 : 6, x = a->m64 ? 8 : 2, y = 3;
    mov_ri32(a, counter_reg(a), ITERS);
    if (form == 2)
        mov_ri32(a, 1, cnt | 0x1200);           /* CL = the count (CH: noise) */
    uint64_t loop = here(a);
    switch (pre) {
    case 1: i1(a, 4, 0x01, (unsigned)y, RR(x)); break;                  /* add x, y */
    case 2: i1(a, 4, 0x31, (unsigned)y, RR(x)); break;                  /* xor: AF 0 */
    case 3: i1(a, a->m64 ? 8 : 4, 0xff, 0, RR(x)); break;               /* inc: CF kept */
    case 4: insn(a, 4, (const uint8_t[]){ 0x83 }, 1, 7, RR(x), false, 1, 0x40); break;
    case 5: i1(a, 1, 0x00, 3, RR(0)); break;                            /* add al, bl */
    case 6: i1(a, 4, 0x85, (unsigned)x, RR(x)); break;                  /* test x, x */
    case 7: ab(a, 0xf9); break;                                         /* stc: a handler */
    case 8: case 9: case 10: case 11:   /* add, xor, inc, cmp; then a load (host flags gone) */
        if (pre == 10)
            i1(a, a->m64 ? 8 : 4, 0xff, 0, RR(x));
        else if (pre == 11)
            insn(a, 4, (const uint8_t[]){ 0x83 }, 1, 7, RR(x), false, 1, 0x40);
        else
            i1(a, 4, pre == 8 ? 0x01 : 0x31, (unsigned)y, RR(x));
        i1(a, 4, 0x8b, (unsigned)y, MB(-1, -1, 0, (int32_t)DATA));
        break;
    case 12: {                          /* xor; mov r8, r8 (the count, often): flags kept */
        int p, q;
        bool rex = byte_regs(a, &p, &q);
        i1(a, 4, 0x31, (unsigned)y, RR(x));
        insn(a, 1, (const uint8_t[]){ rn(2) ? 0x88 : 0x8a }, 1, (unsigned)p,
             RR(rn(2) ? 1 : q), rex, 0, 0);
        break;
    }
    default: break;
    }
    rot_insn(a, sz, op, form, cnt, d);
    switch (post) {
    case 1:                                                             /* setcc dl */
        insn(a, 1, (const uint8_t[]){ 0x0f, (uint8_t)(0x90 + rn(16)) }, 2, 0, RR(2), false, 0, 0);
        break;
    case 2:                                                             /* jcc over not */
        ab(a, 0x70 + rn(16));
        ab(a, 2);
        i1(a, 4, 0xf7, 2, RR(x));
        break;
    case 3: i1(a, 4, 0x01, (unsigned)x, RR(y)); break;                  /* add: flags dead */
    case 4:                                                             /* another rotate */
        rot_insn(a, rn(2) ? 1 : a->m64 ? 8 : 4, rn(2), rn(3), rn(40), rn(2) ? x : 0);
        break;
    case 7: i1(a, 4, 0xff, 0, RR(x)); break;                            /* inc: keeps CF */
    case 5: i1(a, 4, 0x11, (unsigned)y, RR(x)); break;                  /* adc: reads CF */
    case 6: i1(a, 4, 0x89, (unsigned)x, RR(0)); break;                  /* mov: neutral */
    default: break;
    }
    ab(a, 0x9c);                                                        /* pushf */
    if (cap & 8)
        ab(a, 0x41);
    ab(a, 0x58 + (cap & 7));                                            /* pop cap */
    i1(a, a->m64 ? 8 : 4, 0x8d, (unsigned)acc, MB(cap, acc, 1, 0));     /* lea */
    dec_jnz(a, 4, counter_reg(a), loop);
    ab(a, 0xf4);
}

/* @bt: BT/BTS/BTR/BTC (16-64 bit, by imm8 or ECX) instead of the rotates */
static void rotates_case(struct rig *r, bool m64, bool bt, unsigned *failures,
                         unsigned *cases)
{
    static const int dst32[] = { 0, 1, 2, 3 };              /* not the capture regs */
    static const int dst64[] = { 0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12 };
    static const unsigned sizes[4] = { 1, 2, 4, 8 };
    struct as *a = malloc(sizeof *a);
    assert_non_null(a);
    for (unsigned si = bt ? 1 : 0; si < (m64 ? 4u : 3u); si++)
    for (unsigned op = bt ? 4 : 0; op < (bt ? 8u : 2u); op++)
    for (unsigned form = bt ? 1 : 0; form < 3; form++)
    for (unsigned ci = 0; ci < (form ? sizeof rot_counts / sizeof rot_counts[0] : 1); ci++)
    for (unsigned pre = 0; pre < 13; pre++)
    for (unsigned post = 0; post < 8; post++) {
        unsigned sz = sizes[si], cnt = form ? rot_counts[ci] : 1;
        int d = sz == 1 && !m64 ? (int)rn(8)
                : m64 ? dst64[rn(sizeof dst64 / sizeof dst64[0])] : dst32[rn(4)];
        struct cpu_state init;
        struct result res[NMODES];
        memset(a, 0, sizeof *a);
        a->org = CODE;
        a->m64 = m64;
        rot_program(a, sz, op, form, cnt, pre, post, d);
        if (m64)
            state64(&init, CODE);
        else
            state32(&init, CODE);
        for (int g = 0; g < 16; g++)
            if (g != 4)
                init.gpr[g] = cg_rnd();
        init.rflags = 2 | (cg_rnd() & FL_ARITH);
        rig_load(r, CODE, a->b, a->n);
        run_all(r, &init, 100000, res);
        (*cases)++;
        for (int m = 1; m < NMODES; m++) {
            if (res[m].exit == res[0].exit && res[m].st.rip == res[0].st.rip &&
                !((res[m].st.rflags ^ res[0].st.rflags) & FL_ARITH) &&
                !memcmp(res[m].st.gpr, res[0].st.gpr, sizeof res[0].st.gpr) &&
                res[m].stats.instructions == res[0].stats.instructions)
                continue;
            if (++*failures > 5)
                continue;
            static const char *const names[8] = { "rol", "ror", "", "", "bt", "bts", "btr",
                                                  "btc" };
            fprintf(stderr, "MISMATCH %d-bit %s%u by %s%u (d %d, pre %u, post %u): %s vs "
                    "interpreter\n", m64 ? 64 : 32, names[op], sz * 8,
                    form == 0 ? "1 " : form == 1 ? "imm " : "cl ", cnt, d, pre, post,
                    mode_name[m]);
            dump_bytes("code", a->b, a->n);
            fprintf(stderr, "  exit %d vs %d, flags 0x%" PRIx64 " vs 0x%" PRIx64 "\n",
                    res[m].exit, res[0].exit, res[m].st.rflags & FL_ARITH,
                    res[0].st.rflags & FL_ARITH);
            for (int g = 0; g < 16; g++)
                if (res[m].st.gpr[g] != res[0].st.gpr[g])
                    fprintf(stderr, "  r%-2d init 0x%016" PRIx64 " got 0x%016" PRIx64
                            " want 0x%016" PRIx64 "\n", g, init.gpr[g], res[m].st.gpr[g],
                            res[0].st.gpr[g]);
        }
        if (res[0].exit != CPU_EXIT_HLT && ++*failures <= 5)
            fprintf(stderr, "rotate program did not halt: exit %d (%s)\n", res[0].exit,
                    cpu_error(r->cpu[0]));
    }
    free(a);
}

/* ROL/ROR of every width by 1, imm8 and CL, counts 0, 1, up to and past the width and
 * the mask, after each kind of flag writer the JIT tracks (host flags valid, CF kept, AF
 * undefined on the host, redone from the lazy state, unknown) and before readers, writers
 * and a second rotate: compiled
 * must equal interpreted in registers, all six arithmetic flags and instruction counts. */
static void test_rotates_inline(void **state)
{
    (void)state;
    unsigned failures = 0, cases = 0;
    cg_seed(0x707a7e0001ULL);
    struct rig *r = rig_new();
    rotates_case(r, false, false, &failures, &cases);
    rig_free(r);
    r = rig_new();
    setup64(r);
    rotates_case(r, true, false, &failures, &cases);
    rig_free(r);
    fprintf(stderr, "rotates: %u programs\n", cases);
    assert_int_equal(failures, 0);
}

/* BT/BTS/BTR/BTC of a register by imm8 and by a register, 16 to 64-bit, the same bit
 * offsets (in range, at the top, past the width), writers and followers as the rotates:
 * CF is the bit, every other flag the writer's. */
static void test_bt_inline(void **state)
{
    (void)state;
    unsigned failures = 0, cases = 0;
    cg_seed(0xb7b7b70001ULL);
    struct rig *r = rig_new();
    rotates_case(r, false, true, &failures, &cases);
    rig_free(r);
    r = rig_new();
    setup64(r);
    rotates_case(r, true, true, &failures, &cases);
    rig_free(r);
    fprintf(stderr, "bt: %u programs\n", cases);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const char *e = getenv("VMCORE_EMU_JIT");
    saved_env = e ? strdup(e) : NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jit_vs_interp_random_32),
        cmocka_unit_test(test_jit_vs_interp_random_64),
        cmocka_unit_test(test_budget_exact),
        cmocka_unit_test(test_kick_stops_chained_loop),
        cmocka_unit_test(test_smc_hot_loop),
        cmocka_unit_test(test_mmio_from_compiled_code),
        cmocka_unit_test(test_user_mode_perm),
        cmocka_unit_test(test_code_arena_flush),
        cmocka_unit_test(test_cross_page_smc),
        cmocka_unit_test(test_cross_page_remap),
        cmocka_unit_test(test_indirect_branches),
        cmocka_unit_test(test_rotates_inline),
        cmocka_unit_test(test_bt_inline),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(saved_env);
    return rc;
}
