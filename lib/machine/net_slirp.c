/* The "user" network backend: user-mode NAT through libslirp (the engine QEMU and
 * slirp4netns use), needing no privilege and no host interface.
 *
 * The guest sees QEMU's usual network: 10.0.2.0/24, the gateway (and the host's loopback)
 * at 10.0.2.2, a DNS forwarder at 10.0.2.3 (to the host's resolvers), DHCP handing out
 * 10.0.2.15 and up; IPv6 fd00::/64 with the gateway at fd00::2. Connections the guest
 * makes become connections of this process; nics[N].ports make this process listen on
 * host ports and forward each connection to the guest.
 *
 * libslirp is not thread-safe, so one thread of ours owns the Slirp instance and runs its
 * poll loop (its sockets, its timers). It exchanges frames with one peer, one whole frame
 * per read and write:
 * - a VM's: the device's I/O thread talks to it through a SOCK_SEQPACKET socket pair, one
 *   frame (with the 12-byte virtio-net header in front) per packet: the device side is the
 *   backend's fd. That costs one copy each way beyond libslirp's own, which user-mode NAT
 *   can afford (a tap is the fast path).
 * - a container's (net_slirp_open_tap): the tap "eth0" the container's init made inside
 *   its network namespace (IFF_TAP | IFF_NO_PI, no header), whose fd this process holds,
 *   as slirp4netns does. The container has the fixed address 10.0.2.100.
 * A frame that finds the peer full is dropped, as a full wire drops it; TCP retransmits. A
 * peer that fails (the container's namespace went away under its tap) is dropped from the
 * poll set; the thread keeps serving slirp's sockets until the backend is closed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <slirp/libslirp.h>

#include "machine/net_backend.h"

#define MAX_FRAME (NET_HDR_LEN + 65536)
#define MAX_POLL 512

struct stimer {
    struct stimer *next;
    SlirpTimerId id;
    void *cb_opaque;
    int64_t expire_ms; /* -1: not armed */
};

struct net_slirp {
    struct net_backend nb;  /* nb.fd: the device's end of the pair; -1 for a tap */
    int peer;               /* the slirp thread's end, or the container's tap */
    bool peer_sock;         /* peer is our socket pair (sendmsg), else a tap (writev) */
    size_t peer_hdr;        /* bytes of virtio-net header in front of each peer frame */
    bool peer_dead;         /* the peer failed: stop polling it (slirp thread only) */
    /* frames through the peer, header excluded: to the guest (rx) and from it (tx);
     * written by the slirp thread, read by net_slirp_counters() */
    atomic_uint_fast64_t rx_bytes, rx_packets, tx_bytes, tx_packets;
    int wake;               /* eventfd: stop, or slirp's notify */
    atomic_bool stop;
    pthread_t thread;
    bool thread_started;
    Slirp *slirp;
    struct stimer *timers;
    struct pollfd pfd[MAX_POLL];
    unsigned npfd;
    unsigned char buf[MAX_FRAME];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- libslirp's callbacks (all on the slirp thread) ------------------------------------- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    struct net_slirp *s = opaque;
    static const unsigned char hdr[NET_HDR_LEN];
    if (s->peer_dead)
        return (ssize_t)len; /* nobody to deliver to: the wire is cut */
    /* counted before the write, so that a reader who saw the guest react to the frame
     * sees it counted (this thread may be preempted right after the write); taken back
     * if the peer did not take it */
    atomic_fetch_add_explicit(&s->rx_bytes, len, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->rx_packets, 1, memory_order_relaxed);
    struct iovec iov[2] = { { (void *)hdr, s->peer_hdr }, { (void *)buf, len } };
    struct iovec *v = s->peer_hdr ? iov : iov + 1;
    int nv = s->peer_hdr ? 2 : 1;
    ssize_t n;
    if (s->peer_sock) {
        struct msghdr mh = { .msg_iov = v, .msg_iovlen = (size_t)nv };
        n = sendmsg(s->peer, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    } else {
        n = writev(s->peer, v, nv); /* the tap is non-blocking */
    }
    if (n < 0) {
        atomic_fetch_sub_explicit(&s->rx_bytes, len, memory_order_relaxed);
        atomic_fetch_sub_explicit(&s->rx_packets, 1, memory_order_relaxed);
        if (errno != EAGAIN && errno != ENOBUFS)
            return -1;
    }
    return (ssize_t)len; /* dropped when the peer is behind: TCP retransmits */
}

static void cb_guest_error(const char *msg, void *opaque)
{
    (void)msg;
    (void)opaque; /* a guest sending nonsense is the guest's problem; nothing to log to */
}

static int64_t cb_clock_get_ns(void *opaque)
{
    (void)opaque;
    return now_ns();
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
    struct net_slirp *s = opaque;
    struct stimer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->id = id;
    t->cb_opaque = cb_opaque;
    t->expire_ms = -1;
    t->next = s->timers;
    s->timers = t;
    return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
    struct net_slirp *s = opaque;
    for (struct stimer **pp = &s->timers; *pp; pp = &(*pp)->next)
        if (*pp == timer) {
            *pp = (*pp)->next;
            free(timer);
            return;
        }
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    (void)opaque;
    if (timer)
        ((struct stimer *)timer)->expire_ms = expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque)
{
    (void)fd;
    (void)opaque;
}

static void cb_unregister_poll_fd(int fd, void *opaque)
{
    (void)fd;
    (void)opaque;
}

static void cb_notify(void *opaque)
{
    struct net_slirp *s = opaque;
    uint64_t one = 1;
    if (write(s->wake, &one, sizeof one) < 0)
        (void)0; /* the counter is saturated: a wakeup is pending anyway */
}

static int add_poll(int fd, int events, void *opaque)
{
    struct net_slirp *s = opaque;
    if (s->npfd >= MAX_POLL)
        return -1;
    short ev = 0;
    if (events & SLIRP_POLL_IN)
        ev |= POLLIN;
    if (events & SLIRP_POLL_OUT)
        ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI)
        ev |= POLLPRI;
    s->pfd[s->npfd] = (struct pollfd){ .fd = fd, .events = ev };
    return (int)s->npfd++;
}

