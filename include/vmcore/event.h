/**
 * @file event.h
 * @brief Events a domain delivers to its subscribers, always on the loop thread.
 */
#ifndef VMCORE_EVENT_H
#define VMCORE_EVENT_H

#include "common.h"

VMCORE_BEGIN_DECLS

/** Opaque domain handle (see domain.h). */
typedef struct vmcore_domain vmcore_domain;

/** The lifecycle states of a domain. */
typedef enum vmcore_state {
    VMCORE_STATE_CREATED = 0,  /**< Configured, not started. */
    VMCORE_STATE_STARTING = 1, /**< vmcore_domain_start() is in progress. */
    VMCORE_STATE_RUNNING = 2,  /**< The guest or process runs. */
    VMCORE_STATE_PAUSED = 3,   /**< Frozen; vmcore_domain_resume() continues it. */
    VMCORE_STATE_STOPPING = 4, /**< Shutdown or kill is in progress. */
    VMCORE_STATE_STOPPED = 5,  /**< Ended; the exit status is known. Final. */
    VMCORE_STATE_CRASHED = 6   /**< Ended abnormally (triple fault, internal error). Final. */
} vmcore_state;

/** How a domain ended. */
typedef enum vmcore_exit_kind {
    VMCORE_EXIT_NONE = 0,   /**< Not ended yet. */
    VMCORE_EXIT_STATUS = 1, /**< Exit status: the debug-exit byte of a VM, or a process exit code. */
    VMCORE_EXIT_SIGNAL = 2, /**< Ended by a signal: a container's init was killed by one, or
                                 any domain (a VM too) was ended by vmcore_domain_shutdown()
                                 (SIGTERM) or vmcore_domain_kill() (SIGKILL). */
    VMCORE_EXIT_CRASH = 3   /**< The machine crashed (triple fault, emulation failure). */
} vmcore_exit_kind;

/** The exit of a domain. */
typedef struct vmcore_exit {
    vmcore_exit_kind kind; /**< What ended the domain. */
    int status;            /**< #VMCORE_EXIT_STATUS: the status (0..255). */
    int signal;            /**< #VMCORE_EXIT_SIGNAL: the signal number (15 or 9 for a VM). */
    const char *reason;    /**< Human-readable reason ("triple fault at rip=0x1000"); never NULL
                                once ended. Valid while the domain is open. */
} vmcore_exit;

/** Event types, usable as a bit mask in vmcore_domain_subscribe(). */
typedef enum vmcore_event_type {
    VMCORE_EVENT_STATE = 1u << 0,   /**< The state changed. */
    VMCORE_EVENT_CONSOLE = 1u << 1, /**< Console output (serial port, or stdout/stderr), in
                                         the order it was written and never dropped. At most
                                         1 MiB per domain waits for delivery: then the writer
                                         is stopped until the loop has delivered it (see
                                         vmcore_domain_hold_console()). */
    VMCORE_EVENT_EXIT = 1u << 2,    /**< The domain ended; sent once, before the final state event. */
    VMCORE_EVENT_ERROR = 1u << 3,   /**< An asynchronous error (a device or backend failure). */
    VMCORE_EVENT_ALL = 0xf          /**< Every event. */
} vmcore_event_type;

/** Console streams. */
typedef enum vmcore_stream {
    VMCORE_STREAM_CONSOLE = 0, /**< A VM's serial console, or a container's terminal. */
    VMCORE_STREAM_STDOUT = 1,  /**< A container process's stdout. */
    VMCORE_STREAM_STDERR = 2   /**< A container process's stderr. */
} vmcore_stream;

/** One event. Pointers inside are valid only during the callback. */
typedef struct vmcore_event {
    vmcore_event_type type;  /**< Which member of the union is set. */
    vmcore_domain *domain;   /**< The domain that sent it. */
    union {
        /** #VMCORE_EVENT_STATE */
        struct {
            vmcore_state old_state; /**< State before. */
            vmcore_state new_state; /**< State now. */
        } state;
        /** #VMCORE_EVENT_CONSOLE */
        struct {
            vmcore_stream stream; /**< Which stream. */
            const char *data;     /**< The bytes (not NUL-terminated). */
            size_t len;           /**< How many. */
        } console;
        /** #VMCORE_EVENT_EXIT */
        vmcore_exit exit;
        /** #VMCORE_EVENT_ERROR */
        struct {
            int code;            /**< A `VMCORE_E*` code. */
            const char *message; /**< What failed. */
        } error;
    } u; /**< The payload. */
} vmcore_event;

/** Receives events; runs on the loop thread. */
typedef void (*vmcore_event_cb)(const vmcore_event *event, void *arg);

/**
 * The name of a state ("running").
 *
 * @param state  A #vmcore_state.
 * @return A static string; "unknown" for values out of range. Never NULL.
 */
VMCORE_API const char *vmcore_state_name(vmcore_state state);

/**
 * Map an exit to the status a shell would show: the status itself, 128 + signal,
 * or 125 for a crash.
 *
 * @param exit  An exit (NULL gives 125).
 * @return 0..255.
 */
VMCORE_API int vmcore_exit_code(const vmcore_exit *exit);

VMCORE_END_DECLS

#endif /* VMCORE_EVENT_H */
