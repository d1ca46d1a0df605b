/* vmcore-oci: an OCI runtime on libvmcore's container backend, with runc's command line
 * (doc/oci.md).
 *
 *   vmcore-oci [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...
 *
 * `create` makes the container through the library with a `detach` configuration: fully
 * set up, its process waits before execve on a FIFO in the state directory
 * (--root/ID/exec.fifo); the library lets go of it (vmcore_domain_detach()) and this
 * process exits, leaving the container's init to the caller's subreaper. `start` opens the
 * FIFO and reads the byte the process writes, which lets it exec. Every later command
 * works from --root/ID/state.json: the pid with its start time (so a reused pid is never
 * signalled) and the library's state of the cgroup (vmcore_detached_*()).
 *
 * Exit status: 0; 1 for a failure (the message on stderr, and in the --log file); 2 for
 * usage errors. `run` exits with the container's status (128 + N for a signal). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "vmcore/vmcore.h"

#include "oci.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2

static const char *g_root = "/run/vmcore-oci";
static FILE *g_log;
static bool g_log_json;

static const char usage[] =
    "Usage: vmcore-oci [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "An OCI runtime (runtime-spec " OCI_VERSION ") on libvmcore's container backend.\n"
    "\n"
    "Commands:\n"
    "  spec [--bundle DIR]            write a default config.json\n"
    "  features                       what this runtime supports, as JSON\n"
    "  create ID --bundle DIR [--pid-file F] [--console-socket PATH]\n"
    "                                 set up a container; its process waits for start\n"
    "  start ID                       let the created container's process run\n"
    "  run ID --bundle DIR [--pid-file F] [--console-socket PATH] [--detach]\n"
    "                                 create, start, wait for it and delete it\n"
    "  state ID                       the container's state, as JSON\n"
    "  kill [--all] ID [SIGNAL]       send a signal (default SIGTERM)\n"
    "  pause ID, resume ID            freeze and thaw its processes\n"
    "  ps [--format table|json] ID    its processes\n"
    "  delete [--force] ID            remove a stopped (or, --force, any) container\n"
    "\n"
    "Global options:\n"
    "  --root DIR                     state directory (default /run/vmcore-oci)\n"
    "  --log FILE                     also write errors there\n"
    "  --log-format text|json         the --log file's format (default text)\n"
    "  --systemd-cgroup               refused: only cgroupfs is supported\n"
    "  --version, --help\n";

/* --- messages ------------------------------------------------------------------------- */

static void now_rfc3339(char *buf, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%09ldZ", ts.tv_nsec);
}

static void log_line(const char *level, const char *msg)
{
    if (!g_log)
        return;
    char t[64];
    now_rfc3339(t, sizeof t);
    if (g_log_json) {
        json_t *o = json_pack("{s:s, s:s, s:s}", "level", level, "msg", msg, "time", t);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            fprintf(g_log, "%s\n", s);
        free(s);
        json_decref(o);
    } else {
        fprintf(g_log, "time=\"%s\" level=%s msg=\"", t, level);
        for (const char *c = msg; *c; c++)
            fprintf(g_log, *c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
        fprintf(g_log, "\"\n");
    }
    fflush(g_log);
}

/* An error: one line on stderr and in the log. Returns EXIT_FAIL. */
__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "vmcore-oci: %s\n", msg);
    log_line("error", msg);
    return EXIT_FAIL;
}

__attribute__((format(printf, 1, 2))) static int usage_fail(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "vmcore-oci: %s (see vmcore-oci --help)\n", msg);
    log_line("error", msg);
    return EXIT_USAGE;
}

/* --- files ---------------------------------------------------------------------------- */

/* runc's rule for ids: letters, digits and "_+-." , not "." or ".."; at most 128 bytes here
 * (the cgroup folder's name must hold it). */
