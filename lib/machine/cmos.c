/* Minimal CMOS/RTC at ports 0x70/0x71: the clock reads the host's UTC time (BCD, 24-hour),
 * status registers say "update not in progress", and the memory-size bytes match RAM so
 * that firmware-style probes agree with the e820 map. Other bytes are plain storage. */
#include <time.h>

#include "machine_internal.h"

static uint8_t bcd(int v) { return (uint8_t)(((v / 10) << 4) | (v % 10)); }

static uint8_t cmos_get(struct machine *m, uint8_t index)
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
    default: return m->cmos[index & 0x7f];
    }
}

static uint64_t cmos_read(void *opaque, uint64_t off, unsigned size)
{
    struct machine *m = opaque;
    return off == 1 ? cmos_get(m, m->cmos_index) : 0xff;
}

static void cmos_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    struct machine *m = opaque;
    if (off == 0)
        m->cmos_index = value & 0x7f; /* bit 7 is the NMI mask */
    else if (m->cmos_index >= 0x0e)
        m->cmos[m->cmos_index] = (uint8_t)value;
}

static const struct machine_dev_ops cmos_ops = { cmos_read, cmos_write };

int cmos_init(struct machine *m)
{
    /* Extended memory in KiB above 1 MiB (0x17/0x18, 0x30/0x31, capped at 64 MiB - 1 MiB)
     * and in 64 KiB units above 16 MiB (0x34/0x35), as PC firmware reports it. */
    uint64_t ext_kib = m->ram_size > (1u << 20) ? (m->ram_size - (1u << 20)) >> 10 : 0;
    if (ext_kib > 0xffff)
        ext_kib = 0xffff;
    m->cmos[0x17] = m->cmos[0x30] = (uint8_t)ext_kib;
    m->cmos[0x18] = m->cmos[0x31] = (uint8_t)(ext_kib >> 8);
    uint64_t high = m->ram_size > (16u << 20) ? (m->ram_size - (16u << 20)) >> 16 : 0;
    if (high > 0xffff)
        high = 0xffff;
    m->cmos[0x34] = (uint8_t)high;
    m->cmos[0x35] = (uint8_t)(high >> 8);
    return machine_register_pio(m, 0x70, 2, &cmos_ops, m, "cmos");
}
