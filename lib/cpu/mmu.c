/* Linear -> physical translation (no paging, 2-level, PAE, 4-level), the software TLB,
 * and the slow paths of memory access (page crossings, MMIO, writes to code pages). */
#include "x86.h"

#define SUP 0x40        /* implicit supervisor access (descriptor tables, TSS) */

#define PTE_P 0x1ULL
#define PTE_W 0x2ULL
#define PTE_U 0x4ULL
#define PTE_A 0x20ULL
#define PTE_D 0x40ULL
#define PTE_PS 0x80ULL
#define PTE_NX (1ULL << 63)
#define PTE_ADDR 0x000ffffffffff000ULL

void tlb_flush(struct cpu *c)
{
    jc_bump(c);
    for (unsigned k = 0; k < TLB_SIZE; k++)
        c->tlb[k].vpage = 0;
}

void tlb_flush_page(struct cpu *c, uint64_t lin)
{
    /* large pages may be cached under any of their 4K slots: flush all that could map it */
    struct tlb_entry *e = &c->tlb[tlb_index(lin)];
    if ((e->vpage & ~1ULL) == (lin & ~0xfffULL))
        e->vpage = 0;
    tlb_flush(c);
}

void tlb_protect_code(struct cpu *c, uint64_t gpage)
{
    for (unsigned k = 0; k < TLB_SIZE; k++) {
        struct tlb_entry *e = &c->tlb[k];
        if (e->vpage && e->host && e->gpage == gpage) {
            e->perm &= (uint8_t)~(P_W | (P_W << 3));
            e->code = 1;
        }
    }
}

static inline uint8_t *ram_ptr(struct cpu *c, uint64_t gpa)
{
    return gpa < c->ram_size ? c->ram + gpa : NULL;
}

uint64_t phys_read(struct cpu *c, uint64_t gpa, unsigned sz)
{
    uint8_t *p = ram_ptr(c, gpa);
    if (p && gpa + sz <= c->ram_size)
        return ld(p, sz);
    {
        uint64_t v = ~0ULL;
        if (c->io.mmio && c->io.mmio(c->io.opaque, gpa, false, sz, &v))
            c->io_stop = 1;
        return v & sz_mask(sz);
    }
}

void phys_write(struct cpu *c, uint64_t gpa, unsigned sz, uint64_t v)
{
    uint8_t *p = ram_ptr(c, gpa);
    if (p && gpa + sz <= c->ram_size) {
        if (c->tc && tcache_page_has_code(c->tc, gpa >> 12))
            tcache_write(c, gpa, sz);
        st(p, sz, v);
        return;
    }
    if (c->io.mmio && c->io.mmio(c->io.opaque, gpa, true, sz, &v))
        c->io_stop = 1;
}

/* Read a paging-structure entry; entries outside RAM read as not present. */
static uint64_t pte_read(struct cpu *c, uint64_t gpa, unsigned sz, uint8_t **where)
{
    uint8_t *p = ram_ptr(c, gpa);
    *where = (p && gpa + sz <= c->ram_size) ? p : NULL;
    return *where ? ld(p, sz) : 0;
}

static void pte_set(uint8_t *p, unsigned sz, uint64_t bits)
{
    if (!p)
        return;
    if (sz == 8)
        __atomic_fetch_or((uint64_t *)(void *)p, bits, __ATOMIC_RELAXED);
    else
        __atomic_fetch_or((uint32_t *)(void *)p, (uint32_t)bits, __ATOMIC_RELAXED);
}

/* Walk the page tables. need: one of P_R/P_W/P_X, maybe | SUP. On success returns the
 * guest-physical address and fills @perm_s/@perm_u (TLB permissions). On a fault either
 * raises #PF (fault=true) or sets *ok=false. */
