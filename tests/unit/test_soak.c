/* Soak: many create -> start -> (exec / pause / resume / console input) -> end -> close
 * cycles over the container and emu backends (and kvm where /dev/kvm is usable) in one
 * context, in batches of up to four domains started in the same loop turn. After a warm-up
 * nothing may grow: fds, threads, children, mounts, our cgroups, network interfaces, RSS
 * (a generous bound: a leak detector, not a measurement).
 *
 * VMCORE_SOAK_CYCLES sets the number of domains (default 1000), VMCORE_SOAK_SEED the
 * random seed, VMCORE_SOAK_BACKENDS the backends to mix (default "container,emu,kvm";
 * kvm only where /dev/kvm is usable). The test runs in its own mount and network namespaces, so the mount and
 * interface counts are ours alone on a shared machine. A watchdog thread turns a step
 * that makes no progress for WATCHDOG_S seconds (a hang: a loop turn blocked inside the
 * library, or a callback that never comes) into a message naming the step, the threads'
 * kernel stacks, and an abort. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vt.h"
#include "rootfs.h"
#include "vmtest.h"

#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#define WATCHDOG_S 60    /* a hang guard, not a speed expectation */
#define STEP_WAIT_MS 90000
#define BATCH_MAX 4
#define WARMUP 24
#define RSS_GROWTH_MAX (20L << 20)

static char *rootfs;
static int have_ns;     /* own mount + network namespace */

/* --- the watchdog ---------------------------------------------------------------------- */

static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static char wd_step[256];
static time_t wd_since;
static int wd_stop;
static pthread_t wd_thread;

static void step(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void step(const char *fmt, ...)
{
    pthread_mutex_lock(&wd_lock);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(wd_step, sizeof wd_step, fmt, ap);
    va_end(ap);
    wd_since = time(NULL);
    pthread_mutex_unlock(&wd_lock);
}

static void dump_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        fprintf(stderr, "    %s", line);
    if (f)
        fclose(f);
}

static void *wd_main(void *arg)
{
    (void)arg;
    for (;;) {
        sleep(1);
        pthread_mutex_lock(&wd_lock);
        int stop = wd_stop;
        long idle = (long)(time(NULL) - wd_since);
        char what[256];
        snprintf(what, sizeof what, "%s", wd_step);
        pthread_mutex_unlock(&wd_lock);
        if (stop)
            return NULL;
        if (idle < WATCHDOG_S)
            continue;
        fprintf(stderr, "\nsoak: HANG: no progress for %ld s in step: %s\n", idle, what);
        DIR *d = opendir("/proc/self/task");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char p[128], comm[64] = "";
            snprintf(p, sizeof p, "/proc/self/task/%s/comm", e->d_name);
            FILE *f = fopen(p, "r");
            if (f) {
                if (!fgets(comm, sizeof comm, f))
                    comm[0] = 0;
                fclose(f);
            }
            comm[strcspn(comm, "\n")] = 0;
            fprintf(stderr, "  thread %s (%s):\n", e->d_name, comm);
            snprintf(p, sizeof p, "/proc/self/task/%s/stack", e->d_name);
            dump_file(p);
        }
        if (d)
            closedir(d);
        /* A child stuck before its exec (a container's clone3 child) shows its wait here. */
        char p[64];
        snprintf(p, sizeof p, "/proc/self/task/%d/children", (int)getpid());
        FILE *f = fopen(p, "r");
        int pid;
        while (f && fscanf(f, "%d", &pid) == 1) {
            char q[64], comm[64] = "", wchan[128] = "";
            snprintf(q, sizeof q, "/proc/%d/comm", pid);
            FILE *g = fopen(q, "r");
            if (g) {
                if (!fgets(comm, sizeof comm, g))
                    comm[0] = 0;
                fclose(g);
            }
            comm[strcspn(comm, "\n")] = 0;
            snprintf(q, sizeof q, "/proc/%d/wchan", pid);
            if ((g = fopen(q, "r"))) {
                if (!fgets(wchan, sizeof wchan, g))
                    wchan[0] = 0;
                fclose(g);
            }
            fprintf(stderr, "  child %d (%s), waiting in %s:\n", pid, comm, wchan);
            snprintf(q, sizeof q, "/proc/%d/stack", pid);
            dump_file(q);
        }
        if (f)
            fclose(f);
        fprintf(stderr, "\n");
        abort(); /* the cgroup watchers clean up the containers */
    }
}

/* --- what must not grow ---------------------------------------------------------------- */