static int get_revents(int idx, void *opaque)
{
    struct net_slirp *s = opaque;
    if (idx < 0 || (unsigned)idx >= s->npfd)
        return 0;
    short r = s->pfd[idx].revents;
    int out = 0;
    if (r & POLLIN)
        out |= SLIRP_POLL_IN;
    if (r & POLLOUT)
        out |= SLIRP_POLL_OUT;
    if (r & POLLPRI)
        out |= SLIRP_POLL_PRI;
    if (r & POLLERR)
        out |= SLIRP_POLL_ERR;
    if (r & (POLLHUP | POLLNVAL))
        out |= SLIRP_POLL_HUP;
    return out;
}

/* --- the slirp thread -------------------------------------------------------------------- */

static void *slirp_main(void *arg)
{
    struct net_slirp *s = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    while (!atomic_load(&s->stop)) {
        s->npfd = 0;
        add_poll(s->peer, SLIRP_POLL_IN, s);
        if (s->peer_dead)
            s->pfd[0].fd = -1; /* poll() skips it */
        add_poll(s->wake, SLIRP_POLL_IN, s);
        uint32_t timeout = UINT32_MAX;
        slirp_pollfds_fill(s->slirp, &timeout, add_poll, s);
        int64_t now = now_ns() / 1000000;
        for (struct stimer *t = s->timers; t; t = t->next)
            if (t->expire_ms >= 0) {
                int64_t left = t->expire_ms - now;
                if (left < 0)
                    left = 0;
                if ((uint64_t)left < timeout)
                    timeout = (uint32_t)left;
            }
        int wait = timeout == UINT32_MAX ? -1 : (int)(timeout > 60000 ? 60000 : timeout);
        int r = poll(s->pfd, s->npfd, wait);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && (s->pfd[1].revents & POLLIN)) {
            uint64_t v;
            if (read(s->wake, &v, sizeof v) < 0)
                (void)0;
        }
        /* frames from the guest: a batch, so a flood cannot starve slirp's sockets */
        short pev = r > 0 ? s->pfd[0].revents : 0;
        for (int i = 0; (pev & POLLIN) && i < 64; i++) {
            ssize_t n = read(s->peer, s->buf, sizeof s->buf); /* one frame; non-blocking */
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (n <= 0) {
                s->peer_dead = true; /* the other end closed, or the tap lost its device */
                break;
            }
            if ((size_t)n > s->peer_hdr) {
                size_t len = (size_t)n - s->peer_hdr;
                atomic_fetch_add_explicit(&s->tx_bytes, len, memory_order_relaxed);
                atomic_fetch_add_explicit(&s->tx_packets, 1, memory_order_relaxed);
                slirp_input(s->slirp, s->buf + s->peer_hdr, (int)len);
            }
        }
        if (pev & (POLLERR | POLLHUP | POLLNVAL))
            s->peer_dead = true;
        slirp_pollfds_poll(s->slirp, r < 0, get_revents, s);
        now = now_ns() / 1000000;
        /* a timer's handler may re-arm or free timers: rescan after each one */
        for (bool again = true; again;) {
            again = false;
            for (struct stimer *t = s->timers; t; t = t->next)
                if (t->expire_ms >= 0 && t->expire_ms <= now) {
                    t->expire_ms = -1;
                    slirp_handle_timer(s->slirp, t->id, t->cb_opaque);
                    again = true;
                    break;
                }
        }
    }
    return NULL;
}

