/* virtio-net (virtio 1.2 section 5.1): one receive queue (0) and one transmit queue (1),
 * a MAC address and link status in the device configuration; no control queue, no
 * checksum or segmentation offloads, no mergeable receive buffers (every receive buffer
 * the driver posts holds a whole frame: Linux posts 1526 bytes or more without them).
 *
 * The frame path copies once each way: transmit hands the chain's readable segments to
 * the backend as an iovec (a tap's writev), receive hands it the writable segments of a
 * buffer the driver posted (a tap's readv). The vnet header the guest wrote is not
 * passed on: without negotiated offloads every field of it must be zero, so a zeroed
 * header of ours goes first and the guest cannot ask the host kernel for GSO or checksum
 * work it never negotiated. The guest's frame bytes are read by the kernel once.
 *
 * Receive buffers are held one at a time: the I/O thread takes a posted buffer and polls
 * the backend's fd only while it holds one, so a guest that posts nothing (or never reads
 * its used ring) leaves frames queued in the host kernel (the tap's queue, bounded and
 * dropping) and the thread asleep. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "net_backend.h"
#include "virtio_pci.h"

#define NET_F_MAC    5
#define NET_F_STATUS 16
#define NET_S_LINK_UP 1

#define RXQ 0
#define TXQ 1

/* The largest frame either way: an Ethernet frame for a 64 KiB MTU (the tap's own limit
 * is about the same), the header not counted. */
#define NET_MAX_FRAME (65535u + 14u)
/* Frames moved per wakeup before the thread looks at its other fds again. */
#define NET_BATCH 64

struct net_config {
    uint8_t mac[6];
    uint16_t status;
} __attribute__((packed));

struct net {
    struct net_backend *nb;
    char name[32];
    bool rx_held;                 /* rx holds a buffer the driver posted */
    bool dead;                    /* the backend failed: frames are no longer received */
    struct vq_chain rx;
    struct iovec iov[VQ_MAX_SEGS + 1];
    uint64_t tx_dropped, rx_errors;
};

/* A posted receive buffer, or false when the driver has none (notifications re-armed). */
static bool rx_take(struct virtio_dev *vd, struct net *n)
{
    while (!n->rx_held) {
        int r = virtio_pci_pop(vd, RXQ, &n->rx);
        if (r > 0) {
            n->rx_held = true;
            break;
        }
        if (r < 0 || !virtio_pci_rearm(vd, RXQ))
            return false;
    }
    return true;
}

static void rx_fill(struct virtio_dev *vd, struct net *n)
{
    static const uint16_t one = 1;
    for (unsigned done = 0; done < NET_BATCH && !n->dead && rx_take(vd, n); done++) {
        struct vq_chain *c = &n->rx;
        if (c->wlen < NET_HDR_LEN) {            /* no room even for the header */
            virtio_pci_push(vd, RXQ, c, 0);
            n->rx_held = false;
            n->rx_errors++;
            continue;
        }
        int cnt = 0;
        for (unsigned i = 0; i < c->nw; i++)
            n->iov[cnt++] = (struct iovec){ c->seg[c->nr + i].hva, c->seg[c->nr + i].len };
        ssize_t got = n->nb->ops->recv(n->nb, n->iov, cnt);
        if (got == -EAGAIN || got == -EINTR)
            return;                             /* keep the buffer for the next frame */
        if (got < 0) {
            n->dead = true;
            fprintf(stderr, "vmcore: %s: %s %s: %s; the card receives nothing more\n",
                    n->name, n->nb->ops->kind, n->nb->ifname, strerror((int)-got));
            return;
        }
        uint32_t len = (uint64_t)got < c->wlen ? (uint32_t)got : (uint32_t)c->wlen;
        if (len < NET_HDR_LEN) {
            virtio_pci_push(vd, RXQ, c, 0);
        } else {
            /* num_buffers: the backend leaves it; without mergeable buffers it is 1. */
            vq_copy_to(vd->m, c, 10, &one, sizeof one);
            virtio_pci_push(vd, RXQ, c, len);
            machine_net_count(vd->m, true, len - NET_HDR_LEN);
        }
        n->rx_held = false;
    }
}

