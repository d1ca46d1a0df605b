/* rootfs_resolve() on its own: paths inside an untrusted rootfs resolve inside it whatever
 * its symlinks say, by openat2(RESOLVE_IN_ROOT) and by the component walk used without it
 * (forced with RR_WALK); creating what is missing never creates anything outside. Each
 * test runs both ways. Needs no privilege. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vt.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/container/ct.h"

/* A tree: <base>/root (the rootfs) and <base>/host (stands for the host outside it). */
struct tree {
    char base[64], root[128], host[128];
    int rootfd;
    int fds_before;
};

static void mk(const struct tree *t, const char *rel, const char *link_to)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", t->root, rel);
    if (link_to)
        assert_int_equal(symlink(link_to, p), 0);
    else if (rel[strlen(rel) - 1] == '/')
        assert_int_equal(mkdir(p, 0755), 0);
    else {
        int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
        assert_true(fd >= 0);
        close(fd);
    }
}

static void tree_new(struct tree *t)
{
    t->fds_before = vt_count_fds();
    snprintf(t->base, sizeof t->base, "/tmp/vt-rr-XXXXXX");
    assert_non_null(mkdtemp(t->base));
    snprintf(t->root, sizeof t->root, "%s/root", t->base);
    snprintf(t->host, sizeof t->host, "%s/host", t->base);
    assert_int_equal(mkdir(t->root, 0755), 0);
    assert_int_equal(mkdir(t->host, 0755), 0);
    mk(t, "etc/", NULL);
    mk(t, "tmp/", NULL);
    mk(t, "file", NULL);
    mk(t, "etc/passwd", NULL);
    char abs_host[256], up_host[256];
    snprintf(abs_host, sizeof abs_host, "%s", t->host);               /* absolute, to the host */
    snprintf(up_host, sizeof up_host, "../../../../../../..%s", t->host); /* ".." chain to it */
    mk(t, "mnt", "/etc");            /* absolute: must mean the rootfs's /etc */
    mk(t, "abs", abs_host);          /* absolute to a host folder that the rootfs lacks */
    mk(t, "up", up_host);
    mk(t, "dots", "../../../../../..");
    mk(t, "etc/rel", "../tmp");
    mk(t, "loop1", "loop2");
    mk(t, "loop2", "loop1");
    mk(t, "dangling", "/nonexistent/x");
    t->rootfd = open(t->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert_true(t->rootfd >= 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void tree_free(struct tree *t)
{
    close(t->rootfd);
    assert_int_equal(nftw(t->base, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    assert_int_equal(vt_count_fds(), t->fds_before);
}

/* @fd (consumed) is the file @rel of the rootfs. */
static void assert_is(const struct tree *t, int fd, const char *rel)
{
    assert_true(fd >= 0);
    char p[512];
    snprintf(p, sizeof p, "%s/%s", t->root, rel);
    struct stat a, b;
    assert_int_equal(fstat(fd, &a), 0);
    assert_int_equal(lstat(p, &b), 0);
    close(fd);
    if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        fail_msg("resolved to something other than %s", p);
}

static void assert_host_empty(const struct tree *t)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s)\"", t->host);
    assert_int_equal(system(cmd), 0);
}

static void resolve_inside(unsigned walk)
{
    struct tree t;
    tree_new(&t);
    int r = t.rootfd;
    assert_is(&t, rootfs_resolve(r, "/", walk, 0), ".");
    assert_is(&t, rootfs_resolve(r, "", walk, 0), ".");
    assert_is(&t, rootfs_resolve(r, "/etc/passwd", walk, 0), "etc/passwd");
    assert_is(&t, rootfs_resolve(r, "etc//./passwd", walk, 0), "etc/passwd");
    assert_is(&t, rootfs_resolve(r, "/mnt", walk, 0), "etc");
    assert_is(&t, rootfs_resolve(r, "/mnt/passwd", walk, 0), "etc/passwd");
    assert_is(&t, rootfs_resolve(r, "/../../../etc", walk, 0), "etc");
    assert_is(&t, rootfs_resolve(r, "/dots", walk, 0), ".");
    assert_is(&t, rootfs_resolve(r, "/dots/etc/../dots/tmp", walk, 0), "tmp");
    assert_is(&t, rootfs_resolve(r, "/etc/rel", walk, 0), "tmp");
    assert_is(&t, rootfs_resolve(r, "/mnt/rel/../mnt/rel", walk, 0), "tmp");
    errno = 0;
    assert_int_equal(rootfs_resolve(r, "/abs", walk, 0), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(rootfs_resolve(r, "/up", walk, 0), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(rootfs_resolve(r, "/loop1", walk, 0), -1);
    assert_int_equal(errno, ELOOP);
    assert_int_equal(rootfs_resolve(r, "/file/x", walk, 0), -1);
    assert_int_equal(errno, ENOTDIR);
    tree_free(&t);
}

static void test_resolve_openat2(void **state) { (void)state; resolve_inside(0); }
static void test_resolve_walk(void **state) { (void)state; resolve_inside(RR_WALK); }

static void create_inside(unsigned walk)
{
    struct tree t;
    tree_new(&t);
    int r = t.rootfd;
    /* Through the absolute symlink: created in the rootfs's /etc, not the host's. */
    char name[64], rel[128], host_etc[128];
    snprintf(name, sizeof name, "vt-rr-probe-%d", (int)getpid());
    snprintf(host_etc, sizeof host_etc, "/etc/%s", name);
    snprintf(rel, sizeof rel, "/mnt/%s/sub", name);
    int fd = rootfs_resolve(r, rel, RR_MKDIR | walk, 0700);
    snprintf(rel, sizeof rel, "etc/%s/sub", name);
    assert_is(&t, fd, rel);
    assert_int_equal(access(host_etc, F_OK), -1);
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", t.root, rel);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    /* Existing: opened as is, nothing changes. */
    snprintf(rel, sizeof rel, "/mnt/%s/sub", name);
    snprintf(p, sizeof p, "etc/%s/sub", name);
    assert_is(&t, rootfs_resolve(r, rel, RR_MKDIR | walk, 0755), p);
    /* A file, its folders made on the way, through a relative symlink. */
    assert_is(&t, rootfs_resolve(r, "/etc/rel/a/b/c", RR_MKFILE | walk, 0600), "tmp/a/b/c");
    snprintf(p, sizeof p, "%s/tmp/a/b/c", t.root);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    /* ".." chains stay inside. */
    assert_is(&t, rootfs_resolve(r, "/dots/../../new1", RR_MKDIR | walk, 0755), "new1");
    /* Symlinks to places missing in the rootfs fail; nothing appears on the host side. */
    errno = 0;
    assert_int_equal(rootfs_resolve(r, "/abs/sub", RR_MKDIR | walk, 0755), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(rootfs_resolve(r, "/up/sub", RR_MKFILE | walk, 0644), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(rootfs_resolve(r, "/abs", RR_MKDIR | walk, 0755), -1);
    assert_int_equal(rootfs_resolve(r, "/dangling", RR_MKFILE | walk, 0755), -1);
    assert_int_equal(errno, ENOENT);
    assert_host_empty(&t);
    snprintf(p, sizeof p, "%s/nonexistent", t.root);
    assert_int_equal(access(p, F_OK), -1);
    /* Under a file: ENOTDIR, nothing made. */
    assert_int_equal(rootfs_resolve(r, "/file/x/y", RR_MKDIR | walk, 0755), -1);
    assert_int_equal(errno, ENOTDIR);
    /* Too long a component. */
    char longp[400];
    memset(longp, 'x', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = 0;
    assert_int_equal(rootfs_resolve(r, longp, RR_MKDIR | walk, 0755), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    tree_free(&t);
}

static void test_create_openat2(void **state) { (void)state; create_inside(0); }
static void test_create_walk(void **state) { (void)state; create_inside(RR_WALK); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_openat2),
        cmocka_unit_test(test_resolve_walk),
        cmocka_unit_test(test_create_openat2),
        cmocka_unit_test(test_create_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
