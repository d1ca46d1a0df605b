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

/* RAM is one block at guest-physical 0; it must end below the 32-bit MMIO window
 * (IOAPIC 0xfec00000, LAPIC 0xfee00000) that the identity page tables also map. */
#define MACHINE_RAM_MAX (3ull << 30)

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

int machine_create(struct machine **out, const struct vmcore_config *cfg, vmcore_domain *d,
                   struct vmcore_err *err)
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
    atomic_init(&m->stopped, false);
    atomic_init(&m->exits, 0);
    atomic_init(&m->unclaimed, 0);

    int rc;
    if ((rc = uart8250_init(&m->com1, m, 0x3f8, 4)) ||
        (rc = debug_exit_init(m)) || (rc = i8042_init(m)) || (rc = cmos_init(m))) {
        machine_destroy(m);
        return err_set(err, rc, "machine: cannot register the standard devices");
    }
    if ((rc = loader_load(m->ram, m->ram_size, cfg, &m->boot, err))) {
        machine_destroy(m);
        return rc;
    }
    *out = m;
    return 0;
}

void machine_destroy(struct machine *m)
{
    if (!m)
        return;
    uart8250_destroy(&m->com1);
    i8042_destroy(m);
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

static int bus_add(struct machine_bus *bus, uint64_t base, uint64_t len,
                   const struct machine_dev_ops *ops, void *opaque, const char *name)
{
    if (len == 0 || base + len < base || bus->n == MACHINE_MAX_RANGES)
        return VMCORE_EINVAL;
    for (unsigned i = 0; i < bus->n; i++)
        if (base < bus->r[i].base + bus->r[i].len && bus->r[i].base < base + len)
            return VMCORE_EBUSY;
    bus->r[bus->n++] = (struct machine_range){ base, len, ops, opaque, name };
    return 0;
}

int machine_register_pio(struct machine *m, uint16_t base, uint16_t len,
                         const struct machine_dev_ops *ops, void *opaque, const char *name)
{
    if ((uint32_t)base + len > 0x10000)
        return VMCORE_EINVAL;
    return bus_add(&m->pio, base, len, ops, opaque, name);
}

int machine_register_mmio(struct machine *m, uint64_t base, uint64_t len,
                          const struct machine_dev_ops *ops, void *opaque, const char *name)
{
    if (base < m->ram_size)
        return VMCORE_EINVAL; /* RAM is not a device */
    return bus_add(&m->mmio, base, len, ops, opaque, name);
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
    if (m->irq.set_irq)
        m->irq.set_irq(m->irq.opaque, gsi, level);
}

static const struct machine_range *bus_find(const struct machine_bus *bus, uint64_t addr)
{
    for (unsigned i = 0; i < bus->n; i++)
        if (addr - bus->r[i].base < bus->r[i].len)
            return &bus->r[i];
    return NULL;
}

static enum machine_action bus_access(struct machine *m, const struct machine_bus *bus,
                                      uint64_t addr, bool is_write, unsigned size, void *data)
{
    atomic_fetch_add_explicit(&m->exits, 1, memory_order_relaxed);
    const struct machine_range *r = bus_find(bus, addr);
    /* Gathered console output goes out as soon as the guest turns to another device (the
     * UART itself decides for its own registers). */
    if (!r || r->opaque != &m->com1)
        uart8250_flush(&m->com1);
    if (!r) {
        atomic_fetch_add_explicit(&m->unclaimed, 1, memory_order_relaxed);
        if (!is_write)
            memset(data, 0xff, size);
        return atomic_load_explicit(&m->stopped, memory_order_relaxed) ? MACHINE_STOP
                                                                         : MACHINE_CONTINUE;
    }
    uint64_t off = addr - r->base;
    if (is_write) {
        uint64_t v = 0;
        memcpy(&v, data, size > 8 ? 8 : size);
        r->ops->write(r->opaque, off, size, v);
    } else {
        uint64_t v = r->ops->read(r->opaque, off, size);
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
    uart8250_flush(&m->com1);
    m->sink.exit(m->sink.opaque, kind, status, reason);
}

bool machine_stopped(const struct machine *m)
{
    return atomic_load(&((struct machine *)m)->stopped);
}

void machine_shutdown(struct machine *m)
{
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
    return uart8250_receive(&m->com1, data, len);
}

int machine_console_write(struct machine *m, const void *data, size_t len,
                          struct vmcore_err *err)
{
    size_t n = uart8250_receive(&m->com1, data, len);
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
    uart8250_flush(&m->com1);
}

bool machine_console_pending(const struct machine *m)
{
    return atomic_load_explicit(&((struct machine *)m)->com1.tx_pending, memory_order_relaxed);
}

uint64_t machine_exit_count(const struct machine *m)
{
    return atomic_load_explicit(&((struct machine *)m)->exits, memory_order_relaxed);
}

uint64_t machine_unclaimed_count(const struct machine *m)
{
    return atomic_load_explicit(&((struct machine *)m)->unclaimed, memory_order_relaxed);
}
