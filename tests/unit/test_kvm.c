/* The kvm backend through the public API on the real /dev/kvm: every guest of
 * tests/guests boots and ends as its README says; crash, kill, shutdown, pause/resume,
 * console input, stats, the probe, bad images; and nothing (threads, fds) is left behind. */
#include "vt.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 120000 /* a safety net for a hung test, not a speed expectation */

struct run {
    vmcore_ctx *ctx;
    vmcore_domain *d;
    char out[8192];
    size_t outlen;
    int ended, closed, started, paused, resumed;
    vmcore_exit exit;
    char reason[256];
    vmcore_state last_state;
    const char *wait_for;       /* set: `seen` turns 1 once the output contains it */
    int seen;
};

static void on_event(const vmcore_event *ev, void *arg)
{
    struct run *r = arg;
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

static void on_done(vmcore_domain *d, int status, void *arg) { *(int *)arg = status == 0 ? 1 : -1; }
static void on_closed(vmcore_domain *d, void *arg) { *(int *)arg = 1; }

static char *guest_json(const char *guest, const char *boot_extra, const char *top_extra)
{
    static char json[2048];
    snprintf(json, sizeof json,
             "{\"name\": \"t\", \"backend\": \"kvm\", \"memory_mib\": 16%s%s,"
             " \"boot\": {\"kernel\": \"%s\"%s%s}}",
             top_extra ? ", " : "", top_extra ? top_extra : "", vt_guest(guest),
             boot_extra ? ", " : "", boot_extra ? boot_extra : "");
    return json;
}

static void run_open(struct run *r, const char *json)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(vmcore_ctx_new(&r->ctx, NULL), 0);
    int rc = vmcore_domain_new_json(&r->d, r->ctx, json);
    if (rc)
        fail_msg("domain_new: %s: %s", vmcore_strerror(rc), vmcore_ctx_last_error(r->ctx));
    assert_true(vmcore_domain_subscribe(r->d, VMCORE_EVENT_ALL, on_event, r) > 0);
    assert_int_equal(vmcore_domain_start(r->d, on_done, &r->started), 0);
}

static void run_close(struct run *r)
{
    vmcore_domain_close(r->d, on_closed, &r->closed);
    assert_true(vt_run_until(r->ctx, &r->closed, WAIT_MS));
    assert_int_equal(vmcore_ctx_free(r->ctx), 0);
}

/* Boot @guest and wait for its end; check its output and exit. */
static void boot_expect(const char *guest, const char *boot_extra, const char *expect_out,
                        vmcore_exit_kind kind, int status)
{
    struct run r;
    run_open(&r, guest_json(guest, boot_extra, NULL));
    assert_true(vt_run_until(r.ctx, &r.ended, WAIT_MS));
    if (strcmp(r.out, expect_out) != 0)
        fail_msg("%s printed \"%s\", expected \"%s\"", guest, r.out, expect_out);
    if (r.exit.kind != kind || r.exit.status != status)
        fail_msg("%s ended with kind %d status %d (%s), expected kind %d status %d", guest,
                 r.exit.kind, r.exit.status, r.reason, kind, status);
    assert_string_equal(vmcore_domain_backend(r.d), "kvm");
    run_close(&r);
}

static void test_probe(void **state)
{
    vt_require_kvm();
    vmcore_probe_result p = VMCORE_PROBE_RESULT_INIT;
    assert_int_equal(vmcore_probe("kvm", &p), 0);
    assert_int_equal(p.available, 1);
    assert_string_equal(p.backend, "kvm");
    assert_non_null(strstr(p.details, "api 12"));
    /* The flags agree with what the measurement says. */
    bool emulated = strstr(p.details, "CPL0") && strstr(p.details, "emulated by the host");
    assert_int_equal(!!(p.flags & VMCORE_PROBE_NATIVE_SUPERVISOR), !emulated);
    assert_int_equal(!!(p.flags & VMCORE_PROBE_LINUX_BOOT), !emulated);
    assert_true(p.flags & VMCORE_PROBE_NATIVE_USER);
    print_message("probe: %s\n", p.details);
}

static void test_real_mode(void **state)
{
    vt_require_kvm();
    boot_expect("real.bin", "\"format\": \"raw\", \"mode\": \"real\", \"load_address\": 31744",
                "real mode ok\n", VMCORE_EXIT_STATUS, 0);
}

static void test_protected_mode(void **state)
{
    vt_require_kvm();
    boot_expect("protected.bin", "\"format\": \"raw\", \"mode\": \"protected\"",
                "protected mode ok\n", VMCORE_EXIT_STATUS, 0);
}

