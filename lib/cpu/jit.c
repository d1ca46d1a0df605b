/* Block compiler: turns a translated block (an array of predecoded instructions) into
 * x86-64 host code. This is the JIT that tcache.c's design left room for.
 *
 * Shape of the code for one block:
 *   entry:  push rbx, r12, r13; rbx = struct cpu *
 *   chain:  r12 = c->rip (the block's first instruction; blocks are keyed by physical
 *           address, so the linear RIP is only known at run time)
 *   per instruction: either an inline fast path (hot integer forms, loads and stores with
 *           an inline software-TLB probe, conditional branches) whose rare cases jump to
 *           an out-of-line stub, or a call of the instruction's handler, exactly as the
 *           interpreter would make it (insn_rip and rip stored first, stop_block after).
 *   exits:  icount += instructions run; then either return to tcache_run() or, for a
 *           direct branch, jump straight into the next block's code through a chain slot
 *           that tcache_run() fills in (checked against the jump-cache key, so a TLB
 *           flush, code invalidation or mode change unlinks every chain at once).
 *
 * Guest registers and lazy flags stay in struct cpu: an inline form does exactly what its
 * handler does to that state (the same lazy-flag fields), so interpreter and compiled code
 * can interleave at any instruction boundary and every handler keeps working unchanged.
 * Register-only forms need no rip update; faulting forms materialize rip in their stub.
 *
 * x86-64 hosts only; elsewhere (or when the code arena cannot be mapped, or with
 * VMCORE_EMU_JIT=0) blocks run in the interpreter. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "x86.h"

#if defined(__x86_64__)

#define JIT_ARENA (32u << 20)
#define JIT_BLOCK_ROOM (64u * 1024)
#define MAX_LABELS 1024
#define MAX_FIXUPS 2048

/* A block is compiled on its JIT_HOT-th run: code that runs once (boot, random tests)
 * costs more to compile than to interpret. */
#define JIT_HOT 8

struct jit {
    uint8_t *base;
    size_t used, size;
    unsigned hot;
    const char *dump;       /* VMCORE_EMU_JIT_DUMP: folder that receives every block */
    struct ctx *cx;         /* compiler state (about 50 KiB), allocated at the first compile */
};

/* For whoever works on the compiler: <dir>/<host address>-<guest linear rip>.bin holds a
 * block's host code (objdump -D -b binary -m i386:x86-64 shows it). */
static void dump_block(const char *dir, const void *code, size_t len, const struct cpu *c)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%p-%llx.bin", dir, code,
             (unsigned long long)(c->sbase[CPU_CS] + c->rip));
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(code, 1, len, f);
        fclose(f);
    }
}

/* VMCORE_EMU_JIT: "0" or "off" interprets everything; "eager" compiles every block on its
 * first run (the tests use it so that short test programs run compiled). */
struct jit *jit_new(void)
{
    const char *e = getenv("VMCORE_EMU_JIT");
    if (e && (!strcmp(e, "0") || !strcmp(e, "off")))
        return NULL;
    struct jit *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->hot = e && !strcmp(e, "eager") ? 1 : JIT_HOT;
    j->dump = getenv("VMCORE_EMU_JIT_DUMP");
    j->base = mmap(NULL, JIT_ARENA, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (j->base == MAP_FAILED) {
        free(j);
        return NULL;    /* W^X policy or no memory: the interpreter runs everything */
    }
    j->size = JIT_ARENA;
    return j;
}

bool jit_usable(char *why, size_t n)
{
    const char *e = getenv("VMCORE_EMU_JIT");
    if (e && (!strcmp(e, "0") || !strcmp(e, "off"))) {
        snprintf(why, n, "turned off by VMCORE_EMU_JIT=%s", e);
        return false;
    }
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        snprintf(why, n, "no writable and executable memory: %s", strerror(errno));
        return false;
    }
    munmap(p, 4096);
    return true;
}

void jit_free(struct jit *j)
{
    if (!j)
        return;
    free(j->cx);
    munmap(j->base, j->size);
    free(j);
}

void jit_flush(struct jit *j)
{
    if (j)
        j->used = 0;
}

unsigned jit_hot(const struct jit *j)
{
    return j->hot;
}

/* Less room left than one block can take: time to flush the whole cache. */
bool jit_full(const struct jit *j)
{
    return j && j->size - j->used < JIT_BLOCK_ROOM;
}

/* ---- emitter ---- */

enum { RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6, RDI = 7, R12 = 12,
       R13 = 13, R14 = 14, R15 = 15 };
enum { W32 = 0, W64 = 1, W16 = 2, W8 = 4 };

struct fixup { uint32_t at; uint16_t label; };

struct em {
    uint8_t *p, *start, *end;
    bool full;
    uint32_t label[MAX_LABELS];
    unsigned nlabels;
    struct fixup fix[MAX_FIXUPS];
    unsigned nfix;
};

static void b1(struct em *e, unsigned v)
{
    if (e->p < e->end)
        *e->p++ = (uint8_t)v;
    else
        e->full = true;
}
static void b4(struct em *e, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        b1(e, (v >> (8 * k)) & 0xff);
}
static void b8(struct em *e, uint64_t v)
{
    b4(e, (uint32_t)v);
    b4(e, (uint32_t)(v >> 32));
}

/* A ModRM operand: a register, or [base + index * 2^scale + disp]. */
struct opnd { int reg; int base; int index; unsigned scale; int32_t disp; };
static struct opnd R(int r) { return (struct opnd){ r, -1, -1, 0, 0 }; }
static struct opnd M(int base, int32_t disp) { return (struct opnd){ -1, base, -1, 0, disp }; }
static struct opnd MI(int base, int index, unsigned scale, int32_t disp)
{
    return (struct opnd){ -1, base, index, scale, disp };
}

/* [prefix 66] [REX] opcode (one byte, or 0x0fXX) ModRM [SIB] [disp] */
static void enc(struct em *e, unsigned w, unsigned opc, unsigned reg, struct opnd o)
{
    unsigned rex = ((w & W64) ? 8 : 0) | ((reg & 8) ? 4 : 0);
    if (o.reg >= 0)
        rex |= (o.reg & 8) ? 1 : 0;
    else
        rex |= ((o.base & 8) ? 1 : 0) | ((o.index >= 0 && (o.index & 8)) ? 2 : 0);
    /* byte registers 4-7 are SPL..DIL only with a REX prefix (AH..BH without) */
    bool bytereg = (w & W8) || opc == 0x0fb6 || opc == 0x0fbe || (opc & 0xfff0) == 0x0f90;
    if (bytereg && ((o.reg >= 4 && o.reg < 8) || ((w & W8) && reg >= 4 && reg < 8)))
        rex |= 0x10;
    if (w & W16)
        b1(e, 0x66);
    if (rex)
        b1(e, 0x40 | (rex & 15));
    if (opc > 0xff)
        b1(e, opc >> 8);
    b1(e, opc & 0xff);
    if (o.reg >= 0) {
        b1(e, 0xc0 | (reg & 7) << 3 | (o.reg & 7));
        return;
    }
    unsigned mod = o.disp == 0 && (o.base & 7) != RBP ? 0 : (o.disp >= -128 && o.disp <= 127) ? 1 : 2;
    if (o.index >= 0) {
        b1(e, mod << 6 | (reg & 7) << 3 | 4);
        b1(e, o.scale << 6 | (o.index & 7) << 3 | (o.base & 7));
    } else {
        b1(e, mod << 6 | (reg & 7) << 3 | (o.base & 7));
        if ((o.base & 7) == RSP)
            b1(e, 0x24);
    }
    if (mod == 1)
        b1(e, (uint8_t)o.disp);
    else if (mod == 2)
        b4(e, (uint32_t)o.disp);
}

/* width-selected forms: 8-bit opcodes are one less than the 16/32/64 ones */
static unsigned wflags(unsigned sz) { return sz == 8 ? W64 : sz == 2 ? W16 : sz == 1 ? W8 : W32; }
static void op_w(struct em *e, unsigned sz, unsigned opc, unsigned reg, struct opnd o)
{
    enc(e, wflags(sz), sz == 1 ? opc - 1 : opc, reg, o);
}

static void mov_load(struct em *e, unsigned sz, int r, struct opnd m) { op_w(e, sz, 0x8b, (unsigned)r, m); }
static void mov_store(struct em *e, unsigned sz, struct opnd m, int r) { op_w(e, sz, 0x89, (unsigned)r, m); }
static void movzx8(struct em *e, int r, struct opnd m) { enc(e, W32, 0x0fb6, (unsigned)r, m); }
static void movzx16(struct em *e, int r, struct opnd m) { enc(e, W32, 0x0fb7, (unsigned)r, m); }
/* load @sz bytes zero-extended into the 64-bit register */
static void load_zx(struct em *e, unsigned sz, int r, struct opnd m)
{
    if (sz == 1)
        movzx8(e, r, m);
    else if (sz == 2)
        movzx16(e, r, m);
    else
        mov_load(e, sz, r, m);
}
static void mov_imm64(struct em *e, int r, uint64_t v)
{
    if (v <= 0xffffffffULL) {          /* mov r32, imm32 zero-extends */
        if (r & 8)
            b1(e, 0x41);
        b1(e, 0xb8 + (r & 7));
        b4(e, (uint32_t)v);
    } else if ((int64_t)v >= INT32_MIN && (int64_t)v <= INT32_MAX) {
        enc(e, W64, 0xc7, 0, R(r));
        b4(e, (uint32_t)v);
    } else {
        b1(e, 0x48 | ((r & 8) ? 1 : 0));
        b1(e, 0xb8 + (r & 7));
        b8(e, v);
    }
}
/* mov [m], imm (sz 1/2/4; 8 sign-extends a 32-bit immediate) */
static void mov_mem_imm(struct em *e, unsigned sz, struct opnd m, uint32_t v)
{
    op_w(e, sz, 0xc7, 0, m);
    if (sz == 1)
        b1(e, v);
    else if (sz == 2)
        b1(e, v), b1(e, v >> 8);
    else
        b4(e, v);
}
/* group-1 ALU op (0 add .. 7 cmp) with an immediate */
static void alu_imm(struct em *e, unsigned sz, unsigned op, struct opnd o, int32_t v)
{
    if (sz != 1 && v >= -128 && v <= 127) {
        enc(e, wflags(sz), 0x83, op, o);
        b1(e, (uint8_t)v);
    } else if (sz == 1) {
        enc(e, W8, 0x80, op, o);
        b1(e, (uint8_t)v);
    } else {
        enc(e, wflags(sz), 0x81, op, o);
        if (sz == 2)
            b1(e, v), b1(e, v >> 8);
        else
            b4(e, (uint32_t)v);
    }
}
/* group-1 ALU op, register destination/source: op r/m, r */
static void alu_rr(struct em *e, unsigned sz, unsigned op, struct opnd dst, int src)
{
    op_w(e, sz, op * 8 + 1, (unsigned)src, dst);
}
static void shift_imm(struct em *e, unsigned sz, unsigned op, int r, unsigned n)
{
    op_w(e, sz, 0xc1, op, R(r));
    b1(e, n);
}
static void lea(struct em *e, unsigned sz, int r, struct opnd m) { enc(e, wflags(sz), 0x8d, (unsigned)r, m); }

