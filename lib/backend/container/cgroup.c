/* Per-container cgroups on the unified (v2), legacy (v1) and hybrid layouts.
 *
 * The group is made under this process's own group in each hierarchy, so a caller that
 * was itself given a delegated subtree (systemd, a CI runner) keeps its accounting. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/magic.h>

#include "ct.h"

#define CG_ROOT "/sys/fs/cgroup"

static const char *const ctrl_name[CG_NCTRL] = { "memory", "pids", "cpu", "cpuacct", "freezer",
                                                  "devices" };

/* Docker's default device rules: create any node, but open only the harmless ones. */
static const char *const device_allow[] = {
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", /* null zero full random urandom */
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm",                           /* tty console ptmx */
    "c 136:* rwm", "c 10:200 rwm",                                   /* pts, tun */
};

static bool is_fs(const char *path, long magic)
{
    struct statfs s;
    return statfs(path, &s) == 0 && s.f_type == magic;
}

const char *cgroup_layout(void)
{
    if (is_fs(CG_ROOT, CGROUP2_SUPER_MAGIC))
        return "v2";
    for (int i = 0; i < CG_NCTRL; i++) {
        char p[128];
        snprintf(p, sizeof p, CG_ROOT "/%s", ctrl_name[i]);
        if (is_fs(p, CGROUP_SUPER_MAGIC))
            return is_fs(CG_ROOT "/unified", CGROUP2_SUPER_MAGIC) ? "hybrid" : "v1";
    }
    return NULL;
}

/* This process's group in the hierarchy holding @ctrl (NULL: the unified one). */
static int own_group(const char *ctrl, char *out, size_t len)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return -1;
    char line[4096];
    int found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c1 = *c2 = 0;
        const char *list = c1 + 1, *path = c2 + 1;
        if (!ctrl) {
            if (*list == 0 && strcmp(line, "0") == 0)
                found = 0;
        } else {
            char tmp[256];
            snprintf(tmp, sizeof tmp, "%s", list);
            for (char *save, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save))
                if (strcmp(t, ctrl) == 0)
                    found = 0;
        }
        if (found == 0)
            snprintf(out, len, "%s", strcmp(path, "/") == 0 ? "" : path);
    }
    fclose(f);
    return found;
}

static int write_file(const char *dir, const char *file, const char *val)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, val, strlen(val));
    int e = n < 0 ? errno : 0;
    close(fd);
    return -e;
}

static int read_file(const char *dir, const char *file, char *buf, size_t len)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, len - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = 0;
    return (int)n;
}

static int set_limit(const char *dir, const char *file, const char *val, const char *field,
                     struct vmcore_err *err)
{
    int r = write_file(dir, file, val);
    if (r < 0)
        return err_sys(err, r == -EINVAL ? VMCORE_ECONFIG : VMCORE_ESYS, -r,
                       "%s: cannot set %s/%s to %s", field, dir, file, val);
    return 0;
}

bool cgroup_has_device_policy(const struct ct_cgroup *cg)
{
    return cg->v2 ? cg->dev_prog : cg->path[CG_DEVICES][0] != 0;
}

/* --- v2: the same rules as a BPF_PROG_TYPE_CGROUP_DEVICE program ----------------------- */

struct dev_prog {
    struct bpf_insn insn[160];
    int n;
    int to_allow[32], nallow; /* jumps to patch to the final "return 1" */
};

static void emit(struct dev_prog *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
    if (p->n < (int)(sizeof p->insn / sizeof p->insn[0]))
        p->insn[p->n] = (struct bpf_insn){ .code = code, .dst_reg = dst & 0xf, .src_reg = src & 0xf,
                                           .off = off, .imm = imm };
    p->n++;
}

/* Compile the allow-list. Registers: r2 access (BPF_DEVCG_ACC_*), r3 type
 * (BPF_DEVCG_DEV_*), r4 major, r5 minor; r6 scratch. A request is allowed when some rule
 * matches its type and numbers and grants every access it asks for. */
