/* virtio-blk (virtio 1.2 section 5.2) over a raw image file.
 *
 * Reads, writes and flushes go to an io_uring (one per disk, BLK_QD deep): the I/O thread
 * takes requests from the queue while a slot is free, checks each (blk_rw_prepare, the
 * same checks as the synchronous path), submits readv/writev/fsync straight on the
 * guest's buffers (no bounce copy) and pushes each completion, in whatever order they
 * come, when the ring's eventfd fires; so requests overlap and the thread never sleeps in
 * the disk. GET_ID, DISCARD and WRITE_ZEROES (fallocate), and requests that fail the
 * checks, are answered at once, synchronously, on either path.
 *
 * Where io_uring is not available (ENOSYS, EPERM under a seccomp filter or
 * kernel.io_uring_disabled) or VMCORE_BLK_URING=0 is set, the same slots go to a pool of
 * BLK_POOL_THREADS worker threads instead (preadv/pwritev/fdatasync, on the guest's
 * buffers too), which report completions through the same kind of eventfd. Only when
 * the pool cannot start either (or VMCORE_BLK_THREADS=0) does the device have no hooks
 * and run requests synchronously on its I/O thread, one at a time.
 *
 * The image is locked with an OFD lock for the device's life: a write lock for a
 * read-write disk, a read lock for a read-only one, so two domains cannot both open an
 * image writable. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "virtio_pci.h"

enum {
    BLK_F_SEG_MAX = 2, BLK_F_RO = 5, BLK_F_BLK_SIZE = 6, BLK_F_FLUSH = 9,
    BLK_F_DISCARD = 13, BLK_F_WRITE_ZEROES = 14,
};
enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WRITE_ZEROES = 13 };
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2 };

#define SECTOR 512ull
#define SEG_MAX 254             /* data segments a request may carry (the queue is 256) */
#define MAX_RANGE_SECTORS 0x3fffffu

#define BLK_QD 16               /* requests in flight per disk (io_uring or the pool) */
#define BLK_POOL_THREADS 4      /* the pool's workers per disk */

/* One request in flight on the ring: the chain (for the push), what it asked for. */
struct slot {
    bool busy;
    uint8_t type;
    uint8_t st;                 /* the pool: the status a worker found */
    uint32_t written;           /* the push length on success */
    uint64_t pos, len;          /* read/write: the file range */
    int niov;
    struct vq_chain chain;
    struct iovec iov[VQ_MAX_SEGS];
};

/* The thread pool (when io_uring is refused): slots queued for the workers, and slots
 * they finished, for the I/O thread to push; all under @mu. */
struct blk_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;        /* a slot was queued, or @stop */
    pthread_cond_t idle;        /* nothing queued or running any more */
    unsigned queue[BLK_QD], qhead, qlen;
    unsigned done[BLK_QD], ndone;
    unsigned running;
    bool stop;
    pthread_t th[BLK_POOL_THREADS];
    unsigned nthreads;
};

struct blk {
    int fd;
    bool uring;                 /* requests go through @ring */
    struct io_uring ring;
    struct blk_pool *pool;      /* or through the pool's workers */
    int ring_efd;               /* the completion eventfd (the ring's or the pool's) */
    unsigned inflight;
    struct slot *slots;         /* BLK_QD of them, with @uring or @pool */
    bool readonly;
    uint64_t sectors;
    char serial[CONFIG_DISK_SERIAL_MAX];
    char name[24];
    struct iovec iov[VQ_MAX_SEGS];
};

/* Config space layout (5.2.4). */
struct blk_config {
    uint64_t capacity;
    uint32_t size_max, seg_max;
    uint16_t cylinders;
    uint8_t heads, sectors;
    uint32_t blk_size;
    uint8_t physical_block_exp, alignment_offset;
    uint16_t min_io_size;
    uint32_t opt_io_size;
    uint8_t writeback, unused0;
    uint16_t num_queues;
    uint32_t max_discard_sectors, max_discard_seg, discard_sector_alignment;
    uint32_t max_write_zeroes_sectors, max_write_zeroes_seg;
    uint8_t write_zeroes_may_unmap, unused1[3];
} __attribute__((packed));

/* Whether [sector, sector + bytes/512) lies in the disk (overflow-safe). */
static bool in_range(const struct blk *b, uint64_t sector, uint64_t bytes)
{
    return sector <= b->sectors && bytes / SECTOR <= b->sectors - sector &&
           bytes % SECTOR == 0;
}

