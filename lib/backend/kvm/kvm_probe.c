/* Probe: is /dev/kvm usable, and does guest code run on the CPU or in software?
 *
 * Some hosts expose KVM without hardware virtualization of the guest kernel: PVM
 * ("kvm_pvm") runs guest CPL3 code natively but emulates guest CPL0 in the host kernel at
 * a few MIPS. The capabilities look the same either way, so the probe measures: a tiny
 * long-mode guest spins 2000 iterations at CPL0, drops to CPL3 and spins 100000 more,
 * and the host times both stretches between I/O exits. Natively the CPL0 loop takes a
 * few microseconds; emulated, milliseconds. The host does not change under a running
 * process, and the core probes before every domain it creates, so the measurement is
 * made once per process (about 3 ms here) and reused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm.h"
#include "machine/loader.h"

/* nasm -f bin, org 0x1000, bits 64:
 *        mov ecx, 2000 / .a: dec ecx / jnz .a / out 0xf0, al        ; CPL0 loop done
 *        push 0x23 / push 0x80000 / push 0x3002 / push 0x2b         ; iretq frame, IOPL 3
 *        lea rax, [rel user] / push rax / out 0xf1, al / iretq
 * user:  mov ecx, 100000 / .b: dec ecx / jnz .b / out 0xf2, al / jmp user ; CPL3 loop */
static const uint8_t probe_code[] = {
    0xb9, 0xd0, 0x07, 0x00, 0x00, 0xff, 0xc9, 0x75, 0xfc, 0xe6, 0xf0, 0x6a, 0x23, 0x68, 0x00,
    0x00, 0x08, 0x00, 0x68, 0x02, 0x30, 0x00, 0x00, 0x6a, 0x2b, 0x48, 0x8d, 0x05, 0x05, 0x00,
    0x00, 0x00, 0x50, 0xe6, 0xf1, 0x48, 0xcf, 0xb9, 0xa0, 0x86, 0x01, 0x00, 0xff, 0xc9, 0x75,
    0xfc, 0xe6, 0xf2, 0xeb, 0xf3,
};
#define PROBE_CODE_ADDR 0x1000
#define PROBE_RAM (1u << 20)
#define PROBE_CPL0_INSNS 4000.0   /* instructions in each timed loop */
#define PROBE_CPL3_INSNS 200000.0
/* Below this rate a stretch is not running on the CPU (native: hundreds of MIPS even
 * with the exit cost included; PVM-emulated CPL0: a few MIPS). */
#define PROBE_NATIVE_MIPS 50.0 /* keep in step with the "under 50 MIPS" texts below */

struct probe_timing {
    double cpl0_mips, cpl3_mips;
};

/* Run the probe guest until port @port is written; returns the wall time in ns or 0. */
static uint64_t run_until(int vcpu, struct kvm_run *run, uint16_t port)
{
    uint64_t t0 = kvm_now_ns();
    for (int guard = 0; guard < 16; guard++) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        if (run->exit_reason != KVM_EXIT_IO)
            return 0;
        if (run->io.port == port)
            return kvm_now_ns() - t0;
    }
    return 0;
}

static int probe_measure(int kvm_fd, struct probe_timing *t, char *why, size_t whylen)
{
    int rc = -1, vm = -1, vcpu = -1;
    struct kvm_run *run = MAP_FAILED;
    int run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    uint8_t *ram = mmap(NULL, PROBE_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                        -1, 0);
    struct vmcore_err err = { 0 };
    struct x86_boot_state bs;
    struct loader lc = { .ram = ram, .ram_size = PROBE_RAM, .path = "probe", .bs = &bs,
                         .err = &err };
    if (ram == MAP_FAILED || run_size <= 0) {
        snprintf(why, whylen, "cannot map probe memory");
        goto out;
    }
    memcpy(ram + PROBE_CODE_ADDR, probe_code, sizeof probe_code);
    if (x86_boot_long(&lc, PROBE_CODE_ADDR) ||
        kvm_vm_setup(kvm_fd, &vm, ram, PROBE_RAM, false, &err)) {
        snprintf(why, whylen, "%s", err.msg);
        goto out;
    }
    vcpu = ioctl(vm, KVM_CREATE_VCPU, 0UL);
    if (vcpu < 0) {
        snprintf(why, whylen, "KVM_CREATE_VCPU: %s", strerror(errno));
        goto out;
    }
    run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED || kvm_vcpu_set_state(vcpu, &bs, &err)) {
        snprintf(why, whylen, "%s", run == MAP_FAILED ? "cannot map kvm_run" : err.msg);
        goto out;
    }
    uint64_t cpl0 = run_until(vcpu, run, 0xf0);
    uint64_t gap = cpl0 ? run_until(vcpu, run, 0xf1) : 0;
    uint64_t cpl3 = gap ? run_until(vcpu, run, 0xf2) : 0;
    if (!cpl0 || !gap || !cpl3) {
        snprintf(why, whylen, "the probe guest did not run to completion (exit reason %u)",
                 run->exit_reason);
        goto out;
    }
    /* The stretch between 0xf0 and 0xf1 is a handful of instructions: it is the cost of
     * one exit and entry, which the loops' times also contain. */
    t->cpl0_mips = PROBE_CPL0_INSNS / (double)(cpl0 > gap ? cpl0 - gap : 1) * 1000.0;
    t->cpl3_mips = PROBE_CPL3_INSNS / (double)(cpl3 > gap ? cpl3 - gap : 1) * 1000.0;
    rc = 0;
