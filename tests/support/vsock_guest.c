/* The guest side of tests/linux/test_linux_vsock.py (static, runs in the initramfs):
 * (a) listens on vsock port 5000 and echoes one connection until EOF; (b) connects to
 * CID 2 port 6000 and sends 256 KiB of a known pattern, then closes. Prints markers. */
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int echo_server(void)
{
    int l = socket(AF_VSOCK, SOCK_STREAM, 0);
    struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = 5000 };
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0) {
        perror("VMCORE-VSOCK-FAIL listen");
        return 1;
    }
    printf("VMCORE-VSOCK-LISTENING\n");
    fflush(stdout);
    int c = accept(l, NULL, NULL);
    if (c < 0) {
        perror("VMCORE-VSOCK-FAIL accept");
        return 1;
    }
    static char buf[65536];
    unsigned long total = 0;
    for (;;) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(c, buf + off, (size_t)(n - off));
            if (w <= 0)
                return 1;
            off += w;
        }
        total += (unsigned long)n;
    }
    printf("VMCORE-VSOCK-ECHOED %lu\n", total);
    fflush(stdout);
    close(c);
    return 0;
}

static int client(void)
{
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = 2, .svm_port = 6000 };
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("VMCORE-VSOCK-FAIL connect");
        return 1;
    }
    static unsigned char buf[256 << 10];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 7 + 3);
    for (size_t off = 0; off < sizeof buf;) {
        ssize_t w = write(s, buf + off, sizeof buf - off);
        if (w <= 0) {
            perror("VMCORE-VSOCK-FAIL write");
            return 1;
        }
        off += (size_t)w;
    }
    shutdown(s, SHUT_WR);
    char c;
    while (read(s, &c, 1) > 0) {
    }
    printf("VMCORE-VSOCK-SENT %zu\n", sizeof buf);
    fflush(stdout);
    close(s);
    return 0;
}

int main(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(echo_server());
    int rc = client();
    int st;
    waitpid(p, &st, 0);
    if (rc || !WIFEXITED(st) || WEXITSTATUS(st))
        return 1;
    printf("VMCORE-VSOCK-DONE\n");
    return 0;
}
