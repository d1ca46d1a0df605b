/* Integer ALU, data movement and the lazy flags they leave behind. */
#include "x86.h"

const uint8_t parity_table[256] = {
#define P2(n) n, n ^ 1, n ^ 1, n
#define P4(n) P2(n), P2(n ^ 1), P2(n ^ 1), P2(n)
#define P6(n) P4(n), P4(n ^ 1), P4(n ^ 1), P4(n)
    P6(1), P6(0), P6(0), P6(1)
#undef P2
#undef P4
#undef P6
};

static bool get_of(struct cpu *c)
{
    uint64_t s = sz_sign(c->lf_sz), a = c->lf_a, b = c->lf_b, r = c->lf_res;
    switch (c->lf_op) {
    case LF_ADD: case LF_ADC: case LF_INC: return ((a ^ r) & (b ^ r) & s) != 0;
    case LF_SUB: case LF_SBB: case LF_DEC: return ((a ^ b) & (a ^ r) & s) != 0;
    case LF_LOGIC: case LF_SAR: return false;
    case LF_MUL: return c->lf_cin;
    case LF_SHL: return ((r & s) != 0) ^ get_cf(c);
    case LF_SHR: return (a & s) != 0;
    default: return c->rflags & F_OF;
    }
}

static inline bool get_zf(struct cpu *c)
{
    if (c->lf_op == LF_NONE)
        return c->rflags & F_ZF;
    return (c->lf_res & sz_mask(c->lf_sz)) == 0;
}

static inline bool get_sf(struct cpu *c)
{
    if (c->lf_op == LF_NONE)
        return c->rflags & F_SF;
    return (c->lf_res & sz_sign(c->lf_sz)) != 0;
}

static inline bool get_pf(struct cpu *c)
{
    if (c->lf_op == LF_NONE)
        return c->rflags & F_PF;
    return parity_table[c->lf_res & 0xff];
}

uint64_t flags_get(struct cpu *c)
{
    uint64_t f;
    if (c->lf_op == LF_NONE)
        return c->rflags;
    f = c->rflags & ~F_ARITH;
    if (get_cf(c)) f |= F_CF;
    if (get_pf(c)) f |= F_PF;
    if (c->lf_op < LF_LOGIC && ((c->lf_a ^ c->lf_b ^ c->lf_res) & 0x10)) f |= F_AF;
    if ((c->lf_op == LF_INC || c->lf_op == LF_DEC) && ((c->lf_a ^ c->lf_b ^ c->lf_res) & 0x10))
        f |= F_AF;
    if (get_zf(c)) f |= F_ZF;
    if (get_sf(c)) f |= F_SF;
    if (get_of(c)) f |= F_OF;
    c->rflags = f;
    c->lf_op = LF_NONE;
    return f;
}

void flags_set(struct cpu *c, uint64_t f)
{
    c->rflags = (f & 0x3f7fd5) | 2;
    c->lf_op = LF_NONE;
}

void flags_set_arith(struct cpu *c, uint64_t mask, uint64_t val)
{
    uint64_t f = flags_get(c);
    c->rflags = (f & ~mask) | (val & mask);
}

bool cond_eval(struct cpu *c, unsigned cc)
{
    bool r;
    /* fast paths: ZF from any lazy result, and a compare or logic op before the branch */
    if ((cc == 4 || cc == 5) && c->lf_op != LF_NONE)
        return ((c->lf_res & sz_mask(c->lf_sz)) == 0) ^ (cc & 1);
    if (c->lf_op == LF_SUB) {
        int r = cond_sub(c, cc);
        if (r >= 0)
            return r;
    } else if (c->lf_op == LF_LOGIC) {
        uint64_t res = c->lf_res & sz_mask(c->lf_sz);
        bool sf = (res & sz_sign(c->lf_sz)) != 0;
        switch (cc) {
        case 2: case 0: return false;
        case 3: case 1: return true;
        case 4: case 6: return res == 0;
        case 5: case 7: return res != 0;
        case 8: case 12: return sf;
        case 9: case 13: return !sf;
        case 14: return res == 0 || sf;
        case 15: return res != 0 && !sf;
        default: break;
        }
    }
    switch (cc >> 1) {
    case 0: r = c->lf_op == LF_NONE ? (c->rflags & F_OF) != 0 : get_of(c); break;
    case 1: r = get_cf(c); break;
    case 2: r = get_zf(c); break;
    case 3: r = get_cf(c) || get_zf(c); break;
    case 4: r = get_sf(c); break;
    case 5: r = get_pf(c); break;
    case 6: r = get_sf(c) != (c->lf_op == LF_NONE ? (c->rflags & F_OF) != 0 : get_of(c)); break;
    default: r = get_zf(c) || (get_sf(c) != (c->lf_op == LF_NONE ? (c->rflags & F_OF) != 0
                                                                   : get_of(c))); break;
    }
    return r ^ (cc & 1);
}