static unsigned new_label(struct em *e)
{
    if (e->nlabels >= MAX_LABELS) {
        e->full = true;
        return 0;
    }
    e->label[e->nlabels] = UINT32_MAX;
    return e->nlabels++;
}
static void bind(struct em *e, unsigned l) { e->label[l] = (uint32_t)(e->p - e->start); }
static void rel32_to(struct em *e, unsigned l)
{
    if (e->nfix >= MAX_FIXUPS) {
        e->full = true;
        return;
    }
    e->fix[e->nfix++] = (struct fixup){ (uint32_t)(e->p - e->start), (uint16_t)l };
    b4(e, 0);
}
static void jmp_to(struct em *e, unsigned l) { b1(e, 0xe9); rel32_to(e, l); }
static void jcc_to(struct em *e, unsigned cc, unsigned l) { b1(e, 0x0f); b1(e, 0x80 + cc); rel32_to(e, l); }
static void call_abs(struct em *e, const void *fn)
{
    int64_t rel = (int64_t)(uintptr_t)fn - (int64_t)(uintptr_t)(e->p + 5);
    if (rel >= INT32_MIN && rel <= INT32_MAX && e->p + 5 <= e->end) {
        b1(e, 0xe8);
        b4(e, (uint32_t)(int32_t)rel);
        return;
    }
    mov_imm64(e, RAX, (uint64_t)(uintptr_t)fn);
    b1(e, 0xff);
    b1(e, 0xd0);
}
static bool resolve(struct em *e)
{
    for (unsigned k = 0; k < e->nfix; k++) {
        uint32_t at = e->fix[k].at, to = e->label[e->fix[k].label];
        if (to == UINT32_MAX)
            return false;
        int32_t rel = (int32_t)(to - (at + 4));
        memcpy(e->start + at, &rel, 4);
    }
    return true;
}

/* ---- struct cpu layout ---- */
#define OFF(f) ((int32_t)offsetof(struct cpu, f))
static struct opnd GPR(unsigned r) { return M(RBX, OFF(r) + (int32_t)(r & 15) * 8); }
/* an 8-bit register operand: 0x10|n is AH..BH, the second byte of r[n] */
static struct opnd GPR8(unsigned r)
{
    return (r & 0x10) ? M(RBX, OFF(r) + (int32_t)(r & 3) * 8 + 1) : GPR(r);
}
static struct opnd FLD(int32_t off) { return M(RBX, off); }

_Static_assert(sizeof(struct tlb_entry) == 32, "the inline TLB probe scales the index by 32");
_Static_assert(offsetof(struct cpu, lf_sz) == offsetof(struct cpu, lf_op) + 1,
               "lf_op and lf_sz are stored as one 16-bit word");

/* ---- compiling a block ---- */

/* Guest registers live in host registers within a block: up to NHR of them, in the
 * callee-saved RBP, R13, R14, R15 (so helper calls keep them). A handler call writes the
 * dirty ones back and forgets all (handlers use struct cpu); so does every exit. */
#define NHR 4
static const int hreg[NHR] = { RBP, R13, R14, R15 };
struct rmap {
    int8_t guest[NHR];      /* guest register held, or -1 */
    bool dirty[NHR];        /* newer than c->r[] */
    uint32_t used[NHR];     /* for least-recently-used eviction */
    uint32_t clock;
};

struct chain_slot { uint64_t lin, key; const void *target; };

struct ctx {
    struct em e;
    const struct insn *insn;
    unsigned n, csz;
    uint32_t *off;          /* byte offset of instruction k from the block start */
    int lf_op, lf_sz;       /* lazy-flag kind known at this point of the block, or -1 */
    int hf;                 /* host flags hold the guest's: HF_ALL, HF_NOCF (after INC/DEC) */
    bool live[64];          /* the flags instruction k leaves are read by someone */
    struct rmap rm;         /* guest registers held in host registers right now */
    unsigned loop_head;     /* label: the block's start, for a branch back to it */
    bool calls;             /* the main line has called a handler so far */
    unsigned epilogue;
    /* stubs: generated after the main line */
    /* a stub runs instruction k's handler for the rare case of its inline form; it is
     * entered with the register map `before` and must rejoin with the map `after` */
    struct stub { unsigned label, k; struct rmap before, after; } stubs[512];
    unsigned nstubs;
    struct exitrec { unsigned label; unsigned count; uint8_t chain; } exits[512];
    unsigned nexits;
};

static void rm_reset(struct rmap *m)
{
    for (unsigned s = 0; s < NHR; s++)
        m->guest[s] = -1, m->dirty[s] = false, m->used[s] = 0;
    m->clock = 0;
}
static int rm_find(const struct rmap *m, unsigned g)
{
    for (unsigned s = 0; s < NHR; s++)
        if (m->guest[s] == (int)g)
            return (int)s;
    return -1;
}
static void rm_writeback(struct em *e, struct rmap *m, unsigned s)
{
    if (m->guest[s] >= 0 && m->dirty[s]) {
        mov_store(e, 8, GPR((unsigned)m->guest[s]), hreg[s]);
        m->dirty[s] = false;
    }
}
/* Write back every dirty register (before an exit or a call): the map stays valid. */
static void flush_regs(struct ctx *x)
{
    for (unsigned s = 0; s < NHR; s++)
        rm_writeback(&x->e, &x->rm, s);
}
/* Write back and forget all: a handler is about to read and write struct cpu. */
static void drop_regs(struct ctx *x)
{
    flush_regs(x);
    rm_reset(&x->rm);
}
/* Make guest register @g's home in struct cpu current and stop caching it. */
static void uncache(struct ctx *x, unsigned g)
{
    int s = rm_find(&x->rm, g);
    if (s >= 0) {
        rm_writeback(&x->e, &x->rm, (unsigned)s);
        x->rm.guest[s] = -1;
    }
}
static unsigned rm_slot(struct ctx *x, unsigned g)
{
    struct rmap *m = &x->rm;
    unsigned best = 0;
    for (unsigned s = 0; s < NHR; s++) {
        if (m->guest[s] < 0) {
            best = s;
            break;
        }
        if (m->used[s] < m->used[best])
            best = s;
    }
    rm_writeback(&x->e, m, best);
    m->guest[best] = (int8_t)g;
    m->dirty[best] = false;
    return best;
}
/* Operand to read all 64 bits of guest register @g (loaded into a host register). */
static struct opnd rd(struct ctx *x, unsigned g)
{
    int s = rm_find(&x->rm, g);
    if (s < 0) {
        s = (int)rm_slot(x, g);
        mov_load(&x->e, 8, hreg[s], GPR(g));
    }
    x->rm.used[s] = ++x->rm.clock;
    return R(hreg[s]);
}
/* Operand to write all 64 bits of guest register @g (the caller writes it next). */
static struct opnd wr(struct ctx *x, unsigned g)
{
    int s = rm_find(&x->rm, g);
    if (s < 0)
        s = (int)rm_slot(x, g);
    x->rm.dirty[s] = true;
    x->rm.used[s] = ++x->rm.clock;
    return R(hreg[s]);
}
/* 8-bit register @r (0x10|n: AH..BH) to read: the host register for AL..R15B, else the
 * byte in struct cpu (made current first). */
static struct opnd rd8(struct ctx *x, unsigned r)
{
    if (r & 0x10) {
        int s = rm_find(&x->rm, r & 3);
        if (s >= 0)
            rm_writeback(&x->e, &x->rm, (unsigned)s);
        return GPR8(r);
    }
    return rd(x, r);
}
/* 8-bit register @r to write: in struct cpu, not cached. */
static struct opnd wr8(struct ctx *x, unsigned r)
{
    uncache(x, (r & 0x10) ? (r & 3) : r);
    return GPR8(r);
}

/* rip of instruction k, relative to the block entry (r12) */
static void rip_to(struct ctx *x, int r, uint32_t rel)
{
    lea(&x->e, 8, r, M(R12, (int32_t)rel));
}
static void store_rips(struct ctx *x, unsigned k)
{
    rip_to(x, RAX, x->off[k]);
    mov_store(&x->e, 8, FLD(OFF(insn_rip)), RAX);
    rip_to(x, RAX, x->off[k] + x->insn[k].len);
    mov_store(&x->e, 8, FLD(OFF(rip)), RAX);
}

/* leave the block after @count instructions; @chain: try the next block's code */
static unsigned exit_label(struct ctx *x, unsigned count, bool chain)
{
    for (unsigned k = 0; k < x->nexits; k++)
        if (x->exits[k].count == count && x->exits[k].chain == chain)
            return x->exits[k].label;
    if (x->nexits >= 512) {
        x->e.full = true;
        return x->epilogue;
    }
    unsigned l = new_label(&x->e);
    x->exits[x->nexits++] = (struct exitrec){ l, count, chain };
    return l;
}

/* The call of instruction k's handler, as the interpreter makes it; guest registers must
 * be in struct cpu already. */
static void emit_call_raw(struct ctx *x, unsigned k)
{
    struct em *e = &x->e;
    store_rips(x, k);
    mov_store(e, 8, R(RDI), RBX);       /* mov rdi, rbx */
    mov_imm64(e, RSI, (uint64_t)(uintptr_t)&x->insn[k]);
    call_abs(e, (const void *)x->insn[k].fn);
    /* cmp byte [stop_block], 0 ; jne exit */
    enc(e, W8, 0x80, 7, FLD(OFF(stop_block)));
    b1(e, 0);
    jcc_to(e, 5, exit_label(x, k + 1, false));
}

static void emit_call(struct ctx *x, unsigned k)
{
    x->calls = true;
    drop_regs(x);
    emit_call_raw(x, k);
}

static unsigned stub(struct ctx *x, unsigned k)
{
    if (x->nstubs >= 512) {
        x->e.full = true;
        return x->epilogue;
    }
    unsigned l = new_label(&x->e);
    x->stubs[x->nstubs++] = (struct stub){ .label = l, .k = k };
    return l;
}

