/* BT/BTS/BTR/BTC, BSF/BSR, POPCNT. */
#include "x86.h"

static void bt_common(struct cpu *c, const struct insn *i, unsigned op, int64_t bit, bool reg_off)
{
    unsigned sz = i->osz, bits = sz * 8;
    uint64_t v, addr = 0, mask;
    if (i->mod == 3) {
        bit &= bits - 1;
        v = reg_get(c, i->rm, sz);
    } else {
        int64_t off = 0;
        if (reg_off) {
            off = (bit >> (sz == 2 ? 4 : sz == 4 ? 5 : 6)) * (int64_t)sz;
            bit &= bits - 1;
        } else {
            bit &= bits - 1;
        }
        addr = seg_lin(c, i->seg, (ea_off(c, i) + (uint64_t)off) & amask(i->asz));
        v = mem_read(c, addr, sz);
    }
    mask = 1ULL << bit;
    flags_set_arith(c, F_CF, (v & mask) ? F_CF : 0);
    switch (op) {
    case 4: return;
    case 5: v |= mask; break;
    case 6: v &= ~mask; break;
    default: v ^= mask; break;
    }
    if (i->mod == 3)
        reg_set(c, i->rm, sz, v);
    else
        mem_write(c, addr, sz, v);
}

OP(op_bt_rm_r) { bt_common(c, i, i->op, sext(reg_get(c, i->reg, i->osz), i->osz), true); }

OP(op_bt_rm_imm)
{
    if ((i->op & 7) < 4)
        cpu_ud(c);
    bt_common(c, i, i->op & 7, (int64_t)(i->imm & 0xff), false);
}

OP(op_bsf)
{
    uint64_t v = rm_read(c, i, i->osz);
    if (!v) {
        flags_set_arith(c, F_ZF, F_ZF);
        return;
    }
    reg_set(c, i->reg, i->osz, (uint64_t)__builtin_ctzll(v));
    flags_set_arith(c, F_ZF, 0);
}

OP(op_bsr)
{
    uint64_t v = rm_read(c, i, i->osz);
    if (!v) {
        flags_set_arith(c, F_ZF, F_ZF);
        return;
    }
    reg_set(c, i->reg, i->osz, (uint64_t)(63 - __builtin_clzll(v)));
    flags_set_arith(c, F_ZF, 0);
}

OP(op_popcnt)
{
    uint64_t v;
    if (i->rep != 0xf3)
        cpu_ud(c);
    v = rm_read(c, i, i->osz);
    reg_set(c, i->reg, i->osz, (uint64_t)__builtin_popcountll(v));
    flags_set_arith(c, F_ARITH, v ? 0 : F_ZF);
}

/* BT/BTS/BTR/BTC of a register (by a register or imm8): the JIT compiles them inline; the
 * handlers above stay (0F BA /0-/3 is #UD: not marked). */
bool specialize_bt(struct insn *i)
{
    if (i->mod != 3 || i->lock)
        return false;
    if (i->fn == op_bt_rm_r || (i->fn == op_bt_rm_imm && (i->op & 7) >= 4)) {
        i->jk = JK_BT;
        return true;
    }
    return false;
}