static void test_long_mode(void **state)
{
    vt_require_kvm();
    boot_expect("long.bin", "\"format\": \"raw\", \"mode\": \"long\"", "long mode ok\n",
                VMCORE_EXIT_STATUS, 0);
    boot_expect("long.elf", "\"format\": \"elf\"", "long mode ok\n", VMCORE_EXIT_STATUS, 0);
}

static void test_multiboot_c_guest(void **state)
{
    vt_require_kvm();
    boot_expect("multiboot.elf", "\"format\": \"multiboot\", \"cmdline\": \"a b c\"",
                "primes below 10000: 1229\ncrc32: cbf43926\ncmdline: a b c\n"
                "mem_upper: 15360 KiB\n", VMCORE_EXIT_STATUS, 0);
    boot_expect("multiboot.elf", "\"format\": \"auto\"",
                "primes below 10000: 1229\ncrc32: cbf43926\ncmdline: \n"
                "mem_upper: 15360 KiB\n", VMCORE_EXIT_STATUS, 0);
}

static void test_string_io(void **state)
{
    vt_require_kvm();
    boot_expect("strio.bin", "\"format\": \"raw\"", "string io ok\n", VMCORE_EXIT_STATUS, 0);
}

static void test_exit_status(void **state)
{
    vt_require_kvm();
    boot_expect("exit42.bin", "\"format\": \"raw\"", "", VMCORE_EXIT_STATUS, 42);
}

static void test_cpl3(void **state)
{
    vt_require_kvm();
    boot_expect("user.bin", "\"format\": \"raw\", \"mode\": \"long\"", "user mode ok\n",
                VMCORE_EXIT_STATUS, 0);
}

static void test_triple_fault(void **state)
{
    vt_require_kvm();
    int threads = vt_count_threads(), fds = vt_count_fds();
    struct run r;
    run_open(&r, guest_json("triple.bin", "\"format\": \"raw\"", NULL));
    assert_true(vt_run_until(r.ctx, &r.ended, WAIT_MS));
    assert_string_equal(r.out, "about to triple fault\n");
    assert_int_equal(r.exit.kind, VMCORE_EXIT_CRASH);
    assert_non_null(strstr(r.reason, "triple fault"));
    assert_int_equal(vmcore_domain_state(r.d), VMCORE_STATE_CRASHED);
    run_close(&r);
    assert_int_equal(vt_count_threads(), threads);
    assert_int_equal(vt_count_fds(), fds);
}

static void test_kill_loop(void **state)
{
    vt_require_kvm();
    int threads = vt_count_threads(), fds = vt_count_fds();
    struct run r;
    run_open(&r, guest_json("loop.bin", "\"format\": \"raw\"", NULL));
    r.wait_for = "looping\n";
    assert_true(vt_run_until(r.ctx, &r.seen, WAIT_MS));
    assert_int_equal(vmcore_domain_state(r.d), VMCORE_STATE_RUNNING);
    int killed = 0;
    assert_int_equal(vmcore_domain_kill(r.d, on_done, &killed), 0);
    assert_true(vt_run_until(r.ctx, &r.ended, WAIT_MS));
    assert_true(vt_run_until(r.ctx, &killed, WAIT_MS));
    assert_int_equal(r.exit.kind, VMCORE_EXIT_SIGNAL);
    assert_int_equal(r.exit.signal, SIGKILL);
    run_close(&r);
    assert_int_equal(vt_count_threads(), threads);
    assert_int_equal(vt_count_fds(), fds);
}

static void test_shutdown_loop(void **state)
{
    vt_require_kvm();
    struct run r;
    run_open(&r, guest_json("loop.bin", "\"format\": \"raw\"", NULL));
    r.wait_for = "looping\n";
    assert_true(vt_run_until(r.ctx, &r.seen, WAIT_MS));
    int done = 0;
    assert_int_equal(vmcore_domain_shutdown(r.d, 60000, on_done, &done), 0);
    assert_true(vt_run_until(r.ctx, &done, WAIT_MS));
    assert_int_equal(done, 1); /* ended by the request, not by the timeout's kill */
    assert_int_equal(r.exit.kind, VMCORE_EXIT_SIGNAL);
    assert_int_equal(r.exit.signal, SIGTERM);
    run_close(&r);
}

