/* clone3 + pidfd: start a process inside new namespaces (or inside a running container's,
 * for exec) and do all the setup in the child between clone3 and execve, so a start costs
 * one clone and one exec, no helper binaries on disk.
 *
 * Handshake: the child blocks on a sync pipe until the parent has put it into its cgroups,
 * written its id maps and made its veth; it then reports failure through a close-on-exec
 * error pipe (EOF there means execve succeeded).
 *
 * What the container may see of the host (issue 11): the child is a fork of the host
 * process, so before anything else it closes every descriptor it was not given, and it is
 * non-dumpable (its /proc files need CAP_SYS_PTRACE, which the container does not have)
 * until execve. A new container's child is alone in its new pid namespace until then. An
 * exec'd process must appear in the container's pid namespace, where container root may be
 * watching /proc: it is cloned in the host's namespace, closes and hides first, and only
 * then joins the container and clones the real process into it (CLONE_PARENT: a child of
 * ours, whose pid the middle one reports before it exits), so nothing of the host is there
 * to see when it appears. PID 1 with process.init is not a fork of the host either: the
 * fork execs the built-in init (init/ct_init.c) from a sealed memfd.
 *
 * After clone3 in a multi-threaded process only async-signal-safe calls are made: raw
 * system calls for the credential changes (glibc's setuid family would wait for the other
 * threads of the parent, which do not exist here) and for the forks (no atfork handlers,
 * no malloc locks). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <linux/close_range.h>
#include <linux/sched.h>
#include <linux/seccomp.h>

#include "ct.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int ct_child_fail(struct ct_child_err *e, int code, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->code = code;
    e->errnum = errnum;
    return -1;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void ct_keep_only_fds(const int *keep, int n)
{
    int k[16], m = 0;
    for (int i = 0; i < n && m < 16; i++) {
        if (keep[i] < 0)
            continue;
        int j = m++;
        while (j > 0 && k[j - 1] > keep[i]) {
            k[j] = k[j - 1];
            j--;
        }
        k[j] = keep[i];
    }
    unsigned next = 0;
    for (int i = 0; i < m; i++) {
        if ((unsigned)k[i] > next)
            syscall(SYS_close_range, next, (unsigned)k[i] - 1, 0u);
        next = (unsigned)k[i] + 1;
    }
    syscall(SYS_close_range, next, ~0u, 0u);
}

/* fork() without glibc: no atfork handlers, no locks (see the top of this file).
 * @flags: CLONE_* and the exit signal. Returns like fork(). */
static pid_t raw_fork(unsigned long flags)
{
    return (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, 0UL);
}

void ct_set_sigmask(int how, bool all)
{
    uint64_t set = all ? ~0ull : 0;
    syscall(SYS_rt_sigprocmask, how, &set, NULL, sizeof set);
}

/* Decimal @v into @buf (at least 11 bytes). */
static void fmt_uint(char *buf, unsigned v)
{
    char tmp[10];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) && n < 10);
    int j = 0;
    while (n)
        buf[j++] = tmp[--n];
    buf[j] = 0;
}

/* process.init: this process (PID 1) forks the workload, which returns to go on with the
 * setup once the init has exec'd; PID 1 itself becomes the built-in init (@s->init_image_fd)
 * with stdio on /dev/null, the report pipe as fd 3 and nothing else. Returns 0 in the
 * workload, -1 (with @e) on failure; the init never returns. */