static bool valid_id(const char *id)
{
    if (!*id || strlen(id) > 128 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return false;
    for (const char *c = id; *c; c++)
        if (!(isalnum((unsigned char)*c) || strchr("_+-.", *c)))
            return false;
    return true;
}

static void dir_of(char *out, size_t len, const char *id)
{
    snprintf(out, len, "%s/%s", g_root, id);
}

/* Write @data to @path atomically (a temporary file renamed over it). */
static int write_atomic(const char *path, const char *data, mode_t mode)
{
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    size_t len = strlen(data);
    ssize_t n = write(fd, data, len);
    int e = n == (ssize_t)len ? 0 : (n < 0 ? errno : EIO);
    if (close(fd) < 0 && !e)
        e = errno;
    if (!e && rename(tmp, path) < 0)
        e = errno;
    if (e)
        unlink(tmp);
    return -e;
}

/* The start time of @pid (clock ticks after boot, /proc/PID/stat field 22) and its state
 * letter; 0 if there is no such process. */
static unsigned long long pid_start(int pid, char *state)
{
    char p[64], buf[4096];
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *c = strrchr(buf, ')');
    if (!c || c[1] != ' ')
        return 0;
    if (state)
        *state = c[2];
    /* after ") ": field 3 is the state; field 22 is 19 fields further */
    char *s = c + 2;
    for (int f = 3; f < 22 && s; f++) {
        s = strchr(s, ' ');
        if (s)
            s++;
    }
    return s ? strtoull(s, NULL, 10) : 0;
}

struct ct_state {
    json_t *j;          /* state.json */
    char dir[PATH_MAX];
    const char *id;
    int pid;
    unsigned long long start;
    const char *cgroup; /* the library's detached state, as text */
    char *cgroup_text;
};

static void state_free(struct ct_state *s)
{
    json_decref(s->j);
    free(s->cgroup_text);
    s->j = NULL;
    s->cgroup_text = NULL;
}

/* Load --root/ID/state.json; a failure message is printed. */
static int state_load(const char *id, struct ct_state *s)
{
    memset(s, 0, sizeof *s);
    s->id = id;
    if (!valid_id(id))
        return fail("invalid container id \"%s\" (1 to 128 of letters, digits and _+-.)", id);
    dir_of(s->dir, sizeof s->dir, id);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/state.json", s->dir);
    json_error_t je;
    s->j = json_load_file(p, 0, &je);
    if (!s->j) {
        struct stat st;
        if (stat(s->dir, &st) < 0)
            return fail("container %s does not exist", id);
        return fail("%s: %s", p, je.text);
    }
    s->pid = (int)json_integer_value(json_object_get(s->j, "pid"));
    s->start = strtoull(json_string_value(json_object_get(s->j, "pid_start")) ?: "0", NULL, 10);
    s->cgroup_text = json_dumps(json_object_get(s->j, "cgroup"), JSON_COMPACT);
    s->cgroup = s->cgroup_text;
    if (s->pid <= 0 || !s->cgroup)
        return fail("%s: malformed (no pid or cgroup)", p);
    return 0;
}

/* Whether the container's first process still runs (not a zombie, not a reused pid). */
static bool state_alive(const struct ct_state *s)
{
    char st = 0;
    unsigned long long t = pid_start(s->pid, &st);
    return t != 0 && t == s->start && st != 'Z' && st != 'X';
}

static const char *state_status(const struct ct_state *s)
{
    if (!state_alive(s))
        return "stopped";
    char fifo[PATH_MAX + 16];
    snprintf(fifo, sizeof fifo, "%s/exec.fifo", s->dir);
    if (access(fifo, F_OK) == 0)
        return "created";
    return vmcore_detached_frozen(s->cgroup) == 1 ? "paused" : "running";
}

/* Remove the state directory and what is in it (files only). */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[PATH_MAX + 300];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* Send @fd to the UNIX socket at @path (SCM_RIGHTS), as runc does for --console-socket. */
static int send_console(const char *path, int fd)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return fail("--console-socket: socket: %s", strerror(errno));
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof a.sun_path) {
        close(s);
        return fail("--console-socket %s: path too long", path);
    }
    strcpy(a.sun_path, path);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(s);
        return fail("--console-socket %s: connect: %s", path, strerror(e));
    }
    char name[] = "/dev/ptmx";
    struct iovec iov = { .iov_base = name, .iov_len = sizeof name - 1 };
    char ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof ctl);
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                          .msg_controllen = sizeof ctl };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t n = sendmsg(s, &msg, MSG_NOSIGNAL);
    int e = errno;
    close(s);
    if (n < 0)
        return fail("--console-socket %s: sendmsg: %s", path, strerror(e));
    return 0;
}

/* --- create ---------------------------------------------------------------------------- */

struct create_opts {
    const char *id, *bundle, *pid_file, *console_socket;
    int preserve_fds;
    bool no_pivot;
};

struct loop_wait {
    bool done;
    int status;
};

static void on_started(vmcore_domain *d, int status, void *arg)
{
    (void)d;
    struct loop_wait *w = arg;
    w->done = true;
    w->status = status;
}

static void on_closed(vmcore_domain *d, void *arg)
{
    (void)d;
    *(bool *)arg = true;
}

