/* The toolstack commands of the vmcore program: managed domains that outlive the command
 * which made them (create, list, info, console, logs, pause, resume, shutdown, kill,
 * destroy, stats, exec, events). Each talks to the domain's monitor (monitor.c) over its
 * control socket (ctl.c, doc/control.md) or, for a domain whose monitor is gone, reads the
 * files the monitor left in the state directory.
 *
 * Exit codes: 0; 1 when the command could not be done (no such domain, wrong state, the
 * monitor unreachable); 2 for usage errors; 125 when `create` could not run the domain;
 * `exec` exits with the command's status. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ctl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "vmcore/vmcore.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_CREATE 125
#define DETACH_KEY 0x1d /* Ctrl-] */
/* How long quick requests (info, stats, pause, ...) may take. */
#define QUICK_MS 10000
/* How long kill/shutdown/destroy wait for the monitor to finish once the domain ended. */
#define MONITOR_EXIT_MS 30000

struct cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
};

static const char *prog_cmd = "";

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vmcore: %s: ", prog_cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static const struct cmd *find_cmd(const char *name);

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vmcore: %s: ", prog_cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'vmcore %s --help'.\n", prog_cmd);
    va_end(ap);
    return EXIT_USAGE;
}

/* --- options shared by every command ------------------------------------------------------ */

struct opts {
    const char *root_opt;
    char root[PATH_MAX];
    bool json;
    bool follow;
    bool foreground;
    bool no_replay, read_only;
    const char *name_opt;
    const char *backend;
    long timeout_s;
    int npos;
    char **pos;       /* positional arguments */
    char **rest;      /* after "--" (exec) */
    int nrest;
};

enum { OPT_JSON = 1, OPT_FOLLOW = 2, OPT_CREATE = 4, OPT_CONSOLE = 8, OPT_TIMEOUT = 16,
       OPT_REST = 32, OPT_FILE = 64 /* the last positional is a file, not a name */ };

/* Parse argv; returns -1 after printing help (exit 0), or an exit code > 0 for a usage
 * error, or 0. @min/@max: positional arguments. */
static int parse(int argc, char **argv, unsigned allowed, int min, int max, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->timeout_s = -1;
    o->pos = calloc((size_t)argc + 1, sizeof *o->pos);
    if (!o->pos)
        return usage("out of memory");
    const struct cmd *c = find_cmd(prog_cmd);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
#define TAKES(opt)                                                                          \
    (!strcmp(a, opt) ? (i + 1 < argc ? (val = argv[++i], 1) : -1)                           \
                     : (!strncmp(a, opt "=", strlen(opt) + 1) ? (val = a + strlen(opt) + 1, 1) : 0))
        int t;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(c->usage, stdout);
            return -1;
        } else if (!strcmp(a, "--")) {
            if (allowed & OPT_REST) {
                o->rest = argv + i + 1;
                o->nrest = argc - i - 1;
                break;
            }
            for (i++; i < argc; i++)
                o->pos[o->npos++] = argv[i];
            break;
        } else if ((t = TAKES("--root")) != 0) {
            if (t < 0)
                return usage("--root needs a directory");
            o->root_opt = val;
        } else if ((allowed & OPT_JSON) && !strcmp(a, "--json")) {
            o->json = true;
        } else if ((allowed & OPT_FOLLOW) && (!strcmp(a, "-f") || !strcmp(a, "--follow"))) {
            o->follow = true;
        } else if ((allowed & OPT_CREATE) && (t = TAKES("--name")) != 0) {
            if (t < 0)
                return usage("--name needs a name");
            o->name_opt = val;
        } else if ((allowed & OPT_CREATE) && ((t = TAKES("--backend")) != 0 ||
                                              (t = TAKES("-b")) != 0)) {
            if (t < 0)
                return usage("--backend needs a backend name");
            o->backend = val;
        } else if ((allowed & OPT_CREATE) && !strcmp(a, "--foreground")) {
            o->foreground = true;
        } else if ((allowed & OPT_CONSOLE) && !strcmp(a, "--no-replay")) {
            o->no_replay = true;
        } else if ((allowed & OPT_CONSOLE) && !strcmp(a, "--read-only")) {
            o->read_only = true;
        } else if ((allowed & OPT_TIMEOUT) && (t = TAKES("--timeout")) != 0) {
            char *end;
            if (t < 0)
                return usage("--timeout needs a number of seconds");
            errno = 0;
            o->timeout_s = strtol(val, &end, 10);
            if (errno || *end || end == val || o->timeout_s < 0 || o->timeout_s > 86400)
                return usage("--timeout: expected seconds from 0 to 86400, got '%s'", val);
        } else if (a[0] == '-' && a[1]) {
            return usage("unknown option '%s'", a);
        } else if ((allowed & OPT_REST) && o->npos == max) {
            o->rest = argv + i;
            o->nrest = argc - i;
            break;
        } else {
            o->pos[o->npos++] = (char *)a;
        }
#undef TAKES
    }
    if (o->npos < min)
        return usage(min == 1 && max == 1 ? "missing the domain name" : "missing arguments");
    if (o->npos > max)
        return usage("unexpected argument '%s'", o->pos[max]);
    if ((allowed & OPT_REST) && o->nrest == 0)
        return usage("missing the command to run (after --)");
    char err[256];
    if (ctl_root(o->root_opt, o->root, sizeof o->root, err, sizeof err) < 0) {
        say("%s", err);
        return EXIT_FAIL;
    }
    if (!(allowed & OPT_CREATE))
        for (int i = 0; i < o->npos - ((allowed & OPT_FILE) ? 1 : 0); i++)
            if (!ctl_valid_name(o->pos[i]))
                return usage("'%s' is not a valid domain name", o->pos[i]);
    return 0;
}

static void opts_free(struct opts *o) { free(o->pos); }

#define PARSE(allowed, min, max)                                                            \
    struct opts o;                                                                          \
    do {                                                                                    \
        int prc_ = parse(argc, argv, (allowed), (min), (max), &o);                          \
        if (prc_) {                                                                         \
            opts_free(&o);                                                                  \
            return prc_ < 0 ? 0 : prc_;                                                     \
        }                                                                                   \
    } while (0)