static int become_init(const struct ct_spawn *s, int err_wr, struct ct_child_err *e)
{
    int go[2];
    if (pipe2(go, O_CLOEXEC) < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "pipe");
    ct_set_sigmask(SIG_BLOCK, true); /* the init waits for signals; none may be lost */
    pid_t pid = raw_fork(SIGCHLD);
    if (pid < 0) {
        int errnum = errno;
        ct_set_sigmask(SIG_SETMASK, false);
        close(go[0]);
        close(go[1]);
        return ct_child_fail(e, VMCORE_ESYS, errnum, "fork the workload under init");
    }
    if (pid == 0) {
        /* The workload: wait until the init has exec'd and made itself non-dumpable (it
         * closes fd 5 then: EOF), so that a failure to exec it can still fail the start
         * before the workload runs, and the workload never sees a dumpable PID 1 (between
         * execve and the init's prctl a container root could open /proc/1/mem). */
        char c;
        close(go[1]);
        while (read(go[0], &c, 1) < 0 && errno == EINTR)
            ;
        close(go[0]);
        return 0;
    }
    close(go[0]);
    /* The init keeps no copy of stdio or the error pipe: their EOFs must mean the
     * workload exec'd or ended. */
    for (int fd = 0; fd < 3; fd++) {
        int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (nul >= 0) {
            dup2(nul, fd);
            close(nul);
        }
    }
    /* Move what the init needs above the slots it is dup'd to, then down (the copies above
     * go with everything else): 3 = the report pipe (kept), 4 = the image, 5 = go (kept:
     * the init closes it once non-dumpable), 6 = the error pipe (close-on-exec). */
    int hi[4] = { s->init_status_fd, s->init_image_fd, go[1], err_wr };
    for (int i = 0; i < 4; i++)
        if (hi[i] >= 0)
            hi[i] = fcntl(hi[i], F_DUPFD_CLOEXEC, 16);
    for (int i = 0; i < 4; i++)
        if (hi[i] >= 0)
            dup3(hi[i], 3 + i, i == 0 || i == 2 ? 0 : O_CLOEXEC);
    ct_keep_only_fds((const int[]){ 0, 1, 2, hi[0] >= 0 ? 3 : -1, 4, 5, hi[3] >= 0 ? 6 : -1 }, 7);
    char pidbuf[12];
    fmt_uint(pidbuf, (unsigned)pid);
    char *const argv[] = { "init", pidbuf, hi[0] >= 0 ? "3" : "-", "5", NULL };
    char *const envp[] = { NULL };
    syscall(SYS_execveat, 4, "", argv, envp, AT_EMPTY_PATH);
    struct ct_child_err fe;
    memset(&fe, 0, sizeof fe);
    ct_child_fail(&fe, VMCORE_ESYS, errno, "process.init: exec the built-in init from its memfd "
                  "(refused by vm.memfd_noexec or a security module?)");
    write_all(6, &fe, sizeof fe);
    kill(pid, SIGKILL);
    _exit(127);
}

/* exec: in the middle process (host pid namespace, nothing of the host left), join the
 * container's namespaces and clone the process that runs there as a child of our parent.
 * Returns 0 in that process; the middle one reports its pid and exits. */
static int join_container(const struct ct_spawn *s, int err_wr, struct ct_child_err *e)
{
    int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP |
                (s->new_net ? CLONE_NEWNET : 0) | (s->userns ? CLONE_NEWUSER : 0);
    if (setns(s->join_pidfd, flags) < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "setns into the container");
    /* exit signal 0 (CLONE_PARENT takes ours): no SIGCHLD reaches the application */
    pid_t pid = raw_fork(CLONE_PARENT);
    if (pid < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "clone into the container");
    if (pid == 0)
        return 0;
    struct ct_child_err msg;
    memset(&msg, 0, sizeof msg);
    msg.pid = pid;
    write_all(err_wr, &msg, sizeof msg);
    _exit(0);
}