/* An iovec over @len bytes of segments [first, first + n) starting @off bytes in. */
static int build_iov(struct blk *b, const struct vq_seg *seg, unsigned n, uint64_t off,
                     uint64_t len)
{
    int k = 0;
    for (unsigned i = 0; i < n && len; i++) {
        if (off >= seg[i].len) {
            off -= seg[i].len;
            continue;
        }
        uint64_t take = seg[i].len - off;
        if (take > len)
            take = len;
        b->iov[k++] = (struct iovec){ seg[i].hva + off, take };
        len -= take;
        off = 0;
    }
    return k;
}

/* Move what @iov (@niov entries, consumed as it goes) describes at @pos of @fd with
 * preadv/pwritev, resuming short transfers. Safe on any thread. */
static int rw_iov(int fd, struct iovec *iov, int niov, uint64_t pos, bool write)
{
    while (niov > 0) {
        ssize_t n = write ? pwritev(fd, iov, niov, (off_t)pos)
                          : preadv(fd, iov, niov, (off_t)pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            if (write)
                return -1;
            /* A read past the file's end (it shrank under us): zeroes. */
            for (int i = 0; i < niov; i++)
                memset(iov[i].iov_base, 0, iov[i].iov_len);
            return 0;
        }
        pos += (uint64_t)n;
        while (niov > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            niov--;
        }
        if (niov > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* rw_iov on b->iov: the I/O thread's. */
static int rw_all(struct blk *b, int niov, uint64_t pos, bool write)
{
    return rw_iov(b->fd, b->iov, niov, pos, write);
}

/* DISCARD / WRITE_ZEROES: 16-byte range descriptors after the header (5.2.6). */
static uint8_t do_ranges(struct blk *b, const struct vq_chain *c, bool zeroes)
{
    uint64_t bytes = c->rlen - 16;
    if (bytes == 0 || bytes % 16)
        return S_IOERR;
    for (uint64_t off = 16; off < c->rlen; off += 16) {
        struct { uint64_t sector; uint32_t num, flags; } r;
        if (vq_copy_from(c, off, &r, sizeof r) != sizeof r)
            return S_IOERR;
        if (r.num > MAX_RANGE_SECTORS || (r.flags & ~1u))
            return S_UNSUPP;
        if (!in_range(b, r.sector, (uint64_t)r.num * SECTOR))
            return S_IOERR;
        int mode = zeroes && !(r.flags & 1) ? FALLOC_FL_ZERO_RANGE
                                            : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
        if (r.num && fallocate(b->fd, mode, (off_t)(r.sector * SECTOR),
                               (off_t)((uint64_t)r.num * SECTOR)) < 0) {
            /* A discard the file system cannot do is allowed to do nothing (5.2.6.2);
             * write-zeroes must zero. */
            if (!zeroes)
                continue;
            return S_IOERR;
        }
    }
    return S_OK;
}

struct blk_hdr { uint32_t type, reserved; uint64_t sector; };

/* A READ, WRITE or FLUSH request as the driver gave it, checked: @type, the file range
 * (@pos, @len), the data's iovec (@niov entries of b->iov) and the used length on
 * success (@written, the status byte included). */
struct blk_io {
    uint32_t type;
    uint64_t pos, len;
    int niov;
    uint32_t written;
};

/* Whether chain @c is a READ, WRITE or FLUSH that may go to the file: every check the
 * driver's request must pass (the status byte, the header, the range within the
 * capacity, a write or flush only on a read-write disk) is here, for both paths. False
 * for anything else, which blk_request answers (IOERR for those that failed here). */
static bool blk_rw_prepare(struct blk *b, const struct vq_chain *c, struct blk_io *io)
{
    struct blk_hdr h;
    if (c->wlen == 0 || vq_copy_from(c, 0, &h, sizeof h) != sizeof h)
        return false;
    uint64_t data_in = c->wlen - 1;     /* writable bytes before the status */
    io->type = h.type;
    io->pos = h.sector * SECTOR;
    io->len = 0;
    io->niov = 0;
    io->written = 1;
    switch (h.type) {
    case T_IN:
        if (!in_range(b, h.sector, data_in) || data_in > UINT32_MAX - 1)
            return false;
        io->len = data_in;
        io->niov = build_iov(b, c->seg + c->nr, c->nw, 0, data_in);
        io->written = (uint32_t)data_in + 1;
        return true;
    case T_OUT:
        io->len = c->rlen - sizeof h;
        if (b->readonly || !in_range(b, h.sector, io->len))
            return false;
        io->niov = build_iov(b, c->seg, c->nr, sizeof h, io->len);
        return true;
    case T_FLUSH:
        return !b->readonly;            /* read-only: OK at once, nothing to sync */
    default:
        return false;
    }
}

static uint32_t blk_request(struct virtio_dev *vd, unsigned q, struct vq_chain *c)
{
    struct blk *b = vd->opaque;
    struct blk_hdr h;
    /* The status byte is the last writable byte; without it we cannot answer at all. */
    if (c->wlen == 0)
        return 0;
    uint8_t st = S_IOERR;
    uint64_t data_in = c->wlen - 1;     /* writable bytes before the status */
    uint32_t written = 1;
    struct blk_io io;
    if (blk_rw_prepare(b, c, &io)) {
        if (io.type == T_FLUSH)
            st = fdatasync(b->fd) == 0 ? S_OK : S_IOERR;
        else
            st = rw_all(b, io.niov, io.pos, io.type == T_OUT) == 0 ? S_OK : S_IOERR;
        if (st == S_OK)
            written = io.written;
        goto done;
    }
    if (vq_copy_from(c, 0, &h, sizeof h) != sizeof h)
        goto done;
    switch (h.type) {
    case T_IN:
    case T_OUT:
        break;                          /* failed blk_rw_prepare's checks: IOERR */
    case T_FLUSH:
        st = S_OK;                      /* a read-only disk: nothing to sync */
        break;
    case T_GET_ID: {
        /* 20 bytes, NUL-padded when shorter (5.2.6). */
        char id[CONFIG_DISK_SERIAL_MAX] = { 0 };
        memcpy(id, b->serial, sizeof id);
        uint64_t n = data_in < sizeof id ? data_in : sizeof id;
        vq_copy_to(vd->m, c, 0, id, n);
        written = (uint32_t)n + 1;
        st = S_OK;
        break;
    }
    case T_DISCARD:
    case T_WRITE_ZEROES:
        st = b->readonly ? S_IOERR : do_ranges(b, c, h.type == T_WRITE_ZEROES);
        break;
    default:
        st = S_UNSUPP;
        break;
    }
done:
    vq_copy_to(vd->m, c, c->wlen - 1, &st, 1);
    return written;
}

/* ---- the io_uring path ----
 * Only READ, WRITE and FLUSH that pass blk_rw_prepare go onto the ring; GET_ID, DISCARD
 * and WRITE_ZEROES (fallocate, which io_uring has only since 5.6 and which is rare), and
 * every request that fails the checks, are answered at once by blk_request on the I/O
 * thread, as on the synchronous path. Completions are pushed in the order they come,
 * each with its own length and status; the transport raises the interrupts after the
 * hook, as for the synchronous path. */

#define NOP_TAG UINT64_MAX      /* user_data of an SQE turned into a NOP: no slot */

/* Finish request @s with status @st; it leaves the ring. */
static void slot_done(struct virtio_dev *vd, struct blk *b, struct slot *s, uint8_t st)
{
    /* Not running any more (bus mastering off, the queue broke): the guest's memory is
     * not ours to write, and the push would be dropped anyway. */
    if (virtio_pci_running(vd, 0)) {
        vq_copy_to(vd->m, &s->chain, s->chain.wlen - 1, &st, 1);
        virtio_pci_push(vd, 0, &s->chain, st == S_OK ? s->written : 1);
    }
    s->busy = false;
    b->inflight--;
}

/* Request @s synchronously (its SQE could not be submitted, or came back EINTR/EAGAIN):
 * its status. */
static uint8_t slot_sync(struct blk *b, struct slot *s)
{
    if (s->type == T_FLUSH)
        return fdatasync(b->fd) == 0 ? S_OK : S_IOERR;
    /* on a copy: a short transfer after an EINTR CQE may still need s->iov */
    struct iovec iov[VQ_MAX_SEGS];
    memcpy(iov, s->iov, sizeof s->iov[0] * (size_t)s->niov);
    return rw_iov(b->fd, iov, s->niov, s->pos, s->type == T_OUT) == 0 ? S_OK : S_IOERR;
}

/* Queue @s's I/O on the ring (an SQE is always free: the ring has BLK_QD entries and
 * at most BLK_QD requests are queued or in flight). */
static struct io_uring_sqe *slot_prep(struct blk *b, struct slot *s, unsigned idx)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
    if (!sqe)
        return NULL;
    if (s->type == T_IN)
        io_uring_prep_readv(sqe, b->fd, s->iov, (unsigned)s->niov, s->pos);
    else if (s->type == T_OUT)
        io_uring_prep_writev(sqe, b->fd, s->iov, (unsigned)s->niov, s->pos);
    else
        io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(sqe, idx);
    return sqe;
}

/* Submit what was queued (@sqe[i] for slot @idx[i], @n of them). Transient refusals
 * (EINTR, EAGAIN, EBUSY) are retried a while; what the kernel still has not taken then
 * becomes a NOP with no slot and runs synchronously, so no request is ever stranded. */
static void uring_submit(struct virtio_dev *vd, struct blk *b, struct io_uring_sqe **sqe,
                         const unsigned *idx, unsigned n)
{
    for (int tries = 0; io_uring_sq_ready(&b->ring) && tries < 100; tries++) {
        int r = io_uring_submit(&b->ring);
        if (r > 0)
            tries = 0;
        else if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            break;
        else if (r <= 0)
            nanosleep(&(struct timespec){ .tv_nsec = 100000 }, NULL);
    }
    unsigned left = io_uring_sq_ready(&b->ring);
    if (left > n)
        left = n;                       /* the rest are NOPs of an earlier failure */
    for (unsigned i = n - left; i < n; i++) {
        io_uring_prep_nop(sqe[i]);
        io_uring_sqe_set_data64(sqe[i], NOP_TAG);
        struct slot *s = &b->slots[idx[i]];
        slot_done(vd, b, s, slot_sync(b, s));
    }
}

static void pool_queue(struct blk *b, unsigned idx);
static void pool_kick(struct blk *b);

/* Take requests while a slot is free: reads, writes and flushes onto the ring (or to the
 * pool's workers), the rest answered at once. Then submit. */
static void blk_fill(struct virtio_dev *vd, struct blk *b)
{
    struct io_uring_sqe *sqe[BLK_QD];
    unsigned idxs[BLK_QD], queued = 0;
    for (;;) {
        unsigned idx = 0;
        while (idx < BLK_QD && b->slots[idx].busy)
            idx++;
        if (idx == BLK_QD)
            break;              /* full: poll_ready comes back when one completes */
        struct slot *s = &b->slots[idx];
        int r = virtio_pci_pop(vd, 0, &s->chain);
        if (r == 0 && virtio_pci_rearm(vd, 0))
            continue;
        if (r <= 0)
            break;
        struct blk_io io;
        if (!blk_rw_prepare(b, &s->chain, &io)) {
            /* errors, GET_ID, DISCARD, ...: at once */
            uint32_t w = blk_request(vd, 0, &s->chain);
            virtio_pci_push(vd, 0, &s->chain, w);
            continue;
        }
        s->type = (uint8_t)io.type;
        s->pos = io.pos;
        s->len = io.len;
        s->niov = io.niov;
        s->written = io.written;
        memcpy(s->iov, b->iov, sizeof s->iov[0] * (size_t)s->niov);
        s->busy = true;
        b->inflight++;
        if (b->pool) {
            pool_queue(b, idx);
            queued++;
            continue;
        }
        if (!(sqe[queued] = slot_prep(b, s, idx))) {
            slot_done(vd, b, s, slot_sync(b, s));   /* cannot happen; be safe */
            continue;
        }
        idxs[queued++] = idx;
    }
    if (queued && b->pool)
        pool_kick(b);
    else if (queued)
        uring_submit(vd, b, sqe, idxs, queued);
}

/* Complete request @s whose CQE says @res. */
static void slot_complete(struct virtio_dev *vd, struct blk *b, struct slot *s, int res)
{
    uint8_t st = S_OK;
    if (res == -EINTR || res == -EAGAIN) {
        st = slot_sync(b, s);           /* the whole request again, synchronously */
    } else if (res < 0) {
        st = S_IOERR;
    } else if (s->type != T_FLUSH && (uint64_t)res < s->len) {
        /* A short transfer: the rest synchronously (rw_all resumes, and zero-fills a
         * read past a shrunken file's end). */
        memcpy(b->iov, s->iov, sizeof s->iov[0] * (size_t)s->niov);
        uint64_t skip = (uint64_t)res;
        int k = 0;
        while (k < s->niov && skip >= b->iov[k].iov_len)
            skip -= b->iov[k++].iov_len;
        if (k < s->niov) {
            b->iov[k].iov_base = (uint8_t *)b->iov[k].iov_base + skip;
            b->iov[k].iov_len -= skip;
        }
        memmove(b->iov, b->iov + k, sizeof b->iov[0] * (size_t)(s->niov - k));
        if (rw_all(b, s->niov - k, s->pos + (uint64_t)res, s->type == T_OUT) < 0)
            st = S_IOERR;
    }
    slot_done(vd, b, s, st);
}

/* The slot a CQE belongs to, or NULL (a NOP, or a request a reset forgot). */
static struct slot *cqe_slot(struct blk *b, const struct io_uring_cqe *cqe)
{
    uint64_t idx = io_uring_cqe_get_data64(cqe);
    return idx < BLK_QD && b->slots[idx].busy ? &b->slots[idx] : NULL;
}

/* Complete what the CQ ring holds. */
static void uring_reap(struct virtio_dev *vd, struct blk *b)
{
    struct io_uring_cqe *cqe;
    while (b->inflight && io_uring_peek_cqe(&b->ring, &cqe) == 0) {
        struct slot *s = cqe_slot(b, cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&b->ring, cqe);
        if (s)
            slot_complete(vd, b, s, res);
    }
}

/* Wait for every request in flight and forget it (a reset, the device's end): the
 * buffers are guest RAM, which outlives the device, and the driver has given up on
 * them. */
static void uring_drain(struct blk *b)
{
    while (b->inflight) {
        struct io_uring_cqe *cqe;
        int r = io_uring_wait_cqe(&b->ring, &cqe);
        if (r == -EINTR || r == -EAGAIN)
            continue;
        if (r < 0) {
            /* Cannot happen on a live ring; do not spin. */
            for (unsigned i = 0; i < BLK_QD; i++)
                b->slots[i].busy = false;
            b->inflight = 0;
            break;
        }
        struct slot *s = cqe_slot(b, cqe);
        io_uring_cqe_seen(&b->ring, cqe);
        if (s) {
            s->busy = false;
            b->inflight--;
        }
    }
}

/* ---- the thread pool ----
 * The same slots as the ring, run by worker threads: blk_fill queues a checked request,
 * a worker does it (slot_sync, on the slot's own iovec) and moves it to the done list,
 * then signals the eventfd; poll_ready pushes the done ones on the I/O thread, as the
 * ring's completions are pushed. Workers never touch the virtqueue. */

static void pool_queue(struct blk *b, unsigned idx)
{
    struct blk_pool *p = b->pool;
    pthread_mutex_lock(&p->mu);
    p->queue[(p->qhead + p->qlen++) % BLK_QD] = idx;
    pthread_mutex_unlock(&p->mu);
}

static void pool_kick(struct blk *b)
{
    pthread_mutex_lock(&b->pool->mu);
    pthread_cond_broadcast(&b->pool->work);
    pthread_mutex_unlock(&b->pool->mu);
}

static void *pool_worker(void *arg)
{
    struct blk *b = arg;
    struct blk_pool *p = b->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->qlen && !p->stop)
            pthread_cond_wait(&p->work, &p->mu);
        if (!p->qlen)
            break;                      /* stopping, nothing left */
        unsigned idx = p->queue[p->qhead];
        p->qhead = (p->qhead + 1) % BLK_QD;
        p->qlen--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        struct slot *s = &b->slots[idx];
        s->st = slot_sync(b, s);
        pthread_mutex_lock(&p->mu);
        p->done[p->ndone++] = idx;
        p->running--;
        if (!p->qlen && !p->running)
            pthread_cond_broadcast(&p->idle);
        uint64_t one = 1;
        if (write(b->ring_efd, &one, sizeof one) < 0) {
            /* EAGAIN: the counter is full, so the I/O thread is woken anyway */
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Push what the workers finished. */
static void pool_reap(struct virtio_dev *vd, struct blk *b)
{
    struct blk_pool *p = b->pool;
    unsigned done[BLK_QD], n;
    pthread_mutex_lock(&p->mu);
    n = p->ndone;
    memcpy(done, p->done, sizeof done[0] * n);
    p->ndone = 0;
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < n; i++)
        slot_done(vd, b, &b->slots[done[i]], b->slots[done[i]].st);
}

/* Wait until the workers have finished everything queued, and forget it (a reset, the
 * device's end), like uring_drain. */
static void pool_drain(struct blk *b)
{
    struct blk_pool *p = b->pool;
    pthread_mutex_lock(&p->mu);
    while (p->qlen || p->running)
        pthread_cond_wait(&p->idle, &p->mu);
    for (unsigned i = 0; i < p->ndone; i++)
        b->slots[p->done[i]].busy = false;
    b->inflight -= p->ndone;
    p->ndone = 0;
    pthread_mutex_unlock(&p->mu);
}

static void pool_close(struct blk *b)
{
    struct blk_pool *p = b->pool;
    pool_drain(b);
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->th[i], NULL);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->mu);
    free(p);
    b->pool = NULL;
}

