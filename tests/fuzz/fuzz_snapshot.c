/* Fuzz target: the snapshot loader (doc/snapshot.md) on the input as a snapshot file:
 * the container (lib/core/snapshot.c: preamble, section headers, CRCs, END), the domain
 * section's strings, and the emu backend's restore (lib/backend/emu/emu_backend.c and
 * lib/machine/snapshot.c: the machine section, the vCPU, every device's state, RAM) into
 * a 2 MiB one-vCPU emu machine without a domain. So that CRCs do not stop the fuzzer at
 * the door, every section's CRC is recomputed before the load, except for inputs whose
 * byte 15 (reserved, 0 in a real file) has bit 7 set: those are loaded as they are (bit 7
 * cleared), CRCs checked.
 *
 * Aborts when a rejected input has no message or a code that differs from the return. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/backend.h"
#include "core/snapshot.h"
#include "fuzz.h"

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned k = 0; k < n; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return v;
}

/* Recompute every section's CRC as far as the headers hold together. */
static void fix_crcs(uint8_t *b, size_t n)
{
    size_t off = SNAP_PREAMBLE_SIZE;
    while (n - off >= SNAP_SECTION_HDR_SIZE) {
        uint64_t len = le(b + off + 8, 8);
        if (len > n - off - SNAP_SECTION_HDR_SIZE)
            return;
        uint32_t crc = snap_crc32(0, b + off + SNAP_SECTION_HDR_SIZE, (size_t)len);
        for (unsigned k = 0; k < 4; k++)
            b[off + 16 + k] = (uint8_t)(crc >> (8 * k));
        off += SNAP_SECTION_HDR_SIZE + (size_t)len;
    }
}

static void check_err(int rc, const struct vmcore_err *err)
{
    if (rc != 0 && (err->code != rc || !err->msg[0]))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *b = malloc(size ? size : 1);
    if (!b)
        return 0;
    memcpy(b, data, size);
    if (size >= SNAP_PREAMBLE_SIZE && !(b[15] & 0x80))
        fix_crcs(b, size);
    else if (size >= SNAP_PREAMBLE_SIZE)
        b[15] &= 0x7f;

    struct vmcore_err err = { 0 };
    struct snap_file f;
    int rc = snap_open_mem(&f, b, size, &err);
    check_err(rc, &err);
    if (rc == 0) {
        /* the domain section, as vmcore_domain_new_restore() reads it */
        struct snap_rd r;
        snap_rd_init(&r, &f.sec[0], "domain", &err);
        char *backend = snap_rd_str(&r, 32);
        char *config = backend ? snap_rd_str(&r, 1u << 20) : NULL;
        char *base = config ? snap_rd_str(&r, 4096) : NULL;
        rc = snap_rd_end(&r);
        check_err(rc, &err);
        if (rc == 0) {
            json_t *j = json_loads(config, JSON_REJECT_DUPLICATES, NULL);
            json_decref(j);
        }
        free(backend);
        free(config);
        free(base);

        /* the machine, vCPU, devices and RAM into a 2 MiB emu machine */
        struct vmcore_config cfg = { 0 };
        cfg.memory_mib = 2;
        cfg.vcpus = 1;
        cfg.emu.jit = false;
        void *priv = NULL;
        memset(&err, 0, sizeof err);
        rc = backend_emu_ops.restore(NULL, &cfg, &f, &priv, &err);
        check_err(rc, &err);
        if (priv)
            backend_emu_ops.destroy(NULL, priv);
        snap_close(&f);
    }
    free(b);
    return 0;
}