/* op: 0 add, 1 or, 2 adc, 3 sbb, 4 and, 5 sub, 6 xor, 7 cmp. Returns the result. */
uint64_t alu_op(struct cpu *c, unsigned op, uint64_t a, uint64_t b, unsigned sz)
{
    uint64_t m = sz_mask(sz), r;
    unsigned cin;
    a &= m;
    b &= m;
    switch (op) {
    case 0: r = (a + b) & m; lazy(c, LF_ADD, sz, r, a, b); return r;
    case 1: r = a | b; lazy(c, LF_LOGIC, sz, r, a, b); return r;
    case 2:
        cin = get_cf(c);
        r = (a + b + cin) & m;
        lazy(c, LF_ADC, sz, r, a, b);
        c->lf_cin = (uint8_t)cin;
        return r;
    case 3:
        cin = get_cf(c);
        r = (a - b - cin) & m;
        lazy(c, LF_SBB, sz, r, a, b);
        c->lf_cin = (uint8_t)cin;
        return r;
    case 4: r = a & b; lazy(c, LF_LOGIC, sz, r, a, b); return r;
    case 5: case 7: r = (a - b) & m; lazy(c, LF_SUB, sz, r, a, b); return r;
    default: r = a ^ b; lazy(c, LF_LOGIC, sz, r, a, b); return r;
    }
}

/* LOCKed read-modify-write: this emulator runs one vCPU per struct cpu and guest RAM is
 * shared between vCPU threads, so memory forms with LOCK use host atomics. */
static bool locked_rmw(struct cpu *c, const struct insn *i, unsigned sz, uint8_t **p)
{
    if (!i->lock || i->mod == 3)
        return false;
    *p = tlb_fast(c, ea(c, i), P_W, sz);
    if (!*p) {
        (void)mem_read(c, ea(c, i), sz);
        mem_write(c, ea(c, i), sz, mem_read(c, ea(c, i), sz));
        *p = tlb_fast(c, ea(c, i), P_W, sz);
    }
    return *p != NULL && ((uintptr_t)*p & (sz - 1)) == 0;
}

static void alu_rm(struct cpu *c, const struct insn *i, unsigned op, uint64_t src)
{
    unsigned sz = i->osz;
    uint64_t d, r;
    uint8_t *p;
    if (i->mod == 3) {
        d = reg_get(c, i->rm, sz);
        r = alu_op(c, op, d, src, sz);
        if (op != 7)
            reg_set(c, i->rm, sz, r);
        return;
    }
    if (op != 7 && locked_rmw(c, i, sz, &p)) {
        /* compare-and-swap loop keeps the result exact under contention */
        for (;;) {
            d = ld(p, sz);
            r = alu_op(c, op, d, src, sz);
            bool ok;
            switch (sz) {
            case 1: { uint8_t e = (uint8_t)d; ok = __atomic_compare_exchange_n(p, &e, (uint8_t)r, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); break; }
            case 2: { uint16_t e = (uint16_t)d; ok = __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)r, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); break; }
            case 4: { uint32_t e = (uint32_t)d; ok = __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)r, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); break; }
            default: { uint64_t e = d; ok = __atomic_compare_exchange_n((uint64_t *)p, &e, r, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); break; }
            }
            if (ok)
                return;
        }
    }
    {
        uint64_t a = ea(c, i);
        d = mem_read(c, a, sz);
        r = alu_op(c, op, d, src, sz);
        if (op != 7)
            mem_write(c, a, sz, r);
    }
}

OP(op_alu_rm_r) { alu_rm(c, i, i->op, reg_get(c, i->reg, i->osz)); }
OP(op_alu_rm_imm) { alu_rm(c, i, i->op, i->imm); }

OP(op_alu_r_rm)
{
    uint64_t r = alu_op(c, i->op, reg_get(c, i->reg, i->osz), rm_read(c, i, i->osz), i->osz);
    if (i->op != 7)
        reg_set(c, i->reg, i->osz, r);
}

OP(op_alu_a_imm)
{
    uint64_t r = alu_op(c, i->op, reg_get(c, 0, i->osz), i->imm, i->osz);
    if (i->op != 7)
        reg_set(c, 0, i->osz, r);
}

OP(op_test_rm_r) { alu_op(c, 4, rm_read(c, i, i->osz), reg_get(c, i->reg, i->osz), i->osz); }

OP(op_test_rm_imm) { alu_op(c, 4, rm_read(c, i, i->osz), i->imm, i->osz); }
OP(op_test_a_imm) { alu_op(c, 4, reg_get(c, 0, i->osz), i->imm, i->osz); }

static void incdec(struct cpu *c, const struct insn *i, bool reg_form, bool dec)
{
    unsigned sz = i->osz;
    uint64_t m = sz_mask(sz), a, r, addr = 0;
    uint8_t cin = get_cf(c);
    if (reg_form || i->mod == 3) {
        a = reg_get(c, i->rm, sz);
    } else if (i->lock) {
        uint8_t *p;
        if (locked_rmw(c, i, sz, &p)) {
            uint64_t one = dec ? (uint64_t)-1 : 1;
            switch (sz) {
            case 1: r = __atomic_add_fetch(p, (uint8_t)one, __ATOMIC_SEQ_CST); break;
            case 2: r = __atomic_add_fetch((uint16_t *)p, (uint16_t)one, __ATOMIC_SEQ_CST); break;
            case 4: r = __atomic_add_fetch((uint32_t *)p, (uint32_t)one, __ATOMIC_SEQ_CST); break;
            default: r = __atomic_add_fetch((uint64_t *)p, one, __ATOMIC_SEQ_CST); break;
            }
            a = (r - one) & m;
            lazy(c, dec ? LF_DEC : LF_INC, sz, r & m, a, 1);
            c->lf_cin = cin;
            return;
        }
        addr = ea(c, i);
        a = mem_read(c, addr, sz);
    } else {
        addr = ea(c, i);
        a = mem_read(c, addr, sz);
    }
    r = (dec ? a - 1 : a + 1) & m;
    lazy(c, dec ? LF_DEC : LF_INC, sz, r, a, 1);
    c->lf_cin = cin;
    if (reg_form || i->mod == 3)
        reg_set(c, i->rm, sz, r);
    else
        mem_write(c, addr, sz, r);
}

