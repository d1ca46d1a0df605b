/* String instructions with REP/REPE/REPNE. A long REP yields every few thousand
 * iterations (RIP stays on the instruction) so interrupts and kicks get through. */
#include "x86.h"

#define REP_CHUNK 4096

static inline uint64_t cnt_get(struct cpu *c, const struct insn *i)
{
    return c->r[1] & amask(i->asz);
}

static inline void idx_add(struct cpu *c, unsigned r, const struct insn *i, int64_t d)
{
    reg_set(c, r, i->asz, c->r[r] + (uint64_t)d);
}

static inline int64_t step(struct cpu *c, unsigned sz)
{
    return (c->rflags & F_DF) ? -(int64_t)sz : (int64_t)sz;
}

/* Runs @one up to the REP count; returns after the count hits zero or the chunk ends. */
#define REP_LOOP(body, cond_exit) \
    do { \
        if (!i->rep) { body; break; } \
        for (unsigned _n = 0;; _n++) { \
            if (cnt_get(c, i) == 0) break; \
            if (_n == REP_CHUNK) { c->rip = c->insn_rip; c->stop_block = true; break; } \
            body; \
            reg_set(c, 1, i->asz, c->r[1] - 1); \
            if (cond_exit) break; \
        } \
    } while (0)

OP(op_movs)
{
    unsigned sz = i->osz;
    int64_t d = step(c, sz);
    /* fast path: forward copy within one page on both sides */
    if (i->rep && d > 0) {
        for (unsigned k = 0; k < 64; k++) {
            uint64_t n = cnt_get(c, i);
            if (!n)
                return;
            uint64_t s = seg_lin(c, i->seg, c->r[6] & amask(i->asz));
            uint64_t t = seg_lin(c, CPU_ES, c->r[7] & amask(i->asz));
            uint64_t room_s = (0x1000 - (s & 0xfff)) / sz, room_t = (0x1000 - (t & 0xfff)) / sz;
            uint64_t k2 = n < room_s ? n : room_s;
            k2 = k2 < room_t ? k2 : room_t;
            if (k2 == 0)
                break;
            uint8_t *ps = tlb_fast(c, s, P_R, sz), *pt = tlb_fast(c, t, P_W, sz);
            if (!ps || !pt)
                break;
            if (pt < ps + k2 * sz && ps < pt + k2 * sz) {
                /* overlapping: copy element by element like hardware does */
                for (uint64_t j = 0; j < k2 * sz; j += sz)
                    st(pt + j, sz, ld(ps + j, sz));
            } else {
                memmove(pt, ps, k2 * sz);
            }
            idx_add(c, 6, i, (int64_t)(k2 * sz));
            idx_add(c, 7, i, (int64_t)(k2 * sz));
            reg_set(c, 1, i->asz, n - k2);
        }
    }
    REP_LOOP({
        uint64_t v = mem_read(c, seg_lin(c, i->seg, c->r[6] & amask(i->asz)), sz);
        mem_write(c, seg_lin(c, CPU_ES, c->r[7] & amask(i->asz)), sz, v);
        idx_add(c, 6, i, d);
        idx_add(c, 7, i, d);
    }, false);
}

OP(op_stos)
{
    unsigned sz = i->osz;
    int64_t d = step(c, sz);
    uint64_t v = reg_get(c, 0, sz);
    if (i->rep && d > 0) {
        for (unsigned k = 0; k < 64; k++) {
            uint64_t n = cnt_get(c, i);
            if (!n)
                return;
            uint64_t t = seg_lin(c, CPU_ES, c->r[7] & amask(i->asz));
            uint64_t room = (0x1000 - (t & 0xfff)) / sz, k2 = n < room ? n : room;
            uint8_t *pt = k2 ? tlb_fast(c, t, P_W, sz) : NULL;
            if (!pt)
                break;
            if (sz == 1)
                memset(pt, (int)v, k2);
            else
                for (uint64_t j = 0; j < k2; j++)
                    st(pt + j * sz, sz, v);
            idx_add(c, 7, i, (int64_t)(k2 * sz));
            reg_set(c, 1, i->asz, n - k2);
        }
    }
    REP_LOOP({
        mem_write(c, seg_lin(c, CPU_ES, c->r[7] & amask(i->asz)), sz, v);
        idx_add(c, 7, i, d);
    }, false);
}

OP(op_lods)
{
    unsigned sz = i->osz;
    int64_t d = step(c, sz);
    REP_LOOP({
        reg_set(c, 0, sz, mem_read(c, seg_lin(c, i->seg, c->r[6] & amask(i->asz)), sz));
        idx_add(c, 6, i, d);
    }, false);
}

OP(op_cmps)
{
    unsigned sz = i->osz;
    int64_t d = step(c, sz);
    REP_LOOP({
        uint64_t a = mem_read(c, seg_lin(c, i->seg, c->r[6] & amask(i->asz)), sz);
        uint64_t b = mem_read(c, seg_lin(c, CPU_ES, c->r[7] & amask(i->asz)), sz);
        alu_op(c, 7, a, b, sz);
        idx_add(c, 6, i, d);
        idx_add(c, 7, i, d);
    }, (i->rep == 0xf3) != cond_eval(c, 4));
}

OP(op_scas)
{
    unsigned sz = i->osz;
    int64_t d = step(c, sz);
    REP_LOOP({
        uint64_t b = mem_read(c, seg_lin(c, CPU_ES, c->r[7] & amask(i->asz)), sz);
        alu_op(c, 7, reg_get(c, 0, sz), b, sz);
        idx_add(c, 7, i, d);
    }, (i->rep == 0xf3) != cond_eval(c, 4));
}

bool io_allowed(struct cpu *c, uint16_t port, unsigned sz);

OP(op_ins)
{
    unsigned sz = i->osz;
    int64_t d = step(c, sz);
    uint16_t port = (uint16_t)c->r[2];
    if (!io_allowed(c, port, sz))
        cpu_gp0(c);
    REP_LOOP({
        uint64_t v = 0;
        uint64_t t = seg_lin(c, CPU_ES, c->r[7] & amask(i->asz));
        (void)mem_read(c, t, sz);   /* fault before the port is read */
        if (c->io.pio && c->io.pio(c->io.opaque, port, false, sz, &v))
            c->io_stop = 1;
        mem_write(c, t, sz, v);
        idx_add(c, 7, i, d);
    }, c->io_stop);
    c->stop_block = true;
}

OP(op_outs)
{
    unsigned sz = i->osz;
    int64_t d = step(c, sz);
    uint16_t port = (uint16_t)c->r[2];
    if (!io_allowed(c, port, sz))
        cpu_gp0(c);
    REP_LOOP({
        uint64_t v = mem_read(c, seg_lin(c, i->seg, c->r[6] & amask(i->asz)), sz);
        if (c->io.pio && c->io.pio(c->io.opaque, port, true, sz, &v))
            c->io_stop = 1;
        idx_add(c, 6, i, d);
    }, c->io_stop);
    c->stop_block = true;
}
