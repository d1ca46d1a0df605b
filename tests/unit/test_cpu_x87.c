/* x87 in the x86 emulator, differential against the host CPU (as test_cpu_diff.c): the
 * same instruction sequences run natively and emulated (64-bit mode, CPL 0), then GPRs,
 * arithmetic flags and the data area are compared. Each sequence ends with FXSAVE into the
 * data area, so FCW, FSW (C0-C3, TOP, exception flags), the tag word and ST0-ST7 are
 * compared too; the pointer fields (FOP/FIP/FDP), MXCSR and the XMM area are masked.
 * Plus: the FNSTENV/FNSAVE layouts, FXSAVE/FXRSTOR round trips, #NM/#UD/#MF rules, CPUID.
 * VMCORE_TEST_SEED reproduces a run; a failing case prints its bytes. */
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

#define GBASE 0x68000000ULL         /* host address == guest linear address of gpa 0 (not
                                     * 0x58000000, where valgrind loads) */
#define GSIZE (4u << 20)
#define CODE 0x100000u              /* gpa of the code snippet */
#define DATA 0x180000u              /* gpa of the data area (8 KiB) */
#define DATA_LEN 0x2000u
#define OPS 0x1000u                 /* data offset of the operands: RBX points here */
#define FXA 0x0000u                 /* data offset of the FXSAVE area */
#define ENV 0x0400u                 /* data offset of FNSTENV/FNSAVE images */
#define STACK 0x1f0000u
#define IDT CG_IDT
#define HANDLERS CG_HANDLERS        /* vector v: mov eax, v; hlt (16 bytes apart) */
#define GDT CG_GDT

#define F_ARITH UINT64_C(0x8d5)

static uint8_t *ram;
static struct cpu *cpu;
static uint8_t data_init[DATA_LEN], data_native[DATA_LEN], ignore[DATA_LEN];

static int setup(void **state)
{
    (void)state;
    ram = cg_map_ram(GBASE, GSIZE);
    if (!ram)
        return -1;
    cg_map_linear_2m(ram, GBASE);
    cg_write_gdt_idt(ram, GBASE);
    cpu = cpu_new(ram, GSIZE, NULL);
    if (!cpu)
        return -1;
    cg_seed(0x87a1b2c3d4ULL);
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
    cg_long_mode_state(st, 0x80000033);   /* PG, NE, ET, MP, PE */
    st->gdt_base = GBASE + GDT;
    st->gdt_limit = sizeof(uint64_t) * 3 - 1;
    st->idt_base = GBASE + IDT;
    st->idt_limit = 32 * 16 - 1;
}

/* Run @code emulated from @in with CR0 = @cr0 (0: the default); returns the exit and
 * leaves the final state in *out. */
static enum cpu_exit run_emu(const uint8_t *code, unsigned n, const struct cg_regs *in,
                             uint64_t cr0, struct cpu_state *out)
{
    struct cpu_state st;
    memcpy(ram + CODE, code, n);
    ram[CODE + n] = 0xf4;   /* hlt */
    cpu_invalidate_ram(cpu, CODE, n + 1);
    long_mode_state(&st);
    if (cr0)
        st.cr0 = cr0;
    memcpy(st.gpr, in->gpr, sizeof st.gpr);
    st.gpr[4] = GBASE + STACK;
    st.rip = GBASE + CODE;
    st.rflags = in->flags | 2;
    cpu_set_state(cpu, &st);
    enum cpu_exit e = cpu_run(cpu, 100000);
    cpu_get_state(cpu, out);
    return e;
}

static void hexdump(const uint8_t *b, unsigned n, char *out)
{
    for (unsigned k = 0; k < n && k < 100; k++)
        out += sprintf(out, "%02x ", b[k]);
}

/* Bytes of the data area not compared: FXSAVE's pointers, MXCSR and XMM area, the
 * register slots' reserved bytes, and FNSTENV/FNSAVE pointer fields (set by the case). */
static void ignore_fxsave(void)
{
    memset(ignore, 0, sizeof ignore);
    memset(ignore + FXA + 6, 1, 26);
    memset(ignore + FXA + 160, 1, 512 - 160);
    for (unsigned i = 0; i < 8; i++)
        memset(ignore + FXA + 32 + 16 * i + 10, 1, 6);
}

