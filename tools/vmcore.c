/* vmcore: the command-line client of libvmcore.
 *
 *   vmcore run [--backend B] CONFIG.json   run a domain, stream its console, exit with its status
 *   vmcore probe [BACKEND...]              say which backends can run here, and why not
 *   vmcore create|list|info|console|logs|pause|resume|shutdown|kill|destroy|stats|exec|events
 *                                          managed domains (toolstack.c, monitor.c)
 *   vmcore --version | --help
 *
 * Exit codes: the domain's status (vmcore_exit_code(): the debug-exit byte, the process's
 * exit code, 128 + signal, 125 for a crash); 2 for usage errors; 125 when vmcore itself
 * could not run the domain (bad configuration, unavailable backend, failed start).
 *
 * This is a program, not the library: it may install signal handlers (through uv_signal),
 * change the terminal mode and write to stdout. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "vmcore/vmcore.h"

#include "ctl.h"

#define EXIT_USAGE 2
#define EXIT_FAILED 125
/* Grace period of the shutdown a first SIGINT/SIGTERM (or the detach key) asks for. */
#define SHUTDOWN_GRACE_MS 10000
/* Ctrl-]: in raw terminal mode Ctrl-C goes to the guest, so this key asks to end it. */
#define DETACH_KEY 0x1d
/* Console output waiting for our stdout/stderr: past OUT_HIGH bytes the domain's console
 * is held (vmcore_domain_hold_console(): the guest or container is held back, nothing is
 * lost), below OUT_LOW it is delivered again. */
#define OUT_HIGH (256u << 10)
#define OUT_LOW (64u << 10)

static const char usage_main[] =
    "Usage: vmcore COMMAND [OPTIONS]\n"
    "\n"
    "Run virtual machines and containers with libvmcore.\n"
    "\n"
    "Commands:\n"
    "  run [--backend B] CONFIG.json   run a domain in the foreground; its console goes\n"
    "                                  to stdout\n"
    "  probe [BACKEND...]              show which backends can run on this host\n"
    "\n"
    "Managed domains (each under a monitor process of its own; see doc/guide.md):\n"
    "  create [--name N] CONFIG.json   start a domain in the background\n"
    "  list                            list the domains: state, uptime, CPU, memory\n"
    "  info NAME, stats NAME           describe one domain, its resource counters\n"
    "  console NAME                    attach to its console (Ctrl-] detaches)\n"
    "  logs [-f] NAME                  print its console log\n"
    "  pause NAME, resume NAME         freeze and continue it\n"
    "  save NAME FILE                  write a VM's state to FILE (run --restore FILE)\n"
    "  shutdown [--timeout S] NAME     ask it to end, kill it after S seconds\n"
    "  kill NAME                       end it at once\n"
    "  destroy NAME                    kill it if it runs and remove it\n"
    "  exec NAME -- CMD...             run a command in a running container\n"
    "  events [NAME]                   print state changes as JSON lines\n"
    "  version                         print the library version\n"
    "  help [COMMAND]                  show help\n"
    "\n"
    "Options:\n"
    "  -h, --help      show help (also after a command)\n"
    "  -V, --version   print the library version\n"
    "  --root DIR      the managed domains' state directory (before or after the command)\n"
    "\n"
    "The configuration schema is described in doc/config.md.\n";

static const char usage_run[] =
    "Usage: vmcore run [--backend B] CONFIG.json\n"
    "       vmcore run --restore SNAPSHOT [--name NAME]\n"
    "\n"
    "Create the domain CONFIG.json describes (or, with --restore, the one a snapshot holds:\n"
    "doc/snapshot.md; it continues where it was saved), start it, copy its console to stdout (a\n"
    "container's stderr to stderr) and stdin (a terminal, pipe or file) to its console,\n"
    "wait for it to end and exit with its status: the debug-exit byte of a VM, the exit\n"
    "code of a container's process, 128 + signal if that process was killed, 125 if the\n"
    "machine crashed.\n"
    "\n"
    "Options:\n"
    "  -b, --backend B  override the config's \"backend\": auto, kvm, emu or container\n"
    "  --restore FILE   restore a snapshot instead of creating from a configuration\n"
    "  --name NAME      with --restore: the restored domain's name\n"
    "  -h, --help       show this help\n"
    "\n"
    "SIGINT or SIGTERM asks the domain to shut down (killed after 10 s); a second one kills\n"
    "it. When stdin is a terminal it is put in raw mode (Ctrl-C goes to the domain);\n"
    "press Ctrl-] to shut the domain down. A container's terminal follows the size of\n"
    "the terminal vmcore runs in.\n"
    "\n"
    "Exit status: the domain's, 2 for usage errors, 125 if vmcore could not run it.\n";

