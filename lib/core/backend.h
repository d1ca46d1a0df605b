/* The contract between the core (lib/core) and a backend (lib/backend/<name>).
 *
 * Threading: every op is called on the loop thread. A backend reports what happens
 * later (output, the end of the guest or process, asynchronous failures) with the
 * domain_post_*() functions, which are safe from any thread: the core queues the
 * report and delivers it as an event on the loop thread.
 *
 * Lifecycle as the core drives it:
 *   create  -> (start -> [pause <-> resume] -> shutdown/kill -> domain_post_exit) -> destroy
 * destroy is called exactly once, from vmcore_domain_close(), after the backend has posted
 * its exit (or if start was never called / failed). It must release everything: join
 * threads, reap children, remove cgroups, mounts and interfaces, close fds. */
#ifndef VMCORE_CORE_BACKEND_H
#define VMCORE_CORE_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "vmcore/detach.h"
#include "vmcore/domain.h"
#include "vmcore/probe.h"

#include "config.h"
#include "err.h"
#include "snapshot.h"

struct backend_ops {
    const char *name;
    /* Fill @out (backend name, flags, reason/details). Cheap, no side effects left behind.
     * Return 0 when usable, VMCORE_EUNAVAIL when not. */
    int (*probe)(vmcore_probe_result *out);
    /* Optional: the cheap part of probe, enough to decide whether a domain can be created
     * (probe may measure things, once per process). 0, or VMCORE_EUNAVAIL with the reason
     * in @err. When NULL the core calls probe. */
    int (*usable)(struct vmcore_err *err);
    /* Check the backend-specific parts of @cfg (files exist, images load) and allocate
     * private state. No threads or child processes yet. */
    int (*create)(vmcore_domain *d, const struct vmcore_config *cfg, void **priv,
                  struct vmcore_err *err);
    /* Begin running: spawn vCPU threads or the container's init. Return 0 once the guest
     * runs; on failure undo what it did (destroy will still be called) and return an error. */
    int (*start)(vmcore_domain *d, void *priv, struct vmcore_err *err);
    /* Stop / continue execution. Synchronous: return when it has taken effect.
     * May be NULL (VMCORE_ENOTSUP). */
    int (*pause)(vmcore_domain *d, void *priv, struct vmcore_err *err);
    int (*resume)(vmcore_domain *d, void *priv, struct vmcore_err *err);
    /* Ask for a graceful end (SIGTERM; for VMs this may simply stop the machine).
     * The end itself arrives through domain_post_exit(). The core kills after the timeout. */
    int (*shutdown)(vmcore_domain *d, void *priv, struct vmcore_err *err);
    /* End now. Idempotent. The end arrives through domain_post_exit(). */
    int (*kill)(vmcore_domain *d, void *priv, struct vmcore_err *err);
    /* Fill the fields the backend can measure. */
    int (*stats)(vmcore_domain *d, void *priv, vmcore_stats *out, struct vmcore_err *err);
    /* Console input (serial RX, or stdin; len 0 = close stdin). */
    int (*console_write)(vmcore_domain *d, void *priv, const void *data, size_t len,
                         struct vmcore_err *err);
    /* Containers only (NULL elsewhere): run argv inside; call domain_post_exec_done()
     * with @token when it ends. */
    int (*exec)(vmcore_domain *d, void *priv, const char *const *argv, void *token,
                struct vmcore_err *err);
    /* Optional (NULL: VMCORE_ENOTSUP): the console's window size, @rows x @cols (1..65535,
     * checked by the core). Called in any state from created (remember it for the start)
     * to stopping. */
    int (*console_resize)(vmcore_domain *d, void *priv, unsigned rows, unsigned cols,
                          struct vmcore_err *err);
    /* Optional: the console queue has drained below DOMAIN_CONSOLE_LOW after a
     * domain_post_console() of this domain returned true (full). Loop thread. A backend
     * that stopped reading its output because of that starts again here. */
    void (*console_drained)(vmcore_domain *d, void *priv);
    /* Optional (NULL: vmcore_domain_save() fails with VMCORE_ENOTSUP, "not implemented yet
     * for this backend"): write every section after the core's DOMAIN section to @w
     * (doc/snapshot.md). The core has paused the domain. On failure the core removes the
     * file and resumes the domain if it ran. */
    int (*save)(vmcore_domain *d, void *priv, struct snap_writer *w, struct vmcore_err *err);
    /* Optional: the snapshot is committed and VMCORE_SAVE_STOP was asked: end the machine
     * (the end arrives through domain_post_exit()). NULL: kill. */
    void (*saved_stop)(vmcore_domain *d, void *priv);
    /* Optional (NULL: vmcore_domain_new_restore() fails with VMCORE_ENOTSUP): create as
     * create() does, but with the guest's state from @snap (already checked for bounds and
     * CRCs) instead of booting @cfg's image. The domain's start continues the guest. */
    int (*restore)(vmcore_domain *d, const struct vmcore_config *cfg,
                   const struct snap_file *snap, void **priv, struct vmcore_err *err);
    /* Optional (NULL: VMCORE_ENOTSUP): let a running domain go on without the handle
     * (vmcore_domain_detach()); afterwards destroy must release only this process's
     * resources and leave the workload running. */
    int (*detach)(vmcore_domain *d, void *priv, vmcore_detached *out, struct vmcore_err *err);
    /* Release everything. Called once, on the loop thread, after the exit was posted
     * (or when the domain never ran). */
    void (*destroy)(vmcore_domain *d, void *priv);
};

