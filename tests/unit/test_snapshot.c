/* Snapshots on emu (doc/snapshot.md): a compute guest saved at 20 moments and each
 * snapshot restored in a fresh process finishes with the output of an uninterrupted run;
 * bad files (truncated, bit flips in every section, wrong magic or version, a RAM size
 * that does not match) fail naming the section or offset and leave nothing behind; save
 * refuses what it cannot save, and never leaves a partial file. */
#include "vt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/snapshot.h"
#include "rootfs.h"

#define WAIT_MS 120000 /* a safety net for a hung test, not a speed expectation */
#define NSAVES 20

static char tmpdir[256];
/* The guest the 20-point test runs (compute.bin or ticks.bin) and its snapshots' prefix. */
static const char *cur_guest = "compute.bin", *cur_mode = "long";

static const char *compute_json(const char *extra)
{
    static char json[2048];
    snprintf(json, sizeof json,
             "{\"name\": \"compute\", \"backend\": \"emu\", \"memory_mib\": 16%s%s,"
             " \"boot\": {\"kernel\": \"%s\", \"format\": \"raw\", \"mode\": \"%s\","
             " \"load_address\": 1048576}}",
             extra ? ", " : "", extra ? extra : "", vt_guest(cur_guest), cur_mode);
    return json;
}

/* One domain's run: output, lines seen, the end. When @save_at is set, the snapshot
 * saves[k] is taken once the output has k + 1 lines. */
struct run {
    vmcore_ctx *ctx;
    vmcore_domain *d;
    char out[4096];
    size_t len;
    unsigned lines;
    bool sent_q;
    int ended, closed;
    vmcore_exit exit;
    char reason[128];
    bool saving;
    unsigned saved;
    int save_rc[NSAVES];
    int save_done[NSAVES];
};

static void on_save_done(vmcore_domain *d, int status, void *arg)
{
    (void)d;
    *(int *)arg = status == 0 ? 1 : -1;
}

static void snap_path(char *buf, size_t n, unsigned k)
{
    snprintf(buf, n, "%s/%.8s%02u.vmsnap", tmpdir, cur_guest, k);
}

static void on_event(const vmcore_event *ev, void *arg)
{
    struct run *r = arg;
    if (ev->type == VMCORE_EVENT_CONSOLE) {
        for (size_t i = 0; i < ev->u.console.len && r->len + 1 < sizeof r->out; i++) {
            char c = ev->u.console.data[i];
            r->out[r->len++] = c;
            r->out[r->len] = 0;
            if (c != '\n')
                continue;
            r->lines++;
            /* 20 saves at 20 different points: after line k + 1 and a delay that
             * varies, so the guest is somewhere inside its next step */
            if (r->saving && r->saved < NSAVES && r->lines == r->saved + 1) {
                unsigned k = r->saved++;
                usleep((k * 7 % 11) * 500);
                char path[512];
                snap_path(path, sizeof path, k);
                r->save_rc[k] = vmcore_domain_save(r->d, path, VMCORE_SAVE_RESUME,
                                                   on_save_done, &r->save_done[k]);
            }
        }
        if (!r->sent_q && strstr(r->out, "ready\n")) {
            r->sent_q = true;
            vmcore_domain_console_write(r->d, "q", 1);
        }
    } else if (ev->type == VMCORE_EVENT_EXIT) {
        r->exit = ev->u.exit;
        snprintf(r->reason, sizeof r->reason, "%s", ev->u.exit.reason);
        r->exit.reason = r->reason;
    } else if (ev->type == VMCORE_EVENT_STATE &&
               (ev->u.state.new_state == VMCORE_STATE_STOPPED ||
                ev->u.state.new_state == VMCORE_STATE_CRASHED)) {
        r->ended = 1;
    }
}

static void on_closed(vmcore_domain *d, void *arg)
{
    (void)d;
    *(int *)arg = 1;
}

static void run_close(struct run *r)
{
    vmcore_domain_close(r->d, on_closed, &r->closed);
    assert_true(vt_run_until(r->ctx, &r->closed, WAIT_MS));
    assert_int_equal(vmcore_ctx_free(r->ctx), 0);
}

