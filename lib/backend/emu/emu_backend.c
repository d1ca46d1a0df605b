/* The emu backend: the shared x86 machine (lib/machine) run by our own CPU emulator
 * (lib/cpu) on one host thread per vCPU, with emulated interrupt controllers and timers
 * (lib/machine/emu_irqchip.c: PIC, PIT, IOAPIC, local APIC). Port I/O and MMIO
 * leave the CPU through callbacks into the same machine_pio()/machine_mmio() code the kvm
 * backend calls on its exits. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/backend.h"
#include "cpu/cpu.h"
#include "machine/emu_irqchip.h"
#include "machine/machine.h"
#include "machine/snapshot.h"
#include "machine/vcpus.h"

/* Instructions per cpu_run() slice: bounds how late a timer tick is noticed. */
#define EMU_SLICE 200000
/* How long console output may wait for its newline while the guest runs. */
#define EMU_CONSOLE_DEADLINE_NS 20000000ull

struct emu_vm {
    vmcore_domain *domain;
    struct machine *m;
    struct cpu *cpu;
    struct emu_irqchip *irq;

    /* The vCPU thread: pause/resume/stop, the recorded exit (the machine's event sink)
     * and CPU time (lib/machine/vcpus.h). */
    struct vcpus ctl;
    /* The halted vCPU's sleep, woken by an interrupt or a kick. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool sync_init;

    /* Guest pages devices wrote behind the CPU's back (DMA), one bit per page, and whether
     * any bit is set: the vCPU thread drops translated code there before its next block
     * (emu_code_written, apply_dma_writes). */
    _Atomic uint64_t *dma_dirty;
    size_t dma_words;
    atomic_bool dma_pending;

    /* published by the vCPU thread after every slice */
    _Atomic uint64_t instructions, tc_hits, tc_misses, jit_blocks;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- CPU callbacks (vCPU thread) ---- */

static int emu_pio(void *opaque, uint16_t port, bool is_write, unsigned size, void *data)
{
    struct emu_vm *vm = opaque;
    if (machine_pio(vm->m, port, is_write, size, data) == MACHINE_STOP)
        return 1;
    /* A full console queue stops the vCPU here, at the UART write that filled it, until
     * the loop has delivered the output (or a pause or the end interrupts the wait). */
    machine_console_wait(vm->m, vcpus_console_stop, &vm->ctl);
    return vcpus_stopping(&vm->ctl);
}

static int emu_mmio(void *opaque, uint64_t gpa, bool is_write, unsigned size, void *data)
{
    struct emu_vm *vm = opaque;
    return machine_mmio(vm->m, gpa, is_write, size, data) == MACHINE_STOP ||
           vcpus_stopping(&vm->ctl);
}

static int emu_intr_ack(void *opaque)
{
    struct emu_vm *vm = opaque;
    return emu_irqchip_ack(vm->irq, 0);
}

/* ---- interrupt wiring (any thread) ---- */

/* vCPU @cpu's INTR input may have changed (the irqchip's hook, run with one of its chips'
 * locks held: emu_irqchip_pending is lock-free). One vCPU: @cpu is 0. */
static void emu_update_intr(void *opaque, unsigned cpu)
{
    struct emu_vm *vm = opaque;
    bool level = emu_irqchip_pending(vm->irq, cpu);
    cpu_set_intr(vm->cpu, level);
    if (level) {
        pthread_mutex_lock(&vm->lock);
        pthread_cond_broadcast(&vm->cond);
        pthread_mutex_unlock(&vm->lock);
    }
}

/* Out of cpu_run() at its next check, and out of the halt wait. */
static void emu_kick(void *opaque, unsigned idx, pthread_t thread)
{
    struct emu_vm *vm = opaque;
    cpu_kick(vm->cpu);
    pthread_mutex_lock(&vm->lock);
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
}

/* ---- the vCPU thread ---- */

static void publish_stats(struct emu_vm *vm)
{
    struct cpu_stats s;
    cpu_get_stats(vm->cpu, &s);
    atomic_store(&vm->instructions, s.instructions);
    atomic_store(&vm->tc_hits, s.tcache_hits);
    atomic_store(&vm->tc_misses, s.tcache_misses);
    atomic_store(&vm->jit_blocks, s.jit_blocks);
}

/* Output the guest wrote before a pause is out while it is paused. */
static void emu_parking(void *opaque, unsigned idx)
{
    struct emu_vm *vm = opaque;
    machine_console_flush(vm->m);
}

/* Halted: sleep until an interrupt can wake the CPU, the next timer edge, or a request. */
static void wait_halted(struct emu_vm *vm, uint64_t next_timer)
{
    pthread_mutex_lock(&vm->lock);
    if (!vcpus_pending(&vm->ctl) &&
        !(cpu_interruptible(vm->cpu) &&
          emu_irqchip_pending(vm->irq, 0))) {
        if (next_timer) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
            if (next_timer > now) {
                uint64_t abs = next_timer;
                ts.tv_sec = (time_t)(abs / 1000000000ull);
                ts.tv_nsec = (long)(abs % 1000000000ull);
                pthread_cond_timedwait(&vm->cond, &vm->lock, &ts);
            }
        } else {
            pthread_cond_wait(&vm->cond, &vm->lock);
        }
    }
    pthread_mutex_unlock(&vm->lock);
}

