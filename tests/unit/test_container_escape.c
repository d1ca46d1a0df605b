/* Escape attempts from inside containers, run as root against the default, user-namespace
 * and host-network configurations; each asserts the outcome runc's defaults give (issue 11):
 *
 *  - a process exec'd into the container never shows the host's descriptors or image to
 *    a container root polling /proc/<pid>/fd and /proc/<pid>/exe (tests/support/ct_peek);
 *  - with process.init, PID 1 holds no host descriptor (not even one above 1024), its
 *    exe is not the host binary and /proc/1/mem cannot be opened;
 *  - no host cgroupfs is writable from inside, not even with a user namespace and the
 *    host's network (where sysfs cannot be mounted);
 *  - mount, mknod + open of a host disk, /proc/sysrq-trigger and /proc/sys are refused. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ctrun.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REQUIRE()                                                                          \
    do {                                                                                   \
        vt_require_root();                                                                 \
        vt_require(rootfs != NULL, "needs busybox-static at /bin/busybox");                \
    } while (0)

/* The three configurations every attempt runs against ("extra" keys of sh()/run_new()). */
static const struct { const char *name, *extra; } configs[] = {
    { "default", "" },
    { "userns", "\"userns\":{\"enabled\":true}," },
    { "userns+host-net", "\"userns\":{\"enabled\":true},\"network\":{\"mode\":\"host\"}," },
    { "host-net", "\"network\":{\"mode\":\"host\"}," },
};
#define NCONFIGS (sizeof configs / sizeof configs[0])

/* A host secret the container must never reach: a 0600 file in a "vt-secret-*" folder,
 * held open through a folder fd, a close-on-exec fd and a plain fd, both above 1024. */
struct secret {
    char dir[64], file[96];
    int dirfd, cloexec_fd, plain_fd;
};

static void secret_open(struct secret *s)
{
    snprintf(s->dir, sizeof s->dir, "/tmp/vt-secret-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->file, sizeof s->file, "%s/key", s->dir);
    int fd = open(s->file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "TOPSECRET\n", 10), 10);
    close(fd);
    s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    fd = open(s->file, O_RDONLY | O_CLOEXEC);
    assert_true(s->dirfd >= 0 && fd >= 0);
    s->cloexec_fd = fcntl(fd, F_DUPFD_CLOEXEC, 1500);
    s->plain_fd = fcntl(fd, F_DUPFD, 1600);
    close(fd);
    assert_true(s->cloexec_fd >= 1500 && s->plain_fd >= 1600);
}

static void secret_close(struct secret *s)
{
    close(s->dirfd);
    close(s->cloexec_fd);
    close(s->plain_fd);
    unlink(s->file);
    rmdir(s->dir);
}

/* Copy the static ct_peek into the rootfs as /bin/ct_peek. */
static void install_peek(void)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "install -m 0755 '%s' '%s/bin/ct_peek'", VT_CT_PEEK, rootfs);
    assert_int_equal(system(cmd), 0);
}

static void assert_no_leak(const struct run *r, const char *config)
{
    if (strstr(r->out, "LEAK") || !strstr(r->out, "done "))
        fail_msg("%s: out [%s] err [%s]", config, r->out, r->err);
}

/* Create and start a container of configs[@c] running @process (a JSON object). */
static void start_config(struct run *r, size_t c, const char *process)
{
    if (run_new(r, "{" BASE ",%s\"process\":%s}", rootfs, configs[c].extra, process))
        fail_msg("%s: create: %s", configs[c].name, vmcore_ctx_last_error(r->ctx));
    run_start(r);
}

static void test_exec_shows_no_host_fd_or_image(void **state)
{
    (void)state;
    REQUIRE();
    install_peek();
    struct secret s;
    secret_open(&s);
    for (size_t c = 0; c < NCONFIGS; c++) {
        struct run r;
        start_config(&r, c, "{\"args\":[\"/bin/ct_peek\",\"watch\",\"/dev/shm/stop\"]}");
        /* Every exec is a window in which the child exists in the container's pid
         * namespace before it runs the program: 150 of them. */
        for (int i = 0; i < 150; i++) {
            const char *argv[] = { "/bin/true", NULL };
            run_exec(&r, argv);
        }
        const char *stop[] = { "/bin/touch", "/dev/shm/stop", NULL };
        run_exec(&r, stop);
        run_wait(&r);
        assert_no_leak(&r, configs[c].name);
        run_close(&r);
    }
    secret_close(&s);
}

static void test_init_pid1_holds_nothing_of_the_host(void **state)
{
    (void)state;
    REQUIRE();
    install_peek();
    struct secret s;
    secret_open(&s);
    for (size_t c = 0; c < NCONFIGS; c++) {
        struct run r;
        start_config(&r, c, "{\"init\":true,\"args\":[\"/bin/ct_peek\",\"pid1\"]}");
        run_wait(&r);
        assert_int_equal(r.exit.kind, VMCORE_EXIT_STATUS);
        assert_int_equal(r.exit.status, 0);
        assert_no_leak(&r, configs[c].name);
        run_close(&r);
    }
    /* The init is the built-in program, not the host's binary, and still does its job:
     * the workload's status comes back, and SIGTERM reaches a shell that is not PID 1. */
    struct run r;
    assert_int_equal(run_new(&r, "{" BASE ",\"process\":{\"init\":true,\"args\":[\"/bin/sh\",\"-c\","
                                 "\"cat /proc/1/comm; exit 3\"]}}", rootfs), 0);
    run_start(&r);
    run_wait(&r);
    assert_int_equal(r.exit.kind, VMCORE_EXIT_STATUS);
    assert_int_equal(r.exit.status, 3);
    assert_string_equal(r.out, "init\n");
    run_close(&r);
    secret_close(&s);
}

