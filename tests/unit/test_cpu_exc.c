/* The emulator's exceptions, paging and translation cache, driven through lib/cpu's API:
 * faults delivered through a 64-bit IDT with the right vector, error code, CR2 and return
 * address, IRET back; A/D bits; #DF and triple fault; real-mode IVT delivery; self-modifying
 * code; CPUID. Guest code is assembled by hand (nasm listings in the comments). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cpu/cpu.h"
#include "cpuguest.h"

#define RAM (4u << 20)
#define IDT 0x4000
#define REC 0x5000          /* vec, err, cr2, rip, count (written by the handler) */
#define STUBS 0x6000
#define HANDLER 0x7000
#define CODE 0x100000

static uint8_t *ram;
static struct cpu *cpu;

/* The common handler: record vector, error code, CR2 and the faulting RIP, then IRETQ to
 * the address in R15 (every test case loads R15 with its continuation).
 *   push rax / mov rax,[rsp+8] / mov [0x5000],rax / mov rax,[rsp+16] / mov [0x5008],rax
 *   mov rax,cr2 / mov [0x5010],rax / mov rax,[rsp+24] / mov [0x5018],rax
 *   inc qword [0x5020] / mov [rsp+24],r15 / pop rax / add rsp,16 / iretq */
static const uint8_t handler[] = {
    0x50, 0x48, 0x8b, 0x44, 0x24, 0x08, 0x48, 0x89, 0x04, 0x25, 0x00, 0x50,
    0x00, 0x00, 0x48, 0x8b, 0x44, 0x24, 0x10, 0x48, 0x89, 0x04, 0x25, 0x08,
    0x50, 0x00, 0x00, 0x0f, 0x20, 0xd0, 0x48, 0x89, 0x04, 0x25, 0x10, 0x50,
    0x00, 0x00, 0x48, 0x8b, 0x44, 0x24, 0x18, 0x48, 0x89, 0x04, 0x25, 0x18,
    0x50, 0x00, 0x00, 0x48, 0xff, 0x04, 0x25, 0x20, 0x50, 0x00, 0x00, 0x4c,
    0x89, 0x7c, 0x24, 0x18, 0x58, 0x48, 0x83, 0xc4, 0x10, 0x48, 0xcf,
};

static uint64_t *pt(unsigned page_table_index)
{
    return (uint64_t *)(ram + 0x10000 + page_table_index * 0x1000);
}

static void setup_machine(void)
{
    memset(ram, 0, RAM);
    /* 4-level tables: the first 4 MiB identity-mapped with 4 KiB pages (0x10000..) */
    uint64_t *pml4 = (uint64_t *)(ram + 0x1000), *pdpt = (uint64_t *)(ram + 0x2000);
    uint64_t *pd = (uint64_t *)(ram + 0x3000);
    pml4[0] = 0x2000 | 7;
    pdpt[0] = 0x3000 | 7;
    for (unsigned t = 0; t < 2; t++) {
        pd[t] = (0x10000 + t * 0x1000) | 7;
        for (unsigned k = 0; k < 512; k++)
            pt(t)[k] = ((uint64_t)t << 21 | (uint64_t)k << 12) | 3;
    }
    /* stubs: [push 0] push vec; jmp handler */
    for (unsigned v = 0; v < 256; v++) {
        uint8_t *s = ram + STUBS + v * 16;
        unsigned n = 0;
        bool has_err = v == 8 || (v >= 10 && v <= 14) || v == 17;
        if (!has_err) {
            s[n++] = 0x6a;
            s[n++] = 0;
        }
        s[n++] = 0x68;
        memcpy(s + n, &v, 4);
        n += 4;
        s[n++] = 0xe9;
        int32_t rel = (int32_t)(HANDLER - (STUBS + v * 16 + n + 4));
        memcpy(s + n, &rel, 4);
        uint64_t off = STUBS + v * 16;
        uint64_t lo = (off & 0xffff) | (0x8ULL << 16) | (0x8eULL << 40) |
                      ((off >> 16) & 0xffff) << 48;
        if (v == 0x80)
            lo |= 3ULL << 45;   /* DPL 3 */
        memcpy(ram + IDT + v * 16, &lo, 8);
    }
    memcpy(ram + HANDLER, handler, sizeof handler);
    /* GDT at 0x800: null, 64-bit code (0x8), data (0x10) */
    memcpy(ram + 0x800, cg_gdt, sizeof cg_gdt);
}

static void long_mode(struct cpu_state *st, uint64_t rip)
{
    cg_long_mode_segs(st);
    st->seg[CPU_TR] = (struct cpu_seg){ 0x18, 0x8000, 0x67, 0x8b };
    st->gdt_base = 0x800;
    st->gdt_limit = 23;
    st->idt_base = IDT;
    st->idt_limit = 256 * 16 - 1;
    st->cr0 = 0x80010011;   /* PE, ET, WP, PG */
    st->cr3 = 0x1000;
    st->cr4 = 0x20;
    st->efer = 0xd00;       /* LME, LMA, NXE */
    st->rip = rip;
    st->rflags = 2;
    st->gpr[4] = 0x90000;
}

struct rec {
    uint64_t vec, err, cr2, rip, count;
};

