/* The monitor: one process per managed domain (`vmcore create`), running the library on a
 * libuv loop, serving the control socket of the domain's state directory (ctl.h,
 * doc/control.md), keeping its console history and log, and exiting once the domain has
 * ended and been closed (after writing state.json). One domain's crash cannot take another
 * down: each has its own monitor.
 *
 * Every client is hostile input: a request line is at most CTL_MAX_LINE bytes, replies to
 * a client that does not read are bounded (CTL_CLIENT_REPLY_MAX, then it is dropped), and
 * console output to a slow console client is dropped for that client past
 * CTL_CLIENT_QUEUE_MAX; the domain never waits for a client. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "vmcore/vmcore.h"

/* At most this many control connections at once; more are refused. */
#define MAX_CLIENTS 128
/* console.log is rotated to console.log.1 past this size. */
#define LOG_MAX (8u << 20)
/* The grace period of the shutdown SIGTERM asks for. */
#define SIGTERM_GRACE_MS 10000

struct mon;

struct client {
    uv_pipe_t pipe;
    struct mon *m;
    struct client *next;
    char *in;
    size_t in_len;
    unsigned refs;       /* 1 while open, +1 per request in flight */
    bool closing;
    bool attached;       /* the connection carries raw console bytes now */
    bool input;          /* an attached client's bytes go to the console */
    unsigned events;     /* subscribed VMCORE_EVENT_* bits */
    unsigned execs;      /* exec requests in flight: console events go to this client */
    uint64_t dropped;    /* console bytes dropped because it did not read */
};

struct op {
    struct client *c;
    json_t *id;
};

struct mon {
    uv_loop_t *loop;
    vmcore_ctx *ctx;
    vmcore_domain *d;
    uv_pipe_t server;
    uv_signal_t sigterm, sigint, sighup;
    bool server_open, signals_open;
    struct client *clients;
    unsigned nclients;
    const char *root, *name;
    char dir[PATH_MAX], sock[PATH_MAX], config[PATH_MAX];
    char backend[32];
    int ready_fd;
    int log_fd;
    uint64_t log_size;
    char ring[CTL_REPLAY_BYTES];
    size_t ring_head, ring_len; /* ring_head: where the next byte goes */
    double created, started;    /* wall clock, seconds */
    uint64_t started_ns;        /* uv_hrtime() at start; 0 before */
    bool ended, closing, start_failed;
    int fail_code;              /* start_failed: what the creator is told, at the end */
    char fail_msg[2048];
    int sigterms;
    vmcore_exit exit;
    char exit_reason[512];
};

static double wall_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* --- writing to clients ------------------------------------------------------------------ */

static void client_close(struct client *c);

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    free(req->data);
    free(req);
}

/* Queue @len bytes. Console output past CTL_CLIENT_QUEUE_MAX is dropped for an attached
 * client (CTL_CLIENT_EVENT_MAX for console events in JSON, which exec clients read);
 * replies past CTL_CLIENT_REPLY_MAX disconnect it. */
static void client_send(struct client *c, const char *data, size_t len, bool console)
{
    if (c->closing || !len)
        return;
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe);
    size_t limit = c->attached ? CTL_CLIENT_QUEUE_MAX : CTL_CLIENT_EVENT_MAX;
    if (console && queued + len > limit) {
        c->dropped += len;
        return;
    }
    if (!console && queued + len > CTL_CLIENT_REPLY_MAX) {
        client_close(c);
        return;
    }
    if (queued == 0) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
            client_close(c);
            return;
        }
        if (!len)
            return;
    }
    uv_write_t *req = malloc(sizeof *req);
    char *copy = malloc(len);
    if (!req || !copy) {
        free(req);
        free(copy);
        client_close(c);
        return;
    }
    memcpy(copy, data, len);
    req->data = copy;
    uv_buf_t b = uv_buf_init(copy, (unsigned)len);
    if (uv_write(req, (uv_stream_t *)&c->pipe, &b, 1, on_written) != 0) {
        free(copy);
        free(req);
        client_close(c);
    }
}

static void client_send_json(struct client *c, json_t *obj)
{
    size_t len;
    char *line = ctl_line(obj, &len);
    if (line)
        client_send(c, line, len, false);
    free(line);
}

