/* Branches, calls, the stack. */
#include "x86.h"

void push(struct cpu *c, unsigned sz, uint64_t v)
{
    uint64_t sp = (c->r[4] - sz) & amask(c->ssz);
    mem_write(c, seg_lin(c, CPU_SS, sp), sz, v);
    sp_set(c, sp);
}

uint64_t pop(struct cpu *c, unsigned sz)
{
    uint64_t sp = sp_get(c);
    uint64_t v = mem_read(c, seg_lin(c, CPU_SS, sp), sz);
    sp_set(c, sp + sz);
    return v;
}

static inline void jump_near(struct cpu *c, unsigned osz, uint64_t target)
{
    c->rip = osz == 8 ? target : target & sz_mask(osz);
}

OP(op_jcc)
{
    if (cond_eval(c, i->op))
        jump_near(c, i->osz, c->rip + i->imm);
}

OP(op_jmp_rel) { jump_near(c, i->osz, c->rip + i->imm); }

OP(op_call_rel)
{
    push(c, i->osz, c->rip);
    jump_near(c, i->osz, c->rip + i->imm);
}

OP(op_jmp_rm) { jump_near(c, i->osz, rm_read(c, i, i->osz)); }

OP(op_call_rm)
{
    uint64_t t = rm_read(c, i, i->osz);
    push(c, i->osz, c->rip);
    jump_near(c, i->osz, t);
}

OP(op_ret)
{
    uint64_t t = pop(c, i->osz);
    if (i->op)
        sp_set(c, sp_get(c) + (i->imm & 0xffff));
    jump_near(c, i->osz, t);
}

OP(op_loop)
{
    uint64_t n = (c->r[1] - 1) & amask(i->asz);
    bool go;
    reg_set(c, 1, i->asz, n);
    switch (i->op) {
    case 0: go = n && !cond_eval(c, 4); break;  /* LOOPNE */
    case 1: go = n && cond_eval(c, 4); break;   /* LOOPE */
    default: go = n != 0; break;
    }
    if (go)
        jump_near(c, i->osz, c->rip + i->imm);
}

OP(op_jcxz)
{
    if ((c->r[1] & amask(i->asz)) == 0)
        jump_near(c, i->osz, c->rip + i->imm);
}

OP(op_push_r) { push(c, i->osz, reg_get(c, i->rm, i->osz)); }

OP(op_pop_r)
{
    uint64_t v = pop(c, i->osz);
    reg_set(c, i->rm, i->osz, v);
}

OP(op_push_imm) { push(c, i->osz, i->imm); }
OP(op_push_rm) { push(c, i->osz, rm_read(c, i, i->osz)); }

OP(op_pop_rm)
{
    /* the address is computed with the incremented stack pointer */
    uint64_t sp = sp_get(c), v = mem_read(c, seg_lin(c, CPU_SS, sp), i->osz);
    sp_set(c, sp + i->osz);
    if (i->mod == 3) {
        reg_set(c, i->rm, i->osz, v);
    } else {
        uint64_t a = ea(c, i);
        sp_set(c, sp);
        mem_write(c, a, i->osz, v);
        sp_set(c, sp + i->osz);
    }
}

OP(op_push_seg) { push(c, i->osz, c->seg[i->op].sel); }

OP(op_pop_seg)
{
    uint64_t sp = sp_get(c);
    uint16_t sel = (uint16_t)mem_read(c, seg_lin(c, CPU_SS, sp), i->osz);
    seg_load(c, i->op, sel);
    sp_set(c, sp + i->osz);
    if (i->op == CPU_SS)
        c->sti_shadow = 2;
}

OP(op_pushf)
{
    /* VM and RF read as zero */
    push(c, i->osz, flags_get(c) & ~(F_VM | F_RF));
}

OP(op_popf)
{
    uint64_t v = pop(c, i->osz), old = flags_get(c);
    uint64_t mask = F_ARITH | F_TF | F_DF | F_NT | F_AC | F_ID;
    if (c->mode == MODE_REAL || c->cpl == 0)
        mask |= F_IOPL | F_IF;
    else if (c->cpl <= ((old >> 12) & 3))
        mask |= F_IF;
    if (i->osz == 2)
        mask &= 0xffff;
    flags_set(c, (old & ~mask) | (v & mask));
    c->stop_block = true;   /* IF may have changed */
}