/* Fire due timer interrupts; returns the next deadline of either timer (0: none). */
static uint64_t poll_timers(struct emu_vm *vm)
{
    return emu_irqchip_poll(vm->irq, now_ns());
}

/* The machine's code hook, on whatever thread a device writes guest RAM from. The
 * translation cache belongs to the vCPU thread, so the pages are only marked here and the
 * CPU kicked: it checks the kick before every block, and a device marks the pages before
 * it publishes the completion (the used ring, an interrupt), so a guest that has seen the
 * completion reaches a block boundary, and the invalidation, before it can run what the
 * device wrote. */
static void emu_code_written(void *opaque, uint64_t gpa, uint64_t len)
{
    struct emu_vm *vm = opaque;
    uint64_t ram = machine_ram_size(vm->m);
    if (gpa >= ram || len == 0)
        return;
    uint64_t last = (len > ram - gpa ? ram - 1 : gpa + len - 1) >> 12;
    for (uint64_t p = gpa >> 12; p <= last; p++)
        atomic_fetch_or(&vm->dma_dirty[p / 64], 1ull << (p % 64));
    atomic_store(&vm->dma_pending, true);
    cpu_kick(vm->cpu);
}

/* vCPU thread, between slices: drop translated code on the pages devices wrote. */
static void apply_dma_writes(struct emu_vm *vm)
{
    if (!atomic_exchange(&vm->dma_pending, false))
        return;
    for (size_t w = 0; w < vm->dma_words; w++) {
        uint64_t bits = atomic_load_explicit(&vm->dma_dirty[w], memory_order_relaxed);
        if (!bits)
            continue;
        bits = atomic_exchange(&vm->dma_dirty[w], 0);
        while (bits) {
            unsigned b = (unsigned)__builtin_ctzll(bits);
            bits &= bits - 1;
            cpu_invalidate_ram(vm->cpu, ((uint64_t)w * 64 + b) << 12, 4096);
        }
    }
}

static void emu_vcpu_run(void *opaque, unsigned idx)
{
    struct emu_vm *vm = opaque;
    char reason[200];
    uint64_t console_since = 0;
    for (;;) {
        uint64_t next_timer;
        enum cpu_exit e;
        if (machine_stopped(vm->m))
            break;
        enum vcpus_next next = vcpus_next(&vm->ctl, idx);
        if (next == VCPUS_STOP)
            break;
        if (next == VCPUS_PARKED)
            continue;
        poll_timers(vm);
        apply_dma_writes(vm);
        e = cpu_run(vm->cpu, EMU_SLICE);
        publish_stats(vm);
        /* output gathered without a newline goes out when the guest halts, or once it has
         * waited a few milliseconds while the guest computes without an exit */
        if (machine_console_pending(vm->m)) {
            uint64_t now = now_ns();
            if (!console_since)
                console_since = now;
            if (e == CPU_EXIT_HLT || now - console_since >= EMU_CONSOLE_DEADLINE_NS) {
                machine_console_flush(vm->m);
                console_since = 0;
            }
        } else {
            console_since = 0;
        }
        switch (e) {
        case CPU_EXIT_HLT:
            /* the slice may have programmed a timer: poll before sleeping until it */
            next_timer = poll_timers(vm);
            wait_halted(vm, next_timer);
            break;
        case CPU_EXIT_SHUTDOWN:
            snprintf(reason, sizeof reason, "%s", cpu_error(vm->cpu));
            machine_stop(vm->m, VMCORE_EXIT_CRASH, 0, reason);
            break;
        case CPU_EXIT_ERROR:
            snprintf(reason, sizeof reason, "emulation failure: %s", cpu_error(vm->cpu));
            machine_stop(vm->m, VMCORE_EXIT_CRASH, 0, reason);
            break;
        case CPU_EXIT_KICK:
        case CPU_EXIT_STOP:
        default:
            break;
        }
    }
    machine_console_flush(vm->m);
    publish_stats(vm);
    /* vcpus.c records this thread's CPU time and, the machine having ended, posts the exit
     * once this (the last) vCPU thread is done: the exit event means no guest code runs. */
}

