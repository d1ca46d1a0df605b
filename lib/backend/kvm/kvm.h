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
    pthread_t thread;
    bool thread_started;
    bool done;              /* the thread left its loop (under vm->lock) */
    uint64_t cpu_ns;        /* CPU time, final once done */
};

struct kvm_vm {
    vmcore_domain *domain;
    struct machine *m;
    int kvm_fd, vm_fd;
    size_t run_size;
    unsigned nvcpus;
    struct kvm_vcpu *vcpus;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool sync_init;
    atomic_bool stop_req;   /* vCPUs leave their loops */
    atomic_bool pause_req;  /* vCPUs park until resumed */
    unsigned nparked;       /* vCPUs parked for a pause (under lock) */
    unsigned nalive;        /* vCPU threads not yet done (under lock) */

    /* The machine's end, recorded by the event sink and posted by the last vCPU thread
     * to finish, so that the exit event means every vCPU thread has stopped. */
    bool have_exit;
    vmcore_exit_kind exit_kind;
    int exit_status;
    char exit_reason[160];
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

void *kvm_vcpu_thread(void *arg);
/* Kick every live vCPU thread but the caller's out of KVM_RUN. Caller holds vm->lock. */
void kvm_kick_all(struct kvm_vm *vm);
/* Post the recorded exit to the domain (once every vCPU thread is done). */
void kvm_post_exit(struct kvm_vm *vm);

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
