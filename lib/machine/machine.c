/* The machine: guest RAM, the port-I/O and MMIO buses, interrupt routing and the one-time
 * stop. Devices live in their own files and register ranges here; loaders fill RAM and the
 * boot vCPU state (loader.c). */
#include "machine_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/backend.h"
#include "loader.h"
#include "virtio_pci.h"

/* RAM is one block at guest-physical 0; it must end below the 32-bit MMIO window
 * (IOAPIC 0xfec00000, LAPIC 0xfee00000) that the identity page tables also map. */
#define MACHINE_RAM_MAX (3ull << 30)

static int bus_init(struct machine_bus *bus);
static void devices_destroy(struct machine_device *d);

void machine_post_exit(vmcore_domain *d, vmcore_exit_kind kind, int status, const char *reason)
{
    if (kind == VMCORE_EXIT_SIGNAL)
        domain_post_exit(d, kind, 0, status, reason);
    else
        domain_post_exit(d, kind, status, 0, reason);
}

static void sink_domain_exit(void *opaque, vmcore_exit_kind kind, int status, const char *reason)
{
    machine_post_exit(opaque, kind, status, reason);
}

static void sink_none_exit(void *opaque, vmcore_exit_kind kind, int status, const char *reason) { }

static int machine_build(struct machine **out, const struct vmcore_config *cfg,
                         vmcore_domain *d, bool load, struct vmcore_err *err);

int machine_create(struct machine **out, const struct vmcore_config *cfg, vmcore_domain *d,
                   struct vmcore_err *err)
{
    return machine_build(out, cfg, d, true, err);
}

int machine_create_for_restore(struct machine **out, const struct vmcore_config *cfg,
                               vmcore_domain *d, struct vmcore_err *err)
{
    return machine_build(out, cfg, d, false, err);
}

static int machine_build(struct machine **out, const struct vmcore_config *cfg,
                         vmcore_domain *d, bool load, struct vmcore_err *err)
{
    *out = NULL;
    uint64_t ram_size = cfg->memory_mib << 20;
    if (cfg->memory_mib == 0 || ram_size > MACHINE_RAM_MAX)
        return err_config(err, VMCORE_ELIMIT, "memory_mib",
                          "%llu MiB is outside what the x86 machine supports (1..%llu)",
                          (unsigned long long)cfg->memory_mib,
                          (unsigned long long)(MACHINE_RAM_MAX >> 20));
    struct machine *m = calloc(1, sizeof *m);
    if (!m)
        return err_set(err, VMCORE_ENOMEM, "machine: out of memory");
    m->domain = d;
    /* console NULL: to the domain, if any (machine_console_output) */
    if (d)
        m->sink = (struct machine_event_sink){ NULL, sink_domain_exit, d };
    else
        m->sink = (struct machine_event_sink){ NULL, sink_none_exit, NULL };
    /* Untouched pages cost nothing: the host backs RAM lazily. */
    void *ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (ram == MAP_FAILED) {
        int e = errno;
        free(m);
        return err_sys(err, VMCORE_ENOMEM, e, "memory_mib: cannot map %llu MiB of guest RAM",
                       (unsigned long long)cfg->memory_mib);
    }
    m->ram = ram;
    m->ram_size = ram_size;
    m->ncpus = cfg->vcpus ? cfg->vcpus : 1;
    if (bus_init(&m->pio) == 0) {
        if (bus_init(&m->mmio) == 0)
            m->buses_ready = true;
        else
            pthread_rwlock_destroy(&m->pio.lock);
    }
    if (!m->buses_ready) {
        munmap(ram, ram_size);
        free(m);
        return err_set(err, VMCORE_ENOMEM, "machine: cannot create the bus locks");
    }
    atomic_init(&m->stopped, false);
    atomic_init(&m->exits, 0);
    atomic_init(&m->unclaimed, 0);
    atomic_init(&m->net_rx_bytes, 0);
    atomic_init(&m->net_rx_packets, 0);
    atomic_init(&m->net_tx_bytes, 0);
    atomic_init(&m->net_tx_packets, 0);

    int rc;
    if ((rc = uart8250_create(m, 0x3f8, 4, "com1", &m->com1)) ||
        (rc = debug_exit_init(m)) || (rc = i8042_init(m)) || (rc = cmos_init(m)) ||
        (rc = acpi_pm_init(m))) {
        machine_destroy(m);
        return err_set(err, rc, "machine: cannot register the standard devices");
    }
    if ((rc = pci_host_init(m, cfg))) {
        machine_destroy(m);
        return err_set(err, rc, "machine: cannot create the PCI host bridge");
    }
    if ((rc = virtio_devices_create(m, cfg, err))) {
        machine_destroy(m);
        return rc;
    }
    if (!load) {
        /* a restore: RAM and every register come from the snapshot */
        *out = m;
        return 0;
    }
    if ((rc = loader_load(m->ram, m->ram_size, cfg, &m->boot, err))) {
        machine_destroy(m);
        return rc;
    }
    uint64_t rsdp = 0;
    if ((rc = acpi_build(m, cfg, &rsdp))) {
        machine_destroy(m);
        return err_set(err, rc, "machine: the ACPI tables do not fit below 1 MiB");
    }
    *out = m;
    return 0;
}