static const struct vcpus_ops emu_vcpus_ops = {
    .run = emu_vcpu_run,
    .kick = emu_kick,
    .parking = emu_parking,
};

/* ---- backend ops (loop thread) ---- */

static int emu_probe(vmcore_probe_result *out)
{
    snprintf(out->backend, sizeof out->backend, "%s", "emu");
    out->available = 1;
    /* Debian's kernel boots to a shell in seconds (doc/linux-on-emu.md), so "auto" gives a
     * Linux guest to emu where kvm cannot boot one usefully (core/probe.c). */
    out->flags = VMCORE_PROBE_LINUX_BOOT;
    out->reason[0] = 0;
    char why[96];
    char engine[160];
    if (cpu_jit_usable(why, sizeof why))
        snprintf(engine, sizeof engine, "block compiler to x86-64 over an interpreter with "
                 "translation cache");
    else
        snprintf(engine, sizeof engine, "interpreter with translation cache; no JIT: %s", why);
    snprintf(out->details, sizeof out->details,
             "software x86-64 CPU (%s); one vCPU; i8259 PIC, i8254 PIT, IOAPIC, local APIC, MSI; x87 (run "
             "on the host's FPU), SSE/SSE2 subset", engine);
    return 0;
}

static void state_from_boot(struct cpu_state *st, const struct x86_boot_state *bs)
{
    const struct x86_segment *src[CPU_NSEG] = { &bs->es, &bs->cs, &bs->ss, &bs->ds,
                                                &bs->fs, &bs->gs, &bs->ldt, &bs->tr };
    memset(st, 0, sizeof *st);
    memcpy(st->gpr, bs->gpr, sizeof st->gpr);
    st->rip = bs->rip;
    st->rflags = bs->rflags;
    for (unsigned s = 0; s < CPU_NSEG; s++) {
        st->seg[s].sel = src[s]->selector;
        st->seg[s].base = src[s]->base;
        st->seg[s].limit = src[s]->limit;
        st->seg[s].attr = src[s]->attr;
    }
    st->gdt_base = bs->gdt.base;
    st->gdt_limit = bs->gdt.limit;
    st->idt_base = bs->idt.base;
    st->idt_limit = bs->idt.limit;
    st->cr0 = bs->cr0;
    st->cr2 = bs->cr2;
    st->cr3 = bs->cr3;
    st->cr4 = bs->cr4;
    st->efer = bs->efer;
}

static void emu_vm_free(struct emu_vm *vm)
{
    if (!vm)
        return;
    vcpus_destroy(&vm->ctl);
    /* the machine first: its devices may still raise interrupts while going away */
    machine_destroy(vm->m);
    emu_irqchip_free(vm->irq);
    cpu_free(vm->cpu);
    free(vm->dma_dirty);
    if (vm->sync_init) {
        pthread_cond_destroy(&vm->cond);
        pthread_mutex_destroy(&vm->lock);
    }
    free(vm);
}

static int emu_build(vmcore_domain *d, const struct vmcore_config *cfg, bool restore,
                     struct emu_vm **out, struct vmcore_err *err)
{
    struct emu_vm *vm;
    int rc;

