/* cgroup.c on its own: the v2 (unified) code path — group creation, CLONE_INTO_CGROUP,
 * freeze/thaw, stats, kill-all and removal — on whatever unified hierarchy this host
 * has (all of /sys/fs/cgroup, or the hybrid layout's /sys/fs/cgroup/unified), plus the
 * layout detection, and the watcher that cleans up after a dead creator (v2 and v1).
 * The rest of the v1 path is exercised end to end by test_container. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vt.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/container/ct.h"

static const char *unified_root(void)
{
    static const char *const c[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
    for (int i = 0; i < 2; i++) {
        struct statfs s;
        if (statfs(c[i], &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC)
            return c[i];
    }
    return NULL;
}

static void test_layout_detected(void **state)
{
    (void)state;
    const char *l = cgroup_layout();
    vt_require(l != NULL, "needs a cgroup filesystem");
    assert_true(!strcmp(l, "v2") || !strcmp(l, "v1") || !strcmp(l, "hybrid"));
}

static void nap_ms(int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void test_v2_group_lifecycle(void **state)
{
    (void)state;
    vt_require_root();
    const char *root = unified_root();
    vt_require(root != NULL, "needs a cgroup2 mount");
    struct vmcore_config cfg;
    memset(&cfg, 0, sizeof cfg);
    struct ct_cgroup cg;
    struct vmcore_err err;
    memset(&err, 0, sizeof err);
    char name[64];
    snprintf(name, sizeof name, "vmcore-%d-v2test", (int)getpid());
    int rc = cgroup_create_at(&cg, root, true, name, &cfg, &err);
    if (rc)
        fail_msg("%s", err.msg);
    struct stat st;
    assert_int_equal(stat(cg.path[0], &st), 0);
    assert_true(cg.v2_fd >= 0);

    volatile long *counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(counter != MAP_FAILED);
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_INTO_CGROUP;
    ca.exit_signal = SIGCHLD;
    ca.cgroup = (uint64_t)cg.v2_fd;
    long pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0) {
        for (;;)
            (*counter)++;
    }
    assert_true(pid > 0);
    /* it was born in the group */
    char procs[256], line[64];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", cg.path[0]);
    FILE *f = fopen(procs, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_int_equal(atol(line), pid);

    while (*counter < 1000)
        nap_ms(1);
    assert_int_equal(cgroup_freeze(&cg, true, &err), 0);
    long v1 = *counter;
    nap_ms(200);
    assert_int_equal(*counter, v1);
    vmcore_stats s = VMCORE_STATS_INIT;
    assert_int_equal(cgroup_stats(&cg, &s, &err), 0);
    assert_true(s.cpu_time_ns > 0);
    assert_int_equal(cgroup_freeze(&cg, false, &err), 0);
    while (*counter == v1)
        nap_ms(1);

    assert_true(cgroup_kill_all(&cg) >= 1);
    int wst;
    assert_int_equal(waitpid((pid_t)pid, &wst, 0), pid);
    assert_true(WIFSIGNALED(wst));
    assert_int_equal(WTERMSIG(wst), SIGKILL);
    char path[4096];
    snprintf(path, sizeof path, "%s", cg.path[0]);
    cgroup_destroy(&cg);
    assert_int_equal(stat(path, &st), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(cg.v2_fd, -1);
    cgroup_destroy(&cg); /* idempotent */
    munmap((void *)counter, 4096);
}

static void test_v2_limit_without_controller_is_clear(void **state)
{
    (void)state;
    vt_require_root();
    const char *root = unified_root();
    vt_require(root != NULL, "needs a cgroup2 mount");
    char ctrls[512] = "";
    char p[256];
    snprintf(p, sizeof p, "%s/cgroup.controllers", root);
    FILE *f = fopen(p, "r");
    if (f) {
        if (!fgets(ctrls, sizeof ctrls, f))
            ctrls[0] = 0;
        fclose(f);
    }
    struct vmcore_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.limits.pids = 16;
    struct ct_cgroup cg;
    struct vmcore_err err;
    memset(&err, 0, sizeof err);
    char name[64];
    snprintf(name, sizeof name, "vmcore-%d-v2lim", (int)getpid());
    int rc = cgroup_create_at(&cg, root, true, name, &cfg, &err);
    snprintf(p, sizeof p, "%s/%s", root, name);
    if (strstr(ctrls, "pids")) {
        /* a real v2 host: the limit lands in pids.max */
        if (rc)
            fail_msg("%s", err.msg);
        char v[32] = "";
        char file[4200];
        snprintf(file, sizeof file, "%s/pids.max", cg.path[0]);
        f = fopen(file, "r");
        assert_non_null(f);
        assert_non_null(fgets(v, sizeof v, f));
        fclose(f);
        assert_string_equal(v, "16\n");
        cgroup_destroy(&cg);
    } else {
        /* the hybrid layout's empty v2 mount: a clear error naming the field, no group left */
        assert_int_not_equal(rc, 0);
        assert_non_null(strstr(err.msg, "limits.pids"));
    }
    struct stat st;
    assert_int_equal(stat(p, &st), -1);
}

/* Open @path with @flags in a child born in @cg; returns the child's errno (0: opened). */
static int open_in_group(struct ct_cgroup *cg, const char *path, int flags)
{
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_INTO_CGROUP;
    ca.exit_signal = SIGCHLD;
    ca.cgroup = (uint64_t)cg->v2_fd;
    long pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0) {
        int fd = open(path, flags | O_CLOEXEC);
        _exit(fd >= 0 ? 0 : errno);
    }
    assert_true(pid > 0);
    int wst;
    assert_int_equal(waitpid((pid_t)pid, &wst, 0), pid);
    assert_true(WIFEXITED(wst));
    return WEXITSTATUS(wst);
}

