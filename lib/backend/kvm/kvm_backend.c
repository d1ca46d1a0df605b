/* The kvm backend: the shared x86 machine (lib/machine) run by /dev/kvm, with the
 * in-kernel irqchip and PIT, one memory slot, and one thread per vCPU. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm.h"

int kvm_probe(vmcore_probe_result *out);
int kvm_usable(struct vmcore_err *err);

static void kvm_set_irq(void *opaque, unsigned gsi, int level)
{
    struct kvm_vm *vm = opaque;
    struct kvm_irq_level irq = { .irq = gsi, .level = level ? 1 : 0 };
    ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq);
}

static void kvm_vm_free(struct kvm_vm *vm)
{
    if (!vm)
        return;
    /* The threads first: they use the vCPU fds and kvm_run pages released below. Then
     * the machine, while the VM fd still exists: its devices stop their I/O threads and
     * release their doorbells and irqfds through the fd ops (kvm_irq_free() would close
     * an irqfd an I/O thread may still write to). */
    vcpus_destroy(&vm->ctl);
    machine_destroy(vm->m);
    vm->m = NULL;
    if (vm->vcpus) {
        for (unsigned i = 0; i < vm->nvcpus; i++) {
            struct kvm_vcpu *c = &vm->vcpus[i];
            if (c->run)
                munmap(c->run, vm->run_size);
            if (c->fd >= 0)
                close(c->fd);
        }
        free(vm->vcpus);
    }
    kvm_irq_free(vm);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    free(vm);
}

/* ---- The event channel in the kernel: doorbells and irqfds (machine_fd_ops) ---- */

static int kvm_ioeventfd(struct kvm_vm *vm, uint64_t gpa, unsigned len, int fd, bool deassign)
{
    if (!vm->have_ioeventfd)
        return VMCORE_ENOTSUP;
    if (len == 0 && !vm->ioeventfd_any_length)
        return VMCORE_EINVAL;       /* the caller may bind a fixed length instead */
    if (len != 0 && len != 1 && len != 2 && len != 4 && len != 8)
        return VMCORE_EINVAL;
    /* No datamatch: any value written signals the eventfd (a virtio notify carries the
     * queue index, which the address already says). */
    struct kvm_ioeventfd io = { .addr = gpa, .len = len, .fd = fd,
                                .flags = deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0 };
    return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? VMCORE_ESYS : 0;
}

static int kvm_ioeventfd_add(void *opaque, uint64_t gpa, unsigned len, int fd)
{
    return kvm_ioeventfd(opaque, gpa, len, fd, false);
}

static void kvm_ioeventfd_del(void *opaque, uint64_t gpa, unsigned len, int fd)
{
    (void)kvm_ioeventfd(opaque, gpa, len, fd, true);
}

static int kvm_msi_fd_add(void *opaque, uint64_t addr, uint32_t data, int *fd)
{
    struct kvm_vm *vm = opaque;
    struct vmcore_err err = { 0 };
    if (!vm->have_irqfd) {
        *fd = -1;
        return VMCORE_ENOTSUP;
    }
    return kvm_irqfd_msi_add(vm, addr, data, fd, &err);
}

static int kvm_msi_fd_update(void *opaque, int fd, uint64_t addr, uint32_t data)
{
    struct vmcore_err err = { 0 };
    return kvm_irqfd_msi_update(opaque, fd, addr, data, &err);
}

static void kvm_msi_fd_del(void *opaque, int fd)
{
    (void)kvm_irqfd_msi_remove(opaque, fd);
}

static void kvm_fd_ops_install(struct kvm_vm *vm)
{
    vm->have_ioeventfd = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD) > 0;
    vm->ioeventfd_any_length =
        ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD_ANY_LENGTH) > 0;
    vm->have_irqfd = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD) > 0;
    machine_set_fd_ops(vm->m, &(struct machine_fd_ops){
                                  .ioeventfd_add = kvm_ioeventfd_add,
                                  .ioeventfd_del = kvm_ioeventfd_del,
                                  .msi_fd_add = kvm_msi_fd_add,
                                  .msi_fd_update = kvm_msi_fd_update,
                                  .msi_fd_del = kvm_msi_fd_del,
                                  .opaque = vm });
}

/* What KVM_GET_SUPPORTED_CPUID returns cannot change while the process runs, and the call
 * costs a third of a millisecond, so it is asked once; the copy is a fixed static array
 * (no heap that would outlive the last VM). */
