/* The domain state machine and event delivery, driven by a scripted backend whose
 * worker thread reports the way a vCPU thread does (from another thread, any time). */
#include "vt.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"

enum script { RUN_AND_EXIT, RUN_UNTIL_KILLED, CRASH, IGNORE_SHUTDOWN, FAIL_START };

struct scripted {
    enum script script;
    pthread_t thread;
    bool thread_started;
    atomic_int killed, shutdown_requested, paused, exit_posted;
    vmcore_domain *d;
};

static enum script next_script;
static int create_should_fail;

static void *worker(void *arg)
{
    struct scripted *s = arg;
    domain_post_console(s->d, VMCORE_STREAM_CONSOLE, "hello\n", 6);
    switch (s->script) {
    case RUN_AND_EXIT:
        domain_post_exit(s->d, VMCORE_EXIT_STATUS, 42, 0, "debug-exit");
        atomic_store(&s->exit_posted, 1);
        return NULL;
    case CRASH:
        domain_post_exit(s->d, VMCORE_EXIT_CRASH, 0, 0, "triple fault");
        return NULL;
    default:
        break;
    }
    while (!atomic_load(&s->killed)) {
        if (s->script == RUN_UNTIL_KILLED && atomic_load(&s->shutdown_requested)) {
            domain_post_exit(s->d, VMCORE_EXIT_STATUS, 0, 0, "shut down");
            return NULL;
        }
        usleep(1000);
    }
    domain_post_exit(s->d, VMCORE_EXIT_SIGNAL, 0, 9, "killed");
    return NULL;
}

static int s_probe(vmcore_probe_result *out) { return 0; }

static int s_create(vmcore_domain *d, const struct vmcore_config *cfg, void **priv,
                    struct vmcore_err *err)
{
    if (create_should_fail)
        return err_set(err, VMCORE_EIMAGE, "boot.kernel: scripted failure");
    struct scripted *s = calloc(1, sizeof *s);
    s->script = next_script;
    s->d = d;
    *priv = s;
    return 0;
}

static int s_start(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    struct scripted *s = priv;
    if (s->script == FAIL_START)
        return err_set(err, VMCORE_ESYS, "scripted start failure");
    pthread_create(&s->thread, NULL, worker, s);
    s->thread_started = true;
    return 0;
}

static int s_pause(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    atomic_store(&((struct scripted *)priv)->paused, 1);
    return 0;
}

static int s_resume(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    atomic_store(&((struct scripted *)priv)->paused, 0);
    return 0;
}

static int s_shutdown(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    atomic_store(&((struct scripted *)priv)->shutdown_requested, 1);
    return 0;
}

static int s_kill(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    atomic_store(&((struct scripted *)priv)->killed, 1);
    return 0;
}

static int s_console_write(vmcore_domain *d, void *priv, const void *data, size_t len,
                           struct vmcore_err *err)
{
    domain_post_console(d, VMCORE_STREAM_CONSOLE, data, len); /* echo */
    return 0;
}

static void s_destroy(vmcore_domain *d, void *priv)
{
    struct scripted *s = priv;
    if (s->thread_started)
        pthread_join(s->thread, NULL);
    free(s);
}

static const struct backend_ops scripted_ops = {
    .name = "scripted", .probe = s_probe, .create = s_create, .start = s_start,
    .pause = s_pause, .resume = s_resume, .shutdown = s_shutdown, .kill = s_kill,
    .console_write = s_console_write, .destroy = s_destroy,
};

/* ---------------------------------------------------------------------------- */

struct recorder {
    char log[2048];
    int done, closed, cb_status, cb_calls;
    vmcore_exit exit;
};

static void rec_append(struct recorder *r, const char *s)
{
    size_t n = strlen(r->log);
    snprintf(r->log + n, sizeof r->log - n, "%s%s", n ? " " : "", s);
}