static void store_lazy(struct ctx *x, unsigned k, unsigned op, unsigned sz, int res, int a,
                       int b)
{
    struct em *e = &x->e;
    if (!x->live[k]) {
        /* nobody reads these flags: the next writer comes first (flag liveness) */
        x->lf_op = x->lf_sz = -1;
        return;
    }
    mov_store(e, 8, FLD(OFF(lf_res)), res);
    mov_store(e, 8, FLD(OFF(lf_a)), a);
    mov_store(e, 8, FLD(OFF(lf_b)), b);
    mov_mem_imm(e, 2, FLD(OFF(lf_op)), op | sz << 8);
    x->lf_op = (int)op;
    x->lf_sz = (int)sz;
}

/* Linear address of instruction k's memory operand into RAX (@seg: plus the segment
 * base; without it, the offset LEA computes). False: not a shape we compile (16-bit
 * addressing, 32-bit addressing in 64-bit code). */
static bool emit_lin(struct ctx *x, unsigned k, bool seg)
{
    struct em *e = &x->e;
    const struct insn *i = &x->insn[k];
    bool code64 = x->csz == 8;
    if (code64 ? i->asz != 8 : i->asz != 4)
        return false;
    unsigned sz = code64 ? 8 : 4;
    if (i->base == 0xfe) {
        if (!code64 || i->index < 16)
            return false;
        int64_t rel = (int64_t)x->off[k] + i->len + i->disp;
        lea(e, 8, RAX, M(R12, (int32_t)rel));
    } else if (i->base < 16) {
        mov_load(e, sz, RAX, rd(x, i->base));
        if (i->index < 16) {
            mov_load(e, sz, RCX, rd(x, i->index));
            lea(e, sz, RAX, MI(RAX, RCX, i->scale, i->disp));
        } else if (i->disp) {
            lea(e, sz, RAX, M(RAX, i->disp));
        }
    } else if (i->index < 16) {
        mov_load(e, sz, RCX, rd(x, i->index));
        /* no base: [index*s + disp32] needs base=rbp,mod=0; use lea with rcx scaled */
        if (i->scale)
            shift_imm(e, sz, 4, RCX, i->scale);
        lea(e, sz, RAX, M(RCX, i->disp));
    } else {
        mov_imm64(e, RAX, code64 ? (uint64_t)(int64_t)i->disp : (uint32_t)i->disp);
    }
    /* + segment base; 32-bit arithmetic wraps and zero-extends, as seg_lin() masks */
    if (seg)
        op_w(e, sz, 0x03, RAX, FLD(OFF(sbase) + (int32_t)i->seg * 8));
    return true;
}

/* TLB probe for an access of @sz bytes at RAX needing @need (P_R or P_W). On a hit,
 * RDX = host page, EAX = page offset; otherwise jump to @miss. Clobbers RCX. */
static void emit_tlb(struct ctx *x, unsigned sz, unsigned need, unsigned miss)
{
    struct em *e = &x->e;
    for (unsigned s = 0; s < x->nstubs; s++)
        if (x->stubs[s].label == miss)
            x->stubs[s].before = x->rm;
    mov_store(e, 4, R(RCX), RAX);               /* ecx = lin */
    shift_imm(e, 4, 5, RCX, 12);
    mov_store(e, 4, R(RDX), RAX);
    shift_imm(e, 4, 5, RDX, 12 + TLB_BITS);
    alu_rr(e, 4, 6, R(RCX), RDX);               /* xor ecx, edx */
    alu_imm(e, 4, 4, R(RCX), TLB_SIZE - 1);     /* and */
    shift_imm(e, 4, 4, RCX, 5);
    lea(e, 8, RDX, MI(RBX, RCX, 0, OFF(tlb)));
    mov_store(e, 8, R(RCX), RAX);
    alu_imm(e, 8, 4, R(RCX), -4096);
    alu_imm(e, 8, 1, R(RCX), 1);
    op_w(e, 8, 0x3b, RCX, M(RDX, (int32_t)offsetof(struct tlb_entry, vpage)));
    jcc_to(e, 5, miss);
    movzx8(e, RCX, FLD(need == P_W ? OFF(need_w) : OFF(need_r)));
    /* test [rdx+perm], cl */
    enc(e, W8, 0x84, RCX, M(RDX, (int32_t)offsetof(struct tlb_entry, perm)));
    jcc_to(e, 4, miss);
    if (sz > 1) {
        mov_store(e, 4, R(RCX), RAX);
        alu_imm(e, 4, 4, R(RCX), 0xfff);
        alu_imm(e, 4, 7, R(RCX), (int32_t)(0x1000 - sz));
        jcc_to(e, 7, miss);                     /* ja */
    }
    mov_load(e, 8, RDX, M(RDX, (int32_t)offsetof(struct tlb_entry, host)));
    alu_imm(e, 4, 4, R(RAX), 0xfff);
}

/* The memory operand of instruction k, @sz bytes needing @need: its stub, linear address
 * and TLB probe. On the fast path the operand is then MI(RDX, RAX, 0, 0). */
static void emit_mem(struct ctx *x, unsigned k, unsigned sz, unsigned need)
{
    unsigned miss = stub(x, k);
    emit_lin(x, k, true);
    emit_tlb(x, sz, need, miss);
}

/* The r/m source of instruction k, @sz bytes zero-extended, into host register @dst:
 * memory through emit_mem(), or the register rm. */
static void emit_rm_src(struct ctx *x, unsigned k, unsigned sz, int dst)
{
    const struct insn *i = &x->insn[k];
    if (i->mod != 3) {
        emit_mem(x, k, sz, P_R);
        load_zx(&x->e, sz, dst, MI(RDX, RAX, 0, 0));
    } else {
        load_zx(&x->e, sz, dst, sz == 1 ? rd8(x, i->rm) : rd(x, i->rm));
    }
}

/* After MUL/IMUL (host CF = OF = overflow, RAX = the low result; only moves since):
 * the lazy state mul_flags() stores, LF_MUL with the overflow in lf_cin. */
static void store_mul_flags(struct ctx *x, unsigned k, unsigned sz)
{
    if (x->live[k]) {
        enc(&x->e, W32, 0x0f92, 0, R(RCX));            /* setc cl */
        mov_store(&x->e, 1, FLD(OFF(lf_cin)), RCX);
        alu_rr(&x->e, 4, 6, R(RSI), RSI);
    }
    store_lazy(x, k, LF_MUL, sz, RAX, RAX, RSI);
}

/* Lazy-flag kind of the ALU ops (ADC/SBB have their own path). */
static const uint8_t alu_lf[8] = { LF_ADD, LF_LOGIC, 0, 0, LF_LOGIC, LF_SUB, LF_LOGIC, LF_SUB };

/* Conditional branch of instruction k on a lazy-flag state known at compile time: the
 * host recomputes the flags with the same operation and size, then branches natively.
 * Returns the host condition to jump on, or -1 when this state needs cond_eval(). */
static int emit_native_flags(struct ctx *x, unsigned cc)
{
    struct em *e = &x->e;
    unsigned sz = (unsigned)x->lf_sz;
    switch (x->lf_op) {
    case LF_SUB:
        load_zx(e, sz, RAX, FLD(OFF(lf_a)));
        op_w(e, sz, 0x3b, RAX, FLD(OFF(lf_b)));         /* cmp a, b */
        return (int)cc;
    case LF_ADD:
        load_zx(e, sz, RAX, FLD(OFF(lf_a)));
        op_w(e, sz, 0x03, RAX, FLD(OFF(lf_b)));         /* add a, b */
        return (int)cc;
    case LF_LOGIC:
        load_zx(e, sz, RAX, FLD(OFF(lf_res)));
        op_w(e, sz, 0x85, RAX, R(RAX));                  /* test: CF = OF = 0 */
        return (int)cc;
    case LF_INC: case LF_DEC:
        if (cc == 2 || cc == 3 || cc == 6 || cc == 7)
            return -1;                                  /* CF is the one INC/DEC keep */
        load_zx(e, sz, RAX, FLD(OFF(lf_a)));
        op_w(e, sz, 0xff, x->lf_op == LF_DEC ? 1 : 0, R(RAX));
        return (int)cc;
    default:
        return -1;
    }
}

static bool cond_call(struct cpu *c, unsigned cc) { return cond_eval(c, cc); }
static uint8_t cf_call(struct cpu *c) { return get_cf(c); }

/* ROL/ROR whose flags someone reads, when the host's flags do not hold the guest's: CF
 * and OF from the result @r as op_shift makes them (one rule for every count), the other
 * flags as the lazy state had them. @how: operand size | 0x10 for ROR. */
static void rot_flags_call(struct cpu *c, uint64_t r, unsigned how)
{
    unsigned bits = (how & 15) * 8;
    bool cf, of;
    if (how & 0x10) {
        cf = (r >> (bits - 1)) & 1;
        of = cf ^ ((r >> (bits - 2)) & 1);
    } else {
        cf = r & 1;
        of = ((r >> (bits - 1)) & 1) ^ cf;
    }
    flags_set_arith(c, F_CF | F_OF, (cf ? F_CF : 0) | (of ? F_OF : 0));
}

/* BT..BTC whose flags someone reads, with the lazy state unknown here: CF = @cf. */
static void bt_flags_call(struct cpu *c, unsigned cf)
{
    flags_set_arith(c, F_CF, cf ? F_CF : 0);
}

/* The host's arithmetic flags become the guest's, materialized in struct cpu (rflags,
 * lf_op = LF_NONE). @af0: the host's AF is undefined here and the guest's is 0 (after
 * AND/OR/XOR/TEST, as flags_get() has it). Clobbers RAX and the host flags. */
static void emit_flags_from_host(struct ctx *x, bool af0)
{
    struct em *e = &x->e;
    b1(e, 0x9c);                                        /* pushfq */
    b1(e, 0x58);                                        /* pop rax */
    alu_imm(e, 4, 4, R(RAX), (int32_t)(F_ARITH & ~(af0 ? F_AF : 0)));
    alu_imm(e, 8, 4, FLD(OFF(rflags)), (int32_t)~F_ARITH);
    alu_rr(e, 8, 1, FLD(OFF(rflags)), RAX);             /* or [rflags], rax */
    mov_mem_imm(e, 1, FLD(OFF(lf_op)), LF_NONE);
}

