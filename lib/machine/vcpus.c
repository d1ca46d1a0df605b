/* One mechanism for the vCPU threads of every VM backend (vcpus.h): requests are atomics a
 * vCPU reads before each entry into the guest, a kick makes it read them soon, and a
 * mutex and condition variable carry parking, the pause's wait for it, and the end. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/backend.h"
#include "machine.h"
#include "vcpus.h"

static uint64_t clock_ns(clockid_t clk)
{
    struct timespec ts;
    if (clock_gettime(clk, &ts) != 0)
        return 0; /* the clock is gone: the thread ended between the check and the read */
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Kick every live vCPU but the caller's, then the threads waiting for console room (not in
 * the guest) look at the flags again. Caller holds set->lock; the core's console lock
 * nests inside it and is never held while taking it. */
static void kick_all(struct vcpus *set)
{
    for (unsigned i = 0; i < set->n; i++) {
        struct vcpus_slot *s = &set->slot[i];
        if (s->started && !s->done && !pthread_equal(s->thread, pthread_self()))
            set->ops->kick(set->opaque, i, s->thread);
    }
    if (set->domain)
        domain_console_wake(set->domain);
}

/* Set a request flag and make every vCPU see it: kicked out of the guest, woken if parked
 * (the flag is stored before the kick, so a vCPU either sees it or is kicked after). */
static void request(struct vcpus *set, atomic_bool *flag, bool value)
{
    pthread_mutex_lock(&set->lock);
    atomic_store(flag, value);
    if (value)
        kick_all(set);
    pthread_cond_broadcast(&set->cond);
    pthread_mutex_unlock(&set->lock);
}

static void post_exit(struct vcpus *set)
{
    if (set->ops->post_exit)
        set->ops->post_exit(set->opaque, set->exit_kind, set->exit_status, set->exit_reason);
    else if (set->domain)
        machine_post_exit(set->domain, set->exit_kind, set->exit_status, set->exit_reason);
}

/* Whether the recorded exit is to be posted now (caller holds set->lock): once, when there
 * is a record and no live thread. */
static bool take_post(struct vcpus *set)
{
    if (!set->have_exit || set->posted || set->nalive)
        return false;
    set->posted = true;
    return true;
}

int vcpus_init(struct vcpus *set, unsigned n, const struct vcpus_ops *ops, void *opaque,
               vmcore_domain *domain, struct vmcore_err *err)
{
    memset(set, 0, sizeof *set);
    if (n == 0 || !ops || !ops->run || !ops->kick)
        return err_set(err, VMCORE_EINVAL, "vcpus: %s", n ? "no thread body or kick"
                                                          : "no vCPU");
    set->slot = calloc(n, sizeof *set->slot);
    if (!set->slot)
        return err_set(err, VMCORE_ENOMEM, "vcpus: out of memory for %u vCPUs", n);
    if (pthread_mutex_init(&set->lock, NULL)) {
        free(set->slot);
        memset(set, 0, sizeof *set);
        return err_set(err, VMCORE_ENOMEM, "vcpus: cannot create a mutex");
    }
    if (pthread_cond_init(&set->cond, NULL)) {
        pthread_mutex_destroy(&set->lock);
        free(set->slot);
        memset(set, 0, sizeof *set);
        return err_set(err, VMCORE_ENOMEM, "vcpus: cannot create a condition variable");
    }
    set->ops = ops;
    set->opaque = opaque;
    set->domain = domain;
    set->n = n;
    atomic_init(&set->stop_req, false);
    atomic_init(&set->pause_req, false);
    for (unsigned i = 0; i < n; i++)
        set->slot[i] = (struct vcpus_slot){ .set = set, .idx = i };
    return 0;
}

static void *vcpu_thread(void *arg)
{
    struct vcpus_slot *s = arg;
    struct vcpus *set = s->set;
    set->ops->run(set->opaque, s->idx);
    /* Whatever ended this loop, the machine is over for every vCPU. */
    pthread_mutex_lock(&set->lock);
    atomic_store(&set->stop_req, true);
    kick_all(set);
    s->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    s->done = true;
    set->nalive--;
    bool post = take_post(set);
    pthread_cond_broadcast(&set->cond);
    pthread_mutex_unlock(&set->lock);
    if (post)
        post_exit(set);
    return NULL;
}

static void join_started(struct vcpus *set)
{
    for (unsigned i = 0; i < set->n; i++) {
        struct vcpus_slot *s = &set->slot[i];
        if (s->started && !s->joined) {
            pthread_join(s->thread, NULL);
            s->joined = true;
        }
    }
}

