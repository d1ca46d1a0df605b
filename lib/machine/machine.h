/* The x86 virtual machine shared by the kvm and emu backends: guest RAM, the port-I/O
 * and MMIO buses, devices, boot loaders, and the exit model. A backend's vCPU loop turns
 * its exits (KVM_EXIT_IO, or a trapped IN/OUT in the emulator) into the calls below, so
 * the same device code answers both. */
#ifndef VMCORE_MACHINE_H
#define VMCORE_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmcore/domain.h"

#include "../core/config.h"
#include "../core/err.h"

struct machine;

/* One segment register as the CPU holds it after a load (hidden part included). The
 * attribute bits use the VMX access-rights layout: type[3:0] s[4] dpl[6:5] p[7] avl[12]
 * l[13] db[14] g[15]; 0x10000 marks an unusable segment. */
struct x86_segment {
    uint16_t selector;
    uint64_t base;
    uint32_t limit;
    uint32_t attr;
};

struct x86_dtable {
    uint64_t base;
    uint16_t limit;
};

/* Register indexes into x86_boot_state.gpr, in the encoding order the ISA uses. */
enum { X86_RAX, X86_RCX, X86_RDX, X86_RBX, X86_RSP, X86_RBP, X86_RSI, X86_RDI,
       X86_R8, X86_R9, X86_R10, X86_R11, X86_R12, X86_R13, X86_R14, X86_R15 };

/* The CPU state a loader leaves for the boot vCPU. Backend-neutral: kvm converts it to
 * kvm_regs/kvm_sregs, emu copies it into its CPU. */
struct x86_boot_state {
    uint64_t gpr[16];
    uint64_t rip, rflags;
    struct x86_segment cs, ds, es, fs, gs, ss, tr, ldt;
    struct x86_dtable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, efer;
};

/* A device's handlers for a port or MMIO range. @offset is relative to the range start. */
struct machine_dev_ops {
    uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
    void (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
};

/* Where device interrupts go: kvm forwards to KVM_IRQ_LINE, emu to its emulated PIC. */
struct machine_irq_sink {
    void (*set_irq)(void *opaque, unsigned gsi, int level);
    void *opaque;
};

/* Where the machine reports console output and its end. By default both go to the domain
 * given to machine_create() (domain_post_console / machine_post_exit); tests and tools may
 * redirect them. A NULL @console keeps console output going to the domain (a backend that
 * only holds the exit back). Called from vCPU threads. */
struct machine_event_sink {
    void (*console)(void *opaque, const void *data, size_t len);
    /* For VMCORE_EXIT_SIGNAL, @status is the signal number. */
    void (*exit)(void *opaque, vmcore_exit_kind kind, int status, const char *reason);
    void *opaque;
};

/* What a vCPU loop does after an exit was handled. */
enum machine_action { MACHINE_CONTINUE = 0, MACHINE_STOP = 1 };

/* Allocate RAM (cfg->memory_mib), register the standard devices (COM1 8250, debug-exit at
 * 0xf4, i8042, CMOS), load cfg->boot into RAM and compute the boot vCPU's state.
 * Bad images fail with VMCORE_EIMAGE and a message naming the file. */
int machine_create(struct machine **out, const struct vmcore_config *cfg, vmcore_domain *d,
                   struct vmcore_err *err);
void machine_destroy(struct machine *m);

uint8_t *machine_ram(struct machine *m);
uint64_t machine_ram_size(const struct machine *m);
/* Host pointer for [gpa, gpa+len) if it lies wholly in RAM, else NULL. */
void *machine_gpa_to_hva(struct machine *m, uint64_t gpa, uint64_t len);
const struct x86_boot_state *machine_boot_state(const struct machine *m);

int machine_register_pio(struct machine *m, uint16_t base, uint16_t len,
                         const struct machine_dev_ops *ops, void *opaque, const char *name);
int machine_register_mmio(struct machine *m, uint64_t base, uint64_t len,
                          const struct machine_dev_ops *ops, void *opaque, const char *name);
void machine_set_irq_sink(struct machine *m, const struct machine_irq_sink *sink);
/* Replace the default event sink (call before the machine runs). */
void machine_set_event_sink(struct machine *m, const struct machine_event_sink *sink);
void machine_irq_set(struct machine *m, unsigned gsi, int level);

/* Exits. @data holds @size bytes (1, 2, 4 or 8), little-endian; reads fill it. Unclaimed
 * reads give all-ones and are counted. Return MACHINE_STOP once the machine must end. */
enum machine_action machine_pio(struct machine *m, uint16_t port, bool is_write, unsigned size,
                                void *data);
enum machine_action machine_mmio(struct machine *m, uint64_t gpa, bool is_write, unsigned size,
                                 void *data);
/* The machine ends: first caller wins, the exit is posted to the domain once (pending
 * console output first). For VMCORE_EXIT_SIGNAL, @status is the signal number. */
void machine_stop(struct machine *m, vmcore_exit_kind kind, int status, const char *reason);
bool machine_stopped(const struct machine *m);
/* The backend ops' requests: machine_stop() with SIGTERM ("shut down on request": the
 * machine has no ACPI power button, so a graceful end is a stop between exits) or SIGKILL
 * ("killed"). */
void machine_shutdown(struct machine *m);
void machine_kill(struct machine *m);
/* domain_post_exit() for an exit as the event sink reports it (@status is the signal
 * number for VMCORE_EXIT_SIGNAL). */
void machine_post_exit(vmcore_domain *d, vmcore_exit_kind kind, int status, const char *reason);

/* Serial console input; thread-safe. Returns how many bytes were queued (the rest did not
 * fit in the UART's receive queue). */
size_t machine_console_input(struct machine *m, const void *data, size_t len);
/* Back-pressure for a vCPU thread, called after an exit has been handled (outside any
 * device lock): when the domain's console queue is full, wait until the loop has drained
 * it or @stop(@arg) is true (see domain_console_wait() in core/backend.h). No-op when the
 * console goes to a redirected sink. */
void machine_console_wait(struct machine *m, bool (*stop)(void *arg), void *arg);
/* Post console output the UART is still gathering (it batches up to a newline). The machine
 * flushes by itself on newlines, on any exit that is not a COM1 transmit, and on stop;
 * a backend calls this when it pauses or is kicked. Thread-safe. */
void machine_console_flush(struct machine *m);
/* True while the UART holds output not yet posted. A backend whose guest can go quiet
 * without an exit (HLT inside the kernel's irqchip, a spin loop) uses it to arm a flush
 * deadline; an emulator flushes when the guest halts. Lock-free. */
bool machine_console_pending(const struct machine *m);

/* console_write for a backend: queue all of @data or fail with VMCORE_EBUSY ("the serial
 * receive queue is full"), having queued what fit. */
int machine_console_write(struct machine *m, const void *data, size_t len,
                          struct vmcore_err *err);

/* Guest RAM the host actually backs (resident pages), for vmcore_stats.memory_bytes. */
uint64_t machine_ram_resident(struct machine *m);

/* Counters for vmcore_stats. */
uint64_t machine_exit_count(const struct machine *m);
uint64_t machine_unclaimed_count(const struct machine *m);

#endif