/* Everything between clone3 and execve. Returns only on failure. */
static void child_setup(const struct ct_spawn *s, int sync_rd, int err_wr, struct ct_child_err *e)
{
    const struct vmcore_config *cfg = s->cfg;
    bool userns = s->userns;
    bool exec = s->join_pidfd >= 0;
    /* A fork of the host process: hide it and drop every descriptor it was not given
     * before anything else. A new container's child may stay dumpable until the parent
     * has written its id maps (rootless, it could not open them otherwise); nothing but
     * the host can see it until then. */
    if (exec)
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    int keep[] = { sync_rd, err_wr, s->stdio[0], s->stdio[1], s->stdio[2], s->join_pidfd,
                   s->init_status_fd, s->init_image_fd, s->tap_sock,
                   s->hold_fd };
    ct_keep_only_fds(keep, (int)(sizeof keep / sizeof keep[0]));
    char c;
    /* Wait for the parent: cgroups, id maps, veth. EOF means it gave up. */
    ssize_t n;
    do
        n = read(sync_rd, &c, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) {
        ct_child_fail(e, VMCORE_ESYS, 0, "parent aborted the start");
        return;
    }
    close(sync_rd);
    if (!exec)
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    if (userns && !exec &&
        (syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setresuid, 0, 0, 0) < 0)) {
        /* Until now we ran with the host's ids, which the new namespace cannot map:
         * files we create (in /dev) would fail with EOVERFLOW. */
        ct_child_fail(e, VMCORE_ECONFIG, errno, "userns.uid_map/gid_map: id 0 inside is not mapped");
        return;
    }
    if (!exec) {
        /* The cgroup namespace is rooted at the group the parent just moved us into. */
        if (unshare(CLONE_NEWCGROUP) < 0) {
            ct_child_fail(e, VMCORE_ESYS, errno, "unshare(CLONE_NEWCGROUP)");
            return;
        }
        /* before pivot_root: the tap comes from the host's /dev/net/tun */
        if (s->tap_sock >= 0 && net_child_tap(s->tap_sock, "eth0", e) < 0)
            return;
        if (rootfs_setup(cfg, userns, s->pty_slave_path, e) < 0)
            return;
        const char *host = cfg->hostname ? cfg->hostname : cfg->name;
        if (host && sethostname(host, strlen(host)) < 0) {
            ct_child_fail(e, VMCORE_ECONFIG, errno, "hostname: sethostname(%s)", host);
            return;
        }
        if (s->new_net && net_child_setup(s->veth_addr ? "eth0" : NULL, s->veth_addr, s->gateway,
                                         e) < 0)
            return;
    } else {
        if (join_container(s, err_wr, e) < 0)
            return;
        if (chdir("/") < 0) {
            ct_child_fail(e, VMCORE_ESYS, errno, "chdir /");
            return;
        }
    }

    /* stdio: the parent's pipes or the pty slave. */
    for (int i = 0; i < 3; i++) {
        if (s->stdio[i] == i) {
            fcntl(i, F_SETFD, 0);
        } else if (dup2(s->stdio[i], i) < 0) {
            ct_child_fail(e, VMCORE_ESYS, errno, "dup2 stdio %d", i);
            return;
        }
    }
    /* What is left above stdio (the pipes to the parent, the init's) ends at execve. */
    syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
    if (s->pty_slave >= 0) {
        if (setsid() < 0 || ioctl(0, TIOCSCTTY, 0) < 0) {
            ct_child_fail(e, VMCORE_ESYS, errno, "make the pty the controlling terminal");
            return;
        }
    }
    const char *cwd = cfg->process.cwd ? cfg->process.cwd : "/";
    if (!exec && chdir(cwd) < 0) {
        ct_child_fail(e, VMCORE_ECONFIG, errno, "process.cwd: %s", cwd);
        return;
    }
    if (caps_apply(s->caps, cfg->process.uid, cfg->process.gid, userns, e) < 0)
        return;
    if (cfg->process.has_umask && !exec)
        umask((mode_t)cfg->process.umask);
    /* The container lives only as long as the thread that started it (bwrap's
     * --die-with-parent): if the host process crashes, nothing keeps running unwatched.
     * Set after the credential changes above, which clear it. SIGKILL from outside the
     * pid namespace reaches even its init. */
    if (!s->detached && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
        ct_child_fail(e, VMCORE_ESYS, errno, "prctl(PR_SET_PDEATHSIG)");
        return;
    }
    if (cfg->process.init && !exec && become_init(s, err_wr, e) < 0)
        return;
    /* Signals the loop's thread had blocked must not stay blocked in the workload. */
    ct_set_sigmask(SIG_SETMASK, false);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);

    if (s->filter && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, s->filter, 0, 0) < 0) {
        ct_child_fail(e, VMCORE_ESYS, errno, "install the seccomp filter");
        return;
    }
    char *const *argv = s->argv ? (char *const *)s->argv : cfg->process.args;
    /* Without a configured environment, give the usual minimal one (as runc does). */
    char *const dflt[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "HOME=/root", s->pty_slave >= 0 ? "TERM=xterm" : NULL, NULL };
    if (s->hold_fd >= 0) {
        /* detach.hold: everything is set up. Say so (the start completes and the parent
         * stops listening), then wait until someone opens the FIFO for reading: opening it
         * for writing blocks until then. Reached through our own /proc/self/fd (allowed
         * to this process even non-dumpable), as the FIFO's path is outside the rootfs. */
        struct ct_child_err held;
        memset(&held, 0, sizeof held);
        held.pid = CT_CHILD_HELD;
        write_all(err_wr, &held, sizeof held);
        close(err_wr);
        char path[32] = "/proc/self/fd/";
        fmt_uint(path + 14, (unsigned)s->hold_fd);
        int fd;
        do
            fd = open(path, O_WRONLY | O_CLOEXEC);
        while (fd < 0 && errno == EINTR);
        if (fd < 0 || write_all(fd, "0", 1) < 0) {
            static const char msg[] = "vmcore: detach.hold: cannot open or write the FIFO\n";
            write_all(2, msg, sizeof msg - 1);
            _exit(127);
        }
        close(fd);
        close(s->hold_fd);
        execve(s->exe, argv, cfg->process.env && cfg->process.nenv ? cfg->process.env : dflt);
        /* Nobody reads the error pipe any more: the container's stderr gets the news. */
        static const char msg[] = "vmcore: process.args[0]: execve failed: errno ";
        char num[12];
        fmt_uint(num, (unsigned)errno);
        write_all(2, msg, sizeof msg - 1);
        write_all(2, num, strlen(num));
        write_all(2, "\n", 1);
        _exit(127);
    }
    execve(s->exe, argv, cfg->process.env && cfg->process.nenv ? cfg->process.env : dflt);
    ct_child_fail(e, errno == ENOENT ? VMCORE_ENOENT : VMCORE_ESYS, errno,
                  "process.args[0]: execve %s", s->exe);
}