struct counts {
    int fds, threads, children, mounts, cgroups, ifaces;
    long rss;
};

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0, c;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Folders named vmcore-<our pid>-* anywhere under @dir (symlinked mounts skipped). */
static int count_cgroups(const char *dir, const char *prefix, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.')
            continue;
        if (!strncmp(e->d_name, prefix, strlen(prefix)))
            n++;
        else if (depth > 0) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            n += count_cgroups(p, prefix, depth - 1);
        }
    }
    closedir(d);
    return n;
}

/* Resident memory in use. Free memory glibc's allocator keeps cached is handed back
 * first (malloc_trim): the vCPU threads' arenas hold the console posts they allocated
 * until the loop frees them, and how much of that stays cached after the threads end
 * depends on timing (12 to 29 MiB seen over identical runs), not on what leaked. */
static long rss_bytes(void)
{
    malloc_trim(0);
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

static void count(struct counts *c)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "vmcore-%d-", (int)getpid());
    c->fds = vt_count_fds();
    c->threads = vt_count_threads();
    c->children = vt_count_children();
    c->mounts = count_lines("/proc/self/mountinfo");
    c->cgroups = count_cgroups("/sys/fs/cgroup", prefix, 5);
    struct if_nameindex *ifs = if_nameindex();
    c->ifaces = 0;
    for (struct if_nameindex *i = ifs; i && i->if_index; i++)
        c->ifaces++;
    if (ifs)
        if_freenameindex(ifs);
    c->rss = rss_bytes();
}

/* --- one domain -------------------------------------------------------------------------- */

enum kind {
    CT_ECHO,        /* sh -c 'echo ok': exits 0 by itself */
    CT_SLEEP,       /* sleep 1000: exec, pause/resume; killed */
    CT_INIT_SLEEP,  /* the same under the tiny init; shut down (SIGTERM) */
    CT_CAT,         /* cat: stdin in, EOF ends it */
    CT_VETH,        /* sleep 1000 with a veth pair; killed */
    VM_EXIT42,      /* exits 42 by itself */
    VM_LOOP,        /* spins until killed; pause/resume */
    VM_ECHO,        /* echoes console input until 'q' */
    NKINDS
};

struct dom {
    vmcore_domain *d;
    enum kind kind;
    const char *backend;
    int slot;
    int started, paused, resumed, killed, shut, exec_done, ended, closed;
    vmcore_exit exit, exec_exit;
    char out[512];
    size_t nout;
};

static void on_event(const vmcore_event *ev, void *arg)
{
    struct dom *m = arg;
    if (ev->type == VMCORE_EVENT_CONSOLE) {
        size_t len = ev->u.console.len;
        if (m->nout + len >= sizeof m->out)
            len = sizeof m->out - 1 - m->nout;
        memcpy(m->out + m->nout, ev->u.console.data, len);
        m->nout += len;
        m->out[m->nout] = 0;
    } else if (ev->type == VMCORE_EVENT_EXIT) {
        m->exit = ev->u.exit;
        m->exit.reason = NULL;
    } else if (ev->type == VMCORE_EVENT_STATE && (ev->u.state.new_state == VMCORE_STATE_STOPPED ||
                                                  ev->u.state.new_state == VMCORE_STATE_CRASHED)) {
        m->ended = 1;
    }
}

static void on_exec(vmcore_domain *d, int status, const vmcore_exit *ex, void *arg)
{
    (void)d;
    struct dom *m = arg;
    m->exec_done = status == 0 ? 1 : -1;
    if (ex)
        m->exec_exit = *ex;
    m->exec_exit.reason = NULL;
}

static int use_kvm = 1, use_emu = 1;

static const char *vm_backend(void)
{
    if (use_kvm && vt_have_kvm() && (!use_emu || rand() % 2))
        return "kvm";
    return "emu";
}

static const char *BOOT = "\"format\": \"raw\", \"mode\": \"protected\", \"load_address\": 1048576";

