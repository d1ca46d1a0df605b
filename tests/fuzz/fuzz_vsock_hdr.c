/* Fuzz target: the virtio-vsock packet header parser (lib/machine/virtio_vsock.c), which
 * reads what a guest puts on its tx queue. An input is the packet bytes (header and
 * payload) as the device sees them; the guest's cid is 3. A packet the parser accepts
 * must be a stream packet from cid 3 to the host with a known op, a payload of at most
 * 64 KiB that lies inside the input, and re-encode to the same 44 header bytes. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "machine/virtio_vsock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vsock_hdr h;
    const char *why;
    if (vsock_hdr_parse(data, size, 3, &h, &why) < 0) {
        if (!why)
            abort();
        return 0;
    }
    if (h.src_cid != 3 || h.dst_cid != VSOCK_HOST_CID || h.type != VSOCK_TYPE_STREAM ||
        h.op < VSOCK_OP_REQUEST || h.op > VSOCK_OP_CREDIT_REQUEST ||
        h.len > VSOCK_MAX_PAYLOAD || h.len > size - VSOCK_HDR_LEN)
        abort();
    uint8_t out[VSOCK_HDR_LEN];
    vsock_hdr_encode(&h, out);
    if (memcmp(out, data, VSOCK_HDR_LEN))
        abort();
    return 0;
}
