/* virtio-vsock driven by hand as a guest driver would: three queues in guest RAM, packets
 * written and read as bytes. The host side is real AF_UNIX sockets: a host program
 * connecting through uds_path + "CONNECT P\n", and a guest REQUEST reaching a host
 * listener at uds_path_P. Credit, RST on a refused port, and hostile packets. */
#include "vt.h"

#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/config.h"
#include "machine/machine.h"
#include "machine/pci.h"
#include "machine/platform.h"
#include "machine/virtio_pci.h"
#include "machine/virtio_vsock.h"

#define QSIZE 16
#define QBASE(q) (0x100000u + (q) * 0x4000u)
#define RXBUF 0x200000u
#define RXLEN 0x2000u
#define TXBUF 0x300000u
#define CID 3

struct fx {
    struct machine *m;
    struct vmcore_config cfg;
    char kernel[64], dir[64], uds[128];
    unsigned slot;
    uint64_t bar;
    uint16_t avail[3], seen_rx, tx_slot;
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
static uint64_t cc(struct fx *f, unsigned off, unsigned size) { return mrd(f->m, f->bar + off, size); }
static void ccw(struct fx *f, unsigned off, unsigned size, uint64_t v) { mwr(f->m, f->bar + off, size, v); }

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->kernel, sizeof f->kernel, "/tmp/vmcore-vs-k-XXXXXX");
    int fd = mkstemp(f->kernel);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\xf4", 1), 1);
    close(fd);
    snprintf(f->dir, sizeof f->dir, "/tmp/vmcore-vs-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->uds, sizeof f->uds, "%s/v.sock", f->dir);
    f->fds = vt_count_fds();
    f->threads = vt_count_threads();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    machine_destroy(f->m);
    struct stat st;
    assert_true(lstat(f->uds, &st) < 0);          /* the listener's file went with it */
    assert_int_equal(vt_count_fds(), f->fds);
    assert_int_equal(vt_count_threads(), f->threads);
    unlink(f->kernel);
    rmdir(f->dir);
    free(f);
    return 0;
}

static int create(struct fx *f, struct vmcore_err *err)
{
    f->cfg.memory_mib = 8;
    f->cfg.vcpus = 1;
    f->cfg.boot.kernel = f->kernel;
    f->cfg.boot.format = BOOT_FORMAT_RAW;
    f->cfg.boot.mode = BOOT_MODE_PROTECTED;
    f->cfg.vsock.enabled = true;
    f->cfg.vsock.cid = CID;
    f->cfg.vsock.uds_path = f->uds;
    return machine_create(&f->m, &f->cfg, NULL, err);
}

static void desc(struct fx *f, unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags)
{
    uint8_t *d = machine_ram(f->m) + QBASE(q) + 16 * i;
    uint16_t next = 0;
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
}
static uint16_t used_idx(struct fx *f, unsigned q)
{
    return __atomic_load_n((uint16_t *)(machine_ram(f->m) + QBASE(q) + 0x2000 + 2), __ATOMIC_ACQUIRE);
}
static void make_avail(struct fx *f, unsigned q, uint16_t head)
{
    uint8_t *ram = machine_ram(f->m);
    memcpy(ram + QBASE(q) + 0x1000 + 4 + 2 * (f->avail[q] % QSIZE), &head, 2);
    f->avail[q]++;
    __atomic_store_n((uint16_t *)(ram + QBASE(q) + 0x1000 + 2), f->avail[q], __ATOMIC_RELEASE);
    ccw(f, VIRTIO_PCI_NOTIFY_OFF + 4 * q, 2, q);
}

