/* The domain state machine: lifecycle calls, backend reports, events, close. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const state_names[] = { "created", "starting", "running", "paused",
                                           "stopping", "stopped", "crashed" };

VMCORE_API const char *vmcore_state_name(vmcore_state state)
{
    return (unsigned)state < sizeof state_names / sizeof state_names[0] ? state_names[state]
                                                                          : "unknown";
}

VMCORE_API int vmcore_exit_code(const vmcore_exit *exit)
{
    if (!exit)
        return 125;
    switch (exit->kind) {
    case VMCORE_EXIT_STATUS: return exit->status & 0xff;
    case VMCORE_EXIT_SIGNAL: return (128 + exit->signal) & 0xff;
    default: return 125;
    }
}

static bool state_active(vmcore_state s)
{
    return s >= VMCORE_STATE_STARTING && s <= VMCORE_STATE_STOPPING;
}

void *(*domain_calloc)(size_t nmemb, size_t size) = calloc;

static struct post *post_new(enum post_kind kind, vmcore_domain *d, const void *data,
                             size_t len)
{
    struct post *p = domain_calloc(1, sizeof *p + len + 1);
    if (!p)
        return NULL;
    p->kind = kind;
    p->domain = d;
    p->len = len;
    if (len && data)
        memcpy(p->data, data, len);
    return p;
}

/* Keep ctx->active in step with the domain: it holds the loop alive while a domain runs
 * or is being closed. */
static void update_active(vmcore_domain *d)
{
    bool want = state_active(d->state) || (d->closing && !d->destroyed);
    if (want != d->counted_active) {
        d->counted_active = want;
        if (want)
            d->ctx->active++;
        else
            d->ctx->active--;
        ctx_update_ref(d->ctx);
    }
}

static void queue_callback(vmcore_domain *d, vmcore_domain_cb cb, void *arg, int status)
{
    if (!cb)
        return;
    struct post *p = post_new(OUT_CALLBACK, d, NULL, 0);
    if (!p)
        return; /* nothing better to do: out of memory while reporting */
    p->cb = cb;
    p->arg = arg;
    p->status = status;
    ctx_outbox_push(d->ctx, p);
}

static void set_state(vmcore_domain *d, vmcore_state s)
{
    if (d->state == s)
        return;
    struct post *p = post_new(OUT_EVENT, d, NULL, 0);
    if (p) {
        p->ev.type = VMCORE_EVENT_STATE;
        p->ev.domain = d;
        p->ev.u.state.old_state = d->state;
        p->ev.u.state.new_state = s;
    }
    d->state = s;
    update_active(d);
    if (p)
        ctx_outbox_push(d->ctx, p);
}

/* Record @e as the domain's last error and return its code. */
static int fail(vmcore_domain *d, const struct vmcore_err *e)
{
    d->err = *e;
    return e->code;
}

static int fail_msg(vmcore_domain *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_msg(vmcore_domain *d, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err.msg, sizeof d->err.msg, fmt, ap);
    va_end(ap);
    d->err.code = code;
    d->err.path[0] = '\0';
    return code;
}

/* ---------------------------------------------------------------- creation */

static const struct backend_ops *pick_backend(const struct vmcore_config *cfg,
                                              struct vmcore_err *err)
{
    if (cfg->backend != CONFIG_BACKEND_AUTO)
        return backend_of(cfg->backend);
    struct vmcore_err why = { 0 };
    const struct backend_ops *ops = backend_pick_auto(cfg, &why);
    if (!ops)
        err_set(err, VMCORE_EUNAVAIL, "backend auto: neither kvm nor emu is available (%s)",
                why.msg);
    return ops;
}

static void domain_free_snapinfo(vmcore_domain *d)
{
    free(d->config_json);
    free(d->base_dir);
}

