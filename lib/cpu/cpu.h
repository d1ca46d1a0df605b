/* The x86 CPU emulator's interface to its caller (the emu backend, or a test).
 *
 * The CPU knows guest RAM (one host mapping) and nothing about devices: port I/O, MMIO
 * (guest-physical addresses outside RAM) and interrupt acknowledge go through the
 * callbacks in cpu_io; HLT, a triple fault and a kick end cpu_run() with an exit code.
 * One struct cpu is driven by one thread; cpu_kick() and cpu_set_intr() are the only
 * calls safe from other threads. */
#ifndef VMCORE_CPU_H
#define VMCORE_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cpu;

/* A segment register with its hidden part. attr uses the VMX access-rights layout:
 * type[3:0] s[4] dpl[6:5] p[7] avl[12] l[13] db[14] g[15]; 0x10000 = unusable. */
struct cpu_seg {
    uint16_t sel;
    uint64_t base;
    uint32_t limit;
    uint32_t attr;
};

enum { CPU_ES, CPU_CS, CPU_SS, CPU_DS, CPU_FS, CPU_GS, CPU_LDTR, CPU_TR, CPU_NSEG };

/* Architectural state a caller reads or sets as a whole (boot, tests, debugging). */
struct cpu_state {
    uint64_t gpr[16];           /* rax rcx rdx rbx rsp rbp rsi rdi r8..r15 */
    uint64_t rip, rflags;
    struct cpu_seg seg[CPU_NSEG];
    uint64_t gdt_base, idt_base;
    uint16_t gdt_limit, idt_limit;
    uint64_t cr0, cr2, cr3, cr4, efer;
};

/* Callbacks. Each returns 0 to go on, non-zero to make cpu_run() return CPU_EXIT_STOP
 * after the current instruction completes. @data holds @size little-endian bytes. */
struct cpu_io {
    int (*pio)(void *opaque, uint16_t port, bool is_write, unsigned size, void *data);
    int (*mmio)(void *opaque, uint64_t gpa, bool is_write, unsigned size, void *data);
    /* The CPU accepts an external interrupt (INTA): return its vector, or -1 if the
     * request went away (spurious). Called only after cpu_set_intr(cpu, true). */
    int (*intr_ack)(void *opaque);
    void *opaque;
};

enum cpu_exit {
    CPU_EXIT_HLT = 1,      /* HLT: waiting for an interrupt (forever if IF=0) */
    CPU_EXIT_SHUTDOWN,     /* triple fault */
    CPU_EXIT_STOP,         /* a callback asked to stop */
    CPU_EXIT_KICK,         /* cpu_kick() or the instruction budget ran out */
    CPU_EXIT_ERROR,        /* emulation failure; cpu_error() says why */
};

/* Create a CPU in the reset state (real mode, CS:IP = f000:fff0). @ram is guest-physical
 * 0..ram_size. Returns NULL on allocation failure. */
struct cpu *cpu_new(uint8_t *ram, uint64_t ram_size, const struct cpu_io *io);
void cpu_free(struct cpu *c);

/* Turn the block compiler off (@on false) or back on for this CPU; call before cpu_run().
 * Returns whether compiled code will run: on stays false where cpu_jit_usable() is. */
bool cpu_set_jit(struct cpu *c, bool on);
/* Whether this host can run compiled code (an x86-64 host that allows a writable and
 * executable mapping, and VMCORE_EMU_JIT is not "0"). If not, @why says why. */
bool cpu_jit_usable(char *why, size_t n);

void cpu_get_state(const struct cpu *c, struct cpu_state *out);
/* Load the whole state (a loader's boot state); flushes the TLB and translation cache. */
void cpu_set_state(struct cpu *c, const struct cpu_state *st);

/* Guest RAM in [gpa, gpa+len) was written behind the CPU's back (a loader, a device's
 * DMA): drop translated code there. */
void cpu_invalidate_ram(struct cpu *c, uint64_t gpa, uint64_t len);

/* Run until an exit; at most @budget instructions (0 = no limit) before CPU_EXIT_KICK. */
enum cpu_exit cpu_run(struct cpu *c, uint64_t budget);
/* Make a running cpu_run() return CPU_EXIT_KICK soon. Thread-safe. */
void cpu_kick(struct cpu *c);
/* The level of the INTR line (from the PIC or APIC). Thread-safe. The CPU samples it
 * between blocks; after CPU_EXIT_HLT the caller owns the wait and calls cpu_run() again
 * once the line is up (the CPU then delivers and leaves the halt). */
void cpu_set_intr(struct cpu *c, bool level);
/* True when an external interrupt could be taken now (IF=1): whether a halted CPU can
 * wake. Call from the thread that runs the CPU. */
bool cpu_interruptible(const struct cpu *c);

/* Why CPU_EXIT_ERROR / CPU_EXIT_SHUTDOWN happened ("triple fault at rip=0x..."). */
const char *cpu_error(const struct cpu *c);

/* Everything a snapshot keeps of a CPU: the architectural registers (cpu_state), the
 * debug, system-call, time-stamp and other MSR state, SSE and x87, and whether the CPU is
 * halted or in an interrupt shadow. tsc_offset is the guest's TSC minus the host's
 * CLOCK_MONOTONIC in nanoseconds (the TSC runs at 1 GHz). */
struct cpu_snapshot {
    struct cpu_state arch;
    uint64_t cr8, dr[8];
    uint64_t star, lstar, cstar, sfmask, kgsbase;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t pat, tsc_offset, apic_base, misc_enable, feature_control, tsc_aux;
    uint64_t pmc[2], perfevtsel[2];
    uint8_t xmm[16][16];
    uint32_t mxcsr;
    uint16_t fcw, fsw, ftw;
    uint8_t fpr[8][10];
    uint8_t sti_shadow, halted;
};
/* Read the whole state (between cpu_run() calls, on the CPU's thread or while it is
 * parked). */
void cpu_get_snapshot(const struct cpu *c, struct cpu_snapshot *out);
/* Load it. Flushes the TLB, the translation cache, compiled code and the jump cache:
 * nothing translated before survives, so RAM may have been replaced before this call. */
void cpu_set_snapshot(struct cpu *c, const struct cpu_snapshot *s);
/* What CPUID leaf @leaf, sub-leaf @subleaf returns to the guest (eax, ebx, ecx, edx). */
void cpu_cpuid(const struct cpu *c, uint32_t leaf, uint32_t subleaf, uint32_t out[4]);

struct cpu_stats {
    uint64_t instructions;
    uint64_t tcache_hits, tcache_misses;
    uint64_t jit_blocks;    /* blocks compiled to host code */
};
void cpu_get_stats(const struct cpu *c, struct cpu_stats *out);

#endif
