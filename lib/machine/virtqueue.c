/* Split virtqueues, device side (virtqueue.h; virtio 1.2 section 2.7). */
#include "virtqueue.h"

#include <string.h>

#include "machine.h"

/* Ring layout (2.7.6, 2.7.8): avail = flags, idx, ring[size], used_event;
 * used = flags, idx, ring[size] of {id le32, len le32}, avail_event. */
static uint16_t ld16(const uint8_t *p)
{
    return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

static void st16(uint8_t *p, uint16_t v) { __atomic_store_n((uint16_t *)p, v, __ATOMIC_RELEASE); }

static int fail(struct virtqueue *vq, const char *why)
{
    vq->broken = true;
    vq->why = why;
    return -1;
}

void vq_reset(struct virtqueue *vq)
{
    struct machine *m = vq->m;
    memset(vq, 0, sizeof *vq);
    vq->m = m;
}

bool vq_ready(const struct virtqueue *vq) { return vq->size && !vq->broken; }

int vq_setup(struct virtqueue *vq, struct machine *m, unsigned size, unsigned max,
             uint64_t desc, uint64_t avail, uint64_t used, bool event_idx)
{
    vq->m = m;
    vq_reset(vq);
    if (size == 0 || size > max || size > VQ_MAX_SIZE || (size & (size - 1)))
        return fail(vq, "queue size is not a power of two within the maximum");
    /* 2.7.2: descriptor table 16-byte, available ring 2-byte, used ring 4-byte aligned. */
    if ((desc & 15) || (avail & 1) || (used & 3))
        return fail(vq, "misaligned ring address");
    vq->desc = machine_dma_map(m, desc, 16ull * size);
    vq->avail = machine_dma_map(m, avail, 6ull + 2ull * size);
    vq->used = machine_dma_map(m, used, 6ull + 8ull * size);
    if (!vq->desc || !vq->avail || !vq->used) {
        vq->desc = vq->avail = vq->used = NULL;
        return fail(vq, "ring outside guest RAM");
    }
    vq->desc_gpa = desc;
    vq->avail_gpa = avail;
    vq->used_gpa = used;
    vq->event_idx = event_idx;
    vq->size = (uint16_t)size;
    /* The driver zeroes the used ring before enabling (2.7.8 says the device must not
     * rely on it, so start from what is there is wrong too): our index starts at 0. */
    return 0;
}

struct raw_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

/* One descriptor, copied once: the guest may change it under us, so every check is made
 * on the copy. */
static struct raw_desc read_desc(const uint8_t *table, unsigned i)
{
    struct raw_desc d;
    memcpy(&d, table + 16u * i, sizeof d);
    return d;
}

int vq_pop(struct virtqueue *vq, struct vq_chain *c)
{
    if (!vq->size)
        return 0;
    if (vq->broken)
        return -1;
    uint16_t avail_idx = ld16(vq->avail + 2);
    uint16_t pending = (uint16_t)(avail_idx - vq->last_avail);
    if (pending == 0)
        return 0;
    if (pending > vq->size)
        return fail(vq, "available index moved by more than the queue size");
    uint16_t head = ld16(vq->avail + 4 + 2u * (vq->last_avail & (vq->size - 1)));
    if (head >= vq->size)
        return fail(vq, "head descriptor index out of range");

    c->head = head;
    c->nr = c->nw = 0;
    c->rlen = c->wlen = 0;
    const uint8_t *table = vq->desc;
    unsigned n = vq->size, idx = head, count = 0;
    bool indirect = false;
    for (;;) {
        /* A chain visits each descriptor of its table at most once; more means a loop. */
        if (++count > n)
            return fail(vq, "descriptor chain loops or is longer than its table");
        struct raw_desc d = read_desc(table, idx);
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (indirect)
                return fail(vq, "nested indirect descriptor");
            if (d.flags & VIRTQ_DESC_F_NEXT)
                return fail(vq, "indirect descriptor with NEXT");
            if (d.len == 0 || d.len % 16 || d.len / 16 > VQ_MAX_INDIRECT)
                return fail(vq, "bad indirect table length");
            const uint8_t *t = machine_dma_map(vq->m, d.addr, d.len);
            if (!t)
                return fail(vq, "indirect table outside guest RAM");
            table = t;
            n = d.len / 16;
            idx = 0;
            count = 0;
            indirect = true;
            continue;
        }
        if (d.len) {
            uint8_t *hva = machine_dma_map(vq->m, d.addr, d.len);
            if (!hva)
                return fail(vq, "buffer outside guest RAM");
            if (c->nr + c->nw >= VQ_MAX_SEGS)
                return fail(vq, "too many segments in one chain");
            struct vq_seg *s = &c->seg[c->nr + c->nw];
            *s = (struct vq_seg){ hva, d.addr, d.len };
            if (d.flags & VIRTQ_DESC_F_WRITE) {
                c->nw++;
                c->wlen += d.len;
            } else {
                if (c->nw)
                    return fail(vq, "readable descriptor after a writable one");
                c->nr++;
                c->rlen += d.len;
            }
        }
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            break;
        idx = d.next;
        if (idx >= n)
            return fail(vq, "next descriptor index out of range");
    }
    vq->last_avail++;
    return 1;
}

