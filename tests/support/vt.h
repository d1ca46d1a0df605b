/* Shared helpers for the cmocka tests. */
#ifndef VT_H
#define VT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmcore/vmcore.h"

/* Skip the current test when @cond is false, or fail it when VMCORE_TEST_STRICT=1
 * (CI): there, a test that needs root, namespaces or /dev/kvm must run. The one
 * exception is a machine with no /dev/kvm at all: .ci/run then sets VMCORE_TEST_NO_KVM=1
 * (and says so), and tests that need kvm skip even under VMCORE_TEST_STRICT=1. */
#define vt_require(cond, ...) \
    do { if (!(cond)) { vt_missing(__VA_ARGS__); return; } } while (0)
void vt_missing(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int vt_is_root(void);
int vt_have_kvm(void);          /* /dev/kvm opens read-write */
int vt_have_userns(void);

#define vt_require_root() vt_require(vt_is_root(), "needs root")
#define vt_require_kvm() \
    do { if (!vt_have_kvm()) { vt_missing_kvm(); return; } } while (0)
void vt_missing_kvm(void);

/* Path of a guest built from tests/guests/ (static buffer). */
const char *vt_guest(const char *name);

/* Count open file descriptors of this process (for leak checks). */
int vt_count_fds(void);
/* Count threads of this process. */
int vt_count_threads(void);
/* Count direct children of this process that still exist (zombies included). */
int vt_count_children(void);

/* Run the context's loop until @done is non-zero or @timeout_ms passes; returns *done. */
int vt_run_until(vmcore_ctx *ctx, volatile int *done, int timeout_ms);

#endif