static char *read_config(const char *path, int *rc)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *rc = fail("%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *rc = fail("%s: not a regular file", path);
        return NULL;
    }
    if ((unsigned long long)st.st_size > OCI_CONFIG_MAX) {
        close(fd);
        *rc = fail("%s: %lld bytes is too large (at most %u)", path, (long long)st.st_size,
                   OCI_CONFIG_MAX);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!buf || got != (size_t)st.st_size) {
        free(buf);
        *rc = fail("%s: cannot read it", path);
        return NULL;
    }
    buf[got] = 0;
    return buf;
}

/* Make the container. On success *@pid is its first process (waiting on the FIFO; our
 * child) and the state directory is complete; on failure nothing is left. */
static int do_create(const struct create_opts *o, int *pid_out)
{
    if (!valid_id(o->id))
        return fail("invalid container id \"%s\" (1 to 128 of letters, digits and _+-.)", o->id);
    if (o->no_pivot)
        return fail("--no-pivot: not supported by vmcore-oci (the library always uses pivot_root)");
    if (o->preserve_fds > 0)
        return fail("--preserve-fds: not supported by vmcore-oci yet");
    char bundle[PATH_MAX];
    if (!realpath(o->bundle ? o->bundle : ".", bundle))
        return fail("--bundle %s: %s", o->bundle ? o->bundle : ".", strerror(errno));
    char cfgpath[PATH_MAX + 16];
    snprintf(cfgpath, sizeof cfgpath, "%s/config.json", bundle);
    int rc = 0;
    char *text = read_config(cfgpath, &rc);
    if (!text)
        return rc;
    json_error_t je;
    json_t *oci = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!oci)
        return fail("%s: line %d column %d: %s", cfgpath, je.line, je.column, je.text);
    char dir[PATH_MAX], fifo[PATH_MAX + 16], cgname[300], err[8192];
    dir_of(dir, sizeof dir, o->id);
    snprintf(fifo, sizeof fifo, "%s/exec.fifo", dir);
    /* oci-ID-HASH: HASH (FNV-1a of --root) keeps two state directories' ids apart. */
    uint32_t h = 0x811c9dc5u;
    for (const char *c = g_root; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x01000193u;
    snprintf(cgname, sizeof cgname, "oci-%s-%08x", o->id, h);
    for (char *c = cgname; *c; c++)
        if (*c == '+')
            *c = '_';
    struct oci_extra x;
    json_t *cfg = oci_config_map(oci, bundle, o->id, fifo, cgname, &x, err, sizeof err);
    json_decref(oci);
    if (!cfg)
        return fail("%s", err);
    if (x.terminal && !o->console_socket) {
        json_decref(cfg);
        json_decref(x.annotations);
        return fail("process.terminal is true: --console-socket is required (vmcore-oci does "
                    "not relay a terminal itself)");
    }
    if (!x.terminal && o->console_socket) {
        json_decref(cfg);
        json_decref(x.annotations);
        return fail("--console-socket given but process.terminal is false");
    }
    if (o->console_socket) {
        struct stat st;
        if (stat(o->console_socket, &st) < 0 || !S_ISSOCK(st.st_mode)) {
            json_decref(cfg);
            json_decref(x.annotations);
            return fail("--console-socket %s: %s", o->console_socket,
                        errno == ENOENT ? "does not exist" : "not a socket");
        }
    }
    if (mkdir(g_root, 0700) < 0 && errno != EEXIST) {
        json_decref(cfg);
        json_decref(x.annotations);
        return fail("--root %s: %s", g_root, strerror(errno));
    }
    if (mkdir(dir, 0700) < 0) {
        int e = errno;
        json_decref(cfg);
        json_decref(x.annotations);
        if (e == EEXIST)
            return fail("container with id exists: %s", o->id);
        return fail("%s: %s", dir, strerror(e));
    }
    /* 0622: the container's user (any uid) opens it for writing. */
    if (mkfifo(fifo, 0600) < 0 || chmod(fifo, 0622) < 0) {
        rc = fail("%s: %s", fifo, strerror(errno));
        json_decref(cfg);
        json_decref(x.annotations);
        remove_dir(dir);
        return rc;
    }

    vmcore_ctx *ctx = NULL;
    vmcore_domain *d = NULL;
    vmcore_detached *det = calloc(1, sizeof *det);
    bool detached = false;
    rc = EXIT_FAIL;
    if (!det || vmcore_ctx_new(&ctx, NULL) != 0) {
        fail("out of memory");
        goto out;
    }
    if (vmcore_domain_new_jansson(&d, ctx, cfg, bundle) != 0) {
        const char *path = vmcore_ctx_last_error_path(ctx);
        const char *msg = vmcore_ctx_last_error(ctx);
        /* The library names its own keys; say which bundle this is about. */
        if (path && *path && strncmp(msg, path, strlen(path)) != 0)
            fail("%s: %s: %s", cfgpath, path, msg);
        else
            fail("%s: %s", cfgpath, msg);
        goto out;
    }
    if (x.rows && x.cols && vmcore_domain_resize_console(d, x.rows, x.cols) != 0) {
        fail("process.consoleSize: %s", vmcore_domain_last_error(d));
        goto out;
    }
    struct loop_wait w = { 0 };
    if (vmcore_domain_start(d, on_started, &w) != 0) {
        fail("%s", vmcore_domain_last_error(d));
        goto out;
    }
    while (!w.done)
        vmcore_ctx_run(ctx, VMCORE_RUN_ONCE);
    if (w.status != 0) {
        fail("%s", vmcore_domain_last_error(d));
        goto out;
    }
    if (vmcore_domain_detach(d, det) != 0) {
        fail("%s", vmcore_domain_last_error(d));
        goto out;
    }
    detached = true;
    if (x.has_oom) {
        char p[64], v[16];
        snprintf(p, sizeof p, "/proc/%d/oom_score_adj", det->pid);
        snprintf(v, sizeof v, "%d", x.oom_score_adj);
        int fd = open(p, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, v, strlen(v)) < 0) {
            fail("process.oomScoreAdj: write %s: %s", p, strerror(errno));
            if (fd >= 0)
                close(fd);
            goto out;
        }
        close(fd);
    }
    if (o->console_socket && send_console(o->console_socket, det->console_fd) != 0)
        goto out;
    {
        char created[64], start[32];
        now_rfc3339(created, sizeof created);
        snprintf(start, sizeof start, "%llu", pid_start(det->pid, NULL));
        json_t *cg = json_loads(det->state, 0, NULL);
        json_t *st = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:O, s:o}", "ociVersion",
                               OCI_VERSION, "id", o->id, "pid", det->pid, "pid_start", start,
                               "bundle", bundle, "rootfs", x.rootfs, "created", created,
                               "annotations", x.annotations, "cgroup", cg ? cg : json_null());
        char *s = st ? json_dumps(st, JSON_INDENT(2)) : NULL;
        json_decref(st);
        char sp[PATH_MAX + 16];
        snprintf(sp, sizeof sp, "%s/state.json", dir);
        int r = s ? write_atomic(sp, s, 0600) : -ENOMEM;
        free(s);
        if (r < 0) {
            fail("%s: %s", sp, strerror(-r));
            goto out;
        }
    }
    if (o->pid_file) {
        char v[16];
        snprintf(v, sizeof v, "%d", det->pid);
        int r = write_atomic(o->pid_file, v, 0644);
        if (r < 0) {
            fail("--pid-file %s: %s", o->pid_file, strerror(-r));
            goto out;
        }
    }
    *pid_out = det->pid;
    rc = 0;
