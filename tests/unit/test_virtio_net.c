/* virtio-net on a real tap, driven the way a guest driver drives it (config space through
 * ECAM, BAR 4 by MMIO, rings in guest RAM), with the host side of the tap read and written
 * through an AF_PACKET socket. Everything runs in a network namespace of the test's own
 * (unshare(CLONE_NEWNET) in main), so no frame leaves the process's private namespace.
 * Then: a tap that exists before the domain (kept afterwards), errors naming
 * nics[0].ifname with nothing left behind, hostile chains, and mode "bridge": the tap a
 * port of a bridge the library creates (with its NAT table) and removes with the last
 * machine on it. */
#include "vt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <nftables/libnftables.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/bridge.h"
#include "core/config.h"
#include "machine/machine.h"
#include "machine/net_backend.h"
#include "machine/pci.h"
#include "machine/platform.h"
#include "machine/virtio_pci.h"

#define QSIZE 16
#define RING(q) (0x100000u + 0x4000u * (q))     /* desc, then avail +0x1000, used +0x2000 */
#define RXBUF 0x120000u                         /* QSIZE rx buffers of 0x1000 */
#define TXBUF 0x140000u
#define ETHERTYPE_TEST 0x88b5                   /* IEEE local experimental */
#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_MAC (1ull << 5)
#define F_STATUS (1ull << 16)

static bool have_netns;

struct fx {
    struct machine *m;
    struct vmcore_config cfg;
    struct config_nic nic;
    char kernel[64];
    uint64_t bar;
    uint16_t avail[2];
    unsigned next_desc[2];
    int fds, threads;
    int pk;                       /* AF_PACKET socket on the tap */
};

static void on_irq(void *o, unsigned gsi, int level) { }
static void on_msi(void *o, uint64_t a, uint32_t d) { }

static uint64_t ecam(unsigned slot, unsigned off)
{
    return PLAT_PCI_ECAM_BASE + ((uint64_t)slot << 15) + off;
}

static uint64_t rd(struct fx *f, uint64_t gpa, unsigned size)
{
    uint64_t v = 0;
    machine_mmio(f->m, gpa, false, size, &v);
    return v;
}

static void wr(struct fx *f, uint64_t gpa, unsigned size, uint64_t v)
{
    machine_mmio(f->m, gpa, true, size, &v);
}

static int create(struct fx *f, struct vmcore_err *err)
{
    f->cfg.memory_mib = 4;
    f->cfg.vcpus = 1;
    f->cfg.boot.kernel = f->kernel;
    f->cfg.boot.format = BOOT_FORMAT_RAW;
    f->cfg.boot.mode = BOOT_MODE_PROTECTED;
    f->cfg.nics = &f->nic;
    f->cfg.nnics = 1;
    int rc = machine_create(&f->m, &f->cfg, NULL, err);
    if (rc == 0)
        machine_set_irq_sink(f->m, &(struct machine_irq_sink){ on_irq, on_msi, f });
    return rc;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->kernel, sizeof f->kernel, "/tmp/vmcore-vnet-k-XXXXXX");
    int fd = mkstemp(f->kernel);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\xf4", 1), 1);
    close(fd);
    f->pk = -1;
    f->fds = vt_count_fds();
    f->threads = vt_count_threads();
    memcpy(f->nic.mac, "\x52\x54\x00\xab\xcd\xef", 6);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->pk >= 0)
        close(f->pk);
    machine_destroy(f->m);
    /* The tap fd, the eventfds and the I/O thread went with the machine. */
    assert_int_equal(vt_count_fds(), f->fds);
    assert_int_equal(vt_count_threads(), f->threads);
    unlink(f->kernel);
    free(f);
    return 0;
}

/* ---- a small two-queue driver ---- */