static struct rec run_code(const uint8_t *code, size_t n, enum cpu_exit want)
{
    struct cpu_state st;
    struct rec r;
    memcpy(ram + CODE, code, n);
    cpu_invalidate_ram(cpu, CODE, n);
    memset(ram + REC, 0, sizeof r);
    long_mode(&st, CODE);
    cpu_set_state(cpu, &st);
    enum cpu_exit e = cpu_run(cpu, 1000000);
    if (e != want)
        fail_msg("exit %d, expected %d (%s)", e, want, cpu_error(cpu));
    memcpy(&r, ram + REC, sizeof r);
    return r;
}

static int setup(void **state)
{
    (void)state;
    ram = aligned_alloc(4096, RAM);
    if (!ram)
        return -1;
    setup_machine();
    cpu = cpu_new(ram, RAM, NULL);
    return cpu ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cpu_free(cpu);
    free(ram);
    return 0;
}

static void expect(struct rec r, uint64_t vec, uint64_t err, uint64_t rip)
{
    assert_int_equal(r.count, 1);
    assert_int_equal(r.vec, vec);
    assert_int_equal(r.err, err);
    assert_int_equal(r.rip, rip);
}

/* lea r15,[rel next] / ud2 / next: hlt */
static void test_ud(void **state)
{
    static const uint8_t c[] = { 0x4c, 0x8d, 0x3d, 0x02, 0, 0, 0, 0x0f, 0x0b, 0xf4 };
    (void)state;
    setup_machine();
    expect(run_code(c, sizeof c, CPU_EXIT_HLT), 6, 0, CODE + 7);
}

/* SSE3 and later: the forms CPUID does not cover are #UD (the MMX forms of SSSE3, wrong
 * prefixes, register forms of memory-only instructions, opcodes not implemented), the
 * implemented ones run. mov rax,cr4 / or eax,0x200 (OSFXSR) / mov cr4,rax /
 * lea r15,[rel next] / the instruction / next: hlt */
static void test_sse_ud(void **state)
{
    static const struct { uint8_t len, ud, b[7]; } cases[] = {
        { 4, 1, { 0x0f, 0x38, 0x00, 0xc1 } },               /* pshufb mm (MMX) */
        { 4, 1, { 0x0f, 0x38, 0x1c, 0xc1 } },               /* pabsb mm */
        { 5, 1, { 0x0f, 0x3a, 0x0f, 0xc1, 0x03 } },         /* palignr mm */
        { 6, 1, { 0x66, 0xf3, 0x0f, 0x38, 0x00, 0xc1 } },   /* F3 on pshufb */
        { 5, 1, { 0xf2, 0x0f, 0x38, 0x01, 0xc1 } },
        { 3, 1, { 0x0f, 0xd0, 0xc1 } },                     /* addsub without a prefix */
        { 3, 1, { 0x0f, 0x7c, 0xc1 } },
        { 4, 1, { 0x66, 0x0f, 0xf0, 0xc1 } },
        { 4, 1, { 0xf2, 0x0f, 0xf0, 0xc1 } },               /* lddqu xmm, xmm */
        { 5, 1, { 0x66, 0x0f, 0x38, 0x37, 0xc1 } },         /* pcmpgtq (SSE4.2) */
        { 6, 1, { 0x66, 0x0f, 0x3a, 0x60, 0xc1, 0 } },      /* pcmpestrm (SSE4.2) */
        { 5, 1, { 0xf2, 0x0f, 0x38, 0xf0, 0xc1 } },         /* crc32 (SSE4.2) */
        { 5, 1, { 0x66, 0x0f, 0x38, 0x0c, 0xc1 } },         /* a hole in the map */
        { 6, 1, { 0xf0, 0x66, 0x0f, 0x38, 0x00, 0x00 } },   /* lock pshufb xmm0, [rax] */
        { 5, 1, { 0xf0, 0xf2, 0x0f, 0xd0, 0x00 } },         /* lock addsubps */
        { 4, 1, { 0xf0, 0x0f, 0x58, 0x00 } },               /* lock addps (SSE) */
        { 4, 1, { 0x0f, 0x38, 0x10, 0xc1 } },               /* pblendvb without 66 */
        { 5, 1, { 0x66, 0x0f, 0x38, 0x2a, 0xc1 } },         /* movntdqa xmm, xmm */
        { 6, 1, { 0x66, 0x0f, 0x3a, 0x44, 0xc1, 0 } },      /* pclmulqdq */
        { 5, 0, { 0x66, 0x0f, 0x38, 0x10, 0xc1 } },         /* pblendvb */
        { 6, 0, { 0x66, 0x0f, 0x3a, 0x0b, 0xc1, 0x0c } },   /* roundsd */
        { 7, 0, { 0x66, 0x48, 0x0f, 0x3a, 0x16, 0xc1, 1 } },/* pextrq rcx, xmm0, 1 */
        { 4, 0, { 0xf2, 0x0f, 0xd0, 0xc1 } },               /* addsubps */
        { 4, 0, { 0xf2, 0x0f, 0x12, 0xc1 } },               /* movddup */
        { 4, 0, { 0xf3, 0x0f, 0x16, 0xc1 } },               /* movshdup */
        { 5, 0, { 0x66, 0x0f, 0x38, 0x00, 0xc1 } },         /* pshufb */
        { 6, 0, { 0x66, 0x41, 0x0f, 0x38, 0x1e, 0xc7 } },   /* pabsd xmm0, xmm15 */
        { 6, 0, { 0x66, 0x0f, 0x3a, 0x0f, 0xc1, 0x05 } },   /* palignr */
    };
    (void)state;
    for (unsigned k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t c[40] = { 0x0f, 0x20, 0xe0, 0x0d, 0x00, 0x02, 0, 0, 0x0f, 0x22, 0xe0,
                          0x4c, 0x8d, 0x3d };
        unsigned n = 14;
        c[n++] = cases[k].len;
        c[n++] = 0; c[n++] = 0; c[n++] = 0;
        memcpy(c + n, cases[k].b, cases[k].len);
        n += cases[k].len;
        c[n++] = 0xf4;
        setup_machine();
        struct rec r = run_code(c, n, CPU_EXIT_HLT);
        if (cases[k].ud)
            expect(r, 6, 0, CODE + 18);
        else
            assert_int_equal(r.count, 0);
    }
}

