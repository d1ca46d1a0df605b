/* The machine's part of a snapshot (doc/snapshot.md): the MACHINE section (vCPU count, RAM
 * size, save time, the CPUID the guest saw), one DEVICE section per device the machine
 * holds, in the order they were added, and RAM as runs of non-zero pages. The backend
 * writes its vCPU sections itself; the core writes the DOMAIN and END sections. */
#ifndef VMCORE_MACHINE_SNAPSHOT_H
#define VMCORE_MACHINE_SNAPSHOT_H

#include <stdint.h>

#include "../core/snapshot.h"
#include "machine.h"

/* CPUID leaves a snapshot records (and a restore compares). */
struct machine_cpuid {
    uint32_t leaf, subleaf;
    uint32_t r[4];              /* eax ebx ecx edx */
};
#define MACHINE_CPUID_MAX 32

struct machine_snap_info {
    uint32_t ncpus;
    uint64_t ram_size;
    uint64_t saved_ns;          /* host CLOCK_MONOTONIC at the save */
    uint32_t ncpuid;
    struct machine_cpuid cpuid[MACHINE_CPUID_MAX];
};

/* Whether every device can be saved: 0, or VMCORE_ENOTSUP naming the first that cannot
 * (a virtio device, today). Call before creating the file. */
int machine_check_savable(struct machine *m, struct vmcore_err *err);
/* Write the MACHINE section from @info (ram_size and ncpus are the machine's). */
int machine_save_info(struct machine *m, struct snap_writer *w,
                      const struct machine_snap_info *info);
/* Write every device's section and the RAM runs. Every vCPU is parked. */
int machine_save_state(struct machine *m, struct snap_writer *w);
/* Read the MACHINE section into @info, checking it against the machine (vCPU count, RAM
 * size); *@shift_ns receives how far timestamps move (0, or the clock's distance behind
 * the save time after another boot). */
int machine_restore_info(struct machine *m, const struct snap_file *f,
                         struct machine_snap_info *info, int64_t *shift_ns,
                         struct vmcore_err *err);
/* Load every device's state (each must have its section, and no section may be left)
 * and RAM. The machine must be fresh: created for a restore, no vCPU started. */
int machine_restore(struct machine *m, const struct snap_file *f, int64_t shift_ns,
                    struct vmcore_err *err);

#endif
