/* The guest suite shared by the VM backends' tests (test_kvm.c, test_emu.c): one domain run
 * with its console output, state and exit gathered, and the test bodies that boot the same
 * guests of tests/guests the same way on either backend.
 *
 * A shared test takes the backend's name ("kvm" or "emu") as its cmocka state; a "kvm" test
 * first requires a usable /dev/kvm (vt_require_kvm()). Build the table entry with
 * VMT_TEST(name, backend): the test keeps its plain name (test_real_mode, ...), so
 * VMCORE_TEST_FILTER and the reports read as before. */
#ifndef VMTEST_H
#define VMTEST_H

#include "vt.h"

#define VMT_WAIT_MS 120000 /* a safety net for a hung test, not a speed expectation */

struct vmt_run {
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

/* Completion callbacks: *arg becomes 1 on success, -1 on failure; 1 once closed. */
void vmt_on_done(vmcore_domain *d, int status, void *arg);
void vmt_on_closed(vmcore_domain *d, void *arg);

/* The configuration of a 16 MiB domain on @backend booting tests/guests/@guest, with
 * @boot_extra inside "boot" and @top_extra at the top level (each NULL or JSON members).
 * Returns a static buffer. */
const char *vmt_json(const char *backend, const char *guest, const char *boot_extra,
                     const char *top_extra);

/* New context, domain from @json (a failure fails the test with the context's error),
 * subscribed to every event, started. */
void vmt_open(struct vmt_run *r, const char *json);
/* Close the domain, wait for it, free the context. */
void vmt_close(struct vmt_run *r);
/* Run the loop until the output contains @text (fails the test, naming the output, if it
 * never does). */
void vmt_wait_output(struct vmt_run *r, const char *text);
/* Kill the domain and wait for it to end with SIGKILL. */
void vmt_kill(struct vmt_run *r);

/* Boot @guest on @backend, wait for its end, and check its output and exit. */
void vmt_boot_expect(const char *backend, const char *guest, const char *boot_extra,
                     const char *expect_out, vmcore_exit_kind kind, int status);
/* Boot @guest on @backend and return its console output and exit (reason cleared). */
void vmt_boot_capture(const char *backend, const char *guest, const char *boot_extra,
                      char *out, size_t outsz, vmcore_exit *ex);

/* The shared tests; @state points to the backend's name. */
void vmt_test_real_mode(void **state);
void vmt_test_protected_mode(void **state);
void vmt_test_long_mode(void **state);
void vmt_test_multiboot_c_guest(void **state);
void vmt_test_string_io(void **state);
void vmt_test_exit_status(void **state);
void vmt_test_cpl3(void **state);
void vmt_test_triple_fault(void **state);
void vmt_test_kill_loop(void **state);
void vmt_test_shutdown_loop(void **state);
void vmt_test_pause_resume(void **state);
void vmt_test_console_input(void **state);

/* A cmocka table entry named test_<name> running vmt_test_<name> on @backend. */
#define VMT_TEST(name, backend) \
    { "test_" #name, vmt_test_##name, NULL, NULL, (void *)(backend) }

#endif