/* --- the device side --------------------------------------------------------------------- */

static int slirp_send(struct net_backend *nb, const struct iovec *iov, int iovcnt)
{
    struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
    ssize_t n = sendmsg(nb->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0)
        return errno == EAGAIN || errno == ENOBUFS || errno == EMSGSIZE ? 0 : -errno;
    return 0;
}

static ssize_t slirp_recv(struct net_backend *nb, const struct iovec *iov, int iovcnt)
{
    struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
    ssize_t n = recvmsg(nb->fd, &mh, MSG_DONTWAIT);
    if (n < 0)
        return -errno;
    return n;
}

static void slirp_close(struct net_backend *nb)
{
    struct net_slirp *s = (struct net_slirp *)nb;
    if (s->thread_started) {
        atomic_store(&s->stop, true);
        uint64_t one = 1;
        if (write(s->wake, &one, sizeof one) < 0)
            (void)0;
        pthread_join(s->thread, NULL);
    }
    if (s->slirp)
        slirp_cleanup(s->slirp); /* frees its timers through cb_timer_free */
    while (s->timers) {
        struct stimer *t = s->timers;
        s->timers = t->next;
        free(t);
    }
    if (nb->fd >= 0)
        close(nb->fd);
    if (s->peer >= 0)
        close(s->peer);
    if (s->wake >= 0)
        close(s->wake);
    free(s);
}

static const struct net_backend_ops slirp_ops = {
    .kind = "user",
    .send = slirp_send,
    .recv = slirp_recv,
    .close = slirp_close,
};

static const SlirpCb callbacks = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_unregister_poll_fd,
    .notify = cb_notify,
    .timer_new_opaque = cb_timer_new_opaque,
};

/* The Slirp instance and its forwards to @guest_ip, listening; errors name @where
 * ("nics[N]", "network"). On failure @s is freed. */
static int slirp_setup(struct net_slirp *s, const struct config_portfwd *ports, size_t nports,
                       const char *where, const char *guest_ip, struct vmcore_err *err)
{
    s->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake < 0) {
        int e = errno;
        slirp_close(&s->nb);
        return err_sys(err, VMCORE_ESYS, e, "%s: eventfd", where);
    }
    SlirpConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.version = 4;
    cfg.restricted = 0;
    cfg.in_enabled = true;
    inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
    inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
    inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
    inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
    cfg.in6_enabled = true;
    inet_pton(AF_INET6, "fd00::", &cfg.vprefix_addr6);
    cfg.vprefix_len = 64;
    inet_pton(AF_INET6, "fd00::2", &cfg.vhost6);
    inet_pton(AF_INET6, "fd00::3", &cfg.vnameserver6);
    cfg.vhostname = "vmcore";
    cfg.if_mtu = 1500;
    cfg.if_mru = 1500;
    s->slirp = slirp_new(&cfg, &callbacks, s);
    if (!s->slirp) {
        slirp_close(&s->nb);
        return err_set(err, VMCORE_ESYS, "%s: libslirp refused its configuration", where);
    }
    struct in_addr guest;
    inet_pton(AF_INET, guest_ip, &guest);
    for (size_t i = 0; i < nports; i++) {
        const struct config_portfwd *f = &ports[i];
        struct in_addr host = { .s_addr = f->host_addr };
        if (slirp_add_hostfwd(s->slirp, f->udp, host, f->host_port, guest, f->guest_port) < 0) {
            int e = errno;
            char a[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &host, a, sizeof a);
            slirp_close(&s->nb);
            return err_sys(err, e == EADDRINUSE ? VMCORE_EBUSY : VMCORE_ECONFIG, e,
                           "%s.ports[%zu].host: cannot listen on %s %s:%u", where, i,
                           f->udp ? "udp" : "tcp", a, f->host_port);
        }
    }
    return 0;
}