OP(op_incdec_r) { incdec(c, i, true, i->op); }
OP(op_incdec_rm) { incdec(c, i, false, i->op); }

OP(op_not)
{
    if (i->mod == 3) {
        reg_set(c, i->rm, i->osz, ~reg_get(c, i->rm, i->osz));
    } else {
        uint64_t a = ea(c, i);
        mem_write(c, a, i->osz, ~mem_read(c, a, i->osz));
    }
}

OP(op_neg)
{
    uint64_t m = sz_mask(i->osz), a, r, addr = 0;
    if (i->mod == 3) {
        a = reg_get(c, i->rm, i->osz);
    } else {
        addr = ea(c, i);
        a = mem_read(c, addr, i->osz);
    }
    r = (0 - a) & m;
    lazy(c, LF_SUB, i->osz, r, 0, a);
    if (i->mod == 3)
        reg_set(c, i->rm, i->osz, r);
    else
        mem_write(c, addr, i->osz, r);
}

OP(op_mov_rm_r) { rm_write(c, i, i->osz, reg_get(c, i->reg, i->osz)); }
OP(op_mov_r_rm) { reg_set(c, i->reg, i->osz, rm_read(c, i, i->osz)); }
OP(op_mov_r_imm) { reg_set(c, i->rm, i->osz, i->imm); }
OP(op_mov_rm_imm) { rm_write(c, i, i->osz, i->imm); }
OP(op_mov_a_moffs) { reg_set(c, 0, i->osz, mem_read(c, seg_lin(c, i->seg, i->imm), i->osz)); }
OP(op_mov_moffs_a) { mem_write(c, seg_lin(c, i->seg, i->imm), i->osz, reg_get(c, 0, i->osz)); }

OP(op_lea)
{
    if (i->mod == 3)
        cpu_ud(c);
    reg_set(c, i->reg, i->osz, ea_off(c, i));
}

OP(op_xchg_rm_r)
{
    uint64_t r = reg_get(c, i->reg, i->osz);
    if (i->mod == 3) {
        reg_set(c, i->reg, i->osz, reg_get(c, i->rm, i->osz));
        reg_set(c, i->rm, i->osz, r);
    } else {
        /* XCHG with memory is always locked */
        uint64_t a = ea(c, i), old;
        uint8_t *p = tlb_fast(c, a, P_W, i->osz);
        if (p && ((uintptr_t)p & (i->osz - 1)) == 0) {
            switch (i->osz) {
            case 1: old = __atomic_exchange_n(p, (uint8_t)r, __ATOMIC_SEQ_CST); break;
            case 2: old = __atomic_exchange_n((uint16_t *)p, (uint16_t)r, __ATOMIC_SEQ_CST); break;
            case 4: old = __atomic_exchange_n((uint32_t *)p, (uint32_t)r, __ATOMIC_SEQ_CST); break;
            default: old = __atomic_exchange_n((uint64_t *)p, r, __ATOMIC_SEQ_CST); break;
            }
        } else {
            old = mem_read(c, a, i->osz);
            mem_write(c, a, i->osz, r);
        }
        reg_set(c, i->reg, i->osz, old);
    }
}

OP(op_xchg_a_r)
{
    uint64_t a;
    if (i->rm == 0)
        return;     /* NOP / PAUSE (no zero-extension even in 64-bit mode) */
    a = reg_get(c, 0, i->osz);
    reg_set(c, 0, i->osz, reg_get(c, i->rm, i->osz));
    reg_set(c, i->rm, i->osz, a);
}

OP(op_cmov)
{
    uint64_t v = rm_read(c, i, i->osz);
    if (cond_eval(c, i->op))
        reg_set(c, i->reg, i->osz, v);
    else if (i->osz == 4)
        c->r[i->reg] &= 0xffffffff;
}

OP(op_setcc) { rm_write(c, i, 1, cond_eval(c, i->op)); }

OP(op_movzx) { reg_set(c, i->reg, i->osz, rm_read(c, i, i->op)); }

OP(op_movsx) { reg_set(c, i->reg, i->osz, (uint64_t)sext(rm_read(c, i, i->op), i->op)); }

OP(op_movsxd)
{
    if (c->csz != 8) {
        cpu_ud(c);      /* ARPL is not implemented */
    }
    reg_set(c, i->reg, i->osz, (uint64_t)(int64_t)(int32_t)rm_read(c, i, 4));
}

OP(op_cbw)
{
    switch (i->osz) {
    case 2: reg_set(c, 0, 2, (uint64_t)(int64_t)(int8_t)c->r[0]); break;
    case 4: reg_set(c, 0, 4, (uint64_t)(int64_t)(int16_t)c->r[0]); break;
    default: c->r[0] = (uint64_t)(int64_t)(int32_t)c->r[0]; break;
    }
}

