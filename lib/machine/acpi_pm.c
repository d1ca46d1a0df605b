/* The ACPI fixed-hardware PM block (ACPI 6.x chapter 4.8) at PLAT_PM_BASE: PM1a event
 * (status, enable) and control registers, the PM timer, and an empty GPE0 block; the SCI
 * on ISA IRQ 9. What it gives the guest:
 *   - the fixed-feature power button: acpi_pm_power_button() sets PWRBTN_STS and raises
 *     the SCI when the guest enabled PWRBTN_EN (an OS with an ACPI button driver does);
 *   - S5: SLP_EN written with SLP_TYP = PLAT_SLP_TYP_S5 (the DSDT's _S5) ends the
 *     machine with status 0, "powered off". Other sleep types are not offered by the
 *     DSDT; a guest that writes one anyway keeps running, as if woken at once (WAK_STS
 *     set; counted);
 *   - the PM timer: 24 bits at 3.579545 MHz from CLOCK_MONOTONIC (TMR_VAL_EXT clear).
 *     TMR_STS (the carry of bit 23) is brought up to date on each access to the block
 *     rather than by a host timer, so its SCI comes when the guest next touches the block;
 *     no OS relies on it (Linux reads the timer as a clock source only).
 * SMI_CMD is 0 in the FADT: ACPI mode is always on and SCI_EN reads as set.
 *
 * Any access size at any offset works a byte at a time (a word write to PM1_CNT is its
 * low byte then its high byte, which holds SLP_TYP and SLP_EN together). The power button
 * is pressed from the library's loop thread while vCPUs run: one mutex guards it all. */
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

#include "machine_internal.h"
#include "platform.h"

#define PM1_TMR (1u << 0)        /* TMR_STS / TMR_EN */
#define PM1_PWRBTN (1u << 8)     /* PWRBTN_STS / PWRBTN_EN */
#define PM1_WAK_STS (1u << 15)
#define PM1_CNT_SCI_EN (1u << 0)
#define PM1_CNT_GBL_RLS (1u << 2)  /* write-only: an SMI to firmware (there is none) */
#define PM1_CNT_SLP_TYP_SHIFT 10
#define PM1_CNT_SLP_EN (1u << 13)  /* write-only */
#define PM_TIMER_HZ 3579545ull

/* Register offsets from PLAT_PM_BASE. */
#define OFF_PM1_STS (PLAT_PM1A_EVT - PLAT_PM_BASE)
#define OFF_PM1_EN (OFF_PM1_STS + 2)
#define OFF_PM1_CNT (PLAT_PM1A_CNT - PLAT_PM_BASE)
#define OFF_PM_TMR (PLAT_PM_TMR - PLAT_PM_BASE)
#define OFF_GPE0_STS (PLAT_GPE0 - PLAT_PM_BASE)
#define OFF_GPE0_EN (OFF_GPE0_STS + 2)
/* Two ranges, so that the gaps between the blocks stay unclaimed. */
#define PM1_RANGE_LEN (OFF_PM_TMR + 4)
#define GPE0_RANGE_LEN 4

struct acpi_pm {
    struct machine_device dev;
    struct machine *m;
    pthread_mutex_t lock;
    uint16_t sts, en, cnt;
    uint16_t gpe_sts, gpe_en;
    bool sci;                   /* the level last sent */
    uint64_t tmr_period;        /* timer value >> 23 when TMR_STS was last brought up */
    uint64_t sleeps_ignored;    /* SLP_EN with a sleep type other than S5 */
};

static uint64_t pm_timer_ticks(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* Split so that the product cannot overflow however long the host has run. */
    return (uint64_t)ts.tv_sec * PM_TIMER_HZ +
           (uint64_t)ts.tv_nsec * PM_TIMER_HZ / 1000000000ull;
}

/* Caller holds the lock. */
static void pm_update_sci(struct acpi_pm *pm)
{
    bool level = (pm->sts & pm->en & (PM1_PWRBTN | PM1_TMR)) || (pm->gpe_sts & pm->gpe_en);
    if (level != pm->sci) {
        pm->sci = level;
        machine_irq_set(pm->m, PLAT_SCI_IRQ, level);
    }
}

/* Caller holds the lock: TMR_STS is set once bit 23 of the counter has changed. */
static void pm_update_timer(struct acpi_pm *pm, uint64_t ticks)
{
    uint64_t period = ticks >> 23;
    if (period != pm->tmr_period) {
        pm->tmr_period = period;
        pm->sts |= PM1_TMR;
    }
}

