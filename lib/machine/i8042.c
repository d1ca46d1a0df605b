/* The i8042 keyboard controller of a PC with nothing plugged into its keyboard and mouse
 * ports. The controller itself answers like a real one, so that Linux's probe finds it
 * (configuration byte, self tests, the AUX loopback, output port) and then finds no
 * devices: bytes sent to the keyboard or mouse come back as 0xFE with the status
 * register's time-out bit, as an AT controller reports a device that does not answer.
 * Command 0xFE (or any 0xF0-0xFF pulse of bit 0), or the output port written with bit 0
 * clear, pulses the CPU reset line: that ends the machine with status 0 (it does not
 * restart it). IRQ 1 (keyboard) and IRQ 12 (AUX) follow the output buffer as the
 * configuration byte enables them. */
#include <stddef.h>
#include <stdlib.h>

#include "machine_internal.h"

struct i8042 {
    struct machine_device dev;
    pthread_mutex_t lock;
    uint8_t ctr, status, out, outport;
    uint8_t pending;    /* controller command waiting for its data byte, or 0 */
    int irq1, irq12;    /* the levels last sent */
};

#define I8042_DATA 0x60
#define I8042_CMD 0x64

#define STR_OBF 0x01
#define STR_SYS 0x04
#define STR_CMD 0x08
#define STR_UNLOCKED 0x10
#define STR_AUXDATA 0x20
#define STR_TIMEOUT 0x40

#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_SYS 0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE 0x40

static void update_irqs(struct machine *m, struct i8042 *k)
{
    bool obf = k->status & STR_OBF, aux = k->status & STR_AUXDATA;
    int kbd = obf && !aux && (k->ctr & CTR_KBDINT);
    int mouse = obf && aux && (k->ctr & CTR_AUXINT);
    if (kbd != k->irq1) {
        k->irq1 = kbd;
        machine_irq_set(m, 1, kbd);
    }
    if (mouse != k->irq12) {
        k->irq12 = mouse;
        machine_irq_set(m, 12, mouse);
    }
}

/* A byte for the guest to read at port 0x60. */
static void output(struct machine *m, struct i8042 *k, uint8_t v, bool aux, bool timeout)
{
    k->out = v;
    k->status = (uint8_t)((k->status & ~(STR_AUXDATA | STR_TIMEOUT)) | STR_OBF |
                          (aux ? STR_AUXDATA : 0) | (timeout ? STR_TIMEOUT : 0));
    update_irqs(m, k);
}

static void reset_pulse(struct machine *m)
{
    machine_stop(m, VMCORE_EXIT_STATUS, 0, "reset via i8042");
}

static uint64_t i8042_read(void *opaque, uint64_t off, unsigned size, bool data)
{
    struct i8042 *k = opaque;
    struct machine *m = k->dev.m;
    uint8_t v;
    (void)off;
    (void)size;
    pthread_mutex_lock(&k->lock);
    if (data) {
        v = k->out;
        k->status &= (uint8_t)~(STR_OBF | STR_AUXDATA | STR_TIMEOUT);
        update_irqs(m, k);
    } else {
        v = (uint8_t)(k->status | STR_UNLOCKED | ((k->ctr & CTR_SYS) ? STR_SYS : 0));
    }
    pthread_mutex_unlock(&k->lock);
    return v;
}

static uint64_t i8042_data_read(void *opaque, uint64_t off, unsigned size)
{
    return i8042_read(opaque, off, size, true);
}

static uint64_t i8042_status_read(void *opaque, uint64_t off, unsigned size)
{
    return i8042_read(opaque, off, size, false);
}

static void i8042_data_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    struct i8042 *k = opaque;
    struct machine *m = k->dev.m;
    uint8_t v = (uint8_t)value, cmd;
    bool reset = false;
    (void)off;
    (void)size;
    pthread_mutex_lock(&k->lock);
    k->status &= (uint8_t)~STR_CMD;
    cmd = k->pending;
    k->pending = 0;
    switch (cmd) {
    case 0x60: k->ctr = v; update_irqs(m, k); break;   /* write configuration byte */
    case 0xd1: k->outport = v; reset = !(v & 1); break; /* write output port */
    case 0xd2: output(m, k, v, false, false); break;    /* as if from the keyboard */
    case 0xd3: output(m, k, v, true, false); break;     /* as if from the mouse */
    case 0xd4: output(m, k, 0xfe, true, true); break;   /* to the mouse: none there */
    default:
        /* to the keyboard, which enables its port; none there */
        k->ctr &= (uint8_t)~CTR_KBDDIS;
        output(m, k, 0xfe, false, true);
        break;
    }
    pthread_mutex_unlock(&k->lock);
    if (reset)
        reset_pulse(m);
}

