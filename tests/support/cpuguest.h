/* A guest harness for the software CPU (lib/cpu/cpu.h) shared by the cpu unit tests:
 * guest RAM mapped at a fixed host address with page tables that map the same linear
 * addresses onto it, a flat 64-bit GDT, an IDT whose every vector halts with its number in
 * EAX, the long-mode register state, a native runner for differential tests and the seeded
 * RNG (VMCORE_TEST_SEED). Each test keeps its own addresses and constants. */
#ifndef VMCORE_TESTS_CPUGUEST_H
#define VMCORE_TESTS_CPUGUEST_H

#include <stddef.h>
#include <stdint.h>

#include "cpu/cpu.h"

#define CG_IDT 0x4000u          /* gpa of the halting IDT (32 vectors) */
#define CG_GDT 0x5000u          /* gpa of the GDT written by cg_write_gdt_idt() */
#define CG_HANDLERS 0x6000u     /* vector v: mov eax, v; hlt (16 bytes apart) */

/* GDT: null, 64-bit code (0x08), data (0x10) */
extern const uint64_t cg_gdt[3];

/* Map @size bytes of RWX guest RAM at host address @base (which must be free); NULL (and
 * a message) when it cannot be mapped exactly there. */
uint8_t *cg_map_ram(uint64_t base, size_t size);

/* 4-level tables at gpa 0x1000-0x3fff: linear @base + x -> physical x for x < 4 MiB,
 * 2 MiB pages; CR3 = 0x1000. */
void cg_map_linear_2m(uint8_t *ram, uint64_t base);

/* cg_gdt at CG_GDT and a 32-vector IDT at CG_IDT sending vector v to CG_HANDLERS + 16 v
 * (linear @base + ...), where mov eax, v; hlt. */
void cg_write_gdt_idt(uint8_t *ram, uint64_t base);

/* Zeroed state with flat 64-bit CS (0x08), data segments (0x10), a busy 64-bit TR at 0
 * and an unusable LDTR. */
void cg_long_mode_segs(struct cpu_state *st);

/* cg_long_mode_segs() plus CR0 = @cr0, CR3 = 0x1000, CR4 = PAE|OSFXSR|OSXMMEXCPT,
 * EFER = LME|LMA. */
void cg_long_mode_state(struct cpu_state *st, uint64_t cr0);

/* Seed the RNG from VMCORE_TEST_SEED (@dflt when unset; 0 becomes 1) and print it. */
void cg_seed(uint64_t dflt);

/* xorshift64*: reproducible across runs and libcs */
uint64_t cg_rnd(void);

#if defined(__x86_64__)
struct cg_regs {
    uint64_t gpr[16];
    uint64_t flags;
    uint64_t target;
};

/* Load every register but RSP and the flags from *r, call r->target, store them back. */
void cg_run_native(struct cg_regs *r);
#endif

#endif