/* 16-byte memory operands of the legacy SSE forms must be aligned (#GP(0)) except where the
 * instruction says otherwise: the smaller operands, LDDQU. Probed on the host with a
 * SIGSEGV handler. mov rax,cr4 / or eax,0x200 / mov cr4,rax / mov rax,rsp /
 * lea r15,[rel next] / the instruction on [rax - 0x41] / next: hlt */
static void test_sse_align(void **state)
{
    static const struct { uint8_t len, gp, b[7]; } cases[] = {
        { 6, 1, { 0x66, 0x0f, 0x38, 0x00, 0x40, 0xbf } },           /* pshufb */
        { 6, 1, { 0x66, 0x0f, 0x38, 0x17, 0x40, 0xbf } },           /* ptest */
        { 6, 1, { 0x66, 0x0f, 0x38, 0x2a, 0x40, 0xbf } },           /* movntdqa */
        { 6, 0, { 0x66, 0x0f, 0x38, 0x20, 0x40, 0xbf } },           /* pmovsxbw m64 */
        { 7, 0, { 0x66, 0x0f, 0x3a, 0x0b, 0x40, 0xbf, 0x04 } },     /* roundsd m64 */
        { 7, 1, { 0x66, 0x0f, 0x3a, 0x09, 0x40, 0xbf, 0x04 } },     /* roundpd */
        { 7, 1, { 0x66, 0x0f, 0x3a, 0x0f, 0x40, 0xbf, 0x03 } },     /* palignr */
        { 7, 0, { 0x66, 0x0f, 0x3a, 0x21, 0x40, 0xbf, 0x10 } },     /* insertps m32 */
        { 7, 0, { 0x66, 0x0f, 0x3a, 0x16, 0x40, 0xbf, 0x01 } },     /* pextrd m32 */
        { 7, 1, { 0x66, 0x0f, 0x3a, 0x40, 0x40, 0xbf, 0xff } },     /* dpps */
        { 5, 0, { 0xf2, 0x0f, 0xf0, 0x40, 0xbf } },                 /* lddqu */
        { 5, 1, { 0xf2, 0x0f, 0x7c, 0x40, 0xbf } },                 /* haddps */
        { 5, 0, { 0xf2, 0x0f, 0x12, 0x40, 0xbf } },                 /* movddup m64 */
        { 5, 1, { 0xf3, 0x0f, 0x16, 0x40, 0xbf } },                 /* movshdup */
        { 5, 1, { 0x66, 0x0f, 0xd0, 0x40, 0xbf } },                 /* addsubpd */
    };
    (void)state;
    for (unsigned k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t c[40] = { 0x0f, 0x20, 0xe0, 0x0d, 0x00, 0x02, 0, 0, 0x0f, 0x22, 0xe0,
                          0x48, 0x89, 0xe0, 0x4c, 0x8d, 0x3d };
        unsigned n = 17;
        c[n++] = cases[k].len;
        c[n++] = 0; c[n++] = 0; c[n++] = 0;
        memcpy(c + n, cases[k].b, cases[k].len);
        n += cases[k].len;
        c[n++] = 0xf4;
        setup_machine();
        struct rec r = run_code(c, n, CPU_EXIT_HLT);
        if (cases[k].gp)
            expect(r, 13, 0, CODE + 21);
        else
            assert_int_equal(r.count, 0);
    }
}

/* lea r15,[rel next] / xor ecx,ecx / div ecx / next: hlt */
static void test_de(void **state)
{
    static const uint8_t c[] = { 0x4c, 0x8d, 0x3d, 0x04, 0, 0, 0, 0x31, 0xc9, 0xf7, 0xf1, 0xf4 };
    (void)state;
    setup_machine();
    expect(run_code(c, sizeof c, CPU_EXIT_HLT), 0, 0, CODE + 9);
}