#define BACKEND_OPS_DECL_(u, l) extern const struct backend_ops backend_##l##_ops;
VMCORE_BACKENDS(BACKEND_OPS_DECL_)
#undef BACKEND_OPS_DECL_

/* The registry (probe.c), built from VMCORE_BACKENDS. */
/* Look up a backend by name ("kvm", "emu", "container"); NULL if unknown ("auto" too). */
const struct backend_ops *backend_find(const char *name);
/* The backend a configuration names; NULL for CONFIG_BACKEND_AUTO. */
const struct backend_ops *backend_of(enum config_backend b);
/* Whether @ops can run a domain here (ops->usable, else ops->probe); 0, or VMCORE_EUNAVAIL
 * with the reason in @err. */
int backend_usable(const struct backend_ops *ops, struct vmcore_err *err);
/* backend_usable(), and for a configuration that boots a Linux kernel (boot.format "linux"
 * or "auto", and the file is a bzImage) also the probe's VMCORE_PROBE_LINUX_BOOT: without
 * it VMCORE_EUNAVAIL says why and names emu. @cfg NULL: backend_usable(). */
int backend_usable_for(const struct backend_ops *ops, const struct vmcore_config *cfg,
                       struct vmcore_err *err);
/* The one "auto" rule: the first VM backend, kvm then emu, usable for @cfg's guest
 * (backend_usable_for; @cfg NULL: any guest). NULL when none is, with each one's reason in
 * @err (VMCORE_EUNAVAIL). */
const struct backend_ops *backend_pick_auto(const struct vmcore_config *cfg,
                                            struct vmcore_err *err);
/* Tests only: a host without /dev/kvm cannot show what a PVM host's kvm probe says. When
 * set, every probe (vmcore_probe, backend_usable*, the auto rule) asks @fn first: it fills
 * @out and returns the probe's result, or BACKEND_PROBE_REAL to leave that backend to its
 * own probe. NULL restores the real probes. Not exported. */
#define BACKEND_PROBE_REAL 1
typedef int (*backend_probe_fn)(const struct backend_ops *ops, vmcore_probe_result *out);
void backend_probe_override(backend_probe_fn fn);

/* --- Reports from backends; callable from any thread --------------------------- */

/* Console output is bounded per domain (back-pressure, never dropped): the bytes posted
 * and not yet delivered on the loop thread may reach DOMAIN_CONSOLE_HIGH (plus what the
 * posters that saw "full" had already posted); the writers then wait until the loop has
 * delivered them down to DOMAIN_CONSOLE_LOW. */
#define DOMAIN_CONSOLE_HIGH (1u << 20)
#define DOMAIN_CONSOLE_LOW (256u << 10)

/* Console bytes (copied). Always queued; returns true when the domain's queue is now full
 * (>= DOMAIN_CONSOLE_HIGH): the poster should stop producing output, a vCPU thread with
 * domain_console_wait(), a loop-thread reader by not reading until
 * backend_ops.console_drained. */
bool domain_post_console(vmcore_domain *d, vmcore_stream stream, const void *data, size_t len);
/* Whether the queue is full (cheap, lock-free: callable after every exit). */
bool domain_console_full(vmcore_domain *d);
/* vCPU threads (never the loop thread): when the queue is full, wait until the loop has
 * drained it below DOMAIN_CONSOLE_LOW or @stop(@arg) returns true. @stop reads the
 * backend's pause/stop requests; whoever sets one of those must call
 * domain_console_wake() afterwards so that a waiting thread looks again. @stop is called
 * with a core lock held: it must only read flags. */
void domain_console_wait(vmcore_domain *d, bool (*stop)(void *arg), void *arg);
/* Wake the threads waiting in domain_console_wait() to check their @stop again. Any
 * thread; takes a core lock, so call it without holding a lock @stop's flags are set under
 * only if that lock is never taken inside @stop (flags are atomics: fine). */
void domain_console_wake(vmcore_domain *d);
/* The domain ended. Only the first report counts. @reason is copied; may be NULL. */
void domain_post_exit(vmcore_domain *d, vmcore_exit_kind kind, int status, int signal,
                      const char *reason);
/* An asynchronous error that does not by itself end the domain. */
void domain_post_error(vmcore_domain *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An exec'd process ended (token from backend_ops.exec). @status 0 or VMCORE_E*. */
void domain_post_exec_done(vmcore_domain *d, void *token, int status, vmcore_exit_kind kind,
                           int code, int signal);

/* --- Accessors for backends (loop thread) --------------------------------------- */
uv_loop_t *domain_loop(vmcore_domain *d);
const struct vmcore_config *domain_config(const vmcore_domain *d);

#endif
