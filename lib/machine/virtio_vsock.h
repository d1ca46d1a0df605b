/* virtio-vsock (virtio 1.2 section 5.10), stream sockets, mapped to host AF_UNIX sockets
 * the way Firecracker does it:
 *   - the guest connects to CID 2 port P: we connect to the AF_UNIX listener at
 *     "<uds_path>_P" (refused or absent: RST to the guest);
 *   - a host program connects to the AF_UNIX socket we listen on at <uds_path> and writes
 *     "CONNECT P\n": we send the guest a REQUEST for port P and, once the guest answers
 *     RESPONSE, write "OK <hostport>\n" (RST: we close the host connection).
 * Bounds: VSOCK_MAX_CONNS connections per device; per connection at most VSOCK_BUF_ALLOC
 * bytes buffered guest -> host (the credit we advertise); host -> guest bytes are read
 * from the host socket only when the guest has both credit and an rx buffer, so a guest
 * that never reads its rx ring costs no memory. */
#ifndef VMCORE_MACHINE_VIRTIO_VSOCK_H
#define VMCORE_MACHINE_VIRTIO_VSOCK_H

#include <stddef.h>
#include <stdint.h>

#define VIRTIO_ID_VSOCK 19

#define VSOCK_HOST_CID   2
#define VSOCK_HDR_LEN    44
#define VSOCK_MAX_PAYLOAD (64u << 10)   /* largest RW payload accepted from the guest */
#define VSOCK_BUF_ALLOC  (256u << 10)   /* credit we advertise per connection */
#define VSOCK_MAX_CONNS  1024

#define VSOCK_TYPE_STREAM 1
enum {
    VSOCK_OP_INVALID = 0, VSOCK_OP_REQUEST, VSOCK_OP_RESPONSE, VSOCK_OP_RST,
    VSOCK_OP_SHUTDOWN, VSOCK_OP_RW, VSOCK_OP_CREDIT_UPDATE, VSOCK_OP_CREDIT_REQUEST,
};
#define VSOCK_SHUTDOWN_RCV  1
#define VSOCK_SHUTDOWN_SEND 2

/* struct virtio_vsock_hdr, decoded from its little-endian wire form. */
struct vsock_hdr {
    uint64_t src_cid, dst_cid;
    uint32_t src_port, dst_port;
    uint32_t len;
    uint16_t type, op;
    uint32_t flags, buf_alloc, fwd_cnt;
};

/* Decode and validate a header the guest sent on its tx queue: @buf holds @avail bytes
 * (header and payload). 0 if usable; -1 with *why set when it must be dropped: short,
 * src_cid not @guest_cid, dst_cid not the host, type not stream, unknown op, len above
 * VSOCK_MAX_PAYLOAD or beyond @avail, a payload on anything but RW. */
int vsock_hdr_parse(const void *buf, size_t avail, uint64_t guest_cid, struct vsock_hdr *h,
                    const char **why);
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t out[VSOCK_HDR_LEN]);

#endif
