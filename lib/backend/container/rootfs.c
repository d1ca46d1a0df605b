/* The container's root filesystem: checks made at create() time (parent side) and the
 * mount work done in the child's new mount namespace before pivot_root. Every mount
 * lives in that namespace only, so nothing needs unmounting on the host afterwards.
 *
 * The rootfs is not trusted: any of its entries may be a symlink pointing out of it
 * (/mnt -> /etc, dev -> ../../..). So no path inside it is ever handed to the kernel as a
 * string: every folder, file and mount point is resolved inside the rootfs to an fd
 * (rootfs_resolve()), created there if missing, and mounted on through
 * /proc/self/fd/N. What lies inside a mount we just made (a fresh tmpfs, proc or sysfs)
 * is the kernel's, and is reached relative to an fd of that mount. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/magic.h>
#include <linux/openat2.h>

#include "ct.h"

/* Re-open @rel (a path of plain folders, no "." nor "..", as walk_in_root() builds it)
 * below @rootfd, one component at a time, never following a symlink. */
static int walk_plain(int rootfd, const char *rel)
{
    int cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    for (const char *p = rel; cur >= 0 && *p;) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (!n)
            break;
        char comp[256];
        if (n >= sizeof comp) {
            close(cur);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(comp, p, n);
        comp[n] = 0;
        int fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
        close(cur);
        cur = fd;
        p += n;
    }
    return cur;
}

/* What RESOLVE_IN_ROOT does, for kernels (< 5.6) and sandboxes (valgrind) without
 * openat2: one component at a time, each opened with O_PATH | O_NOFOLLOW relative to the
 * fd of the folder before it, so no symlink is ever followed by the kernel. Symlinks are
 * read and their targets walked the same way; ".." and absolute targets stop at the root.
 * Returns an O_PATH fd of what @path names (symlinks followed, the last one too). */
static int walk_in_root(int rootfd, const char *path)
{
    char res[4096] = "", todo[8192];
    if ((size_t)snprintf(todo, sizeof todo, "%s", path) >= sizeof todo) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    for (int links = 0; cur >= 0;) {
        char *p = todo;
        while (*p == '/')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, "/");
        char comp[256];
        if (n >= sizeof comp) {
            close(cur);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(comp, p, n);
        comp[n] = 0;
        memmove(todo, p + n, strlen(p + n) + 1);
        if (strcmp(comp, ".") == 0)
            continue;
        if (strcmp(comp, "..") == 0) {
            char *slash = strrchr(res, '/');
            if (slash)
                *slash = 0;
            close(cur);
            cur = walk_plain(rootfd, res);
            continue;
        }
        int fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            int errnum = errno;
            if (fd >= 0)
                close(fd);
            close(cur);
            errno = errnum;
            return -1;
        }
        if (!S_ISLNK(st.st_mode)) {
            size_t rl = strlen(res);
            if (rl + 1 + n >= sizeof res) {
                close(fd);
                close(cur);
                errno = ENAMETOOLONG;
                return -1;
            }
            res[rl] = '/';
            memcpy(res + rl + 1, comp, n + 1);
            close(cur);
            cur = fd;
            continue;
        }
        char target[4096], rest[8192];
        ssize_t tl = ++links > 40 ? (errno = ELOOP, -1) : readlinkat(fd, "", target, sizeof target - 1);
        close(fd);
        if (tl < 0) {
            int errnum = errno;
            close(cur);
            errno = errnum;
            return -1;
        }
        target[tl] = 0;
        if (target[0] == '/') {
            res[0] = 0;
            close(cur);
            cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        }
        if ((size_t)snprintf(rest, sizeof rest, "%s/%s", target, todo) >= sizeof rest) {
            close(cur);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(todo, rest, strlen(rest) + 1);
    }
    return cur;
}

