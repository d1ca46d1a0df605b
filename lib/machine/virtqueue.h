/* Split virtqueues (virtio 1.2 section 2.7), the device side: the ring the guest driver
 * (the frontend) shares with our device (the backend).
 *
 * The driver programs three guest-physical areas: the descriptor table (16 bytes per
 * entry), the available ring (driver -> device) and the used ring (device -> driver).
 * vq_setup() checks that all three lie in RAM (machine_dma_map); guest RAM never moves,
 * so the host pointers stay valid for the machine's life. Everything the guest writes
 * afterwards (indexes, descriptors) is re-read and validated on every use: a bad value
 * makes the queue broken (vq_pop() returns -1 from then on) and the transport reports
 * DEVICE_NEEDS_RESET. The host never reads or writes outside RAM.
 *
 * Threads: one consumer (the device's I/O thread) at a time; the transport serialises
 * setup/reset against it. */
#ifndef VMCORE_MACHINE_VIRTQUEUE_H
#define VMCORE_MACHINE_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

struct machine;

#define VIRTQ_DESC_F_NEXT      1
#define VIRTQ_DESC_F_WRITE     2
#define VIRTQ_DESC_F_INDIRECT  4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

#define VQ_MAX_SIZE     1024      /* the largest queue a device may offer */
#define VQ_MAX_INDIRECT 1024      /* entries in one indirect table */
#define VQ_MAX_SEGS     1024      /* segments one chain may have */

struct vq_seg {
    uint8_t *hva;                 /* host pointer, valid for len bytes */
    uint64_t gpa;
    uint32_t len;
};

/* One request: its readable segments, then its writable ones (the driver must put every
 * device-writable descriptor after the readable ones, 2.7.4.2). */
struct vq_chain {
    uint16_t head;
    unsigned nr, nw;
    uint64_t rlen, wlen;          /* total bytes readable / writable */
    struct vq_seg seg[VQ_MAX_SEGS];   /* seg[0..nr) readable, seg[nr..nr+nw) writable */
};

struct virtqueue {
    struct machine *m;
    uint16_t size;                /* 0: not set up */
    bool event_idx;               /* VIRTIO_F_EVENT_IDX negotiated */
    bool broken;
    uint8_t *desc, *avail, *used; /* host pointers of the three areas */
    uint64_t desc_gpa, avail_gpa, used_gpa;
    uint16_t last_avail;          /* next available entry to take */
    uint16_t used_idx;            /* our copy of used->idx */
    uint16_t signalled;           /* used_idx when the driver was last interrupted */
    const char *why;              /* what broke the queue, for messages and tests */
};

/* Set up @vq over the areas the driver programmed. Fails (-1, vq->why says why, the
 * queue stays unusable) when @size is 0, above @max or not a power of two, or an area is
 * not wholly in RAM. */
int vq_setup(struct virtqueue *vq, struct machine *m, unsigned size, unsigned max,
             uint64_t desc, uint64_t avail, uint64_t used, bool event_idx);
void vq_reset(struct virtqueue *vq);
bool vq_ready(const struct virtqueue *vq);

/* Take the next available chain: 1 with @c filled, 0 when the ring is empty, -1 when the
 * queue is (or now became) broken: a bad index, a loop, a chain longer than allowed, an
 * address outside RAM, a readable segment after a writable one, a bad indirect table. */
int vq_pop(struct virtqueue *vq, struct vq_chain *c);
/* Return @c to the driver with @written bytes written into its writable segments (the
 * pages they cover are reported to machine_dma_written()). */
void vq_push(struct virtqueue *vq, const struct vq_chain *c, uint32_t written);
/* After a batch of vq_push(): whether the driver wants an interrupt (EVENT_IDX's
 * used_event, or the NO_INTERRUPT flag without it). */
bool vq_should_notify(struct virtqueue *vq);
/* Before the I/O thread sleeps: tell the driver (EVENT_IDX's avail_event) which index
 * should wake us, then re-check. True if more chains are already available (process them
 * before sleeping, or a notification the driver suppressed would be lost). */
bool vq_enable_notify(struct virtqueue *vq);

/* Copy between a chain's segments and a flat buffer. vq_copy_from reads @len bytes of the
 * readable segments starting at byte @off; vq_copy_to writes into the writable segments
 * and reports what it wrote to machine_dma_written() (for bytes vq_push's @written does
 * not cover, such as a status byte at the end). Return how many bytes were copied
 * (fewer when the segments end). */
uint64_t vq_copy_from(const struct vq_chain *c, uint64_t off, void *dst, uint64_t len);
uint64_t vq_copy_to(struct machine *m, const struct vq_chain *c, uint64_t off, const void *src,
                    uint64_t len);

#endif