/* --- helpers ----------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static bool domain_exists(const struct opts *o, const char *name)
{
    char dir[PATH_MAX];
    struct stat st;
    return ctl_path(dir, sizeof dir, o->root, name, NULL) == 0 && lstat(dir, &st) == 0 &&
           S_ISDIR(st.st_mode);
}

/* Wait until no monitor holds the lock; true if it let go within @ms. */
static bool wait_monitor_gone(const struct opts *o, const char *name, int ms)
{
    int64_t end = mono_ms() + ms;
    while (ctl_lock_held(o->root, name) == 1) {
        if (mono_ms() >= end)
            return false;
        nap_ms(10);
    }
    return true;
}

static json_t *load_json(const struct opts *o, const char *name, const char *file)
{
    char p[PATH_MAX];
    if (ctl_path(p, sizeof p, o->root, name, file) < 0)
        return NULL;
    size_t len;
    char *text = ctl_read_file(p, &len);
    if (!text)
        return NULL;
    json_t *v = json_loadb(text, len, 0, NULL);
    free(text);
    if (v && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

static const char *jstr(json_t *obj, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : dflt;
}

static long long jint(json_t *obj, const char *key)
{
    return (long long)json_integer_value(json_object_get(obj, key));
}

/* Connect to a live domain or explain why not (exit code in *rc). */
static int connect_or_say(const struct opts *o, const char *name, int *rc)
{
    char err[512];
    if (!domain_exists(o, name)) {
        say("domain '%s' does not exist", name);
        *rc = EXIT_FAIL;
        return -1;
    }
    int fd = ctl_connect(o->root, name, err, sizeof err);
    if (fd < 0) {
        json_t *st = load_json(o, name, CTL_FILE_STATE);
        if (st && ctl_lock_held(o->root, name) != 1)
            say("domain '%s' has ended (%s)", name, jstr(st, "state", "stopped"));
        else
            say("%s", err);
        json_decref(st);
        *rc = EXIT_FAIL;
    }
    return fd;
}

static void ctl_close(int fd)
{
    ctl_forget(fd, NULL, 0);
    close(fd);
}

/* One request; prints the error and returns NULL when it failed. */
static json_t *call_or_say(int fd, const char *name, const char *method, json_t *params,
                           int timeout_ms)
{
    char err[512];
    json_t *r = ctl_call(fd, method, params, timeout_ms, NULL, NULL, err, sizeof err);
    if (!r) {
        say("%s: %s", name, err);
        return NULL;
    }
    json_t *e = json_object_get(r, "error");
    if (e) {
        say("%s: %s", name, jstr(e, "message", "failed"));
        json_decref(r);
        return NULL;
    }
    return r;
}

static void fmt_duration(char *buf, size_t n, long long ms)
{
    long long s = ms / 1000;
    if (ms < 0)
        snprintf(buf, n, "-");
    else if (s < 60)
        snprintf(buf, n, "%llds", s);
    else if (s < 3600)
        snprintf(buf, n, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, n, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else
        snprintf(buf, n, "%lldd%02lldh", s / 86400, s / 3600 % 24);
}

static void fmt_bytes(char *buf, size_t n, long long b)
{
    if (b < 0)
        snprintf(buf, n, "-");
    else if (b < 1024 * 1024)
        snprintf(buf, n, "%.1fKiB", b / 1024.0);
    else if (b < 1024LL * 1024 * 1024)
        snprintf(buf, n, "%.1fMiB", b / 1048576.0);
    else
        snprintf(buf, n, "%.2fGiB", b / 1073741824.0);
}

/* The description of one domain: the monitor's info (+ stats) when it is live, else what
 * the state directory says ("stopped"/"crashed" with the exit, or "gone"). NULL if @name
 * is not a domain directory of ours. */
static json_t *describe(const struct opts *o, const char *name, bool with_stats)
{
    int held = ctl_lock_held(o->root, name);
    if (held < 0)
        return NULL;
    json_t *d = NULL;
    if (held == 1) {
        char err[512];
        int fd = ctl_connect(o->root, name, err, sizeof err);
        if (fd >= 0) {
            json_t *r = ctl_call(fd, "info", NULL, QUICK_MS, NULL, NULL, err, sizeof err);
            json_t *res = json_object_get(r, "result");
            if (res)
                d = json_incref(res);
            json_decref(r);
            if (d && with_stats) {
                r = ctl_call(fd, "stats", NULL, QUICK_MS, NULL, NULL, err, sizeof err);
                res = json_object_get(r, "result");
                if (res)
                    json_object_set(d, "stats", res);
                json_decref(r);
            }
            ctl_close(fd);
        }
        if (!d) {
            /* the lock is held but the socket does not answer: starting, or wedged */
            json_t *meta = load_json(o, name, CTL_FILE_META);
            d = json_pack("{s:s, s:s, s:s}", "name", name, "backend",
                          jstr(meta, "backend", "-"), "state", meta ? "unresponsive" : "starting");
            json_decref(meta);
        }
        return d;
    }
    json_t *meta = load_json(o, name, CTL_FILE_META);
    json_t *st = load_json(o, name, CTL_FILE_STATE);
    d = json_pack("{s:s, s:s, s:s}", "name", name, "backend", jstr(meta, "backend", "-"),
                  "state", st ? jstr(st, "state", "stopped") : "gone");
    if (meta) {
        json_object_set(d, "config", json_object_get(meta, "config"));
        json_object_set(d, "created", json_object_get(meta, "created"));
        json_object_set(d, "monitor_pid", json_object_get(meta, "monitor_pid"));
    }
    json_object_set(d, "exit", st ? json_object_get(st, "exit") : json_null());
    if (st)
        json_object_set(d, "ended", json_object_get(st, "ended"));
    json_decref(meta);
    json_decref(st);
    return d;
}

static void print_json(json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
}

/* --- create ------------------------------------------------------------------------------ */

static int ensure_root(const struct opts *o)
{
    /* mkdir -p, every level 0700 that we make */
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", o->root);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            say("%s: %s", p, strerror(errno));
            return -1;
        }
        *s = '/';
    }
    if (mkdir(p, 0700) < 0 && errno != EEXIST) {
        say("%s: %s", p, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
        say("%s: not a directory", p);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        say("state directory %s is not ours (owned by uid %u): use --root", p,
            (unsigned)st.st_uid);
        return -1;
    }
    return 0;
}

/* The name a config file gives its domain: its "name" key, else the file's base name
 * without ".json". */
static void default_name(const char *config, char *out, size_t size)
{
    json_t *root = json_load_file(config, 0, NULL);
    const char *n = json_string_value(json_object_get(root, "name"));
    if (n && ctl_valid_name(n)) {
        snprintf(out, size, "%s", n);
    } else {
        const char *base = strrchr(config, '/');
        base = base ? base + 1 : config;
        snprintf(out, size, "%s", base);
        size_t len = strlen(out);
        if (len > 5 && !strcmp(out + len - 5, ".json"))
            out[len - 5] = 0;
    }
    json_decref(root);
}

static void dump_monitor_log(const struct opts *o, const char *name)
{
    char p[PATH_MAX];
    if (ctl_path(p, sizeof p, o->root, name, CTL_FILE_MONITOR_LOG) < 0)
        return;
    char *log = ctl_read_file(p, NULL);
    if (log && log[0])
        fputs(log, stderr);
    free(log);
}

static int cmd_create(int argc, char **argv)
{
    PARSE(OPT_CREATE | OPT_JSON, 1, 1);
    int rc = EXIT_CREATE;
    const char *config = o.pos[0];
    char name[CTL_NAME_MAX + 8];
    char *abs = realpath(config, NULL);
    if (!abs) {
        say("%s: cannot read: %s", config, strerror(errno));
        goto out;
    }
    if (o.backend) {
        bool known = false;
        for (const char *const *b = vmcore_backend_names(); *b; b++)
            known |= !strcmp(*b, o.backend);
        if (!known && strcmp(o.backend, "auto")) {
            rc = usage("--backend: unknown backend '%s'", o.backend);
            goto out;
        }
    }
    if (o.name_opt)
        snprintf(name, sizeof name, "%s", o.name_opt);
    else
        default_name(abs, name, sizeof name);
    if (!ctl_valid_name(name)) {
        rc = usage("%s'%s' is not a valid domain name (1 to %d of A-Z a-z 0-9 _ . -, "
                   "starting with a letter or digit)%s", o.name_opt ? "--name: " : "", name,
                   CTL_NAME_MAX, o.name_opt ? "" : ": give one with --name");
        goto out;
    }
    rc = EXIT_FAIL;
    char dir[PATH_MAX], sock[PATH_MAX], lockp[PATH_MAX];
    struct sockaddr_un sa;
    if (ctl_path(dir, sizeof dir, o.root, name, NULL) < 0 ||
        ctl_path(sock, sizeof sock, o.root, name, CTL_FILE_SOCKET) < 0 ||
        ctl_path(lockp, sizeof lockp, o.root, name, CTL_FILE_LOCK) < 0 ||
        strlen(sock) >= sizeof sa.sun_path) {
        say("%s/%s: the control socket path is longer than a UNIX socket address allows "
            "(%zu bytes): use a shorter --root or name", dir, CTL_FILE_SOCKET,
            sizeof sa.sun_path - 1);
        goto out;
    }
    if (ensure_root(&o) < 0)
        goto out;
    if (mkdir(dir, 0700) < 0) {
        if (errno != EEXIST)
            say("%s: %s", dir, strerror(errno));
        else if (ctl_lock_held(o.root, name) == 1)
            say("domain '%s' already exists", name);
        else
            say("domain '%s' already exists (it has ended): 'vmcore destroy %s' removes it",
                name, name);
        goto out;
    }
    int lock_fd = open(lockp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
        say("%s: %s", lockp, strerror(errno));
        if (lock_fd >= 0)
            close(lock_fd);
        ctl_remove_dir(o.root, name);
        goto out;
    }
    if (o.foreground) {
        rc = monitor_main(o.root, name, abs, o.backend, lock_fd, -1);
        close(lock_fd);
        goto out;
    }
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0) {
        say("pipe: %s", strerror(errno));
        close(lock_fd);
        ctl_remove_dir(o.root, name);
        goto out;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        setsid();
        pid_t mon = fork();
        if (mon != 0)
            _exit(mon < 0 ? 1 : 0);
        /* The monitor: no terminal, no stdio of the caller's; its own diagnostics (and the
         * library's) go to monitor.log. */
        int nul = open("/dev/null", O_RDWR);
        char logp[PATH_MAX];
        int log = ctl_path(logp, sizeof logp, o.root, name, CTL_FILE_MONITOR_LOG) == 0
                      ? open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
            dup2(log >= 0 ? log : nul, 2);
            if (nul > 2)
                close(nul);
        }
        if (log > 2)
            close(log);
        if (chdir("/") < 0)
            (void)0;
        umask(077);
        _exit(monitor_main(o.root, name, abs, o.backend, lock_fd, ready[1]));
    }
    close(ready[1]);
    close(lock_fd); /* the monitor holds its own copy */
    if (pid < 0) {
        say("fork: %s", strerror(errno));
        close(ready[0]);
        ctl_remove_dir(o.root, name);
        goto out;
    }
    int wst;
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
        ;
    char line[4096];
    size_t n = 0;
    while (n < sizeof line - 1) {
        ssize_t r = read(ready[0], line + n, sizeof line - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (memchr(line, '\n', n))
            break;
    }
    close(ready[0]);
    line[n] = 0;
    char *nl = strchr(line, '\n');
    if (nl)
        *nl = 0;
    if (nl && !strcmp(line, "0")) {
        if (o.json) {
            json_t *d = describe(&o, name, false);
            print_json(d);
            json_decref(d);
        } else {
            puts(name);
        }
        rc = 0;
        goto out;
    }
    rc = EXIT_CREATE;
    if (nl) {
        char *msg = strchr(line, ' ');
        say("%s", msg ? msg + 1 : line);
    } else {
        /* died without a word: show what it logged, then clean up after it */
        say("%s: the monitor died before the domain ran", name);
        dump_monitor_log(&o, name);
        if (wait_monitor_gone(&o, name, MONITOR_EXIT_MS))
            ctl_remove_dir(o.root, name);
    }
out:
    free(abs);
    opts_free(&o);
    return rc;
}

/* --- list, info, stats ------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_list(int argc, char **argv)
{
    PARSE(OPT_JSON, 0, 0);
    DIR *dir = opendir(o.root);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        if (!ctl_valid_name(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn)
                break;
            names = nn;
        }
        names[n] = strdup(e->d_name);
        if (names[n])
            n++;
    }
    if (dir)
        closedir(dir);
    qsort(names, n, sizeof *names, cmp_str);
    json_t *all = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *d = describe(&o, names[i], true);
        if (d)
            json_array_append_new(all, d);
        free(names[i]);
    }
    free(names);
    if (o.json) {
        print_json(all);
    } else {
        printf("%-20s %-10s %-12s %-9s %-9s %s\n", "NAME", "BACKEND", "STATE", "UPTIME", "CPU",
               "MEMORY");
        size_t i;
        json_t *d;
        json_array_foreach(all, i, d) {
            json_t *st = json_object_get(d, "stats");
            json_t *up = json_object_get(d, "uptime_ms");
            char upt[32], cpu[32], mem[32];
            fmt_duration(upt, sizeof upt, up ? (long long)json_integer_value(up) : -1);
            if (st)
                snprintf(cpu, sizeof cpu, "%.2fs", (double)jint(st, "cpu_time_ns") / 1e9);
            else
                snprintf(cpu, sizeof cpu, "-");
            fmt_bytes(mem, sizeof mem, st ? jint(st, "memory_bytes") : -1);
            const char *state = jstr(d, "state", "-");
            char stbuf[48];
            json_t *ex = json_object_get(d, "exit");
            if (json_is_object(ex) && (!strcmp(state, "stopped") || !strcmp(state, "crashed"))) {
                snprintf(stbuf, sizeof stbuf, "%s(%lld)", state, jint(ex, "code"));
                state = stbuf;
            }
            printf("%-20s %-10s %-12s %-9s %-9s %s\n", jstr(d, "name", "?"),
                   jstr(d, "backend", "-"), state, upt, cpu, mem);
        }
    }
    json_decref(all);
    opts_free(&o);
    return 0;
}

static int cmd_info(int argc, char **argv)
{
    PARSE(OPT_JSON, 1, 1);
    const char *name = o.pos[0];
    json_t *d = domain_exists(&o, name) ? describe(&o, name, true) : NULL;
    int rc = 0;
    if (!d) {
        say("domain '%s' does not exist", name);
        rc = EXIT_FAIL;
    } else if (o.json) {
        print_json(d);
    } else {
        printf("name:      %s\n", jstr(d, "name", "?"));
        printf("backend:   %s\n", jstr(d, "backend", "-"));
        printf("state:     %s\n", jstr(d, "state", "-"));
        if (json_object_get(d, "monitor_pid"))
            printf("monitor:   pid %lld\n", jint(d, "monitor_pid"));
        printf("config:    %s\n", jstr(d, "config", "-"));
        json_t *up = json_object_get(d, "uptime_ms");
        if (up) {
            char b[32];
            fmt_duration(b, sizeof b, (long long)json_integer_value(up));
            printf("uptime:    %s\n", b);
        }
        json_t *st = json_object_get(d, "stats");
        if (st) {
            char b[32];
            fmt_bytes(b, sizeof b, jint(st, "memory_bytes"));
            printf("cpu time:  %.3fs\n", (double)jint(st, "cpu_time_ns") / 1e9);
            printf("memory:    %s\n", b);
        }
        if (json_object_get(d, "console_clients"))
            printf("consoles:  %lld attached\n", jint(d, "console_clients"));
        json_t *ex = json_object_get(d, "exit");
        if (json_is_object(ex))
            printf("exit:      %s (code %lld)\n", jstr(ex, "reason", "?"), jint(ex, "code"));
    }
    json_decref(d);
    opts_free(&o);
    return rc;
}

static int cmd_stats(int argc, char **argv)
{
    PARSE(OPT_JSON, 1, 1);
    int rc = EXIT_FAIL;
    int fd = connect_or_say(&o, o.pos[0], &rc);
    if (fd >= 0) {
        json_t *r = call_or_say(fd, o.pos[0], "stats", NULL, QUICK_MS);
        json_t *res = json_object_get(r, "result");
        if (res) {
            rc = 0;
            if (o.json) {
                print_json(res);
            } else {
                const char *k;
                json_t *v;
                json_object_foreach(res, k, v)
                    printf("%-14s %lld\n", k, (long long)json_integer_value(v));
            }
        }
        json_decref(r);
        ctl_close(fd);
    }
    opts_free(&o);
    return rc;
}

/* --- pause, resume, kill, shutdown, destroy ---------------------------------------------- */

static int simple_call(int argc, char **argv, const char *method, unsigned extra)
{
    PARSE(extra, 1, 1);
    const char *name = o.pos[0];
    int rc = EXIT_FAIL;
    int fd = connect_or_say(&o, name, &rc);
    if (fd >= 0) {
        json_t *params = NULL;
        if (o.timeout_s >= 0)
            params = json_pack("{s:I}", "timeout_ms", (json_int_t)o.timeout_s * 1000);
        bool ends = !strcmp(method, "kill") || !strcmp(method, "shutdown");
        json_t *r = call_or_say(fd, name, method, params, ends ? -1 : QUICK_MS);
        if (r) {
            rc = 0;
            /* the domain has ended: wait until its monitor has released it, so that what
             * comes next (list, destroy, create of the same name) sees it stopped */
            if (ends && !wait_monitor_gone(&o, name, MONITOR_EXIT_MS)) {
                say("%s: the domain ended but its monitor did not exit", name);
                rc = EXIT_FAIL;
            }
        }
        json_decref(r);
        ctl_close(fd);
    }
    opts_free(&o);
    return rc;
}

/* vmcore save NAME FILE: the monitor writes the file, so a relative name is made absolute
 * here, against our own folder. */
static int cmd_save(int argc, char **argv)
{
    PARSE(OPT_FILE, 2, 2);
    const char *name = o.pos[0], *file = o.pos[1];
    char cwd[PATH_MAX], *abs = NULL;
    int rc = EXIT_FAIL;
    if (file[0] != '/' && (!getcwd(cwd, sizeof cwd) || asprintf(&abs, "%s/%s", cwd, file) < 0)) {
        say("save: cannot resolve %s: %s", file, strerror(errno));
        opts_free(&o);
        return EXIT_FAIL;
    }
    int fd = connect_or_say(&o, name, &rc);
    if (fd >= 0) {
        json_t *r = call_or_say(fd, name, "save", json_pack("{s:s}", "path", abs ? abs : file),
                                -1);
        if (r)
            rc = 0;
        json_decref(r);
        ctl_close(fd);
    }
    free(abs);
    opts_free(&o);
    return rc;
}

static int cmd_pause(int argc, char **argv) { return simple_call(argc, argv, "pause", 0); }
static int cmd_resume(int argc, char **argv) { return simple_call(argc, argv, "resume", 0); }
static int cmd_kill(int argc, char **argv) { return simple_call(argc, argv, "kill", 0); }
static int cmd_shutdown(int argc, char **argv)
{
    return simple_call(argc, argv, "shutdown", OPT_TIMEOUT);
}

/* The container backend names its cgroups vmcore-<pid of the process>-*, and a watcher
 * process removes them when that process dies without closing its domains: wait for it,
 * so that destroy after a kill -9 of the monitor returns with the groups gone. */
static int count_cgroups_of(int pid, const char *dir, int depth)
{
    if (depth > 4)
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "vmcore-%d-", pid);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.')
            continue;
        if (!strncmp(e->d_name, prefix, strlen(prefix))) {
            n++;
            continue;
        }
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) < (int)sizeof sub)
            n += count_cgroups_of(pid, sub, depth + 1);
    }
    closedir(d);
    return n;
}

