/* The toolstack's shared pieces (doc/control.md is the protocol's reference):
 *
 *  - the control protocol: one JSON object per line over a UNIX stream socket, requests
 *    {"id", "method", "params"}, replies {"id", "result"} or {"id", "error"}, events
 *    {"event", ...}; ctl_parse_request() is the only parser of what a client sends (the
 *    fuzz target tests/fuzz/fuzz_control.c drives it);
 *  - the state directory: <root>/<name>/ holds the monitor's lock, control socket, pid,
 *    configuration, console log and final state;
 *  - the monitor (monitor.c) and the commands (toolstack.c).
 *
 * Not part of the library: this is the vmcore program's own code. */
#ifndef VMCORE_TOOLS_CTL_H
#define VMCORE_TOOLS_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The protocol version the monitor announces in its greeting and accepts. */
#define CTL_PROTOCOL_VERSION 1
/* The longest request line (the newline included); longer ones are refused and the
 * connection is closed. */
#define CTL_MAX_LINE (64u << 10)
/* The console history a new console client is sent first. */
#define CTL_REPLAY_BYTES (64u << 10)
/* Console output queued for one slow client past which new output is dropped for it. */
#define CTL_CLIENT_QUEUE_MAX (1u << 20)
/* The same for console events sent as JSON (to exec clients and "console" subscribers):
 * a command's output is dropped only past this much unread. */
#define CTL_CLIENT_EVENT_MAX (64u << 20)
/* Replies queued for a client that does not read, past which it is disconnected. */
#define CTL_CLIENT_REPLY_MAX (4u << 20)
/* The longest domain name. */
#define CTL_NAME_MAX 64

/* File names inside a domain's state directory. */
#define CTL_FILE_LOCK "lock"       /* flock()ed by the monitor for its whole life */
#define CTL_FILE_SOCKET "sock"     /* the control socket, 0600 */
#define CTL_FILE_PID "pid"         /* the monitor's pid */
#define CTL_FILE_CONFIG "config.json"
#define CTL_FILE_META "meta.json"  /* name, backend, config path, creation time */
#define CTL_FILE_CONSOLE "console.log"
#define CTL_FILE_CONSOLE_OLD "console.log.1"
#define CTL_FILE_STATE "state.json" /* written once the domain has ended */
#define CTL_FILE_MONITOR_LOG "monitor.log"

/* A parsed request. @root owns everything; ctl_request_free() releases it. */
struct ctl_request {
    json_t *root;
    json_t *id;         /* a number or a string; NULL when absent */
    const char *method; /* never NULL after a successful parse */
    json_t *params;     /* an object (empty when absent) */
};

/* Parse one request line (without its newline). Returns 0, or VMCORE_EPARSE (not JSON)
 * / VMCORE_EINVAL (not a request) with a message naming the field in @err; on error
 * @req->id may still be set (for the reply) and must be freed with ctl_request_free(). */
int ctl_parse_request(const char *line, size_t len, struct ctl_request *req, char *err,
                      size_t errlen);
void ctl_request_free(struct ctl_request *req);

/* Typed parameters: 0, or VMCORE_EINVAL with "params.NAME: ..." in @err. Absent keys
 * leave *out unchanged. */
int ctl_param_bool(const struct ctl_request *req, const char *name, bool *out, char *err,
                   size_t errlen);
int ctl_param_uint(const struct ctl_request *req, const char *name, uint64_t max,
                   uint64_t *out, char *err, size_t errlen);

/* Standard base64 (RFC 4648, with padding) of @len bytes; malloc'd, NUL-terminated. */
char *ctl_base64(const void *data, size_t len);
/* Decode; returns the length or -1 for bad input. @out needs (strlen(in) / 4) * 3 bytes. */
long ctl_unbase64(const char *in, unsigned char *out);

/* The JSON text of @obj plus a newline, malloc'd (stolen reference); NULL on failure. */
char *ctl_line(json_t *obj, size_t *len);

/* A domain name: 1..64 of [A-Za-z0-9_.-], starting with a letter or digit. */
bool ctl_valid_name(const char *name);

/* The state root: @opt (--root) if given, else $VMCORE_ROOT, else /run/vmcore for root,
 * else $XDG_RUNTIME_DIR/vmcore. Returns 0 or -1 with a message in @err. */
int ctl_root(const char *opt, char *out, size_t size, char *err, size_t errlen);

/* <root>/<name>[/<file>] into @out; -1 if it does not fit. */
int ctl_path(char *out, size_t size, const char *root, const char *name, const char *file);

/* Whether a live monitor holds the domain's lock: 1 yes, 0 no (the monitor is gone),
 * -1 no lock file (not a domain directory, or one being created). */
int ctl_lock_held(const char *root, const char *name);

/* Remove a domain's state directory and the files the toolstack puts there; -1 (errno
 * set) if something else is in it or it cannot be removed. */
int ctl_remove_dir(const char *root, const char *name);

/* Read a whole small file (at most 1 MiB), NUL-terminated; NULL on failure. */
char *ctl_read_file(const char *path, size_t *len);
/* Write @data to @path atomically (a temporary file then rename), mode 0600. */
int ctl_write_file(const char *path, const char *data, size_t len);

/* A client connection (blocking). ctl_connect() reads the monitor's greeting. Returns
 * the socket, or -1 with a message in @err (ENOENT-like: "no such domain"). */
int ctl_connect(const char *root, const char *name, char *err, size_t errlen);
/* Send a request and wait for its reply (events that arrive first go to @on_event when
 * it is set, else are dropped). @params is stolen. Returns the reply (caller frees) or
 * NULL with @err set; @timeout_ms < 0 waits forever. */
json_t *ctl_call(int fd, const char *method, json_t *params, int timeout_ms,
                 void (*on_event)(json_t *ev, void *arg), void *arg, char *err, size_t errlen);
/* Forget the read buffer of a socket about to be closed or switched to raw bytes (an
 * attached console); copies what it still held (at most @size) to @out, returns how much. */
size_t ctl_forget(int fd, char *out, size_t size);
/* Read one line-delimited JSON message; NULL at EOF / error / timeout (@err says). */
json_t *ctl_read_msg(int fd, int timeout_ms, char *err, size_t errlen);

/* The monitor: create the domain of @config_path (backend overridden when @backend is
 * set) under <root>/<name>, whose directory and held lock (@lock_fd) the caller made.
 * @ready_fd receives "0\n" once the domain runs, or "<error name> <message>\n"; it is
 * closed then (@ready_fd -1: errors go to stderr). Runs until the domain has ended and
 * been closed; returns 125 if it never ran, else its vmcore_exit_code(). */
int monitor_main(const char *root, const char *name, const char *config_path,
                 const char *backend, int lock_fd, int ready_fd);

/* Load a configuration file and create its domain, with "backend" replaced when @backend
 * is set. Relative paths resolve against the file's folder. Returns 0 or a VMCORE_E*
 * code with the message (naming the file) in @err. */
struct vmcore_ctx;
struct vmcore_domain;
int ctl_domain_new(struct vmcore_domain **out, struct vmcore_ctx *ctx, const char *path,
                   const char *backend, char *err, size_t errlen);

/* The toolstack commands of the vmcore program (create, list, ...): whether @cmd is one,
 * and running it (argv after the command name). */
bool toolstack_is_command(const char *cmd);
int toolstack_main(const char *cmd, int argc, char **argv);
/* The usage text of a toolstack command, NULL if @cmd is not one. */
const char *toolstack_usage(const char *cmd);

#endif /* VMCORE_TOOLS_CTL_H */