static uint64_t walk(struct cpu *c, uint64_t lin, unsigned need, bool fault, bool *ok,
                     uint8_t *perm_s, uint8_t *perm_u, uint64_t *page_size)
{
    bool user = c->cpl == 3 && !(need & SUP);
    bool write = need & P_W, exec = need & P_X;
    bool nxe = c->efer & EFER_NXE;
    uint64_t e = 0, gpa, ps = 0x1000;
    uint8_t *ptrs[4] = { 0 };
    unsigned nlev = 0, esz = 8;
    bool rw = true, us = true, nx = false;
    uint32_t errc = 0;

    *ok = true;
    if (!(c->cr0 & CR0_PG)) {
        *perm_s = P_R | P_W | P_X;
        *perm_u = P_R | P_W | P_X;
        *page_size = 0x1000;
        return lin & 0xffffffffULL;
    }
    if ((c->efer & EFER_LMA) || (c->cr4 & CR4_PAE)) {
        /* 4-level (long mode) or PAE: the same 8-byte entries below the top. */
        uint64_t table;
        int top;
        if (c->efer & EFER_LMA) {
            int64_t s = (int64_t)(lin << 16) >> 16;
            if ((uint64_t)s != lin) {
                if (!fault) { *ok = false; return 0; }
                cpu_fault(c, EX_GP, 0);
            }
            table = c->cr3 & PTE_ADDR;
            top = 3;
        } else {
            uint8_t *unused; /* PDPTEs have no A bit in PAE mode */
            uint64_t pdpte = pte_read(c, (c->cr3 & 0xffffffe0) + ((lin >> 30) & 3) * 8, 8,
                                      &unused);
            if (!(pdpte & PTE_P))
                goto pf;
            table = pdpte & PTE_ADDR;
            lin &= 0xffffffffULL;
            top = 1;
        }
        for (int lvl = top; lvl >= 0; lvl--) {
            unsigned idx = (lin >> (12 + 9 * lvl)) & 511;
            e = pte_read(c, table + idx * 8, 8, &ptrs[nlev]);
            nlev++;
            if (!(e & PTE_P))
                goto pf;
            rw &= (e & PTE_W) != 0;
            us &= (e & PTE_U) != 0;
            if (nxe && (e & PTE_NX))
                nx = true;
            if ((lvl == 1 || lvl == 2) && (e & PTE_PS)) {
                ps = 1ULL << (12 + 9 * lvl);
                break;
            }
            table = e & PTE_ADDR;
        }
        gpa = (e & PTE_ADDR & ~(ps - 1)) | (lin & (ps - 1));
    } else {
        uint64_t table = c->cr3 & 0xfffff000;
        esz = 4;
        lin &= 0xffffffffULL;
        e = pte_read(c, table + ((lin >> 22) & 1023) * 4, 4, &ptrs[nlev]);
        nlev++;
        if (!(e & PTE_P))
            goto pf;
        rw &= (e & PTE_W) != 0;
        us &= (e & PTE_U) != 0;
        if ((e & PTE_PS) && (c->cr4 & CR4_PSE)) {
            ps = 1ULL << 22;
            gpa = (e & 0xffc00000ULL) | ((e & 0x1fe000ULL) << 19) | (lin & (ps - 1));
        } else {
            e = pte_read(c, (e & 0xfffff000) + ((lin >> 12) & 1023) * 4, 4, &ptrs[nlev]);
            nlev++;
            if (!(e & PTE_P))
                goto pf;
            rw &= (e & PTE_W) != 0;
            us &= (e & PTE_U) != 0;
            gpa = (e & 0xfffff000) | (lin & 0xfff);
        }
    }
    /* permission checks */
    errc = 1;
    if (user && !us)
        goto pf;
    if (write && !rw && (user || (c->cr0 & CR0_WP)))
        goto pf;
    if (exec && nx)
        goto pf;
    /* accessed / dirty */
    for (unsigned k = 0; k < nlev; k++)
        if (ptrs[k] && !(ld(ptrs[k], esz) & PTE_A))
            pte_set(ptrs[k], esz, PTE_A);
    if (write && nlev && !(e & PTE_D)) {
        pte_set(ptrs[nlev - 1], esz, PTE_D);
        e |= PTE_D;
    }
    {
        bool dirty = (e & PTE_D) != 0;
        *perm_s = (uint8_t)(P_R | ((rw || !(c->cr0 & CR0_WP)) && dirty ? P_W : 0) |
                            (nx ? 0 : P_X));
        *perm_u = us ? (uint8_t)(P_R | (rw && dirty ? P_W : 0) | (nx ? 0 : P_X)) : 0;
    }
    *page_size = ps;
    return gpa;
pf:
    if (!fault) {
        *ok = false;
        return 0;
    }
    errc |= (write ? 2 : 0) | (user ? 4 : 0) | (exec && nxe ? 16 : 0);
    c->cr2 = lin;
    cpu_fault(c, EX_PF, errc);
}

