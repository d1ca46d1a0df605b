/* The PC platform's SMP and interrupt wiring on kvm.
 *
 * Through the public API: tests/guests/smp.elf wakes every AP with INIT-SIPI-SIPI on 1, 2
 * and 8 vCPUs (kvm), and runs alone on emu's single vCPU; its trampoline self-test runs
 * the AP start-up path on one CPU (both backends); its pit-ioapic mode checks that the PIT's
 * ticks reach IOAPIC pin 2 (kvm). Below the API, on a VM made by
 * hand with the backend's own helpers: the GSI routing (ISA IRQ 0 reaches IOAPIC pin 2,
 * GSI 2 goes nowhere, PCI INTx lines reach pins 16..23), the APs' wait for SIPI, MSIs by
 * KVM_SIGNAL_MSI and by irqfd, hostile MSI addresses. And the vcpus limit of the config. */
#include "vmtest.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "backend/kvm/kvm.h"
#include "core/config.h"
#include "machine/platform.h"

/* ---- the guest ---- */

/* Boot smp.elf with @n vCPUs and check: one "AP <id> up" line for each of the APIC IDs
 * 1..n-1, "SMP OK <n>" last, status 0. */
static void smp_boot(const char *backend, unsigned n)
{
    char boot[128], top[64];
    snprintf(boot, sizeof boot, "\"format\": \"multiboot\", \"cmdline\": \"cpus=%u\"", n);
    snprintf(top, sizeof top, "\"vcpus\": %u", n);
    struct vmt_run r;
    vmt_open(&r, vmt_json(backend, "smp.elf", boot, top));
    assert_true(vt_run_until(r.ctx, &r.ended, VMT_WAIT_MS));
    if (r.exit.kind != VMCORE_EXIT_STATUS || r.exit.status != 0)
        fail_msg("%u vCPUs: ended with kind %d status %d (%s); output \"%s\"", n, r.exit.kind,
                 r.exit.status, r.reason, r.out);
    char line[64], cpus[64];
    snprintf(cpus, sizeof cpus, "cpus: %u (", n);
    if (strncmp(r.out, cpus, strlen(cpus)) != 0)
        fail_msg("%u vCPUs: the guest counted otherwise: \"%s\"", n, r.out);
    unsigned aps = 0;
    for (const char *p = r.out; (p = strstr(p, "AP ")); p++)
        aps++;
    if (aps != n - 1)
        fail_msg("%u vCPUs: %u AP lines in \"%s\"", n, aps, r.out);
    for (unsigned id = 1; id < n; id++) {
        snprintf(line, sizeof line, "\nAP %u up\n", id);
        if (!strstr(r.out, line))
            fail_msg("%u vCPUs: no \"AP %u up\" in \"%s\"", n, id, r.out);
    }
    snprintf(line, sizeof line, "\nSMP OK %u\n", n);
    size_t ll = strlen(line), ol = strlen(r.out);
    if (ol < ll || strcmp(r.out + ol - ll, line) != 0)
        fail_msg("%u vCPUs: output does not end with \"SMP OK %u\": \"%s\"", n, n, r.out);
    vmt_close(&r);
}

static void test_kvm_smp_1(void **state)
{
    vt_require_kvm();
    smp_boot("kvm", 1);
}

static void test_kvm_smp_2(void **state)
{
    vt_require_kvm();
    smp_boot("kvm", 2);
}

static void test_kvm_smp_8(void **state)
{
    vt_require_kvm();
    smp_boot("kvm", 8);
}

static void test_emu_smp_1(void **state)
{
    smp_boot("emu", 1);
}

/* The AP's start-up path (real mode at the SIPI vector, the trampoline, its GDT, a stack
 * slot, ap_main) run by the only CPU: what the single-vCPU runs above never reach. */
static void trampoline_selftest(const char *backend)
{
    vmt_boot_expect(backend, "smp.elf",
                    "\"format\": \"multiboot\", \"cmdline\": \"tramp-selftest\"",
                    "AP 0 up\ntrampoline ok\n", VMCORE_EXIT_STATUS, 0);
}

static void test_emu_trampoline(void **state)
{
    trampoline_selftest("emu");
}

static void test_kvm_trampoline(void **state)
{
    vt_require_kvm();
    trampoline_selftest("kvm");
}

