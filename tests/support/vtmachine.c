#include "vtmachine.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

void vt_machine_prepare(struct vt_machine *vm, uint64_t memory_mib, unsigned vcpus)
{
    memset(vm, 0, sizeof *vm);
    snprintf(vm->path, sizeof vm->path, "/tmp/vmcore-machine-XXXXXX");
    int fd = mkstemp(vm->path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\xf4", 1), 1);
    close(fd);
    vm->cfg.memory_mib = memory_mib;
    vm->cfg.vcpus = vcpus;
    vm->cfg.boot.kernel = vm->path;
    vm->cfg.boot.format = BOOT_FORMAT_RAW;
    vm->cfg.boot.mode = BOOT_MODE_PROTECTED;
}

void vt_machine_start(struct vt_machine *vm)
{
    struct vmcore_err err = { 0 };
    int rc = machine_create(&vm->m, &vm->cfg, NULL, &err);
    if (rc)
        fail_msg("machine_create: %s", err.msg);
}

void vt_machine_create(struct vt_machine *vm, uint64_t memory_mib, unsigned vcpus)
{
    vt_machine_prepare(vm, memory_mib, vcpus);
    vt_machine_start(vm);
}

void vt_machine_destroy(struct vt_machine *vm)
{
    machine_destroy(vm->m);
    vm->m = NULL;
    if (vm->path[0])
        unlink(vm->path);
    vm->path[0] = 0;
}

void vt_record_console(void *events, const void *data, size_t len)
{
    struct vt_events *e = events;
    size_t room = sizeof e->out - e->outlen;
    memcpy(e->out + e->outlen, data, len < room ? len : room);
    e->outlen += len < room ? len : room;
    e->console_events++;
}

void vt_record_exit(void *events, vmcore_exit_kind kind, int status, const char *reason)
{
    struct vt_events *e = events;
    e->exits++;
    e->kind = kind;
    e->status = status;
    snprintf(e->reason, sizeof e->reason, "%s", reason ? reason : "");
}

void vt_record_irq(void *events, unsigned gsi, int level)
{
    struct vt_events *e = events;
    if (gsi < MACHINE_GSI_COUNT)
        e->irq_level[gsi] = level;
    e->irq_changes++;
}

uint64_t vt_pio_read(struct machine *m, uint16_t port, unsigned size)
{
    uint64_t v = 0;
    machine_pio(m, port, false, size, &v);
    return v;
}

void vt_pio_write(struct machine *m, uint16_t port, unsigned size, uint64_t value)
{
    machine_pio(m, port, true, size, &value);
}

uint64_t vt_mmio_read(struct machine *m, uint64_t gpa, unsigned size)
{
    uint64_t v = 0;
    machine_mmio(m, gpa, false, size, &v);
    return v;
}

void vt_mmio_write(struct machine *m, uint64_t gpa, unsigned size, uint64_t value)
{
    machine_mmio(m, gpa, true, size, &value);
}
