/* The guest side of bench/run's vsock rows (static, runs in the initramfs).
 *   vsockperf send PORT MIB: connect to the host (CID 2) on PORT, write MIB MiB, close.
 *   vsockperf recv PORT: connect to the host on PORT, read until EOF.
 * Prints the byte count it moved; the host times it between console marks. */
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "send") && strcmp(argv[1], "recv"))) {
        fprintf(stderr, "usage: vsockperf send PORT MIB | recv PORT\n");
        return 2;
    }
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = 2,
                             .svm_port = (unsigned)atoi(argv[2]) };
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("vsockperf: connect");
        return 1;
    }
    static char buf[256 << 10];
    unsigned long long total = 0;
    if (!strcmp(argv[1], "send")) {
        unsigned long long want = (argc > 3 ? strtoull(argv[3], NULL, 10) : 64) << 20;
        memset(buf, 0x5a, sizeof buf);
        while (total < want) {
            size_t n = want - total < sizeof buf ? (size_t)(want - total) : sizeof buf;
            ssize_t w = write(s, buf, n);
            if (w <= 0) {
                perror("vsockperf: write");
                return 1;
            }
            total += (unsigned long long)w;
        }
    } else {
        for (;;) {
            ssize_t n = read(s, buf, sizeof buf);
            if (n < 0) {
                perror("vsockperf: read");
                return 1;
            }
            if (n == 0)
                break;
            total += (unsigned long long)n;
        }
    }
    close(s);
    printf("vsockperf %s %llu\n", argv[1], total);
    return 0;
}
