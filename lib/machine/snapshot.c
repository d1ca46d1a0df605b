/* The machine's sections of a snapshot: see snapshot.h and doc/snapshot.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "machine_internal.h"
#include "snapshot.h"

#define PAGE 4096u
/* The longest run of pages one RAM section holds (keeps one CRC per 256 MiB at most). */
#define RAM_RUN_MAX_PAGES 65536u
#define DEVICE_STATE_VERSION 1

static int check_savable(struct machine *m, struct vmcore_err *err);

/* Every device's save runs once into a scratch buffer (the devices quiesced): a device that cannot be saved
 * (yet, or now) says so before a file exists. */
static void quiesce(struct machine *m, bool on);

int machine_check_savable(struct machine *m, struct vmcore_err *err)
{
    quiesce(m, true);
    int rc = check_savable(m, err);
    quiesce(m, false);
    return rc;
}

static int check_savable(struct machine *m, struct vmcore_err *err)
{
    for (struct machine_device *d = m->devices; d; d = d->next) {
        struct snap_buf b = { 0 };
        int rc = d->ops->save && d->ops->restore ? d->ops->save(d, &b) : VMCORE_ENOTSUP;
        bool oom = b.oom;
        snap_buf_free(&b);
        if (rc == VMCORE_ENOTSUP)
            return err_set(err, VMCORE_ENOTSUP,
                           "save: device '%s' (%s) cannot be saved yet: its state is not "
                           "part of the snapshot format (of the virtio devices only "
                           "virtio-rng is); nothing was written", d->name,
                           d->ops->type ? d->ops->type : "?");
        if (rc || oom)
            return err_set(err, oom ? VMCORE_ENOMEM : rc, "save: device '%s': %s", d->name,
                           vmcore_strerror(oom ? VMCORE_ENOMEM : rc));
    }
    return 0;
}

static void quiesce(struct machine *m, bool on)
{
    for (struct machine_device *d = m->devices; d; d = d->next)
        if (d->ops->quiesce)
            d->ops->quiesce(d, on);
}

static bool page_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)p;
    for (unsigned k = 0; k < PAGE / 8; k++)
        if (q[k])
            return false;
    return true;
}

static int save_ram(struct machine *m, struct snap_writer *w)
{
    uint64_t npages = m->ram_size / PAGE;
    uint64_t p = 0;
    while (p < npages) {
        if (page_zero(m->ram + p * PAGE)) {
            p++;
            continue;
        }
        uint64_t start = p;
        while (p < npages && p - start < RAM_RUN_MAX_PAGES && !page_zero(m->ram + p * PAGE))
            p++;
        uint8_t head[8];
        uint64_t gpa = start * PAGE;
        for (unsigned k = 0; k < 8; k++)
            head[k] = (uint8_t)(gpa >> (8 * k));
        int rc = snap_write_section2(w, SNAP_SEC_RAM, 0, head, sizeof head, m->ram + gpa,
                                     (size_t)((p - start) * PAGE));
        if (rc)
            return rc;
    }
    return 0;
}

int machine_save_info(struct machine *m, struct snap_writer *w,
                      const struct machine_snap_info *info)
{
    struct snap_buf b = { 0 };
    int rc;
    snap_buf_u32(&b, m->ncpus);
    snap_buf_u64(&b, m->ram_size);
    snap_buf_u64(&b, info->saved_ns);
    snap_buf_u32(&b, info->ncpuid);
    for (uint32_t k = 0; k < info->ncpuid && k < MACHINE_CPUID_MAX; k++) {
        const struct machine_cpuid *c = &info->cpuid[k];
        snap_buf_u32(&b, c->leaf);
        snap_buf_u32(&b, c->subleaf);
        for (unsigned j = 0; j < 4; j++)
            snap_buf_u32(&b, c->r[j]);
    }
    if (b.oom) {
        snap_buf_free(&b);
        return err_set(w->err, VMCORE_ENOMEM, "save: out of memory");
    }
    rc = snap_write_section(w, SNAP_SEC_MACHINE, 0, b.p, b.len);
    snap_buf_free(&b);
    return rc;
}

