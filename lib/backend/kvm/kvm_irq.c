/* The kvm backend's side of the PC platform: the in-kernel irqchip's GSI routing wired the
 * way lib/machine/machine.h and the MADT describe it, message-signalled interrupts
 * (KVM_SIGNAL_MSI, and irqfd-bound MSI routes for devices that signal from their own
 * threads), and the application processors' wait for INIT/SIPI.
 *
 * The routing table.
 * KVM_CREATE_IRQCHIP installs a default table that sends GSI n to 8259 pin n and IOAPIC
 * pin n. A PC (and our MADT, with its override "ISA IRQ 0 -> GSI 2") wires the PIT to
 * IOAPIC pin 2 instead, since 8259 input 2 is the cascade from the slave: so
 *   GSI 0        -> master 8259 pin 0 and IOAPIC pin 2   (the in-kernel PIT raises GSI 0)
 *   GSI 1, 3..7  -> master 8259 pin n and IOAPIC pin n
 *   GSI 2        -> nothing (the cascade; IOAPIC pin 2 belongs to GSI 0)
 *   GSI 8..15    -> slave 8259 pin n-8 and IOAPIC pin n
 *   GSI 16..23   -> IOAPIC pin n (the PCI INTx lines)
 *   GSI 24..     -> one MSI route each, added by kvm_irqfd_msi_add()
 * "GSI" here is KVM's routing index, which is machine_irq_set()'s line number: for the PIT
 * that is 0 (KVM_IRQ_LINE and the in-kernel PIT both raise it), while ACPI, after the
 * override, calls the same wire GSI 2.
 * Leaving GSI 2 unrouted matters beyond tidiness: KVM maps an acknowledged (chip, pin)
 * back to one GSI for its ack notifiers (the PIT's reinjection among them), so IOAPIC pin
 * 2 must belong to GSI 0 alone.
 *
 * KVM_SET_GSI_ROUTING replaces the whole table, so the table lives here, in our memory,
 * and every change submits all of it again, under irqs->lock so that concurrent changes
 * reach the kernel in the order they were made. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm.h"
#include "machine/platform.h"

#define KVM_ISA_GSIS 16
#define KVM_CASCADE_GSI 2
/* Our own bound on the table; the kernel's (KVM_CAP_IRQ_ROUTING) is 1024 or 4096. */
#define KVM_ROUTES_MAX 1024

struct kvm_irqfd_route {
    unsigned gsi;
    int fd;
};

struct kvm_irqs {
    int vm_fd;
    pthread_mutex_t lock;
    unsigned max_routes;        /* GSIs and table entries stay below this */
    unsigned nfixed;            /* the PC entries lead the table and never change */
    unsigned nr;                /* entries in use */
    struct kvm_irq_routing *table;      /* room for max_routes entries */
    unsigned nfds;              /* irqfd-bound MSI routes, one per GSI >= MACHINE_GSI_COUNT */
    struct kvm_irqfd_route *fds;        /* room for max_routes - nfixed */
};

static struct kvm_irq_routing_entry irqchip_route(unsigned gsi, unsigned chip, unsigned pin)
{
    return (struct kvm_irq_routing_entry){ .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
                                           .u.irqchip = { .irqchip = chip, .pin = pin } };
}

/* The PC table above, written into @e (room for 2 * MACHINE_GSI_COUNT); returns the count. */
static unsigned pc_routes(struct kvm_irq_routing_entry *e)
{
    unsigned n = 0;
    for (unsigned gsi = 0; gsi < KVM_ISA_GSIS; gsi++) {
        if (gsi == KVM_CASCADE_GSI)
            continue;
        e[n++] = irqchip_route(gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
                               gsi % 8);
    }
    for (unsigned gsi = 0; gsi < PLAT_IOAPIC_PINS; gsi++) {
        if (gsi == KVM_CASCADE_GSI)
            continue;
        e[n++] = irqchip_route(gsi, KVM_IRQCHIP_IOAPIC, gsi == 0 ? 2 : gsi);
    }
    return n;
}