/* v2 has no devices.allow: a BPF program attached to the group enforces Docker's list.
 * Nodes can be made (mknod) but only the harmless ones opened. */
static void test_v2_device_filter(void **state)
{
    (void)state;
    vt_require_root();
    const char *root = unified_root();
    vt_require(root != NULL, "needs a cgroup2 mount");
    struct vmcore_config cfg;
    memset(&cfg, 0, sizeof cfg);
    struct ct_cgroup cg;
    struct vmcore_err err;
    memset(&err, 0, sizeof err);
    char name[64];
    snprintf(name, sizeof name, "vmcore-%d-v2dev", (int)getpid());
    int rc = cgroup_create_at(&cg, root, true, name, &cfg, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_true(cgroup_has_device_policy(&cg));
    char dir[] = "/tmp/vt-cg-dev-XXXXXX", p[128];
    assert_non_null(mkdtemp(dir));
    static const struct { char type; unsigned maj, min; int flags; int want; } cases[] = {
        { 'c', 1, 3, O_RDWR, 0 },          /* null */
        { 'c', 1, 5, O_RDONLY, 0 },        /* zero */
        { 'c', 1, 9, O_RDONLY, 0 },        /* urandom */
        { 'c', 5, 0, O_RDWR | O_NOCTTY | O_NONBLOCK, ENXIO }, /* tty: allowed, no ctty here */
        { 'c', 1, 1, O_RDONLY, EPERM },    /* mem */
        { 'c', 1, 11, O_WRONLY, EPERM },   /* kmsg */
        { 'c', 10, 237, O_RDWR, EPERM },   /* loop-control */
        { 'b', 7, 0, O_RDONLY, EPERM },    /* loop0 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(p, sizeof p, "%s/n%zu", dir, i);
        /* made by the host (outside the group), opened inside */
        assert_int_equal(mknod(p, (cases[i].type == 'b' ? S_IFBLK : S_IFCHR) | 0600,
                               makedev(cases[i].maj, cases[i].min)), 0);
        int got = open_in_group(&cg, p, cases[i].flags);
        if (got != cases[i].want && !(cases[i].want == 0 && got == ENXIO))
            fail_msg("%c %u:%u: errno %d, expected %d", cases[i].type, cases[i].maj, cases[i].min,
                     got, cases[i].want);
        unlink(p);
    }
    /* mknod itself ("c *:* m", "b *:* m") is allowed inside */
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_INTO_CGROUP;
    ca.exit_signal = SIGCHLD;
    ca.cgroup = (uint64_t)cg.v2_fd;
    snprintf(p, sizeof p, "%s/made", dir);
    long pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0)
        _exit(mknod(p, S_IFBLK | 0600, makedev(7, 0)) == 0 ? 0 : errno);
    int wst;
    assert_int_equal(waitpid((pid_t)pid, &wst, 0), pid);
    assert_true(WIFEXITED(wst));
    assert_int_equal(WEXITSTATUS(wst), 0);
    unlink(p);
    rmdir(dir);
    char path[4096];
    snprintf(path, sizeof path, "%s", cg.path[0]);
    cgroup_destroy(&cg);
    struct stat st;
    assert_int_equal(stat(path, &st), -1);
}