static void test_pause_resume(void **state)
{
    vt_require_kvm();
    struct run r;
    run_open(&r, guest_json("loop.bin", "\"format\": \"raw\"", NULL));
    r.wait_for = "looping\n";
    assert_true(vt_run_until(r.ctx, &r.seen, WAIT_MS));
    assert_int_equal(vmcore_domain_pause(r.d, on_done, &r.paused), 0);
    assert_true(vt_run_until(r.ctx, &r.paused, WAIT_MS));
    assert_int_equal(vmcore_domain_state(r.d), VMCORE_STATE_PAUSED);
    /* While paused the vCPU burns no CPU: two readings some loop turns apart agree (the
     * first taken a little after the pause, once the parked thread is asleep). */
    vmcore_stats a = VMCORE_STATS_INIT, b = VMCORE_STATS_INIT;
    int never = 0;
    vt_run_until(r.ctx, &never, 50);
    assert_int_equal(vmcore_domain_stats(r.d, &a), 0);
    vt_run_until(r.ctx, &never, 50);
    assert_int_equal(vmcore_domain_stats(r.d, &b), 0);
    assert_int_equal(a.cpu_time_ns, b.cpu_time_ns);
    assert_int_equal(vmcore_domain_resume(r.d, on_done, &r.resumed), 0);
    assert_true(vt_run_until(r.ctx, &r.resumed, WAIT_MS));
    assert_int_equal(vmcore_domain_state(r.d), VMCORE_STATE_RUNNING);
    /* It runs again: the CPU time grows (it spins at CPL0). */
    vmcore_stats c = VMCORE_STATS_INIT;
    do {
        vt_run_until(r.ctx, &never, 10);
        assert_int_equal(vmcore_domain_stats(r.d, &c), 0);
    } while (c.cpu_time_ns == b.cpu_time_ns);
    int killed = 0;
    assert_int_equal(vmcore_domain_kill(r.d, on_done, &killed), 0);
    assert_true(vt_run_until(r.ctx, &r.ended, WAIT_MS));
    run_close(&r);
}

static void test_kill_while_paused(void **state)
{
    vt_require_kvm();
    int threads = vt_count_threads();
    struct run r;
    run_open(&r, guest_json("loop.bin", "\"format\": \"raw\"", "\"vcpus\": 2"));
    r.wait_for = "looping\n";
    assert_true(vt_run_until(r.ctx, &r.seen, WAIT_MS));
    assert_int_equal(vmcore_domain_pause(r.d, on_done, &r.paused), 0);
    assert_true(vt_run_until(r.ctx, &r.paused, WAIT_MS));
    int killed = 0;
    assert_int_equal(vmcore_domain_kill(r.d, on_done, &killed), 0);
    assert_true(vt_run_until(r.ctx, &r.ended, WAIT_MS));
    assert_int_equal(r.exit.kind, VMCORE_EXIT_SIGNAL);
    run_close(&r);
    assert_int_equal(vt_count_threads(), threads);
}

static void test_console_input(void **state)
{
    vt_require_kvm();
    struct run r;
    run_open(&r, guest_json("echo.bin", "\"format\": \"raw\"", NULL));
    r.wait_for = "echo ready\n";
    assert_true(vt_run_until(r.ctx, &r.seen, WAIT_MS));
    r.seen = 0;
    r.wait_for = "echo ready\nhello kvm";
    assert_int_equal(vmcore_domain_console_write(r.d, "hello kvm", 9), 0);
    assert_true(vt_run_until(r.ctx, &r.seen, WAIT_MS));
    assert_int_equal(vmcore_domain_console_write(r.d, "q", 1), 0);
    assert_true(vt_run_until(r.ctx, &r.ended, WAIT_MS));
    assert_string_equal(r.out, "echo ready\nhello kvm");
    assert_int_equal(r.exit.kind, VMCORE_EXIT_STATUS);
    assert_int_equal(r.exit.status, 0);
    vmcore_stats s = VMCORE_STATS_INIT;
    assert_int_equal(vmcore_domain_stats(r.d, &s), 0);
    assert_true(s.exits >= 11 + 9 * 3); /* each byte: LSR poll, RBR read, THR write */
    assert_true(s.memory_bytes >= 4096 && s.memory_bytes <= (16u << 20));
    assert_true(s.cpu_time_ns > 0);
    run_close(&r);
}