out:
    if (det && det->console_fd >= 0 && detached)
        close(det->console_fd);
    if (d) {
        bool closed = false;
        vmcore_domain_close(d, on_closed, &closed);
        while (!closed)
            vmcore_ctx_run(ctx, VMCORE_RUN_ONCE);
    }
    if (rc != 0 && detached) {
        /* Made, then failed: kill it and reap it (still our child). */
        vmcore_detached_destroy(NULL, det->state);
        siginfo_t si;
        waitid(P_PID, (id_t)det->pid, &si, WEXITED | __WALL);
    }
    if (rc != 0) {
        remove_dir(dir);
        if (o->pid_file)
            unlink(o->pid_file);
    }
    vmcore_ctx_free(ctx);
    free(det);
    json_decref(cfg);
    json_decref(x.annotations);
    return rc;
}

/* --- start ----------------------------------------------------------------------------- */

static int do_start(const char *id)
{
    struct ct_state s;
    if (state_load(id, &s) != 0) {
        state_free(&s);
        return EXIT_FAIL;
    }
    const char *st = state_status(&s);
    if (strcmp(st, "created") != 0) {
        state_free(&s);
        return fail(strcmp(st, "stopped") == 0 ? "cannot start a container that has stopped"
                                               : "cannot start an already running container");
    }
    char fifo[PATH_MAX + 16];
    snprintf(fifo, sizeof fifo, "%s/exec.fifo", s.dir);
    int pidfd = (int)syscall(SYS_pidfd_open, s.pid, 0);
    if (pidfd < 0 || !state_alive(&s)) {
        if (pidfd >= 0)
            close(pidfd);
        state_free(&s);
        return fail("cannot start a container that has stopped");
    }
    /* Opening the read end lets the process's blocked open for writing complete. */
    int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        close(pidfd);
        state_free(&s);
        return fail("%s: %s", fifo, strerror(e));
    }
    int rc = 0;
    for (;;) {
        struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            rc = fail("poll: %s", strerror(errno));
            break;
        }
        char c;
        if (p[0].revents & POLLIN) {
            ssize_t n = read(fd, &c, 1);
            if (n == 1)
                break;
            if (n < 0 && errno == EAGAIN)
                continue;
        }
        if (p[1].revents || (p[0].revents & (POLLHUP | POLLERR))) {
            rc = fail("cannot start a container that has stopped");
            break;
        }
    }
    close(fd);
    close(pidfd);
    if (rc == 0)
        unlink(fifo);
    state_free(&s);
    return rc;
}

