/* Debug-exit port 0xf4 (QEMU's isa-debug-exit at the same port, but the status is the byte
 * itself): a byte written there ends the machine with that exit status. */
#include <stdio.h>

#include "machine_internal.h"

static uint64_t debug_exit_read(void *opaque, uint64_t off, unsigned size)
{
    return ~0ull;
}

static void debug_exit_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    char reason[64];
    int status = (int)(value & 0xff);
    snprintf(reason, sizeof reason, "guest wrote %d to the debug-exit port", status);
    machine_stop(opaque, VMCORE_EXIT_STATUS, status, reason);
}

static const struct machine_dev_ops debug_exit_ops = { debug_exit_read, debug_exit_write };

int debug_exit_init(struct machine *m)
{
    return machine_register_pio(m, 0xf4, 1, &debug_exit_ops, m, "debug-exit");
}
