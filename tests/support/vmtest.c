/* The guest suite shared by test_kvm.c and test_emu.c: see vmtest.h. */
#include "vmtest.h"

#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void on_event(const vmcore_event *ev, void *arg)
{
    struct vmt_run *r = arg;
    switch (ev->type) {
    case VMCORE_EVENT_CONSOLE:
        if (r->outlen + ev->u.console.len < sizeof r->out) {
            memcpy(r->out + r->outlen, ev->u.console.data, ev->u.console.len);
            r->outlen += ev->u.console.len;
            r->out[r->outlen] = 0;
        }
        if (r->wait_for && strstr(r->out, r->wait_for))
            r->seen = 1;
        break;
    case VMCORE_EVENT_EXIT:
        r->exit = ev->u.exit;
        snprintf(r->reason, sizeof r->reason, "%s", ev->u.exit.reason);
        r->exit.reason = r->reason;
        break;
    case VMCORE_EVENT_STATE:
        r->last_state = ev->u.state.new_state;
        if (ev->u.state.new_state == VMCORE_STATE_STOPPED ||
            ev->u.state.new_state == VMCORE_STATE_CRASHED)
            r->ended = 1;
        break;
    default:
        break;
    }
}

void vmt_on_done(vmcore_domain *d, int status, void *arg)
{
    (void)d;
    *(int *)arg = status == 0 ? 1 : -1;
}

void vmt_on_closed(vmcore_domain *d, void *arg)
{
    (void)d;
    *(int *)arg = 1;
}

const char *vmt_json(const char *backend, const char *guest, const char *boot_extra,
                     const char *top_extra)
{
    static char json[2048];
    snprintf(json, sizeof json,
             "{\"name\": \"t\", \"backend\": \"%s\", \"memory_mib\": 16%s%s,"
             " \"boot\": {\"kernel\": \"%s\"%s%s}}",
             backend, top_extra ? ", " : "", top_extra ? top_extra : "", vt_guest(guest),
             boot_extra ? ", " : "", boot_extra ? boot_extra : "");
    return json;
}

void vmt_open(struct vmt_run *r, const char *json)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(vmcore_ctx_new(&r->ctx, NULL), 0);
    int rc = vmcore_domain_new_json(&r->d, r->ctx, json);
    if (rc)
        fail_msg("domain_new: %s: %s", vmcore_strerror(rc), vmcore_ctx_last_error(r->ctx));
    assert_true(vmcore_domain_subscribe(r->d, VMCORE_EVENT_ALL, on_event, r) > 0);
    assert_int_equal(vmcore_domain_start(r->d, vmt_on_done, &r->started), 0);
}

void vmt_close(struct vmt_run *r)
{
    vmcore_domain_close(r->d, vmt_on_closed, &r->closed);
    assert_true(vt_run_until(r->ctx, &r->closed, VMT_WAIT_MS));
    assert_int_equal(vmcore_ctx_free(r->ctx), 0);
}

void vmt_wait_output(struct vmt_run *r, const char *text)
{
    r->seen = 0;
    r->wait_for = text;
    if (!vt_run_until(r->ctx, &r->seen, VMT_WAIT_MS))
        fail_msg("waited for \"%s\", the guest printed \"%s\"", text, r->out);
}

void vmt_kill(struct vmt_run *r)
{
    int killed = 0;
    assert_int_equal(vmcore_domain_kill(r->d, vmt_on_done, &killed), 0);
    assert_true(vt_run_until(r->ctx, &r->ended, VMT_WAIT_MS));
    assert_true(vt_run_until(r->ctx, &killed, VMT_WAIT_MS));
    assert_int_equal(killed, 1);
    assert_int_equal(r->exit.kind, VMCORE_EXIT_SIGNAL);
    assert_int_equal(r->exit.signal, SIGKILL);
}

void vmt_boot_expect(const char *backend, const char *guest, const char *boot_extra,
                     const char *expect_out, vmcore_exit_kind kind, int status)
{
    struct vmt_run r;
    vmt_open(&r, vmt_json(backend, guest, boot_extra, NULL));
    assert_true(vt_run_until(r.ctx, &r.ended, VMT_WAIT_MS));
    if (strcmp(r.out, expect_out) != 0)
        fail_msg("%s printed \"%s\", expected \"%s\"", guest, r.out, expect_out);
    if (r.exit.kind != kind || r.exit.status != status)
        fail_msg("%s ended with kind %d status %d (%s), expected kind %d status %d", guest,
                 r.exit.kind, r.exit.status, r.reason, kind, status);
    assert_string_equal(vmcore_domain_backend(r.d), backend);
    vmt_close(&r);
}