/* The in-kernel PIT's ticks arrive at IOAPIC pin 2 (the MADT's override of ISA IRQ 0), and
 * keep coming: each acknowledgement finds the PIT through that routing. */
static void test_kvm_pit_ioapic(void **state)
{
    vt_require_kvm();
    vmt_boot_expect("kvm", "smp.elf", "\"format\": \"multiboot\", \"cmdline\": \"pit-ioapic\"",
                    "timer on IOAPIC pin 2\n", VMCORE_EXIT_STATUS, 0);
}

/* ---- the vcpus limit ---- */

static int parse_vcpus(unsigned n, struct vmcore_err *err)
{
    char text[4200];
    snprintf(text, sizeof text,
             "{\"backend\": \"kvm\", \"vcpus\": %u, \"boot\": {\"kernel\": \"%s\"}}", n,
             vt_guest("smp.elf"));
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    assert_non_null(root);
    struct vmcore_config *cfg = NULL;
    int rc = config_parse(&cfg, root, "/", err);
    if (rc == 0) {
        assert_int_equal(cfg->vcpus, n);
        config_free(cfg);
    }
    json_decref(root);
    return rc;
}

static void test_vcpus_limit(void **state)
{
    struct vmcore_err err = { 0 };
    assert_int_equal(parse_vcpus(64, &err), 0);
    assert_int_equal(parse_vcpus(65, &err), VMCORE_ECONFIG);
    assert_string_equal(err.path, "vcpus");
    assert_non_null(strstr(err.msg, "out of range (1..64)"));
}

/* ---- below the API: a VM made with the backend's helpers ---- */

#define HAND_RAM (2u << 20)
#define HAND_VCPUS 2

struct hand_vm {
    struct kvm_vm vm;
    struct kvm_vcpu vcpus[HAND_VCPUS];
    void *ram;
};

