/* Private layout of struct machine, shared by the machine's own files (devices, loaders).
 * Backends use only machine.h. */
#ifndef VMCORE_MACHINE_INTERNAL_H
#define VMCORE_MACHINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "machine.h"
#include "uart8250.h"

#define MACHINE_MAX_RANGES 128

struct machine_range {
    uint64_t base, len;
    const struct machine_dev_ops *ops;
    void *opaque;
    const char *name;
    unsigned flags;
};

/* Ranges in no particular order; readers (every exit) take the lock shared and copy the
 * range they hit, so a handler may map and unmap (which take it exclusive). */
struct machine_bus {
    pthread_rwlock_t lock;
    struct machine_range r[MACHINE_MAX_RANGES];
    unsigned n;
};

struct machine {
    vmcore_domain *domain;
    uint8_t *ram;
    uint64_t ram_size;
    struct x86_boot_state boot;

    unsigned ncpus;                 /* cfg->vcpus */
    struct machine_bus pio, mmio;
    bool buses_ready;
    struct machine_irq_sink irq;
    struct machine_fd_ops fdops;    /* all NULL unless the backend set them */
    const char *gsi_owner[MACHINE_GSI_COUNT];
    struct machine_device *devices; /* in order added */
    void (*code_hook)(void *opaque, uint64_t gpa, uint64_t len);
    void *code_hook_opaque;
    struct machine_event_sink sink;

    atomic_bool stopped;
    atomic_uint_fast64_t exits;
    atomic_uint_fast64_t unclaimed;
    /* virtio-net traffic of every card, as the guest sees it (machine_net_counters) */
    atomic_uint_fast64_t net_rx_bytes, net_rx_packets, net_tx_bytes, net_tx_packets;

    struct uart8250 *com1;          /* the console (a device of the list, like the rest) */
};

/* Device set-up, one per file; each adds itself to the machine's device list (which
 * destroys it) and registers its own ranges. The platform parts
 * (pci.c, acpi.c, acpi_pm.c) are each called once from machine_create(). */
int pci_host_init(struct machine *m, const struct vmcore_config *cfg);
int acpi_pm_init(struct machine *m);
/* Press the ACPI power button: if the guest enabled it (PWRBTN_EN, which an OS with an
 * ACPI button driver sets), set PWRBTN_STS, raise the SCI and return true; otherwise
 * change nothing and return false. Thread-safe. */
bool acpi_pm_power_button(struct machine *m);
/* Write the ACPI tables (RSDP .. DSDT) for this machine into the BIOS area of RAM and give
 * the RSDP's guest address (BOOT_ACPI_RSDP_ADDR, which loader_linux already passed in
 * boot_params). A raw image loaded below 1 MiB gets none: *rsdp_gpa is then 0.
 * VMCORE_ELIMIT for more CPUs than xAPIC entries describe or RAM below 1 MiB. */
int acpi_build(struct machine *m, const struct vmcore_config *cfg, uint64_t *rsdp_gpa);
int debug_exit_init(struct machine *m);
int i8042_init(struct machine *m);
int cmos_init(struct machine *m);

/* Console output from the UART, routed to the event sink. */
void machine_console_output(struct machine *m, const void *data, size_t len);

#endif