static uint8_t reg_byte(const struct acpi_pm *pm, unsigned off, uint32_t tmr)
{
    switch (off) {
    case OFF_PM1_STS: return (uint8_t)pm->sts;
    case OFF_PM1_STS + 1: return (uint8_t)(pm->sts >> 8);
    case OFF_PM1_EN: return (uint8_t)pm->en;
    case OFF_PM1_EN + 1: return (uint8_t)(pm->en >> 8);
    case OFF_PM1_CNT: return (uint8_t)(pm->cnt | PM1_CNT_SCI_EN);
    case OFF_PM1_CNT + 1: return (uint8_t)(pm->cnt >> 8);
    case OFF_PM_TMR: return (uint8_t)tmr;
    case OFF_PM_TMR + 1: return (uint8_t)(tmr >> 8);
    case OFF_PM_TMR + 2: return (uint8_t)(tmr >> 16);
    case OFF_PM_TMR + 3: return 0;                 /* bits 31:24 of a 24-bit timer */
    case OFF_GPE0_STS: return (uint8_t)pm->gpe_sts;
    case OFF_GPE0_STS + 1: return (uint8_t)(pm->gpe_sts >> 8);
    case OFF_GPE0_EN: return (uint8_t)pm->gpe_en;
    case OFF_GPE0_EN + 1: return (uint8_t)(pm->gpe_en >> 8);
    default: return 0xff;                          /* past the end of a range */
    }
}

static void set_byte(uint16_t *reg, unsigned hi, uint8_t v)
{
    *reg = hi ? (uint16_t)((*reg & 0x00ff) | (v << 8)) : (uint16_t)((*reg & 0xff00) | v);
}

/* One byte written; returns true when it put the machine into S5. */
static bool write_byte(struct acpi_pm *pm, unsigned off, uint8_t v)
{
    switch (off) {
    case OFF_PM1_STS: pm->sts &= (uint16_t)~v; break;          /* write 1 to clear */
    case OFF_PM1_STS + 1: pm->sts &= (uint16_t)~(v << 8); break;
    case OFF_PM1_EN: case OFF_PM1_EN + 1: set_byte(&pm->en, off - OFF_PM1_EN, v); break;
    case OFF_PM1_CNT:
        set_byte(&pm->cnt, 0, (uint8_t)(v & ~(PM1_CNT_SCI_EN | PM1_CNT_GBL_RLS)));
        break;
    case OFF_PM1_CNT + 1: {
        uint16_t hi = (uint16_t)(v << 8);
        set_byte(&pm->cnt, 1, (uint8_t)((hi & ~PM1_CNT_SLP_EN) >> 8));
        if (hi & PM1_CNT_SLP_EN) {
            unsigned typ = (hi >> PM1_CNT_SLP_TYP_SHIFT) & 7;
            if (typ == PLAT_SLP_TYP_S5)
                return true;
            /* The DSDT offers no S1..S4: a no-op, woken at once. WAK_STS tells the OS so
             * (ACPICA polls it after entering S1..S4 and would otherwise wait forever). */
            pm->sleeps_ignored++;
            pm->sts |= PM1_WAK_STS;
        }
        break;
    }
    case OFF_GPE0_STS: case OFF_GPE0_STS + 1:
        pm->gpe_sts &= (uint16_t)~(v << (8 * (off - OFF_GPE0_STS)));
        break;
    case OFF_GPE0_EN: case OFF_GPE0_EN + 1: set_byte(&pm->gpe_en, off - OFF_GPE0_EN, v); break;
    default: break;                                /* the timer is read-only */
    }
    return false;
}

/* @base: the range's offset from PLAT_PM_BASE; @len: the range's length. */
static uint64_t pm_read(struct acpi_pm *pm, unsigned base, unsigned len, uint64_t off,
                        unsigned size)
{
    uint64_t ticks = pm_timer_ticks(), v = 0;
    uint32_t tmr = (uint32_t)(ticks & 0xffffff);
    if (size > 8)
        size = 8;
    pthread_mutex_lock(&pm->lock);
    pm_update_timer(pm, ticks);
    for (unsigned i = 0; i < size; i++) {
        uint8_t b = off + i < len ? reg_byte(pm, base + (unsigned)off + i, tmr) : 0xff;
        v |= (uint64_t)b << (8 * i);
    }
    pm_update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
    return v;
}

static void pm_write(struct acpi_pm *pm, unsigned base, unsigned len, uint64_t off,
                     unsigned size, uint64_t value)
{
    bool s5 = false;
    if (size > 8)
        size = 8;
    pthread_mutex_lock(&pm->lock);
    pm_update_timer(pm, pm_timer_ticks());
    for (unsigned i = 0; i < size && off + i < len; i++)
        s5 |= write_byte(pm, base + (unsigned)off + i, (uint8_t)(value >> (8 * i)));
    pm_update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
    if (s5)
        machine_stop(pm->m, VMCORE_EXIT_STATUS, 0, "powered off");
}

static uint64_t pm1_read(void *opaque, uint64_t off, unsigned size)
{
    return pm_read(opaque, 0, PM1_RANGE_LEN, off, size);
}

static void pm1_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    pm_write(opaque, 0, PM1_RANGE_LEN, off, size, value);
}

static uint64_t gpe0_read(void *opaque, uint64_t off, unsigned size)
{
    return pm_read(opaque, OFF_GPE0_STS, GPE0_RANGE_LEN, off, size);
}