extern const unsigned char ct_init_image[], ct_init_image_end[];

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

int ct_init_image_fd(struct vmcore_err *err)
{
    /* MFD_EXEC: where vm.memfd_noexec makes memfds non-executable by default (Linux 6.3+). */
    int fd = memfd_create("vmcore-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL)
        fd = memfd_create("vmcore-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return err_sys(err, VMCORE_ESYS, errno, "process.init: memfd_create");
    size_t len = (size_t)(ct_init_image_end - ct_init_image);
    if (write_all(fd, ct_init_image, len) < 0 || fchmod(fd, 0555) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
        int e = errno;
        close(fd);
        return err_sys(err, VMCORE_ESYS, e, "process.init: write and seal the init's memfd");
    }
    return fd;
}

long ct_clone_pidfd(uint64_t flags, int cgroup_fd, int *pidfd, bool *in_cgroup)
{
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = flags | CLONE_PIDFD | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0);
    ca.pidfd = (uint64_t)(uintptr_t)pidfd;
    ca.exit_signal = 0; /* no SIGCHLD: the pidfd tells us; other waiters never see it */
    ca.cgroup = cgroup_fd >= 0 ? (uint64_t)cgroup_fd : 0;
    long pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid < 0 && errno == ENOSYS) {
        /* No clone3 (old kernel, or a sandbox such as valgrind or a seccomp profile that
         * hides it): clone(2) also returns a pidfd; the cgroup is then joined by pid. */
        ca.flags &= ~(uint64_t)CLONE_INTO_CGROUP;
        pid = syscall(SYS_clone, (unsigned long)ca.flags, NULL, pidfd, NULL, 0UL);
    }
    *in_cgroup = pid > 0 && (ca.flags & CLONE_INTO_CGROUP);
    return pid;
}

int ct_spawn(const struct ct_spawn *s, struct ct_proc *p, struct vmcore_err *err)
{
    p->pid = -1;
    p->pidfd = p->sync_wr = p->err_rd = -1;
    int sync[2], errp[2];
    if (pipe2(sync, O_CLOEXEC) < 0)
        return err_sys(err, VMCORE_ESYS, errno, "pipe");
    if (pipe2(errp, O_CLOEXEC) < 0) {
        int e = errno;
        close(sync[0]);
        close(sync[1]);
        return err_sys(err, VMCORE_ESYS, e, "pipe");
    }
    uint64_t flags = 0;
    if (s->join_pidfd < 0) {
        flags |= CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
        if (s->new_net)
            flags |= CLONE_NEWNET;
        if (s->userns)
            flags |= CLONE_NEWUSER;
    }
    int pidfd = -1;
    long pid = ct_clone_pidfd(flags, s->cgroup_fd, &pidfd, &p->in_cgroup);
    if (pid == 0) {
        struct ct_child_err ce;
        memset(&ce, 0, sizeof ce);
        close(sync[1]);
        close(errp[0]);
        child_setup(s, sync[0], errp[1], &ce);
        write_all(errp[1], &ce, sizeof ce);
        _exit(127);
    }
    int e = errno;
    close(sync[0]);
    close(errp[1]);
    if (pid < 0) {
        close(sync[1]);
        close(errp[0]);
        return err_sys(err, e == EPERM ? VMCORE_EPERM : VMCORE_ESYS, e, "clone3");
    }
    p->pid = (pid_t)pid;
    p->pidfd = pidfd;
    p->joining = s->join_pidfd >= 0;
    p->sync_wr = sync[1];
    p->err_rd = errp[0];
    return 0;
}

