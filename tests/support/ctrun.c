/* Container test runs: see ctrun.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ctrun.h"
#include "rootfs.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *rootfs;


static void append(char *buf, size_t *n, const char *data, size_t len)
{
    if (*n + len >= 65536)
        len = 65535 - *n;
    memcpy(buf + *n, data, len);
    *n += len;
    buf[*n] = 0;
}

void on_event(const vmcore_event *ev, void *arg)
{
    struct run *r = arg;
    switch (ev->type) {
    case VMCORE_EVENT_CONSOLE:
        if (ev->u.console.stream == VMCORE_STREAM_STDOUT)
            append(r->out, &r->nout, ev->u.console.data, ev->u.console.len);
        else if (ev->u.console.stream == VMCORE_STREAM_STDERR)
            append(r->err, &r->nerr, ev->u.console.data, ev->u.console.len);
        else
            append(r->con, &r->ncon, ev->u.console.data, ev->u.console.len);
        break;
    case VMCORE_EVENT_EXIT:
        r->exit = ev->u.exit;
        r->exit.reason = NULL;
        r->exited = 1;
        break;
    case VMCORE_EVENT_STATE:
        if (ev->u.state.new_state == VMCORE_STATE_STOPPED ||
            ev->u.state.new_state == VMCORE_STATE_CRASHED)
            r->stopped = 1;
        break;
    default:
        break;
    }
}

static void on_started(vmcore_domain *d, int status, void *arg)
{
    (void)d;
    struct run *r = arg;
    r->started = 1;
    r->start_status = status;
}

void on_closed(vmcore_domain *d, void *arg)
{
    (void)d;
    ((struct run *)arg)->closed = 1;
}

void on_exec(vmcore_domain *d, int status, const vmcore_exit *ex, void *arg)
{
    (void)d;
    struct run *r = arg;
    r->exec_done = 1;
    r->exec_status = status;
    if (ex)
        r->exec_exit = *ex;
    r->exec_exit.reason = NULL;
}

/* Create from @json (a printf format; "%s" first is the rootfs). Returns the create status. */
int run_new(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int run_new(struct run *r, const char *fmt, ...)
{
    memset(r, 0, sizeof *r);
    r->fds_before = vt_count_fds();
    char json[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(json, sizeof json, fmt, ap);
    va_end(ap);
    assert_int_equal(vmcore_ctx_new(&r->ctx, NULL), 0);
    int rc = vmcore_domain_new_json(&r->d, r->ctx, json);
    if (rc == 0)
        assert_true(vmcore_domain_subscribe(r->d, VMCORE_EVENT_ALL, on_event, r) > 0);
    return rc;
}

void run_start(struct run *r)
{
    int rc = vmcore_domain_start(r->d, on_started, r);
    if (rc != 0)
        fail_msg("start: %s: %s", vmcore_strerror(rc), vmcore_domain_last_error(r->d));
    assert_true(vt_run_until(r->ctx, &r->started, 60000));
    assert_int_equal(r->start_status, 0);
}

void run_exec(struct run *r, const char *const *argv)
{
    r->exec_done = 0;
    assert_int_equal(vmcore_domain_exec(r->d, argv, on_exec, r), 0);
    assert_true(vt_run_until(r->ctx, &r->exec_done, 60000));
    assert_int_equal(r->exec_status, 0);
}

void run_wait(struct run *r)
{
    assert_true(vt_run_until(r->ctx, &r->stopped, 120000));
    assert_true(r->exited);
}

/* No group of ours may remain in any hierarchy. */
int count_our_cgroups(void)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "vmcore-%d-", (int)getpid());
    char cmd[256];
    snprintf(cmd, sizeof cmd, "find /sys/fs/cgroup -maxdepth 6 -type d -name '%s*' 2>/dev/null | wc -l",
             prefix);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = -1;
        pclose(f);
    }
    return n;
}

int count_rootfs_mounts(void)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "vt-rootfs-"))
            n++;
    if (f)
        fclose(f);
    return n;
}

void run_close(struct run *r)
{
    if (r->d) {
        vmcore_domain_close(r->d, on_closed, r);
        assert_true(vt_run_until(r->ctx, &r->closed, 60000));
    }
    assert_int_equal(vmcore_ctx_free(r->ctx), 0);
    assert_int_equal(vt_count_children(), 0);
    assert_int_equal(count_our_cgroups(), 0);
    assert_int_equal(count_rootfs_mounts(), 0);
    if (vt_count_fds() != r->fds_before)
        system("ls -l /proc/$PPID/fd >&2");
    assert_int_equal(vt_count_fds(), r->fds_before);
}


/* Run a shell command to its end and return its exit; output in r->out / r->err. */
void sh(struct run *r, const char *extra, const char *cmd)
{
    char esc[4096];
    size_t j = 0;
    for (const char *p = cmd; *p && j < sizeof esc - 3; p++) {
        if (*p == '"' || *p == '\\')
            esc[j++] = '\\';
        esc[j++] = *p;
    }
    esc[j] = 0;
    int rc = run_new(r, "{" BASE ",%s\"process\":{\"args\":[\"/bin/sh\",\"-c\",\"%s\"]}}", rootfs,
                     extra, esc);
    if (rc)
        fail_msg("create: %s", vmcore_ctx_last_error(r->ctx));
    run_start(r);
    run_wait(r);
}

int ctrun_setup(void **state)
{
    (void)state;
    if (!rootfs)
        rootfs = vt_rootfs_make();
    /* libuv opens process-wide fds on first use; count fds only after that. */
    vmcore_ctx *ctx;
    if (vmcore_ctx_new(&ctx, NULL) == 0)
        vmcore_ctx_free(ctx);
    return 0;
}

int ctrun_teardown(void **state)
{
    (void)state;
    vt_rootfs_free(rootfs);
    rootfs = NULL;
    return 0;
}

/* The host's first real disk as "MAJ MIN", or "" */
void host_disk(char *dev, size_t len)
{
    dev[0] = 0;
    DIR *blk = opendir("/sys/block");
    struct dirent *de;
    while (blk && !dev[0] && (de = readdir(blk))) {
        if (de->d_name[0] == '.' || !strncmp(de->d_name, "loop", 4) || !strncmp(de->d_name, "ram", 3) ||
            !strncmp(de->d_name, "zram", 4))
            continue;
        char p[300];
        snprintf(p, sizeof p, "/sys/block/%s/dev", de->d_name);
        FILE *f = fopen(p, "r");
        if (f) {
            if (fgets(dev, (int)len, f))
                dev[strcspn(dev, "\n")] = 0;
            fclose(f);
        }
    }
    if (blk)
        closedir(blk);
    char *colon = strchr(dev, ':');
    if (colon)
        *colon = ' ';
    else
        dev[0] = 0;
}

void expect_create_error(const char *json, int code, const char *needle)
{
    struct run r;
    int rc = run_new(&r, "%s", json);
    if (rc != code)
        fail_msg("expected %s, got %s (%s)", vmcore_error_name(code), vmcore_error_name(rc),
                 vmcore_ctx_last_error(r.ctx));
    if (!strstr(vmcore_ctx_last_error(r.ctx), needle))
        fail_msg("message '%s' does not mention '%s'", vmcore_ctx_last_error(r.ctx), needle);
    r.d = NULL;
    run_close(&r);
}
