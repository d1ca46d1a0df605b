/* Internal state and helpers of the x86 emulator (lib/cpu only). */
#ifndef VMCORE_CPU_X86_H
#define VMCORE_CPU_X86_H

#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"

struct cpu;
struct insn;
typedef void (*op_fn)(struct cpu *c, const struct insn *i);

/* One predecoded instruction. Handlers get everything the bytes said; nothing here
 * depends on the linear address, so a block is valid wherever its page is mapped. */
struct insn {
    op_fn fn;
    uint8_t len;
    uint8_t osz;        /* operand size in bytes: 1, 2, 4, 8 */
    uint8_t asz;        /* address size: 2, 4, 8 */
    uint8_t seg;        /* segment for memory operands (CPU_DS default) */
    uint8_t mod;        /* 3 = register operand */
    uint8_t reg;        /* ModRM.reg (+REX.R); for 8-bit regs 0x10|n means AH..BH */
    uint8_t rm;         /* ModRM.rm (+REX.B) when mod == 3 */
    uint8_t base;       /* memory: base register, 0xff none, 0xfe RIP-relative */
    uint8_t index;      /* memory: index register, 0xff none */
    uint8_t scale;      /* shift count 0..3 */
    uint8_t rep;        /* 0, 0xf2, 0xf3 */
    uint8_t op;         /* sub-operation (ALU op, condition code, group index) */
    uint8_t pfx66;      /* operand-size prefix seen (SSE selects forms with it) */
    uint8_t lock;
    uint8_t flags;      /* INSN_* */
    uint8_t jk;         /* JK_*: the exact form the JIT may compile inline (jit.c) */
    int32_t disp;
    uint64_t imm;
    uint64_t imm2;
};

enum { INSN_ENDS_BLOCK = 1 };

/* Forms the block compiler (jit.c) emits inline. Set where a handler is specialized: the
 * kind promises the handler does exactly this, with the operands in the insn fields. */
enum jit_kind {
    JK_NONE,
    JK_MOV_RR,      /* r[rm] = r[reg], osz 4/8 */
    JK_MOV_RI,      /* r[rm] = imm, osz 4/8 */
    JK_MOVZX_B_RR,  /* r[reg] = low byte of r[rm] (rm < 16), osz 4 */
    JK_ALU_RR,      /* ALU op (i->op) r[rm] op= r[reg], lazy flags; osz 1 (no AH..BH)/4/8 */
    JK_ALU_RI,      /* r[rm] op= imm, osz 4/8 */
    JK_ALU_RRM,     /* r[reg] op= r/m (register or memory), osz 1/4/8 */
    JK_TEST_RR,     /* flags of r[rm] & r[reg], osz 4/8 */
    JK_INCDEC,      /* i->op 0 inc, 1 dec of r[rm], osz 4/8 */
    JK_LEA,         /* r[reg] = effective address, osz 4/8 */
    JK_SHIFT,       /* op_shift_fast: SHL/SHR/SAR of r[rm], osz 4/8 */
    JK_IMUL_RRI4,   /* r[reg] = r[rm] * imm, 32-bit */
    JK_LD,          /* r[reg] = [mem]: osz 4/8 zero-extended, osz 1 into the byte register */
    JK_LDZX,        /* r[reg] = zero-extended byte (op 1) or word [mem], osz 4/8 */
    JK_ST,          /* [mem] = r[reg], osz 1/4/8 */
    JK_JCC,         /* relative Jcc (cc = op & 15), osz 4 (target wraps at 4 GiB) or 8 */
    JK_JMP,         /* relative JMP, osz 4 or 8 */
    JK_PUSH,        /* PUSH r[rm]: osz 8 (64-bit stack) or 4 (generic handler: stack size */
    JK_POP,         /*   checked at run time); POP r[rm] likewise */
    JK_CALL,        /* CALL rel, osz 8 or 4 */
    JK_RET,         /* RET without immediate, osz 8 or 4 */
    JK_SETCC,       /* SETcc (cc = op) into 8-bit register rm */
    JK_CMOV,        /* CMOVcc (cc = op) r[reg] = r[rm], osz 4/8 */
    JK_ALU_M,       /* ALU op [mem], r[reg] or [mem], imm (not ADC/SBB, no LOCK), osz 1-8 */
    JK_ST_IMM,      /* [mem] = imm, osz 1-8 */
    JK_ADCSBB,      /* ADC/SBB (op 2/3) into a register: rm_r (mod 3), r_rm, rm_imm (mod 3);
                     * osz 4/8, generic handlers */
    JK_MUL,         /* one-operand MUL r/m, osz 4/8: rdx:rax = rax * src */
    JK_IMUL_RRM,    /* IMUL r, r/m (0F AF), osz 4/8 */
    JK_TEST,        /* TEST r/m, r / r/m, imm / AL..RAX, imm (op_test_*), osz 1/4/8 */
    JK_MOVSX,       /* MOVSX r, r/m8/16 (op 1/2), MOVSXD r64, r/m32; osz 4/8 */
    JK_SSE,         /* op_sse: jit.c picks the moves and integer/logic ops it runs on the host */
    JK_MOV_RR8,     /* 8-bit MOV r/m8, r8 (op_mov_rm_r) or r8, r/m8 (op_mov_r_rm), mod 3,
                     * AH..BH too */
    JK_BT,          /* op_bt_rm_r / op_bt_rm_imm (op 4-7: BT, BTS, BTR, BTC) of register rm,
                     * osz 2/4/8; CF = the bit, other flags kept */
    JK_ROT,         /* op_shift: ROL/ROR (op & 7 = 0/1) of register rm, osz 1 (AH..BH too)
                     * to 8, by 1 (op >> 4 = 0), imm8 (1) or CL (2); CF/OF as op_shift */
};

