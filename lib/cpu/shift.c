/* Shifts and rotates (C0/C1/D0-D3 groups, SHLD/SHRD). Flags are computed eagerly. */
#include "x86.h"

static uint64_t szp(uint64_t r, unsigned sz)
{
    r &= sz_mask(sz);
    return (r ? 0 : F_ZF) | ((r & sz_sign(sz)) ? F_SF : 0) | (parity_table[r & 0xff] ? F_PF : 0);
}

OP(op_shift)
{
    unsigned sz = i->osz, bits = sz * 8, kind = i->op >> 4, op = i->op & 7;
    uint64_t m = sz_mask(sz), a, r, addr = 0, f;
    unsigned n;
    bool cf, of;

    n = kind == 0 ? 1 : kind == 1 ? (unsigned)(i->imm & 0xff) : (unsigned)(c->r[1] & 0xff);
    n &= sz == 8 ? 0x3f : 0x1f;
    if (i->mod == 3) {
        a = reg_get(c, i->rm, sz);
    } else {
        addr = ea(c, i);
        a = mem_read(c, addr, sz);
    }
    if (n == 0) {
        if (i->mod == 3 && sz == 4)
            reg_set(c, i->rm, 4, a);    /* a 32-bit destination is still zero-extended */
        return;
    }
    switch (op) {
    case 0: { /* ROL */
        unsigned k = n % bits;
        r = k ? ((a << k) | (a >> (bits - k))) & m : a;
        cf = r & 1;
        of = ((r >> (bits - 1)) & 1) ^ cf;
        flags_set_arith(c, F_CF | F_OF, (cf ? F_CF : 0) | (of ? F_OF : 0));
        break;
    }
    case 1: { /* ROR */
        unsigned k = n % bits;
        r = k ? ((a >> k) | (a << (bits - k))) & m : a;
        cf = (r >> (bits - 1)) & 1;
        of = cf ^ ((r >> (bits - 2)) & 1);
        flags_set_arith(c, F_CF | F_OF, (cf ? F_CF : 0) | (of ? F_OF : 0));
        break;
    }
    case 2: { /* RCL: rotate through CF, a (bits+1)-bit rotation */
        unsigned k = sz < 4 ? n % (bits + 1) : n;
        bool c0 = get_cf(c);
        r = a;
        cf = c0;
        for (unsigned j = 0; j < k; j++) {
            bool out = (r >> (bits - 1)) & 1;
            r = ((r << 1) | cf) & m;
            cf = out;
        }
        of = ((r >> (bits - 1)) & 1) ^ cf;
        flags_set_arith(c, F_CF | F_OF, (cf ? F_CF : 0) | (of ? F_OF : 0));
        break;
    }
    case 3: { /* RCR */
        unsigned k = sz < 4 ? n % (bits + 1) : n;
        bool c0 = get_cf(c);
        r = a;
        cf = c0;
        of = ((a >> (bits - 1)) & 1) ^ c0;
        for (unsigned j = 0; j < k; j++) {
            bool out = r & 1;
            r = (r >> 1) | ((uint64_t)cf << (bits - 1));
            cf = out;
        }
        flags_set_arith(c, F_CF | F_OF, (cf ? F_CF : 0) | (of ? F_OF : 0));
        break;
    }
    case 4: case 6: /* SHL/SAL */
        r = n < 64 ? (a << n) & m : 0;
        cf = n <= bits ? (a >> (bits - n)) & 1 : 0;
        of = ((r >> (bits - 1)) & 1) ^ cf;
        f = szp(r, sz) | (cf ? F_CF : 0) | (of ? F_OF : 0);
        flags_set_arith(c, F_ARITH, f);
        break;
    case 5: /* SHR */
        r = n < 64 ? a >> n : 0;
        cf = n <= bits ? (a >> (n - 1)) & 1 : 0;
        of = (a >> (bits - 1)) & 1;
        f = szp(r, sz) | (cf ? F_CF : 0) | (of ? F_OF : 0);
        flags_set_arith(c, F_ARITH, f);
        break;
    default: { /* SAR */
        int64_t s = sext(a, sz);
        unsigned k = n > 63 ? 63 : n;
        r = (uint64_t)(s >> k) & m;
        cf = (s >> (k - 1 < 63 ? k - 1 : 63)) & 1;
        f = szp(r, sz) | (cf ? F_CF : 0);
        flags_set_arith(c, F_ARITH, f);
        break;
    }
    }
    if (i->mod == 3)
        reg_set(c, i->rm, sz, r);
    else
        mem_write(c, addr, sz, r);
}

