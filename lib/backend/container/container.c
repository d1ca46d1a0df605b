/* The container backend's ops table: a process tree in new namespaces on the host kernel
 * (see ct.h for the pieces). Exit is noticed through a pidfd polled on the loop; output
 * is read from pipes (or a pty) with uv handles and posted as console events. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include <jansson.h>

#include "core/backend.h"
#include "ct.h"
#include "core/bridge.h"
#include "machine/net_backend.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define VETH_INSIDE "eth0"
/* network.mode "user": libslirp's network (net_slirp.c), the container at a fixed address */
#define USER_NET_ADDR "10.0.2.100/24"
#define USER_NET_GW "10.0.2.2"
/* userns without maps, as root: container ids 0..65535 are host ids 1000000.. (LXD's
 * convention for root's subordinate ids; clear of the ranges useradd hands out). */
#define CT_USERNS_DEFAULT_BASE 1000000u
#define CT_USERNS_DEFAULT_COUNT 65536u

struct ct;
struct ct_run;

/* Each uv handle lives in its own allocation, freed by its close callback, so the
 * backend state can go away in destroy() while libuv still finishes closing. */
struct ct_handle {
    union {
        uv_handle_t h;
        uv_pipe_t pipe;
        uv_poll_t poll;
    } u;
    struct ct_run *run;         /* NULL once detached */
    vmcore_stream stream;
    bool stalled;               /* not read while the domain's console queue is full */
    char buf[];                 /* stream handles: CT_READ_BUF bytes; none for the pidfd poll */
};

#define CT_READ_BUF 16384

/* One process we watch: the container's init, or an exec'd process. */
struct ct_run {
    struct ct *ct;
    bool is_exec;
    void *token;
    struct ct_proc proc;
    int init_status_fd;         /* process.init: read end of the init's report, else -1 */
    struct ct_handle *poll, *out, *err;
    struct ct_handle *pty;      /* terminal mode: the master, for writing (same as out) */
    struct ct_stdin *in;        /* pipe mode: stdin */
    int open_streams;
    bool exited, reported;
    bool term_default;          /* shutdown ended a PID 1 without a SIGTERM handler */
    vmcore_exit_kind kind;
    int status, signal;
    struct ct_run *next;
};

struct ct {
    vmcore_domain *d;
    const struct vmcore_config *cfg;
    char exe[4096];
    struct sock_fprog filter;
    struct ct_cgroup cg;
    bool userns;                /* configured, or implied by running unprivileged */
    bool cg_made, veth_made, started;
    struct net_backend *slirp;  /* network.mode "user": the NAT, its thread and the tap */
    char host_if[IFNAMSIZ];     /* veth, bridge: the veth's host end */
    char gateway[INET_ADDRSTRLEN]; /* bridge: the created bridge's address, or "" */
    struct bridge_ref *bridge;  /* network.mode "bridge": the host end's bridge */
    bool detached;              /* vmcore_domain_detach() let the container go */
    int console_fd;             /* detach + process.terminal: the pty master until detached */
    struct winsize winsize;     /* process.terminal: the size for the pty (0 x 0: unset) */
    struct ct_run *init;
    struct ct_run *execs;
};

/* --- handles ---------------------------------------------------------------------------- */

static void handle_free_cb(uv_handle_t *h) { free(h); }

static void handle_close(struct ct_handle **hp)
{
    struct ct_handle *h = *hp;
    *hp = NULL;
    if (!h)
        return;
    h->run = NULL;
    if (!uv_is_closing(&h->u.h))
        uv_close(&h->u.h, handle_free_cb);
}

static void run_maybe_report(struct ct_run *r);

static void stream_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct ct_handle *ch = (struct ct_handle *)h;
    buf->base = ch->buf;
    buf->len = CT_READ_BUF;
}

static void stream_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct ct_handle *ch = (struct ct_handle *)s;
    struct ct_run *r = ch->run;
    if (!r)
        return;
    if (n > 0) {
        /* Back-pressure: with the console queue full, stop reading; the pipe (or pty)
         * fills and blocks the writers inside until container_console_drained(). */
        if (domain_post_console(r->ct->d, ch->stream, buf->base, (size_t)n)) {
            uv_read_stop(s);
            ch->stalled = true;
        }
        return;
    }
    if (n == 0)
        return;
    /* EOF (pipe) or EIO (pty whose slave side closed): this stream is done. */
    uv_read_stop(s);
    if (r->out == ch)
        r->out = NULL;
    else if (r->err == ch)
        r->err = NULL;
    if (r->pty == ch) /* one handle for both directions */
        r->pty = NULL;
    ch->run = NULL;
    uv_close(&ch->u.h, handle_free_cb);
    r->open_streams--;
    run_maybe_report(r);
}

static int stream_open(struct ct_run *r, struct ct_handle **out, int fd, vmcore_stream which,
                       bool readable, struct vmcore_err *err)
{
    /* malloc, not calloc: the buffer's pages stay untouched until output arrives. */
    struct ct_handle *h = malloc(sizeof *h + CT_READ_BUF);
    if (!h)
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    memset(h, 0, sizeof *h);
    int rc = uv_pipe_init(domain_loop(r->ct->d), &h->u.pipe, 0);
    if (rc == 0)
        rc = uv_pipe_open(&h->u.pipe, fd);
    if (rc < 0) {
        free(h);
        return err_set(err, VMCORE_ESYS, "uv_pipe_open: %s", uv_strerror(rc));
    }
    h->run = r;
    h->stream = which;
    *out = h;
    if (readable) {
        if ((rc = uv_read_start((uv_stream_t *)&h->u.pipe, stream_alloc_cb, stream_read_cb)) < 0) {
            handle_close(out);
            return err_set(err, VMCORE_ESYS, "uv_read_start: %s", uv_strerror(rc));
        }
        r->open_streams++;
    }
    return 0;
}