/* Lazy arithmetic flags: the last flag-setting operation and its operands. */
enum { LF_NONE, LF_ADD, LF_ADC, LF_SUB, LF_SBB, LF_LOGIC, LF_INC, LF_DEC, LF_MUL, LF_SHL, LF_SHR,
       LF_SAR };

#define F_CF 0x1ULL
#define F_PF 0x4ULL
#define F_AF 0x10ULL
#define F_ZF 0x40ULL
#define F_SF 0x80ULL
#define F_TF 0x100ULL
#define F_IF 0x200ULL
#define F_DF 0x400ULL
#define F_OF 0x800ULL
#define F_IOPL 0x3000ULL
#define F_NT 0x4000ULL
#define F_RF 0x10000ULL
#define F_VM 0x20000ULL
#define F_AC 0x40000ULL
#define F_ID 0x200000ULL
#define F_ARITH (F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF)

#define CR0_PE 0x1ULL
#define CR0_MP 0x2ULL
#define CR0_EM 0x4ULL
#define CR0_TS 0x8ULL
#define CR0_ET 0x10ULL
#define CR0_NE 0x20ULL
#define CR0_WP 0x10000ULL
#define CR0_AM 0x40000ULL
#define CR0_PG 0x80000000ULL
#define CR4_TSD 0x4ULL
#define CR4_PSE 0x10ULL
#define CR4_PAE 0x20ULL
#define CR4_PGE 0x80ULL
#define CR4_OSFXSR 0x200ULL
#define CR4_OSXMMEXCPT 0x400ULL
#define EFER_SCE 0x1ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL
#define EFER_NXE 0x800ULL

enum { EX_DE = 0, EX_DB = 1, EX_NMI = 2, EX_BP = 3, EX_OF = 4, EX_BR = 5, EX_UD = 6, EX_NM = 7,
       EX_DF = 8, EX_TS = 10, EX_NP = 11, EX_SS = 12, EX_GP = 13, EX_PF = 14, EX_MF = 16,
       EX_AC = 17, EX_XM = 19 };