static void test_output_before_halt(void **state)
{
    vt_require_kvm();
    /* No exit follows the prompt (the vCPU sleeps in the kernel), yet it must show. */
    struct run r;
    run_open(&r, guest_json("prompt.bin", "\"format\": \"raw\"", NULL));
    r.wait_for = "prompt> ";
    assert_true(vt_run_until(r.ctx, &r.seen, WAIT_MS));
    assert_string_equal(r.out, "prompt> ");
    int killed = 0;
    assert_int_equal(vmcore_domain_kill(r.d, on_done, &killed), 0);
    assert_true(vt_run_until(r.ctx, &r.ended, WAIT_MS));
    assert_int_equal(r.exit.signal, SIGKILL);
    run_close(&r);
}

static void test_smp_vcpus(void **state)
{
    vt_require_kvm();
    int threads = vt_count_threads();
    struct run r;
    run_open(&r, guest_json("protected.bin", "\"format\": \"raw\"", "\"vcpus\": 4"));
    assert_true(vt_run_until(r.ctx, &r.ended, WAIT_MS));
    assert_string_equal(r.out, "protected mode ok\n");
    assert_int_equal(r.exit.kind, VMCORE_EXIT_STATUS);
    /* The APs waited for a SIPI that never came; they were stopped with the machine. */
    run_close(&r);
    assert_int_equal(vt_count_threads(), threads);
}

static void app_handler(int sig) { (void)sig; }

/* In a child process (the kick handler is installed once per process): an application
 * that owns the kick signal makes start fail cleanly instead of losing its handler. */
static void test_kick_signal_owned_by_app(void **state)
{
    vt_require_kvm();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sigaction sa = { .sa_handler = app_handler };
        sigaction(SIGRTMAX - 3, &sa, NULL);
        vmcore_ctx *ctx;
        vmcore_domain *d;
        if (vmcore_ctx_new(&ctx, NULL) ||
            vmcore_domain_new_json(&d, ctx, guest_json("exit42.bin", "\"format\": \"raw\"",
                                                       NULL)))
            _exit(10);
        int rc = vmcore_domain_start(d, NULL, NULL);
        int ok = rc == VMCORE_EBUSY &&
                 strstr(vmcore_domain_last_error(d), "has a handler installed by the application");
        struct sigaction now;
        sigaction(SIGRTMAX - 3, NULL, &now);
        ok = ok && now.sa_handler == app_handler;
        int closed = 0;
        vmcore_domain_close(d, on_closed, &closed);
        vt_run_until(ctx, &closed, WAIT_MS);
        _exit(ok && closed && vmcore_ctx_free(ctx) == 0 ? 0 : 11);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_bad_images(void **state)
{
    vt_require_kvm();
    int fds = vt_count_fds();
    vmcore_ctx *ctx;
    vmcore_domain *d = NULL;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    /* A raw binary is not an ELF file. */
    assert_int_equal(vmcore_domain_new_json(&d, ctx, guest_json("protected.bin",
                                                                "\"format\": \"elf\"", NULL)),
                     VMCORE_EIMAGE);
    assert_null(d);
    assert_non_null(strstr(vmcore_ctx_last_error(ctx), "protected.bin: not an ELF file"));
    /* Nor a Linux kernel. */
    assert_int_equal(vmcore_domain_new_json(&d, ctx, guest_json("multiboot.elf",
                                                                "\"format\": \"linux\"", NULL)),
                     VMCORE_EIMAGE);
    assert_non_null(strstr(vmcore_ctx_last_error(ctx), "not a bzImage"));
    /* Loaded over the page tables the long-mode boot needs. */
    assert_int_equal(vmcore_domain_new_json(&d, ctx, guest_json("long.bin",
                         "\"format\": \"raw\", \"mode\": \"long\", \"load_address\": 40960",
                         NULL)), VMCORE_EIMAGE);
    assert_non_null(strstr(vmcore_ctx_last_error(ctx), "overlaps"));
    assert_int_equal(vmcore_ctx_free(ctx), 0);
    assert_int_equal(vt_count_fds(), fds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_real_mode),
        cmocka_unit_test(test_protected_mode),
        cmocka_unit_test(test_long_mode),
        cmocka_unit_test(test_multiboot_c_guest),
        cmocka_unit_test(test_string_io),
        cmocka_unit_test(test_exit_status),
        cmocka_unit_test(test_cpl3),
        cmocka_unit_test(test_triple_fault),
        cmocka_unit_test(test_kill_loop),
        cmocka_unit_test(test_shutdown_loop),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_kill_while_paused),
        cmocka_unit_test(test_console_input),
        cmocka_unit_test(test_output_before_halt),
        cmocka_unit_test(test_smp_vcpus),
        cmocka_unit_test(test_kick_signal_owned_by_app),
        cmocka_unit_test(test_bad_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
