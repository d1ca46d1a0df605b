/* virtio-vsock: see virtio_vsock.h for the host mapping and the bounds.
 *
 * Queues: rx 0 (device -> driver), tx 1 (driver -> device), event 2 (held, unused: we
 * never migrate). All work runs on the transport's I/O thread under its lock: the host
 * sockets sit in one epoll set whose fd is the device's only extra poll fd, so the number
 * of connections is not limited by VIRTIO_PCI_MAX_POLLFDS.
 *
 * Packets to the guest are never queued as bytes: a connection keeps flags for the control
 * packets it owes (REQUEST, RESPONSE, CREDIT_UPDATE, SHUTDOWN, RST), and data is read from
 * the host socket straight into an rx chain when the guest has credit for it. RSTs for
 * packets that match no connection go to a small fixed ring (dropped when full). */
#include "virtio_vsock.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/err.h"
#include "virtio_pci.h"

#define Q_RX 0
#define Q_TX 1
#define Q_EV 2

#define P_REQUEST  1u
#define P_RESPONSE 2u
#define P_CREDIT   4u
#define P_SHUTDOWN 8u
#define P_RST      16u

#define LISTEN_TAG UINT64_MAX
#define RST_RING 64
#define LINE_MAX_LEN 32

enum cstate { C_FREE, C_LINE, C_CONNECTING, C_OPEN };

struct conn {
    enum cstate st;
    int fd;
    uint32_t hport, gport;        /* host side port, guest side port */
    bool host_initiated;
    uint32_t pending;             /* P_* owed to the guest */
    uint32_t shut_flags;          /* for the SHUTDOWN we owe */
    uint32_t ev;                  /* epoll events registered (0: not registered) */
    /* guest -> host */
    uint8_t *buf;                 /* VSOCK_BUF_ALLOC bytes while data waits for the host */
    uint32_t blen;
    uint32_t fwd_cnt, fwd_reported;
    bool guest_shut_send, guest_shut_rcv;
    bool host_eof;
    /* host -> guest */
    uint32_t rx_cnt;
    uint32_t peer_buf_alloc, peer_fwd_cnt;
    bool dead;                    /* free once the owed RST went out */
};

struct vsock {
    struct virtio_dev *vd;
    uint64_t cid;
    char *path;
    int lfd, epfd;
    struct conn conns[VSOCK_MAX_CONNS];
    unsigned nconns;
    uint32_t next_port;
    bool rx_starved;
    bool have_rxc;
    struct vq_chain rxc;
    struct { struct vsock_hdr h; } rst[RST_RING];
    unsigned rst_head, rst_n;
    uint8_t io[VSOCK_MAX_PAYLOAD];
};

/* ---- wire format ---- */

static uint64_t ld64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint32_t ld32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static void st64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i); }
static void st32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static void st16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

int vsock_hdr_parse(const void *buf, size_t avail, uint64_t guest_cid, struct vsock_hdr *h,
                    const char **why)
{
    const uint8_t *p = buf;
    *why = NULL;
    if (avail < VSOCK_HDR_LEN) {
        *why = "short header";
        return -1;
    }
    h->src_cid = ld64(p);
    h->dst_cid = ld64(p + 8);
    h->src_port = ld32(p + 16);
    h->dst_port = ld32(p + 20);
    h->len = ld32(p + 24);
    h->type = ld16(p + 28);
    h->op = ld16(p + 30);
    h->flags = ld32(p + 32);
    h->buf_alloc = ld32(p + 36);
    h->fwd_cnt = ld32(p + 40);
    if (h->src_cid != guest_cid)
        *why = "src_cid is not the guest's cid";
    else if (h->dst_cid != VSOCK_HOST_CID)
        *why = "dst_cid is not the host";
    else if (h->type != VSOCK_TYPE_STREAM)
        *why = "not a stream packet";
    else if (h->op < VSOCK_OP_REQUEST || h->op > VSOCK_OP_CREDIT_REQUEST)
        *why = "unknown op";
    else if (h->len > VSOCK_MAX_PAYLOAD)
        *why = "len above 64 KiB";
    else if (h->len > avail - VSOCK_HDR_LEN)
        *why = "len beyond the buffer";
    else if (h->len && h->op != VSOCK_OP_RW)
        *why = "payload on a control packet";
    return *why ? -1 : 0;
}