/* Hand the whole table to the kernel. Caller holds irqs->lock. */
static int routes_submit(struct kvm_irqs *irqs)
{
    irqs->table->nr = irqs->nr;
    irqs->table->flags = 0;
    return ioctl(irqs->vm_fd, KVM_SET_GSI_ROUTING, irqs->table) < 0 ? -errno : 0;
}

static struct kvm_irq_routing_entry *route_find(struct kvm_irqs *irqs, unsigned gsi)
{
    for (unsigned i = irqs->nfixed; i < irqs->nr; i++)
        if (irqs->table->entries[i].gsi == gsi)
            return &irqs->table->entries[i];
    return NULL;
}

static void route_remove(struct kvm_irqs *irqs, unsigned gsi)
{
    struct kvm_irq_routing_entry *e = route_find(irqs, gsi);
    if (e)
        *e = irqs->table->entries[--irqs->nr];   /* order means nothing to KVM */
}

static struct kvm_irqfd_route *fd_find(struct kvm_irqs *irqs, int fd)
{
    for (unsigned i = 0; i < irqs->nfds; i++)
        if (irqs->fds[i].fd == fd)
            return &irqs->fds[i];
    return NULL;
}

/* The lowest GSI above the pins with no MSI route, or 0 if the table is full. */
static unsigned gsi_alloc(struct kvm_irqs *irqs)
{
    if (irqs->nr >= irqs->max_routes)
        return 0;
    for (unsigned gsi = MACHINE_GSI_COUNT; gsi < irqs->max_routes; gsi++)
        if (!route_find(irqs, gsi))
            return gsi;
    return 0;
}

/* A message the LAPICs decode: the 0xfee00000 window, below 4 GiB. Anything else is, on a
 * PC, a plain memory write, not an interrupt. */
static bool msi_addr_ok(uint64_t addr)
{
    return (addr & ~0xfffffull) == PLAT_LAPIC_BASE;
}

static struct kvm_irq_routing_entry msi_route(unsigned gsi, uint64_t addr, uint32_t data)
{
    return (struct kvm_irq_routing_entry){
        .gsi = gsi, .type = KVM_IRQ_ROUTING_MSI,
        .u.msi = { .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32),
                   .data = data },
    };
}

/* Each AP waits for INIT and SIPI in its in-kernel LAPIC. KVM makes every vCPU but the
 * BSP (vCPU 0) start that way once an in-kernel irqchip exists; the state is checked and,
 * if a kernel ever started an AP runnable, set, since an AP that ran from reset would
 * execute whatever lies at the reset vector. */
static int aps_wait_for_sipi(struct kvm_vm *vm, struct vmcore_err *err)
{
    for (unsigned i = 1; i < vm->nvcpus; i++) {
        struct kvm_mp_state mp;
        if (ioctl(vm->vcpus[i].fd, KVM_GET_MP_STATE, &mp) < 0)
            return err_sys(err, VMCORE_ESYS, errno, "kvm: KVM_GET_MP_STATE (vCPU %u)", i);
        if (mp.mp_state == KVM_MP_STATE_UNINITIALIZED)
            continue;
        mp.mp_state = KVM_MP_STATE_UNINITIALIZED;
        if (ioctl(vm->vcpus[i].fd, KVM_SET_MP_STATE, &mp) < 0)
            return err_sys(err, VMCORE_ESYS, errno, "kvm: KVM_SET_MP_STATE (vCPU %u)", i);
    }
    return 0;
}

