/* Where a virtual network card's frames go: the interface between virtio-net (the
 * frontend's backend, lib/machine/virtio_net.c) and the host side of the wire: a tap
 * (net_tap.c), a tap on a host bridge (net_tap.c with core/bridge.c), or user-mode NAT
 * through libslirp (net_slirp.c, which containers use too).
 *
 * Frames cross the interface with the 12-byte struct virtio_net_hdr_v1 in front, the way
 * the guest's buffers hold them, so a backend that can take that header (a tap with
 * IFF_VNET_HDR) moves a frame between guest RAM and the host kernel with one copy: the
 * kernel's, straight from or into the guest's own buffers. All calls come from the
 * device's I/O thread. */
#ifndef VMCORE_MACHINE_NET_BACKEND_H
#define VMCORE_MACHINE_NET_BACKEND_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/config.h"
#include "core/err.h"

#define NET_HDR_LEN 12            /* struct virtio_net_hdr_v1 */

struct net_backend;

struct net_backend_ops {
    const char *kind;             /* "tap", "user" */
    /* Send one frame (@iov: header, then the Ethernet frame). 0, or -errno; a frame the
     * host cannot take now (-EAGAIN, -ENOBUFS) is dropped, as a full wire drops it. */
    int (*send)(struct net_backend *nb, const struct iovec *iov, int iovcnt);
    /* Receive one frame into @iov (header first): its length including the header,
     * -EAGAIN when none is waiting, another -errno when the backend failed. A frame larger
     * than @iov is truncated. */
    ssize_t (*recv)(struct net_backend *nb, const struct iovec *iov, int iovcnt);
    void (*close)(struct net_backend *nb);
};

struct net_backend {
    const struct net_backend_ops *ops;
    int fd;                       /* polled for POLLIN: a frame to receive */
    char ifname[16];              /* the host interface, for messages */
};

/* Open the tap @nic names (nics[@index] in the config): an existing tap interface by name,
 * or, with nic->create or without a name, a new one that goes away with the backend.
 * Errors name nics[@index].ifname; on failure nothing is left behind. */
int net_tap_open(const struct config_nic *nic, unsigned index, struct net_backend **out,
                 struct vmcore_err *err);

/* Mode "bridge": take nic->bridge (creating it if asked, core/bridge.h), make a tap the
 * kernel names (vmtapN, gone with the backend) and make it a port of the bridge; closing
 * the backend drops the bridge (the last domain removes one the library created). Errors
 * name nics[@index].bridge (or .ifname for the tap); on failure nothing is left behind. */
int net_bridge_open(const struct config_nic *nic, unsigned index, struct net_backend **out,
                    struct vmcore_err *err);

/* Start user-mode NAT for @nic (mode "user"): a libslirp instance on a thread of its own,
 * with the port forwards of nics[@index].ports listening (errors name the forward). */
int net_slirp_open(const struct config_nic *nic, unsigned index, struct net_backend **out,
                   struct vmcore_err *err);

/* The same NAT for a container (network.mode "user"), in two steps so that a busy host
 * port fails the start before any process exists. net_slirp_open_tap() makes the
 * instance with network.ports listening (forwarded to the container's 10.0.2.100; errors
 * name network.ports[N].host) and no peer yet. net_slirp_attach_tap() hands it @tap_fd,
 * a tap (IFF_TAP | IFF_NO_PI) inside the container's network namespace, which the backend
 * owns from then on (closed by ops->close even when the call fails), and starts its
 * thread, which reads and writes the tap's frames itself: the backend's fd is -1 and only
 * ops->close is for the caller. */
int net_slirp_open_tap(const struct config_portfwd *ports, size_t nports,
                       struct net_backend **out, struct vmcore_err *err);
int net_slirp_attach_tap(struct net_backend *nb, int tap_fd, struct vmcore_err *err);
/* The frames a "user" backend passed to its peer (rx, as the guest sees it) and took from
 * it (tx) so far, Ethernet frames without the virtio-net header; a frame the peer could not
 * take is not counted. Any thread. */
void net_slirp_counters(const struct net_backend *nb, uint64_t *rx_bytes, uint64_t *rx_packets,
                        uint64_t *tx_bytes, uint64_t *tx_packets);

#endif
