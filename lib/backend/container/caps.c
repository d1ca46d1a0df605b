/* Capabilities of the container's processes (child side, between clone3 and execve). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "ct.h"

uint64_t caps_default_mask(void)
{
    /* Docker's default set. */
    static const int keep[] = {
        CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_NET_RAW,
        CAP_SETGID, CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE,
        CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE,
    };
    uint64_t m = 0;
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        m |= 1ull << keep[i];
    return m;
}

int caps_apply(uint64_t keep, uint32_t uid, uint32_t gid, bool userns, struct ct_child_err *e)
{
    for (int cap = 0; cap < 64; cap++) {
        if (keep & (1ull << cap))
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL)
                break; /* past the kernel's last capability */
            return ct_child_fail(e, VMCORE_ESYS, errno, "drop capability %d from the bounding set", cap);
        }
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return ct_child_fail(e, VMCORE_ESYS, errno, "clear ambient capabilities");
    /* Raw system calls: glibc's wrappers would make every thread of the process change
     * its ids (the setxid broadcast) and wait forever for the parent's threads, which do
     * not exist in this child. Only this thread exists, so the raw call is enough. */
    if (syscall(SYS_setgroups, 0, NULL) < 0 && !(userns && errno == EPERM))
        return ct_child_fail(e, VMCORE_ESYS, errno, "setgroups");
    if (syscall(SYS_setresgid, gid, gid, gid) < 0)
        return ct_child_fail(e, VMCORE_ECONFIG, errno, "process.gid: setresgid(%u)", gid);
    if (syscall(SYS_setresuid, uid, uid, uid) < 0)
        return ct_child_fail(e, VMCORE_ECONFIG, errno, "process.uid: setresuid(%u)", uid);
    if (uid == 0) {
        struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct d[2];
        memset(d, 0, sizeof d);
        d[0].effective = d[0].permitted = d[0].inheritable = (uint32_t)keep;
        d[1].effective = d[1].permitted = d[1].inheritable = (uint32_t)(keep >> 32);
        if (syscall(SYS_capset, &h, d) < 0)
            return ct_child_fail(e, VMCORE_ESYS, errno, "capset");
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return ct_child_fail(e, VMCORE_ESYS, errno, "prctl(PR_SET_NO_NEW_PRIVS)");
    return 0;
}