out:
    if (run != MAP_FAILED)
        munmap(run, (size_t)run_size);
    if (vcpu >= 0)
        close(vcpu);
    if (vm >= 0)
        close(vm);
    if (ram != MAP_FAILED)
        munmap(ram, PROBE_RAM);
    return rc;
}

static struct {
    pthread_once_t once;
    int rc;
    struct probe_timing t;
    char why[256];
} probe_cache = { .once = PTHREAD_ONCE_INIT };

static void probe_measure_once(void)
{
    struct vmcore_err err = { 0 };
    int kvm_fd;
    if (kvm_open_checked(&kvm_fd, &err)) {
        probe_cache.rc = -1;
        snprintf(probe_cache.why, sizeof probe_cache.why, "%s", err.msg);
        return;
    }
    probe_cache.rc = probe_measure(kvm_fd, &probe_cache.t, probe_cache.why,
                                   sizeof probe_cache.why);
    close(kvm_fd);
}

int kvm_usable(struct vmcore_err *err)
{
    int kvm_fd;
    if (kvm_open_checked(&kvm_fd, err))
        return VMCORE_EUNAVAIL;
    close(kvm_fd);
    return 0;
}

int kvm_probe(vmcore_probe_result *out)
{
    snprintf(out->backend, sizeof out->backend, "%s", "kvm");
    out->available = 0;
    out->flags = 0;
    out->reason[0] = out->details[0] = '\0';
    struct vmcore_err err = { 0 };
    int kvm_fd;
    if (kvm_open_checked(&kvm_fd, &err)) {
        snprintf(out->reason, sizeof out->reason, "%s", err.msg);
        return VMCORE_EUNAVAIL;
    }
    int max_vcpus = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    close(kvm_fd);
    pthread_once(&probe_cache.once, probe_measure_once);
    if (probe_cache.rc) {
        snprintf(out->reason, sizeof out->reason, "kvm: a test guest failed: %s",
                 probe_cache.why);
        return VMCORE_EUNAVAIL;
    }
    const struct probe_timing t = probe_cache.t;
    bool pvm = access("/sys/module/kvm_pvm", F_OK) == 0;
    bool native0 = t.cpl0_mips >= PROBE_NATIVE_MIPS, native3 = t.cpl3_mips >= PROBE_NATIVE_MIPS;
    if (native0)
        out->flags |= VMCORE_PROBE_NATIVE_SUPERVISOR | VMCORE_PROBE_LINUX_BOOT;
    if (native3)
        out->flags |= VMCORE_PROBE_NATIVE_USER;
    out->available = 1;
    /* Only the classification goes into the text, not the measured rates: the probe's
     * answer must not change from one call to the next. */
    snprintf(out->details, sizeof out->details,
             "api %d; irqchip, pit2, immediate_exit; max vcpus %d;%s guest CPL0 %s; "
             "guest CPL3 %s%s",
             KVM_API_VERSION, max_vcpus, pvm ? " host module kvm_pvm (PVM);" : "",
             native0 ? "native" : "emulated by the host kernel (under 50 MIPS)",
             native3 ? "native" : "not native (under 50 MIPS)",
             native0 ? "" : "; a Linux kernel would boot too slowly to be useful (no "
                            "VMCORE_PROBE_LINUX_BOOT: auto gives a Linux guest to emu)");
    return 0;
}
