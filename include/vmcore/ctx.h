/**
 * @file ctx.h
 * @brief The context: a libvmcore instance bound to one libuv loop.
 *
 * Every domain belongs to a context, and every callback of a domain runs on
 * the thread that runs the context's loop. A context installs no atexit hooks and
 * reaps no children but its own. The one process-global thing the library does is
 * the kvm backend's: on the first kvm start it installs a handler for SIGRTMAX-3,
 * the signal that kicks vCPU threads out of KVM_RUN (starting a kvm domain fails with
 * #VMCORE_EBUSY if the application already handles that signal; doc/guide.md).
 */
#ifndef VMCORE_CTX_H
#define VMCORE_CTX_H

#include <uv.h>

#include "common.h"

VMCORE_BEGIN_DECLS

/** Opaque context handle. */
typedef struct vmcore_ctx vmcore_ctx;

/** How vmcore_ctx_run() drives the loop (the same meanings as `uv_run_mode`). */
typedef enum vmcore_run_mode {
    VMCORE_RUN_DEFAULT = 0, /**< Run until no domain, timer or request keeps the loop alive. */
    VMCORE_RUN_ONCE = 1,    /**< Block for one round of events. */
    VMCORE_RUN_NOWAIT = 2   /**< Handle what is ready, never block. */
} vmcore_run_mode;

/**
 * Create a context.
 *
 * @param[out] out  Receives the new context.
 * @param loop      The caller's libuv loop, or NULL for a loop the context creates and owns.
 *                  A caller's loop must outlive the context.
 * @return 0, #VMCORE_EINVAL if @p out is NULL, #VMCORE_ENOMEM, or #VMCORE_ESYS if the loop
 *         or its wakeup handle cannot be initialised.
 */
VMCORE_API int vmcore_ctx_new(vmcore_ctx **out, uv_loop_t *loop);

/**
 * Free a context. All its domains must have been closed and their close callbacks run.
 *
 * @param ctx  The context (NULL is accepted and ignored).
 * @return 0, or #VMCORE_EBUSY if domains are still open (the context is left intact).
 */
VMCORE_API int vmcore_ctx_free(vmcore_ctx *ctx);

/**
 * The libuv loop the context runs on.
 *
 * @param ctx  The context.
 * @return The loop, or NULL if @p ctx is NULL.
 */
VMCORE_API uv_loop_t *vmcore_ctx_loop(vmcore_ctx *ctx);

/**
 * Run the context's loop (a thin wrapper over `uv_run`).
 *
 * @param ctx   The context.
 * @param mode  One of #vmcore_run_mode.
 * @return For #VMCORE_RUN_DEFAULT 0 when nothing is left to do; for the other modes a
 *         positive value if more work is pending, 0 if not. #VMCORE_EINVAL on a NULL context
 *         or unknown mode.
 */
VMCORE_API int vmcore_ctx_run(vmcore_ctx *ctx, vmcore_run_mode mode);

/**
 * The file descriptor a foreign event loop (asyncio, GLib) should poll for readability;
 * when it becomes readable, call vmcore_ctx_run() with #VMCORE_RUN_NOWAIT.
 *
 * @param ctx  The context.
 * @return The descriptor, or #VMCORE_EINVAL.
 */
VMCORE_API int vmcore_ctx_backend_fd(vmcore_ctx *ctx);

/**
 * How long a foreign loop may sleep before it must call vmcore_ctx_run() again.
 *
 * @param ctx  The context.
 * @return Milliseconds, -1 for "no timer pending", or #VMCORE_EINVAL.
 */
VMCORE_API int vmcore_ctx_backend_timeout(vmcore_ctx *ctx);

/**
 * The detail of the last error raised on this context (for example by a failed
 * vmcore_domain_new_json()), such as "boot.kernel: no such file: /x/y".
 *
 * @param ctx  The context.
 * @return A string owned by the context, valid until the next call on it; "" if there was
 *         no error; never NULL.
 */
VMCORE_API const char *vmcore_ctx_last_error(const vmcore_ctx *ctx);

/**
 * The JSON path of the last configuration error on this context ("process.args[0]").
 *
 * Every error about a value of the configuration has a path, never "": "$" for the whole
 * document (not an object, or an empty key "" at the top level), the object that holds an
 * empty key ("boot"), and the key that named a file for errors about that file, a guest
 * image included ("boot.kernel", "boot.initrd").
 *
 * @param ctx  The context.
 * @return The path, or NULL when the last error was not about a configuration value
 *         (malformed JSON, an unavailable backend, a system error).
 */
VMCORE_API const char *vmcore_ctx_last_error_path(const vmcore_ctx *ctx);

VMCORE_END_DECLS

#endif /* VMCORE_CTX_H */
