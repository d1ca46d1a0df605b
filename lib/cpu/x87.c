/* x87 FPU (opcodes D8-DF, WAIT).
 *
 * State lives in struct cpu: FCW, FSW (TOP in bits 11-13), the abridged tag word (bit k
 * set = physical register Rk holds a value) and the eight 80-bit registers R0..R7.
 *
 * Control and state instructions (FNINIT, FNCLEX, FLDCW, FNSTCW, FNSTSW, FLDENV, FNSTENV,
 * FRSTOR, FNSAVE, FXSAVE/FXRSTOR's x87 area) are done here in C. Everything that computes
 * (loads, stores, conversions, arithmetic, compares, FXAM, FCMOVcc, transcendentals) runs
 * on the host's own x87: the guest state is loaded with FRSTOR, the very instruction runs
 * (its memory operand redirected to a host buffer holding the guest bytes), and FNSAVE
 * takes the state back. Results, rounding and precision control, C0-C3, stack faults,
 * exception flags and the masked responses are therefore those of the hardware; the
 * library needs no libm. Only x86-64 hosts have this; elsewhere x87 is #UD and CPUID
 * reports no FPU.
 *
 * Exceptions: CR0.EM or CR0.TS -> #NM for every x87 opcode; WAIT -> #NM when MP and TS;
 * a waiting instruction with an unmasked exception pending (FSW.ES) -> #MF when CR0.NE
 * (with NE clear the FERR#/IRQ13 route is not modelled: the instruction just runs).
 * Unmasked exceptions otherwise behave as on hardware (destination untouched, ES set),
 * except that a store to memory is skipped for any unmasked exception but precision.
 * Not kept: the last instruction/operand pointers and opcode (FIP, FDP, FOP are stored
 * as zeros by FNSTENV/FNSAVE/FXSAVE). */
#include "x87.h"

#define FSW_ES 0x80u
#define FSW_SF 0x40u
#define FSW_B 0x8000u
#define FSW_TOP(s) (((unsigned)(s) >> 11) & 7)

static void nm_check(struct cpu *c)
{
    if (c->cr0 & (CR0_EM | CR0_TS))
        cpu_raise(c, EX_NM, 0, 0);
}

/* Before a waiting instruction: a pending unmasked exception is reported now. */
static void mf_check(struct cpu *c)
{
    if ((c->fsw & FSW_ES) && (c->cr0 & CR0_NE))
        cpu_raise(c, EX_MF, 0, 0);
}

/* ES and B follow the exception flags that FCW leaves unmasked. */
static uint16_t es_of(uint16_t fsw, uint16_t fcw)
{
    if (fsw & ~fcw & 0x3f)
        return (uint16_t)(fsw | FSW_ES | FSW_B);
    return (uint16_t)(fsw & ~(FSW_ES | FSW_B));
}

/* The full tag of physical register @k: 0 valid, 1 zero, 2 special, 3 empty. */
static unsigned tag_of(const struct cpu *c, unsigned k)
{
    const uint8_t *r = c->fpr[k];
    uint64_t mant;
    unsigned exp;
    if (!(c->ftw & (1u << k)))
        return 3;
    memcpy(&mant, r, 8);
    exp = (unsigned)(r[8] | (r[9] << 8)) & 0x7fff;
    if (exp == 0x7fff)
        return 2;
    if (exp == 0)
        return mant ? 2 : 1;
    return (mant >> 63) ? 0 : 2;    /* unnormals are special */
}

static uint16_t full_tags(const struct cpu *c)
{
    unsigned t = 0;
    for (unsigned k = 0; k < 8; k++)
        t |= tag_of(c, k) << (2 * k);
    return (uint16_t)t;
}