static int cmd_destroy(int argc, char **argv)
{
    PARSE(0, 1, 1);
    const char *name = o.pos[0];
    int rc = EXIT_FAIL;
    if (!domain_exists(&o, name)) {
        say("domain '%s' does not exist", name);
        goto out;
    }
    json_t *meta = load_json(&o, name, CTL_FILE_META);
    int mon_pid = (int)jint(meta, "monitor_pid");
    json_decref(meta);
    if (ctl_lock_held(o.root, name) == 1) {
        char err[512];
        int fd = ctl_connect(o.root, name, err, sizeof err);
        if (fd >= 0) {
            json_t *r = ctl_call(fd, "kill", NULL, QUICK_MS, NULL, NULL, err, sizeof err);
            json_decref(r);
            ctl_close(fd);
        }
        if (!wait_monitor_gone(&o, name, MONITOR_EXIT_MS) && mon_pid > 0) {
            /* a wedged monitor: the lock proves the pid file's process is it */
            say("%s: the monitor (pid %d) did not exit: killing it", name, mon_pid);
            kill(mon_pid, SIGKILL);
            wait_monitor_gone(&o, name, MONITOR_EXIT_MS);
        }
        if (ctl_lock_held(o.root, name) == 1) {
            say("%s: the monitor still holds the domain", name);
            goto out;
        }
    }
    if (mon_pid > 0) {
        int64_t end = mono_ms() + MONITOR_EXIT_MS;
        while (count_cgroups_of(mon_pid, "/sys/fs/cgroup", 0) > 0 && mono_ms() < end)
            nap_ms(20);
        if (count_cgroups_of(mon_pid, "/sys/fs/cgroup", 0) > 0)
            say("%s: cgroups vmcore-%d-* are still there (non-empty?)", name, mon_pid);
    }
    if (ctl_remove_dir(o.root, name) < 0) {
        char dir[PATH_MAX];
        ctl_path(dir, sizeof dir, o.root, name, NULL);
        say("%s: %s (files not made by vmcore are left alone)", dir, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    opts_free(&o);
    return rc;
}

/* --- console, logs ----------------------------------------------------------------------- */

static volatile sig_atomic_t got_winch;
static void on_winch(int sig)
{
    (void)sig;
    got_winch = 1;
}

static bool write_all_fd(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = { .fd = fd, .events = POLLOUT };
            poll(&pf, 1, -1);
            continue;
        }
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void send_winsize(const struct opts *o, const char *name)
{
    struct winsize ws;
    if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || !ws.ws_row || !ws.ws_col)
        return;
    char err[256];
    int fd = ctl_connect(o->root, name, err, sizeof err);
    if (fd < 0)
        return;
    json_t *r = ctl_call(fd, "resize", json_pack("{s:i, s:i}", "rows", ws.ws_row, "cols",
                                                 ws.ws_col), QUICK_MS, NULL, NULL, err,
                         sizeof err);
    json_decref(r); /* a VM's serial console has no size: ENOTSUP is fine */
    ctl_close(fd);
}

static int cmd_console(int argc, char **argv)
{
    PARSE(OPT_CONSOLE, 1, 1);
    const char *name = o.pos[0];
    int rc = EXIT_FAIL;
    int fd = connect_or_say(&o, name, &rc);
    if (fd < 0)
        goto out;
    json_t *r = call_or_say(fd, name, "attach",
                            json_pack("{s:b, s:b}", "replay", !o.no_replay, "input",
                                      !o.read_only), QUICK_MS);
    if (!r) {
        ctl_close(fd);
        goto out;
    }
    json_decref(r);
    char first[CTL_MAX_LINE];
    size_t nfirst = ctl_forget(fd, first, sizeof first);
    if (nfirst && !write_all_fd(STDOUT_FILENO, first, nfirst)) {
        close(fd);
        goto out;
    }
    bool tty = isatty(STDIN_FILENO);
    struct termios saved;
    if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
        struct termios raw = saved;
        cfmakeraw(&raw);
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
        struct sigaction sa = { .sa_handler = on_winch };
        sigaction(SIGWINCH, &sa, NULL);
        send_winsize(&o, name);
    } else {
        tty = false;
    }
    if (tty)
        fprintf(stderr, "[attached to %s: Ctrl-] detaches]\r\n", name);
    bool in_open = !o.read_only;
    bool detached = false;
    rc = 0;
    for (;;) {
        if (got_winch) {
            got_winch = 0;
            send_winsize(&o, name);
        }
        struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
                               { .fd = in_open ? STDIN_FILENO : -1, .events = POLLIN } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        char buf[65536];
        if (p[0].revents) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break; /* the domain ended (or the monitor went away) */
            if (!write_all_fd(STDOUT_FILENO, buf, (size_t)n))
                break;
        }
        if (p[1].revents) {
            ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                in_open = false; /* keep showing output until the domain ends */
                continue;
            }
            char *k = memchr(buf, DETACH_KEY, (size_t)n);
            size_t send_n = k ? (size_t)(k - buf) : (size_t)n;
            if (send_n && !write_all_fd(fd, buf, send_n))
                break;
            if (k) {
                detached = true;
                break;
            }
        }
    }
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        signal(SIGWINCH, SIG_DFL);
    }
    if (detached && tty)
        fprintf(stderr, "\r\n[detached from %s]\r\n", name);
    close(fd);
