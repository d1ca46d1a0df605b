/* The vCPU threads of one VM, whatever runs them (kvm, emu): starting them, pausing and
 * resuming them, stopping them, recording how the machine ended and posting that once no
 * guest code runs any more, and their CPU time. A backend supplies the thread body and a
 * way to kick one vCPU out of the guest; everything else is here, once, for N vCPUs.
 *
 * Threads: vcpus_init/start/pause/resume/cpu_ns/destroy are called on the loop thread;
 * vcpus_next/vcpus_pending/vcpus_stopping/vcpus_console_stop on a vCPU thread;
 * vcpus_record_exit and vcpus_request_stop on any thread. */
#ifndef VMCORE_MACHINE_VCPUS_H
#define VMCORE_MACHINE_VCPUS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmcore/domain.h"

#include "core/err.h"

struct vcpus_ops {
    /* The vCPU thread body for vCPU @idx. It loops on vcpus_next() and returns when that
     * says VCPUS_STOP (or when the machine has ended for another reason): whatever ends
     * one vCPU's loop ends the machine for all of them. */
    void (*run)(void *opaque, unsigned idx);
    /* Make vCPU @idx (its thread is @thread, never the caller) look at the requests soon:
     * out of KVM_RUN, out of a cpu_run() slice, out of a halt wait. Called with the set's
     * lock held: it may take the backend's own locks, which must never be held while
     * calling into this module other than through vcpus_pending/vcpus_stopping. */
    void (*kick)(void *opaque, unsigned idx, pthread_t thread);
    /* Optional, on vCPU @idx's thread just before it parks for a pause (flush the console
     * so that what the guest wrote is out while it is paused). */
    void (*parking)(void *opaque, unsigned idx);
    /* Optional: post the machine's end. NULL: machine_post_exit() to the domain. */
    void (*post_exit)(void *opaque, vmcore_exit_kind kind, int status, const char *reason);
};

struct vcpus_slot {
    struct vcpus *set;
    unsigned idx;
    pthread_t thread;
    bool started;       /* under lock */
    bool done;          /* the body returned (under lock) */
    bool joined;        /* by the loop thread, which alone reads it */
    uint64_t cpu_ns;    /* the thread's CPU time, final once done */
};

struct vcpus {
    const struct vcpus_ops *ops;
    void *opaque;
    vmcore_domain *domain;  /* may be NULL: no console waits to wake, no default post */
    unsigned n;
    struct vcpus_slot *slot;

    pthread_mutex_t lock;
    pthread_cond_t cond;    /* parked vCPUs, and a pause waiting for them */
    atomic_bool stop_req;   /* every vCPU leaves its loop */
    atomic_bool pause_req;  /* every vCPU parks until resumed */
    unsigned nparked;       /* vCPUs parked for a pause (under lock) */
    unsigned nalive;        /* started threads whose body has not returned (under lock) */

    /* The machine's end as recorded, posted by whoever sees both the record and no live
     * thread: the exit event then means no guest code runs any more. */
    bool have_exit, posted;
    vmcore_exit_kind exit_kind;
    int exit_status;
    char exit_reason[200];
};

enum vcpus_next {
    VCPUS_RUN,      /* run the guest */
    VCPUS_PARKED,   /* parked for a pause and released: ask again */
    VCPUS_STOP,     /* leave the loop */
};

/* Prepare a set of @n vCPUs (1..), none started. @domain may be NULL (tests). 0, or
 * VMCORE_ENOMEM / VMCORE_EINVAL with @err set. After a failure the set is as zeroed. */
int vcpus_init(struct vcpus *set, unsigned n, const struct vcpus_ops *ops, void *opaque,
               vmcore_domain *domain, struct vmcore_err *err);
/* Start one thread per vCPU, each with every signal blocked (a backend opens the one it
 * kicks with). If one cannot be started, the started ones are stopped and joined without
 * an exit being posted (start failed), and VMCORE_ESYS names the vCPU. */
int vcpus_start(struct vcpus *set, struct vmcore_err *err);
/* In vCPU @idx's loop, before entering the guest: whether to run, park (done inside,
 * after ops->parking), or stop. */
enum vcpus_next vcpus_next(struct vcpus *set, unsigned idx);
/* Whether a stop or a pause is requested (only reads flags: callable under any lock). */
bool vcpus_pending(const struct vcpus *set);
/* Whether a stop is requested (only reads flags). */
bool vcpus_stopping(const struct vcpus *set);
/* domain_console_wait()'s stop predicate, @set being the struct vcpus: a pause or a stop
 * ends the wait for console room. */
bool vcpus_console_stop(void *set);
/* Pause: every live vCPU parks; returns once all have (or the machine stopped). */
void vcpus_pause(struct vcpus *set);
void vcpus_resume(struct vcpus *set);
/* Every vCPU leaves its loop; no exit is recorded. Idempotent. */
void vcpus_request_stop(struct vcpus *set);
/* The machine ended (a machine_event_sink's exit: @set is the struct vcpus). Only the
 * first record counts. Stops every vCPU; the exit is posted at once if no vCPU thread is
 * live, else by the last one to finish. */
void vcpus_record_exit(void *set, vmcore_exit_kind kind, int status, const char *reason);
/* CPU time of all vCPU threads, live and finished, in nanoseconds. */
uint64_t vcpus_cpu_ns(struct vcpus *set);
/* Stop and join every thread and release the set. Safe on a zeroed set or after a failed
 * vcpus_init(). */
void vcpus_destroy(struct vcpus *set);

#endif