static void dom_create(vmcore_ctx *ctx, struct dom *m, enum kind kind, int slot)
{
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->slot = slot;
    char json[4096];
    const char *args = "";
    char extra[512] = "";
    switch (kind) {
    case CT_ECHO: args = "\"sh\",\"-c\",\"echo ok\""; break;
    case CT_SLEEP: args = "\"sleep\",\"1000\""; break;
    case CT_INIT_SLEEP: args = "\"sleep\",\"1000\""; break;
    case CT_CAT: args = "\"cat\""; break;
    case CT_VETH: {
        int net = (int)(getpid() % 60) * 4;
        snprintf(extra, sizeof extra, "\"network\":{\"mode\":\"veth\",\"host_ifname\":\"vsk%d\","
                 "\"address\":\"10.216.%d.%d/30\",\"host_address\":\"10.216.%d.%d/30\"},",
                 slot, slot, net + 2, slot, net + 1);
        args = "\"sleep\",\"1000\"";
        break;
    }
    default: break;
    }
    if (kind < VM_EXIT42) {
        m->backend = "container";
        snprintf(json, sizeof json, "{\"name\":\"soak%d\",\"backend\":\"container\",\"rootfs\":\"%s\",%s"
                 "\"process\":{%s\"args\":[%s]}}", slot, rootfs, extra,
                 kind == CT_INIT_SLEEP ? "\"init\":true," : "", args);
    } else {
        m->backend = vm_backend();
        const char *guest = kind == VM_EXIT42 ? "exit42.bin" : kind == VM_LOOP ? "loop.bin" : "echo.bin";
        snprintf(json, sizeof json, "%s", vmt_json(m->backend, guest, BOOT, NULL));
    }
    int rc = vmcore_domain_new_json(&m->d, ctx, json);
    if (rc)
        fail_msg("create %s kind %d: %s: %s", m->backend, kind, vmcore_error_name(rc),
                 vmcore_ctx_last_error(ctx));
    assert_true(vmcore_domain_subscribe(m->d, VMCORE_EVENT_ALL, on_event, m) > 0);
}

static int long_running(enum kind k) { return k == CT_SLEEP || k == CT_INIT_SLEEP || k == CT_VETH || k == VM_LOOP; }

/* Run the loop until @flag is set (fails the test after STEP_WAIT_MS); the watchdog
 * catches a loop that stops turning. */
static void wait_for(vmcore_ctx *ctx, volatile int *flag, const char *what, struct dom *m, int cycle)
{
    step("cycle %d: %s (%s kind %d)", cycle, what, m->backend, m->kind);
    if (!vt_run_until(ctx, flag, STEP_WAIT_MS))
        fail_msg("cycle %d: %s (%s kind %d) did not happen; state %d, output \"%s\"", cycle, what,
                 m->backend, m->kind, (int)vmcore_domain_state(m->d), m->out);
    if (*flag < 0)
        fail_msg("cycle %d: %s (%s kind %d) failed: %s", cycle, what, m->backend, m->kind,
                 vmcore_domain_last_error(m->d));
}

static void wait_output(vmcore_ctx *ctx, struct dom *m, const char *text, int cycle)
{
    step("cycle %d: output \"%s\" (%s kind %d)", cycle, text, m->backend, m->kind);
    int never = 0;
    for (int i = 0; !strstr(m->out, text) && i < STEP_WAIT_MS / 10; i++)
        vt_run_until(ctx, &never, 10);
    if (!strstr(m->out, text))
        fail_msg("cycle %d: %s kind %d never printed \"%s\" (printed \"%s\")", cycle, m->backend,
                 m->kind, text, m->out);
}

static void expect_exit(struct dom *m, int cycle)
{
    const vmcore_exit *x = &m->exit;
    int ok;
    switch (m->kind) {
    case CT_ECHO: ok = x->kind == VMCORE_EXIT_STATUS && x->status == 0 && !strcmp(m->out, "ok\n"); break;
    case CT_CAT: ok = x->kind == VMCORE_EXIT_STATUS && x->status == 0 && !strcmp(m->out, "soak\n"); break;
    case CT_INIT_SLEEP: ok = x->kind == VMCORE_EXIT_SIGNAL && x->signal == SIGTERM; break;
    case CT_SLEEP:
    case CT_VETH:
    case VM_LOOP: ok = x->kind == VMCORE_EXIT_SIGNAL && x->signal == SIGKILL; break;
    case VM_EXIT42: ok = x->kind == VMCORE_EXIT_STATUS && x->status == 42; break;
    case VM_ECHO: ok = x->kind == VMCORE_EXIT_STATUS && x->status == 0 && strstr(m->out, "soak"); break;
    default: ok = 0;
    }
    if (!ok)
        fail_msg("cycle %d: %s kind %d ended with kind %d status %d signal %d, output \"%s\"", cycle,
                 m->backend, m->kind, x->kind, x->status, x->signal, m->out);
}

static int use_ct = 1, use_vm = 1;
static int n_kind[NKINDS], n_exec, n_pause, n_closed_paused, n_concurrent;