OP(op_pusha)
{
    uint64_t sp = c->r[4];
    for (unsigned r = 0; r < 8; r++)
        push(c, i->osz, r == 4 ? sp : c->r[r]);
}

OP(op_popa)
{
    for (int r = 7; r >= 0; r--) {
        uint64_t v = pop(c, i->osz);
        if (r != 4)
            reg_set(c, (unsigned)r, i->osz, v);
    }
}

OP(op_enter)
{
    unsigned sz = i->osz, level = (unsigned)(i->imm2 & 31);
    uint64_t frame;
    push(c, sz, reg_get(c, 5, sz));
    frame = sp_get(c);
    if (level) {
        uint64_t bp = reg_get(c, 5, c->ssz);
        for (unsigned k = 1; k < level; k++) {
            bp -= sz;
            push(c, sz, mem_read(c, seg_lin(c, CPU_SS, bp & amask(c->ssz)), sz));
        }
        push(c, sz, frame);
    }
    reg_set(c, 5, sz, frame);
    sp_set(c, sp_get(c) - (i->imm & 0xffff));
}

OP(op_leave)
{
    uint64_t v;
    sp_set(c, reg_get(c, 5, c->ssz));
    v = pop(c, i->osz);
    reg_set(c, 5, i->osz, v);
}

OP(op_jmp_far) { far_transfer(c, (uint16_t)i->imm2, i->imm, false, i->osz); }
OP(op_call_far) { far_transfer(c, (uint16_t)i->imm2, i->imm, true, i->osz); }

static void far_mem(struct cpu *c, const struct insn *i, bool call)
{
    uint64_t a, off;
    uint16_t sel;
    if (i->mod == 3)
        cpu_ud(c);
    a = ea(c, i);
    off = mem_read(c, a, i->osz);
    sel = (uint16_t)mem_read(c, a + i->osz, 2);
    far_transfer(c, sel, off, call, i->osz);
}

OP(op_jmp_far_m) { far_mem(c, i, false); }
OP(op_call_far_m) { far_mem(c, i, true); }

OP(op_int) { cpu_deliver(c, (int)(i->imm & 0xff), EV_SOFT, 0, 0); }
OP(op_int3) { cpu_deliver(c, EX_BP, EV_SOFT, 0, 0); }
OP(op_int1) { cpu_deliver(c, EX_DB, EV_EXT, 0, 0); }

OP(op_into)
{
    if (cond_eval(c, 0))
        cpu_deliver(c, EX_OF, EV_SOFT, 0, 0);
}

/* 64-bit fast forms: a flat stack (64-bit mode ignores the SS base) */
static OP(op_push_r64)
{
    uint64_t sp = c->r[4] - 8;
    mem_write(c, sp, 8, c->r[i->rm]);
    c->r[4] = sp;
}
static OP(op_pop_r64)
{
    uint64_t v = mem_read(c, c->r[4], 8);
    c->r[4] += 8;
    c->r[i->rm] = v;
}
static OP(op_call_rel64)
{
    uint64_t sp = c->r[4] - 8;
    mem_write(c, sp, 8, c->rip);
    c->r[4] = sp;
    c->rip += i->imm;
}
static OP(op_ret64)
{
    uint64_t t = mem_read(c, c->r[4], 8);
    c->r[4] += 8;
    c->rip = t;
}
static OP(op_jmp_rel64) { c->rip += i->imm; }

/* Conditional branches specialized by condition (so cond_fast folds to a compare), by
 * operand size (32: the target wraps at 4 GiB; 64: it does not) and by place in the
 * block: the side-exit forms sit before the block's end and leave it when taken. */
