/* Translation cache: straight-line blocks of predecoded instructions, keyed by the
 * guest-physical address of their first byte and the code size (16/32/64-bit).
 *
 * Invalidation is per page and O(1): every RAM page has a generation number that a
 * block records when it is built; a write that overlaps the page's code (tracked in
 * 128-byte chunks) bumps the generation, and stale blocks simply stop matching. Blocks
 * never cross a page boundary, so one generation check covers all of a block's bytes,
 * except a block of one instruction that does: it checks the second page's too.
 * Storage is a bump arena: when it is full, everything is flushed (the cache is bounded).
 *
 * tcache_run() executes blocks: compiled code (jit.c) where a block has it, else the insn
 * loop; keys, invalidation and the struct block header are the same either way. */
#include <stdlib.h>

#include "x86.h"

#define BLOCK_MAX 48
#define TABLE_BITS 16            /* 2-way: 32768 sets */
#define ARENA_INSNS (1u << 19)


struct tcache {
    struct block *table;        /* direct-mapped */
    struct insn *arena;
    size_t arena_used;
    uint32_t *gen;              /* per RAM page */
    uint32_t *code;             /* per RAM page: 128-byte chunks holding code */
    uint64_t npages;
    struct jit *jit;            /* NULL: every block runs in the interpreter */
    uint64_t flush_gen;         /* bumped by every flush: compiled code of older ones is gone */
    unsigned jit_hot;           /* runs before a block is compiled */
    uint32_t builds;            /* blocks built so far (their stamps) */
};

struct tcache *tcache_new(uint64_t ram_size)
{
    struct tcache *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->npages = (ram_size + 0xfff) >> 12;
    t->table = calloc(1u << TABLE_BITS, sizeof *t->table);
    t->arena = malloc(ARENA_INSNS * sizeof *t->arena);
    t->gen = calloc(t->npages ? t->npages : 1, sizeof *t->gen);
    t->code = calloc(t->npages ? t->npages : 1, sizeof *t->code);
    if (!t->table || !t->arena || !t->gen || !t->code) {
        tcache_free(t);
        return NULL;
    }
    t->jit = jit_new();
    t->jit_hot = t->jit ? jit_hot(t->jit) : 0;
    return t;
}

void tcache_free(struct tcache *t)
{
    if (!t)
        return;
    free(t->table);
    free(t->arena);
    free(t->gen);
    free(t->code);
    jit_free(t->jit);
    free(t);
}

bool tcache_set_jit(struct cpu *c, bool on)
{
    struct tcache *t = c->tc;
    if (on && !t->jit) {
        t->jit = jit_new();
        t->jit_hot = t->jit ? jit_hot(t->jit) : 0;
    } else if (!on && t->jit) {
        /* blocks keep pointers into the arena: drop them with it */
        tcache_flush(t);
        jc_bump(c);
        jit_free(t->jit);
        t->jit = NULL;
    }
    return t->jit != NULL;
}

void tcache_flush(struct tcache *t)
{
    if (!t)
        return;
    /* every page's generation moves on, so every block in the table is stale: no need to
     * touch the (large, mostly never used) table itself */
    memset(t->code, 0, t->npages * sizeof *t->code);
    for (uint64_t p = 0; p < t->npages; p++)
        t->gen[p]++;
    t->arena_used = 0;
    jit_flush(t->jit);
    t->flush_gen++;
}

bool tcache_page_has_code(struct tcache *t, uint64_t gpage)
{
    return gpage < t->npages && t->code[gpage] != 0;
}

static uint32_t chunk_mask(uint64_t off, uint64_t len)
{
    unsigned first = (unsigned)(off >> 7), last = (unsigned)((off + len - 1) >> 7);
    if (last > 31)
        last = 31;
    return (uint32_t)((last == 31 ? ~0u : ((1u << (last + 1)) - 1)) & ~((1u << first) - 1));
}

void tcache_write(struct cpu *c, uint64_t gpa, unsigned len)
{
    struct tcache *t = c->tc;
    uint64_t page = gpa >> 12;
    if (page >= t->npages)
        return;
    if ((gpa & 0xfff) + len > 0x1000) {
        unsigned first = 0x1000 - (unsigned)(gpa & 0xfff);
        tcache_write(c, gpa + first, len - first);
        len = first;
    }
    if (!(t->code[page] & chunk_mask(gpa & 0xfff, len)))
        return;
    /* self-modifying code: drop the page's blocks and let writes run fast again */
    t->gen[page]++;
    t->code[page] = 0;
    c->stop_block = true;
    jc_bump(c);
    for (unsigned k = 0; k < TLB_SIZE; k++)
        if (c->tlb[k].vpage && c->tlb[k].gpage == page)
            c->tlb[k].vpage = 0;
}