static const char usage_probe[] =
    "Usage: vmcore probe [BACKEND...]\n"
    "\n"
    "For each backend (all by default) print one line, \"NAME: available (DETAILS)\" or\n"
    "\"NAME: unavailable: REASON\". With BACKEND arguments, exit 1 unless all of them are\n"
    "available.\n"
    "\n"
    "Options:\n"
    "  -h, --help  show this help\n";

struct outstream;
static bool out_write(struct outstream *o, const char *data, size_t len);
/* While `vmcore run` writes stderr through the loop (non-blocking), say() queues there
 * too, in order with the container's stderr. */
static struct outstream *say_stream;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One line per error, whatever the message carries. */
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    char msg[1100];
    int n = snprintf(msg, sizeof msg, "vmcore: %s\n", line);
    if (say_stream && out_write(say_stream, msg, (size_t)n))
        return;
    fputs(msg, stderr);
}

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "vmcore: %s (try 'vmcore %s%s--help')\n", msg, cmd ? cmd : "",
            cmd ? " " : "");
    return EXIT_USAGE;
}

static bool is_help(const char *arg) { return !strcmp(arg, "-h") || !strcmp(arg, "--help"); }

/* Write all of @len bytes to @fd; false once the reader has gone away. */
static bool write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) { /* someone made our stdout non-blocking: wait for it */
                fd_set w;
                FD_ZERO(&w);
                FD_SET(fd, &w);
                select(fd + 1, NULL, &w, NULL, NULL);
                continue;
            }
            return false;
        }
        data += n;
        len -= (size_t)n;
    }
    return true;
}

/* ------------------------------------------------------------------------------------ */
/* vmcore probe                                                                        */

static bool known_backend(const char *name)
{
    if (!strcmp(name, "auto"))
        return true;
    for (const char *const *b = vmcore_backend_names(); *b; b++)
        if (!strcmp(*b, name))
            return true;
    return false;
}

static void backend_list(char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "auto");
    for (const char *const *b = vmcore_backend_names(); *b && n < size; b++)
        n += (size_t)snprintf(buf + n, size - n, ", %s", *b);
}

static bool probe_one(const char *name)
{
    vmcore_probe_result r = VMCORE_PROBE_RESULT_INIT;
    int rc = vmcore_probe(name, &r);
    if (rc == 0)
        printf("%s: available%s%s%s\n", name, r.details[0] ? " (" : "", r.details,
               r.details[0] ? ")" : "");
    else if (rc == VMCORE_EUNAVAIL)
        printf("%s: unavailable: %s\n", name, r.reason[0] ? r.reason : "no reason given");
    else
        printf("%s: probe failed: %s\n", name, vmcore_strerror(rc));
    return rc == 0;
}

static int cmd_probe(int argc, char **argv)
{
    int first = argc;
    for (int i = 0; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(usage_probe, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--")) {
            first = i + 1;
            break;
        }
        if (argv[i][0] == '-')
            return usage_error("probe", "probe: unknown option '%s'", argv[i]);
        if (first == argc)
            first = i;
    }
    for (int i = first; i < argc; i++)
        if (!known_backend(argv[i])) {
            char names[128];
            backend_list(names, sizeof names);
            return usage_error("probe", "probe: unknown backend '%s' (expected %s)", argv[i],
                               names);
        }
    if (first >= argc) {
        for (const char *const *b = vmcore_backend_names(); *b; b++)
            probe_one(*b);
        return 0;
    }
    bool all = true;
    for (int i = first; i < argc; i++)
        all &= probe_one(argv[i]);
    return all ? 0 : 1;
}