/* Software TLB: one direct-mapped array, permissions per privilege. */
#define TLB_BITS 10
#define TLB_SIZE (1u << TLB_BITS)
enum { P_R = 1, P_W = 2, P_X = 4 };          /* supervisor; user = << 3 */
struct tlb_entry {
    uint64_t vpage;         /* linear page | 1 when valid */
    uint8_t *host;          /* host address of the page, NULL for MMIO */
    uint64_t gpage;         /* guest-physical page */
    uint8_t perm;           /* P_* for CPL<3 in bits 0-2, for CPL3 in bits 3-5 */
    uint8_t code;           /* the page holds translated code: writes go the slow way */
};

struct tcache;

/* A translated block (tcache.c); the JIT reads `chain` to follow the jump cache. */
struct block {
    uint64_t gpa;
    uint32_t gen;
    uint8_t csz;
    uint8_t runs;           /* interpreted runs so far, up to jit_hot() */
    uint16_t n;
    struct insn *insn;
    const void *code;       /* compiled form (jit.c), or NULL: interpreted */
    const void *chain;      /* where chain exits of other blocks jump in */
    uint32_t stamp;         /* build order: the older of a set's two ways is evicted */
    uint32_t gen2;          /* cross: the second page's generation */
    uint64_t gpa2;          /* cross: the second page (guest-physical, page-aligned) */
    uint8_t cross;          /* one instruction that continues on the next page */
};

enum cpu_mode { MODE_REAL, MODE_PROT, MODE_LONG };

/* stop_block value of a mode change (CR0.PE/PG/WP, CR4.PAE/PSE, EFER) that makes every
 * translated block stale: the block and compiled code still running must not be flushed
 * under their feet, so the instruction ends its block and cpu_run() flushes. */
#define STOP_FLUSH 5

struct cpu {
    uint64_t r[16];
    uint64_t rip;
    uint64_t rflags;        /* arithmetic bits valid only when lf_op == LF_NONE */
    uint64_t lf_res, lf_a, lf_b;
    uint8_t lf_op, lf_sz, lf_cin;

    /* Mode, derived from CR0/EFER/CS on every change (cpu_update_mode). */
    uint8_t mode;
    uint8_t code64;         /* 64-bit code segment in long mode */
    uint8_t csz;            /* default operand/address size of the code: 2, 4, 8 */
    uint8_t ssz;            /* stack pointer size: 2, 4, 8 */
    uint8_t cpl;
    uint8_t umask_shift;    /* 3 when cpl == 3: selects user TLB permissions */
    uint8_t need_r, need_w; /* P_R, P_W shifted by umask_shift (the JIT's TLB probe) */
    uint64_t sbase[6];      /* effective segment bases (0 for ES/CS/SS/DS in 64-bit) */

    struct cpu_seg seg[CPU_NSEG];
    uint64_t gdt_base, idt_base;
    uint16_t gdt_limit, idt_limit;
    uint64_t cr0, cr2, cr3, cr4, cr8, efer;
    uint64_t dr[8];
    uint64_t star, lstar, cstar, sfmask, kgsbase;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t pat, tsc_offset, apic_base, misc_enable;
    uint64_t feature_control, tsc_aux, pmc[2], perfevtsel[2];

    /* SSE */
    union { uint8_t b[16]; uint16_t w[8]; uint32_t d[4]; uint64_t q[2]; float f[4];
            double fd[2]; } xmm[16];
    uint32_t mxcsr;
    /* x87 (x87.c): FSW holds TOP; ftw is the abridged tag word (bit k: Rk in use) */
    uint16_t fcw, fsw, ftw;
    uint8_t fpr[8][10];     /* physical registers R0..R7, 80-bit little-endian */

    /* Memory */
    uint8_t *ram;
    uint64_t ram_size;
    struct tlb_entry tlb[TLB_SIZE];

    struct cpu_io io;