out:
    opts_free(&o);
    return rc;
}

static int cat_file(const char *path, off_t *pos, ino_t *ino)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) == 0 && ino) {
        if (*ino && st.st_ino != *ino)
            *pos = 0; /* rotated: the new file from its start */
        *ino = st.st_ino;
    }
    if (pos && lseek(fd, *pos, SEEK_SET) < 0) {
        close(fd);
        return -1;
    }
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        if (!write_all_fd(STDOUT_FILENO, buf, (size_t)n))
            break;
        if (pos)
            *pos += n;
    }
    close(fd);
    return 0;
}

static int cmd_logs(int argc, char **argv)
{
    PARSE(OPT_FOLLOW, 1, 1);
    const char *name = o.pos[0];
    int rc = EXIT_FAIL;
    char cur[PATH_MAX], old[PATH_MAX];
    if (!domain_exists(&o, name)) {
        say("domain '%s' does not exist", name);
        goto out;
    }
    if (ctl_path(cur, sizeof cur, o.root, name, CTL_FILE_CONSOLE) < 0 ||
        ctl_path(old, sizeof old, o.root, name, CTL_FILE_CONSOLE_OLD) < 0)
        goto out;
    cat_file(old, NULL, NULL);
    off_t pos = 0;
    ino_t ino = 0;
    cat_file(cur, &pos, &ino);
    rc = 0;
    while (o.follow) {
        bool live = ctl_lock_held(o.root, name) == 1;
        fflush(stdout);
        nap_ms(100);
        cat_file(cur, &pos, &ino);
        if (!live)
            break; /* the monitor is gone: what it wrote is all there is */
    }
out:
    opts_free(&o);
    return rc;
}