static void on_event(const vmcore_event *ev, void *arg)
{
    struct recorder *r = arg;
    char buf[128];
    switch (ev->type) {
    case VMCORE_EVENT_STATE:
        rec_append(r, vmcore_state_name(ev->u.state.new_state));
        if (ev->u.state.new_state >= VMCORE_STATE_STOPPED)
            r->done = 1;
        break;
    case VMCORE_EVENT_CONSOLE:
        snprintf(buf, sizeof buf, "console:%.*s", (int)ev->u.console.len - 1,
                 ev->u.console.data);
        rec_append(r, buf);
        break;
    case VMCORE_EVENT_EXIT:
        r->exit = ev->u.exit;
        snprintf(buf, sizeof buf, "exit:%d", vmcore_exit_code(&ev->u.exit));
        rec_append(r, buf);
        break;
    default:
        rec_append(r, "error");
    }
}

static void on_done(vmcore_domain *d, int status, void *arg)
{
    struct recorder *r = arg;
    r->cb_status = status;
    r->cb_calls++;
}

static void on_closed(vmcore_domain *d, void *arg) { ((struct recorder *)arg)->closed = 1; }

static vmcore_domain *make(vmcore_ctx *ctx, enum script script, struct recorder *r)
{
    next_script = script;
    json_t *cfg = json_loads("{\"backend\":\"container\",\"rootfs\":\"/\","
                             "\"process\":{\"args\":[\"/bin/true\"]}}", 0, NULL);
    vmcore_domain *d = NULL;
    assert_int_equal(domain_create_with_ops(&d, ctx, cfg, NULL, &scripted_ops), 0);
    json_decref(cfg);
    assert_int_equal(vmcore_domain_state(d), VMCORE_STATE_CREATED);
    assert_true(vmcore_domain_subscribe(d, VMCORE_EVENT_ALL, on_event, r) > 0);
    return d;
}

static void close_and_wait(vmcore_ctx *ctx, vmcore_domain *d, struct recorder *r)
{
    vmcore_domain_close(d, on_closed, r);
    assert_true(vt_run_until(ctx, &r->closed, 10000));
}

static void test_run_to_exit(void **state)
{
    vmcore_ctx *ctx;
    struct recorder r = { 0 };
    int threads = vt_count_threads();
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    vmcore_domain *d = make(ctx, RUN_AND_EXIT, &r);
    assert_int_equal(vmcore_domain_start(d, on_done, &r), 0);
    assert_int_equal(r.cb_calls, 0); /* never called inside the API call */
    assert_true(vt_run_until(ctx, &r.done, 10000));
    assert_string_equal(r.log, "starting running console:hello exit:42 stopped");
    assert_int_equal(r.cb_calls, 1);
    assert_int_equal(r.cb_status, 0);
    vmcore_exit ex;
    assert_int_equal(vmcore_domain_exit(d, &ex), 0);
    assert_int_equal(ex.kind, VMCORE_EXIT_STATUS);
    assert_int_equal(ex.status, 42);
    assert_string_equal(ex.reason, "debug-exit");
    assert_int_equal(vmcore_domain_state(d), VMCORE_STATE_STOPPED);
    /* Operations on an ended domain are state errors with a message. */
    assert_int_equal(vmcore_domain_start(d, NULL, NULL), VMCORE_ESTATE);
    assert_non_null(strstr(vmcore_domain_last_error(d), "stopped"));
    assert_int_equal(vmcore_domain_kill(d, NULL, NULL), VMCORE_ESTATE);
    assert_int_equal(vmcore_domain_console_write(d, "x", 1), VMCORE_ESTATE);
    close_and_wait(ctx, d, &r);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
    assert_int_equal(vt_count_threads(), threads);
}

static void test_start_twice(void **state)
{
    vmcore_ctx *ctx;
    struct recorder r = { 0 };
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    vmcore_domain *d = make(ctx, RUN_UNTIL_KILLED, &r);
    assert_int_equal(vmcore_domain_start(d, NULL, NULL), 0);
    assert_int_equal(vmcore_domain_start(d, NULL, NULL), VMCORE_ESTATE);
    assert_non_null(strstr(vmcore_domain_last_error(d), "not created"));
    assert_int_equal(vmcore_domain_kill(d, on_done, &r), 0);
    assert_true(vt_run_until(ctx, &r.done, 10000));
    assert_int_equal(r.cb_calls, 1);
    assert_int_equal(r.cb_status, 0);
    assert_int_equal(r.exit.kind, VMCORE_EXIT_SIGNAL);
    assert_int_equal(vmcore_exit_code(&r.exit), 137);
    close_and_wait(ctx, d, &r);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
}