OP(op_cwd)
{
    uint64_t s = reg_get(c, 0, i->osz) & sz_sign(i->osz);
    reg_set(c, 2, i->osz, s ? ~0ULL : 0);
}

OP(op_lahf)
{
    reg_set(c, 0x10, 1, (flags_get(c) & 0xd7) | 2);
}

OP(op_sahf) { flags_set_arith(c, F_CF | F_PF | F_AF | F_ZF | F_SF, (c->r[0] >> 8) & 0xff); }
OP(op_cmc) { flags_set_arith(c, F_CF, ~flags_get(c)); }
OP(op_clc) { flags_set_arith(c, F_CF, 0); }
OP(op_stc) { flags_set_arith(c, F_CF, F_CF); }
OP(op_cld) { c->rflags &= ~F_DF; }
OP(op_std) { c->rflags |= F_DF; }
OP(op_nop) { (void)c; (void)i; }

OP(op_salc) { reg_set(c, 0, 1, get_cf(c) ? 0xff : 0); }

OP(op_xadd)
{
    uint64_t s = reg_get(c, i->reg, i->osz), d, r;
    if (i->mod == 3) {
        d = reg_get(c, i->rm, i->osz);
        r = alu_op(c, 0, d, s, i->osz);
        reg_set(c, i->reg, i->osz, d);
        reg_set(c, i->rm, i->osz, r);
        return;
    }
    {
        uint64_t a = ea(c, i);
        uint8_t *p = tlb_fast(c, a, P_W, i->osz);
        if (p && ((uintptr_t)p & (i->osz - 1)) == 0) {
            switch (i->osz) {
            case 1: d = __atomic_fetch_add(p, (uint8_t)s, __ATOMIC_SEQ_CST); break;
            case 2: d = __atomic_fetch_add((uint16_t *)p, (uint16_t)s, __ATOMIC_SEQ_CST); break;
            case 4: d = __atomic_fetch_add((uint32_t *)p, (uint32_t)s, __ATOMIC_SEQ_CST); break;
            default: d = __atomic_fetch_add((uint64_t *)p, s, __ATOMIC_SEQ_CST); break;
            }
            alu_op(c, 0, d, s, i->osz);
        } else {
            d = mem_read(c, a, i->osz);
            r = alu_op(c, 0, d, s, i->osz);
            mem_write(c, a, i->osz, r);
        }
        reg_set(c, i->reg, i->osz, d);
    }
}

OP(op_cmpxchg)
{
    unsigned sz = i->osz;
    uint64_t acc = reg_get(c, 0, sz), d;
    if (i->mod == 3) {
        d = reg_get(c, i->rm, sz);
        alu_op(c, 7, acc, d, sz);
        if (d == acc)
            reg_set(c, i->rm, sz, reg_get(c, i->reg, sz));
        else
            reg_set(c, 0, sz, d);
        return;
    }
    {
        uint64_t a = ea(c, i), src = reg_get(c, i->reg, sz);
        uint8_t *p = tlb_fast(c, a, P_W, sz);
        if (p && ((uintptr_t)p & (sz - 1)) == 0) {
            switch (sz) {
            case 1: { uint8_t e = (uint8_t)acc; __atomic_compare_exchange_n(p, &e, (uint8_t)src, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); d = e; break; }
            case 2: { uint16_t e = (uint16_t)acc; __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)src, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); d = e; break; }
            case 4: { uint32_t e = (uint32_t)acc; __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)src, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); d = e; break; }
            default: { uint64_t e = acc; __atomic_compare_exchange_n((uint64_t *)p, &e, src, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); d = e; break; }
            }
        } else {
            d = mem_read(c, a, sz);
            /* the destination is written either way, as on hardware */
            mem_write(c, a, sz, d == acc ? src : d);
        }
        alu_op(c, 7, acc, d, sz);
        if (d != acc)
            reg_set(c, 0, sz, d);
    }
}

OP(op_cmpxchg8b)
{
    unsigned r = i->op & 7;
    if (r == 6 || r == 7) {
        /* RDRAND/RDSEED/RDPID are not reported by CPUID */
        cpu_ud(c);
    }
    if (r != 1 || i->mod == 3)
        cpu_ud(c);
    if (i->osz == 8) {
        uint64_t a = ea(c, i);
        unsigned __int128 exp = ((unsigned __int128)c->r[2] << 64) | c->r[0], cur;
        unsigned __int128 nv = ((unsigned __int128)c->r[1] << 64) | c->r[3];
        if (a & 15)
            cpu_gp0(c);
        uint64_t lo = mem_read(c, a, 8), hi = mem_read(c, a + 8, 8);
        cur = ((unsigned __int128)hi << 64) | lo;
        if (cur == exp) {
            mem_write(c, a, 8, (uint64_t)nv);
            mem_write(c, a + 8, 8, (uint64_t)(nv >> 64));
            flags_set_arith(c, F_ZF, F_ZF);
        } else {
            mem_write(c, a, 8, lo);
            mem_write(c, a + 8, 8, hi);
            c->r[0] = lo;
            c->r[2] = hi;
            flags_set_arith(c, F_ZF, 0);
        }
    } else {
        uint64_t a = ea(c, i);
        uint64_t exp = ((c->r[2] & 0xffffffff) << 32) | (c->r[0] & 0xffffffff);
        uint64_t nv = ((c->r[1] & 0xffffffff) << 32) | (c->r[3] & 0xffffffff), cur;
        uint8_t *p = tlb_fast(c, a, P_W, 8);
        if (p && ((uintptr_t)p & 7) == 0) {
            cur = exp;
            __atomic_compare_exchange_n((uint64_t *)p, &cur, nv, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST);
        } else {
            cur = mem_read(c, a, 8);
            mem_write(c, a, 8, cur == exp ? nv : cur);
        }
        if (cur == exp) {
            flags_set_arith(c, F_ZF, F_ZF);
        } else {
            reg_set(c, 0, 4, cur);
            reg_set(c, 2, 4, cur >> 32);
            flags_set_arith(c, F_ZF, 0);
        }
    }
}