    /* Execution control */
    uint64_t insn_rip;      /* start of the instruction being executed */
    jmp_buf jb;             /* exceptions unwind to the run loop */
    int in_delivery;        /* delivering an exception: a fault now is a #DF */
    int delivering_df;      /* delivering #DF: a fault now is a triple fault */
    uint8_t stop_block;     /* leave the current block after this instruction: 1 for the
                             * run loop's attention, 2 for a taken side exit (chains on),
                             * STOP_FLUSH to flush the translation cache first */
    uint8_t io_stop;        /* a callback asked to stop */
    int exit;               /* cpu_run's result once set */
    uint8_t sti_shadow;     /* interrupts inhibited for one instruction (STI, MOV SS) */
    uint8_t halted;
    atomic_bool kick;
    atomic_bool intr;
    char errmsg[160];

    struct tcache *tc;
    /* Jump cache: linear RIP -> block, valid while jc_key matches (the key holds an epoch
     * bumped on every TLB flush, code invalidation and mode change) and the block still
     * holds gpa (its table slot may have been given to another block since). */
    struct jc_entry { uint64_t lin, key; struct block *b; uint64_t gpa; } jc[4096];
    uint64_t jc_key, jc_epoch;
    uint64_t icount, budget_end;
    uint64_t icount_end;    /* budget_end - exc_count, for compiled code's budget check */
    uint64_t exc_count;     /* exceptions raised: they count against the budget too */
    uint64_t tc_hits, tc_misses, jit_blocks;
    void *jit_link;         /* chain slot a compiled block left through unlinked */
};

/* ---- flags (alu.c) ---- */
uint64_t flags_get(struct cpu *c);
void flags_set(struct cpu *c, uint64_t f);      /* all of RFLAGS (arith + control) */
void flags_set_arith(struct cpu *c, uint64_t mask, uint64_t val);
bool cond_eval(struct cpu *c, unsigned cc);
uint64_t alu_op(struct cpu *c, unsigned op, uint64_t a, uint64_t b, unsigned sz);
extern const uint8_t parity_table[256];

static inline uint64_t sz_mask(unsigned sz)
{
    return sz == 8 ? ~0ULL : (1ULL << (sz * 8)) - 1;
}
static inline uint64_t sz_sign(unsigned sz)
{
    return 1ULL << (sz * 8 - 1);
}
static inline int64_t sext(uint64_t v, unsigned sz)
{
    switch (sz) {
    case 1: return (int8_t)v;
    case 2: return (int16_t)v;
    case 4: return (int32_t)v;
    default: return (int64_t)v;
    }
}
static inline bool get_cf(struct cpu *c)
{
    uint64_t m = sz_mask(c->lf_sz);
    switch (c->lf_op) {
    case LF_ADD: return (c->lf_res & m) < (c->lf_a & m);
    case LF_ADC: return c->lf_cin ? (c->lf_res & m) <= (c->lf_a & m)
                                  : (c->lf_res & m) < (c->lf_a & m);
    case LF_SUB: return (c->lf_a & m) < (c->lf_b & m);
    case LF_SBB: return c->lf_cin ? (c->lf_a & m) <= (c->lf_b & m)
                                  : (c->lf_a & m) < (c->lf_b & m);
    case LF_LOGIC: return false;
    case LF_INC: case LF_DEC: case LF_MUL: return c->lf_cin;
    /* shifts: lf_a is the operand, lf_b the count (1..63, never 0) */
    case LF_SHL: return c->lf_b <= c->lf_sz * 8u ? (c->lf_a >> (c->lf_sz * 8u - c->lf_b)) & 1 : 0;
    case LF_SHR: return c->lf_b <= c->lf_sz * 8u ? (c->lf_a >> (c->lf_b - 1)) & 1 : 0;
    case LF_SAR: return (sext(c->lf_a, c->lf_sz) >> (c->lf_b - 1)) & 1;
    default: return c->rflags & F_CF;
    }
}