static void test_pause_resume(void **state)
{
    vmcore_ctx *ctx;
    struct recorder r = { 0 };
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    vmcore_domain *d = make(ctx, RUN_UNTIL_KILLED, &r);
    assert_int_equal(vmcore_domain_pause(d, NULL, NULL), VMCORE_ESTATE);
    assert_int_equal(vmcore_domain_resume(d, NULL, NULL), VMCORE_ESTATE);
    assert_int_equal(vmcore_domain_start(d, NULL, NULL), 0);
    assert_int_equal(vmcore_domain_resume(d, NULL, NULL), VMCORE_ESTATE);
    assert_int_equal(vmcore_domain_pause(d, on_done, &r), 0);
    assert_int_equal(vmcore_domain_state(d), VMCORE_STATE_PAUSED);
    assert_int_equal(vmcore_domain_pause(d, NULL, NULL), VMCORE_ESTATE);
    assert_int_equal(vmcore_domain_console_write(d, "in\n", 3), 0);
    assert_int_equal(vmcore_domain_resume(d, on_done, &r), 0);
    assert_int_equal(vmcore_domain_state(d), VMCORE_STATE_RUNNING);
    assert_int_equal(vmcore_domain_shutdown(d, 5000, on_done, &r), 0);
    assert_true(vt_run_until(ctx, &r.done, 10000));
    assert_int_equal(r.cb_calls, 3);
    assert_int_equal(r.cb_status, 0);
    assert_non_null(strstr(r.log, "starting running"));
    assert_non_null(strstr(r.log, "paused"));
    assert_non_null(strstr(r.log, "console:in"));
    assert_non_null(strstr(r.log, "stopping"));
    assert_non_null(strstr(r.log, "exit:0 stopped"));
    close_and_wait(ctx, d, &r);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
}

static void test_shutdown_timeout_kills(void **state)
{
    vmcore_ctx *ctx;
    struct recorder r = { 0 };
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    vmcore_domain *d = make(ctx, IGNORE_SHUTDOWN, &r);
    assert_int_equal(vmcore_domain_start(d, NULL, NULL), 0);
    assert_int_equal(vmcore_domain_shutdown(d, 50, on_done, &r), 0);
    assert_true(vt_run_until(ctx, &r.done, 10000));
    assert_int_equal(r.cb_calls, 1);
    assert_int_equal(r.cb_status, VMCORE_ETIMEDOUT);
    assert_int_equal(r.exit.signal, 9);
    close_and_wait(ctx, d, &r);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
}

static void test_crash(void **state)
{
    vmcore_ctx *ctx;
    struct recorder r = { 0 };
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    vmcore_domain *d = make(ctx, CRASH, &r);
    assert_int_equal(vmcore_domain_start(d, NULL, NULL), 0);
    assert_true(vt_run_until(ctx, &r.done, 10000));
    assert_int_equal(vmcore_domain_state(d), VMCORE_STATE_CRASHED);
    assert_int_equal(vmcore_exit_code(&r.exit), 125);
    assert_string_equal(r.exit.reason, "triple fault");
    assert_non_null(strstr(r.log, "crashed"));
    close_and_wait(ctx, d, &r);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
}

static void test_start_failure(void **state)
{
    vmcore_ctx *ctx;
    struct recorder r = { 0 };
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    vmcore_domain *d = make(ctx, FAIL_START, &r);
    assert_int_equal(vmcore_domain_start(d, on_done, &r), VMCORE_ESYS);
    assert_string_equal(vmcore_domain_last_error(d), "scripted start failure");
    assert_int_equal(vmcore_domain_state(d), VMCORE_STATE_STOPPED);
    assert_true(vt_run_until(ctx, &r.done, 10000));
    assert_int_equal(r.cb_calls, 0);
    close_and_wait(ctx, d, &r);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
}