static void find(struct fx *f)
{
    for (unsigned s = 1; s < 32; s++)
        if (rd(f, ecam(s, 0), 2) == 0x1af4 && rd(f, ecam(s, 2), 2) == 0x1041) {
            wr(f, ecam(s, PCI_COMMAND), 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
            f->bar = (rd(f, ecam(s, PCI_BAR0 + 4 * VIRTIO_PCI_BAR), 4) & ~0xfull) |
                     rd(f, ecam(s, PCI_BAR0 + 4 * VIRTIO_PCI_BAR + 4), 4) << 32;
            return;
        }
    fail_msg("no virtio-net device on the bus");
}

static uint64_t cc(struct fx *f, unsigned off, unsigned size) { return rd(f, f->bar + off, size); }
static void ccw(struct fx *f, unsigned off, unsigned size, uint64_t v) { wr(f, f->bar + off, size, v); }

static uint64_t features(struct fx *f)
{
    ccw(f, 0x00, 4, 0);
    uint64_t lo = cc(f, 0x04, 4);
    ccw(f, 0x00, 4, 1);
    return lo | cc(f, 0x04, 4) << 32;
}

static void init_dev(struct fx *f)
{
    find(f);
    ccw(f, 0x14, 1, 0);
    ccw(f, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    uint64_t want = F_V1 | F_MAC | F_STATUS;
    assert_int_equal(features(f) & want, want);
    ccw(f, 0x08, 4, 0);
    ccw(f, 0x0c, 4, (uint32_t)want);
    ccw(f, 0x08, 4, 1);
    ccw(f, 0x0c, 4, want >> 32);
    uint8_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
    ccw(f, 0x14, 1, st);
    assert_true(cc(f, 0x14, 1) & VIRTIO_STATUS_FEATURES_OK);
    assert_int_equal(cc(f, 0x12, 2), 2);                 /* num_queues: rx, tx */
    memset(machine_ram(f->m) + RING(0), 0, 0x8000);
    for (unsigned q = 0; q < 2; q++) {
        ccw(f, 0x16, 2, q);
        ccw(f, 0x18, 2, QSIZE);
        ccw(f, 0x20, 8, RING(q));
        ccw(f, 0x28, 8, RING(q) + 0x1000);
        ccw(f, 0x30, 8, RING(q) + 0x2000);
        ccw(f, 0x1c, 2, 1);
        f->avail[q] = 0;
        f->next_desc[q] = 0;
    }
    ccw(f, 0x14, 1, st | VIRTIO_STATUS_DRIVER_OK);
    assert_false(cc(f, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
}

/* Descriptor @i of queue @q. */
static void desc(struct fx *f, unsigned q, unsigned i, uint64_t addr, uint32_t len,
                 uint16_t flags, uint16_t next)
{
    uint8_t *d = machine_ram(f->m) + RING(q) + 16 * i;
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
}

static uint16_t used_idx(struct fx *f, unsigned q)
{
    return __atomic_load_n((uint16_t *)(machine_ram(f->m) + RING(q) + 0x2002), __ATOMIC_ACQUIRE);
}

static uint32_t used_len(struct fx *f, unsigned q, uint16_t idx)
{
    uint32_t len;
    memcpy(&len, machine_ram(f->m) + RING(q) + 0x2004 + 8 * (idx % QSIZE) + 4, 4);
    return len;
}

static void make_avail(struct fx *f, unsigned q, uint16_t head)
{
    uint8_t *ram = machine_ram(f->m);
    memcpy(ram + RING(q) + 0x1004 + 2 * (f->avail[q] % QSIZE), &head, 2);
    f->avail[q]++;
    __atomic_store_n((uint16_t *)(ram + RING(q) + 0x1002), f->avail[q], __ATOMIC_RELEASE);
    ccw(f, VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q, 2, q);
}

/* Wait (bounded, against hangs only) until queue @q's used index reaches @want. */
static bool wait_used(struct fx *f, unsigned q, uint16_t want)
{
    for (int i = 0; i < 200000; i++) {
        if ((int16_t)(used_idx(f, q) - want) >= 0)
            return true;
        if (cc(f, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET)
            return false;
        usleep(50);
    }
    return false;
}

/* ---- the host side ---- */

static void open_packet(struct fx *f, const char *ifname)
{
    f->pk = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));
    assert_true(f->pk >= 0);
    struct sockaddr_ll sa = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                              .sll_ifindex = (int)if_nametoindex(ifname) };
    assert_true(sa.sll_ifindex > 0);
    assert_int_equal(bind(f->pk, (struct sockaddr *)&sa, sizeof sa), 0);
}

/* The next test frame the guest sent (incoming on the tap), or -1 after a while. */
static ssize_t host_recv(struct fx *f, uint8_t *buf, size_t cap)
{
    for (int i = 0; i < 100; i++) {
        struct pollfd p = { .fd = f->pk, .events = POLLIN };
        if (poll(&p, 1, 100) <= 0)
            continue;
        struct sockaddr_ll from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(f->pk, buf, cap, 0, (struct sockaddr *)&from, &fl);
        if (n >= 14 && from.sll_pkttype != PACKET_OUTGOING &&
            buf[12] == ETHERTYPE_TEST >> 8 && buf[13] == (ETHERTYPE_TEST & 0xff))
            return n;
    }
    return -1;
}

static void host_send(struct fx *f, const uint8_t *frame, size_t len)
{
    assert_int_equal(send(f->pk, frame, len, 0), (ssize_t)len);
}

static size_t make_frame(uint8_t *b, const uint8_t *src, unsigned payload, uint8_t seed)
{
    memset(b, 0xff, 6);
    memcpy(b + 6, src, 6);
    b[12] = ETHERTYPE_TEST >> 8;
    b[13] = ETHERTYPE_TEST & 0xff;
    for (unsigned i = 0; i < payload; i++)
        b[14 + i] = (uint8_t)(seed + i * 7);
    return 14 + payload;
}

/* Post rx buffer @i (one writable descriptor of @len bytes at RXBUF + 0x1000 * i). */
static void post_rx(struct fx *f, unsigned i, uint32_t len)
{
    memset(machine_ram(f->m) + RXBUF + 0x1000 * i, 0xcc, len);
    desc(f, 0, i, RXBUF + 0x1000 * i, len, VIRTQ_DESC_F_WRITE, 0);
    make_avail(f, 0, (uint16_t)i);
}

/* Transmit @frame from the guest with @hdr in front, split into three descriptors: part of
 * the header, the rest of it with the first bytes of the frame, the remainder. */
static void guest_tx(struct fx *f, const uint8_t *hdr, const uint8_t *frame, size_t len)
{
    uint8_t *ram = machine_ram(f->m);
    memcpy(ram + TXBUF, hdr, 12);
    memcpy(ram + TXBUF + 12, frame, len);
    unsigned d = f->next_desc[1];
    f->next_desc[1] = (d + 3) % QSIZE;
    desc(f, 1, d, TXBUF, 5, VIRTQ_DESC_F_NEXT, (uint16_t)((d + 1) % QSIZE));
    desc(f, 1, (d + 1) % QSIZE, TXBUF + 5, 20, VIRTQ_DESC_F_NEXT, (uint16_t)((d + 2) % QSIZE));
    desc(f, 1, (d + 2) % QSIZE, TXBUF + 25, (uint32_t)(len + 12 - 25), 0, 0);
    uint16_t want = (uint16_t)(used_idx(f, 1) + 1);
    make_avail(f, 1, (uint16_t)d);
    assert_true(wait_used(f, 1, want));
}

static void write_sysctl(const char *path, const char *v)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, v, strlen(v)) < 0) {
            /* no IPv6 in this kernel: nothing to quiet */
        }
        close(fd);
    }
}

