/* virtio-pci, virtqueues, virtio-blk and virtio-rng as a guest driver drives them: config
 * space through ECAM, the BAR 4 registers by MMIO, rings and buffers in guest RAM, the
 * device's I/O thread answering on its own. Then hostile drivers: loops, long chains,
 * addresses outside RAM, overflowing lengths, bad queue sizes; and image locking and
 * fd/thread leaks. */
#include "vt.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "core/config.h"
#include "machine/machine.h"
#include "machine/pci.h"
#include "machine/platform.h"
#include "machine/virtio_pci.h"

#define DESC  0x100000u
#define AVAIL 0x101000u
#define USED  0x102000u
#define BUF   0x110000u
#define QSIZE 16
#define IMG_SECTORS 2048

struct fx {
    struct machine *m;
    struct vmcore_config cfg;
    struct config_disk disks[2];
    char kernel[64], img[64];
    unsigned slot;
    uint64_t bar;
    uint16_t avail_idx;
    unsigned msis;
    int fds, threads;
};

static void on_irq(void *o, unsigned gsi, int level) { }
static void on_msi(void *o, uint64_t a, uint32_t d) { __atomic_fetch_add(&((struct fx *)o)->msis, 1, __ATOMIC_SEQ_CST); }

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

static void make_files(struct fx *f)
{
    snprintf(f->kernel, sizeof f->kernel, "/tmp/vmcore-vio-k-XXXXXX");
    int fd = mkstemp(f->kernel);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\xf4", 1), 1);
    close(fd);
    snprintf(f->img, sizeof f->img, "/tmp/vmcore-vio-i-XXXXXX");
    fd = mkstemp(f->img);
    assert_true(fd >= 0);
    static uint8_t sec[512];
    for (unsigned s = 0; s < IMG_SECTORS; s++) {
        memset(sec, (int)(s & 0xff), sizeof sec);
        assert_int_equal(write(fd, sec, sizeof sec), sizeof sec);
    }
    close(fd);
}

static int create(struct fx *f, size_t ndisks, bool rng, struct vmcore_err *err)
{
    f->cfg.memory_mib = 4;
    f->cfg.vcpus = 1;
    f->cfg.boot.kernel = f->kernel;
    f->cfg.boot.format = BOOT_FORMAT_RAW;
    f->cfg.boot.mode = BOOT_MODE_PROTECTED;
    f->cfg.disks = f->disks;
    f->cfg.ndisks = ndisks;
    f->cfg.rng = rng;
    int rc = machine_create(&f->m, &f->cfg, NULL, err);
    if (rc == 0)
        machine_set_irq_sink(f->m, &(struct machine_irq_sink){ on_irq, on_msi, f });
    return rc;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    make_files(f);
    f->fds = vt_count_fds();
    f->threads = vt_count_threads();
    f->disks[0] = (struct config_disk){ .path = f->img, .serial = "serial-0123" };
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    machine_destroy(f->m);
    /* Every eventfd, image fd and I/O thread is gone with the machine. */
    assert_int_equal(vt_count_fds(), f->fds);
    assert_int_equal(vt_count_threads(), f->threads);
    unlink(f->kernel);
    unlink(f->img);
    free(f);
    return 0;
}

/* ---- a small driver ---- */