static void test_create_failure_leaves_nothing(void **state)
{
    vmcore_ctx *ctx;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    create_should_fail = 1;
    json_t *cfg = json_loads("{\"backend\":\"container\",\"rootfs\":\"/\","
                             "\"process\":{\"args\":[\"/bin/true\"]}}", 0, NULL);
    vmcore_domain *d = NULL;
    assert_int_equal(domain_create_with_ops(&d, ctx, cfg, NULL, &scripted_ops), VMCORE_EIMAGE);
    create_should_fail = 0;
    json_decref(cfg);
    assert_null(d);
    assert_string_equal(vmcore_ctx_last_error(ctx), "boot.kernel: scripted failure");
    assert_int_equal(vmcore_ctx_free(ctx), 0); /* no domain was counted */
}

static void test_close_while_running(void **state)
{
    vmcore_ctx *ctx;
    struct recorder r = { 0 };
    int threads = vt_count_threads();
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    vmcore_domain *d = make(ctx, RUN_UNTIL_KILLED, &r);
    assert_int_equal(vmcore_domain_start(d, on_done, &r), 0);
    /* Close straight away, during start: the start callback still comes, then the close. */
    assert_int_equal(vmcore_ctx_free(ctx), VMCORE_EBUSY);
    close_and_wait(ctx, d, &r);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
    assert_int_equal(vt_count_threads(), threads);
}

static int unsub_id;
static void unsub_self(const vmcore_event *ev, void *arg)
{
    (*(int *)arg)++;
    vmcore_domain_unsubscribe(ev->domain, unsub_id);
}

static void test_unsubscribe_in_callback(void **state)
{
    vmcore_ctx *ctx;
    struct recorder r = { 0 };
    int calls = 0;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    vmcore_domain *d = make(ctx, RUN_AND_EXIT, &r);
    unsub_id = vmcore_domain_subscribe(d, VMCORE_EVENT_ALL, unsub_self, &calls);
    assert_true(unsub_id > 0);
    assert_int_equal(vmcore_domain_subscribe(d, 0, on_event, &r), VMCORE_EINVAL);
    assert_int_equal(vmcore_domain_subscribe(d, VMCORE_EVENT_ALL, NULL, &r), VMCORE_EINVAL);
    assert_int_equal(vmcore_domain_start(d, NULL, NULL), 0);
    assert_true(vt_run_until(ctx, &r.done, 10000));
    assert_int_equal(calls, 1);
    assert_int_equal(vmcore_domain_unsubscribe(d, unsub_id), VMCORE_ENOENT);
    close_and_wait(ctx, d, &r);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
}

/* A caller's loop, driven as a foreign loop would: poll the backend fd, run NOWAIT. */
static void test_foreign_loop(void **state)
{
    uv_loop_t loop;
    vmcore_ctx *ctx;
    struct recorder r = { 0 };
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(vmcore_ctx_new(&ctx, &loop), 0);
    assert_ptr_equal(vmcore_ctx_loop(ctx), &loop);
    int fd = vmcore_ctx_backend_fd(ctx);
    assert_true(fd >= 0);
    vmcore_domain *d = make(ctx, RUN_AND_EXIT, &r);
    assert_int_equal(vmcore_domain_start(d, NULL, NULL), 0);
    for (int i = 0; i < 10000 && !r.done; i++) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int timeout = vmcore_ctx_backend_timeout(ctx);
        poll(&p, 1, timeout < 0 || timeout > 10 ? 10 : timeout);
        vmcore_ctx_run(ctx, VMCORE_RUN_NOWAIT);
    }
    assert_true(r.done);
    vmcore_domain_close(d, on_closed, &r);
    while (!r.closed)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
    uv_run(&loop, UV_RUN_DEFAULT); /* runs the context's close callback */
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* vmcore_domain_hold_console(): while held, the console output and the exit behind it
 * wait; released, they arrive in order; close releases a hold by itself. */