static inline void lazy(struct cpu *c, unsigned op, unsigned sz, uint64_t res, uint64_t a,
                        uint64_t b)
{
    c->lf_op = op;
    c->lf_sz = sz;
    c->lf_res = res;
    c->lf_a = a;
    c->lf_b = b;
}

/* Condition @cc after a SUB/CMP (lf_op == LF_SUB) straight from its operands; -1 for the
 * conditions (overflow, sign, parity) this does not cover. */
static inline int cond_sub(const struct cpu *c, unsigned cc)
{
    uint64_t a = c->lf_a, b = c->lf_b;
    switch (cc) {
    case 2: return a < b;
    case 3: return a >= b;
    case 4: return a == b;
    case 5: return a != b;
    case 6: return a <= b;
    case 7: return a > b;
    case 12: return sext(a, c->lf_sz) < sext(b, c->lf_sz);
    case 13: return sext(a, c->lf_sz) >= sext(b, c->lf_sz);
    case 14: return sext(a, c->lf_sz) <= sext(b, c->lf_sz);
    case 15: return sext(a, c->lf_sz) > sext(b, c->lf_sz);
    default: return -1;
    }
}

/* cond_eval() with its common cases inline: handlers pass a constant @cc, so each
 * specialized branch compiles to a compare or two on the lazy operands. */
static inline bool cond_fast(struct cpu *c, unsigned cc)
{
    if (c->lf_op == LF_SUB) {
        int r = cond_sub(c, cc);
        if (r >= 0)
            return r;
    }
    if ((cc == 4 || cc == 5) && c->lf_op != LF_NONE)
        return ((c->lf_res & sz_mask(c->lf_sz)) == 0) ^ (cc & 1);
    return cond_eval(c, cc);
}

/* ---- registers ---- */
static inline uint64_t reg_get(struct cpu *c, unsigned r, unsigned sz)
{
    switch (sz) {
    case 1: return (r & 0x10) ? (c->r[r & 3] >> 8) & 0xff : c->r[r] & 0xff;
    case 2: return c->r[r] & 0xffff;
    case 4: return c->r[r] & 0xffffffff;
    default: return c->r[r];
    }
}
static inline void reg_set(struct cpu *c, unsigned r, unsigned sz, uint64_t v)
{
    switch (sz) {
    case 1:
        if (r & 0x10)
            c->r[r & 3] = (c->r[r & 3] & ~0xff00ULL) | ((v & 0xff) << 8);
        else
            c->r[r] = (c->r[r] & ~0xffULL) | (v & 0xff);
        break;
    case 2: c->r[r] = (c->r[r] & ~0xffffULL) | (v & 0xffff); break;
    case 4: c->r[r] = v & 0xffffffff; break;
    default: c->r[r] = v; break;
    }
}