OP(op_bswap)
{
    if (i->osz == 8)
        c->r[i->rm] = __builtin_bswap64(c->r[i->rm]);
    else if (i->osz == 4)
        c->r[i->rm] = __builtin_bswap32((uint32_t)c->r[i->rm]);
    else
        reg_set(c, i->rm, 2, 0);    /* undefined; zero as current CPUs do */
}

static void szp8(struct cpu *c, uint64_t extra_mask, uint64_t extra)
{
    uint8_t al = (uint8_t)c->r[0];
    uint64_t f = (al ? 0 : F_ZF) | (al & 0x80 ? F_SF : 0) | (parity_table[al] ? F_PF : 0);
    flags_set_arith(c, F_ZF | F_SF | F_PF | extra_mask, f | extra);
}

OP(op_daa)
{
    uint64_t f = flags_get(c);
    uint8_t al = (uint8_t)c->r[0], old = al;
    bool cf = f & F_CF, af = false;
    if ((al & 0xf) > 9 || (f & F_AF)) {
        al += 6;
        af = true;
    }
    if (old > 0x99 || cf) {
        al += 0x60;
        cf = true;
    } else {
        cf = false;
    }
    reg_set(c, 0, 1, al);
    szp8(c, F_CF | F_AF | F_OF, (cf ? F_CF : 0) | (af ? F_AF : 0));
}

OP(op_das)
{
    uint64_t f = flags_get(c);
    uint8_t al = (uint8_t)c->r[0], old = al;
    bool cf = false, af = false;
    if ((al & 0xf) > 9 || (f & F_AF)) {
        al -= 6;
        af = true;
        cf = (f & F_CF) || old < 6;
    }
    if (old > 0x99 || (f & F_CF)) {
        al -= 0x60;
        cf = true;
    }
    reg_set(c, 0, 1, al);
    szp8(c, F_CF | F_AF | F_OF, (cf ? F_CF : 0) | (af ? F_AF : 0));
}

static void aaa_aas(struct cpu *c, bool sub)
{
    uint64_t f = flags_get(c);
    uint16_t ax = (uint16_t)c->r[0];
    bool adj = (ax & 0xf) > 9 || (f & F_AF);
    if (adj) {
        if (sub) {
            ax = (uint16_t)(ax - 6);
            ax = (uint16_t)((((unsigned)ax >> 8) - 1u) << 8 | (ax & 0xffu));
        } else {
            ax = (uint16_t)(ax + 0x106);
        }
    }
    ax &= 0xff0f;
    reg_set(c, 0, 2, ax);
    flags_set_arith(c, F_CF | F_AF, adj ? F_CF | F_AF : 0);
}

OP(op_aaa) { aaa_aas(c, false); }
OP(op_aas) { aaa_aas(c, true); }

OP(op_aam)
{
    uint8_t base = (uint8_t)i->imm, al = (uint8_t)c->r[0];
    if (!base)
        cpu_raise(c, EX_DE, 0, 0);
    reg_set(c, 0, 2, (uint16_t)((al / base) << 8 | (al % base)));
    szp8(c, F_CF | F_AF | F_OF, 0);
}

OP(op_aad)
{
    uint8_t base = (uint8_t)i->imm;
    uint8_t al = (uint8_t)(((c->r[0] >> 8) & 0xff) * base + (c->r[0] & 0xff));
    reg_set(c, 0, 2, al);
    szp8(c, F_CF | F_AF | F_OF, 0);
}

OP(op_xlat)
{
    uint64_t off = (c->r[3] + (c->r[0] & 0xff)) & amask(i->asz);
    reg_set(c, 0, 1, mem_read(c, seg_lin(c, i->seg, off), 1));
}

/* ---- specialized handlers: 32/64-bit register and memory forms of the hot ALU ops ---- */

#define FAST_ALU(NAME, EXPR, LF, WRITE) \
    FAST_ALU_SZ(NAME, EXPR, LF, WRITE, uint32_t, 4) \
    FAST_ALU_SZ(NAME, EXPR, LF, WRITE, uint64_t, 8)