static void blk_notify(struct virtio_dev *vd, unsigned q)
{
    blk_fill(vd, vd->opaque);
}

static unsigned blk_poll_fds(struct virtio_dev *vd, struct pollfd *pfd, unsigned max)
{
    struct blk *b = vd->opaque;
    if (!max || !b->inflight)
        return 0;
    pfd[0] = (struct pollfd){ .fd = b->ring_efd, .events = POLLIN };
    return 1;
}

static void blk_poll_ready(struct virtio_dev *vd, const struct pollfd *pfd, unsigned n)
{
    struct blk *b = vd->opaque;
    uint64_t cnt;
    /* Drain the eventfd before looking at the CQ ring: a completion after this read
     * signals it again. */
    if (read(b->ring_efd, &cnt, sizeof cnt) < 0) {
        /* EAGAIN: already drained; the CQ ring says what completed */
    }
    if (b->pool)
        pool_reap(vd, b);
    else
        uring_reap(vd, b);
    if (virtio_pci_running(vd, 0))
        blk_fill(vd, b);                /* slots came free: take what waited */
}

/* A reset with requests in flight: wait for them, then forget them. */
static void blk_reset(struct virtio_dev *vd)
{
    struct blk *b = vd->opaque;
    if (b->pool)
        pool_drain(b);
    else
        uring_drain(b);
}