/* ------------------------------------------------------------------------------------ */
/* vmcore run                                                                          */

struct runner;

/* stdout or stderr. A terminal, pipe or socket is written through the loop (non-blocking,
 * so a reader that stops reading never blocks the loop and signals still work); a regular
 * file or a device such as /dev/null, which never blocks for long, with plain write(). */
struct outstream {
    struct runner *r;
    int fd;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tty_t tty;
        uv_pipe_t pipe;
    } h;
    bool open;           /* written through h */
    bool gone;           /* the reader went away or a write failed: discard */
    size_t queued;       /* bytes in unfinished uv_write requests */
    int saved_flags;     /* the descriptor's flags before (O_NONBLOCK is shared), or -1 */
};

struct write_req {
    uv_write_t req;
    struct outstream *o;
    size_t len;
    char data[];
};

struct runner {
    uv_loop_t *loop;
    vmcore_ctx *ctx;
    vmcore_domain *domain;
    uv_signal_t sigint, sigterm, sighup;
    bool signals_open;

    /* stdin -> console */
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tty_t tty;
        uv_pipe_t pipe;
    } in;
    bool in_open;
    bool in_reading;
    bool in_is_file;     /* a regular file: read with uv_fs_read, one request at a time */
    bool file_reading;   /* a uv_fs_read is in flight */
    uv_fs_t file_req;
    char file_buf[4096];
    bool raw_tty;
    struct termios saved_termios;
    int saved_stdin_flags;

    struct outstream out, err;
    bool console_held;   /* vmcore_domain_hold_console() while our output is full */
    bool abandon_output; /* after a signal: output stdout cannot take is dropped */
    unsigned long long dropped;
    bool torn_down;      /* teardown() ran: the outputs close once written */
    uv_signal_t sigwinch;
    bool shutting_down;  /* a graceful shutdown was asked for */
    bool ended;          /* the domain reached stopped or crashed */
    bool closing;        /* vmcore_domain_close() was called */
    int exit_code;
};

static void stdin_stop(struct runner *r);

/* --- stdout and stderr ------------------------------------------------------------------ */

static void out_open(struct runner *r, struct outstream *o, int fd)
{
    memset(o, 0, sizeof *o);
    o->r = r;
    o->fd = fd;
    o->saved_flags = -1;
    uv_handle_type t = uv_guess_handle(fd);
    if (t != UV_TTY && t != UV_NAMED_PIPE && t != UV_TCP)
        return; /* a file, /dev/null, or closed: plain write() */
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return;
    int rc;
    if (t == UV_TTY) {
        rc = uv_tty_init(r->loop, &o->h.tty, fd, 0);
    } else {
        /* uv_pipe_open() takes ownership of the descriptor it is given: a duplicate */
        int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dupfd < 0)
            return;
        rc = uv_pipe_init(r->loop, &o->h.pipe, 0);
        if (rc == 0 && (rc = uv_pipe_open(&o->h.pipe, dupfd)) != 0)
            uv_close(&o->h.handle, NULL);
        if (rc != 0)
            close(dupfd);
    }
    if (rc != 0)
        return;
    o->saved_flags = flags;
    o->h.handle.data = o;
    o->open = true;
}

/* Give the descriptor back as it was (O_NONBLOCK is a property of the shared description). */
static void out_restore(struct outstream *o)
{
    if (o->saved_flags >= 0)
        fcntl(o->fd, F_SETFL, o->saved_flags);
    o->saved_flags = -1;
}

static void out_close(struct outstream *o)
{
    if (say_stream == o)
        say_stream = NULL;
    if (o->open) {
        uv_close(&o->h.handle, NULL); /* cancels what was not written */
        o->open = false;
    }
}

static void maybe_finish(struct runner *r);

static void hold_console(struct runner *r, bool hold)
{
    if (r->console_held == hold || !r->domain || r->closing)
        return;
    if (vmcore_domain_hold_console(r->domain, hold) == 0)
        r->console_held = hold;
}