/* --- process end --------------------------------------------------------------------------- */

static void run_unlink(struct ct_run *r)
{
    for (struct ct_run **p = &r->ct->execs; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            return;
        }
}

static void run_free(struct ct_run *r)
{
    if (r->init_status_fd >= 0)
        close(r->init_status_fd);
    handle_close(&r->poll);
    if (r->out)
        r->open_streams--;
    if (r->err)
        r->open_streams--;
    handle_close(&r->out);
    handle_close(&r->err);
    r->pty = NULL; /* the same handle as out */
    ct_stdin_close(r->in);
    r->in = NULL;
    if (r->proc.pidfd >= 0) {
        if (!r->exited) {
            ct_proc_signal(&r->proc, SIGKILL);
            siginfo_t si;
            while (waitid((idtype_t)P_PIDFD, (id_t)r->proc.pidfd, &si, WEXITED | __WALL) < 0 &&
                   errno == EINTR)
                ;
        }
        close(r->proc.pidfd);
    }
    free(r);
}

/* Report once the process has ended and its output has been drained, so every console
 * event comes before the exit event. */
static void run_maybe_report(struct ct_run *r)
{
    if (!r->exited || r->open_streams > 0 || r->reported)
        return;
    r->reported = true;
    struct ct *ct = r->ct;
    if (r->is_exec) {
        domain_post_exec_done(ct->d, r->token, 0, r->kind, r->status, r->signal);
        run_unlink(r);
        run_free(r);
        return;
    }
    char reason[96];
    if (r->kind == VMCORE_EXIT_SIGNAL)
        snprintf(reason, sizeof reason, "killed by signal %d (%s)", r->signal, strsignal(r->signal));
    else
        snprintf(reason, sizeof reason, "exited with status %d", r->status);
    domain_post_exit(ct->d, r->kind, r->status, r->signal, reason);
}

static void pidfd_cb(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    struct ct_handle *h = (struct ct_handle *)p;
    struct ct_run *r = h->run;
    if (!r)
        return;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid((idtype_t)P_PIDFD, (id_t)r->proc.pidfd, &si, WEXITED | WNOHANG | __WALL) < 0 ||
        si.si_pid == 0)
        return;
    r->exited = true;
    if (si.si_code == CLD_EXITED) {
        r->kind = VMCORE_EXIT_STATUS;
        r->status = si.si_status;
    } else {
        r->kind = VMCORE_EXIT_SIGNAL;
        r->signal = si.si_status;
    }
    if (r->term_default && r->kind == VMCORE_EXIT_SIGNAL && r->signal == SIGKILL)
        r->signal = SIGTERM; /* shutdown's SIGTERM, delivered as its default action */
    int sig;
    if (r->init_status_fd >= 0 && read(r->init_status_fd, &sig, sizeof sig) == sizeof sig &&
        sig > 0 && sig < NSIG) {
        /* The tiny init's workload died of @sig: report that, not the init's 128+sig. */
        r->kind = VMCORE_EXIT_SIGNAL;
        r->signal = sig;
        r->status = 0;
    }
    handle_close(&r->poll);
    if (!r->is_exec && r->ct->execs)
        for (struct ct_run *x = r->ct->execs; x; x = x->next)
            if (!x->exited)
                ct_proc_signal(&x->proc, SIGKILL);
    run_maybe_report(r);
}

/* --- starting a process -------------------------------------------------------------------- */

struct stdio_fds {
    int child[3];   /* ends the child gets */
    int parent[3];  /* our ends: stdin writer, stdout reader, stderr reader (-1 if none) */
    int pty_master;
    char pty_path[64];
};

static void stdio_close(struct stdio_fds *s)
{
    for (int i = 0; i < 3; i++) {
        if (s->child[i] >= 0 && (i == 0 || s->child[i] != s->child[0]))
            close(s->child[i]);
        if (s->parent[i] >= 0)
            close(s->parent[i]);
        s->child[i] = s->parent[i] = -1;
    }
    if (s->pty_master >= 0)
        close(s->pty_master);
    s->pty_master = -1;
}