/* An O_PATH fd of @path as seen from inside @rootfd: symlinks resolve against the rootfs. */
static int open_in_root(int rootfd, const char *path, bool walk)
{
    if (!walk) {
        struct open_how how = { .flags = O_PATH | O_CLOEXEC,
                                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
        const char *rel = path;
        while (*rel == '/')
            rel++;
        int fd = (int)syscall(SYS_openat2, rootfd, *rel ? rel : ".", &how, sizeof how);
        if (fd >= 0 || (errno != ENOSYS && errno != EAGAIN))
            return fd; /* EAGAIN: a rename raced with ".."; the walk has no such limit */
    }
    return walk_in_root(rootfd, path);
}

int rootfs_resolve(int rootfd, const char *path, unsigned flags, mode_t mode)
{
    bool walk = flags & RR_WALK;
    if (!(flags & (RR_MKDIR | RR_MKFILE)))
        return open_in_root(rootfd, path, walk);
    /* Resolve each prefix in turn; create what is missing inside the (already safely
     * resolved) folder before it. mkdirat()/O_CREAT|O_EXCL|O_NOFOLLOW never follow a
     * symlink in the last component: a dangling one stays missing and fails (ENOENT). */
    char prefix[4096];
    size_t plen = 0;
    int parent = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    for (const char *p = path; parent >= 0;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, "/");
        char comp[256];
        if (n >= sizeof comp || plen + 1 + n >= sizeof prefix) {
            close(parent);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(comp, p, n);
        comp[n] = 0;
        prefix[plen++] = '/';
        memcpy(prefix + plen, comp, n + 1);
        plen += n;
        p += n;
        const char *q = p;
        while (*q == '/')
            q++;
        bool last = !*q;
        int fd = open_in_root(rootfd, prefix, walk);
        if (fd < 0 && errno == ENOENT && strcmp(comp, ".") && strcmp(comp, "..")) {
            int r;
            if (last && (flags & RR_MKFILE)) {
                r = openat(parent, comp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
                           mode);
                if (r >= 0)
                    close(r);
            } else {
                r = mkdirat(parent, comp, last ? mode : 0755);
            }
            if (r < 0 && errno != EEXIST) {
                int errnum = errno;
                close(parent);
                errno = errnum;
                return -1;
            }
            fd = open_in_root(rootfd, prefix, walk);
        }
        int errnum = errno;
        close(parent);
        errno = errnum;
        parent = fd;
    }
    return parent;
}

static int exe_ok(int rootfd, const char *path, int *errnum)
{
    int fd = open_in_root(rootfd, path, false);
    if (fd < 0) {
        *errnum = errno;
        return 0;
    }
    struct stat st;
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
    *errnum = ok ? 0 : (S_ISREG(st.st_mode) ? EACCES : (S_ISDIR(st.st_mode) ? EISDIR : EACCES));
    close(fd);
    return ok;
}

int rootfs_check_exe(const char *rootfs, const char *arg0, char *const *env, char *out,
                     size_t outlen, struct vmcore_err *err)
{
    int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return err_sys(err, errno == ENOENT ? VMCORE_ENOENT : VMCORE_ECONFIG, errno, "rootfs: %s",
                       rootfs);
    int e = ENOENT, rc = 0;
    if (strchr(arg0, '/')) {
        char abs[4096];
        snprintf(abs, sizeof abs, "%s%s", arg0[0] == '/' ? "" : "/", arg0);
        if (exe_ok(rootfd, abs, &e))
            snprintf(out, outlen, "%s", abs);
        else
            rc = -1;
    } else {
        const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        for (char *const *v = env; v && *v; v++)
            if (strncmp(*v, "PATH=", 5) == 0)
                path = *v + 5;
        rc = -1;
        for (const char *p = path; rc < 0 && *p;) {
            size_t n = strcspn(p, ":");
            char cand[4096];
            snprintf(cand, sizeof cand, "%.*s/%s", (int)n, p, arg0);
            int e1 = ENOENT;
            if (n && cand[0] == '/' && exe_ok(rootfd, cand, &e1)) {
                snprintf(out, outlen, "%s", cand);
                rc = 0;
            } else if (n && e1 != ENOENT && e1 != ENOTDIR) {
                e = e1;
            }
            p += n + (p[n] == ':');
        }
    }
    close(rootfd);
    if (rc < 0) {
        if (e == ENOENT || e == ENOTDIR)
            return err_config(err, VMCORE_ENOENT, "process.args[0]",
                              "%s: not found in the rootfs %s", arg0, rootfs);
        return err_config(err, VMCORE_ECONFIG, "process.args[0]",
                          "%s: not an executable file in the rootfs %s (%s)", arg0, rootfs,
                          strerror(e));
    }
    return 0;
}

/* --- child side ----------------------------------------------------------------------- */

#define FDPATH_MAX 32

static const char *fdpath(char *buf, int fd)
{
    snprintf(buf, FDPATH_MAX, "/proc/self/fd/%d", fd);
    return buf;
}

/* Mount @src (a file system type's source) on the object @fd refers to. */
static int mount_on(const char *src, int fd, const char *type, unsigned long flags, const char *data)
{
    char p[FDPATH_MAX];
    return mount(src, fdpath(p, fd), type, flags, data);
}

/* A bind mount of @src on @dstfd, then the flags a plain bind ignores applied by a remount.
 * The remount needs the new mount itself, which @dstfd (the covered folder) is not: it is
 * reached again as @path below @basefd, resolved inside the rootfs when @in_root. */
static int bind_mount(const char *src, int dstfd, int basefd, const char *path, bool in_root,
                      unsigned long flags, const char *what, struct ct_child_err *e)
{
    if (mount_on(src, dstfd, "none", MS_BIND | MS_REC, NULL) < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "bind mount %s on %s", src, what);
    if (!flags)
        return 0;
    int fd = in_root ? open_in_root(basefd, path, false)
                     : openat(basefd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "%s: reopen after the bind mount", what);
    int r = mount_on("none", fd, "none", MS_BIND | MS_REMOUNT | flags, NULL);
    /* Flags locked by the source mount (nodev, nosuid...) must be kept: retry with them. */
    if (r < 0)
        r = mount_on("none", fd, "none", MS_BIND | MS_REMOUNT | flags | MS_NOSUID | MS_NODEV, NULL);
    int errnum = errno;
    close(fd);
    return r < 0 ? ct_child_fail(e, VMCORE_ESYS, errnum, "remount %s with its flags", what) : 0;
}

/* Bind the host's @src on a new empty file @name in @dir (a fresh tmpfs). */
static int bind_file(int dir, const char *name, const char *src)
{
    int fd = openat(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int r = mount_on(src, fd, "none", MS_BIND, NULL);
    int errnum = errno;
    close(fd);
    errno = errnum;
    return r;
}

/* Make folder @name in @dir (a fresh tmpfs) and mount @type on it. */
static int mkdir_mount(int dir, const char *name, mode_t mode, const char *type,
                       unsigned long flags, const char *data)
{
    if (mkdirat(dir, name, mode) < 0)
        return -1;
    int fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = mount_on(type, fd, type, flags, data);
    int errnum = errno;
    close(fd);
    errno = errnum;
    return r;
}

static int setup_dev(int root, bool userns, const char *console_path, struct ct_child_err *e)
{
    int fd = rootfs_resolve(root, "/dev", RR_MKDIR, 0755);
    if (fd < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "mkdir /dev in the rootfs");
    int r = mount_on("tmpfs", fd, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
    int errnum = errno;
    close(fd);
    if (r < 0)
        return ct_child_fail(e, VMCORE_ESYS, errnum, "mount tmpfs on /dev");
    /* From here on everything is inside that tmpfs, which only we have written to. */
    int dev = open_in_root(root, "/dev", false);
    if (dev < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "open /dev");
    static const struct { const char *name; unsigned maj, min; } nodes[] = {
        { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 },
        { "urandom", 1, 9 }, { "tty", 5, 0 },
    };
    r = 0;
    for (size_t i = 0; r == 0 && i < sizeof nodes / sizeof nodes[0]; i++) {
        const char *name = nodes[i].name;
        /* mknod is cheapest; a user namespace may not create devices, so bind the host's. */
        if (!userns && mknodat(dev, name, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) == 0) {
            fchmodat(dev, name, 0666, 0); /* umask */
            continue;
        }
        char src[64];
        snprintf(src, sizeof src, "/dev/%s", name);
        if (bind_file(dev, name, src) < 0)
            r = ct_child_fail(e, VMCORE_ESYS, errno, "create /dev/%s", name);
    }
    if (r == 0 && mkdir_mount(dev, "pts", 0755, "devpts", MS_NOSUID | MS_NOEXEC,
                              "newinstance,ptmxmode=0666,mode=0620") < 0)
        r = ct_child_fail(e, VMCORE_ESYS, errno, "mount devpts on /dev/pts");
    if (r == 0 && mkdir_mount(dev, "shm", 01777, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                              "mode=1777,size=65536k") < 0)
        r = ct_child_fail(e, VMCORE_ESYS, errno, "mount tmpfs on /dev/shm");
    if (r == 0 && (symlinkat("pts/ptmx", dev, "ptmx") < 0 || symlinkat("/proc/self/fd", dev, "fd") < 0 ||
                   symlinkat("/proc/self/fd/0", dev, "stdin") < 0 ||
                   symlinkat("/proc/self/fd/1", dev, "stdout") < 0 ||
                   symlinkat("/proc/self/fd/2", dev, "stderr") < 0))
        r = ct_child_fail(e, VMCORE_ESYS, errno, "symlinks in /dev");
    if (r == 0 && console_path && bind_file(dev, "console", console_path) < 0)
        r = ct_child_fail(e, VMCORE_ESYS, errno, "bind %s on /dev/console", console_path);
    close(dev);
    return r;
}

/* cfg->sysctls, through the container's new proc (@proc) before /proc/sys is made
 * read-only: the parameters are its namespaces' (config.c admits no others). */
static int write_sysctls(int proc, const struct vmcore_config *cfg, struct ct_child_err *e)
{
    for (size_t i = 0; i < cfg->nsysctls; i++) {
        const struct config_sysctl *sc = &cfg->sysctls[i];
        int fd = openat(proc, sc->path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        size_t len = strlen(sc->value);
        if (fd < 0 || write(fd, sc->value, len) != (ssize_t)len) {
            int errnum = errno;
            if (fd >= 0)
                close(fd);
            return ct_child_fail(e, errnum == ENOENT || errnum == EINVAL ? VMCORE_ECONFIG
                                                                         : VMCORE_ESYS,
                                 errnum, "sysctl.%s: write /proc/%s", sc->key, sc->path);
        }
        close(fd);
    }
    return 0;
}

/* Hide what runc hides; paths missing on this kernel are skipped. @proc and @sys are fds
 * of the proc and sysfs we mounted: what is below them is the kernel's. */
static int mask_paths(int proc, int sys, struct ct_child_err *e)
{
    static const struct { bool sys; const char *name; } masked[] = {
        { false, "acpi" }, { false, "asound" }, { false, "kcore" }, { false, "keys" },
        { false, "latency_stats" }, { false, "timer_list" }, { false, "timer_stats" },
        { false, "sched_debug" }, { false, "scsi" }, { true, "firmware" },
        { true, "devices/virtual/powercap" },
    };
    static const char *const readonly[] = { "bus", "fs", "irq", "sys", "sysrq-trigger" };
    for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++) {
        const char *name = masked[i].name;
        int fd = openat(masked[i].sys ? sys : proc, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0)
            continue;
        int r = fstat(fd, &st);
        if (r == 0)
            r = S_ISDIR(st.st_mode) ? mount_on("tmpfs", fd, "tmpfs", MS_RDONLY, "size=0,mode=0")
                                    : mount_on("/dev/null", fd, "none", MS_BIND, NULL);
        int errnum = errno;
        close(fd);
        if (r < 0)
            return ct_child_fail(e, VMCORE_ESYS, errnum, "mask /%s/%s", masked[i].sys ? "sys" : "proc",
                                 name);
    }
    for (size_t i = 0; i < sizeof readonly / sizeof readonly[0]; i++) {
        int fd = openat(proc, readonly[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        char src[FDPATH_MAX], what[64];
        snprintf(what, sizeof what, "/proc/%s", readonly[i]);
        int r = bind_mount(fdpath(src, fd), fd, proc, readonly[i], false,
                           MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, what, e);
        close(fd);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* mounts[].type "cgroup" on @fd: the container's own cgroups, as its cgroup namespace shows
 * them (rooted at its group). A v2 host gets cgroup2 itself; a v1 or hybrid one a tmpfs
 * with one folder per hierarchy this process is in (named by its controllers, "cpu,cpuacct"
 * with "cpu" and "cpuacct" linked to it; "name=X" as X; the hybrid's v2 as "unified").
 * Child side: the list is read from /proc/self/cgroup into a stack buffer. */
static int mount_cgroups(int root, const char *target, int fd, unsigned long flags,
                         const char *what, struct ct_child_err *e)
{
    struct statfs sf;
    if (statfs("/sys/fs/cgroup", &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC) {
        if (mount_on("cgroup2", fd, "cgroup2", flags, NULL) < 0)
            return ct_child_fail(e, VMCORE_ESYS, errno, "mount cgroup2 on %s", what);
        return 0;
    }
    char buf[4096];
    int cf = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
    ssize_t n = cf >= 0 ? read(cf, buf, sizeof buf - 1) : -1;
    if (cf >= 0)
        close(cf);
    if (n <= 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "%s: read /proc/self/cgroup", what);
    buf[n] = 0;
    if (mount_on("tmpfs", fd, "tmpfs", (flags & ~MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 "mode=755") < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "mount tmpfs on %s", what);
    int dir = open_in_root(root, target, false); /* again: now the new tmpfs */
    if (dir < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "%s: open the new tmpfs", what);
    for (char *line = buf, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = 0;
        const char *ctrls = c1 + 1;
        char name[256], data[300];
        const char *type = "cgroup";
        if (!*ctrls) {
            snprintf(name, sizeof name, "unified");
            type = "cgroup2";
            data[0] = 0;
        } else if (strncmp(ctrls, "name=", 5) == 0) {
            snprintf(name, sizeof name, "%s", ctrls + 5);
            snprintf(data, sizeof data, "none,%s", ctrls);
        } else {
            snprintf(name, sizeof name, "%s", ctrls);
            snprintf(data, sizeof data, "%s", ctrls);
        }
        if (!name[0] || strchr(name, '/') || name[0] == '.')
            continue;
        if (mkdirat(dir, name, 0755) < 0 && errno != EEXIST)
            return ct_child_fail(e, VMCORE_ESYS, errno, "%s: mkdir %s", what, name);
        int sub = openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0 || mount_on(type, sub, type, flags | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                data[0] ? data : NULL) < 0) {
            int errnum = errno;
            if (sub >= 0)
                close(sub);
            return ct_child_fail(e, VMCORE_ESYS, errnum, "mount %s %s on %s/%s", type,
                                 data[0] ? data : "", what, name);
        }
        close(sub);
        if (strchr(name, ',')) /* co-mounted: a link per controller */
            for (char *t = name, *end; t && *t; t = end) {
                end = strchr(t, ',');
                if (end)
                    *end++ = 0;
                char target[256];
                snprintf(target, sizeof target, "%s", ctrls);
                symlinkat(target, dir, t);
            }
    }
    if ((flags & MS_RDONLY) &&
        mount_on("none", dir, "none", MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 "mode=755") < 0) {
        int errnum = errno;
        close(dir);
        return ct_child_fail(e, VMCORE_ESYS, errnum, "remount %s read-only", what);
    }
    close(dir);
    return 0;
}

static int user_mounts(int root, const struct vmcore_config *cfg, struct ct_child_err *e)
{
    for (size_t i = 0; i < cfg->nmounts; i++) {
        const struct config_mount *m = &cfg->mounts[i];
        unsigned long flags = (m->readonly ? MS_RDONLY : 0) | (m->nosuid ? MS_NOSUID : 0) |
                              (m->nodev ? MS_NODEV : 0) | (m->noexec ? MS_NOEXEC : 0);
        char what[4200];
        snprintf(what, sizeof what, "mounts[%zu].target %s", i, m->target);
        if (m->type != MOUNT_BIND) {
            int fd = rootfs_resolve(root, m->target, RR_MKDIR, 0755);
            if (fd < 0)
                return ct_child_fail(e, VMCORE_ESYS, errno,
                                     "mounts[%zu].target: cannot resolve or create %s inside "
                                     "the rootfs", i, m->target);
            if (m->type == MOUNT_CGROUP) {
                int r = mount_cgroups(root, m->target, fd, flags, what, e);
                close(fd);
                if (r < 0)
                    return -1;
                continue;
            }
            const char *type = m->type == MOUNT_TMPFS ? "tmpfs" : "mqueue";
            int r = mount_on(type, fd, type, flags, m->data);
            int errnum = errno;
            close(fd);
            if (r < 0)
                return ct_child_fail(e, errnum == EINVAL ? VMCORE_ECONFIG : VMCORE_ESYS, errnum,
                                     "mount %s on %s", type, what);
            continue;
        }
        struct stat st;
        if (stat(m->source, &st) < 0)
            return ct_child_fail(e, VMCORE_ENOENT, errno, "mounts[%zu].source: %s", i, m->source);
        bool dir = S_ISDIR(st.st_mode);
        int fd = rootfs_resolve(root, m->target, dir ? RR_MKDIR : RR_MKFILE, dir ? 0755 : 0644);
        if (fd < 0)
            return ct_child_fail(e, VMCORE_ESYS, errno,
                                 "mounts[%zu].target: cannot resolve or create %s inside the rootfs",
                                 i, m->target);
        int r = bind_mount(m->source, fd, root, m->target, true, flags, what, e);
        close(fd);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* The host's /sys on @dstfd, for when sysfs cannot be mounted. The bind must be recursive
 * (in a user namespace the host's submounts are locked to /sys: a plain bind is refused),
 * and a recursive bind brings the host's cgroup hierarchies along, writable: so every
 * mount of the copy is made read-only before it is attached (mount_setattr AT_RECURSIVE,
 * which a remount of the top alone is not), and an empty read-only tmpfs covers
 * /sys/fs/cgroup, whose host tree is none of the container's business. Without the new
 * mount API (Linux < 5.12) the start fails rather than expose a writable cgroupfs. */
static int host_sys_readonly(int dstfd, int root, struct ct_child_err *e)
{
    const char *what = "network.mode host with a user namespace: sysfs cannot be mounted, and";
    int tree = open_tree(AT_FDCWD, "/sys", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (tree < 0)
        return ct_child_fail(e, VMCORE_EUNAVAIL, errno, "%s a read-only copy of the host's /sys "
                             "needs open_tree(2)", what);
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
        int errnum = errno;
        close(tree);
        return ct_child_fail(e, VMCORE_EUNAVAIL, errnum, "%s the host's /sys cannot be made "
                             "read-only (mount_setattr)", what);
    }
    int r = move_mount(tree, "", dstfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
    int errnum = errno;
    close(tree);
    if (r < 0)
        return ct_child_fail(e, VMCORE_ESYS, errnum, "attach the read-only /sys");
    int cg = open_in_root(root, "/sys/fs/cgroup", false);
    if (cg < 0)
        return errno == ENOENT ? 0 : ct_child_fail(e, VMCORE_ESYS, errno, "open /sys/fs/cgroup");
    r = mount_on("tmpfs", cg, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=0555");
    errnum = errno;
    close(cg);
    return r < 0 ? ct_child_fail(e, VMCORE_ESYS, errnum, "cover /sys/fs/cgroup") : 0;
}

/* /proc and /sys of the container, on the folders of those names inside the rootfs.
 * Returns fds of both mounts in @proc and @sys. */
static int kernel_fs(int root, int *proc, int *sys, struct ct_child_err *e)
{
    int fd = rootfs_resolve(root, "/proc", RR_MKDIR, 0555);
    if (fd < 0 || mount_on("proc", fd, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
        int errnum = errno;
        if (fd >= 0)
            close(fd);
        return ct_child_fail(e, VMCORE_ESYS, errnum, "mount /proc");
    }
    close(fd);
    fd = rootfs_resolve(root, "/sys", RR_MKDIR, 0555);
    if (fd < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "mkdir /sys");
    int r = 0;
    if (mount_on("sysfs", fd, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        /* sysfs needs a net namespace owned by our user namespace (not so with a user
         * namespace and the host's network): then the host's, read-only throughout. */
        r = host_sys_readonly(fd, root, e);
    close(fd);
    if (r < 0)
        return -1;
    *proc = open_in_root(root, "/proc", false);
    if (*proc < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "open /proc");
    *sys = open_in_root(root, "/sys", false);
    if (*sys < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "open /sys");
    return 0;
}

int rootfs_setup(const struct vmcore_config *cfg, bool userns, const char *console_path,
                 struct ct_child_err *e)
{
    /* Nothing we mount may propagate back to the host. */
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "make / private");
    if (mount(cfg->rootfs, cfg->rootfs, "none", MS_BIND | MS_REC, NULL) < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "rootfs: bind %s", cfg->rootfs);
    if (chdir(cfg->rootfs) < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "rootfs: chdir %s", cfg->rootfs);
    int root = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "rootfs: open %s", cfg->rootfs);
    /* The child exits on failure: fds opened on the way are not worth closing there. */
    int proc = -1, sys = -1;
    if (kernel_fs(root, &proc, &sys, e) < 0 || setup_dev(root, userns, console_path, e) < 0 ||
        write_sysctls(proc, cfg, e) < 0 || mask_paths(proc, sys, e) < 0 ||
        user_mounts(root, cfg, e) < 0)
        return -1;
    close(proc);
    close(sys);
    close(root);
    /* pivot_root(".", ".") stacks the old root on the new one; detaching it leaves
     * only the container's tree, with no temporary folder needed in the rootfs. */
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "pivot_root into %s", cfg->rootfs);
    if (umount2(".", MNT_DETACH) < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "detach the old root");
    if (chdir("/") < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "chdir /");
    if (cfg->rootfs_readonly &&
        mount("none", "/", "none", MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0 &&
        mount("none", "/", "none", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "rootfs_readonly: remount / read-only");
    return 0;
}
