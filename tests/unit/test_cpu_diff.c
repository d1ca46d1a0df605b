/* Differential tests of the x86 emulator against the host CPU.
 *
 * Guest RAM is mapped at a fixed host address and the guest's page tables map the same
 * linear addresses onto it, so an instruction sequence runs unchanged both natively (in
 * this process) and in the emulator (64-bit mode, CPL 0). Registers, flags and the data
 * area are compared after each case. Operands are random from a seed
 * (VMCORE_TEST_SEED, default fixed) so every failure is reproducible; each case prints
 * its bytes when it fails. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cpu/cpu.h"
#include "cpuguest.h"

#define GBASE 0x50000000ULL         /* host address == guest linear address of gpa 0 */
#define GSIZE (4u << 20)
#define CODE 0x100000u              /* gpa of the code snippet */
#define DATA 0x180000u              /* gpa of the data area (8 KiB), RBX points into it */
#define DATA_LEN 0x2000u
#define STACK 0x1f0000u

#define F_ARITH 0x8d5ULL
#define F_CF 0x1ULL
#define F_PF 0x4ULL
#define F_AF 0x10ULL
#define F_ZF 0x40ULL
#define F_SF 0x80ULL
#define F_DF 0x400ULL
#define F_OF 0x800ULL

static uint8_t *ram;
static struct cpu *cpu;
static uint8_t data_init[DATA_LEN], data_native[DATA_LEN];

/* Interesting operand values: edges are where flags go wrong. */
static uint64_t rnd_operand(void)
{
    static const uint64_t edge[] = { 0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff,
                                     0x7fffffff, 0x80000000, 0xffffffff, 0x7fffffffffffffff,
                                     0x8000000000000000, 0xffffffffffffffff, 0x100, 0x10,
                                     0xf, 0x1f, 0x3f, 0x40, 0x41 };
    switch (cg_rnd() % 4) {
    case 0: return edge[cg_rnd() % (sizeof edge / sizeof edge[0])];
    case 1: return cg_rnd() & 0xff;
    default: return cg_rnd();
    }
}