    *out = NULL;
    if (cfg->vcpus > 1)
        return err_config(err, VMCORE_ENOTSUP, "vcpus",
                          "the emu backend runs one vCPU (%u asked): the software CPU has one "
                          "thread and one local APIC, no SMP (use kvm for more)", cfg->vcpus);
    vm = calloc(1, sizeof *vm);
    if (!vm)
        return err_set(err, VMCORE_ENOMEM, "emu: out of memory");
    vm->domain = d;
    atomic_init(&vm->instructions, 0);
    atomic_init(&vm->tc_hits, 0);
    atomic_init(&vm->tc_misses, 0);
    atomic_init(&vm->jit_blocks, 0);
    if (pthread_mutex_init(&vm->lock, NULL)) {
        free(vm);
        return err_set(err, VMCORE_ENOMEM, "emu: cannot create a mutex");
    }
    if (pthread_cond_init(&vm->cond, NULL)) {
        pthread_mutex_destroy(&vm->lock);
        free(vm);
        return err_set(err, VMCORE_ENOMEM, "emu: cannot create a condition variable");
    }
    {
        /* the halt wait uses CLOCK_MONOTONIC deadlines */
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_destroy(&vm->cond);
        pthread_cond_init(&vm->cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    vm->sync_init = true;
    /* one vCPU (the software CPU has no SMP yet), through the same control as kvm's N */
    if ((rc = vcpus_init(&vm->ctl, 1, &emu_vcpus_ops, vm, d, err)))
        goto fail;

    if ((rc = restore ? machine_create_for_restore(&vm->m, cfg, d, err)
                      : machine_create(&vm->m, cfg, d, err)))
        goto fail;
    machine_set_event_sink(vm->m,
                           &(struct machine_event_sink){ NULL, vcpus_record_exit, &vm->ctl });
    {
        struct cpu_io io = { emu_pio, emu_mmio, emu_intr_ack, vm };
        vm->cpu = cpu_new(machine_ram(vm->m), machine_ram_size(vm->m), &io);
        if (!vm->cpu) {
            rc = err_set(err, VMCORE_ENOMEM, "emu: out of memory for the CPU");
            goto fail;
        }
        if (!cfg->emu.jit)
            cpu_set_jit(vm->cpu, false);
    }
    vm->dma_words = (machine_ram_size(vm->m) / 4096 + 63) / 64;
    vm->dma_dirty = calloc(vm->dma_words, sizeof *vm->dma_dirty);
    if (!vm->dma_dirty) {
        rc = err_set(err, VMCORE_ENOMEM, "emu: out of memory for the DMA page map");
        goto fail;
    }
    atomic_init(&vm->dma_pending, false);
    machine_set_code_hook(vm->m, emu_code_written, vm);
    if ((rc = emu_irqchip_create(&vm->irq, vm->m, cfg->vcpus ? cfg->vcpus : 1,
                                 emu_update_intr, vm))) {
        rc = err_set(err, rc, "emu: cannot register the interrupt controllers (PIC, PIT, "
                     "IOAPIC, local APIC)");
        goto fail;
    }
    *out = vm;
    return 0;
fail:
    emu_vm_free(vm);
    return rc;
}

static int emu_create(vmcore_domain *d, const struct vmcore_config *cfg, void **priv,
                      struct vmcore_err *err)
{
    struct emu_vm *vm;
    struct cpu_state st;
    *priv = NULL;
    int rc = emu_build(d, cfg, false, &vm, err);
    if (rc)
        return rc;
    state_from_boot(&st, machine_boot_state(vm->m));
    cpu_set_state(vm->cpu, &st);
    *priv = vm;
    return 0;
}

/* ---- snapshots (doc/snapshot.md) ---- */

/* The CPUID leaves a snapshot records: every basic leaf up to the highest (0xa) and the
 * extended ones up to 0x80000008, sub-leaf 0. */
static unsigned emu_cpuid(struct emu_vm *vm, struct machine_cpuid *out)
{
    unsigned n = 0;
    for (uint32_t l = 0; l <= 0xa; l++)
        out[n++] = (struct machine_cpuid){ .leaf = l };
    for (uint32_t l = 0x80000000u; l <= 0x80000008u; l++)
        out[n++] = (struct machine_cpuid){ .leaf = l };
    for (unsigned k = 0; k < n; k++)
        cpu_cpuid(vm->cpu, out[k].leaf, out[k].subleaf, out[k].r);
    return n;
}

#define VCPU_STATE_FORMAT 1   /* the x86 layout below; doc/snapshot.md "vcpu" */

static void put_seg(struct snap_buf *b, const struct cpu_seg *s)
{
    snap_buf_u16(b, s->sel);
    snap_buf_u64(b, s->base);
    snap_buf_u32(b, s->limit);
    snap_buf_u32(b, s->attr);
}

static void vcpu_encode(struct snap_buf *b, const struct cpu_snapshot *s, uint64_t tsc)
{
    snap_buf_u32(b, VCPU_STATE_FORMAT);
    for (unsigned k = 0; k < 16; k++)
        snap_buf_u64(b, s->arch.gpr[k]);
    snap_buf_u64(b, s->arch.rip);
    snap_buf_u64(b, s->arch.rflags);
    for (unsigned k = 0; k < CPU_NSEG; k++)
        put_seg(b, &s->arch.seg[k]);
    snap_buf_u64(b, s->arch.gdt_base);
    snap_buf_u16(b, s->arch.gdt_limit);
    snap_buf_u64(b, s->arch.idt_base);
    snap_buf_u16(b, s->arch.idt_limit);
    const uint64_t q[] = { s->arch.cr0, s->arch.cr2, s->arch.cr3, s->arch.cr4, s->cr8,
                           s->arch.efer, s->dr[0], s->dr[1], s->dr[2], s->dr[3], s->dr[4],
                           s->dr[5], s->dr[6], s->dr[7], s->star, s->lstar, s->cstar,
                           s->sfmask, s->kgsbase, s->sysenter_cs, s->sysenter_esp,
                           s->sysenter_eip, s->pat, tsc, s->apic_base, s->misc_enable,
                           s->feature_control, s->tsc_aux, s->pmc[0], s->pmc[1],
                           s->perfevtsel[0], s->perfevtsel[1] };
    for (unsigned k = 0; k < sizeof q / sizeof q[0]; k++)
        snap_buf_u64(b, q[k]);
    snap_buf_put(b, s->xmm, sizeof s->xmm);
    snap_buf_u32(b, s->mxcsr);
    snap_buf_u16(b, s->fcw);
    snap_buf_u16(b, s->fsw);
    snap_buf_u16(b, s->ftw);
    snap_buf_put(b, s->fpr, sizeof s->fpr);
    snap_buf_u8(b, s->sti_shadow);
    snap_buf_u8(b, s->halted);
}

static void get_seg(struct snap_rd *r, struct cpu_seg *s)
{
    s->sel = snap_rd_u16(r);
    s->base = snap_rd_u64(r);
    s->limit = snap_rd_u32(r);
    s->attr = snap_rd_u32(r);
}

static int vcpu_decode(struct snap_rd *r, struct cpu_snapshot *s, uint64_t *tsc)
{
    memset(s, 0, sizeof *s);
    uint32_t format = snap_rd_u32(r);
    if (!r->failed && format != VCPU_STATE_FORMAT)
        return snap_rd_fail(r, "vCPU state format %u (this library reads %u)", format,
                            VCPU_STATE_FORMAT);
    for (unsigned k = 0; k < 16; k++)
        s->arch.gpr[k] = snap_rd_u64(r);
    s->arch.rip = snap_rd_u64(r);
    s->arch.rflags = snap_rd_u64(r);
    for (unsigned k = 0; k < CPU_NSEG; k++)
        get_seg(r, &s->arch.seg[k]);
    s->arch.gdt_base = snap_rd_u64(r);
    s->arch.gdt_limit = snap_rd_u16(r);
    s->arch.idt_base = snap_rd_u64(r);
    s->arch.idt_limit = snap_rd_u16(r);
    uint64_t *q[] = { &s->arch.cr0, &s->arch.cr2, &s->arch.cr3, &s->arch.cr4, &s->cr8,
                      &s->arch.efer, &s->dr[0], &s->dr[1], &s->dr[2], &s->dr[3], &s->dr[4],
                      &s->dr[5], &s->dr[6], &s->dr[7], &s->star, &s->lstar, &s->cstar,
                      &s->sfmask, &s->kgsbase, &s->sysenter_cs, &s->sysenter_esp,
                      &s->sysenter_eip, &s->pat, tsc, &s->apic_base, &s->misc_enable,
                      &s->feature_control, &s->tsc_aux, &s->pmc[0], &s->pmc[1],
                      &s->perfevtsel[0], &s->perfevtsel[1] };
    for (unsigned k = 0; k < sizeof q / sizeof q[0]; k++)
        *q[k] = snap_rd_u64(r);
    snap_rd_get(r, s->xmm, sizeof s->xmm);
    s->mxcsr = snap_rd_u32(r);
    s->fcw = snap_rd_u16(r);
    s->fsw = snap_rd_u16(r);
    s->ftw = snap_rd_u16(r);
    snap_rd_get(r, s->fpr, sizeof s->fpr);
    s->sti_shadow = snap_rd_u8(r);
    s->halted = snap_rd_u8(r);
    int rc = snap_rd_end(r);
    if (rc)
        return rc;
    /* What the CPU's own instructions would refuse to load (#GP there). */
    if (s->mxcsr & ~0xffffu)
        return snap_rd_fail(r, "MXCSR 0x%x has reserved bits set", s->mxcsr);
    if (s->sti_shadow > 1 || s->halted > 1)
        return snap_rd_fail(r, "interrupt shadow %u / halted %u (0 or 1)", s->sti_shadow,
                            s->halted);
    if (s->ftw > 0xff)
        return snap_rd_fail(r, "x87 tag word 0x%x (8 bits)", s->ftw);
    if (s->arch.cr0 >> 32 || s->arch.cr4 >> 32 || s->arch.efer & ~0xd01ull)
        return snap_rd_fail(r, "CR0 0x%llx, CR4 0x%llx or EFER 0x%llx has reserved bits set",
                            (unsigned long long)s->arch.cr0, (unsigned long long)s->arch.cr4,
                            (unsigned long long)s->arch.efer);
    /* EFER.LMA is not the file's to say: cpu_set_snapshot() derives it (LME and PG) */
    s->arch.efer &= ~0x400ull;
    return 0;
}

static uint64_t host_now_ns(void)
{
    return now_ns();
}

static int emu_save(vmcore_domain *d, void *priv, struct snap_writer *w, struct vmcore_err *err)
{
    struct emu_vm *vm = priv;
    (void)d;
    /* the guest ended (its exit is on its way to the loop): nothing left to continue */
    if (machine_stopped(vm->m))
        return err_set(err, VMCORE_ESTATE, "save: the guest has already ended");
    int rc = machine_check_savable(vm->m, err);
    if (rc)
        return rc;
    struct machine_snap_info info = { 0 };
    info.saved_ns = host_now_ns();
    info.ncpuid = emu_cpuid(vm, info.cpuid);
    if ((rc = machine_save_info(vm->m, w, &info)))
        return rc;
    struct cpu_snapshot s;
    cpu_get_snapshot(vm->cpu, &s);
    struct snap_buf b = { 0 };
    vcpu_encode(&b, &s, info.saved_ns + s.tsc_offset);
    rc = b.oom ? err_set(err, VMCORE_ENOMEM, "save: out of memory")
               : snap_write_section(w, SNAP_SEC_VCPU, 0, b.p, b.len);
    snap_buf_free(&b);
    if (rc)
        return rc;
    return machine_save_state(vm->m, w);
}

static void emu_saved_stop(vmcore_domain *d, void *priv)
{
    struct emu_vm *vm = priv;
    (void)d;
    machine_stop(vm->m, VMCORE_EXIT_STATUS, 0, "saved to a snapshot");
}

static int emu_restore(vmcore_domain *d, const struct vmcore_config *cfg,
                       const struct snap_file *f, void **priv, struct vmcore_err *err)
{
    struct emu_vm *vm;
    *priv = NULL;
    int rc = emu_build(d, cfg, true, &vm, err);
    if (rc)
        return rc;
    struct machine_snap_info info;
    int64_t shift = 0;
    struct cpu_snapshot s;
    uint64_t tsc = 0;
    if ((rc = machine_restore_info(vm->m, f, &info, &shift, err)))
        goto fail;
    const struct snap_section *sec = snap_find(f, SNAP_SEC_VCPU, 0);
    if (!sec) {
        rc = err_set(err, VMCORE_EIMAGE, "snapshot: no section for vcpu 0");
        goto fail;
    }
    for (size_t k = 0; k < f->nsec; k++)
        if (f->sec[k].type == SNAP_SEC_VCPU && &f->sec[k] != sec) {
            rc = err_set(err, VMCORE_EIMAGE, "snapshot: file offset %llu: a second vcpu "
                         "section (vcpu %u); the emu backend runs one vCPU",
                         (unsigned long long)f->sec[k].offset, f->sec[k].instance);
            goto fail;
        }
    struct snap_rd r;
    snap_rd_init(&r, sec, "vcpu 0", err);
    if ((rc = vcpu_decode(&r, &s, &tsc)))
        goto fail;
    if ((rc = machine_restore(vm->m, f, shift, err)))
        goto fail;
    s.tsc_offset = tsc - (info.saved_ns + (uint64_t)shift);
    cpu_set_snapshot(vm->cpu, &s);
    /* The guest must see the CPU it saw (checked with the restored MSRs: leaf 0 depends
     * on IA32_MISC_ENABLE). */
    for (uint32_t k = 0; k < info.ncpuid; k++) {
        const struct machine_cpuid *c = &info.cpuid[k];
        uint32_t now[4];
        cpu_cpuid(vm->cpu, c->leaf, c->subleaf, now);
        if (memcmp(now, c->r, sizeof now) != 0) {
            rc = err_set(err, VMCORE_EIMAGE, "snapshot: section machine: CPUID leaf 0x%x "
                         "sub-leaf %u was %08x %08x %08x %08x (eax ebx ecx edx) when saved; "
                         "this host's emu CPU presents %08x %08x %08x %08x",
                         c->leaf, c->subleaf, c->r[0], c->r[1], c->r[2], c->r[3], now[0],
                         now[1], now[2], now[3]);
            goto fail;
        }
    }
    emu_update_intr(vm, 0);
    *priv = vm;
    return 0;
fail:
    emu_vm_free(vm);
    return rc;
}

static int emu_start(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    struct emu_vm *vm = priv;
    (void)d;
    return vcpus_start(&vm->ctl, err);
}

static int emu_pause(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    struct emu_vm *vm = priv;
    (void)d;
    (void)err;
    vcpus_pause(&vm->ctl);
    return 0;
}

static int emu_resume(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    struct emu_vm *vm = priv;
    (void)d;
    (void)err;
    vcpus_resume(&vm->ctl);
    return 0;
}

static int emu_shutdown(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    struct emu_vm *vm = priv;
    (void)d;
    (void)err;
    machine_shutdown(vm->m);
    return 0;
}

static int emu_kill(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    struct emu_vm *vm = priv;
    (void)d;
    (void)err;
    machine_kill(vm->m);
    return 0;
}

static int emu_stats(vmcore_domain *d, void *priv, vmcore_stats *out, struct vmcore_err *err)
{
    struct emu_vm *vm = priv;
    (void)d;
    out->cpu_time_ns = vcpus_cpu_ns(&vm->ctl);
    out->exits = machine_exit_count(vm->m);
    out->instructions = atomic_load(&vm->instructions);
    out->tcache_hits = atomic_load(&vm->tc_hits);
    out->tcache_misses = atomic_load(&vm->tc_misses);
    out->jit_blocks = atomic_load(&vm->jit_blocks);
    out->memory_bytes = machine_ram_resident(vm->m);
    machine_net_counters(vm->m, out);
    return 0;
}

static int emu_console_write(vmcore_domain *d, void *priv, const void *data, size_t len,
                             struct vmcore_err *err)
{
    struct emu_vm *vm = priv;
    (void)d;
    return machine_console_write(vm->m, data, len, err);
}

static void emu_destroy(vmcore_domain *d, void *priv)
{
    (void)d;
    emu_vm_free(priv);
}

const struct backend_ops backend_emu_ops = {
    .name = "emu",
    .probe = emu_probe,
    .create = emu_create,
    .start = emu_start,
    .pause = emu_pause,
    .resume = emu_resume,
    .shutdown = emu_shutdown,
    .kill = emu_kill,
    .stats = emu_stats,
    .console_write = emu_console_write,
    .save = emu_save,
    .saved_stop = emu_saved_stop,
    .restore = emu_restore,
    .destroy = emu_destroy,
};