/* The watcher: a process makes a group, puts a process in it, freezes it and dies
 * without cgroup_destroy(). That process is no container's (no PR_SET_PDEATHSIG), so only
 * the watcher can end it: it must be killed, and the group's folders removed. */
struct watch_report {
    int ok, pid, frozen;
    struct ct_cgroup cg;
    char msg[512];
};

static void watcher_cleans_up(const char *root, bool v2)
{
    struct watch_report *rep = mmap(NULL, sizeof *rep, PROT_READ | PROT_WRITE,
                                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(rep != MAP_FAILED);
    memset(rep, 0, sizeof *rep);
    int sync[2];
    assert_int_equal(pipe2(sync, O_CLOEXEC), 0);
    pid_t host = fork();
    assert_true(host >= 0);
    if (host == 0) {
        close(sync[0]);
        struct vmcore_config cfg;
        memset(&cfg, 0, sizeof cfg);
        struct vmcore_err err;
        memset(&err, 0, sizeof err);
        char name[64];
        snprintf(name, sizeof name, "vmcore-%d-watch", (int)getpid());
        if (cgroup_create_at(&rep->cg, root, v2, name, &cfg, &err)) {
            snprintf(rep->msg, sizeof rep->msg, "%s", err.msg);
            _exit(1);
        }
        pid_t spin = fork();
        if (spin == 0)
            for (;;)
                ;
        rep->pid = spin;
        if (cgroup_attach(&rep->cg, spin, &err) || cgroup_freeze(&rep->cg, true, &err)) {
            snprintf(rep->msg, sizeof rep->msg, "%s", err.msg);
            kill(spin, SIGKILL);
            _exit(1);
        }
        rep->ok = 1;
        if (write(sync[1], "f", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(sync[1]);
    char c;
    ssize_t n = read(sync[0], &c, 1);
    close(sync[0]);
    kill(host, SIGKILL);
    int st;
    assert_int_equal(waitpid(host, &st, 0), host);
    if (n != 1 || !rep->ok)
        fail_msg("the host child could not set up a frozen group: %s", rep->msg);
    struct ct_cgroup *cg = &rep->cg;
    int left = 1;
    for (int i = 0; i < 1000 && left; i++) { /* a hang guard, not a speed expectation */
        nap_ms(10);
        left = 0;
        for (int j = 0; j < CG_NCTRL; j++)
            left += cg->path[j][0] && access(cg->path[j], F_OK) == 0;
        char p[64], buf[512] = "";
        snprintf(p, sizeof p, "/proc/%d/stat", rep->pid);
        FILE *f = fopen(p, "r");
        if (f) {
            size_t len = fread(buf, 1, sizeof buf - 1, f);
            buf[len] = 0;
            fclose(f);
            const char *e = strrchr(buf, ')');
            left += e && e[2] != 'Z' && e[2] != 'X';
        }
    }
    if (left) {
        /* leave nothing frozen behind, whatever the outcome */
        kill(rep->pid, SIGKILL);
        cgroup_destroy(cg);
        fail_msg("%d of the group's folders and process still there after its creator died", left);
    }
    munmap(rep, sizeof *rep);
}

static void test_v2_watcher_kills_and_removes(void **state)
{
    (void)state;
    vt_require_root();
    const char *root = unified_root();
    vt_require(root != NULL, "needs a cgroup2 mount");
    watcher_cleans_up(root, true);
}

static void test_v1_watcher_kills_and_removes(void **state)
{
    (void)state;
    vt_require_root();
    struct statfs s;
    if (statfs("/sys/fs/cgroup/freezer", &s) != 0 || s.f_type != CGROUP_SUPER_MAGIC)
        skip(); /* a pure v2 host has no v1 hierarchy at all: nothing to test */
    watcher_cleans_up("/sys/fs/cgroup", false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_detected),
        cmocka_unit_test(test_v2_group_lifecycle),
        cmocka_unit_test(test_v2_limit_without_controller_is_clear),
        cmocka_unit_test(test_v2_device_filter),
        cmocka_unit_test(test_v2_watcher_kills_and_removes),
        cmocka_unit_test(test_v1_watcher_kills_and_removes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