/* ---- exceptions (except.c) ---- */
_Noreturn void cpu_raise(struct cpu *c, int vec, int has_err, uint32_t err);
_Noreturn void cpu_fault(struct cpu *c, int vec, uint32_t err);   /* with error code */
_Noreturn void cpu_ud(struct cpu *c);
_Noreturn void cpu_gp0(struct cpu *c);
void cpu_deliver(struct cpu *c, int vec, int kind, int has_err, uint32_t err);
enum { EV_EXC, EV_SOFT, EV_EXT };   /* exception, INT n, external interrupt */
_Noreturn void cpu_stop_error(struct cpu *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- memory (mmu.c) ---- */
uint8_t *mmu_slow(struct cpu *c, uint64_t lin, unsigned need, bool *mmio, uint64_t *gpa);
uint64_t mem_read_slow(struct cpu *c, uint64_t lin, unsigned sz);
void mem_write_slow(struct cpu *c, uint64_t lin, unsigned sz, uint64_t v);
/* Implicit supervisor accesses (descriptor tables, TSS, interrupt stacks at CPL change). */
uint64_t mem_read_sys(struct cpu *c, uint64_t lin, unsigned sz);
void mem_write_sys(struct cpu *c, uint64_t lin, unsigned sz, uint64_t v);
uint64_t mmu_translate(struct cpu *c, uint64_t lin, unsigned need, bool fault, bool *ok);
void tlb_flush(struct cpu *c);
/* system.c: what CPUID returns for @leaf/@sub. */
void cpu_cpuid_leaf(const struct cpu *c, uint32_t leaf, uint32_t sub, uint32_t r[4]);
/* The jump-cache key of the current code size and privilege level in this epoch: entries
 * (and chains) made at another CPL or code size stay valid for when the CPU comes back. */
static inline void jc_rekey(struct cpu *c)
{
    c->jc_key = c->jc_epoch << 8 | (uint64_t)c->csz << 2 | c->cpl;
}
/* A new epoch: every jump-cache entry and chain is stale (TLB flush, code invalidation). */
static inline void jc_bump(struct cpu *c)
{
    c->jc_epoch++;
    jc_rekey(c);
}
void tlb_flush_page(struct cpu *c, uint64_t lin);
void tlb_protect_code(struct cpu *c, uint64_t gpage);
uint64_t phys_read(struct cpu *c, uint64_t gpa, unsigned sz);
void phys_write(struct cpu *c, uint64_t gpa, unsigned sz, uint64_t v);

/* Mix in higher bits so code and data a power of two apart do not share a slot. */
static inline unsigned tlb_index(uint64_t lin)
{
    return (unsigned)((lin >> 12) ^ (lin >> (12 + TLB_BITS))) & (TLB_SIZE - 1);
}
static inline uint8_t *tlb_fast(struct cpu *c, uint64_t lin, unsigned need, unsigned sz)
{
    struct tlb_entry *e = &c->tlb[tlb_index(lin)];
    if ((e->vpage == ((lin & ~0xfffULL) | 1)) && (e->perm & (need << c->umask_shift)) &&
        ((lin & 0xfff) + sz <= 0x1000))
        return e->host + (lin & 0xfff);
    return NULL;
}
static inline uint64_t ld(const uint8_t *p, unsigned sz)
{
    uint64_t v = 0;
    switch (sz) {
    case 1: return *p;
    case 2: { uint16_t x; memcpy(&x, p, 2); return x; }
    case 4: { uint32_t x; memcpy(&x, p, 4); return x; }
    default: memcpy(&v, p, 8); return v;
    }
}
static inline void st(uint8_t *p, unsigned sz, uint64_t v)
{
    switch (sz) {
    case 1: *p = (uint8_t)v; break;
    case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
    default: memcpy(p, &v, 8); break;
    }
}
static inline uint64_t mem_read(struct cpu *c, uint64_t lin, unsigned sz)
{
    uint8_t *p = tlb_fast(c, lin, P_R, sz);
    return p ? ld(p, sz) : mem_read_slow(c, lin, sz);
}
static inline void mem_write(struct cpu *c, uint64_t lin, unsigned sz, uint64_t v)
{
    uint8_t *p = tlb_fast(c, lin, P_W, sz);
    if (p)
        st(p, sz, v);
    else
        mem_write_slow(c, lin, sz, v);
}
/* Bulk copy between linear memory and a buffer, through the TLB, faulting as needed. */
void mem_read_buf(struct cpu *c, uint64_t lin, void *buf, unsigned len);
void mem_write_buf(struct cpu *c, uint64_t lin, const void *buf, unsigned len);

/* ---- operands (decode.c) ---- */
static inline uint64_t amask(unsigned asz)
{
    return asz == 8 ? ~0ULL : asz == 4 ? 0xffffffffULL : 0xffffULL;
}
static inline uint64_t ea_off(struct cpu *c, const struct insn *i)
{
    uint64_t a = (uint64_t)(int64_t)i->disp;
    if (i->base < 16)
        a += c->r[i->base];
    else if (i->base == 0xfe)
        a += c->rip;
    if (i->index < 16)
        a += c->r[i->index] << i->scale;
    return a & amask(i->asz);
}
static inline uint64_t seg_lin(struct cpu *c, unsigned seg, uint64_t off)
{
    uint64_t l = c->sbase[seg] + off;
    return c->code64 ? l : l & 0xffffffffULL;
}
static inline uint64_t ea(struct cpu *c, const struct insn *i)
{
    return seg_lin(c, i->seg, ea_off(c, i));
}
static inline uint64_t rm_read(struct cpu *c, const struct insn *i, unsigned sz)
{
    if (i->mod == 3)
        return reg_get(c, i->rm, sz);
    return mem_read(c, ea(c, i), sz);
}
static inline void rm_write(struct cpu *c, const struct insn *i, unsigned sz, uint64_t v)
{
    if (i->mod == 3)
        reg_set(c, i->rm, sz, v);
    else
        mem_write(c, ea(c, i), sz, v);
}

/* ---- stack (control.c) ---- */
void push(struct cpu *c, unsigned sz, uint64_t v);
uint64_t pop(struct cpu *c, unsigned sz);
static inline uint64_t sp_get(struct cpu *c)
{
    return c->r[4] & amask(c->ssz);
}
static inline void sp_set(struct cpu *c, uint64_t v)
{
    reg_set(c, 4, c->ssz, v);
}

/* ---- decoder (decode.c) ---- */
/* Decode one instruction from @buf (@avail bytes). Returns its length, or 0 when more
 * than @avail bytes are needed. Invalid encodings decode to a #UD handler. */
unsigned decode(struct cpu *c, const uint8_t *buf, unsigned avail, struct insn *out);

/* ---- system (system.c) ---- */
void cpu_update_mode(struct cpu *c);
void seg_load(struct cpu *c, unsigned s, uint16_t sel);
void seg_load_real(struct cpu *c, unsigned s, uint16_t sel);
bool desc_read(struct cpu *c, uint16_t sel, uint64_t *lo, uint64_t *hi);
void desc_to_seg(struct cpu_seg *s, uint16_t sel, uint64_t lo, uint64_t hi);
void far_transfer(struct cpu *c, uint16_t sel, uint64_t off, bool call, unsigned osz);
void cr_write(struct cpu *c, unsigned n, uint64_t v);
uint64_t cr_read(struct cpu *c, unsigned n);
void tss_stack(struct cpu *c, unsigned dpl, unsigned ist, uint16_t *ss, uint64_t *sp);

/* ---- translation cache (tcache.c) ---- */
struct tcache *tcache_new(uint64_t ram_size);
void tcache_free(struct tcache *t);
void tcache_flush(struct tcache *t);
/* A write hit a page marked as holding code: drop its blocks if the bytes overlap code. */
void tcache_write(struct cpu *c, uint64_t gpa, unsigned len);
bool tcache_page_has_code(struct tcache *t, uint64_t gpage);
bool tcache_set_jit(struct cpu *c, bool on);
struct block *tcache_get(struct cpu *c);
void tcache_run(struct cpu *c);

/* ---- block compiler (jit.c) ---- */
struct jit;
struct jit *jit_new(void);      /* NULL: no JIT (not x86-64, VMCORE_EMU_JIT=0, no mapping) */
bool jit_usable(char *why, size_t n);
void jit_free(struct jit *j);
void jit_flush(struct jit *j);
bool jit_full(const struct jit *j);
unsigned jit_hot(const struct jit *j);  /* runs before a block is compiled */
/* Compile @n instructions; returns the entry (void fn(struct cpu *)) or NULL to interpret.
 * *chain_entry is where other blocks' chain exits jump in. */
const void *jit_compile(struct jit *j, struct cpu *c, const struct insn *insn, unsigned n,
                        unsigned csz, const void **chain_entry);
void jit_link(void *slot, uint64_t lin, uint64_t key, const void *target);

/* Pick a size- and form-specialized handler for hot instructions (alu.c). */
void specialize(struct insn *i);
bool specialize_control(struct insn *i);
bool specialize_shift(struct insn *i);
bool specialize_jcc32(struct insn *i);
bool specialize_muldiv(struct insn *i);
bool specialize_bt(struct insn *i);
/* Memory forms with 32-bit addressing outside 64-bit code: handlers per address shape. */
void specialize_ea32(struct insn *i);
/* Turn a conditional branch into a block side exit; false if @i is not one. */
bool specialize_side_exit(struct insn *i);

/* ---- handlers ---- */
#define OP(name) void name(struct cpu *c __attribute__((unused)), \
                       const struct insn *i __attribute__((unused)))
