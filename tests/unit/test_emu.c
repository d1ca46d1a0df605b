/* The emu backend through the public API: the guest suite shared with test_kvm.c
 * (tests/support/vmtest.c: every guest of tests/guests boots under the software CPU and ends
 * as its README says; crash, kill, shutdown, pause/resume, polled console input, stats;
 * nothing left behind), and emu's own: the probe, SMP refused, local APIC timer and IPI,
 * interrupts through the IOAPIC,
 * and, where kvm is usable, the same output and exit as under kvm. */
#include "vmtest.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_probe(void **state)
{
    vmcore_probe_result p = VMCORE_PROBE_RESULT_INIT;
    assert_int_equal(vmcore_probe("emu", &p), 0);
    assert_int_equal(p.available, 1);
    assert_string_equal(p.backend, "emu");
}

/* A serial console has no window size. */
static void test_resize_console_refused(void **state)
{
    (void)state;
    vmcore_ctx *ctx;
    vmcore_domain *d = NULL;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    assert_int_equal(vmcore_domain_new_json(&d, ctx, vmt_json("emu", "loop.bin",
                     "\"format\": \"raw\", \"mode\": \"protected\"", NULL)), 0);
    assert_int_equal(vmcore_domain_resize_console(NULL, 24, 80), VMCORE_EINVAL);
    assert_int_equal(vmcore_domain_resize_console(d, 24, 80), VMCORE_ENOTSUP);
    assert_non_null(strstr(vmcore_domain_last_error(d), "serial"));
    vmcore_domain_close(d, NULL, NULL);
    vmcore_ctx_run(ctx, VMCORE_RUN_DEFAULT);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
}