/* lea r15,[rel next] / mov rax,[0x300000] / next: hlt -- with page 0x300000 not present */
static void test_pf_not_present(void **state)
{
    static const uint8_t c[] = { 0x4c, 0x8d, 0x3d, 0x08, 0, 0, 0, 0x48, 0x8b, 0x04, 0x25, 0x00,
                                 0x00, 0x30, 0x00, 0xf4 };
    (void)state;
    setup_machine();
    pt(1)[0x100] = 0;
    struct rec r = run_code(c, sizeof c, CPU_EXIT_HLT);
    expect(r, 14, 0, CODE + 7);
    assert_int_equal(r.cr2, 0x300000);
}

/* lea r15,[rel next] / mov dword [0x301000],5 / next: hlt -- read-only page, CR0.WP */
static void test_pf_write_protect(void **state)
{
    static const uint8_t c[] = { 0x4c, 0x8d, 0x3d, 0x0b, 0, 0, 0, 0xc7, 0x04, 0x25, 0x00, 0x10,
                                 0x30, 0x00, 0x05, 0x00, 0x00, 0x00, 0xf4 };
    (void)state;
    setup_machine();
    pt(1)[0x101] &= ~2ULL;
    struct rec r = run_code(c, sizeof c, CPU_EXIT_HLT);
    expect(r, 14, 3, CODE + 7);         /* present | write */
    assert_int_equal(r.cr2, 0x301000);
    assert_int_equal(ram[0x301000], 0);
    /* the same write succeeds once the page is writable, and sets A and D */
    setup_machine();
    r = run_code(c, sizeof c, CPU_EXIT_HLT);
    assert_int_equal(r.count, 0);
    assert_int_equal(ram[0x301000], 5);
    assert_true(pt(1)[0x101] & 0x20);
    assert_true(pt(1)[0x101] & 0x40);
    assert_false(pt(1)[0x102] & 0x60);
}

/* lea r15,[rel next] / mov rax,0x302000 / call rax / next: hlt -- NX page */
static void test_pf_nx(void **state)
{
    static const uint8_t c[] = { 0x4c, 0x8d, 0x3d, 0x07, 0, 0, 0, 0xb8, 0x00, 0x20, 0x30, 0x00,
                                 0xff, 0xd0, 0xf4 };
    (void)state;
    setup_machine();
    pt(1)[0x102] |= 1ULL << 63;
    struct rec r = run_code(c, sizeof c, CPU_EXIT_HLT);
    expect(r, 14, 0x11, 0x302000);      /* present | instruction fetch */
    assert_int_equal(r.cr2, 0x302000);
}

/* lea r15,[rel next] / mov rax,0x8000000000000000 / mov rbx,[rax] / next: hlt */
/* 32-bit PAE paging: CR3 -> PDPT -> PD -> PT, a 2 MiB page, A/D bits and a not-present
 * fault (no IDT here, so it ends in a triple fault with CR2 set).
 *   mov dword [0x301000],5 / mov dword [0x400010],7 / mov eax,[0x301000] / hlt */
static void test_pae_paging(void **state)
{
    static const uint8_t c[] = { 0xc7, 0x05, 0x00, 0x10, 0x30, 0x00, 0x05, 0, 0, 0,
                                 0xc7, 0x05, 0x10, 0x00, 0x40, 0x00, 0x07, 0, 0, 0,
                                 0xa1, 0x00, 0x10, 0x30, 0x00, 0xf4 };
    static const uint8_t fault[] = { 0xa1, 0x00, 0x20, 0x30, 0x00, 0xf4 };
    (void)state;
    setup_machine();
    uint64_t *pdpt = (uint64_t *)(ram + 0x2000), *pd = (uint64_t *)(ram + 0x3000);
    pdpt[0] = 0x3000 | 1;               /* PAE PDPTEs carry only P */
    pd[2] = 0x200000 | 0x83;            /* linear 4 MiB: a 2 MiB page at physical 2 MiB */
    pt(1)[0x101] = 0x305000 | 3;        /* linear 0x301000 -> physical 0x305000 */
    pt(1)[0x102] = 0;

    struct cpu_state st;
    for (int pass = 0; pass < 2; pass++) {
        const uint8_t *code = pass ? fault : c;
        size_t n = pass ? sizeof fault : sizeof c;
        memcpy(ram + CODE, code, n);
        cpu_invalidate_ram(cpu, CODE, n);
        long_mode(&st, CODE);
        st.seg[CPU_CS] = (struct cpu_seg){ 0x8, 0, 0xffffffff, 0xc09b };
        st.cr3 = 0x2000;
        st.efer = 0;
        st.idt_limit = 0;
        cpu_set_state(cpu, &st);
        enum cpu_exit e = cpu_run(cpu, 1000);
        cpu_get_state(cpu, &st);
        if (pass == 0) {
            assert_int_equal(e, CPU_EXIT_HLT);
            assert_int_equal(st.gpr[0], 5);
            assert_int_equal(ram[0x305000], 5);     /* through the PT */
            assert_int_equal(ram[0x200010], 7);     /* through the 2 MiB page */
            assert_int_equal(ram[0x301000], 0);
            assert_true(pt(1)[0x101] & 0x20);        /* accessed */
            assert_true(pt(1)[0x101] & 0x40);        /* dirty */
            assert_true(pd[2] & 0x40);
            assert_true(pd[1] & 0x20);
        } else {
            assert_int_equal(e, CPU_EXIT_SHUTDOWN);
            assert_int_equal(st.cr2, 0x302000);
        }
    }
    setup_machine();
}