/* Run @code (n bytes) natively and emulated from @in; compare. */
static int run_case(const uint8_t *code, unsigned n, const struct cg_regs *in, const char *what)
{
    struct cg_regs nat = *in;
    struct cpu_state st;
    char hex[3 * 100 + 1];
    int bad = 0;

    memcpy(data_init, ram + DATA, DATA_LEN);
    memcpy(ram + CODE, code, n);
    ram[CODE + n] = 0xc3;   /* ret */
    nat.target = GBASE + CODE;
    cg_run_native(&nat);
    memcpy(data_native, ram + DATA, DATA_LEN);
    memcpy(ram + DATA, data_init, DATA_LEN);

    enum cpu_exit e = run_emu(code, n, in, 0, &st);
    hexdump(code, n, hex);
    if (e != CPU_EXIT_HLT || st.rip != GBASE + CODE + n + 1) {
        fprintf(stderr, "%s [%s]: exit %d rip 0x%" PRIx64 " (%s)\n", what, hex, e, st.rip,
                cpu_error(cpu));
        memcpy(ram + DATA, data_init, DATA_LEN);
        return 1;
    }
    for (int r = 0; r < 16; r++) {
        if (r != 4 && st.gpr[r] != nat.gpr[r]) {
            fprintf(stderr, "%s [%s]: r%d emu 0x%" PRIx64 " native 0x%" PRIx64 "\n", what,
                    hex, r, st.gpr[r], nat.gpr[r]);
            bad = 1;
        }
    }
    if ((st.rflags & F_ARITH) != (nat.flags & F_ARITH)) {
        fprintf(stderr, "%s [%s]: flags emu 0x%" PRIx64 " native 0x%" PRIx64 "\n", what, hex,
                st.rflags & F_ARITH, nat.flags & F_ARITH);
        bad = 1;
    }
    for (unsigned k = 0; k < DATA_LEN; k++)
        if (!ignore[k] && ram[DATA + k] != data_native[k]) {
            fprintf(stderr, "%s [%s]: data+0x%x emu %02x native %02x\n", what, hex, k,
                    ram[DATA + k], data_native[k]);
            bad = 1;
            break;
        }
    memcpy(ram + DATA, data_init, DATA_LEN);
    return bad;
}

/* ---- operands ---- */

static void put_f64(unsigned off, double d)
{
    memcpy(ram + DATA + OPS + off, &d, 8);
}

/* A value worth computing with, as 8 bytes: doubles, pairs of floats, integers, edges. */
static void rnd_slot(unsigned off)
{
    static const double dv[] = { 0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0, -7.25, 1e300, -1e300,
                                 1e-310, -4.9e-324, 1.7976931348623157e308, 0.1, 1e10,
                                 3.141592653589793, 2.5, -2.5, 1.5, 65535.0, -32768.5 };
    uint64_t v;
    switch (cg_rnd() % 8) {
    case 0: case 1:
        put_f64(off, dv[cg_rnd() % (sizeof dv / sizeof dv[0])]);
        return;
    case 2:
        put_f64(off, (double)(int64_t)(cg_rnd() % 2000001) / 1000.0 - 1000.0);
        return;
    case 3: {
        static const uint64_t sp[] = { 0x7ff0000000000000ULL, 0xfff0000000000000ULL,
                                       0x7ff8000000000000ULL, 0x7ff4000000000000ULL,
                                       0xfff8000000000001ULL, 0x8000000000000000ULL,
                                       0x7f8000007fc00000ULL, 0x7fa0000080000001ULL,
                                       0x0000000100000000ULL, 0xffffffffffffffffULL,
                                       0x7fffffffffffffffULL, 0x0000000000008000ULL };
        v = sp[cg_rnd() % (sizeof sp / sizeof sp[0])];
        break;
    }
    case 4: {
        float f[2] = { (float)((int)(cg_rnd() % 20001) - 10000) / 16.0f,
                       (float)((int)(cg_rnd() % 200) - 100) };
        memcpy(&v, f, 8);
        break;
    }
    case 5:
        v = (uint64_t)(int64_t)((int)(cg_rnd() % 70001) - 35000);
        break;
    default:
        v = cg_rnd();
        break;
    }
    memcpy(ram + DATA + OPS + off, &v, 8);
}

/* ---- instruction generation ---- */

