/**
 * @file detach.h
 * @brief Containers that outlive the process that made them (OCI runtimes: `vmcore-oci`).
 *
 * A container whose configuration has a `detach` object (doc/config.md) is made as usual
 * (vmcore_domain_new_*(), vmcore_domain_start()), with these differences: its first
 * process inherits this process's stdin, stdout and stderr (or gets a pty whose master
 * vmcore_domain_detach() hands over), it is not killed when this process dies, its cgroup
 * has no watcher, and with `detach.hold` it waits, fully set up, before its execve until
 * someone opens the FIFO for reading and reads the byte it writes. The start completes
 * once the process waits there (or has exec'd, without `hold`).
 *
 * vmcore_domain_detach() then lets go of it: the domain ends (exit kind
 * #VMCORE_EXIT_NONE) and closing it kills nothing. What is needed to manage the
 * container later, from any process, is a JSON text (#vmcore_detached.state) that the
 * vmcore_detached_*() calls take: freeze, signal, list and finally remove it.
 */
#ifndef VMCORE_DETACH_H
#define VMCORE_DETACH_H

#include <stddef.h>

#include "common.h"
#include "ctx.h"
#include "domain.h"

VMCORE_BEGIN_DECLS

/** Size of #vmcore_detached.state, the NUL included. */
#define VMCORE_DETACHED_STATE_MAX 32768

/** What vmcore_domain_detach() hands over. */
typedef struct vmcore_detached {
    int pid;        /**< Host pid of the container's first process (still this process's child). */
    int console_fd; /**< `process.terminal`: the pty master, now the caller's to close; else -1. */
    /** JSON object naming the container's cgroup folders: `{"pid": N, "v2": bool,
     * "cgroups": {"memory": "/sys/fs/cgroup/memory/...", ...}}`. Store it as it is. */
    char state[VMCORE_DETACHED_STATE_MAX];
} vmcore_detached;

/**
 * Let a running container with a `detach` configuration go on without this domain.
 *
 * On success the domain ends the usual way, on the loop: an exit event with kind
 * #VMCORE_EXIT_NONE and reason "detached", then #VMCORE_STATE_STOPPED (a process that had
 * already ended but was not reported yet is reported as itself). vmcore_domain_close()
 * then releases the handle and kills nothing. The
 * container's first process stays a child of this process until this process exits
 * (its exit signal is none until then: wait for it with `waitid(P_PID, pid, ..., WEXITED |
 * __WALL)`); after that the kernel gives it to the nearest subreaper or init.
 *
 * @param domain  A container domain in #VMCORE_STATE_RUNNING or #VMCORE_STATE_PAUSED.
 * @param[out] out  Filled on success.
 * @return 0; #VMCORE_ENOTSUP for a domain without `detach`, or not a container;
 *         #VMCORE_ESTATE when it does not run (its process has ended).
 */
VMCORE_API int vmcore_domain_detach(vmcore_domain *domain, vmcore_detached *out);

/**
 * Freeze (@p frozen non-zero) or thaw every process of a detached container, through its
 * cgroup freezer. Synchronous.
 *
 * @param ctx    Receives the error message (vmcore_ctx_last_error()); may be NULL.
 * @param state  #vmcore_detached.state as stored.
 * @param frozen Non-zero: freeze; 0: thaw.
 * @return 0; #VMCORE_EINVAL for a malformed @p state; #VMCORE_ENOTSUP without a freezer;
 *         #VMCORE_ENOENT when the group is gone.
 */
VMCORE_API int vmcore_detached_freeze(vmcore_ctx *ctx, const char *state, int frozen);

/**
 * Whether a detached container's group is frozen.
 *
 * @param state  #vmcore_detached.state.
 * @return 1 frozen, 0 not (or no freezer), or a negative `VMCORE_E*` (@p state malformed:
 *         #VMCORE_EINVAL; the group is gone: #VMCORE_ENOENT).
 */
VMCORE_API int vmcore_detached_frozen(const char *state);

/**
 * The pids (host's numbering) of every process in a detached container's group.
 *
 * @param ctx    Receives the error message; may be NULL.
 * @param state  #vmcore_detached.state.
 * @param[out] pids  A malloc'd array the caller frees (NULL when there are none).
 * @param[out] n     How many.
 * @return 0, or a `VMCORE_E*` code (#VMCORE_ENOENT: the group is gone).
 */
VMCORE_API int vmcore_detached_pids(vmcore_ctx *ctx, const char *state, int **pids, size_t *n);

/**
 * Send @p sig to every process in a detached container's group (a frozen group is
 * thawed after a SIGKILL so that its processes can die).
 *
 * @param ctx    Receives the error message; may be NULL.
 * @param state  #vmcore_detached.state.
 * @param sig    The signal.
 * @return The number of processes signalled (0 or more), or a negative `VMCORE_E*`.
 */
VMCORE_API int vmcore_detached_signal_all(vmcore_ctx *ctx, const char *state, int sig);

/**
 * Kill every process left in a detached container's group, wait until it is empty and
 * remove its folders. Idempotent: a group already gone is success.
 *
 * @param ctx    Receives the error message; may be NULL.
 * @param state  #vmcore_detached.state.
 * @return 0, or a `VMCORE_E*` code when a folder could not be removed.
 */
VMCORE_API int vmcore_detached_destroy(vmcore_ctx *ctx, const char *state);

VMCORE_END_DECLS

#endif