/* ROL/ROR (@op 0/1) of @d (@sz bytes) by the constant @n (1..63): with @hostf the host's
 * flags hold the guest's before it and the last step is a rotate by 1, whose CF and OF
 * are op_shift's for the whole count (CF = the bit rotated in last; OF = the top bit
 * xor CF after ROL, the top two bits' xor after ROR), the other flags left alone. */
static void emit_rot_imm(struct em *e, unsigned sz, unsigned op, struct opnd d, unsigned n,
                         bool hostf)
{
    if (hostf)
        n--;
    if (n == 1 && !hostf) {
        op_w(e, sz, 0xd1, op, d);
    } else if (n) {
        op_w(e, sz, 0xc1, op, d);
        b1(e, n);
    }
    if (hostf)
        op_w(e, sz, 0xd1, op, d);
}

/* After ROL/ROR (@op 0/1) of @d (@sz bytes) when struct cpu holds materialized flags
 * (lf_op == LF_NONE): CF and OF from the result, as op_shift has them, straight into
 * rflags. Clobbers RAX, RCX and the host flags. */
static void emit_rot_flags_mem(struct em *e, unsigned sz, unsigned op, struct opnd d)
{
    unsigned bits = sz * 8;
    load_zx(e, sz, RAX, d);
    mov_store(e, 8, R(RCX), RAX);
    shift_imm(e, 8, 5, RCX, bits - 1);                  /* rcx = the top bit */
    if (op == 0) {                                      /* ROL: CF = bit 0, OF = top ^ CF */
        alu_imm(e, 4, 4, R(RAX), 1);
        alu_rr(e, 4, 6, R(RCX), RAX);
        shift_imm(e, 4, 4, RCX, 11);
    } else {                                            /* ROR: CF = top, OF = top ^ next */
        shift_imm(e, 8, 5, RAX, bits - 2);
        alu_imm(e, 4, 4, R(RAX), 1);
        alu_rr(e, 4, 6, R(RAX), RCX);
        shift_imm(e, 4, 4, RAX, 11);
    }
    alu_rr(e, 4, 1, R(RAX), RCX);                       /* eax = CF | OF */
    alu_imm(e, 8, 4, FLD(OFF(rflags)), (int32_t)~(F_CF | F_OF));
    alu_rr(e, 8, 1, FLD(OFF(rflags)), RAX);
}

/* CF of the current lazy state into CL (for INC/DEC, which keep it). */
static void emit_get_cf(struct ctx *x)
{
    struct em *e = &x->e;
    unsigned sz = (unsigned)x->lf_sz;
    switch (x->lf_op) {
    case LF_SUB:
        load_zx(e, sz, RAX, FLD(OFF(lf_a)));
        op_w(e, sz, 0x3b, RAX, FLD(OFF(lf_b)));
        break;
    case LF_ADD:
        load_zx(e, sz, RAX, FLD(OFF(lf_a)));
        op_w(e, sz, 0x03, RAX, FLD(OFF(lf_b)));
        break;
    case LF_LOGIC:
        alu_rr(e, 4, 6, R(RCX), RCX);   /* xor ecx, ecx */
        return;
    case LF_INC: case LF_DEC: case LF_MUL:
        movzx8(e, RCX, FLD(OFF(lf_cin)));
        return;
    case LF_NONE:                       /* materialized (after a rotate) */
        mov_load(e, 4, RCX, FLD(OFF(rflags)));
        alu_imm(e, 4, 4, R(RCX), (int32_t)F_CF);
        return;
    default: {
        /* not known here: the common states inline, the rest through get_cf() */
        static const unsigned sub_sizes[] = { 4, 1 };   /* after a 32-bit or 8-bit CMP/SUB */
        unsigned done = new_label(e);
        movzx16(e, RAX, FLD(OFF(lf_op)));               /* lf_op | lf_sz << 8 */
        for (unsigned n = 0; n < 2; n++) {
            unsigned sz2 = sub_sizes[n], next = new_label(e);
            alu_imm(e, 4, 7, R(RAX), (int32_t)(LF_SUB | sz2 << 8));
            jcc_to(e, 5, next);
            load_zx(e, sz2, RAX, FLD(OFF(lf_a)));
            op_w(e, sz2, 0x3b, RAX, FLD(OFF(lf_b)));
            enc(e, W32, 0x0f92, 0, R(RCX));             /* setc cl */
            jmp_to(e, done);
            bind(e, next);
        }
        mov_store(e, 8, R(RDI), RBX);
        call_abs(e, (const void *)cf_call);
        mov_store(e, 4, R(RCX), RAX);
        bind(e, done);
        return;
    }
    }
    enc(e, W32, 0x0f92, 0, R(RCX));     /* setc cl */
}

_Static_assert(sizeof(struct jc_entry) == 32, "the inline jump-cache probe scales by 32");
_Static_assert(offsetof(struct cpu, intr) == offsetof(struct cpu, kick) + 1 &&
               sizeof(atomic_bool) == 1, "kick and intr are tested as one 16-bit word");

/* icount += @count, then to @out if the budget is spent, the INTR line is up or a kick is
 * pending: what tcache_run() checks before every block. */
static void emit_exit_checks(struct ctx *x, unsigned count, unsigned out)
{
    struct em *e = &x->e;
    mov_load(e, 8, RAX, FLD(OFF(icount)));
    alu_imm(e, 8, 0, R(RAX), (int32_t)count);
    mov_store(e, 8, FLD(OFF(icount)), RAX);
    op_w(e, 8, 0x3b, RAX, FLD(OFF(icount_end)));
    jcc_to(e, 3, out);                                  /* jae */
    enc(e, W16, 0x83, 7, FLD(OFF(kick)));               /* cmp word [kick], 0 */
    b1(e, 0);
    jcc_to(e, 5, out);
}

/* A taken branch back to the block's own start (a loop that is one block): with nothing
 * but inline forms before it, nothing can have changed the block's translation but what
 * bumps the jump-cache key, so it loops in place after the checks a chain exit makes.
 * Registers must be written back already. Returns false when it does not apply. */
static bool emit_self_loop(struct ctx *x, unsigned k, int64_t target_rel)
{
    struct em *e = &x->e;
    if (target_rel != 0 || x->calls)
        return false;
    unsigned out = new_label(e);
    emit_exit_checks(x, k + 1, out);
    mov_load(e, 8, RAX, FLD(OFF(jc_key)));
    op_w(e, 8, 0x3b, RAX, M(RSP, 0));                   /* the key at block entry */
    jcc_to(e, 5, out);
    enc(e, W64, 0xff, 0, FLD(OFF(tc_hits)));
    jmp_to(e, x->loop_head);
    bind(e, out);
    mov_store(e, 8, FLD(OFF(rip)), R12);
    jmp_to(e, x->epilogue);
    return true;
}

/* Jump target of a relative branch at instruction k into RAX (masked to 32 bits
 * outside 64-bit code, as the jcc32 handlers do). */
static void emit_branch_target(struct ctx *x, unsigned k)
{
    const struct insn *i = &x->insn[k];
    int64_t rel = (int64_t)x->off[k] + i->len + (int64_t)i->imm;
    lea(&x->e, x->csz == 8 ? 8 : 4, RAX, M(R12, (int32_t)rel));
}

/* SSE forms the host runs as they are, on xmm0 (the destination, from struct cpu) and a
 * 16-byte source (xmm1 from struct cpu, or guest memory, 16-byte aligned: a misaligned
 * operand leaves through the stub, where the handler decides). Bitwise and integer
 * operations only: their results do not depend on MXCSR. */
enum { SSE_NO, SSE_LOAD, SSE_STORE, SSE_BINOP, SSE_MOVMSK };
static unsigned sse_kind(const struct insn *i)
{
    unsigned op = i->op, pf = i->rep ? i->rep : i->pfx66 ? 0x66 : 0;
    if (op > 0xff || pf == 0xf2)
        return SSE_NO;
    if (op == 0x10 || op == 0x28)                       /* movups/movupd, movaps/movapd */
        return pf != 0xf3 ? SSE_LOAD : SSE_NO;
    if (op == 0x11 || op == 0x29)
        return pf != 0xf3 ? SSE_STORE : SSE_NO;
    if (op == 0x6f && pf)                               /* movdqa, movdqu */
        return SSE_LOAD;
    if (op == 0x7f && pf)
        return SSE_STORE;
    if (op >= 0x54 && op <= 0x57 && pf != 0xf3)         /* and/andn/or/xor ps/pd */
        return SSE_BINOP;
    if (pf != 0x66)
        return SSE_NO;
    switch (op) {
    case 0x60: case 0x61: case 0x62: case 0x68: case 0x69: case 0x6a: case 0x6c: case 0x6d:
    case 0x64: case 0x65: case 0x66: case 0x74: case 0x75: case 0x76:
    case 0xd4: case 0xdb: case 0xdf: case 0xeb: case 0xef:
    case 0xf8: case 0xf9: case 0xfa: case 0xfb: case 0xfc: case 0xfd: case 0xfe:
        return SSE_BINOP;
    case 0xd7:
        return i->mod == 3 ? SSE_MOVMSK : SSE_NO;      /* pmovmskb r32, xmm */
    default:
        return SSE_NO;
    }
}

/* What instruction k does to the flags, for the liveness pass. */
enum { C_READER, C_WRITER, C_NEUTRAL, C_INCDEC };

/* Whether emit_inline() compiles the memory operand of @i (see emit_lin()). */
static bool mem_ok(const struct ctx *x, const struct insn *i)
{
    if (x->csz == 8)
        return i->asz == 8 && (i->base != 0xfe || i->index >= 16);
    return i->asz == 4 && i->base != 0xfe;
}

/* Whether instruction k gets an inline form, and its class. Memory forms are readers: their
 * stub may fault, and exception delivery pushes RFLAGS. */
