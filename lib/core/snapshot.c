/* The snapshot file container: see snapshot.h and doc/snapshot.md. */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const char *snap_section_name(uint32_t type)
{
    switch (type) {
    case SNAP_SEC_DOMAIN: return "domain";
    case SNAP_SEC_MACHINE: return "machine";
    case SNAP_SEC_VCPU: return "vcpu";
    case SNAP_SEC_DEVICE: return "device";
    case SNAP_SEC_RAM: return "ram";
    case SNAP_SEC_END: return "end";
    default: return "unknown";
    }
}

/* ---- CRC-32 (IEEE 802.3, reflected polynomial 0xedb88320) ----
 * Eight bytes per step: table k holds the CRC of a byte followed by k zero bytes, so the
 * eight table lookups of one 64-bit word combine by XOR. Built on first use. */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int t = 1; t < 8; t++)
            crc_table[t][n] = crc_table[0][crc_table[t - 1][n] & 0xff] ^
                              (crc_table[t - 1][n] >> 8);
}

uint32_t snap_crc32(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                      (uint32_t)p[7] << 24;
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
              crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
              crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- little-endian helpers ---- */

static void le_put(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned k = 0; k < n; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static uint64_t le_get(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned k = 0; k < n; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return v;
}

/* ---- payload buffers ---- */

void snap_buf_put(struct snap_buf *b, const void *data, size_t len)
{
    if (b->oom || len == 0)
        return;
    if (len > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < len) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

static void buf_le(struct snap_buf *b, uint64_t v, unsigned n)
{
    uint8_t t[8];
    le_put(t, v, n);
    snap_buf_put(b, t, n);
}

void snap_buf_u8(struct snap_buf *b, uint8_t v) { snap_buf_put(b, &v, 1); }
void snap_buf_u16(struct snap_buf *b, uint16_t v) { buf_le(b, v, 2); }
void snap_buf_u32(struct snap_buf *b, uint32_t v) { buf_le(b, v, 4); }
void snap_buf_u64(struct snap_buf *b, uint64_t v) { buf_le(b, v, 8); }

void snap_buf_str(struct snap_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    snap_buf_u32(b, (uint32_t)n);
    snap_buf_put(b, s, n);
}

void snap_buf_free(struct snap_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- writing ---- */

static int write_all(struct snap_writer *w, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        ssize_t n = write(w->fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return err_sys(w->err, errno == ENOSPC ? VMCORE_ELIMIT : VMCORE_EIO, errno,
                           "snapshot %s: write at offset %llu", w->path,
                           (unsigned long long)w->off);
        }
        p += n;
        len -= (size_t)n;
        w->off += (uint64_t)n;
    }
    return 0;
}

int snap_writer_open(struct snap_writer *w, const char *path, struct vmcore_err *err)
{
    memset(w, 0, sizeof *w);
    w->fd = -1;
    w->err = err;
    w->path = strdup(path);
    if (!w->path || asprintf(&w->tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
        free(w->path);
        w->path = NULL;
        w->tmp = NULL;
        return err_set(err, VMCORE_ENOMEM, "snapshot: out of memory");
    }
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        int e = errno;
        int rc = err_sys(err, e == ENOENT ? VMCORE_ENOENT : e == EACCES ? VMCORE_EPERM
                                                                         : VMCORE_EIO,
                         e, "snapshot %s: cannot create %s", path, w->tmp);
        free(w->path);
        free(w->tmp);
        w->path = w->tmp = NULL;
        return rc;
    }
    uint8_t pre[SNAP_PREAMBLE_SIZE] = { 0 };
    memcpy(pre, SNAP_MAGIC, 8);
    le_put(pre + 8, SNAP_VERSION, 4);
    int rc = write_all(w, pre, sizeof pre);
    if (rc)
        snap_writer_abort(w);
    return rc;
}

int snap_write_section2(struct snap_writer *w, uint32_t type, uint32_t instance,
                        const void *head, size_t hlen, const void *body, size_t blen)
{
    uint8_t h[SNAP_SECTION_HDR_SIZE] = { 0 };
    uint32_t crc = snap_crc32(0, head, hlen);
    crc = snap_crc32(crc, body, blen);
    le_put(h, type, 4);
    le_put(h + 4, instance, 4);
    le_put(h + 8, (uint64_t)hlen + blen, 8);
    le_put(h + 16, crc, 4);
    int rc;
    if ((rc = write_all(w, h, sizeof h)) || (rc = write_all(w, head, hlen)) ||
        (rc = write_all(w, body, blen)))
        return rc;
    w->nsections++;
    return 0;
}

int snap_write_section(struct snap_writer *w, uint32_t type, uint32_t instance,
                       const void *payload, size_t len)
{
    return snap_write_section2(w, type, instance, payload, len, NULL, 0);
}

int snap_writer_commit(struct snap_writer *w)
{
    uint8_t end[12];
    le_put(end, w->nsections, 4);
    le_put(end + 4, w->off, 8);  /* where END's header starts: the bytes before it */
    int rc = snap_write_section(w, SNAP_SEC_END, 0, end, sizeof end);
    if (!rc && fsync(w->fd) < 0)
        rc = err_sys(w->err, VMCORE_EIO, errno, "snapshot %s: fsync", w->path);
    if (!rc && close(w->fd) < 0) {
        w->fd = -1;
        rc = err_sys(w->err, VMCORE_EIO, errno, "snapshot %s: close", w->path);
    }
    w->fd = -1;
    if (!rc && rename(w->tmp, w->path) < 0)
        rc = err_sys(w->err, VMCORE_EIO, errno, "snapshot %s: rename from %s", w->path,
                     w->tmp);
    if (!rc) {
        free(w->tmp);
        w->tmp = NULL;
    }
    snap_writer_abort(w);
    return rc;
}

void snap_writer_abort(struct snap_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    if (w->tmp)
        unlink(w->tmp);
    free(w->tmp);
    free(w->path);
    w->tmp = w->path = NULL;
}

/* ---- reading ---- */

static int parse(struct snap_file *f, struct vmcore_err *err)
{
    const char *name = f->path ? f->path : "(memory)";
    if (f->size < SNAP_PREAMBLE_SIZE || memcmp(f->map, SNAP_MAGIC, 8) != 0)
        return err_set(err, VMCORE_EIMAGE, "snapshot %s: offset 0: not a vmcore snapshot "
                       "(bad magic)", name);
    uint32_t version = (uint32_t)le_get(f->map + 8, 4);
    if (version != SNAP_VERSION)
        return err_set(err, VMCORE_EIMAGE, "snapshot %s: offset 8: format version %u, this "
                       "library reads version %u", name, version, SNAP_VERSION);
    if (le_get(f->map + 12, 4) != 0)
        return err_set(err, VMCORE_EIMAGE, "snapshot %s: offset 12: reserved field not 0",
                       name);
    size_t cap = 0;
    uint64_t off = SNAP_PREAMBLE_SIZE;
    for (;;) {
        size_t idx = f->nsec;
        if (f->size - off < SNAP_SECTION_HDR_SIZE)
            return err_set(err, VMCORE_EIMAGE, "snapshot %s: offset %llu: truncated: section "
                           "#%zu's header needs %u bytes, %llu left (no end section)", name,
                           (unsigned long long)off, idx, SNAP_SECTION_HDR_SIZE,
                           (unsigned long long)(f->size - off));
        const uint8_t *h = f->map + off;
        struct snap_section s = { (uint32_t)le_get(h, 4), (uint32_t)le_get(h + 4, 4),
                                  off + SNAP_SECTION_HDR_SIZE, le_get(h + 8, 8), NULL };
        uint32_t crc = (uint32_t)le_get(h + 16, 4);
        const char *sn = snap_section_name(s.type);
        if (le_get(h + 20, 4) != 0)
            return err_set(err, VMCORE_EIMAGE, "snapshot %s: offset %llu: section #%zu (%s): "
                           "reserved field not 0", name, (unsigned long long)(off + 20), idx,
                           sn);
        if (s.len > f->size - s.offset)
            return err_set(err, VMCORE_EIMAGE, "snapshot %s: offset %llu: truncated: section "
                           "#%zu (%s %u) is %llu bytes, %llu left in the file", name,
                           (unsigned long long)off, idx, sn, s.instance,
                           (unsigned long long)s.len,
                           (unsigned long long)(f->size - s.offset));
        s.data = f->map + s.offset;
        uint32_t got = snap_crc32(0, s.data, (size_t)s.len);
        if (got != crc)
            return err_set(err, VMCORE_EIMAGE, "snapshot %s: offset %llu: section #%zu (%s %u, "
                           "%llu bytes): CRC mismatch (stored 0x%08x, computed 0x%08x): the "
                           "file is corrupt", name, (unsigned long long)off, idx, sn,
                           s.instance, (unsigned long long)s.len, crc, got);
        if (!strcmp(sn, "unknown"))
            return err_set(err, VMCORE_EIMAGE, "snapshot %s: offset %llu: section #%zu has "
                           "unknown type %u", name, (unsigned long long)off, idx, s.type);
        if (s.type == SNAP_SEC_END) {
            if (s.len != 12 || le_get(s.data, 4) != f->nsec || le_get(s.data + 4, 8) != off)
                return err_set(err, VMCORE_EIMAGE, "snapshot %s: offset %llu: the end section "
                               "does not match the %zu sections before it", name,
                               (unsigned long long)off, f->nsec);
            if (s.offset + s.len != f->size)
                return err_set(err, VMCORE_EIMAGE, "snapshot %s: offset %llu: %llu bytes "
                               "after the end section", name,
                               (unsigned long long)(s.offset + s.len),
                               (unsigned long long)(f->size - s.offset - s.len));
            break;
        }
        if (f->nsec == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct snap_section *n = realloc(f->sec, ncap * sizeof *n);
            if (!n)
                return err_set(err, VMCORE_ENOMEM, "snapshot %s: out of memory", name);
            f->sec = n;
            cap = ncap;
        }
        f->sec[f->nsec++] = s;
        off = s.offset + s.len;
    }
    if (f->nsec == 0 || f->sec[0].type != SNAP_SEC_DOMAIN)
        return err_set(err, VMCORE_EIMAGE, "snapshot %s: offset %u: the first section is not "
                       "the domain section", name, SNAP_PREAMBLE_SIZE);
    return 0;
}

int snap_open_mem(struct snap_file *f, const void *data, size_t size, struct vmcore_err *err)
{
    memset(f, 0, sizeof *f);
    f->map = data;
    f->size = size;
    int rc = parse(f, err);
    if (rc) {
        free(f->sec);
        memset(f, 0, sizeof *f);
    }
    return rc;
}

int snap_open(struct snap_file *f, const char *path, struct vmcore_err *err)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(err, errno == ENOENT ? VMCORE_ENOENT : VMCORE_EIO, errno,
                       "snapshot %s", path);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return err_sys(err, VMCORE_EIO, e, "snapshot %s: fstat", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, VMCORE_EIMAGE, "snapshot %s: not a regular file", path);
    }
    if (st.st_size < SNAP_PREAMBLE_SIZE) {
        close(fd);
        return err_set(err, VMCORE_EIMAGE, "snapshot %s: offset 0: truncated: %lld bytes, "
                       "not even the %u-byte preamble", path, (long long)st.st_size,
                       SNAP_PREAMBLE_SIZE);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return err_sys(err, VMCORE_EIO, e, "snapshot %s: mmap", path);
    f->path = strdup(path);
    f->map = map;
    f->size = (size_t)st.st_size;
    int rc = f->path ? parse(f, err) : err_set(err, VMCORE_ENOMEM, "out of memory");
    if (rc)
        snap_close(f);
    return rc;
}

void snap_close(struct snap_file *f)
{
    if (f->path && f->map)
        munmap((void *)f->map, f->size);
    free(f->path);
    free(f->sec);
    memset(f, 0, sizeof *f);
}

const struct snap_section *snap_find(const struct snap_file *f, uint32_t type,
                                     uint32_t instance)
{
    for (size_t k = 0; k < f->nsec; k++)
        if (f->sec[k].type == type && f->sec[k].instance == instance)
            return &f->sec[k];
    return NULL;
}

/* ---- the payload cursor ---- */

void snap_rd_init(struct snap_rd *r, const struct snap_section *s, const char *what,
                  struct vmcore_err *err)
{
    memset(r, 0, sizeof *r);
    r->p = s->data;
    r->len = (size_t)s->len;
    r->file_off = s->offset;
    snprintf(r->what, sizeof r->what, "%s", what);
    r->err = err;
}

int snap_rd_fail(struct snap_rd *r, const char *fmt, ...)
{
    if (r->failed)
        return VMCORE_EIMAGE;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->failed = true;
    return err_set(r->err, VMCORE_EIMAGE, "snapshot: section %s, file offset %llu: %s",
                   r->what, (unsigned long long)(r->file_off + r->off), msg);
}

bool snap_rd_get(struct snap_rd *r, void *out, size_t len)
{
    if (r->failed || len > r->len - r->off) {
        if (!r->failed)
            snap_rd_fail(r, "truncated: %zu more bytes needed, %zu left in the section", len,
                         r->len - r->off);
        memset(out, 0, len);
        return false;
    }
    memcpy(out, r->p + r->off, len);
    r->off += len;
    return true;
}

static uint64_t rd_le(struct snap_rd *r, unsigned n)
{
    uint8_t t[8];
    if (!snap_rd_get(r, t, n))
        return 0;
    return le_get(t, n);
}

uint8_t snap_rd_u8(struct snap_rd *r) { return (uint8_t)rd_le(r, 1); }
uint16_t snap_rd_u16(struct snap_rd *r) { return (uint16_t)rd_le(r, 2); }
uint32_t snap_rd_u32(struct snap_rd *r) { return (uint32_t)rd_le(r, 4); }
uint64_t snap_rd_u64(struct snap_rd *r) { return rd_le(r, 8); }

char *snap_rd_str(struct snap_rd *r, size_t max)
{
    uint32_t n = snap_rd_u32(r);
    if (r->failed)
        return NULL;
    if (n > max || n > r->len - r->off) {
        snap_rd_fail(r, "a string of %u bytes (at most %zu, %zu left)", n, max,
                     r->len - r->off);
        return NULL;
    }
    if (memchr(r->p + r->off, 0, n)) {
        snap_rd_fail(r, "a string with a NUL byte");
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->failed = true;
        err_set(r->err, VMCORE_ENOMEM, "snapshot: out of memory");
        return NULL;
    }
    memcpy(s, r->p + r->off, n);
    s[n] = 0;
    r->off += n;
    return s;
}

int snap_rd_end(struct snap_rd *r)
{
    if (r->failed)
        return r->err->code ? r->err->code : VMCORE_EIMAGE;
    if (r->off != r->len)
        return snap_rd_fail(r, "%zu unexpected bytes at the end of the section",
                            r->len - r->off);
    return 0;
}