/* Boot (or, with @restore, restore) the compute guest and run it to its end. */
static int run_guest(struct run *r, const char *restore, bool saving)
{
    memset(r, 0, sizeof *r);
    r->saving = saving;
    if (vmcore_ctx_new(&r->ctx, NULL))
        return -1;
    int rc = restore ? vmcore_domain_new_restore(&r->d, r->ctx, restore, NULL)
                     : vmcore_domain_new_json(&r->d, r->ctx, compute_json(NULL));
    if (rc) {
        snprintf(r->out, sizeof r->out, "create: %s", vmcore_ctx_last_error(r->ctx));
        vmcore_ctx_free(r->ctx);
        return rc;
    }
    vmcore_domain_subscribe(r->d, VMCORE_EVENT_ALL, on_event, r);
    if ((rc = vmcore_domain_start(r->d, NULL, NULL)))
        return rc;
    if (restore) {
        /* the guests read one byte only once they are done: a restored one may be past
         * its "ready" already, so it gets the byte at once (the UART queues it) */
        r->sent_q = true;
        vmcore_domain_console_write(r->d, "q", 1);
    }
    return vt_run_until(r->ctx, &r->ended, WAIT_MS) ? 0 : VMCORE_ETIMEDOUT;
}

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/vmcore-snap-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
}

/* Only the files the test wrote may be in the folder (no temporary file left). */
static unsigned count_files(void)
{
    DIR *dir = opendir(tmpdir);
    assert_non_null(dir);
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(dir)))
        if (e->d_name[0] != '.')
            n++;
    closedir(dir);
    return n;
}