static int save_state(struct machine *m, struct snap_writer *w);

int machine_save_state(struct machine *m, struct snap_writer *w)
{
    quiesce(m, true);
    int rc = save_state(m, w);
    quiesce(m, false);
    return rc;
}

static int save_state(struct machine *m, struct snap_writer *w)
{
    struct snap_buf b = { 0 };
    int rc;
    uint32_t idx = 0;
    for (struct machine_device *d = m->devices; d; d = d->next, idx++) {
        if (!d->ops->save)
            return err_set(w->err, VMCORE_ENOTSUP, "save: device '%s' cannot be saved yet",
                           d->name);
        snap_buf_str(&b, d->name);
        snap_buf_str(&b, d->ops->type);
        snap_buf_u32(&b, DEVICE_STATE_VERSION);
        rc = d->ops->save(d, &b);
        if (!rc && b.oom)
            rc = err_set(w->err, VMCORE_ENOMEM, "save: out of memory for device '%s'",
                         d->name);
        else if (rc)
            rc = err_set(w->err, rc, "save: device '%s': %s", d->name, vmcore_strerror(rc));
        if (!rc)
            rc = snap_write_section(w, SNAP_SEC_DEVICE, idx, b.p, b.len);
        snap_buf_free(&b);
        if (rc)
            return rc;
    }
    return save_ram(m, w);
}

int machine_restore_info(struct machine *m, const struct snap_file *f,
                         struct machine_snap_info *info, int64_t *shift_ns,
                         struct vmcore_err *err)
{
    memset(info, 0, sizeof *info);
    *shift_ns = 0;
    const struct snap_section *s = snap_find(f, SNAP_SEC_MACHINE, 0);
    if (!s)
        return err_set(err, VMCORE_EIMAGE, "snapshot: no machine section (not a VM snapshot?)");
    struct snap_rd r;
    snap_rd_init(&r, s, "machine", err);
    info->ncpus = snap_rd_u32(&r);
    info->ram_size = snap_rd_u64(&r);
    info->saved_ns = snap_rd_u64(&r);
    info->ncpuid = snap_rd_u32(&r);
    if (r.failed)
        return VMCORE_EIMAGE;
    if (info->ncpuid > MACHINE_CPUID_MAX)
        return snap_rd_fail(&r, "%u CPUID leaves (at most %u)", info->ncpuid,
                            MACHINE_CPUID_MAX);
    for (uint32_t k = 0; k < info->ncpuid; k++) {
        struct machine_cpuid *c = &info->cpuid[k];
        c->leaf = snap_rd_u32(&r);
        c->subleaf = snap_rd_u32(&r);
        for (unsigned j = 0; j < 4; j++)
            c->r[j] = snap_rd_u32(&r);
    }
    int rc = snap_rd_end(&r);
    if (rc)
        return rc;
    if (info->ram_size != m->ram_size)
        return err_set(err, VMCORE_EIMAGE, "snapshot: section machine, file offset %llu: RAM "
                       "is %llu bytes, the configuration gives %llu (memory_mib %llu)",
                       (unsigned long long)s->offset + 4,
                       (unsigned long long)info->ram_size, (unsigned long long)m->ram_size,
                       (unsigned long long)(m->ram_size >> 20));
    if (info->ncpus != m->ncpus)
        return err_set(err, VMCORE_EIMAGE, "snapshot: section machine, file offset %llu: %u "
                       "vCPUs, the configuration gives %u", (unsigned long long)s->offset,
                       info->ncpus, m->ncpus);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    /* Restored on the same boot, the host's clock has only moved on: timers are as after
     * a pause that long. After another boot it may be behind the save time: move every
     * timestamp so that none lies in the future. */
    if (now < info->saved_ns)
        *shift_ns = (int64_t)(now - info->saved_ns);
    return 0;
}