static void test_gp_noncanonical(void **state)
{
    static const uint8_t c[] = { 0x4c, 0x8d, 0x3d, 0x0d, 0, 0, 0, 0x48, 0xb8, 0, 0, 0, 0, 0, 0,
                                 0, 0x80, 0x48, 0x8b, 0x18, 0xf4 };
    (void)state;
    setup_machine();
    expect(run_code(c, sizeof c, CPU_EXIT_HLT), 13, 0, CODE + 17);
}

/* lea r15,[rel next] / int 0x80 / next: hlt; and int3 */
static void test_soft_int(void **state)
{
    static const uint8_t c[] = { 0x4c, 0x8d, 0x3d, 0x02, 0, 0, 0, 0xcd, 0x80, 0xf4 };
    static const uint8_t c3[] = { 0x4c, 0x8d, 0x3d, 0x01, 0, 0, 0, 0xcc, 0xf4 };
    (void)state;
    setup_machine();
    expect(run_code(c, sizeof c, CPU_EXIT_HLT), 0x80, 0, CODE + 9);   /* return address */
    expect(run_code(c3, sizeof c3, CPU_EXIT_HLT), 3, 0, CODE + 8);
}

/* #PF whose IDT gate is not present: #NP while delivering becomes #DF (error code 0) */
static void test_double_fault(void **state)
{
    static const uint8_t c[] = { 0x4c, 0x8d, 0x3d, 0x08, 0, 0, 0, 0x48, 0x8b, 0x04, 0x25, 0x00,
                                 0x00, 0x30, 0x00, 0xf4 };
    (void)state;
    setup_machine();
    pt(1)[0x100] = 0;
    ram[IDT + 14 * 16 + 5] &= 0x7f;
    struct rec r = run_code(c, sizeof c, CPU_EXIT_HLT);
    expect(r, 8, 0, CODE + 7);
}

/* With no usable IDT, #UD -> #GP -> #DF -> shutdown */
static void test_triple_fault(void **state)
{
    static const uint8_t c[] = { 0x0f, 0x0b };
    struct cpu_state st;
    (void)state;
    setup_machine();
    memcpy(ram + CODE, c, sizeof c);
    cpu_invalidate_ram(cpu, CODE, sizeof c);
    long_mode(&st, CODE);
    st.idt_limit = 0;
    cpu_set_state(cpu, &st);
    assert_int_equal(cpu_run(cpu, 1000000), CPU_EXIT_SHUTDOWN);
    assert_non_null(strstr(cpu_error(cpu), "triple fault"));
}

/* The first pass patches the immediate of an instruction it already executed:
 *     xor ecx,ecx / again: mov eax,1 / inc ecx / cmp ecx,2 / je done
 *     mov dword [rel again+1],2 / jmp again / done: hlt          => eax == 2 */
static void test_self_modifying(void **state)
{
    static const uint8_t c[] = { 0x31, 0xc9, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xff, 0xc1, 0x83,
                                 0xf9, 0x02, 0x74, 0x0c, 0xc7, 0x05, 0xeb, 0xff, 0xff, 0xff,
                                 0x02, 0x00, 0x00, 0x00, 0xeb, 0xe8, 0xf4 };
    struct cpu_state st;
    (void)state;
    setup_machine();
    run_code(c, sizeof c, CPU_EXIT_HLT);
    cpu_get_state(cpu, &st);
    assert_int_equal(st.gpr[0], 2);
    assert_int_equal(st.gpr[1], 2);
}

/* Mode changes that flush the translation cache (EFER write, CR0.WP toggled) in the middle
 * of a block: the block they run in must finish intact and the instruction count stay exact
 * (a flush under the running block used to corrupt it, and with it the slice budget).
 *   mov ecx,0xc0000080 / rdmsr / wrmsr / mov rax,cr0 / btr eax,16 / mov cr0,rax
 *   bts eax,16 / mov cr0,rax / nop / nop / nop / hlt */
static void test_flush_mid_block(void **state)
{
    static const uint8_t c[] = { 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0f, 0x30,
                                 0x0f, 0x20, 0xc0, 0x0f, 0xba, 0xf0, 0x10, 0x0f, 0x22,
                                 0xc0, 0x0f, 0xba, 0xe8, 0x10, 0x0f, 0x22, 0xc0, 0x90,
                                 0x90, 0x90, 0xf4 };
    struct cpu_stats s0, s1;
    struct cpu_state st;
    (void)state;
    setup_machine();
    for (unsigned round = 0; round < 20; round++) {     /* hot enough to be compiled */
        cpu_get_stats(cpu, &s0);
        run_code(c, sizeof c, CPU_EXIT_HLT);
        cpu_get_stats(cpu, &s1);
        assert_int_equal(s1.instructions - s0.instructions, 12);
        cpu_get_state(cpu, &st);
        assert_int_equal(st.cr0 & 0x10000, 0x10000);
        assert_int_equal(st.efer, 0xd00);
        assert_int_equal(st.rip, CODE + sizeof c);
    }
}