static void update_hold(struct runner *r)
{
    if (r->abandon_output)
        hold_console(r, false);
    else if (r->out.queued >= OUT_HIGH || r->err.queued >= OUT_HIGH)
        hold_console(r, true);
    else if (r->out.queued <= OUT_LOW && r->err.queued <= OUT_LOW)
        hold_console(r, false);
}

static void on_out_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct outstream *o = w->o;
    o->queued -= w->len;
    if (status < 0 && status != UV_ECANCELED)
        o->gone = true; /* EPIPE: the reader left */
    free(w);
    update_hold(o->r);
    if (o->queued == 0)
        maybe_finish(o->r);
}

/* Queue @len bytes for @o. False if the stream cannot take them (closed, gone). */
static bool out_write(struct outstream *o, const char *data, size_t len)
{
    if (o->gone)
        return false;
    if (!o->open) {
        if (!write_all(o->fd, data, len))
            o->gone = true;
        return !o->gone;
    }
    if (len == 0)
        return true;
    struct runner *r = o->r;
    if (r->abandon_output && o->queued >= OUT_HIGH) {
        r->dropped += len; /* shutting down on a signal, and nobody reads us */
        return true;
    }
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write(&o->h.stream, &b, 1); /* UV_EAGAIN while writes are queued */
    if (n >= 0 && (size_t)n == len)
        return true;
    if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
        o->gone = true;
        return false;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    struct write_req *w = malloc(sizeof *w + len - done);
    if (!w) {
        r->dropped += len - done;
        return true;
    }
    w->o = o;
    w->len = len - done;
    memcpy(w->data, data + done, w->len);
    b = uv_buf_init(w->data, (unsigned)w->len);
    if (uv_write(&w->req, &o->h.stream, &b, 1, on_out_written) != 0) {
        free(w);
        o->gone = true;
        return false;
    }
    o->queued += w->len;
    update_hold(r);
    return true;
}

static void on_domain_closed(vmcore_domain *d, void *arg)
{
    struct runner *r = arg;
    r->domain = NULL;
    r->console_held = false;
}

/* After teardown: once the output is written (or abandoned after a signal), close the
 * output streams and the signal handlers, so the loop runs out of work. Until then a
 * signal still ends us (it abandons the output). */
static void maybe_finish(struct runner *r)
{
    if (!r->torn_down)
        return;
    if (!r->abandon_output && (r->out.queued > 0 || r->err.queued > 0))
        return;
    out_close(&r->out);
    out_close(&r->err);
    if (r->signals_open) {
        uv_close((uv_handle_t *)&r->sigint, NULL);
        uv_close((uv_handle_t *)&r->sigterm, NULL);
        uv_close((uv_handle_t *)&r->sighup, NULL);
        uv_close((uv_handle_t *)&r->sigwinch, NULL);
        r->signals_open = false;
    }
}

/* Close every handle the CLI owns and the domain, once it has ended or failed, so the
 * loop runs out of work and vmcore_ctx_run() returns. Idempotent. */
static void teardown(struct runner *r)
{
    stdin_stop(r);
    if (r->domain && !r->closing) {
        r->closing = true;
        r->console_held = false; /* close releases it */
        vmcore_domain_close(r->domain, on_domain_closed, r);
    }
    r->torn_down = true;
    maybe_finish(r);
}

static void on_shutdown_done(vmcore_domain *d, int status, void *arg)
{
    if (status == VMCORE_ETIMEDOUT)
        say("the domain did not shut down in time and was killed");
    else if (status != 0 && status != VMCORE_ECANCELED)
        say("shutdown: %s", vmcore_domain_last_error(d));
}

