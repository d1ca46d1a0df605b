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

static void i8042_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    if (off == I8042_CMD - I8042_DATA && (value & 0xff) == I8042_CMD_RESET)
        machine_stop(opaque, VMCORE_EXIT_STATUS, 0, "reset via i8042");
}

static const struct machine_dev_ops i8042_ops = { i8042_read, i8042_write };

int i8042_init(struct machine *m)
{
    /* One range 0x60..0x64 keeps the bus small; 0x61..0x63 (PIT speaker, ...) read 0. */
    return machine_register_pio(m, I8042_DATA, 5, &i8042_ops, m, "i8042");
}
