/* Minimal CMOS/RTC at ports 0x70/0x71: the clock reads the host's UTC time (BCD, 24-hour),
 * status registers say "update not in progress", and the memory-size bytes match RAM so
 * that firmware-style probes agree with the e820 map. Other bytes are plain storage. */
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

#include "machine_internal.h"

struct cmos {
    struct machine_device dev;
    pthread_mutex_t lock;   /* the index register is shared by every vCPU */
    uint8_t index;
    uint8_t bytes[128];
};

static uint8_t bcd(int v) { return (uint8_t)(((v / 10) << 4) | (v % 10)); }

static uint8_t cmos_get(const struct cmos *c, uint8_t index)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    switch (index) {
    case 0x00: return bcd(tm.tm_sec);
    case 0x02: return bcd(tm.tm_min);
    case 0x04: return bcd(tm.tm_hour);
    case 0x06: return bcd(tm.tm_wday + 1);
    case 0x07: return bcd(tm.tm_mday);
    case 0x08: return bcd(tm.tm_mon + 1);
    case 0x09: return bcd(tm.tm_year % 100);
    case 0x32: return bcd(19 + tm.tm_year / 100);
    case 0x0a: return 0x26;     /* UIP clear, 32.768 kHz base, 1024 Hz rate */
    case 0x0b: return 0x02;     /* BCD, 24-hour */
    case 0x0c: return 0x00;
    case 0x0d: return 0x80;     /* valid RAM and time */
    default: return c->bytes[index & 0x7f];
    }
}

static uint64_t cmos_read(void *opaque, uint64_t off, unsigned size)
{
    struct cmos *c = opaque;
    if (off != 1)
        return 0xff;
    pthread_mutex_lock(&c->lock);
    uint8_t v = cmos_get(c, c->index);
    pthread_mutex_unlock(&c->lock);
    return v;
}

static void cmos_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    struct cmos *c = opaque;
    pthread_mutex_lock(&c->lock);
    if (off == 0)
        c->index = value & 0x7f; /* bit 7 is the NMI mask */
    else if (c->index >= 0x0e)
        c->bytes[c->index] = (uint8_t)value;
    pthread_mutex_unlock(&c->lock);
}

static const struct machine_dev_ops cmos_ops = { cmos_read, cmos_write };

static void cmos_destroy(struct machine_device *dev)
{
    struct cmos *c = (struct cmos *)((char *)dev - offsetof(struct cmos, dev));
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* The CMOS keeps its bytes over a reset (it is battery-backed). */
/* Snapshot layout: the index register (u8), the 128 bytes. The clock bytes are read from
 * the host's time, not from these. */
static int cmos_save(struct machine_device *dev, struct snap_buf *b)
{
    struct cmos *c = (struct cmos *)((char *)dev - offsetof(struct cmos, dev));
    pthread_mutex_lock(&c->lock);
    snap_buf_u8(b, c->index);
    snap_buf_put(b, c->bytes, sizeof c->bytes);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

static int cmos_restore(struct machine_device *dev, struct snap_rd *r, int64_t shift_ns)
{
    struct cmos *c = (struct cmos *)((char *)dev - offsetof(struct cmos, dev));
    (void)shift_ns;
    pthread_mutex_lock(&c->lock);
    c->index = snap_rd_u8(r);
    snap_rd_get(r, c->bytes, sizeof c->bytes);
    pthread_mutex_unlock(&c->lock);
    return r->failed ? VMCORE_EIMAGE : 0;
}

static const struct machine_device_ops cmos_device_ops = {
    .type = "cmos", .destroy = cmos_destroy, .save = cmos_save, .restore = cmos_restore,
};

int cmos_init(struct machine *m)
{
    struct cmos *c = calloc(1, sizeof *c);
    if (!c)
        return VMCORE_ENOMEM;
    if (pthread_mutex_init(&c->lock, NULL)) {
        free(c);
        return VMCORE_ENOMEM;
    }
    /* Extended memory in KiB above 1 MiB (0x17/0x18, 0x30/0x31, capped at 64 MiB - 1 MiB)
     * and in 64 KiB units above 16 MiB (0x34/0x35), as PC firmware reports it. */
    uint64_t ram_size = machine_ram_size(m);
    uint64_t ext_kib = ram_size > (1u << 20) ? (ram_size - (1u << 20)) >> 10 : 0;
    if (ext_kib > 0xffff)
        ext_kib = 0xffff;
    c->bytes[0x17] = c->bytes[0x30] = (uint8_t)ext_kib;
    c->bytes[0x18] = c->bytes[0x31] = (uint8_t)(ext_kib >> 8);
    uint64_t high = ram_size > (16u << 20) ? (ram_size - (16u << 20)) >> 16 : 0;
    if (high > 0xffff)
        high = 0xffff;
    c->bytes[0x34] = (uint8_t)high;
    c->bytes[0x35] = (uint8_t)(high >> 8);
    int rc = machine_device_add(m, &c->dev, &cmos_device_ops, "cmos");
    if (rc) {
        cmos_destroy(&c->dev);
        return rc;
    }
    return machine_map(m, MACHINE_PIO, 0x70, 2, &cmos_ops, c, "cmos", 0);
}