static void request_shutdown(struct runner *r)
{
    if (!r->domain || r->ended || r->closing)
        return;
    vmcore_state st = vmcore_domain_state(r->domain);
    if (r->shutting_down || st == VMCORE_STATE_STOPPING) {
        int rc = vmcore_domain_kill(r->domain, NULL, NULL);
        if (rc != 0 && rc != VMCORE_ESTATE)
            say("kill: %s", vmcore_domain_last_error(r->domain));
        return;
    }
    r->shutting_down = true;
    int rc = vmcore_domain_shutdown(r->domain, SHUTDOWN_GRACE_MS, on_shutdown_done, r);
    if (rc == VMCORE_ESTATE && st == VMCORE_STATE_CREATED) {
        teardown(r); /* never started: nothing to stop */
    } else if (rc != 0 && rc != VMCORE_ESTATE) {
        say("shutdown: %s", vmcore_domain_last_error(r->domain));
        teardown(r);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct runner *r = s->data;
    /* We are asked to end: output nobody reads must not keep us (or the domain's exit,
     * held behind it) waiting. What stdout can still take is written, the rest dropped. */
    r->abandon_output = true;
    update_hold(r);
    request_shutdown(r);
    maybe_finish(r);
}

/* --- the terminal's window size ------------------------------------------------------- */

/* Give the domain our terminal's size (stdout's, else stdin's). False when there is no
 * terminal or the domain's console has no window size (a VM, a container of pipes). */
static bool forward_winsize(struct runner *r)
{
    struct winsize ws;
    if (!r->domain || r->closing)
        return false;
    if ((ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || !ws.ws_row || !ws.ws_col) &&
        (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) != 0 || !ws.ws_row || !ws.ws_col))
        return false;
    int rc = vmcore_domain_resize_console(r->domain, ws.ws_row, ws.ws_col);
    if (rc != 0 && rc != VMCORE_ENOTSUP && rc != VMCORE_ESTATE)
        say("resize: %s", vmcore_domain_last_error(r->domain));
    return rc == 0;
}

static void on_sigwinch(uv_signal_t *s, int signum)
{
    (void)signum;
    forward_winsize(s->data);
}

/* --- stdin ---------------------------------------------------------------------------- */

static void stdin_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char storage[4096];
    buf->base = storage;
    buf->len = sizeof storage;
}

static void forward_input(struct runner *r, const char *data, size_t len)
{
    if (!r->domain || r->ended || r->closing)
        return;
    int rc = vmcore_domain_console_write(r->domain, data, len);
    /* End of input (len 0) closes a container's stdin; a VM has nothing to close. */
    if (rc != 0 && rc != VMCORE_ESTATE && len > 0)
        say("console: %s", vmcore_domain_last_error(r->domain));
}

static void on_stdin(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct runner *r = s->data;
    if (nread > 0) {
        if (r->raw_tty) {
            const char *key = memchr(buf->base, DETACH_KEY, (size_t)nread);
            if (key) {
                forward_input(r, buf->base, (size_t)(key - buf->base));
                request_shutdown(r);
                return;
            }
        }
        forward_input(r, buf->base, (size_t)nread);
    } else if (nread < 0) {
        if (nread != UV_EOF)
            say("stdin: %s", uv_strerror((int)nread));
        forward_input(r, "", 0); /* end of input: close a container's stdin */
        stdin_stop(r);
    }
}

static void file_read_next(struct runner *r);

static void on_file_read(uv_fs_t *req)
{
    struct runner *r = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    r->file_reading = false;
    if (!r->in_is_file)
        return; /* stdin_stop() ran meanwhile */
    if (n > 0) {
        forward_input(r, r->file_buf, (size_t)n);
        file_read_next(r);
        return;
    }
    if (n < 0)
        say("stdin: %s", uv_strerror((int)n));
    forward_input(r, "", 0);
    r->in_is_file = false;
}

static void file_read_next(struct runner *r)
{
    uv_buf_t buf = uv_buf_init(r->file_buf, sizeof r->file_buf);
    r->file_req.data = r;
    if (uv_fs_read(r->loop, &r->file_req, STDIN_FILENO, &buf, 1, -1, on_file_read) == 0)
        r->file_reading = true;
    else
        r->in_is_file = false;
}

/* Decide how stdin is read: a terminal (raw mode), a pipe or socket, a regular file, or
 * nothing (/dev/null and other character devices are not a console). */