static void reply_ok(struct client *c, json_t *id, json_t *result)
{
    json_t *r = json_object();
    json_object_set(r, "id", id ? id : json_null());
    json_object_set_new(r, "result", result ? result : json_object());
    client_send_json(c, r);
}

static void reply_err(struct client *c, json_t *id, int code, const char *msg)
{
    json_t *r = json_object();
    json_object_set(r, "id", id ? id : json_null());
    json_object_set_new(r, "error", json_pack("{s:s, s:i, s:s}", "name", vmcore_error_name(code),
                                              "code", code, "message",
                                              msg && msg[0] ? msg : vmcore_strerror(code)));
    client_send_json(c, r);
}

static void client_unref(struct client *c)
{
    if (--c->refs == 0) {
        free(c->in);
        free(c);
    }
}

static void on_client_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    struct mon *m = c->m;
    for (struct client **pp = &m->clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    m->nclients--;
    client_unref(c);
}

static void client_close(struct client *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->pipe, on_client_closed);
}

static void on_client_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    struct client *c = req->data;
    free(req);
    client_close(c);
    client_unref(c);
}

/* Close once what is queued has been written. */
static void client_finish(struct client *c)
{
    if (c->closing)
        return;
    uv_read_stop((uv_stream_t *)&c->pipe);
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req || uv_shutdown(req, (uv_stream_t *)&c->pipe, on_client_shutdown) != 0) {
        free(req);
        client_close(c);
        return;
    }
    req->data = c;
    c->refs++;
}

static struct op *op_new(struct client *c, json_t *id)
{
    struct op *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->c = c;
    op->id = id ? json_incref(id) : NULL;
    c->refs++;
    return op;
}

static void op_free(struct op *op)
{
    json_decref(op->id);
    client_unref(op->c);
    free(op);
}

/* --- state and events -------------------------------------------------------------------- */

static json_t *exit_json(const vmcore_exit *ex)
{
    static const char *const kinds[] = { "none", "status", "signal", "crash" };
    unsigned k = (unsigned)ex->kind < 4 ? (unsigned)ex->kind : 0;
    return json_pack("{s:s, s:i, s:i, s:s, s:i}", "kind", kinds[k], "status", ex->status,
                     "signal", ex->signal, "reason", ex->reason ? ex->reason : "",
                     "code", vmcore_exit_code(ex));
}

static const char *state_now(const struct mon *m)
{
    if (m->d)
        return vmcore_state_name(vmcore_domain_state(m->d));
    return m->exit.kind == VMCORE_EXIT_CRASH ? "crashed" : "stopped";
}

static json_t *info_json(struct mon *m)
{
    json_t *info = json_pack("{s:s, s:s, s:s, s:i, s:f, s:s, s:i}", "name", m->name,
                             "backend", m->backend, "state", state_now(m), "monitor_pid",
                             (int)getpid(), "created", m->created, "config", m->config,
                             "console_clients", 0);
    if (!info)
        return NULL;
    int attached = 0, subscribed = 0;
    for (struct client *c = m->clients; c; c = c->next) {
        attached += c->attached && !c->closing;
        subscribed += c->events && !c->attached && !c->closing;
    }
    json_object_set_new(info, "console_clients", json_integer(attached));
    json_object_set_new(info, "event_clients", json_integer(subscribed));
    if (m->started_ns) {
        json_object_set_new(info, "started", json_real(m->started));
        json_object_set_new(info, "uptime_ms",
                            json_integer((json_int_t)((uv_hrtime() - m->started_ns) / 1000000)));
    }
    json_object_set_new(info, "exit", m->exit.kind != VMCORE_EXIT_NONE ? exit_json(&m->exit)
                                                                         : json_null());
    return info;
}

static void broadcast(struct mon *m, unsigned type, json_t *ev)
{
    json_object_set_new(ev, "name", json_string(m->name));
    json_object_set_new(ev, "time", json_real(wall_now()));
    size_t len;
    char *line = ctl_line(ev, &len);
    if (!line)
        return;
    for (struct client *c = m->clients; c; c = c->next)
        if (!c->attached && ((c->events & type) ||
                             (type == VMCORE_EVENT_CONSOLE && c->execs)))
            client_send(c, line, len, type == VMCORE_EVENT_CONSOLE);
    free(line);
}

