/* Error detail carried through every internal layer (the libcrun way): a code, a
 * message and, for configuration errors, the JSON path. */
#ifndef VMCORE_CORE_ERR_H
#define VMCORE_CORE_ERR_H

#include <stddef.h>

#include "vmcore/error.h"

#define VMCORE_ERR_MSG_MAX 512
#define VMCORE_ERR_PATH_MAX 128

struct vmcore_err {
    int code;
    char msg[VMCORE_ERR_MSG_MAX];
    char path[VMCORE_ERR_PATH_MAX]; /* "" when not a config error */
};

/* Set code + formatted message; returns @code so callers can `return err_set(...)`. */
int err_set(struct vmcore_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like err_set, with strerror(errnum) appended: "open /x: No such file or directory". */
int err_sys(struct vmcore_err *e, int code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A configuration error at JSON path @path; message becomes "<path>: <text>". A NULL or
 * empty @path is "$" (the whole document): a config error's path is never empty. */
int err_config(struct vmcore_err *e, int code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Map an errno to the closest VMCORE_E* code. */
int err_from_errno(int errnum);
void err_clear(struct vmcore_err *e);

#endif