static int classify(const struct ctx *x, unsigned k, bool *inl)
{
    const struct insn *i = &x->insn[k];
    unsigned op = i->op & 7;
    *inl = true;
    switch (i->jk) {
    case JK_MOV_RR: case JK_MOV_RI: case JK_MOVZX_B_RR: case JK_MOV_RR8:
        return C_NEUTRAL;
    case JK_LEA:
        *inl = mem_ok(x, i);
        return *inl ? C_NEUTRAL : C_READER;
    case JK_ALU_RR: case JK_ALU_RI:
        *inl = op != 2 && op != 3;
        return *inl ? C_WRITER : C_READER;
    case JK_ALU_RRM:
        *inl = op != 2 && op != 3 && (i->mod == 3 || mem_ok(x, i));
        return *inl && i->mod == 3 ? C_WRITER : C_READER;
    case JK_TEST_RR: case JK_IMUL_RRI4:
        return C_WRITER;
    case JK_INCDEC:
        return C_INCDEC;
    case JK_SHIFT: {
        unsigned kind = i->op >> 4, n;
        if (kind > 1) {
            *inl = false;
            return C_READER;
        }
        n = (kind == 0 ? 1 : (unsigned)(i->imm & 0xff)) & (i->osz == 8 ? 0x3f : 0x1f);
        return n ? C_WRITER : C_NEUTRAL;
    }
    case JK_LD: case JK_ST:
        *inl = mem_ok(x, i) && (i->osz != 2);
        return C_READER;
    case JK_LDZX:
        *inl = mem_ok(x, i);
        return C_READER;
    case JK_JCC: case JK_JMP:
        return C_READER;
    case JK_PUSH: case JK_POP: case JK_CALL: case JK_RET:
        return C_READER;     /* memory: the stub may fault */
    case JK_SETCC: case JK_CMOV:
        return C_READER;
    case JK_ALU_M: case JK_ST_IMM:
        *inl = mem_ok(x, i);
        return C_READER;     /* memory: the stub may fault */
    case JK_ADCSBB:
        *inl = i->mod == 3 || mem_ok(x, i);
        return C_READER;     /* reads CF */
    case JK_MUL: case JK_IMUL_RRM: case JK_TEST:
        *inl = i->mod == 3 || i->fn == op_test_a_imm || mem_ok(x, i);
        return i->mod == 3 || i->fn == op_test_a_imm ? C_WRITER : C_READER;
    case JK_MOVSX:
        *inl = i->mod == 3 || mem_ok(x, i);
        return i->mod == 3 ? C_NEUTRAL : C_READER;
    case JK_SSE:
        *inl = sse_kind(i) != SSE_NO && (i->mod == 3 || mem_ok(x, i));
        return C_READER;     /* the stub may raise #UD, #NM or #GP */
    case JK_ROT: case JK_BT:
        return C_NEUTRAL;    /* CF(/OF) written, the rest passed on: live before = after */
    default:
        *inl = false;
        return C_READER;
    }
}

/* Backwards over the block: flags are live at its end (the next block, an exception, or
 * the run loop may read them); a writer kills them, a reader or a handler call revives
 * them, INC/DEC keep CF so they pass liveness through. */
static void liveness(struct ctx *x)
{
    bool live = true, inl;
    for (unsigned k = x->n; k-- > 0;) {
        x->live[k] = live;
        switch (classify(x, k, &inl)) {
        case C_WRITER: live = false; break;
        case C_READER: live = true; break;
        default: break;
        }
    }
}

enum { HF_NONE, HF_ALL, HF_NOCF };

/* Host flags (or AL via cond_eval()) for guest condition @cc; returns the host condition
 * to test. @hf says what the host flags hold already. */
static unsigned emit_cond(struct ctx *x, unsigned cc, int hf)
{
    struct em *e = &x->e;
    bool cf = cc == 2 || cc == 3 || cc == 6 || cc == 7;
    int hc;
    if (hf == HF_ALL || (hf == HF_NOCF && !cf))
        return cc;              /* the flag-setting op just ran on the host: use its flags */
    hc = x->lf_op >= 0 ? emit_native_flags(x, cc) : -1;
    if (hc >= 0)
        return (unsigned)hc;
    mov_store(e, 8, R(RDI), RBX);
    mov_imm64(e, RSI, cc);
    call_abs(e, (const void *)cond_call);
    enc(e, W8, 0x84, RAX, R(RAX));      /* test al, al */
    return 5;
}

/* PUSH r, POP r, CALL rel, RET: one stack access through the TLB probe, RSP/ESP updated
 * after it (a fault leaves it alone: the stub reruns the handler from the start). Outside
 * 64-bit code the stack must be 32-bit (checked at run time) and SS's base is added. */
static void emit_stack(struct ctx *x, unsigned k)
{
    struct em *e = &x->e;
    const struct insn *i = &x->insn[k];
    unsigned sz = i->osz, miss = stub(x, k);
    bool push = i->jk == JK_PUSH || i->jk == JK_CALL;
    struct opnd sp = rd(x, 4);
    if (sz == 4) {
        enc(e, W8, 0x80, 7, FLD(OFF(ssz)));            /* cmp byte [ssz], 4 */
        b1(e, 4);
        jcc_to(e, 5, miss);
    }
    mov_load(e, sz, RAX, sp);
    if (push)
        lea(e, sz, RAX, M(RAX, -(int32_t)sz));
    if (sz == 4)
        op_w(e, 4, 0x03, RAX, FLD(OFF(sbase) + CPU_SS * 8));
    emit_tlb(x, sz, push ? P_W : P_R, miss);
    if (i->jk == JK_PUSH) {
        mov_load(e, sz, RCX, rd(x, i->rm));
        mov_store(e, sz, MI(RDX, RAX, 0, 0), RCX);
    } else if (i->jk == JK_CALL) {
        rip_to(x, RCX, x->off[k] + i->len);
        mov_store(e, sz, MI(RDX, RAX, 0, 0), RCX);
    } else {
        load_zx(e, sz, RCX, MI(RDX, RAX, 0, 0));     /* the popped value, zero-extended */
    }
    mov_load(e, sz, RAX, rd(x, 4));
    lea(e, sz, RAX, M(RAX, push ? -(int32_t)sz : (int32_t)sz));
    mov_store(e, 8, wr(x, 4), RAX);
    if (i->jk == JK_POP) {
        mov_store(e, 8, wr(x, i->rm), RCX);
    } else if (i->jk == JK_RET) {
        flush_regs(x);
        mov_store(e, 8, FLD(OFF(rip)), RCX);
        jmp_to(e, exit_label(x, k + 1, true));
    } else if (i->jk == JK_CALL) {
        flush_regs(x);
        emit_branch_target(x, k);
        mov_store(e, 8, FLD(OFF(rip)), RAX);
        jmp_to(e, exit_label(x, k + 1, true));
    }
}