/* --- exec, events ------------------------------------------------------------------------ */

static void print_console_event(json_t *ev, void *arg)
{
    (void)arg;
    const char *type = jstr(ev, "event", "");
    if (strcmp(type, "console"))
        return;
    const char *data = jstr(ev, "data", "");
    unsigned char *buf = malloc(strlen(data) / 4 * 3 + 3);
    long n = buf ? ctl_unbase64(data, buf) : -1;
    if (n > 0)
        write_all_fd(!strcmp(jstr(ev, "stream", ""), "stderr") ? STDERR_FILENO : STDOUT_FILENO,
                     (const char *)buf, (size_t)n);
    free(buf);
}

static int cmd_exec(int argc, char **argv)
{
    PARSE(OPT_REST, 1, 1);
    const char *name = o.pos[0];
    int rc = EXIT_FAIL;
    int fd = connect_or_say(&o, name, &rc);
    if (fd < 0)
        goto out;
    json_t *args = json_array();
    for (int i = 0; i < o.nrest; i++)
        json_array_append_new(args, json_string(o.rest[i]));
    char err[512];
    json_t *r = ctl_call(fd, "exec", json_pack("{s:o}", "argv", args), -1, print_console_event,
                         NULL, err, sizeof err);
    if (!r) {
        say("%s: %s", name, err);
        rc = EXIT_CREATE;
    } else if (json_object_get(r, "error")) {
        say("%s: %s", name, jstr(json_object_get(r, "error"), "message", "failed"));
        rc = EXIT_CREATE;
    } else {
        json_t *ex = json_object_get(json_object_get(r, "result"), "exit");
        rc = (int)jint(ex, "code");
    }
    json_decref(r);
    ctl_close(fd);
out:
    opts_free(&o);
    return rc;
}