uint64_t mmu_translate(struct cpu *c, uint64_t lin, unsigned need, bool fault, bool *ok)
{
    uint8_t ps, pu;
    uint64_t size;
    return walk(c, lin, need, fault, ok, &ps, &pu, &size);
}

/* Translate and fill the TLB. Returns the host pointer for RAM, or NULL with *mmio set. */
uint8_t *mmu_slow(struct cpu *c, uint64_t lin, unsigned need, bool *mmio, uint64_t *gpa_out)
{
    uint8_t ps, pu;
    uint64_t size;
    bool ok;
    uint64_t gpa = walk(c, lin, need, true, &ok, &ps, &pu, &size);
    uint8_t *host = ram_ptr(c, gpa & ~0xfffULL);
    struct tlb_entry *e = &c->tlb[tlb_index(lin)];

    *gpa_out = gpa;
    *mmio = host == NULL || (gpa | 0xfff) >= c->ram_size;
    if (*mmio)
        return NULL;
    e->vpage = (lin & ~0xfffULL) | 1;
    e->host = host;
    e->gpage = gpa >> 12;
    e->perm = (uint8_t)(ps | (pu << 3));
    e->code = 0;
    if (c->tc && tcache_page_has_code(c->tc, gpa >> 12)) {
        e->perm &= (uint8_t)~(P_W | (P_W << 3));
        e->code = 1;
    }
    return host + (gpa & 0xfff);
}

static uint64_t access_one(struct cpu *c, uint64_t lin, unsigned sz, unsigned need, bool wr,
                           uint64_t v)
{
    bool mmio;
    uint64_t gpa;
    uint8_t *p = mmu_slow(c, lin, need, &mmio, &gpa);
    if (mmio) {
        if (wr) {
            if (c->io.mmio && c->io.mmio(c->io.opaque, gpa, true, sz, &v))
                c->io_stop = 1;
            c->stop_block = true;
            return 0;
        }
        v = 0;
        if (!c->io.mmio)
            v = ~0ULL;
        else if (c->io.mmio(c->io.opaque, gpa, false, sz, &v))
            c->io_stop = 1;
        c->stop_block = true;
        return v & sz_mask(sz);
    }
    if (wr) {
        if (c->tc && tcache_page_has_code(c->tc, gpa >> 12))
            tcache_write(c, gpa, sz);
        st(p, sz, v);
        return 0;
    }
    return ld(p, sz);
}

static uint64_t mem_access(struct cpu *c, uint64_t lin, unsigned sz, unsigned need, bool wr,
                           uint64_t v)
{
    if ((lin & 0xfff) + sz <= 0x1000)
        return access_one(c, lin, sz, need, wr, v);
    /* crosses a page: check both pages first so a fault leaves memory untouched */
    {
        unsigned first = 0x1000 - (unsigned)(lin & 0xfff);
        uint64_t r = 0;
        bool mmio;
        uint64_t gpa;
        (void)mmu_slow(c, lin, need, &mmio, &gpa);
        (void)mmu_slow(c, lin + first, need, &mmio, &gpa);
        for (unsigned k = 0; k < sz; k++) {
            if (wr)
                access_one(c, lin + k, 1, need, true, (v >> (8 * k)) & 0xff);
            else
                r |= access_one(c, lin + k, 1, need, false, 0) << (8 * k);
        }
        return r;
    }
}

uint64_t mem_read_slow(struct cpu *c, uint64_t lin, unsigned sz)
{
    return mem_access(c, lin, sz, P_R, false, 0);
}

void mem_write_slow(struct cpu *c, uint64_t lin, unsigned sz, uint64_t v)
{
    mem_access(c, lin, sz, P_W, true, v);
}

uint64_t mem_read_sys(struct cpu *c, uint64_t lin, unsigned sz)
{
    return mem_access(c, lin, sz, P_R | SUP, false, 0);
}

void mem_write_sys(struct cpu *c, uint64_t lin, unsigned sz, uint64_t v)
{
    mem_access(c, lin, sz, P_W | SUP, true, v);
}

void mem_read_buf(struct cpu *c, uint64_t lin, void *buf, unsigned len)
{
    uint8_t *b = buf;
    for (unsigned k = 0; k < len; k++)
        b[k] = (uint8_t)mem_read(c, lin + k, 1);
}

void mem_write_buf(struct cpu *c, uint64_t lin, const void *buf, unsigned len)
{
    const uint8_t *b = buf;
    for (unsigned k = 0; k < len; k++)
        mem_write(c, lin + k, 1, b[k]);
}