/* --- state, kill, pause, resume, ps, delete --------------------------------------------- */

static int do_state(const char *id)
{
    struct ct_state s;
    if (state_load(id, &s) != 0) {
        state_free(&s);
        return EXIT_FAIL;
    }
    const char *st = state_status(&s);
    json_t *o = json_pack("{s:O, s:s, s:s, s:i, s:O, s:O, s:O, s:O, s:s}", "ociVersion",
                          json_object_get(s.j, "ociVersion"), "id", id, "status", st, "pid",
                          strcmp(st, "stopped") ? s.pid : 0, "bundle",
                          json_object_get(s.j, "bundle"), "rootfs", json_object_get(s.j, "rootfs"),
                          "created", json_object_get(s.j, "created"), "annotations",
                          json_object_get(s.j, "annotations"), "owner", "");
    char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    json_decref(o);
    state_free(&s);
    if (!text)
        return fail("out of memory");
    printf("%s\n", text);
    free(text);
    return 0;
}

static int parse_signal(const char *s)
{
    static const struct { const char *name; int sig; } sigs[] = {
        { "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ILL", SIGILL },
        { "TRAP", SIGTRAP }, { "ABRT", SIGABRT }, { "IOT", SIGIOT }, { "BUS", SIGBUS },
        { "FPE", SIGFPE }, { "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV },
        { "USR2", SIGUSR2 }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM },
        { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD }, { "CONT", SIGCONT }, { "STOP", SIGSTOP },
        { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU }, { "URG", SIGURG },
        { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },
        { "WINCH", SIGWINCH }, { "IO", SIGIO }, { "PWR", SIGPWR }, { "SYS", SIGSYS },
    };
    char *end;
    long n = strtol(s, &end, 10);
    if (*s && !*end)
        return n > 0 && n < NSIG ? (int)n : -1;
    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (strcasecmp(s, sigs[i].name) == 0)
            return sigs[i].sig;
    if (strncasecmp(s, "RTMIN", 5) == 0 || strncasecmp(s, "RTMAX", 5) == 0) {
        long off = s[5] ? strtol(s + 5, &end, 10) : 0;
        int sig = (s[3] == 'I' || s[3] == 'i') ? SIGRTMIN + (int)off : SIGRTMAX + (int)off;
        return (!s[5] || !*end) && sig >= SIGRTMIN && sig <= SIGRTMAX ? sig : -1;
    }
    return -1;
}

static int do_kill(const char *id, const char *sigstr, bool all)
{
    int sig = parse_signal(sigstr ? sigstr : "TERM");
    if (sig < 0)
        return usage_fail("kill: unknown signal \"%s\"", sigstr);
    struct ct_state s;
    if (state_load(id, &s) != 0) {
        state_free(&s);
        return EXIT_FAIL;
    }
    int rc = 0;
    if (!state_alive(&s)) {
        rc = fail("container not running");
    } else if (all) {
        int n = vmcore_detached_signal_all(NULL, s.cgroup, sig);
        if (n < 0)
            rc = fail("kill --all: %s", vmcore_strerror(n));
    } else {
        /* A pidfd, then the start time again: the pid cannot be reused under us. */
        int pidfd = (int)syscall(SYS_pidfd_open, s.pid, 0);
        if (pidfd < 0 || !state_alive(&s))
            rc = fail("container not running");
        else if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
            rc = fail("kill: %s", strerror(errno));
        if (pidfd >= 0)
            close(pidfd);
    }
    state_free(&s);
    return rc;
}