/* Real mode: #DE and INT n through the IVT, IRET back (org 0x7c00):
 *   xor ax,ax / mov ds,ax / mov ss,ax / mov sp,0x7000 / IVT[0] = de / IVT[0x21] = int
 *   xor bx,bx / mov ax,100 / div bl / int 0x21 / hlt
 *   de: mov si,sp / add word [ss:si],2 / inc byte [0x600] / iret
 *   int: add byte [0x601],0x21 / iret */
static void test_real_mode_ivt(void **state)
{
    static const uint8_t c[] = {
        0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xd0, 0xbc, 0x00, 0x70, 0xc7, 0x06, 0x00,
        0x00, 0x2b, 0x7c, 0xc7, 0x06, 0x02, 0x00, 0x00, 0x00, 0xc7, 0x06, 0x84,
        0x00, 0x36, 0x7c, 0xc7, 0x06, 0x86, 0x00, 0x00, 0x00, 0x31, 0xdb, 0xb8,
        0x64, 0x00, 0xf6, 0xf3, 0xcd, 0x21, 0xf4, 0x89, 0xe6, 0x36, 0x83, 0x04,
        0x02, 0xfe, 0x06, 0x00, 0x06, 0xcf, 0x80, 0x06, 0x01, 0x06, 0x21, 0xcf,
    };
    struct cpu_state st;
    (void)state;
    memset(ram, 0, 0x10000);
    memcpy(ram + 0x7c00, c, sizeof c);
    cpu_invalidate_ram(cpu, 0, 0x10000);
    memset(&st, 0, sizeof st);
    for (int s = 0; s < 6; s++)
        st.seg[s] = (struct cpu_seg){ 0, 0, 0xffff, s == CPU_CS ? 0x9b : 0x93 };
    st.seg[CPU_TR] = (struct cpu_seg){ 0, 0, 0xffff, 0x8b };
    st.seg[CPU_LDTR] = (struct cpu_seg){ 0, 0, 0xffff, 0x82 };
    st.idt_limit = 0x3ff;
    st.cr0 = 0x10;
    st.rip = 0x7c00;
    st.rflags = 2;
    cpu_set_state(cpu, &st);
    assert_int_equal(cpu_run(cpu, 1000000), CPU_EXIT_HLT);
    cpu_get_state(cpu, &st);
    assert_int_equal(ram[0x600], 1);
    assert_int_equal(ram[0x601], 0x21);
    assert_int_equal(st.rip, 0x7c00 + 43);
    assert_int_equal(st.gpr[4] & 0xffff, 0x7000);
}

/* CPUID says what is implemented: long mode, NX, SYSCALL, CX8/CX16, CMOV, FPU; no AVX */
static void test_cpuid(void **state)
{
    /* mov eax,1 / cpuid / mov r8d,ecx / mov r9d,edx / mov eax,0x80000001 / cpuid / hlt */
    static const uint8_t c[] = { 0xb8, 1, 0, 0, 0, 0x0f, 0xa2, 0x41, 0x89, 0xc8, 0x41, 0x89,
                                 0xd1, 0xb8, 1, 0, 0, 0x80, 0x0f, 0xa2, 0xf4 };
    struct cpu_state st;
    (void)state;
    setup_machine();
    run_code(c, sizeof c, CPU_EXIT_HLT);
    cpu_get_state(cpu, &st);
    uint32_t ecx1 = (uint32_t)st.gpr[8], edx1 = (uint32_t)st.gpr[9];
    uint32_t edx8 = (uint32_t)st.gpr[2];
    assert_true(edx8 & (1u << 29));     /* LM */
    assert_true(edx8 & (1u << 20));     /* NX */
    assert_true(edx8 & (1u << 11));     /* SYSCALL */
    assert_true(edx1 & (1u << 8));      /* CX8 */
    assert_true(edx1 & (1u << 15));     /* CMOV */
    assert_true(ecx1 & (1u << 13));     /* CX16 */
    assert_true(edx1 & 1u);             /* x87 FPU (x87.c) */
    assert_false(ecx1 & (1u << 28));    /* no AVX */
    assert_true(ecx1 & (1u << 0));      /* SSE3 */
    assert_false(ecx1 & (1u << 3));     /* no MONITOR/MWAIT */
    /* exactly the implemented set: SSE3, SSSE3, CX16, SSE4.1, POPCNT (no SSE4.2, AVX,
     * XSAVE...) */
    assert_int_equal(ecx1, (1u << 0) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 23));

    /* mov eax,0 / cpuid / mov r8d,eax / mov eax,7 / xor ecx,ecx / cpuid / mov r9d,edx /
     * mov r10d,ebx / mov ecx,0x10a / rdmsr / hlt: leaf 7 says IA32_ARCH_CAPABILITIES, whose
     * "not affected" bits are set (nothing here speculates) */
    static const uint8_t c7[] = { 0xb8, 0, 0, 0, 0, 0x0f, 0xa2, 0x41, 0x89, 0xc0,
                                  0xb8, 7, 0, 0, 0, 0x31, 0xc9, 0x0f, 0xa2, 0x41, 0x89, 0xd1,
                                  0x41, 0x89, 0xda, 0xb9, 0x0a, 0x01, 0, 0, 0x0f, 0x32, 0xf4 };
    setup_machine();
    run_code(c7, sizeof c7, CPU_EXIT_HLT);
    cpu_get_state(cpu, &st);
    assert_true((uint32_t)st.gpr[8] >= 7);          /* max basic leaf */
    assert_true((uint32_t)st.gpr[9] & (1u << 29));  /* ARCH_CAPABILITIES */
    assert_int_equal((uint32_t)st.gpr[10], 0);      /* no leaf-7 EBX features (no AVX2...) */
    assert_true(st.gpr[0] & 1);                     /* RDCL_NO: not affected by Meltdown */
    assert_true(st.gpr[0] & (1u << 5));             /* MDS_NO */
}

