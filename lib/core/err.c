/* Error codes, their names and messages, and the detail struct every layer fills. */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vmcore/error.h"

static const struct {
    int code;
    const char *name;
    const char *text;
} error_table[] = {
    { VMCORE_OK, "VMCORE_OK", "success" },
    { VMCORE_EINVAL, "VMCORE_EINVAL", "invalid argument" },
    { VMCORE_ENOMEM, "VMCORE_ENOMEM", "out of memory" },
    { VMCORE_ECONFIG, "VMCORE_ECONFIG", "invalid configuration" },
    { VMCORE_ENOENT, "VMCORE_ENOENT", "no such file or object" },
    { VMCORE_EUNAVAIL, "VMCORE_EUNAVAIL", "backend unavailable on this host" },
    { VMCORE_ESTATE, "VMCORE_ESTATE", "operation not valid in the current state" },
    { VMCORE_EIO, "VMCORE_EIO", "input/output error" },
    { VMCORE_ESYS, "VMCORE_ESYS", "system call failed" },
    { VMCORE_EBUSY, "VMCORE_EBUSY", "resource busy" },
    { VMCORE_ETIMEDOUT, "VMCORE_ETIMEDOUT", "timed out" },
    { VMCORE_EIMAGE, "VMCORE_EIMAGE", "invalid guest image" },
    { VMCORE_EPERM, "VMCORE_EPERM", "operation not permitted" },
    { VMCORE_ENOTSUP, "VMCORE_ENOTSUP", "operation not supported by this backend" },
    { VMCORE_ECANCELED, "VMCORE_ECANCELED", "operation canceled" },
    { VMCORE_ELIMIT, "VMCORE_ELIMIT", "request exceeds the host's resources" },
    { VMCORE_EPARSE, "VMCORE_EPARSE", "malformed JSON" },
};

VMCORE_API const char *vmcore_strerror(int err)
{
    for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++)
        if (error_table[i].code == err)
            return error_table[i].text;
    return "unknown error";
}

VMCORE_API const char *vmcore_error_name(int err)
{
    for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++)
        if (error_table[i].code == err)
            return error_table[i].name;
    return "VMCORE_E?";
}

static void err_vset(struct vmcore_err *e, int code, const char *fmt, va_list ap)
{
    e->code = code;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
}

int err_set(struct vmcore_err *e, int code, const char *fmt, ...)
{
    if (!e)
        return code;
    va_list ap;
    va_start(ap, fmt);
    err_vset(e, code, fmt, ap);
    va_end(ap);
    e->path[0] = '\0';
    return code;
}

int err_sys(struct vmcore_err *e, int code, int errnum, const char *fmt, ...)
{
    if (!e)
        return code;
    va_list ap;
    va_start(ap, fmt);
    err_vset(e, code, fmt, ap);
    va_end(ap);
    size_t n = strlen(e->msg);
    snprintf(e->msg + n, sizeof e->msg - n, ": %s", strerror(errnum));
    e->path[0] = '\0';
    return code;
}

int err_config(struct vmcore_err *e, int code, const char *path, const char *fmt, ...)
{
    if (!e)
        return code;
    char text[VMCORE_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* A configuration error always has a path: "" (or none) is the whole document. */
    if (!path || !path[0])
        path = "$";
    e->code = code;
    snprintf(e->path, sizeof e->path, "%s", path);
    snprintf(e->msg, sizeof e->msg, "%s: %s", path, text);
    return code;
}

int err_from_errno(int errnum)
{
    switch (errnum) {
    case ENOENT: case ENOTDIR: return VMCORE_ENOENT;
    case ENOMEM: return VMCORE_ENOMEM;
    case EPERM: case EACCES: return VMCORE_EPERM;
    case EINVAL: return VMCORE_EINVAL;
    case EBUSY: return VMCORE_EBUSY;
    case ETIMEDOUT: return VMCORE_ETIMEDOUT;
    case EIO: return VMCORE_EIO;
    case ENOSYS: case EOPNOTSUPP: return VMCORE_ENOTSUP;
    default: return VMCORE_ESYS;
    }
}

void err_clear(struct vmcore_err *e)
{
    e->code = 0;
    e->msg[0] = '\0';
    e->path[0] = '\0';
}