static int restore_device(struct machine_device *d, const struct snap_section *s,
                          int64_t shift_ns, struct vmcore_err *err)
{
    char what[64];
    snprintf(what, sizeof what, "device %u ('%s')", s->instance, d->name);
    struct snap_rd r;
    snap_rd_init(&r, s, what, err);
    char *name = snap_rd_str(&r, 63);
    char *type = name ? snap_rd_str(&r, 63) : NULL;
    uint32_t version = snap_rd_u32(&r);
    int rc = 0;
    if (r.failed)
        rc = err->code ? err->code : VMCORE_EIMAGE;
    else if (strcmp(name, d->name) != 0)
        rc = snap_rd_fail(&r, "the device is '%s', this machine has '%s' in that place", name,
                          d->name);
    else if (strcmp(type, d->ops->type ? d->ops->type : "") != 0)
        rc = snap_rd_fail(&r, "type '%s', this machine's device is '%s'", type,
                          d->ops->type);
    else if (version != DEVICE_STATE_VERSION)
        rc = snap_rd_fail(&r, "device state version %u (this library reads %u)", version,
                          DEVICE_STATE_VERSION);
    free(name);
    free(type);
    if (rc)
        return rc;
    if (!d->ops->restore)
        return err_set(err, VMCORE_ENOTSUP, "restore: device '%s' cannot be restored yet",
                       d->name);
    rc = d->ops->restore(d, &r, shift_ns);
    if (rc) {
        if (!r.failed)
            snap_rd_fail(&r, "%s", vmcore_strerror(rc));
        return VMCORE_EIMAGE;
    }
    return snap_rd_end(&r);
}

static int restore_ram(struct machine *m, const struct snap_file *f, struct vmcore_err *err)
{
    uint64_t next = 0;
    for (size_t k = 0; k < f->nsec; k++) {
        const struct snap_section *s = &f->sec[k];
        if (s->type != SNAP_SEC_RAM)
            continue;
        struct snap_rd r;
        snap_rd_init(&r, s, "ram", err);
        uint64_t gpa = snap_rd_u64(&r);
        if (r.failed)
            return VMCORE_EIMAGE;
        uint64_t n = s->len - 8;
        if (s->instance != 0)
            return snap_rd_fail(&r, "instance %u (RAM sections have 0)", s->instance);
        if (gpa % PAGE || n % PAGE || n == 0)
            return snap_rd_fail(&r, "a run at 0x%llx of %llu bytes: not whole pages",
                                (unsigned long long)gpa, (unsigned long long)n);
        if (gpa < next)
            return snap_rd_fail(&r, "a run at 0x%llx overlaps or precedes the one before "
                                "(which ends at 0x%llx)", (unsigned long long)gpa,
                                (unsigned long long)next);
        if (gpa > m->ram_size || n > m->ram_size - gpa)
            return snap_rd_fail(&r, "a run at 0x%llx of %llu bytes ends past RAM (%llu bytes)",
                                (unsigned long long)gpa, (unsigned long long)n,
                                (unsigned long long)m->ram_size);
        memcpy(m->ram + gpa, s->data + 8, (size_t)n);
        next = gpa + n;
    }
    return 0;
}

int machine_restore(struct machine *m, const struct snap_file *f, int64_t shift_ns,
                    struct vmcore_err *err)
{
    uint32_t idx = 0;
    int rc;
    for (struct machine_device *d = m->devices; d; d = d->next, idx++) {
        const struct snap_section *s = snap_find(f, SNAP_SEC_DEVICE, idx);
        if (!s)
            return err_set(err, VMCORE_EIMAGE, "snapshot: no section for device %u ('%s'): the "
                           "snapshot was taken of another machine", idx, d->name);
        if ((rc = restore_device(d, s, shift_ns, err)))
            return rc;
    }
    uint32_t seen = 0;
    for (size_t k = 0; k < f->nsec; k++)
        if (f->sec[k].type == SNAP_SEC_DEVICE && (f->sec[k].instance >= idx || ++seen > idx))
            return err_set(err, VMCORE_EIMAGE, "snapshot: file offset %llu: device section %u "
                           "is one too many: this machine has %u devices",
                           (unsigned long long)f->sec[k].offset, f->sec[k].instance, idx);
    return restore_ram(m, f, err);
}