/* `vmcore events`: one connection per watched domain (subscribed), and with --follow an
 * inotify watch on the root for domains created later. */
struct events {
    struct pollfd *p;       /* p[0]: the inotify fd (or -1); then one per domain */
    char (*names)[CTL_NAME_MAX + 1];
    size_t n, cap;
    struct pend {
        char name[CTL_NAME_MAX + 1];
        int64_t until;      /* ms (mono_ms) after which a monitor that never answered is
                               forgotten: a create that failed, a stray directory */
        int wd;             /* the inotify watch on its directory, or -1 */
    } *pend;
    size_t npend;
    bool follow;
};

static bool ev_watching(const struct events *w, const char *name)
{
    for (size_t i = 1; i < w->n; i++)
        if (w->p[i].fd >= 0 && !strcmp(w->names[i], name))
            return true;
    return false;
}

/* Connect to @name and subscribe; false if it does not answer (yet). */
static bool ev_add(struct events *w, const char *root, const char *name)
{
    if (ev_watching(w, name) || ctl_lock_held(root, name) != 1)
        return false;
    char err[256];
    int fd = ctl_connect(root, name, err, sizeof err);
    if (fd < 0)
        return false;
    json_t *r = ctl_call(fd, "subscribe", NULL, QUICK_MS, NULL, NULL, err, sizeof err);
    json_t *res = json_object_get(r, "result");
    if (!res) {
        json_decref(r);     /* an error reply: the domain has ended */
        ctl_close(fd);
        return false;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        struct pollfd *np = realloc(w->p, cap * sizeof *np);
        if (np)
            w->p = np;
        char (*nn)[CTL_NAME_MAX + 1] = np ? realloc(w->names, cap * sizeof *nn) : NULL;
        if (nn)
            w->names = nn;
        if (!np || !nn) {
            json_decref(r);
            ctl_close(fd);
            return false;
        }
        w->cap = cap;
    }
    w->p[w->n] = (struct pollfd){ .fd = fd, .events = POLLIN };
    snprintf(w->names[w->n], sizeof w->names[0], "%s", name);
    w->n++;
    if (w->follow) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        json_t *ev = json_pack("{s:s, s:s, s:O?, s:f}", "event", "appeared", "name", name,
                               "state", json_object_get(res, "state"), "time",
                               (double)ts.tv_sec + ts.tv_nsec / 1e9);
        char *line = ev ? json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (line)
            puts(line);
        free(line);
        json_decref(ev);
    }
    json_decref(r);
    return true;
}

