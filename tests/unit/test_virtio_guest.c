/* The event channel (issue 13): virtio queue notifications as hypervisor doorbells
 * (machine_ioeventfd_add: KVM_IOEVENTFD on kvm) that follow BAR 4 wherever the guest puts
 * it, and MSI-X messages sent by writing a vector's eventfd (machine_msi_fd_add: an irqfd
 * on kvm) with masking and the PBA still ours.
 *
 * First at the machine level, with fd ops of the test's own (real eventfds, calls
 * recorded), so the bookkeeping runs on every host. Then tests/guests/virtio.elf, a
 * polling virtio-blk driver, boots on emu (plain MMIO path: the notify handler writes the
 * eventfd from the vCPU thread, MSIs go straight to the LAPIC) and on kvm, where no notify
 * may reach the MMIO handler and every MSI-X message must leave through an irqfd. */
#include "vt.h"
#include "vmtest.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/config.h"
#include "machine/machine.h"
#include "machine/pci.h"
#include "machine/platform.h"
#include "machine/virtio_pci.h"

/* ---- fd ops of the test's own ---- */

#define MAXB 16

struct fake {
    struct { uint64_t gpa; unsigned len; int fd; } bound[MAXB];
    unsigned nbound, adds, dels;
    int msi_fd[MAXB];
    uint64_t msi_addr[MAXB];
    uint32_t msi_data[MAXB];
    unsigned nmsi, msi_adds, msi_updates, msi_dels;
    unsigned direct_msis;       /* machine_msi() calls (the fallback) */
    bool refuse_any_length;
};

static int f_io_add(void *o, uint64_t gpa, unsigned len, int fd)
{
    struct fake *f = o;
    if (len == 0 && f->refuse_any_length)
        return VMCORE_EINVAL;
    for (unsigned i = 0; i < f->nbound; i++)
        if (f->bound[i].gpa == gpa)
            return VMCORE_EBUSY;        /* KVM refuses a second binding (EEXIST) */
    assert_true(f->nbound < MAXB);
    f->bound[f->nbound++] = (typeof(f->bound[0])){ gpa, len, fd };
    f->adds++;
    return 0;
}

static void f_io_del(void *o, uint64_t gpa, unsigned len, int fd)
{
    struct fake *f = o;
    for (unsigned i = 0; i < f->nbound; i++)
        if (f->bound[i].gpa == gpa && f->bound[i].len == len && f->bound[i].fd == fd) {
            f->bound[i] = f->bound[--f->nbound];
            f->dels++;
            return;
        }
    fail_msg("ioeventfd_del of 0x%llx len %u fd %d that was never bound",
             (unsigned long long)gpa, len, fd);
}

static int f_msi_add(void *o, uint64_t addr, uint32_t data, int *fd)
{
    struct fake *f = o;
    if ((addr & ~0xfffffull) != PLAT_LAPIC_BASE)
        return VMCORE_EINVAL;
    assert_true(f->nmsi < MAXB);
    *fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(*fd >= 0);
    f->msi_fd[f->nmsi] = *fd;
    f->msi_addr[f->nmsi] = addr;
    f->msi_data[f->nmsi++] = data;
    f->msi_adds++;
    return 0;
}

static int f_msi_update(void *o, int fd, uint64_t addr, uint32_t data)
{
    struct fake *f = o;
    if ((addr & ~0xfffffull) != PLAT_LAPIC_BASE)
        return VMCORE_EINVAL;
    for (unsigned i = 0; i < f->nmsi; i++)
        if (f->msi_fd[i] == fd) {
            f->msi_addr[i] = addr;
            f->msi_data[i] = data;
            f->msi_updates++;
            return 0;
        }
    return VMCORE_ENOENT;
}

static void f_msi_del(void *o, int fd)
{
    struct fake *f = o;
    for (unsigned i = 0; i < f->nmsi; i++)
        if (f->msi_fd[i] == fd) {
            close(fd);
            f->msi_fd[i] = f->msi_fd[--f->nmsi];
            f->msi_addr[i] = f->msi_addr[f->nmsi];
            f->msi_data[i] = f->msi_data[f->nmsi];
            f->msi_dels++;
            return;
        }
    fail_msg("msi_fd_del of fd %d that is not ours", fd);
}

