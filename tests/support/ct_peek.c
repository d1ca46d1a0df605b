/* Runs inside a test container (static, copied into the rootfs) and tries what a hostile
 * container root would: look through /proc for descriptors and images of the host.
 *
 *   ct_peek watch STOPFILE   until STOPFILE exists, poll every process's fd links and
 *                            exe; print "LEAK ..." for anything naming the host's secret
 *                            folder ("vt-secret") or the host's test binary ("test_")
 *   ct_peek pid1             the same checks once against /proc/1, plus /proc/1/mem
 *
 * Prints "done N" (N = processes looked at) at the end. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long seen;

static int leaky(const char *link)
{
    return strstr(link, "vt-secret") || strstr(link, "/test_") || strstr(link, "/work/");
}

static void peek(const char *pid)
{
    char path[300], link[4096];
    seen++;
    snprintf(path, sizeof path, "/proc/%s/exe", pid);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n > 0) {
        link[n] = 0;
        if (leaky(link))
            printf("LEAK exe %s -> %s\n", path, link);
    }
    snprintf(path, sizeof path, "/proc/%s/fd", pid);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char fp[600];
        snprintf(fp, sizeof fp, "%s/%s", path, e->d_name);
        n = readlink(fp, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = 0;
        if (!leaky(link))
            continue;
        /* Opening through the link is what reads the host's file. */
        int fd = open(fp, O_RDONLY | O_NONBLOCK);
        printf("LEAK fd %s -> %s%s\n", fp, link, fd >= 0 ? " (opened)" : "");
        if (fd >= 0)
            close(fd);
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char self[32];
    snprintf(self, sizeof self, "%d", (int)getpid());
    if (argc == 2 && !strcmp(argv[1], "pid1")) {
        peek("1");
        int fd = open("/proc/1/mem", O_RDONLY);
        if (fd >= 0) {
            printf("LEAK /proc/1/mem opened\n");
            close(fd);
        }
        FILE *f = fopen("/proc/1/maps", "r");
        char line[4096];
        while (f && fgets(line, sizeof line, f))
            if (leaky(line))
                printf("LEAK /proc/1/maps: %s", line);
        if (f)
            fclose(f);
        printf("done %ld\n", seen);
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "watch")) {
        fprintf(stderr, "usage: ct_peek watch STOPFILE | ct_peek pid1\n");
        return 2;
    }
    while (access(argv[2], F_OK) != 0) {
        DIR *p = opendir("/proc");
        if (!p)
            return 1;
        struct dirent *e;
        while ((e = readdir(p)))
            if (e->d_name[0] >= '1' && e->d_name[0] <= '9' && strcmp(e->d_name, self))
                peek(e->d_name);
        closedir(p);
    }
    printf("done %ld\n", seen);
    return 0;
}