static int stdio_make(struct stdio_fds *s, bool terminal, const struct winsize *ws,
                      bool want_stdin, struct vmcore_err *err)
{
    for (int i = 0; i < 3; i++)
        s->child[i] = s->parent[i] = -1;
    s->pty_master = -1;
    s->pty_path[0] = 0;
    if (terminal) {
        s->pty_master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (s->pty_master < 0 || grantpt(s->pty_master) < 0 || unlockpt(s->pty_master) < 0 ||
            ptsname_r(s->pty_master, s->pty_path, sizeof s->pty_path) != 0) {
            int e = errno;
            stdio_close(s);
            return err_sys(err, VMCORE_ESYS, e, "process.terminal: allocate a pty");
        }
        /* the size vmcore_domain_resize_console() gave before the start, if any */
        if (ws->ws_row && ws->ws_col && ioctl(s->pty_master, TIOCSWINSZ, ws) < 0) {
            int e = errno;
            stdio_close(s);
            return err_sys(err, VMCORE_ESYS, e, "process.terminal: set the window size");
        }
        int slave = open(s->pty_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0) {
            int e = errno;
            stdio_close(s);
            return err_sys(err, VMCORE_ESYS, e, "process.terminal: open %s", s->pty_path);
        }
        s->child[0] = s->child[1] = s->child[2] = slave;
        return 0;
    }
    for (int i = 0; i < 3; i++) {
        int p[2];
        if (i == 0 && !want_stdin) {
            if ((s->child[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
                int e = errno;
                stdio_close(s);
                return err_sys(err, VMCORE_ESYS, e, "open /dev/null");
            }
            continue;
        }
        if (pipe2(p, O_CLOEXEC) < 0) {
            int e = errno;
            stdio_close(s);
            return err_sys(err, VMCORE_ESYS, e, "pipe");
        }
        s->child[i] = i == 0 ? p[0] : p[1];
        s->parent[i] = i == 0 ? p[1] : p[0];
    }
    return 0;
}

/* detach without a terminal: the child gets copies of this process's stdio (or /dev/null
 * where one is closed). */
static int stdio_inherit(struct stdio_fds *s, struct vmcore_err *err)
{
    for (int i = 0; i < 3; i++)
        s->child[i] = s->parent[i] = -1;
    s->pty_master = -1;
    s->pty_path[0] = 0;
    for (int i = 0; i < 3; i++) {
        s->child[i] = fcntl(i, F_DUPFD_CLOEXEC, 3);
        if (s->child[i] < 0)
            s->child[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (s->child[i] < 0) {
            int e = errno;
            stdio_close(s);
            return err_sys(err, VMCORE_ESYS, e, "detach: duplicate stdio %d", i);
        }
    }
    return 0;
}

/* process.rlimits, set on the waiting child from here (inherited by what it execs). */
static int apply_rlimits(const struct vmcore_config *cfg, pid_t pid, struct vmcore_err *err)
{
    for (size_t i = 0; i < cfg->process.nrlimits; i++) {
        const struct config_rlimit *l = &cfg->process.rlimits[i];
        struct rlimit rl = { .rlim_cur = l->soft, .rlim_max = l->hard };
        if (prlimit(pid, (__rlimit_resource_t)l->resource, &rl, NULL) < 0) {
            char p[64];
            snprintf(p, sizeof p, "process.rlimits[%zu]", i);
            return err_config(err, errno == EPERM ? VMCORE_EPERM : VMCORE_ECONFIG, p,
                              "prlimit: %s", strerror(errno));
        }
    }
    return 0;
}

static int write_map(pid_t pid, const char *file, const struct config_idmap *m, size_t n,
                     const char *field, struct vmcore_err *err)
{
    char buf[1024], path[64];
    size_t len = 0;
    if (n == 0 && geteuid() == 0)
        /* Root without a map: container root must not be host root. 65536 ids from
         * CT_USERNS_DEFAULT_BASE (doc/config.md, userns). */
        len = (size_t)snprintf(buf, sizeof buf, "0 %u %u\n", CT_USERNS_DEFAULT_BASE,
                               CT_USERNS_DEFAULT_COUNT);
    else if (n == 0)
        /* Rootless: the caller's own id is the only one it may map. */
        len = (size_t)snprintf(buf, sizeof buf, "0 %u 1\n", strcmp(file, "uid_map") ? getegid() : geteuid());
    for (size_t i = 0; i < n && len < sizeof buf; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%u %u %u\n", m[i].inside, m[i].outside,
                                m[i].count);
    if (len >= sizeof buf)
        return err_config(err, VMCORE_ECONFIG, field, "too many entries");
    /* Unprivileged, gid_map is only accepted once setgroups() is switched off. */
    if (geteuid() != 0 && strcmp(file, "gid_map") == 0) {
        snprintf(path, sizeof path, "/proc/%d/setgroups", (int)pid);
        int sfd = open(path, O_WRONLY | O_CLOEXEC);
        if (sfd >= 0) {
            if (write(sfd, "deny", 4) < 0) {
                /* the gid_map write below reports the failure */
            }
            close(sfd);
        }
    }
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(err, VMCORE_ESYS, errno, "open %s", path);
    ssize_t w = write(fd, buf, len);
    int e = errno;
    close(fd);
    if (w != (ssize_t)len)
        return err_sys(err, e == EPERM ? VMCORE_EPERM : VMCORE_ECONFIG, e, "%s: write %s", field, path);
    return 0;
}

/* network.mode "user": the tap fd the child sent over @sock before it exec'd. */
static int recv_tap(int sock, struct vmcore_err *err)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    char byte;
    struct iovec iov = { &byte, 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                         .msg_controllen = sizeof ctl.buf };
    ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    struct cmsghdr *c = n == 1 ? CMSG_FIRSTHDR(&mh) : NULL;
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
        c->cmsg_len != CMSG_LEN(sizeof(int)))
        return err_set(err, VMCORE_ESYS, "network.mode \"user\": the container's tap did "
                       "not arrive");
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

/* Spawn @argv (NULL: the configured process) as a new container (exec == NULL) or
 * inside the running one; on success the process runs and is watched on the loop. */
static int run_start(struct ct *ct, struct ct_run *r, const char *exe, const char *const *argv,
                     struct vmcore_err *err)
{
    const struct vmcore_config *cfg = ct->cfg;
    bool terminal = !r->is_exec && cfg->process.terminal;
    bool detach = !r->is_exec && cfg->detach.enabled;
    struct stdio_fds io;
    int rc = detach && !terminal ? stdio_inherit(&io, err)
                                 : stdio_make(&io, terminal, &ct->winsize, !r->is_exec, err);
    if (rc < 0)
        return rc;
    int hold = -1;
    if (detach && cfg->detach.hold &&
        (hold = open(cfg->detach.hold, O_PATH | O_CLOEXEC)) < 0) {
        int e = errno;
        stdio_close(&io);
        return err_config(err, VMCORE_ENOENT, "detach.hold", "open %s: %s", cfg->detach.hold,
                          strerror(e));
    }
    int st_pipe[2] = { -1, -1 };
    if (!r->is_exec && cfg->process.init && pipe2(st_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        int e = errno;
        stdio_close(&io);
        if (hold >= 0)
            close(hold);
        return err_sys(err, VMCORE_ESYS, e, "pipe");
    }
    r->init_status_fd = st_pipe[0];
    /* mode "user": the child makes the tap in its namespace and sends it over this pair */
    int tap_sv[2] = { -1, -1 };
    bool user_net = !r->is_exec && cfg->network.mode == NET_MODE_USER;
    if (user_net && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, tap_sv) < 0) {
        int e = errno;
        if (st_pipe[0] >= 0) {
            close(st_pipe[0]);
            close(st_pipe[1]);
            r->init_status_fd = -1;
        }
        stdio_close(&io);
        return err_sys(err, VMCORE_ESYS, e, "network: socketpair");
    }
    int image = -1;
    if (!r->is_exec && cfg->process.init && (image = ct_init_image_fd(err)) < 0) {
        close(st_pipe[0]);
        close(st_pipe[1]);
        r->init_status_fd = -1;
        if (user_net) {
            close(tap_sv[0]);
            close(tap_sv[1]);
        }
        stdio_close(&io);
        return err->code;
    }
    struct ct_spawn s;
    memset(&s, 0, sizeof s);
    s.init_status_fd = st_pipe[1];
    s.init_image_fd = image;
    s.cfg = cfg;
    s.exe = exe;
    s.argv = argv;
    s.filter = &ct->filter;
    s.caps = cfg->process.has_caps ? cfg->process.caps : caps_default_mask();
    if (!cgroup_has_device_policy(&ct->cg))
        s.caps &= ~(1ull << CAP_MKNOD);
    bool veth = cfg->network.mode == NET_MODE_VETH || cfg->network.mode == NET_MODE_BRIDGE;
    s.new_net = cfg->network.mode != NET_MODE_HOST;
    s.veth_addr = veth ? cfg->network.address : user_net ? USER_NET_ADDR : NULL;
    s.gateway = user_net ? USER_NET_GW : ct->gateway[0] ? ct->gateway : NULL;
    s.tap_sock = tap_sv[1];
    s.cgroup_fd = ct->cg.v2_fd;
    s.join_pidfd = r->is_exec ? ct->init->proc.pidfd : -1;
    for (int i = 0; i < 3; i++)
        s.stdio[i] = io.child[i];
    s.pty_slave = terminal ? io.child[0] : -1;
    s.pty_slave_path = terminal ? io.pty_path : NULL;
    s.userns = ct->userns;
    s.detached = detach;
    s.hold_fd = hold;

    rc = ct_spawn(&s, &r->proc, err);
    if (hold >= 0)
        close(hold);
    if (st_pipe[1] >= 0)
        close(st_pipe[1]);
    if (tap_sv[1] >= 0)
        close(tap_sv[1]);
    if (image >= 0)
        close(image);
    if (rc < 0)
        goto fail;
    if (!r->proc.in_cgroup && (rc = cgroup_attach(&ct->cg, r->proc.pid, err)) < 0)
        goto fail_proc;
    if ((rc = apply_rlimits(cfg, r->proc.pid, err)) < 0)
        goto fail_proc;
    if (!r->is_exec && ct->userns) {
        if ((rc = write_map(r->proc.pid, "uid_map", cfg->userns.uid_map, cfg->userns.nuid_map,
                            "userns.uid_map", err)) < 0 ||
            (rc = write_map(r->proc.pid, "gid_map", cfg->userns.gid_map, cfg->userns.ngid_map,
                            "userns.gid_map", err)) < 0)
            goto fail_proc;
    }
    if (!r->is_exec && veth) {
        if ((rc = net_veth_create(ct->host_if, VETH_INSIDE, r->proc.pid,
                                  cfg->network.host_address, err)) < 0)
            goto fail_proc;
        ct->veth_made = true;
        if (ct->bridge && (rc = bridge_attach(ct->bridge, ct->host_if, "network.bridge", err)) < 0)
            goto fail_proc; /* the caller deletes the veth */
    }
    if ((rc = ct_spawn_release(&r->proc, err)) < 0)
        goto fail; /* the child is reaped already */
    if (user_net) {
        /* The child sent the tap before it exec'd; the NAT owns it from here on. */
        int tap = recv_tap(tap_sv[0], err);
        close(tap_sv[0]);
        tap_sv[0] = -1;
        if (tap < 0 || (rc = net_slirp_attach_tap(ct->slirp, tap, err)) < 0) {
            rc = tap < 0 ? tap : rc;
            stdio_close(&io);
            return rc; /* the caller frees @r, which kills and reaps */
        }
    }
    /* The child has exec'd: its ends of stdio are its own now. */
    for (int i = 0; i < 3; i++)
        if (io.child[i] >= 0 && (i == 0 || io.child[i] != io.child[0]))
            close(io.child[i]);
    io.child[0] = io.child[1] = io.child[2] = -1;

    struct ct_handle *poll = calloc(1, sizeof *poll);
    if (!poll) {
        rc = err_set(err, VMCORE_ENOMEM, "out of memory");
        goto fail_running;
    }
    if ((rc = uv_poll_init(domain_loop(ct->d), &poll->u.poll, r->proc.pidfd)) < 0) {
        free(poll);
        rc = err_set(err, VMCORE_ESYS, "uv_poll_init(pidfd): %s", uv_strerror(rc));
        goto fail_running;
    }
    poll->run = r;
    r->poll = poll;
    if ((rc = uv_poll_start(&poll->u.poll, UV_READABLE, pidfd_cb)) < 0) {
        rc = err_set(err, VMCORE_ESYS, "uv_poll_start(pidfd): %s", uv_strerror(rc));
        goto fail_running;
    }
    if (detach) {
        /* The caller's stdio, or a terminal whose master vmcore_domain_detach() hands over. */
        ct->console_fd = io.pty_master;
        io.pty_master = -1;
    } else if (terminal) {
        rc = stream_open(r, &r->out, io.pty_master, VMCORE_STREAM_CONSOLE, true, err);
        if (rc == 0) {
            io.pty_master = -1;
            r->pty = r->out;
        }
    } else {
        rc = stream_open(r, &r->out, io.parent[1], VMCORE_STREAM_STDOUT, true, err);
        if (rc == 0) {
            io.parent[1] = -1;
            rc = stream_open(r, &r->err, io.parent[2], VMCORE_STREAM_STDERR, true, err);
        }
        if (rc == 0)
            io.parent[2] = -1;
        if (rc == 0 && io.parent[0] >= 0) {
            if ((rc = ct_stdin_open(domain_loop(ct->d), io.parent[0], &r->in)) < 0)
                rc = err_set(err, rc, "cannot watch the container's stdin");
            else
                io.parent[0] = -1;
        }
    }
    if (rc < 0)
        goto fail_running;
    stdio_close(&io);
    return 0;

fail_running:
    stdio_close(&io);
    return rc; /* the caller frees @r, which kills and reaps */
fail_proc:
    ct_spawn_abort(&r->proc);
fail:
    if (tap_sv[0] >= 0)
        close(tap_sv[0]);
    stdio_close(&io);
    return rc;
}

static struct ct_run *run_new(struct ct *ct, bool is_exec, void *token)
{
    struct ct_run *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->ct = ct;
    r->is_exec = is_exec;
    r->token = token;
    r->proc.pid = -1;
    r->proc.pidfd = r->proc.sync_wr = r->proc.err_rd = -1;
    r->init_status_fd = -1;
    return r;
}

/* --- ops ------------------------------------------------------------------------------------- */

static int container_probe(vmcore_probe_result *out)
{
    snprintf(out->backend, sizeof out->backend, "%s", "container");
    const char *layout = cgroup_layout();
    const char *why = NULL;
    if (access("/proc/self/ns/pid", F_OK) < 0)
        why = "the kernel has no pid namespaces";
    else if (geteuid() != 0 && access("/proc/self/ns/user", F_OK) < 0)
        why = "needs root, or user namespaces for a rootless container";
    else if (geteuid() == 0 && !layout)
        why = "no cgroup filesystem is mounted at /sys/fs/cgroup";
    out->available = why == NULL;
    if (why) {
        snprintf(out->reason, sizeof out->reason, "%s", why);
        return VMCORE_EUNAVAIL;
    }
    if (geteuid() == 0)
        snprintf(out->reason, sizeof out->reason, "namespaces, cgroup %s layout, seccomp", layout);
    else
        snprintf(out->reason, sizeof out->reason,
                 "rootless: user namespace, seccomp; limits and pause need a delegated cgroup");
    return 0;
}

/* What config_parse() could not check because it needs the host as it is now: the
 * schema, ranges, names, addresses and paths were all validated there, once. */
static int check_host(const struct vmcore_config *cfg, struct vmcore_err *err)
{
    if ((cfg->network.mode == NET_MODE_VETH || cfg->network.mode == NET_MODE_BRIDGE) &&
        cfg->network.host_ifname && if_nametoindex(cfg->network.host_ifname))
        return err_config(err, VMCORE_ECONFIG, "network.host_ifname",
                          "an interface named %s already exists", cfg->network.host_ifname);
    return 0;
}

/* The veth's host end: network.host_ifname, or in mode "bridge" without one a name of
 * this process's, "vb" + pid + "." + a counter (hex, at most 15 characters). */
static void host_ifname(struct ct *ct)
{
    static unsigned counter;
    const struct vmcore_config *cfg = ct->cfg;
    if (cfg->network.host_ifname)
        snprintf(ct->host_if, sizeof ct->host_if, "%s", cfg->network.host_ifname);
    else if (cfg->network.mode == NET_MODE_BRIDGE)
        snprintf(ct->host_if, sizeof ct->host_if, "vb%x.%x", (unsigned)getpid() & 0xffffff,
                 __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED) & 0xffffff);
}

static int container_create(vmcore_domain *d, const struct vmcore_config *cfg, void **priv,
                            struct vmcore_err *err)
{
    int rc = check_host(cfg, err);
    if (rc < 0)
        return rc;
    struct ct *ct = calloc(1, sizeof *ct);
    if (!ct)
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    ct->d = d;
    ct->cfg = cfg;
    ct->cg.v2_fd = -1;
    host_ifname(ct);
    ct->console_fd = -1;
    /* Without root, a user namespace is what grants the rights the setup needs. */
    ct->userns = cfg->userns.enabled || geteuid() != 0;
    if ((rc = rootfs_check_exe(cfg->rootfs, cfg->process.args[0], cfg->process.env, ct->exe,
                               sizeof ct->exe, err)) < 0 ||
        (rc = seccomp_filter_build(&ct->filter, err)) < 0) {
        free(ct);
        return rc;
    }
    *priv = ct;
    return 0;
}

/* Stop the NAT's thread and close its listeners and the tap (the tap's device goes with
 * its last fd, or went with the container's namespace already). */
static void user_net_close(struct ct *ct)
{
    if (ct->slirp)
        ct->slirp->ops->close(ct->slirp);
    ct->slirp = NULL;
}

/* The veth (its peer goes with it) and then the bridge reference: the last domain on a
 * bridge the library created removes it and its NAT table. */
static void veth_close(struct ct *ct)
{
    if (ct->veth_made)
        net_link_delete(ct->host_if);
    ct->veth_made = false;
    bridge_release(ct->bridge);
    ct->bridge = NULL;
}

static int container_start(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    (void)d;
    struct ct *ct = priv;
    char name[256];
    const struct vmcore_config *cfg = ct->cfg;
    if (cfg->detach.cgroup)
        snprintf(name, sizeof name, "%s", cfg->detach.cgroup);
    else
        snprintf(name, sizeof name, "vmcore-%d-%lx", (int)getpid(), (unsigned long)(uintptr_t)ct);
    bool limits = cfg->limits.memory_bytes || cfg->limits.pids || cfg->limits.cpus > 0;
    /* First, so that a busy forwarded port fails the start before anything exists. */
    int rc;
    if (cfg->network.mode == NET_MODE_USER &&
        (rc = net_slirp_open_tap(cfg->network.ports, cfg->network.nports, &ct->slirp, err)) < 0)
        return rc;
    if (cfg->network.mode == NET_MODE_BRIDGE) {
        if ((rc = bridge_acquire(&cfg->network.bridge, "network.bridge", &ct->bridge, err)) < 0)
            return rc;
        uint32_t a;
        unsigned prefix;
        ct->gateway[0] = 0;
        if (cfg->network.bridge.address &&
            net_parse_cidr(cfg->network.bridge.address, &a, &prefix) == 0)
            inet_ntop(AF_INET, &a, ct->gateway, sizeof ct->gateway);
    }
    rc = cgroup_create(&ct->cg, name, cfg, err);
    if ((rc == VMCORE_EPERM || rc == VMCORE_EUNAVAIL) && !limits && geteuid() != 0) {
        /* Rootless without a delegated cgroup: run, just without pause and stats. */
        err_clear(err);
        memset(&ct->cg, 0, sizeof ct->cg);
        ct->cg.v2_fd = -1;
    } else if (rc < 0) {
        user_net_close(ct);
        veth_close(ct);
        return rc;
    } else {
        ct->cg_made = true;
    }
    ct->init = run_new(ct, false, NULL);
    if (!ct->init) {
        user_net_close(ct);
        veth_close(ct);
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    }
    if ((rc = run_start(ct, ct->init, ct->exe, NULL, err)) < 0) {
        run_free(ct->init);
        ct->init = NULL;
        veth_close(ct);
        user_net_close(ct);
        cgroup_destroy(&ct->cg);
        ct->cg_made = false;
        return rc;
    }
    ct->started = true;
    return 0;
}

static int signal_init(struct ct *ct, int sig, struct vmcore_err *err)
{
    if (!ct->init || ct->init->exited)
        return 0;
    if (ct_proc_signal(&ct->init->proc, sig) < 0 && errno != ESRCH)
        return err_sys(err, VMCORE_ESYS, errno, "signal %d to the container's init", sig);
    return 0;
}

static int container_pause(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    (void)d;
    struct ct *ct = priv;
    if (!ct->cg_made)
        return err_set(err, VMCORE_ENOTSUP, "pause needs a cgroup freezer, which this "
                       "unprivileged caller cannot create");
    return cgroup_freeze(&ct->cg, true, err);
}

static int container_resume(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    (void)d;
    struct ct *ct = priv;
    if (!ct->cg_made)
        return err_set(err, VMCORE_ENOTSUP, "resume needs a cgroup freezer");
    return cgroup_freeze(&ct->cg, false, err);
}

/* Whether @pid neither catches nor ignores @sig (its SigCgt/SigIgn in /proc). */
static bool sig_default(pid_t pid, int sig)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    unsigned long long mask = 1ull << (sig - 1);
    const char *keys[] = { "\nSigIgn:\t", "\nSigCgt:\t" };
    for (int i = 0; i < 2; i++) {
        const char *p = strstr(buf, keys[i]);
        if (!p || (strtoull(p + strlen(keys[i]), NULL, 16) & mask))
            return false;
    }
    return true;
}