static void i8042_cmd_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    struct i8042 *k = opaque;
    struct machine *m = k->dev.m;
    uint8_t v = (uint8_t)value;
    bool reset = false;
    (void)off;
    (void)size;
    pthread_mutex_lock(&k->lock);
    k->status |= STR_CMD;
    k->pending = 0;
    switch (v) {
    case 0x20: output(m, k, k->ctr, false, false); break;              /* read CTR */
    case 0x60: case 0xd1: case 0xd2: case 0xd3: case 0xd4: k->pending = v; break;
    case 0xa7: k->ctr |= CTR_AUXDIS; break;
    case 0xa8: k->ctr &= (uint8_t)~CTR_AUXDIS; break;
    case 0xa9: case 0xab: output(m, k, 0x00, false, false); break;     /* port tests pass */
    case 0xaa: output(m, k, 0x55, false, false); break;                /* self test */
    case 0xad: k->ctr |= CTR_KBDDIS; break;
    case 0xae: k->ctr &= (uint8_t)~CTR_KBDDIS; break;
    case 0xc0: output(m, k, 0xa0, false, false); break;                /* input port */
    case 0xd0: output(m, k, k->outport, false, false); break;         /* output port */
    default:
        if (v >= 0xf0 && !(v & 1))
            reset = true;       /* pulse output line 0: CPU reset */
        break;
    }
    pthread_mutex_unlock(&k->lock);
    if (reset)
        reset_pulse(m);
}

static const struct machine_dev_ops i8042_data_ops = { i8042_data_read, i8042_data_write };
static const struct machine_dev_ops i8042_cmd_ops = { i8042_status_read, i8042_cmd_write };

static struct i8042 *i8042_of(struct machine_device *dev)
{
    return (struct i8042 *)((char *)dev - offsetof(struct i8042, dev));
}

/* Caller holds the lock (or owns k alone): the state a BIOS leaves. */
static void power_on(struct i8042 *k)
{
    /* keyboard interrupt, POST passed, scancode translation */
    k->ctr = CTR_KBDINT | CTR_SYS | CTR_XLATE;
    k->status = k->out = k->pending = 0;
    k->outport = 0x03;      /* not in reset, A20 enabled */
}

static void i8042_reset(struct machine_device *dev)
{
    struct i8042 *k = i8042_of(dev);
    pthread_mutex_lock(&k->lock);
    power_on(k);
    update_irqs(dev->m, k);
    pthread_mutex_unlock(&k->lock);
}

static void i8042_destroy(struct machine_device *dev)
{
    struct i8042 *k = i8042_of(dev);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

/* Snapshot layout: ctr status out outport pending (u8 each), the IRQ 1 and 12 levels last
 * sent (u8 each, 0 or 1). */
static int i8042_save(struct machine_device *dev, struct snap_buf *b)
{
    struct i8042 *k = i8042_of(dev);
    pthread_mutex_lock(&k->lock);
    uint8_t v[7] = { k->ctr, k->status, k->out, k->outport, k->pending, (uint8_t)k->irq1,
                     (uint8_t)k->irq12 };
    pthread_mutex_unlock(&k->lock);
    snap_buf_put(b, v, sizeof v);
    return 0;
}

static int i8042_restore(struct machine_device *dev, struct snap_rd *r, int64_t shift_ns)
{
    struct i8042 *k = i8042_of(dev);
    uint8_t v[7];
    (void)shift_ns;
    if (!snap_rd_get(r, v, sizeof v))
        return VMCORE_EIMAGE;
    if (v[5] > 1 || v[6] > 1)
        return snap_rd_fail(r, "an IRQ level that is neither 0 nor 1");
    pthread_mutex_lock(&k->lock);
    k->ctr = v[0];
    k->status = v[1];
    k->out = v[2];
    k->outport = v[3];
    k->pending = v[4];
    k->irq1 = v[5];
    k->irq12 = v[6];
    pthread_mutex_unlock(&k->lock);
    return 0;
}

static const struct machine_device_ops i8042_device_ops = {
    .type = "i8042", .reset = i8042_reset, .destroy = i8042_destroy,
    .save = i8042_save, .restore = i8042_restore,
};

int i8042_init(struct machine *m)
{
    struct i8042 *k = calloc(1, sizeof *k);
    if (!k)
        return VMCORE_ENOMEM;
    if (pthread_mutex_init(&k->lock, NULL)) {
        free(k);
        return VMCORE_ENOMEM;
    }
    power_on(k);
    int rc = machine_irq_claim(m, 1, "i8042");
    if (rc == 0)
        rc = machine_irq_claim(m, 12, "i8042");
    if (rc == 0)
        rc = machine_device_add(m, &k->dev, &i8042_device_ops, "i8042");
    if (rc) {
        i8042_destroy(&k->dev);
        return rc;
    }
    /* From here the machine owns k. Two one-port ranges: 0x61 (the PIT's speaker/gate
     * port) stays free for a PIT model. */
    rc = machine_map(m, MACHINE_PIO, I8042_DATA, 1, &i8042_data_ops, k, "i8042-data", 0);
    return rc ? rc : machine_map(m, MACHINE_PIO, I8042_CMD, 1, &i8042_cmd_ops, k, "i8042-cmd", 0);
}