static void stdin_open(struct runner *r)
{
    uv_handle_type t = uv_guess_handle(STDIN_FILENO);
    struct stat st;
    if (t == UV_FILE && fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode)) {
        r->in_is_file = true;
        return;
    }
    if (t == UV_TTY) {
        if (uv_tty_init(r->loop, &r->in.tty, STDIN_FILENO, 1) != 0)
            return;
        r->in_open = true;
        if (tcgetattr(STDIN_FILENO, &r->saved_termios) == 0) {
            /* Raw input, but keep output processing so "\n" still returns the carriage. */
            struct termios raw = r->saved_termios;
            raw.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR |
                                       ICRNL | IXON);
            raw.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
            raw.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
            raw.c_cflag |= CS8;
            raw.c_cc[VMIN] = 1;
            raw.c_cc[VTIME] = 0;
            if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) /* keep type-ahead */
                r->raw_tty = true;
        }
    } else if (t == UV_NAMED_PIPE || t == UV_TCP) {
        r->saved_stdin_flags = fcntl(STDIN_FILENO, F_GETFL);
        /* uv_pipe_open() would make our stdin non-blocking for the whole pipe; read a
         * duplicate so the caller's descriptor is left as it was. */
        int fd = dup(STDIN_FILENO);
        if (fd < 0)
            return;
        if (uv_pipe_init(r->loop, &r->in.pipe, 0) != 0) {
            close(fd);
            return;
        }
        r->in_open = true;
        if (uv_pipe_open(&r->in.pipe, fd) != 0) {
            close(fd);
            uv_close(&r->in.handle, NULL);
            r->in_open = false;
            return;
        }
    } else {
        return;
    }
    r->in.handle.data = r;
}

static void stdin_start(struct runner *r)
{
    if (r->in_is_file && !r->file_reading) {
        file_read_next(r);
        return;
    }
    if (r->in_open && !r->in_reading && uv_read_start(&r->in.stream, stdin_alloc, on_stdin) == 0)
        r->in_reading = true;
}

static void stdin_restore_tty(struct runner *r)
{
    if (r->raw_tty) {
        tcsetattr(STDIN_FILENO, TCSADRAIN, &r->saved_termios);
        r->raw_tty = false;
    }
}

static void stdin_stop(struct runner *r)
{
    r->in_is_file = false; /* an in-flight file read finishes, then stops */
    if (!r->in_open)
        return;
    if (r->in_reading)
        uv_read_stop(&r->in.stream);
    r->in_reading = false;
    stdin_restore_tty(r);
    uv_close(&r->in.handle, NULL);
    r->in_open = false;
}

/* --- domain events ---------------------------------------------------------------------- */

static void on_event(const vmcore_event *ev, void *arg)
{
    struct runner *r = arg;
    switch (ev->type) {
    case VMCORE_EVENT_CONSOLE:
        out_write(ev->u.console.stream == VMCORE_STREAM_STDERR ? &r->err : &r->out,
                  ev->u.console.data, ev->u.console.len);
        break;
    case VMCORE_EVENT_EXIT:
        r->exit_code = vmcore_exit_code(&ev->u.exit);
        if (ev->u.exit.kind == VMCORE_EXIT_CRASH)
            say("domain crashed: %s", ev->u.exit.reason ? ev->u.exit.reason : "unknown reason");
        break;
    case VMCORE_EVENT_ERROR:
        say("%s", ev->u.error.message ? ev->u.error.message : vmcore_strerror(ev->u.error.code));
        break;
    case VMCORE_EVENT_STATE:
        if (ev->u.state.new_state == VMCORE_STATE_STOPPED ||
            ev->u.state.new_state == VMCORE_STATE_CRASHED) {
            r->ended = true;
            /* The exit event comes first, but ask the domain in case of a backend that
             * skipped it. */
            vmcore_exit ex;
            if (vmcore_domain_exit(ev->domain, &ex) == 0 && ex.kind != VMCORE_EXIT_NONE)
                r->exit_code = vmcore_exit_code(&ex);
            teardown(r);
        }
        break;
    default:
        break;
    }
}