static uint8_t abridge(unsigned full)
{
    unsigned a = 0;
    for (unsigned k = 0; k < 8; k++)
        if (((full >> (2 * k)) & 3) != 3)
            a |= 1u << k;
    return (uint8_t)a;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static unsigned get16(const uint8_t *p)
{
    return p[0] | (unsigned)p[1] << 8;
}

/* ---- FXSAVE / FXRSTOR ---- */

void x87_fxsave_area(const struct cpu *c, uint8_t area[160])
{
    unsigned top = FSW_TOP(c->fsw);
    memset(area, 0, 160);
    put16(area, c->fcw);
    put16(area + 2, c->fsw);
    area[4] = (uint8_t)c->ftw;
    for (unsigned i = 0; i < 8; i++)
        memcpy(area + 32 + 16 * i, c->fpr[(top + i) & 7], 10);
}

void x87_fxrstor_area(struct cpu *c, const uint8_t area[160])
{
    unsigned top;
    c->fcw = (uint16_t)get16(area);
    c->fsw = es_of((uint16_t)get16(area + 2), c->fcw);
    c->ftw = area[4];
    top = FSW_TOP(c->fsw);
    for (unsigned i = 0; i < 8; i++)
        memcpy(c->fpr[(top + i) & 7], area + 32 + 16 * i, 10);
}

/* ---- environment: FNSTENV/FLDENV (14 or 28 bytes), FNSAVE/FRSTOR (+ 80) ----
 * The protected-mode layouts; the instruction and operand pointers are stored as zeros,
 * which makes the real-mode layouts the same bytes. The 32-bit layout's reserved upper
 * halves of FCW/FSW/FTW read back as 0xffff, as hardware stores them. */

static unsigned env_store(const struct cpu *c, unsigned osz, uint8_t *e)
{
    unsigned s = osz == 2 ? 2 : 4;
    memset(e, 0, 7 * s);
    if (s == 4)
        for (unsigned k = 0; k < 3; k++)
            put16(e + 4 * k + 2, 0xffff);
    put16(e, c->fcw);
    put16(e + s, c->fsw);
    put16(e + 2 * s, full_tags(c));
    return 7 * s;
}

static unsigned env_load(struct cpu *c, unsigned osz, const uint8_t *e)
{
    unsigned s = osz == 2 ? 2 : 4;
    c->fcw = (uint16_t)get16(e);
    c->fsw = es_of((uint16_t)get16(e + s), c->fcw);
    c->ftw = abridge(get16(e + 2 * s));
    return 7 * s;
}

static void fninit(struct cpu *c)
{
    c->fcw = 0x37f;
    c->fsw = 0;
    c->ftw = 0;
}

/* D9 /4-/7, DD /4, /6, /7 with a memory operand. */
static void mem_control(struct cpu *c, const struct insn *i, unsigned esc, unsigned reg)
{
    uint64_t a = ea(c, i);
    uint8_t buf[108];
    unsigned n, top;

    if (esc == 1 && reg == 4) {             /* FLDENV */
        mf_check(c);
        n = i->osz == 2 ? 14 : 28;
        mem_read_buf(c, a, buf, n);
        env_load(c, i->osz, buf);
    } else if (esc == 1 && reg == 5) {      /* FLDCW */
        mf_check(c);
        c->fcw = (uint16_t)mem_read(c, a, 2);
        c->fsw = es_of(c->fsw, c->fcw);
    } else if (esc == 1 && reg == 6) {      /* FNSTENV: then masks every exception */
        n = env_store(c, i->osz, buf);
        mem_write_buf(c, a, buf, n);
        c->fcw |= 0x3f;
        c->fsw = es_of(c->fsw, c->fcw);
    } else if (esc == 1 && reg == 7) {      /* FNSTCW */
        mem_write(c, a, 2, c->fcw);
    } else if (esc == 5 && reg == 4) {      /* FRSTOR */
        mf_check(c);
        n = i->osz == 2 ? 14 : 28;
        mem_read_buf(c, a, buf, n + 80);
        env_load(c, i->osz, buf);
        top = FSW_TOP(c->fsw);
        for (unsigned k = 0; k < 8; k++)
            memcpy(c->fpr[(top + k) & 7], buf + n + 10 * k, 10);
    } else if (esc == 5 && reg == 6) {      /* FNSAVE: then FNINIT */
        n = env_store(c, i->osz, buf);
        top = FSW_TOP(c->fsw);
        for (unsigned k = 0; k < 8; k++)
            memcpy(buf + n + 10 * k, c->fpr[(top + k) & 7], 10);
        mem_write_buf(c, a, buf, n + 80);
        fninit(c);
    } else if (esc == 5 && reg == 7) {      /* FNSTSW m16 */
        mem_write(c, a, 2, c->fsw);
    } else {
        cpu_ud(c);
    }
}

/* ---- the host x87 ---- */

#if defined(__x86_64__)

/* 108-byte FSAVE image, 32-bit protected-mode layout. */
struct fsave_img {
    uint32_t fcw, fsw, ftw, fip, fcs_fop, fdp, fds;
    uint8_t st[80];
};
_Static_assert(sizeof(struct fsave_img) == 108, "FSAVE image layout");

/* One 8-byte stub per (escape byte, ModRM): ENDBR64 (a NOP unless indirect-branch
 * tracking is on), the instruction itself, RET. Register forms keep their ModRM; memory
 * forms use ModRM reg,[rax]. */
extern const uint8_t vmcore_x87_stubs[] __attribute__((visibility("hidden")));
__asm__(
    ".pushsection .text\n"
    ".p2align 4\n"
    ".globl vmcore_x87_stubs\n"
    ".hidden vmcore_x87_stubs\n"
    ".type vmcore_x87_stubs, @function\n"
    "vmcore_x87_stubs:\n"
    ".irp esc, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf\n"
    "  .set vmcore_x87_m, 0\n"
    "  .rept 256\n"
    "    .byte 0xf3, 0x0f, 0x1e, 0xfa\n"
    "    .if vmcore_x87_m >= 0xc0\n"
    "      .byte \\esc, vmcore_x87_m\n"
    "    .else\n"
    "      .byte \\esc, vmcore_x87_m & 0x38\n"
    "    .endif\n"
    "    ret\n"
    "    int3\n"
    "    .set vmcore_x87_m, vmcore_x87_m + 1\n"
    "  .endr\n"
    ".endr\n"
    ".size vmcore_x87_stubs, . - vmcore_x87_stubs\n"
    ".popsection\n");

/* Run the stub for (@esc, @modrm) on the host x87 loaded from @img, with the arithmetic
 * flags @fl in RFLAGS and RAX = @mem; the state comes back in @img, the flags are
 * returned. The host FPU is left initialized with its control word restored. */
static uint64_t host_run(struct fsave_img *img, unsigned esc, unsigned modrm, void *mem,
                         uint64_t fl)
{
    const void *stub = vmcore_x87_stubs + (esc * 256 + modrm) * 8;
    uint16_t host_cw;
    fl = (fl & F_ARITH) | 2;
    __asm__ volatile(
        "fnstcw %[cw]\n\t"
        "sub $128, %%rsp\n\t"           /* the red zone: CALL pushes below RSP */
        "frstor (%[img])\n\t"
        "push %[fl]\n\t"
        "popfq\n\t"
        "call *%[stub]\n\t"
        "pushfq\n\t"
        "pop %[fl]\n\t"
        "fnsave (%[img])\n\t"
        "add $128, %%rsp\n\t"
        "fldcw %[cw]"
        : [fl] "+r"(fl), [cw] "=m"(host_cw)
        : [img] "r"(img), [stub] "r"(stub), "a"(mem)
        : "memory", "cc", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)",
          "st(7)");
    return fl;
}