static int container_shutdown(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    (void)d;
    struct ct *ct = priv;
    if (ct->detached)
        return 0;
    /* A frozen group would hold the signal until resumed. */
    if (ct->cg_made)
        cgroup_freeze(&ct->cg, false, NULL);
    /* The kernel drops a signal to a pid namespace's init that has no handler for it,
     * so a workload run as PID 1 (sh, sleep: no process.init) would ignore SIGTERM and
     * every shutdown would wait out its timeout. Give it what SIGTERM gives any other
     * process that neither catches nor ignores it: the end, reported as SIGTERM. */
    struct ct_run *r = ct->init;
    if (r && !r->exited && !ct->cfg->process.init && r->proc.pid > 0 &&
        sig_default(r->proc.pid, SIGTERM)) {
        r->term_default = true;
        return signal_init(ct, SIGKILL, err);
    }
    return signal_init(ct, SIGTERM, err);
}

static int container_kill(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    (void)d;
    struct ct *ct = priv;
    if (ct->detached)
        return 0; /* not ours any more; its "exit" (detached) is posted already */
    int rc = signal_init(ct, SIGKILL, err);
    if (ct->cg_made) {
        cgroup_kill_all(&ct->cg);
        cgroup_freeze(&ct->cg, false, NULL);
    }
    return rc;
}