static void on_started(vmcore_domain *d, int status, void *arg)
{
    struct runner *r = arg;
    if (status == 0) {
        stdin_start(r);
        return;
    }
    if (status != VMCORE_ECANCELED) {
        const char *detail = vmcore_domain_last_error(d);
        say("start: %s", detail[0] ? detail : vmcore_strerror(status));
    }
    r->exit_code = EXIT_FAILED;
    teardown(r);
}

static int cmd_run(int argc, char **argv)
{
    const char *backend = NULL;
    const char *config = NULL;
    const char *restore = NULL, *name = NULL;
    bool options_done = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && is_help(a)) {
            fputs(usage_run, stdout);
            return 0;
        }
        if (!options_done && !strcmp(a, "--")) {
            options_done = true;
        } else if (!options_done && (!strcmp(a, "-b") || !strcmp(a, "--backend"))) {
            if (i + 1 >= argc)
                return usage_error("run", "run: %s needs a backend name", a);
            backend = argv[++i];
        } else if (!options_done && !strncmp(a, "--backend=", 10)) {
            backend = a + 10;
        } else if (!options_done && (!strcmp(a, "--restore") || !strcmp(a, "--name"))) {
            if (i + 1 >= argc)
                return usage_error("run", "run: %s needs an argument", a);
            *(a[2] == 'r' ? &restore : &name) = argv[++i];
        } else if (!options_done && a[0] == '-' && a[1] != '\0') {
            return usage_error("run", "run: unknown option '%s'", a);
        } else if (!config) {
            config = a;
        } else {
            return usage_error("run", "run: one configuration file expected, got '%s' too", a);
        }
    }
    if (restore && config)
        return usage_error("run", "run: --restore takes no CONFIG.json (got '%s')", config);
    if (name && !restore)
        return usage_error("run", "run: --name is for --restore");
    if (!config && !restore)
        return usage_error("run", "run: missing CONFIG.json");
    if (backend && !known_backend(backend)) {
        char names[128];
        backend_list(names, sizeof names);
        return usage_error("run", "run: --backend: unknown backend '%s' (expected %s)", backend,
                           names);
    }

    struct runner r;
    memset(&r, 0, sizeof r);
    r.exit_code = EXIT_FAILED;
    r.saved_stdin_flags = -1;
    int rc = vmcore_ctx_new(&r.ctx, NULL);
    if (rc != 0) {
        say("cannot create a context: %s", vmcore_strerror(rc));
        return EXIT_FAILED;
    }
    r.loop = vmcore_ctx_loop(r.ctx);
    r.out.fd = STDOUT_FILENO;
    r.out.saved_flags = -1;
    r.err.fd = STDERR_FILENO;
    r.err.saved_flags = -1;

    char err[2048];
    if (restore) {
        /* the overrides: host-side keys only (the library refuses the rest) */
        json_t *o = json_object();
        if (backend)
            json_object_set_new(o, "backend", json_string(backend));
        if (name)
            json_object_set_new(o, "name", json_string(name));
        char *ov = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        rc = vmcore_domain_new_restore(&r.domain, r.ctx, restore, ov);
        free(ov);
        if (rc != 0)
            snprintf(err, sizeof err, "%s: %s", restore, vmcore_ctx_last_error(r.ctx));
        config = restore;
    } else {
        rc = ctl_domain_new(&r.domain, r.ctx, config, backend, err, sizeof err);
    }
    if (rc != 0) {
        say("%s", err);
        vmcore_ctx_free(r.ctx);
        return EXIT_FAILED;
    }

    rc = vmcore_domain_subscribe(r.domain, VMCORE_EVENT_ALL, on_event, &r);
    if (rc < 0) {
        say("subscribe: %s", vmcore_strerror(rc));
        teardown(&r);
        vmcore_ctx_run(r.ctx, VMCORE_RUN_DEFAULT);
        vmcore_ctx_free(r.ctx);
        return EXIT_FAILED;
    }

    uv_signal_init(r.loop, &r.sigint);
    uv_signal_init(r.loop, &r.sigterm);
    uv_signal_init(r.loop, &r.sighup);
    uv_signal_init(r.loop, &r.sigwinch);
    r.sigint.data = r.sigterm.data = r.sighup.data = r.sigwinch.data = &r;
    uv_signal_start(&r.sigint, on_signal, SIGINT);
    uv_signal_start(&r.sigterm, on_signal, SIGTERM);
    uv_signal_start(&r.sighup, on_signal, SIGHUP);
    r.signals_open = true;

    out_open(&r, &r.out, STDOUT_FILENO);
    out_open(&r, &r.err, STDERR_FILENO);
    say_stream = &r.err;
    stdin_open(&r);
    /* a container's terminal starts at our size and follows our window */
    if (forward_winsize(&r))
        uv_signal_start(&r.sigwinch, on_sigwinch, SIGWINCH);

    rc = vmcore_domain_start(r.domain, on_started, &r);
    if (rc != 0) {
        const char *detail = vmcore_domain_last_error(r.domain);
        say("%s: start: %s", config, detail[0] ? detail : vmcore_strerror(rc));
        r.exit_code = EXIT_FAILED;
        teardown(&r);
    }

    vmcore_ctx_run(r.ctx, VMCORE_RUN_DEFAULT);
    /* every handle of ours is closed by now (maybe_finish); run their close callbacks */
    out_close(&r.out);
    out_close(&r.err);
    vmcore_ctx_run(r.ctx, VMCORE_RUN_DEFAULT);
    out_restore(&r.out);
    out_restore(&r.err);
    stdin_restore_tty(&r);
    if (r.saved_stdin_flags >= 0)
        fcntl(STDIN_FILENO, F_SETFL, r.saved_stdin_flags);
    if (r.dropped)
        say("%llu bytes of console output dropped: stdout was not being read", r.dropped);

    rc = vmcore_ctx_free(r.ctx);
    if (rc != 0)
        say("context still busy: %s", vmcore_strerror(rc));
    return r.exit_code;
}