void machine_destroy(struct machine *m)
{
    if (!m)
        return;
    devices_destroy(m->devices);
    if (m->buses_ready) {
        pthread_rwlock_destroy(&m->pio.lock);
        pthread_rwlock_destroy(&m->mmio.lock);
    }
    if (m->ram)
        munmap(m->ram, m->ram_size);
    free(m);
}

uint8_t *machine_ram(struct machine *m) { return m->ram; }
uint64_t machine_ram_size(const struct machine *m) { return m->ram_size; }
const struct x86_boot_state *machine_boot_state(const struct machine *m) { return &m->boot; }

void *machine_gpa_to_hva(struct machine *m, uint64_t gpa, uint64_t len)
{
    if (gpa > m->ram_size || len > m->ram_size - gpa)
        return NULL;
    return m->ram + gpa;
}

static int bus_init(struct machine_bus *bus)
{
    bus->n = 0;
    return pthread_rwlock_init(&bus->lock, NULL) ? VMCORE_ENOMEM : 0;
}

static struct machine_bus *bus_of(struct machine *m, enum machine_space space)
{
    return space == MACHINE_PIO ? &m->pio : &m->mmio;
}

static bool bus_overlaps(const struct machine_bus *bus, uint64_t base, uint64_t len)
{
    for (unsigned i = 0; i < bus->n; i++)
        if (base < bus->r[i].base + bus->r[i].len && bus->r[i].base < base + len)
            return true;
    return false;
}

int machine_map(struct machine *m, enum machine_space space, uint64_t base, uint64_t len,
                const struct machine_dev_ops *ops, void *opaque, const char *name,
                unsigned flags)
{
    if (len == 0 || base + len < base || !ops || (space != MACHINE_PIO && space != MACHINE_MMIO))
        return VMCORE_EINVAL;
    if (space == MACHINE_PIO && base + len > 0x10000)
        return VMCORE_EINVAL;
    if (space == MACHINE_MMIO && base < m->ram_size)
        return VMCORE_EINVAL; /* RAM is one block at 0: anything from ram_size up is free */
    struct machine_bus *bus = bus_of(m, space);
    int rc = 0;
    pthread_rwlock_wrlock(&bus->lock);
    if (bus->n == MACHINE_MAX_RANGES)
        rc = VMCORE_ELIMIT;
    else if (bus_overlaps(bus, base, len))
        rc = VMCORE_EBUSY;
    else
        bus->r[bus->n++] = (struct machine_range){ base, len, ops, opaque, name, flags };
    pthread_rwlock_unlock(&bus->lock);
    return rc;
}

int machine_unmap(struct machine *m, enum machine_space space, uint64_t base, void *opaque)
{
    if (space != MACHINE_PIO && space != MACHINE_MMIO)
        return VMCORE_EINVAL;
    struct machine_bus *bus = bus_of(m, space);
    int rc = VMCORE_ENOENT;
    pthread_rwlock_wrlock(&bus->lock);
    for (unsigned i = 0; i < bus->n; i++) {
        if (bus->r[i].base == base && bus->r[i].opaque == opaque) {
            bus->r[i] = bus->r[--bus->n];
            rc = 0;
            break;
        }
    }
    pthread_rwlock_unlock(&bus->lock);
    return rc;
}