static void gpe0_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    pm_write(opaque, OFF_GPE0_STS, GPE0_RANGE_LEN, off, size, value);
}

static const struct machine_dev_ops pm1_ops = { pm1_read, pm1_write };
static const struct machine_dev_ops gpe0_ops = { gpe0_read, gpe0_write };

static struct acpi_pm *pm_of(struct machine_device *dev)
{
    return (struct acpi_pm *)((char *)dev - offsetof(struct acpi_pm, dev));
}

static void pm_reset(struct machine_device *dev)
{
    struct acpi_pm *pm = pm_of(dev);
    pthread_mutex_lock(&pm->lock);
    pm->sts = pm->en = pm->cnt = pm->gpe_sts = pm->gpe_en = 0;
    pm->tmr_period = pm_timer_ticks() >> 23;
    pm_update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
}

static void pm_destroy(struct machine_device *dev)
{
    struct acpi_pm *pm = pm_of(dev);
    pthread_mutex_destroy(&pm->lock);
    free(pm);
}

/* Snapshot layout: PM1 status, enable, control, GPE0 status, enable (u16 each), the SCI
 * level last sent (u8), the timer period last seen (u64: PM timer >> 23; the timer itself
 * follows the host's clock), sleeps ignored (u64). */
static int pm_save(struct machine_device *dev, struct snap_buf *b)
{
    struct acpi_pm *pm = pm_of(dev);
    pthread_mutex_lock(&pm->lock);
    snap_buf_u16(b, pm->sts);
    snap_buf_u16(b, pm->en);
    snap_buf_u16(b, pm->cnt);
    snap_buf_u16(b, pm->gpe_sts);
    snap_buf_u16(b, pm->gpe_en);
    snap_buf_u8(b, pm->sci);
    snap_buf_u64(b, pm->tmr_period);
    snap_buf_u64(b, pm->sleeps_ignored);
    pthread_mutex_unlock(&pm->lock);
    return 0;
}

static int pm_restore(struct machine_device *dev, struct snap_rd *r, int64_t shift_ns)
{
    struct acpi_pm *pm = pm_of(dev);
    uint16_t v[5];
    for (unsigned k = 0; k < 5; k++)
        v[k] = snap_rd_u16(r);
    uint8_t sci = snap_rd_u8(r);
    uint64_t period = snap_rd_u64(r), ignored = snap_rd_u64(r);
    if (r->failed)
        return VMCORE_EIMAGE;
    if (sci > 1)
        return snap_rd_fail(r, "an SCI level that is neither 0 nor 1");
    pthread_mutex_lock(&pm->lock);
    pm->sts = v[0];
    pm->en = v[1];
    pm->cnt = v[2];
    pm->gpe_sts = v[3];
    pm->gpe_en = v[4];
    pm->sci = sci;
    /* the timer is the host's clock: after another boot the old period means nothing */
    pm->tmr_period = shift_ns ? pm_timer_ticks() >> 23 : period;
    pm->sleeps_ignored = ignored;
    pthread_mutex_unlock(&pm->lock);
    return 0;
}

static const struct machine_device_ops acpi_pm_device_ops = {
    .type = "acpi-pm", .reset = pm_reset, .destroy = pm_destroy,
    .save = pm_save, .restore = pm_restore,
};

int acpi_pm_init(struct machine *m)
{
    struct acpi_pm *pm = calloc(1, sizeof *pm);
    if (!pm)
        return VMCORE_ENOMEM;
    if (pthread_mutex_init(&pm->lock, NULL)) {
        free(pm);
        return VMCORE_ENOMEM;
    }
    pm->m = m;
    pm->tmr_period = pm_timer_ticks() >> 23;
    int rc = machine_irq_claim(m, PLAT_SCI_IRQ, "acpi-pm");
    if (rc == 0)
        rc = machine_device_add(m, &pm->dev, &acpi_pm_device_ops, "acpi-pm");
    if (rc) {
        pm_destroy(&pm->dev);
        return rc;
    }
    /* From here the machine owns pm (destroy frees it, ranges and all). */
    if ((rc = machine_map(m, MACHINE_PIO, PLAT_PM_BASE, PM1_RANGE_LEN, &pm1_ops, pm,
                          "acpi-pm1", 0)))
        return rc;
    return machine_map(m, MACHINE_PIO, PLAT_GPE0, GPE0_RANGE_LEN, &gpe0_ops, pm,
                       "acpi-gpe0", 0);
}

bool acpi_pm_power_button(struct machine *m)
{
    struct machine_device *dev = machine_device_find(m, "acpi-pm");
    if (!dev || dev->ops != &acpi_pm_device_ops)
        return false;
    struct acpi_pm *pm = pm_of(dev);
    pthread_mutex_lock(&pm->lock);
    bool listens = pm->en & PM1_PWRBTN;
    if (listens) {
        pm->sts |= PM1_PWRBTN;
        pm_update_sci(pm);
    }
    pthread_mutex_unlock(&pm->lock);
    return listens;
}
