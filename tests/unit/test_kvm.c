/* The kvm backend through the public API on the real /dev/kvm: the guest suite shared with
 * test_emu.c (tests/support/vmtest.c: every guest of tests/guests boots and ends as its
 * README says; crash, kill, shutdown, pause/resume, console input, stats; nothing left
 * behind), and kvm's own: the probe, kill while paused, output before a halt in the kernel,
 * SMP, the kick signal, bad images. */
#include "vmtest.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

static void test_kill_while_paused(void **state)
{
    vt_require_kvm();
    int threads = vt_count_threads();
    struct vmt_run r;
    vmt_open(&r, vmt_json("kvm", "loop.bin", "\"format\": \"raw\"", "\"vcpus\": 2"));
    vmt_wait_output(&r, "looping\n");
    assert_int_equal(vmcore_domain_pause(r.d, vmt_on_done, &r.paused), 0);
    assert_true(vt_run_until(r.ctx, &r.paused, VMT_WAIT_MS));
    vmt_kill(&r);
    vmt_close(&r);
    assert_int_equal(vt_count_threads(), threads);
}

static void test_output_before_halt(void **state)
{
    vt_require_kvm();
    /* No exit follows the prompt (the vCPU sleeps in the kernel), yet it must show. */
    struct vmt_run r;
    vmt_open(&r, vmt_json("kvm", "prompt.bin", "\"format\": \"raw\"", NULL));
    vmt_wait_output(&r, "prompt> ");
    assert_string_equal(r.out, "prompt> ");
    vmt_kill(&r);
    vmt_close(&r);
}

static void test_smp_vcpus(void **state)
{
    vt_require_kvm();
    int threads = vt_count_threads();
    struct vmt_run r;
    vmt_open(&r, vmt_json("kvm", "protected.bin", "\"format\": \"raw\"", "\"vcpus\": 4"));
    assert_true(vt_run_until(r.ctx, &r.ended, VMT_WAIT_MS));
    assert_string_equal(r.out, "protected mode ok\n");
    assert_int_equal(r.exit.kind, VMCORE_EXIT_STATUS);
    /* The APs waited for a SIPI that never came; they were stopped with the machine. */
    vmt_close(&r);
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
            vmcore_domain_new_json(&d, ctx,
                                   vmt_json("kvm", "exit42.bin", "\"format\": \"raw\"", NULL)))
            _exit(10);
        int rc = vmcore_domain_start(d, NULL, NULL);
        int ok = rc == VMCORE_EBUSY &&
                 strstr(vmcore_domain_last_error(d), "has a handler installed by the application");
        struct sigaction now;
        sigaction(SIGRTMAX - 3, NULL, &now);
        ok = ok && now.sa_handler == app_handler;
        int closed = 0;
        vmcore_domain_close(d, vmt_on_closed, &closed);
        vt_run_until(ctx, &closed, VMT_WAIT_MS);
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
    assert_int_equal(vmcore_domain_new_json(&d, ctx, vmt_json("kvm", "protected.bin",
                                                              "\"format\": \"elf\"", NULL)),
                     VMCORE_EIMAGE);
    assert_null(d);
    assert_non_null(strstr(vmcore_ctx_last_error(ctx), "protected.bin: not an ELF file"));
    /* Nor a Linux kernel. */
    assert_int_equal(vmcore_domain_new_json(&d, ctx, vmt_json("kvm", "multiboot.elf",
                                                              "\"format\": \"linux\"", NULL)),
                     VMCORE_EIMAGE);
    assert_non_null(strstr(vmcore_ctx_last_error(ctx), "not a bzImage"));
    /* Loaded over the page tables the long-mode boot needs. */
    assert_int_equal(vmcore_domain_new_json(&d, ctx, vmt_json("kvm", "long.bin",
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
        VMT_TEST(real_mode, "kvm"),
        VMT_TEST(protected_mode, "kvm"),
        VMT_TEST(long_mode, "kvm"),
        VMT_TEST(multiboot_c_guest, "kvm"),
        VMT_TEST(string_io, "kvm"),
        VMT_TEST(exit_status, "kvm"),
        VMT_TEST(cpl3, "kvm"),
        VMT_TEST(triple_fault, "kvm"),
        VMT_TEST(kill_loop, "kvm"),
        VMT_TEST(shutdown_loop, "kvm"),
        VMT_TEST(pause_resume, "kvm"),
        cmocka_unit_test(test_kill_while_paused),
        VMT_TEST(console_input, "kvm"),
        cmocka_unit_test(test_output_before_halt),
        cmocka_unit_test(test_smp_vcpus),
        cmocka_unit_test(test_kick_signal_owned_by_app),
        cmocka_unit_test(test_bad_images),
    };
    /* unbuffered: when ctest kills a hung test, its last "[ RUN ]" line names it */
    setvbuf(stdout, NULL, _IONBF, 0);
    if (getenv("VMCORE_TEST_FILTER"))
        cmocka_set_test_filter(getenv("VMCORE_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