static void f_direct_msi(void *o, uint64_t a, uint32_t d)
{
    __atomic_fetch_add(&((struct fake *)o)->direct_msis, 1, __ATOMIC_SEQ_CST);
}

static void f_irq(void *o, unsigned gsi, int level) { }

/* What the eventfd of the MSI route for @data counted (and reset it), -1 if none. */
static int64_t msi_fd_take(struct fake *f, uint32_t data)
{
    for (unsigned i = 0; i < f->nmsi; i++)
        if (f->msi_data[i] == data) {
            uint64_t n = 0;
            if (read(f->msi_fd[i], &n, sizeof n) != sizeof n)
                return 0;
            return (int64_t)n;
        }
    return -1;
}

/* ---- a virtio-rng driven by hand ---- */

#define DESC  0x100000u
#define AVAIL 0x101000u
#define USED  0x102000u
#define BUF   0x110000u

struct fx {
    struct machine *m;
    struct vmcore_config cfg;
    char kernel[64];
    struct fake fake;
    unsigned slot;
    uint64_t bar;
    uint16_t avail_idx;
    int fds, threads;
};

static uint64_t mrd(struct machine *m, uint64_t gpa, unsigned size)
{
    uint64_t v = 0;
    machine_mmio(m, gpa, false, size, &v);
    return v;
}

static void mwr(struct machine *m, uint64_t gpa, unsigned size, uint64_t v)
{
    machine_mmio(m, gpa, true, size, &v);
}

static uint64_t ecam(unsigned slot, unsigned off)
{
    return PLAT_PCI_ECAM_BASE + ((uint64_t)slot << 15) + off;
}

static void fx_create(struct fx *f, bool with_ops)
{
    memset(f, 0, sizeof *f);
    f->fds = vt_count_fds();
    f->threads = vt_count_threads();
    snprintf(f->kernel, sizeof f->kernel, "/tmp/vmcore-vev-k-XXXXXX");
    int fd = mkstemp(f->kernel);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\xf4", 1), 1);
    close(fd);
    f->cfg.memory_mib = 4;
    f->cfg.vcpus = 1;
    f->cfg.boot.kernel = f->kernel;
    f->cfg.boot.format = BOOT_FORMAT_RAW;
    f->cfg.boot.mode = BOOT_MODE_PROTECTED;
    f->cfg.rng = true;
    struct vmcore_err err = { 0 };
    assert_int_equal(machine_create(&f->m, &f->cfg, NULL, &err), 0);
    machine_set_irq_sink(f->m, &(struct machine_irq_sink){ f_irq, f_direct_msi, &f->fake });
    if (with_ops)
        machine_set_fd_ops(f->m, &(struct machine_fd_ops){
                                     f_io_add, f_io_del, f_msi_add, f_msi_update, f_msi_del,
                                     &f->fake });
    for (f->slot = 1; f->slot < 32; f->slot++)
        if (mrd(f->m, ecam(f->slot, 0), 4) == 0x10441af4u)
            break;
    assert_int_not_equal(f->slot, 32);
}

static void fx_destroy(struct fx *f)
{
    machine_destroy(f->m);
    /* Every binding went with the machine; nothing (fd, thread) is left behind. */
    assert_int_equal(f->fake.nbound, 0);
    assert_int_equal(f->fake.nmsi, 0);
    assert_int_equal(vt_count_fds(), f->fds);
    assert_int_equal(vt_count_threads(), f->threads);
    unlink(f->kernel);
}

static uint64_t bar4(struct fx *f)
{
    return (mrd(f->m, ecam(f->slot, PCI_BAR0 + 16), 4) & ~0xfull) |
           mrd(f->m, ecam(f->slot, PCI_BAR0 + 20), 4) << 32;
}

