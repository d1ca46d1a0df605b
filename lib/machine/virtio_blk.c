/* virtio-blk (virtio 1.2 section 5.2) over a raw image file.
 *
 * Requests run on the device's I/O thread with preadv/pwritev straight into the guest's
 * buffers (no bounce copy). io_uring is not used yet (doc/architecture.md). The image is
 * locked with an OFD lock for the device's life: a write lock for a read-write disk, a
 * read lock for a read-only one, so two domains cannot both open an image writable. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

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

struct blk {
    int fd;
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

/* Move @len bytes at @pos with preadv/pwritev, resuming short transfers. */
static int rw_all(struct blk *b, int niov, uint64_t pos, bool write)
{
    struct iovec *iov = b->iov;
    while (niov > 0) {
        ssize_t n = write ? pwritev(b->fd, iov, niov, (off_t)pos)
                          : preadv(b->fd, iov, niov, (off_t)pos);
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

static uint32_t blk_request(struct virtio_dev *vd, unsigned q, struct vq_chain *c)
{
    struct blk *b = vd->opaque;
    struct { uint32_t type, reserved; uint64_t sector; } h;
    /* The status byte is the last writable byte; without it we cannot answer at all. */
    if (c->wlen == 0)
        return 0;
    uint8_t st = S_IOERR;
    uint64_t data_in = c->wlen - 1;     /* writable bytes before the status */
    uint32_t written = 1;
    if (vq_copy_from(c, 0, &h, sizeof h) != sizeof h)
        goto done;
    switch (h.type) {
    case T_IN: {
        if (!in_range(b, h.sector, data_in) || data_in > UINT32_MAX - 1)
            break;
        int n = build_iov(b, c->seg + c->nr, c->nw, 0, data_in);
        if (rw_all(b, n, h.sector * SECTOR, false) == 0) {
            st = S_OK;
            written = (uint32_t)data_in + 1;
        }
        break;
    }
    case T_OUT: {
        uint64_t len = c->rlen - sizeof h;
        if (b->readonly || !in_range(b, h.sector, len))
            break;
        int n = build_iov(b, c->seg, c->nr, sizeof h, len);
        st = rw_all(b, n, h.sector * SECTOR, true) == 0 ? S_OK : S_IOERR;
        break;
    }
    case T_FLUSH:
        st = b->readonly || fdatasync(b->fd) == 0 ? S_OK : S_IOERR;
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

static void blk_free(struct blk *b)
{
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

int virtio_blk_create(struct machine *m, const struct config_disk *disk, unsigned index,
                      struct vmcore_err *err)
{
    char path[32];
    snprintf(path, sizeof path, "disks[%u].path", index);
    struct blk *b = calloc(1, sizeof *b);
    if (!b)
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    b->readonly = disk->readonly;
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
    int rc = virtio_pci_create(m, &blk_ops, b, f, &bc, sizeof bc, b->name, NULL);
    if (rc) {
        blk_free(b);
        return err_config(err, rc, path, "cannot create the virtio-blk device for %s",
                          disk->path);
    }
    return 0;
}