/* Register forms a current CPU executes (the SDM's map plus the undocumented aliases, as
 * probed on the host with a SIGILL handler). */
static bool valid_reg(unsigned esc, unsigned m)
{
    switch (esc) {
    case 0xd8: case 0xdc: return true;
    case 0xd9:
        return m <= 0xd0 || (m >= 0xd8 && m <= 0xe1) || m == 0xe4 || m == 0xe5 ||
               (m >= 0xe8 && m <= 0xee) || m >= 0xf0;
    case 0xda: return m < 0xe0 || m == 0xe9;
    case 0xdb: return m < 0xe5 || (m >= 0xe8 && m < 0xf8);
    case 0xdd: return m < 0xf0;
    case 0xde: return m < 0xd8 || m == 0xd9 || m >= 0xe0;
    default: return m <= 0xe0 || (m >= 0xe8 && m < 0xf8);
    }
}

static bool valid_mem(unsigned esc, unsigned reg)
{
    switch (esc) {
    case 0xd9: return reg != 1 && reg != 4 && reg != 5 && reg != 6;    /* 7: FNSTCW */
    case 0xdb: return reg != 4 && reg != 6;
    case 0xdd: return reg != 4 && reg != 5 && reg != 6;                /* 7: FNSTSW */
    default: return true;
    }
}

/* One random x87 instruction at @p; memory operands are [rbx + 8k]. */
static unsigned rnd_insn(uint8_t *p)
{
    unsigned esc, m;
    for (;;) {
        esc = 0xd8 + (unsigned)(cg_rnd() % 8);
        if (cg_rnd() % 2) {
            m = 0xc0 + (unsigned)(cg_rnd() % 64);
            if (!valid_reg(esc, m))
                continue;
            p[0] = (uint8_t)esc;
            p[1] = (uint8_t)m;
            return 2;
        }
        m = (unsigned)(cg_rnd() % 8);
        if (!valid_mem(esc, m))
            continue;
        p[0] = (uint8_t)esc;
        p[1] = (uint8_t)(0x43 | m << 3);
        p[2] = (uint8_t)(8 * (cg_rnd() % 14));
        return 3;
    }
}

/* A random load that pushes something. */
static unsigned rnd_load(uint8_t *p)
{
    static const uint8_t ld[][2] = { { 0xd9, 0x43 }, { 0xdd, 0x43 }, { 0xdb, 0x6b },
                                     { 0xdf, 0x43 }, { 0xdb, 0x43 }, { 0xdf, 0x6b },
                                     { 0xdf, 0x63 } };
    static const uint8_t cst[] = { 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee };
    if (cg_rnd() % 5 == 0) {
        p[0] = 0xd9;
        p[1] = cst[cg_rnd() % sizeof cst];
        return 2;
    }
    unsigned k = (unsigned)(cg_rnd() % (sizeof ld / sizeof ld[0]));
    p[0] = ld[k][0];
    p[1] = ld[k][1];
    p[2] = (uint8_t)(8 * (cg_rnd() % 14));
    return 3;
}

/* FNINIT; FLDZ x 8; FNINIT; FLDCW [rbx+0x78]. Empty registers keep their old contents
 * (FXSAVE and FNSAVE show them), so all eight are zeroed first on both sides. */
static unsigned prologue(uint8_t *p, uint16_t cw)
{
    static const uint8_t b[] = { 0xdb, 0xe3, 0xd9, 0xee, 0xd9, 0xee, 0xd9, 0xee, 0xd9, 0xee,
                                 0xd9, 0xee, 0xd9, 0xee, 0xd9, 0xee, 0xd9, 0xee, 0xdb, 0xe3,
                                 0xd9, 0x6b, 0x78 };
    memcpy(ram + DATA + OPS + 0x78, &cw, 2);
    memcpy(p, b, sizeof b);
    return sizeof b;
}

/* FXSAVE [rbx-0x1000]; FNINIT (leaves the host's x87 as the ABI wants it) */
static unsigned epilogue(uint8_t *p)
{
    static const uint8_t b[] = { 0x0f, 0xae, 0x83, 0x00, 0xf0, 0xff, 0xff, 0xdb, 0xe3 };
    memcpy(p, b, sizeof b);
    return sizeof b;
}