/* Create (or, with @snap, restore) a domain. */
static int domain_create_impl(vmcore_domain **out, vmcore_ctx *ctx, const json_t *root,
                              const char *base_dir, const struct backend_ops *forced,
                              const struct snap_file *snap)
{
    struct vmcore_err err = { 0 };
    struct vmcore_config *cfg = NULL;
    int rc = config_parse(&cfg, root, base_dir, &err);
    if (rc) {
        ctx_set_error(ctx, &err);
        return rc;
    }
    const struct backend_ops *ops = forced ? forced : pick_backend(cfg, &err);
    if (!ops) {
        config_free(cfg);
        ctx_set_error(ctx, &err);
        return err.code;
    }
    struct vmcore_err why = { 0 };
    if (backend_usable_for(ops, cfg, &why) != 0) {
        err_set(&err, VMCORE_EUNAVAIL, "backend %s unavailable: %s", ops->name, why.msg);
        config_free(cfg);
        ctx_set_error(ctx, &err);
        return VMCORE_EUNAVAIL;
    }
    vmcore_domain *d = calloc(1, sizeof *d);
    if (!d) {
        config_free(cfg);
        err_set(&err, VMCORE_ENOMEM, "out of memory");
        ctx_set_error(ctx, &err);
        return VMCORE_ENOMEM;
    }
    d->ctx = ctx;
    d->cfg = cfg;
    d->ops = ops;
    d->next_sub_id = 1;
    /* What a snapshot records of the configuration: the JSON as given, and the folder its
     * relative paths resolved against. */
    char cwd[4096];
    d->config_json = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    if (base_dir)
        d->base_dir = strdup(base_dir);
    else if (getcwd(cwd, sizeof cwd))
        d->base_dir = strdup(cwd);
    if (!d->config_json || !d->base_dir) {
        domain_free_snapinfo(d);
        free(d);
        config_free(cfg);
        err_set(&err, VMCORE_ENOMEM, "out of memory");
        ctx_set_error(ctx, &err);
        return VMCORE_ENOMEM;
    }
    /* Everything reporting the end needs, allocated now (libuv's caller-owned requests are
     * the model): domain_post_exit() then cannot fail. */
    d->exit_post = post_new(POST_EXIT, d, NULL, DOMAIN_EXIT_REASON_MAX);
    atomic_init(&d->console_full, false);
    if (!d->exit_post || pthread_cond_init(&d->console_cond, NULL) != 0) {
        free(d->exit_post);
        domain_free_snapinfo(d);
        free(d);
        config_free(cfg);
        err_set(&err, VMCORE_ENOMEM, "out of memory");
        ctx_set_error(ctx, &err);
        return VMCORE_ENOMEM;
    }
    rc = snap ? ops->restore(d, cfg, snap, &d->priv, &err)
              : ops->create(d, cfg, &d->priv, &err);
    if (rc) {
        if (!err.msg[0])
            err_set(&err, rc, "backend %s: %s", ops->name, vmcore_strerror(rc));
        if (d->priv && ops->destroy)
            ops->destroy(d, d->priv);
        config_free(cfg);
        free(d->exit_post);
        pthread_cond_destroy(&d->console_cond);
        domain_free_snapinfo(d);
        free(d);
        ctx_set_error(ctx, &err);
        return rc;
    }
    ctx->ndomains++;
    err_clear(&ctx->err);
    *out = d;
    return 0;
}

int domain_create_with_ops(vmcore_domain **out, vmcore_ctx *ctx, const json_t *root,
                           const char *base_dir, const struct backend_ops *forced)
{
    return domain_create_impl(out, ctx, root, base_dir, forced, NULL);
}

static int domain_create(vmcore_domain **out, vmcore_ctx *ctx, const json_t *root,
                         const char *base_dir)
{
    return domain_create_with_ops(out, ctx, root, base_dir, NULL);
}

VMCORE_API int vmcore_domain_new_jansson(vmcore_domain **out, vmcore_ctx *ctx,
                                         const json_t *config, const char *base_dir)
{
    if (out)
        *out = NULL;
    if (!ctx)
        return VMCORE_EINVAL;
    if (!out || !config) {
        err_set(&ctx->err, VMCORE_EINVAL, "%s is NULL", out ? "config" : "out");
        return VMCORE_EINVAL;
    }
    return domain_create(out, ctx, config, base_dir);
}

VMCORE_API int vmcore_domain_new_json(vmcore_domain **out, vmcore_ctx *ctx, const char *json)
{
    if (out)
        *out = NULL;
    if (!ctx)
        return VMCORE_EINVAL;
    if (!out || !json) {
        err_set(&ctx->err, VMCORE_EINVAL, "%s is NULL", out ? "json" : "out");
        return VMCORE_EINVAL;
    }
    json_error_t je;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        err_set(&ctx->err, VMCORE_EPARSE, "malformed JSON at line %d column %d: %s", je.line,
                je.column, je.text);
        return VMCORE_EPARSE;
    }
    int rc = domain_create(out, ctx, root, NULL);
    json_decref(root);
    return rc;
}

VMCORE_API int vmcore_domain_new_file(vmcore_domain **out, vmcore_ctx *ctx, const char *path)
{
    if (out)
        *out = NULL;
    if (!ctx)
        return VMCORE_EINVAL;
    if (!out || !path) {
        err_set(&ctx->err, VMCORE_EINVAL, "%s is NULL", out ? "path" : "out");
        return VMCORE_EINVAL;
    }
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        err_sys(&ctx->err, e == ENOENT ? VMCORE_ENOENT : VMCORE_EIO, e, "%s", path);
        return ctx->err.code;
    }
    json_error_t je;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!root) {
        err_set(&ctx->err, VMCORE_EPARSE, "%s: malformed JSON at line %d column %d: %s", path,
                je.line, je.column, je.text);
        return VMCORE_EPARSE;
    }
    /* Relative paths in the file resolve against the file's folder. */
    char *abs = realpath(path, NULL);
    char *slash = abs ? strrchr(abs, '/') : NULL;
    if (slash)
        *(slash == abs ? slash + 1 : slash) = '\0';
    int rc = domain_create(out, ctx, root, abs);
    free(abs);
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------- lifecycle */

VMCORE_API int vmcore_domain_start(vmcore_domain *d, vmcore_domain_cb cb, void *arg)
{
    if (!d)
        return VMCORE_EINVAL;
    if (d->closing)
        return fail_msg(d, VMCORE_ESTATE, "start: the domain is closing");
    if (d->state != VMCORE_STATE_CREATED)
        return fail_msg(d, VMCORE_ESTATE, "start: domain is %s, not created",
                        vmcore_state_name(d->state));
    if (!d->ops->start)
        return fail_msg(d, VMCORE_ENOTSUP, "start: backend %s cannot start domains",
                        d->ops->name);
    set_state(d, VMCORE_STATE_STARTING);
    struct vmcore_err err = { 0 };
    int rc = d->ops->start(d, d->priv, &err);
    if (rc) {
        if (!err.msg[0])
            err_set(&err, rc, "start: %s", vmcore_strerror(rc));
        d->exit.kind = VMCORE_EXIT_NONE;
        set_state(d, VMCORE_STATE_STOPPED);
        return fail(d, &err);
    }
    /* An exit the backend already posted is handled later, in order, from the inbox. */
    set_state(d, VMCORE_STATE_RUNNING);
    queue_callback(d, cb, arg, 0);
    return 0;
}