static void blk_free(struct blk *b)
{
    if (b->uring) {
        uring_drain(b);
        io_uring_queue_exit(&b->ring);
    }
    if (b->pool)
        pool_close(b);
    if (b->ring_efd >= 0)
        close(b->ring_efd);
    free(b->slots);
    if (b->fd >= 0)
        close(b->fd);   /* releases the OFD lock */
    free(b);
}

static void blk_destroy(struct virtio_dev *vd) { blk_free(vd->opaque); }

static const struct virtio_dev_ops blk_ops = {
    .type = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .class_code = 0x010000,
    .nqueues = 1,
    .queue_max = 256,
    .request = blk_request,
    .destroy = blk_destroy,
};

/* io_uring or the pool: the same hooks. */
static const struct virtio_dev_ops blk_async_ops = {
    .type = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .class_code = 0x010000,
    .nqueues = 1,
    .queue_max = 256,
    .request = blk_request,
    .notify = blk_notify,
    .poll_fds = blk_poll_fds,
    .poll_ready = blk_poll_ready,
    .reset = blk_reset,
    .destroy = blk_destroy,
};

/* The ring, or false (the synchronous path) where io_uring is not available: refused
 * by the kernel (ENOSYS, EPERM from a seccomp filter or kernel.io_uring_disabled, ENOMEM
 * from RLIMIT_MEMLOCK on old kernels) or turned off with VMCORE_BLK_URING=0. Silent:
 * the disk works the same either way. */