static bool bound_at(struct fx *f, uint64_t gpa)
{
    for (unsigned i = 0; i < f->fake.nbound; i++)
        if (f->fake.bound[i].gpa == gpa)
            return f->fake.bound[i].fd ==
                   virtio_pci_queue_eventfd((struct virtio_dev *)pci_device_at(f->m, f->slot), 0);
    return false;
}

static void cc_w(struct fx *f, unsigned off, unsigned size, uint64_t v)
{
    mwr(f->m, f->bar + off, size, v);
}

static uint64_t cc_r(struct fx *f, unsigned off, unsigned size)
{
    return mrd(f->m, f->bar + off, size);
}

static void drv_init(struct fx *f)
{
    f->bar = bar4(f);
    cc_w(f, 0x14, 1, 0);
    cc_w(f, 0x14, 1, 3);
    cc_w(f, 0x08, 4, 1);
    cc_w(f, 0x0c, 4, 1);                            /* VERSION_1 */
    cc_w(f, 0x14, 1, 3 | 8);
    assert_true(cc_r(f, 0x14, 1) & 8);
    memset(machine_ram(f->m) + DESC, 0, 0x3000);
    cc_w(f, 0x16, 2, 0);
    cc_w(f, 0x18, 2, 16);
    cc_w(f, 0x1a, 2, 1);                            /* MSI-X vector 1 */
    cc_w(f, 0x20, 8, DESC);
    cc_w(f, 0x28, 8, AVAIL);
    cc_w(f, 0x30, 8, USED);
    cc_w(f, 0x1c, 2, 1);
    cc_w(f, 0x14, 1, 3 | 8 | 4);
    f->avail_idx = 0;
}

/* One 8-byte rng request, waited for. Notified with @by_doorbell by writing the eventfd
 * bound as the doorbell, as the kernel would (no MMIO access at all), else through the
 * notify register's MMIO handler. */
static void drv_request(struct fx *f, bool by_doorbell)
{
    uint8_t *ram = machine_ram(f->m);
    uint64_t addr = BUF;
    uint32_t len = 8;
    uint16_t flags = VIRTQ_DESC_F_WRITE, head = 0;
    memcpy(ram + DESC, &addr, 8);
    memcpy(ram + DESC + 8, &len, 4);
    memcpy(ram + DESC + 12, &flags, 2);
    uint16_t *used_idx = (uint16_t *)(ram + USED + 2);
    uint16_t want = (uint16_t)(__atomic_load_n(used_idx, __ATOMIC_ACQUIRE) + 1);
    memcpy(ram + AVAIL + 4 + 2 * (f->avail_idx % 16), &head, 2);
    f->avail_idx++;
    __atomic_store_n((uint16_t *)(ram + AVAIL + 2), f->avail_idx, __ATOMIC_RELEASE);
    if (by_doorbell) {
        uint64_t one = 1;
        assert_true(f->fake.nbound > 0);
        assert_int_equal(write(f->fake.bound[0].fd, &one, 8), 8);
    } else {
        cc_w(f, VIRTIO_PCI_NOTIFY_OFF, 2, 0);
    }
    while (__atomic_load_n(used_idx, __ATOMIC_ACQUIRE) != want)
        sched_yield();
}

/* The notify register of queue 0 is bound while BAR 4 decodes, at wherever it is; it
 * moves with the BAR, goes when decoding goes off, and with the machine. */