static void init_regs(struct cg_regs *r)
{
    memset(r, 0, sizeof *r);
    for (int k = 0; k < 16; k++)
        r->gpr[k] = cg_rnd();
    r->gpr[4] = 0;
    r->gpr[3] = GBASE + DATA + OPS;
    r->flags = cg_rnd() & F_ARITH;
    memset(ram + DATA, 0x5a, DATA_LEN);
    for (unsigned k = 0; k < 0x80; k += 8)
        rnd_slot(k);
}

/* A random control word: every exception masked, random precision and rounding. */
static uint16_t rnd_cw(void)
{
    static const uint16_t pc[] = { 0x300, 0x300, 0x200, 0x000 };
    return (uint16_t)(0x7f | pc[cg_rnd() % 4] | (cg_rnd() % 4) << 10);
}

static void test_random(void **state)
{
    (void)state;
    int fails = 0;
    ignore_fxsave();
    for (int t = 0; t < 6000 && fails < 10; t++) {
        uint8_t code[128];
        struct cg_regs r;
        unsigned n;
        init_regs(&r);
        n = prologue(code, rnd_cw());
        for (unsigned k = (unsigned)(cg_rnd() % 4); k; k--)
            n += rnd_load(code + n);
        for (unsigned k = 1 + (unsigned)(cg_rnd() % 6); k; k--)
            n += rnd_insn(code + n);
        n += epilogue(code + n);
        fails += run_case(code, n, &r, "x87 random");
    }
    assert_int_equal(fails, 0);
}

/* One instruction under a random control word with unmasked exceptions: the masked loads
 * first, FNCLEX, FLDCW, the instruction, then FXSAVE and FNINIT (neither waits, so a
 * pending exception does not trap natively). Checks ES/B, the skipped destination writes
 * and the stack left as the hardware leaves it. */
static void test_unmasked(void **state)
{
    (void)state;
    int fails = 0;
    ignore_fxsave();
    for (int t = 0; t < 4000 && fails < 10; t++) {
        uint8_t code[128];
        struct cg_regs r;
        unsigned n;
        uint16_t cw = (uint16_t)(rnd_cw() & ~(cg_rnd() & 0x3f));
        init_regs(&r);
        memcpy(ram + DATA + OPS + 0x7c, &cw, 2);
        n = prologue(code, 0x37f);
        for (unsigned k = (unsigned)(cg_rnd() % 5); k; k--)
            n += rnd_load(code + n);
        static const uint8_t b[] = { 0xdb, 0xe2, 0xd9, 0x6b, 0x7c };   /* FNCLEX; FLDCW */
        memcpy(code + n, b, sizeof b);
        n += sizeof b;
        n += rnd_insn(code + n);
        n += epilogue(code + n);
        fails += run_case(code, n, &r, "x87 unmasked");
    }
    assert_int_equal(fails, 0);
}

/* FLDCW unmasking a raised flag makes the exception pending (ES, B): FNINIT; FLD1; FLDZ;
 * FDIVP (ZE, masked); FLDCW; FNSTSW AX; FXSAVE; FNINIT (natively too: none of the last
 * three waits on ES; a waiting instruction here would trap, as the emulator's #MF does). */
static void test_fldcw_pending(void **state)
{
    (void)state;
    int fails = 0;
    ignore_fxsave();
    for (unsigned k = 0; k < 64; k++) {
        static const uint8_t head[] = { 0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9,
                                        0xd9, 0x6b, 0x70, 0xdf, 0xe0 };
        uint8_t code[64];
        struct cg_regs r;
        unsigned n;
        init_regs(&r);
        n = prologue(code, 0x37f);
        uint16_t cw = (uint16_t)(0x340 | k);
        memcpy(ram + DATA + OPS + 0x70, &cw, 2);
        memcpy(code + n, head, sizeof head);
        n += sizeof head;
        n += epilogue(code + n);
        fails += run_case(code, n, &r, "x87 fldcw pending");
    }
    assert_int_equal(fails, 0);
}