static bool uring_open(struct blk *b)
{
    const char *env = getenv("VMCORE_BLK_URING");
    if (env && strcmp(env, "0") == 0)
        return false;
    b->slots = calloc(BLK_QD, sizeof *b->slots);
    if (!b->slots)
        return false;
    if (io_uring_queue_init(BLK_QD, &b->ring, 0) < 0) {
        free(b->slots);
        b->slots = NULL;
        return false;
    }
    b->ring_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->ring_efd < 0 || io_uring_register_eventfd(&b->ring, b->ring_efd) < 0) {
        io_uring_queue_exit(&b->ring);
        if (b->ring_efd >= 0)
            close(b->ring_efd);
        b->ring_efd = -1;
        free(b->slots);
        b->slots = NULL;
        return false;
    }
    b->uring = true;
    return true;
}

/* The pool, or false (the synchronous path): VMCORE_BLK_THREADS=0, or no memory or
 * thread for it. Workers start with every signal blocked. */
static bool pool_open(struct blk *b)
{
    const char *env = getenv("VMCORE_BLK_THREADS");
    if (env && strcmp(env, "0") == 0)
        return false;
    struct blk_pool *p = calloc(1, sizeof *p);
    b->slots = calloc(BLK_QD, sizeof *b->slots);
    b->ring_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!p || !b->slots || b->ring_efd < 0)
        goto fail;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    b->pool = p;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (p->nthreads < BLK_POOL_THREADS &&
           pthread_create(&p->th[p->nthreads], NULL, pool_worker, b) == 0)
        p->nthreads++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (p->nthreads)
        return true;
    pool_close(b);
    p = NULL;
