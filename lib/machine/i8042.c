/* The slice of the i8042 keyboard controller guests use to reboot: command 0xFE on port
 * 0x64 pulses the CPU reset line. A reset ends the machine with status 0 (it does not
 * restart it). The status register reports an empty controller so that Linux's probe
 * and reboot paths do not spin. */
#include "machine_internal.h"

#define I8042_DATA 0x60
#define I8042_CMD 0x64
#define I8042_CMD_RESET 0xfe

static uint64_t i8042_read(void *opaque, uint64_t off, unsigned size)
{
    /* Data port: nothing to read. Status: output and input buffers empty. */
    return 0;
}

static void i8042_data_write(void *opaque, uint64_t off, unsigned size, uint64_t value) { }

static void i8042_cmd_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    if ((value & 0xff) == I8042_CMD_RESET)
        machine_stop(opaque, VMCORE_EXIT_STATUS, 0, "reset via i8042");
}

static const struct machine_dev_ops i8042_data_ops = { i8042_read, i8042_data_write };
static const struct machine_dev_ops i8042_cmd_ops = { i8042_read, i8042_cmd_write };

int i8042_init(struct machine *m)
{
    /* Two one-port ranges: 0x61 (the PIT's speaker/gate port) stays free for a PIT model. */
    int rc = machine_register_pio(m, I8042_DATA, 1, &i8042_data_ops, m, "i8042-data");
    return rc ? rc : machine_register_pio(m, I8042_CMD, 1, &i8042_cmd_ops, m, "i8042-cmd");
}
