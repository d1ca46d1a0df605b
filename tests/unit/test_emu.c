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

static void test_string_io(void **state)
{
    boot_expect("strio.bin", "\"format\": \"raw\", \"mode\": \"protected\"",
                "string io ok\n", VMCORE_EXIT_STATUS, 0);
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
        { "strio.bin", "\"format\": \"raw\", \"mode\": \"protected\"" },
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

/* A guest that enables the local APIC, takes five periodic timer interrupts in HLT, sends
 * itself an IPI, then prints "lapic ok" (raw, protected mode, load address 0x100000).
 * nasm source:
 *   bits 32
 *   org 0x100000
 *   start:
 *     mov esp, 0x80000
 *     mov eax, handler40          ; IDT gates for 0x40 and 0x41
 *     mov ecx, 0x40
 *     call setgate
 *     mov eax, handler41
 *     mov ecx, 0x41
 *     call setgate
 *     lidt [idtr]
 *     mov dword [0xfee000f0], 0x1ff      ; SVR: enable, spurious 0xff
 *     mov dword [0xfee003e0], 0xb        ; divide by 1
 *     mov dword [0xfee00320], 0x20040    ; periodic, vector 0x40
 *     mov dword [0xfee00380], 200000     ; 200 us
 *     sti
 *   .wait:
 *     hlt
 *     cmp dword [ticks], 5
 *     jb .wait
 *     mov dword [0xfee00320], 0x10040    ; mask the timer
 *     mov dword [0xfee00310], 0
 *     mov dword [0xfee00300], 0x41       ; self-IPI
 *     nop
 *     cmp dword [ipis], 1
 *     jne fail
 *     mov esi, msg
 *   .put:
 *     lodsb
 *     test al, al
 *     jz .done
 *     mov dx, 0x3f8
 *     out dx, al
 *     jmp .put
 *   .done:
 *     mov al, 0
 *     out 0xf4, al
 *   fail:
 *     mov al, 1
 *     out 0xf4, al
 *   setgate:                            ; eax = handler, ecx = vector
 *     lea edi, [idt + ecx * 8]
 *     mov [edi], ax
 *     mov dx, cs
 *     mov [edi + 2], dx
 *     mov word [edi + 4], 0x8e00
 *     shr eax, 16
 *     mov [edi + 6], ax
 *     ret
 *   handler40:
 *     inc dword [ticks]
 *     mov dword [0xfee000b0], 0
 *     iret
 *   handler41:
 *     inc dword [ipis]
 *     mov dword [0xfee000b0], 0
 *     iret
 *   msg: db "lapic ok", 10, 0
 *   align 4
 *   ticks: dd 0
 *   ipis: dd 0
 *   idtr: dw 256 * 8 - 1
 *         dd idt
 *
 *   idt equ 0x101000
 */
static const uint8_t lapic_guest[] = {
  0xbc, 0x00, 0x00, 0x08, 0x00, 0xb8, 0xbd, 0x00, 0x10, 0x00, 0xb9, 0x40,
  0x00, 0x00, 0x00, 0xe8, 0x8a, 0x00, 0x00, 0x00, 0xb8, 0xce, 0x00, 0x10,
  0x00, 0xb9, 0x41, 0x00, 0x00, 0x00, 0xe8, 0x7b, 0x00, 0x00, 0x00, 0x0f,
  0x01, 0x1d, 0xf4, 0x00, 0x10, 0x00, 0xc7, 0x05, 0xf0, 0x00, 0xe0, 0xfe,
  0xff, 0x01, 0x00, 0x00, 0xc7, 0x05, 0xe0, 0x03, 0xe0, 0xfe, 0x0b, 0x00,
  0x00, 0x00, 0xc7, 0x05, 0x20, 0x03, 0xe0, 0xfe, 0x40, 0x00, 0x02, 0x00,
  0xc7, 0x05, 0x80, 0x03, 0xe0, 0xfe, 0x40, 0x0d, 0x03, 0x00, 0xfb, 0xf4,
  0x83, 0x3d, 0xec, 0x00, 0x10, 0x00, 0x05, 0x72, 0xf6, 0xc7, 0x05, 0x20,
  0x03, 0xe0, 0xfe, 0x40, 0x00, 0x01, 0x00, 0xc7, 0x05, 0x10, 0x03, 0xe0,
  0xfe, 0x00, 0x00, 0x00, 0x00, 0xc7, 0x05, 0x00, 0x03, 0xe0, 0xfe, 0x41,
  0x00, 0x00, 0x00, 0x90, 0x83, 0x3d, 0xf0, 0x00, 0x10, 0x00, 0x01, 0x75,
  0x15, 0xbe, 0xdf, 0x00, 0x10, 0x00, 0xac, 0x84, 0xc0, 0x74, 0x07, 0x66,
  0xba, 0xf8, 0x03, 0xee, 0xeb, 0xf4, 0xb0, 0x00, 0xe6, 0xf4, 0xb0, 0x01,
  0xe6, 0xf4, 0x8d, 0x3c, 0xcd, 0x00, 0x10, 0x10, 0x00, 0x66, 0x89, 0x07,
  0x66, 0x8c, 0xca, 0x66, 0x89, 0x57, 0x02, 0x66, 0xc7, 0x47, 0x04, 0x00,
  0x8e, 0xc1, 0xe8, 0x10, 0x66, 0x89, 0x47, 0x06, 0xc3, 0xff, 0x05, 0xec,
  0x00, 0x10, 0x00, 0xc7, 0x05, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00,
  0x00, 0xcf, 0xff, 0x05, 0xf0, 0x00, 0x10, 0x00, 0xc7, 0x05, 0xb0, 0x00,
  0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00, 0xcf, 0x6c, 0x61, 0x70, 0x69, 0x63,
  0x20, 0x6f, 0x6b, 0x0a, 0x00, 0x90, 0x90, 0x90, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0xff, 0x07, 0x00, 0x10, 0x10, 0x00
};

static void test_lapic_timer(void **state)
{
    char path[] = "/tmp/vmcore-lapic-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, lapic_guest, sizeof lapic_guest), (ssize_t)sizeof lapic_guest);
    close(fd);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"name\": \"t\", \"backend\": \"emu\", \"memory_mib\": 16,"
             " \"boot\": {\"kernel\": \"%s\", \"format\": \"raw\", \"mode\": \"protected\"}}",
             path);
    struct run r;
    run_open(&r, json);
    assert_true(vt_run_until(r.ctx, &r.ended, WAIT_MS));
    unlink(path);
    if (strcmp(r.out, "lapic ok\n") || r.exit.kind != VMCORE_EXIT_STATUS || r.exit.status)
        fail_msg("lapic guest printed \"%s\", ended %d/%d (%s)", r.out, r.exit.kind,
                 r.exit.status, r.reason);
    run_close(&r);
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
        cmocka_unit_test(test_console_input),
        cmocka_unit_test(test_smp_refused),
        cmocka_unit_test(test_lapic_timer),
        cmocka_unit_test(test_same_as_kvm),
    };
    if (getenv("VMCORE_TEST_FILTER"))
        cmocka_set_test_filter(getenv("VMCORE_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