static int do_freeze(const char *id, bool frozen)
{
    struct ct_state s;
    if (state_load(id, &s) != 0) {
        state_free(&s);
        return EXIT_FAIL;
    }
    const char *st = state_status(&s);
    int rc = 0;
    if (frozen && strcmp(st, "running") != 0)
        rc = fail("container not running");
    else if (!frozen && strcmp(st, "paused") != 0)
        rc = fail("container not paused");
    else {
        vmcore_ctx *ctx = NULL;
        vmcore_ctx_new(&ctx, NULL);
        if (vmcore_detached_freeze(ctx, s.cgroup, frozen) != 0)
            rc = fail("%s", ctx ? vmcore_ctx_last_error(ctx) : "out of memory");
        vmcore_ctx_free(ctx);
    }
    state_free(&s);
    return rc;
}

static int do_ps(const char *id, const char *format)
{
    if (strcmp(format, "json") != 0 && strcmp(format, "table") != 0)
        return usage_fail("ps: --format must be table or json");
    struct ct_state s;
    if (state_load(id, &s) != 0) {
        state_free(&s);
        return EXIT_FAIL;
    }
    int *pids = NULL;
    size_t n = 0;
    int rc = 0;
    if (state_alive(&s) && vmcore_detached_pids(NULL, s.cgroup, &pids, &n) != 0)
        n = 0;
    if (strcmp(format, "json") == 0) {
        printf("[");
        for (size_t i = 0; i < n; i++)
            printf("%s%d", i ? "," : "", pids[i]);
        printf("]\n");
    } else {
        printf("PID\n");
        for (size_t i = 0; i < n; i++)
            printf("%d\n", pids[i]);
    }
    free(pids);
    state_free(&s);
    return rc;
}

static int do_delete(const char *id, bool force)
{
    struct ct_state s;
    if (state_load(id, &s) != 0) {
        /* runc: --force on a container that does not exist is not an error */
        state_free(&s);
        char dir[PATH_MAX];
        struct stat st;
        dir_of(dir, sizeof dir, id);
        if (force && valid_id(id) && stat(dir, &st) < 0)
            return 0;
        if (force && valid_id(id)) {
            remove_dir(dir);
            return 0;
        }
        return EXIT_FAIL;
    }
    const char *st = state_status(&s);
    if (!force && (strcmp(st, "running") == 0 || strcmp(st, "paused") == 0)) {
        int rc = fail("cannot delete container %s that is not stopped: %s", id, st);
        state_free(&s);
        return rc;
    }
    vmcore_ctx *ctx = NULL;
    vmcore_ctx_new(&ctx, NULL);
    int rc = 0;
    if (vmcore_detached_destroy(ctx, s.cgroup) != 0)
        rc = fail("%s", ctx ? vmcore_ctx_last_error(ctx) : "cannot remove the cgroup");
    vmcore_ctx_free(ctx);
    if (rc == 0)
        remove_dir(s.dir);
    state_free(&s);
    return rc;
}

/* --- run ------------------------------------------------------------------------------- */

static volatile sig_atomic_t g_run_pid;

static void forward_signal(int sig)
{
    if (g_run_pid > 0)
        kill(g_run_pid, sig);
}

static int do_run(const struct create_opts *o, bool detach)
{
    int pid = 0;
    int rc = do_create(o, &pid);
    if (rc != 0)
        return rc;
    if ((rc = do_start(o->id)) != 0) {
        do_delete(o->id, true);
        siginfo_t si;
        waitid(P_PID, (id_t)pid, &si, WEXITED | __WALL);
        return rc;
    }
    if (detach)
        return 0;
    g_run_pid = pid;
    struct sigaction sa = { .sa_handler = forward_signal };
    sigemptyset(&sa.sa_mask);
    int fwd[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
    for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++)
        sigaction(fwd[i], &sa, NULL);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    while (waitid(P_PID, (id_t)pid, &si, WEXITED | __WALL) < 0 && errno == EINTR)
        ;
    g_run_pid = 0;
    int status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
    if (do_delete(o->id, true) != 0)
        return EXIT_FAIL;
    return status;
}

/* --- spec, features -------------------------------------------------------------------- */

static int do_spec(const char *bundle)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/config.json", bundle ? bundle : ".");
    if (access(p, F_OK) == 0)
        return fail("File %s exists. Remove it first", p);
    json_t *d = oci_config_default();
    char *s = d ? json_dumps(d, JSON_INDENT(2)) : NULL;
    json_decref(d);
    if (!s)
        return fail("out of memory");
    size_t len = strlen(s);
    s[len] = 0;
    FILE *f = fopen(p, "wx");
    int rc = 0;
    if (!f || fprintf(f, "%s\n", s) < 0 || fclose(f) != 0)
        rc = fail("%s: %s", p, strerror(errno));
    free(s);
    return rc;
}