#define FAST_ALU_SZ(NAME, EXPR, LF, WRITE, T, SZ) \
    static OP(op_##NAME##_rr##SZ) \
    { \
        T a = (T)c->r[i->rm], b = (T)c->r[i->reg], r = (T)(EXPR); \
        lazy(c, LF, SZ, r, a, b); \
        if (WRITE) c->r[i->rm] = r; \
    } \
    static OP(op_##NAME##_rm##SZ) \
    { \
        T a = (T)c->r[i->reg], b = (T)rm_read(c, i, SZ), r = (T)(EXPR); \
        lazy(c, LF, SZ, r, a, b); \
        if (WRITE) c->r[i->reg] = r; \
    } \
    static OP(op_##NAME##_ri##SZ) \
    { \
        T a = (T)c->r[i->rm], b = (T)i->imm, r = (T)(EXPR); \
        lazy(c, LF, SZ, r, a, b); \
        if (WRITE) c->r[i->rm] = r; \
    }

FAST_ALU(add, a + b, LF_ADD, 1)
FAST_ALU(or, a | b, LF_LOGIC, 1)
FAST_ALU(and, a & b, LF_LOGIC, 1)
FAST_ALU(sub, a - b, LF_SUB, 1)
FAST_ALU(xor, a ^ b, LF_LOGIC, 1)
FAST_ALU(cmp, a - b, LF_SUB, 0)

#define FAST_SET(NAME) { { op_##NAME##_rr4, op_##NAME##_rr8 }, { op_##NAME##_rm4, op_##NAME##_rm8 }, \
                         { op_##NAME##_ri4, op_##NAME##_ri8 } }
static const op_fn fast_alu[8][3][2] = {
    FAST_SET(add), FAST_SET(or), { { 0 } }, { { 0 } }, FAST_SET(and), FAST_SET(sub),
    FAST_SET(xor), FAST_SET(cmp),
};

static OP(op_mov_rr8) { c->r[i->rm] = c->r[i->reg]; }
static OP(op_mov_rr4) { c->r[i->rm] = (uint32_t)c->r[i->reg]; }
static OP(op_mov_ld8) { c->r[i->reg] = mem_read(c, ea(c, i), 8); }
static OP(op_mov_ld4) { c->r[i->reg] = mem_read(c, ea(c, i), 4); }
static OP(op_mov_st8) { mem_write(c, ea(c, i), 8, c->r[i->reg]); }
static OP(op_mov_st4) { mem_write(c, ea(c, i), 4, c->r[i->reg]); }
static OP(op_test_rr8) { lazy(c, LF_LOGIC, 8, c->r[i->rm] & c->r[i->reg], 0, 0); }
static OP(op_test_rr4) { lazy(c, LF_LOGIC, 4, (uint32_t)(c->r[i->rm] & c->r[i->reg]), 0, 0); }
static OP(op_lea8) { c->r[i->reg] = ea_off(c, i); }
static OP(op_lea4) { c->r[i->reg] = (uint32_t)ea_off(c, i); }

static OP(op_inc_r8)
{
    uint64_t a = c->r[i->rm];
    c->lf_cin = get_cf(c);
    lazy(c, LF_INC, 8, a + 1, a, 1);
    c->r[i->rm] = a + 1;
}
static OP(op_dec_r8)
{
    uint64_t a = c->r[i->rm];
    c->lf_cin = get_cf(c);
    lazy(c, LF_DEC, 8, a - 1, a, 1);
    c->r[i->rm] = a - 1;
}
static OP(op_inc_r4)
{
    uint32_t a = (uint32_t)c->r[i->rm];
    c->lf_cin = get_cf(c);
    lazy(c, LF_INC, 4, (uint32_t)(a + 1), a, 1);
    c->r[i->rm] = (uint32_t)(a + 1);
}
static OP(op_dec_r4)
{
    uint32_t a = (uint32_t)c->r[i->rm];
    c->lf_cin = get_cf(c);
    lazy(c, LF_DEC, 4, (uint32_t)(a - 1), a, 1);
    c->r[i->rm] = (uint32_t)(a - 1);
}

static OP(op_movzx_b_mem) { reg_set(c, i->reg, i->osz, mem_read(c, ea(c, i), 1)); }
static OP(op_movzx_w_mem) { reg_set(c, i->reg, i->osz, mem_read(c, ea(c, i), 2)); }
static OP(op_mov_st1) { mem_write(c, ea(c, i), 1, reg_get(c, i->reg, 1)); }
static OP(op_mov_ld1) { reg_set(c, i->reg, 1, mem_read(c, ea(c, i), 1)); }

/* 8-bit register forms (AL..BL, SPL.. and R8B..: not AH..BH) of the hot ALU ops */
#define FAST_ALU8(NAME, EXPR, LF, WRITE) \
    static OP(op_##NAME##_rr1) \
    { \
        uint8_t a = (uint8_t)c->r[i->rm], b = (uint8_t)c->r[i->reg], r = (uint8_t)(EXPR); \
        lazy(c, LF, 1, r, a, b); \
        if (WRITE) c->r[i->rm] = (c->r[i->rm] & ~0xffULL) | r; \
    }
FAST_ALU8(add, a + b, LF_ADD, 1)
FAST_ALU8(or, a | b, LF_LOGIC, 1)
FAST_ALU8(and, a & b, LF_LOGIC, 1)
FAST_ALU8(sub, a - b, LF_SUB, 1)
FAST_ALU8(xor, a ^ b, LF_LOGIC, 1)
FAST_ALU8(cmp, a - b, LF_SUB, 0)
static const op_fn fast_alu8[8] = { op_add_rr1, op_or_rr1, NULL, NULL, op_and_rr1, op_sub_rr1,
                                    op_xor_rr1, op_cmp_rr1 };
static OP(op_movzx_b_rr) { reg_set(c, i->reg, i->osz, reg_get(c, i->rm, 1)); }
static OP(op_movzx_bl_rr4) { c->r[i->reg] = (uint8_t)c->r[i->rm]; }

void specialize(struct insn *i)
{
    if (i->fn == op_sse) {
        i->jk = JK_SSE;
        return;
    }
    if (i->fn == op_setcc && i->mod == 3) {
        i->jk = JK_SETCC;
        return;
    }
    if (i->fn == op_cmov && i->mod == 3 && i->osz >= 4 && !i->lock) {
        i->jk = JK_CMOV;
        return;
    }
    if (((i->fn == op_alu_rm_r || i->fn == op_alu_rm_imm) && i->mod == 3) ||
        i->fn == op_alu_r_rm) {
        if (((i->op & 7) == 2 || (i->op & 7) == 3) && i->osz >= 4 && !i->lock) {
            i->jk = JK_ADCSBB;
            return;
        }
    }
    if (i->fn == op_alu_r_rm && i->osz == 1 && (i->op & 7) != 2 && (i->op & 7) != 3 &&
        !i->lock) {
        i->jk = JK_ALU_RRM;     /* 8-bit r, r/m: the generic handler is the stub */
        return;
    }
    if (i->fn == op_mul1 && i->osz >= 4 && !i->lock) {
        i->jk = JK_MUL;
        return;
    }
    if (i->fn == op_imul_r_rm && i->osz >= 4 && !i->lock) {
        i->jk = JK_IMUL_RRM;
        return;
    }
    if ((i->fn == op_test_rm_r || i->fn == op_test_rm_imm || i->fn == op_test_a_imm) &&
        (i->osz == 1 || i->osz >= 4) && !i->lock &&
        !(i->fn == op_test_rm_r && i->mod == 3 && i->osz >= 4)) {  /* (its own fast form) */
        i->jk = JK_TEST;
        return;
    }
    if (((i->fn == op_movsx && i->osz >= 4) || (i->fn == op_movsxd && i->osz == 8)) &&
        !i->lock) {
        i->jk = JK_MOVSX;       /* MOVSXD only with REX.W: 64-bit code, not ARPL */
        return;
    }
    if ((i->fn == op_alu_rm_r || i->fn == op_alu_rm_imm) && i->mod != 3 && !i->lock &&
        (i->op & 7) != 2 && (i->op & 7) != 3) {
        i->jk = JK_ALU_M;       /* the generic handlers stay: they are the stubs */
        return;
    }
    if (i->fn == op_mov_rm_imm && i->mod != 3 && !i->lock) {
        i->jk = JK_ST_IMM;
        return;
    }
    if (i->fn == op_alu_rm_r && i->osz == 1 && i->mod == 3 && i->rm < 16 && i->reg < 16 &&
        fast_alu8[i->op]) {
        i->fn = fast_alu8[i->op];
        i->jk = JK_ALU_RR;
        return;
    }
    if (i->fn == op_movzx && i->mod == 3 && i->op == 1) {
        bool bl = i->osz == 4 && i->rm < 16;
        i->fn = bl ? op_movzx_bl_rr4 : op_movzx_b_rr;
        i->jk = bl ? JK_MOVZX_B_RR : JK_NONE;
        return;
    }
    if (i->fn == op_movzx && i->mod != 3) {
        i->fn = i->op == 1 ? op_movzx_b_mem : op_movzx_w_mem;
        i->jk = i->osz >= 4 ? JK_LDZX : JK_NONE;
        return;
    }
    if (i->osz == 1 && i->mod == 3 && (i->fn == op_mov_rm_r || i->fn == op_mov_r_rm)) {
        i->jk = JK_MOV_RR8;     /* the generic handlers stay */
        return;
    }
    if (i->osz == 1 && i->mod != 3 && !i->lock) {
        if (i->fn == op_mov_rm_r) {
            i->fn = op_mov_st1;
            i->jk = JK_ST;
        } else if (i->fn == op_mov_r_rm) {
            i->fn = op_mov_ld1;
            i->jk = JK_LD;
        }
    }
    if (specialize_shift(i) || specialize_jcc32(i) || specialize_muldiv(i) || specialize_bt(i))
        return;
    unsigned s = i->osz == 8 ? 1 : 0;
    if (i->osz == 8 && !i->lock && specialize_control(i))
        return;
    if (i->osz < 4 || i->lock)
        return;
    if ((i->fn == op_incdec_r || (i->fn == op_incdec_rm && i->mod == 3))) {
        i->fn = i->op ? (s ? op_dec_r8 : op_dec_r4) : (s ? op_inc_r8 : op_inc_r4);
        i->jk = JK_INCDEC;
        return;
    }
    if (i->fn == op_alu_rm_r && i->mod == 3 && fast_alu[i->op][0][s]) {
        i->fn = fast_alu[i->op][0][s];
        i->jk = JK_ALU_RR;
    } else if (i->fn == op_alu_r_rm && fast_alu[i->op][1][s]) {
        i->fn = fast_alu[i->op][1][s];
        i->jk = JK_ALU_RRM;
    } else if (i->fn == op_alu_rm_imm && i->mod == 3 && fast_alu[i->op][2][s]) {
        i->fn = fast_alu[i->op][2][s];
        i->jk = JK_ALU_RI;
    } else if (i->fn == op_mov_rm_r) {
        i->fn = i->mod == 3 ? (s ? op_mov_rr8 : op_mov_rr4) : (s ? op_mov_st8 : op_mov_st4);
        i->jk = i->mod == 3 ? JK_MOV_RR : JK_ST;
    } else if (i->fn == op_mov_r_rm && i->mod != 3) {
        i->fn = s ? op_mov_ld8 : op_mov_ld4;
        i->jk = JK_LD;
    } else if (i->fn == op_mov_r_rm) {
        ; /* register-register through the generic form is rare (8B /r) */
    } else if (i->fn == op_test_rm_r && i->mod == 3) {
        i->fn = s ? op_test_rr8 : op_test_rr4;
        i->jk = JK_TEST_RR;
    } else if (i->fn == op_lea && i->mod != 3) {
        i->fn = s ? op_lea8 : op_lea4;
        i->jk = JK_LEA;
    } else if (i->fn == op_mov_r_imm) {
        i->jk = JK_MOV_RI;
    }
}

/* ---- memory operands with 32-bit addressing in 16/32-bit code ----
 * The linear address is (sbase + base + index << scale + disp) mod 2^32 whatever the
 * upper halves of the registers hold, so each address shape gets a handler without the
 * generic ea()'s tests. Only used where the code size is known not to be 64-bit. */
static inline uint64_t ea32_b(struct cpu *c, const struct insn *i)
{
    return (uint32_t)(c->sbase[i->seg] + c->r[i->base] + (uint64_t)(int64_t)i->disp);
}
static inline uint64_t ea32_bi(struct cpu *c, const struct insn *i)
{
    return (uint32_t)(c->sbase[i->seg] + c->r[i->base] + (c->r[i->index] << i->scale) +
                      (uint64_t)(int64_t)i->disp);
}
static inline uint64_t ea32_i(struct cpu *c, const struct insn *i)
{
    return (uint32_t)(c->sbase[i->seg] + (c->r[i->index] << i->scale) +
                      (uint64_t)(int64_t)i->disp);
}
static inline uint64_t ea32_d(struct cpu *c, const struct insn *i)
{
    return (uint32_t)(c->sbase[i->seg] + (uint64_t)(int64_t)i->disp);
}

#define EA_FORMS(NAME, ...) \
    static OP(op_##NAME##_b) { uint64_t lin = ea32_b(c, i); __VA_ARGS__ } \
    static OP(op_##NAME##_bi) { uint64_t lin = ea32_bi(c, i); __VA_ARGS__ } \
    static OP(op_##NAME##_i) { uint64_t lin = ea32_i(c, i); __VA_ARGS__ } \
    static OP(op_##NAME##_d) { uint64_t lin = ea32_d(c, i); __VA_ARGS__ } \
    static const op_fn NAME##_forms[4] = { op_##NAME##_b, op_##NAME##_bi, op_##NAME##_i, \
                                           op_##NAME##_d };
EA_FORMS(st1, mem_write(c, lin, 1, reg_get(c, i->reg, 1));)
EA_FORMS(ld1, reg_set(c, i->reg, 1, mem_read(c, lin, 1));)
EA_FORMS(st4, mem_write(c, lin, 4, c->r[i->reg]);)
EA_FORMS(ld4, c->r[i->reg] = mem_read(c, lin, 4);)
EA_FORMS(movzxb4, c->r[i->reg] = mem_read(c, lin, 1);)
EA_FORMS(movzxw4, c->r[i->reg] = mem_read(c, lin, 2);)
EA_FORMS(add4, { uint32_t a = (uint32_t)c->r[i->reg], b = (uint32_t)mem_read(c, lin, 4),
                 r = a + b; lazy(c, LF_ADD, 4, r, a, b); c->r[i->reg] = r; })
EA_FORMS(cmp4, { uint32_t a = (uint32_t)c->r[i->reg], b = (uint32_t)mem_read(c, lin, 4),
                 r = a - b; lazy(c, LF_SUB, 4, r, a, b); })
EA_FORMS(xor4, { uint32_t a = (uint32_t)c->r[i->reg], b = (uint32_t)mem_read(c, lin, 4),
                 r = a ^ b; lazy(c, LF_LOGIC, 4, r, a, b); c->r[i->reg] = r; })
#undef EA_FORMS

void specialize_ea32(struct insn *i)
{
    const op_fn *forms;
    unsigned k;
    if (i->mod == 3 || i->asz != 4 || i->lock || i->base == 0xfe)
        return;
    if (i->fn == op_mov_st1)
        forms = st1_forms;
    else if (i->fn == op_mov_ld1)
        forms = ld1_forms;
    else if (i->fn == op_mov_st4)
        forms = st4_forms;
    else if (i->fn == op_mov_ld4)
        forms = ld4_forms;
    else if (i->fn == op_movzx_b_mem && i->osz == 4)
        forms = movzxb4_forms;
    else if (i->fn == op_movzx_w_mem && i->osz == 4)
        forms = movzxw4_forms;
    else if (i->fn == op_add_rm4)
        forms = add4_forms;
    else if (i->fn == op_cmp_rm4)
        forms = cmp4_forms;
    else if (i->fn == op_xor_rm4)
        forms = xor4_forms;
    else
        return;
    if (i->base < 16)
        k = i->index < 16 ? 1 : 0;
    else
        k = i->index < 16 ? 2 : 3;
    i->fn = forms[k];
}