void vmt_boot_capture(const char *backend, const char *guest, const char *boot_extra,
                      char *out, size_t outsz, vmcore_exit *ex)
{
    struct vmt_run r;
    vmt_open(&r, vmt_json(backend, guest, boot_extra, NULL));
    assert_true(vt_run_until(r.ctx, &r.ended, VMT_WAIT_MS));
    snprintf(out, outsz, "%s", r.out);
    *ex = r.exit;
    ex->reason = NULL;
    vmt_close(&r);
}

/* ---- the shared tests ---- */

/* Counts of threads and fds before a domain, for the leak checks after it. The first loop
 * of a process makes libuv open its process-wide signal pipe (two fds that stay until
 * exit), so a context is made and freed first: a test that runs alone or first counts the
 * same as one that runs after others. */
static void baseline(int *threads, int *fds)
{
    vmcore_ctx *ctx;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
    *threads = vt_count_threads();
    *fds = vt_count_fds();
}

/* The thread count once it is @want, or after the safety net (then each thread's name,
 * state and wait channel are printed). */
static int wait_threads(int want)
{
    int n;
    for (int waited = 0; (n = vt_count_threads()) != want && waited < VMT_WAIT_MS; waited++)
        nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
    if (n != want) {
        DIR *dir = opendir("/proc/self/task");
        struct dirent *e;
        while (dir && (e = readdir(dir))) {
            char path[300], stat[512] = "", wchan[128] = "";
            FILE *f;
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
            if ((f = fopen(path, "r"))) {
                if (!fgets(stat, sizeof stat, f))
                    stat[0] = 0;
                fclose(f);
            }
            snprintf(path, sizeof path, "/proc/self/task/%s/wchan", e->d_name);
            if ((f = fopen(path, "r"))) {
                if (!fgets(wchan, sizeof wchan, f))
                    wchan[0] = 0;
                fclose(f);
            }
            print_message("thread %.60s wchan %s\n", stat, wchan);
        }
        if (dir)
            closedir(dir);
    }
    return n;
}

/* The backend a shared test runs on; "kvm" needs a usable /dev/kvm. */
#define BACKEND(state) ((const char *)*(state))
#define REQUIRE_BACKEND(be) \
    do { if (strcmp((be), "kvm") == 0) vt_require_kvm(); } while (0)

void vmt_test_real_mode(void **state)
{
    const char *be = BACKEND(state);
    REQUIRE_BACKEND(be);
    vmt_boot_expect(be, "real.bin",
                    "\"format\": \"raw\", \"mode\": \"real\", \"load_address\": 31744",
                    "real mode ok\n", VMCORE_EXIT_STATUS, 0);
}

void vmt_test_protected_mode(void **state)
{
    const char *be = BACKEND(state);
    REQUIRE_BACKEND(be);
    vmt_boot_expect(be, "protected.bin", "\"format\": \"raw\", \"mode\": \"protected\"",
                    "protected mode ok\n", VMCORE_EXIT_STATUS, 0);
}

void vmt_test_long_mode(void **state)
{
    const char *be = BACKEND(state);
    REQUIRE_BACKEND(be);
    vmt_boot_expect(be, "long.bin", "\"format\": \"raw\", \"mode\": \"long\"",
                    "long mode ok\n", VMCORE_EXIT_STATUS, 0);
    vmt_boot_expect(be, "long.elf", "\"format\": \"elf\"", "long mode ok\n",
                    VMCORE_EXIT_STATUS, 0);
}

void vmt_test_multiboot_c_guest(void **state)
{
    const char *be = BACKEND(state);
    REQUIRE_BACKEND(be);
    vmt_boot_expect(be, "multiboot.elf", "\"format\": \"multiboot\", \"cmdline\": \"a b c\"",
                    "primes below 10000: 1229\ncrc32: cbf43926\ncmdline: a b c\n"
                    "mem_upper: 15360 KiB\n", VMCORE_EXIT_STATUS, 0);
    /* "auto" recognises the multiboot header */
    vmt_boot_expect(be, "multiboot.elf", "\"format\": \"auto\"",
                    "primes below 10000: 1229\ncrc32: cbf43926\ncmdline: \n"
                    "mem_upper: 15360 KiB\n", VMCORE_EXIT_STATUS, 0);
}