void vq_push(struct virtqueue *vq, const struct vq_chain *c, uint32_t written)
{
    if (!vq->size)
        return;
    /* Report the guest pages we wrote (the emulator drops code translated from them). */
    uint64_t left = written;
    for (unsigned i = 0; i < c->nw && left; i++) {
        const struct vq_seg *s = &c->seg[c->nr + i];
        uint64_t n = left < s->len ? left : s->len;
        machine_dma_written(vq->m, s->gpa, n);
        left -= n;
    }
    unsigned slot = vq->used_idx & (vq->size - 1);
    uint8_t *e = vq->used + 4 + 8u * slot;
    uint32_t id = c->head;
    memcpy(e, &id, 4);
    memcpy(e + 4, &written, 4);
    vq->used_idx++;
    /* The element must be visible before the index that publishes it. */
    st16(vq->used + 2, vq->used_idx);
    machine_dma_written(vq->m, vq->used_gpa + 4 + 8u * slot, 8);
    machine_dma_written(vq->m, vq->used_gpa + 2, 2);
}

bool vq_should_notify(struct virtqueue *vq)
{
    if (!vq->size)
        return false;
    /* Our used index store must be ordered before reading the driver's suppression
     * state, or both sides may decide the other will act (2.7.7.1). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t old = vq->signalled, now = vq->used_idx;
    if (old == now)
        return false;
    if (!vq->event_idx)
        return !(ld16(vq->avail) & VIRTQ_AVAIL_F_NO_INTERRUPT) ? (vq->signalled = now, true)
                                                             : false;
    uint16_t event = ld16(vq->avail + 4 + 2u * vq->size);
    vq->signalled = now;
    /* vring_need_event: interrupt if used_event lies in [old, now). */
    return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

bool vq_enable_notify(struct virtqueue *vq)
{
    if (!vq_ready(vq))
        return false;
    if (vq->event_idx) {
        st16(vq->used + 4 + 8u * vq->size, vq->last_avail);
        machine_dma_written(vq->m, vq->used_gpa + 4 + 8u * vq->size, 2);
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return ld16(vq->avail + 2) != vq->last_avail;
}

/* @m non-NULL: copy into the guest and report the bytes written. */
static uint64_t copy_segs(struct machine *m, const struct vq_seg *seg, unsigned nseg,
                          uint64_t off, uint8_t *buf, uint64_t len)
{
    uint64_t done = 0;
    for (unsigned i = 0; i < nseg && done < len; i++) {
        if (off >= seg[i].len) {
            off -= seg[i].len;
            continue;
        }
        uint64_t n = seg[i].len - off;
        if (n > len - done)
            n = len - done;
        if (m) {
            memcpy(seg[i].hva + off, buf + done, n);
            machine_dma_written(m, seg[i].gpa + off, n);
        } else
            memcpy(buf + done, seg[i].hva + off, n);
        done += n;
        off = 0;
    }
    return done;
}

uint64_t vq_copy_from(const struct vq_chain *c, uint64_t off, void *dst, uint64_t len)
{
    return copy_segs(NULL, c->seg, c->nr, off, dst, len);
}

uint64_t vq_copy_to(struct machine *m, const struct vq_chain *c, uint64_t off, const void *src,
                    uint64_t len)
{
    return copy_segs(m, c->seg + c->nr, c->nw, off, (uint8_t *)src, len);
}
