/* The /dev/kvm plumbing the backend and the probe share: opening and checking KVM,
 * creating a VM with its irqchip and RAM slot, loading registers, and the kick signal. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm.h"

static const struct { int cap; const char *name; } required_caps[] = {
    { KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
    { KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
    { KVM_CAP_PIT2, "KVM_CAP_PIT2" },
    { KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
    { KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
    { KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
    /* The PC platform (kvm_irq.c): its own GSI routing, MSIs, irqfds, APs held for SIPI.
     * Every x86 host since Linux 3.5 has them; without them MSIs could not be raised. */
    { KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
    { KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI" },
    { KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
    { KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE" },
};

int kvm_open_checked(int *kvm_fd, struct vmcore_err *err)
{
    *kvm_fd = -1;
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return err_sys(err, e == ENOENT ? VMCORE_EUNAVAIL : err_from_errno(e) == VMCORE_EPERM
                                                               ? VMCORE_EPERM : VMCORE_EUNAVAIL,
                       e, "kvm: cannot open /dev/kvm");
    }
    int api = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        close(fd);
        return err_set(err, VMCORE_EUNAVAIL, "kvm: API version %d, expected %d", api,
                       KVM_API_VERSION);
    }
    for (size_t i = 0; i < sizeof required_caps / sizeof required_caps[0]; i++) {
        if (ioctl(fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
            close(fd);
            return err_set(err, VMCORE_EUNAVAIL, "kvm: the host lacks %s",
                           required_caps[i].name);
        }
    }
    *kvm_fd = fd;
    return 0;
}

int kvm_vm_setup(int kvm_fd, int *vm_fd, void *ram, uint64_t ram_size, bool irqchip,
                 struct vmcore_err *err)
{
    *vm_fd = -1;
    int fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
    if (fd < 0)
        return err_sys(err, VMCORE_ESYS, errno, "kvm: KVM_CREATE_VM");
    const char *what;
    uint64_t ident = KVM_IDENTITY_MAP_ADDR;
    struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
    struct kvm_userspace_memory_region slot = { .slot = 0, .guest_phys_addr = 0,
                                                .memory_size = ram_size,
                                                .userspace_addr = (uintptr_t)ram };
    /* The order matters for speed, not function: a memory slot added after the irqchip
     * waits for an SRCU grace period (~6 ms on a PVM host); added before, it costs tens
     * of microseconds (the VM's teardown pays the grace periods either way). */
    if (ioctl(fd, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0)
        what = "KVM_SET_IDENTITY_MAP_ADDR";
    else if (ioctl(fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0)
        what = "KVM_SET_TSS_ADDR";
    else if (ioctl(fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
        what = "KVM_SET_USER_MEMORY_REGION";
    else if (irqchip && ioctl(fd, KVM_CREATE_IRQCHIP, 0) < 0)
        what = "KVM_CREATE_IRQCHIP";
    else if (irqchip && ioctl(fd, KVM_CREATE_PIT2, &pit) < 0)
        what = "KVM_CREATE_PIT2";
    else {
        *vm_fd = fd;
        return 0;
    }
    int e = errno;
    close(fd);
    return err_sys(err, VMCORE_ESYS, e, "kvm: %s", what);
}

static void to_kvm_segment(struct kvm_segment *k, const struct x86_segment *s)
{
    *k = (struct kvm_segment){
        .base = s->base, .limit = s->limit, .selector = s->selector,
        .type = s->attr & 0xf, .s = (s->attr >> 4) & 1, .dpl = (s->attr >> 5) & 3,
        .present = (s->attr >> 7) & 1, .avl = (s->attr >> 12) & 1, .l = (s->attr >> 13) & 1,
        .db = (s->attr >> 14) & 1, .g = (s->attr >> 15) & 1, .unusable = (s->attr >> 16) & 1,
    };
}

int kvm_vcpu_set_state(int vcpu_fd, const struct x86_boot_state *bs, struct vmcore_err *err)
{
    struct kvm_sregs sregs;
    if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
        return err_sys(err, VMCORE_ESYS, errno, "kvm: KVM_GET_SREGS");
    to_kvm_segment(&sregs.cs, &bs->cs);
    to_kvm_segment(&sregs.ds, &bs->ds);
    to_kvm_segment(&sregs.es, &bs->es);
    to_kvm_segment(&sregs.fs, &bs->fs);
    to_kvm_segment(&sregs.gs, &bs->gs);
    to_kvm_segment(&sregs.ss, &bs->ss);
    to_kvm_segment(&sregs.tr, &bs->tr);
    to_kvm_segment(&sregs.ldt, &bs->ldt);
    sregs.gdt.base = bs->gdt.base;
    sregs.gdt.limit = bs->gdt.limit;
    sregs.idt.base = bs->idt.base;
    sregs.idt.limit = bs->idt.limit;
    sregs.cr0 = bs->cr0;
    sregs.cr2 = bs->cr2;
    sregs.cr3 = bs->cr3;
    sregs.cr4 = bs->cr4;
    sregs.efer = bs->efer;
    if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
        return err_sys(err, VMCORE_ESYS, errno, "kvm: KVM_SET_SREGS");
    struct kvm_regs regs = {
        .rax = bs->gpr[X86_RAX], .rcx = bs->gpr[X86_RCX], .rdx = bs->gpr[X86_RDX],
        .rbx = bs->gpr[X86_RBX], .rsp = bs->gpr[X86_RSP], .rbp = bs->gpr[X86_RBP],
        .rsi = bs->gpr[X86_RSI], .rdi = bs->gpr[X86_RDI], .r8 = bs->gpr[X86_R8],
        .r9 = bs->gpr[X86_R9], .r10 = bs->gpr[X86_R10], .r11 = bs->gpr[X86_R11],
        .r12 = bs->gpr[X86_R12], .r13 = bs->gpr[X86_R13], .r14 = bs->gpr[X86_R14],
        .r15 = bs->gpr[X86_R15], .rip = bs->rip, .rflags = bs->rflags,
    };
    if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
        return err_sys(err, VMCORE_ESYS, errno, "kvm: KVM_SET_REGS");
    return 0;
}

/* Kicking a vCPU out of KVM_RUN.
 *
 * A vCPU thread is interrupted with pthread_kill() of one realtime signal, aimed at that
 * thread only. Its handler merely sets kvm_run.immediate_exit for the calling thread, so a
 * kick that lands between the loop's flag check and KVM_RUN still makes KVM_RUN return at
 * once (no lost wake-ups, no extra syscall per exit, no KVM_SET_SIGNAL_MASK dance).
 *
 * Trade-off: a signal disposition is process-wide, so the library takes one realtime
 * signal (SIGRTMAX - 3) for itself, installed on the first kvm start. A no-op handler
 * cannot change what any other thread sees, since nobody else sends that signal, and every
 * vCPU thread blocks all other signals. If the application already installed a handler
 * for that signal, start fails (VMCORE_EBUSY) rather than steal it. Without any handler
 * the default action of a realtime signal would kill the process, and an ignored signal
 * would never interrupt KVM_RUN, so "no handler at all" is not an option. The handler
 * stays installed after the last VM (removing it could race a signal still in flight). */
static __thread struct kvm_run *kick_run;
static pthread_mutex_t kick_lock = PTHREAD_MUTEX_INITIALIZER;

int kvm_kick_signal(void) { return SIGRTMAX - 3; }

static void kick_handler(int sig)
{
    struct kvm_run *run = kick_run;
    if (run)
        run->immediate_exit = 1;
}

/* Checked at every start (a syscall per start, none per exit): the application may have
 * taken the signal since the last one. */
int kvm_kick_signal_install(struct vmcore_err *err)
{
    struct sigaction old, sa;
    int rc = 0;
    pthread_mutex_lock(&kick_lock);
    if (sigaction(kvm_kick_signal(), NULL, &old) < 0) {
        rc = err_sys(err, VMCORE_ESYS, errno, "kvm: cannot read the vCPU kick signal's handler");
    } else if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == kick_handler) {
        rc = 0;
    } else if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) {
        rc = err_set(err, VMCORE_EBUSY, "kvm: signal %d (SIGRTMAX-3), which the kvm backend "
                     "uses to interrupt vCPUs, has a handler installed by the application",
                     kvm_kick_signal());
    } else {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = kick_handler;
        sigemptyset(&sa.sa_mask);
        if (sigaction(kvm_kick_signal(), &sa, NULL) < 0)
            rc = err_sys(err, VMCORE_ESYS, errno, "kvm: cannot install the vCPU kick handler");
    }
    pthread_mutex_unlock(&kick_lock);
    return rc;
}

void kvm_kick_thread_init(struct kvm_run *run)
{
    kick_run = run;
    sigset_t set;
    sigfillset(&set);
    sigdelset(&set, kvm_kick_signal());
    pthread_sigmask(SIG_SETMASK, &set, NULL);
}
