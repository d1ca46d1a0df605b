/* Private to the kvm backend: the VM, its vCPUs and the helpers its files share. */
#ifndef VMCORE_BACKEND_KVM_H
#define VMCORE_BACKEND_KVM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "core/backend.h"
#include "machine/machine.h"
#include "machine/vcpus.h"

/* KVM's identity-map page and TSS live in the last 16 KiB below the BIOS ROM; guest RAM
 * never reaches there (the machine caps RAM at 3 GiB). */
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ull
#define KVM_TSS_ADDR 0xfffbd000ull

struct kvm_vm;

struct kvm_vcpu {
    struct kvm_vm *vm;
    unsigned id;
    int fd;
    struct kvm_run *run;
};

struct kvm_vm {
    vmcore_domain *domain;
    struct machine *m;
    int kvm_fd, vm_fd;
    size_t run_size;
    unsigned nvcpus;
    struct kvm_vcpu *vcpus;
    /* Their threads: pause/resume/stop, the recorded exit (the machine's event sink) and
     * CPU time (lib/machine/vcpus.h). */
    struct vcpus ctl;

    struct kvm_irqs *irqs;  /* the GSI routing table and irqfds (kvm_irq.c) */
    /* What the host offers for the machine's fd ops (doorbells, irqfds). */
    bool have_ioeventfd, ioeventfd_any_length, have_irqfd;
};

/* Open /dev/kvm, check the API version and the capabilities the backend needs. */
int kvm_open_checked(int *kvm_fd, struct vmcore_err *err);
/* Create a VM, map @ram at guest-physical 0 and, with @irqchip, add the in-kernel
 * irqchip (PIC, IOAPIC, LAPICs) and PIT. */
int kvm_vm_setup(int kvm_fd, int *vm_fd, void *ram, uint64_t ram_size, bool irqchip,
                 struct vmcore_err *err);
/* Load the boot vCPU state into a vCPU's registers. */
int kvm_vcpu_set_state(int vcpu_fd, const struct x86_boot_state *bs, struct vmcore_err *err);
/* The kick signal handler, installed once; fails if the application owns the signal. */
int kvm_kick_signal_install(struct vmcore_err *err);
/* Per-thread: make the kick signal the only one delivered here, aimed at @run. */
void kvm_kick_thread_init(struct kvm_run *run);
int kvm_kick_signal(void);

/* The vCPU threads' operations for lib/machine/vcpus.h (opaque: the struct kvm_vm). */
extern const struct vcpus_ops kvm_vcpus_ops;

/* A clock's reading in nanoseconds (0 if the clock is gone). */
static inline uint64_t kvm_clock_ns(clockid_t clk)
{
    struct timespec ts;
    if (clock_gettime(clk, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t kvm_now_ns(void) { return kvm_clock_ns(CLOCK_MONOTONIC); }

/* ---- The PC platform's interrupts (kvm_irq.c) ---- */

struct kvm_irqs;
/* After KVM_CREATE_IRQCHIP and KVM_CREATE_VCPU of every vCPU: replace KVM's default GSI
 * routing with the PC's (ISA IRQ 0, the PIT, at IOAPIC pin 2, as the MADT says; GSI 2,
 * the cascade, unrouted; PCI INTx at IOAPIC pins 16..23), and make sure every AP waits
 * for INIT/SIPI in its LAPIC. Sets vm->irqs; kvm_irq_free() undoes it, also after a
 * failure. VMCORE_EUNAVAIL if the host's routing table is too small, VMCORE_ESYS if KVM
 * refuses. */
int kvm_irq_setup(struct kvm_vm *vm, struct vmcore_err *err);
/* Unbind and close every irqfd, free the table. Before the VM's fd is closed. */
void kvm_irq_free(struct kvm_vm *vm);
/* Raise a message-signalled interrupt (KVM_SIGNAL_MSI). 0 once KVM took it (a message the
 * guest's LAPICs block, or that no LAPIC matches, counts as taken); VMCORE_EINVAL for an
 * address outside the LAPIC window 0xfee00000..0xfeefffff (on a PC a plain memory write:
 * nothing is raised); VMCORE_ESYS if KVM refused it. Any thread. */
int kvm_msi(struct kvm_vm *vm, uint64_t addr, uint32_t data);
/* The machine_irq_sink's .msi for @opaque = the struct kvm_vm: kvm_msi(), result dropped. */
void kvm_msi_sink(void *opaque, uint64_t addr, uint32_t data);
/* For a device that signals from its own thread without a round trip through us: a new
 * GSI (24 and up) routed to the MSI @addr/@data, bound with KVM_IRQFD to a new eventfd
 * (non-blocking, close-on-exec) returned in *@eventfd; writing an 8-byte count to it raises
 * the MSI inside the kernel. The eventfd belongs to kvm_irq: release it with
 * kvm_irqfd_msi_remove() (or kvm_irq_free()), never close() it. VMCORE_EINVAL for a bad
 * address or before kvm_irq_setup(), VMCORE_ELIMIT when the routing table is full,
 * VMCORE_ESYS if KVM refuses. */
int kvm_irqfd_msi_add(struct kvm_vm *vm, uint64_t addr, uint32_t data, int *eventfd,
                      struct vmcore_err *err);
/* Point an irqfd's route at a new message (the guest reprogrammed the MSI/MSI-X entry).
 * VMCORE_ENOENT if @eventfd is not one of ours. */
int kvm_irqfd_msi_update(struct kvm_vm *vm, int eventfd, uint64_t addr, uint32_t data,
                         struct vmcore_err *err);
/* Unbind, drop the route, close the eventfd. The caller makes sure nothing writes to
 * @eventfd any more (as with close()). VMCORE_ENOENT if it is not one of ours. */
int kvm_irqfd_msi_remove(struct kvm_vm *vm, int eventfd);
/* Thread-safety: kvm_msi() needs no lock (KVM_SIGNAL_MSI is a VM ioctl, safe from any
 * thread). The irqfd calls take the kvm_irqs mutex around the table and its submission,
 * so they may run from any thread, concurrently with each other and with running vCPUs;
 * the mutex is a leaf (nothing else is taken under it). */

#endif