void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t out[VSOCK_HDR_LEN])
{
    st64(out, h->src_cid);
    st64(out + 8, h->dst_cid);
    st32(out + 16, h->src_port);
    st32(out + 20, h->dst_port);
    st32(out + 24, h->len);
    st16(out + 28, h->type);
    st16(out + 30, h->op);
    st32(out + 32, h->flags);
    st32(out + 36, h->buf_alloc);
    st32(out + 40, h->fwd_cnt);
}

/* ---- connections ---- */

static void conn_free(struct vsock *s, struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    free(c->buf);
    memset(c, 0, sizeof *c);
    c->fd = -1;
    s->nconns--;
}

static struct conn *conn_new(struct vsock *s, int fd)
{
    if (s->nconns >= VSOCK_MAX_CONNS)
        return NULL;
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        if (s->conns[i].st == C_FREE) {
            struct conn *c = &s->conns[i];
            memset(c, 0, sizeof *c);
            c->fd = fd;
            s->nconns++;
            return c;
        }
    return NULL;
}

static struct conn *conn_find(struct vsock *s, uint32_t gport, uint32_t hport)
{
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
        struct conn *c = &s->conns[i];
        if (c->st >= C_CONNECTING && !c->dead && c->gport == gport && c->hport == hport)
            return c;
    }
    return NULL;
}

/* Close the host side now and owe the guest an RST; freed when it is sent. */
static void conn_reset(struct vsock *s, struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->ev = 0;
    c->dead = true;
    c->pending = P_RST;
}

static void queue_rst(struct vsock *s, const struct vsock_hdr *in)
{
    if (in->op == VSOCK_OP_RST || s->rst_n == RST_RING)
        return;
    struct vsock_hdr *h = &s->rst[(s->rst_head + s->rst_n++) % RST_RING].h;
    *h = (struct vsock_hdr){ .src_cid = VSOCK_HOST_CID, .dst_cid = s->cid,
                             .src_port = in->dst_port, .dst_port = in->src_port,
                             .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RST };
}

static uint32_t peer_credit(const struct conn *c)
{
    uint32_t inflight = c->rx_cnt - c->peer_fwd_cnt;
    return inflight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - inflight;
}

static uint32_t wanted_events(const struct vsock *s, const struct conn *c)
{
    if (c->fd < 0 || c->dead)
        return 0;
    if (c->st == C_LINE)
        return EPOLLIN;
    if (c->st != C_OPEN)
        return 0;
    uint32_t ev = 0;
    if (!c->host_eof && !c->guest_shut_rcv && !s->rx_starved && peer_credit(c) > 0)
        ev |= EPOLLIN;
    if (c->blen)
        ev |= EPOLLOUT;
    return ev;
}

/* Write buffered guest bytes to the host socket. */
static void conn_drain(struct vsock *s, struct conn *c)
{
    while (c->blen) {
        ssize_t n = send(c->fd, c->buf, c->blen, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            conn_reset(s, c);
            return;
        }
        memmove(c->buf, c->buf + n, c->blen - (size_t)n);
        c->blen -= (uint32_t)n;
        c->fwd_cnt += (uint32_t)n;
    }
    free(c->buf);
    c->buf = NULL;
    if (c->fwd_cnt - c->fwd_reported >= VSOCK_BUF_ALLOC / 2)
        c->pending |= P_CREDIT;
    if (c->guest_shut_send && c->guest_shut_rcv) {
        conn_reset(s, c);
        return;
    }
    if (c->guest_shut_send)
        shutdown(c->fd, SHUT_WR);
}

/* ---- guest -> host (tx queue) ---- */