/* ---- tests ---- */

static void test_tx_rx(void **state)
{
    struct fx *f = *state;
    vt_require(have_netns, "needs root for a private network namespace and a tap");
    f->nic.ifname = "vtn0";
    f->nic.create = true;
    struct vmcore_err err = { 0 };
    assert_int_equal(create(f, &err), 0);
    assert_true(if_nametoindex("vtn0") > 0);
    init_dev(f);
    /* Device config: the MAC, link up. */
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(cc(f, VIRTIO_PCI_DEVICE_OFF + i, 1), f->nic.mac[i]);
    assert_int_equal(cc(f, VIRTIO_PCI_DEVICE_OFF + 6, 2), 1);
    open_packet(f, "vtn0");

    /* Guest -> host, exactly the frame; a header asking for offloads that were never
     * negotiated (NEEDS_CSUM, GSO TCPv4) does not reach the host kernel. */
    uint8_t frame[1600], got[2048];
    static const uint8_t zero[12];
    uint8_t bad_hdr[12] = { 1, 1, 0x40, 0, 0x40, 0, 14, 0, 16, 0, 0, 0 };
    size_t len = make_frame(frame, f->nic.mac, 100, 1);
    guest_tx(f, zero, frame, len);
    assert_int_equal(host_recv(f, got, sizeof got), (ssize_t)len);
    assert_memory_equal(got, frame, len);
    size_t tx_bytes = len;
    len = make_frame(frame, f->nic.mac, 1400, 2);
    tx_bytes += len;
    guest_tx(f, bad_hdr, frame, len);
    assert_int_equal(host_recv(f, got, sizeof got), (ssize_t)len);
    assert_memory_equal(got, frame, len);

    /* Host -> guest into a posted buffer: zero header, num_buffers 1, the frame. */
    uint8_t *ram = machine_ram(f->m);
    post_rx(f, 0, 2048);
    len = make_frame(frame, (const uint8_t *)"\x02\x00\x00\x00\x00\x01", 500, 3);
    host_send(f, frame, len);
    assert_true(wait_used(f, 0, 1));
    assert_int_equal(used_len(f, 0, 0), 12 + len);
    assert_memory_equal(ram + RXBUF, "\0\0\0\0\0\0\0\0\0\0\1\0", 12);
    assert_memory_equal(ram + RXBUF + 12, frame, len);

    /* A frame that arrives while the guest has no buffer waits in the tap until one is
     * posted; so does the one after it. */
    size_t len2 = make_frame(frame, (const uint8_t *)"\x02\x00\x00\x00\x00\x01", 60, 4);
    host_send(f, frame, len2);
    uint8_t frame2[128];
    size_t len3 = make_frame(frame2, (const uint8_t *)"\x02\x00\x00\x00\x00\x01", 61, 5);
    host_send(f, frame2, len3);
    usleep(20000);
    assert_int_equal(used_idx(f, 0), 1);
    post_rx(f, 1, 2048);
    post_rx(f, 2, 2048);
    assert_true(wait_used(f, 0, 3));
    assert_int_equal(used_len(f, 0, 1), 12 + len2);
    assert_memory_equal(ram + RXBUF + 0x1000 + 12, frame, len2);
    assert_int_equal(used_len(f, 0, 2), 12 + len3);
    assert_memory_equal(ram + RXBUF + 0x2000 + 12, frame2, len3);

    /* vmcore_stats' net_* counters: every frame each way, without the 12-byte header. */
    vmcore_stats st = VMCORE_STATS_INIT;
    machine_net_counters(f->m, &st);
    assert_int_equal(st.net_tx_packets, 2);
    assert_int_equal(st.net_tx_bytes, tx_bytes);
    assert_int_equal(st.net_rx_packets, 3);
    assert_int_equal(st.net_rx_bytes, len + len2 + len3);

    /* The tap the library created goes with the machine. */
    close(f->pk);
    f->pk = -1;
    machine_destroy(f->m);
    f->m = NULL;
    assert_int_equal(if_nametoindex("vtn0"), 0);
}

