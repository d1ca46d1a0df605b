/* Debug-exit port 0xf4 (QEMU's isa-debug-exit at the same port, but the status is the byte
 * itself): a byte written there ends the machine with that exit status. */
#include <stdio.h>
#include <stdlib.h>

#include "machine_internal.h"

/* No state: the device is there for the machine's list (and its destroy). */
struct debug_exit {
    struct machine_device dev;
};

static uint64_t debug_exit_read(void *opaque, uint64_t off, unsigned size)
{
    return ~0ull;
}

static void debug_exit_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    char reason[64];
    int status = (int)(value & 0xff);
    snprintf(reason, sizeof reason, "guest wrote %d to the debug-exit port", status);
    machine_stop(((struct debug_exit *)opaque)->dev.m, VMCORE_EXIT_STATUS, status, reason);
}

static const struct machine_dev_ops debug_exit_ops = { debug_exit_read, debug_exit_write };

static void debug_exit_destroy(struct machine_device *dev)
{
    free(dev); /* dev is the first member */
}

/* Stateless: an empty snapshot payload. */
static int debug_exit_save(struct machine_device *dev, struct snap_buf *b)
{
    (void)dev;
    (void)b;
    return 0;
}

static int debug_exit_restore(struct machine_device *dev, struct snap_rd *r, int64_t shift_ns)
{
    (void)dev;
    (void)r;
    (void)shift_ns;
    return 0;
}

static const struct machine_device_ops debug_exit_device_ops = {
    .save = debug_exit_save,
    .restore = debug_exit_restore,
    .type = "debug-exit", .destroy = debug_exit_destroy,
};

int debug_exit_init(struct machine *m)
{
    struct debug_exit *d = calloc(1, sizeof *d);
    if (!d)
        return VMCORE_ENOMEM;
    int rc = machine_device_add(m, &d->dev, &debug_exit_device_ops, "debug-exit");
    if (rc) {
        free(d);
        return rc;
    }
    return machine_map(m, MACHINE_PIO, 0xf4, 1, &debug_exit_ops, d, "debug-exit", 0);
}
