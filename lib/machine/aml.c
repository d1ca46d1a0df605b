/* AML encodings from the ACPI 6.x specification, chapter 20 (AML grammar) and 6.4
 * (resource descriptors). */
#include "aml.h"

#include <stdlib.h>
#include <string.h>

#include "vmcore/error.h"

enum {
    AML_ZERO = 0x00, AML_ONE = 0x01, AML_ONES = 0xff,
    AML_NAME_OP = 0x08, AML_BYTE_PREFIX = 0x0a, AML_WORD_PREFIX = 0x0b,
    AML_DWORD_PREFIX = 0x0c, AML_STRING_PREFIX = 0x0d, AML_QWORD_PREFIX = 0x0e,
    AML_SCOPE_OP = 0x10, AML_BUFFER_OP = 0x11, AML_PACKAGE_OP = 0x12, AML_METHOD_OP = 0x14,
    AML_DUAL_NAME_PREFIX = 0x2e, AML_MULTI_NAME_PREFIX = 0x2f, AML_EXT_OP_PREFIX = 0x5b,
    AML_DEVICE_OP = 0x82, /* after the extended-op prefix */
    AML_ROOT_CHAR = 0x5c, AML_PARENT_PREFIX_CHAR = 0x5e,
};

void aml_init(struct aml *a)
{
    memset(a, 0, sizeof *a);
}

void aml_free(struct aml *a)
{
    free(a->buf);
    aml_init(a);
}

int aml_error(const struct aml *a)
{
    return a->error;
}

static void fail(struct aml *a, int rc)
{
    if (!a->error)
        a->error = rc;
}

static bool reserve(struct aml *a, size_t n)
{
    if (a->error)
        return false;
    if (n > SIZE_MAX / 2 - a->len) {
        fail(a, VMCORE_ENOMEM);
        return false;
    }
    if (a->len + n <= a->cap && a->buf)
        return true;
    size_t cap = a->cap > 256 ? a->cap : 256;
    while (cap < a->len + n)
        cap *= 2;
    uint8_t *p = realloc(a->buf, cap);
    if (!p) {
        fail(a, VMCORE_ENOMEM);
        return false;
    }
    a->buf = p;
    a->cap = cap;
    return true;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
    if (n && reserve(a, n)) {
        memcpy(a->buf + a->len, p, n);
        a->len += n;
    }
}

void aml_u8(struct aml *a, uint8_t v) { aml_bytes(a, &v, 1); }

void aml_u16(struct aml *a, uint16_t v)
{
    uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
    aml_bytes(a, b, 2);
}

void aml_u32(struct aml *a, uint32_t v)
{
    aml_u16(a, (uint16_t)v);
    aml_u16(a, (uint16_t)(v >> 16));
}

void aml_u64(struct aml *a, uint64_t v)
{
    aml_u32(a, (uint32_t)v);
    aml_u32(a, (uint32_t)(v >> 32));
}

