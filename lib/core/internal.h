/* Private structures shared by ctx.c and domain.c.
 *
 * Event flow: backends post reports from any thread into the context's inbox (a locked
 * list) and wake the loop with uv_async_send(). On the loop thread, reports become
 * entries of the outbox (events and completion callbacks) in the order things happened;
 * the core's own state changes append to the outbox directly. The outbox is only ever
 * drained from the async callback, so no user callback runs inside an API call. */
#ifndef VMCORE_CORE_INTERNAL_H
#define VMCORE_CORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "vmcore/vmcore.h"

#include "backend.h"
#include "config.h"
#include "err.h"

enum post_kind {
    POST_CONSOLE,   /* inbox: console bytes */
    POST_EXIT,      /* inbox: the domain ended */
    POST_ERROR,     /* inbox: async error */
    POST_EXEC_DONE, /* inbox: an exec'd process ended */
    OUT_EVENT,      /* outbox: deliver ev (state change) */
    OUT_CALLBACK,   /* outbox: call a completion callback */
    OUT_CLOSE       /* outbox: call the close callback and free the domain */
};

struct post {
    struct post *next;
    enum post_kind kind;
    vmcore_domain *domain;
    vmcore_event ev;          /* OUT_EVENT; console/error payloads point into data */
    vmcore_domain_cb cb;      /* OUT_CALLBACK */
    void *arg;
    int status;
    int code, signal;         /* POST_EXIT / POST_EXEC_DONE */
    vmcore_exit_kind exit_kind;
    void *token;              /* POST_EXEC_DONE */
    size_t len;
    char data[];              /* console bytes, reason or message (NUL-terminated) */
};

struct post_list {
    struct post *head, *tail;
};

struct vmcore_ctx {
    uv_loop_t *loop;
    uv_loop_t own_loop;
    bool owns_loop;
    uv_async_t wake;
    pthread_mutex_t lock;      /* guards inbox */
    struct post_list inbox;
    struct post_list outbox;   /* loop thread only */
    bool draining;
    unsigned active;           /* domains started and not ended, or closing */
    unsigned ndomains;
    struct vmcore_err err;
};

struct subscription {
    struct subscription *next;
    int id;
    unsigned mask;
    vmcore_event_cb cb;
    void *arg;
    bool removed;
};

struct exec_req {
    vmcore_domain *domain;
    vmcore_exec_cb cb;
    void *arg;
    struct exec_req *next;
};

struct vmcore_domain {
    vmcore_ctx *ctx;
    struct vmcore_config *cfg;
    const struct backend_ops *ops;
    void *priv;
    vmcore_state state;
    vmcore_exit exit;
    char *exit_reason;
    bool exit_posted;          /* guarded by ctx->lock: only the first report counts */
    /* The exit report, allocated with the domain so that reporting the end never needs
     * memory (a lost exit would leave vmcore_domain_close() waiting forever). Taken by the
     * first domain_post_exit() under ctx->lock; freed with the domain if never used. */
    struct post *exit_post;
    /* Console back-pressure: bytes of console reports posted and not yet delivered (in the
     * inbox or held), and the vCPU threads waiting for room. Guarded by ctx->lock;
     * console_full mirrors "console_queued >= DOMAIN_CONSOLE_HIGH" for a lock-free check. */
    size_t console_queued;
    unsigned console_waiters;
    bool console_stalled;      /* a poster was told "full": call ops->console_drained */
    atomic_bool console_full;
    pthread_cond_t console_cond;
    /* vmcore_domain_hold_console() (loop thread): reports wait in `held` while set */
    bool console_held;
    struct post_list held;
    bool counted_active;
    bool closing;
    bool destroyed;
    vmcore_close_cb close_cb;
    void *close_arg;
    struct subscription *subs;
    int next_sub_id;
    int dispatching;
    /* completion callbacks waiting for the domain to end (shutdown, kill) */
    struct { vmcore_domain_cb cb; void *arg; } stop_waiters[8];
    unsigned nstop_waiters;
    bool shutdown_timed_out;
    uv_timer_t shutdown_timer;
    bool timer_open;
    struct exec_req *execs;
    struct vmcore_err err;
    /* The configuration as given (compact JSON) and the folder its relative paths resolve
     * against (NULL: the current directory at creation), for snapshots. */
    char *config_json;
    char *base_dir;
};

/* The longest exit reason a domain_post_exit() report carries (longer ones are cut). */
#define DOMAIN_EXIT_REASON_MAX 255

/* domain.c: how the core allocates its posts; tests replace it to make allocations fail. */
extern void *(*domain_calloc)(size_t nmemb, size_t size);

/* ctx.c */
/* Append @p to @l (the caller holds whatever lock guards @l). */
void post_list_push(struct post_list *l, struct post *p);
void ctx_inbox_push(vmcore_ctx *ctx, struct post *p);
void ctx_outbox_push(vmcore_ctx *ctx, struct post *p);
void ctx_update_ref(vmcore_ctx *ctx);
void ctx_drop_domain_posts(vmcore_ctx *ctx, vmcore_domain *d);
/* Put @l (posts taken from the inbox earlier) back at the head of the inbox; empties @l. */
void ctx_inbox_requeue(vmcore_ctx *ctx, struct post_list *l);
void ctx_set_error(vmcore_ctx *ctx, const struct vmcore_err *e);
/* domain.c: create a domain run by @forced instead of the configured backend (the state
 * machine tests drive the core with a scripted backend this way). */
int domain_create_with_ops(vmcore_domain **out, vmcore_ctx *ctx, const json_t *root,
                           const char *base_dir, const struct backend_ops *forced);
/* domain.c: handle one inbox report on the loop thread; deliver one outbox entry */
void domain_handle_post(struct post *p);
void domain_deliver(struct post *p);

#endif
