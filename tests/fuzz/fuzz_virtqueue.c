/* Fuzz target: the split-virtqueue parser (lib/machine/virtqueue.c) over guest RAM the
 * fuzzer writes. An input is a 16-byte header, little-endian:
 *   u16 queue size (any value: not a power of two, 0, above the maximum are rejected)
 *   u8  flags (bit 0: VIRTIO_F_EVENT_IDX), u8 rounds (pop/push rounds, & 63)
 *   u32 descriptor table, u32 available ring, u32 used ring (guest-physical addresses)
 * followed by the guest RAM image (copied at address 0 of a 2 MiB machine; the rest is
 * zero). Every chain vq_pop() returns must lie wholly in RAM (each segment's host pointer
 * is RAM + its address), have at most VQ_MAX_SEGS segments, and be touched end to end
 * (readable bytes read, writable bytes written) without a fault; a broken queue must stay
 * broken. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "fuzz.h"
#include "machine/machine.h"
#include "machine/virtqueue.h"

static struct vq_chain chain;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct machine *m;
    if (!m) {
        /* One machine for the process: creating one per input would dominate the run. */
        struct vmcore_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.memory_mib = 2;   /* the raw image loads at 1 MiB */
        cfg.vcpus = 1;
        cfg.boot.kernel = (char *)fuzz_hlt_kernel();
        cfg.boot.format = BOOT_FORMAT_RAW;
        cfg.boot.mode = BOOT_MODE_PROTECTED;
        struct vmcore_err err = { 0 };
        if (machine_create(&m, &cfg, NULL, &err))
            abort();
    }
    uint8_t hdr[16] = { 0 };
    memcpy(hdr, data, size < sizeof hdr ? size : sizeof hdr);
    uint16_t qsize;
    uint32_t desc, avail, used;
    memcpy(&qsize, hdr, 2);
    memcpy(&desc, hdr + 4, 4);
    memcpy(&avail, hdr + 8, 4);
    memcpy(&used, hdr + 12, 4);
    uint8_t *ram = machine_ram(m);
    uint64_t ram_size = machine_ram_size(m);
    memset(ram, 0, ram_size);
    if (size > sizeof hdr) {
        size_t n = size - sizeof hdr;
        memcpy(ram, data + sizeof hdr, n < ram_size ? n : ram_size);
    }

    struct virtqueue vq = { 0 };
    if (vq_setup(&vq, m, qsize, 256, desc, avail, used, hdr[2] & 1) < 0) {
        if (vq_pop(&vq, &chain) > 0)
            abort();            /* a queue that failed setup hands out nothing */
        return 0;
    }
    unsigned rounds = hdr[3] & 63;
    for (unsigned r = 0; r <= rounds; r++) {
        int got = vq_pop(&vq, &chain);
        if (got < 0) {
            if (!vq.broken || vq_pop(&vq, &chain) != -1)
                abort();
            break;
        }
        if (got == 0) {
            vq_enable_notify(&vq);
            break;
        }
        if (chain.nr + chain.nw > VQ_MAX_SEGS || chain.head >= vq.size)
            abort();
        uint64_t rl = 0, wl = 0;
        volatile uint8_t sink = 0;
        for (unsigned i = 0; i < chain.nr + chain.nw; i++) {
            const struct vq_seg *s = &chain.seg[i];
            if (s->gpa > ram_size || s->len > ram_size - s->gpa || s->hva != ram + s->gpa)
                abort();
            if (i < chain.nr) {
                rl += s->len;
                for (uint32_t k = 0; k < s->len; k += 512)
                    sink ^= s->hva[k];
                sink ^= s->hva[s->len - 1];
            } else {
                wl += s->len;
                memset(s->hva, 0xa5, s->len);
            }
        }
        if (rl != chain.rlen || wl != chain.wlen)
            abort();
        vq_push(&vq, &chain, (uint32_t)(wl > UINT32_MAX ? UINT32_MAX : wl));
        vq_should_notify(&vq);
    }
    return 0;
}