static void test_doorbell_follows_bar(void **state)
{
    struct fx f;
    fx_create(&f, true);
    assert_int_equal(f.fake.nbound, 0);            /* nothing decodes at power-on */
    uint64_t b = bar4(&f);
    mwr(f.m, ecam(f.slot, PCI_COMMAND), 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    assert_int_equal(f.fake.nbound, 1);
    assert_true(bound_at(&f, b + VIRTIO_PCI_NOTIFY_OFF));
    assert_int_equal(f.fake.bound[0].len, 0);      /* any length */
    struct virtio_pci_counts c;
    virtio_pci_counts(&c);
    assert_true(c.doorbells_bound >= 1);

    /* Moved into the 32-bit window: the upper half first puts it over RAM (refused,
     * unbound), the lower half where it may decode (bound again there). */
    mwr(f.m, ecam(f.slot, PCI_BAR0 + 20), 4, 0);
    assert_int_equal(f.fake.nbound, 0);
    mwr(f.m, ecam(f.slot, PCI_BAR0 + 16), 4, 0xd0000000u);
    assert_int_equal(f.fake.nbound, 1);
    assert_true(bound_at(&f, 0xd0000000u + VIRTIO_PCI_NOTIFY_OFF));

    /* A notify through the doorbell alone wakes the I/O thread. */
    drv_init(&f);
    virtio_pci_counts(&c);
    uint64_t mmio_before = c.notify_mmio;
    drv_request(&f, true);
    virtio_pci_counts(&c);
    assert_int_equal(c.notify_mmio, mmio_before);
    /* The MMIO path still works beside it (a write the kernel does not match). */
    drv_request(&f, false);
    virtio_pci_counts(&c);
    assert_int_equal(c.notify_mmio, mmio_before + 1);

    mwr(f.m, ecam(f.slot, PCI_COMMAND), 2, PCI_COMMAND_MASTER);
    assert_int_equal(f.fake.nbound, 0);
    mwr(f.m, ecam(f.slot, PCI_COMMAND), 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    assert_int_equal(f.fake.nbound, 1);
    /* A reset unmaps (and unbinds); the destroy below must find nothing bound either. */
    machine_reset_devices(f.m);
    assert_int_equal(f.fake.nbound, 0);
    mwr(f.m, ecam(f.slot, PCI_COMMAND), 2, PCI_COMMAND_MEMORY);
    assert_int_equal(f.fake.nbound, 1);
    assert_int_equal(f.fake.adds, f.fake.dels + 1);
    fx_destroy(&f);
    assert_int_equal(f.fake.adds, f.fake.dels);
}

/* A backend without any-length doorbells gets the 16-bit one virtio drivers write. */
static void test_doorbell_fixed_length(void **state)
{
    struct fx f;
    fx_create(&f, true);
    f.fake.refuse_any_length = true;
    mwr(f.m, ecam(f.slot, PCI_COMMAND), 2, PCI_COMMAND_MEMORY);
    assert_int_equal(f.fake.nbound, 1);
    assert_int_equal(f.fake.bound[0].len, 2);
    fx_destroy(&f);
}

/* Without fd ops (emu, or the machine tests) nothing is bound; the MMIO path does it. */
static void test_no_fd_ops(void **state)
{
    struct fx f;
    fx_create(&f, false);
    mwr(f.m, ecam(f.slot, PCI_COMMAND), 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    unsigned cap = (unsigned)mrd(f.m, ecam(f.slot, PCI_CAPABILITY_LIST), 1);
    while (cap && mrd(f.m, ecam(f.slot, cap), 1) != PCI_CAP_ID_MSIX)
        cap = (unsigned)mrd(f.m, ecam(f.slot, cap + 1), 1);
    uint64_t tbl = mrd(f.m, ecam(f.slot, PCI_BAR0 + 4), 4) & ~0xfull;
    mwr(f.m, tbl + 16, 4, 0xfee00000);
    mwr(f.m, tbl + 24, 4, 0x41);
    mwr(f.m, tbl + 28, 4, 0);
    mwr(f.m, ecam(f.slot, cap + 2), 2, 0x8000);
    drv_init(&f);
    drv_request(&f, false);
    while (__atomic_load_n(&f.fake.direct_msis, __ATOMIC_SEQ_CST) == 0)
        sched_yield();
    fx_destroy(&f);
}

/* MSI-X through the vector's eventfd: routed when the guest unmasks it, re-routed when it
 * changes the message, never written while masked (the PBA bit is set instead, and the
 * unmask delivers it), machine_msi() for a message the backend refuses. */
static void test_msix_by_eventfd(void **state)
{
    struct fx f;
    fx_create(&f, true);
    mwr(f.m, ecam(f.slot, PCI_COMMAND), 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    unsigned cap = (unsigned)mrd(f.m, ecam(f.slot, PCI_CAPABILITY_LIST), 1);
    while (cap && mrd(f.m, ecam(f.slot, cap), 1) != PCI_CAP_ID_MSIX)
        cap = (unsigned)mrd(f.m, ecam(f.slot, cap + 1), 1);
    assert_int_not_equal(cap, 0);
    uint64_t tbl = mrd(f.m, ecam(f.slot, PCI_BAR0 + 4), 4) & ~0xfull;
    uint64_t pba = tbl + 0x800;
    mwr(f.m, ecam(f.slot, cap + 2), 2, 0x8000);
    mwr(f.m, tbl + 16, 4, 0xfee00000);
    mwr(f.m, tbl + 24, 4, 0x41);
    assert_int_equal(f.fake.msi_adds, 0);           /* masked: no route yet */
    mwr(f.m, tbl + 28, 4, 0);
    assert_int_equal(f.fake.msi_adds, 1);           /* the unmask routed it */
    assert_int_equal(f.fake.msi_addr[0], 0xfee00000);

    drv_init(&f);
    uint64_t by_fd0, by_call0, by_fd, by_call;
    pci_msix_counts(&by_fd0, &by_call0);
    drv_request(&f, true);
    int64_t n;
    while ((n = msi_fd_take(&f.fake, 0x41)) == 0)
        sched_yield();
    assert_int_equal(n, 1);
    assert_int_equal(__atomic_load_n(&f.fake.direct_msis, __ATOMIC_SEQ_CST), 0);
    pci_msix_counts(&by_fd, &by_call);
    assert_true(by_fd > by_fd0);

    /* Masked: the PBA bit, no message; the unmask sends it, through the eventfd. */
    mwr(f.m, tbl + 28, 4, 1);
    drv_request(&f, true);
    while (!(mrd(f.m, pba, 8) & 2))
        sched_yield();
    assert_int_equal(msi_fd_take(&f.fake, 0x41), 0);
    mwr(f.m, tbl + 28, 4, 0);
    assert_int_equal(mrd(f.m, pba, 8) & 2, 0);
    assert_int_equal(msi_fd_take(&f.fake, 0x41), 1);

    /* A new message (masked while the guest changes it): the same eventfd, re-routed. */
    mwr(f.m, tbl + 28, 4, 1);
    mwr(f.m, tbl + 24, 4, 0x42);
    mwr(f.m, tbl + 28, 4, 0);
    assert_int_equal(f.fake.msi_adds, 1);
    assert_int_equal(f.fake.msi_updates, 1);
    drv_request(&f, true);
    while ((n = msi_fd_take(&f.fake, 0x42)) == 0)
        sched_yield();
    assert_int_equal(n, 1);

    /* An address outside the LAPIC window: the backend refuses it, machine_msi() gets it
     * (and drops it, as a PC does). */
    mwr(f.m, tbl + 28, 4, 1);
    mwr(f.m, tbl + 16, 4, 0xfed00000);
    mwr(f.m, tbl + 28, 4, 0);
    drv_request(&f, true);
    while (__atomic_load_n(&f.fake.direct_msis, __ATOMIC_SEQ_CST) == 0)
        sched_yield();
    pci_msix_counts(&by_fd0, &by_call0);
    assert_true(by_call0 > by_call);
    fx_destroy(&f);
    assert_int_equal(f.fake.msi_dels, 1);
}

/* ---- the guest ---- */

static void make_image(char *path, size_t sz)
{
    snprintf(path, sz, "/tmp/vmcore-vev-img-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static char img[64 * 1024];
    memset(img, 0, sizeof img);
    strcpy(img, "vmcore virtio sector 0\n");
    assert_int_equal(write(fd, img, sizeof img), sizeof img);
    close(fd);
}

#define GUEST_IO "sector 0: vmcore virtio sector 0\nsector 1: written by the virtio guest\n"
#define GUEST_OUT GUEST_IO "msi-x ok\nvirtio ok\n"
#define GUEST_OUT_IRQ GUEST_IO "interrupts: 3\nvirtio ok\n"

/* Boot virtio.elf (@irq: its interrupt-driven mode) on @backend with a scratch disk; the
 * counters' change over the run come back. */
static void run_guest(const char *backend, bool irq, struct virtio_pci_counts *dc,
                      uint64_t *by_fd, uint64_t *by_call)
{
    char img[64];
    make_image(img, sizeof img);
    char top[256];
    snprintf(top, sizeof top, "\"disks\": [{\"path\": \"%s\"}]", img);
    struct virtio_pci_counts c0, c1;
    uint64_t f0, k0, f1, k1;
    virtio_pci_counts(&c0);
    pci_msix_counts(&f0, &k0);
    struct vmt_run r;
    vmt_open(&r, vmt_json(backend, "virtio.elf",
                          irq ? "\"format\": \"multiboot\", \"cmdline\": \"irq\""
                              : "\"format\": \"multiboot\"",
                          top));
    assert_true(vt_run_until(r.ctx, &r.ended, VMT_WAIT_MS));
    if (strcmp(r.out, irq ? GUEST_OUT_IRQ : GUEST_OUT) != 0)
        fail_msg("virtio.elf printed \"%s\"", r.out);
    assert_int_equal(r.exit.kind, VMCORE_EXIT_STATUS);
    assert_int_equal(r.exit.status, 0);
    vmt_close(&r);
    virtio_pci_counts(&c1);
    pci_msix_counts(&f1, &k1);
    dc->notify_mmio = c1.notify_mmio - c0.notify_mmio;
    dc->doorbells_bound = c1.doorbells_bound;   /* after the domain: must be back to 0 */
    *by_fd = f1 - f0;
    *by_call = k1 - k0;
    /* The guest's write reached the image. */
    char sec[64] = { 0 };
    int fd = open(img, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, sec, sizeof sec - 1, 512), sizeof sec - 1);
    close(fd);
    unlink(img);
    assert_memory_equal(sec, "written by the virtio guest\n", 28);
}

/* emu: the notify register's MMIO handler signals the eventfd from the vCPU thread (one
 * per request, no doorbell bound), MSI-X goes to the LAPIC by a call. */
static void test_guest_emu(void **state)
{
    struct virtio_pci_counts c;
    uint64_t by_fd, by_call;
    run_guest("emu", state && *state, &c, &by_fd, &by_call);
    assert_int_equal(c.notify_mmio, 3);
    assert_int_equal(c.doorbells_bound, 0);
    assert_int_equal(by_fd, 0);
    assert_true(by_call >= 1);
}

/* kvm: every notify is a KVM_IOEVENTFD (not one reaches the MMIO handler, though the
 * guest moved the BAR after decoding began), every MSI-X message an irqfd write. */
static void test_guest_kvm(void **state)
{
    vt_require_kvm();
    struct virtio_pci_counts c;
    uint64_t by_fd, by_call;
    run_guest("kvm", state && *state, &c, &by_fd, &by_call);
    assert_int_equal(c.notify_mmio, 0);
    assert_int_equal(c.doorbells_bound, 0);
    assert_true(by_fd >= 1);
    assert_int_equal(by_call, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doorbell_follows_bar),
        cmocka_unit_test(test_doorbell_fixed_length),
        cmocka_unit_test(test_no_fd_ops),
        cmocka_unit_test(test_msix_by_eventfd),
        cmocka_unit_test(test_guest_emu),
        cmocka_unit_test(test_guest_kvm),
        /* The same, the guest sleeping in HLT until each completion's MSI-X wakes it. */
        { "test_guest_emu_irq", test_guest_emu, NULL, NULL, (void *)"irq" },
        { "test_guest_kvm_irq", test_guest_kvm, NULL, NULL, (void *)"irq" },
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