static void test_hold_console(void **state)
{
    vmcore_ctx *ctx;
    struct recorder r = { 0 };
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    assert_int_equal(vmcore_domain_hold_console(NULL, 1), VMCORE_EINVAL);
    vmcore_domain *d = make(ctx, RUN_AND_EXIT, &r);
    assert_int_equal(vmcore_domain_hold_console(d, 1), 0);
    assert_int_equal(vmcore_domain_hold_console(d, 1), 0); /* twice is once */
    assert_int_equal(vmcore_domain_start(d, NULL, NULL), 0);
    struct scripted *s = d->priv;
    while (!atomic_load(&s->exit_posted))
        usleep(1000);
    for (int i = 0; i < 10; i++)
        vmcore_ctx_run(ctx, VMCORE_RUN_NOWAIT);
    assert_string_equal(r.log, "starting running");
    assert_int_equal(vmcore_domain_hold_console(d, 0), 0);
    assert_string_equal(r.log, "starting running"); /* never inside the call */
    assert_true(vt_run_until(ctx, &r.done, 10000));
    assert_string_equal(r.log, "starting running console:hello exit:42 stopped");
    close_and_wait(ctx, d, &r);

    /* closing a held domain: the held exit is what close waits for */
    struct recorder r2 = { 0 };
    d = make(ctx, RUN_AND_EXIT, &r2);
    assert_int_equal(vmcore_domain_hold_console(d, 1), 0);
    assert_int_equal(vmcore_domain_start(d, NULL, NULL), 0);
    s = d->priv;
    while (!atomic_load(&s->exit_posted))
        usleep(1000);
    vmcore_domain_close(d, on_closed, &r2);
    assert_int_equal(vmcore_domain_hold_console(d, 0), VMCORE_ESTATE);
    assert_true(vt_run_until(ctx, &r2.closed, 10000));
    assert_int_equal(vmcore_ctx_free(ctx), 0);
}

/* Out of memory everywhere once the domain is running: every report the core would
 * allocate is lost, but the exit (preallocated with the domain) still arrives, so close
 * completes instead of waiting forever. */
static void *no_memory(size_t nmemb, size_t size)
{
    (void)nmemb;
    (void)size;
    return NULL;
}

static void test_exit_survives_out_of_memory(void **state)
{
    vmcore_ctx *ctx;
    struct recorder r = { 0 };
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    vmcore_domain *d = make(ctx, RUN_UNTIL_KILLED, &r);
    assert_int_equal(vmcore_domain_start(d, NULL, NULL), 0);
    domain_calloc = no_memory;
    vmcore_domain_close(d, on_closed, &r); /* kills: the worker posts its exit */
    bool closed = vt_run_until(ctx, &r.closed, 10000);
    domain_calloc = calloc;
    assert_true(closed);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
}

static void test_strings(void **state)
{
    assert_string_equal(vmcore_state_name(VMCORE_STATE_PAUSED), "paused");
    assert_string_equal(vmcore_state_name((vmcore_state)99), "unknown");
    assert_string_equal(vmcore_error_name(VMCORE_ECONFIG), "VMCORE_ECONFIG");
    assert_string_equal(vmcore_strerror(VMCORE_EUNAVAIL), "backend unavailable on this host");
    assert_string_equal(vmcore_strerror(-999), "unknown error");
    assert_int_equal(vmcore_version(), VMCORE_VERSION_NUMBER);
    assert_string_equal(vmcore_version_string(), "0.1.0");
    assert_int_equal(vmcore_exit_code(NULL), 125);
    const char *const *names = vmcore_backend_names();
    assert_string_equal(names[0], "kvm");
    assert_string_equal(names[2], "container");
    assert_null(names[3]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_to_exit),
        cmocka_unit_test(test_start_twice),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_shutdown_timeout_kills),
        cmocka_unit_test(test_crash),
        cmocka_unit_test(test_start_failure),
        cmocka_unit_test(test_create_failure_leaves_nothing),
        cmocka_unit_test(test_close_while_running),
        cmocka_unit_test(test_unsubscribe_in_callback),
        cmocka_unit_test(test_foreign_loop),
        cmocka_unit_test(test_hold_console),
        cmocka_unit_test(test_exit_survives_out_of_memory),
        cmocka_unit_test(test_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