/* alu.c */
OP(op_alu_rm_r); OP(op_alu_r_rm); OP(op_alu_a_imm); OP(op_alu_rm_imm);
OP(op_test_rm_r); OP(op_test_rm_imm); OP(op_test_a_imm); OP(op_incdec_rm); OP(op_incdec_r);
OP(op_not); OP(op_neg); OP(op_mov_rm_r); OP(op_mov_r_rm); OP(op_mov_r_imm);
OP(op_mov_rm_imm); OP(op_mov_a_moffs); OP(op_mov_moffs_a); OP(op_lea); OP(op_xchg_rm_r);
OP(op_xchg_a_r); OP(op_cmov); OP(op_setcc); OP(op_movzx); OP(op_movsx); OP(op_movsxd);
OP(op_cbw); OP(op_cwd); OP(op_lahf); OP(op_sahf); OP(op_cmc); OP(op_clc); OP(op_stc);
OP(op_cld); OP(op_std); OP(op_xadd); OP(op_cmpxchg); OP(op_cmpxchg8b); OP(op_bswap);
OP(op_daa); OP(op_das); OP(op_aaa); OP(op_aas); OP(op_aam); OP(op_aad); OP(op_xlat);
OP(op_nop); OP(op_salc);
/* shift.c */
OP(op_shift); OP(op_shld); OP(op_shrd);
/* muldiv.c */
OP(op_mul1); OP(op_imul1); OP(op_div); OP(op_idiv); OP(op_imul_r_rm); OP(op_imul_r_rm_imm);
/* bitops.c */
OP(op_bt_rm_r); OP(op_bt_rm_imm); OP(op_bsf); OP(op_bsr); OP(op_popcnt);
/* string.c */
OP(op_movs); OP(op_stos); OP(op_lods); OP(op_cmps); OP(op_scas); OP(op_ins); OP(op_outs);
/* control.c */
OP(op_jcc); OP(op_jmp_rel); OP(op_call_rel); OP(op_jmp_rm); OP(op_call_rm); OP(op_ret);
OP(op_loop); OP(op_jcxz); OP(op_push_r); OP(op_pop_r); OP(op_push_imm); OP(op_push_rm);
OP(op_pop_rm); OP(op_push_seg); OP(op_pop_seg); OP(op_pushf); OP(op_popf); OP(op_pusha);
OP(op_popa); OP(op_enter); OP(op_leave); OP(op_jmp_far); OP(op_call_far); OP(op_jmp_far_m);
OP(op_call_far_m); OP(op_retf); OP(op_iret); OP(op_int); OP(op_int3); OP(op_into);
OP(op_int1);
/* system.c */
OP(op_hlt); OP(op_cli); OP(op_sti); OP(op_in); OP(op_out); OP(op_cpuid); OP(op_rdtsc);
OP(op_rdtscp); OP(op_rdmsr); OP(op_wrmsr); OP(op_mov_cr); OP(op_mov_dr); OP(op_grp6);
OP(op_grp7); OP(op_mov_rm_seg); OP(op_mov_seg_rm); OP(op_lxs); OP(op_clts); OP(op_syscall);
OP(op_sysret); OP(op_sysenter); OP(op_sysexit); OP(op_ud); OP(op_invd); OP(op_grp15);
OP(op_lar); OP(op_lsl);
/* sse.c */
OP(op_sse); OP(op_sse38); OP(op_sse3a); OP(op_x87);

#endif