int kvm_irq_setup(struct kvm_vm *vm, struct vmcore_err *err)
{
    if (vm->irqs)
        return err_set(err, VMCORE_EINVAL, "kvm: the interrupt routing is set up already");
    int kernel_max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQ_ROUTING);
    if (kernel_max < 2 * MACHINE_GSI_COUNT)
        return err_set(err, VMCORE_EUNAVAIL, "kvm: the host's GSI routing table holds %d "
                       "entries, the PC platform needs %d", kernel_max < 0 ? 0 : kernel_max,
                       2 * MACHINE_GSI_COUNT);
    struct kvm_irqs *irqs = calloc(1, sizeof *irqs);
    if (!irqs)
        return err_set(err, VMCORE_ENOMEM, "kvm: out of memory");
    irqs->vm_fd = vm->vm_fd;
    irqs->max_routes = kernel_max < KVM_ROUTES_MAX ? (unsigned)kernel_max : KVM_ROUTES_MAX;
    irqs->table = calloc(1, sizeof *irqs->table +
                                irqs->max_routes * sizeof(struct kvm_irq_routing_entry));
    if (!irqs->table || pthread_mutex_init(&irqs->lock, NULL)) {
        free(irqs->table);
        free(irqs);
        return err_set(err, VMCORE_ENOMEM, "kvm: out of memory");
    }
    irqs->nfixed = irqs->nr = pc_routes(irqs->table->entries);
    irqs->fds = calloc(irqs->max_routes - irqs->nfixed, sizeof *irqs->fds);
    vm->irqs = irqs;    /* from here on kvm_irq_free() undoes it all */
    if (!irqs->fds)
        return err_set(err, VMCORE_ENOMEM, "kvm: out of memory");
    int e = routes_submit(irqs);
    if (e)
        return err_sys(err, VMCORE_ESYS, -e, "kvm: KVM_SET_GSI_ROUTING");
    return aps_wait_for_sipi(vm, err);
}

void kvm_irq_free(struct kvm_vm *vm)
{
    struct kvm_irqs *irqs = vm->irqs;
    if (!irqs)
        return;
    /* The VM's fd is still open: unbind first, so no eventfd outlives its binding. */
    for (unsigned i = 0; i < irqs->nfds; i++) {
        struct kvm_irqfd fd = { .fd = (uint32_t)irqs->fds[i].fd, .gsi = irqs->fds[i].gsi,
                                .flags = KVM_IRQFD_FLAG_DEASSIGN };
        ioctl(irqs->vm_fd, KVM_IRQFD, &fd);
        close(irqs->fds[i].fd);
    }
    pthread_mutex_destroy(&irqs->lock);
    free(irqs->fds);
    free(irqs->table);
    free(irqs);
    vm->irqs = NULL;
}

int kvm_msi(struct kvm_vm *vm, uint64_t addr, uint32_t data)
{
    if (!msi_addr_ok(addr))
        return VMCORE_EINVAL;
    struct kvm_msi msi = { .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32),
                           .data = data };
    /* > 0: delivered; 0: the guest blocked it (a software-disabled LAPIC, say); -1 with
     * EPERM: no LAPIC matched the destination (the kernel's own -1 seen as an errno).
     * All three are the guest's business; only the rest (EINVAL, EFAULT) is ours. */
    if (ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 && errno != EPERM)
        return VMCORE_ESYS;
    return 0;
}

void kvm_msi_sink(void *opaque, uint64_t addr, uint32_t data)
{
    /* A device cannot report a lost interrupt to anyone; a message outside the LAPIC
     * window is dropped the way a PC would not raise it either. */
    (void)kvm_msi(opaque, addr, data);
}

/* What kvm_irqfd_msi_add and _update refuse before touching the table. */
static int irqfd_args_check(const struct kvm_irqs *irqs, uint64_t addr, struct vmcore_err *err)
{
    if (!irqs)
        return err_set(err, VMCORE_EINVAL, "kvm: irqfd before the interrupt routing exists");
    if (!msi_addr_ok(addr))
        return err_set(err, VMCORE_EINVAL, "kvm: MSI address 0x%llx is outside the local "
                       "APICs' window", (unsigned long long)addr);
    return 0;
}