static int tun_fd(const char *name, struct ifreq *ifr)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    *ifr = (struct ifreq){ .ifr_flags = IFF_TAP | IFF_NO_PI };
    snprintf(ifr->ifr_name, sizeof ifr->ifr_name, "%s", name);
    assert_int_equal(ioctl(fd, TUNSETIFF, ifr), 0);
    return fd;
}

static void link_up(const char *name)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = { 0 };
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags |= IFF_UP;
    assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
    close(s);
}

/* A persistent tap made beforehand (`ip tuntap add`): attached by name, still there
 * afterwards; a second domain on it gets a clear error. */
static void test_existing_tap(void **state)
{
    struct fx *f = *state;
    vt_require(have_netns, "needs root for a private network namespace and a tap");
    struct ifreq ifr;
    int fd = tun_fd("vtp0", &ifr);
    assert_int_equal(ioctl(fd, TUNSETPERSIST, 1), 0);
    close(fd);
    link_up("vtp0");
    f->fds = vt_count_fds();

    f->nic.ifname = "vtp0";
    struct vmcore_err err = { 0 };
    assert_int_equal(create(f, &err), 0);
    init_dev(f);
    open_packet(f, "vtp0");
    uint8_t frame[256], got[512];
    static const uint8_t zero[12];
    size_t len = make_frame(frame, f->nic.mac, 200, 9);
    guest_tx(f, zero, frame, len);
    assert_int_equal(host_recv(f, got, sizeof got), (ssize_t)len);
    assert_memory_equal(got, frame, len);

    /* The same tap for a second machine: busy, named, nothing kept. */
    struct fx g = { 0 };
    memcpy(g.kernel, f->kernel, sizeof g.kernel);
    g.nic = f->nic;
    int fds = vt_count_fds(), threads = vt_count_threads();
    assert_int_equal(create(&g, &err), VMCORE_EBUSY);
    assert_string_equal(err.path, "nics[0].ifname");
    assert_non_null(strstr(err.msg, "in use"));
    assert_int_equal(vt_count_fds(), fds);
    assert_int_equal(vt_count_threads(), threads);

    close(f->pk);
    f->pk = -1;
    machine_destroy(f->m);
    f->m = NULL;
    assert_true(if_nametoindex("vtp0") > 0);       /* not ours: kept */
    fd = tun_fd("vtp0", &ifr);
    assert_int_equal(ioctl(fd, TUNSETPERSIST, 0), 0);
    close(fd);
    assert_int_equal(if_nametoindex("vtp0"), 0);
}