#define JCC_FORMS(cc) \
    static OP(op_jcc32_##cc) \
    { \
        if (cond_fast(c, cc)) \
            c->rip = (uint32_t)(c->rip + i->imm); \
    } \
    static OP(op_jcc32s_##cc) \
    { \
        if (cond_fast(c, cc)) { \
            c->rip = (uint32_t)(c->rip + i->imm); \
            c->stop_block = 2; \
        } \
    } \
    static OP(op_jcc64_##cc) \
    { \
        if (cond_fast(c, cc)) \
            c->rip += i->imm; \
    } \
    static OP(op_jcc64s_##cc) \
    { \
        if (cond_fast(c, cc)) { \
            c->rip += i->imm; \
            c->stop_block = 2; \
        } \
    }
JCC_FORMS(0) JCC_FORMS(1) JCC_FORMS(2) JCC_FORMS(3) JCC_FORMS(4) JCC_FORMS(5) JCC_FORMS(6)
JCC_FORMS(7) JCC_FORMS(8) JCC_FORMS(9) JCC_FORMS(10) JCC_FORMS(11) JCC_FORMS(12)
JCC_FORMS(13) JCC_FORMS(14) JCC_FORMS(15)
#undef JCC_FORMS
#define JCC_TABLE(form) { op_##form##_0, op_##form##_1, op_##form##_2, op_##form##_3, \
    op_##form##_4, op_##form##_5, op_##form##_6, op_##form##_7, op_##form##_8, op_##form##_9, \
    op_##form##_10, op_##form##_11, op_##form##_12, op_##form##_13, op_##form##_14, \
    op_##form##_15 }
static const op_fn jcc32_fn[16] = JCC_TABLE(jcc32), jcc32s_fn[16] = JCC_TABLE(jcc32s),
                   jcc64_fn[16] = JCC_TABLE(jcc64), jcc64s_fn[16] = JCC_TABLE(jcc64s);
#undef JCC_TABLE

static OP(op_jcc_side)
{
    if (cond_eval(c, i->op)) {
        jump_near(c, i->osz, c->rip + i->imm);
        c->stop_block = 2;
    }
}

bool specialize_side_exit(struct insn *i)
{
    unsigned cc = i->op & 15;
    if (i->fn == op_jcc)
        i->fn = op_jcc_side;
    else if (i->fn == jcc32_fn[cc])
        i->fn = jcc32s_fn[cc];
    else if (i->fn == jcc64_fn[cc])
        i->fn = jcc64s_fn[cc];
    else
        return false;
    return true;
}

/* Only valid in 64-bit code (operand size 8 for these implies it). */
bool specialize_control(struct insn *i)
{
    if (i->fn == op_push_r)
        i->fn = op_push_r64, i->jk = JK_PUSH;
    else if (i->fn == op_pop_r)
        i->fn = op_pop_r64, i->jk = JK_POP;
    else if (i->fn == op_call_rel)
        i->fn = op_call_rel64, i->jk = JK_CALL;
    else if (i->fn == op_ret && !i->op)
        i->fn = op_ret64, i->jk = JK_RET;
    else if (i->fn == op_jmp_rel)
        i->fn = op_jmp_rel64, i->jk = JK_JMP;
    else if (i->fn == op_jcc)
        i->fn = jcc64_fn[i->op & 15], i->jk = JK_JCC;
    else
        return false;
    return true;
}

static OP(op_jmp_rel32) { c->rip = (uint32_t)(c->rip + i->imm); }

/* 32-bit operand size branches (32-bit code). */
bool specialize_jcc32(struct insn *i)
{
    if (i->osz != 4)
        return false;
    /* the generic handlers stay (the stack size is only known at run time) */
    if (i->fn == op_push_r)
        i->jk = JK_PUSH;
    else if (i->fn == op_pop_r)
        i->jk = JK_POP;
    else if (i->fn == op_call_rel)
        i->jk = JK_CALL;
    else if (i->fn == op_ret && !i->op)
        i->jk = JK_RET;
    if (i->jk)
        return true;
    if (i->fn == op_jcc)
        i->fn = jcc32_fn[i->op & 15], i->jk = JK_JCC;
    else if (i->fn == op_jmp_rel)
        i->fn = op_jmp_rel32, i->jk = JK_JMP;
    else
        return false;
    return true;
}