static void log_console(struct mon *m, const char *data, size_t len)
{
    /* the history for new console clients */
    for (size_t i = 0; i < len;) {
        size_t n = sizeof m->ring - m->ring_head;
        if (n > len - i)
            n = len - i;
        memcpy(m->ring + m->ring_head, data + i, n);
        m->ring_head = (m->ring_head + n) % sizeof m->ring;
        i += n;
    }
    m->ring_len = m->ring_len + len > sizeof m->ring ? sizeof m->ring : m->ring_len + len;
    /* the log */
    if (m->log_fd >= 0) {
        if (m->log_size + len > LOG_MAX) {
            char cur[PATH_MAX], old[PATH_MAX];
            if (ctl_path(cur, sizeof cur, m->root, m->name, CTL_FILE_CONSOLE) == 0 &&
                ctl_path(old, sizeof old, m->root, m->name, CTL_FILE_CONSOLE_OLD) == 0 &&
                rename(cur, old) == 0) {
                close(m->log_fd);
                m->log_fd = open(cur, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                m->log_size = 0;
            }
        }
        for (size_t off = 0; m->log_fd >= 0 && off < len;) {
            ssize_t w = write(m->log_fd, data + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break; /* a full disk loses log lines, never the domain */
            off += (size_t)w;
            m->log_size += (uint64_t)w;
        }
    }
}

static void write_state_file(struct mon *m)
{
    json_t *st = json_pack("{s:s, s:f, s:o}", "state", state_now(m), "ended", wall_now(),
                           "exit", exit_json(&m->exit));
    size_t len;
    char *line = ctl_line(st, &len);
    char p[PATH_MAX];
    if (line && ctl_path(p, sizeof p, m->root, m->name, CTL_FILE_STATE) == 0)
        ctl_write_file(p, line, len);
    free(line);
}

static void on_domain_closed(vmcore_domain *d, void *arg)
{
    (void)d;
    struct mon *m = arg;
    m->d = NULL;
    if (m->server_open) {
        uv_close((uv_handle_t *)&m->server, NULL);
        m->server_open = false;
        unlink(m->sock);
    }
    if (m->signals_open) {
        uv_close((uv_handle_t *)&m->sigterm, NULL);
        uv_close((uv_handle_t *)&m->sigint, NULL);
        uv_close((uv_handle_t *)&m->sighup, NULL);
        m->signals_open = false;
    }
    for (struct client *c = m->clients; c; c = c->next)
        client_finish(c);
}

static void begin_close(struct mon *m)
{
    if (m->closing || !m->d)
        return;
    m->closing = true;
    vmcore_domain_close(m->d, on_domain_closed, m);
}

static void ready_report(struct mon *m, int code, const char *msg)
{
    if (m->ready_fd < 0)
        return;
    char line[2048];
    int n = code == 0 ? snprintf(line, sizeof line, "0\n")
                      : snprintf(line, sizeof line, "%s %s\n", vmcore_error_name(code), msg);
    if (n > 0 && write(m->ready_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1))
        (void)0;
    close(m->ready_fd);
    m->ready_fd = -1;
}

static void on_event(const vmcore_event *ev, void *arg)
{
    struct mon *m = arg;
    switch (ev->type) {
    case VMCORE_EVENT_CONSOLE: {
        const char *data = ev->u.console.data;
        size_t len = ev->u.console.len;
        log_console(m, data, len);
        for (struct client *c = m->clients; c; c = c->next)
            if (c->attached)
                client_send(c, data, len, true);
        bool execs = false;
        for (struct client *c = m->clients; c; c = c->next)
            execs |= (c->events & VMCORE_EVENT_CONSOLE) || c->execs;
        if (execs) {
            static const char *const streams[] = { "console", "stdout", "stderr" };
            unsigned s = (unsigned)ev->u.console.stream < 3 ? (unsigned)ev->u.console.stream : 0;
            char *b = ctl_base64(data, len);
            if (b)
                broadcast(m, VMCORE_EVENT_CONSOLE,
                          json_pack("{s:s, s:s, s:s}", "event", "console", "stream", streams[s],
                                    "data", b));
            free(b);
        }
        break;
    }
    case VMCORE_EVENT_EXIT:
        m->exit = ev->u.exit;
        snprintf(m->exit_reason, sizeof m->exit_reason, "%s",
                 ev->u.exit.reason ? ev->u.exit.reason : "");
        m->exit.reason = m->exit_reason;
        broadcast(m, VMCORE_EVENT_EXIT,
                  json_pack("{s:s, s:o}", "event", "exit", "exit", exit_json(&m->exit)));
        break;
    case VMCORE_EVENT_ERROR:
        broadcast(m, VMCORE_EVENT_ERROR,
                  json_pack("{s:s, s:s, s:s}", "event", "error", "error",
                            vmcore_error_name(ev->u.error.code), "message",
                            ev->u.error.message ? ev->u.error.message : ""));
        break;
    case VMCORE_EVENT_STATE: {
        vmcore_state ns = ev->u.state.new_state;
        broadcast(m, VMCORE_EVENT_STATE,
                  json_pack("{s:s, s:s, s:s}", "event", "state", "old",
                            vmcore_state_name(ev->u.state.old_state), "new",
                            vmcore_state_name(ns)));
        if ((ns == VMCORE_STATE_STOPPED || ns == VMCORE_STATE_CRASHED) && !m->ended) {
            m->ended = true;
            if (m->exit.kind == VMCORE_EXIT_NONE) {
                vmcore_exit ex;
                if (vmcore_domain_exit(ev->domain, &ex) == 0) {
                    m->exit = ex;
                    snprintf(m->exit_reason, sizeof m->exit_reason, "%s",
                             ex.reason ? ex.reason : "");
                    m->exit.reason = m->exit_reason;
                }
            }
            if (!m->start_failed)
                write_state_file(m);
            begin_close(m);
        }
        break;
    }
    default:
        break;
    }
}

static void on_started(vmcore_domain *d, int status, void *arg)
{
    struct mon *m = arg;
    if (status == 0) {
        m->started = wall_now();
        m->started_ns = uv_hrtime();
        ready_report(m, 0, NULL);
        return;
    }
    const char *detail = vmcore_domain_last_error(d);
    m->start_failed = true;
    m->fail_code = status;
    snprintf(m->fail_msg, sizeof m->fail_msg, "%s", detail[0] ? detail : vmcore_strerror(status));
    begin_close(m);
}

/* --- requests ---------------------------------------------------------------------------- */

static void on_op_done(vmcore_domain *d, int status, void *arg)
{
    (void)d;
    struct op *op = arg;
    if (!op->c->closing) {
        if (status == 0 || status == VMCORE_ETIMEDOUT)
            reply_ok(op->c, op->id,
                     status == VMCORE_ETIMEDOUT ? json_pack("{s:b}", "killed", 1) : NULL);
        else
            reply_err(op->c, op->id, status, NULL);
    }
    op_free(op);
}

static void on_exec_done(vmcore_domain *d, int status, const vmcore_exit *ex, void *arg)
{
    (void)d;
    struct op *op = arg;
    op->c->execs--;
    if (!op->c->closing) {
        if (status == 0 && ex)
            reply_ok(op->c, op->id, json_pack("{s:o}", "exit", exit_json(ex)));
        else
            reply_err(op->c, op->id, status ? status : VMCORE_ESYS, NULL);
    }
    op_free(op);
}

/* Start an asynchronous domain call; the reply comes from on_op_done. */
static void start_op(struct client *c, json_t *id, const char *method, uint64_t timeout_ms)
{
    struct mon *m = c->m;
    struct op *op = op_new(c, id);
    if (!op) {
        reply_err(c, id, VMCORE_ENOMEM, NULL);
        return;
    }
    int rc;
    if (!strcmp(method, "pause"))
        rc = vmcore_domain_pause(m->d, on_op_done, op);
    else if (!strcmp(method, "resume"))
        rc = vmcore_domain_resume(m->d, on_op_done, op);
    else if (!strcmp(method, "kill"))
        rc = vmcore_domain_kill(m->d, on_op_done, op);
    else
        rc = vmcore_domain_shutdown(m->d, timeout_ms, on_op_done, op);
    if (rc != 0) {
        reply_err(c, id, rc, vmcore_domain_last_error(m->d));
        op_free(op);
    }
}

static void do_exec(struct client *c, const struct ctl_request *req)
{
    struct mon *m = c->m;
    json_t *argv = json_object_get(req->params, "argv");
    size_t n = json_is_array(argv) ? json_array_size(argv) : 0;
    if (!n || n > 4096) {
        reply_err(c, req->id, VMCORE_EINVAL, "params.argv: expected 1 to 4096 strings");
        return;
    }
    const char **v = calloc(n + 1, sizeof *v);
    if (!v) {
        reply_err(c, req->id, VMCORE_ENOMEM, NULL);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(argv, i);
        if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s)) {
            char msg[96];
            snprintf(msg, sizeof msg, "params.argv[%zu]: expected a string without NUL", i);
            reply_err(c, req->id, VMCORE_EINVAL, msg);
            free(v);
            return;
        }
        v[i] = json_string_value(s);
    }
    struct op *op = op_new(c, req->id);
    if (!op) {
        free(v);
        reply_err(c, req->id, VMCORE_ENOMEM, NULL);
        return;
    }
    c->execs++;
    int rc = vmcore_domain_exec(m->d, v, on_exec_done, op);
    free(v);
    if (rc != 0) {
        c->execs--;
        reply_err(c, req->id, rc, vmcore_domain_last_error(m->d));
        op_free(op);
    }
}