static void remove_tmpdir(void)
{
    DIR *dir = opendir(tmpdir);
    if (!dir)
        return;
    struct dirent *e;
    char p[600];
    while ((e = readdir(dir)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    closedir(dir);
    rmdir(tmpdir);
}

/* Restore @path in a child process (fresh address space: nothing of this process's
 * domains) and return its console output in @out; the child's exit says how the guest
 * ended (0: status 0). */
static int restore_in_child(const char *path, char *out, size_t outsz)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        struct run *r = calloc(1, sizeof *r);
        int rc = r ? run_guest(r, path, false) : -1;
        int code = rc ? 10 : (r->exit.kind == VMCORE_EXIT_STATUS ? r->exit.status : 11);
        if (r) {
            if (write(p[1], r->out, strlen(r->out)) < 0)
                code = 12;
        }
        _exit(code);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < outsz && (k = read(p[0], out + n, outsz - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = 0;
    close(p[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The offset just past line @n (1-based) of @s. */
static size_t line_end(const char *s, unsigned n)
{
    size_t off = 0;
    for (unsigned k = 0; k < n; k++) {
        const char *nl = strchr(s + off, '\n');
        assert_non_null(nl);
        off = (size_t)(nl - s) + 1;
    }
    return off;
}

static void save_restore_20_points(void)
{
    make_tmpdir();
    struct run *ref = calloc(1, sizeof *ref), *sv = calloc(1, sizeof *sv);
    assert_non_null(ref);
    assert_non_null(sv);

    /* the uninterrupted run */
    assert_int_equal(run_guest(ref, NULL, false), 0);
    assert_int_equal(ref->exit.kind, VMCORE_EXIT_STATUS);
    assert_int_equal(ref->exit.status, 0);
    assert_non_null(strstr(ref->out, "ready\n"));
    run_close(ref);

    /* the same guest, saved 20 times on the way, prints the same */
    assert_int_equal(run_guest(sv, NULL, true), 0);
    assert_int_equal(sv->saved, NSAVES);
    for (unsigned k = 0; k < NSAVES; k++) {
        if (sv->save_rc[k])
            fail_msg("save %u: %s: %s", k, vmcore_strerror(sv->save_rc[k]),
                     vmcore_domain_last_error(sv->d));
        assert_int_equal(sv->save_done[k], 1);
    }
    assert_string_equal(sv->out, ref->out);
    assert_int_equal(sv->exit.status, 0);
    run_close(sv);
    assert_int_equal(count_files(), NSAVES);

    /* each snapshot, restored in a fresh process, ends the computation as the
     * uninterrupted run did: its output is what that run printed after the save point */
    size_t reflen = strlen(ref->out);
    for (unsigned k = 0; k < NSAVES; k++) {
        char path[512], out[4096];
        snap_path(path, sizeof path, k);
        int code = restore_in_child(path, out, sizeof out);
        if (code != 0)
            fail_msg("restore of save %u ended with %d: %s", k, code, out);
        size_t n = strlen(out);
        /* saved after line k + 1 was printed: at most what followed it */
        assert_true(n <= reflen - line_end(ref->out, k + 1));
        if (n == 0 || strcmp(out, ref->out + reflen - n) != 0)
            fail_msg("restore of save %u printed \"%s\", the uninterrupted run ended with "
                     "\"%s\"", k, out, ref->out + line_end(ref->out, k + 1));
        /* the cut is at a line boundary: nothing was gathered in the UART at the save */
        assert_int_equal(ref->out[reflen - n - 1], '\n');
    }
    free(ref);
    free(sv);
    remove_tmpdir();
}

/* compute.bin: registers, RAM, the software CPU's caches (its loop is compiled code) */
static void test_save_restore_20_points(void **state)
{
    (void)state;
    cur_guest = "compute.bin";
    cur_mode = "long";
    save_restore_20_points();
}

/* ticks.bin: halted between PIT ticks (through the IOAPIC) and local APIC timer
 * interrupts: the interrupt controllers' and timers' state, and a halted vCPU */
static void test_save_restore_interrupts(void **state)
{
    (void)state;
    cur_guest = "ticks.bin";
    cur_mode = "protected";
    save_restore_20_points();
    cur_guest = "compute.bin";
    cur_mode = "long";
}

/* ---- bad input ---- */

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void write_file(const char *path, const void *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
}

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned k = 0; k < n; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return v;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned k = 0; k < n; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

/* A snapshot of the compute guest paused mid-run, in @path. */
static void make_snapshot(const char *path)
{
    struct run *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(vmcore_ctx_new(&r->ctx, NULL), 0);
    assert_int_equal(vmcore_domain_new_json(&r->d, r->ctx, compute_json(NULL)), 0);
    vmcore_domain_subscribe(r->d, VMCORE_EVENT_ALL, on_event, r);
    r->sent_q = true; /* never ends by itself */
    assert_int_equal(vmcore_domain_start(r->d, NULL, NULL), 0);
    for (int i = 0; r->lines < 3 && !r->ended && i < WAIT_MS / 10; i++)
        vt_run_until(r->ctx, &r->ended, 10);
    assert_true(r->lines >= 3);
    int done = 0;
    assert_int_equal(vmcore_domain_pause(r->d, NULL, NULL), 0);
    int rc = vmcore_domain_save(r->d, path, VMCORE_SAVE_STOP, on_save_done, &done);
    if (rc)
        fail_msg("save: %s", vmcore_domain_last_error(r->d));
    assert_true(vt_run_until(r->ctx, &r->ended, WAIT_MS));
    assert_int_equal(done, 1);
    /* VMCORE_SAVE_STOP: the domain ended as a guest exiting with 0 */
    assert_int_equal(r->exit.kind, VMCORE_EXIT_STATUS);
    assert_int_equal(r->exit.status, 0);
    assert_string_equal(r->reason, "saved to a snapshot");
    run_close(r);
    free(r);
}

struct sec {
    uint32_t type, instance;
    size_t hdr, off, len;
};

/* Walk the sections as doc/snapshot.md describes them (an independent reader). */
static size_t list_sections(const uint8_t *b, size_t n, struct sec *out, size_t max)
{
    size_t off = 16, k = 0;
    assert_memory_equal(b, "VMCSNAP\n", 8);
    while (off + 24 <= n && k < max) {
        struct sec s = { (uint32_t)le(b + off, 4), (uint32_t)le(b + off + 4, 4), off,
                         off + 24, (size_t)le(b + off + 8, 8) };
        out[k++] = s;
        assert_int_equal(snap_crc32(0, b + s.off, s.len), (uint32_t)le(b + off + 16, 4));
        off = s.off + s.len;
        if (s.type == 0xffff)
            break;
    }
    assert_int_equal(off, n);
    return k;
}

/* Restoring @path fails with @code and a message holding every one of @needles (NULL
 * ended), with no fd or thread left behind. */
static void expect_restore_fails(const char *path, int code, const char *const *needles)
{
    vmcore_ctx *ctx;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    int fds = vt_count_fds(), threads = vt_count_threads();
    vmcore_domain *d = (vmcore_domain *)1;
    int rc = vmcore_domain_new_restore(&d, ctx, path, NULL);
    const char *msg = vmcore_ctx_last_error(ctx);
    if (rc != code)
        fail_msg("restore gave %s (%s), expected %s", vmcore_error_name(rc), msg,
                 vmcore_error_name(code));
    assert_null(d);
    for (const char *const *n = needles; *n; n++)
        if (!strstr(msg, *n))
            fail_msg("the error \"%s\" does not say \"%s\"", msg, *n);
    assert_int_equal(vt_count_fds(), fds);
    assert_int_equal(vt_count_threads(), threads);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
}

static void test_bad_files(void **state)
{
    (void)state;
    make_tmpdir();
    char good[512], bad[512];
    snprintf(good, sizeof good, "%s/good.vmsnap", tmpdir);
    snprintf(bad, sizeof bad, "%s/bad.vmsnap", tmpdir);
    make_snapshot(good);
    size_t n;
    uint8_t *b = read_file(good, &n);
    uint8_t *c = malloc(n);
    assert_non_null(c);
    struct sec secs[256];
    size_t ns = list_sections(b, n, secs, 256);
    assert_true(ns >= 5);
    assert_int_equal(secs[0].type, SNAP_SEC_DOMAIN);
    assert_int_equal(secs[1].type, SNAP_SEC_MACHINE);
    assert_int_equal(secs[ns - 1].type, SNAP_SEC_END);

    /* the good file restores */
    {
        vmcore_ctx *ctx;
        vmcore_domain *d;
        int closed = 0;
        assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
        int rc = vmcore_domain_new_restore(&d, ctx, good, "{\"name\": \"again\"}");
        if (rc)
            fail_msg("restore: %s", vmcore_ctx_last_error(ctx));
        assert_string_equal(vmcore_domain_name(d), "again");
        assert_int_equal(vmcore_domain_state(d), VMCORE_STATE_CREATED);
        vmcore_domain_close(d, on_closed, &closed);
        assert_true(vt_run_until(ctx, &closed, WAIT_MS));
        assert_int_equal(vmcore_ctx_free(ctx), 0);
    }

    /* wrong magic, wrong version */
    memcpy(c, b, n);
    c[0] ^= 1;
    write_file(bad, c, n);
    expect_restore_fails(bad, VMCORE_EIMAGE, (const char *const[]){ "offset 0", "magic", NULL });
    memcpy(c, b, n);
    put_le(c + 8, 2, 4);
    write_file(bad, c, n);
    expect_restore_fails(bad, VMCORE_EIMAGE,
                         (const char *const[]){ "offset 8", "version 2", NULL });

    /* truncated anywhere: in the preamble, in a header, in a payload, before END */
    size_t cuts[] = { 0, 7, 15, 16, 20, secs[1].hdr + 10, secs[1].off + 3, secs[2].off + 1,
                      secs[ns - 2].off + secs[ns - 2].len / 2, secs[ns - 1].hdr, n - 1 };
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        write_file(bad, b, cuts[k]);
        expect_restore_fails(bad, VMCORE_EIMAGE,
                             (const char *const[]){ "truncated", "offset", NULL });
    }

    /* a bit flipped in every section's payload: its CRC catches it, and names it */
    for (size_t k = 0; k < ns; k++) {
        if (secs[k].len == 0)
            continue;
        memcpy(c, b, n);
        c[secs[k].off + secs[k].len / 2] ^= 0x10;
        write_file(bad, c, n);
        char idx[64], off[64];
        snprintf(idx, sizeof idx, "section #%zu (%s", k, snap_section_name(secs[k].type));
        snprintf(off, sizeof off, "offset %zu", secs[k].hdr);
        expect_restore_fails(bad, VMCORE_EIMAGE,
                             (const char *const[]){ idx, off, "CRC mismatch", NULL });
    }
    /* and in a section header's length */
    memcpy(c, b, n);
    c[secs[1].hdr + 8] ^= 0x01;
    write_file(bad, c, n);
    expect_restore_fails(bad, VMCORE_EIMAGE, (const char *const[]){ "section #1", NULL });

    /* a RAM size that does not match the configuration: a consistent file (CRCs right)
     * whose configuration says 32 MiB for 16 MiB of state */
    {
        const uint8_t *p = b + secs[0].off;
        size_t blen = (size_t)le(p, 4);
        size_t clen = (size_t)le(p + 4 + blen, 4);
        char *cfg = strndup((const char *)p + 8 + blen, clen);
        char *at = strstr(cfg, "\"memory_mib\":16");
        assert_non_null(at);
        at[13] = '3';
        at[14] = '2';
        memcpy(c, b, n);
        memcpy(c + secs[0].off + 8 + blen, cfg, clen);
        put_le(c + secs[0].hdr + 16, snap_crc32(0, c + secs[0].off, secs[0].len), 4);
        write_file(bad, c, n);
        free(cfg);
        expect_restore_fails(bad, VMCORE_EIMAGE,
                             (const char *const[]){ "section machine", "RAM is 16777216 bytes",
                                                    "33554432", NULL });
    }

    /* a snapshot of another backend: a consistent file whose domain section says kvm */
    {
        memcpy(c, b, n);
        assert_memory_equal(c + secs[0].off + 4, "emu", 3);
        memcpy(c + secs[0].off + 4, "kvm", 3);
        put_le(c + secs[0].hdr + 16, snap_crc32(0, c + secs[0].off, secs[0].len), 4);
        write_file(bad, c, n);
        expect_restore_fails(bad, VMCORE_ENOTSUP,
                             (const char *const[]){ "not implemented yet for backend kvm",
                                                    NULL });
    }

    /* overrides may not change what the guest sees */
    {
        vmcore_ctx *ctx;
        vmcore_domain *d = NULL;
        assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
        assert_int_equal(vmcore_domain_new_restore(&d, ctx, good, "{\"memory_mib\": 32}"),
                         VMCORE_ECONFIG);
        assert_string_equal(vmcore_ctx_last_error_path(ctx), "overrides.memory_mib");
        assert_int_equal(vmcore_domain_new_restore(&d, ctx, good, "{\"backend\": \"kvm\"}"),
                         VMCORE_ENOTSUP);
        assert_non_null(strstr(vmcore_ctx_last_error(ctx), "not implemented yet"));
        assert_int_equal(vmcore_domain_new_restore(&d, ctx, good, "[1"), VMCORE_EPARSE);
        assert_int_equal(vmcore_domain_new_restore(&d, ctx, tmpdir, NULL), VMCORE_EIMAGE);
        snprintf(bad, sizeof bad, "%s/absent", tmpdir);
        assert_int_equal(vmcore_domain_new_restore(&d, ctx, bad, NULL), VMCORE_ENOENT);
        assert_null(d);
        assert_int_equal(vmcore_ctx_free(ctx), 0);
    }
    free(b);
    free(c);
    remove_tmpdir();
}

/* save refuses what it cannot save (a virtio device, a folder that does not exist) and
 * leaves no file; the domain runs on. */
static void test_save_refusals(void **state)
{
    (void)state;
    make_tmpdir();
    vmcore_ctx *ctx;
    vmcore_domain *d;
    int closed = 0;
    char path[512];
    char cons[600], extra[700];
    snprintf(cons, sizeof cons, "%s/../vmcore-snap-console-%d", tmpdir, (int)getpid());
    snprintf(extra, sizeof extra, "\"consoles\": [{\"output\": \"%s\"}]", cons);
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    assert_int_equal(vmcore_domain_new_json(&d, ctx, compute_json(extra)), 0);
    snprintf(path, sizeof path, "%s/x.vmsnap", tmpdir);
    assert_int_equal(vmcore_domain_save(d, path, 0, NULL, NULL), VMCORE_ESTATE);
    assert_int_equal(vmcore_domain_start(d, NULL, NULL), 0);
    assert_int_equal(vmcore_domain_save(d, path, 0, NULL, NULL), VMCORE_ENOTSUP);
    const char *msg = vmcore_domain_last_error(d);
    if (!strstr(msg, "'virtio-console0'") || !strstr(msg, "cannot be saved yet"))
        fail_msg("the refusal says \"%s\"", msg);
    assert_int_equal(vmcore_domain_save(d, path, 4, NULL, NULL), VMCORE_EINVAL);
    assert_int_equal(count_files(), 0);
    assert_int_equal(vmcore_domain_state(d), VMCORE_STATE_RUNNING);
    vmcore_domain_close(d, on_closed, &closed);
    assert_true(vt_run_until(ctx, &closed, WAIT_MS));
    unlink(cons);

    closed = 0;
    assert_int_equal(vmcore_domain_new_json(&d, ctx, compute_json(NULL)), 0);
    assert_int_equal(vmcore_domain_start(d, NULL, NULL), 0);
    snprintf(path, sizeof path, "%s/no/such/folder.vmsnap", tmpdir);
    assert_int_equal(vmcore_domain_save(d, path, 0, NULL, NULL), VMCORE_ENOENT);
    assert_non_null(strstr(vmcore_domain_last_error(d), "no/such/folder"));
    assert_int_equal(vmcore_domain_state(d), VMCORE_STATE_RUNNING);
    assert_int_equal(count_files(), 0);
    vmcore_domain_close(d, on_closed, &closed);
    assert_true(vt_run_until(ctx, &closed, WAIT_MS));
    assert_int_equal(vmcore_ctx_free(ctx), 0);
    remove_tmpdir();
}

/* virtio-rng is in the format: a machine with one saves, and restores with the device's
 * transport and PCI state (here as the guest left it: untouched). */
static void test_virtio_rng_saved(void **state)
{
    (void)state;
    make_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/rng.vmsnap", tmpdir);
    struct run *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(vmcore_ctx_new(&r->ctx, NULL), 0);
    assert_int_equal(vmcore_domain_new_json(&r->d, r->ctx, compute_json("\"rng\": true")), 0);
    vmcore_domain_subscribe(r->d, VMCORE_EVENT_ALL, on_event, r);
    assert_int_equal(vmcore_domain_start(r->d, NULL, NULL), 0);
    for (int i = 0; r->lines < 2 && !r->ended && i < WAIT_MS / 10; i++)
        vt_run_until(r->ctx, &r->ended, 10);
    int rc = vmcore_domain_save(r->d, path, VMCORE_SAVE_STOP, NULL, NULL);
    if (rc)
        fail_msg("save: %s", vmcore_domain_last_error(r->d));
    assert_true(vt_run_until(r->ctx, &r->ended, WAIT_MS));
    run_close(r);
    memset(r, 0, sizeof *r);
    assert_int_equal(run_guest(r, path, false), 0);
    assert_int_equal(r->exit.kind, VMCORE_EXIT_STATUS);
    assert_int_equal(r->exit.status, 0);
    assert_non_null(strstr(r->out, "checksum "));
    run_close(r);
    free(r);
    remove_tmpdir();
}

/* A container says save is not implemented for it (root and busybox-static needed to run
 * one; kvm, absent here, says the same through the same path: no save op). */
static void test_container_save_not_implemented(void **state)
{
    (void)state;
    vt_require_root();
    char *rootfs = vt_rootfs_make();
    vt_require(rootfs != NULL, "needs busybox-static at /bin/busybox");
    char json[1024], path[600];
    snprintf(json, sizeof json,
             "{\"name\": \"ct\", \"backend\": \"container\", \"rootfs\": \"%s\","
             " \"process\": {\"args\": [\"/bin/sleep\", \"60\"]}}", rootfs);
    vmcore_ctx *ctx;
    vmcore_domain *d;
    int closed = 0;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    int rc = vmcore_domain_new_json(&d, ctx, json);
    if (rc) {
        vt_rootfs_free(rootfs);
        vmcore_ctx_free(ctx);
        vt_require(0, "no container here: %s", "see test_container");
    }
    assert_int_equal(vmcore_domain_start(d, NULL, NULL), 0);
    snprintf(path, sizeof path, "%s.vmsnap", rootfs);
    assert_int_equal(vmcore_domain_save(d, path, 0, NULL, NULL), VMCORE_ENOTSUP);
    assert_string_equal(vmcore_domain_last_error(d),
                        "save: not implemented yet for backend container");
    assert_int_equal(access(path, F_OK), -1);
    vmcore_domain_close(d, on_closed, &closed);
    assert_true(vt_run_until(ctx, &closed, WAIT_MS));
    assert_int_equal(vmcore_ctx_free(ctx), 0);
    vt_rootfs_free(rootfs);
}

/* A snapshot another program wrote from doc/snapshot.md alone (tests/fuzz/make_corpus.py,
 * seed_valid.vmsnap) restores and runs: the format page is enough to write one. */
static void test_restore_foreign_file(void **state)
{
    (void)state;
    struct run *r = calloc(1, sizeof *r);
    assert_non_null(r);
    int rc = run_guest(r, VT_SOURCE_DIR "/tests/fuzz/corpus/snapshot/seed_valid.vmsnap", false);
    if (rc)
        fail_msg("%s: %s", vmcore_strerror(rc), r->out);
    assert_string_equal(r->out, "ok\n");
    assert_int_equal(r->exit.kind, VMCORE_EXIT_STATUS);
    assert_int_equal(r->exit.status, 0);
    assert_string_equal(vmcore_domain_name(r->d), "seed");
    run_close(r);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_restore_20_points),
        cmocka_unit_test(test_save_restore_interrupts),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_save_refusals),
        cmocka_unit_test(test_restore_foreign_file),
        cmocka_unit_test(test_container_save_not_implemented),
        cmocka_unit_test(test_virtio_rng_saved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