static void hand_open(struct hand_vm *h)
{
    memset(h, 0, sizeof *h);
    struct vmcore_err err = { 0 };
    h->vm.kvm_fd = h->vm.vm_fd = -1;
    h->ram = mmap(NULL, HAND_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(h->ram != MAP_FAILED);
    if (kvm_open_checked(&h->vm.kvm_fd, &err) ||
        kvm_vm_setup(h->vm.kvm_fd, &h->vm.vm_fd, h->ram, HAND_RAM, true, &err))
        fail_msg("%s", err.msg);
    h->vm.nvcpus = HAND_VCPUS;
    h->vm.vcpus = h->vcpus;
    for (unsigned i = 0; i < HAND_VCPUS; i++) {
        h->vcpus[i] = (struct kvm_vcpu){ .vm = &h->vm, .id = i };
        h->vcpus[i].fd = ioctl(h->vm.vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
        assert_true(h->vcpus[i].fd >= 0);
    }
    if (kvm_irq_setup(&h->vm, &err))
        fail_msg("kvm_irq_setup: %s", err.msg);
}

static void hand_close(struct hand_vm *h)
{
    kvm_irq_free(&h->vm);
    assert_null(h->vm.irqs);
    for (unsigned i = 0; i < HAND_VCPUS; i++)
        close(h->vcpus[i].fd);
    close(h->vm.vm_fd);
    close(h->vm.kvm_fd);
    munmap(h->ram, HAND_RAM);
}

static uint32_t ioapic_irr(struct hand_vm *h)
{
    struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };
    assert_int_equal(ioctl(h->vm.vm_fd, KVM_GET_IRQCHIP, &chip), 0);
    return chip.chip.ioapic.irr;
}

static void line(struct hand_vm *h, unsigned gsi, int level)
{
    struct kvm_irq_level irq = { .irq = gsi, .level = (uint32_t)level };
    assert_int_equal(ioctl(h->vm.vm_fd, KVM_IRQ_LINE, &irq), 0);
}

/* The redirection entries start masked, so an asserted pin stays in the IOAPIC's IRR:
 * which bit turns on shows where each GSI is wired. */
static void test_kvm_gsi_routing(void **state)
{
    vt_require_kvm();
    struct hand_vm h;
    hand_open(&h);
    assert_int_equal(ioapic_irr(&h), 0);
    line(&h, 2, 1);                         /* the cascade: no IOAPIC pin */
    assert_int_equal(ioapic_irr(&h), 0);
    line(&h, 2, 0);
    line(&h, 0, 1);                         /* the PIT's line: pin 2, not pin 0 */
    assert_int_equal(ioapic_irr(&h), 1u << 2);
    line(&h, 0, 0);
    assert_int_equal(ioapic_irr(&h), 0);
    line(&h, PLAT_SCI_IRQ, 1);
    assert_int_equal(ioapic_irr(&h), 1u << PLAT_SCI_IRQ);
    line(&h, PLAT_SCI_IRQ, 0);
    for (unsigned gsi = MACHINE_GSI_PCI_FIRST; gsi < MACHINE_GSI_COUNT; gsi++) {
        line(&h, gsi, 1);
        assert_int_equal(ioapic_irr(&h), 1u << gsi);
        line(&h, gsi, 0);
    }
    /* An ISA line also reaches its 8259 input. */
    line(&h, 1, 1);
    struct kvm_irqchip pic = { .chip_id = KVM_IRQCHIP_PIC_MASTER };
    assert_int_equal(ioctl(h.vm.vm_fd, KVM_GET_IRQCHIP, &pic), 0);
    assert_true(pic.chip.pic.irr & (1u << 1));
    assert_int_equal(ioapic_irr(&h), 1u << 1);
    line(&h, 1, 0);
    hand_close(&h);
}

static void test_kvm_aps_wait_for_sipi(void **state)
{
    vt_require_kvm();
    struct hand_vm h;
    hand_open(&h);
    struct kvm_mp_state mp;
    assert_int_equal(ioctl(h.vcpus[0].fd, KVM_GET_MP_STATE, &mp), 0);
    assert_int_equal(mp.mp_state, KVM_MP_STATE_RUNNABLE);
    assert_int_equal(ioctl(h.vcpus[1].fd, KVM_GET_MP_STATE, &mp), 0);
    assert_int_equal(mp.mp_state, KVM_MP_STATE_UNINITIALIZED);
    hand_close(&h);
}

#define LAPIC_SVR 0xf0
#define LAPIC_IRR 0x200

/* Software-enable vCPU @v's local APIC (a disabled one drops fixed interrupts). */
static void lapic_enable(struct hand_vm *h, unsigned v)
{
    struct kvm_lapic_state s;
    assert_int_equal(ioctl(h->vcpus[v].fd, KVM_GET_LAPIC, &s), 0);
    uint32_t svr;
    memcpy(&svr, s.regs + LAPIC_SVR, 4);
    svr |= 0x1ff;
    memcpy(s.regs + LAPIC_SVR, &svr, 4);
    assert_int_equal(ioctl(h->vcpus[v].fd, KVM_SET_LAPIC, &s), 0);
}

static bool lapic_irr_has(struct hand_vm *h, unsigned v, unsigned vector)
{
    struct kvm_lapic_state s;
    assert_int_equal(ioctl(h->vcpus[v].fd, KVM_GET_LAPIC, &s), 0);
    uint32_t irr;
    memcpy(&irr, s.regs + LAPIC_IRR + (vector / 32) * 0x10, 4);
    return irr & (1u << (vector % 32));
}

/* MSI data: fixed delivery, edge, @vector; the address names APIC ID @dest, physical. */
#define MSI_ADDR(dest) (PLAT_LAPIC_BASE | ((uint64_t)(dest) << 12))

static void test_kvm_signal_msi(void **state)
{
    vt_require_kvm();
    struct hand_vm h;
    hand_open(&h);
    lapic_enable(&h, 0);
    lapic_enable(&h, 1);
    assert_int_equal(kvm_msi(&h.vm, MSI_ADDR(1), 0x41), 0);
    assert_true(lapic_irr_has(&h, 1, 0x41));
    assert_false(lapic_irr_has(&h, 0, 0x41));
    /* Hostile messages: outside the LAPIC window (below, above, past 4 GiB) nothing is
     * raised and nothing breaks; the sink drops them silently. */
    static const uint64_t bad[] = { 0, 0xfed00000, 0xfef00000, 0x1fee00000ull,
                                    0xffffffffffffffffull };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(kvm_msi(&h.vm, bad[i], 0x42), VMCORE_EINVAL);
        kvm_msi_sink(&h.vm, bad[i], 0x42);
    }
    assert_false(lapic_irr_has(&h, 0, 0x42));
    assert_false(lapic_irr_has(&h, 1, 0x42));
    /* Every delivery mode and odd data bits: KVM decodes them, we only pass them on. */
    for (uint32_t mode = 0; mode < 8; mode++)
        kvm_msi_sink(&h.vm, MSI_ADDR(0xff), (mode << 8) | 0xffff0000u | 0x50);
    hand_close(&h);
}

