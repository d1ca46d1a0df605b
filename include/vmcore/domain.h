/**
 * @file domain.h
 * @brief A domain: one VM or container, its lifecycle, console, stats and events.
 *
 * Domains are created from a JSON configuration (see doc/config.md). Lifecycle calls
 * are asynchronous in the libuv manner: they return at once with 0 or an error, and the
 * completion callback (if given) runs later on the loop thread with the final status.
 */
#ifndef VMCORE_DOMAIN_H
#define VMCORE_DOMAIN_H

#include <jansson.h>

#include "common.h"
#include "ctx.h"
#include "event.h"

VMCORE_BEGIN_DECLS

/** Completion callback of an asynchronous domain operation; @p status is 0 or `VMCORE_E*`. */
typedef void (*vmcore_domain_cb)(vmcore_domain *domain, int status, void *arg);

/** Called once a closed domain's memory is about to be released. */
typedef void (*vmcore_close_cb)(vmcore_domain *domain, void *arg);

/** Completion of vmcore_domain_exec(): @p status is 0 or `VMCORE_E*`; @p exit how it ended. */
typedef void (*vmcore_exec_cb)(vmcore_domain *domain, int status, const vmcore_exit *exit,
                               void *arg);

/** Version of #vmcore_stats this header describes. Versions 1 (without `jit_blocks`) and
 * 2 (without the `net_*` counters) are still accepted: such a caller gets the fields its
 * version had, and nothing past them is written. */
#define VMCORE_STATS_VERSION 3

/** Resource use of a domain. Fields a backend cannot measure are 0. */
typedef struct vmcore_stats {
    unsigned int version;           /**< Set to #VMCORE_STATS_VERSION before the call. */
    uint64_t cpu_time_ns;           /**< CPU time used (vCPU threads, or the cgroup). */
    uint64_t memory_bytes;          /**< Memory in use (guest RAM touched, or the cgroup's). */
    uint64_t pids;                  /**< Containers: processes in the group. */
    uint64_t exits;                 /**< VMs: vCPU exits handled by the machine model. */
    uint64_t instructions;          /**< emu: guest instructions retired. */
    uint64_t tcache_hits;           /**< emu: translated blocks found in the cache. */
    uint64_t tcache_misses;         /**< emu: blocks that had to be decoded. */
    uint64_t jit_blocks;            /**< emu: blocks compiled to host code (version 2). */
    /* Version 3: network traffic, as the domain sees it (rx: frames it received; tx: frames
     * it sent), summed over its cards; Ethernet frames without the virtio-net header. VMs:
     * every virtio-net card (tap and user); containers: the veth (read from the host
     * end's counters) or the user-mode tap. 0 for a domain without a network. */
    uint64_t net_rx_bytes;          /**< Bytes of the frames the domain received (version 3). */
    uint64_t net_rx_packets;        /**< Frames the domain received (version 3). */
    uint64_t net_tx_bytes;          /**< Bytes of the frames the domain sent (version 3). */
    uint64_t net_tx_packets;        /**< Frames the domain sent (version 3). */
} vmcore_stats;

