/* The container's PID 1 when `process.init` is set: a small program of its own, exec'd
 * from a sealed memfd (container.c), so that PID 1 is not a fork of the host process (no
 * host image, heap or descriptor in it) and holds nothing but stdio (/dev/null) and, as
 * fd 3, the pipe through which it tells the host which signal ended the workload.
 *
 *   init PID STATUS GO  PID: the workload (our child, forked before this exec)
 *                       STATUS: "3" when fd 3 is the report pipe, "-" when there is none
 *                       GO: "5", the fd the workload waits on; closed once PID 1 is
 *                       non-dumpable, so the workload never runs beside a dumpable PID 1
 *
 * It arrives with every signal blocked (the mask survives execve); it waits for them with
 * rt_sigtimedwait: SIGCHLD reaps children (orphans included); any other signal is passed
 * to the workload. When the workload ends, it writes the killing signal (an int) to fd 3
 * and exits with the workload's status, 128+N for a signal.
 *
 * Freestanding: no libc (-nostdlib -static), raw system calls only. */
#include <stddef.h>

#include <asm/unistd.h>
#include <linux/prctl.h>
#include <linux/signal.h>
#include <linux/wait.h>

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
    long ret;
#if defined(__x86_64__)
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    ret = x0;
#else
#error "ct_init: no system call stub for this architecture"
#endif
    return ret;
}
#define sys(n, a, b, c, d) sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

static __attribute__((noreturn)) void leave(int code)
{
    for (;;)
        sys(__NR_exit_group, code, 0, 0, 0);
}

static long parse_int(const char *s)
{
    long v = 0;
    if (!s || !*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* The kernel's siginfo is 128 bytes; only si_signo (the first int) is read. */
struct ksiginfo {
    int signo;
    int pad[31];
};

static int main_(int argc, char **argv)
{
    sys(__NR_prctl, PR_SET_NAME, (long)"init", 0, 0);
    /* A container root without CAP_SYS_PTRACE cannot open /proc/1/fd, /mem or /environ. */
    sys(__NR_prctl, PR_SET_DUMPABLE, 0, 0, 0);
    if (argc >= 4 && argv[3][0] == '5' && argv[3][1] == 0)
        sys(__NR_close, 5, 0, 0, 0); /* releases the workload */
    long child = argc >= 3 ? parse_int(argv[1]) : -1;
    int status_fd = argc >= 3 && argv[2][0] == '3' && argv[2][1] == 0 ? 3 : -1;
    if (child <= 0)
        leave(127);
    unsigned long all = ~0ul;
    for (;;) {
        struct ksiginfo si;
        long sig = sys(__NR_rt_sigtimedwait, &all, &si, NULL, sizeof all);
        if (sig < 0)
            continue; /* EINTR */
        if (sig != SIGCHLD) {
            sys(__NR_kill, child, sig, 0, 0);
            continue;
        }
        for (;;) {
            int st = 0;
            long p = sys(__NR_wait4, -1, &st, WNOHANG, NULL);
            if (p <= 0)
                break;
            if (p != child)
                continue; /* an orphan, reaped */
            int termsig = st & 0x7f;
            if (termsig == 0)
                leave((st >> 8) & 0xff);
            /* PID 1 cannot die of a signal it sends itself: tell the host. */
            if (status_fd >= 0)
                sys(__NR_write, status_fd, &termsig, sizeof termsig, 0);
            leave(128 + termsig);
        }
    }
}

/* The entry point: the stack holds argc, then argv. */
__attribute__((noreturn, used)) void ct_init_start(long *sp)
{
    leave(main_((int)sp[0], (char **)(sp + 1)));
}

#if defined(__x86_64__)
__asm__(".text\n.global _start\n_start:\n xor %rbp, %rbp\n mov %rsp, %rdi\n and $-16, %rsp\n"
        " call ct_init_start\n hlt\n");
#elif defined(__aarch64__)
__asm__(".text\n.global _start\n_start:\n mov x0, sp\n bl ct_init_start\n");
#endif