static int container_stats(vmcore_domain *d, void *priv, vmcore_stats *out, struct vmcore_err *err)
{
    (void)d;
    struct ct *ct = priv;
    if (ct->veth_made)
        net_link_counters(ct->host_if, out);
    if (ct->slirp)
        net_slirp_counters(ct->slirp, &out->net_rx_bytes, &out->net_rx_packets,
                           &out->net_tx_bytes, &out->net_tx_packets);
    if (!ct->cg_made)
        return 0;
    return cgroup_stats(&ct->cg, out, err);
}

struct write_req {
    uv_write_t req;
    char data[];
};

static void write_done_cb(uv_write_t *req, int status)
{
    (void)status; /* a terminal whose program ended is not an error of the caller */
    free(req);
}

static int container_console_write(vmcore_domain *d, void *priv, const void *data, size_t len,
                                   struct vmcore_err *err)
{
    (void)d;
    struct ct *ct = priv;
    struct ct_run *r = ct->init;
    if (r && r->in) {
        if (!ct_stdin_is_open(r->in))
            return err_set(err, VMCORE_ESTATE, "the container's stdin is closed");
        int rc = ct_stdin_write(r->in, data, len);
        return rc < 0 ? err_set(err, rc, "write to the container's stdin failed") : 0;
    }
    if (!r || !r->pty)
        return err_set(err, VMCORE_ESTATE, "the container's stdin is closed");
    /* A pty never raises SIGPIPE (EIO instead), so libuv may write it. */
    if (len == 0) {
        data = "\x04"; /* end of input on a terminal: ^D */
        len = 1;
    }
    struct write_req *w = malloc(sizeof *w + len);
    if (!w)
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&r->pty->u.pipe, &b, 1, write_done_cb);
    if (rc < 0) {
        free(w);
        return err_set(err, VMCORE_ESYS, "write to the container's terminal: %s", uv_strerror(rc));
    }
    return 0;
}

