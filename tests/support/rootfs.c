#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "rootfs.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUSYBOX "/bin/busybox"

static int copy_file(const char *src, const char *dst, mode_t mode)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    struct stat st;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    int rc = -1;
    if (out >= 0 && fstat(in, &st) == 0) {
        off_t off = 0;
        rc = 0;
        while (off < st.st_size)
            if (sendfile(out, in, &off, (size_t)(st.st_size - off)) <= 0) {
                rc = -1;
                break;
            }
    }
    if (out >= 0)
        close(out);
    close(in);
    return rc;
}

char *vt_rootfs_make(void)
{
    /* busybox-static runs in an empty rootfs; a dynamic one would not. */
    FILE *f = popen(BUSYBOX " --list 2>/dev/null", "r");
    if (!f)
        return NULL;
    char tmpl[] = "/tmp/vt-rootfs-XXXXXX";
    char *dir = mkdtemp(tmpl) ? strdup(tmpl) : NULL;
    int ok = dir != NULL && chmod(dir, 0755) == 0; /* mkdtemp makes it 0700 */
    static const char *const dirs[] = { "bin", "sbin", "usr", "usr/bin", "usr/sbin", "proc",
                                        "sys", "dev", "tmp", "etc", "root", "mnt" };
    char p[4096], name[256];
    for (size_t i = 0; ok && i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, dirs[i]);
        ok = mkdir(p, strcmp(dirs[i], "tmp") ? 0755 : 01777) == 0;
    }
    if (ok) {
        snprintf(p, sizeof p, "%s/tmp", dir);
        chmod(p, 01777);
        snprintf(p, sizeof p, "%s/bin/busybox", dir);
        ok = copy_file(BUSYBOX, p, 0755) == 0;
    }
    int applets = 0;
    while (ok && fgets(name, sizeof name, f)) {
        name[strcspn(name, "\n")] = 0;
        if (!*name || strchr(name, '/') || strcmp(name, "busybox") == 0)
            continue;
        snprintf(p, sizeof p, "%s/bin/%s", dir, name);
        if (symlink("busybox", p) == 0)
            applets++;
    }
    if (pclose(f) != 0 || applets == 0)
        ok = 0;
    if (ok) {
        snprintf(p, sizeof p, "%s/etc/passwd", dir);
        FILE *pw = fopen(p, "w");
        ok = pw && fputs("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n", pw) >= 0;
        if (pw)
            fclose(pw);
    }
    if (!ok && dir) {
        vt_rootfs_free(dir);
        return NULL;
    }
    return dir;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void vt_rootfs_free(char *dir)
{
    if (!dir)
        return;
    if (strncmp(dir, "/tmp/vt-rootfs-", 15) == 0)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}
