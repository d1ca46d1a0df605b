/* MUL, IMUL, DIV, IDIV. */
#include "x86.h"

static void mul_flags(struct cpu *c, bool ovf, uint64_t lo, unsigned sz)
{
    lo &= sz_mask(sz);
    /* CF = OF = overflow; SF/ZF/PF from the low half (undefined, as current CPUs do) */
    lazy(c, LF_MUL, sz, lo, lo, 0);
    c->lf_cin = ovf;
}

OP(op_mul1)
{
    unsigned sz = i->osz;
    uint64_t s = rm_read(c, i, sz);
    switch (sz) {
    case 1: {
        uint16_t r = (uint16_t)((c->r[0] & 0xff) * s);
        reg_set(c, 0, 2, r);
        mul_flags(c, r >> 8, r, 1);
        break;
    }
    case 2: {
        uint32_t r = (uint32_t)((c->r[0] & 0xffff) * s);
        reg_set(c, 0, 2, r);
        reg_set(c, 2, 2, r >> 16);
        mul_flags(c, r >> 16, r, 2);
        break;
    }
    case 4: {
        uint64_t r = (c->r[0] & 0xffffffff) * s;
        reg_set(c, 0, 4, r);
        reg_set(c, 2, 4, r >> 32);
        mul_flags(c, r >> 32, r, 4);
        break;
    }
    default: {
        unsigned __int128 r = (unsigned __int128)c->r[0] * s;
        c->r[0] = (uint64_t)r;
        c->r[2] = (uint64_t)(r >> 64);
        mul_flags(c, c->r[2] != 0, c->r[0], 8);
        break;
    }
    }
}

OP(op_imul1)
{
    unsigned sz = i->osz;
    int64_t s = sext(rm_read(c, i, sz), sz);
    switch (sz) {
    case 1: {
        int16_t r = (int16_t)((int8_t)c->r[0] * s);
        reg_set(c, 0, 2, (uint16_t)r);
        mul_flags(c, r != (int8_t)r, (uint64_t)r, 1);
        break;
    }
    case 2: {
        int32_t r = (int32_t)((int16_t)c->r[0] * s);
        reg_set(c, 0, 2, (uint32_t)r);
        reg_set(c, 2, 2, (uint32_t)r >> 16);
        mul_flags(c, r != (int16_t)r, (uint64_t)r, 2);
        break;
    }
    case 4: {
        int64_t r = (int64_t)(int32_t)c->r[0] * s;
        reg_set(c, 0, 4, (uint64_t)r);
        reg_set(c, 2, 4, (uint64_t)r >> 32);
        mul_flags(c, r != (int32_t)r, (uint64_t)r, 4);
        break;
    }
    default: {
        __int128 r = (__int128)(int64_t)c->r[0] * s;
        c->r[0] = (uint64_t)r;
        c->r[2] = (uint64_t)((unsigned __int128)r >> 64);
        mul_flags(c, r != (int64_t)r, c->r[0], 8);
        break;
    }
    }
}

static void imul2(struct cpu *c, const struct insn *i, int64_t a, int64_t b)
{
    unsigned sz = i->osz;
    if (sz <= 4) {
        int64_t r = a * b;      /* operands are sign-extended 8..32-bit values */
        uint64_t lo = (uint64_t)r & sz_mask(sz);
        reg_set(c, i->reg, sz, lo);
        mul_flags(c, r != sext(lo, sz), lo, sz);
        return;
    }
    __int128 r = (__int128)a * b;
    uint64_t lo = (uint64_t)r & sz_mask(sz);
    reg_set(c, i->reg, sz, lo);
    mul_flags(c, r != (__int128)sext(lo, sz), lo, sz);
}

OP(op_imul_r_rm) { imul2(c, i, sext(reg_get(c, i->reg, i->osz), i->osz), sext(rm_read(c, i, i->osz), i->osz)); }
OP(op_imul_r_rm_imm) { imul2(c, i, sext(rm_read(c, i, i->osz), i->osz), sext(i->imm, i->osz)); }