/* Which kinds a batch draws from; veth only in slot 0 and 1 (their names and subnets). */
static enum kind pick(int slot)
{
    for (;;) {
        enum kind k = (enum kind)(rand() % NKINDS);
        if (k == CT_VETH && (slot > 1 || rand() % 4))
            continue;
        if ((k < VM_EXIT42 && !use_ct) || (k >= VM_EXIT42 && !use_vm))
            continue;
        n_kind[k]++;
        return k;
    }
}

static void run_batch(vmcore_ctx *ctx, int cycle, int n)
{
    struct dom doms[BATCH_MAX];
    for (int i = 0; i < n; i++)
        dom_create(ctx, &doms[i], pick(i), i);
    /* all started in the same loop turn */
    step("cycle %d: start %d domains", cycle, n);
    n_concurrent += n > 1 ? n : 0;
    for (int i = 0; i < n; i++) {
        int rc = vmcore_domain_start(doms[i].d, vmt_on_done, &doms[i].started);
        if (rc)
            fail_msg("cycle %d: start %s kind %d: %s: %s", cycle, doms[i].backend, doms[i].kind,
                     vmcore_error_name(rc), vmcore_domain_last_error(doms[i].d));
    }
    for (int i = 0; i < n; i++)
        wait_for(ctx, &doms[i].started, "start", &doms[i], cycle + i);
    for (int i = 0; i < n; i++) {
        struct dom *m = &doms[i];
        int c = cycle + i;
        if (m->kind == CT_CAT) {
            assert_int_equal(vmcore_domain_console_write(m->d, "soak\n", 5), 0);
            assert_int_equal(vmcore_domain_console_write(m->d, "", 0), 0);
        } else if (m->kind == VM_ECHO) {
            wait_output(ctx, m, "echo ready", c);
            assert_int_equal(vmcore_domain_console_write(m->d, "soakq", 5), 0);
        }
        if (!long_running(m->kind))
            continue;
        if (m->kind != VM_LOOP && rand() % 3 == 0) {
            static const char *const argv[] = { "sh", "-c", "echo exec; exit 7", NULL };
            step("cycle %d: exec", c);
            assert_int_equal(vmcore_domain_exec(m->d, argv, on_exec, m), 0);
            wait_for(ctx, &m->exec_done, "exec", m, c);
            assert_int_equal(m->exec_exit.kind, VMCORE_EXIT_STATUS);
            assert_int_equal(m->exec_exit.status, 7);
            n_exec++;
        }
        if (rand() % 3 == 0) {
            assert_int_equal(vmcore_domain_pause(m->d, vmt_on_done, &m->paused), 0);
            wait_for(ctx, &m->paused, "pause", m, c);
            n_pause++;
            if (rand() % 4 == 0) {
                n_closed_paused++;
                continue; /* closed while paused */
            }
            assert_int_equal(vmcore_domain_resume(m->d, vmt_on_done, &m->resumed), 0);
            wait_for(ctx, &m->resumed, "resume", m, c);
        }
    }
    /* end: the long-running ones are killed or shut down; closing a paused one kills it */
    for (int i = 0; i < n; i++) {
        struct dom *m = &doms[i];
        if (!long_running(m->kind) || (m->paused && !m->resumed))
            continue;
        if (m->kind == CT_INIT_SLEEP) {
            assert_int_equal(vmcore_domain_shutdown(m->d, 60000, vmt_on_done, &m->shut), 0);
        } else {
            assert_int_equal(vmcore_domain_kill(m->d, vmt_on_done, &m->killed), 0);
        }
    }
    for (int i = 0; i < n; i++) {
        struct dom *m = &doms[i];
        if (m->paused && !m->resumed)
            continue;
        wait_for(ctx, &m->ended, "end", m, cycle + i);
        expect_exit(m, cycle + i);
    }
    step("cycle %d: close %d domains", cycle, n);
    for (int i = 0; i < n; i++)
        vmcore_domain_close(doms[i].d, vmt_on_closed, &doms[i].closed);
    for (int i = 0; i < n; i++)
        wait_for(ctx, &doms[i].closed, "close", &doms[i], cycle + i);
}

static void report(const char *when, const struct counts *c)
{
    print_message("soak %s: fds %d threads %d children %d mounts %d cgroups %d ifaces %d rss %ld KiB\n",
                  when, c->fds, c->threads, c->children, c->mounts, c->cgroups, c->ifaces,
                  c->rss / 1024);
}