void vmt_test_string_io(void **state)
{
    const char *be = BACKEND(state);
    REQUIRE_BACKEND(be);
    vmt_boot_expect(be, "strio.bin", "\"format\": \"raw\", \"mode\": \"protected\"",
                    "string io ok\n", VMCORE_EXIT_STATUS, 0);
}

void vmt_test_exit_status(void **state)
{
    const char *be = BACKEND(state);
    REQUIRE_BACKEND(be);
    vmt_boot_expect(be, "exit42.bin", "\"format\": \"raw\"", "", VMCORE_EXIT_STATUS, 42);
}

void vmt_test_cpl3(void **state)
{
    const char *be = BACKEND(state);
    REQUIRE_BACKEND(be);
    vmt_boot_expect(be, "user.bin", "\"format\": \"raw\", \"mode\": \"long\"",
                    "user mode ok\n", VMCORE_EXIT_STATUS, 0);
}

void vmt_test_triple_fault(void **state)
{
    const char *be = BACKEND(state);
    REQUIRE_BACKEND(be);
    int threads, fds;
    baseline(&threads, &fds);
    struct vmt_run r;
    vmt_open(&r, vmt_json(be, "triple.bin", "\"format\": \"raw\"", NULL));
    assert_true(vt_run_until(r.ctx, &r.ended, VMT_WAIT_MS));
    assert_string_equal(r.out, "about to triple fault\n");
    assert_int_equal(r.exit.kind, VMCORE_EXIT_CRASH);
    assert_non_null(strstr(r.reason, "triple fault"));
    assert_int_equal(vmcore_domain_state(r.d), VMCORE_STATE_CRASHED);
    vmt_close(&r);
    assert_int_equal(vt_count_threads(), threads);
    assert_int_equal(vt_count_fds(), fds);
}

void vmt_test_kill_loop(void **state)
{
    const char *be = BACKEND(state);
    REQUIRE_BACKEND(be);
    int threads, fds;
    baseline(&threads, &fds);
    struct vmt_run r;
    vmt_open(&r, vmt_json(be, "loop.bin", "\"format\": \"raw\"", NULL));
    vmt_wait_output(&r, "looping\n");
    assert_int_equal(vmcore_domain_state(r.d), VMCORE_STATE_RUNNING);
    vmt_kill(&r);
    /* emu's vCPU thread ends by itself, before close joins it (it posts the exit a moment
     * before it returns, so the count is awaited, not read once). Not kvm: the kernel's
     * per-VM worker (kvm-nx-lpage-recovery) is a task of this process until the VM fd
     * closes. */
    if (strcmp(be, "emu") == 0)
        assert_int_equal(wait_threads(threads), threads);
    vmt_close(&r);
    assert_int_equal(vt_count_threads(), threads);
    assert_int_equal(vt_count_fds(), fds);
}

void vmt_test_shutdown_loop(void **state)
{
    const char *be = BACKEND(state);
    REQUIRE_BACKEND(be);
    struct vmt_run r;
    vmt_open(&r, vmt_json(be, "loop.bin", "\"format\": \"raw\"", NULL));
    vmt_wait_output(&r, "looping\n");
    int done = 0;
    assert_int_equal(vmcore_domain_shutdown(r.d, 60000, vmt_on_done, &done), 0);
    assert_true(vt_run_until(r.ctx, &done, VMT_WAIT_MS));
    assert_int_equal(done, 1); /* ended by the request, not by the timeout's kill */
    /* A VM ended on request is reported as a process would be: signal 15, status 143
     * (doc/guide.md's exit-status table). */
    assert_int_equal(r.exit.kind, VMCORE_EXIT_SIGNAL);
    assert_int_equal(r.exit.signal, SIGTERM);
    assert_int_equal(vmcore_exit_code(&r.exit), 128 + SIGTERM);
    vmt_close(&r);
}

