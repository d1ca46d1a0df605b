/**
 * @file probe.h
 * @brief Ask which backends can run on this host, and why not.
 */
#ifndef VMCORE_PROBE_H
#define VMCORE_PROBE_H

#include "common.h"

VMCORE_BEGIN_DECLS

/** Version of #vmcore_probe_result this header describes. */
#define VMCORE_PROBE_RESULT_VERSION 1

/** Flags in vmcore_probe_result::flags. */
enum vmcore_probe_flags {
    /** Guest code at CPL 0 runs natively (real VMX/SVM). Clear on software-assisted KVM. */
    VMCORE_PROBE_NATIVE_SUPERVISOR = 1u << 0,
    /** Guest code at CPL 3 runs natively. */
    VMCORE_PROBE_NATIVE_USER = 1u << 1,
    /** The backend can boot a Linux kernel at a useful speed. Without it "auto" gives a
     *  Linux guest to another backend, and naming this one for a Linux guest fails with
     *  #VMCORE_EUNAVAIL. */
    VMCORE_PROBE_LINUX_BOOT = 1u << 2,
    /** Containers: user namespaces are available to this caller. */
    VMCORE_PROBE_USERNS = 1u << 3,
    /** Containers: cgroup v2 is the controlling hierarchy. */
    VMCORE_PROBE_CGROUP2 = 1u << 4,
    /** Containers: cgroup v1 (or hybrid) controllers are in use. */
    VMCORE_PROBE_CGROUP1 = 1u << 5
};

/** What vmcore_probe() found out about one backend. */
typedef struct vmcore_probe_result {
    unsigned int version;  /**< Set to #VMCORE_PROBE_RESULT_VERSION before the call. */
    char backend[16];      /**< The backend's name ("kvm"). */
    int available;         /**< 1 if a domain can be started on it, else 0. */
    unsigned int flags;    /**< A set of #vmcore_probe_flags. */
    char reason[256];      /**< When unavailable: why. Else empty. */
    char details[512];     /**< Free-form facts ("api 12; irqchip; guest CPL0 emulated by host"). */
} vmcore_probe_result;

/** Initialise a #vmcore_probe_result before passing it to vmcore_probe(). */
#define VMCORE_PROBE_RESULT_INIT { VMCORE_PROBE_RESULT_VERSION, {0}, 0, 0, {0}, {0} }

/**
 * Probe one backend.
 *
 * @param backend  "kvm", "emu", "container", or "auto" (reports the backend auto would pick
 *                 for a guest that is not a Linux kernel).
 * @param[in,out] out  A result initialised with #VMCORE_PROBE_RESULT_INIT; filled in
 *                     whether or not the backend is available.
 * @return 0 if the backend is available; #VMCORE_EUNAVAIL if not (see @c out->reason);
 *         #VMCORE_EINVAL for a NULL argument, a wrong version or an unknown backend name.
 */
VMCORE_API int vmcore_probe(const char *backend, vmcore_probe_result *out);

/**
 * The names of all backends this build knows, NULL-terminated, in probe order.
 *
 * @return A static array. Never fails.
 */
VMCORE_API const char *const *vmcore_backend_names(void);

VMCORE_END_DECLS

#endif /* VMCORE_PROBE_H */