/* A name seen in the root that did not answer yet: retried until it does or a while has
 * passed (its monitor may still be starting). */
static void ev_pend(struct events *w, const char *root, const char *name)
{
    for (size_t i = 0; i < w->npend; i++)
        if (!strcmp(w->pend[i].name, name))
            return;
    /* its socket's creation wakes the poll at once (a short-lived domain may be gone
     * before the next retry); the 50 ms retries are for what inotify cannot see */
    char dir[PATH_MAX];
    int wd = -1;
    if (w->p[0].fd >= 0 && snprintf(dir, sizeof dir, "%s/%s", root, name) < (int)sizeof dir)
        wd = inotify_add_watch(w->p[0].fd, dir, IN_CREATE | IN_MOVED_TO);
    struct pend *np = realloc(w->pend, (w->npend + 1) * sizeof *np);
    if (!np)
        return;
    w->pend = np;
    snprintf(np[w->npend].name, sizeof np[0].name, "%s", name);
    np[w->npend].wd = wd;
    np[w->npend++].until = mono_ms() + 30000;
}

static void ev_retry(struct events *w, const char *root)
{
    int64_t now = mono_ms();
    for (size_t i = 0; i < w->npend;) {
        if (ev_add(w, root, w->pend[i].name) || ev_watching(w, w->pend[i].name) ||
            now > w->pend[i].until) {
            if (w->pend[i].wd >= 0)
                inotify_rm_watch(w->p[0].fd, w->pend[i].wd);
            w->pend[i] = w->pend[--w->npend];
        } else {
            i++;
        }
    }
}

/* New entries in the root (inotify): pending names. */
static void ev_inotify(struct events *w, const char *root)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t len = read(w->p[0].fd, buf, sizeof buf);
        if (len <= 0)
            return;     /* EAGAIN: drained */
        for (char *at = buf; at < buf + len;) {
            const struct inotify_event *e = (const struct inotify_event *)at;
            if ((e->mask & IN_ISDIR) && e->len && ctl_valid_name(e->name))
                ev_pend(w, root, e->name);
            at += sizeof *e + e->len;
        }
    }
}