/* Try the inline form of instruction k. False: emit a handler call instead. */
static bool emit_inline(struct ctx *x, unsigned k)
{
    struct em *e = &x->e;
    const struct insn *i = &x->insn[k];
    unsigned sz = i->osz;
    bool last = k + 1 == x->n, inl;
    int hf = x->hf;

    classify(x, k, &inl);
    if (!inl)
        return false;
    x->hf = HF_NONE;
    switch (i->jk) {
    case JK_MOV_RR: {
        struct opnd src = rd(x, i->reg);
        mov_load(e, sz, wr(x, i->rm).reg, src);  /* a 32-bit move zero-extends */
        x->hf = hf;                             /* moves leave host flags alone */
        return true;
    }
    case JK_MOV_RI:
        mov_imm64(e, wr(x, i->rm).reg, sz == 4 ? (uint32_t)i->imm : i->imm);
        x->hf = hf;
        return true;
    case JK_MOVZX_B_RR:
        movzx8(e, RAX, rd(x, i->rm));
        mov_store(e, 8, wr(x, i->reg), RAX);
        x->hf = hf;
        return true;
    case JK_MOV_RR8: {
        bool to_rm = i->fn == op_mov_rm_r;
        movzx8(e, RAX, rd8(x, to_rm ? i->reg : i->rm));
        mov_store(e, 1, wr8(x, to_rm ? i->rm : i->reg), RAX);   /* through struct cpu */
        x->hf = hf;
        return true;
    }
    case JK_ALU_RR: case JK_ALU_RI: case JK_ALU_RRM: {
        unsigned op = i->op & 7, dst, dreg = i->jk == JK_ALU_RRM ? i->reg : i->rm;
        struct opnd d;
        bool mem = i->jk == JK_ALU_RRM && i->mod != 3;
        if (!x->live[k] && sz >= 4 && !mem) {
            /* nobody reads the flags: the host op works on the cached registers */
            x->lf_op = x->lf_sz = -1;
            if (op == 7)
                return true;                    /* a compare whose flags are dead */
            int64_t v = (int64_t)i->imm;
            if (i->jk == JK_ALU_RI && (sz == 4 || (v >= INT32_MIN && v <= INT32_MAX))) {
                rd(x, dreg);
                alu_imm(e, sz, op, wr(x, dreg), (int32_t)v);
                return true;
            }
            if (i->jk != JK_ALU_RI) {
                struct opnd src = rd(x, i->jk == JK_ALU_RRM ? i->rm : i->reg);
                rd(x, dreg);
                alu_rr(e, sz, op, wr(x, dreg), src.reg);
                return true;
            }
        }
        /* the source first: caching it cannot then disturb an 8-bit destination */
        if (i->jk == JK_ALU_RRM) {
            emit_rm_src(x, k, sz, RCX);
        } else if (i->jk == JK_ALU_RR) {
            load_zx(e, sz, RCX, sz == 1 ? rd8(x, i->reg) : rd(x, i->reg));
        } else {
            mov_imm64(e, RCX, sz == 8 ? i->imm : sz == 4 ? (uint32_t)i->imm
                                                   : i->imm & sz_mask(sz));
        }
        if (sz == 1)
            d = op == 7 ? rd8(x, dreg) : wr8(x, dreg);
        else
            d = rd(x, dreg);
        load_zx(e, sz, RAX, d);
        if (x->live[k])
            mov_store(e, 8, R(RDX), RAX);       /* rdx = a */
        dst = op == 7 ? 5 : op;                 /* cmp computes as sub */
        alu_rr(e, sz, dst, R(RAX), RCX);
        if (sz < 4)
            load_zx(e, sz, RAX, R(RAX));        /* the result is kept zero-extended */
        if (op != 7)
            mov_store(e, sz < 4 ? sz : 8, sz < 4 ? d : wr(x, dreg), RAX);
        store_lazy(x, k, alu_lf[op], sz, RAX, RDX, RCX);
        x->hf = mem || !x->live[k] ? HF_NONE : HF_ALL;   /* a stub rejoins with others */
        return true;
    }
    case JK_TEST_RR:
        alu_rr(e, 4, 6, R(RCX), RCX);           /* rcx = 0 (before the flags are made) */
        mov_load(e, sz, RAX, rd(x, i->rm));
        op_w(e, sz, 0x23, RAX, rd(x, i->reg));  /* and */
        store_lazy(x, k, LF_LOGIC, sz, RAX, RCX, RCX);
        x->hf = x->live[k] ? HF_ALL : HF_NONE;
        return true;
    case JK_INCDEC:
        if (x->live[k]) {
            if (x->lf_op != LF_INC && x->lf_op != LF_DEC && x->lf_op != LF_MUL) {
                emit_get_cf(x);                 /* lf_cin already holds it otherwise */
                mov_store(e, 1, FLD(OFF(lf_cin)), RCX);
            }
            mov_load(e, sz, RAX, rd(x, i->rm));
            mov_store(e, 8, R(RDX), RAX);
            mov_imm64(e, RCX, 1);
            op_w(e, sz, 0xff, i->op ? 1 : 0, R(RAX));
            mov_store(e, 8, wr(x, i->rm), RAX);
            store_lazy(x, k, i->op ? LF_DEC : LF_INC, sz, RAX, RDX, RCX);
            x->hf = HF_NOCF;
        } else {
            rd(x, i->rm);
            op_w(e, sz, 0xff, i->op ? 1 : 0, wr(x, i->rm));  /* in the cached register */
            x->lf_op = x->lf_sz = -1;
        }
        return true;
    case JK_LEA:
        emit_lin(x, k, false);
        if (sz == 4)
            mov_store(e, 4, R(RAX), RAX);
        mov_store(e, 8, wr(x, i->reg), RAX);
        return true;
    case JK_SHIFT: {
        unsigned kind = i->op >> 4, op = i->op & 7, n;
        n = kind == 0 ? 1 : (unsigned)(i->imm & 0xff);
        n &= sz == 8 ? 0x3f : 0x1f;
        if (n && !x->live[k]) {
            rd(x, i->rm);
            shift_imm(e, sz, op == 6 ? 4 : op, wr(x, i->rm).reg, n);
            x->lf_op = x->lf_sz = -1;
            return true;
        }
        mov_load(e, sz, RAX, rd(x, i->rm));
        if (n) {
            if (x->live[k])
                mov_store(e, 8, R(RDX), RAX);
            shift_imm(e, sz, op == 6 ? 4 : op, RAX, n);
            if (x->live[k])
                mov_imm64(e, RCX, n);
            store_lazy(x, k, op == 5 ? LF_SHR : op == 7 ? LF_SAR : LF_SHL, sz, RAX, RDX, RCX);
        }
        mov_store(e, 8, wr(x, i->rm), RAX);
        if (!n)
            x->hf = hf;
        return true;
    }
    case JK_ROT: {
        /* in the cached host register (AH..BH: in struct cpu), as the same host rotate;
         * flags: none when dead, from the host's when they hold the guest's before, else
         * rot_flags_call(); a count of 0 (masked) changes nothing but zero-extends */
        unsigned kind = i->op >> 4, op = i->op & 1, cmask = sz == 8 ? 0x3f : 0x1f;
        unsigned n = (kind == 0 ? 1 : (unsigned)(i->imm & 0xff)) & cmask;
        bool live = x->live[k];
        bool hostf = live && (hf == HF_ALL || hf == HF_NOCF) && x->lf_op >= 0;
        bool af0 = x->lf_op == LF_LOGIC;
        struct opnd d;
        unsigned skip = 0, done = 0;
        bool memf = live && !hostf && x->lf_op == LF_NONE;
        if (live && !hostf && !memf && x->lf_op >= 0 && emit_native_flags(x, 4) >= 0)
            hostf = true;   /* the last writer redone on the host (all but CF, which the
                             * rotate sets): its flags are the guest's again */
        if (kind == 2) {
            if (hostf)
                b1(e, 0x9c);                            /* pushfq: the guest's flags */
            mov_load(e, 4, RCX, rd(x, 1));              /* the count, before CH is uncached */
        } else if (n == 0) {
            if (sz == 4) {
                rd(x, i->rm);
                d = wr(x, i->rm);
                mov_load(e, 4, d.reg, d);
            }
            x->hf = hf;
            return true;
        }
        if (sz == 1 && (i->rm & 0x10)) {
            d = wr8(x, i->rm);
        } else {
            rd(x, i->rm);
            d = wr(x, i->rm);
        }
        if (kind != 2) {
            emit_rot_imm(e, sz, op, d, n, hostf);
        } else if (hostf) {
            skip = new_label(e);
            done = new_label(e);
            alu_imm(e, 4, 4, R(RCX), (int32_t)cmask);
            jcc_to(e, 4, skip);                         /* masked count 0: flags unchanged */
            enc(e, W32, 0xff, 1, R(RCX));               /* dec ecx */
            b1(e, 0x9d);                                /* popfq: the guest's flags again */
            op_w(e, sz, 0xd3, op, d);                   /* by count - 1, then by 1 */
            op_w(e, sz, 0xd1, op, d);
        } else {
            op_w(e, sz, 0xd3, op, d);                   /* the host masks the count alike */
        }
        if (kind == 2 && sz == 4)
            mov_load(e, 4, d.reg, d);                   /* count 0 zero-extends too */
        if (hostf) {
            emit_flags_from_host(x, af0);
            if (kind == 2) {
                jmp_to(e, done);
                bind(e, skip);
                lea(e, 8, RSP, M(RSP, 8));              /* drop the saved flags */
                if (sz == 4)
                    mov_load(e, 4, d.reg, d);
                bind(e, done);
            }
        } else if (live) {
            if (kind == 2) {
                skip = new_label(e);
                alu_imm(e, 4, 4, R(RCX), (int32_t)cmask);
                jcc_to(e, 4, skip);
            }
            if (memf) {
                emit_rot_flags_mem(e, sz, op, d);
            } else {
                load_zx(e, sz, RSI, d);
                mov_store(e, 8, R(RDI), RBX);
                mov_imm64(e, RDX, sz | (op ? 0x10u : 0));
                call_abs(e, (const void *)rot_flags_call);
            }
            if (kind == 2)
                bind(e, skip);
        }
        /* struct cpu holds materialized flags now (LF_NONE) when they were live, except
         * where a CL of 0 left the old state (unless that was LF_NONE too) */
        x->lf_sz = -1;
        x->lf_op = live && (kind != 2 || memf) ? LF_NONE : -1;
        return true;
    }
    case JK_BT: {
        /* the same host instruction on the cached register; CF (setc) into the guest's
         * flags like a rotate's: under the host's own flags pushed before it, straight into
         * materialized ones, or through bt_flags_call() */
        static const unsigned opc_r[4] = { 0x0fa3, 0x0fab, 0x0fb3, 0x0fbb };
        unsigned op = i->op & 3;
        bool imm = i->fn == op_bt_rm_imm, live = x->live[k];
        bool hostf = live && (hf == HF_ALL || hf == HF_NOCF) && x->lf_op >= 0;
        bool memf = live && !hostf && x->lf_op == LF_NONE;
        bool af0 = x->lf_op == LF_LOGIC;
        struct opnd d;
        if (live && !hostf && !memf && x->lf_op >= 0 && emit_native_flags(x, 4) >= 0)
            hostf = true;
        if (hostf)
            b1(e, 0x9c);                                /* pushfq: the guest's flags */
        if (!imm)
            load_zx(e, sz, RCX, rd(x, i->reg));         /* the bit offset */
        rd(x, i->rm);
        d = op ? wr(x, i->rm) : rd(x, i->rm);
        if (imm) {
            op_w(e, sz, 0x0fba, 4 + op, d);
            b1(e, (unsigned)i->imm);
        } else {
            op_w(e, sz, opc_r[op], RCX, d);
        }
        if (live) {
            enc(e, W32, 0x0f92, 0, R(RCX));             /* setc cl */
            movzx8(e, RCX, R(RCX));
            if (hostf) {
                b1(e, 0x58);                            /* pop rax */
                alu_imm(e, 4, 4, R(RAX), (int32_t)(F_ARITH & ~F_CF & ~(af0 ? F_AF : 0)));
                alu_rr(e, 4, 1, R(RAX), RCX);
                alu_imm(e, 8, 4, FLD(OFF(rflags)), (int32_t)~F_ARITH);
                alu_rr(e, 8, 1, FLD(OFF(rflags)), RAX);
                mov_mem_imm(e, 1, FLD(OFF(lf_op)), LF_NONE);
            } else if (memf) {
                alu_imm(e, 8, 4, FLD(OFF(rflags)), (int32_t)~F_CF);
                alu_rr(e, 8, 1, FLD(OFF(rflags)), RCX);
            } else {
                mov_store(e, 4, R(RSI), RCX);
                mov_store(e, 8, R(RDI), RBX);
                call_abs(e, (const void *)bt_flags_call);
            }
        }
        x->lf_sz = -1;
        x->lf_op = live ? LF_NONE : -1;
        return true;
    }
    case JK_IMUL_RRI4:
        mov_load(e, 4, RCX, rd(x, i->rm));
        enc(e, W32, 0x69, RAX, R(RCX));
        b4(e, (uint32_t)i->imm);
        mov_store(e, 8, wr(x, i->reg), RAX);
        store_mul_flags(x, k, 4);
        return true;
    case JK_LD: case JK_LDZX: case JK_ST: {
        unsigned msz = i->jk == JK_LDZX ? (i->op == 1 ? 1 : 2) : sz;
        emit_mem(x, k, msz, i->jk == JK_ST ? P_W : P_R);
        if (i->jk == JK_ST) {
            load_zx(e, msz, RCX, msz == 1 ? rd8(x, i->reg) : rd(x, i->reg));
            mov_store(e, msz, MI(RDX, RAX, 0, 0), RCX);
        } else if (msz == 1 && i->jk == JK_LD) {
            movzx8(e, RCX, MI(RDX, RAX, 0, 0));
            mov_store(e, 1, wr8(x, i->reg), RCX);
        } else {
            load_zx(e, msz, RCX, MI(RDX, RAX, 0, 0));
            mov_store(e, 8, wr(x, i->reg), RCX);
        }
        return true;
    }
    case JK_ADCSBB: {
        /* the carry in first (the host's CF if it still holds the guest's), kept in a
         * stack slot across the operand fetch; then ADC/SBB on the host with that CF */
        unsigned op = i->op & 7;
        bool mem = i->mod != 3, rm_dst = i->fn != op_alu_r_rm;
        unsigned dreg = rm_dst ? i->rm : i->reg;
        if (hf == HF_ALL)
            enc(e, W32, 0x0f92, 0, R(RCX));             /* setc cl */
        else
            emit_get_cf(x);
        mov_store(e, 1, M(RSP, 8), RCX);
        if (mem) {
            emit_mem(x, k, sz, P_R);
            load_zx(e, sz, RDX, MI(RDX, RAX, 0, 0));
        } else if (i->fn == op_alu_rm_imm) {
            mov_imm64(e, RDX, i->imm & sz_mask(sz));
        } else {
            load_zx(e, sz, RDX, rd(x, rm_dst ? i->reg : i->rm));
        }
        mov_load(e, sz, RAX, rd(x, dreg));
        movzx8(e, RCX, M(RSP, 8));
        if (x->live[k]) {
            mov_store(e, 1, FLD(OFF(lf_cin)), RCX);
            mov_store(e, 8, R(RSI), RAX);               /* rsi = a */
        }
        alu_imm(e, 1, 0, R(RCX), -1);                   /* add cl, 0xff: CF = carry in */
        alu_rr(e, sz, op, R(RAX), RDX);                 /* adc/sbb */
        mov_store(e, 8, wr(x, dreg), RAX);
        store_lazy(x, k, op == 2 ? LF_ADC : LF_SBB, sz, RAX, RSI, RDX);
        x->hf = !mem && x->live[k] ? HF_ALL : HF_NONE;
        return true;
    }
    case JK_MUL: {
        emit_rm_src(x, k, sz, RCX);
        mov_load(e, sz, RAX, rd(x, 0));
        enc(e, wflags(sz), 0xf7, 4, R(RCX));            /* mul rcx: rdx:rax */
        mov_store(e, 8, wr(x, 0), RAX);
        mov_store(e, 8, wr(x, 2), RDX);
        store_mul_flags(x, k, sz);
        return true;
    }
    case JK_IMUL_RRM: {
        emit_rm_src(x, k, sz, RCX);
        mov_load(e, sz, RAX, rd(x, i->reg));
        enc(e, wflags(sz), 0x0faf, RAX, R(RCX));        /* imul rax, rcx */
        mov_store(e, 8, wr(x, i->reg), RAX);
        store_mul_flags(x, k, sz);
        return true;
    }
    case JK_TEST: {
        bool mem = i->fn != op_test_a_imm && i->mod != 3;
        if (mem) {
            emit_mem(x, k, sz, P_R);
            load_zx(e, sz, RAX, MI(RDX, RAX, 0, 0));
        } else {
            unsigned a = i->fn == op_test_a_imm ? 0 : i->rm;
            load_zx(e, sz, RAX, sz == 1 ? rd8(x, a) : rd(x, a));
        }
        if (i->fn == op_test_rm_r)
            load_zx(e, sz, RCX, sz == 1 ? rd8(x, i->reg) : rd(x, i->reg));
        else
            mov_imm64(e, RCX, i->imm & sz_mask(sz));
        if (x->live[k])
            mov_store(e, 8, R(RDX), RAX);               /* rdx = a */
        alu_rr(e, sz < 4 ? 4 : sz, 4, R(RAX), RCX);     /* and: operands zero-extended */
        if (sz < 4)
            op_w(e, sz, 0x85, RAX, R(RAX));             /* the flags at the right size */
        store_lazy(x, k, LF_LOGIC, sz, RAX, RDX, RCX);
        x->hf = !mem && x->live[k] ? HF_ALL : HF_NONE;
        return true;
    }
    case JK_MOVSX: {
        unsigned ssz = i->fn == op_movsxd ? 4 : i->op;
        unsigned opc = ssz == 1 ? 0x0fbe : ssz == 2 ? 0x0fbf : 0x63;
        struct opnd src;
        if (i->mod != 3) {
            emit_mem(x, k, ssz, P_R);
            src = MI(RDX, RAX, 0, 0);
        } else {
            src = ssz == 1 ? rd8(x, i->rm) : rd(x, i->rm);
        }
        enc(e, sz == 8 ? W64 : W32, opc, RAX, src);
        mov_store(e, 8, wr(x, i->reg), RAX);            /* a 32-bit result zero-extends */
        if (i->mod == 3)
            x->hf = hf;
        return true;
    }
    case JK_SSE: {
        unsigned kind = sse_kind(i), op = i->op, pf = i->rep ? i->rep : i->pfx66 ? 0x66 : 0;
        unsigned miss = stub(x, k);
        struct opnd mem = R(0);
        int32_t xr = OFF(xmm) + (int32_t)(i->reg & 15) * 16;
        int32_t xm = OFF(xmm) + (int32_t)(i->rm & 15) * 16;
        if (i->mod != 3)
            emit_lin(x, k, true);
        /* CR4.OSFXSR set, CR0.EM and TS clear, else the handler raises #UD or #NM */
        enc(e, W32, 0xf7, 0, FLD(OFF(cr4)));
        b4(e, (uint32_t)CR4_OSFXSR);
        jcc_to(e, 4, miss);
        enc(e, W32, 0xf7, 0, FLD(OFF(cr0)));
        b4(e, (uint32_t)(CR0_EM | CR0_TS));
        jcc_to(e, 5, miss);
        if (i->mod != 3) {
            b1(e, 0xa8), b1(e, 15);                         /* test al, 15 */
            jcc_to(e, 5, miss);                             /* misaligned: the handler */
            emit_tlb(x, 16, kind == SSE_STORE ? P_W : P_R, miss);
            mem = MI(RDX, RAX, 0, 0);
        } else {
            for (unsigned s = 0; s < x->nstubs; s++)
                if (x->stubs[s].label == miss)
                    x->stubs[s].before = x->rm;
        }
        switch (kind) {
        case SSE_LOAD:
            enc(e, W32, 0x0f10, 0, i->mod != 3 ? mem : FLD(xm));    /* movups xmm0, src */
            enc(e, W32, 0x0f11, 0, FLD(xr));
            break;
        case SSE_STORE:
            enc(e, W32, 0x0f10, 0, FLD(xr));
            enc(e, W32, 0x0f11, 0, i->mod != 3 ? mem : FLD(xm));
            break;
        case SSE_BINOP:
            enc(e, W32, 0x0f10, 0, FLD(xr));
            if (i->mod == 3) {
                enc(e, W32, 0x0f10, 1, FLD(xm));                    /* xmm1 = source */
                mem = R(1);
            }
            if (pf)
                b1(e, pf);
            enc(e, W32, 0x0f00 | op, 0, mem);                       /* the op itself */
            enc(e, W32, 0x0f11, 0, FLD(xr));
            break;
        default:                                                    /* pmovmskb */
            enc(e, W32, 0x0f10, 0, FLD(xm));
            b1(e, 0x66);
            enc(e, W32, 0x0fd7, RAX, R(0));
            mov_store(e, 8, wr(x, i->reg), RAX);
            break;
        }
        return true;
    }
    case JK_ALU_M: {
        unsigned op = i->op & 7;
        emit_mem(x, k, sz, op == 7 ? P_R : P_W);
        lea(e, 8, RDX, MI(RDX, RAX, 0, 0));             /* rdx = the operand's host address */
        if (i->fn == op_alu_rm_r)
            load_zx(e, sz, RCX, sz == 1 ? rd8(x, i->reg) : rd(x, i->reg));
        else
            mov_imm64(e, RCX, i->imm & sz_mask(sz));
        load_zx(e, sz, RAX, M(RDX, 0));
        if (x->live[k])
            mov_store(e, 8, R(RSI), RAX);               /* rsi = a */
        alu_rr(e, sz, op == 7 ? 5 : op, R(RAX), RCX);
        if (sz < 4)
            load_zx(e, sz, RAX, R(RAX));
        if (op != 7)
            mov_store(e, sz, M(RDX, 0), RAX);
        store_lazy(x, k, alu_lf[op], sz, RAX, RSI, RCX);
        return true;
    }
    case JK_ST_IMM: {
        emit_mem(x, k, sz, P_W);
        mov_mem_imm(e, sz, MI(RDX, RAX, 0, 0), (uint32_t)i->imm);
        return true;
    }
    case JK_SETCC: case JK_CMOV: {
        unsigned hc = emit_cond(x, i->op & 15, hf);
        if (i->jk == JK_SETCC) {
            enc(e, W32, 0x0f90 + hc, 0, R(RAX));        /* setcc al */
            mov_store(e, 1, wr8(x, i->rm), RAX);
        } else {
            mov_load(e, sz, RAX, rd(x, i->reg));        /* moves keep the flags */
            enc(e, wflags(sz), 0x0f40 + hc, RAX, rd(x, i->rm));
            mov_store(e, 8, wr(x, i->reg), RAX);        /* a 32-bit cmov always zero-extends */
        }
        if (hc == (i->op & 15u) && (hf == HF_ALL || hf == HF_NOCF))
            x->hf = hf;
        return true;
    }
    case JK_JCC: {
        unsigned cc = i->op & 15, taken = new_label(e);
        unsigned hc = emit_cond(x, cc, hf);
        jcc_to(e, hc, taken);
        struct rmap at_branch = x->rm;  /* each path writes back what is dirty here */
        if (last) {
            /* not taken: on to the next instruction, as a chainable exit */
            flush_regs(x);
            rip_to(x, RAX, x->off[k] + i->len);
            mov_store(e, 8, FLD(OFF(rip)), RAX);
            jmp_to(e, exit_label(x, k + 1, true));
        }
        /* taken: a side exit (or the block's end) */
        unsigned cont = new_label(e);
        if (!last)
            jmp_to(e, cont);
        bind(e, taken);
        x->rm = at_branch;
        flush_regs(x);
        x->rm = at_branch;              /* the fall-through path keeps its dirty registers */
        if (!emit_self_loop(x, k, (int64_t)x->off[k] + i->len + (int64_t)i->imm)) {
            emit_branch_target(x, k);
            mov_store(e, 8, FLD(OFF(rip)), RAX);
            jmp_to(e, exit_label(x, k + 1, true));
        }
        bind(e, cont);
        return true;
    }
    case JK_PUSH: case JK_POP: case JK_CALL: case JK_RET:
        emit_stack(x, k);
        return true;
    case JK_JMP:
        flush_regs(x);
        if (!emit_self_loop(x, k, (int64_t)x->off[k] + i->len + (int64_t)i->imm)) {
            emit_branch_target(x, k);
            mov_store(e, 8, FLD(OFF(rip)), RAX);
            jmp_to(e, exit_label(x, k + 1, true));
        }
        return true;
    default:
        return false;
    }
}

