/* Container test runs shared by test_container.c and test_container_escape.c: one
 * domain on a busybox-static rootfs, with what it printed, its exit and the checks that
 * nothing (cgroup, mount, child, fd) is left after it closes. */
#ifndef VT_CTRUN_H
#define VT_CTRUN_H

#include "vt.h"

extern char *rootfs; /* made by ctrun_setup(); NULL without busybox-static */

/* --- a running domain and what it said --------------------------------------------- */
struct run {
    vmcore_ctx *ctx;
    vmcore_domain *d;
    char out[65536], err[65536], con[65536];
    size_t nout, nerr, ncon;
    int exited, stopped, closed, started, start_status;
    vmcore_exit exit;
    int exec_done, exec_status;
    vmcore_exit exec_exit;
    int fds_before;
};

#define BASE "\"name\":\"ct\",\"backend\":\"container\",\"rootfs\":\"%s\""

/* Create from @fmt (a printf format; "%s" first is the rootfs). Returns the create status. */
int run_new(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Start and wait for the start's completion (which must succeed). */
void run_start(struct run *r);
/* vmcore_domain_exec @argv and wait for its completion, which must succeed (status 0;
 * the process's own exit is in r->exec_exit). */
void run_exec(struct run *r, const char *const *argv);
/* Wait for the end (exit and stopped state). */
void run_wait(struct run *r);
/* Close, free the context and assert nothing is left behind. */
void run_close(struct run *r);
/* Creating from @json must fail with @code and a message containing @needle; then
 * run_close's checks (nothing left behind). */
void expect_create_error(const char *json, int code, const char *needle);
/* Run a shell command (sh -c) to its end with @extra config keys ("" or "k":v,). */
void sh(struct run *r, const char *extra, const char *cmd);
/* vmcore_domain_exec completion: fills r->exec_*. */
void on_exec(vmcore_domain *d, int status, const vmcore_exit *ex, void *arg);
/* The event callback run_new() subscribes (@arg is the struct run), and a close
 * completion that sets r->closed. */
void on_event(const vmcore_event *ev, void *arg);
void on_closed(vmcore_domain *d, void *arg);
/* Groups named vmcore-<our pid>-* in any hierarchy; mounts of the test rootfs. */
int count_our_cgroups(void);
int count_rootfs_mounts(void);
/* The host's first real disk (not loop/ram/zram) as "MAJ MIN" in @dev, or "". */
void host_disk(char *dev, size_t len);
/* cmocka group setup/teardown: make and remove the rootfs. */
int ctrun_setup(void **state);
int ctrun_teardown(void **state);

#endif