static void send_replay(struct client *c)
{
    struct mon *m = c->m;
    size_t start = (m->ring_head + sizeof m->ring - m->ring_len) % sizeof m->ring;
    size_t first = sizeof m->ring - start;
    if (first > m->ring_len)
        first = m->ring_len;
    client_send(c, m->ring + start, first, true);
    client_send(c, m->ring, m->ring_len - first, true);
}

/* One request line; returns false when the connection switched to console bytes. */
static bool handle_line(struct client *c, const char *line, size_t len)
{
    struct mon *m = c->m;
    struct ctl_request req;
    char err[256];
    int rc = ctl_parse_request(line, len, &req, err, sizeof err);
    if (rc != 0) {
        reply_err(c, req.id, rc, err);
        ctl_request_free(&req);
        return true;
    }
    const char *meth = req.method;
    bool live = m->d && !m->closing;
    bool keep_lines = true;
    if (!strcmp(meth, "info")) {
        reply_ok(c, req.id, info_json(m));
    } else if (!strcmp(meth, "stats")) {
        vmcore_stats st = VMCORE_STATS_INIT;
        if (!live) {
            reply_err(c, req.id, VMCORE_ESTATE, "the domain has ended");
        } else if ((rc = vmcore_domain_stats(m->d, &st)) != 0) {
            reply_err(c, req.id, rc, vmcore_domain_last_error(m->d));
        } else {
            reply_ok(c, req.id,
                     json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                               "cpu_time_ns",
                               (json_int_t)st.cpu_time_ns, "memory_bytes",
                               (json_int_t)st.memory_bytes, "pids", (json_int_t)st.pids, "exits",
                               (json_int_t)st.exits, "instructions", (json_int_t)st.instructions,
                               "tcache_hits", (json_int_t)st.tcache_hits, "tcache_misses",
                               (json_int_t)st.tcache_misses, "jit_blocks",
                               (json_int_t)st.jit_blocks, "net_rx_bytes",
                               (json_int_t)st.net_rx_bytes, "net_rx_packets",
                               (json_int_t)st.net_rx_packets, "net_tx_bytes",
                               (json_int_t)st.net_tx_bytes, "net_tx_packets",
                               (json_int_t)st.net_tx_packets));
        }
    } else if (!strcmp(meth, "pause") || !strcmp(meth, "resume") || !strcmp(meth, "kill") ||
               !strcmp(meth, "shutdown")) {
        uint64_t timeout = SIGTERM_GRACE_MS;
        if (!strcmp(meth, "shutdown") &&
            ctl_param_uint(&req, "timeout_ms", 86400000ull, &timeout, err, sizeof err) != 0)
            reply_err(c, req.id, VMCORE_EINVAL, err);
        else if (!live)
            reply_err(c, req.id, VMCORE_ESTATE, "the domain has ended");
        else
            start_op(c, req.id, meth, timeout);
    } else if (!strcmp(meth, "subscribe")) {
        json_t *evs = json_object_get(req.params, "events");
        unsigned mask = VMCORE_EVENT_STATE | VMCORE_EVENT_EXIT | VMCORE_EVENT_ERROR;
        bool ok = true;
        if (evs) {
            mask = 0;
            size_t i;
            json_t *e;
            if (!json_is_array(evs))
                ok = false;
            json_array_foreach(evs, i, e) {
                const char *s = json_string_value(e);
                if (s && !strcmp(s, "state"))
                    mask |= VMCORE_EVENT_STATE;
                else if (s && !strcmp(s, "exit"))
                    mask |= VMCORE_EVENT_EXIT;
                else if (s && !strcmp(s, "error"))
                    mask |= VMCORE_EVENT_ERROR;
                else if (s && !strcmp(s, "console"))
                    mask |= VMCORE_EVENT_CONSOLE;
                else
                    ok = false;
            }
        }
        if (!ok) {
            reply_err(c, req.id, VMCORE_EINVAL,
                      "params.events: expected an array of \"state\", \"exit\", \"error\", "
                      "\"console\"");
        } else {
            c->events = mask;
            reply_ok(c, req.id, json_pack("{s:s}", "state", state_now(m)));
        }
    } else if (!strcmp(meth, "attach")) {
        bool replay = true, input = true;
        if (ctl_param_bool(&req, "replay", &replay, err, sizeof err) != 0 ||
            ctl_param_bool(&req, "input", &input, err, sizeof err) != 0) {
            reply_err(c, req.id, VMCORE_EINVAL, err);
        } else if (!live) {
            reply_err(c, req.id, VMCORE_ESTATE, "the domain has ended");
        } else {
            reply_ok(c, req.id, json_pack("{s:I}", "replay_bytes",
                                          (json_int_t)(replay ? m->ring_len : 0)));
            if (replay)
                send_replay(c);
            c->attached = true;
            c->input = input;
            c->events = 0;
            keep_lines = false;
        }
    } else if (!strcmp(meth, "resize")) {
        uint64_t rows = 0, cols = 0;
        if (ctl_param_uint(&req, "rows", 65535, &rows, err, sizeof err) != 0 ||
            ctl_param_uint(&req, "cols", 65535, &cols, err, sizeof err) != 0 || !rows || !cols)
            reply_err(c, req.id, VMCORE_EINVAL,
                      err[0] ? err : "params.rows, params.cols: expected 1 to 65535");
        else if (!live)
            reply_err(c, req.id, VMCORE_ESTATE, "the domain has ended");
        else if ((rc = vmcore_domain_resize_console(m->d, (unsigned)rows, (unsigned)cols)) != 0)
            reply_err(c, req.id, rc, vmcore_domain_last_error(m->d));
        else
            reply_ok(c, req.id, NULL);
    } else if (!strcmp(meth, "exec")) {
        if (!live)
            reply_err(c, req.id, VMCORE_ESTATE, "the domain has ended");
        else
            do_exec(c, &req);
    } else if (!strcmp(meth, "save")) {
        json_t *p = json_object_get(req.params, "path");
        const char *path = json_string_value(p);
        bool stop = false;
        struct op *op = NULL;
        if (!path || !path[0] || strlen(path) != json_string_length(p))
            reply_err(c, req.id, VMCORE_EINVAL, "params.path: expected a file name");
        else if (ctl_param_bool(&req, "stop", &stop, err, sizeof err) != 0)
            reply_err(c, req.id, VMCORE_EINVAL, err);
        else if (!live)
            reply_err(c, req.id, VMCORE_ESTATE, "the domain has ended");
        else if (!(op = op_new(c, req.id)))
            reply_err(c, req.id, VMCORE_ENOMEM, NULL);
        else if ((rc = vmcore_domain_save(m->d, path, stop ? VMCORE_SAVE_STOP : 0, on_op_done,
                                          op)) != 0) {
            reply_err(c, req.id, rc, vmcore_domain_last_error(m->d));
            op_free(op);
        }
    } else {
        snprintf(err, sizeof err, "method: unknown method '%.64s'", meth);
        reply_err(c, req.id, VMCORE_ENOTSUP, err);
    }
    ctl_request_free(&req);
    return keep_lines;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct client *c = h->data;
    if (c->attached) {
        static char raw[65536];
        *buf = uv_buf_init(raw, sizeof raw);
        return;
    }
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(CTL_MAX_LINE - c->in_len));
}