/* The first of the two ways of (gpa, csz)'s set. */
static inline unsigned slot(uint64_t gpa, unsigned csz)
{
    uint64_t h = (gpa ^ (gpa >> TABLE_BITS) ^ ((uint64_t)csz << 3)) * 0x9e3779b97f4a7c15ULL;
    return (unsigned)(h >> (64 - TABLE_BITS)) & ~1u;
}

static inline bool block_live(const struct tcache *t, const struct block *b)
{
    return b->n && b->gen == t->gen[b->gpa >> 12] && (!b->cross || b->gen2 == t->gen[b->gpa2 >> 12]);
}

/* Guest-physical page of the linear page after @lin's, for an instruction fetch (faults
 * like one). */
static uint64_t next_page_gpa(struct cpu *c, uint64_t lin)
{
    uint64_t next = (lin | 0xfff) + 1, g;
    if (!c->code64)
        next &= 0xffffffffULL;
    if (tlb_fast(c, next, P_X, 1))
        return c->tlb[tlb_index(next)].gpage << 12;
    bool mmio;
    mmu_slow(c, next, P_X, &mmio, &g);
    if (mmio)
        cpu_stop_error(c, "instruction fetch outside RAM at gpa 0x%llx", (unsigned long long)g);
    return g & ~0xfffULL;
}

static inline void jc_fill(struct cpu *c, struct jc_entry *j, uint64_t lin, struct block *b)
{
    j->lin = lin;
    j->key = c->jc_key;
    j->b = b;
    j->gpa = b->gpa;
}

static void mark_code(struct cpu *c, uint64_t gpa, uint64_t len)
{
    struct tcache *t = c->tc;
    uint64_t page = gpa >> 12;
    uint32_t m = chunk_mask(gpa & 0xfff, len);
    if (!t->code[page]) {
        t->code[page] = m;
        tlb_protect_code(c, page);
    } else {
        t->code[page] |= m;
    }
}

struct block *tcache_get(struct cpu *c)
{
    struct tcache *t = c->tc;
    uint64_t lin = seg_lin(c, CPU_CS, c->rip), gpa;
    struct jc_entry *j = &c->jc[(lin ^ (lin >> 12)) & 4095];
    uint8_t *p;
    struct block *b;
    unsigned avail, pos = 0, csz = c->csz;