/* Every register form once on a full stack of mixed values (exhaustive, not random). */
static void test_all_reg_forms(void **state)
{
    (void)state;
    int fails = 0;
    ignore_fxsave();
    for (unsigned esc = 0xd8; esc <= 0xdf; esc++)
        for (unsigned m = 0xc0; m <= 0xff; m++) {
            if (!valid_reg(esc, m))
                continue;
            for (unsigned depth = 0; depth <= 8; depth += 4) {
                uint8_t code[128];
                struct cg_regs r;
                unsigned n;
                init_regs(&r);
                n = prologue(code, 0x37f);
                for (unsigned k = 0; k < depth + (depth ? 0 : 2); k++) {
                    code[n++] = 0xdd;               /* FLD qword [rbx + 8k] */
                    code[n++] = 0x43;
                    code[n++] = (uint8_t)(8 * (k % 14));
                }
                code[n++] = (uint8_t)esc;
                code[n++] = (uint8_t)m;
                n += epilogue(code + n);
                fails += run_case(code, n, &r, "x87 reg form");
            }
        }
    assert_int_equal(fails, 0);
}

/* FNSTENV / FNSAVE in both operand sizes, and FLDENV / FRSTOR of what they stored. */
static void test_env(void **state)
{
    (void)state;
    int fails = 0;
    for (int t = 0; t < 200 && fails < 10; t++) {
        uint8_t code[128];
        struct cg_regs r;
        unsigned n, o16 = (unsigned)(cg_rnd() % 2), save = (unsigned)(cg_rnd() % 2);
        unsigned s = o16 ? 2 : 4, len = 7 * s + (save ? 80 : 0);
        init_regs(&r);
        ignore_fxsave();
        /* pointer fields: FIP, FCS/FOP, FDP, FDS */
        memset(ignore + ENV + 3 * s, 1, 4 * s);
        memset(ignore + ENV + 0x100 + 3 * s, 1, 4 * s);
        n = prologue(code, rnd_cw());
        for (unsigned k = (unsigned)(cg_rnd() % 9); k; k--)
            n += rnd_load(code + n);
        if (cg_rnd() % 2)
            n += rnd_insn(code + n);
        /* [66] FNSTENV/FNSAVE [rbx-0xc00] */
        if (o16)
            code[n++] = 0x66;
        code[n++] = save ? 0xdd : 0xd9;
        code[n++] = save ? 0xb3 : 0xb3;
        memcpy(code + n, &(int32_t){ (int32_t)ENV - (int32_t)OPS }, 4);
        n += 4;
        /* [66] FLDENV/FRSTOR [rbx-0xc00], then store again at [rbx-0xb00] */
        if (o16)
            code[n++] = 0x66;
        code[n++] = save ? 0xdd : 0xd9;
        code[n++] = 0xa3;
        memcpy(code + n, &(int32_t){ (int32_t)ENV - (int32_t)OPS }, 4);
        n += 4;
        if (o16)
            code[n++] = 0x66;
        code[n++] = save ? 0xdd : 0xd9;
        code[n++] = 0xb3;
        memcpy(code + n, &(int32_t){ (int32_t)ENV + 0x100 - (int32_t)OPS }, 4);
        n += 4;
        n += epilogue(code + n);
        (void)len;
        fails += run_case(code, n, &r, save ? "x87 fnsave" : "x87 fnstenv");
    }
    assert_int_equal(fails, 0);
}

/* FXRSTOR of a random image, then FXSAVE: the x87 fields come back as the CPU keeps them. */
static void test_fxrstor(void **state)
{
    (void)state;
    int fails = 0;
    for (int t = 0; t < 300 && fails < 10; t++) {
        uint8_t code[64];
        struct cg_regs r;
        unsigned n = 0;
        init_regs(&r);
        ignore_fxsave();
        uint8_t *img = ram + DATA + 0x800;
        memset(img, 0, 512);
        uint16_t cw = rnd_cw(), sw = (uint16_t)(cg_rnd() & 0x3800);
        memcpy(img, &cw, 2);
        memcpy(img + 2, &sw, 2);
        img[4] = (uint8_t)cg_rnd();
        uint32_t mx = 0x1f80;
        memcpy(img + 24, &mx, 4);
        for (unsigned i = 0; i < 8; i++) {
            uint64_t m = cg_rnd();
            uint16_t e = (uint16_t)(cg_rnd() % 4 ? 0x3fff + cg_rnd() % 64 - 32 : cg_rnd());
            memcpy(img + 32 + 16 * i, &m, 8);
            memcpy(img + 40 + 16 * i, &e, 2);
        }
        /* FXRSTOR [rbx-0x800]; FSTP st0 / FADD st0, st1 / FNSTSW AX; FXSAVE; FNINIT */
        static const uint8_t b[] = { 0x0f, 0xae, 0x8b, 0x00, 0xf8, 0xff, 0xff };
        memcpy(code, b, sizeof b);
        n = sizeof b;
        if (cg_rnd() % 2) {
            code[n++] = 0xd8;
            code[n++] = 0xc1;
        }
        code[n++] = 0xdf;
        code[n++] = 0xe0;
        n += epilogue(code + n);
        fails += run_case(code, n, &r, "x87 fxrstor");
    }
    assert_int_equal(fails, 0);
}