bool x87_available(void)
{
    return true;
}

/* Run one computing instruction. @mem holds the memory operand (@len bytes at @a) for
 * memory forms, NULL for register forms; @store says the instruction writes it. */
static void host_op(struct cpu *c, unsigned esc, unsigned modrm, uint64_t a, unsigned len,
                    bool store)
{
    struct fsave_img img;
    uint8_t buf[16];
    unsigned top = FSW_TOP(c->fsw), ntop, fsw, ftw = 0;
    uint64_t fl;

    memset(&img, 0, sizeof img);
    memset(buf, 0, sizeof buf);
    if (len && !store)
        mem_read_buf(c, a, buf, len);
    img.fcw = c->fcw;
    /* pending flags would trap on the host: load them clear and merge them back */
    img.fsw = c->fsw & ~(0x3fu | FSW_ES | FSW_B);
    for (unsigned k = 0; k < 8; k++)
        ftw |= (c->ftw & (1u << k) ? 0u : 3u) << (2 * k);
    img.ftw = ftw;
    for (unsigned k = 0; k < 8; k++)
        memcpy(img.st + 10 * k, c->fpr[(top + k) & 7], 10);

    fl = host_run(&img, esc, modrm, len ? buf : NULL, flags_get(c));

    fsw = (img.fsw & 0xffff) | (c->fsw & (0x3fu | FSW_SF));
    fsw = es_of((uint16_t)fsw, c->fcw);
    if (store && !((img.fsw & 0x1f) & ~c->fcw))
        mem_write_buf(c, a, buf, len);      /* may fault: nothing committed yet */
    c->fsw = (uint16_t)fsw;
    c->ftw = abridge(img.ftw);
    ntop = FSW_TOP(fsw);
    for (unsigned k = 0; k < 8; k++)
        memcpy(c->fpr[(ntop + k) & 7], img.st + 10 * k, 10);
    /* FCOMI, FUCOMI and their popping forms set ZF, PF, CF and clear OF, SF, AF */
    if ((esc == 3 || esc == 7) && modrm >= 0xe8 && modrm < 0xf8)
        flags_set_arith(c, F_ARITH, fl & F_ARITH);
}

