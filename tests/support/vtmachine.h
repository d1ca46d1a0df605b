/* A bare machine for the device tests (test_machine, test_pci, test_acpi, test_ioapic):
 * machine_create() on a one-byte raw image (HLT) in a scratch file, and the guest's port
 * and MMIO accesses as one-liners. Failures are cmocka assertions. */
#ifndef VT_MACHINE_H
#define VT_MACHINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "machine/machine.h"

struct vt_machine {
    struct machine *m;
    struct vmcore_config cfg;
    char path[64];          /* the scratch image */
};

/* Write the image and fill vm->cfg (raw, protected mode, @memory_mib, @vcpus); the
 * caller may change vm->cfg before vt_machine_start(). */
void vt_machine_prepare(struct vt_machine *vm, uint64_t memory_mib, unsigned vcpus);
/* machine_create() on vm->cfg, asserting success. */
void vt_machine_start(struct vt_machine *vm);
/* Both of the above. */
void vt_machine_create(struct vt_machine *vm, uint64_t memory_mib, unsigned vcpus);
/* machine_destroy() (if created) and the scratch image removed; safe to call twice. */
void vt_machine_destroy(struct vt_machine *vm);

/* What a machine reported, for tests that install the recorders below as its event and
 * irq sinks (opaque: the struct vt_events). Console output past out[] is counted only. */
struct vt_events {
    char out[4096];
    size_t outlen;
    unsigned console_events;
    unsigned exits;
    vmcore_exit_kind kind;
    int status;
    char reason[128];
    int irq_level[MACHINE_GSI_COUNT];
    unsigned irq_changes;
};
void vt_record_console(void *events, const void *data, size_t len);
void vt_record_exit(void *events, vmcore_exit_kind kind, int status, const char *reason);
void vt_record_irq(void *events, unsigned gsi, int level);

/* Guest accesses of 1, 2, 4 or 8 bytes. */
uint64_t vt_pio_read(struct machine *m, uint16_t port, unsigned size);
void vt_pio_write(struct machine *m, uint16_t port, unsigned size, uint64_t value);
uint64_t vt_mmio_read(struct machine *m, uint64_t gpa, unsigned size);
void vt_mmio_write(struct machine *m, uint64_t gpa, unsigned size, uint64_t value);

#endif