static void emit_chain_exit(struct ctx *x, unsigned count)
{
    struct em *e = &x->e;
    unsigned out = new_label(e), link = new_label(e);
    emit_exit_checks(x, count, out);
    /* the next block: linear rip must match the slot, and so must the jump-cache key */
    mov_load(e, 8, RAX, FLD(OFF(rip)));
    op_w(e, 8, 0x03, RAX, FLD(OFF(sbase) + CPU_CS * 8));
    if (x->csz != 8)
        mov_store(e, 4, R(RAX), RAX);
    /* slot address patched in after layout: mov rdx, imm64 */
    b1(e, 0x48);
    b1(e, 0xba);
    uint8_t *imm = e->p;
    b8(e, 0);
    op_w(e, 8, 0x3b, RAX, M(RDX, 0));
    jcc_to(e, 5, link);
    mov_load(e, 8, RAX, FLD(OFF(jc_key)));
    op_w(e, 8, 0x3b, RAX, M(RDX, 8));
    jcc_to(e, 5, link);
    enc(e, W64, 0xff, 0, FLD(OFF(tc_hits)));            /* inc qword [tc_hits] */
    enc(e, W32, 0xff, 4, M(RDX, 16));                   /* jmp [rdx+16] */
    bind(e, link);
    /* not the slot's block (a return, an indirect jump, a second target): try the jump
     * cache as tcache_run() would, then give up and let it link the slot */
    mov_store(e, 8, R(RCX), RAX);
    shift_imm(e, 8, 5, RCX, 12);
    alu_rr(e, 8, 6, R(RCX), RAX);                       /* rcx = lin ^ lin >> 12 */
    alu_imm(e, 4, 4, R(RCX), 4095);
    shift_imm(e, 4, 4, RCX, 5);                         /* 32-byte entries */
    op_w(e, 8, 0x3b, RAX, MI(RBX, RCX, 0, OFF(jc) + (int32_t)offsetof(struct jc_entry, lin)));
    unsigned miss = new_label(e);
    jcc_to(e, 5, miss);
    mov_load(e, 8, RAX, FLD(OFF(jc_key)));
    op_w(e, 8, 0x3b, RAX, MI(RBX, RCX, 0, OFF(jc) + (int32_t)offsetof(struct jc_entry, key)));
    jcc_to(e, 5, miss);
    mov_load(e, 8, RAX, MI(RBX, RCX, 0, OFF(jc) + (int32_t)offsetof(struct jc_entry, b)));
    mov_load(e, 8, RSI, MI(RBX, RCX, 0, OFF(jc) + (int32_t)offsetof(struct jc_entry, gpa)));
    op_w(e, 8, 0x3b, RSI, M(RAX, (int32_t)offsetof(struct block, gpa)));
    jcc_to(e, 5, miss);                                 /* its slot holds another block now */
    mov_load(e, 8, RAX, M(RAX, (int32_t)offsetof(struct block, chain)));
    op_w(e, 8, 0x85, RAX, R(RAX));                      /* compiled? */
    jcc_to(e, 4, miss);
    enc(e, W64, 0xff, 0, FLD(OFF(tc_hits)));
    b1(e, 0xff), b1(e, 0xe0);                           /* jmp rax */
    bind(e, miss);
    mov_store(e, 8, FLD(OFF(jit_link)), RDX);
    bind(e, out);
    jmp_to(e, x->epilogue);
    /* the slot itself, 8-aligned, right here in the code arena */
    while ((uintptr_t)e->p & 7)
        b1(e, 0xcc);
    if (!e->full) {
        struct chain_slot *s = (struct chain_slot *)(void *)e->p;
        uint64_t a = (uint64_t)(uintptr_t)s;
        memcpy(imm, &a, 8);
        for (unsigned k = 0; k < sizeof *s; k++)
            b1(e, 0);
        s->lin = UINT64_MAX;
        s->key = UINT64_MAX;
    }
}