/* The terminal's window size: remembered for the start, and set on a running pty. */
static int container_console_resize(vmcore_domain *d, void *priv, unsigned rows,
                                    unsigned cols, struct vmcore_err *err)
{
    (void)d;
    struct ct *ct = priv;
    if (!ct->cfg->process.terminal)
        return err_set(err, VMCORE_ENOTSUP, "resize_console: the console is pipes, which "
                       "have no window size (set \"process.terminal\": true)");
    struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
    ct->winsize = ws;
    struct ct_run *r = ct->init;
    uv_os_fd_t fd;
    if (r && r->pty && uv_fileno(&r->pty->u.h, &fd) == 0 && ioctl(fd, TIOCSWINSZ, &ws) < 0)
        return err_sys(err, VMCORE_ESYS, errno, "resize_console: TIOCSWINSZ");
    return 0;
}

static int container_exec(vmcore_domain *d, void *priv, const char *const *argv, void *token,
                          struct vmcore_err *err)
{
    (void)d;
    struct ct *ct = priv;
    if (!ct->init || ct->init->exited)
        return err_set(err, VMCORE_ESTATE, "the container is not running");
    if (!argv || !argv[0])
        return err_set(err, VMCORE_EINVAL, "exec: empty argv");
    char exe[4096];
    int rc = rootfs_check_exe(ct->cfg->rootfs, argv[0], ct->cfg->process.env, exe, sizeof exe, err);
    if (rc < 0) {
        /* the message names the exec's argv, not the configuration */
        err->path[0] = 0;
        return rc;
    }
    struct ct_run *r = run_new(ct, true, token);
    if (!r)
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    if ((rc = run_start(ct, r, exe, argv, err)) < 0) {
        run_free(r);
        return rc;
    }
    r->next = ct->execs;
    ct->execs = r;
    return 0;
}