static void test_soak(void **state)
{
    (void)state;
    vt_require_root();
    vt_require(rootfs != NULL, "needs busybox-static at /bin/busybox");
    vt_require(have_ns, "needs mount and network namespaces");
    const char *s = getenv("VMCORE_SOAK_CYCLES");
    int cycles = s ? atoi(s) : 1000;
    s = getenv("VMCORE_SOAK_BACKENDS");
    if (s) {
        use_ct = strstr(s, "container") != NULL;
        use_emu = strstr(s, "emu") != NULL;
        use_kvm = strstr(s, "kvm") != NULL;
        use_vm = use_emu || (use_kvm && vt_have_kvm());
        if (!use_ct && !use_vm)
            fail_msg("VMCORE_SOAK_BACKENDS=%s names no usable backend (container, emu, kvm)", s);
    }
    s = getenv("VMCORE_SOAK_SEED");
    unsigned seed = s ? (unsigned)strtoul(s, NULL, 0) : 11u;
    srand(seed);
    print_message("soak: %d cycles, seed %u, backends:%s%s%s%s\n", cycles, seed,
                  use_ct ? " container" : "", use_vm && use_emu ? " emu" : "",
                  use_vm && use_kvm && vt_have_kvm() ? " kvm" : "",
                  use_vm && use_kvm && !vt_have_kvm() ? " (no usable /dev/kvm)" : "");

    step("start of the soak");
    wd_stop = 0;
    assert_int_equal(pthread_create(&wd_thread, NULL, wd_main, NULL), 0);
    vmcore_ctx *ctx;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    struct counts before, after;
    memset(&before, 0, sizeof before);
    int done = 0, batches = 0, measured = 0;
    struct timespec t0, t1;
    while (done < cycles) {
        if (done >= WARMUP && !measured) {
            measured = 1;
            count(&before);
            clock_gettime(CLOCK_MONOTONIC, &t0);
            report("after warm-up", &before);
        }
        int n = 1 + rand() % BATCH_MAX;
        if (n > cycles - done)
            n = cycles - done;
        run_batch(ctx, done, n);
        done += n;
        batches++;
    }
    if (!measured) { /* fewer cycles than the warm-up */
        count(&before);
        clock_gettime(CLOCK_MONOTONIC, &t0);
    }
    count(&after);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    report("at the end", &after);
    print_message("soak: %d domains in %d batches (%d started beside others), %.1f s after the "
                  "warm-up\n", done, batches, n_concurrent,
                  (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    print_message("soak: containers echo %d sleep %d init %d cat %d veth %d, VMs exit42 %d loop %d "
                  "echo %d; %d execs, %d pauses (%d closed paused)\n", n_kind[CT_ECHO],
                  n_kind[CT_SLEEP], n_kind[CT_INIT_SLEEP], n_kind[CT_CAT], n_kind[CT_VETH],
                  n_kind[VM_EXIT42], n_kind[VM_LOOP], n_kind[VM_ECHO], n_exec, n_pause,
                  n_closed_paused);
    pthread_mutex_lock(&wd_lock);
    wd_stop = 1;
    pthread_mutex_unlock(&wd_lock);
    pthread_join(wd_thread, NULL);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
    assert_int_equal(after.fds, before.fds);
    assert_int_equal(after.threads, before.threads);
    assert_int_equal(after.children, before.children);
    assert_int_equal(after.mounts, before.mounts);
    assert_int_equal(after.cgroups, 0);
    assert_int_equal(after.ifaces, before.ifaces);
#ifdef __SANITIZE_ADDRESS__
    /* ASan's quarantine keeps freed memory (up to 256 MiB): RSS says nothing there, and
     * LeakSanitizer checks for leaks at exit instead. */
    print_message("soak: RSS not checked under AddressSanitizer\n");
#else
    if (after.rss - before.rss > RSS_GROWTH_MAX)
        fail_msg("RSS grew by %ld KiB over the soak", (after.rss - before.rss) / 1024);
#endif
}

static int setup(void **state)
{
    (void)state;
    rootfs = vt_rootfs_make();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    vt_rootfs_free(rootfs);
    rootfs = NULL;
    return 0;
}

int main(void)
{
    /* Our own mount and network namespaces, before any thread exists: the counts must not
     * see other programs on this machine. */
    if (geteuid() == 0 && unshare(CLONE_NEWNS | CLONE_NEWNET) == 0 &&
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
        have_ns = 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soak),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