/* One WRMSR (write) or RDMSR of ECX=msr at CPL 0: *value in/out; returns the vector it
 * raised or -1.  lea r15,[rel next] / mov ecx,msr / mov eax,lo / mov edx,hi / wrmsr|rdmsr /
 * next: hlt */
static int msr_op(bool write, uint32_t msr, uint64_t *value)
{
    uint8_t c[25] = { 0x4c, 0x8d, 0x3d, 17, 0, 0, 0, 0xb9, 0, 0, 0, 0, 0xb8, 0, 0, 0, 0,
                      0xba, 0, 0, 0, 0, 0x0f, write ? 0x30 : 0x32, 0xf4 };
    uint32_t lo = (uint32_t)*value, hi = (uint32_t)(*value >> 32);
    struct cpu_state st;
    memcpy(c + 8, &msr, 4);
    memcpy(c + 13, &lo, 4);
    memcpy(c + 18, &hi, 4);
    setup_machine();
    struct rec r = run_code(c, sizeof c, CPU_EXIT_HLT);
    cpu_get_state(cpu, &st);
    if (!write)
        *value = (st.gpr[0] & 0xffffffff) | (st.gpr[2] << 32);
    return r.count ? (int)r.vec : -1;
}

/* The identity: GenuineIntel family 6 model 23 stepping 10 (Core 2 Penryn, the model with
 * exactly the SSE set implemented), and the registers such
 * a CPU has; #GP where that CPU gives it (AMD's MSRs, reserved bits, a locked
 * IA32_FEATURE_CONTROL). RDTSCP returns IA32_TSC_AUX. */
static void test_identity_msrs(void **state)
{
    /* xor eax,eax / cpuid / mov r8d,ebx / mov r9d,edx / mov r10d,ecx / mov eax,1 / cpuid /
     * mov r11d,eax / mov eax,0x80000007 / cpuid / mov r12d,edx / hlt */
    static const uint8_t c[] = { 0x31, 0xc0, 0x0f, 0xa2, 0x41, 0x89, 0xd8, 0x41, 0x89, 0xd1,
                                 0x41, 0x89, 0xca, 0xb8, 1, 0, 0, 0, 0x0f, 0xa2, 0x41, 0x89,
                                 0xc3, 0xb8, 7, 0, 0, 0x80, 0x0f, 0xa2, 0x41, 0x89, 0xd4,
                                 0xf4 };
    struct cpu_state st;
    char vendor[13] = { 0 };
    uint64_t v;
    (void)state;
    cpu_free(cpu);
    cpu = cpu_new(ram, RAM, NULL);
    assert_non_null(cpu);
    setup_machine();
    run_code(c, sizeof c, CPU_EXIT_HLT);
    cpu_get_state(cpu, &st);
    memcpy(vendor, &st.gpr[8], 4);
    memcpy(vendor + 4, &st.gpr[9], 4);
    memcpy(vendor + 8, &st.gpr[10], 4);
    assert_string_equal(vendor, "GenuineIntel");
    assert_int_equal((uint32_t)st.gpr[11], 0x1067a);
    assert_true(st.gpr[12] & (1u << 8));                    /* invariant TSC */

    v = 0;
    assert_int_equal(msr_op(false, 0x17, &v), -1);          /* IA32_PLATFORM_ID */
    assert_int_equal(msr_op(true, 0x17, &v), 13);           /* read-only */
    v = 0;
    assert_int_equal(msr_op(true, 0x8b, &v), -1);           /* IA32_BIOS_SIGN_ID */
    assert_int_equal(msr_op(false, 0x8b, &v), -1);
    assert_int_equal(v >> 32, 0xa0b);
    v = 1ULL << 2;                                          /* VMX: not offered */
    assert_int_equal(msr_op(true, 0x3a, &v), 13);
    v = 1;
    assert_int_equal(msr_op(true, 0x3a, &v), -1);           /* lock it */
    assert_int_equal(msr_op(false, 0x3a, &v), -1);
    assert_int_equal(v, 1);
    assert_int_equal(msr_op(true, 0x3a, &v), 13);           /* locked */
    v = 0;
    assert_int_equal(msr_op(false, 0xc0010000, &v), 13);    /* AMD's PERF_CTL0 */
    assert_int_equal(msr_op(true, 0xc0010004, &v), 13);     /* AMD's PERF_CTR0 */
    v = 0x12345;
    assert_int_equal(msr_op(true, 0x186, &v), -1);          /* IA32_PERFEVTSEL0 */
    assert_int_equal(msr_op(false, 0x186, &v), -1);
    assert_int_equal(v, 0x12345);
    v = 1;
    assert_int_equal(msr_op(true, 0x1d9, &v), 13);          /* DEBUGCTL.LBR: not here */
    v = 0xfee00900ULL | (1ULL << 10);                       /* x2APIC enable: not offered */
    assert_int_equal(msr_op(true, 0x1b, &v), 13);
    v = 1ULL << 22;                                         /* MISC_ENABLE: limit CPUID */
    assert_int_equal(msr_op(false, 0x1a0, &v), -1);
    assert_true(v & 1);                                     /* fast strings */

    /* mov ecx,0xc0000103 / mov eax,0x1234 / xor edx,edx / wrmsr / rdtscp / hlt */
    static const uint8_t tscp[] = { 0xb9, 0x03, 0x01, 0, 0xc0, 0xb8, 0x34, 0x12, 0, 0,
                                    0x31, 0xd2, 0x0f, 0x30, 0x0f, 0x01, 0xf9, 0xf4 };
    setup_machine();
    run_code(tscp, sizeof tscp, CPU_EXIT_HLT);
    cpu_get_state(cpu, &st);
    assert_int_equal((uint32_t)st.gpr[1], 0x1234);
}

