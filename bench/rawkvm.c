/* rawkvm: the smallest honest KVM program, the peer our kvm backend is measured against.
 *
 * One VM, one memslot, one vCPU started directly in 32-bit protected mode (the state a
 * multiboot loader leaves), running a 27-byte guest:
 *     out 0x3f8 <- 'K'            first console byte
 *     N times: out 0x80 <- al     exit round trips
 *     out 0xf4 <- 0               debug-exit, status 0
 * It times open(/dev/kvm) -> first console byte -> debug-exit -> everything closed, and
 * the per-exit round trip over the N-iteration loop. One line of JSON per run on stdout.
 *
 * usage: rawkvm [--runs R] [--exits N] */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define GUEST_MEM (2u << 20)
#define GUEST_LOAD 0x100000u /* 1 MiB, where multiboot kernels usually sit */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Hand-assembled (nasm -f bin, bits 32); the immediate at offset 9 is N. */
static const uint8_t guest_code[] = {
    0xb0, 'K',                   /* mov al, 'K'      */
    0x66, 0xba, 0xf8, 0x03,      /* mov dx, 0x3f8    */
    0xee,                        /* out dx, al       */
    0xb9, 0, 0, 0, 0,            /* mov ecx, N       (offset 8) */
    0x85, 0xc9,                  /* test ecx, ecx    */
    0x74, 0x05,                  /* jz done          */
    0xe6, 0x80,                  /* loop: out 0x80, al */
    0x49,                        /* dec ecx          */
    0x75, 0xfb,                  /* jnz loop         */
    0xb0, 0x00,                  /* done: mov al, 0  */
    0xe6, 0xf4,                  /* out 0xf4, al     */
    0xf4,                        /* hlt (not reached) */
};
#define GUEST_N_OFFSET 8

struct run_times {
    uint64_t first_byte_ns, exit_ns, total_ns, loop_ns, exits;
};

static int fail(const char *what)
{
    fprintf(stderr, "rawkvm: %s: %s\n", what, strerror(errno));
    return -1;
}

static void set_flat(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
    memset(s, 0, sizeof *s);
    s->selector = sel;
    s->base = 0;
    s->limit = 0xffffffff;
    s->type = type;
    s->present = 1;
    s->s = 1;
    s->db = 1;
    s->g = 1;
}

static int one_run(uint32_t n_exits, struct run_times *t)
{
    int kvm = -1, vm = -1, vcpu = -1, rc = -1;
    void *mem = MAP_FAILED;
    struct kvm_run *run = MAP_FAILED;
    long run_size = 0;
    uint64_t t0 = now_ns(), t_first = 0, t_exit = 0;

    memset(t, 0, sizeof *t);
    kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        fail("open /dev/kvm");
        goto out;
    }
    vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) {
        fail("KVM_CREATE_VM");
        goto out;
    }
    mem = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
               -1, 0);
    if (mem == MAP_FAILED) {
        fail("mmap guest memory");
        goto out;
    }
    {
        uint8_t *code = (uint8_t *)mem + (GUEST_LOAD & (GUEST_MEM - 1));
        memcpy(code, guest_code, sizeof guest_code);
        memcpy(code + GUEST_N_OFFSET, &n_exits, 4);
    }
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = GUEST_LOAD & ~(uint64_t)(GUEST_MEM - 1),
        .memory_size = GUEST_MEM, .userspace_addr = (uint64_t)(uintptr_t)mem,
    };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        fail("KVM_SET_USER_MEMORY_REGION");
        goto out;
    }
    vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) {
        fail("KVM_CREATE_VCPU");
        goto out;
    }
    run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size <= 0) {
        fail("KVM_GET_VCPU_MMAP_SIZE");
        goto out;
    }
    run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) {
        fail("mmap kvm_run");
        goto out;
    }
    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
        fail("KVM_GET_SREGS");
        goto out;
    }
    set_flat(&sregs.cs, 0x08, 0xb); /* execute/read, accessed */
    set_flat(&sregs.ds, 0x10, 0x3); /* read/write, accessed */
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    sregs.cr0 |= 1; /* PE, no paging: the multiboot hand-off state */
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) {
        fail("KVM_SET_SREGS");
        goto out;
    }
    struct kvm_regs regs = { .rip = GUEST_LOAD, .rflags = 0x2 };
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
        fail("KVM_SET_REGS");
        goto out;
    }
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR)
                continue;
            fail("KVM_RUN");
            goto out;
        }
        t->exits++;
        if (run->exit_reason != KVM_EXIT_IO) {
            fprintf(stderr, "rawkvm: unexpected exit reason %u\n", run->exit_reason);
            goto out;
        }
        uint8_t val = *((uint8_t *)run + run->io.data_offset);
        if (run->io.port == 0x3f8 && !t_first) {
            t_first = now_ns();
        } else if (run->io.port == 0xf4) {
            t_exit = now_ns();
            if (val != 0) {
                fprintf(stderr, "rawkvm: guest exit status %u\n", val);
                goto out;
            }
            break;
        }
    }
    rc = 0;
out:
    if (run != MAP_FAILED)
        munmap(run, (size_t)run_size);
    if (vcpu >= 0)
        close(vcpu);
    if (vm >= 0)
        close(vm);
    if (mem != MAP_FAILED)
        munmap(mem, GUEST_MEM);
    if (kvm >= 0)
        close(kvm);
    if (rc == 0) {
        t->first_byte_ns = t_first - t0;
        t->exit_ns = t_exit - t0;
        t->total_ns = now_ns() - t0;
        t->loop_ns = t_exit - t_first;
    }
    return rc;
}

int main(int argc, char **argv)
{
    unsigned runs = 5;
    uint32_t n_exits = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = (unsigned)strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--exits") && i + 1 < argc) {
            n_exits = (uint32_t)strtoul(argv[++i], NULL, 0);
        } else {
            fprintf(stderr, "usage: %s [--runs R] [--exits N]\n", argv[0]);
            return 2;
        }
    }
    for (unsigned r = 0; r < runs; r++) {
        struct run_times t;
        if (one_run(n_exits, &t) < 0)
            return 1;
        printf("{\"first_byte_ns\": %llu, \"exit_ns\": %llu, \"total_ns\": %llu, "
               "\"loop_ns\": %llu, \"exits\": %llu, \"loop_exits\": %u}\n",
               (unsigned long long)t.first_byte_ns, (unsigned long long)t.exit_ns,
               (unsigned long long)t.total_ns, (unsigned long long)t.loop_ns,
               (unsigned long long)t.exits, n_exits);
        fflush(stdout);
    }
    return 0;
}