static bool lead_char(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
static bool name_char(char c) { return lead_char(c) || (c >= '0' && c <= '9'); }

void aml_name(struct aml *a, const char *path)
{
    const char *p = path;
    if (*p == '\\') {
        aml_u8(a, AML_ROOT_CHAR);
        p++;
    } else {
        while (*p == '^') {
            aml_u8(a, AML_PARENT_PREFIX_CHAR);
            p++;
        }
    }
    /* Check and count the segments first: the prefix comes before them. */
    unsigned nseg = 0;
    for (const char *s = p; *s;) {
        size_t n = 0;
        if (!lead_char(*s))
            goto bad;
        while (n < 4 && name_char(s[n]))
            n++;
        s += n;
        nseg++;
        if (*s == '.' && s[1])
            s++;
        else if (*s)
            goto bad;
    }
    if (nseg == 0) {
        aml_u8(a, 0x00); /* NullName */
        return;
    }
    if (nseg == 2)
        aml_u8(a, AML_DUAL_NAME_PREFIX);
    else if (nseg > 2) {
        if (nseg > 255)
            goto bad;
        aml_u8(a, AML_MULTI_NAME_PREFIX);
        aml_u8(a, (uint8_t)nseg);
    }
    while (*p) {
        char seg[4] = { '_', '_', '_', '_' };
        for (unsigned i = 0; i < 4 && name_char(*p); i++)
            seg[i] = *p++;
        aml_bytes(a, seg, 4);
        if (*p == '.')
            p++;
    }
    return;
bad:
    fail(a, VMCORE_EINVAL);
}

void aml_int(struct aml *a, uint64_t v)
{
    if (v == 0)
        aml_u8(a, AML_ZERO);
    else if (v == 1)
        aml_u8(a, AML_ONE);
    else if (v == UINT64_MAX)
        aml_u8(a, AML_ONES);
    else if (v <= 0xff) {
        aml_u8(a, AML_BYTE_PREFIX);
        aml_u8(a, (uint8_t)v);
    } else if (v <= 0xffff) {
        aml_u8(a, AML_WORD_PREFIX);
        aml_u16(a, (uint16_t)v);
    } else if (v <= 0xffffffffu) {
        aml_u8(a, AML_DWORD_PREFIX);
        aml_u32(a, (uint32_t)v);
    } else {
        aml_u8(a, AML_QWORD_PREFIX);
        aml_u64(a, v);
    }
}

void aml_string(struct aml *a, const char *s)
{
    /* An AML string is ASCII 0x01..0x7f, NUL-terminated. */
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c > 0x7f) {
            fail(a, VMCORE_EINVAL);
            return;
        }
    aml_u8(a, AML_STRING_PREFIX);
    aml_bytes(a, s, strlen(s) + 1);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void aml_eisaid(struct aml *a, const char *id)
{
    /* Three letters in 5 bits each ('A' = 1), then four hex digits: a big-endian 32-bit
     * value, stored as a DWord. */
    if (strlen(id) != 7) {
        fail(a, VMCORE_EINVAL);
        return;
    }
    uint32_t v = 0;
    for (int i = 0; i < 3; i++) {
        if (id[i] < 'A' || id[i] > 'Z') {
            fail(a, VMCORE_EINVAL);
            return;
        }
        v = (v << 5) | (uint32_t)(id[i] - 'A' + 1);
    }
    for (int i = 3; i < 7; i++) {
        int h = hexval(id[i]);
        if (h < 0) {
            fail(a, VMCORE_EINVAL);
            return;
        }
        v = (v << 4) | (uint32_t)h;
    }
    uint8_t be[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    aml_u8(a, AML_DWORD_PREFIX);
    aml_bytes(a, be, 4);
}

/* Open an object whose PkgLength follows the opcode bytes already written. */
static void open_pkg(struct aml *a)
{
    if (a->error)
        return;
    if (a->depth == AML_MAX_DEPTH) {
        fail(a, VMCORE_EINVAL);
        return;
    }
    a->open[a->depth++] = a->len;
}

void aml_end(struct aml *a)
{
    if (a->error)
        return;
    if (a->depth == 0) {
        fail(a, VMCORE_EINVAL);
        return;
    }
    size_t start = a->open[--a->depth];
    size_t content = a->len - start;
    /* PkgLength counts its own bytes: one byte up to 63, else 2..4 bytes of which the
     * first holds the count in bits 7:6 and the low nibble, the rest 8 bits each. */
    unsigned n;
    if (content + 1 <= 0x3f)
        n = 1;
    else if (content + 2 < (1u << 12))
        n = 2;
    else if (content + 3 < (1u << 20))
        n = 3;
    else if (content + 4 < (1u << 28))
        n = 4;
    else {
        fail(a, VMCORE_EINVAL);
        return;
    }
    if (!reserve(a, n))
        return;
    memmove(a->buf + start + n, a->buf + start, content);
    size_t total = content + n;
    uint8_t *p = a->buf + start;
    if (n == 1) {
        p[0] = (uint8_t)total;
    } else {
        p[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
        for (unsigned i = 1; i < n; i++)
            p[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
    }
    a->len += n;
}

void aml_buffer(struct aml *a, const void *data, size_t n)
{
    aml_u8(a, AML_BUFFER_OP);
    open_pkg(a);
    aml_int(a, n);
    aml_bytes(a, data, n);
    aml_end(a);
}

void aml_name_decl(struct aml *a, const char *path)
{
    aml_u8(a, AML_NAME_OP);
    aml_name(a, path);
}

void aml_scope(struct aml *a, const char *path)
{
    aml_u8(a, AML_SCOPE_OP);
    open_pkg(a);
    aml_name(a, path);
}

void aml_device(struct aml *a, const char *path)
{
    aml_u8(a, AML_EXT_OP_PREFIX);
    aml_u8(a, AML_DEVICE_OP);
    open_pkg(a);
    aml_name(a, path);
}

void aml_method(struct aml *a, const char *path, unsigned nargs, bool serialized)
{
    if (nargs > 7) {
        fail(a, VMCORE_EINVAL);
        return;
    }
    aml_u8(a, AML_METHOD_OP);
    open_pkg(a);
    aml_name(a, path);
    aml_u8(a, (uint8_t)(nargs | (serialized ? 0x08 : 0))); /* MethodFlags, SyncLevel 0 */
}

void aml_package(struct aml *a, unsigned nelems)
{
    if (nelems > 255) {
        fail(a, VMCORE_EINVAL); /* VarPackageOp would be needed */
        return;
    }
    aml_u8(a, AML_PACKAGE_OP);
    open_pkg(a);
    aml_u8(a, (uint8_t)nelems);
}

/* ---- resource descriptors ---- */

void aml_res_io(struct aml *a, uint16_t base, uint8_t align, uint8_t len)
{
    aml_u8(a, 0x47);         /* small item: I/O port, 7 bytes */
    aml_u8(a, 0x01);         /* decodes 16 bits */
    aml_u16(a, base);        /* minimum */
    aml_u16(a, base);        /* maximum base */
    aml_u8(a, align);
    aml_u8(a, len);
}

void aml_res_irq(struct aml *a, unsigned irq)
{
    if (irq > 15) {
        fail(a, VMCORE_EINVAL);
        return;
    }
    aml_u8(a, 0x22);         /* small item: IRQ, 2 bytes (no flags: edge, active high) */
    aml_u16(a, (uint16_t)(1u << irq));
}

void aml_res_mem32_fixed(struct aml *a, uint32_t base, uint32_t len)
{
    aml_u8(a, 0x86);         /* large item: 32-bit fixed memory range */
    aml_u16(a, 9);
    aml_u8(a, 0x01);         /* read-write */
    aml_u32(a, base);
    aml_u32(a, len);
}

/* General flags of an address space descriptor: MaxFixed, MinFixed, PosDecode,
 * producer (bit 0 clear: the bridge produces the range for its children). */
#define ADDR_GENERAL_FLAGS 0x0c

void aml_res_word(struct aml *a, enum aml_space space, uint16_t min, uint16_t max)
{
    aml_u8(a, 0x88);         /* large item: word address space */
    aml_u16(a, 13);
    aml_u8(a, (uint8_t)space);
    aml_u8(a, ADDR_GENERAL_FLAGS);
    /* I/O: EntireRange (ISA and non-ISA addresses); bus numbers have no specific flags */
    aml_u8(a, space == AML_SPACE_IO ? 0x03 : 0x00);
    aml_u16(a, 0);           /* granularity */
    aml_u16(a, min);
    aml_u16(a, max);
    aml_u16(a, 0);           /* translation offset */
    aml_u16(a, (uint16_t)(max - min + 1));
}

void aml_res_dword_mem(struct aml *a, uint32_t min, uint32_t max)
{
    aml_u8(a, 0x87);         /* large item: dword address space */
    aml_u16(a, 23);
    aml_u8(a, AML_SPACE_MEM);
    aml_u8(a, ADDR_GENERAL_FLAGS);
    aml_u8(a, 0x01);         /* read-write, non-cacheable (device memory) */
    aml_u32(a, 0);
    aml_u32(a, min);
    aml_u32(a, max);
    aml_u32(a, 0);
    aml_u32(a, max - min + 1);
}

void aml_res_qword_mem(struct aml *a, uint64_t min, uint64_t max)
{
    aml_u8(a, 0x8a);         /* large item: qword address space */
    aml_u16(a, 43);
    aml_u8(a, AML_SPACE_MEM);
    aml_u8(a, ADDR_GENERAL_FLAGS);
    aml_u8(a, 0x01);
    aml_u64(a, 0);
    aml_u64(a, min);
    aml_u64(a, max);
    aml_u64(a, 0);
    aml_u64(a, max - min + 1);
}

void aml_res_end(struct aml *a)
{
    aml_u8(a, 0x79);
    aml_u8(a, 0x00);
}
