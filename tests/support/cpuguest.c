#include "cpuguest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

const uint64_t cg_gdt[3] = { 0, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL };

uint8_t *cg_map_ram(uint64_t base, size_t size)
{
    uint8_t *ram = mmap((void *)(uintptr_t)base, size, PROT_READ | PROT_WRITE | PROT_EXEC,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (ram == MAP_FAILED || ram != (uint8_t *)(uintptr_t)base) {
        fprintf(stderr, "cannot map guest RAM at 0x%llx\n", (unsigned long long)base);
        return NULL;
    }
    return ram;
}

void cg_map_linear_2m(uint8_t *ram, uint64_t base)
{
    uint64_t *pml4 = (uint64_t *)(ram + 0x1000), *pdpt = (uint64_t *)(ram + 0x2000);
    uint64_t *pd = (uint64_t *)(ram + 0x3000);
    pml4[(base >> 39) & 511] = 0x2000 | 3;
    pdpt[(base >> 30) & 511] = 0x3000 | 3;
    pd[(base >> 21) & 511] = 0x000000 | 0x83;
    pd[((base >> 21) + 1) & 511] = 0x200000 | 0x83;
}

void cg_write_gdt_idt(uint8_t *ram, uint64_t base)
{
    memcpy(ram + CG_GDT, cg_gdt, sizeof cg_gdt);
    for (unsigned v = 0; v < 32; v++) {
        uint64_t h = base + CG_HANDLERS + 16 * v;
        uint64_t lo = (h & 0xffff) | (0x8ULL << 16) | (0x8eULL << 40) |
                      ((h >> 16) & 0xffff) << 48;
        uint64_t hi = h >> 32;
        memcpy(ram + CG_IDT + 16 * v, &lo, 8);
        memcpy(ram + CG_IDT + 16 * v + 8, &hi, 8);
        uint8_t *p = ram + CG_HANDLERS + 16 * v;
        p[0] = 0xb8;
        memcpy(p + 1, &v, 4);
        p[5] = 0xf4;
    }
}

void cg_long_mode_segs(struct cpu_state *st)
{
    memset(st, 0, sizeof *st);
    st->seg[CPU_CS] = (struct cpu_seg){ 0x8, 0, 0xffffffff, 0xa09b };
    for (int s = 0; s < 6; s++)
        if (s != CPU_CS)
            st->seg[s] = (struct cpu_seg){ 0x10, 0, 0xffffffff, 0xc093 };
    st->seg[CPU_TR] = (struct cpu_seg){ 0, 0, 0xffff, 0x8b };
    st->seg[CPU_LDTR] = (struct cpu_seg){ 0, 0, 0, 0x10000 };
}

void cg_long_mode_state(struct cpu_state *st, uint64_t cr0)
{
    cg_long_mode_segs(st);
    st->cr0 = cr0;
    st->cr3 = 0x1000;
    st->cr4 = 0x620;     /* PAE, OSFXSR, OSXMMEXCPT */
    st->efer = 0x500;
}

static uint64_t rng_state;

void cg_seed(uint64_t dflt)
{
    const char *s = getenv("VMCORE_TEST_SEED");
    rng_state = s ? strtoull(s, NULL, 0) : dflt;
    if (!rng_state)
        rng_state = 1;
    fprintf(stderr, "[ seed ] VMCORE_TEST_SEED=0x%" PRIx64 "\n", rng_state);
}

uint64_t cg_rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

#if defined(__x86_64__)
__asm__(
    ".text\n"
    ".globl cg_run_native\n"
    "cg_run_native:\n"
    "  push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
    "  push %rdi\n"
    "  pushq 136(%rdi)\n"
    "  pushq 128(%rdi)\n"
    "  popfq\n"
    "  mov 0(%rdi), %rax\n mov 8(%rdi), %rcx\n mov 16(%rdi), %rdx\n mov 24(%rdi), %rbx\n"
    "  mov 40(%rdi), %rbp\n mov 48(%rdi), %rsi\n"
    "  mov 64(%rdi), %r8\n mov 72(%rdi), %r9\n mov 80(%rdi), %r10\n mov 88(%rdi), %r11\n"
    "  mov 96(%rdi), %r12\n mov 104(%rdi), %r13\n mov 112(%rdi), %r14\n mov 120(%rdi), %r15\n"
    "  mov 56(%rdi), %rdi\n"
    "  call *(%rsp)\n"
    "  pushfq\n"
    "  cld\n"
    "  push %rdi\n"
    "  mov 24(%rsp), %rdi\n"
    "  mov %rax, 0(%rdi)\n mov %rcx, 8(%rdi)\n mov %rdx, 16(%rdi)\n mov %rbx, 24(%rdi)\n"
    "  mov %rbp, 40(%rdi)\n mov %rsi, 48(%rdi)\n"
    "  mov %r8, 64(%rdi)\n mov %r9, 72(%rdi)\n mov %r10, 80(%rdi)\n mov %r11, 88(%rdi)\n"
    "  mov %r12, 96(%rdi)\n mov %r13, 104(%rdi)\n mov %r14, 112(%rdi)\n mov %r15, 120(%rdi)\n"
    "  pop %rax\n mov %rax, 56(%rdi)\n"
    "  pop %rax\n mov %rax, 128(%rdi)\n"
    "  add $16, %rsp\n"
    "  pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
    "  ret\n");
#endif