static void expect_error(struct fx *f, const char *ifname, bool create_it, int code,
                         const char *text)
{
    struct vmcore_err err = { 0 };
    f->nic.ifname = (char *)ifname;
    f->nic.create = create_it;
    int fds = vt_count_fds(), threads = vt_count_threads();
    assert_int_equal(create(f, &err), code);
    assert_null(f->m);
    assert_string_equal(err.path, "nics[0].ifname");
    if (!strstr(err.msg, text))
        fail_msg("error \"%s\" does not say \"%s\"", err.msg, text);
    assert_int_equal(vt_count_fds(), fds);
    assert_int_equal(vt_count_threads(), threads);
}

static void test_errors(void **state)
{
    struct fx *f = *state;
    vt_require(have_netns, "needs root for a private network namespace and a tap");
    expect_error(f, "nosuch0", false, VMCORE_ENOENT, "no interface \"nosuch0\"");
    assert_int_equal(if_nametoindex("nosuch0"), 0);          /* not created either */
    expect_error(f, "lo", false, VMCORE_ECONFIG, "not a tap");
    expect_error(f, "lo", true, VMCORE_EBUSY, "already exists");
    assert_true(if_nametoindex("lo") > 0);
}

/* Chains no driver should send: the device drops or returns them and keeps running. */
static void test_hostile(void **state)
{
    struct fx *f = *state;
    vt_require(have_netns, "needs root for a private network namespace and a tap");
    f->nic.ifname = NULL;                         /* kernel-named (vmtapN), ours */
    struct vmcore_err err = { 0 };
    assert_int_equal(create(f, &err), 0);
    init_dev(f);
    /* tx: shorter than header + Ethernet header; writable-only; over 64 KiB. */
    desc(f, 1, 0, TXBUF, 20, 0, 0);
    make_avail(f, 1, 0);
    desc(f, 1, 1, TXBUF, 100, VIRTQ_DESC_F_WRITE, 0);
    make_avail(f, 1, 1);
    desc(f, 1, 2, TXBUF, 0x11000, VIRTQ_DESC_F_NEXT, 3);
    desc(f, 1, 3, TXBUF, 0x10000, 0, 0);
    make_avail(f, 1, 2);
    assert_true(wait_used(f, 1, 3));
    for (uint16_t i = 0; i < 3; i++)
        assert_int_equal(used_len(f, 1, i), 0);
    /* rx: a buffer too small for the header, a readable-only one: returned empty. */
    desc(f, 0, 0, RXBUF, 4, VIRTQ_DESC_F_WRITE, 0);
    make_avail(f, 0, 0);
    desc(f, 0, 1, RXBUF, 64, 0, 0);
    make_avail(f, 0, 1);
    assert_true(wait_used(f, 0, 2));
    assert_int_equal(used_len(f, 0, 0), 0);
    assert_int_equal(used_len(f, 0, 1), 0);
    assert_false(cc(f, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
    /* A reset while a buffer is held, then the device works again. */
    post_rx(f, 2, 2048);
    usleep(10000);
    ccw(f, 0x14, 1, 0);
    assert_int_equal(cc(f, 0x14, 1), 0);
    init_dev(f);
    uint8_t frame[128];
    static const uint8_t zero[12];
    guest_tx(f, zero, frame, make_frame(frame, f->nic.mac, 50, 7));
    assert_int_equal(used_len(f, 1, 0), 0);
}

/* --- mode "bridge" --------------------------------------------------------------------- */

/* Whether nftables has the table ip @name (asked through libnftables, as `nft list table`). */
static bool nft_table_exists(const char *name)
{
    struct nft_ctx *n = nft_ctx_new(NFT_CTX_DEFAULT);
    assert_non_null(n);
    nft_ctx_buffer_output(n);
    nft_ctx_buffer_error(n);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "list table ip %s", name);
    int rc = nft_run_cmd_from_buffer(n, cmd);
    nft_ctx_free(n);
    return rc == 0;
}

/* The ports of bridge @br, as `ip -o link show master BR` lists them: "vmtap0 vmtap1 ". */
static void bridge_ports(const char *br, char *out, size_t len)
{
    char cmd[128], line[512];
    snprintf(cmd, sizeof cmd, "ip -o link show master %s", br);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    out[0] = 0;
    while (fgets(line, sizeof line, p)) {
        char name[32];
        if (sscanf(line, "%*d: %31[^:@]", name) == 1)
            snprintf(out + strlen(out), len - strlen(out), "%s ", name);
    }
    pclose(p);
}

/* A machine whose card is on a bridge the library creates with an address and NAT: the
 * tap is the bridge's port, a guest's broadcast reaches the bridge, the NAT table exists.
 * A second machine naming the bridge (without create) shares it; the bridge and its table
 * stay until the last of the two is gone, with the taps. */
static void test_bridge(void **state)
{
    struct fx *f = *state;
    vt_require(have_netns, "needs root for a private network namespace, a tap and a bridge");
    write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
    char table[32];
    bridge_nat_table("vtbr0", table, sizeof table);
    assert_string_equal(table, "vmcore_vtbr0");
    f->nic.mode = NIC_MODE_BRIDGE;
    f->nic.bridge = (struct config_bridge){ .name = "vtbr0", .create = true,
                                            .address = "10.78.0.1/24", .nat = true };
    struct vmcore_err err = { 0 };
    if (create(f, &err))
        fail_msg("create: %s", err.msg);
    assert_true(if_nametoindex("vtbr0") > 0);
    assert_true(nft_table_exists(table));
    char ports[256];
    bridge_ports("vtbr0", ports, sizeof ports);
    assert_string_equal(ports, "vmtap0 ");
    init_dev(f);
    open_packet(f, "vtbr0");
    uint8_t frame[256], got[512];
    static const uint8_t zero[12];
    size_t len = make_frame(frame, f->nic.mac, 64, 11);
    guest_tx(f, zero, frame, len);
    assert_int_equal(host_recv(f, got, sizeof got), (ssize_t)len);
    assert_memory_equal(got, frame, len);

    /* A second machine on the same bridge, by name. */
    struct fx g = { 0 };
    memcpy(g.kernel, f->kernel, sizeof g.kernel);
    memcpy(g.nic.mac, "\x52\x54\x00\xab\xcd\xf0", 6);
    g.nic.mode = NIC_MODE_BRIDGE;
    g.nic.bridge = (struct config_bridge){ .name = "vtbr0" };
    if (create(&g, &err))
        fail_msg("create: %s", err.msg);
    bridge_ports("vtbr0", ports, sizeof ports);
    assert_string_equal(ports, "vmtap0 vmtap1 ");

    /* The creator goes first: the other still uses the bridge. */
    close(f->pk);
    f->pk = -1;
    machine_destroy(f->m);
    f->m = NULL;
    assert_int_equal(if_nametoindex("vmtap0"), 0);
    assert_true(if_nametoindex("vtbr0") > 0);
    assert_true(nft_table_exists(table));
    bridge_ports("vtbr0", ports, sizeof ports);
    assert_string_equal(ports, "vmtap1 ");
    machine_destroy(g.m);
    assert_int_equal(if_nametoindex("vmtap1"), 0);
    assert_int_equal(if_nametoindex("vtbr0"), 0);
    assert_false(nft_table_exists(table));
}

static int count_links(void)
{
    struct if_nameindex *l = if_nameindex();
    assert_non_null(l);
    int n = 0;
    while (l[n].if_index)
        n++;
    if_freenameindex(l);
    return n;
}

/* Bad bridges: errors naming the path, and nothing made (no tap, bridge, table, fd). */
static void expect_bridge_error(struct fx *f, struct config_bridge b, int code, const char *path,
                                const char *text)
{
    struct vmcore_err err = { 0 };
    f->nic.mode = NIC_MODE_BRIDGE;
    f->nic.bridge = b;
    int fds = vt_count_fds(), threads = vt_count_threads(), links = count_links();
    assert_int_equal(create(f, &err), code);
    assert_null(f->m);
    assert_string_equal(err.path, path);
    if (!strstr(err.msg, text))
        fail_msg("error \"%s\" does not say \"%s\"", err.msg, text);
    assert_int_equal(count_links(), links);
    assert_int_equal(vt_count_fds(), fds);
    assert_int_equal(vt_count_threads(), threads);
}

static void test_bridge_errors(void **state)
{
    struct fx *f = *state;
    vt_require(have_netns, "needs root for a private network namespace, a tap and a bridge");
    expect_bridge_error(f, (struct config_bridge){ .name = "nosuchbr" }, VMCORE_ENOENT,
                        "nics[0].bridge.name", "no interface nosuchbr");
    expect_bridge_error(f, (struct config_bridge){ .name = "lo" }, VMCORE_ECONFIG,
                        "nics[0].bridge.name", "lo is not a bridge");
    expect_bridge_error(f, (struct config_bridge){ .name = "lo", .create = true }, VMCORE_EBUSY,
                        "nics[0].bridge.name", "exists already");
    /* 127.0.0.1/8 is lo's. */
    expect_bridge_error(f, (struct config_bridge){ .name = "vtbr1", .create = true,
                                                   .address = "127.1.0.1/16" },
                        VMCORE_ECONFIG, "nics[0].bridge.address", "clashes with the address of lo");
    assert_int_equal(if_nametoindex("vtbr1"), 0);
    write_sysctl("/proc/sys/net/ipv4/ip_forward", "0");
    expect_bridge_error(f, (struct config_bridge){ .name = "vtbr1", .create = true,
                                                   .address = "10.79.0.1/24", .nat = true },
                        VMCORE_EUNAVAIL, "nics[0].bridge.nat", "net.ipv4.ip_forward");
    assert_int_equal(if_nametoindex("vtbr1"), 0);
    assert_false(nft_table_exists("vmcore_vtbr1"));
    write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
    /* A table of that name exists already (a crashed process's): the start fails, and
     * the bridge made before the NAT is removed again. */
    struct nft_ctx *n = nft_ctx_new(NFT_CTX_DEFAULT);
    assert_int_equal(nft_run_cmd_from_buffer(n, "add table ip vmcore_vtbr1"), 0);
    expect_bridge_error(f, (struct config_bridge){ .name = "vtbr1", .create = true,
                                                   .address = "10.79.0.1/24", .nat = true },
                        VMCORE_ESYS, "nics[0].bridge.nat", "nftables");
    assert_int_equal(if_nametoindex("vtbr1"), 0);
    assert_int_equal(nft_run_cmd_from_buffer(n, "delete table ip vmcore_vtbr1"), 0);
    nft_ctx_free(n);
    /* Shared with another address than the creator's. */
    struct fx g = { 0 };
    memcpy(g.kernel, f->kernel, sizeof g.kernel);
    g.nic.mode = NIC_MODE_BRIDGE;
    g.nic.bridge = (struct config_bridge){ .name = "vtbr2", .create = true,
                                           .address = "10.80.0.1/24" };
    struct vmcore_err err = { 0 };
    if (create(&g, &err))
        fail_msg("create: %s", err.msg);
    expect_bridge_error(f, (struct config_bridge){ .name = "vtbr2", .create = true,
                                                   .address = "10.80.0.1/25" },
                        VMCORE_ECONFIG, "nics[0].bridge.address", "another address");
    char ports[256];
    bridge_ports("vtbr2", ports, sizeof ports);
    assert_string_equal(ports, "vmtap0 ");
    machine_destroy(g.m);
    assert_int_equal(if_nametoindex("vtbr2"), 0);
}

/* --- the "user" backend (libslirp), without a device: frames in and out of its fd ------ */

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

/* The next frame from the backend (12-byte header first) into @buf; its length without
 * the header, or -1 after 10 s. Frames of other types than @ethertype are skipped. */
static ssize_t user_recv(struct net_backend *nb, uint8_t *buf, size_t size, uint16_t ethertype)
{
    for (int i = 0; i < 1000; i++) {
        struct pollfd p = { .fd = nb->fd, .events = POLLIN };
        if (poll(&p, 1, 10) <= 0)
            continue;
        uint8_t hdr[12];
        struct iovec iov[2] = { { hdr, sizeof hdr }, { buf, size } };
        ssize_t n = nb->ops->recv(nb, iov, 2);
        if (n < (ssize_t)sizeof hdr + 14)
            continue;
        if ((buf[12] << 8 | buf[13]) == ethertype)
            return n - (ssize_t)sizeof hdr;
    }
    return -1;
}

static void test_user_backend(void **state)
{
    (void)state;
    vt_require(have_netns, "needs root for a private network namespace (the forward's "
               "127.0.0.1 must be the test's)");
    int fds = vt_count_fds();
    int port = free_port();
    struct config_portfwd fwd = { .udp = false, .host_addr = htonl(INADDR_LOOPBACK),
                                  .host_port = (uint16_t)port, .guest_port = 80 };
    struct config_nic nic = { .mode = NIC_MODE_USER, .ports = &fwd, .nports = 1,
                              .mac = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 } };
    struct net_backend *nb = NULL;
    struct vmcore_err err = { 0 };
    assert_int_equal(net_slirp_open(&nic, 0, &nb, &err), 0);
    assert_string_equal(nb->ops->kind, "user");

    /* ARP: who has 10.0.2.2 (the gateway)? tell 10.0.2.15 */
    static const uint8_t hdr[12];
    uint8_t f[42] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    memcpy(f + 6, nic.mac, 6);
    f[12] = 0x08, f[13] = 0x06;                          /* ARP */
    f[14] = 0, f[15] = 1, f[16] = 8, f[17] = 0, f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 1;
    memcpy(f + 22, nic.mac, 6);
    memcpy(f + 28, (uint8_t[4]){ 10, 0, 2, 15 }, 4);
    memcpy(f + 38, (uint8_t[4]){ 10, 0, 2, 2 }, 4);
    struct iovec iov[2] = { { (void *)hdr, sizeof hdr }, { f, sizeof f } };
    assert_int_equal(nb->ops->send(nb, iov, 2), 0);
    uint8_t r[2048];
    ssize_t n = user_recv(nb, r, sizeof r, 0x0806);
    assert_true(n >= 42);
    assert_memory_equal(r, nic.mac, 6);                   /* to us */
    assert_int_equal(r[21], 2);                           /* a reply */
    assert_memory_equal(r + 28, ((uint8_t[4]){ 10, 0, 2, 2 }), 4);
    assert_memory_equal(r + 38, ((uint8_t[4]){ 10, 0, 2, 15 }), 4);

    /* the forward: a connection to 127.0.0.1:port becomes a SYN to 10.0.2.15:80 */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
    bool syn = false;
    for (int i = 0; i < 20 && !syn; i++) {
        n = user_recv(nb, r, sizeof r, 0x0800);
        assert_true(n >= 14 + 20 + 20);
        const uint8_t *ip = r + 14, *tcp = ip + (ip[0] & 15) * 4;
        syn = ip[9] == 6 && !memcmp(ip + 16, ((uint8_t[4]){ 10, 0, 2, 15 }), 4) &&
              (tcp[2] << 8 | tcp[3]) == 80 && (tcp[13] & 0x02);
    }
    assert_true(syn);
    close(c);

    /* a second backend cannot listen on the same port: the error names the forward */
    struct net_backend *nb2 = NULL;
    assert_int_equal(net_slirp_open(&nic, 1, &nb2, &err), VMCORE_EBUSY);
    assert_non_null(strstr(err.msg, "nics[1].ports[0].host"));
    assert_null(nb2);
    nb->ops->close(nb);
    assert_int_equal(vt_count_fds(), fds);
}

int main(void)
{
    /* A private network namespace for the whole test: taps, frames and the AF_PACKET
     * socket never touch the host's interfaces. IPv6 off, so the kernel sends no router
     * solicitations of its own into the tap. */
    if (vt_is_root() && unshare(CLONE_NEWNET) == 0) {
        have_netns = true;
        write_sysctl("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
        write_sysctl("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
        /* the namespace's own loopback, for the "user" backend's forwards */
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        struct ifreq ifr = { 0 };
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
        if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
            ifr.ifr_flags |= IFF_UP;
            ioctl(s, SIOCSIFFLAGS, &ifr);
        }
        if (s >= 0)
            close(s);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tx_rx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_tap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bridge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bridge_errors, setup, teardown),
        cmocka_unit_test(test_user_backend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