/* Paused, the vCPU retires nothing and burns no CPU; resumed, it runs again. */
void vmt_test_pause_resume(void **state)
{
    const char *be = BACKEND(state);
    REQUIRE_BACKEND(be);
    bool emu = strcmp(be, "emu") == 0; /* emu also counts instructions and its cache */
    struct vmt_run r;
    vmt_open(&r, vmt_json(be, "loop.bin", "\"format\": \"raw\"", NULL));
    vmt_wait_output(&r, "looping\n");
    assert_int_equal(vmcore_domain_pause(r.d, vmt_on_done, &r.paused), 0);
    assert_true(vt_run_until(r.ctx, &r.paused, VMT_WAIT_MS));
    assert_int_equal(vmcore_domain_state(r.d), VMCORE_STATE_PAUSED);
    /* two readings some loop turns apart agree (the first taken a little after the pause,
     * once the parked thread is asleep) */
    vmcore_stats a = VMCORE_STATS_INIT, b = VMCORE_STATS_INIT;
    int never = 0;
    vt_run_until(r.ctx, &never, 50);
    assert_int_equal(vmcore_domain_stats(r.d, &a), 0);
    vt_run_until(r.ctx, &never, 50);
    assert_int_equal(vmcore_domain_stats(r.d, &b), 0);
    assert_int_equal(a.cpu_time_ns, b.cpu_time_ns);
    if (emu) {
        assert_int_equal(a.instructions, b.instructions);
        assert_true(a.instructions > 0);
    }
    assert_int_equal(vmcore_domain_resume(r.d, vmt_on_done, &r.resumed), 0);
    assert_true(vt_run_until(r.ctx, &r.resumed, VMT_WAIT_MS));
    assert_int_equal(vmcore_domain_state(r.d), VMCORE_STATE_RUNNING);
    /* it runs again: emu retires instructions, kvm's CPU time grows (it spins at CPL0) */
    vmcore_stats c = VMCORE_STATS_INIT;
    bool runs = false;
    for (int waited = 0; !runs && waited < VMT_WAIT_MS; waited += 10) {
        vt_run_until(r.ctx, &never, 10);
        assert_int_equal(vmcore_domain_stats(r.d, &c), 0);
        runs = emu ? c.instructions != b.instructions : c.cpu_time_ns != b.cpu_time_ns;
    }
    if (!runs)
        fail_msg("resumed, the guest does not run (%llu instructions, %llu ns)",
                 (unsigned long long)c.instructions, (unsigned long long)c.cpu_time_ns);
    if (emu)
        assert_true(c.tcache_hits > c.tcache_misses); /* the spin loop is one cached block */
    vmt_kill(&r);
    vmt_close(&r);
}

/* echo.bin echoes what the console sends it (polling the UART) until a 'q'. */
void vmt_test_console_input(void **state)
{
    const char *be = BACKEND(state);
    REQUIRE_BACKEND(be);
    char hello[32], expect[64];
    snprintf(hello, sizeof hello, "hello %s", be);
    snprintf(expect, sizeof expect, "echo ready\n%s", hello);
    struct vmt_run r;
    vmt_open(&r, vmt_json(be, "echo.bin", "\"format\": \"raw\"", NULL));
    vmt_wait_output(&r, "echo ready\n");
    assert_int_equal(vmcore_domain_console_write(r.d, hello, strlen(hello)), 0);
    vmt_wait_output(&r, expect);
    assert_int_equal(vmcore_domain_console_write(r.d, "q", 1), 0);
    assert_true(vt_run_until(r.ctx, &r.ended, VMT_WAIT_MS));
    assert_string_equal(r.out, expect);
    assert_int_equal(r.exit.kind, VMCORE_EXIT_STATUS);
    assert_int_equal(r.exit.status, 0);
    vmcore_stats s = VMCORE_STATS_INIT;
    assert_int_equal(vmcore_domain_stats(r.d, &s), 0);
    assert_true(s.exits >= 11 + 9 * 3); /* each byte: LSR poll, RBR read, THR write */
    assert_true(s.memory_bytes >= 4096 && s.memory_bytes <= (16u << 20));
    assert_true(s.cpu_time_ns > 0);
    if (strcmp(be, "emu") == 0)
        assert_true(s.instructions > 0); /* kvm does not count instructions */
    vmt_close(&r);
}