static int dev_prog_build(struct dev_prog *p)
{
    memset(p, 0, sizeof *p);
    emit(p, BPF_LDX | BPF_MEM | BPF_W, 2, 1, offsetof(struct bpf_cgroup_dev_ctx, access_type), 0);
    emit(p, BPF_ALU64 | BPF_MOV | BPF_X, 3, 2, 0, 0);
    emit(p, BPF_ALU64 | BPF_AND | BPF_K, 3, 0, 0, 0xffff);
    emit(p, BPF_ALU64 | BPF_RSH | BPF_K, 2, 0, 0, 16);
    emit(p, BPF_LDX | BPF_MEM | BPF_W, 4, 1, offsetof(struct bpf_cgroup_dev_ctx, major), 0);
    emit(p, BPF_LDX | BPF_MEM | BPF_W, 5, 1, offsetof(struct bpf_cgroup_dev_ctx, minor), 0);
    for (size_t i = 0; i < sizeof device_allow / sizeof device_allow[0]; i++) {
        char type, maj[8], min[8], acc[4];
        if (sscanf(device_allow[i], "%c %7[^:]:%7s %3s", &type, maj, min, acc) != 4)
            return -1;
        int32_t want = 0;
        for (const char *a = acc; *a; a++)
            want |= *a == 'r' ? BPF_DEVCG_ACC_READ : *a == 'w' ? BPF_DEVCG_ACC_WRITE : BPF_DEVCG_ACC_MKNOD;
        int to_next[3], nnext = 0;
        to_next[nnext++] = p->n;
        emit(p, BPF_JMP | BPF_JNE | BPF_K, 3, 0, 0, type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
        if (strcmp(maj, "*") != 0) {
            to_next[nnext++] = p->n;
            emit(p, BPF_JMP | BPF_JNE | BPF_K, 4, 0, 0, atoi(maj));
        }
        if (strcmp(min, "*") != 0) {
            to_next[nnext++] = p->n;
            emit(p, BPF_JMP | BPF_JNE | BPF_K, 5, 0, 0, atoi(min));
        }
        emit(p, BPF_ALU64 | BPF_MOV | BPF_X, 6, 2, 0, 0);
        emit(p, BPF_ALU64 | BPF_AND | BPF_K, 6, 0, 0, ~want & 0xffff);
        if (p->nallow >= (int)(sizeof p->to_allow / sizeof p->to_allow[0]))
            return -1;
        p->to_allow[p->nallow++] = p->n;
        emit(p, BPF_JMP | BPF_JEQ | BPF_K, 6, 0, 0, 0);
        for (int j = 0; j < nnext; j++)
            p->insn[to_next[j]].off = (int16_t)(p->n - to_next[j] - 1);
    }
    emit(p, BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0); /* deny */
    emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    for (int j = 0; j < p->nallow; j++)
        p->insn[p->to_allow[j]].off = (int16_t)(p->n - p->to_allow[j] - 1);
    emit(p, BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1); /* allow */
    emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    return p->n <= (int)(sizeof p->insn / sizeof p->insn[0]) ? 0 : -1;
}

/* Load the program and attach it to the group; the group holds it from then on (it goes
 * with the group's rmdir). Without bpf(2) rights or support, the group has no device
 * policy and the container gets no CAP_MKNOD (see cgroup_has_device_policy). */
static void attach_device_prog(struct ct_cgroup *cg)
{
    struct dev_prog p;
    if (dev_prog_build(&p) < 0)
        return;
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    a.insns = (uint64_t)(uintptr_t)p.insn;
    a.insn_cnt = (uint32_t)p.n;
    a.license = (uint64_t)(uintptr_t)"GPL";
    int prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a);
    if (prog < 0)
        return;
    int dir = open(cg->path[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        memset(&a, 0, sizeof a);
        a.target_fd = (uint32_t)dir;
        a.attach_bpf_fd = (uint32_t)prog;
        a.attach_type = BPF_CGROUP_DEVICE;
        cg->dev_prog = syscall(SYS_bpf, BPF_PROG_ATTACH, &a, sizeof a) == 0;
        close(dir);
    }
    close(prog);
}

static int apply_device_policy(struct ct_cgroup *cg, struct vmcore_err *err)
{
    if (cg->v2) {
        attach_device_prog(cg);
        return 0;
    }
    if (!cgroup_has_device_policy(cg))
        return 0;
    const char *dir = cg->path[CG_DEVICES];
    int r = write_file(dir, "devices.deny", "a");
    for (size_t i = 0; r == 0 && i < sizeof device_allow / sizeof device_allow[0]; i++)
        r = write_file(dir, "devices.allow", device_allow[i]);
    if (r < 0)
        return err_sys(err, VMCORE_ESYS, -r, "device rules in %s", dir);
    return 0;
}

static int apply_limits(struct ct_cgroup *cg, const struct vmcore_config *cfg,
                        struct vmcore_err *err)
{
    char v[64];
    if (apply_device_policy(cg, err) < 0)
        return err->code;
    const char *mem = cg->v2 ? cg->path[0] : cg->path[CG_MEMORY];
    const char *pids = cg->v2 ? cg->path[0] : cg->path[CG_PIDS];
    const char *cpu = cg->v2 ? cg->path[0] : cg->path[CG_CPU];
    if (cfg->limits.memory_bytes) {
        if (!*mem)
            return err_set(err, VMCORE_EUNAVAIL, "limits.memory_bytes: no memory cgroup controller");
        snprintf(v, sizeof v, "%llu", (unsigned long long)cfg->limits.memory_bytes);
        if (set_limit(mem, cg->v2 ? "memory.max" : "memory.limit_in_bytes", v, "limits.memory_bytes", err))
            return err->code;
        /* A hard limit means no escape into swap either (best effort: swap accounting may be off). */
        if (cg->v2)
            write_file(mem, "memory.swap.max", "0");
        else
            write_file(mem, "memory.memsw.limit_in_bytes", v);
    }
    if (cfg->limits.pids) {
        if (!*pids)
            return err_set(err, VMCORE_EUNAVAIL, "limits.pids: no pids cgroup controller");
        snprintf(v, sizeof v, "%llu", (unsigned long long)cfg->limits.pids);
        if (set_limit(pids, "pids.max", v, "limits.pids", err))
            return err->code;
    }
    if (cfg->limits.cpus > 0) {
        if (!*cpu)
            return err_set(err, VMCORE_EUNAVAIL, "limits.cpus: no cpu cgroup controller");
        const unsigned period = 100000;
        unsigned long long quota = (unsigned long long)(cfg->limits.cpus * period + 0.5);
        if (quota < 1000)
            quota = 1000;
        if (cg->v2) {
            snprintf(v, sizeof v, "%llu %u", quota, period);
            if (set_limit(cpu, "cpu.max", v, "limits.cpus", err))
                return err->code;
        } else {
            snprintf(v, sizeof v, "%u", period);
            if (set_limit(cpu, "cpu.cfs_period_us", v, "limits.cpus", err))
                return err->code;
            snprintf(v, sizeof v, "%llu", quota);
            if (set_limit(cpu, "cpu.cfs_quota_us", v, "limits.cpus", err))
                return err->code;
        }
    }
    return 0;
}

int cgroup_create(struct ct_cgroup *cg, const char *name, const struct vmcore_config *cfg,
                  struct vmcore_err *err)
{
    const char *layout = cgroup_layout();
    if (!layout) {
        memset(cg, 0, sizeof *cg);
        cg->v2_fd = -1;
        return err_set(err, VMCORE_EUNAVAIL, "no cgroup filesystem mounted at " CG_ROOT);
    }
    return cgroup_create_at(cg, CG_ROOT, strcmp(layout, "v2") == 0, name, cfg, err);
}

/* Remove empty groups left by a process of ours that died without closing its domains
 * (killed, crashed). Groups of live processes, and non-empty ones, are left alone. */
static void collect_stale(const char *parent)
{
    DIR *dir = opendir(parent);
    if (!dir)
        return;
    struct dirent *e;
    while ((e = readdir(dir))) {
        int pid;
        if (sscanf(e->d_name, "vmcore-%d-", &pid) != 1 || pid <= 0 || pid == getpid())
            continue;
        if (kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", parent, e->d_name);
        rmdir(p);
    }
    closedir(dir);
}

/* --- the watcher ------------------------------------------------------------------------
 *
 * PR_SET_PDEATHSIG kills a container when the thread that started it dies, but a task in
 * a frozen v1 group cannot act on the SIGKILL, and nothing removes the group of a dead
 * process. So every group gets a watcher: a child of ours (exit_signal 0: no SIGCHLD for
 * the application, invisible to its wait(); we reap it in cgroup_destroy) that holds a
 * pidfd of this process and sleeps in ppoll() on it. The pidfd turns readable only when
 * the whole process has ended (every thread; a stray fork of it holding fds does not keep
 * it alive). Then the watcher kills what is in the group, thaws it, removes the folders
 * and exits. cgroup_destroy() stops it with SIGKILL after removing the group itself.
 *
 * The watcher is a fork of a possibly multi-threaded process: it makes raw system calls
 * on memory prepared before the clone only (the plan below, a static buffer), and calls
 * only async-signal-safe functions (strlen, strstr, spawn.c's child-side helpers): it
 * never mallocs, locks or touches stdio. All its signals are blocked; SIGKILL still ends it. */

struct watch_plan {
    int host_pidfd;
    bool v2;
    int ndirs;
    const char *dirs[CG_NCTRL];  /* distinct group folders (point into the ct_cgroup) */
    const char *freezer;         /* the folder with the freezer (v2: the group), or NULL */
};

static char watch_buf[65536];   /* the child's copy only; the parent never touches it */
static char watch_path[4352];

static const char *w_join(const char *dir, const char *file)
{
    size_t i = 0, j = 0;
    while (dir[j] && i < sizeof watch_path - 64)
        watch_path[i++] = dir[j++];
    watch_path[i++] = '/';
    for (j = 0; file[j] && i < sizeof watch_path - 1; j++)
        watch_path[i++] = file[j];
    watch_path[i] = 0;
    return watch_path;
}

static long w_write(const char *dir, const char *file, const char *val)
{
    long fd = syscall(SYS_openat, AT_FDCWD, w_join(dir, file), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long n = syscall(SYS_write, fd, val, strlen(val));
    syscall(SYS_close, fd);
    return n;
}

/* The whole file into watch_buf (what fits), NUL-terminated; the length or -1. */
static long w_read(const char *dir, const char *file)
{
    long fd = syscall(SYS_openat, AT_FDCWD, w_join(dir, file), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long len = 0, n;
    while (len < (long)sizeof watch_buf - 1 &&
           (n = syscall(SYS_read, fd, watch_buf + len, sizeof watch_buf - 1 - len)) > 0)
        len += n;
    syscall(SYS_close, fd);
    watch_buf[len] = 0;
    return len;
}

static void w_nap(long ns)
{
    struct timespec ts = { 0, ns };
    syscall(SYS_nanosleep, &ts, NULL);
}

/* Freeze the group, so the pids read next cannot exit and be reused before the kill;
 * bounded: a task in an uninterruptible sleep may hold the group in FREEZING. */
static void w_freeze(const struct watch_plan *p)
{
    if (!p->freezer)
        return;
    w_write(p->freezer, p->v2 ? "cgroup.freeze" : "freezer.state", p->v2 ? "1" : "FROZEN");
    for (int i = 0; i < 200; i++) {
        if (p->v2 ? w_read(p->freezer, "cgroup.events") >= 0 && strstr(watch_buf, "frozen 1")
                  : w_read(p->freezer, "freezer.state") >= 0 && strstr(watch_buf, "FROZEN"))
            return;
        w_nap(1000000);
    }
}

static void w_kill_round(const struct watch_plan *p)
{
    if (!(p->v2 && w_write(p->dirs[0], "cgroup.kill", "1") > 0)) {
        w_freeze(p);
        for (int d = 0; d < p->ndirs; d++) {
            if (w_read(p->dirs[d], "cgroup.procs") <= 0)
                continue;
            long pid = 0;
            for (const char *c = watch_buf; *c; c++) {
                if (*c >= '0' && *c <= '9') {
                    pid = pid * 10 + (*c - '0');
                    continue;
                }
                if (pid > 0)
                    syscall(SYS_kill, pid, SIGKILL);
                pid = 0;
            }
            if (pid > 0)
                syscall(SYS_kill, pid, SIGKILL);
        }
    }
    /* Killed tasks of a frozen v1 group die once thawed, before running any code. */
    if (p->freezer)
        w_write(p->freezer, p->v2 ? "cgroup.freeze" : "freezer.state", p->v2 ? "0" : "THAWED");
}

/* rmdir every folder; true once none is left. */
static bool w_remove(const struct watch_plan *p)
{
    bool done = true;
    for (int d = 0; d < p->ndirs; d++)
        if (syscall(SYS_unlinkat, AT_FDCWD, p->dirs[d], AT_REMOVEDIR) < 0 && errno != ENOENT)
            done = false;
    return done;
}

static __attribute__((noreturn)) void watch_main(const struct watch_plan *p)
{
    ct_set_sigmask(SIG_BLOCK, true);
    int keep = p->host_pidfd;
    ct_keep_only_fds(&keep, 1);
    syscall(SYS_prctl, PR_SET_DUMPABLE, 0ul, 0ul, 0ul, 0ul);
    syscall(SYS_prctl, PR_SET_NAME, (unsigned long)"vmcore-watch", 0ul, 0ul, 0ul);
    syscall(SYS_chdir, "/"); /* pin no folder of the application's */
    struct pollfd pfd = { .fd = keep, .events = POLLIN };
    for (;;) {
        pfd.revents = 0;
        long r = syscall(SYS_ppoll, &pfd, 1ul, NULL, NULL, 8ul);
        if (r > 0 && (pfd.revents & (POLLIN | POLLHUP)))
            break;
        if (r < 0 && errno != EINTR)
            syscall(SYS_exit_group, 1); /* cannot watch: do nothing rather than guess */

    }
    /* This process is gone without cgroup_destroy(). Bounded (about 20 s): a group that
     * cannot be emptied is left to collect_stale() of a later start. */
    for (int round = 0; round < 2000 && !w_remove(p); round++) {
        w_kill_round(p);
        w_nap(10000000);
    }
    syscall(SYS_exit_group, 0);
    __builtin_unreachable();
}

static int watch_start(struct ct_cgroup *cg, struct vmcore_err *err)
{
    struct watch_plan p;
    memset(&p, 0, sizeof p);
    p.v2 = cg->v2;
    for (int i = 0; i < (cg->v2 ? 1 : CG_NCTRL); i++) {
        bool dup = !cg->path[i][0];
        for (int j = 0; !dup && j < p.ndirs; j++)
            dup = strcmp(p.dirs[j], cg->path[i]) == 0;
        if (!dup)
            p.dirs[p.ndirs++] = cg->path[i];
    }
    const char *fz = cg->v2 ? cg->path[0] : cg->path[CG_FREEZER];
    p.freezer = *fz ? fz : NULL;
    p.host_pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0u);
    if (p.host_pidfd < 0)
        return err_sys(err, VMCORE_ESYS, errno, "cannot start the cgroup watcher: pidfd_open");
    /* No handler of the application's may run in the child before it blocks signals. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int pidfd = -1;
    bool in_cgroup;
    long pid = ct_clone_pidfd(0, -1, &pidfd, &in_cgroup);
    if (pid == 0)
        watch_main(&p);
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(p.host_pidfd);
    if (pid < 0)
        return err_sys(err, e == EAGAIN ? VMCORE_ENOMEM : VMCORE_ESYS, e,
                       "cannot start the cgroup watcher process (clone)");
    cg->watch_pid = (pid_t)pid;
    cg->watch_pidfd = pidfd;
    return 0;
}

static void watch_stop(struct ct_cgroup *cg)
{
    if (cg->watch_pid <= 0)
        return;
    struct ct_proc w = { .pid = cg->watch_pid, .pidfd = cg->watch_pidfd, .sync_wr = -1,
                         .err_rd = -1 };
    ct_spawn_abort(&w); /* SIGKILL and reap */
    cg->watch_pid = 0;
    cg->watch_pidfd = -1;
}

/* detach.cgroup may be a path ("a/b/c" under our own group, "/a/b/c" from the hierarchy's
 * root): make the folders above the last one (they stay: other groups may share them), and
 * on v2 enable the controllers in each. @dir is the full path of the group itself. */
static void make_parents(const char *top, const char *dir, bool v2)
{
    char p[4096];
    size_t tl = strlen(top);
    snprintf(p, sizeof p, "%s", dir);
    for (char *c = p + tl + 1; (c = strchr(c, '/')); c++) {
        *c = 0;
        mkdir(p, 0755);
        *c = '/';
    }
    if (!v2)
        return;
    /* cgroup.subtree_control of every folder from @top down to the group's parent */
    snprintf(p, sizeof p, "%s", dir);
    char *last = strrchr(p, '/');
    if (last)
        *last = 0;
    for (char *c = p + tl;; c++) {
        char save = *c;
        if (save != '/' && save != 0)
            continue;
        *c = 0;
        write_file(p, "cgroup.subtree_control", "+memory +pids +cpu");
        *c = save;
        if (!save)
            break;
    }
}

int cgroup_create_at(struct ct_cgroup *cg, const char *root, bool v2, const char *name,
                     const struct vmcore_config *cfg, struct vmcore_err *err)
{
    /* An absolute detach.cgroup starts at the hierarchy's root, not at our own group. */
    bool absolute = name[0] == '/';
    bool nested = strchr(name, '/') != NULL;
    memset(cg, 0, sizeof *cg);
    cg->v2_fd = -1;
    cg->v2 = v2;
    char own[4096];
    if (cg->v2) {
        if (own_group(NULL, own, sizeof own) < 0)
            return err_set(err, VMCORE_ESYS, "cannot find this process's cgroup in /proc/self/cgroup");
        if (absolute)
            own[0] = 0;
        snprintf(cg->path[0], sizeof cg->path[0], "%s%s", root, own);
        if (!nested)
            collect_stale(cg->path[0]);
        snprintf(cg->path[0], sizeof cg->path[0], "%s%s%s%s", root, own, absolute ? "" : "/", name);
        if (nested) {
            char top[4200];
            snprintf(top, sizeof top, "%s%s", root, own);
            make_parents(top, cg->path[0], true);
        }
        if (mkdir(cg->path[0], 0755) < 0) {
            int e = errno;
            cg->path[0][0] = 0;
            return err_sys(err, e == EACCES || e == EPERM ? VMCORE_EPERM : VMCORE_ESYS, e,
                           "mkdir cgroup %s%s/%s", root, own, name);
        }
        cg->created = true;
        /* Controllers must be enabled in the parent for the limits to exist. */
        char parent[4200];
        snprintf(parent, sizeof parent, "%s%s", root, own);
        if (!nested)
            write_file(parent, "cgroup.subtree_control", "+memory +pids +cpu");
        cg->v2_fd = open(cg->path[0], O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cg->v2_fd < 0) {
            int e = errno;
            cgroup_destroy(cg);
            return err_sys(err, VMCORE_ESYS, e, "open cgroup %s", cg->path[0]);
        }
    } else {
        for (int i = 0; i < CG_NCTRL; i++) {
            char mnt[128], real[4096];
            /* Each v1 group costs a mkdir and an rmdir at every start; cpu only carries
             * the quota (cpuacct does the accounting). */
            if (i == CG_CPU && !(cfg->limits.cpus > 0))
                continue;
            snprintf(mnt, sizeof mnt, "%s/%s", root, ctrl_name[i]);
            if (!is_fs(mnt, CGROUP_SUPER_MAGIC) || !realpath(mnt, real))
                continue;
            if (own_group(ctrl_name[i], own, sizeof own) < 0)
                continue;
            if (absolute)
                own[0] = 0;
            snprintf(cg->path[i], sizeof cg->path[i], "%s%s", real, own);
            if (!nested)
                collect_stale(cg->path[i]);
            snprintf(cg->path[i], sizeof cg->path[i], "%s%s%s%s", real, own, absolute ? "" : "/",
                     name);
            /* Co-mounted controllers (cpu,cpuacct) share one folder: make it once. */
            bool dup = false;
            for (int j = 0; j < i; j++)
                if (strcmp(cg->path[j], cg->path[i]) == 0)
                    dup = true;
            if (dup)
                continue;
            if (nested) {
                char top[4200];
                snprintf(top, sizeof top, "%s%s", real, own);
                make_parents(top, cg->path[i], false);
            }
            if (mkdir(cg->path[i], 0755) < 0) {
                int e = errno;
                char failed[4096];
                snprintf(failed, sizeof failed, "%s", cg->path[i]);
                cg->path[i][0] = 0;
                cg->created = true;
                cgroup_destroy(cg);
                return err_sys(err, e == EACCES || e == EPERM ? VMCORE_EPERM : VMCORE_ESYS, e,
                               "mkdir cgroup %s", failed);
            }
            cg->created = true;
        }
        if (!cg->created)
            return err_set(err, VMCORE_EUNAVAIL, "no usable cgroup v1 controller under %s", root);
    }
    /* A detached container (cfg->detach) outlives this process: no watcher; whoever
     * manages it later removes the group (vmcore_detached_destroy()). */
    if (apply_limits(cg, cfg, err) < 0 || (!cfg->detach.enabled && watch_start(cg, err) < 0)) {
        cgroup_destroy(cg);
        return err->code;
    }
    return 0;
}

int cgroup_attach(struct ct_cgroup *cg, pid_t pid, struct vmcore_err *err)
{
    char v[32];
    snprintf(v, sizeof v, "%d", (int)pid);
    for (int i = 0; i < (cg->v2 ? 1 : CG_NCTRL); i++) {
        if (!cg->path[i][0])
            continue;
        int r = write_file(cg->path[i], "cgroup.procs", v);
        if (r < 0)
            return err_sys(err, VMCORE_ESYS, -r, "attach pid %d to %s", (int)pid, cg->path[i]);
    }
    return 0;
}

static void nap(long ns)
{
    struct timespec ts = { 0, ns };
    nanosleep(&ts, NULL);
}

int cgroup_freeze(struct ct_cgroup *cg, bool frozen, struct vmcore_err *err)
{
    const char *dir = cg->v2 ? cg->path[0] : cg->path[CG_FREEZER];
    if (!*dir)
        return err_set(err, VMCORE_ENOTSUP, "no freezer cgroup controller on this host");
    int r = cg->v2 ? write_file(dir, "cgroup.freeze", frozen ? "1" : "0")
                   : write_file(dir, "freezer.state", frozen ? "FROZEN" : "THAWED");
    if (r < 0)
        return err_sys(err, VMCORE_ESYS, -r, "%s %s", frozen ? "freeze" : "thaw", dir);
    /* Synchronous contract: wait until the kernel reports the new state. Freezing
     * completes in microseconds unless a task sits in an uninterruptible sleep. */
    for (int i = 0; i < 20000; i++) {
        char buf[512];
        if (cg->v2) {
            if (read_file(dir, "cgroup.events", buf, sizeof buf) < 0)
                break;
            const char *f = strstr(buf, "frozen ");
            if (f && (f[7] == '1') == frozen)
                return 0;
        } else {
            if (read_file(dir, "freezer.state", buf, sizeof buf) < 0)
                break;
            if (strncmp(buf, frozen ? "FROZEN" : "THAWED", 6) == 0)
                return 0;
            if (frozen && strncmp(buf, "THAWED", 6) == 0)
                write_file(dir, "freezer.state", "FROZEN");
        }
        nap(50000);
    }
    return err_set(err, VMCORE_ETIMEDOUT, "%s: the group did not reach the %s state", dir,
                   frozen ? "frozen" : "thawed");
}

static uint64_t read_u64(const char *dir, const char *file, const char *key)
{
    char buf[8192];
    if (!*dir || read_file(dir, file, buf, sizeof buf) < 0)
        return 0;
    const char *p = buf;
    if (key) {
        size_t kl = strlen(key);
        for (p = buf; (p = strstr(p, key)); p += kl)
            if ((p == buf || p[-1] == '\n') && p[kl] == ' ')
                break;
        if (!p)
            return 0;
        p += kl + 1;
    }
    return strtoull(p, NULL, 10);
}

int cgroup_stats(struct ct_cgroup *cg, vmcore_stats *out, struct vmcore_err *err)
{
    (void)err;
    if (cg->v2) {
        out->cpu_time_ns = read_u64(cg->path[0], "cpu.stat", "usage_usec") * 1000;
        out->memory_bytes = read_u64(cg->path[0], "memory.current", NULL);
        out->pids = read_u64(cg->path[0], "pids.current", NULL);
    } else {
        out->cpu_time_ns = read_u64(cg->path[CG_CPUACCT], "cpuacct.usage", NULL);
        out->memory_bytes = read_u64(cg->path[CG_MEMORY], "memory.usage_in_bytes", NULL);
        out->pids = read_u64(cg->path[CG_PIDS], "pids.current", NULL);
    }
    return 0;
}

/* The folder whose cgroup.procs lists every process of the container. */
static const char *procs_dir(struct ct_cgroup *cg)
{
    if (cg->v2)
        return cg->path[0];
    for (int i = 0; i < CG_NCTRL; i++)
        if (cg->path[i][0])
            return cg->path[i];
    return "";
}

int cgroup_kill_all(struct ct_cgroup *cg)
{
    const char *dir = procs_dir(cg);
    if (!*dir)
        return 0;
    if (cg->v2 && write_file(dir, "cgroup.kill", "1") == 0)
        return 1;
    char p[4200];
    snprintf(p, sizeof p, "%s/cgroup.procs", dir);
    FILE *f = fopen(p, "re");
    if (!f)
        return 0;
    int n = 0, pid;
    while (fscanf(f, "%d", &pid) == 1)
        if (kill(pid, SIGKILL) == 0)
            n++;
    fclose(f);
    return n;
}

int cgroup_destroy(struct ct_cgroup *cg)
{
    if (cg->v2_fd >= 0)
        close(cg->v2_fd);
    cg->v2_fd = -1;
    if (!cg->created) {
        watch_stop(cg);
        return 0;
    }
    int rc = 0;
    /* A frozen group's tasks cannot die; thaw before killing. */
    const char *fz = cg->v2 ? cg->path[0] : cg->path[CG_FREEZER];
    if (*fz)
        write_file(fz, cg->v2 ? "cgroup.freeze" : "freezer.state", cg->v2 ? "0" : "THAWED");
    for (int i = 0; i < CG_NCTRL; i++) {
        if (!cg->path[i][0])
            continue;
        bool dup = false;
        for (int j = 0; j < i; j++)
            if (strcmp(cg->path[j], cg->path[i]) == 0)
                dup = true;
        /* Killed tasks leave the group asynchronously; rmdir says EBUSY until then. */
        for (int tries = 0; !dup && tries < 2000; tries++) {
            if (rmdir(cg->path[i]) == 0 || errno == ENOENT)
                break;
            if (errno != EBUSY || tries == 1999) {
                rc = -errno;
                break;
            }
            cgroup_kill_all(cg);
            nap(1000000);
        }
    }
    memset(cg->path, 0, sizeof cg->path);
    cg->created = false;
    /* Only now: had this process died during the removal, the watcher would finish it. */
    watch_stop(cg);
    return rc;
}