static int do_features(void)
{
    json_t *caps = json_array();
    static const char *const capnames[] = {
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
        "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
        "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
        "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE", NULL,
    };
    for (int i = 0; capnames[i]; i++)
        json_array_append_new(caps, json_string(capnames[i]));
    /* mode, size, nr_inodes, uid, gid: tmpfs only. */
    json_t *f = json_pack(
        "{s:s, s:s, s:[], s:[s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s],"
        " s:{s:[s,s,s,s,s,s,s], s:o, s:{s:b, s:b, s:b}, s:{s:b}, s:{s:b}, s:{s:b}},"
        " s:{}}",
        "ociVersionMin", "1.0.0", "ociVersionMax", OCI_VERSION, "hooks", "mountOptions", "ro",
        "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "bind", "rbind", "private",
        "rprivate", "mode", "size", "nr_inodes", "uid", "gid", "relatime", "linux", "namespaces", "pid",
        "network", "ipc", "uts", "mount", "cgroup", "user", "capabilities", caps, "cgroup", "v1",
        1, "v2", 1, "systemd", 0, "seccomp", "enabled", 0, "apparmor", "enabled", 0, "selinux",
        "enabled", 0, "annotations");
    char *s = f ? json_dumps(f, JSON_INDENT(2)) : NULL;
    json_decref(f);
    if (!s)
        return fail("out of memory");
    printf("%s\n", s);
    free(s);
    return 0;
}

/* --- command line ---------------------------------------------------------------------- */

/* Options of one command: flags anywhere among the positional arguments ("--x v", "--x=v"). */
struct args {
    int argc;
    char **argv;
    int i;
    const char *pos[4];
    int npos;
};

/* The value of option @name at argv[*i] ("--name v" or "--name=v"), or NULL. */
static const char *opt_value(struct args *a, const char *name, bool *matched, int *rc)
{
    const char *arg = a->argv[a->i];
    const char *p = arg;
    while (*p == '-')
        p++;
    size_t n = strlen(name);
    if (p == arg || strncmp(p, name, n) != 0 || (p[n] != 0 && p[n] != '='))
        return NULL;
    *matched = true;
    if (p[n] == '=')
        return p + n + 1;
    if (a->i + 1 >= a->argc) {
        *rc = usage_fail("%s needs a value", arg);
        return NULL;
    }
    return a->argv[++a->i];
}

static bool is_flag(struct args *a, const char *name)
{
    const char *p = a->argv[a->i];
    if (*p != '-')
        return false;
    while (*p == '-')
        p++;
    return strcmp(p, name) == 0;
}