static void test_no_writable_host_cgroupfs(void **state)
{
    (void)state;
    REQUIRE();
    for (size_t c = 0; c < NCONFIGS; c++) {
        struct run r;
        /* Whatever /sys/fs/cgroup shows (nothing, or a read-only view): no folder can be
         * made and no process moved, at the top or one level down (the v1 controllers). */
        sh(&r, configs[c].extra,
           "for d in /sys/fs/cgroup /sys/fs/cgroup/*; do"
           "  [ -d \"$d\" ] || continue;"
           "  mkdir \"$d/vt-evil\" 2>/dev/null && { echo LEAK mkdir $d; rmdir \"$d/vt-evil\"; };"
           "  [ -e \"$d/cgroup.procs\" ] && echo $$ > \"$d/cgroup.procs\" 2>/dev/null && echo LEAK procs $d;"
           "done;"
           "mount -t cgroup2 none /mnt 2>/dev/null && echo LEAK mount cgroup2;"
           "mount -t cgroup -o pids none /mnt 2>/dev/null && echo LEAK mount cgroup;"
           "echo done 1");
        if (r.exit.kind != VMCORE_EXIT_STATUS || r.exit.status != 0)
            fail_msg("%s: status %d out [%s] err [%s]", configs[c].name, r.exit.status, r.out, r.err);
        assert_no_leak(&r, configs[c].name);
        run_close(&r);
    }
}

static void test_mount_mknod_and_proc_writes_refused(void **state)
{
    (void)state;
    REQUIRE();
    char dev[32];
    host_disk(dev, sizeof dev);
    for (size_t c = 0; c < NCONFIGS; c++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "mount -t tmpfs none /mnt 2>/dev/null && echo LEAK mount;"
                 "mount --bind /bin /mnt 2>/dev/null && echo LEAK bind;"
                 "mount -o remount,rw /sys 2>/dev/null && echo LEAK remount-sys;"
                 "echo h > /proc/sysrq-trigger 2>/dev/null && echo LEAK sysrq;"
                 "echo 1 > /proc/sys/kernel/panic 2>/dev/null && echo LEAK sysctl;"
                 "%s%s%s"
                 "echo done 1",
                 dev[0] ? "mknod /tmp/disk b " : "", dev,
                 dev[0] ? " 2>/dev/null; head -c1 /tmp/disk >/dev/null 2>&1 && echo LEAK disk; rm -f /tmp/disk;" : "");
        struct run r;
        sh(&r, configs[c].extra, cmd);
        assert_no_leak(&r, configs[c].name);
        run_close(&r);
    }
}

/* Issue 11 item 4: a start while another thread of the host process is being created hung
 * the clone3 child in glibc's setxid broadcast (setgroups/setresgid/setresuid wait for
 * every thread of the parent, which do not exist in the child). A thread that keeps
 * creating threads, and 100 container starts that change ids (process.uid/gid). */
static atomic_int churn_stop;

static void *churn_nop(void *arg) { return arg; }

static void *churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&churn_stop)) {
        pthread_t t;
        if (pthread_create(&t, NULL, churn_nop, NULL) == 0)
            pthread_join(t, NULL);
    }
    return NULL;
}

static void test_start_while_threads_are_created(void **state)
{
    (void)state;
    REQUIRE();
    pthread_t t;
    atomic_store(&churn_stop, 0);
    assert_int_equal(pthread_create(&t, NULL, churn, NULL), 0);
    for (int i = 0; i < 100; i++) {
        struct run r;
        /* a hang here is the bug: ctest's timeout ends it */
        assert_int_equal(run_new(&r, "{" BASE ",\"process\":{\"uid\":1000,\"gid\":1000,"
                                     "\"init\":%s,\"args\":[\"/bin/sh\",\"-c\",\"exit 4\"]}}",
                                 rootfs, i % 2 ? "true" : "false"), 0);
        run_start(&r);
        run_wait(&r);
        assert_int_equal(r.exit.status, 4);
        run_close(&r);
    }
    atomic_store(&churn_stop, 1);
    pthread_join(t, NULL);
}

/* userns without maps, as root: container root is host id 1000000, not host root. */
static void test_userns_default_map_is_not_host_root(void **state)
{
    (void)state;
    REQUIRE();
    struct run r;
    sh(&r, "\"userns\":{\"enabled\":true},", "cat /proc/self/uid_map /proc/self/gid_map | tr -s ' '; echo done 1");
    assert_int_equal(r.exit.status, 0);
    assert_string_equal(r.out, " 0 1000000 65536\n 0 1000000 65536\ndone 1\n");
    run_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_shows_no_host_fd_or_image),
        cmocka_unit_test(test_init_pid1_holds_nothing_of_the_host),
        cmocka_unit_test(test_no_writable_host_cgroupfs),
        cmocka_unit_test(test_mount_mknod_and_proc_writes_refused),
        cmocka_unit_test(test_start_while_threads_are_created),
        cmocka_unit_test(test_userns_default_map_is_not_host_root),
    };
    return cmocka_run_group_tests(tests, ctrun_setup, ctrun_teardown);
}