bool machine_space_busy(struct machine *m, enum machine_space space, uint64_t base,
                        uint64_t len)
{
    if (len == 0 || base + len < base)
        return true;
    if (space == MACHINE_MMIO && base < m->ram_size)
        return true;
    struct machine_bus *bus = bus_of(m, space);
    pthread_rwlock_rdlock(&bus->lock);
    bool busy = bus_overlaps(bus, base, len);
    pthread_rwlock_unlock(&bus->lock);
    return busy;
}

int machine_register_pio(struct machine *m, uint16_t base, uint16_t len,
                         const struct machine_dev_ops *ops, void *opaque, const char *name)
{
    return machine_map(m, MACHINE_PIO, base, len, ops, opaque, name, 0);
}

int machine_register_mmio(struct machine *m, uint64_t base, uint64_t len,
                          const struct machine_dev_ops *ops, void *opaque, const char *name)
{
    return machine_map(m, MACHINE_MMIO, base, len, ops, opaque, name, 0);
}

/* ---- devices ---- */

int machine_device_add(struct machine *m, struct machine_device *dev,
                       const struct machine_device_ops *ops, const char *name)
{
    if (!dev || !ops || !name)
        return VMCORE_EINVAL;
    if (machine_device_find(m, name))
        return VMCORE_EBUSY;
    dev->ops = ops;
    dev->name = name;
    dev->m = m;
    dev->next = NULL;
    struct machine_device **p = &m->devices;
    while (*p)
        p = &(*p)->next;
    *p = dev;
    return 0;
}

