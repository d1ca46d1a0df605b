/* clone3 + pidfd: start a process inside new namespaces (or inside a running container's,
 * for exec) and do all the setup in the child between clone3 and execve, so a start costs
 * one clone and one exec, no helper binaries.
 *
 * Handshake: the child blocks on a sync pipe until the parent has put it into its cgroups,
 * written its id maps and made its veth; it then reports failure through a close-on-exec
 * error pipe (EOF there means execve succeeded). */
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

/* The tiny init (process.init): PID 1 forks the workload, forwards signals to it, reaps
 * every orphan and exits with the workload's status (128+N if a signal ended it). */
static void __attribute__((noreturn)) run_init(pid_t child, int status_fd)
{
    sigset_t all;
    sigfillset(&all);
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&all, &si);
        if (sig < 0)
            continue;
        if (sig != SIGCHLD) {
            kill(child, sig);
            continue;
        }
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
            if (p != child)
                continue;
            /* PID 1 cannot die of a signal it sends itself; tell the host what
             * really happened, and exit with the shell's convention. */
            if (WIFSIGNALED(st) && status_fd >= 0) {
                int sig = WTERMSIG(st);
                write_all(status_fd, &sig, sizeof sig);
            }
            _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
    }
}

/* Everything between clone3 and execve. Returns only on failure. */
static void child_setup(const struct ct_spawn *s, int sync_rd, struct ct_child_err *e)
{
    const struct vmcore_config *cfg = s->cfg;
    bool userns = s->userns;
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

    if (userns && s->join_pidfd < 0 && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) {
        /* Until now we ran with the host's ids, which the new namespace cannot map:
         * files we create (in /dev) would fail with EOVERFLOW. */
        ct_child_fail(e, VMCORE_ECONFIG, errno, "userns.uid_map/gid_map: id 0 inside is not mapped");
        return;
    }
    if (s->join_pidfd < 0) {
        /* The cgroup namespace is rooted at the group the parent just moved us into. */
        if (unshare(CLONE_NEWCGROUP) < 0) {
            ct_child_fail(e, VMCORE_ESYS, errno, "unshare(CLONE_NEWCGROUP)");
            return;
        }
        if (rootfs_setup(cfg, userns, s->pty_slave_path, e) < 0)
            return;
        const char *host = cfg->hostname ? cfg->hostname : cfg->name;
        if (host && sethostname(host, strlen(host)) < 0) {
            ct_child_fail(e, VMCORE_ECONFIG, errno, "hostname: sethostname(%s)", host);
            return;
        }
        if (s->new_net && net_child_setup(s->veth_addr ? "eth0" : NULL, s->veth_addr, e) < 0)
            return;
    } else {
        int flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP |
                    (s->new_net ? CLONE_NEWNET : 0) | (userns ? CLONE_NEWUSER : 0);
        if (setns(s->join_pidfd, flags) < 0) {
            ct_child_fail(e, VMCORE_ESYS, errno, "setns into the container");
            return;
        }
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
    /* Nothing else the host process holds may leak into the container. */
    syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
    if (s->pty_slave >= 0) {
        if (setsid() < 0 || ioctl(0, TIOCSCTTY, 0) < 0) {
            ct_child_fail(e, VMCORE_ESYS, errno, "make the pty the controlling terminal");
            return;
        }
    }
    const char *cwd = cfg->process.cwd ? cfg->process.cwd : "/";
    if (s->join_pidfd < 0 && chdir(cwd) < 0) {
        ct_child_fail(e, VMCORE_ECONFIG, errno, "process.cwd: %s", cwd);
        return;
    }
    if (caps_apply(s->caps, cfg->process.uid, cfg->process.gid, userns, e) < 0)
        return;
    /* The container lives only as long as the thread that started it (bwrap's
     * --die-with-parent): if the host process crashes, nothing keeps running unwatched.
     * Set after the credential changes above, which clear it. SIGKILL from outside the
     * pid namespace reaches even its init. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
        ct_child_fail(e, VMCORE_ESYS, errno, "prctl(PR_SET_PDEATHSIG)");
        return;
    }

    sigset_t all;
    sigfillset(&all);
    if (cfg->process.init && s->join_pidfd < 0) {
        sigprocmask(SIG_BLOCK, &all, NULL);
        pid_t pid = fork();
        if (pid < 0) {
            ct_child_fail(e, VMCORE_ESYS, errno, "fork the workload under init");
            return;
        }
        if (pid > 0) {
            /* The init keeps no copy of the error pipe or stdio: EOFs must mean the
             * workload exec'd or ended. */
            for (int fd = 0; fd < 3; fd++) {
                int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (nul >= 0) {
                    dup2(nul, fd);
                    close(nul);
                }
            }
            int max = (int)sysconf(_SC_OPEN_MAX);
            for (int fd = 3; fd < max && fd < 1024; fd++)
                if (fd != s->init_status_fd)
                    close(fd);
            prctl(PR_SET_NAME, "init", 0, 0, 0);
            run_init(pid, s->init_status_fd);
        }
    }
    /* Signals the loop's thread had blocked must not stay blocked in the workload. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
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
    execve(s->exe, argv, cfg->process.env && cfg->process.nenv ? cfg->process.env : dflt);
    ct_child_fail(e, errno == ENOENT ? VMCORE_ENOENT : VMCORE_ESYS, errno,
                  "process.args[0]: execve %s", s->exe);
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
    uint64_t flags = CLONE_PIDFD;
    if (s->join_pidfd < 0) {
        flags |= CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
        if (s->new_net)
            flags |= CLONE_NEWNET;
        if (s->userns)
            flags |= CLONE_NEWUSER;
    }
    if (s->cgroup_fd >= 0)
        flags |= CLONE_INTO_CGROUP;
    int pidfd = -1;
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = flags;
    ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
    ca.exit_signal = 0; /* no SIGCHLD: the pidfd tells us; other waiters never see it */
    ca.cgroup = s->cgroup_fd >= 0 ? (uint64_t)s->cgroup_fd : 0;
    /* exec: a pid namespace can only be entered by children, so point this thread's
     * pid_for_children at the container's for the one clone3, then back. */
    int own_pidns = -1;
    if (s->join_pidfd >= 0) {
        own_pidns = open("/proc/thread-self/ns/pid", O_RDONLY | O_CLOEXEC);
        if (own_pidns < 0 || setns(s->join_pidfd, CLONE_NEWPID) < 0) {
            int e = errno;
            if (own_pidns >= 0)
                close(own_pidns);
            close(sync[0]); close(sync[1]); close(errp[0]); close(errp[1]);
            return err_sys(err, VMCORE_ESYS, e, "enter the container's pid namespace");
        }
    }
    long pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid < 0 && errno == ENOSYS) {
        /* No clone3 (old kernel, or a sandbox such as valgrind or a seccomp profile that
         * hides it): clone(2) also returns a pidfd; the cgroup is then joined by pid. */
        ca.flags &= ~(uint64_t)CLONE_INTO_CGROUP;
        pid = syscall(SYS_clone, (unsigned long)ca.flags, NULL, &pidfd, NULL, 0UL);
    }
    p->in_cgroup = pid > 0 && (ca.flags & CLONE_INTO_CGROUP);
    if (pid != 0 && own_pidns >= 0) {
        int se = errno;
        setns(own_pidns, CLONE_NEWPID);
        close(own_pidns);
        errno = se;
    }
    if (pid == 0) {
        struct ct_child_err ce;
        memset(&ce, 0, sizeof ce);
        close(sync[1]);
        close(errp[0]);
        child_setup(s, sync[0], &ce);
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

int ct_spawn_release(struct ct_proc *p, struct vmcore_err *err)
{
    char go = 1;
    int rc = 0;
    if (write_all(p->sync_wr, &go, 1) < 0)
        rc = err_sys(err, VMCORE_ESYS, errno, "release the container process");
    close(p->sync_wr);
    p->sync_wr = -1;
    struct ct_child_err ce;
    size_t got = 0;
    while (rc == 0 && got < sizeof ce) {
        ssize_t n = read(p->err_rd, (char *)&ce + got, sizeof ce - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(p->err_rd);
    p->err_rd = -1;
    if (rc == 0 && got == 0)
        return 0;
    if (rc == 0 && got == sizeof ce) {
        ce.msg[sizeof ce.msg - 1] = 0;
        if (ce.errnum)
            rc = err_sys(err, ce.code, ce.errnum, "%s", ce.msg);
        else
            rc = err_set(err, ce.code, "%s", ce.msg);
    } else if (rc == 0) {
        rc = err_set(err, VMCORE_ESYS, "the container process died during setup");
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