/* ---- exceptions (emulated only) ---- */

static void expect_vector(const uint8_t *code, unsigned n, uint64_t cr0, int vec)
{
    struct cg_regs r;
    struct cpu_state st;
    char hex[3 * 100 + 1];
    memset(&r, 0, sizeof r);
    r.gpr[0] = 0xdead;
    r.gpr[3] = GBASE + DATA + OPS;
    enum cpu_exit e = run_emu(code, n, &r, cr0, &st);
    hexdump(code, n, hex);
    if (vec < 0) {
        if (e != CPU_EXIT_HLT || st.rip != GBASE + CODE + n + 1)
            fail_msg("[%s] cr0 %" PRIx64 ": expected no fault, exit %d rip 0x%" PRIx64
                     " rax %" PRIu64, hex, cr0, e, st.rip, st.gpr[0]);
        return;
    }
    if (e != CPU_EXIT_HLT || st.rip != GBASE + HANDLERS + 16 * (unsigned)vec + 6 ||
        st.gpr[0] != (uint64_t)vec)
        fail_msg("[%s] cr0 %" PRIx64 ": expected vector %d, exit %d rip 0x%" PRIx64
                 " rax %" PRIu64, hex, cr0, vec, e, st.rip, st.gpr[0]);
}

static void test_exceptions(void **state)
{
    (void)state;
    const uint64_t base = 0x80000033, TS = 8, EM = 4, MP = 2, NE = 0x20;
    static const uint8_t fld1[] = { 0xd9, 0xe8 };
    static const uint8_t fninit[] = { 0xdb, 0xe3 };
    static const uint8_t fwait[] = { 0x9b };
    static const uint8_t fxsave[] = { 0x0f, 0xae, 0x83, 0x00, 0xf0, 0xff, 0xff };
    static const uint8_t bad[] = { 0xd9, 0xd1 };            /* reserved */
    static const uint8_t bad_mem[] = { 0xd9, 0x4b, 0x00 };  /* D9 /1 m */
    static const uint8_t lock[] = { 0xf0, 0xd8, 0x43, 0x00 };
    /* FNINIT; FLDCW [rbx] (0x37b: ZE unmasked); FLD1; FLDZ; FDIVP (ZE pending) ; FLD1 */
    static const uint8_t zdiv[] = { 0xdb, 0xe3, 0xd9, 0x6b, 0x00, 0xd9, 0xe8, 0xd9, 0xee,
                                    0xde, 0xf9, 0xd9, 0xe8 };
    static const uint8_t zdiv_wait[] = { 0xdb, 0xe3, 0xd9, 0x6b, 0x00, 0xd9, 0xe8, 0xd9, 0xee,
                                         0xde, 0xf9, 0x9b };
    static const uint8_t zdiv_nowait[] = { 0xdb, 0xe3, 0xd9, 0x6b, 0x00, 0xd9, 0xe8, 0xd9,
                                           0xee, 0xde, 0xf9, 0xdf, 0xe0, 0xdb, 0xe2, 0x9b,
                                           0xd9, 0xe8 };

    expect_vector(fld1, sizeof fld1, base, -1);
    expect_vector(fld1, sizeof fld1, base | TS, 7);
    expect_vector(fld1, sizeof fld1, base | EM, 7);
    expect_vector(fninit, sizeof fninit, base | TS, 7);
    expect_vector(fwait, sizeof fwait, base | TS, 7);               /* MP and TS */
    expect_vector(fwait, sizeof fwait, (base & ~MP) | TS, -1);      /* TS alone: no #NM */
    expect_vector(fwait, sizeof fwait, base | EM, -1);
    expect_vector(fxsave, sizeof fxsave, base | EM, 6);
    expect_vector(fxsave, sizeof fxsave, base | TS, 7);
    expect_vector(bad, sizeof bad, base, 6);
    for (unsigned esc = 0xd8; esc <= 0xdf; esc++)
        for (unsigned m = 0xc0; m <= 0xff; m++)
            if (!valid_reg(esc, m)) {
                uint8_t b[2] = { (uint8_t)esc, (uint8_t)m };
                expect_vector(b, 2, base, 6);
            }
    expect_vector(bad_mem, sizeof bad_mem, base, 6);
    expect_vector(lock, sizeof lock, base, 6);
    uint16_t cw = 0x37b;
    memcpy(ram + DATA + OPS, &cw, 2);
    expect_vector(zdiv, sizeof zdiv, base, 16);             /* next x87 insn: #MF */
    expect_vector(zdiv_wait, sizeof zdiv_wait, base, 16);   /* FWAIT: #MF */
    expect_vector(zdiv, sizeof zdiv, base & ~NE, -1);       /* NE clear: not modelled */
    /* FNSTSW AX, FNCLEX are non-waiting; after FNCLEX nothing is pending */
    expect_vector(zdiv_nowait, sizeof zdiv_nowait, base, -1);
    struct cpu_state st;
    cpu_get_state(cpu, &st);
    assert_int_equal(st.gpr[0] & 0x80ff, 0x8084);   /* B, ES, ZE */
    /* the store of an unmasked-overflow result is skipped: FLD m80 huge; FSTP m32 */
    cw = 0x377;                                      /* OE unmasked */
    memcpy(ram + DATA + OPS, &cw, 2);
    static const uint8_t ovf[] = { 0xdb, 0xe3, 0xd9, 0x6b, 0x00, 0xdb, 0x6b, 0x10,
                                   0xd9, 0x5b, 0x20 };
    uint8_t huge[10] = { 0, 0, 0, 0, 0, 0, 0, 0x80, 0xfe, 0x7f };
    memcpy(ram + DATA + OPS + 0x10, huge, 10);
    memset(ram + DATA + OPS + 0x20, 0x11, 4);
    expect_vector(ovf, sizeof ovf, base, -1);
    assert_int_equal(ram[DATA + OPS + 0x20], 0x11);
}