int kvm_irqfd_msi_add(struct kvm_vm *vm, uint64_t addr, uint32_t data, int *eventfd_out,
                      struct vmcore_err *err)
{
    *eventfd_out = -1;
    struct kvm_irqs *irqs = vm->irqs;
    int rc0 = irqfd_args_check(irqs, addr, err);
    if (rc0)
        return rc0;
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return err_sys(err, VMCORE_ESYS, errno, "kvm: eventfd");
    pthread_mutex_lock(&irqs->lock);
    int rc = 0;
    unsigned gsi = gsi_alloc(irqs);
    if (!gsi) {
        rc = err_set(err, VMCORE_ELIMIT, "kvm: all %u interrupt routes are in use",
                     irqs->max_routes);
        goto out;
    }
    irqs->table->entries[irqs->nr++] = msi_route(gsi, addr, data);
    int e = routes_submit(irqs);
    if (e) {
        route_remove(irqs, gsi);
        rc = err_sys(err, VMCORE_ESYS, -e, "kvm: KVM_SET_GSI_ROUTING");
        goto out;
    }
    struct kvm_irqfd bind = { .fd = (uint32_t)fd, .gsi = gsi };
    if (ioctl(irqs->vm_fd, KVM_IRQFD, &bind) < 0) {
        rc = err_sys(err, VMCORE_ESYS, errno, "kvm: KVM_IRQFD (GSI %u)", gsi);
        route_remove(irqs, gsi);
        routes_submit(irqs);    /* the old table, which the kernel took before */
        goto out;
    }
    irqs->fds[irqs->nfds++] = (struct kvm_irqfd_route){ .gsi = gsi, .fd = fd };
out:
    pthread_mutex_unlock(&irqs->lock);
    if (rc)
        close(fd);
    else
        *eventfd_out = fd;
    return rc;
}

int kvm_irqfd_msi_update(struct kvm_vm *vm, int eventfd, uint64_t addr, uint32_t data,
                         struct vmcore_err *err)
{
    struct kvm_irqs *irqs = vm->irqs;
    int rc0 = irqfd_args_check(irqs, addr, err);
    if (rc0)
        return rc0;
    pthread_mutex_lock(&irqs->lock);
    int rc = 0;
    struct kvm_irqfd_route *r = fd_find(irqs, eventfd);
    struct kvm_irq_routing_entry *e = r ? route_find(irqs, r->gsi) : NULL;
    if (!e) {
        rc = err_set(err, VMCORE_ENOENT, "kvm: eventfd %d is not an MSI irqfd", eventfd);
    } else {
        struct kvm_irq_routing_entry old = *e;
        *e = msi_route(r->gsi, addr, data);
        int se = routes_submit(irqs);
        if (se) {
            *e = old;
            rc = err_sys(err, VMCORE_ESYS, -se, "kvm: KVM_SET_GSI_ROUTING");
        }
    }
    pthread_mutex_unlock(&irqs->lock);
    return rc;
}

int kvm_irqfd_msi_remove(struct kvm_vm *vm, int eventfd)
{
    struct kvm_irqs *irqs = vm->irqs;
    if (!irqs)
        return VMCORE_ENOENT;
    pthread_mutex_lock(&irqs->lock);
    struct kvm_irqfd_route *r = fd_find(irqs, eventfd);
    if (!r) {
        pthread_mutex_unlock(&irqs->lock);
        return VMCORE_ENOENT;
    }
    unsigned gsi = r->gsi;
    /* Unbind before the route goes, so that a signal in flight finds its route. */
    struct kvm_irqfd unbind = { .fd = (uint32_t)eventfd, .gsi = gsi,
                                .flags = KVM_IRQFD_FLAG_DEASSIGN };
    ioctl(irqs->vm_fd, KVM_IRQFD, &unbind);
    *r = irqs->fds[--irqs->nfds];
    route_remove(irqs, gsi);
    /* A failed resubmission leaves a stale MSI route on a GSI no eventfd feeds: harmless,
     * and the next change submits the table again. */
    routes_submit(irqs);
    pthread_mutex_unlock(&irqs->lock);
    close(eventfd);
    return 0;
}