/** Initialise a #vmcore_stats before passing it to vmcore_domain_stats(). */
#define VMCORE_STATS_INIT { VMCORE_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/**
 * Create a domain from a JSON text. Relative paths resolve against the current directory.
 *
 * @param[out] out  Receives the domain (in #VMCORE_STATE_CREATED).
 * @param ctx       The context it belongs to.
 * @param json      The configuration.
 * @return 0; #VMCORE_EINVAL for NULL arguments; #VMCORE_EPARSE for malformed JSON;
 *         #VMCORE_ECONFIG for a schema violation (vmcore_ctx_last_error_path() names it);
 *         #VMCORE_ENOENT for a missing file; #VMCORE_ELIMIT for sizes beyond the host;
 *         #VMCORE_EUNAVAIL if the chosen backend cannot run here; #VMCORE_EIMAGE for a bad
 *         guest image; #VMCORE_ENOMEM. On error nothing is allocated and the detail is in
 *         vmcore_ctx_last_error().
 */
VMCORE_API int vmcore_domain_new_json(vmcore_domain **out, vmcore_ctx *ctx, const char *json);

/**
 * Create a domain from a JSON file. Relative paths resolve against the file's folder.
 *
 * @param[out] out  Receives the domain.
 * @param ctx       The context.
 * @param path      The configuration file.
 * @return As vmcore_domain_new_json(); #VMCORE_ENOENT / #VMCORE_EIO if the file cannot be read.
 */
VMCORE_API int vmcore_domain_new_file(vmcore_domain **out, vmcore_ctx *ctx, const char *path);

/**
 * Create a domain from a jansson object. The object is not modified or retained.
 *
 * @param[out] out   Receives the domain.
 * @param ctx        The context.
 * @param config     The configuration object.
 * @param base_dir   Folder relative paths resolve against, or NULL for the current directory.
 * @return As vmcore_domain_new_json().
 */
VMCORE_API int vmcore_domain_new_jansson(vmcore_domain **out, vmcore_ctx *ctx,
                                         const json_t *config, const char *base_dir);

/**
 * Start a created domain.
 *
 * @param domain  The domain, in #VMCORE_STATE_CREATED.
 * @param cb      Called once it runs (status 0) or failed to start; may be NULL.
 * @param arg     Passed to @p cb.
 * @return 0 if starting began; #VMCORE_EINVAL; #VMCORE_ESTATE if not in the created state
 *         (for example a second start); or a backend error (#VMCORE_ESYS, #VMCORE_EPERM, ...),
 *         in which case the domain ends in #VMCORE_STATE_STOPPED and @p cb is not called.
 */
VMCORE_API int vmcore_domain_start(vmcore_domain *domain, vmcore_domain_cb cb, void *arg);

/**
 * Pause a running domain (vCPUs stopped, or the cgroup frozen).
 *
 * @param domain  The domain, in #VMCORE_STATE_RUNNING.
 * @param cb      Called when paused; may be NULL.
 * @param arg     Passed to @p cb.
 * @return 0; #VMCORE_EINVAL; #VMCORE_ESTATE; #VMCORE_ENOTSUP; #VMCORE_ESYS.
 */
VMCORE_API int vmcore_domain_pause(vmcore_domain *domain, vmcore_domain_cb cb, void *arg);

/**
 * Resume a paused domain.
 *
 * @param domain  The domain, in #VMCORE_STATE_PAUSED.
 * @param cb      Called when running again; may be NULL.
 * @param arg     Passed to @p cb.
 * @return 0; #VMCORE_EINVAL; #VMCORE_ESTATE; #VMCORE_ESYS.
 */
VMCORE_API int vmcore_domain_resume(vmcore_domain *domain, vmcore_domain_cb cb, void *arg);

/**
 * Ask a domain to end gracefully, and kill it if it has not ended after @p timeout_ms.
 * A container's init gets SIGTERM. A VM whose guest enabled the ACPI power button (an OS
 * with an ACPI button driver) gets a power-button press and normally powers itself off
 * (exit status 0, reason "powered off"); a paused VM handles the press only once resumed.
 * Any other VM is stopped at once, at the next instruction boundary.
 * A container's PID 1 that neither catches nor ignores SIGTERM (a shell or any program
 * run without `process.init`, which the kernel would spare as a namespace's init) is
 * ended at once, as SIGTERM ends any other process, and its exit names SIGTERM.
 *
 * @param domain      A running or paused domain.
 * @param timeout_ms  Grace period before the kill; 0 kills at once.
 * @param cb          Called when the domain has ended (status 0, or #VMCORE_ETIMEDOUT if it
 *                    had to be killed); may be NULL.
 * @param arg         Passed to @p cb.
 * @return 0; #VMCORE_EINVAL; #VMCORE_ESTATE if the domain is not running, paused or starting.
 */
VMCORE_API int vmcore_domain_shutdown(vmcore_domain *domain, uint64_t timeout_ms,
                                      vmcore_domain_cb cb, void *arg);

/**
 * End a domain at once (SIGKILL to every process, or vCPUs stopped).
 *
 * @param domain  A starting, running, paused or stopping domain.
 * @param cb      Called when it has ended; may be NULL.
 * @param arg     Passed to @p cb.
 * @return 0; #VMCORE_EINVAL; #VMCORE_ESTATE if it already ended or never started.
 */
VMCORE_API int vmcore_domain_kill(vmcore_domain *domain, vmcore_domain_cb cb, void *arg);

/**
 * Close a domain: kill it if it still runs, release every resource it holds (threads,
 * processes, cgroups, mounts, interfaces, fds), then call @p cb. Pending completion
 * callbacks run first with #VMCORE_ECANCELED. The handle is invalid after @p cb returns.
 * Safe in any state, including during start. Calling it twice is an error that is ignored.
 *
 * @param domain  The domain (NULL is ignored).
 * @param cb      Called when everything is released; may be NULL.
 * @param arg     Passed to @p cb.
 */
VMCORE_API void vmcore_domain_close(vmcore_domain *domain, vmcore_close_cb cb, void *arg);

/**
 * The current state.
 *
 * @param domain  The domain.
 * @return The state; #VMCORE_STATE_CRASHED for a NULL domain.
 */
VMCORE_API vmcore_state vmcore_domain_state(const vmcore_domain *domain);

/**
 * How the domain ended.
 *
 * @param domain    The domain.
 * @param[out] out  Receives the exit; `kind` is #VMCORE_EXIT_NONE while it runs.
 * @return 0 or #VMCORE_EINVAL.
 */
VMCORE_API int vmcore_domain_exit(const vmcore_domain *domain, vmcore_exit *out);

/**
 * The backend that runs the domain ("kvm", "emu" or "container"; "auto" is resolved).
 *
 * @param domain  The domain.
 * @return A static string, or NULL for a NULL domain.
 */
VMCORE_API const char *vmcore_domain_backend(const vmcore_domain *domain);

/**
 * The domain's name (config key `name`).
 *
 * @param domain  The domain.
 * @return A string owned by the domain, or NULL for a NULL domain.
 */
VMCORE_API const char *vmcore_domain_name(const vmcore_domain *domain);

/**
 * Resource use so far.
 *
 * @param domain    The domain.
 * @param[in,out] out  Initialised with #VMCORE_STATS_INIT.
 * @return 0; #VMCORE_EINVAL (NULL or wrong version); #VMCORE_ESYS.
 */
VMCORE_API int vmcore_domain_stats(vmcore_domain *domain, vmcore_stats *out);

/**
 * Send bytes to the console: a VM's serial port receive queue, or a container's stdin.
 *
 * @param domain  A running or paused domain.
 * @param data    The bytes.
 * @param len     How many; 0 closes a container's stdin.
 * @return 0; #VMCORE_EINVAL; #VMCORE_ESTATE; #VMCORE_ESYS.
 */
VMCORE_API int vmcore_domain_console_write(vmcore_domain *domain, const void *data, size_t len);

/**
 * Set the window size of a container's terminal (`"process.terminal": true`), as a
 * terminal emulator does when its window changes (`TIOCSWINSZ` on the pty: the processes
 * inside get `SIGWINCH`, `stty size` reports it).
 *
 * Call it before vmcore_domain_start() to give the initial size (a terminal starts at
 * 0 x 0 otherwise, which programs treat as 24 x 80); later calls change it.
 *
 * @param domain  A domain from created to stopping (not ended, not closing).
 * @param rows    Rows, 1..65535.
 * @param cols    Columns, 1..65535.
 * @return 0; #VMCORE_EINVAL (NULL domain, a size out of range); #VMCORE_ESTATE (ended or
 *         closing); #VMCORE_ENOTSUP (a VM, whose console is a serial port and has no window
 *         size, or a container without `"process.terminal": true`, whose console is pipes);
 *         #VMCORE_ESYS (the ioctl failed).
 */
VMCORE_API int vmcore_domain_resize_console(vmcore_domain *domain, unsigned int rows,
                                            unsigned int cols);

/**
 * Stop or restart the delivery of a domain's console output: flow control for a consumer
 * that cannot keep up (a program whose own stdout is full).
 *
 * Console output is never dropped. Each domain's undelivered output is bounded (1 MiB):
 * when that much waits, the writer is stopped as a UART with a full FIFO stops its
 * sender (a VM's vCPU waits in its serial port write; a container's output pipes or
 * terminal are no longer read, which blocks its writing processes) until the loop has
 * delivered the queue down to 256 KiB. A loop that does not run therefore slows the guest
 * down instead of growing the process. Holding uses the same bound: while held, the
 * domain's reports (console output, and the exit, errors and exec results that follow it,
 * so their order stays) wait instead of being delivered, and once 1 MiB of output waits
 * the writer stops. State events of your own calls (pause, kill, ...) still arrive.
 *
 * A held domain still pauses, resumes, is killed and closes; vmcore_domain_close()
 * releases the hold itself (the waiting reports are then dropped, as after every close).
 * Note that the exit event of a held domain waits too: release the hold (or close) to
 * see it end.
 *
 * @param domain  The domain, in any state but closing.
 * @param hold    Non-zero: hold; 0: deliver again, starting with what waited (from the
 *                loop, never inside this call). Holding twice is the same as once.
 * @return 0; #VMCORE_EINVAL (NULL domain); #VMCORE_ESTATE (the domain is closing).
 */
VMCORE_API int vmcore_domain_hold_console(vmcore_domain *domain, int hold);

/**
 * Run another process inside a running container. Its output arrives as console events.
 *
 * @param domain  A running container domain.
 * @param argv    NULL-terminated argument vector; argv[0] is looked up in the container.
 * @param cb      Called when the process has ended; may be NULL.
 * @param arg     Passed to @p cb.
 * @return 0; #VMCORE_EINVAL; #VMCORE_ESTATE; #VMCORE_ENOTSUP for VM backends; #VMCORE_ESYS.
 */
VMCORE_API int vmcore_domain_exec(vmcore_domain *domain, const char *const *argv,
                                  vmcore_exec_cb cb, void *arg);

/**
 * Subscribe to events.
 *
 * @param domain  The domain.
 * @param mask    A set of #vmcore_event_type bits.
 * @param cb      The callback.
 * @param arg     Passed to @p cb.
 * @return A positive subscription id; #VMCORE_EINVAL; #VMCORE_ENOMEM.
 */
VMCORE_API int vmcore_domain_subscribe(vmcore_domain *domain, unsigned int mask,
                                       vmcore_event_cb cb, void *arg);

/**
 * Cancel a subscription. Safe from inside an event callback.
 *
 * @param domain  The domain.
 * @param id      A value vmcore_domain_subscribe() returned.
 * @return 0, #VMCORE_EINVAL, or #VMCORE_ENOENT for an unknown id.
 */
VMCORE_API int vmcore_domain_unsubscribe(vmcore_domain *domain, int id);

/** Flags of vmcore_domain_save(). */
typedef enum vmcore_save_flags {
    VMCORE_SAVE_RESUME = 0,     /**< Afterwards the domain runs on (or stays paused). */
    VMCORE_SAVE_STOP = 1u << 0  /**< Afterwards the domain ends (exit status 0, "saved"). */
} vmcore_save_flags;

/**
 * Save a VM's whole state to a snapshot file (doc/snapshot.md): the configuration, the
 * CPUID the guest saw, every vCPU, every device model and the non-zero pages of RAM.
 *
 * A running domain's vCPUs are paused while the file is written (no state events for
 * that pause) and run again afterwards unless #VMCORE_SAVE_STOP is given; a paused domain
 * stays paused. The file is written on the calling (loop) thread, before the call
 * returns, to a temporary file next to @p path that is renamed over @p path once complete
 * and synced: a failed save leaves no file behind and an existing @p path untouched. With
 * #VMCORE_SAVE_STOP the domain then ends as if the guest had exited with status 0 (reason
 * "saved to a snapshot"); its exit event follows.
 *
 * Today only the emu backend saves, and only machines without virtio devices.
 *
 * @param domain  A running or paused VM.
 * @param path    The file to write.
 * @param flags   #VMCORE_SAVE_RESUME or #VMCORE_SAVE_STOP.
 * @param cb      Called on the loop once the file is complete (status 0); may be NULL. Not
 *                called when this returns an error.
 * @param arg     Passed to @p cb.
 * @return 0; #VMCORE_EINVAL (NULL or empty path, unknown flags); #VMCORE_ESTATE (not
 *         running or paused, or closing); #VMCORE_ENOTSUP (the backend cannot save yet:
 *         kvm and container say "not implemented yet"; a device whose state the format
 *         does not cover, a virtio device, is named); #VMCORE_ENOENT / #VMCORE_EPERM /
 *         #VMCORE_EIO / #VMCORE_ELIMIT (the file cannot be created or written: no
 *         folder, no permission, an I/O error, a full disk); #VMCORE_ENOMEM. The detail is
 *         in vmcore_domain_last_error(); the domain runs on as before.
 */
VMCORE_API int vmcore_domain_save(vmcore_domain *domain, const char *path, unsigned flags,
                                  vmcore_domain_cb cb, void *arg);

/**
 * Create a domain from a snapshot vmcore_domain_save() wrote. It is in
 * #VMCORE_STATE_CREATED; vmcore_domain_start() continues the guest where it was saved.
 *
 * The file is read as hostile input: its structure and every section's CRC are checked
 * before anything is created, and every value is range-checked as it is loaded; a bad
 * file fails naming the section and the file offset, with nothing left allocated or open.
 * The configuration recorded in the snapshot is validated as at creation, so the files it
 * names (the boot image among them, which is not read again) must still exist.
 *
 * @param[out] out        Receives the domain; not set on failure.
 * @param ctx             The context.
 * @param path            The snapshot file.
 * @param overrides_json  NULL, or a JSON object of host-side changes: `"name"` (a string),
 *                        `"backend"` (only the snapshot's own). Any other key is an error
 *                        naming it (`overrides.memory_mib`): guest-visible shape cannot
 *                        change.
 * @return 0; #VMCORE_EINVAL (NULL arguments); #VMCORE_ENOENT / #VMCORE_EIO (the file
 *         cannot be read); #VMCORE_EIMAGE (not a snapshot, another format version,
 *         truncated, a CRC mismatch, a value out of range, a RAM size or device set that
 *         does not match the configuration, a CPUID this host's CPU does not present);
 *         #VMCORE_EPARSE / #VMCORE_ECONFIG (bad overrides; vmcore_ctx_last_error_path()
 *         names the key); #VMCORE_ENOTSUP (the snapshot's backend cannot restore yet, or
 *         another backend was asked for); or any error of vmcore_domain_new_json() for the
 *         recorded configuration. The detail is in vmcore_ctx_last_error().
 */
VMCORE_API int vmcore_domain_new_restore(vmcore_domain **out, vmcore_ctx *ctx,
                                         const char *path, const char *overrides_json);

/**
 * The detail of the last error on this domain.
 *
 * @param domain  The domain.
 * @return A string owned by the domain; "" if none; never NULL.
 */
VMCORE_API const char *vmcore_domain_last_error(const vmcore_domain *domain);

/**
 * The context a domain belongs to.
 *
 * @param domain  The domain.
 * @return The context, or NULL for a NULL domain.
 */
VMCORE_API vmcore_ctx *vmcore_domain_ctx(const vmcore_domain *domain);

VMCORE_END_DECLS

#endif /* VMCORE_DOMAIN_H */
