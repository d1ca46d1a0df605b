/* Internal interfaces of the container backend (lib/backend/container).
 *
 * The parent side (container.c, cgroup.c, net.c host half) runs on the loop thread and
 * may allocate. The child side (spawn.c, rootfs.c, caps.c, net.c child half) runs in the
 * clone3() child of a possibly multi-threaded process, between clone3 and execve: it
 * only makes system calls on memory prepared by the parent, never mallocs or locks. */
#ifndef VMCORE_CT_H
#define VMCORE_CT_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "core/config.h"
#include "core/err.h"
#include "vmcore/domain.h"

/* --- errors reported by the child through its error pipe ------------------------ */
struct ct_child_err {
    int code;        /* VMCORE_E*; 0 with @pid: not an error, exec's middle process
                        reporting the pid of the process it cloned into the container */
    int errnum;      /* errno, 0 if none */
    int pid;
    char msg[400];
};
/* Fill @e and return -1 (child side; no allocation). */
int ct_child_fail(struct ct_child_err *e, int code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* --- child-side helpers (spawn.c): async-signal-safe, for a fork of a possibly
 * multi-threaded process (the container's processes, the cgroup watcher) ------------- */
/* Close every descriptor but the @n (at most 16) in @keep; -1 entries are ignored. */
void ct_keep_only_fds(const int *keep, int n);
/* Block every signal (SIG_BLOCK, true) or none (SIG_SETMASK, false), glibc's own included
 * (its wrapper keeps them out of the mask). */
void ct_set_sigmask(int how, bool all);
/* clone3 with CLONE_PIDFD, exit signal 0 (no SIGCHLD reaches the application) and, with
 * @cgroup_fd >= 0, CLONE_INTO_CGROUP; clone(2) where clone3 is missing, and then the group
 * is not joined. *@in_cgroup says whether it was. Returns like fork(). */
long ct_clone_pidfd(uint64_t flags, int cgroup_fd, int *pidfd, bool *in_cgroup);

/* --- cgroups (cgroup.c) ---------------------------------------------------------- */
enum cg_ctrl { CG_MEMORY, CG_PIDS, CG_CPU, CG_CPUACCT, CG_FREEZER, CG_DEVICES, CG_NCTRL };
/* The controllers' names, in that order (the keys of a detached container's state). */
extern const char *const ct_cgroup_ctrl_names[CG_NCTRL];

struct ct_cgroup {
    bool v2;                    /* unified hierarchy at /sys/fs/cgroup */
    bool created;
    char path[CG_NCTRL][4096];  /* v1: one folder per controller ("" if absent); v2: [0] */
    int v2_fd;                  /* v2: O_PATH fd for CLONE_INTO_CGROUP, else -1 */
    bool dev_prog;              /* v2: our BPF device program is attached */
    pid_t watch_pid;            /* the watcher process (see cgroup_create_at), 0 if none */
    int watch_pidfd;            /* its pidfd, valid while watch_pid > 0 */
};

/* Whether the group enforces Docker's device allow-list: the v1 devices controller, or
 * on v2 a BPF_PROG_TYPE_CGROUP_DEVICE program (needs bpf(2) rights: root or CAP_BPF +
 * CAP_NET_ADMIN). Without it the container must not get CAP_MKNOD. */
bool cgroup_has_device_policy(const struct ct_cgroup *cg);
/* Which layout the host has: "v2", "v1" or "hybrid"; NULL when no usable cgroup fs. */
const char *cgroup_layout(void);
/* Make the per-container group(s) under this process's own group and apply @cfg's limits.
 * The group comes with a watcher: a child process, outside the group, that outlives this
 * process; if this process dies without cgroup_destroy(), it kills everything in the
 * group, thaws it and removes it (a frozen task cannot act on PR_SET_PDEATHSIG's SIGKILL).
 * Without a watcher there is no group: the call fails and leaves nothing behind. */
int cgroup_create(struct ct_cgroup *cg, const char *name, const struct vmcore_config *cfg,
                  struct vmcore_err *err);
/* The same under an explicit mount point and layout (tests exercise v2 on a hybrid host). */
int cgroup_create_at(struct ct_cgroup *cg, const char *root, bool v2, const char *name,
                     const struct vmcore_config *cfg, struct vmcore_err *err);
/* Move @pid into the group (every v1 controller's, or the v2 one when CLONE_INTO_CGROUP
 * could not be used). */
int cgroup_attach(struct ct_cgroup *cg, pid_t pid, struct vmcore_err *err);
int cgroup_freeze(struct ct_cgroup *cg, bool frozen, struct vmcore_err *err);
int cgroup_stats(struct ct_cgroup *cg, vmcore_stats *out, struct vmcore_err *err);
/* SIGKILL every process in the group; returns how many were signalled. */
int cgroup_kill_all(struct ct_cgroup *cg);
/* Kill what is left, wait for the group to empty, remove it, then stop and reap the
 * watcher. Idempotent. Returns 0, or -errno of a folder that could not be removed. */
int cgroup_destroy(struct ct_cgroup *cg);

/* --- seccomp (seccomp.c) ---------------------------------------------------------- */
/* Build the default filter as BPF (parent side). Free with seccomp_filter_free(). */
int seccomp_filter_build(struct sock_fprog *out, struct vmcore_err *err);
void seccomp_filter_free(struct sock_fprog *prog);

/* --- capabilities (caps.c, child side) ------------------------------------------- */
/* Docker's default capability set, as a bit mask. */
uint64_t caps_default_mask(void);
/* Drop the bounding set and ambient caps to @keep, switch to @uid/@gid, leave exactly
 * @keep permitted/effective/inheritable for uid 0, and set no_new_privs. */
int caps_apply(uint64_t keep, uint32_t uid, uint32_t gid, bool userns, struct ct_child_err *e);

/* --- network (net.c) ------------------------------------------------------------- */
/* Child side: bring "lo" up; with @addr (CIDR), configure and raise @ifname too, and
 * with @gw (an IPv4 address) give it the default route through @gw. */
int net_child_setup(const char *ifname, const char *addr, const char *gw,
                    struct ct_child_err *e);
/* Child side, mode "user": create the tap @ifname (IFF_TAP | IFF_NO_PI) in this process's
 * network namespace and send its fd over the AF_UNIX socket @sock (SCM_RIGHTS). */
int net_child_tap(int sock, const char *ifname, struct ct_child_err *e);
/* Host side: make a veth pair, @host_ifname here, @peer_ifname inside @pid's netns;
 * give the host end @host_addr (CIDR, may be NULL) and bring it up. */
int net_veth_create(const char *host_ifname, const char *peer_ifname, pid_t pid,
                    const char *host_addr, struct vmcore_err *err);
/* Delete a link by name; 0 if deleted or already gone. */
int net_link_delete(const char *ifname);
/* The traffic of the container behind host interface @ifname (the host end of its veth):
 * the net_* fields of @out, the host end's rx being the container's tx. Counters it
 * cannot read stay as they are. */
void net_link_counters(const char *ifname, vmcore_stats *out);
/* Parse "a.b.c.d/len"; 0 on success. */
int net_parse_cidr(const char *s, uint32_t *addr_be, unsigned *prefix);

/* --- root filesystem (rootfs.c) --------------------------------------------------- */
/* Parent side: @path resolved inside @rootfs (symlinks stay inside) must be a regular
 * executable file; for a bare name, search PATH from @env. Writes the in-container path
 * to @out. */
int rootfs_check_exe(const char *rootfs, const char *arg0, char *const *env, char *out,
                     size_t outlen, struct vmcore_err *err);
/* Resolve @path inside the folder @rootfd as if it were "/" (openat2 RESOLVE_IN_ROOT, or
 * a component-by-component walk without it): symlinks and ".." never leave it. With
 * RR_MKDIR or RR_MKFILE, missing components are created inside it (folders 0755; the last
 * one a folder or an empty file of @mode). Returns an O_PATH fd, or -1 with errno.
 * RR_WALK forces the walk (tests). Child side safe: no allocation. */
enum { RR_MKDIR = 1, RR_MKFILE = 2, RR_WALK = 4 };
int rootfs_resolve(int rootfd, const char *path, unsigned flags, mode_t mode);
/* Child side: mount everything and pivot_root into cfg->rootfs. cwd is "/" afterwards. */
int rootfs_setup(const struct vmcore_config *cfg, bool userns, const char *console_path,
                 struct ct_child_err *e);

/* --- stdin (console.c) ------------------------------------------------------------ */
struct ct_stdin;
/* Take ownership of @fd (the write end of the container's stdin pipe). *@slot receives
 * the writer and is reset to NULL when it closes (after EOF, or when the reader left). */
int ct_stdin_open(uv_loop_t *loop, int fd, struct ct_stdin **slot);
/* Queue bytes (copied); @len 0 closes once everything queued is written. */
int ct_stdin_write(struct ct_stdin *s, const void *data, size_t len);
bool ct_stdin_is_open(const struct ct_stdin *s);
/* Drop what is queued and close the pipe. NULL is ignored. */
void ct_stdin_close(struct ct_stdin *s);

/* --- spawning (spawn.c) ------------------------------------------------------------ */
struct ct_spawn {
    const struct vmcore_config *cfg;
    const char *exe;            /* path of args[0] inside the container */
    const char *const *argv;    /* defaults to cfg->process.args */
    const struct sock_fprog *filter;
    uint64_t caps;
    bool new_net;               /* a fresh net namespace (none / veth) */
    bool userns;                /* a user namespace (configured, or rootless) */
    const char *veth_addr;      /* inside address for "eth0", or NULL */
    const char *gateway;        /* default route via this address on "eth0", or NULL */
    int tap_sock;               /* mode "user": make the tap "eth0" and send its fd here
                                   (the child's end of a socket pair), else -1 */
    int cgroup_fd;              /* v2 group for CLONE_INTO_CGROUP, or -1 */
    int join_pidfd;             /* exec: pidfd of the container's init, else -1 */
    int stdio[3];               /* child's stdin/stdout/stderr */
    int pty_slave;              /* terminal mode: the slave (also in stdio), else -1 */
    int init_status_fd;         /* process.init: the init writes the workload's killing
                                   signal here (an int) before exiting, else -1 */
    const char *pty_slave_path; /* for /dev/console, or NULL */
    int init_image_fd;          /* process.init: sealed memfd of the built-in init, else -1 */
    bool detached;              /* cfg->detach: no PR_SET_PDEATHSIG */
    int hold_fd;                /* detach.hold: O_PATH fd of the FIFO, else -1 */
};

/* The child's report (pid field, code 0) that it waits on detach.hold, set up. */
#define CT_CHILD_HELD (-2)

struct ct_proc {
    pid_t pid;
    int pidfd;
    int sync_wr;                /* write a byte to let the child continue */
    int err_rd;                 /* EOF = exec'd; data = struct ct_child_err */
    bool in_cgroup;             /* CLONE_INTO_CGROUP placed it already */
    bool joining;               /* exec: until released, pid/pidfd are the middle process
                                   (see spawn.c); then the process in the container */
};

/* The built-in init (init/ct_init.c) in a new sealed, close-on-exec memfd; -1 with @err. */
int ct_init_image_fd(struct vmcore_err *err);

/* clone3 the child; it waits for ct_spawn_release(). */
int ct_spawn(const struct ct_spawn *s, struct ct_proc *p, struct vmcore_err *err);
/* Let the child go and wait until it has exec'd (0) or failed (error with its message);
 * with a hold FIFO, until it waits there (0). */
int ct_spawn_release(struct ct_proc *p, struct vmcore_err *err);
/* Signal a child that has not been reaped yet; 0 or -1 with errno. */
int ct_proc_signal(struct ct_proc *p, int sig);
/* Kill and reap a child that has not been handed to the loop yet. */
void ct_spawn_abort(struct ct_proc *p);

#endif