/* ------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    /* A reader that goes away (vmcore run ... | head) must not kill us before the domain
     * is torn down. */
    signal(SIGPIPE, SIG_IGN);

    if (argc < 2) {
        fputs(usage_main, stderr);
        return EXIT_USAGE;
    }
    /* vmcore --root DIR COMMAND ...: the same as the command's own --root */
    while (argc >= 3 && (!strcmp(argv[1], "--root") || !strncmp(argv[1], "--root=", 7))) {
        const char *dir = argv[1][6] == '=' ? argv[1] + 7 : argv[2];
        setenv("VMCORE_ROOT", dir, 1);
        int used = argv[1][6] == '=' ? 1 : 2;
        argv[used] = argv[0];
        argv += used;
        argc -= used;
    }
    if (argc < 2) {
        fputs(usage_main, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (is_help(cmd)) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        if (argc > 2 && is_help(argv[2])) {
            puts("Usage: vmcore --version\n\nPrint the version of the loaded libvmcore.");
            return 0;
        }
        if (argc > 2)
            return usage_error(NULL, "version takes no arguments");
        printf("vmcore %s\n", vmcore_version_string());
        return 0;
    }
    if (!strcmp(cmd, "help")) {
        if (argc < 3)
            fputs(usage_main, stdout);
        else if (!strcmp(argv[2], "run"))
            fputs(usage_run, stdout);
        else if (!strcmp(argv[2], "probe"))
            fputs(usage_probe, stdout);
        else if (toolstack_usage(argv[2]))
            fputs(toolstack_usage(argv[2]), stdout);
        else
            return usage_error(NULL, "help: unknown command '%s'", argv[2]);
        return 0;
    }
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "probe"))
        return cmd_probe(argc - 2, argv + 2);
    if (toolstack_is_command(cmd))
        return toolstack_main(cmd, argc - 2, argv + 2);
    if (cmd[0] == '-')
        return usage_error(NULL, "unknown option '%s'", cmd);
    return usage_error(NULL, "unknown command '%s'", cmd);
}