#define KVM_CPUID_MAX 256
static struct {
    pthread_once_t once;
    int err;
    struct kvm_cpuid2 head;
    struct kvm_cpuid_entry2 entries[KVM_CPUID_MAX];
} supported_cpuid = { .once = PTHREAD_ONCE_INIT };

static void supported_cpuid_fetch(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        supported_cpuid.err = errno;
        return;
    }
    supported_cpuid.head.nent = KVM_CPUID_MAX;
    if (ioctl(fd, KVM_GET_SUPPORTED_CPUID, &supported_cpuid.head) < 0)
        supported_cpuid.err = errno;
    close(fd);
}

/* CPUID as the host's KVM supports it, with each vCPU's APIC ID. */
static int kvm_setup_cpuid(struct kvm_vm *vm, struct vmcore_err *err)
{
    pthread_once(&supported_cpuid.once, supported_cpuid_fetch);
    if (supported_cpuid.err)
        return err_sys(err, VMCORE_ESYS, supported_cpuid.err, "kvm: KVM_GET_SUPPORTED_CPUID");
    uint32_t nent = supported_cpuid.head.nent;
    size_t size = sizeof(struct kvm_cpuid2) + nent * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *cpuid = malloc(size);
    if (!cpuid)
        return err_set(err, VMCORE_ENOMEM, "kvm: out of memory");
    memcpy(cpuid, &supported_cpuid.head, size);
    int rc = 0;
    for (unsigned v = 0; v < vm->nvcpus && rc == 0; v++) {
        for (uint32_t i = 0; i < nent; i++) {
            struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
            if (e->function == 1)
                e->ebx = (e->ebx & 0x00ffffffu) | (v << 24);
            else if (e->function == 0xb || e->function == 0x1f)
                e->edx = v;
        }
        if (ioctl(vm->vcpus[v].fd, KVM_SET_CPUID2, cpuid) < 0)
            rc = err_sys(err, VMCORE_ESYS, errno, "kvm: KVM_SET_CPUID2 (vCPU %u)", v);
    }
    free(cpuid);
    return rc;
}

/* The MSRs a PC's firmware leaves set and Linux expects: fast string operations on, and
 * MTRRs enabled with write-back as the default memory type. */
static int kvm_setup_msrs(struct kvm_vcpu *c, struct vmcore_err *err)
{
    struct {
        struct kvm_msrs head;
        struct kvm_msr_entry entries[2];
    } msrs = { .head.nmsrs = 2,
               .entries = { { .index = 0x1a0, .data = 1 },              /* IA32_MISC_ENABLE */
                            { .index = 0x2ff, .data = 0x800 | 6 } } };  /* IA32_MTRR_DEF_TYPE */
    int n = ioctl(c->fd, KVM_SET_MSRS, &msrs);
    if (n != 2)
        return err_sys(err, VMCORE_ESYS, n < 0 ? errno : EINVAL,
                       "kvm: KVM_SET_MSRS (vCPU %u) set %d of 2", c->id, n < 0 ? 0 : n);
    return 0;
}

static int kvm_create(vmcore_domain *d, const struct vmcore_config *cfg, void **priv,
                      struct vmcore_err *err)
{
    *priv = NULL;
    struct kvm_vm *vm = calloc(1, sizeof *vm);
    if (!vm)
        return err_set(err, VMCORE_ENOMEM, "kvm: out of memory");
    vm->domain = d;
    vm->kvm_fd = vm->vm_fd = -1;
    vm->nvcpus = cfg->vcpus ? cfg->vcpus : 1;
    int rc;
    if ((rc = vcpus_init(&vm->ctl, vm->nvcpus, &kvm_vcpus_ops, vm, d, err))) {
        free(vm);
        return rc;
    }