static void tx_drain(struct virtio_dev *vd, struct net *n)
{
    static const uint8_t zero_hdr[NET_HDR_LEN];
    struct vq_chain *c = &vd->chain;
    for (;;) {
        int r;
        while ((r = virtio_pci_pop(vd, TXQ, c)) > 0) {
            /* The header, then the frame from byte 12 of the readable segments on. */
            if (c->rlen < NET_HDR_LEN + 14 || c->rlen > NET_HDR_LEN + NET_MAX_FRAME ||
                c->nr > VQ_MAX_SEGS) {
                n->tx_dropped++;
                virtio_pci_push(vd, TXQ, c, 0);
                continue;
            }
            int cnt = 0;
            n->iov[cnt++] = (struct iovec){ (void *)zero_hdr, NET_HDR_LEN };
            uint64_t skip = NET_HDR_LEN;
            for (unsigned i = 0; i < c->nr; i++) {
                const struct vq_seg *s = &c->seg[i];
                if (skip >= s->len) {
                    skip -= s->len;
                    continue;
                }
                n->iov[cnt++] = (struct iovec){ s->hva + skip, s->len - skip };
                skip = 0;
            }
            if (n->nb->ops->send(n->nb, n->iov, cnt) < 0)
                n->tx_dropped++;
            else
                machine_net_count(vd->m, false, c->rlen - NET_HDR_LEN);
            virtio_pci_push(vd, TXQ, c, 0);
        }
        if (r < 0 || !virtio_pci_rearm(vd, TXQ))
            break;
    }
}

static void net_notify(struct virtio_dev *vd, unsigned q)
{
    struct net *n = vd->opaque;
    if (q == TXQ)
        tx_drain(vd, n);
    else
        rx_fill(vd, n);
}

static unsigned net_poll_fds(struct virtio_dev *vd, struct pollfd *pfd, unsigned max)
{
    struct net *n = vd->opaque;
    if (!max || n->dead || !virtio_pci_running(vd, RXQ) || !rx_take(vd, n))
        return 0;
    pfd[0] = (struct pollfd){ .fd = n->nb->fd, .events = POLLIN };
    return 1;
}

static void net_poll_ready(struct virtio_dev *vd, const struct pollfd *pfd, unsigned cnt)
{
    struct net *n = vd->opaque;
    if (cnt && (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL)) &&
        !(pfd[0].revents & POLLIN)) {
        n->dead = true;
        fprintf(stderr, "vmcore: %s: %s %s hung up; the card receives nothing more\n",
                n->name, n->nb->ops->kind, n->nb->ifname);
        return;
    }
    if (virtio_pci_running(vd, RXQ))
        rx_fill(vd, n);
}

static void net_reset(struct virtio_dev *vd)
{
    struct net *n = vd->opaque;
    n->rx_held = false;           /* the driver takes its buffers back */
}

static void net_free(struct net *n)
{
    if (n->nb)
        n->nb->ops->close(n->nb);
    free(n);
}

static void net_destroy(struct virtio_dev *vd) { net_free(vd->opaque); }

static const struct virtio_dev_ops net_ops = {
    .type = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .class_code = 0x020000,
    .nqueues = 2,
    .queue_max = 256,
    .notify = net_notify,
    .poll_fds = net_poll_fds,
    .poll_ready = net_poll_ready,
    .reset = net_reset,
    .destroy = net_destroy,
};

int virtio_net_create(struct machine *m, const struct config_nic *nic, unsigned index,
                      struct vmcore_err *err)
{
    struct net *n = calloc(1, sizeof *n);
    if (!n)
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    int rc = nic->mode == NIC_MODE_USER     ? net_slirp_open(nic, index, &n->nb, err)
             : nic->mode == NIC_MODE_BRIDGE ? net_bridge_open(nic, index, &n->nb, err)
                                            : net_tap_open(nic, index, &n->nb, err);
    if (rc) {
        free(n);
        return rc;
    }
    snprintf(n->name, sizeof n->name, "virtio-net%u", index);
    struct net_config nc = { .status = NET_S_LINK_UP };
    memcpy(nc.mac, nic->mac, sizeof nc.mac);
    uint64_t f = 1ull << NET_F_MAC | 1ull << NET_F_STATUS;
    rc = virtio_pci_create(m, &net_ops, n, f, &nc, sizeof nc, n->name, NULL);
    if (rc) {
        net_free(n);
        char path[32];
        snprintf(path, sizeof path, "nics[%u]", index);
        return err_config(err, rc, path, "cannot create the virtio-net device");
    }
    return 0;
}
