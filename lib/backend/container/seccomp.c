/* The default seccomp filter: allow everything except calls a container has no business
 * making on a shared kernel (Docker's default profile blocks the same families).
 * Built once per domain with libseccomp in the parent and handed to the child as plain
 * BPF, so the child only needs prctl(). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <seccomp.h>

#include "ct.h"

static const char *const blocked[] = {
    /* replacing or extending the running kernel */
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "create_module", "reboot",
    /* mounting: host devices, new roots, the new mount API */
    "mount", "umount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr",
    /* host-wide state */
    "swapon", "swapoff", "acct", "settimeofday", "clock_settime", "clock_adjtime",
    "stime", "quotactl", "nfsservctl", "syslog", "iopl", "ioperm",
    "lookup_dcookie", "vhangup",
    /* kernel attack surface and escapes */
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "open_by_handle_at", "kcmp", "process_vm_readv", "process_vm_writev",
    "uselib", "ustat", "sysfs", "_sysctl",
};

int seccomp_filter_build(struct sock_fprog *out, struct vmcore_err *err)
{
    memset(out, 0, sizeof *out);
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return err_set(err, VMCORE_ENOMEM, "seccomp_init failed");
    int rc = 0, fd = -1;
    /* no_new_privs is set by caps_apply(); libseccomp must not do it early. */
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
    for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++) {
        int nr = seccomp_syscall_resolve_name(blocked[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not on this architecture */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        if (rc < 0 && rc != -EDOM) {
            err_sys(err, VMCORE_ESYS, -rc, "seccomp rule for %s", blocked[i]);
            goto out;
        }
    }
    /* ptrace only inside the container's own pid namespace is enforced by the namespace;
     * unshare/setns of new namespaces is refused by the missing CAP_SYS_ADMIN. */
    fd = memfd_create("vmcore-seccomp", MFD_CLOEXEC);
    if (fd < 0) {
        rc = err_sys(err, VMCORE_ESYS, errno, "memfd_create");
        goto out;
    }
    rc = seccomp_export_bpf(ctx, fd);
    if (rc < 0) {
        err_sys(err, VMCORE_ESYS, -rc, "seccomp_export_bpf");
        rc = VMCORE_ESYS;
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size % sizeof(struct sock_filter)) {
        rc = err_set(err, VMCORE_ESYS, "seccomp_export_bpf produced no program");
        goto out;
    }
    out->filter = malloc((size_t)st.st_size);
    if (!out->filter) {
        rc = err_set(err, VMCORE_ENOMEM, "out of memory");
        goto out;
    }
    if (pread(fd, out->filter, (size_t)st.st_size, 0) != st.st_size) {
        free(out->filter);
        out->filter = NULL;
        rc = err_sys(err, VMCORE_ESYS, errno, "read seccomp program");
        goto out;
    }
    out->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    seccomp_release(ctx);
    return rc;
}

void seccomp_filter_free(struct sock_fprog *prog)
{
    free(prog->filter);
    prog->filter = NULL;
    prog->len = 0;
}