/* Random bytes as code, in 64-bit, 32-bit and real mode: whatever they do (faults, #UD,
 * halts, wild writes, triple faults), the emulator returns an exit and the host survives.
 * Seeded (VMCORE_TEST_SEED) and run under the sanitizers in CI. */
static void test_random_code(void **state)
{
    uint64_t seed = getenv("VMCORE_TEST_SEED") ? strtoull(getenv("VMCORE_TEST_SEED"), NULL, 0)
                                               : 0x1234567ULL;
    (void)state;
    if (!seed)
        seed = 1;
    /* VMCORE_TEST_RANDOM_CASES: fewer where every block is compiled under the sanitizers */
    int cases = getenv("VMCORE_TEST_RANDOM_CASES") ? atoi(getenv("VMCORE_TEST_RANDOM_CASES"))
                                                    : 3000;
    for (int t = 0; t < cases; t++) {
        struct cpu_state st;
        uint8_t code[64];
        for (unsigned k = 0; k < sizeof code; k++) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            code[k] = (uint8_t)seed;
        }
        if (t % 100 == 0)
            setup_machine();    /* undo what wild writes did to the tables */
        memcpy(ram + CODE, code, sizeof code);
        cpu_invalidate_ram(cpu, CODE, sizeof code);
        long_mode(&st, CODE);
        for (int r = 0; r < 16; r++)
            st.gpr[r] = (seed >> r) & 0xffff;
        st.gpr[4] = 0x90000;
        st.gpr[15] = CODE;
        if (t % 3 == 1) {       /* 32-bit protected mode, no paging */
            st.seg[CPU_CS] = (struct cpu_seg){ 0x8, 0, 0xffffffff, 0xc09b };
            st.cr0 = 0x11;
            st.cr4 = 0;
            st.efer = 0;
        } else if (t % 3 == 2) { /* real mode at 0x1000:0 */
            memcpy(ram + 0x10000, code, sizeof code);
            cpu_invalidate_ram(cpu, 0x10000, sizeof code);
            for (int s = 0; s < 6; s++)
                st.seg[s] = (struct cpu_seg){ 0x1000, 0x10000, 0xffff, s == CPU_CS ? 0x9b : 0x93 };
            st.cr0 = 0x10;
            st.cr4 = 0;
            st.efer = 0;
            st.rip = 0;
            st.idt_base = 0;
            st.idt_limit = 0x3ff;
            st.gpr[4] = 0x8000;
        }
        cpu_set_state(cpu, &st);
        enum cpu_exit e = cpu_run(cpu, 20000);
        assert_true(e == CPU_EXIT_HLT || e == CPU_EXIT_SHUTDOWN || e == CPU_EXIT_KICK ||
                    e == CPU_EXIT_ERROR || e == CPU_EXIT_STOP);
    }
    setup_machine();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ud),
        cmocka_unit_test(test_sse_ud),
        cmocka_unit_test(test_sse_align),
        cmocka_unit_test(test_de),
        cmocka_unit_test(test_pf_not_present),
        cmocka_unit_test(test_pf_write_protect),
        cmocka_unit_test(test_pf_nx),
        cmocka_unit_test(test_pae_paging),
        cmocka_unit_test(test_gp_noncanonical),
        cmocka_unit_test(test_soft_int),
        cmocka_unit_test(test_double_fault),
        cmocka_unit_test(test_triple_fault),
        cmocka_unit_test(test_self_modifying),
        cmocka_unit_test(test_flush_mid_block),
        cmocka_unit_test(test_real_mode_ivt),
        cmocka_unit_test(test_cpuid),
        cmocka_unit_test(test_identity_msrs),
        cmocka_unit_test(test_random_code),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