static void console_input(struct client *c, const char *data, size_t len)
{
    struct mon *m = c->m;
    if (c->input && len && m->d && !m->closing)
        vmcore_domain_console_write(m->d, data, len); /* a stopped console drops it */
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct client *c = s->data;
    if (nread < 0) {
        client_close(c);
        return;
    }
    if (c->attached) {
        console_input(c, buf->base, (size_t)nread);
        return;
    }
    c->in_len += (size_t)nread;
    size_t off = 0;
    while (!c->closing) {
        char *nl = memchr(c->in + off, '\n', c->in_len - off);
        if (!nl)
            break;
        size_t n = (size_t)(nl - (c->in + off));
        c->refs++; /* handle_line may close the client */
        bool lines = handle_line(c, c->in + off, n);
        off += n + 1;
        if (!lines && !c->closing) {
            /* What followed the attach request is console input already. */
            console_input(c, c->in + off, c->in_len - off);
            off = c->in_len;
        }
        bool gone = c->closing;
        client_unref(c);
        if (gone)
            return;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (!c->attached && c->in_len == CTL_MAX_LINE) {
        char msg[96];
        snprintf(msg, sizeof msg, "request: longer than %u bytes", CTL_MAX_LINE);
        reply_err(c, NULL, VMCORE_ELIMIT, msg);
        client_finish(c);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct mon *m = server->data;
    if (status < 0)
        return;
    struct client *c = calloc(1, sizeof *c);
    if (c)
        c->in = malloc(CTL_MAX_LINE);
    if (!c || !c->in || uv_pipe_init(m->loop, &c->pipe, 0) != 0) {
        if (c)
            free(c->in);
        free(c);
        /* accept and drop it so the listen queue does not spin */
        uv_pipe_t *tmp = malloc(sizeof *tmp);
        if (tmp && uv_pipe_init(m->loop, tmp, 0) == 0) {
            uv_accept(server, (uv_stream_t *)tmp);
            uv_close((uv_handle_t *)tmp, (uv_close_cb)free);
        } else {
            free(tmp);
        }
        return;
    }
    c->m = m;
    c->refs = 1;
    c->pipe.data = c;
    c->next = m->clients;
    m->clients = c;
    m->nclients++;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        client_close(c);
        return;
    }
    client_send_json(c, json_pack("{s:i, s:s, s:i}", "vmcore_control", CTL_PROTOCOL_VERSION,
                                  "name", m->name, "pid", (int)getpid()));
    if (m->nclients > MAX_CLIENTS) {
        reply_err(c, NULL, VMCORE_ELIMIT, "too many control connections");
        client_finish(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct mon *m = s->data;
    if (signum == SIGHUP || !m->d || m->closing)
        return;
    vmcore_state st = vmcore_domain_state(m->d);
    if (m->sigterms++ == 0 && (st == VMCORE_STATE_RUNNING || st == VMCORE_STATE_PAUSED))
        vmcore_domain_shutdown(m->d, SIGTERM_GRACE_MS, NULL, NULL);
    else
        begin_close(m); /* kills it */
}

/* --- setup ------------------------------------------------------------------------------- */

static void write_meta(struct mon *m)
{
    char p[PATH_MAX];
    json_t *meta = json_pack("{s:s, s:s, s:s, s:f, s:i}", "name", m->name, "backend", m->backend,
                             "config", m->config, "created", m->created, "monitor_pid",
                             (int)getpid());
    size_t len;
    char *line = ctl_line(meta, &len);
    if (line && ctl_path(p, sizeof p, m->root, m->name, CTL_FILE_META) == 0)
        ctl_write_file(p, line, len);
    free(line);
    snprintf(p, sizeof p, "%d\n", (int)getpid());
    char pidp[PATH_MAX];
    if (ctl_path(pidp, sizeof pidp, m->root, m->name, CTL_FILE_PID) == 0)
        ctl_write_file(pidp, p, strlen(p));
    size_t clen;
    char *text = ctl_read_file(m->config, &clen);
    if (text && ctl_path(p, sizeof p, m->root, m->name, CTL_FILE_CONFIG) == 0)
        ctl_write_file(p, text, clen);
    free(text);
}

static int listen_socket(struct mon *m, char *err, size_t errlen)
{
    if (uv_pipe_init(m->loop, &m->server, 0) != 0) {
        snprintf(err, errlen, "uv_pipe_init failed");
        return VMCORE_ESYS;
    }
    m->server_open = true;
    m->server.data = m;
    unlink(m->sock);
    mode_t old = umask(0177);
    int rc = uv_pipe_bind(&m->server, m->sock);
    umask(old);
    if (rc == 0)
        rc = chmod(m->sock, 0600) < 0 ? uv_translate_sys_error(errno) : 0;
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->server, 64, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", m->sock, uv_strerror(rc));
        return VMCORE_ESYS;
    }
    return 0;
}

int monitor_main(const char *root, const char *name, const char *config_path,
                 const char *backend, int lock_fd, int ready_fd)
{
    struct mon *m = calloc(1, sizeof *m);
    if (!m) {
        if (ready_fd >= 0 && write(ready_fd, "VMCORE_ENOMEM out of memory\n", 28) < 0)
            (void)0;
        return 125;
    }
    m->root = root;
    m->name = name;
    m->ready_fd = ready_fd;
    m->log_fd = -1;
    m->created = wall_now();
    snprintf(m->config, sizeof m->config, "%s", config_path);
    char err[2048] = "";
    int rc = 0;
    if (ctl_path(m->dir, sizeof m->dir, root, name, NULL) < 0 ||
        ctl_path(m->sock, sizeof m->sock, root, name, CTL_FILE_SOCKET) < 0) {
        rc = VMCORE_EINVAL;
        snprintf(err, sizeof err, "state directory path too long");
    }
    char logp[PATH_MAX];
    if (rc == 0 && ctl_path(logp, sizeof logp, root, name, CTL_FILE_CONSOLE) == 0)
        m->log_fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (rc == 0)
        rc = vmcore_ctx_new(&m->ctx, NULL);
    if (rc == 0) {
        m->loop = vmcore_ctx_loop(m->ctx);
        rc = ctl_domain_new(&m->d, m->ctx, config_path, backend, err, sizeof err);
    } else if (!err[0]) {
        snprintf(err, sizeof err, "cannot create a context: %s", vmcore_strerror(rc));
    }
    if (rc == 0) {
        snprintf(m->backend, sizeof m->backend, "%s", vmcore_domain_backend(m->d));
        if (vmcore_domain_subscribe(m->d, VMCORE_EVENT_ALL, on_event, m) < 0) {
            rc = VMCORE_ENOMEM;
            snprintf(err, sizeof err, "subscribe: out of memory");
        }
    }
    if (rc == 0)
        rc = listen_socket(m, err, sizeof err);
    if (rc == 0) {
        write_meta(m);
        uv_signal_init(m->loop, &m->sigterm);
        uv_signal_init(m->loop, &m->sigint);
        uv_signal_init(m->loop, &m->sighup);
        m->sigterm.data = m->sigint.data = m->sighup.data = m;
        uv_signal_start(&m->sigterm, on_signal, SIGTERM);
        uv_signal_start(&m->sigint, on_signal, SIGINT);
        uv_signal_start(&m->sighup, on_signal, SIGHUP);
        m->signals_open = true;
        rc = vmcore_domain_start(m->d, on_started, m);
        if (rc != 0) {
            const char *detail = vmcore_domain_last_error(m->d);
            snprintf(err, sizeof err, "%s", detail[0] ? detail : vmcore_strerror(rc));
        }
    }
    if (rc != 0) {
        m->start_failed = true;
        m->fail_code = rc;
        snprintf(m->fail_msg, sizeof m->fail_msg, "%s", err);
        if (m->d)
            begin_close(m);
        else
            on_domain_closed(NULL, m);
    }
    (void)lock_fd; /* held until this process exits */
    if (m->ctx) {
        vmcore_ctx_run(m->ctx, VMCORE_RUN_DEFAULT);
        int frc = vmcore_ctx_free(m->ctx);
        if (frc != 0)
            fprintf(stderr, "vmcore monitor: context still busy: %s\n", vmcore_strerror(frc));
    }
    if (m->log_fd >= 0)
        close(m->log_fd);
    unlink(m->sock);
    char p[PATH_MAX];
    if (ctl_path(p, sizeof p, root, name, CTL_FILE_PID) == 0)
        unlink(p);
    bool failed = m->start_failed;
    if (failed) {
        /* A domain that never ran leaves nothing behind: everything the library held is
         * released by now; the directory goes before the creator hears of the failure. */
        ctl_remove_dir(root, name);
        if (m->ready_fd < 0)
            fprintf(stderr, "vmcore: %s\n", m->fail_msg);
        ready_report(m, m->fail_code, m->fail_msg);
    } else if (m->ready_fd >= 0) {
        ready_report(m, VMCORE_ESYS, "the monitor ended before the domain ran");
    }
    int code = failed ? 125 : vmcore_exit_code(&m->exit);
    free(m);
    return code;
}
