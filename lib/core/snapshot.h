/* The snapshot file container (doc/snapshot.md): a preamble (magic, format version) and a
 * sequence of sections, each with a type, an instance number, a length and the CRC-32 of
 * its payload, ending with an END section that counts them. The core writes the DOMAIN
 * section and END and reads the file back; backends and devices write and read the other
 * sections' payloads with the buffer helpers below.
 *
 * Reading treats the file as hostile: snap_open() maps it read-only and checks every
 * section's bounds and CRC before anything uses it, and the cursor (struct snap_rd) fails,
 * naming the section and the file offset, instead of reading past a payload. */
#ifndef VMCORE_CORE_SNAPSHOT_H
#define VMCORE_CORE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SNAP_MAGIC "VMCSNAP\n"      /* 8 bytes */
#define SNAP_VERSION 1
#define SNAP_PREAMBLE_SIZE 16       /* magic, u32 version, u32 reserved (0) */
#define SNAP_SECTION_HDR_SIZE 24    /* u32 type, u32 instance, u64 length, u32 crc, u32 0 */

enum snap_section_type {
    SNAP_SEC_DOMAIN = 1,    /* backend, config JSON, base folder (the core's) */
    SNAP_SEC_MACHINE = 2,   /* vCPU count, RAM size, save time, CPUID */
    SNAP_SEC_VCPU = 3,      /* one per vCPU, instance = index */
    SNAP_SEC_DEVICE = 4,    /* one per device, instance = position in the machine */
    SNAP_SEC_RAM = 5,       /* a run of non-zero pages */
    SNAP_SEC_END = 0xffff,
};

/* A section payload's name for messages ("vcpu 0", "device", "ram"). */
const char *snap_section_name(uint32_t type);

uint32_t snap_crc32(uint32_t crc, const void *data, size_t len);

/* ---- building a payload in memory ---- */
struct snap_buf {
    uint8_t *p;
    size_t len, cap;
    bool oom;               /* an append failed: the buffer is unusable */
};
void snap_buf_put(struct snap_buf *b, const void *data, size_t len);
void snap_buf_u8(struct snap_buf *b, uint8_t v);
void snap_buf_u16(struct snap_buf *b, uint16_t v);
void snap_buf_u32(struct snap_buf *b, uint32_t v);
void snap_buf_u64(struct snap_buf *b, uint64_t v);
/* u32 length, then the bytes (no NUL). NULL is written as length 0. */
void snap_buf_str(struct snap_buf *b, const char *s);
void snap_buf_free(struct snap_buf *b);

/* ---- writing a file ---- */
struct snap_writer {
    int fd;
    char *path, *tmp;       /* written to tmp, renamed to path by snap_writer_commit */
    uint64_t off;
    uint32_t nsections;
    struct vmcore_err *err;
};
/* Create @path's temporary sibling and write the preamble. 0 or an error in @err. */
int snap_writer_open(struct snap_writer *w, const char *path, struct vmcore_err *err);
/* One section from contiguous memory. */
int snap_write_section(struct snap_writer *w, uint32_t type, uint32_t instance,
                       const void *payload, size_t len);
/* One section whose payload is @head (@hlen bytes) followed by @body (@blen bytes). */
int snap_write_section2(struct snap_writer *w, uint32_t type, uint32_t instance,
                        const void *head, size_t hlen, const void *body, size_t blen);
/* Write END, fsync, rename over @path. Closes the writer either way. */
int snap_writer_commit(struct snap_writer *w);
/* Give up: close and remove the temporary file. Safe after commit and on a zeroed writer. */
void snap_writer_abort(struct snap_writer *w);

/* ---- reading a file ---- */
struct snap_section {
    uint32_t type, instance;
    uint64_t offset;        /* of the payload in the file */
    uint64_t len;
    const uint8_t *data;
};

struct snap_file {
    char *path;
    const uint8_t *map;
    size_t size;
    struct snap_section *sec;
    size_t nsec;
};

/* Map @path and check the preamble, every section header and CRC, and the END section.
 * Errors (VMCORE_ENOENT, VMCORE_EIO, VMCORE_EIMAGE for a bad file) name the offset and
 * section; nothing is left open. */
int snap_open(struct snap_file *f, const char *path, struct vmcore_err *err);
/* The same on a buffer the caller keeps alive (the fuzzer). */
int snap_open_mem(struct snap_file *f, const void *data, size_t size, struct vmcore_err *err);
void snap_close(struct snap_file *f);
/* The first section of @type with @instance, or NULL. */
const struct snap_section *snap_find(const struct snap_file *f, uint32_t type,
                                     uint32_t instance);

/* A cursor on one section's payload. The first failure records a message naming @what,
 * the section's file offset and the offset in the payload; later reads return zeros. */
struct snap_rd {
    const uint8_t *p;
    size_t len, off;
    uint64_t file_off;      /* of the payload */
    char what[64];
    struct vmcore_err *err;
    bool failed;
};
void snap_rd_init(struct snap_rd *r, const struct snap_section *s, const char *what,
                  struct vmcore_err *err);
bool snap_rd_get(struct snap_rd *r, void *out, size_t len);
uint8_t snap_rd_u8(struct snap_rd *r);
uint16_t snap_rd_u16(struct snap_rd *r);
uint32_t snap_rd_u32(struct snap_rd *r);
uint64_t snap_rd_u64(struct snap_rd *r);
/* A string written by snap_buf_str of at most @max bytes, NUL-terminated, malloc'ed (the
 * caller frees it; NULL after a failure). Embedded NULs are an error. */
char *snap_rd_str(struct snap_rd *r, size_t max);
/* Record a failure in @r's terms ("<what> at offset N: <message>"); returns
 * VMCORE_EIMAGE. */
int snap_rd_fail(struct snap_rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* VMCORE_EIMAGE if bytes are left over or a read failed, else 0. */
int snap_rd_end(struct snap_rd *r);

#endif
