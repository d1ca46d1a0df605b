/**
 * @file error.h
 * @brief Error codes returned by every libvmcore function.
 *
 * Functions return 0 on success or one of the negative `VMCORE_E*` codes
 * below. The human-readable detail of the most recent failure on a handle is
 * available from vmcore_ctx_last_error() or vmcore_domain_last_error().
 */
#ifndef VMCORE_ERROR_H
#define VMCORE_ERROR_H

#include "common.h"

VMCORE_BEGIN_DECLS

/** Error codes. All are negative; 0 (#VMCORE_OK) means success. */
typedef enum vmcore_error {
    VMCORE_OK = 0,           /**< Success. */
    VMCORE_EINVAL = -1,      /**< An argument was invalid (for example NULL). */
    VMCORE_ENOMEM = -2,      /**< Out of memory. */
    VMCORE_ECONFIG = -3,     /**< The configuration is invalid; the detail names the JSON path. */
    VMCORE_ENOENT = -4,      /**< A file named by the configuration or a caller does not exist. */
    VMCORE_EUNAVAIL = -5,    /**< The requested backend cannot run on this host; the detail says why. */
    VMCORE_ESTATE = -6,      /**< The operation is not valid in the domain's current state. */
    VMCORE_EIO = -7,         /**< An I/O error while reading an image or talking to the kernel. */
    VMCORE_ESYS = -8,        /**< A system call failed; the detail names it and its errno. */
    VMCORE_EBUSY = -9,       /**< The handle still has work in flight (for example live domains). */
    VMCORE_ETIMEDOUT = -10,  /**< A timeout expired. */
    VMCORE_EIMAGE = -11,     /**< A guest image is malformed, truncated or does not fit in memory. */
    VMCORE_EPERM = -12,      /**< The caller lacks a privilege the operation needs. */
    VMCORE_ENOTSUP = -13,    /**< The backend does not support this operation. */
    VMCORE_ECANCELED = -14,  /**< The operation was canceled (for example by close). */
    VMCORE_ELIMIT = -15,     /**< A requested resource exceeds what the host has. */
    VMCORE_EPARSE = -16      /**< Malformed JSON; the detail gives line and column. */
} vmcore_error;

/**
 * Describe an error code in one short English sentence.
 *
 * @param err A `VMCORE_E*` code (or 0).
 * @return A static string; "unknown error" for codes this version does not know. Never NULL.
 */
VMCORE_API const char *vmcore_strerror(int err);

/**
 * Name an error code as its C identifier ("VMCORE_ECONFIG").
 *
 * @param err A `VMCORE_E*` code (or 0).
 * @return A static string; "VMCORE_E?" for unknown codes. Never NULL.
 */
VMCORE_API const char *vmcore_error_name(int err);

VMCORE_END_DECLS

#endif /* VMCORE_ERROR_H */