    /* Image errors first: they are the likely ones and need no /dev/kvm. */
    if ((rc = machine_create(&vm->m, cfg, d, err)))
        goto fail;
    machine_set_event_sink(vm->m,
                           &(struct machine_event_sink){ NULL, vcpus_record_exit, &vm->ctl });
    if ((rc = kvm_open_checked(&vm->kvm_fd, err)))
        goto fail;
    int max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (max_vcpus <= 0)
        max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
    if (max_vcpus > 0 && cfg->vcpus > (unsigned)max_vcpus) {
        rc = err_config(err, VMCORE_ELIMIT, "vcpus", "%u exceeds this host's KVM limit of %d",
                        cfg->vcpus, max_vcpus);
        goto fail;
    }
    int run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size <= 0) {
        rc = err_sys(err, VMCORE_ESYS, errno, "kvm: KVM_GET_VCPU_MMAP_SIZE");
        goto fail;
    }
    vm->run_size = (size_t)run_size;
    if ((rc = kvm_vm_setup(vm->kvm_fd, &vm->vm_fd, machine_ram(vm->m),
                           machine_ram_size(vm->m), true, err)))
        goto fail;
    machine_set_irq_sink(vm->m, &(struct machine_irq_sink){ kvm_set_irq, kvm_msi_sink, vm });

    vm->vcpus = calloc(vm->nvcpus, sizeof *vm->vcpus);
    if (!vm->vcpus) {
        rc = err_set(err, VMCORE_ENOMEM, "kvm: out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < vm->nvcpus; i++)
        vm->vcpus[i] = (struct kvm_vcpu){ .vm = vm, .id = i, .fd = -1 };
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        struct kvm_vcpu *c = &vm->vcpus[i];
        c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
        if (c->fd < 0) {
            rc = err_sys(err, VMCORE_ESYS, errno, "kvm: KVM_CREATE_VCPU %u", i);
            goto fail;
        }
        void *run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
        if (run == MAP_FAILED) {
            rc = err_sys(err, VMCORE_ESYS, errno, "kvm: mmap of vCPU %u's kvm_run", i);
            goto fail;
        }
        c->run = run;
    }
    if ((rc = kvm_setup_cpuid(vm, err)))
        goto fail;
    for (unsigned i = 0; i < vm->nvcpus; i++)
        if ((rc = kvm_setup_msrs(&vm->vcpus[i], err)))
            goto fail;
    if ((rc = kvm_irq_setup(vm, err)))
        goto fail;
    kvm_fd_ops_install(vm);
    /* The boot vCPU starts where the loader said; the others wait for INIT/SIPI in the
     * in-kernel LAPIC, as on a PC. */
    if ((rc = kvm_vcpu_set_state(vm->vcpus[0].fd, machine_boot_state(vm->m), err)))
        goto fail;
    *priv = vm;
    return 0;
fail:
    kvm_vm_free(vm);
    return rc;
}

static int kvm_start(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    struct kvm_vm *vm = priv;
    int rc = kvm_kick_signal_install(err);
    if (rc)
        return rc;
    return vcpus_start(&vm->ctl, err);
}

static int kvm_pause(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    struct kvm_vm *vm = priv;
    vcpus_pause(&vm->ctl);
    return 0;
}

static int kvm_resume(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    struct kvm_vm *vm = priv;
    vcpus_resume(&vm->ctl);
    return 0;
}

static int kvm_shutdown(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    struct kvm_vm *vm = priv;
    machine_shutdown(vm->m);
    return 0;
}

static int kvm_kill(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    struct kvm_vm *vm = priv;
    machine_kill(vm->m);
    return 0;
}

static int kvm_stats(vmcore_domain *d, void *priv, vmcore_stats *out, struct vmcore_err *err)
{
    struct kvm_vm *vm = priv;
    out->cpu_time_ns = vcpus_cpu_ns(&vm->ctl);
    out->exits = machine_exit_count(vm->m);
    out->memory_bytes = machine_ram_resident(vm->m);
    machine_net_counters(vm->m, out);
    return 0;
}

static int kvm_console_write(vmcore_domain *d, void *priv, const void *data, size_t len,
                             struct vmcore_err *err)
{
    struct kvm_vm *vm = priv;
    return machine_console_write(vm->m, data, len, err);
}

static void kvm_destroy(vmcore_domain *d, void *priv)
{
    kvm_vm_free(priv);
}

const struct backend_ops backend_kvm_ops = {
    .name = "kvm",
    .probe = kvm_probe,
    .usable = kvm_usable,
    .create = kvm_create,
    .start = kvm_start,
    .pause = kvm_pause,
    .resume = kvm_resume,
    .shutdown = kvm_shutdown,
    .kill = kvm_kill,
    .stats = kvm_stats,
    .console_write = kvm_console_write,
    .destroy = kvm_destroy,
};
