/* The context: a libuv loop, the inbox where backends post reports from any thread,
 * and the outbox drained on the loop thread. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

void post_list_push(struct post_list *l, struct post *p)
{
    p->next = NULL;
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
}

static struct post *list_pop(struct post_list *l)
{
    struct post *p = l->head;
    if (p) {
        l->head = p->next;
        if (!l->head)
            l->tail = NULL;
    }
    return p;
}

static void drain(uv_async_t *h)
{
    vmcore_ctx *ctx = h->data;
    if (ctx->draining)
        return;
    ctx->draining = true;
    for (;;) {
        struct post *p = list_pop(&ctx->outbox);
        if (p) {
            domain_deliver(p);  /* frees p; may append to the outbox */
            continue;
        }
        pthread_mutex_lock(&ctx->lock);
        p = list_pop(&ctx->inbox);
        pthread_mutex_unlock(&ctx->lock);
        if (!p)
            break;
        if (p->domain->console_held) {
            /* vmcore_domain_hold_console(): the domain's reports wait, in order */
            post_list_push(&p->domain->held, p);
            continue;
        }
        domain_handle_post(p); /* frees p or moves it to the outbox */
    }
    ctx->draining = false;
    ctx_update_ref(ctx);
}

void ctx_inbox_push(vmcore_ctx *ctx, struct post *p)
{
    pthread_mutex_lock(&ctx->lock);
    post_list_push(&ctx->inbox, p);
    pthread_mutex_unlock(&ctx->lock);
    uv_async_send(&ctx->wake);
}

void ctx_outbox_push(vmcore_ctx *ctx, struct post *p)
{
    post_list_push(&ctx->outbox, p);
    ctx_update_ref(ctx);
    uv_async_send(&ctx->wake);
}

void ctx_update_ref(vmcore_ctx *ctx)
{
    if (ctx->active > 0 || ctx->outbox.head)
        uv_ref((uv_handle_t *)&ctx->wake);
    else
        uv_unref((uv_handle_t *)&ctx->wake);
}

static void drop_from(struct post_list *l, vmcore_domain *d)
{
    struct post **pp = &l->head;
    l->tail = NULL;
    while (*pp) {
        struct post *p = *pp;
        if (p->domain == d) {
            *pp = p->next;
            free(p);
        } else {
            l->tail = p;
            pp = &p->next;
        }
    }
}

void ctx_drop_domain_posts(vmcore_ctx *ctx, vmcore_domain *d)
{
    pthread_mutex_lock(&ctx->lock);
    drop_from(&ctx->inbox, d);
    d->console_queued = 0;
    d->console_stalled = false;
    atomic_store(&d->console_full, false);
    pthread_cond_broadcast(&d->console_cond);
    pthread_mutex_unlock(&ctx->lock);
    drop_from(&d->held, d);
}

void ctx_inbox_requeue(vmcore_ctx *ctx, struct post_list *l)
{
    if (!l->head)
        return;
    pthread_mutex_lock(&ctx->lock);
    l->tail->next = ctx->inbox.head;
    if (!ctx->inbox.tail)
        ctx->inbox.tail = l->tail;
    ctx->inbox.head = l->head;
    pthread_mutex_unlock(&ctx->lock);
    l->head = l->tail = NULL;
    uv_async_send(&ctx->wake);
}

void ctx_set_error(vmcore_ctx *ctx, const struct vmcore_err *e)
{
    ctx->err = *e;
}

VMCORE_API int vmcore_ctx_new(vmcore_ctx **out, uv_loop_t *loop)
{
    if (!out)
        return VMCORE_EINVAL;
    *out = NULL;
    vmcore_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return VMCORE_ENOMEM;
    if (loop) {
        ctx->loop = loop;
    } else {
        if (uv_loop_init(&ctx->own_loop) < 0) {
            free(ctx);
            return VMCORE_ESYS;
        }
        ctx->loop = &ctx->own_loop;
        ctx->owns_loop = true;
    }
    if (pthread_mutex_init(&ctx->lock, NULL) != 0 ||
        uv_async_init(ctx->loop, &ctx->wake, drain) < 0) {
        if (ctx->owns_loop)
            uv_loop_close(&ctx->own_loop);
        free(ctx);
        return VMCORE_ESYS;
    }
    ctx->wake.data = ctx;
    uv_unref((uv_handle_t *)&ctx->wake);
    *out = ctx;
    return 0;
}

static void ctx_release(uv_handle_t *h)
{
    vmcore_ctx *ctx = h->data;
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

VMCORE_API int vmcore_ctx_free(vmcore_ctx *ctx)
{
    if (!ctx)
        return 0;
    if (ctx->ndomains > 0) {
        err_set(&ctx->err, VMCORE_EBUSY, "%u domain(s) still open: close them first",
                ctx->ndomains);
        return VMCORE_EBUSY;
    }
    if (ctx->owns_loop) {
        uv_close((uv_handle_t *)&ctx->wake, NULL);
        uv_run(&ctx->own_loop, UV_RUN_DEFAULT); /* only our own handles remain */
        uv_loop_close(&ctx->own_loop);
        pthread_mutex_destroy(&ctx->lock);
        free(ctx);
    } else {
        /* A caller's loop: the memory goes once that loop has run the close callback. */
        uv_close((uv_handle_t *)&ctx->wake, ctx_release);
    }
    return 0;
}

VMCORE_API uv_loop_t *vmcore_ctx_loop(vmcore_ctx *ctx) { return ctx ? ctx->loop : NULL; }

VMCORE_API int vmcore_ctx_run(vmcore_ctx *ctx, vmcore_run_mode mode)
{
    if (!ctx)
        return VMCORE_EINVAL;
    switch (mode) {
    case VMCORE_RUN_DEFAULT: return uv_run(ctx->loop, UV_RUN_DEFAULT);
    case VMCORE_RUN_ONCE: return uv_run(ctx->loop, UV_RUN_ONCE);
    case VMCORE_RUN_NOWAIT: return uv_run(ctx->loop, UV_RUN_NOWAIT);
    }
    return VMCORE_EINVAL;
}

VMCORE_API int vmcore_ctx_backend_fd(vmcore_ctx *ctx)
{
    if (!ctx)
        return VMCORE_EINVAL;
    int fd = uv_backend_fd(ctx->loop);
    return fd >= 0 ? fd : VMCORE_ESYS;
}

VMCORE_API int vmcore_ctx_backend_timeout(vmcore_ctx *ctx)
{
    if (!ctx)
        return VMCORE_EINVAL;
    uv_update_time(ctx->loop);
    return uv_backend_timeout(ctx->loop);
}

VMCORE_API const char *vmcore_ctx_last_error(const vmcore_ctx *ctx)
{
    return ctx ? ctx->err.msg : "invalid context (NULL)";
}

VMCORE_API const char *vmcore_ctx_last_error_path(const vmcore_ctx *ctx)
{
    return ctx && ctx->err.path[0] ? ctx->err.path : NULL;
}