static void guest_request(struct vsock *s, const struct vsock_hdr *h)
{
    struct conn *old = conn_find(s, h->src_port, h->dst_port);
    if (old)
        conn_reset(s, old);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s_%u", s->path, h->dst_port) >=
        sizeof sa.sun_path) {
        queue_rst(s, h);
        return;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        queue_rst(s, h);
        return;
    }
    struct conn *c = NULL;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || !(c = conn_new(s, fd))) {
        close(fd);                       /* refused, absent, backlog full, or too many */
        queue_rst(s, h);
        return;
    }
    c->st = C_OPEN;
    c->gport = h->src_port;
    c->hport = h->dst_port;
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    c->pending = P_RESPONSE;
}

static void guest_packet(struct vsock *s, const struct vq_chain *ch)
{
    uint8_t raw[VSOCK_HDR_LEN];
    struct vsock_hdr h;
    const char *why;
    if (vq_copy_from(ch, 0, raw, sizeof raw) != sizeof raw)
        return;
    uint64_t avail = ch->rlen > VSOCK_HDR_LEN + VSOCK_MAX_PAYLOAD ? VSOCK_HDR_LEN + VSOCK_MAX_PAYLOAD
                                                                    : ch->rlen;
    if (vsock_hdr_parse(raw, (size_t)avail, s->cid, &h, &why) < 0)
        return;                          /* hostile or broken: dropped */
    if (h.op == VSOCK_OP_REQUEST) {
        guest_request(s, &h);
        return;
    }
    struct conn *c = conn_find(s, h.src_port, h.dst_port);
    if (!c) {
        queue_rst(s, &h);
        return;
    }
    c->peer_buf_alloc = h.buf_alloc;
    c->peer_fwd_cnt = h.fwd_cnt;
    switch (h.op) {
    case VSOCK_OP_RESPONSE:
        if (c->st != C_CONNECTING) {
            conn_reset(s, c);
            return;
        }
        c->st = C_OPEN;
        char line[32];
        int n = snprintf(line, sizeof line, "OK %u\n", c->hport);
        if (send(c->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
            conn_reset(s, c);
        return;
    case VSOCK_OP_RST:
        c->pending = 0;
        conn_free(s, c);
        return;
    case VSOCK_OP_SHUTDOWN:
        if (h.flags & VSOCK_SHUTDOWN_RCV)
            c->guest_shut_rcv = true;
        if (h.flags & VSOCK_SHUTDOWN_SEND)
            c->guest_shut_send = true;
        if (c->st == C_OPEN && c->fd >= 0)
            conn_drain(s, c);
        return;
    case VSOCK_OP_RW:
        if (c->st != C_OPEN || c->guest_shut_send || c->fd < 0)
            return;
        if (c->blen + h.len > VSOCK_BUF_ALLOC) {
            conn_reset(s, c);            /* the guest ignored the credit we gave it */
            return;
        }
        if (!c->buf && !(c->buf = malloc(VSOCK_BUF_ALLOC))) {
            conn_reset(s, c);
            return;
        }
        c->blen += (uint32_t)vq_copy_from(ch, VSOCK_HDR_LEN, c->buf + c->blen, h.len);
        conn_drain(s, c);
        return;
    case VSOCK_OP_CREDIT_REQUEST:
        c->pending |= P_CREDIT;
        return;
    default:                             /* CREDIT_UPDATE: taken above */
        return;
    }
}

/* ---- host -> guest (rx queue) ---- */

/* An rx chain to fill: the one held back earlier, or the next; NULL when none. */
static struct vq_chain *rx_chain(struct vsock *s)
{
    if (s->have_rxc)
        return &s->rxc;
    if (s->rx_starved)
        return NULL;
    for (;;) {
        int r = virtio_pci_pop(s->vd, Q_RX, &s->rxc);
        if (r > 0 && s->rxc.wlen >= VSOCK_HDR_LEN) {
            s->have_rxc = true;
            return &s->rxc;
        }
        if (r > 0) {
            virtio_pci_push(s->vd, Q_RX, &s->rxc, 0);   /* too small to hold a header */
            continue;
        }
        if (r < 0 || !virtio_pci_rearm(s->vd, Q_RX)) {
            s->rx_starved = true;
            return NULL;
        }
    }
}

static void rx_send(struct vsock *s, struct vsock_hdr *h, const void *data)
{
    uint8_t raw[VSOCK_HDR_LEN];
    vsock_hdr_encode(h, raw);
    vq_copy_to(s->vd->m, &s->rxc, 0, raw, sizeof raw);
    if (h->len)
        vq_copy_to(s->vd->m, &s->rxc, VSOCK_HDR_LEN, data, h->len);
    virtio_pci_push(s->vd, Q_RX, &s->rxc, VSOCK_HDR_LEN + h->len);
    s->have_rxc = false;
}

static void conn_hdr(const struct vsock *s, struct conn *c, struct vsock_hdr *h, uint16_t op)
{
    *h = (struct vsock_hdr){ .src_cid = VSOCK_HOST_CID, .dst_cid = s->cid,
                             .src_port = c->hport, .dst_port = c->gport,
                             .type = VSOCK_TYPE_STREAM, .op = op,
                             .buf_alloc = VSOCK_BUF_ALLOC, .fwd_cnt = c->fwd_cnt };
    c->fwd_reported = c->fwd_cnt;
}

/* Send what we owe: RSTs of the ring, then each connection's control packets. */
static bool rx_control(struct vsock *s)
{
    while (s->rst_n) {
        if (!rx_chain(s))
            return false;
        rx_send(s, &s->rst[s->rst_head].h, NULL);
        s->rst_head = (s->rst_head + 1) % RST_RING;
        s->rst_n--;
    }
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
        struct conn *c = &s->conns[i];
        while (c->st != C_FREE && c->pending) {
            if (!rx_chain(s))
                return false;
            struct vsock_hdr h;
            uint32_t bit = c->pending & -c->pending;
            static const uint16_t ops[] = { [0] = VSOCK_OP_REQUEST, [1] = VSOCK_OP_RESPONSE,
                                            [2] = VSOCK_OP_CREDIT_UPDATE, [3] = VSOCK_OP_SHUTDOWN,
                                            [4] = VSOCK_OP_RST };
            conn_hdr(s, c, &h, ops[__builtin_ctz(bit)]);
            if (bit == P_SHUTDOWN)
                h.flags = c->shut_flags;
            c->pending &= ~bit;
            rx_send(s, &h, NULL);
            if (bit == P_RST) {
                conn_free(s, c);
                break;
            }
        }
    }
    return true;
}

/* Host bytes of @c into one rx packet. */
static void conn_read(struct vsock *s, struct conn *c)
{
    uint32_t credit = peer_credit(c);
    if (!credit || c->host_eof || c->guest_shut_rcv || !rx_chain(s))
        return;
    uint64_t room = s->rxc.wlen - VSOCK_HDR_LEN;
    uint32_t want = credit < room ? credit : (uint32_t)room;
    if (want > VSOCK_MAX_PAYLOAD)
        want = VSOCK_MAX_PAYLOAD;
    if (want == 0)
        return;
    ssize_t n = recv(c->fd, s->io, want, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {                        /* host closed its side (or failed) */
        c->host_eof = true;
        c->shut_flags = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
        c->pending |= P_SHUTDOWN;
        if (n < 0)
            conn_reset(s, c);
        return;
    }
    struct vsock_hdr h;
    conn_hdr(s, c, &h, VSOCK_OP_RW);
    h.len = (uint32_t)n;
    rx_send(s, &h, s->io);
    c->rx_cnt += (uint32_t)n;
}

/* A host connection on <uds_path> sent (part of) its "CONNECT P\n" line. */
static void conn_line(struct vsock *s, struct conn *c)
{
    char line[LINE_MAX_LEN + 1];
    ssize_t n = recv(c->fd, line, LINE_MAX_LEN, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_free(s, c);
        return;
    }
    char *nl = memchr(line, '\n', (size_t)n);
    if (!nl) {
        if (n == LINE_MAX_LEN)
            conn_free(s, c);             /* no line that long is valid */
        return;
    }
    size_t len = (size_t)(nl - line) + 1;
    if (recv(c->fd, line, len, MSG_DONTWAIT) != (ssize_t)len) {
        conn_free(s, c);
        return;
    }
    line[len - 1] = '\0';
    char *end;
    if (strncmp(line, "CONNECT ", 8) || line[8] < '0' || line[8] > '9') {
        conn_free(s, c);
        return;
    }
    unsigned long port = strtoul(line + 8, &end, 10);
    if (*end || port > UINT32_MAX) {
        conn_free(s, c);
        return;
    }
    uint32_t hp;
    do {
        hp = s->next_port++;
        if (s->next_port == 0)
            s->next_port = 1u << 30;
    } while (conn_find(s, (uint32_t)port, hp));
    c->st = C_CONNECTING;
    c->host_initiated = true;
    c->gport = (uint32_t)port;
    c->hport = hp;
    c->pending = P_REQUEST;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->ev = 0;
}

static void do_accept(struct vsock *s)
{
    while (s->nconns < VSOCK_MAX_CONNS) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct conn *c = conn_new(s, fd);
        if (!c) {
            close(fd);
            return;
        }
        c->st = C_LINE;
    }
}

static void sync_events(struct vsock *s)
{
    for (unsigned k = 0; k < VSOCK_MAX_CONNS; k++) {
        struct conn *c = &s->conns[k];
        if (c->st == C_FREE || c->fd < 0)
            continue;
        uint32_t want = wanted_events(s, c);
        if (want == c->ev)
            continue;
        struct epoll_event e = { .events = want, .data.u64 = k };
        epoll_ctl(s->epfd, !c->ev ? EPOLL_CTL_ADD : want ? EPOLL_CTL_MOD : EPOLL_CTL_DEL, c->fd,
                  &e);
        c->ev = want;
    }
}

static void work(struct vsock *s)
{
    struct epoll_event ev[64];
    for (int round = 0; round < 64; round++) {
        rx_control(s);
        int n = epoll_wait(s->epfd, ev, 64, 0);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u64 == LISTEN_TAG) {
                do_accept(s);
                continue;
            }
            struct conn *c = &s->conns[ev[i].data.u64];
            if (c->st == C_FREE || c->fd < 0)
                continue;
            if (c->st == C_LINE) {
                conn_line(s, c);
                continue;
            }
            if (c->blen && (ev[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
                conn_drain(s, c);
            if (c->fd >= 0 && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                conn_read(s, c);
        }
        sync_events(s);                  /* the interest set for the next round */
    }
}

/* ---- transport hooks ---- */

static void vs_notify(struct virtio_dev *vd, unsigned q)
{
    struct vsock *s = vd->opaque;
    s->vd = vd;
    if (q == Q_RX)
        s->rx_starved = false;
    if (q == Q_TX) {
        for (;;) {
            int r;
            while ((r = virtio_pci_pop(vd, Q_TX, &vd->chain)) > 0) {
                guest_packet(s, &vd->chain);
                virtio_pci_push(vd, Q_TX, &vd->chain, 0);
            }
            if (r < 0 || !virtio_pci_rearm(vd, Q_TX))
                break;
        }
    }
    /* Q_EV: its buffers stay with us (no event is ever sent). */
    sync_events(s);
    work(s);
    sync_events(s);
}

static unsigned vs_poll_fds(struct virtio_dev *vd, struct pollfd *pfd, unsigned max)
{
    struct vsock *s = vd->opaque;
    s->vd = vd;
    if (!max || !virtio_pci_running(vd, Q_TX))
        return 0;
    sync_events(s);
    struct epoll_event e = { .events = s->nconns < VSOCK_MAX_CONNS ? EPOLLIN : 0,
                             .data.u64 = LISTEN_TAG };
    epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->lfd, &e);
    pfd[0] = (struct pollfd){ .fd = s->epfd, .events = POLLIN };
    return 1;
}

static void vs_poll_ready(struct virtio_dev *vd, const struct pollfd *pfd, unsigned n)
{
    struct vsock *s = vd->opaque;
    s->vd = vd;
    if (virtio_pci_running(vd, Q_TX)) {
        work(s);
        sync_events(s);
    }
}

static void vs_reset(struct virtio_dev *vd)
{
    struct vsock *s = vd->opaque;
    s->vd = vd;
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        if (s->conns[i].st != C_FREE)
            conn_free(s, &s->conns[i]);
    s->rst_n = 0;
    s->have_rxc = false;
    s->rx_starved = false;
}

static void vs_free(struct vsock *s)
{
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        if (s->conns[i].st != C_FREE)
            conn_free(s, &s->conns[i]);
    if (s->lfd >= 0) {
        close(s->lfd);
        unlink(s->path);
    }
    if (s->epfd >= 0)
        close(s->epfd);
    free(s->path);
    free(s);
}

static void vs_destroy(struct virtio_dev *vd)
{
    vs_free(vd->opaque);
}

static const struct virtio_dev_ops vsock_ops = {
    .type = "virtio-vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .class_code = 0xff0000,
    .nqueues = 3,
    .queue_max = 256,
    .notify = vs_notify,
    .poll_fds = vs_poll_fds,
    .poll_ready = vs_poll_ready,
    .reset = vs_reset,
    .destroy = vs_destroy,
};

int virtio_vsock_create(struct machine *m, uint64_t cid, const char *uds_path,
                        struct vmcore_err *err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    /* Room for "_4294967295" too: the guest's ports map to <uds_path>_P. */
    if (strlen(uds_path) + 11 >= sizeof sa.sun_path)
        return err_config(err, VMCORE_ECONFIG, "vsock.uds_path",
                          "%s: longer than %zu bytes (an AF_UNIX path with \"_<port>\" "
                          "appended must fit in %zu)", uds_path, sizeof sa.sun_path - 12,
                          sizeof sa.sun_path);
    struct stat st;
    if (lstat(uds_path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return err_config(err, VMCORE_ECONFIG, "vsock.uds_path",
                              "%s exists and is not a socket", uds_path);
        /* A live listener (another domain's) stays; a stale socket of an old run goes. */
        struct sockaddr_un probe = { .sun_family = AF_UNIX };
        strcpy(probe.sun_path, uds_path);
        int pfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        bool live = pfd >= 0 && connect(pfd, (struct sockaddr *)&probe, sizeof probe) == 0;
        if (pfd >= 0)
            close(pfd);
        if (live)
            return err_config(err, VMCORE_EBUSY, "vsock.uds_path",
                              "%s is in use (something listens on it)", uds_path);
        if (unlink(uds_path) < 0)                       /* a stale socket of an old run */
            return err_config(err, VMCORE_EIO, "vsock.uds_path", "cannot remove %s: %s",
                              uds_path, strerror(errno));
    }
    struct vsock *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(uds_path))) {
        free(s);
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    }
    s->cid = cid;
    s->lfd = -1;
    s->epfd = -1;
    s->next_port = 1u << 30;
    for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
        s->conns[i].fd = -1;
    strcpy(sa.sun_path, uds_path);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        if (lfd >= 0)
            close(lfd);
        vs_free(s);
        return err_config(err, err_from_errno(e), "vsock.uds_path", "cannot bind %s: %s",
                          uds_path, strerror(e));
    }
    s->lfd = lfd;
    struct epoll_event e = { .events = EPOLLIN, .data.u64 = LISTEN_TAG };
    if (listen(lfd, 64) < 0 || (s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, lfd, &e) < 0) {
        int en = errno;
        vs_free(s);
        return err_sys(err, err_from_errno(en), en, "vsock: listen on %s", uds_path);
    }
    uint8_t cfg[8];
    st64(cfg, cid);
    int rc = virtio_pci_create(m, &vsock_ops, s, 0, cfg, sizeof cfg, "virtio-vsock", NULL);
    if (rc) {
        vs_free(s);
        return err_config(err, rc, "vsock", "cannot create the virtio-vsock device");
    }
    return 0;
}