static bool find(struct fx *f, uint16_t device)
{
    for (unsigned s = 1; s < 32; s++)
        if (mrd(f->m, ecam(s, 0), 2) == 0x1af4 && mrd(f->m, ecam(s, 2), 2) == device) {
            f->slot = s;
            mwr(f->m, ecam(s, PCI_COMMAND), 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
            f->bar = (mrd(f->m, ecam(s, PCI_BAR0 + 4 * VIRTIO_PCI_BAR), 4) & ~0xfull) |
                     mrd(f->m, ecam(s, PCI_BAR0 + 4 * VIRTIO_PCI_BAR + 4), 4) << 32;
            return true;
        }
    return false;
}

static uint64_t cc(struct fx *f, unsigned off, unsigned size) { return mrd(f->m, f->bar + off, size); }
static void ccw(struct fx *f, unsigned off, unsigned size, uint64_t v) { mwr(f->m, f->bar + off, size, v); }

static uint64_t features(struct fx *f)
{
    ccw(f, 0x00, 4, 0);
    uint64_t lo = cc(f, 0x04, 4);
    ccw(f, 0x00, 4, 1);
    return lo | cc(f, 0x04, 4) << 32;
}

/* Negotiate @want, set up queue 0 of @qsize; returns the status read back. */
static uint8_t init_dev(struct fx *f, uint64_t want, unsigned qsize)
{
    ccw(f, 0x14, 1, 0);
    ccw(f, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    ccw(f, 0x08, 4, 0);
    ccw(f, 0x0c, 4, (uint32_t)want);
    ccw(f, 0x08, 4, 1);
    ccw(f, 0x0c, 4, want >> 32);
    ccw(f, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    uint8_t st = (uint8_t)cc(f, 0x14, 1);
    if (!(st & VIRTIO_STATUS_FEATURES_OK))
        return st;
    memset(machine_ram(f->m) + DESC, 0, 0x3000);
    ccw(f, 0x16, 2, 0);
    ccw(f, 0x18, 2, qsize);
    ccw(f, 0x20, 8, DESC);
    ccw(f, 0x28, 4, AVAIL);
    ccw(f, 0x2c, 4, 0);
    ccw(f, 0x30, 8, USED);
    ccw(f, 0x1c, 2, 1);
    f->avail_idx = 0;
    ccw(f, 0x14, 1, st | VIRTIO_STATUS_DRIVER_OK);
    return (uint8_t)cc(f, 0x14, 1);
}

static void desc(struct fx *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next)
{
    uint8_t *d = machine_ram(f->m) + DESC + 16 * i;
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
}

static uint16_t used_idx(struct fx *f)
{
    return __atomic_load_n((uint16_t *)(machine_ram(f->m) + USED + 2), __ATOMIC_ACQUIRE);
}

/* Make chain @head available, notify, and wait until the device used it or broke.
 * Returns the used length, or -1 if the device marked itself NEEDS_RESET. */
static int64_t submit(struct fx *f, uint16_t head)
{
    uint8_t *ram = machine_ram(f->m);
    uint16_t want = (uint16_t)(used_idx(f) + 1);
    memcpy(ram + AVAIL + 4 + 2 * (f->avail_idx % QSIZE), &head, 2);
    f->avail_idx++;
    __atomic_store_n((uint16_t *)(ram + AVAIL + 2), f->avail_idx, __ATOMIC_RELEASE);
    ccw(f, VIRTIO_PCI_NOTIFY_OFF, 2, 0);
    for (;;) {
        if (used_idx(f) == want) {
            uint32_t len;
            memcpy(&len, ram + USED + 4 + 8 * ((want - 1) % QSIZE) + 4, 4);
            return len;
        }
        if (cc(f, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET)
            return -1;
        sched_yield();
    }
}

#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_EV (1ull << VIRTIO_F_EVENT_IDX)
#define F_IND (1ull << VIRTIO_F_INDIRECT_DESC)

struct blk_hdr { uint32_t type, reserved; uint64_t sector; };

/* A blk request: header, optional data (@write: readable, else writable), status. */
static int64_t blk_req(struct fx *f, uint32_t type, uint64_t sector, uint32_t len, bool write,
                       uint8_t *status)
{
    uint8_t *ram = machine_ram(f->m);
    struct blk_hdr h = { type, 0, sector };
    memcpy(ram + BUF, &h, sizeof h);
    ram[BUF + 0x8000] = 0xee;
    unsigned n = 0;
    desc(f, n, BUF, sizeof h, VIRTQ_DESC_F_NEXT, (uint16_t)(n + 1)); n++;
    if (len) {
        desc(f, n, BUF + 0x1000, len, VIRTQ_DESC_F_NEXT | (write ? 0 : VIRTQ_DESC_F_WRITE),
             (uint16_t)(n + 1));
        n++;
    }
    desc(f, n, BUF + 0x8000, 1, VIRTQ_DESC_F_WRITE, 0);
    int64_t r = submit(f, 0);
    *status = ram[BUF + 0x8000];
    return r;
}

static void test_blk_io(void **state)
{
    struct fx *f = *state;
    struct vmcore_err err = { 0 };
    assert_int_equal(create(f, 1, false, &err), 0);
    assert_true(find(f, 0x1040 + VIRTIO_ID_BLOCK));
    assert_int_equal(mrd(f->m, ecam(f->slot, PCI_REVISION_ID), 1), 1);
    uint64_t feat = features(f);
    assert_true(feat & F_V1);
    assert_false(feat & (1ull << 5));             /* not read-only */
    assert_true(feat & (1ull << 9));              /* FLUSH */
    uint8_t st = init_dev(f, F_V1 | F_EV | (1ull << 9), QSIZE);
    assert_true(st & VIRTIO_STATUS_DRIVER_OK);
    assert_int_equal(cc(f, VIRTIO_PCI_DEVICE_OFF, 8), IMG_SECTORS);   /* capacity */

    uint8_t *ram = machine_ram(f->m);
    uint8_t s;
    assert_int_equal(blk_req(f, 0, 3, 1024, false, &s), 1025);
    assert_int_equal(s, 0);
    assert_int_equal(ram[BUF + 0x1000], 3);
    assert_int_equal(ram[BUF + 0x1000 + 1023], 4);

    memset(ram + BUF + 0x1000, 0x5a, 512);
    assert_int_equal(blk_req(f, 1, 5, 512, true, &s), 1);
    assert_int_equal(s, 0);
    assert_int_equal(blk_req(f, 4, 0, 0, false, &s), 1);
    assert_int_equal(s, 0);
    int fd = open(f->img, O_RDONLY);
    uint8_t back[512];
    assert_int_equal(pread(fd, back, 512, 5 * 512), 512);
    close(fd);
    assert_int_equal(back[0], 0x5a);
    assert_int_equal(back[511], 0x5a);

    assert_int_equal(blk_req(f, 8, 0, 20, false, &s), 21);
    assert_int_equal(s, 0);
    assert_memory_equal(ram + BUF + 0x1000, "serial-0123\0\0\0\0\0\0\0\0", 20);

    /* Beyond the capacity, and straddling its end: IOERR, the device carries on. */
    assert_int_equal(blk_req(f, 0, IMG_SECTORS, 512, false, &s), 1);
    assert_int_equal(s, 1);
    assert_int_equal(blk_req(f, 1, IMG_SECTORS - 1, 1024, true, &s), 1);
    assert_int_equal(s, 1);
    assert_int_equal(blk_req(f, 0, UINT64_MAX, 512, false, &s), 1);
    assert_int_equal(s, 1);
    assert_int_equal(blk_req(f, 77, 0, 0, false, &s), 1);
    assert_int_equal(s, 2);                         /* UNSUPP */

    /* An indirect chain: the same read through a table in RAM. */
    struct { uint64_t a; uint32_t l; uint16_t fl, nx; } ind[3] = {
        { BUF, 16, VIRTQ_DESC_F_NEXT, 1 },
        { BUF + 0x1000, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2 },
        { BUF + 0x8000, 1, VIRTQ_DESC_F_WRITE, 0 },
    };
    struct blk_hdr h = { 0, 0, 7 };
    memcpy(ram + BUF, &h, sizeof h);
    memcpy(ram + BUF + 0x4000, ind, sizeof ind);
    desc(f, 0, BUF + 0x4000, sizeof ind, VIRTQ_DESC_F_INDIRECT, 0);
    assert_int_equal(submit(f, 0), 513);
    assert_int_equal(ram[BUF + 0x1000], 7);
}

static void test_blk_readonly(void **state)
{
    struct fx *f = *state;
    struct vmcore_err err = { 0 };
    f->disks[0].readonly = true;
    assert_int_equal(create(f, 1, false, &err), 0);
    assert_true(find(f, 0x1042));
    assert_true(features(f) & (1ull << 5));       /* RO offered */
    init_dev(f, F_V1 | (1ull << 5), QSIZE);
    uint8_t s;
    assert_int_equal(blk_req(f, 1, 0, 512, true, &s), 1);
    assert_int_equal(s, 1);
    assert_int_equal(blk_req(f, 0, 0, 512, false, &s), 513);
    assert_int_equal(s, 0);
}

static void test_rng(void **state)
{
    struct fx *f = *state;
    struct vmcore_err err = { 0 };
    assert_int_equal(create(f, 0, true, &err), 0);
    assert_true(find(f, 0x1040 + VIRTIO_ID_RNG));
    init_dev(f, F_V1, QSIZE);
    uint8_t *ram = machine_ram(f->m);
    memset(ram + BUF, 0, 64);
    desc(f, 0, BUF, 64, VIRTQ_DESC_F_WRITE, 0);
    assert_int_equal(submit(f, 0), 64);
    unsigned nz = 0;
    for (int i = 0; i < 64; i++)
        nz += ram[BUF + i] != 0;
    assert_true(nz > 32);
}

/* Interrupts: MSI-X when the guest enables it (a message per used batch the driver asked
 * for), else INTx with the ISR, which a read clears. */
static void test_interrupts(void **state)
{
    struct fx *f = *state;
    struct vmcore_err err = { 0 };
    assert_int_equal(create(f, 0, true, &err), 0);
    assert_true(find(f, 0x1044));
    init_dev(f, F_V1, QSIZE);
    desc(f, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    assert_int_equal(submit(f, 0), 8);
    /* MSI-X off: INTx, ISR bit 0 (queue), cleared by the read. */
    while (cc(f, VIRTIO_PCI_ISR_OFF, 1) == 0)
        sched_yield();
    assert_int_equal(cc(f, VIRTIO_PCI_ISR_OFF, 1), 0);
    assert_int_equal(f->msis, 0);

    /* MSI-X on: find the capability, enable it, unmask entry 1 for queue 0. */
    unsigned cap = (unsigned)mrd(f->m, ecam(f->slot, PCI_CAPABILITY_LIST), 1);
    while (cap && mrd(f->m, ecam(f->slot, cap), 1) != PCI_CAP_ID_MSIX)
        cap = (unsigned)mrd(f->m, ecam(f->slot, cap + 1), 1);
    assert_int_not_equal(cap, 0);
    assert_int_equal(mrd(f->m, ecam(f->slot, cap + 2), 2) & 0x7ff, 1);    /* 2 vectors */
    mwr(f->m, ecam(f->slot, cap + 2), 2, 0x8000);
    uint64_t tbl = mrd(f->m, ecam(f->slot, PCI_BAR0 + 4 * VIRTIO_PCI_MSIX_BAR), 4) & ~0xfull;
    mwr(f->m, tbl + 16, 4, 0xfee00000);
    mwr(f->m, tbl + 24, 4, 0x41);
    mwr(f->m, tbl + 28, 4, 0);                      /* unmasked */
    init_dev(f, F_V1, QSIZE);
    ccw(f, 0x16, 2, 0);
    ccw(f, 0x1a, 2, 1);
    assert_int_equal(cc(f, 0x1a, 2), 1);
    ccw(f, 0x1a, 2, 7);                             /* no such vector */
    assert_int_equal(cc(f, 0x1a, 2), VIRTIO_MSI_NO_VECTOR);
    ccw(f, 0x1a, 2, 1);
    desc(f, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    assert_int_equal(submit(f, 0), 8);
    while (__atomic_load_n(&f->msis, __ATOMIC_SEQ_CST) == 0)
        sched_yield();
    /* The driver asks for no interrupts (NO_INTERRUPT, no EVENT_IDX): none comes. */
    uint16_t no_irq = VIRTQ_AVAIL_F_NO_INTERRUPT;
    memcpy(machine_ram(f->m) + AVAIL, &no_irq, 2);
    unsigned before = __atomic_load_n(&f->msis, __ATOMIC_SEQ_CST);
    assert_int_equal(submit(f, 0), 8);
    assert_int_equal(submit(f, 0), 8);
    /* Interrupts back on: one more message. The I/O thread raises a batch's interrupt
     * before it takes the next request, so once this one arrived any wrongly raised for
     * the two before would have too. */
    no_irq = 0;
    memcpy(machine_ram(f->m) + AVAIL, &no_irq, 2);
    assert_int_equal(submit(f, 0), 8);
    while (__atomic_load_n(&f->msis, __ATOMIC_SEQ_CST) == before)
        sched_yield();
    assert_int_equal(__atomic_load_n(&f->msis, __ATOMIC_SEQ_CST), before + 1);
}

/* Destroying (and resetting) a machine while its I/O threads are busy: they stop, are
 * joined, and leave nothing behind (teardown counts fds and threads). */
static void test_destroy_busy(void **state)
{
    struct fx *f = *state;
    struct vmcore_err err = { 0 };
    f->disks[1] = (struct config_disk){ .path = f->img, .readonly = true };
    f->disks[0].readonly = true;
    assert_int_equal(create(f, 2, true, &err), 0);
    uint8_t *ram = machine_ram(f->m);
    for (uint16_t dev = 0x1042; dev <= 0x1044; dev += 2) {
        assert_true(find(f, dev));
        init_dev(f, F_V1, QSIZE);
        for (unsigned i = 0; i < QSIZE; i++)
            desc(f, i, BUF + 0x1000 * i, 0x1000, VIRTQ_DESC_F_WRITE, 0);
        for (uint16_t i = 0; i < QSIZE; i++)
            memcpy(ram + AVAIL + 4 + 2 * i, &i, 2);
        __atomic_store_n((uint16_t *)(ram + AVAIL + 2), (uint16_t)QSIZE, __ATOMIC_RELEASE);
        ccw(f, VIRTIO_PCI_NOTIFY_OFF, 2, 0);
    }
    machine_reset_devices(f->m);
    ccw(f, VIRTIO_PCI_NOTIFY_OFF, 2, 0);   /* BARs are off after the reset: goes nowhere */
    /* teardown destroys it with notifications still pending */
}

static void test_version1_required(void **state)
{
    struct fx *f = *state;
    struct vmcore_err err = { 0 };
    assert_int_equal(create(f, 0, true, &err), 0);
    assert_true(find(f, 0x1044));
    assert_false(init_dev(f, 0, QSIZE) & VIRTIO_STATUS_FEATURES_OK);
    /* Features we never offered are refused too. */
    assert_false(init_dev(f, F_V1 | 1ull << 40, QSIZE) & VIRTIO_STATUS_FEATURES_OK);
    assert_true(init_dev(f, F_V1, QSIZE) & VIRTIO_STATUS_DRIVER_OK);
}

/* A hostile chain makes the device NEEDS_RESET; a reset brings it back. */
static void expect_broken(struct fx *f)
{
    assert_int_equal(submit(f, 0), -1);
    assert_true(cc(f, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
    assert_true(init_dev(f, F_V1 | F_IND, QSIZE) & VIRTIO_STATUS_DRIVER_OK);
    assert_false(cc(f, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_hostile(void **state)
{
    struct fx *f = *state;
    struct vmcore_err err = { 0 };
    assert_int_equal(create(f, 1, true, &err), 0);
    assert_true(find(f, 0x1042));
    uint64_t top = machine_ram_size(f->m);

    /* Not a power of two, or above the maximum: broken at enable. */
    assert_true(init_dev(f, F_V1, 12) & VIRTIO_STATUS_NEEDS_RESET);
    assert_true(init_dev(f, F_V1, 512) & VIRTIO_STATUS_NEEDS_RESET);
    assert_true(init_dev(f, F_V1 | F_IND, QSIZE) & VIRTIO_STATUS_DRIVER_OK);

    desc(f, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 0);                 /* a loop on itself */
    expect_broken(f);
    for (unsigned i = 0; i < QSIZE; i++)                        /* a cycle through all */
        desc(f, i, BUF, 16, VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) % QSIZE));
    expect_broken(f);
    desc(f, 0, BUF, 16, VIRTQ_DESC_F_NEXT, QSIZE);             /* next out of range */
    expect_broken(f);
    desc(f, 0, top - 8, 16, VIRTQ_DESC_F_WRITE, 0);            /* crosses RAM's end */
    expect_broken(f);
    desc(f, 0, 0xfffffffffffff000ull, 0xffffffffu, 0, 0);     /* wraps */
    expect_broken(f);
    desc(f, 0, PLAT_PCI_ECAM_BASE, 64, VIRTQ_DESC_F_WRITE, 0); /* MMIO, not RAM */
    expect_broken(f);
    desc(f, 0, BUF, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);   /* read after write */
    desc(f, 1, BUF, 16, 0, 0);
    expect_broken(f);
    desc(f, 0, BUF + 0x4000, 24, VIRTQ_DESC_F_INDIRECT, 0);    /* not a multiple of 16 */
    expect_broken(f);
    uint8_t *ram = machine_ram(f->m);
    struct { uint64_t a; uint32_t l; uint16_t fl, nx; } ind[2] = {
        { BUF + 0x5000, 32, VIRTQ_DESC_F_INDIRECT, 0 },         /* nested */
        { BUF, 16, 0, 0 },
    };
    memcpy(ram + BUF + 0x4000, ind, sizeof ind);
    desc(f, 0, BUF + 0x4000, sizeof ind, VIRTQ_DESC_F_INDIRECT, 0);
    expect_broken(f);
    ind[0] = (typeof(ind[0])){ BUF, 16, VIRTQ_DESC_F_NEXT, 1 };     /* loop in a table */
    ind[1] = (typeof(ind[1])){ BUF, 16, VIRTQ_DESC_F_NEXT, 0 };
    memcpy(ram + BUF + 0x4000, ind, sizeof ind);
    desc(f, 0, BUF + 0x4000, sizeof ind, VIRTQ_DESC_F_INDIRECT, 0);
    expect_broken(f);
    desc(f, 0, top - 16, 64, VIRTQ_DESC_F_INDIRECT, 0);        /* table outside RAM */
    expect_broken(f);

    /* A head index past the queue, an available index far ahead. */
    uint16_t bad = QSIZE + 3;
    assert_int_equal(submit(f, bad), -1);
    assert_true(init_dev(f, F_V1, QSIZE) & VIRTIO_STATUS_DRIVER_OK);
    __atomic_store_n((uint16_t *)(ram + AVAIL + 2), (uint16_t)1000, __ATOMIC_RELEASE);
    ccw(f, VIRTIO_PCI_NOTIFY_OFF, 2, 0);
    while (!(cc(f, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET))
        sched_yield();

    /* Rings outside RAM. */
    init_dev(f, F_V1, QSIZE);
    ccw(f, 0x14, 1, 0);
    ccw(f, 0x14, 1, 3);
    ccw(f, 0x0c, 4, 0);
    ccw(f, 0x08, 4, 1);
    ccw(f, 0x0c, 4, 1);
    ccw(f, 0x14, 1, 11);
    ccw(f, 0x18, 2, QSIZE);
    ccw(f, 0x20, 8, top - 16);
    ccw(f, 0x1c, 2, 1);
    assert_true(cc(f, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);

    /* Random register writes of every size and offset: no crash. */
    srand(7);
    for (int i = 0; i < 20000; i++) {
        unsigned size = 1u << (rand() % 4);
        uint64_t off = (uint64_t)rand() % VIRTIO_PCI_BAR_SIZE;
        uint64_t v = (uint64_t)rand() << 32 | (uint64_t)rand();
        if (rand() & 1)
            mwr(f->m, f->bar + off, size, v);
        else
            mrd(f->m, f->bar + off, size);
    }
}

static void test_image_lock(void **state)
{
    struct fx *f = *state;
    struct vmcore_err err = { 0 };
    f->disks[1] = (struct config_disk){ .path = f->img };
    assert_int_not_equal(create(f, 2, false, &err), 0);
    assert_null(f->m);
    assert_string_equal(err.path, "disks[1].path");
    assert_non_null(strstr(err.msg, "in use"));
    /* Two read-only opens share the image. */
    f->disks[0].readonly = f->disks[1].readonly = true;
    assert_int_equal(create(f, 2, false, &err), 0);
    machine_destroy(f->m);
    f->m = NULL;
    f->disks[0].readonly = f->disks[1].readonly = false;
    f->disks[0].path = "/nonexistent/disk.img";
    assert_int_not_equal(create(f, 1, false, &err), 0);
    assert_string_equal(err.path, "disks[0].path");
    f->disks[0].path = "/tmp";
    assert_int_not_equal(create(f, 1, false, &err), 0);
    assert_string_equal(err.path, "disks[0].path");
    assert_int_equal(vt_count_fds(), f->fds);
    assert_int_equal(vt_count_threads(), f->threads);
}

/* ---- virtio-blk through io_uring, and its synchronous fallback ---- */

/* The @nth (0-based) device with PCI device ID @device, set up as find() does. */
static bool find_nth(struct fx *f, uint16_t device, unsigned nth)
{
    for (unsigned s = 1; s < 32; s++)
        if (mrd(f->m, ecam(s, 0), 2) == 0x1af4 && mrd(f->m, ecam(s, 2), 2) == device &&
            nth-- == 0) {
            f->slot = s;
            mwr(f->m, ecam(s, PCI_COMMAND), 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
            f->bar = (mrd(f->m, ecam(s, PCI_BAR0 + 4 * VIRTIO_PCI_BAR), 4) & ~0xfull) |
                     mrd(f->m, ecam(s, PCI_BAR0 + 4 * VIRTIO_PCI_BAR + 4), 4) << 32;
            return true;
        }
    return false;
}

static struct virtio_dev *blk_dev(struct fx *f, unsigned index)
{
    char name[24];
    snprintf(name, sizeof name, "virtio-blk%u", index);
    return (struct virtio_dev *)machine_device_find(f->m, name);
}

/* Whether this process may set up an io_uring at all (seccomp, kernel.io_uring_disabled,
 * an old kernel): what the device's default must follow. */
static bool uring_possible(void)
{
    struct io_uring r;
    if (io_uring_queue_init(4, &r, 0) < 0)
        return false;
    io_uring_queue_exit(&r);
    return true;
}

/* VMCORE_BLK_URING and VMCORE_BLK_THREADS as the test found them, to put back. */
struct blk_env {
    char *uring, *threads;
};

static struct blk_env saved_env(void)
{
    const char *u = getenv("VMCORE_BLK_URING"), *t = getenv("VMCORE_BLK_THREADS");
    return (struct blk_env){ u ? strdup(u) : NULL, t ? strdup(t) : NULL };
}

static void put_env(const char *name, const char *v)
{
    if (v)
        setenv(name, v, 1);
    else
        unsetenv(name);
}

static void restore_env(struct blk_env e)
{
    put_env("VMCORE_BLK_URING", e.uring);
    put_env("VMCORE_BLK_THREADS", e.threads);
    free(e.uring);
    free(e.threads);
}

/* io_uring by default (where the kernel allows it), the thread pool with
 * VMCORE_BLK_URING=0 (or where io_uring is refused), the synchronous path with
 * VMCORE_BLK_THREADS=0 too; anything else than "0" leaves the default. */
static void test_blk_uring_mode(void **state)
{
    struct fx *f = *state;
    struct vmcore_err err = { 0 };
    struct blk_env env = saved_env();
    bool possible = uring_possible();
    if (!possible)
        fprintf(stderr, "note: io_uring refused here: the default must be the pool\n");
    unsetenv("VMCORE_BLK_URING");
    unsetenv("VMCORE_BLK_THREADS");
    assert_int_equal(create(f, 1, false, &err), 0);
    assert_non_null(blk_dev(f, 0));
    assert_int_equal(virtio_blk_uses_uring(blk_dev(f, 0)), possible);
    assert_int_equal(virtio_blk_pool_threads(blk_dev(f, 0)), possible ? 0 : 4);
    assert_false(virtio_blk_uses_uring(NULL));
    assert_int_equal(virtio_blk_pool_threads(NULL), 0);
    machine_destroy(f->m);
    setenv("VMCORE_BLK_URING", "0", 1);
    assert_int_equal(create(f, 1, false, &err), 0);
    assert_false(virtio_blk_uses_uring(blk_dev(f, 0)));
    assert_int_equal(virtio_blk_pool_threads(blk_dev(f, 0)), 4);
    machine_destroy(f->m);
    setenv("VMCORE_BLK_THREADS", "0", 1);
    assert_int_equal(create(f, 1, false, &err), 0);
    assert_false(virtio_blk_uses_uring(blk_dev(f, 0)));
    assert_int_equal(virtio_blk_pool_threads(blk_dev(f, 0)), 0);
    machine_destroy(f->m);
    setenv("VMCORE_BLK_URING", "1", 1);
    setenv("VMCORE_BLK_THREADS", "1", 1);
    assert_int_equal(create(f, 1, false, &err), 0);
    assert_int_equal(virtio_blk_uses_uring(blk_dev(f, 0)), possible);
    restore_env(env);
}

/* A batch of requests on queue 0 of the device f->bar points at: request i uses
 * descriptors 3i (header), 3i + 1 (data, unless @len is 0) and 3i + 2 (status). */
#define B_QSIZE 128
#define B_HDR   0x110000u           /* 32 bytes a request */
#define B_ST    0x118000u           /* a byte a request */
#define B_DATA  0x120000u           /* 8 KiB a request */
#define B_MAX   40

struct breq {
    uint32_t type;
    uint64_t sector;
    uint32_t len;
    uint8_t fill;                   /* a write's data */
    uint8_t want_st;
    uint32_t want_len;              /* the used length */
};

/* Post every request of @r, notify once, wait for all of them; check each used length
 * and status (in whatever order they came back). */
static void blk_batch(struct fx *f, const struct breq *r, unsigned n)
{
    uint8_t *ram = machine_ram(f->m);
    assert_true(n <= B_MAX && 3 * n <= B_QSIZE);
    uint16_t base = used_idx(f);
    for (unsigned i = 0; i < n; i++) {
        struct blk_hdr h = { r[i].type, 0, r[i].sector };
        memcpy(ram + B_HDR + 32 * i, &h, sizeof h);
        ram[B_ST + i] = 0xee;
        bool write = r[i].type == 1;
        if (write)
            memset(ram + B_DATA + 0x2000 * i, r[i].fill, r[i].len);
        else
            memset(ram + B_DATA + 0x2000 * i, 0xcc, 0x2000);
        uint16_t d = (uint16_t)(3 * i);
        if (r[i].len) {
            desc(f, d, B_HDR + 32 * i, sizeof h, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 1));
            desc(f, d + 1u, B_DATA + 0x2000 * i, r[i].len,
                 VIRTQ_DESC_F_NEXT | (write ? 0 : VIRTQ_DESC_F_WRITE), (uint16_t)(d + 2));
        } else {
            desc(f, d, B_HDR + 32 * i, sizeof h, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 2));
        }
        desc(f, d + 2u, B_ST + i, 1, VIRTQ_DESC_F_WRITE, 0);
        memcpy(ram + AVAIL + 4 + 2 * (f->avail_idx % B_QSIZE), &d, 2);
        f->avail_idx++;
    }
    __atomic_store_n((uint16_t *)(ram + AVAIL + 2), f->avail_idx, __ATOMIC_RELEASE);
    ccw(f, VIRTIO_PCI_NOTIFY_OFF, 2, 0);                /* one notify for all */
    for (unsigned spins = 0; (uint16_t)(used_idx(f) - base) != n; spins++) {
        assert_false(cc(f, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
        assert_true(spins < 20000);                     /* ~20 s */
        nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
    }
    bool seen[B_MAX] = { false };
    for (unsigned k = 0; k < n; k++) {
        uint32_t id, len;
        unsigned at = (uint16_t)(base + k) % B_QSIZE;
        memcpy(&id, ram + USED + 4 + 8 * at, 4);
        memcpy(&len, ram + USED + 4 + 8 * at + 4, 4);
        assert_true(id % 3 == 0 && id / 3 < n);
        unsigned i = id / 3;
        assert_false(seen[i]);
        seen[i] = true;
        if (len != r[i].want_len || ram[B_ST + i] != r[i].want_st)
            fprintf(stderr, "request %u (type %u sector %llu len %u): used %u status %u\n", i,
                    r[i].type, (unsigned long long)r[i].sector, r[i].len, len, ram[B_ST + i]);
        assert_int_equal(len, r[i].want_len);
        assert_int_equal(ram[B_ST + i], r[i].want_st);
        if (r[i].type == 0 && r[i].want_st == 0)
            for (uint32_t b = 0; b < r[i].len; b += 512)
                assert_int_equal(ram[B_DATA + 0x2000 * i + b],
                                 (uint8_t)((r[i].sector + b / 512) & 0xff));
        if (r[i].type == 0 && r[i].want_st != 0)
            assert_int_equal(ram[B_DATA + 0x2000 * i], 0xcc);     /* untouched */
    }
}

/* More requests than the ring has slots (16), all in the avail ring before one notify:
 * reads, writes, a flush, GET_ID, an unknown type, reads beyond the capacity and
 * straddling it; then the same on a read-only disk with a write and a discard among
 * them. Every status, used length and byte is checked; the queue interrupt comes. Then
 * large reads left in flight across a reset and across the machine's end (teardown
 * counts fds and threads). */
static void blk_many(struct fx *f)
{
    struct vmcore_err err = { 0 };
    char img2[64];
    snprintf(img2, sizeof img2, "/tmp/vmcore-vio-r-XXXXXX");
    int fd = mkstemp(img2);
    assert_true(fd >= 0);
    close(fd);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "cp %s %s", f->img, img2);
    assert_int_equal(system(cmd), 0);
    f->disks[1] = (struct config_disk){ .path = img2, .readonly = true };
    assert_int_equal(create(f, 2, false, &err), 0);
    const char *env = getenv("VMCORE_BLK_URING"), *tenv = getenv("VMCORE_BLK_THREADS");
    bool want_uring = !(env && strcmp(env, "0") == 0) && uring_possible();
    unsigned want_pool = want_uring || (tenv && strcmp(tenv, "0") == 0) ? 0 : 4;
    for (unsigned d = 0; d < 2; d++) {
        assert_int_equal(virtio_blk_uses_uring(blk_dev(f, d)), want_uring);
        assert_int_equal(virtio_blk_pool_threads(blk_dev(f, d)), want_pool);
    }

    /* The read-write disk. */
    assert_true(find_nth(f, 0x1042, 0));
    assert_true(init_dev(f, F_V1 | F_EV | (1ull << 9), B_QSIZE) & VIRTIO_STATUS_DRIVER_OK);
    struct breq r[B_MAX];
    unsigned n = 0;
    for (unsigned i = 0; i < 16; i++)
        r[n++] = (struct breq){ 0, 10 + 7 * i, 1024, 0, 0, 1025 };
    for (unsigned i = 0; i < 4; i++)
        r[n++] = (struct breq){ 1, 1000 + 2 * i, 1024, (uint8_t)(0xa0 + i), 0, 1 };
    r[n++] = (struct breq){ 0, IMG_SECTORS - 1, 1024, 0, 1, 1 };   /* past the end */
    r[n++] = (struct breq){ 0, IMG_SECTORS, 512, 0, 1, 1 };        /* at the end */
    r[n++] = (struct breq){ 0, UINT64_MAX / 256, 512, 0, 1, 1 };   /* overflowing */
    r[n++] = (struct breq){ 1, IMG_SECTORS - 1, 1024, 0x11, 1, 1 };/* straddling */
    r[n++] = (struct breq){ 0, 5, 1000, 0, 1, 1 };                 /* not whole sectors */
    r[n++] = (struct breq){ 4, 0, 0, 0, 0, 1 };                    /* FLUSH */
    r[n++] = (struct breq){ 8, 0, 20, 0, 0, 21 };                  /* GET_ID */
    r[n++] = (struct breq){ 77, 0, 0, 0, 2, 1 };                   /* UNSUPP */
    r[n++] = (struct breq){ 0, 2040, 4096, 0, 0, 4097 };           /* up to the end */
    blk_batch(f, r, n);
    /* The queue interrupt (INTx: ISR bit 0), raised after the pushes. */
    for (unsigned spins = 0; !(cc(f, VIRTIO_PCI_ISR_OFF, 1) & 1); spins++) {
        assert_true(spins < 5000);
        nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
    }
    fd = open(f->img, O_RDONLY);
    uint8_t back[1024];
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(pread(fd, back, sizeof back, (1000 + 2 * i) * 512), sizeof back);
        for (unsigned b = 0; b < sizeof back; b++)
            assert_int_equal(back[b], 0xa0 + i);
    }
    assert_int_equal(pread(fd, back, 512, (IMG_SECTORS - 1) * 512), 512);
    assert_int_equal(back[0], (IMG_SECTORS - 1) & 0xff);         /* the straddler wrote nothing */
    close(fd);
    /* Again, so the ring's slots are reused (and the avail ring wraps). */
    blk_batch(f, r, n);
    blk_batch(f, r, n);

    /* The read-only disk: writes and discards fail, reads and flushes work. */
    assert_true(find_nth(f, 0x1042, 1));
    assert_true(init_dev(f, F_V1 | F_EV | (1ull << 5) | (1ull << 9), B_QSIZE) &
                VIRTIO_STATUS_DRIVER_OK);
    n = 0;
    for (unsigned i = 0; i < 18; i++)
        r[n++] = (struct breq){ 0, 100 + 3 * i, 2048, 0, 0, 2049 };
    r[n++] = (struct breq){ 1, 0, 512, 0x77, 1, 1 };               /* WRITE: IOERR */
    r[n++] = (struct breq){ 4, 0, 0, 0, 0, 1 };                    /* FLUSH: OK */
    r[n++] = (struct breq){ 0, IMG_SECTORS - 1, 1024, 0, 1, 1 };   /* past the end */
    blk_batch(f, r, n);
    fd = open(img2, O_RDONLY);
    assert_int_equal(pread(fd, back, 512, 0), 512);
    close(fd);
    assert_int_equal(back[0], 0);                                  /* not written */
    assert_int_equal(back[511], 0);

    /* Large reads in flight, then a reset: it waits for them and forgets them. */
    assert_true(find_nth(f, 0x1042, 0));
    assert_true(init_dev(f, F_V1, B_QSIZE) & VIRTIO_STATUS_DRIVER_OK);
    uint8_t *ram = machine_ram(f->m);
    for (unsigned round = 0; round < 2; round++) {
        for (unsigned i = 0; i < 32; i++) {
            struct blk_hdr h = { 0, 0, 0 };
            memcpy(ram + B_HDR + 32 * i, &h, sizeof h);
            uint16_t d = (uint16_t)(3 * i);
            desc(f, d, B_HDR + 32 * i, sizeof h, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 1));
            desc(f, d + 1u, 0x200000, IMG_SECTORS * 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE,
                 (uint16_t)(d + 2));
            desc(f, d + 2u, B_ST + i, 1, VIRTQ_DESC_F_WRITE, 0);
            memcpy(ram + AVAIL + 4 + 2 * (f->avail_idx % B_QSIZE), &d, 2);
            f->avail_idx++;
        }
        __atomic_store_n((uint16_t *)(ram + AVAIL + 2), f->avail_idx, __ATOMIC_RELEASE);
        ccw(f, VIRTIO_PCI_NOTIFY_OFF, 2, 0);
        if (round == 0) {
            ccw(f, 0x14, 1, 0);                         /* reset, requests in flight */
            assert_int_equal(cc(f, 0x14, 1), 0);
            assert_true(init_dev(f, F_V1, B_QSIZE) & VIRTIO_STATUS_DRIVER_OK);
        }
    }
    /* teardown destroys the machine with the second round still in flight */
    unlink(img2);
}

static void test_blk_many_uring(void **state)
{
    struct blk_env env = saved_env();
    unsetenv("VMCORE_BLK_URING");
    unsetenv("VMCORE_BLK_THREADS");
    blk_many(*state);
    restore_env(env);
}

static void test_blk_many_pool(void **state)
{
    struct blk_env env = saved_env();
    setenv("VMCORE_BLK_URING", "0", 1);
    unsetenv("VMCORE_BLK_THREADS");
    blk_many(*state);
    restore_env(env);
}

static void test_blk_many_sync(void **state)
{
    struct blk_env env = saved_env();
    setenv("VMCORE_BLK_URING", "0", 1);
    setenv("VMCORE_BLK_THREADS", "0", 1);
    blk_many(*state);
    restore_env(env);
}

/* virtio-console: queue 1 (transmitq) chains are appended to consoles[0].output, in order,
 * readable segments only; the receiveq's buffers stay with the driver (no host input). A
 * console whose output cannot be opened fails at consoles[0].output and leaves nothing. */
#define C_DESC  0x103000u
#define C_AVAIL 0x104000u
#define C_USED  0x105000u

static void cons_tx(struct fx *f, const char *text, uint16_t *avail)
{
    uint8_t *ram = machine_ram(f->m);
    uint32_t len = (uint32_t)strlen(text);
    size_t h = strlen(text) / 2;
    /* Two readable descriptors: the device must join them. */
    memcpy(ram + BUF, text, h);
    memcpy(ram + BUF + 0x1000, text + h, len - h);
    uint8_t *d = ram + C_DESC;
    uint64_t a0 = BUF, a1 = BUF + 0x1000;
    uint32_t l0 = (uint32_t)h, l1 = len - (uint32_t)h;
    uint16_t fl0 = VIRTQ_DESC_F_NEXT, fl1 = 0, n0 = 1, n1 = 0;
    memcpy(d, &a0, 8); memcpy(d + 8, &l0, 4); memcpy(d + 12, &fl0, 2); memcpy(d + 14, &n0, 2);
    memcpy(d + 16, &a1, 8); memcpy(d + 24, &l1, 4); memcpy(d + 28, &fl1, 2); memcpy(d + 30, &n1, 2);
    uint16_t head = 0;
    memcpy(ram + C_AVAIL + 4 + 2 * (*avail % QSIZE), &head, 2);
    (*avail)++;
    uint16_t want = *avail;
    __atomic_store_n((uint16_t *)(ram + C_AVAIL + 2), *avail, __ATOMIC_RELEASE);
    ccw(f, VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT, 2, 1);
    while (__atomic_load_n((uint16_t *)(ram + C_USED + 2), __ATOMIC_ACQUIRE) != want) {
        assert_false(cc(f, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
        sched_yield();
    }
    uint32_t used;
    memcpy(&used, ram + C_USED + 4 + 8 * ((want - 1) % QSIZE) + 4, 4);
    assert_int_equal(used, 0);
}

static void test_console(void **state)
{
    struct fx *f = *state;
    struct vmcore_err err = { 0 };
    char out[64];
    snprintf(out, sizeof out, "/tmp/vmcore-vio-c-XXXXXX");
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    struct config_console cons = { .output = out };
    f->cfg.consoles = &cons;
    f->cfg.nconsoles = 1;
    assert_int_equal(create(f, 0, false, &err), 0);
    assert_true(find(f, 0x1040 + VIRTIO_ID_CONSOLE));
    /* Queue 0 by init_dev (before DRIVER_OK), then queue 1, then DRIVER_OK again. */
    ccw(f, 0x14, 1, 0);
    ccw(f, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    ccw(f, 0x08, 4, 1);
    ccw(f, 0x0c, 4, 1);     /* VERSION_1 */
    uint8_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
    ccw(f, 0x14, 1, st);
    assert_true(cc(f, 0x14, 1) & VIRTIO_STATUS_FEATURES_OK);
    memset(machine_ram(f->m) + DESC, 0, 0x6000);
    const uint64_t qa[2][3] = { { DESC, AVAIL, USED }, { C_DESC, C_AVAIL, C_USED } };
    for (unsigned q = 0; q < 2; q++) {
        ccw(f, 0x16, 2, q);
        ccw(f, 0x18, 2, QSIZE);
        ccw(f, 0x20, 8, qa[q][0]);
        ccw(f, 0x28, 4, qa[q][1]);
        ccw(f, 0x2c, 4, 0);
        ccw(f, 0x30, 8, qa[q][2]);
        ccw(f, 0x1c, 2, 1);
    }
    ccw(f, 0x14, 1, st | VIRTIO_STATUS_DRIVER_OK);
    assert_int_equal(cc(f, 0x14, 1), st | VIRTIO_STATUS_DRIVER_OK);
    /* A receive buffer offered: the device keeps it unused. */
    desc(f, 0, BUF + 0x4000, 64, VIRTQ_DESC_F_WRITE, 0);
    uint8_t *ram = machine_ram(f->m);
    uint16_t zero = 0, one = 1;
    memcpy(ram + AVAIL + 4, &zero, 2);
    __atomic_store_n((uint16_t *)(ram + AVAIL + 2), one, __ATOMIC_RELEASE);
    ccw(f, VIRTIO_PCI_NOTIFY_OFF, 2, 0);
    uint16_t avail = 0;
    cons_tx(f, "hello from hvc0\n", &avail);
    cons_tx(f, "second line\n", &avail);
    assert_int_equal(used_idx(f), 0);
    char buf[128] = { 0 };
    fd = open(out, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof buf - 1), 28);
    close(fd);
    assert_string_equal(buf, "hello from hvc0\nsecond line\n");
    machine_destroy(f->m);
    f->m = NULL;
    unlink(out);
    /* An output that cannot be opened: the error names the key; no fd or thread is left. */
    cons.output = "/nonexistent-dir/out";
    assert_int_not_equal(create(f, 0, false, &err), 0);
    assert_string_equal(err.path, "consoles[0].output");
    assert_int_equal(vt_count_fds(), f->fds);
    assert_int_equal(vt_count_threads(), f->threads);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_blk_io, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blk_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rng, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version1_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blk_uring_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blk_many_uring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blk_many_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blk_many_sync, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