static void run_resume_reading(struct ct_run *r)
{
    struct ct_handle *hs[2] = { r->out, r->err };
    for (unsigned i = 0; i < 2; i++)
        if (hs[i] && hs[i]->stalled) {
            hs[i]->stalled = false;
            uv_read_start((uv_stream_t *)&hs[i]->u.pipe, stream_alloc_cb, stream_read_cb);
        }
}

/* The console queue has room again: read the streams stopped when it was full. */
static void container_console_drained(vmcore_domain *d, void *priv)
{
    (void)d;
    struct ct *ct = priv;
    if (!ct)
        return;
    if (ct->init)
        run_resume_reading(ct->init);
    for (struct ct_run *r = ct->execs; r; r = r->next)
        run_resume_reading(r);
}

const char *const ct_cgroup_ctrl_names[CG_NCTRL] = { "memory", "pids", "cpu", "cpuacct",
                                                     "freezer", "devices" };

/* The state vmcore_detached_*() take (detached.c parses it back). */
static int detached_state(const struct ct *ct, pid_t pid, char *buf, size_t cap,
                          struct vmcore_err *err)
{
    json_t *groups = json_object(), *o = json_object();
    for (int i = 0; ct->cg_made && groups && i < (ct->cg.v2 ? 1 : CG_NCTRL); i++)
        if (ct->cg.path[i][0])
            json_object_set_new(groups, ct->cg.v2 ? "unified" : ct_cgroup_ctrl_names[i],
                                json_string(ct->cg.path[i]));
    if (o) {
        json_object_set_new(o, "pid", json_integer(pid));
        json_object_set_new(o, "v2", json_boolean(ct->cg.v2));
    }
    size_t n = 0;
    if (o && groups && json_object_set_new(o, "cgroups", groups) == 0) {
        groups = NULL;
        n = json_dumpb(o, buf, cap - 1, JSON_COMPACT);
    }
    json_decref(groups);
    json_decref(o);
    if (n == 0 || n >= cap - 1)
        return err_set(err, VMCORE_ELIMIT, "detach: the cgroup paths do not fit the state");
    buf[n] = 0;
    return 0;
}