struct machine_device *machine_device_find(struct machine *m, const char *name)
{
    for (struct machine_device *d = m->devices; d; d = d->next)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

void machine_reset_devices(struct machine *m)
{
    for (struct machine_device *d = m->devices; d; d = d->next)
        if (d->ops->reset)
            d->ops->reset(d);
}

/* Destroy in reverse order of adding: later devices may use earlier ones. */
static void devices_destroy(struct machine_device *d)
{
    if (!d)
        return;
    devices_destroy(d->next);
    if (d->ops->destroy)
        d->ops->destroy(d);
}

/* ---- interrupt lines ---- */

int machine_irq_claim(struct machine *m, unsigned gsi, const char *owner)
{
    if (gsi >= MACHINE_GSI_COUNT || !owner)
        return VMCORE_EINVAL;
    if (m->gsi_owner[gsi] && strcmp(m->gsi_owner[gsi], owner) != 0)
        return VMCORE_EBUSY;
    m->gsi_owner[gsi] = owner;
    return 0;
}

int machine_irq_alloc(struct machine *m, unsigned lo, unsigned hi, const char *owner,
                      unsigned *gsi)
{
    if (!owner || lo > hi || hi >= MACHINE_GSI_COUNT)
        return VMCORE_EINVAL;
    for (unsigned g = lo; g <= hi; g++) {
        if (!m->gsi_owner[g]) {
            m->gsi_owner[g] = owner;
            *gsi = g;
            return 0;
        }
    }
    return VMCORE_ELIMIT;
}

const char *machine_irq_owner(const struct machine *m, unsigned gsi)
{
    return gsi < MACHINE_GSI_COUNT ? m->gsi_owner[gsi] : NULL;
}

/* ---- DMA ---- */

void *machine_dma_map(struct machine *m, uint64_t gpa, uint64_t len)
{
    return machine_gpa_to_hva(m, gpa, len);
}

void machine_dma_written(struct machine *m, uint64_t gpa, uint64_t len)
{
    if (m->code_hook && len)
        m->code_hook(m->code_hook_opaque, gpa, len);
}

int machine_dma_read(struct machine *m, uint64_t gpa, void *dst, uint64_t len)
{
    const void *p = machine_gpa_to_hva(m, gpa, len);
    if (!p)
        return VMCORE_EINVAL;
    memcpy(dst, p, len);
    return 0;
}

int machine_dma_write(struct machine *m, uint64_t gpa, const void *src, uint64_t len)
{
    void *p = machine_gpa_to_hva(m, gpa, len);
    if (!p)
        return VMCORE_EINVAL;
    memcpy(p, src, len);
    machine_dma_written(m, gpa, len);
    return 0;
}

void machine_set_code_hook(struct machine *m,
                           void (*invalidate)(void *opaque, uint64_t gpa, uint64_t len),
                           void *opaque)
{
    m->code_hook = invalidate;
    m->code_hook_opaque = opaque;
}

void machine_set_irq_sink(struct machine *m, const struct machine_irq_sink *sink)
{
    if (sink)
        m->irq = *sink;
    else
        memset(&m->irq, 0, sizeof m->irq);
}

void machine_set_event_sink(struct machine *m, const struct machine_event_sink *sink)
{
    m->sink = *sink;
}

void machine_irq_set(struct machine *m, unsigned gsi, int level)
{
    if (gsi < MACHINE_GSI_COUNT && m->irq.set_irq)
        m->irq.set_irq(m->irq.opaque, gsi, level);
}

void machine_msi(struct machine *m, uint64_t addr, uint32_t data)
{
    if (m->irq.msi)
        m->irq.msi(m->irq.opaque, addr, data);
}

void machine_set_fd_ops(struct machine *m, const struct machine_fd_ops *ops)
{
    if (ops)
        m->fdops = *ops;
    else
        memset(&m->fdops, 0, sizeof m->fdops);
}

int machine_ioeventfd_add(struct machine *m, uint64_t gpa, unsigned len, int fd)
{
    if (!m->fdops.ioeventfd_add || !m->fdops.ioeventfd_del)
        return VMCORE_ENOTSUP;
    return m->fdops.ioeventfd_add(m->fdops.opaque, gpa, len, fd);
}

void machine_ioeventfd_del(struct machine *m, uint64_t gpa, unsigned len, int fd)
{
    if (m->fdops.ioeventfd_del)
        m->fdops.ioeventfd_del(m->fdops.opaque, gpa, len, fd);
}

int machine_msi_fd_add(struct machine *m, uint64_t addr, uint32_t data, int *fd)
{
    *fd = -1;
    if (!m->fdops.msi_fd_add || !m->fdops.msi_fd_update || !m->fdops.msi_fd_del)
        return VMCORE_ENOTSUP;
    return m->fdops.msi_fd_add(m->fdops.opaque, addr, data, fd);
}

int machine_msi_fd_update(struct machine *m, int fd, uint64_t addr, uint32_t data)
{
    if (!m->fdops.msi_fd_update)
        return VMCORE_ENOTSUP;
    return m->fdops.msi_fd_update(m->fdops.opaque, fd, addr, data);
}

void machine_msi_fd_del(struct machine *m, int fd)
{
    if (m->fdops.msi_fd_del && fd >= 0)
        m->fdops.msi_fd_del(m->fdops.opaque, fd);
}

/* Copy the range holding @addr (under the shared lock) into @out; false if none. */
static bool bus_find(struct machine_bus *bus, uint64_t addr, struct machine_range *out)
{
    bool found = false;
    pthread_rwlock_rdlock(&bus->lock);
    for (unsigned i = 0; i < bus->n; i++) {
        if (addr - bus->r[i].base < bus->r[i].len) {
            *out = bus->r[i];
            found = true;
            break;
        }
    }
    pthread_rwlock_unlock(&bus->lock);
    return found;
}

static enum machine_action bus_access(struct machine *m, struct machine_bus *bus,
                                      uint64_t addr, bool is_write, unsigned size, void *data)
{
    atomic_fetch_add_explicit(&m->exits, 1, memory_order_relaxed);
    struct machine_range r;
    bool found = bus_find(bus, addr, &r);
    /* Gathered console output goes out as soon as the guest turns to another device (the
     * console device itself decides for its own registers). */
    if (!found || !(r.flags & MACHINE_RANGE_CONSOLE))
        machine_console_flush(m);
    if (!found) {
        atomic_fetch_add_explicit(&m->unclaimed, 1, memory_order_relaxed);
        if (!is_write)
            memset(data, 0xff, size);
        return atomic_load_explicit(&m->stopped, memory_order_relaxed) ? MACHINE_STOP
                                                                         : MACHINE_CONTINUE;
    }
    uint64_t off = addr - r.base;
    if (is_write) {
        uint64_t v = 0;
        memcpy(&v, data, size > 8 ? 8 : size);
        r.ops->write(r.opaque, off, size, v);
    } else {
        uint64_t v = r.ops->read(r.opaque, off, size);
        memcpy(data, &v, size > 8 ? 8 : size);
    }
    return atomic_load_explicit(&m->stopped, memory_order_relaxed) ? MACHINE_STOP
                                                                     : MACHINE_CONTINUE;
}

enum machine_action machine_pio(struct machine *m, uint16_t port, bool is_write, unsigned size,
                                void *data)
{
    return bus_access(m, &m->pio, port, is_write, size, data);
}

enum machine_action machine_mmio(struct machine *m, uint64_t gpa, bool is_write, unsigned size,
                                 void *data)
{
    return bus_access(m, &m->mmio, gpa, is_write, size, data);
}

void machine_stop(struct machine *m, vmcore_exit_kind kind, int status, const char *reason)
{
    bool expected = false;
    if (!atomic_compare_exchange_strong(&m->stopped, &expected, true))
        return;
    machine_console_flush(m);
    m->sink.exit(m->sink.opaque, kind, status, reason);
}

bool machine_stopped(const struct machine *m)
{
    return atomic_load(&((struct machine *)m)->stopped);
}

void machine_shutdown(struct machine *m)
{
    /* A guest that listens to the power button powers itself off (S5, "powered off"), or
     * the core's kill timeout ends it; one that does not is stopped now. */
    if (acpi_pm_power_button(m))
        return;
    machine_stop(m, VMCORE_EXIT_SIGNAL, SIGTERM, "shut down on request");
}

void machine_kill(struct machine *m)
{
    machine_stop(m, VMCORE_EXIT_SIGNAL, SIGKILL, "killed");
}

void machine_console_output(struct machine *m, const void *data, size_t len)
{
    if (m->sink.console)
        m->sink.console(m->sink.opaque, data, len);
    else if (m->domain)
        domain_post_console(m->domain, VMCORE_STREAM_CONSOLE, data, len);
}

void machine_console_wait(struct machine *m, bool (*stop)(void *arg), void *arg)
{
    if (!m->sink.console && m->domain && domain_console_full(m->domain))
        domain_console_wait(m->domain, stop, arg);
}

size_t machine_console_input(struct machine *m, const void *data, size_t len)
{
    return m->com1 ? uart8250_receive(m->com1, data, len) : 0;
}

int machine_console_write(struct machine *m, const void *data, size_t len,
                          struct vmcore_err *err)
{
    size_t n = machine_console_input(m, data, len);
    if (n < len)
        return err_set(err, VMCORE_EBUSY, "console: the serial receive queue is full "
                       "(%zu of %zu bytes queued)", n, len);
    return 0;
}

uint64_t machine_ram_resident(struct machine *m)
{
    unsigned char vec[4096]; /* one byte per page: 16 MiB of RAM per mincore() */
    uint64_t resident = 0;
    for (uint64_t off = 0; off < m->ram_size; off += sizeof vec * 4096ull) {
        uint64_t len = m->ram_size - off;
        if (len > sizeof vec * 4096ull)
            len = sizeof vec * 4096ull;
        if (mincore(m->ram + off, len, vec) != 0)
            return 0;
        for (uint64_t i = 0; i < len / 4096; i++)
            resident += vec[i] & 1;
    }
    return resident * 4096;
}

void machine_console_flush(struct machine *m)
{
    if (m->com1)
        uart8250_flush(m->com1);
}

bool machine_console_pending(const struct machine *m)
{
    return m->com1 && atomic_load_explicit(&m->com1->tx_pending, memory_order_relaxed);
}

uint64_t machine_exit_count(const struct machine *m)
{
    return atomic_load_explicit(&((struct machine *)m)->exits, memory_order_relaxed);
}

uint64_t machine_unclaimed_count(const struct machine *m)
{
    return atomic_load_explicit(&((struct machine *)m)->unclaimed, memory_order_relaxed);
}

void machine_net_count(struct machine *m, bool rx, uint64_t bytes)
{
    atomic_fetch_add_explicit(rx ? &m->net_rx_bytes : &m->net_tx_bytes, bytes,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(rx ? &m->net_rx_packets : &m->net_tx_packets, 1,
                              memory_order_relaxed);
}

void machine_net_counters(const struct machine *m, vmcore_stats *out)
{
    struct machine *w = (struct machine *)m;
    out->net_rx_bytes = atomic_load_explicit(&w->net_rx_bytes, memory_order_relaxed);
    out->net_rx_packets = atomic_load_explicit(&w->net_rx_packets, memory_order_relaxed);
    out->net_tx_bytes = atomic_load_explicit(&w->net_tx_bytes, memory_order_relaxed);
    out->net_tx_packets = atomic_load_explicit(&w->net_tx_packets, memory_order_relaxed);
}
