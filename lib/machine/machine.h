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
#include "../core/snapshot.h"

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

/* A device's handlers for a port or MMIO range. @offset is relative to the range start.
 * Handlers run on vCPU threads, outside any bus lock: a handler may map or unmap ranges
 * (a PCI BAR moving when the guest programs it). */
struct machine_dev_ops {
    uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
    void (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
};

/* ---- The device model ----
 * A device embeds struct machine_device and adds itself with machine_device_add(); the
 * machine resets devices in the order they were added and destroys them in reverse order
 * (after every vCPU has stopped). Ranges, interrupt lines and DMA are separate calls the
 * device makes itself; the bus knows nothing of any device type. */
struct machine_device;

struct machine_device_ops {
    const char *type;               /* "uart8250", "pci-host", ...: for messages and state */
    /* Back to the power-on state (a guest reset; also before a restore). May be NULL. */
    void (*reset)(struct machine_device *dev);
    /* Release everything the device holds, its own memory included. May be NULL. */
    void (*destroy)(struct machine_device *dev);
    /* Snapshots (doc/snapshot.md, lib/machine/snapshot.c): append the device's state to
     * @b (little-endian, the layout the device's file documents). Called with every vCPU
     * parked. NULL means the device cannot be saved yet: a save then fails naming it. */
    int (*save)(struct machine_device *dev, struct snap_buf *b);
    /* Load what save() wrote, from @r (the section's cursor, past the name, type and
     * version), before any vCPU runs. Timestamps on the host's CLOCK_MONOTONIC move by
     * @shift_ns (0 unless the clock is behind the save time: another boot). A bad state
     * fails through snap_rd_fail() (which names the device and the offset) and may leave
     * the device half-loaded: the machine is then destroyed. */
    int (*restore)(struct machine_device *dev, struct snap_rd *r, int64_t shift_ns);
    /* Optional: @on true, stop touching guest RAM and the device's state until called
     * with false (a device with a thread of its own: it holds the lock that thread
     * takes). A save brackets every device's save and the RAM with it, so what it
     * writes is one moment. */
    void (*quiesce)(struct machine_device *dev, bool on);
};

struct machine_device {
    const struct machine_device_ops *ops;
    const char *name;               /* instance name, unique in the machine ("com1") */
    struct machine *m;
    struct machine_device *next;    /* the machine's list, in order added */
};

/* Add @dev (embedded in the device's own state) to the machine. From then on the machine
 * owns it: machine_destroy() calls ops->destroy (in reverse order of adding).
 * VMCORE_EBUSY for a duplicate name. Not thread-safe: devices are added at create. */
int machine_device_add(struct machine *m, struct machine_device *dev,
                       const struct machine_device_ops *ops, const char *name);
/* The device named @name, or NULL. */
struct machine_device *machine_device_find(struct machine *m, const char *name);
/* Reset every device (in the order added). */
void machine_reset_devices(struct machine *m);

/* Address spaces of the buses. */
enum machine_space { MACHINE_PIO = 0, MACHINE_MMIO = 1 };

/* Range flags. MACHINE_RANGE_CONSOLE: the range belongs to the console device, so an
 * access to it does not flush gathered console output (every other access does). */
enum { MACHINE_RANGE_CONSOLE = 1u << 0 };

/* Claim [base, base+len) in @space for @ops/@opaque. VMCORE_EINVAL for an empty or
 * wrapping range, a port range past 0xffff, or MMIO that overlaps RAM; VMCORE_EBUSY if it
 * overlaps a range already claimed; VMCORE_ELIMIT when the bus is full
 * (MACHINE_MAX_RANGES). Thread-safe: vCPU threads may be running. */
int machine_map(struct machine *m, enum machine_space space, uint64_t base, uint64_t len,
                const struct machine_dev_ops *ops, void *opaque, const char *name,
                unsigned flags);
/* Release the range of @space that starts at @base and belongs to @opaque; VMCORE_ENOENT
 * if there is none. An access already under way on another vCPU still completes.
 * Thread-safe. */
int machine_unmap(struct machine *m, enum machine_space space, uint64_t base, void *opaque);
/* Whether [base, base+len) overlaps a claimed range of @space, or (MMIO) RAM. */
bool machine_space_busy(struct machine *m, enum machine_space space, uint64_t base,
                        uint64_t len);

/* ---- Interrupt lines ----
 * machine_irq_set() numbers lines as GSIs: 0..15 are the ISA IRQs (each wired to the
 * 8259 input and the IOAPIC pin of that number, except ISA IRQ 0, the PIT, which reaches
 * IOAPIC pin 2, as the MADT's interrupt source override says); 16..23 are the PCI INTx
 * lines (IOAPIC pins 16..23 only, level-triggered). Levels are logical (1 = asserted,
 * whatever the polarity the guest programs). A line has one owner; the PCI INTx lines
 * are owned by the PCI host, which shares them among its devices (platform.h). */
#define MACHINE_GSI_COUNT 24
#define MACHINE_GSI_PCI_FIRST 16
/* Claim @gsi for @owner; VMCORE_EBUSY if another owner has it, VMCORE_EINVAL if it is out
 * of range. */
int machine_irq_claim(struct machine *m, unsigned gsi, const char *owner);
/* A free GSI in [lo, hi], claimed for @owner; VMCORE_ELIMIT if none is free. */
int machine_irq_alloc(struct machine *m, unsigned lo, unsigned hi, const char *owner,
                      unsigned *gsi);
/* Who owns @gsi (NULL: free or out of range). */
const char *machine_irq_owner(const struct machine *m, unsigned gsi);

/* ---- DMA ----
 * Device access to guest RAM. A range not wholly in RAM (or wrapping) fails: the guest
 * gave a bad address, and the device reports that to the guest; host memory outside RAM
 * is never touched. Writes tell the emulator to drop translated code on the pages
 * written. */
/* Host pointer for [gpa, gpa+len), or NULL if not wholly in RAM. A device that writes
 * through it calls machine_dma_written() afterwards. */
void *machine_dma_map(struct machine *m, uint64_t gpa, uint64_t len);
void machine_dma_written(struct machine *m, uint64_t gpa, uint64_t len);
/* Copy from / to guest RAM: 0, or VMCORE_EINVAL when the range is not wholly in RAM
 * (nothing copied). */
int machine_dma_read(struct machine *m, uint64_t gpa, void *dst, uint64_t len);
int machine_dma_write(struct machine *m, uint64_t gpa, const void *src, uint64_t len);
/* The emulator's hook for RAM written behind the CPU's back (emu: cpu_invalidate_ram). */
void machine_set_code_hook(struct machine *m,
                           void (*invalidate)(void *opaque, uint64_t gpa, uint64_t len),
                           void *opaque);

/* Where device interrupts go: kvm forwards lines to KVM_IRQ_LINE and MSIs to
 * KVM_SIGNAL_MSI; emu to its PIC + IOAPIC and its LAPICs. Thread-safe on both sides. */
struct machine_irq_sink {
    void (*set_irq)(void *opaque, unsigned gsi, int level);
    /* A message-signalled interrupt (the address/data pair of a device's MSI or MSI-X
     * entry). May be NULL: MSIs are then dropped. */
    void (*msi)(void *opaque, uint64_t addr, uint32_t data);
    void *opaque;
};

/* ---- The event channel without the vCPU ----
 * A hypervisor that can signal an eventfd on a guest write by itself (kvm: KVM_IOEVENTFD)
 * and raise an MSI when an eventfd is written (kvm: KVM_IRQFD on an MSI route) installs
 * these ops; devices use them through the machine_ioeventfd_* and machine_msi_fd_* calls
 * below. Without them (emu, the machine tests) the calls fail with VMCORE_ENOTSUP and a
 * device keeps its plain path, which works everywhere: an MMIO handler that writes the
 * eventfd, machine_msi(). A backend that has the ops keeps that path as the fallback too
 * (a write of a length the kernel does not match still exits and reaches the handler).
 * Install before the machine runs; every op may be called from any thread. */
struct machine_fd_ops {
    /* Signal @fd on a guest write of @len bytes (0: any length) at MMIO @gpa, whatever
     * the value, without a vCPU exit. 0 or a VMCORE_* error. */
    int (*ioeventfd_add)(void *opaque, uint64_t gpa, unsigned len, int fd);
    void (*ioeventfd_del)(void *opaque, uint64_t gpa, unsigned len, int fd);
    /* A new eventfd in *@fd whose every write raises the MSI @addr/@data; the backend owns
     * it (msi_fd_del releases it, never close()). 0 or a VMCORE_* error. */
    int (*msi_fd_add)(void *opaque, uint64_t addr, uint32_t data, int *fd);
    /* Point @fd at a new message. 0 or a VMCORE_* error (@fd then keeps the old one). */
    int (*msi_fd_update)(void *opaque, int fd, uint64_t addr, uint32_t data);
    void (*msi_fd_del)(void *opaque, int fd);
    void *opaque;
};
/* Install (or with NULL remove) the ops; before the machine runs and before any device
 * bound anything. */
void machine_set_fd_ops(struct machine *m, const struct machine_fd_ops *ops);
/* The ops' calls, or VMCORE_ENOTSUP (del: nothing) when the backend has none. */
int machine_ioeventfd_add(struct machine *m, uint64_t gpa, unsigned len, int fd);
void machine_ioeventfd_del(struct machine *m, uint64_t gpa, unsigned len, int fd);
int machine_msi_fd_add(struct machine *m, uint64_t addr, uint32_t data, int *fd);
int machine_msi_fd_update(struct machine *m, int fd, uint64_t addr, uint32_t data);
void machine_msi_fd_del(struct machine *m, int fd);

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

/* Allocate RAM (cfg->memory_mib), add the standard devices (COM1 8250, debug-exit at
 * 0xf4, i8042, CMOS, the ACPI PM block) and the PCI host, load cfg->boot into RAM, compute
 * the boot vCPU's state and write the ACPI tables into the BIOS area (every boot but a raw
 * image loaded below 1 MiB, which owns low memory).
 * Bad images fail with VMCORE_EIMAGE and a message naming the file. */
int machine_create(struct machine **out, const struct vmcore_config *cfg, vmcore_domain *d,
                   struct vmcore_err *err);
/* The same machine (RAM, devices, PCI host, virtio devices) without loading the boot
 * image or writing the ACPI tables: for a restore, which fills RAM and every device's and
 * vCPU's state from a snapshot (lib/machine/snapshot.h). */
int machine_create_for_restore(struct machine **out, const struct vmcore_config *cfg,
                               vmcore_domain *d, struct vmcore_err *err);
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
/* Deliver an MSI (address 0xfeeXXXXX, data as the PCI spec lays them out). */
void machine_msi(struct machine *m, uint64_t addr, uint32_t data);

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
/* The backend ops' requests. machine_shutdown(): a press of the ACPI power button when
 * the guest has enabled it (PWRBTN_EN: an OS with an ACPI button driver), after which the
 * guest powers off by itself (S5: VMCORE_EXIT_STATUS 0, "powered off") or the core's
 * shutdown timeout kills it; for any other guest machine_stop() with SIGTERM ("shut down
 * on request"), a stop between exits. machine_kill(): machine_stop() with SIGKILL
 * ("killed"). Thread-safe. */
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
/* virtio-net: one frame of @bytes (without the virtio-net header) the guest received
 * (@rx) or sent; any thread. */
void machine_net_count(struct machine *m, bool rx, uint64_t bytes);
/* The net_* fields of @out: every card's traffic so far. */
void machine_net_counters(const struct machine *m, vmcore_stats *out);

#endif