const void *jit_compile(struct jit *j, struct cpu *c, const struct insn *insn, unsigned n,
                        unsigned csz, const void **chain_entry)
{
    uint32_t off[64];
    unsigned after[64];
    if (!j || n == 0 || n > 64)
        return NULL;
    if (jit_full(j))
        return NULL;    /* the caller flushes at its next arena check */
    if (!j->cx && !(j->cx = malloc(sizeof *j->cx)))
        return NULL;    /* the compiler's working memory, once per CPU that gets hot */
    struct ctx *const xp = j->cx;
    memset(&xp->e, 0, offsetof(struct em, label));
    xp->e.nlabels = xp->e.nfix = 0;
    xp->e.start = xp->e.p = j->base + j->used;
    xp->e.end = j->base + j->size;
    xp->insn = insn;
    xp->n = n;
    xp->csz = csz;
    xp->off = off;
    xp->lf_op = xp->lf_sz = -1;
    xp->hf = HF_NONE;
    rm_reset(&xp->rm);
    xp->calls = false;
    xp->nstubs = xp->nexits = 0;
    for (unsigned k = 0, o = 0; k < n; k++) {
        off[k] = o;
        o += insn[k].len;
    }
    struct em *e = &xp->e;
    liveness(xp);
    xp->epilogue = new_label(e);

    /* entry: the callee-saved registers the block uses, and a 16-byte aligned stack */
    b1(e, 0x53);                    /* push rbx */
    b1(e, 0x55);                    /* push rbp */
    b1(e, 0x41), b1(e, 0x54);       /* push r12 */
    b1(e, 0x41), b1(e, 0x55);       /* push r13 */
    b1(e, 0x41), b1(e, 0x56);       /* push r14 */
    b1(e, 0x41), b1(e, 0x57);       /* push r15 */
    alu_imm(e, 8, 5, R(RSP), 24);   /* sub rsp, 24: [rsp] entry key, [rsp+8] scratch */
    mov_store(e, 8, R(RBX), RDI);   /* mov rbx, rdi */
    uint8_t *chain = e->p;
    mov_load(e, 8, R12, FLD(OFF(rip)));
    mov_load(e, 8, RAX, FLD(OFF(jc_key)));
    mov_store(e, 8, M(RSP, 0), RAX);    /* the key this block was entered under */
    xp->loop_head = new_label(e);
    bind(e, xp->loop_head);

    for (unsigned k = 0; k < n; k++) {
        after[k] = new_label(e);
        uint8_t *mark = e->p;
        unsigned nst = xp->nstubs, nlab = e->nlabels, nfix = e->nfix, nex = xp->nexits;
        int lfo = xp->lf_op, lfs = xp->lf_sz, hf = xp->hf;
        struct rmap rm = xp->rm;
        if (!emit_inline(xp, k)) {
            /* roll back a partial inline attempt and call the handler */
            e->p = mark;
            xp->nstubs = nst;
            e->nlabels = nlab;
            e->nfix = nfix;
            xp->nexits = nex;
            xp->lf_op = lfo;
            xp->lf_sz = lfs;
            xp->hf = hf;
            xp->rm = rm;
            emit_call(xp, k);
            xp->lf_op = xp->lf_sz = -1;
            xp->hf = HF_NONE;
            if (k + 1 == n)
                jmp_to(e, exit_label(xp, n, true));
        } else if (k + 1 == n && insn[k].jk != JK_JCC && insn[k].jk != JK_JMP &&
                   insn[k].jk != JK_CALL && insn[k].jk != JK_RET) {
            /* the block ends without a branch (page end, length limit) */
            flush_regs(xp);
            rip_to(xp, RAX, off[k] + insn[k].len);
            mov_store(e, 8, FLD(OFF(rip)), RAX);
            jmp_to(e, exit_label(xp, n, true));
        }
        for (unsigned t = nst; t < xp->nstubs; t++)
            xp->stubs[t].after = xp->rm;    /* what the stub must rebuild before rejoining */
        bind(e, after[k]);
    }

    /* stubs: the rare case of an inline form runs the handler, then rejoins */
    for (unsigned s = 0; s < xp->nstubs; s++) {
        unsigned k = xp->stubs[s].k;
        bind(e, xp->stubs[s].label);
        xp->rm = xp->stubs[s].before;
        flush_regs(xp);
        emit_call_raw(xp, k);
        for (unsigned r = 0; r < NHR; r++)     /* the handler wrote struct cpu: reload */
            if (xp->stubs[s].after.guest[r] >= 0)
                mov_load(e, 8, hreg[r], GPR((unsigned)xp->stubs[s].after.guest[r]));
        if (k + 1 == n)
            jmp_to(e, exit_label(xp, n, true));
        else
            jmp_to(e, after[k]);
    }
    for (unsigned s = 0; s < xp->nexits; s++) {
        bind(e, xp->exits[s].label);
        if (xp->exits[s].chain) {
            emit_chain_exit(xp, xp->exits[s].count);
        } else {
            alu_imm(e, 8, 0, FLD(OFF(icount)), (int32_t)xp->exits[s].count);
            jmp_to(e, xp->epilogue);
        }
    }
    bind(e, xp->epilogue);
    alu_imm(e, 8, 0, R(RSP), 24);   /* add rsp, 24 */
    b1(e, 0x41), b1(e, 0x5f);       /* pop r15 */
    b1(e, 0x41), b1(e, 0x5e);       /* pop r14 */
    b1(e, 0x41), b1(e, 0x5d);       /* pop r13 */
    b1(e, 0x41), b1(e, 0x5c);       /* pop r12 */
    b1(e, 0x5d);                    /* pop rbp */
    b1(e, 0x5b);                    /* pop rbx */
    b1(e, 0xc3);
    if (e->full || !resolve(e))
        return NULL;
    while ((uintptr_t)e->p & 15)
        b1(e, 0xcc);
    const void *entry = xp->e.start;
    if (j->dump)
        dump_block(j->dump, entry, (size_t)(e->p - xp->e.start), c);
    j->used = (size_t)(e->p - j->base);
    *chain_entry = chain;
    return entry;
}

/* Fill the chain slot the last block left through with the block that runs next. */
void jit_link(void *slot, uint64_t lin, uint64_t key, const void *target)
{
    struct chain_slot *s = slot;
    s->target = target;
    s->key = key;
    s->lin = lin;
}

#else /* !__x86_64__ */

struct jit *jit_new(void) { return NULL; }
bool jit_usable(char *why, size_t n)
{
    snprintf(why, n, "the block compiler emits x86-64 code only");
    return false;
}
void jit_free(struct jit *j) { (void)j; }
void jit_flush(struct jit *j) { (void)j; }
bool jit_full(const struct jit *j) { (void)j; return false; }
unsigned jit_hot(const struct jit *j) { (void)j; return 0; }
const void *jit_compile(struct jit *j, struct cpu *c, const struct insn *insn, unsigned n,
                        unsigned csz, const void **chain_entry)
{
    (void)j, (void)c, (void)insn, (void)n, (void)csz, (void)chain_entry;
    return NULL;
}
void jit_link(void *slot, uint64_t lin, uint64_t key, const void *target)
{
    (void)slot, (void)lin, (void)key, (void)target;
}

#endif