/* IMUL r32, r/m32, imm with a register source: the hot form in hashing loops */
static OP(op_imul_rri4)
{
    int64_t r = (int64_t)(int32_t)c->r[i->rm] * (int64_t)(int32_t)i->imm;
    uint32_t lo = (uint32_t)r;
    c->r[i->reg] = lo;
    mul_flags(c, r != (int32_t)lo, lo, 4);
}

bool specialize_muldiv(struct insn *i)
{
    if (i->fn == op_imul_r_rm_imm && i->osz == 4 && i->mod == 3) {
        i->fn = op_imul_rri4;
        i->jk = JK_IMUL_RRI4;
        return true;
    }
    return false;
}

OP(op_div)
{
    unsigned sz = i->osz;
    uint64_t s = rm_read(c, i, sz);
    if (s == 0)
        cpu_raise(c, EX_DE, 0, 0);
    switch (sz) {
    case 1: {
        uint16_t n = (uint16_t)c->r[0], q = (uint16_t)(n / s);
        if (q > 0xff)
            cpu_raise(c, EX_DE, 0, 0);
        reg_set(c, 0, 2, (uint16_t)((n % s) << 8 | q));
        break;
    }
    case 2: {
        uint32_t n = (uint32_t)((c->r[2] & 0xffff) << 16 | (c->r[0] & 0xffff));
        uint32_t q = (uint32_t)(n / s);
        if (q > 0xffff)
            cpu_raise(c, EX_DE, 0, 0);
        reg_set(c, 0, 2, q);
        reg_set(c, 2, 2, n % s);
        break;
    }
    case 4: {
        uint64_t n = (c->r[2] & 0xffffffff) << 32 | (c->r[0] & 0xffffffff), q = n / s;
        if (q > 0xffffffff)
            cpu_raise(c, EX_DE, 0, 0);
        reg_set(c, 0, 4, q);
        reg_set(c, 2, 4, n % s);
        break;
    }
    default: {
        unsigned __int128 n = (unsigned __int128)c->r[2] << 64 | c->r[0], q = n / s;
        if (q >> 64)
            cpu_raise(c, EX_DE, 0, 0);
        c->r[0] = (uint64_t)q;
        c->r[2] = (uint64_t)(n % s);
        break;
    }
    }
}

OP(op_idiv)
{
    unsigned sz = i->osz;
    int64_t s = sext(rm_read(c, i, sz), sz);
    if (s == 0)
        cpu_raise(c, EX_DE, 0, 0);
    switch (sz) {
    case 1: {
        int32_t n = (int16_t)c->r[0], q = n / (int32_t)s;
        if (q != (int8_t)q)
            cpu_raise(c, EX_DE, 0, 0);
        reg_set(c, 0, 2, (uint16_t)(((uint8_t)(n % s)) << 8 | (uint8_t)q));
        break;
    }
    case 2: {
        int64_t n = (int32_t)((c->r[2] & 0xffff) << 16 | (c->r[0] & 0xffff)), q = n / s;
        if (q != (int16_t)q)
            cpu_raise(c, EX_DE, 0, 0);
        reg_set(c, 0, 2, (uint64_t)q);
        reg_set(c, 2, 2, (uint64_t)(n % s));
        break;
    }
    case 4: {
        int64_t n = (int64_t)((c->r[2] & 0xffffffff) << 32 | (c->r[0] & 0xffffffff));
        if (n == INT64_MIN && s == -1)
            cpu_raise(c, EX_DE, 0, 0);
        int64_t q = n / s;
        if (q != (int32_t)q)
            cpu_raise(c, EX_DE, 0, 0);
        reg_set(c, 0, 4, (uint64_t)q);
        reg_set(c, 2, 4, (uint64_t)(n % s));
        break;
    }
    default: {
        __int128 n = (__int128)((unsigned __int128)c->r[2] << 64 | c->r[0]), q;
        if (s == -1 && (unsigned __int128)n == (unsigned __int128)1 << 127)
            cpu_raise(c, EX_DE, 0, 0);     /* the quotient would be 2^127 */
        q = n / s;
        if (q != (int64_t)q)
            cpu_raise(c, EX_DE, 0, 0);
        c->r[0] = (uint64_t)q;
        c->r[2] = (uint64_t)(n % s);
        break;
    }
    }
}