#else

bool x87_available(void)
{
    return false;
}

static void host_op(struct cpu *c, unsigned esc, unsigned modrm, uint64_t a, unsigned len,
                    bool store)
{
    (void)esc, (void)modrm, (void)a, (void)len, (void)store;
    cpu_ud(c);
}

#endif

/* Register forms (ModRM >= C0) that hardware executes, the undocumented aliases included
 * (FSTP1 D9 D8+i, FCOM2/FCOMP3 DC D0-DF, FXCH4 DD C8+i, FCOMP5 DE D0+i, FFREEP DF C0+i,
 * FXCH7, FSTP8, FSTP9); the C-handled ones (DB E0-E4, DF E0) aside. */
static bool reg_form_ok(unsigned esc, unsigned m)
{
    switch (esc) {
    case 0: case 4: return true;
    case 1: return m <= 0xd0 || (m >= 0xd8 && m <= 0xe1) || m == 0xe4 || m == 0xe5 ||
                   (m >= 0xe8 && m <= 0xee) || m >= 0xf0;
    case 2: return m < 0xe0 || m == 0xe9;
    case 5: return m < 0xf0;
    case 6: return m < 0xd8 || m == 0xd9 || m >= 0xe0;
    default: return m < 0xe0 || (m >= 0xe8 && m < 0xf8);      /* DB, DF */
    }
}

/* Memory operand size per (escape, reg): 0 #UD, 0xff done in C (mem_control). */
static const uint8_t mem_size[8][8] = {
    { 4, 4, 4, 4, 4, 4, 4, 4 },                     /* D8: m32fp arithmetic */
    { 4, 0, 4, 4, 0xff, 0xff, 0xff, 0xff },         /* D9: FLD/FST/FSTP m32, env, CW */
    { 4, 4, 4, 4, 4, 4, 4, 4 },                     /* DA: m32int arithmetic */
    { 4, 4, 4, 4, 0, 10, 0, 10 },                   /* DB: FILD/FISTTP/FIST/FISTP m32, m80 */
    { 8, 8, 8, 8, 8, 8, 8, 8 },                     /* DC: m64fp arithmetic */
    { 8, 8, 8, 8, 0xff, 0, 0xff, 0xff },            /* DD: m64, FRSTOR, FNSAVE, FNSTSW */
    { 2, 2, 2, 2, 2, 2, 2, 2 },                     /* DE: m16int arithmetic */
    { 2, 2, 2, 2, 10, 8, 10, 8 },                   /* DF: m16int, FBLD/FBSTP, m64int */
};
/* Bit reg set: the memory form stores to its operand. */
static const uint8_t mem_store[8] = { 0, 0x0c, 0, 0x8e, 0, 0x0e, 0, 0xce };

OP(op_x87)
{
    unsigned esc = i->op >> 3, reg = i->op & 7;

    if (i->lock)
        cpu_ud(c);
    nm_check(c);
    if (i->mod == 3) {
        unsigned modrm = 0xc0 | reg << 3 | (i->rm & 7);
        if (esc == 3 && modrm >= 0xe0 && modrm <= 0xe4) {
            if (modrm == 0xe2)                  /* FNCLEX */
                c->fsw &= (uint16_t)~(0xffu | FSW_B);
            else if (modrm == 0xe3)             /* FNINIT */
                fninit(c);
            return;                             /* FENI, FDISI, FSETPM: no-ops since 387 */
        }
        if (esc == 7 && modrm == 0xe0) {        /* FNSTSW AX */
            reg_set(c, 0, 2, c->fsw);
            return;
        }
        if (!reg_form_ok(esc, modrm))
            cpu_ud(c);
        mf_check(c);
        host_op(c, esc, modrm, 0, 0, false);
        return;
    }
    switch (mem_size[esc][reg]) {
    case 0:
        cpu_ud(c);
    case 0xff:
        mem_control(c, i, esc, reg);
        return;
    default:
        mf_check(c);
        host_op(c, esc, reg << 3, ea(c, i), mem_size[esc][reg],
                (mem_store[esc] >> reg) & 1);
        return;
    }
}

OP(op_fwait)
{
    if ((c->cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS))
        cpu_raise(c, EX_NM, 0, 0);
    mf_check(c);
}