    if (j->lin == lin && j->key == c->jc_key && j->b->gpa == j->gpa) {
        c->tc_hits++;
        return j->b;
    }
    p = tlb_fast(c, lin, P_X, 1);
    if (p) {
        struct tlb_entry *e = &c->tlb[tlb_index(lin)];
        gpa = (e->gpage << 12) | (lin & 0xfff);
    } else {
        bool mmio;
        p = mmu_slow(c, lin, P_X, &mmio, &gpa);
        if (mmio)
            cpu_stop_error(c, "instruction fetch outside RAM at rip=0x%llx (gpa 0x%llx)",
                           (unsigned long long)c->rip, (unsigned long long)gpa);
    }
    struct block *set = &t->table[slot(gpa, csz)];
    for (unsigned w = 0; w < 2; w++) {
        b = &set[w];
        if (b->gpa == gpa && b->csz == csz && block_live(t, b) &&
            (!b->cross || next_page_gpa(c, lin) == b->gpa2)) {
            c->tc_hits++;
            jc_fill(c, j, lin, b);
            return b;
        }
    }
    c->tc_misses++;
    if (t->arena_used + BLOCK_MAX > ARENA_INSNS || jit_full(t->jit)) {
        tcache_flush(t);
        jc_bump(c);
    }
    /* a stale way, else the older one. Evicting needs no jump-cache flush: jump-cache
     * entries check the block's gpa, and chains go to compiled code, which stays valid
     * (and in the arena) after its table slot is reused. */
    if (!block_live(t, &set[0]))
        b = &set[0];
    else if (!block_live(t, &set[1]))
        b = &set[1];
    else
        b = set[0].stamp - set[1].stamp < 0x80000000u ? &set[1] : &set[0];
    b->stamp = t->builds++;
    avail = 0x1000 - (unsigned)(gpa & 0xfff);
    b->gpa = gpa;
    b->csz = (uint8_t)csz;
    b->gen = t->gen[gpa >> 12];
    b->insn = t->arena + t->arena_used;
    b->n = 0;
    while (b->n < BLOCK_MAX) {
        struct insn *in = &b->insn[b->n];
        unsigned n = decode(c, p + pos, avail - pos, in);
        if (n == 0)
            break;      /* crosses the page end */
        if (csz != 8)
            specialize_ea32(in);
        b->n++;
        pos += n;
        if (pos >= avail)
            break;
        /* a conditional branch becomes a side exit: the block goes on with the
         * fall-through path, so a loop body with an early exit is one block */
        if ((in->flags & INSN_ENDS_BLOCK) && !specialize_side_exit(in))
            break;
    }
    b->cross = 0;
    if (b->n == 0) {
        /* the first instruction crosses into the next page: fetch it byte by byte (either
         * page may fault) into a one-instruction block that depends on both pages */
        uint8_t buf[16];
        struct insn *in = &b->insn[0];
        unsigned len = 0;
        for (unsigned k = 0; k < 15 && !len; k++) {
            bool mmio;
            uint64_t g;
            uint8_t *q = mmu_slow(c, lin + k, P_X, &mmio, &g);
            if (mmio)
                cpu_stop_error(c, "instruction fetch outside RAM at gpa 0x%llx",
                               (unsigned long long)g);
            buf[k] = *q;
            len = decode(c, buf, k + 1, in);
        }
        if (!len)
            len = decode(c, buf, 15, in);
        if (csz != 8)
            specialize_ea32(in);
        b->n = 1;
        pos = len;
        if (len > avail) {      /* (an undefined opcode may turn out shorter) */
            b->cross = 1;
            b->gpa2 = next_page_gpa(c, lin);
            b->gen2 = t->gen[b->gpa2 >> 12];
            mark_code(c, b->gpa2, len - avail);
            pos = avail;
        }
    }
    t->arena_used += b->n;
    b->code = b->chain = NULL;
    b->runs = 0;
    mark_code(c, gpa, pos);
    jc_fill(c, j, lin, b);
    return b;
}

static inline void run_one_block(struct cpu *c, const struct block *b)
{
    const struct insn *i = b->insn, *end = b->insn + b->n;
    do {
        c->insn_rip = c->rip;
        c->rip += i->len;
        i->fn(c, i);
        if (c->stop_block) {
            i++;
            break;
        }
    } while (++i < end);
    c->icount += (uint64_t)(i - b->insn);
}

typedef void (*block_code)(struct cpu *c);

/* Run blocks back to back while nothing needs the run loop: the jump cache is probed
 * inline, so a hot loop costs one probe and one indirect call per instruction. */
void tcache_run(struct cpu *c)
{
    struct tcache *t = c->tc;
    uint64_t gen = t->flush_gen;
    c->jit_link = NULL;
    do {
        uint64_t lin = seg_lin(c, CPU_CS, c->rip);
        c->stop_block = 0;      /* a taken side exit (2) chains on like a block end */
        struct jc_entry *j = &c->jc[(lin ^ (lin >> 12)) & 4095];
        struct block *b;
        c->insn_rip = c->rip;
        if (j->lin == lin && j->key == c->jc_key && j->b->gpa == j->gpa) {
            c->tc_hits++;
            b = j->b;
        } else {
            b = tcache_get(c);
        }
        if (c->jit_link) {
            /* the last block's chain exit found no link: point it here for next time */
            if (b->chain && gen == t->flush_gen)
                jit_link(c->jit_link, lin, c->jc_key, b->chain);
            c->jit_link = NULL;
        }
        if (!b->code && t->jit && b->runs < t->jit_hot && ++b->runs == t->jit_hot) {
            /* hot now: compiled, and this run already runs the compiled code */
            b->code = jit_compile(t->jit, c, b->insn, b->n, b->csz, &b->chain);
            if (b->code)
                c->jit_blocks++;
            else if (jit_full(t->jit))
                b->runs = 0;        /* try again after the flush the next miss makes */
        }
        if (b->code) {
            gen = t->flush_gen;
            ((block_code)b->code)(c);
            if (gen != t->flush_gen)
                c->jit_link = NULL;     /* flushed under the block: its slot is gone */
        } else {
            run_one_block(c, b);
        }
    } while (!(c->stop_block & 1) && c->icount + c->exc_count < c->budget_end &&
             !atomic_load_explicit(&c->intr, memory_order_relaxed) &&
             !atomic_load_explicit(&c->kick, memory_order_relaxed));
}