static void init_dev(struct fx *f)
{
    for (unsigned s = 1; s < 32 && !f->slot; s++)
        if (mrd(f->m, ecam(s, 0), 2) == 0x1af4 && mrd(f->m, ecam(s, 2), 2) == 0x1040 + VIRTIO_ID_VSOCK)
            f->slot = s;
    assert_true(f->slot);
    mwr(f->m, ecam(f->slot, PCI_COMMAND), 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    f->bar = (mrd(f->m, ecam(f->slot, PCI_BAR0 + 4 * VIRTIO_PCI_BAR), 4) & ~0xfull) |
             mrd(f->m, ecam(f->slot, PCI_BAR0 + 4 * VIRTIO_PCI_BAR + 4), 4) << 32;
    ccw(f, 0x14, 1, 0);
    ccw(f, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    ccw(f, 0x08, 4, 0);
    ccw(f, 0x0c, 4, 0);
    ccw(f, 0x08, 4, 1);
    ccw(f, 0x0c, 4, 1);                           /* VERSION_1 */
    ccw(f, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    assert_true(cc(f, 0x14, 1) & VIRTIO_STATUS_FEATURES_OK);
    assert_int_equal(cc(f, VIRTIO_PCI_DEVICE_OFF, 8), CID);   /* guest_cid */
    memset(machine_ram(f->m) + QBASE(0), 0, 3 * 0x4000);
    for (unsigned q = 0; q < 3; q++) {
        ccw(f, 0x16, 2, q);
        ccw(f, 0x18, 2, QSIZE);
        ccw(f, 0x20, 8, QBASE(q));
        ccw(f, 0x28, 8, QBASE(q) + 0x1000);
        ccw(f, 0x30, 8, QBASE(q) + 0x2000);
        ccw(f, 0x1c, 2, 1);
    }
    ccw(f, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    for (unsigned i = 0; i < QSIZE; i++) {
        desc(f, 0, i, RXBUF + i * RXLEN, RXLEN, VIRTQ_DESC_F_WRITE);
        make_avail(f, 0, (uint16_t)i);
    }
}

static struct vsock_hdr hdr(uint16_t op, uint32_t sport, uint32_t dport)
{
    return (struct vsock_hdr){ .src_cid = CID, .dst_cid = 2, .src_port = sport,
                               .dst_port = dport, .type = VSOCK_TYPE_STREAM, .op = op,
                               .buf_alloc = 1 << 20 };
}

/* Send one tx packet and wait until the device consumed it. */
static void tx(struct fx *f, const struct vsock_hdr *h, const void *data, uint32_t n, uint32_t desc_len)
{
    unsigned slot = f->tx_slot++ % QSIZE;
    uint8_t *p = machine_ram(f->m) + TXBUF + slot * 0x1000;
    vsock_hdr_encode(h, p);
    if (n)
        memcpy(p + VSOCK_HDR_LEN, data, n);
    uint16_t want = (uint16_t)(used_idx(f, 1) + 1);
    desc(f, 1, slot, TXBUF + slot * 0x1000, desc_len ? desc_len : VSOCK_HDR_LEN + n, 0);
    make_avail(f, 1, (uint16_t)slot);
    while (used_idx(f, 1) != want)
        sched_yield();
    assert_false(cc(f, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
}

/* Wait for the next rx packet, copy its header (and payload into @data), re-post it. */
static uint32_t rx(struct fx *f, struct vsock_hdr *h, void *data)
{
    while (used_idx(f, 0) == f->seen_rx)
        sched_yield();
    uint8_t *ram = machine_ram(f->m);
    uint32_t id, len;
    memcpy(&id, ram + QBASE(0) + 0x2000 + 4 + 8 * (f->seen_rx % QSIZE), 4);
    memcpy(&len, ram + QBASE(0) + 0x2000 + 8 + 8 * (f->seen_rx % QSIZE), 4);
    f->seen_rx++;
    assert_true(id < QSIZE && len >= VSOCK_HDR_LEN);
    const uint8_t *p = ram + RXBUF + id * RXLEN;
    memcpy(&h->src_cid, p, 8);
    memcpy(&h->dst_cid, p + 8, 8);
    memcpy(&h->src_port, p + 16, 4);
    memcpy(&h->dst_port, p + 20, 4);
    memcpy(&h->len, p + 24, 4);
    memcpy(&h->type, p + 28, 2);
    memcpy(&h->op, p + 30, 2);
    memcpy(&h->flags, p + 32, 4);
    memcpy(&h->buf_alloc, p + 36, 4);
    memcpy(&h->fwd_cnt, p + 40, 4);
    assert_int_equal(h->src_cid, 2);
    assert_int_equal(h->dst_cid, CID);
    assert_int_equal(h->type, VSOCK_TYPE_STREAM);
    assert_int_equal(h->len, len - VSOCK_HDR_LEN);
    if (data && h->len)
        memcpy(data, p + VSOCK_HDR_LEN, h->len);
    make_avail(f, 0, (uint16_t)id);
    return h->len;
}

static int host_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void read_exact(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
}

static void test_host_connect(void **state)
{
    struct fx *f = *state;
    struct vmcore_err err = { 0 };
    assert_int_equal(create(f, &err), 0);
    init_dev(f);
    int fd = host_connect(f->uds);
    assert_int_equal(write(fd, "CONNECT 5000\n", 13), 13);
    struct vsock_hdr h;
    rx(f, &h, NULL);
    assert_int_equal(h.op, VSOCK_OP_REQUEST);
    assert_int_equal(h.dst_port, 5000);
    uint32_t hp = h.src_port;
    struct vsock_hdr r = hdr(VSOCK_OP_RESPONSE, 5000, hp);
    tx(f, &r, NULL, 0, 0);
    char line[32] = { 0 }, want[32];
    int n = snprintf(want, sizeof want, "OK %u\n", hp);
    read_exact(fd, line, (size_t)n);
    assert_string_equal(line, want);

    assert_int_equal(write(fd, "ping", 4), 4);
    char data[RXLEN];
    assert_int_equal(rx(f, &h, data), 4);
    assert_int_equal(h.op, VSOCK_OP_RW);
    assert_memory_equal(data, "ping", 4);

    struct vsock_hdr w = hdr(VSOCK_OP_RW, 5000, hp);
    w.len = 4;
    tx(f, &w, "pong", 4, 0);
    read_exact(fd, data, 4);
    assert_memory_equal(data, "pong", 4);

    struct vsock_hdr rst = hdr(VSOCK_OP_RST, 5000, hp);
    tx(f, &rst, NULL, 0, 0);
    assert_int_equal(read(fd, data, 1), 0);       /* the host side is closed */
    close(fd);

    /* A bad CONNECT line: the host connection is closed, the guest hears nothing. */
    fd = host_connect(f->uds);
    assert_int_equal(write(fd, "HELLO\n", 6), 6);
    assert_int_equal(read(fd, data, 1), 0);
    close(fd);
}

static void test_guest_connect(void **state)
{
    struct fx *f = *state;
    struct vmcore_err err = { 0 };
    assert_int_equal(create(f, &err), 0);
    init_dev(f);
    char lp[160];
    snprintf(lp, sizeof lp, "%s_6000", f->uds);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", lp);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 4), 0);

    struct vsock_hdr q = hdr(VSOCK_OP_REQUEST, 1234, 6000), h;
    q.buf_alloc = 8;                              /* the guest takes 8 bytes at a time */
    tx(f, &q, NULL, 0, 0);
    rx(f, &h, NULL);
    assert_int_equal(h.op, VSOCK_OP_RESPONSE);
    assert_int_equal(h.dst_port, 1234);
    assert_int_equal(h.src_port, 6000);
    assert_int_equal(h.buf_alloc, VSOCK_BUF_ALLOC);
    int cfd = accept(lfd, NULL, NULL);
    assert_true(cfd >= 0);

    struct vsock_hdr w = hdr(VSOCK_OP_RW, 1234, 6000);
    w.len = 5;
    w.buf_alloc = 8;
    tx(f, &w, "hello", 5, 0);
    char data[RXLEN];
    read_exact(cfd, data, 5);
    assert_memory_equal(data, "hello", 5);

    /* Credit: 20 host bytes reach the guest 8 at a time, only as it reports reading. */
    assert_int_equal(write(cfd, "0123456789abcdefghij", 20), 20);
    assert_int_equal(rx(f, &h, data), 8);
    assert_memory_equal(data, "01234567", 8);
    usleep(1000);
    assert_int_equal(used_idx(f, 0), f->seen_rx);  /* nothing beyond the credit */
    struct vsock_hdr cu = hdr(VSOCK_OP_CREDIT_UPDATE, 1234, 6000);
    cu.buf_alloc = 8;
    cu.fwd_cnt = 8;
    tx(f, &cu, NULL, 0, 0);
    assert_int_equal(rx(f, &h, data), 8);
    assert_memory_equal(data, "89abcdef", 8);

    /* Refused: no listener at uds_path_6001. */
    struct vsock_hdr q2 = hdr(VSOCK_OP_REQUEST, 1235, 6001);
    tx(f, &q2, NULL, 0, 0);
    rx(f, &h, NULL);
    assert_int_equal(h.op, VSOCK_OP_RST);
    assert_int_equal(h.dst_port, 1235);

    /* Hostile packets: dropped, the device keeps working. */
    struct vsock_hdr bad = hdr(VSOCK_OP_REQUEST, 1236, 6000);
    bad.src_cid = 7;
    tx(f, &bad, NULL, 0, 0);
    bad = hdr(VSOCK_OP_RW, 1234, 6000);
    bad.len = 1u << 30;                           /* huge len, 44-byte buffer */
    tx(f, &bad, NULL, 0, 0);
    bad = hdr(99, 1234, 6000);
    tx(f, &bad, NULL, 0, 0);
    tx(f, &bad, NULL, 0, 10);                     /* shorter than a header */
    struct vsock_hdr cr = hdr(VSOCK_OP_CREDIT_REQUEST, 1234, 6000);
    cr.buf_alloc = 8;
    cr.fwd_cnt = 16;
    tx(f, &cr, NULL, 0, 0);
    /* The credit request's answer is the first thing back: none of the bad ones made a
     * packet (the wrong cid's REQUEST would have). Data (the last 4 bytes) may follow. */
    rx(f, &h, data);
    assert_true(h.op == VSOCK_OP_CREDIT_UPDATE || h.op == VSOCK_OP_RW);
    assert_int_equal(h.dst_port, 1234);

    close(cfd);
    close(lfd);
    unlink(lp);
}

static void test_config_errors(void **state)
{
    struct fx *f = *state;
    struct vmcore_err err = { 0 };
    FILE *fp = fopen(f->uds, "w");                /* a regular file where the socket goes */
    fclose(fp);
    assert_int_not_equal(create(f, &err), 0);
    assert_string_equal(err.path, "vsock.uds_path");
    f->m = NULL;
    unlink(f->uds);
    /* A socket something listens on (another domain's) is not taken over. */
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->uds);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 1), 0);
    f->fds = vt_count_fds();
    assert_int_equal(create(f, &err), VMCORE_EBUSY);
    assert_string_equal(err.path, "vsock.uds_path");
    f->m = NULL;
    close(lfd);
    f->fds = vt_count_fds();
    /* A stale one (nothing listening) is replaced. */
    assert_int_equal(create(f, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_host_connect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_connect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