static void shxd(struct cpu *c, const struct insn *i, bool left)
{
    unsigned sz = i->osz, bits = sz * 8;
    uint64_t m = sz_mask(sz), d, s = reg_get(c, i->reg, sz), r, addr = 0;
    unsigned n = i->op == 0 ? (unsigned)(i->imm & 0xff) : (unsigned)(c->r[1] & 0xff);
    bool cf, of;
    n &= sz == 8 ? 0x3f : 0x1f;
    if (i->mod == 3) {
        d = reg_get(c, i->rm, sz);
    } else {
        addr = ea(c, i);
        d = mem_read(c, addr, sz);
    }
    if (n == 0) {
        if (i->mod == 3 && sz == 4)
            reg_set(c, i->rm, 4, d);
        return;
    }
    if (sz == 2) {
        /* 16-bit forms shift the 32-bit value d:s (or s:d); counts > 16 are undefined */
        uint64_t v = left ? (d << 16) | s : (s << 16) | d;
        if (left) {
            uint64_t w = (v << n) | (n > 16 ? (d << (n - 16)) : 0);
            r = (w >> 16) & m;
            cf = (v >> (32 - n)) & 1;
        } else {
            uint64_t w = (v >> n) | (n > 16 ? (d << (32 - n)) : 0);
            r = w & m;
            cf = (v >> (n - 1)) & 1;
        }
    } else if (left) {
        r = ((d << n) | (s >> (bits - n))) & m;
        cf = (d >> (bits - n)) & 1;
    } else {
        r = ((d >> n) | (s << (bits - n))) & m;
        cf = (d >> (n - 1)) & 1;
    }
    of = ((r ^ d) >> (bits - 1)) & 1;
    r &= m;
    flags_set_arith(c, F_ARITH, (r ? 0 : F_ZF) | ((r & sz_sign(sz)) ? F_SF : 0) |
                                    (parity_table[r & 0xff] ? F_PF : 0) | (cf ? F_CF : 0) |
                                    (of ? F_OF : 0));
    if (i->mod == 3)
        reg_set(c, i->rm, sz, r);
    else
        mem_write(c, addr, sz, r);
}

OP(op_shld) { shxd(c, i, true); }
OP(op_shrd) { shxd(c, i, false); }

/* SHL/SHR/SAR of a 32/64-bit register with lazy flags (AF reads as 0; OF as for count 1). */
static OP(op_shift_fast)
{
    unsigned sz = i->osz, kind = i->op >> 4, op = i->op & 7;
    uint64_t a = c->r[i->rm], r;
    unsigned n = kind == 0 ? 1 : kind == 1 ? (unsigned)(i->imm & 0xff) : (unsigned)(c->r[1] & 0xff);
    n &= sz == 8 ? 0x3f : 0x1f;
    if (sz == 4)
        a = (uint32_t)a;
    if (n == 0) {
        c->r[i->rm] = a;
        return;
    }
    switch (op) {
    case 4: case 6: r = (a << n) & sz_mask(sz); lazy(c, LF_SHL, sz, r, a, n); break;
    case 5: r = a >> n; lazy(c, LF_SHR, sz, r, a, n); break;
    default: r = (uint64_t)(sext(a, sz) >> n) & sz_mask(sz); lazy(c, LF_SAR, sz, r, a, n); break;
    }
    c->r[i->rm] = r;
}

bool specialize_shift(struct insn *i)
{
    unsigned op = i->op & 7;
    if (i->fn == op_shift && i->mod == 3 && op < 2) {
        i->jk = JK_ROT;         /* ROL/ROR of a register: op_shift stays the handler */
        return true;
    }
    if (i->fn != op_shift || i->mod != 3 || i->osz < 4 || op < 4)
        return false;
    i->fn = op_shift_fast;
    i->jk = JK_SHIFT;
    return true;
}
