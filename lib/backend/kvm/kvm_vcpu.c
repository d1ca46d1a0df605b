/* One thread per vCPU: KVM_RUN, then hand the exit to the machine model. The loop reads
 * like the KVM API document; the only work per exit is the device call itself. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "kvm.h"

static void vcpu_crash(struct kvm_vcpu *c, const char *what)
{
    char reason[160];
    struct kvm_regs regs;
    if (ioctl(c->fd, KVM_GET_REGS, &regs) == 0)
        snprintf(reason, sizeof reason, "%s (vCPU %u, rip=0x%llx)", what, c->id,
                 (unsigned long long)regs.rip);
    else
        snprintf(reason, sizeof reason, "%s (vCPU %u)", what, c->id);
    machine_stop(c->vm->m, VMCORE_EXIT_CRASH, 0, reason);
}

static enum machine_action vcpu_handle_exit(struct kvm_vcpu *c)
{
    struct kvm_run *run = c->run;
    struct machine *m = c->vm->m;
    char what[96];
    switch (run->exit_reason) {
    case KVM_EXIT_IO: {
        uint8_t *data = (uint8_t *)run + run->io.data_offset;
        bool out = run->io.direction == KVM_EXIT_IO_OUT;
        enum machine_action a = MACHINE_CONTINUE;
        for (uint32_t i = 0; i < run->io.count && a == MACHINE_CONTINUE; i++)
            a = machine_pio(m, run->io.port, out, run->io.size, data + i * run->io.size);
        return a;
    }
    case KVM_EXIT_MMIO:
        return machine_mmio(m, run->mmio.phys_addr, run->mmio.is_write, run->mmio.len,
                            run->mmio.data);
    case KVM_EXIT_INTR:
        return MACHINE_CONTINUE;
    case KVM_EXIT_HLT:
        /* Only without an in-kernel LAPIC; ours has one, so treat it as the end. */
        machine_stop(m, VMCORE_EXIT_STATUS, 0, "vCPU halted");
        return MACHINE_STOP;
    case KVM_EXIT_SHUTDOWN:
        vcpu_crash(c, "triple fault");
        return MACHINE_STOP;
    case KVM_EXIT_SYSTEM_EVENT:
        if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
            machine_stop(m, VMCORE_EXIT_STATUS, 0, "reset");
        else if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
            machine_stop(m, VMCORE_EXIT_STATUS, 0, "powered off");
        else
            vcpu_crash(c, "system event");
        return MACHINE_STOP;
    case KVM_EXIT_FAIL_ENTRY:
        snprintf(what, sizeof what, "vCPU entry failed (hardware reason 0x%llx)",
                 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        vcpu_crash(c, what);
        return MACHINE_STOP;
    case KVM_EXIT_INTERNAL_ERROR:
        snprintf(what, sizeof what, "KVM internal error (suberror %u)", run->internal.suberror);
        vcpu_crash(c, what);
        return MACHINE_STOP;
    default:
        snprintf(what, sizeof what, "unhandled KVM exit %u", run->exit_reason);
        vcpu_crash(c, what);
        return MACHINE_STOP;
    }
}

/* Out of KVM_RUN: the signal's handler sets this thread's immediate_exit, so a kick that
 * lands before KVM_RUN still makes it return at once. */
static void vcpu_kick(void *opaque, unsigned idx, pthread_t thread)
{
    pthread_kill(thread, kvm_kick_signal());
}

/* Output the guest wrote before a pause is out while it is paused. */
static void vcpu_parking(void *opaque, unsigned idx)
{
    struct kvm_vm *vm = opaque;
    machine_console_flush(vm->m);
}

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* Console output the UART gathers must not wait for the guest's next exit, which may never
 * come (a prompt, then HLT in the kernel's irqchip). When output is pending on entry, a
 * per-thread timer sends this thread the kick signal after KVM_CONSOLE_DEADLINE_NS; the
 * EINTR it causes flushes. One arming per batch of output, no extra syscall per exit. */
#define KVM_CONSOLE_DEADLINE_NS 250000

static bool flush_timer_create(timer_t *t)
{
    struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID,
                            .sigev_signo = kvm_kick_signal() };
    sev.sigev_notify_thread_id = gettid();
    return timer_create(CLOCK_MONOTONIC, &sev, t) == 0;
}

static void flush_timer_arm(timer_t t)
{
    struct itimerspec its = { .it_value = { 0, KVM_CONSOLE_DEADLINE_NS } };
    timer_settime(t, 0, &its, NULL);
}

static void vcpu_run(void *opaque, unsigned idx)
{
    struct kvm_vm *vm = opaque;
    struct kvm_vcpu *c = &vm->vcpus[idx];
    kvm_kick_thread_init(c->run);
    timer_t flush_timer;
    bool have_timer = flush_timer_create(&flush_timer), flush_armed = false;
    for (;;) {
        /* Clear before looking at the flags: a kick after this point makes KVM_RUN
         * return at once, a kick before it set a flag we are about to see. */
        c->run->immediate_exit = 0;
        atomic_signal_fence(memory_order_seq_cst);
        enum vcpus_next next = vcpus_next(&vm->ctl, idx);
        if (next == VCPUS_STOP)
            break;
        if (next == VCPUS_PARKED)
            continue;
        if (!flush_armed && machine_console_pending(vm->m)) {
            if (have_timer)
                flush_timer_arm(flush_timer);
            else
                machine_console_flush(vm->m);
            flush_armed = have_timer;
        }
        if (ioctl(c->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                machine_console_flush(vm->m);
                flush_armed = false;
                continue;
            }
            char what[96];
            snprintf(what, sizeof what, "KVM_RUN failed: %s", strerror(errno));
            vcpu_crash(c, what);
            break;
        }
        if (vcpu_handle_exit(c) == MACHINE_STOP || machine_stopped(vm->m))
            break;
        /* A full console queue stops this vCPU after the UART write that filled it, until
         * the loop has delivered the output (or a pause or the end interrupts the wait). */
        machine_console_wait(vm->m, vcpus_console_stop, &vm->ctl);
    }
    if (have_timer)
        timer_delete(flush_timer);
    /* vcpus.c ends the machine for every vCPU, records this thread's CPU time and, if it
     * is the last, posts the exit. */
}

const struct vcpus_ops kvm_vcpus_ops = {
    .run = vcpu_run,
    .kick = vcpu_kick,
    .parking = vcpu_parking,
};
