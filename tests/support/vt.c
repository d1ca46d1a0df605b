#include "vt.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void vt_missing(const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *strict = getenv("VMCORE_TEST_STRICT");
    if (strict && strcmp(strict, "1") == 0) {
        fail_msg("required by VMCORE_TEST_STRICT=1 but unavailable: %s", why);
    } else {
        print_message("skipped: %s\n", why);
        skip();
    }
}

void vt_missing_kvm(void)
{
    const char *nokvm = getenv("VMCORE_TEST_NO_KVM");
    if (nokvm && strcmp(nokvm, "1") == 0) {
        print_message("skipped: needs /dev/kvm (VMCORE_TEST_NO_KVM=1: this machine has none)\n");
        skip();
        return;
    }
    vt_missing("needs a usable /dev/kvm");
}

int vt_is_root(void) { return geteuid() == 0; }

int vt_have_kvm(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

int vt_have_userns(void)
{
    return access("/proc/self/ns/user", F_OK) == 0;
}

const char *vt_guest(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", VT_GUEST_DIR, name);
    return path;
}

static int count_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int vt_count_fds(void) { return count_dir("/proc/self/fd") - 1; /* opendir's own fd */ }
int vt_count_threads(void) { return count_dir("/proc/self/task"); }

int vt_count_children(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0, pid;
    while (fscanf(f, "%d", &pid) == 1)
        n++;
    fclose(f);
    return n;
}

static void vt_timeout_cb(uv_timer_t *t) { *(int *)t->data = 1; }

int vt_run_until(vmcore_ctx *ctx, volatile int *done, int timeout_ms)
{
    uv_loop_t *loop = vmcore_ctx_loop(ctx);
    uv_timer_t timer;
    int expired = 0;
    uv_timer_init(loop, &timer);
    timer.data = &expired;
    /* A fresh clock, and a repeating timer: the loop always has a deadline, even if the
     * timer fired at the start of a uv_run(UV_RUN_ONCE) that then polls a quiet loop. */
    uv_update_time(loop);
    uv_timer_start(&timer, vt_timeout_cb, (uint64_t)timeout_ms, 10);
    while (!*done && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT); /* let the timer's close finish */
    return *done;
}