static int container_detach(vmcore_domain *d, void *priv, vmcore_detached *out,
                            struct vmcore_err *err)
{
    (void)d;
    struct ct *ct = priv;
    if (!ct->cfg->detach.enabled)
        return err_set(err, VMCORE_ENOTSUP, "detach: the configuration has no \"detach\" key");
    struct ct_run *r = ct->init;
    if (!r || r->exited || r->proc.pidfd < 0)
        return err_set(err, VMCORE_ESTATE, "detach: the container's process has ended");
    int rc = detached_state(ct, r->proc.pid, out->state, sizeof out->state, err);
    if (rc < 0)
        return rc;
    /* Exec'd processes are the handle's: they end now, as at a close. */
    while (ct->execs) {
        struct ct_run *x = ct->execs;
        ct->execs = x->next;
        run_free(x);
    }
    out->pid = r->proc.pid;
    out->console_fd = ct->console_fd;
    ct->console_fd = -1;
    /* Stop watching without reaping: the process stays our child, unreaped, so its pid
     * cannot be reused while we run; run_free() must not kill it. */
    handle_close(&r->poll);
    close(r->proc.pidfd);
    r->proc.pidfd = -1;
    r->proc.pid = -1;
    ct->detached = true;
    return 0;
}

static void container_destroy(vmcore_domain *d, void *priv)
{
    (void)d;
    struct ct *ct = priv;
    if (!ct)
        return;
    if (ct->console_fd >= 0)
        close(ct->console_fd);
    if (ct->detached) {
        /* The container runs on; only this process's handles go. */
        if (ct->init)
            run_free(ct->init);
        if (ct->cg.v2_fd >= 0)
            close(ct->cg.v2_fd);
        seccomp_filter_free(&ct->filter);
        free(ct);
        return;
    }
    if (ct->cg_made) {
        /* Frozen tasks cannot die: thaw after the kill so none of them runs again. */
        cgroup_kill_all(&ct->cg);
        cgroup_freeze(&ct->cg, false, NULL);
    }
    while (ct->execs) {
        struct ct_run *r = ct->execs;
        ct->execs = r->next;
        run_free(r);
    }
    if (ct->init)
        run_free(ct->init);
    veth_close(ct);
    user_net_close(ct);
    if (ct->cg_made)
        cgroup_destroy(&ct->cg);
    seccomp_filter_free(&ct->filter);
    free(ct);
}

const struct backend_ops backend_container_ops = {
    .name = "container",
    .probe = container_probe,
    .create = container_create,
    .start = container_start,
    .pause = container_pause,
    .resume = container_resume,
    .shutdown = container_shutdown,
    .kill = container_kill,
    .stats = container_stats,
    .console_write = container_console_write,
    .console_resize = container_console_resize,
    .console_drained = container_console_drained,
    .exec = container_exec,
    .detach = container_detach,
    .destroy = container_destroy,
};