/* The same x87 code in real mode (16-bit operands and addresses) and 32-bit protected
 * mode: FNINIT; FLD1; FLDPI; FADDP; FST qword [bx]; FNSTENV [bx+0x10]; FNSTSW AX;
 * FSTP qword [bx+8]. The sum must be the host's, the environment the 14- or 28-byte one. */
static void test_modes(void **state)
{
    (void)state;
    double want;
    uint16_t want_sw;
    __asm__ volatile("fninit\n\tfld1\n\tfldpi\n\tfaddp\n\tfstl %0\n\tfnstsw %%ax\n\t"
                     "fstpl %0\n\tfninit" : "=m"(want), "=a"(want_sw) : : "st");
    for (int m32 = 0; m32 <= 1; m32++) {
        /* addresses: [bx] is ModRM rm=7 with 16-bit addressing, [ebx] rm=3 with 32-bit */
        uint8_t rm = m32 ? 3 : 7;
        const uint8_t code[] = { 0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xeb, 0xde, 0xc1,
                                 0xdd, (uint8_t)(0x10 | rm),
                                 0xd9, (uint8_t)(0x70 | rm), 0x10,
                                 0xdf, 0xe0,
                                 0xdd, (uint8_t)(0x58 | rm), 0x08, 0xf4 };
        struct cpu_state st;
        memset(&st, 0, sizeof st);
        memset(ram + DATA + OPS, 0xcc, 0x40);
        memcpy(ram + CODE, code, sizeof code);
        cpu_invalidate_ram(cpu, CODE, sizeof code);
        for (int s = 0; s < 6; s++)
            st.seg[s] = m32 ? (struct cpu_seg){ 0x10, 0, 0xffffffff, 0xc093 }
                            : (struct cpu_seg){ 0, DATA, 0xffff, 0x93 };
        st.seg[CPU_CS] = m32 ? (struct cpu_seg){ 0x8, 0, 0xffffffff, 0xc09b }
                             : (struct cpu_seg){ 0, CODE, 0xffff, 0x9b };
        st.seg[CPU_TR] = (struct cpu_seg){ 0, 0, 0xffff, 0x8b };
        st.seg[CPU_LDTR] = (struct cpu_seg){ 0, 0, 0, 0x10000 };
        st.cr0 = m32 ? 0x33 : 0x32;
        st.rip = m32 ? CODE : 0;
        st.gpr[3] = m32 ? DATA + OPS : OPS;
        st.gpr[4] = m32 ? STACK : 0x8000;
        st.rflags = 2;
        cpu_set_state(cpu, &st);
        assert_int_equal(cpu_run(cpu, 1000), CPU_EXIT_HLT);
        cpu_get_state(cpu, &st);
        const uint8_t *d = ram + DATA + OPS;
        double got, popped;
        memcpy(&got, d, 8);
        memcpy(&popped, d + 8, 8);
        assert_memory_equal(&got, &want, 8);
        assert_memory_equal(&popped, &want, 8);
        assert_int_equal(st.gpr[0] & 0xffff, want_sw);     /* TOP 7, PE, C1 as the host's */
        uint16_t cw, sw, tw;
        unsigned s = m32 ? 4 : 2;
        memcpy(&cw, d + 0x10, 2);
        memcpy(&sw, d + 0x10 + s, 2);
        memcpy(&tw, d + 0x10 + 2 * s, 2);
        assert_int_equal(cw, 0x37f);
        assert_int_equal(sw & 0x3800, 0x3800);
        assert_int_equal(tw, 0x3fff);                       /* R7 valid, the rest empty */
        assert_int_equal(d[0x10 + 7 * s], 0xcc);            /* nothing past the image */
    }
}