int vcpus_start(struct vcpus *set, struct vmcore_err *err)
{
    int rc = 0;
    /* vCPU threads start with every signal blocked: the application's signals go to its
     * own threads, and a backend opens only the one it kicks with. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    /* Under the lock, so that no thread reaches its end (or a kick) before every
     * pthread_t it may look at is written. */
    pthread_mutex_lock(&set->lock);
    for (unsigned i = 0; i < set->n; i++) {
        struct vcpus_slot *s = &set->slot[i];
        int e = pthread_create(&s->thread, NULL, vcpu_thread, s);
        if (e) {
            rc = err_sys(err, VMCORE_ESYS, e, "cannot start the thread of vCPU %u", i);
            break;
        }
        s->started = true;
        set->nalive++;
    }
    if (rc) {
        /* Stop the threads that did start, without an exit: start failed. */
        atomic_store(&set->stop_req, true);
        kick_all(set);
        pthread_cond_broadcast(&set->cond);
    }
    pthread_mutex_unlock(&set->lock);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        join_started(set);
    return rc;
}

static void park(struct vcpus *set)
{
    pthread_mutex_lock(&set->lock);
    set->nparked++;
    pthread_cond_broadcast(&set->cond);
    while (atomic_load(&set->pause_req) && !atomic_load(&set->stop_req))
        pthread_cond_wait(&set->cond, &set->lock);
    set->nparked--;
    pthread_mutex_unlock(&set->lock);
}

enum vcpus_next vcpus_next(struct vcpus *set, unsigned idx)
{
    if (atomic_load(&set->stop_req))
        return VCPUS_STOP;
    if (!atomic_load(&set->pause_req))
        return VCPUS_RUN;
    if (set->ops->parking)
        set->ops->parking(set->opaque, idx);
    park(set);
    return VCPUS_PARKED;
}

bool vcpus_pending(const struct vcpus *set)
{
    return atomic_load(&set->stop_req) || atomic_load(&set->pause_req);
}

bool vcpus_stopping(const struct vcpus *set)
{
    return atomic_load(&set->stop_req);
}

bool vcpus_console_stop(void *set)
{
    return vcpus_pending(set);
}

void vcpus_pause(struct vcpus *set)
{
    pthread_mutex_lock(&set->lock);
    atomic_store(&set->pause_req, true);
    kick_all(set);
    pthread_cond_broadcast(&set->cond);
    while (set->nparked < set->nalive && !atomic_load(&set->stop_req))
        pthread_cond_wait(&set->cond, &set->lock);
    pthread_mutex_unlock(&set->lock);
}

void vcpus_resume(struct vcpus *set)
{
    request(set, &set->pause_req, false);
}

void vcpus_request_stop(struct vcpus *set)
{
    request(set, &set->stop_req, true);
}

void vcpus_record_exit(void *opaque, vmcore_exit_kind kind, int status, const char *reason)
{
    struct vcpus *set = opaque;
    pthread_mutex_lock(&set->lock);
    if (!set->have_exit) {
        set->have_exit = true;
        set->exit_kind = kind;
        set->exit_status = status;
        snprintf(set->exit_reason, sizeof set->exit_reason, "%s", reason ? reason : "");
    }
    /* Running vCPUs see stop_req at their next look: kick them out of the guest, and wake
     * those parked by a pause. */
    atomic_store(&set->stop_req, true);
    kick_all(set);
    pthread_cond_broadcast(&set->cond);
    bool post = take_post(set);
    pthread_mutex_unlock(&set->lock);
    if (post)
        post_exit(set);
}

uint64_t vcpus_cpu_ns(struct vcpus *set)
{
    uint64_t ns = 0;
    pthread_mutex_lock(&set->lock);
    for (unsigned i = 0; i < set->n; i++) {
        struct vcpus_slot *s = &set->slot[i];
        clockid_t clk;
        if (!s->started)
            continue;
        if (s->done)
            ns += s->cpu_ns;
        else if (pthread_getcpuclockid(s->thread, &clk) == 0)
            ns += clock_ns(clk);
    }
    pthread_mutex_unlock(&set->lock);
    return ns;
}

void vcpus_destroy(struct vcpus *set)
{
    if (!set->slot)
        return;
    vcpus_request_stop(set);
    join_started(set);
    pthread_cond_destroy(&set->cond);
    pthread_mutex_destroy(&set->lock);
    free(set->slot);
    memset(set, 0, sizeof *set);
}