static int cmd_events(int argc, char **argv)
{
    PARSE(OPT_FOLLOW, 0, 1);
    int rc = 0;
    struct events w = { .follow = o.follow };
    if (o.follow && o.npos == 1) {
        rc = usage("--follow watches every domain: give no NAME");
        goto out;
    }
    w.cap = 16;
    w.p = calloc(w.cap, sizeof *w.p);
    w.names = calloc(w.cap, sizeof *w.names);
    if (!w.p || !w.names) {
        rc = EXIT_FAIL;
        say("out of memory");
        goto out;
    }
    w.p[0] = (struct pollfd){ .fd = -1 };
    w.n = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (o.npos == 1) {
        int fd = connect_or_say(&o, o.pos[0], &rc);
        if (fd < 0)
            goto out;
        char err[256];
        json_t *r = ctl_call(fd, "subscribe", NULL, QUICK_MS, NULL, NULL, err, sizeof err);
        if (!r) {
            ctl_close(fd);
            goto out;       /* it ended meanwhile: no events to print */
        }
        json_decref(r);
        w.p[w.n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
    } else {
        if (o.follow) {
            /* The watch first, then the listing: a domain made in between is seen twice
             * (ev_add skips the second) rather than missed. */
            if (ensure_root(&o) != 0) {
                rc = EXIT_FAIL;
                goto out;
            }
            w.p[0].fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
            if (w.p[0].fd < 0 ||
                inotify_add_watch(w.p[0].fd, o.root, IN_CREATE | IN_MOVED_TO) < 0) {
                say("cannot watch %s: %s", o.root, strerror(errno));
                rc = EXIT_FAIL;
                goto out;
            }
            w.p[0].events = POLLIN;
        }
        DIR *dir = opendir(o.root);
        struct dirent *e;
        while (dir && (e = readdir(dir)))
            if (ctl_valid_name(e->d_name) && !ev_add(&w, o.root, e->d_name) && o.follow)
                ev_pend(&w, o.root, e->d_name);
        if (dir)
            closedir(dir);
    }
    for (;;) {
        size_t live = 0;
        for (size_t i = 1; i < w.n; i++)
            live += w.p[i].fd >= 0;
        if (!live && !o.follow)
            break;
        if (poll(w.p, w.n, w.npend ? 50 : -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (w.p[0].fd >= 0 && w.p[0].revents)
            ev_inotify(&w, o.root);
        for (size_t i = 1; i < w.n; i++) {
            if (w.p[i].fd < 0 || !w.p[i].revents)
                continue;
            /* ctl_read_msg returns whole lines; one poll wake may hold several */
            char err[256];
            json_t *ev = ctl_read_msg(w.p[i].fd, 1000, err, sizeof err);
            if (!ev) {
                ctl_close(w.p[i].fd);
                w.p[i].fd = -1;
                continue;
            }
            char *line = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (line)
                puts(line);
            free(line);
            json_decref(ev);
        }
        /* forget closed connections, so a long --follow does not grow */
        size_t k = 1;
        for (size_t i = 1; i < w.n; i++)
            if (w.p[i].fd >= 0) {
                w.p[k] = w.p[i];
                memcpy(w.names[k++], w.names[i], sizeof w.names[0]);
            }
        w.n = k;
        if (w.npend)
            ev_retry(&w, o.root);
    }
out:
    for (size_t i = 1; i < w.n; i++)
        if (w.p[i].fd >= 0)
            ctl_close(w.p[i].fd);
    if (w.p && w.p[0].fd >= 0)
        close(w.p[0].fd);
    free(w.p);
    free(w.names);
    free(w.pend);
    opts_free(&o);
    return rc;
}

/* --- the table --------------------------------------------------------------------------- */

#define ROOT_HELP                                                                            \
    "  --root DIR   the state directory (default: $VMCORE_ROOT, else /run/vmcore for root,\n" \
    "               $XDG_RUNTIME_DIR/vmcore otherwise)\n"                                     \
    "  -h, --help   show this help\n"

static const struct cmd cmds[] = {
    { "create", cmd_create,
      "Usage: vmcore create [--name NAME] [--backend B] [--foreground] [--json] CONFIG.json\n"
      "\n"
      "Start the domain CONFIG.json describes under a monitor process of its own and return\n"
      "once it runs (printing its name). The domain outlives this command: manage it with\n"
      "the other commands, by name. The name is --name, else the config's \"name\", else\n"
      "the file's base name.\n"
      "\n"
      "Options:\n"
      "  --name NAME    the domain's name (1-64 of A-Z a-z 0-9 _ . -)\n"
      "  -b, --backend B  override the config's \"backend\"\n"
      "  --foreground   run the monitor in this process (for systemd), exit with the\n"
      "                 domain's status when it ends\n"
      "  --json         print the domain's description as JSON\n" ROOT_HELP
      "\n"
      "Exit status: 0, 1 (the name exists, bad state directory), 2 (usage), 125 (the domain\n"
      "could not be created or started; nothing is left behind).\n" },
    { "list", cmd_list,
      "Usage: vmcore list [--json]\n"
      "\n"
      "List the managed domains: name, backend, state (with the exit code of an ended one;\n"
      "\"gone\" when its monitor died), uptime, CPU time and memory.\n"
      "\n"
      "Options:\n"
      "  --json       print a JSON array\n" ROOT_HELP },
    { "info", cmd_info,
      "Usage: vmcore info [--json] NAME\n\nDescribe one domain.\n\nOptions:\n"
      "  --json       print JSON\n" ROOT_HELP },
    { "stats", cmd_stats,
      "Usage: vmcore stats [--json] NAME\n\nPrint a running domain's resource counters.\n\n"
      "Options:\n  --json       print JSON\n" ROOT_HELP },
    { "console", cmd_console,
      "Usage: vmcore console [--no-replay] [--read-only] NAME\n"
      "\n"
      "Attach to a domain's console: the last 64 KiB of output first, then live output;\n"
      "what you type goes to the console. Ctrl-] detaches (the domain keeps running).\n"
      "Several clients may attach at once. Output to a client that does not keep up is\n"
      "dropped for that client; the domain never waits for it.\n"
      "\n"
      "Options:\n"
      "  --no-replay  do not print the history first\n"
      "  --read-only  do not send input\n" ROOT_HELP },
    { "logs", cmd_logs,
      "Usage: vmcore logs [-f] NAME\n"
      "\n"
      "Print the domain's console log (also after it ended).\n"
      "\n"
      "Options:\n"
      "  -f, --follow  keep printing new output until the domain's monitor exits\n" ROOT_HELP },
    { "save", cmd_save,
      "Usage: vmcore save NAME FILE\n"
      "\n"
      "Write a running or paused VM's whole state to FILE (doc/snapshot.md); the domain\n"
      "goes on as it was. `vmcore run --restore FILE` continues it. emu only, and only\n"
      "machines without virtio devices, so far.\n\nOptions:\n" ROOT_HELP },
    { "pause", cmd_pause, "Usage: vmcore pause NAME\n\nFreeze a running domain.\n\nOptions:\n" ROOT_HELP },
    { "resume", cmd_resume, "Usage: vmcore resume NAME\n\nContinue a paused domain.\n\nOptions:\n" ROOT_HELP },
    { "shutdown", cmd_shutdown,
      "Usage: vmcore shutdown [--timeout S] NAME\n"
      "\n"
      "Ask the domain to end (ACPI power button for a VM, SIGTERM for a container's init),\n"
      "kill it after S seconds (default 10), and wait until it has ended.\n"
      "\n"
      "Options:\n"
      "  --timeout S  the grace period in seconds\n" ROOT_HELP },
    { "kill", cmd_kill, "Usage: vmcore kill NAME\n\nEnd the domain at once and wait until it has ended.\n\nOptions:\n" ROOT_HELP },
    { "destroy", cmd_destroy,
      "Usage: vmcore destroy NAME\n"
      "\n"
      "Kill the domain if it runs and remove it: its state directory, and what a monitor\n"
      "that died (kill -9) left (the library's watcher removes its cgroups; destroy waits\n"
      "for that).\n\nOptions:\n" ROOT_HELP },
    { "exec", cmd_exec,
      "Usage: vmcore exec NAME [--] COMMAND [ARG...]\n"
      "\n"
      "Run COMMAND inside a running container and exit with its status. Its output is\n"
      "printed; note that the library gives an exec no output streams of its own yet: the\n"
      "container's console output while COMMAND runs is printed too. No terminal and no\n"
      "input are given to it yet.\n\nOptions:\n" ROOT_HELP },
    { "events", cmd_events,
      "Usage: vmcore events [NAME | --follow]\n"
      "\n"
      "Print the state changes, exits and errors of one domain, or of every domain running\n"
      "when the command starts, one JSON object per line, until they have all ended. With\n"
      "--follow, domains created later are watched too (each announced by an \"appeared\"\n"
      "line with its state) and the command runs until it is interrupted.\n"
      "\nOptions:\n"
      "  -f, --follow watch for new domains too; never ends by itself\n" ROOT_HELP },
};

static const struct cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmds[i].name, name))
            return &cmds[i];
    return NULL;
}

bool toolstack_is_command(const char *cmd) { return find_cmd(cmd) != NULL; }

const char *toolstack_usage(const char *cmd)
{
    const struct cmd *c = find_cmd(cmd);
    return c ? c->usage : NULL;
}

int toolstack_main(const char *cmd, int argc, char **argv)
{
    const struct cmd *c = find_cmd(cmd);
    if (!c)
        return EXIT_USAGE;
    prog_cmd = c->name;
    return c->run(argc, argv);
}