/* Start the slirp thread once the peer is in place (@s stays the caller's on failure). */
static int slirp_run(struct net_slirp *s, const char *where, struct vmcore_err *err)
{
    int rc = pthread_create(&s->thread, NULL, slirp_main, s);
    if (rc != 0)
        return err_sys(err, VMCORE_ESYS, rc, "%s: start the user-network thread", where);
    s->thread_started = true;
    return 0;
}

int net_slirp_open(const struct config_nic *nic, unsigned index, struct net_backend **out,
                   struct vmcore_err *err)
{
    struct net_slirp *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    s->nb.ops = &slirp_ops;
    s->nb.fd = s->peer = s->wake = -1;
    s->peer_sock = true;
    s->peer_hdr = NET_HDR_LEN;
    snprintf(s->nb.ifname, sizeof s->nb.ifname, "user%u", index);
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) < 0) {
        int e = errno;
        slirp_close(&s->nb);
        return err_sys(err, VMCORE_ESYS, e, "nics[%u]: socketpair", index);
    }
    s->nb.fd = sp[0];
    s->peer = sp[1];
    /* room for a burst of full-size frames each way */
    int sz = 4 << 20;
    setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    setsockopt(sp[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    char where[16];
    snprintf(where, sizeof where, "nics[%u]", index);
    int rc = slirp_setup(s, nic->ports, nic->nports, where, "10.0.2.15", err);
    if (rc)
        return rc;
    if ((rc = slirp_run(s, where, err))) {
        slirp_close(&s->nb);
        return rc;
    }
    *out = &s->nb;
    return 0;
}

int net_slirp_open_tap(const struct config_portfwd *ports, size_t nports,
                       struct net_backend **out, struct vmcore_err *err)
{
    struct net_slirp *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    s->nb.ops = &slirp_ops;
    s->nb.fd = s->peer = s->wake = -1;
    snprintf(s->nb.ifname, sizeof s->nb.ifname, "eth0");
    int rc = slirp_setup(s, ports, nports, "network", "10.0.2.100", err);
    if (rc == 0)
        *out = &s->nb;
    return rc;
}

int net_slirp_attach_tap(struct net_backend *nb, int tap_fd, struct vmcore_err *err)
{
    struct net_slirp *s = (struct net_slirp *)nb;
    s->peer = tap_fd;
    int fl = fcntl(tap_fd, F_GETFL);
    if (fl < 0 || fcntl(tap_fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return err_sys(err, VMCORE_ESYS, errno, "network: make the tap non-blocking");
    return slirp_run(s, "network", err);
}

void net_slirp_counters(const struct net_backend *nb, uint64_t *rx_bytes, uint64_t *rx_packets,
                        uint64_t *tx_bytes, uint64_t *tx_packets)
{
    struct net_slirp *s = (struct net_slirp *)nb;
    *rx_bytes = atomic_load_explicit(&s->rx_bytes, memory_order_relaxed);
    *rx_packets = atomic_load_explicit(&s->rx_packets, memory_order_relaxed);
    *tx_bytes = atomic_load_explicit(&s->tx_bytes, memory_order_relaxed);
    *tx_packets = atomic_load_explicit(&s->tx_packets, memory_order_relaxed);
}