static int pause_or_resume(vmcore_domain *d, bool pause, vmcore_domain_cb cb, void *arg)
{
    const char *what = pause ? "pause" : "resume";
    if (!d)
        return VMCORE_EINVAL;
    vmcore_state want = pause ? VMCORE_STATE_RUNNING : VMCORE_STATE_PAUSED;
    if (d->closing || d->state != want)
        return fail_msg(d, VMCORE_ESTATE, "%s: domain is %s, not %s", what,
                        d->closing ? "closing" : vmcore_state_name(d->state),
                        vmcore_state_name(want));
    int (*op)(vmcore_domain *, void *, struct vmcore_err *) =
        pause ? d->ops->pause : d->ops->resume;
    if (!op)
        return fail_msg(d, VMCORE_ENOTSUP, "%s: not supported by backend %s", what,
                        d->ops->name);
    struct vmcore_err err = { 0 };
    int rc = op(d, d->priv, &err);
    if (rc) {
        if (!err.msg[0])
            err_set(&err, rc, "%s: %s", what, vmcore_strerror(rc));
        return fail(d, &err);
    }
    set_state(d, pause ? VMCORE_STATE_PAUSED : VMCORE_STATE_RUNNING);
    queue_callback(d, cb, arg, 0);
    return 0;
}

VMCORE_API int vmcore_domain_pause(vmcore_domain *d, vmcore_domain_cb cb, void *arg)
{
    return pause_or_resume(d, true, cb, arg);
}

VMCORE_API int vmcore_domain_resume(vmcore_domain *d, vmcore_domain_cb cb, void *arg)
{
    return pause_or_resume(d, false, cb, arg);
}

static int add_stop_waiter(vmcore_domain *d, vmcore_domain_cb cb, void *arg)
{
    if (!cb)
        return 0;
    if (d->nstop_waiters == sizeof d->stop_waiters / sizeof d->stop_waiters[0])
        return fail_msg(d, VMCORE_EBUSY, "too many shutdown/kill requests pending");
    d->stop_waiters[d->nstop_waiters].cb = cb;
    d->stop_waiters[d->nstop_waiters].arg = arg;
    d->nstop_waiters++;
    return 0;
}

static int do_kill(vmcore_domain *d)
{
    struct vmcore_err err = { 0 };
    int rc = d->ops->kill ? d->ops->kill(d, d->priv, &err) : VMCORE_ENOTSUP;
    if (rc) {
        if (!err.msg[0])
            err_set(&err, rc, "kill: %s", vmcore_strerror(rc));
        return fail(d, &err);
    }
    return 0;
}

static void shutdown_timeout(uv_timer_t *t)
{
    vmcore_domain *d = t->data;
    d->shutdown_timed_out = true;
    do_kill(d);
}

VMCORE_API int vmcore_domain_shutdown(vmcore_domain *d, uint64_t timeout_ms,
                                      vmcore_domain_cb cb, void *arg)
{
    if (!d)
        return VMCORE_EINVAL;
    if (d->closing || !state_active(d->state))
        return fail_msg(d, VMCORE_ESTATE, "shutdown: domain is %s",
                        d->closing ? "closing" : vmcore_state_name(d->state));
    int rc = add_stop_waiter(d, cb, arg);
    if (rc)
        return rc;
    set_state(d, VMCORE_STATE_STOPPING);
    if (timeout_ms == 0 || !d->ops->shutdown)
        return do_kill(d);
    struct vmcore_err err = { 0 };
    rc = d->ops->shutdown(d, d->priv, &err);
    if (rc) {
        fail(d, &err);
        return do_kill(d);
    }
    if (!d->timer_open) {
        uv_timer_init(d->ctx->loop, &d->shutdown_timer);
        d->shutdown_timer.data = d;
        d->timer_open = true;
    }
    uv_timer_start(&d->shutdown_timer, shutdown_timeout, timeout_ms, 0);
    return 0;
}

VMCORE_API int vmcore_domain_kill(vmcore_domain *d, vmcore_domain_cb cb, void *arg)
{
    if (!d)
        return VMCORE_EINVAL;
    if (d->closing || !state_active(d->state))
        return fail_msg(d, VMCORE_ESTATE, "kill: domain is %s",
                        d->closing ? "closing" : vmcore_state_name(d->state));
    int rc = add_stop_waiter(d, cb, arg);
    if (rc)
        return rc;
    set_state(d, VMCORE_STATE_STOPPING);
    return do_kill(d);
}

/* ---------------------------------------------------------------- snapshots */

/* The longest configuration a snapshot's domain section may carry. */
#define SNAP_CONFIG_MAX (1u << 20)

