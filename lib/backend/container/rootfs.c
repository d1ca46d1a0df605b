/* The container's root filesystem: checks made at create() time (parent side) and the
 * mount work done in the child's new mount namespace before pivot_root. Every mount
 * lives in that namespace only, so nothing needs unmounting on the host afterwards. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "ct.h"

/* The same walk as RESOLVE_IN_ROOT, one component at a time, for kernels (< 5.6) and
 * sandboxes (valgrind) without openat2: ".." and absolute symlinks stop at the root. */
static int walk_in_root(int rootfd, const char *path, int flags)
{
    char res[4096] = "", todo[8192];
    snprintf(todo, sizeof todo, "%s", path);
    for (int links = 0;;) {
        char *p = todo;
        while (*p == '/')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, "/");
        char comp[256];
        if (n >= sizeof comp) {
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
            continue;
        }
        char next[4096];
        if ((size_t)snprintf(next, sizeof next, "%s/%s", res, comp) >= sizeof next) {
            errno = ENAMETOOLONG;
            return -1;
        }
        struct stat st;
        if (fstatat(rootfd, next + 1, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return -1;
        if (!S_ISLNK(st.st_mode)) {
            snprintf(res, sizeof res, "%s", next);
            continue;
        }
        if (++links > 40) {
            errno = ELOOP;
            return -1;
        }
        char target[4096], rest[8192];
        ssize_t tl = readlinkat(rootfd, next + 1, target, sizeof target - 1);
        if (tl < 0)
            return -1;
        target[tl] = 0;
        if (target[0] == '/')
            res[0] = 0;
        snprintf(rest, sizeof rest, "%s/%s", target, todo);
        snprintf(todo, sizeof todo, "%s", rest);
    }
    return openat(rootfd, res[0] ? res + 1 : ".", flags | O_CLOEXEC | O_NOFOLLOW);
}

/* Open @path as seen from inside @rootfs: absolute symlinks resolve against the rootfs. */
static int open_in_root(int rootfd, const char *path, int flags)
{
    struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC),
                            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
    const char *rel = path;
    while (*rel == '/')
        rel++;
    int fd = (int)syscall(SYS_openat2, rootfd, *rel ? rel : ".", &how, sizeof how);
    if (fd < 0 && errno == ENOSYS)
        fd = walk_in_root(rootfd, path, flags);
    return fd;
}

static int exe_ok(int rootfd, const char *path, int *errnum)
{
    int fd = open_in_root(rootfd, path, O_PATH);
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
            int e1;
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

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, mode) < 0 && errno != EEXIST ? -1 : 0;
}

static int touch(const char *path)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* A bind mount, then the flags a plain bind ignores applied by a remount. */
static int bind_mount(const char *src, const char *dst, unsigned long flags, struct ct_child_err *e)
{
    if (mount(src, dst, "none", MS_BIND | MS_REC, NULL) < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "bind mount %s on %s", src, dst);
    if (flags && mount("none", dst, "none", MS_BIND | MS_REMOUNT | flags, NULL) < 0) {
        /* Flags locked by the source mount (nodev, nosuid...) must be kept: retry with them. */
        if (mount("none", dst, "none", MS_BIND | MS_REMOUNT | flags | MS_NOSUID | MS_NODEV, NULL) < 0)
            return ct_child_fail(e, VMCORE_ESYS, errno, "remount %s read-only", dst);
    }
    return 0;
}

