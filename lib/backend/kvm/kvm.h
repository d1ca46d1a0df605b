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

#endif
