/* A copy of libvmcore with one extra export, vmcore_pyshim_domain_new(), that creates a
 * domain run by a scripted backend. The Python binding tests use it to drive every
 * lifecycle path (events from another thread, shutdown, kill, crash, failures) on any
 * host, without root or /dev/kvm. The domain's "name" selects the script:
 *
 *   exit-N           print "hello\n" (stdout) and "oops\n" (stderr), exit with status N
 *   crash            print "hello\n", crash with "triple fault"
 *   run              run until shut down (exit 0) or killed (signal 9); echo console input,
 *                    an empty write (end of input) ends it with status 7
 *   ignore-shutdown  like run, but only a kill ends it
 *   fail-start       start fails with VMCORE_ESYS
 *   error            post an asynchronous error, then exit 0
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/internal.h"

struct scripted {
    vmcore_domain *d;
    char script[64];
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool shutdown, killed, eof;
};

static void *worker(void *arg)
{
    struct scripted *s = arg;
    const char *sc = s->script;
    if (!strncmp(sc, "exit-", 5)) {
        domain_post_console(s->d, VMCORE_STREAM_STDOUT, "hello\n", 6);
        domain_post_console(s->d, VMCORE_STREAM_STDERR, "oops\n", 5);
        domain_post_exit(s->d, VMCORE_EXIT_STATUS, atoi(sc + 5), 0, "exited");
        return NULL;
    }
    if (!strcmp(sc, "crash")) {
        domain_post_console(s->d, VMCORE_STREAM_CONSOLE, "hello\n", 6);
        domain_post_exit(s->d, VMCORE_EXIT_CRASH, 0, 0, "triple fault");
        return NULL;
    }
    if (!strcmp(sc, "error")) {
        domain_post_error(s->d, VMCORE_EIO, "scripted device failure");
        domain_post_exit(s->d, VMCORE_EXIT_STATUS, 0, 0, "exited");
        return NULL;
    }
    bool obey_shutdown = strcmp(sc, "ignore-shutdown") != 0;
    pthread_mutex_lock(&s->lock);
    while (!s->killed && !s->eof && !(obey_shutdown && s->shutdown))
        pthread_cond_wait(&s->cond, &s->lock);
    bool killed = s->killed, eof = s->eof;
    pthread_mutex_unlock(&s->lock);
    if (killed)
        domain_post_exit(s->d, VMCORE_EXIT_SIGNAL, 0, 9, "killed");
    else if (eof)
        domain_post_exit(s->d, VMCORE_EXIT_STATUS, 7, 0, "end of input");
    else
        domain_post_exit(s->d, VMCORE_EXIT_STATUS, 0, 0, "shut down");
    return NULL;
}

static int s_probe(vmcore_probe_result *out)
{
    snprintf(out->backend, sizeof out->backend, "scripted");
    out->available = 1;
    return 0;
}

static int s_create(vmcore_domain *d, const struct vmcore_config *cfg, void **priv,
                    struct vmcore_err *err)
{
    struct scripted *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    s->d = d;
    snprintf(s->script, sizeof s->script, "%s", cfg->name);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    *priv = s;
    return 0;
}

static int s_start(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    struct scripted *s = priv;
    if (!strcmp(s->script, "fail-start"))
        return err_set(err, VMCORE_ESYS, "scripted start failure");
    if (pthread_create(&s->thread, NULL, worker, s) != 0)
        return err_set(err, VMCORE_ESYS, "pthread_create failed");
    s->thread_started = true;
    return 0;
}

static int s_flag(void *priv, bool *flag)
{
    struct scripted *s = priv;
    pthread_mutex_lock(&s->lock);
    *flag = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static int s_pause(vmcore_domain *d, void *priv, struct vmcore_err *err) { return 0; }
static int s_resume(vmcore_domain *d, void *priv, struct vmcore_err *err) { return 0; }

static int s_shutdown(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    return s_flag(priv, &((struct scripted *)priv)->shutdown);
}

static int s_kill(vmcore_domain *d, void *priv, struct vmcore_err *err)
{
    return s_flag(priv, &((struct scripted *)priv)->killed);
}

static int s_console_write(vmcore_domain *d, void *priv, const void *data, size_t len,
                           struct vmcore_err *err)
{
    if (len == 0)
        return s_flag(priv, &((struct scripted *)priv)->eof);
    domain_post_console(d, VMCORE_STREAM_STDOUT, data, len); /* echo */
    return 0;
}

static int s_stats(vmcore_domain *d, void *priv, vmcore_stats *out, struct vmcore_err *err)
{
    out->pids = 1;
    out->exits = 3;
    return 0;
}

static void s_destroy(vmcore_domain *d, void *priv)
{
    struct scripted *s = priv;
    if (s->thread_started) {
        s_flag(s, &s->killed);
        pthread_join(s->thread, NULL);
    }
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static const struct backend_ops scripted_ops = {
    .name = "scripted", .probe = s_probe, .create = s_create, .start = s_start,
    .pause = s_pause, .resume = s_resume, .shutdown = s_shutdown, .kill = s_kill,
    .stats = s_stats, .console_write = s_console_write, .destroy = s_destroy,
};

VMCORE_API int vmcore_pyshim_domain_new(vmcore_domain **out, vmcore_ctx *ctx, const char *json);

VMCORE_API int vmcore_pyshim_domain_new(vmcore_domain **out, vmcore_ctx *ctx, const char *json)
{
    json_error_t je;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return VMCORE_EPARSE;
    int rc = domain_create_with_ops(out, ctx, root, NULL, &scripted_ops);
    json_decref(root);
    return rc;
}