static void test_smp_refused(void **state)
{
    vmcore_ctx *ctx;
    vmcore_domain *d = NULL;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    int rc = vmcore_domain_new_json(&d, ctx, vmt_json("emu", "long.bin",
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
        vmt_boot_capture("kvm", guests[k][0], guests[k][1], out_kvm, sizeof out_kvm, &ek);
        vmt_boot_capture("emu", guests[k][0], guests[k][1], out_emu, sizeof out_emu, &ee);
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
    struct vmt_run r;
    vmt_open(&r, json);
    assert_true(vt_run_until(r.ctx, &r.ended, VMT_WAIT_MS));
    unlink(path);
    if (strcmp(r.out, "lapic ok\n") || r.exit.kind != VMCORE_EXIT_STATUS || r.exit.status)
        fail_msg("lapic guest printed \"%s\", ended %d/%d (%s)", r.out, r.exit.kind,
                 r.exit.status, r.reason);
    vmt_close(&r);
}

/* The IOAPIC route end to end, through the software CPU's INTA cycles: PIT ticks on pin 2
 * and a level-triggered UART interrupt whose EOI clears remote IRR (tests/guests/ioapic.asm).
 */
static void test_ioapic_guest(void **state)
{
    (void)state;
    vmt_boot_expect("emu", "ioapic.bin", "\"format\": \"raw\", \"mode\": \"protected\"",
                    "ioapic ok\n", VMCORE_EXIT_STATUS, 0);
}

/* Poll the domain's stats until it has run @n instructions (bounded: about 10 s). */
static void stats_after(vmcore_domain *d, uint64_t n, vmcore_stats *st)
{
    for (int k = 0; k < 1000; k++) {
        assert_int_equal(vmcore_domain_stats(d, st), 0);
        if (st->instructions >= n)
            return;
        usleep(10000);
    }
    fail_msg("the guest ran only %llu instructions", (unsigned long long)st->instructions);
}

/* "emu": {"jit": false} runs everything in the interpreter; by default a hot loop is
 * compiled (unless VMCORE_EMU_JIT=0 turns the compiler off for the whole process). A
 * caller of stats version 1 gets the fields version 1 had and nothing written past them. */
static void test_jit_setting(void **state)
{
    const char *env = getenv("VMCORE_EMU_JIT");
    bool jit_off_here = env && (!strcmp(env, "0") || !strcmp(env, "off"));
    const char *boot = "\"format\": \"raw\", \"mode\": \"protected\", \"load_address\": 1048576";
    for (int jit = 1; jit >= 0; jit--) {
        struct vmt_run r;
        vmcore_stats st = VMCORE_STATS_INIT;
        vmt_open(&r, vmt_json("emu", "loop.bin", boot, jit ? NULL : "\"emu\": {\"jit\": false}"));
        vmt_wait_output(&r, "looping");
        stats_after(r.d, 100000, &st);
        if (jit && !jit_off_here)
            assert_true(st.jit_blocks > 0);
        else
            assert_int_equal(st.jit_blocks, 0);

        union { vmcore_stats s; unsigned char b[sizeof(vmcore_stats)]; } v1;
        memset(&v1, 0xa5, sizeof v1);
        v1.s.version = 1;
        assert_int_equal(vmcore_domain_stats(r.d, &v1.s), 0);
        assert_int_equal(v1.s.version, 1);
        assert_true(v1.s.instructions > 0);
        for (size_t k = offsetof(vmcore_stats, jit_blocks); k < sizeof v1; k++)
            assert_int_equal(v1.b[k], 0xa5);
        /* a version-2 caller: jit_blocks written, nothing from the net_* counters on */
        memset(&v1, 0xa5, sizeof v1);
        v1.s.version = 2;
        assert_int_equal(vmcore_domain_stats(r.d, &v1.s), 0);
        assert_int_equal(v1.s.version, 2);
        assert_int_equal(v1.s.jit_blocks, st.jit_blocks > 0 ? v1.s.jit_blocks : 0);
        for (size_t k = offsetof(vmcore_stats, net_rx_bytes); k < sizeof v1; k++)
            assert_int_equal(v1.b[k], 0xa5);
        /* version 3: no cards, no traffic */
        assert_int_equal(st.net_rx_packets + st.net_tx_packets + st.net_rx_bytes +
                         st.net_tx_bytes, 0);
        v1.s.version = VMCORE_STATS_VERSION + 1;
        assert_int_equal(vmcore_domain_stats(r.d, &v1.s), VMCORE_EINVAL);
        vmt_kill(&r);
        vmt_close(&r);
    }
}

/* ---- console back-pressure ---- */

struct flood {
    size_t got;          /* console bytes delivered */
    size_t bad_at;       /* the first byte out of order, if bad */
    int bad, closed;
    char next;           /* the byte flood.bin writes next */
};

static void flood_event(const vmcore_event *ev, void *arg)
{
    struct flood *f = arg;
    if (ev->type != VMCORE_EVENT_CONSOLE)
        return;
    for (size_t i = 0; i < ev->u.console.len; i++) {
        char c = ev->u.console.data[i];
        if (c != f->next && !f->bad) {
            f->bad = 1;
            f->bad_at = f->got;
        }
        f->next = f->next == '\n' ? 'A' : f->next == 'Z' ? '\n' : (char)(f->next + 1);
        f->got++;
    }
}

static size_t rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *fp = fopen("/proc/self/statm", "r");
    assert_non_null(fp);
    assert_int_equal(fscanf(fp, "%lu %lu", &size, &resident), 2);
    fclose(fp);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Run the loop until @n bytes have arrived (a safety net of VMT_WAIT_MS, not a speed
 * expectation). */
static void flood_drain(vmcore_ctx *ctx, struct flood *f, size_t n)
{
    for (int waited = 0; f->got < n; ) {
        size_t before = f->got;
        vmcore_ctx_run(ctx, VMCORE_RUN_NOWAIT);
        if (f->got == before) {
            usleep(1000);
            if (++waited > VMT_WAIT_MS)
                fail_msg("only %zu of %zu console bytes arrived", f->got, n);
        }
    }
}

/* A guest that floods its serial port while the loop does not run: the console queue is
 * bounded, so the vCPU stops at the UART (the process does not grow), pause and close
 * still work while it waits for room, and the output that arrives is complete and in
 * order once the loop runs again. */
static void test_console_backpressure(void **state)
{
    (void)state;
    vmcore_ctx *ctx;
    vmcore_domain *d;
    struct flood f = { .next = 'A' };
    int threads = vt_count_threads();
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    int fds = vt_count_fds(); /* after the first loop: libuv keeps a process-wide pipe */
    assert_int_equal(vmcore_domain_new_json(&d, ctx, vmt_json("emu", "flood.bin",
                     "\"format\": \"raw\", \"mode\": \"protected\"", NULL)), 0);
    assert_true(vmcore_domain_subscribe(d, VMCORE_EVENT_ALL, flood_event, &f) > 0);
    size_t rss0 = rss_bytes();
    assert_int_equal(vmcore_domain_start(d, NULL, NULL), 0);

    /* The loop does not run for a while: without a bound the queue grows by the guest's
     * whole output (tens of MiB a second); with it, by about 1 MiB of posts. */
    usleep(1500000);
    size_t grown = rss_bytes() - rss0;
    print_message("RSS grew by %zu KiB while the loop did not run\n", grown >> 10);
    assert_true(grown < (size_t)16 << 20);
    /* and the vCPU is stopped, waiting for room: it runs no instruction */
    vmcore_stats a = VMCORE_STATS_INIT, b = VMCORE_STATS_INIT;
    assert_int_equal(vmcore_domain_stats(d, &a), 0);
    usleep(100000);
    assert_int_equal(vmcore_domain_stats(d, &b), 0);
    assert_true(a.instructions > 0);
    assert_int_equal(a.instructions, b.instructions);

    /* pause and resume are synchronous: they must not wait for the queue to drain */
    assert_int_equal(vmcore_domain_pause(d, NULL, NULL), 0);
    assert_int_equal(vmcore_domain_resume(d, NULL, NULL), 0);

    /* the loop runs again: every byte arrives, in order */
    flood_drain(ctx, &f, (size_t)8 << 20);
    if (f.bad)
        fail_msg("console byte %zu out of order", f.bad_at);

    /* fill the queue once more, then close (a kill) while the vCPU waits for room */
    usleep(300000);
    vmcore_domain_close(d, vmt_on_closed, &f.closed);
    assert_true(vt_run_until(ctx, &f.closed, VMT_WAIT_MS));
    assert_false(f.bad);
    assert_int_equal(vt_count_fds(), fds);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
    assert_int_equal(vt_count_threads(), threads);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe),
        VMT_TEST(real_mode, "emu"),
        VMT_TEST(protected_mode, "emu"),
        VMT_TEST(long_mode, "emu"),
        VMT_TEST(multiboot_c_guest, "emu"),
        VMT_TEST(string_io, "emu"),
        VMT_TEST(exit_status, "emu"),
        VMT_TEST(cpl3, "emu"),
        VMT_TEST(triple_fault, "emu"),
        VMT_TEST(kill_loop, "emu"),
        VMT_TEST(shutdown_loop, "emu"),
        VMT_TEST(pause_resume, "emu"),
        VMT_TEST(console_input, "emu"),
        cmocka_unit_test(test_smp_refused),
        cmocka_unit_test(test_resize_console_refused),
        cmocka_unit_test(test_lapic_timer),
        cmocka_unit_test(test_ioapic_guest),
        cmocka_unit_test(test_jit_setting),
        cmocka_unit_test(test_console_backpressure),
        cmocka_unit_test(test_same_as_kvm),
    };
    /* unbuffered: when ctest kills a hung test, its last "[ RUN ]" line names it */
    setvbuf(stdout, NULL, _IONBF, 0);
    if (getenv("VMCORE_TEST_FILTER"))
        cmocka_set_test_filter(getenv("VMCORE_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