int ct_proc_signal(struct ct_proc *p, int sig)
{
    if (p->pidfd < 0 || p->pid <= 0) {
        errno = ESRCH;
        return -1;
    }
    if (syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) == 0)
        return 0;
    /* Without pidfd_send_signal (valgrind, old kernels) the pid is still safe to use:
     * our unreaped child keeps it from being recycled. */
    return errno == ENOSYS ? kill(p->pid, sig) : -1;
}

static void reap(struct ct_proc *p)
{
    siginfo_t si;
    while (waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED | __WALL) < 0 && errno == EINTR)
        ;
}

/* Wait for a child of ours that has no pidfd (the grandchild of a failed exec). */
static void reap_pid(pid_t pid)
{
    siginfo_t si;
    while (waitid(P_PID, (id_t)pid, &si, WEXITED | __WALL) < 0 && errno == EINTR)
        ;
}

int ct_spawn_release(struct ct_proc *p, struct vmcore_err *err)
{
    char go = 1;
    int rc = 0;
    if (write_all(p->sync_wr, &go, 1) < 0)
        rc = err_sys(err, VMCORE_ESYS, errno, "release the container process");
    close(p->sync_wr);
    p->sync_wr = -1;
    /* Messages until EOF: an error, and for exec the pid of the process the middle one
     * cloned into the container (atomic writes: each is less than PIPE_BUF). */
    struct ct_child_err ce, failure;
    bool failed = false, held = false;
    pid_t joined = -1;
    for (;;) {
        size_t got = 0;
        while (rc == 0 && got < sizeof ce) {
            ssize_t n = read(p->err_rd, (char *)&ce + got, sizeof ce - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (got == 0)
            break;
        if (got != sizeof ce) {
            if (!failed)
                rc = err_set(err, VMCORE_ESYS, "the container process died during setup");
            break;
        }
        if (ce.code == 0 && ce.pid == CT_CHILD_HELD && !failed) {
            held = true; /* set up, waiting on detach.hold: it writes no more */
            break;
        } else if (ce.code == 0 && ce.pid > 0 && joined < 0) {
            joined = ce.pid;
        } else if (!failed) {
            failure = ce;
            failed = true;
        }
    }
    close(p->err_rd);
    p->err_rd = -1;
    if (rc == 0 && held)
        return 0;
    if (rc == 0 && failed) {
        failure.msg[sizeof failure.msg - 1] = 0;
        if (failure.errnum)
            rc = err_sys(err, failure.code, failure.errnum, "%s", failure.msg);
        else
            rc = err_set(err, failure.code, "%s", failure.msg);
    }
    if (rc == 0 && p->joining) {
        /* The middle process has exited; what runs in the container is its sibling. */
        reap(p);
        close(p->pidfd);
        p->pidfd = -1;
        p->pid = -1;
        if (joined <= 0)
            return err_set(err, VMCORE_ESYS, "the container process died during setup");
        int pidfd = (int)syscall(SYS_pidfd_open, joined, 0);
        if (pidfd < 0) {
            int e = errno;
            kill(joined, SIGKILL);
            reap_pid(joined);
            return err_sys(err, VMCORE_ESYS, e, "pidfd_open");
        }
        p->pid = joined;
        p->pidfd = pidfd;
        return 0;
    }
    if (rc == 0)
        return 0;
    if (joined > 0) {
        kill(joined, SIGKILL); /* our unreaped child: the pid cannot have been reused */
        reap_pid(joined);
    }
    reap(p);
    close(p->pidfd);
    p->pidfd = -1;
    p->pid = -1;
    return rc;
}

void ct_spawn_abort(struct ct_proc *p)
{
    if (p->sync_wr >= 0)
        close(p->sync_wr);
    if (p->err_rd >= 0)
        close(p->err_rd);
    p->sync_wr = p->err_rd = -1;
    if (p->pidfd >= 0) {
        ct_proc_signal(p, SIGKILL);
        reap(p);
        close(p->pidfd);
    }
    p->pidfd = -1;
    p->pid = -1;
}