/* An irqfd's injection runs in the kernel's own context: wait for it (the deadline is a
 * safety net for a hung test, not a speed expectation). */
static bool wait_irr(struct hand_vm *h, unsigned v, unsigned vector)
{
    for (int ms = 0; ms < VMT_WAIT_MS; ms++) {
        if (lapic_irr_has(h, v, vector))
            return true;
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
    return false;
}

static void test_kvm_irqfd_msi(void **state)
{
    vt_require_kvm();
    int fds = vt_count_fds();
    struct hand_vm h;
    hand_open(&h);
    lapic_enable(&h, 0);
    lapic_enable(&h, 1);
    struct vmcore_err err = { 0 };
    int efd[4];
    for (int i = 0; i < 4; i++) {
        if (kvm_irqfd_msi_add(&h.vm, MSI_ADDR(i & 1), 0x60 + (uint32_t)i, &efd[i], &err))
            fail_msg("kvm_irqfd_msi_add: %s", err.msg);
        assert_true(efd[i] >= 0);
    }
    uint64_t one = 1;
    assert_int_equal(write(efd[3], &one, sizeof one), (ssize_t)sizeof one);
    assert_true(wait_irr(&h, 1, 0x63));
    /* Reprogrammed, the same eventfd raises the new message. */
    assert_int_equal(kvm_irqfd_msi_update(&h.vm, efd[2], MSI_ADDR(1), 0x70, &err), 0);
    assert_int_equal(write(efd[2], &one, sizeof one), (ssize_t)sizeof one);
    assert_true(wait_irr(&h, 1, 0x70));
    assert_false(lapic_irr_has(&h, 0, 0x62));
    /* Removal frees the GSI for the next one; unknown eventfds are refused. */
    assert_int_equal(kvm_irqfd_msi_remove(&h.vm, efd[1]), 0);
    assert_int_equal(kvm_irqfd_msi_remove(&h.vm, efd[1]), VMCORE_ENOENT);
    assert_int_equal(kvm_irqfd_msi_remove(&h.vm, -1), VMCORE_ENOENT);
    assert_int_equal(kvm_irqfd_msi_update(&h.vm, 12345, MSI_ADDR(0), 0x70, &err),
                     VMCORE_ENOENT);
    assert_int_equal(kvm_irqfd_msi_add(&h.vm, MSI_ADDR(0), 0x61, &efd[1], &err), 0);
    /* A bad address is refused before anything is made. */
    int bad = 7;
    assert_int_equal(kvm_irqfd_msi_add(&h.vm, 0xfed00000, 0x61, &bad, &err), VMCORE_EINVAL);
    assert_int_equal(bad, -1);
    assert_non_null(strstr(err.msg, "outside the local APICs' window"));
    assert_int_equal(kvm_irqfd_msi_update(&h.vm, efd[0], 0, 0x61, &err), VMCORE_EINVAL);
    assert_int_equal(kvm_irqfd_msi_remove(&h.vm, efd[0]), 0);
    /* kvm_irq_free() releases the rest. */
    hand_close(&h);
    assert_int_equal(vt_count_fds(), fds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kvm_smp_1),
        cmocka_unit_test(test_kvm_smp_2),
        cmocka_unit_test(test_kvm_smp_8),
        cmocka_unit_test(test_emu_smp_1),
        cmocka_unit_test(test_emu_trampoline),
        cmocka_unit_test(test_kvm_trampoline),
        cmocka_unit_test(test_kvm_pit_ioapic),
        cmocka_unit_test(test_vcpus_limit),
        cmocka_unit_test(test_kvm_gsi_routing),
        cmocka_unit_test(test_kvm_aps_wait_for_sipi),
        cmocka_unit_test(test_kvm_signal_msi),
        cmocka_unit_test(test_kvm_irqfd_msi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