static int setup(void **state)
{
    (void)state;
    ram = cg_map_ram(GBASE, GSIZE);
    if (!ram)
        return -1;
    cg_map_linear_2m(ram, GBASE);
    cpu = cpu_new(ram, GSIZE, NULL);
    if (!cpu)
        return -1;
    cg_seed(0x5eed1234abcdULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cpu_free(cpu);
    munmap(ram, GSIZE);
    return 0;
}

static void long_mode_state(struct cpu_state *st)
{
    cg_long_mode_state(st, 0x80000011);
}

static void hexdump(const uint8_t *b, unsigned n, char *out)
{
    for (unsigned k = 0; k < n; k++)
        out += sprintf(out, "%02x ", b[k]);
}

/* Run @code (n bytes) natively and emulated from @in; compare under @fmask. */
static int run_case(const uint8_t *code, unsigned n, const struct cg_regs *in, uint64_t fmask,
                    const char *what)
{
    struct cg_regs nat = *in;
    struct cpu_state st;
    char hex[3 * 256 + 1];
    int bad = 0;

    memcpy(data_init, ram + DATA, DATA_LEN);
    memcpy(ram + CODE, code, n);
    ram[CODE + n] = 0xc3;   /* ret */
    nat.target = GBASE + CODE;
    nat.flags = in->flags;
    cg_run_native(&nat);
    memcpy(data_native, ram + DATA, DATA_LEN);
    memcpy(ram + DATA, data_init, DATA_LEN);

    ram[CODE + n] = 0xf4;   /* hlt */
    cpu_invalidate_ram(cpu, CODE, 32);
    long_mode_state(&st);
    memcpy(st.gpr, in->gpr, sizeof st.gpr);
    st.gpr[4] = GBASE + STACK;
    st.rip = GBASE + CODE;
    st.rflags = in->flags | 2;
    cpu_set_state(cpu, &st);
    enum cpu_exit e = cpu_run(cpu, 100000);
    cpu_get_state(cpu, &st);

    hexdump(code, n, hex);
    if (e != CPU_EXIT_HLT || st.rip != GBASE + CODE + n + 1) {
        fprintf(stderr, "%s [%s]: exit %d rip 0x%" PRIx64 " (%s)\n", what, hex, e, st.rip,
                cpu_error(cpu));
        return 1;
    }
    for (int r = 0; r < 16; r++) {
        if (r == 4)
            continue;
        if (st.gpr[r] != nat.gpr[r]) {
            fprintf(stderr, "%s [%s]: r%d emu 0x%" PRIx64 " native 0x%" PRIx64
                    " (in 0x%" PRIx64 ")\n", what, hex, r, st.gpr[r], nat.gpr[r], in->gpr[r]);
            bad = 1;
        }
    }
    if ((st.rflags & fmask) != (nat.flags & fmask)) {
        fprintf(stderr, "%s [%s]: flags emu 0x%" PRIx64 " native 0x%" PRIx64 " mask 0x%" PRIx64
                " (in 0x%" PRIx64 " rax 0x%" PRIx64 " rcx 0x%" PRIx64 ")\n", what, hex,
                st.rflags & fmask, nat.flags & fmask, fmask, in->flags, in->gpr[0], in->gpr[1]);
        bad = 1;
    }
    if (memcmp(ram + DATA, data_native, DATA_LEN)) {
        for (unsigned k = 0; k < DATA_LEN; k++)
            if (ram[DATA + k] != data_native[k]) {
                fprintf(stderr, "%s [%s]: data+0x%x emu %02x native %02x\n", what, hex, k,
                        ram[DATA + k], data_native[k]);
                break;
            }
        bad = 1;
    }
    memcpy(ram + DATA, data_init, DATA_LEN);
    return bad;
}

static void random_regs(struct cg_regs *r)
{
    for (int k = 0; k < 16; k++)
        r->gpr[k] = rnd_operand();
    r->gpr[4] = 0;
    r->gpr[3] = GBASE + DATA + 0x1000;  /* rbx: the memory operand base */
    r->flags = cg_rnd() & F_ARITH;
    for (unsigned k = 0; k < DATA_LEN; k += 8) {
        uint64_t v = rnd_operand();
        memcpy(ram + DATA + k, &v, 8);
    }
}

/* A register operand number that is not RSP/SP/ESP (4) when it would be; with REX, 4 is
 * SPL in byte forms, so any unextended 4 is avoided. */
static unsigned rnd_reg(void)
{
    unsigned r;
    do
        r = cg_rnd() % 8;
    while (r == 4 || r == 3);
    return r;
}

/* Emit prefixes for an operand size (1, 2, 4, 8) with random REX extension bits. rex_r /
 * rex_b extend reg/rm; returns the length. Byte forms with REX are used half the time. */
static unsigned emit_prefix(uint8_t *p, unsigned sz, unsigned rexr, unsigned rexb)
{
    unsigned n = 0, rex = 0;
    if (sz == 2)
        p[n++] = 0x66;
    if (sz == 8)
        rex |= 8;
    rex |= rexr << 2 | rexb;
    if (rex || (sz == 1 && (cg_rnd() & 1)))
        p[n++] = (uint8_t)(0x40 | rex);
    return n;
}

struct rmop {
    unsigned reg, rm, rexr, rexb;
    bool mem;
};

/* Pick a ModRM: register-register, or [rbx + disp8] memory. */
static unsigned emit_modrm(uint8_t *p, struct rmop *o, unsigned regfield)
{
    if (o->mem) {
        p[0] = (uint8_t)(0x40 | (regfield & 7) << 3 | 3);
        p[1] = (uint8_t)((cg_rnd() % 32) * 8 - 128);
        return 2;
    }
    p[0] = (uint8_t)(0xc0 | (regfield & 7) << 3 | (o->rm & 7));
    return 1;
}

static void rnd_rmop(struct rmop *o, bool allow_mem)
{
    o->reg = rnd_reg();
    o->rm = rnd_reg();
    o->rexr = cg_rnd() & 1;
    o->rexb = cg_rnd() & 1;
    o->mem = allow_mem && (cg_rnd() % 3 == 0);
    if (o->mem)
        o->rexb = 0;
}

static const unsigned sizes[4] = { 1, 2, 4, 8 };

/* opcode forms: the ALU ops in all four directions and sizes, immediates */
static void test_alu(void **state)
{
    (void)state;
    int fails = 0;
    for (int t = 0; t < 6000 && fails < 10; t++) {
        uint8_t code[16];
        struct cg_regs r;
        struct rmop o;
        unsigned op = cg_rnd() % 8, sz = sizes[cg_rnd() % 4], n, form = cg_rnd() % 4;
        random_regs(&r);
        rnd_rmop(&o, form < 2);
        n = emit_prefix(code, sz, o.rexr, o.rexb);
        switch (form) {
        case 0: case 1:   /* Ev,Gv / Gv,Ev */
            code[n++] = (uint8_t)(op * 8 + (form ? 2 : 0) + (sz == 1 ? 0 : 1));
            n += emit_modrm(code + n, &o, o.reg);
            break;
        case 2: {         /* 80/81/83 */
            unsigned opc = sz == 1 ? 0x80 : (cg_rnd() & 1) ? 0x83 : 0x81;
            code[n++] = (uint8_t)opc;
            n += emit_modrm(code + n, &o, op);
            unsigned isz = opc == 0x81 ? (sz == 2 ? 2 : 4) : 1;
            uint64_t imm = rnd_operand();
            memcpy(code + n, &imm, isz);
            n += isz;
            break;
        }
        default: {        /* AL/eAX, imm */
            n = sz == 2 ? 1 : 0;
            if (sz == 2)
                code[0] = 0x66;
            if (sz == 8)
                code[n++] = 0x48;
            code[n++] = (uint8_t)(op * 8 + 4 + (sz == 1 ? 0 : 1));
            unsigned isz = sz == 1 ? 1 : sz == 2 ? 2 : 4;
            uint64_t imm = rnd_operand();
            memcpy(code + n, &imm, isz);
            n += isz;
            break;
        }
        }
        uint64_t fm = (op == 1 || op == 4 || op == 6) ? F_ARITH & ~F_AF : F_ARITH;
        fails += run_case(code, n, &r, fm, "alu");
    }
    assert_int_equal(fails, 0);
}

static void test_unary(void **state)
{
    (void)state;
    int fails = 0;
    for (int t = 0; t < 3000 && fails < 10; t++) {
        uint8_t code[16];
        struct cg_regs r;
        struct rmop o;
        unsigned sz = sizes[cg_rnd() % 4], n, kind = cg_rnd() % 4;
        random_regs(&r);
        rnd_rmop(&o, true);
        n = emit_prefix(code, sz, 0, o.rexb);
        if (kind < 2) {     /* inc/dec */
            code[n++] = sz == 1 ? 0xfe : 0xff;
            n += emit_modrm(code + n, &o, kind);
        } else {            /* not/neg */
            code[n++] = sz == 1 ? 0xf6 : 0xf7;
            n += emit_modrm(code + n, &o, kind);
        }
        fails += run_case(code, n, &r, F_ARITH, "unary");
    }
    assert_int_equal(fails, 0);
}

static void test_shift(void **state)
{
    (void)state;
    int fails = 0;
    for (int t = 0; t < 8000 && fails < 10; t++) {
        uint8_t code[16];
        struct cg_regs r;
        struct rmop o;
        unsigned sz = sizes[cg_rnd() % 4], n, op = cg_rnd() % 8, form = cg_rnd() % 3, cnt;
        random_regs(&r);
        rnd_rmop(&o, true);
        if (o.rm == 1 && !o.mem)
            o.rm = 2;
        n = emit_prefix(code, sz, 0, o.rexb);
        cnt = (unsigned)(cg_rnd() % 70);
        if (cg_rnd() % 4 == 0)
            cnt = 1;
        switch (form) {
        case 0: code[n++] = sz == 1 ? 0xd0 : 0xd1; cnt = 1; break;
        case 1: code[n++] = sz == 1 ? 0xd2 : 0xd3; r.gpr[1] = (r.gpr[1] & ~0xffULL) | cnt; break;
        default: code[n++] = sz == 1 ? 0xc0 : 0xc1; break;
        }
        n += emit_modrm(code + n, &o, op);
        if (form == 2)
            code[n++] = (uint8_t)cnt;
        unsigned m = cnt & (sz == 8 ? 63 : 31);
        uint64_t fm = F_ARITH & ~F_AF;
        if (m != 1)
            fm &= ~F_OF;
        if ((op == 4 || op == 5 || op == 6) && m >= sz * 8)
            fm &= ~F_CF;
        if (op < 4)
            fm &= F_CF | F_OF;      /* rotates touch only CF/OF */
        if (m == 0)
            fm = F_ARITH;
        if (op < 4 && m == 0)
            fm = F_ARITH;
        fails += run_case(code, n, &r, fm, "shift");
    }
    assert_int_equal(fails, 0);
}

/* Rotates leave SF/ZF/AF/PF alone (and, with a masked count of 0, every flag): an ADD/ADC/
 * SBB/SUB/CMP of registers or INC/DEC (AF defined) first, then one or two rotates of any
 * size, form and count, then maybe SETcc of a flag they leave defined. Every arithmetic flag
 * is compared (OF only where the last rotate that changed the flags counted 1). In the _jit
 * variant the block is compiled: the rotates take jit.c's host-flags path. */
static void test_rotate_after_alu(void **state)
{
    (void)state;
    static const unsigned aop[] = { 0, 2, 3, 5, 7 }, psizes[] = { 1, 4, 8 };
    int fails = 0;
    for (int t = 0; t < 6000 && fails < 10; t++) {
        uint8_t code[64];
        struct cg_regs r;
        struct rmop o;
        unsigned n = 0, last = 0, psz = psizes[cg_rnd() % 3], cl = 0;
        bool have_cl = false;
        random_regs(&r);
        rnd_rmop(&o, false);
        if (o.rm == 1 && !o.rexb)
            o.rm = 2;                                   /* CL: the rotates' count */
        if (psz != 1 && cg_rnd() % 4 == 0) {               /* inc/dec r */
            n += emit_prefix(code + n, psz, 0, o.rexb);
            code[n++] = 0xff;
            n += emit_modrm(code + n, &o, cg_rnd() & 1);
        } else {
            n += emit_prefix(code + n, psz, o.rexr, o.rexb);
            code[n++] = (uint8_t)(aop[cg_rnd() % 5] * 8 + (psz == 1 ? 0 : 1));
            n += emit_modrm(code + n, &o, o.reg);
        }
        for (unsigned k = 1 + cg_rnd() % 2; k; k--) {
            unsigned sz = sizes[cg_rnd() % 4], op = cg_rnd() % 2, form = cg_rnd() % 3, cnt;
            struct rmop q;
            rnd_rmop(&q, false);
            if (q.rm == 1 && !q.rexb)
                q.rm = 2;                               /* CL stays the count */
            cnt = (unsigned)(cg_rnd() % 70);
            if (cg_rnd() % 4 == 0)
                cnt = 1;
            else if (cg_rnd() % 6 == 0)
                cnt = 0;
            if (form == 1) {
                if (!have_cl) {
                    cl = cnt;
                    have_cl = true;
                    r.gpr[1] = (r.gpr[1] & ~0xffULL) | cl;
                }
                cnt = cl;
            }
            n += emit_prefix(code + n, sz, 0, q.rexb);
            code[n++] = (uint8_t)((form == 0 ? 0xd1 : form == 1 ? 0xd3 : 0xc1) - (sz == 1));
            if (form == 0)
                cnt = 1;
            n += emit_modrm(code + n, &q, op);
            if (form == 2)
                code[n++] = (uint8_t)cnt;
            if (cnt & (sz == 8 ? 63 : 31))
                last = cnt & (sz == 8 ? 63 : 31);
        }
        if (cg_rnd() % 2) {                             /* setcc al */
            static const unsigned cc_nof[] = { 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
            unsigned cc = last > 1 ? cc_nof[cg_rnd() % 10] : (unsigned)(cg_rnd() % 16);
            code[n++] = 0x0f;
            code[n++] = (uint8_t)(0x90 + cc);
            code[n++] = 0xc0;
        }
        uint64_t fm = last > 1 ? F_ARITH & ~F_OF : F_ARITH;
        fails += run_case(code, n, &r, fm, "rotate after alu");
    }
    assert_int_equal(fails, 0);
}

static void test_muldiv(void **state)
{
    (void)state;
    int fails = 0;
    for (int t = 0; t < 6000 && fails < 10; t++) {
        uint8_t code[16];
        struct cg_regs r;
        struct rmop o;
        unsigned sz = sizes[cg_rnd() % 4], n, op = 4 + cg_rnd() % 4;
        random_regs(&r);
        rnd_rmop(&o, false);
        if (o.rm == 0 || o.rm == 2)
            o.rm = 6;
        if (sz == 1)
            o.rexb = 1;     /* a REX prefix: the operand is r9b..r15b, not AH..BH */
        uint64_t m = sz == 8 ? ~0ULL : (1ULL << (sz * 8)) - 1;
        if (op >= 6) {
            /* keep the quotient in range so the host does not trap */
            uint64_t d = r.gpr[o.rm + 8 * o.rexb] & m;
            if (d == 0 || (op == 7 && d == m))
                d = 3;
            r.gpr[o.rm + 8 * o.rexb] = (r.gpr[o.rm + 8 * o.rexb] & ~m) | d;
            if (op == 6) {
                uint64_t hi = sz == 1 ? 0 : (r.gpr[2] & m) % d;
                if (sz == 1)
                    r.gpr[0] = (r.gpr[0] & ~0xff00ULL) | ((((r.gpr[0] >> 8) & 0xff) % d) << 8);
                else
                    r.gpr[2] = (r.gpr[2] & ~m) | hi;
            } else {
                /* sign-extend the dividend and avoid MIN / -1 */
                uint64_t lo = sz == 1 ? r.gpr[0] & 0xff : r.gpr[0] & m;
                bool neg = lo >> (sz * 8 - 1);
                if (sz == 1)
                    r.gpr[0] = (r.gpr[0] & ~0xff00ULL) | (neg ? 0xff00 : 0);
                else
                    r.gpr[2] = (r.gpr[2] & ~m) | (neg ? m : 0);
            }
        }
        n = emit_prefix(code, sz, 0, o.rexb);
        code[n++] = sz == 1 ? 0xf6 : 0xf7;
        n += emit_modrm(code + n, &o, op);
        fails += run_case(code, n, &r, op >= 6 ? 0 : F_CF | F_OF, "muldiv");
    }
    /* two- and three-operand IMUL */
    for (int t = 0; t < 3000 && fails < 10; t++) {
        uint8_t code[16];
        struct cg_regs r;
        struct rmop o;
        unsigned sz = sizes[1 + cg_rnd() % 3], n, form = cg_rnd() % 3;
        random_regs(&r);
        rnd_rmop(&o, true);
        n = emit_prefix(code, sz, o.rexr, o.rexb);
        if (form == 0) {
            code[n++] = 0x0f;
            code[n++] = 0xaf;
            n += emit_modrm(code + n, &o, o.reg);
        } else {
            code[n++] = form == 1 ? 0x6b : 0x69;
            n += emit_modrm(code + n, &o, o.reg);
            unsigned isz = form == 1 ? 1 : sz == 2 ? 2 : 4;
            uint64_t imm = rnd_operand();
            memcpy(code + n, &imm, isz);
            n += isz;
        }
        fails += run_case(code, n, &r, F_CF | F_OF, "imul");
    }
    assert_int_equal(fails, 0);
}

static void test_misc(void **state)
{
    (void)state;
    int fails = 0;
    for (int t = 0; t < 8000 && fails < 10; t++) {
        uint8_t code[16];
        struct cg_regs r;
        struct rmop o;
        unsigned sz = sizes[1 + cg_rnd() % 3], n, kind = cg_rnd() % 16;
        uint64_t fm = F_ARITH;
        random_regs(&r);
        rnd_rmop(&o, true);
        n = emit_prefix(code, sz, o.rexr, o.rexb);
        switch (kind) {
        case 0:     /* cmovcc */
            code[n++] = 0x0f;
            code[n++] = (uint8_t)(0x40 + cg_rnd() % 16);
            n += emit_modrm(code + n, &o, o.reg);
            break;
        case 1:     /* setcc */
            n = emit_prefix(code, 1, 0, o.rexb);
            code[n++] = 0x0f;
            code[n++] = (uint8_t)(0x90 + cg_rnd() % 16);
            n += emit_modrm(code + n, &o, 0);
            break;
        case 2:     /* movzx / movsx */
            code[n++] = 0x0f;
            code[n++] = (uint8_t)(0xb6 + (cg_rnd() % 2) + 8 * (cg_rnd() % 2));
            n += emit_modrm(code + n, &o, o.reg);
            break;
        case 3:     /* bt/bts/btr/btc r */
            o.mem = false;
            code[n++] = 0x0f;
            code[n++] = (uint8_t)(0xa3 + 8 * (cg_rnd() % 4));
            n += emit_modrm(code + n, &o, o.reg);
            fm = F_CF;
            break;
        case 4:     /* bt* imm */
            code[n++] = 0x0f;
            code[n++] = 0xba;
            n += emit_modrm(code + n, &o, 4 + cg_rnd() % 4);
            code[n++] = (uint8_t)cg_rnd();
            fm = F_CF;
            break;
        case 5:     /* bsf / bsr */
            code[n++] = 0x0f;
            code[n++] = (uint8_t)(0xbc + cg_rnd() % 2);
            n += emit_modrm(code + n, &o, o.reg);
            fm = F_ZF;
            break;
        case 6:     /* xchg / xadd / cmpxchg */
            switch (cg_rnd() % 3) {
            case 0: code[n++] = 0x87; break;
            case 1: code[n++] = 0x0f; code[n++] = 0xc1; break;
            default: code[n++] = 0x0f; code[n++] = 0xb1; break;
            }
            n += emit_modrm(code + n, &o, o.reg);
            break;
        case 7:     /* shld / shrd */
            o.mem = o.mem && sz != 2;
            code[n++] = 0x0f;
            code[n++] = (uint8_t)(0xa4 + 8 * (cg_rnd() % 2));
            n += emit_modrm(code + n, &o, o.reg);
            {
                unsigned cnt = (unsigned)(cg_rnd() % (sz == 2 ? 16 : sz * 8));
                code[n++] = (uint8_t)cnt;
                fm = F_ARITH & ~F_AF;
                if (cnt != 1)
                    fm &= ~F_OF;
                if (cnt == 0)
                    fm = F_ARITH;
            }
            break;
        case 8:     /* bswap */
            n = emit_prefix(code, sz == 2 ? 4 : sz, 0, o.rexb);
            code[n++] = 0x0f;
            code[n++] = (uint8_t)(0xc8 + o.rm);
            break;
        case 9:     /* cbw/cwde/cdqe, cwd/cdq/cqo, lahf, sahf, cmc, clc, stc */
            n = emit_prefix(code, sz, 0, 0);
            {
                static const uint8_t ops[] = { 0x98, 0x99, 0x9f, 0x9e, 0xf5, 0xf8, 0xf9 };
                code[n++] = ops[cg_rnd() % sizeof ops];
            }
            break;
        case 10:    /* test */
            code[n++] = 0x85;
            n += emit_modrm(code + n, &o, o.reg);
            fm = F_ARITH & ~F_AF;
            break;
        case 11:    /* lea with SIB */
            code[n++] = 0x8d;
            {
                unsigned base = rnd_reg(), idx = rnd_reg();
                code[n++] = (uint8_t)(0x44 | (o.reg & 7) << 3);
                code[n++] = (uint8_t)((cg_rnd() % 4) << 6 | idx << 3 | base);
                code[n++] = (uint8_t)cg_rnd();
            }
            break;
        case 12:    /* adc / sbb with random CF */
            code[n++] = (uint8_t)((cg_rnd() & 1 ? 0x11 : 0x19) + 2 * (cg_rnd() & 1));
            n += emit_modrm(code + n, &o, o.reg);
            break;
        case 13:    /* popcnt */
            code[0] = 0xf3;
            n = 1 + emit_prefix(code + 1, sz, o.rexr, o.rexb);
            code[n++] = 0x0f;
            code[n++] = 0xb8;
            n += emit_modrm(code + n, &o, o.reg);
            break;
        case 14:    /* mov forms */
            code[n++] = (uint8_t)(0x88 + cg_rnd() % 4);
            if ((code[n - 1] & 1) == 0) {
                n = emit_prefix(code, 1, o.rexr, o.rexb);
                code[n++] = (uint8_t)(0x88 + 2 * (cg_rnd() % 2));
            }
            n += emit_modrm(code + n, &o, o.reg);
            break;
        default:    /* movsxd */
            n = emit_prefix(code, 8, o.rexr, o.rexb);
            code[n++] = 0x63;
            n += emit_modrm(code + n, &o, o.reg);
            break;
        }
        fails += run_case(code, n, &r, fm, "misc");
    }
    assert_int_equal(fails, 0);
}

static void test_string(void **state)
{
    (void)state;
    int fails = 0;
    for (int t = 0; t < 3000 && fails < 10; t++) {
        uint8_t code[16];
        struct cg_regs r;
        unsigned sz = sizes[cg_rnd() % 4], n = 0, kind = cg_rnd() % 5;
        static const uint8_t ops[] = { 0xa4, 0xaa, 0xac, 0xa6, 0xae };
        random_regs(&r);
        r.gpr[6] = GBASE + DATA + 0x400 + cg_rnd() % 0x400;
        r.gpr[7] = GBASE + DATA + 0x800 + cg_rnd() % 0x400;
        r.gpr[1] = cg_rnd() % 40;
        r.flags &= ~F_DF;
        if (cg_rnd() % 4 == 0) {
            r.flags |= F_DF;
        }
        if (cg_rnd() % 8 == 0)      /* make compares stop early sometimes */
            memmove(ram + (r.gpr[7] - GBASE), ram + (r.gpr[6] - GBASE), 64);
        switch (cg_rnd() % 3) {
        case 0: break;
        case 1: code[n++] = 0xf3; break;
        default: code[n++] = 0xf2; break;
        }
        if (sz == 2)
            code[n++] = 0x66;
        if (sz == 8)
            code[n++] = 0x48;
        code[n++] = (uint8_t)(ops[kind] + (sz == 1 ? 0 : 1));
        fails += run_case(code, n, &r, F_ARITH | F_DF, "string");
    }
    assert_int_equal(fails, 0);
}

/* Branches: a conditional jump over an instruction, after a flag-setting op. */
static void test_branch(void **state)
{
    (void)state;
    int fails = 0;
    for (int t = 0; t < 3000 && fails < 10; t++) {
        uint8_t code[32];
        struct cg_regs r;
        unsigned n = 0, cc = cg_rnd() % 16, op = cg_rnd() % 8;
        random_regs(&r);
        code[n++] = 0x48;
        code[n++] = (uint8_t)(op * 8 + 1);
        code[n++] = 0xc8 | (uint8_t)(cg_rnd() % 3) << 3;     /* op rax, rcx/rdx/rbx */
        if (cg_rnd() & 1) {
            code[n++] = (uint8_t)(0x70 + cc);
            code[n++] = 3;
        } else {
            code[n++] = 0x0f;
            code[n++] = (uint8_t)(0x80 + cc);
            code[n++] = 3;
            code[n++] = 0;
            code[n++] = 0;
            code[n++] = 0;
        }
        code[n++] = 0x48;       /* inc rsi (skipped when taken) */
        code[n++] = 0xff;
        code[n++] = 0xc6;
        if (cg_rnd() & 1) {        /* loop over dec rcx with loop */
            r.gpr[1] = 1 + cg_rnd() % 5;  /* 0 would loop 2^64 times natively */
            code[n++] = 0x48; code[n++] = 0xff; code[n++] = 0xc7;   /* inc rdi */
            code[n++] = 0xe2; code[n++] = 0xfb;                     /* loop -5 */
        }
        fails += run_case(code, n, &r, F_ARITH & ~F_AF, "branch");
    }
    assert_int_equal(fails, 0);
}

/* SSE/SSE2: xmm0..xmm3 are loaded from the data area, the instruction runs, and they are
 * stored back, so the data comparison covers the registers. */
static void test_sse(void **state)
{
    static const struct { uint8_t pfx, op; bool imm, fp; } forms[] = {
        { 0, 0x10, 0, 0 }, { 0xf3, 0x10, 0, 0 }, { 0xf2, 0x10, 0, 0 }, { 0x66, 0x10, 0, 0 }, { 0, 0x28, 0, 0 },
        { 0, 0x14, 0, 0 }, { 0, 0x15, 0, 0 }, { 0x66, 0x14, 0, 0 }, { 0x66, 0x15, 0, 0 },
        { 0, 0x54, 0, 0 }, { 0, 0x55, 0, 0 }, { 0, 0x56, 0, 0 }, { 0, 0x57, 0, 0 }, { 0x66, 0x57, 0, 0 },
        { 0, 0x58, 0, 1 }, { 0x66, 0x58, 0, 1 }, { 0xf3, 0x58, 0, 1 }, { 0xf2, 0x58, 0, 1 },
        { 0, 0x59, 0, 1 }, { 0xf2, 0x59, 0, 1 }, { 0, 0x5c, 0, 1 }, { 0xf2, 0x5c, 0, 1 },
        { 0, 0x5e, 0, 1 }, { 0xf2, 0x5e, 0, 1 }, { 0, 0x5d, 0, 1 }, { 0x66, 0x5f, 0, 1 },
        { 0xf3, 0x5a, 0, 1 }, { 0xf2, 0x5a, 0, 1 }, { 0, 0x5b, 0, 1 }, { 0xf3, 0x5b, 0, 1 },
        { 0x66, 0x5b, 0, 1 }, { 0xf2, 0x51, 0, 1 }, { 0, 0x51, 0, 1 },
        { 0, 0xc2, 1, 1 }, { 0xf2, 0xc2, 1, 1 }, { 0, 0xc6, 1, 0 }, { 0x66, 0xc6, 1, 0 },
        { 0x66, 0x60, 0, 0 }, { 0x66, 0x61, 0, 0 }, { 0x66, 0x62, 0, 0 }, { 0x66, 0x63, 0, 0 }, { 0x66, 0x64, 0, 0 },
        { 0x66, 0x65, 0, 0 }, { 0x66, 0x66, 0, 0 }, { 0x66, 0x67, 0, 0 }, { 0x66, 0x68, 0, 0 }, { 0x66, 0x69, 0, 0 },
        { 0x66, 0x6a, 0, 0 }, { 0x66, 0x6b, 0, 0 }, { 0x66, 0x6c, 0, 0 }, { 0x66, 0x6d, 0, 0 }, { 0x66, 0x6f, 0, 0 },
        { 0xf3, 0x6f, 0, 0 }, { 0x66, 0x70, 1, 0 }, { 0xf3, 0x70, 1, 0 }, { 0xf2, 0x70, 1, 0 },
        { 0x66, 0x74, 0, 0 }, { 0x66, 0x75, 0, 0 }, { 0x66, 0x76, 0, 0 }, { 0xf3, 0x7e, 0, 0 }, { 0x66, 0xd1, 0, 0 },
        { 0x66, 0xd2, 0, 0 }, { 0x66, 0xd3, 0, 0 }, { 0x66, 0xd4, 0, 0 }, { 0x66, 0xd5, 0, 0 }, { 0x66, 0xd8, 0, 0 },
        { 0x66, 0xd9, 0, 0 }, { 0x66, 0xda, 0, 0 }, { 0x66, 0xdb, 0, 0 }, { 0x66, 0xdc, 0, 0 }, { 0x66, 0xdd, 0, 0 },
        { 0x66, 0xde, 0, 0 }, { 0x66, 0xdf, 0, 0 }, { 0x66, 0xe0, 0, 0 }, { 0x66, 0xe1, 0, 0 }, { 0x66, 0xe2, 0, 0 },
        { 0x66, 0xe3, 0, 0 }, { 0x66, 0xe4, 0, 0 }, { 0x66, 0xe5, 0, 0 }, { 0x66, 0xe6, 0, 1 },
        { 0xf3, 0xe6, 0, 1 }, { 0xf2, 0xe6, 0, 1 }, { 0x66, 0xe8, 0, 0 },
        { 0x66, 0xe9, 0, 0 }, { 0x66, 0xea, 0, 0 }, { 0x66, 0xeb, 0, 0 }, { 0x66, 0xec, 0, 0 }, { 0x66, 0xed, 0, 0 },
        { 0x66, 0xee, 0, 0 }, { 0x66, 0xef, 0, 0 }, { 0x66, 0xf1, 0, 0 }, { 0x66, 0xf2, 0, 0 }, { 0x66, 0xf3, 0, 0 },
        { 0x66, 0xf4, 0, 0 }, { 0x66, 0xf5, 0, 0 }, { 0x66, 0xf6, 0, 0 }, { 0x66, 0xf8, 0, 0 }, { 0x66, 0xf9, 0, 0 },
        { 0x66, 0xfa, 0, 0 }, { 0x66, 0xfb, 0, 0 }, { 0x66, 0xfc, 0, 0 }, { 0x66, 0xfd, 0, 0 }, { 0x66, 0xfe, 0, 0 },
        { 0, 0x2e, 0, 1 }, { 0x66, 0x2f, 0, 1 }, { 0x66, 0x2e, 0, 1 },
    };
    (void)state;
    int fails = 0;
    for (int t = 0; t < 6000 && fails < 10; t++) {
        uint8_t code[64];
        struct cg_regs r;
        unsigned n = 0, f = (unsigned)(cg_rnd() % (sizeof forms / sizeof forms[0]));
        random_regs(&r);
        if (forms[f].fp || cg_rnd() % 2) {
            /* floating-point inputs: ordinary numbers, some equal, few NaNs */
            for (unsigned k = 0; k < 0x200; k += 8) {
                double v = (double)(int64_t)(cg_rnd() % 2001 - 1000) / (double)(1 + cg_rnd() % 16);
                if (cg_rnd() % 2) {
                    float a = (float)v, b = (float)(v * 0.5);
                    memcpy(ram + DATA + 0xf00 + k, &a, 4);
                    memcpy(ram + DATA + 0xf04 + k, &b, 4);
                } else {
                    memcpy(ram + DATA + 0xf00 + k, &v, 8);
                }
            }
        }
        for (unsigned x = 0; x < 4; x++) {      /* movdqu xmmX, [rbx - 0x100 + 16X] */
            code[n++] = 0xf3; code[n++] = 0x0f; code[n++] = 0x6f;
            code[n++] = (uint8_t)(0x43 | x << 3); code[n++] = (uint8_t)(0x00 + 16 * x);
        }
        if (forms[f].pfx)
            code[n++] = forms[f].pfx;
        code[n++] = 0x0f;
        code[n++] = forms[f].op;
        if (cg_rnd() % 3 == 0 && forms[f].op != 0x10) {
            code[n++] = (uint8_t)(0x43 | (cg_rnd() % 4) << 3);        /* [rbx + disp8] */
            code[n++] = (uint8_t)(0x10 * (cg_rnd() % 8));
        } else {
            code[n++] = (uint8_t)(0xc0 | (cg_rnd() % 4) << 3 | (cg_rnd() % 4));
        }
        if (forms[f].imm)
            code[n++] = (uint8_t)(forms[f].op == 0xc2 ? cg_rnd() % 8 : cg_rnd());
        for (unsigned x = 0; x < 4; x++) {      /* movdqu [rbx + 0x40 + 16X], xmmX */
            code[n++] = 0xf3; code[n++] = 0x0f; code[n++] = 0x7f;
            code[n++] = (uint8_t)(0x43 | x << 3); code[n++] = (uint8_t)(0x40 + 16 * x);
        }
        r.gpr[3] = GBASE + DATA + 0xf00;
        fails += run_case(code, n, &r, F_ARITH, "sse");
    }
    assert_int_equal(fails, 0);
}

/* ---- SSE3 and later: directed forms, edge values, the host's CPU as the oracle ---- */

enum { FEAT_SSE3, FEAT_SSSE3, FEAT_SSE41, FEAT_SSE42 };
enum { DT_INT, DT_F32, DT_F64 };
/* rm kinds: an xmm register or memory; memory only; register only; a general register or
 * memory (PEXTR*, PINSR*, EXTRACTPS); a general register only */
enum { RM_ANY, RM_MEM, RM_REG, RM_GPR, RM_GPR_REG };

struct xform {
    const char *name;
    uint8_t pfx, map, op;       /* map: 0 = 0F, 0x38 = 0F 38, 0x3a = 0F 3A */
    uint8_t imm, dt, rm, feat;
    uint8_t rexw, unal, mxcsr;  /* REX.W; memory operand need not be aligned; random MXCSR.RC */
};

static bool host_has(unsigned feat)
{
    __builtin_cpu_init();
    switch (feat) {
    case FEAT_SSE3: return __builtin_cpu_supports("sse3");
    case FEAT_SSSE3: return __builtin_cpu_supports("ssse3");
    case FEAT_SSE41: return __builtin_cpu_supports("sse4.1");
    default: return __builtin_cpu_supports("sse4.2");
    }
}

static const char *const feat_name[] = { "SSE3", "SSSE3", "SSE4.1", "SSE4.2" };

/* Lane values where results go wrong: signed zeros, halves (rounding), integers at the
 * edge of exact representation, infinities, quiet and signalling NaNs with payloads,
 * denormals, the extremes. */
static uint32_t rnd_f32(void)
{
    static const uint32_t edge[] = {
        0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x3f000000, 0xbf000000, 0x3fc00000,
        0xbfc00000, 0x40200000, 0xc0200000, 0x40600000, 0x3effffff, 0x4b000000, 0xcb000001,
        0x4afffffe, 0x4affffff, 0x7f7fffff, 0xff7fffff, 0x00800000, 0x00000001, 0x807fffff,
        0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7fc12345, 0xffc00001, 0x7f800001,
        0xff812345, 0x7fbfffff, 0x4f000000, 0xcf000000, 0x5f000000 };
    float f;
    uint32_t u;
    switch (cg_rnd() % 4) {
    case 0: case 1: return edge[cg_rnd() % (sizeof edge / sizeof edge[0])];
    case 2:
        f = (float)((int)(cg_rnd() % 20001) - 10000) / (float)(1 + cg_rnd() % 8);
        memcpy(&u, &f, 4);
        return u;
    default: return (uint32_t)cg_rnd();
    }
}

static uint64_t rnd_f64(void)
{
    static const uint64_t edge[] = {
        0, 0x8000000000000000ULL, 0x3ff0000000000000ULL, 0xbff0000000000000ULL,
        0x3fe0000000000000ULL, 0xbfe0000000000000ULL, 0x3ff8000000000000ULL,
        0xbff8000000000000ULL, 0x4004000000000000ULL, 0xc004000000000000ULL,
        0x3fdfffffffffffffULL, 0x4330000000000000ULL, 0xc330000000000001ULL,
        0x432fffffffffffffULL, 0x4337ffffffffffffULL, 0x7fefffffffffffffULL,
        0x0010000000000000ULL, 0x0000000000000001ULL, 0x800fffffffffffffULL,
        0x7ff0000000000000ULL, 0xfff0000000000000ULL, 0x7ff8000000000000ULL,
        0xfff8000000000000ULL, 0x7ff8000012345678ULL, 0x7ff0000000000001ULL,
        0xfff4000000000000ULL, 0x7ff7ffffffffffffULL, 0x43e0000000000000ULL };
    double d;
    uint64_t u;
    switch (cg_rnd() % 4) {
    case 0: case 1: return edge[cg_rnd() % (sizeof edge / sizeof edge[0])];
    case 2:
        d = (double)(int64_t)(cg_rnd() % 2000001 - 1000000) / (double)(1 + cg_rnd() % 16);
        memcpy(&u, &d, 8);
        return u;
    default: return cg_rnd();
    }
}

static uint8_t rnd_int8(void)
{
    static const uint8_t edge[] = { 0, 1, 0x7f, 0x80, 0x81, 0xff, 0xfe, 0x40, 0x0f, 0x8f };
    return cg_rnd() % 2 ? edge[cg_rnd() % sizeof edge] : (uint8_t)cg_rnd();
}

/* 0x100 bytes at @p: 16 vectors of lanes of type @dt (integer vectors get edge bytes,
 * words and dwords so saturation and sign cases come up) */
static void fill_vectors(uint8_t *p, unsigned dt)
{
    for (unsigned k = 0; k < 0x100; k += 8) {
        uint64_t v;
        uint32_t a, b;
        if (dt == DT_F64 || (dt == DT_INT && cg_rnd() % 4 == 0)) {
            v = rnd_f64();
        } else if (dt == DT_F32) {
            a = rnd_f32();
            b = rnd_f32();
            v = a | (uint64_t)b << 32;
        } else {
            static const uint16_t we[] = { 0, 1, 0x7fff, 0x8000, 0x8001, 0xffff, 0x4000,
                                           0xc000, 0x00ff, 0xff00 };
            v = 0;
            switch (cg_rnd() % 3) {
            case 0:
                for (unsigned j = 0; j < 8; j++)
                    v |= (uint64_t)rnd_int8() << 8 * j;
                break;
            case 1:
                for (unsigned j = 0; j < 4; j++)
                    v |= (uint64_t)(cg_rnd() % 2 ? we[cg_rnd() % 10] : (uint16_t)cg_rnd()) << 16 * j;
                break;
            default:
                v = rnd_operand();
                break;
            }
        }
        memcpy(p + k, &v, 8);
    }
    if (cg_rnd() % 8 == 0)      /* equal vectors: PTEST, compares, min/max ties */
        memcpy(p + 16 * (cg_rnd() % 8), p + 16 * (cg_rnd() % 8), 16);
}

static unsigned rnd_gpr(unsigned rexb)
{
    static const unsigned lo[] = { 0, 1, 2, 5, 6, 7 };
    return rexb ? cg_rnd() % 8 : lo[cg_rnd() % 6];
}

/* xmm0-3 and xmm8-11 loaded from [rbx + 0..0x70], the instruction (memory operands in
 * the same 0x80 bytes), every register stored to [rbx + 0x100..0x170]; rbx = DATA + 0xf00.
 * With @f->mxcsr the instruction runs under a random MXCSR (rounding control). */
static int xform_case(const struct xform *f)
{
    uint8_t code[192];
    struct cg_regs r;
    unsigned n = 0, reg, rm, rexr = cg_rnd() & 1, rexb = cg_rnd() & 1, rex;
    bool mem;
    uint8_t *base = ram + DATA + 0xf00;

    random_regs(&r);
    r.gpr[3] = GBASE + DATA + 0xf00;
    fill_vectors(base, f->dt);
    memset(base + 0x100, 0, 0x100);
    for (unsigned x = 0; x < 8; x++) {          /* movdqu xmm, [rbx + 16x] */
        code[n++] = 0xf3;
        if (x >= 4)
            code[n++] = 0x44;
        code[n++] = 0x0f; code[n++] = 0x6f;
        code[n++] = (uint8_t)(0x43 | (x & 3) << 3); code[n++] = (uint8_t)(16 * x);
    }
    if (f->mxcsr) {                             /* ldmxcsr [rbx + 0x1f0] */
        uint32_t mx = 0x1f80 | (uint32_t)(cg_rnd() % 4) << 13;
        memcpy(base + 0x1f0, &mx, 4);
        mx = 0x1f80;
        memcpy(base + 0x1f8, &mx, 4);
        code[n++] = 0x0f; code[n++] = 0xae; code[n++] = 0x93;
        code[n++] = 0xf0; code[n++] = 0x01; code[n++] = 0; code[n++] = 0;
    }
    mem = f->rm == RM_MEM || ((f->rm == RM_ANY || f->rm == RM_GPR) && cg_rnd() % 3 == 0);
    if (mem)
        rexb = 0;
    reg = (unsigned)(cg_rnd() % 4);
    rm = f->rm >= RM_GPR ? rnd_gpr(rexb) : (unsigned)(cg_rnd() % 4);
    if (f->pfx)
        code[n++] = f->pfx;
    rex = (f->rexw ? 8 : 0) | rexr << 2 | rexb;
    if (rex)
        code[n++] = (uint8_t)(0x40 | rex);
    code[n++] = 0x0f;
    if (f->map)
        code[n++] = f->map;
    code[n++] = f->op;
    if (mem) {
        code[n++] = (uint8_t)(0x43 | reg << 3);
        code[n++] = (uint8_t)(16 * (cg_rnd() % 7) + (f->unal ? cg_rnd() % 16 : 0));
    } else {
        code[n++] = (uint8_t)(0xc0 | reg << 3 | rm);
    }
    if (f->imm)
        code[n++] = (uint8_t)cg_rnd();
    if (f->mxcsr) {                             /* ldmxcsr [rbx + 0x1f8] */
        code[n++] = 0x0f; code[n++] = 0xae; code[n++] = 0x93;
        code[n++] = 0xf8; code[n++] = 0x01; code[n++] = 0; code[n++] = 0;
    }
    for (unsigned x = 0; x < 8; x++) {          /* movdqu [rbx + 0x100 + 16x], xmm */
        code[n++] = 0xf3;
        if (x >= 4)
            code[n++] = 0x44;
        code[n++] = 0x0f; code[n++] = 0x7f;
        code[n++] = (uint8_t)(0x83 | (x & 3) << 3);
        code[n++] = (uint8_t)(16 * x); code[n++] = 0x01; code[n++] = 0; code[n++] = 0;
    }
    return run_case(code, n, &r, F_ARITH, f->name);
}

static const struct xform xforms[] = {
    /* SSE3 */
    { "addsubps", 0xf2, 0, 0xd0, 0, DT_F32, RM_ANY, FEAT_SSE3, 0, 0, 0 },
    { "addsubpd", 0x66, 0, 0xd0, 0, DT_F64, RM_ANY, FEAT_SSE3, 0, 0, 0 },
    { "haddps", 0xf2, 0, 0x7c, 0, DT_F32, RM_ANY, FEAT_SSE3, 0, 0, 0 },
    { "haddpd", 0x66, 0, 0x7c, 0, DT_F64, RM_ANY, FEAT_SSE3, 0, 0, 0 },
    { "hsubps", 0xf2, 0, 0x7d, 0, DT_F32, RM_ANY, FEAT_SSE3, 0, 0, 0 },
    { "hsubpd", 0x66, 0, 0x7d, 0, DT_F64, RM_ANY, FEAT_SSE3, 0, 0, 0 },
    { "movddup", 0xf2, 0, 0x12, 0, DT_F64, RM_ANY, FEAT_SSE3, 0, 1, 0 },
    { "movsldup", 0xf3, 0, 0x12, 0, DT_F32, RM_ANY, FEAT_SSE3, 0, 0, 0 },
    { "movshdup", 0xf3, 0, 0x16, 0, DT_F32, RM_ANY, FEAT_SSE3, 0, 0, 0 },
    { "lddqu", 0xf2, 0, 0xf0, 0, DT_INT, RM_MEM, FEAT_SSE3, 0, 1, 0 },
    /* SSSE3 (66-prefixed XMM forms) */
    { "pshufb", 0x66, 0x38, 0x00, 0, DT_INT, RM_ANY, FEAT_SSSE3, 0, 0, 0 },
    { "phaddw", 0x66, 0x38, 0x01, 0, DT_INT, RM_ANY, FEAT_SSSE3, 0, 0, 0 },
    { "phaddd", 0x66, 0x38, 0x02, 0, DT_INT, RM_ANY, FEAT_SSSE3, 0, 0, 0 },
    { "phaddsw", 0x66, 0x38, 0x03, 0, DT_INT, RM_ANY, FEAT_SSSE3, 0, 0, 0 },
    { "pmaddubsw", 0x66, 0x38, 0x04, 0, DT_INT, RM_ANY, FEAT_SSSE3, 0, 0, 0 },
    { "phsubw", 0x66, 0x38, 0x05, 0, DT_INT, RM_ANY, FEAT_SSSE3, 0, 0, 0 },
    { "phsubd", 0x66, 0x38, 0x06, 0, DT_INT, RM_ANY, FEAT_SSSE3, 0, 0, 0 },
    { "phsubsw", 0x66, 0x38, 0x07, 0, DT_INT, RM_ANY, FEAT_SSSE3, 0, 0, 0 },
    { "psignb", 0x66, 0x38, 0x08, 0, DT_INT, RM_ANY, FEAT_SSSE3, 0, 0, 0 },
    { "psignw", 0x66, 0x38, 0x09, 0, DT_INT, RM_ANY, FEAT_SSSE3, 0, 0, 0 },
    { "psignd", 0x66, 0x38, 0x0a, 0, DT_INT, RM_ANY, FEAT_SSSE3, 0, 0, 0 },
    { "pmulhrsw", 0x66, 0x38, 0x0b, 0, DT_INT, RM_ANY, FEAT_SSSE3, 0, 0, 0 },
    { "pabsb", 0x66, 0x38, 0x1c, 0, DT_INT, RM_ANY, FEAT_SSSE3, 0, 0, 0 },
    { "pabsw", 0x66, 0x38, 0x1d, 0, DT_INT, RM_ANY, FEAT_SSSE3, 0, 0, 0 },
    { "pabsd", 0x66, 0x38, 0x1e, 0, DT_INT, RM_ANY, FEAT_SSSE3, 0, 0, 0 },
    { "palignr", 0x66, 0x3a, 0x0f, 1, DT_INT, RM_ANY, FEAT_SSSE3, 0, 0, 0 },
    /* SSE4.1 */
    { "pblendvb", 0x66, 0x38, 0x10, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "blendvps", 0x66, 0x38, 0x14, 0, DT_F32, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "blendvpd", 0x66, 0x38, 0x15, 0, DT_F64, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "ptest", 0x66, 0x38, 0x17, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "pmovsxbw", 0x66, 0x38, 0x20, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 1, 0 },
    { "pmovsxbd", 0x66, 0x38, 0x21, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 1, 0 },
    { "pmovsxbq", 0x66, 0x38, 0x22, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 1, 0 },
    { "pmovsxwd", 0x66, 0x38, 0x23, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 1, 0 },
    { "pmovsxwq", 0x66, 0x38, 0x24, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 1, 0 },
    { "pmovsxdq", 0x66, 0x38, 0x25, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 1, 0 },
    { "pmuldq", 0x66, 0x38, 0x28, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "pcmpeqq", 0x66, 0x38, 0x29, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "movntdqa", 0x66, 0x38, 0x2a, 0, DT_INT, RM_MEM, FEAT_SSE41, 0, 0, 0 },
    { "packusdw", 0x66, 0x38, 0x2b, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "pmovzxbw", 0x66, 0x38, 0x30, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 1, 0 },
    { "pmovzxbd", 0x66, 0x38, 0x31, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 1, 0 },
    { "pmovzxbq", 0x66, 0x38, 0x32, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 1, 0 },
    { "pmovzxwd", 0x66, 0x38, 0x33, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 1, 0 },
    { "pmovzxwq", 0x66, 0x38, 0x34, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 1, 0 },
    { "pmovzxdq", 0x66, 0x38, 0x35, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 1, 0 },
    { "pminsb", 0x66, 0x38, 0x38, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "pminsd", 0x66, 0x38, 0x39, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "pminuw", 0x66, 0x38, 0x3a, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "pminud", 0x66, 0x38, 0x3b, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "pmaxsb", 0x66, 0x38, 0x3c, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "pmaxsd", 0x66, 0x38, 0x3d, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "pmaxuw", 0x66, 0x38, 0x3e, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "pmaxud", 0x66, 0x38, 0x3f, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "pmulld", 0x66, 0x38, 0x40, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "phminposuw", 0x66, 0x38, 0x41, 0, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "roundps", 0x66, 0x3a, 0x08, 1, DT_F32, RM_ANY, FEAT_SSE41, 0, 0, 1 },
    { "roundpd", 0x66, 0x3a, 0x09, 1, DT_F64, RM_ANY, FEAT_SSE41, 0, 0, 1 },
    { "roundss", 0x66, 0x3a, 0x0a, 1, DT_F32, RM_ANY, FEAT_SSE41, 0, 1, 1 },
    { "roundsd", 0x66, 0x3a, 0x0b, 1, DT_F64, RM_ANY, FEAT_SSE41, 0, 1, 1 },
    { "blendps", 0x66, 0x3a, 0x0c, 1, DT_F32, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "blendpd", 0x66, 0x3a, 0x0d, 1, DT_F64, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "pblendw", 0x66, 0x3a, 0x0e, 1, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "pextrb", 0x66, 0x3a, 0x14, 1, DT_INT, RM_GPR, FEAT_SSE41, 0, 1, 0 },
    { "pextrb.w", 0x66, 0x3a, 0x14, 1, DT_INT, RM_GPR, FEAT_SSE41, 1, 1, 0 },
    { "pextrw", 0x66, 0x3a, 0x15, 1, DT_INT, RM_GPR, FEAT_SSE41, 0, 1, 0 },
    { "pextrd", 0x66, 0x3a, 0x16, 1, DT_INT, RM_GPR, FEAT_SSE41, 0, 1, 0 },
    { "pextrq", 0x66, 0x3a, 0x16, 1, DT_INT, RM_GPR, FEAT_SSE41, 1, 1, 0 },
    { "extractps", 0x66, 0x3a, 0x17, 1, DT_F32, RM_GPR, FEAT_SSE41, 0, 1, 0 },
    { "extractps.w", 0x66, 0x3a, 0x17, 1, DT_F32, RM_GPR, FEAT_SSE41, 1, 1, 0 },
    { "pinsrb", 0x66, 0x3a, 0x20, 1, DT_INT, RM_GPR, FEAT_SSE41, 0, 1, 0 },
    { "insertps", 0x66, 0x3a, 0x21, 1, DT_F32, RM_ANY, FEAT_SSE41, 0, 1, 0 },
    { "pinsrd", 0x66, 0x3a, 0x22, 1, DT_INT, RM_GPR, FEAT_SSE41, 0, 1, 0 },
    { "pinsrq", 0x66, 0x3a, 0x22, 1, DT_INT, RM_GPR, FEAT_SSE41, 1, 1, 0 },
    { "dpps", 0x66, 0x3a, 0x40, 1, DT_F32, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "dppd", 0x66, 0x3a, 0x41, 1, DT_F64, RM_ANY, FEAT_SSE41, 0, 0, 0 },
    { "mpsadbw", 0x66, 0x3a, 0x42, 1, DT_INT, RM_ANY, FEAT_SSE41, 0, 0, 0 },
};

static void test_sse_ext(void **state)
{
    (void)state;
    unsigned nf = sizeof xforms / sizeof xforms[0];
    int fails = 0;
    for (unsigned ft = 0; ft < 4; ft++)
        if (!host_has(ft))
            fprintf(stderr, "host CPU lacks %s: its forms are not compared\n", feat_name[ft]);
    for (unsigned f = 0; f < nf && fails < 10; f++) {
        if (!host_has(xforms[f].feat))
            continue;
        for (int t = 0; t < 400 && fails < 10; t++)
            fails += xform_case(&xforms[f]);
    }
    assert_int_equal(fails, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alu),
        cmocka_unit_test(test_unary),
        cmocka_unit_test(test_shift),
        cmocka_unit_test(test_rotate_after_alu),
        cmocka_unit_test(test_muldiv),
        cmocka_unit_test(test_misc),
        cmocka_unit_test(test_string),
        cmocka_unit_test(test_branch),
        cmocka_unit_test(test_sse),
        cmocka_unit_test(test_sse_ext),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