fail:
    free(p);
    free(b->slots);
    b->slots = NULL;
    if (b->ring_efd >= 0)
        close(b->ring_efd);
    b->ring_efd = -1;
    return false;
}

bool virtio_blk_uses_uring(const struct virtio_dev *vd)
{
    return vd && vd->ops == &blk_async_ops && ((struct blk *)vd->opaque)->uring;
}

unsigned virtio_blk_pool_threads(const struct virtio_dev *vd)
{
    if (!vd || vd->ops != &blk_async_ops || !((struct blk *)vd->opaque)->pool)
        return 0;
    return ((struct blk *)vd->opaque)->pool->nthreads;
}

int virtio_blk_create(struct machine *m, const struct config_disk *disk, unsigned index,
                      struct vmcore_err *err)
{
    char path[32];
    snprintf(path, sizeof path, "disks[%u].path", index);
    struct blk *b = calloc(1, sizeof *b);
    if (!b)
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    b->readonly = disk->readonly;
    b->ring_efd = -1;
    b->fd = open(disk->path, (disk->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (b->fd < 0) {
        int e = errno;
        blk_free(b);
        return err_config(err, e == ENOENT ? VMCORE_ENOENT : VMCORE_EIO, path,
                          "cannot open %s: %s", disk->path, strerror(e));
    }
    struct stat st;
    if (fstat(b->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        blk_free(b);
        return err_config(err, VMCORE_ECONFIG, path, "not a regular file: %s", disk->path);
    }
    struct flock fl = { .l_type = disk->readonly ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl(b->fd, F_OFD_SETLK, &fl) < 0) {
        int e = errno;
        blk_free(b);
        if (e == EAGAIN || e == EACCES)
            return err_config(err, VMCORE_EBUSY, path,
                              "%s is in use by another domain (locked)", disk->path);
        return err_config(err, VMCORE_EIO, path, "cannot lock %s: %s", disk->path,
                          strerror(e));
    }
    b->sectors = (uint64_t)st.st_size / SECTOR;
    if (disk->serial)
        memcpy(b->serial, disk->serial, strnlen(disk->serial, sizeof b->serial));
    snprintf(b->name, sizeof b->name, "virtio-blk%u", index);

    struct blk_config bc = {
        .capacity = b->sectors,
        .seg_max = SEG_MAX,
        .blk_size = 512,
        .max_discard_sectors = MAX_RANGE_SECTORS,
        .max_discard_seg = 1,
        .discard_sector_alignment = 1,
        .max_write_zeroes_sectors = MAX_RANGE_SECTORS,
        .max_write_zeroes_seg = 1,
    };
    uint64_t f = 1ull << BLK_F_SEG_MAX | 1ull << BLK_F_BLK_SIZE | 1ull << BLK_F_FLUSH;
    if (disk->readonly)
        f |= 1ull << BLK_F_RO;
    else
        f |= 1ull << BLK_F_DISCARD | 1ull << BLK_F_WRITE_ZEROES;
    if (!uring_open(b))
        pool_open(b);
    int rc = virtio_pci_create(m, b->uring || b->pool ? &blk_async_ops : &blk_ops, b, f, &bc,
                               sizeof bc, b->name, NULL);
    if (rc) {
        blk_free(b);
        return err_config(err, rc, path, "cannot create the virtio-blk device for %s",
                          disk->path);
    }
    return 0;
}