int main(int argc, char **argv)
{
    int i = 1;
    const char *log_path = NULL, *log_format = "text";
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        const char *eq = strchr(a, '=');
        char name[64];
        snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
        bool takes = strcmp(name, "--root") == 0 || strcmp(name, "--log") == 0 ||
                     strcmp(name, "--log-format") == 0 || strcmp(name, "--criu") == 0 ||
                     strcmp(name, "--rootless") == 0;
        if (takes) {
            if (eq)
                v = eq + 1;
            else if (i + 1 < argc)
                v = argv[++i];
            else
                return usage_fail("%s needs a value", a);
        }
        if (strcmp(name, "--root") == 0)
            g_root = v;
        else if (strcmp(name, "--log") == 0)
            log_path = v;
        else if (strcmp(name, "--log-format") == 0)
            log_format = v;
        else if (strcmp(name, "--criu") == 0)
            ; /* the path of a checkpoint tool we never run */
        else if (strcmp(name, "--rootless") == 0) {
            if (strcmp(v, "false") != 0 && strcmp(v, "auto") != 0)
                return usage_fail("--rootless %s: not supported by vmcore-oci yet", v);
        } else if (strcmp(a, "--debug") == 0)
            ;
        else if (strcmp(a, "--systemd-cgroup") == 0) {
            fprintf(stderr, "vmcore-oci: --systemd-cgroup: not supported (vmcore-oci manages "
                    "cgroups itself, cgroupfs only)\n");
            return EXIT_FAIL;
        } else if (strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0) {
            printf("vmcore-oci version %s\nspec: %s\nlibvmcore: %s\n", vmcore_version_string(),
                   OCI_VERSION, vmcore_version_string());
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else
            return usage_fail("unknown global option %s", a);
    }
    if (strcmp(log_format, "text") != 0 && strcmp(log_format, "json") != 0)
        return usage_fail("--log-format must be text or json, not \"%s\"", log_format);
    g_log_json = strcmp(log_format, "json") == 0;
    if (log_path && !(g_log = fopen(log_path, "ae"))) {
        fprintf(stderr, "vmcore-oci: --log %s: %s\n", log_path, strerror(errno));
        return EXIT_FAIL;
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[i++];
    struct args a = { .argc = argc, .argv = argv };
    struct create_opts co = { 0 };
    bool force = false, all = false, detach = false;
    const char *format = "table", *bundle = NULL;
    int rc = 0;
    for (a.i = i; a.i < argc; a.i++) {
        bool m = false;
        const char *v;
        if (strcmp(argv[a.i], "--") == 0) {
            for (a.i++; a.i < argc && a.npos < 4; a.i++)
                a.pos[a.npos++] = argv[a.i];
            break;
        }
        if (argv[a.i][0] != '-' || strcmp(argv[a.i], "-") == 0 ||
            (strcmp(cmd, "kill") == 0 && a.npos == 1 && parse_signal(argv[a.i] + 1) > 0 &&
             isdigit((unsigned char)argv[a.i][1]))) {
            if (a.npos == 4)
                return usage_fail("%s: too many arguments", cmd);
            a.pos[a.npos++] = argv[a.i];
            continue;
        }
        if ((v = opt_value(&a, "bundle", &m, &rc)) || (!m && (v = opt_value(&a, "b", &m, &rc)))) {
            co.bundle = bundle = v;
        } else if (!m && (v = opt_value(&a, "pid-file", &m, &rc))) {
            co.pid_file = v;
        } else if (!m && (v = opt_value(&a, "console-socket", &m, &rc))) {
            co.console_socket = v;
        } else if (!m && (v = opt_value(&a, "preserve-fds", &m, &rc))) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 0 || n > 1000000)
                return usage_fail("--preserve-fds %s: not a count", v);
            co.preserve_fds = (int)n;
        } else if (!m && (v = opt_value(&a, "format", &m, &rc))) {
            format = v;
        } else if (!m && strcmp(cmd, "ps") == 0 && (v = opt_value(&a, "f", &m, &rc))) {
            format = v;
        } else if (m) {
            if (rc)
                return rc;
        } else if (is_flag(&a, "no-pivot")) {
            co.no_pivot = true;
        } else if (is_flag(&a, "no-new-keyring")) {
            ; /* vmcore-oci never makes a session keyring (doc/oci.md) */
        } else if (is_flag(&a, "force") || (is_flag(&a, "f") && strcmp(cmd, "delete") == 0)) {
            force = true;
        } else if (is_flag(&a, "all") || is_flag(&a, "a")) {
            all = true;
        } else if (is_flag(&a, "detach") || is_flag(&a, "d")) {
            detach = true;
        } else {
            return usage_fail("%s: unknown option %s", cmd, argv[a.i]);
        }
    }
    if (rc)
        return rc;
    bool needs_id = strcmp(cmd, "spec") != 0 && strcmp(cmd, "features") != 0;
    if (needs_id && a.npos < 1)
        return usage_fail("%s: missing the container id", cmd);
    int maxpos = strcmp(cmd, "kill") == 0 ? 2 : needs_id ? 1 : 0;
    if (a.npos > maxpos)
        return usage_fail("%s: unexpected argument \"%s\"", cmd, a.pos[maxpos]);
    co.id = a.pos[0];
    if (strcmp(cmd, "spec") == 0)
        return do_spec(bundle);
    if (strcmp(cmd, "features") == 0)
        return do_features();
    if (strcmp(cmd, "create") == 0) {
        int pid;
        return do_create(&co, &pid);
    }
    if (strcmp(cmd, "run") == 0)
        return do_run(&co, detach);
    if (strcmp(cmd, "start") == 0)
        return do_start(co.id);
    if (strcmp(cmd, "state") == 0)
        return do_state(co.id);
    if (strcmp(cmd, "kill") == 0)
        return do_kill(co.id, a.npos > 1 ? a.pos[1] : NULL, all);
    if (strcmp(cmd, "pause") == 0)
        return do_freeze(co.id, true);
    if (strcmp(cmd, "resume") == 0)
        return do_freeze(co.id, false);
    if (strcmp(cmd, "ps") == 0)
        return do_ps(co.id, format);
    if (strcmp(cmd, "delete") == 0)
        return do_delete(co.id, force);
    return usage_fail("unknown command \"%s\"", cmd);
}