/* FISTTP (SSE3) in all three sizes: truncation whatever the control word's rounding says,
 * the integer indefinite on overflow and NaN (masked), the pop. FLD m64 [rbx+8k]; FISTTP
 * [rbx+0x40] (DF /1 m16, DB /1 m32, DD /1 m64); FNSTSW [rbx+0x50]; then the state. */
static void test_fisttp(void **state)
{
    static const double dv[] = { 0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.9999, -0.9999,
                                 32767.9, -32768.9, 32768.0, -32769.0, 2147483647.5,
                                 -2147483648.5, 2147483648.0, -2147483649.0, 1e18, -1e18,
                                 9223372036854775807.0, -9223372036854775808.0, 1e19, -1e19,
                                 1e300, 4.9e-324 };
    static const uint8_t esc[3] = { 0xdf, 0xdb, 0xdd };
    (void)state;
    int fails = 0;
    if (!__builtin_cpu_supports("sse3")) {
        fprintf(stderr, "host CPU lacks SSE3: FISTTP not compared\n");
        return;
    }
    ignore_fxsave();
    for (int t = 0; t < 1500 && fails < 10; t++) {
        uint8_t code[128];
        struct cg_regs r;
        unsigned n, k = (unsigned)(cg_rnd() % 8);
        init_regs(&r);
        if (cg_rnd() % 4)
            put_f64(8 * k, dv[cg_rnd() % (sizeof dv / sizeof dv[0])]);
        n = prologue(code, rnd_cw());
        code[n++] = 0xdd; code[n++] = 0x43; code[n++] = (uint8_t)(8 * k);     /* fld m64 */
        code[n++] = esc[cg_rnd() % 3]; code[n++] = 0x4b; code[n++] = 0x40;  /* fisttp */
        code[n++] = 0xdd; code[n++] = 0x7b; code[n++] = 0x50;                /* fnstsw */
        n += epilogue(code + n);
        fails += run_case(code, n, &r, "fisttp");
    }
    assert_int_equal(fails, 0);
}

static void test_cpuid(void **state)
{
    (void)state;
    static const uint8_t code[] = { 0xb8, 1, 0, 0, 0, 0x0f, 0xa2 };
    struct cg_regs r;
    struct cpu_state st;
    memset(&r, 0, sizeof r);
    assert_int_equal(run_emu(code, sizeof code, &r, 0, &st), CPU_EXIT_HLT);
    assert_true(st.gpr[2] & 1);                     /* EDX.FPU */
    assert_true(st.gpr[2] & (1u << 24));            /* EDX.FXSR */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_reg_forms),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_fisttp),
        cmocka_unit_test(test_unmasked),
        cmocka_unit_test(test_fldcw_pending),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_fxrstor),
        cmocka_unit_test(test_exceptions),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_cpuid),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
