/* The emu backend through the public API: every guest of tests/guests boots under the
 * software CPU and ends as its README says (the same output and exit as under kvm; where
 * kvm is usable, one test runs both and compares); crash, kill, shutdown, pause/resume,
 * console input (UART interrupts through the emulated PIC), stats; nothing left behind. */
#include "vt.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const char *backend = "emu";

static char *guest_json(const char *guest, const char *boot_extra, const char *top_extra)
{
    static char json[2048];
    snprintf(json, sizeof json,
             "{\"name\": \"t\", \"backend\": \"%s\", \"memory_mib\": 16%s%s,"
             " \"boot\": {\"kernel\": \"%s\"%s%s}}",
             backend, top_extra ? ", " : "", top_extra ? top_extra : "", vt_guest(guest),
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
    assert_string_equal(vmcore_domain_backend(r.d), backend);
    run_close(&r);
}


/* Boot @guest and return its console output and exit (for the kvm/emu comparison). */
static void boot_capture(const char *guest, const char *boot_extra, char *out, size_t outsz,
                         vmcore_exit *ex)
{
    struct run r;
    run_open(&r, guest_json(guest, boot_extra, NULL));
    assert_true(vt_run_until(r.ctx, &r.ended, WAIT_MS));
    snprintf(out, outsz, "%s", r.out);
    *ex = r.exit;
    ex->reason = NULL;
    run_close(&r);
}

static void test_probe(void **state)
{
    vmcore_probe_result p = VMCORE_PROBE_RESULT_INIT;
    assert_int_equal(vmcore_probe("emu", &p), 0);
    assert_int_equal(p.available, 1);
    assert_string_equal(p.backend, "emu");
}

static void test_real_mode(void **state)
{
    boot_expect("real.bin", "\"format\": \"raw\", \"mode\": \"real\", \"load_address\": 31744",
                "real mode ok\n", VMCORE_EXIT_STATUS, 0);
}

static void test_protected_mode(void **state)
{
    boot_expect("protected.bin", "\"format\": \"raw\", \"mode\": \"protected\"",
                "protected mode ok\n", VMCORE_EXIT_STATUS, 0);
}

static void test_long_mode(void **state)
{
    boot_expect("long.bin", "\"format\": \"raw\", \"mode\": \"long\"", "long mode ok\n",
                VMCORE_EXIT_STATUS, 0);
    boot_expect("long.elf", "\"format\": \"elf\"", "long mode ok\n", VMCORE_EXIT_STATUS, 0);
}

static void test_multiboot_c_guest(void **state)
{
    boot_expect("multiboot.elf", "\"format\": \"multiboot\", \"cmdline\": \"a b c\"",
                "primes below 10000: 1229\ncrc32: cbf43926\ncmdline: a b c\n"
                "mem_upper: 15360 KiB\n", VMCORE_EXIT_STATUS, 0);
}

static void test_exit_status(void **state)
{
    boot_expect("exit42.bin", "\"format\": \"raw\"", "", VMCORE_EXIT_STATUS, 42);
}

static void test_cpl3(void **state)
{
    boot_expect("user.bin", "\"format\": \"raw\", \"mode\": \"long\"", "user mode ok\n",
                VMCORE_EXIT_STATUS, 0);
}

static void test_triple_fault(void **state)
{
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
    assert_int_equal(vt_count_threads(), threads);
    run_close(&r);
    assert_int_equal(vt_count_threads(), threads);
    assert_int_equal(vt_count_fds(), fds);
}

static void test_shutdown_loop(void **state)
{
    struct run r;
    run_open(&r, guest_json("loop.bin", "\"format\": \"raw\"", NULL));
    r.wait_for = "looping\n";
    assert_true(vt_run_until(r.ctx, &r.seen, WAIT_MS));
    int done = 0;
    assert_int_equal(vmcore_domain_shutdown(r.d, 60000, on_done, &done), 0);
    assert_true(vt_run_until(r.ctx, &done, WAIT_MS));
    assert_int_equal(done, 1);
    assert_int_equal(r.exit.kind, VMCORE_EXIT_SIGNAL);
    assert_int_equal(r.exit.signal, SIGTERM);
    run_close(&r);
}

static void test_pause_resume(void **state)
{
    struct run r;
    run_open(&r, guest_json("loop.bin", "\"format\": \"raw\"", NULL));
    r.wait_for = "looping\n";
    assert_true(vt_run_until(r.ctx, &r.seen, WAIT_MS));
    assert_int_equal(vmcore_domain_pause(r.d, on_done, &r.paused), 0);
    assert_true(vt_run_until(r.ctx, &r.paused, WAIT_MS));
    assert_int_equal(vmcore_domain_state(r.d), VMCORE_STATE_PAUSED);
    /* paused: no instruction retires between two readings (the first a little after the
     * pause, once the parked thread has gone to sleep) */
    vmcore_stats a = VMCORE_STATS_INIT, b = VMCORE_STATS_INIT;
    int never = 0;
    vt_run_until(r.ctx, &never, 20);
    assert_int_equal(vmcore_domain_stats(r.d, &a), 0);
    vt_run_until(r.ctx, &never, 50);
    assert_int_equal(vmcore_domain_stats(r.d, &b), 0);
    assert_int_equal(a.instructions, b.instructions);
    assert_int_equal(a.cpu_time_ns, b.cpu_time_ns);
    assert_true(a.instructions > 0);
    assert_int_equal(vmcore_domain_resume(r.d, on_done, &r.resumed), 0);
    assert_true(vt_run_until(r.ctx, &r.resumed, WAIT_MS));
    assert_int_equal(vmcore_domain_state(r.d), VMCORE_STATE_RUNNING);
    vmcore_stats c = VMCORE_STATS_INIT;
    do {
        vt_run_until(r.ctx, &never, 10);
        assert_int_equal(vmcore_domain_stats(r.d, &c), 0);
    } while (c.instructions == b.instructions);
    /* the spin loop is one cached block: hits dominate */
    assert_true(c.tcache_hits > c.tcache_misses);
    int killed = 0;
    assert_int_equal(vmcore_domain_kill(r.d, on_done, &killed), 0);
    assert_true(vt_run_until(r.ctx, &r.ended, WAIT_MS));
    run_close(&r);
}

static void test_console_input(void **state)
{
    struct run r;
    run_open(&r, guest_json("echo.bin", "\"format\": \"raw\"", NULL));
    r.wait_for = "echo ready\n";
    assert_true(vt_run_until(r.ctx, &r.seen, WAIT_MS));
    r.seen = 0;
    r.wait_for = "echo ready\nhello emu";
    assert_int_equal(vmcore_domain_console_write(r.d, "hello emu", 9), 0);
    if (!vt_run_until(r.ctx, &r.seen, WAIT_MS))
        fail_msg("echo printed \"%s\"", r.out);
    assert_int_equal(vmcore_domain_console_write(r.d, "q", 1), 0);
    assert_true(vt_run_until(r.ctx, &r.ended, WAIT_MS));
    assert_int_equal(r.exit.kind, VMCORE_EXIT_STATUS);
    assert_int_equal(r.exit.status, 0);
    vmcore_stats s = VMCORE_STATS_INIT;
    assert_int_equal(vmcore_domain_stats(r.d, &s), 0);
    assert_true(s.instructions > 0);
    assert_true(s.exits > 0);
    run_close(&r);
}

static void test_smp_refused(void **state)
{
    vmcore_ctx *ctx;
    vmcore_domain *d = NULL;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    int rc = vmcore_domain_new_json(&d, ctx, guest_json("long.bin",
                                    "\"format\": \"raw\", \"mode\": \"long\"", "\"vcpus\": 2"));
    assert_int_equal(rc, VMCORE_ENOTSUP);
    assert_non_null(strstr(vmcore_ctx_last_error(ctx), "vcpus"));
    assert_int_equal(vmcore_ctx_free(ctx), 0);
}

/* The same guests under kvm and emu: identical console output and exit. */
static void test_same_as_kvm(void **state)
{
    static const char *const guests[][2] = {
        { "real.bin", "\"format\": \"raw\", \"mode\": \"real\", \"load_address\": 31744" },
        { "protected.bin", "\"format\": \"raw\", \"mode\": \"protected\"" },
        { "long.bin", "\"format\": \"raw\", \"mode\": \"long\"" },
        { "multiboot.elf", "\"format\": \"multiboot\", \"cmdline\": \"x=1\"" },
        { "exit42.bin", "\"format\": \"raw\"" },
        { "user.bin", "\"format\": \"raw\", \"mode\": \"long\"" },
        { "triple.bin", "\"format\": \"raw\"" },
    };
    vt_require_kvm();
    for (size_t k = 0; k < sizeof guests / sizeof guests[0]; k++) {
        char out_kvm[8192], out_emu[8192];
        vmcore_exit ek, ee;
        backend = "kvm";
        boot_capture(guests[k][0], guests[k][1], out_kvm, sizeof out_kvm, &ek);
        backend = "emu";
        boot_capture(guests[k][0], guests[k][1], out_emu, sizeof out_emu, &ee);
        if (strcmp(out_kvm, out_emu))
            fail_msg("%s: kvm printed \"%s\", emu \"%s\"", guests[k][0], out_kvm, out_emu);
        assert_int_equal(ek.kind, ee.kind);
        assert_int_equal(ek.status, ee.status);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_real_mode),
        cmocka_unit_test(test_protected_mode),
        cmocka_unit_test(test_long_mode),
        cmocka_unit_test(test_multiboot_c_guest),
        cmocka_unit_test(test_exit_status),
        cmocka_unit_test(test_cpl3),
        cmocka_unit_test(test_triple_fault),
        cmocka_unit_test(test_kill_loop),
        cmocka_unit_test(test_shutdown_loop),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_console_input),
        cmocka_unit_test(test_smp_refused),
        cmocka_unit_test(test_same_as_kvm),
    };
    if (getenv("VMCORE_TEST_FILTER"))
        cmocka_set_test_filter(getenv("VMCORE_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
