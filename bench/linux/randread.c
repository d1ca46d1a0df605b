/* randread DEVICE SPAN_MIB COUNT: COUNT random 4 KiB O_DIRECT reads within the first
 * SPAN_MIB MiB of DEVICE, one at a time (queue depth 1), then prints "randread N". The
 * bench's virtio-blk IOPS row runs it in the guest (static, no libc beyond glibc's static
 * one) and times it from the host between console marks. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: randread DEVICE SPAN_MIB COUNT\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY | O_DIRECT);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    uint64_t blocks = strtoull(argv[2], NULL, 0) * 256, n = strtoull(argv[3], NULL, 0);
    void *buf;
    if (!blocks || posix_memalign(&buf, 4096, 4096))
        return 1;
    uint64_t x = 88172645463325252ull, done = 0;
    for (uint64_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (pread(fd, buf, 4096, (off_t)((x % blocks) * 4096)) == 4096)
            done++;
    }
    printf("randread %llu\n", (unsigned long long)done);
    return done == n ? 0 : 1;
}