static int setup_dev(bool userns, const char *console_path, struct ct_child_err *e)
{
    if (mkdir("dev", 0755) < 0 && errno != EEXIST)
        return ct_child_fail(e, VMCORE_ESYS, errno, "mkdir /dev in the rootfs");
    if (mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k") < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "mount tmpfs on /dev");
    static const struct { const char *name; unsigned maj, min; } nodes[] = {
        { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 },
        { "urandom", 1, 9 }, { "tty", 5, 0 },
    };
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        char dst[64], src[64];
        snprintf(dst, sizeof dst, "dev/%s", nodes[i].name);
        /* mknod is cheapest; a user namespace may not create devices, so bind the host's. */
        if (!userns && mknod(dst, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) == 0) {
            chmod(dst, 0666); /* umask */
            continue;
        }
        snprintf(src, sizeof src, "/dev/%s", nodes[i].name);
        if (touch(dst) < 0 || mount(src, dst, "none", MS_BIND, NULL) < 0)
            return ct_child_fail(e, VMCORE_ESYS, errno, "create /dev/%s", nodes[i].name);
    }
    if (mkdir("dev/pts", 0755) < 0 ||
        mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620") < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "mount devpts on /dev/pts");
    if (mkdir("dev/shm", 01777) < 0 ||
        mount("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k") < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "mount tmpfs on /dev/shm");
    if (symlink("pts/ptmx", "dev/ptmx") < 0 || symlink("/proc/self/fd", "dev/fd") < 0 ||
        symlink("/proc/self/fd/0", "dev/stdin") < 0 || symlink("/proc/self/fd/1", "dev/stdout") < 0 ||
        symlink("/proc/self/fd/2", "dev/stderr") < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "symlinks in /dev");
    if (console_path && (touch("dev/console") < 0 ||
                         mount(console_path, "dev/console", "none", MS_BIND, NULL) < 0))
        return ct_child_fail(e, VMCORE_ESYS, errno, "bind %s on /dev/console", console_path);
    return 0;
}

/* Hide what runc hides; paths missing on this kernel are skipped. */
static int mask_paths(struct ct_child_err *e)
{
    static const char *const masked[] = {
        "proc/acpi", "proc/asound", "proc/kcore", "proc/keys", "proc/latency_stats",
        "proc/timer_list", "proc/timer_stats", "proc/sched_debug", "proc/scsi",
        "sys/firmware", "sys/devices/virtual/powercap",
    };
    static const char *const readonly[] = {
        "proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger",
    };
    for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++) {
        struct stat st;
        if (lstat(masked[i], &st) < 0)
            continue;
        int r = S_ISDIR(st.st_mode)
                    ? mount("tmpfs", masked[i], "tmpfs", MS_RDONLY, "size=0,mode=0")
                    : mount("/dev/null", masked[i], "none", MS_BIND, NULL);
        if (r < 0)
            return ct_child_fail(e, VMCORE_ESYS, errno, "mask /%s", masked[i]);
    }
    for (size_t i = 0; i < sizeof readonly / sizeof readonly[0]; i++) {
        if (access(readonly[i], F_OK) < 0)
            continue;
        if (bind_mount(readonly[i], readonly[i], MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, e) < 0)
            return -1;
    }
    return 0;
}

static int user_mounts(const struct vmcore_config *cfg, struct ct_child_err *e)
{
    for (size_t i = 0; i < cfg->nmounts; i++) {
        const struct config_mount *m = &cfg->mounts[i];
        char dst[4096];
        snprintf(dst, sizeof dst, ".%s", m->target);
        struct stat st;
        if (stat(m->source, &st) < 0)
            return ct_child_fail(e, VMCORE_ENOENT, errno, "mounts[%zu].source: %s", i, m->source);
        int r = S_ISDIR(st.st_mode) ? mkdir_p(dst, 0755) : 0;
        if (!S_ISDIR(st.st_mode)) {
            char parent[4096];
            snprintf(parent, sizeof parent, "%s", dst);
            char *slash = strrchr(parent, '/');
            if (slash && slash != parent) {
                *slash = 0;
                r = mkdir_p(parent, 0755);
            }
            if (r == 0 && access(dst, F_OK) < 0)
                r = touch(dst);
        }
        if (r < 0)
            return ct_child_fail(e, VMCORE_ESYS, errno, "mounts[%zu].target: create %s", i, m->target);
        if (bind_mount(m->source, dst, m->readonly ? MS_RDONLY : 0, e) < 0)
            return -1;
    }
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
    if ((mkdir("proc", 0555) < 0 && errno != EEXIST) ||
        mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "mount /proc");
    if (mkdir("sys", 0555) < 0 && errno != EEXIST)
        return ct_child_fail(e, VMCORE_ESYS, errno, "mkdir /sys");
    if (mount("sysfs", "sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
        /* sysfs needs a net namespace owned by our user namespace; else bind the host's. */
        if (bind_mount("/sys", "sys", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, e) < 0)
            return -1;
    }
    if (setup_dev(userns, console_path, e) < 0 || mask_paths(e) < 0 || user_mounts(cfg, e) < 0)
        return -1;
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