VMCORE_API int vmcore_domain_save(vmcore_domain *d, const char *path, unsigned flags,
                                  vmcore_domain_cb cb, void *arg)
{
    if (!d)
        return VMCORE_EINVAL;
    if (!path || !*path)
        return fail_msg(d, VMCORE_EINVAL, "save: path is %s", path ? "empty" : "NULL");
    if (flags & ~(unsigned)VMCORE_SAVE_STOP)
        return fail_msg(d, VMCORE_EINVAL, "save: unknown flags 0x%x",
                        flags & ~(unsigned)VMCORE_SAVE_STOP);
    if (d->closing || (d->state != VMCORE_STATE_RUNNING && d->state != VMCORE_STATE_PAUSED))
        return fail_msg(d, VMCORE_ESTATE, "save: domain is %s, not running or paused",
                        d->closing ? "closing" : vmcore_state_name(d->state));
    if (!d->ops->save)
        return fail_msg(d, VMCORE_ENOTSUP, "save: not implemented yet for backend %s",
                        d->ops->name);
    struct vmcore_err err = { 0 };
    bool was_running = d->state == VMCORE_STATE_RUNNING;
    int rc = 0;
    if (was_running && (rc = d->ops->pause(d, d->priv, &err))) {
        if (!err.msg[0])
            err_set(&err, rc, "save: cannot pause: %s", vmcore_strerror(rc));
        return fail(d, &err);
    }
    struct snap_writer w;
    rc = snap_writer_open(&w, path, &err);
    if (rc == 0) {
        struct snap_buf b = { 0 };
        snap_buf_str(&b, d->ops->name);
        snap_buf_str(&b, d->config_json);
        snap_buf_str(&b, d->base_dir);
        rc = b.oom ? err_set(&err, VMCORE_ENOMEM, "save: out of memory")
                   : snap_write_section(&w, SNAP_SEC_DOMAIN, 0, b.p, b.len);
        snap_buf_free(&b);
        if (rc == 0)
            rc = d->ops->save(d, d->priv, &w, &err);
        if (rc == 0)
            rc = snap_writer_commit(&w);
        else
            snap_writer_abort(&w);
    }
    if (rc) {
        if (!err.msg[0])
            err_set(&err, rc, "save: %s", vmcore_strerror(rc));
        if (was_running)
            d->ops->resume(d, d->priv, &(struct vmcore_err){ 0 });
        return fail(d, &err);
    }
    if (flags & VMCORE_SAVE_STOP) {
        set_state(d, VMCORE_STATE_STOPPING);
        if (d->ops->saved_stop)
            d->ops->saved_stop(d, d->priv);
        else
            do_kill(d);
    } else if (was_running) {
        d->ops->resume(d, d->priv, &err);
    }
    queue_callback(d, cb, arg, 0);
    return 0;
}

/* Apply @overrides (a JSON object text) to @root: host-side keys only. */
static int apply_overrides(json_t *root, const char *overrides, const char *snap_backend,
                           struct vmcore_err *err)
{
    if (!overrides)
        return 0;
    json_error_t je;
    json_t *o = json_loads(overrides, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return err_set(err, VMCORE_EPARSE, "overrides: malformed JSON at line %d column %d: %s",
                       je.line, je.column, je.text);
    int rc = 0;
    if (!json_is_object(o)) {
        rc = err_config(err, VMCORE_ECONFIG, "overrides", "not a JSON object");
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        char p[VMCORE_ERR_PATH_MAX];
        snprintf(p, sizeof p, "overrides.%s", key);
        if (!strcmp(key, "name")) {
            if (!json_is_string(v)) {
                rc = err_config(err, VMCORE_ECONFIG, p, "not a string");
                goto out;
            }
            json_object_set(root, "name", v);
        } else if (!strcmp(key, "backend")) {
            if (!json_is_string(v) || strcmp(json_string_value(v), snap_backend) != 0) {
                rc = err_config(err, VMCORE_ENOTSUP, p, "the snapshot was taken on %s; "
                                "restoring it on another backend is not implemented yet",
                                snap_backend);
                goto out;
            }
        } else {
            rc = err_config(err, VMCORE_ECONFIG, p, "cannot be overridden on restore: only "
                            "host-side keys can (\"name\"; \"backend\" naming the snapshot's "
                            "own); this one is guest-visible or not supported yet");
            goto out;
        }
    }
out:
    json_decref(o);
    return rc;
}

VMCORE_API int vmcore_domain_new_restore(vmcore_domain **out, vmcore_ctx *ctx, const char *path,
                                         const char *overrides_json)
{
    if (out)
        *out = NULL;
    if (!ctx)
        return VMCORE_EINVAL;
    if (!out || !path) {
        err_set(&ctx->err, VMCORE_EINVAL, "%s is NULL", out ? "path" : "out");
        return VMCORE_EINVAL;
    }
    struct vmcore_err err = { 0 };
    struct snap_file f;
    int rc = snap_open(&f, path, &err);
    if (rc) {
        ctx_set_error(ctx, &err);
        return rc;
    }
    char *backend = NULL, *config = NULL, *base = NULL;
    json_t *root = NULL;
    struct snap_rd r;
    snap_rd_init(&r, &f.sec[0], "domain", &err);
    backend = snap_rd_str(&r, 32);
    config = backend ? snap_rd_str(&r, SNAP_CONFIG_MAX) : NULL;
    base = config ? snap_rd_str(&r, 4096) : NULL;
    if ((rc = snap_rd_end(&r)))
        goto out;
    const struct backend_ops *ops = backend_find(backend);
    if (!ops) {
        rc = err_set(&err, VMCORE_EIMAGE, "snapshot %s: section domain, file offset %llu: "
                     "unknown backend \"%s\"", path, (unsigned long long)f.sec[0].offset,
                     backend);
        goto out;
    }
    if (!ops->restore) {
        rc = err_set(&err, VMCORE_ENOTSUP, "restore: not implemented yet for backend %s",
                     ops->name);
        goto out;
    }
    json_error_t je;
    root = json_loads(config, JSON_REJECT_DUPLICATES, &je);
    if (!root || !json_is_object(root)) {
        rc = err_set(&err, VMCORE_EIMAGE, "snapshot %s: section domain, file offset %llu: the "
                     "configuration is not a JSON object (%s)", path,
                     (unsigned long long)f.sec[0].offset, root ? "another type" : je.text);
        goto out;
    }
    if ((rc = apply_overrides(root, overrides_json, ops->name, &err)))
        goto out;
    rc = domain_create_impl(out, ctx, root, *base ? base : NULL, ops, &f);
    json_decref(root);
    free(backend);
    free(config);
    free(base);
    snap_close(&f);
    return rc; /* domain_create_impl set the context's error */
out:
    json_decref(root);
    free(backend);
    free(config);
    free(base);
    snap_close(&f);
    ctx_set_error(ctx, &err);
    return rc;
}

/* ---------------------------------------------------------------- close */

/* The end of close: cancel what never reported, call the close callback, free. */
static void close_finish(vmcore_domain *d)
{
    vmcore_ctx *ctx = d->ctx;
    /* Execs that never reported are canceled, before the close callback. */
    while (d->execs) {
        struct exec_req *r = d->execs;
        vmcore_exit ex = { .kind = VMCORE_EXIT_NONE, .reason = "" };
        d->execs = r->next;
        if (r->cb)
            r->cb(d, VMCORE_ECANCELED, &ex, r->arg);
        free(r);
    }
    if (d->close_cb)
        d->close_cb(d, d->close_arg);
    while (d->subs) {
        struct subscription *s = d->subs;
        d->subs = s->next;
        free(s);
    }
    free(d->exit_reason);
    config_free(d->cfg);
    domain_free_snapinfo(d);
    free(d->exit_post);
    pthread_cond_destroy(&d->console_cond);
    free(d);
    ctx->ndomains--;
}

static void timer_closed(uv_handle_t *h)
{
    vmcore_domain *d = h->data;
    struct post *p = post_new(OUT_CLOSE, d, NULL, 0);
    if (!p) {
        close_finish(d); /* cannot queue: finish here rather than leak the domain */
        return;
    }
    ctx_outbox_push(d->ctx, p);
}

/* Release the backend and queue the close callback. Runs once the domain has ended. */
static void finish_close(vmcore_domain *d)
{
    if (d->destroyed)
        return;
    if (d->ops->destroy)
        d->ops->destroy(d, d->priv);
    d->priv = NULL;
    d->destroyed = true;
    ctx_drop_domain_posts(d->ctx, d);
    for (unsigned i = 0; i < d->nstop_waiters; i++)
        queue_callback(d, d->stop_waiters[i].cb, d->stop_waiters[i].arg, VMCORE_ECANCELED);
    d->nstop_waiters = 0;
    update_active(d);
    if (d->timer_open) {
        uv_timer_stop(&d->shutdown_timer);
        uv_close((uv_handle_t *)&d->shutdown_timer, timer_closed);
    } else {
        d->shutdown_timer.data = d;
        timer_closed((uv_handle_t *)&d->shutdown_timer);
    }
}

VMCORE_API void vmcore_domain_close(vmcore_domain *d, vmcore_close_cb cb, void *arg)
{
    if (!d || d->closing)
        return;
    d->closing = true;
    d->close_cb = cb;
    d->close_arg = arg;
    /* Held reports go on (they are dropped, not delivered, now): the exit among them is
     * what close waits for, and a writer waiting for room must see the queue drain. */
    d->console_held = false;
    ctx_inbox_requeue(d->ctx, &d->held);
    update_active(d);
    if (state_active(d->state)) {
        if (d->state != VMCORE_STATE_STOPPING)
            set_state(d, VMCORE_STATE_STOPPING);
        if (do_kill(d) == 0)
            return; /* finish_close runs when the exit arrives */
        /* The backend cannot kill: destroy is the last resort and must stop everything. */
    }
    finish_close(d);
}

/* ---------------------------------------------------------------- reports */

static void deliver_event(vmcore_domain *d, const vmcore_event *ev)
{
    if (d->closing)
        return; /* libuv semantics: after close only the close callback runs */
    d->dispatching++;
    for (struct subscription *s = d->subs; s; s = s->next)
        if (!s->removed && (s->mask & ev->type))
            s->cb(ev, s->arg);
    d->dispatching--;
    if (d->dispatching == 0) {
        struct subscription **pp = &d->subs;
        while (*pp) {
            if ((*pp)->removed) {
                struct subscription *dead = *pp;
                *pp = dead->next;
                free(dead);
            } else {
                pp = &(*pp)->next;
            }
        }
    }
}

static void handle_exit(vmcore_domain *d, struct post *p)
{
    free(d->exit_reason);
    d->exit_reason = strdup(p->len ? p->data : "");
    d->exit.kind = p->exit_kind;
    d->exit.status = p->code;
    d->exit.signal = p->signal;
    d->exit.reason = d->exit_reason ? d->exit_reason : "";
    if (d->timer_open)
        uv_timer_stop(&d->shutdown_timer);

    vmcore_event ev = { .type = VMCORE_EVENT_EXIT, .domain = d };
    ev.u.exit = d->exit;
    deliver_event(d, &ev);
    set_state(d, p->exit_kind == VMCORE_EXIT_CRASH ? VMCORE_STATE_CRASHED
                                                   : VMCORE_STATE_STOPPED);
    int status = d->shutdown_timed_out ? VMCORE_ETIMEDOUT : 0;
    for (unsigned i = 0; i < d->nstop_waiters; i++)
        queue_callback(d, d->stop_waiters[i].cb, d->stop_waiters[i].arg, status);
    d->nstop_waiters = 0;
    if (d->closing)
        finish_close(d);
}

static void handle_exec_done(vmcore_domain *d, struct post *p)
{
    struct exec_req **pp = &d->execs;
    while (*pp && *pp != p->token)
        pp = &(*pp)->next;
    struct exec_req *r = *pp;
    if (!r)
        return;
    *pp = r->next;
    vmcore_exit ex = { .kind = p->exit_kind, .status = p->code, .signal = p->signal,
                       .reason = "" };
    if (r->cb)
        r->cb(d, d->closing ? VMCORE_ECANCELED : p->status, &ex, r->arg);
    free(r);
}

/* @len console bytes have left the queue: wake the writers once it is below the low-water
 * mark. Loop thread. */
static void console_delivered(vmcore_domain *d, size_t len)
{
    vmcore_ctx *ctx = d->ctx;
    bool drained = false;
    pthread_mutex_lock(&ctx->lock);
    d->console_queued -= len < d->console_queued ? len : d->console_queued;
    if (d->console_queued < DOMAIN_CONSOLE_HIGH)
        atomic_store(&d->console_full, false);
    if (d->console_queued <= DOMAIN_CONSOLE_LOW) {
        if (d->console_waiters)
            pthread_cond_broadcast(&d->console_cond);
        drained = d->console_stalled;
        d->console_stalled = false;
    }
    pthread_mutex_unlock(&ctx->lock);
    if (drained && d->ops->console_drained && !d->destroyed)
        d->ops->console_drained(d, d->priv);
}

void domain_handle_post(struct post *p)
{
    vmcore_domain *d = p->domain;
    switch (p->kind) {
    case POST_CONSOLE: {
        vmcore_event ev = { .type = VMCORE_EVENT_CONSOLE, .domain = d };
        ev.u.console.stream = (vmcore_stream)p->code;
        ev.u.console.data = p->data;
        ev.u.console.len = p->len;
        deliver_event(d, &ev);
        console_delivered(d, p->len);
        break;
    }
    case POST_ERROR: {
        vmcore_event ev = { .type = VMCORE_EVENT_ERROR, .domain = d };
        ev.u.error.code = p->code;
        ev.u.error.message = p->data;
        deliver_event(d, &ev);
        break;
    }
    case POST_EXIT:
        handle_exit(d, p);
        break;
    case POST_EXEC_DONE:
        handle_exec_done(d, p);
        break;
    default:
        break;
    }
    free(p);
}

void domain_deliver(struct post *p)
{
    vmcore_domain *d = p->domain;
    switch (p->kind) {
    case OUT_EVENT:
        deliver_event(d, &p->ev);
        break;
    case OUT_CALLBACK:
        p->cb(d, p->status, p->arg);
        break;
    case OUT_CLOSE:
        close_finish(d);
        break;
    default:
        break;
    }
    free(p);
}

/* ------------------------------------------- backend report entry points (any thread) */

bool domain_post_console(vmcore_domain *d, vmcore_stream stream, const void *data, size_t len)
{
    vmcore_ctx *ctx = d->ctx;
    struct post *p = len ? post_new(POST_CONSOLE, d, data, len) : NULL;
    bool full;
    pthread_mutex_lock(&ctx->lock);
    if (p) {
        p->code = (int)stream;
        post_list_push(&ctx->inbox, p); /* and counted under the same lock */
        d->console_queued += len;
    }
    full = d->console_queued >= DOMAIN_CONSOLE_HIGH;
    if (full) {
        atomic_store(&d->console_full, true);
        d->console_stalled = true;
    }
    pthread_mutex_unlock(&ctx->lock);
    if (p)
        uv_async_send(&ctx->wake);
    return full;
}

bool domain_console_full(vmcore_domain *d)
{
    return atomic_load_explicit(&d->console_full, memory_order_relaxed);
}

void domain_console_wait(vmcore_domain *d, bool (*stop)(void *arg), void *arg)
{
    if (!domain_console_full(d))
        return;
    vmcore_ctx *ctx = d->ctx;
    pthread_mutex_lock(&ctx->lock);
    if (d->console_queued >= DOMAIN_CONSOLE_HIGH) {
        d->console_waiters++;
        while (d->console_queued > DOMAIN_CONSOLE_LOW && !stop(arg))
            pthread_cond_wait(&d->console_cond, &ctx->lock);
        d->console_waiters--;
    }
    pthread_mutex_unlock(&ctx->lock);
}

void domain_console_wake(vmcore_domain *d)
{
    vmcore_ctx *ctx = d->ctx;
    pthread_mutex_lock(&ctx->lock);
    pthread_cond_broadcast(&d->console_cond);
    pthread_mutex_unlock(&ctx->lock);
}

void domain_post_exit(vmcore_domain *d, vmcore_exit_kind kind, int status, int signal,
                      const char *reason)
{
    vmcore_ctx *ctx = d->ctx;
    pthread_mutex_lock(&ctx->lock);
    struct post *p = d->exit_posted ? NULL : d->exit_post;
    d->exit_posted = true;
    d->exit_post = NULL;
    pthread_mutex_unlock(&ctx->lock);
    if (!p)
        return; /* not the first report */
    /* The post was allocated with the domain: nothing here can fail. */
    size_t len = reason ? strnlen(reason, DOMAIN_EXIT_REASON_MAX) : 0;
    memcpy(p->data, reason ? reason : "", len);
    p->data[len] = '\0';
    p->len = len;
    p->exit_kind = kind;
    p->code = status;
    p->signal = signal;
    ctx_inbox_push(ctx, p);
}

void domain_post_error(vmcore_domain *d, int code, const char *fmt, ...)
{
    char msg[VMCORE_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    struct post *p = post_new(POST_ERROR, d, msg, strlen(msg));
    if (!p)
        return;
    p->code = code;
    ctx_inbox_push(d->ctx, p);
}

void domain_post_exec_done(vmcore_domain *d, void *token, int status, vmcore_exit_kind kind,
                           int code, int signal)
{
    struct post *p = post_new(POST_EXEC_DONE, d, NULL, 0);
    if (!p)
        return;
    p->token = token;
    p->status = status;
    p->exit_kind = kind;
    p->code = code;
    p->signal = signal;
    ctx_inbox_push(d->ctx, p);
}

uv_loop_t *domain_loop(vmcore_domain *d) { return d->ctx->loop; }
const struct vmcore_config *domain_config(const vmcore_domain *d) { return d->cfg; }

/* ---------------------------------------------------------------- queries */

VMCORE_API vmcore_state vmcore_domain_state(const vmcore_domain *d)
{
    return d ? d->state : VMCORE_STATE_CRASHED;
}

VMCORE_API int vmcore_domain_exit(const vmcore_domain *d, vmcore_exit *out)
{
    if (!d || !out)
        return VMCORE_EINVAL;
    *out = d->exit;
    if (!out->reason)
        out->reason = "";
    return 0;
}

VMCORE_API const char *vmcore_domain_backend(const vmcore_domain *d)
{
    return d ? d->ops->name : NULL;
}

VMCORE_API const char *vmcore_domain_name(const vmcore_domain *d)
{
    return d ? d->cfg->name : NULL;
}

VMCORE_API vmcore_ctx *vmcore_domain_ctx(const vmcore_domain *d) { return d ? d->ctx : NULL; }

VMCORE_API const char *vmcore_domain_last_error(const vmcore_domain *d)
{
    return d ? d->err.msg : "invalid domain (NULL)";
}

VMCORE_API int vmcore_domain_stats(vmcore_domain *d, vmcore_stats *out)
{
    if (!d)
        return VMCORE_EINVAL;
    if (!out || out->version < 1 || out->version > VMCORE_STATS_VERSION)
        return fail_msg(d, VMCORE_EINVAL, "stats: %s", out ? "wrong vmcore_stats version"
                                                           : "out is NULL");
    /* a version-1 caller's struct ends before jit_blocks, a version-2 one before net_* */
    size_t size = out->version == 1   ? offsetof(vmcore_stats, jit_blocks)
                  : out->version == 2 ? offsetof(vmcore_stats, net_rx_bytes)
                                      : sizeof *out;
    vmcore_stats all = { .version = out->version };
    int rc = 0;
    if (d->ops->stats && !d->destroyed) {
        struct vmcore_err err = { 0 };
        rc = d->ops->stats(d, d->priv, &all, &err);
        if (rc)
            return fail(d, &err);
    }
    memcpy(out, &all, size);
    return 0;
}

VMCORE_API int vmcore_domain_console_write(vmcore_domain *d, const void *data, size_t len)
{
    if (!d)
        return VMCORE_EINVAL;
    if (!data && len)
        return fail_msg(d, VMCORE_EINVAL, "console_write: data is NULL");
    if (d->closing ||
        (d->state != VMCORE_STATE_RUNNING && d->state != VMCORE_STATE_PAUSED))
        return fail_msg(d, VMCORE_ESTATE, "console_write: domain is %s",
                        d->closing ? "closing" : vmcore_state_name(d->state));
    if (!d->ops->console_write)
        return fail_msg(d, VMCORE_ENOTSUP, "console_write: not supported by backend %s",
                        d->ops->name);
    struct vmcore_err err = { 0 };
    int rc = d->ops->console_write(d, d->priv, data, len, &err);
    return rc ? fail(d, &err) : 0;
}

VMCORE_API int vmcore_domain_resize_console(vmcore_domain *d, unsigned int rows,
                                            unsigned int cols)
{
    if (!d)
        return VMCORE_EINVAL;
    if (rows == 0 || cols == 0 || rows > 65535 || cols > 65535)
        return fail_msg(d, VMCORE_EINVAL, "resize_console: %u x %u is out of range "
                        "(1..65535 rows and columns)", rows, cols);
    if (d->closing || d->state == VMCORE_STATE_STOPPED || d->state == VMCORE_STATE_CRASHED)
        return fail_msg(d, VMCORE_ESTATE, "resize_console: domain is %s",
                        d->closing ? "closing" : vmcore_state_name(d->state));
    if (!d->ops->console_resize)
        return fail_msg(d, VMCORE_ENOTSUP, "resize_console: the %s backend's console is a "
                        "serial port, which has no window size", d->ops->name);
    struct vmcore_err err = { 0 };
    int rc = d->ops->console_resize(d, d->priv, rows, cols, &err);
    if (rc) {
        if (!err.msg[0])
            err_set(&err, rc, "resize_console: %s", vmcore_strerror(rc));
        return fail(d, &err);
    }
    return 0;
}

VMCORE_API int vmcore_domain_hold_console(vmcore_domain *d, int hold)
{
    if (!d)
        return VMCORE_EINVAL;
    if (d->closing)
        return fail_msg(d, VMCORE_ESTATE, "hold_console: the domain is closing");
    if (d->console_held == (hold != 0))
        return 0;
    d->console_held = hold != 0;
    if (!hold)
        ctx_inbox_requeue(d->ctx, &d->held); /* delivered from the loop, in order */
    return 0;
}

VMCORE_API int vmcore_domain_exec(vmcore_domain *d, const char *const *argv, vmcore_exec_cb cb,
                                  void *arg)
{
    if (!d)
        return VMCORE_EINVAL;
    if (!argv || !argv[0])
        return fail_msg(d, VMCORE_EINVAL, "exec: argv is empty");
    if (!d->ops->exec)
        return fail_msg(d, VMCORE_ENOTSUP, "exec: not supported by backend %s", d->ops->name);
    if (d->closing || d->state != VMCORE_STATE_RUNNING)
        return fail_msg(d, VMCORE_ESTATE, "exec: domain is %s, not running",
                        d->closing ? "closing" : vmcore_state_name(d->state));
    struct exec_req *r = calloc(1, sizeof *r);
    if (!r)
        return fail_msg(d, VMCORE_ENOMEM, "exec: out of memory");
    r->domain = d;
    r->cb = cb;
    r->arg = arg;
    struct vmcore_err err = { 0 };
    int rc = d->ops->exec(d, d->priv, argv, r, &err);
    if (rc) {
        free(r);
        return fail(d, &err);
    }
    r->next = d->execs;
    d->execs = r;
    return 0;
}

VMCORE_API int vmcore_domain_detach(vmcore_domain *d, vmcore_detached *out)
{
    if (!d || !out)
        return VMCORE_EINVAL;
    if (!d->ops->detach)
        return fail_msg(d, VMCORE_ENOTSUP, "detach: not supported by backend %s", d->ops->name);
    if (d->closing || (d->state != VMCORE_STATE_RUNNING && d->state != VMCORE_STATE_PAUSED))
        return fail_msg(d, VMCORE_ESTATE, "detach: domain is %s, not running",
                        d->closing ? "closing" : vmcore_state_name(d->state));
    struct vmcore_err err = { 0 };
    int rc = d->ops->detach(d, d->priv, out, &err);
    if (rc)
        return fail(d, &err);
    /* The domain's end, reported the usual way (the first report wins: a process that
     * had already ended and not yet been reported is reported as such). */
    domain_post_exit(d, VMCORE_EXIT_NONE, 0, 0, "detached");
    return 0;
}

/* ---------------------------------------------------------------- subscriptions */

VMCORE_API int vmcore_domain_subscribe(vmcore_domain *d, unsigned int mask, vmcore_event_cb cb,
                                       void *arg)
{
    if (!d)
        return VMCORE_EINVAL;
    if (!cb || !(mask & VMCORE_EVENT_ALL))
        return fail_msg(d, VMCORE_EINVAL, "subscribe: %s", cb ? "empty event mask"
                                                              : "callback is NULL");
    if (d->next_sub_id == INT_MAX)
        return fail_msg(d, VMCORE_ENOMEM, "subscribe: out of subscription ids");
    struct subscription *s = calloc(1, sizeof *s);
    if (!s)
        return fail_msg(d, VMCORE_ENOMEM, "subscribe: out of memory");
    s->id = d->next_sub_id++;
    s->mask = mask;
    s->cb = cb;
    s->arg = arg;
    /* Append so subscribers are called in subscription order. */
    struct subscription **pp = &d->subs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
    return s->id;
}

VMCORE_API int vmcore_domain_unsubscribe(vmcore_domain *d, int id)
{
    if (!d)
        return VMCORE_EINVAL;
    for (struct subscription **pp = &d->subs; *pp; pp = &(*pp)->next) {
        struct subscription *s = *pp;
        if (s->id == id && !s->removed) {
            if (d->dispatching) {
                s->removed = true;
            } else {
                *pp = s->next;
                free(s);
            }
            return 0;
        }
    }
    return fail_msg(d, VMCORE_ENOENT, "unsubscribe: no subscription %d", id);
}
