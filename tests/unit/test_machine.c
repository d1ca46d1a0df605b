/* The machine model without a CPU: port accesses as a vCPU loop would make them, checked
 * against the devices (8250 UART, debug-exit, i8042, CMOS), the buses and the one-time
 * stop. The event sink is replaced so the test sees console output and the exit. */
#include "vt.h"
#include "vtmachine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "machine/machine.h"

struct fixture {
    struct vt_machine vm;
    struct machine *m;      /* vm.m */
    struct vt_events seen;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    vt_machine_create(&f->vm, 4, 1);
    f->m = f->vm.m;
    machine_set_event_sink(f->m, &(struct machine_event_sink){ vt_record_console, vt_record_exit, &f->seen });
    machine_set_irq_sink(f->m, &(struct machine_irq_sink){ vt_record_irq, NULL, &f->seen });
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vt_machine_destroy(&f->vm);
    free(f);
    return 0;
}

static void outb(struct machine *m, uint16_t port, uint8_t v) { vt_pio_write(m, port, 1, v); }
static uint8_t inb(struct machine *m, uint16_t port) { return (uint8_t)vt_pio_read(m, port, 1); }

static void test_ram(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(machine_ram_size(f->m), 4u << 20);
    assert_int_equal(machine_ram(f->m)[0x100000], 0xf4); /* the image */
    assert_ptr_equal(machine_gpa_to_hva(f->m, 0x1000, 16), machine_ram(f->m) + 0x1000);
    assert_null(machine_gpa_to_hva(f->m, (4u << 20) - 8, 16));
    assert_null(machine_gpa_to_hva(f->m, UINT64_MAX - 4, 16));
    assert_int_equal(machine_boot_state(f->m)->rip, 0x100000);
}

static void test_too_much_memory(void **state)
{
    struct fixture *f = *state;
    struct vmcore_config cfg = f->vm.cfg;
    cfg.memory_mib = 4096;
    struct machine *m = NULL;
    struct vmcore_err err = { 0 };
    assert_int_equal(machine_create(&m, &cfg, NULL, &err), VMCORE_ELIMIT);
    assert_null(m);
    assert_string_equal(err.path, "memory_mib");
    cfg.memory_mib = 4;
    cfg.boot.kernel = "/nonexistent/kernel";
    assert_int_equal(machine_create(&m, &cfg, NULL, &err), VMCORE_ENOENT);
    assert_null(m);
}

static void test_unclaimed(void **state)
{
    struct fixture *f = *state;
    uint32_t v = 0;
    assert_int_equal(machine_pio(f->m, 0x1234, false, 4, &v), MACHINE_CONTINUE);
    assert_int_equal(v, 0xffffffffu);
    uint64_t q = 0;
    assert_int_equal(machine_mmio(f->m, 0xfed00000, false, 8, &q), MACHINE_CONTINUE);
    assert_int_equal(q, UINT64_MAX);
    machine_mmio(f->m, 0xfed00000, true, 8, &q);
    assert_int_equal(machine_unclaimed_count(f->m), 3);
    assert_int_equal(machine_exit_count(f->m), 3);
}

static uint64_t dummy_read(void *opaque, uint64_t off, unsigned size) { return off + 0x100; }
static void dummy_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
    *(uint64_t *)opaque = off << 32 | v;
}

static void test_register(void **state)
{
    struct fixture *f = *state;
    static const struct machine_dev_ops ops = { dummy_read, dummy_write };
    uint64_t last = 0;
    assert_int_equal(machine_register_pio(f->m, 0x3f0, 16, &ops, &last, "x"), VMCORE_EBUSY);
    assert_int_equal(machine_register_pio(f->m, 0xfff0, 0x20, &ops, &last, "x"), VMCORE_EINVAL);
    assert_int_equal(machine_register_mmio(f->m, 0x1000, 16, &ops, &last, "x"), VMCORE_EINVAL);
    assert_int_equal(machine_register_mmio(f->m, 0xd0000000, 0x1000, &ops, &last, "x"), 0);
    uint32_t v = 0;
    machine_mmio(f->m, 0xd0000010, false, 4, &v);
    assert_int_equal(v, 0x110);
    v = 0x55;
    machine_mmio(f->m, 0xd0000020, true, 4, &v);
    assert_int_equal(last, (0x20ull << 32) | 0x55);
    assert_int_equal(machine_unclaimed_count(f->m), 0);
}

static void test_debug_exit_once(void **state)
{
    struct fixture *f = *state;
    uint8_t v = 42;
    assert_int_equal(machine_pio(f->m, 0xf4, true, 1, &v), MACHINE_STOP);
    assert_true(machine_stopped(f->m));
    assert_int_equal(f->seen.exits, 1);
    assert_int_equal(f->seen.kind, VMCORE_EXIT_STATUS);
    assert_int_equal(f->seen.status, 42);
    v = 7;
    machine_pio(f->m, 0xf4, true, 1, &v);
    outb(f->m, 0x64, 0xfe);
    machine_stop(f->m, VMCORE_EXIT_CRASH, 0, "late");
    assert_int_equal(f->seen.exits, 1);
    assert_int_equal(f->seen.status, 42);
}

static void test_i8042_reset(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(inb(f->m, 0x64) & 0x03, 0); /* buffers empty */
    outb(f->m, 0x64, 0xd1);
    assert_false(machine_stopped(f->m));
    outb(f->m, 0x64, 0xfe);
    assert_true(machine_stopped(f->m));
    assert_int_equal(f->seen.kind, VMCORE_EXIT_STATUS);
    assert_int_equal(f->seen.status, 0);
    assert_string_equal(f->seen.reason, "reset via i8042");
}

/* The controller with no keyboard or mouse attached, as Linux's i8042 probe drives it. */
static void test_i8042_controller(void **state)
{
    struct fixture *f = *state;
    outb(f->m, 0x64, 0x20);                         /* read the configuration byte */
    assert_int_equal(inb(f->m, 0x64) & 0x25, 0x05); /* OBF, SYS, keyboard data */
    assert_int_equal(f->seen.irq_level[1], 1);      /* keyboard interrupt enabled */
    assert_int_equal(inb(f->m, 0x60), 0x45);
    assert_int_equal(inb(f->m, 0x64) & 0x01, 0);
    assert_int_equal(f->seen.irq_level[1], 0);
    outb(f->m, 0x64, 0x60);                         /* write it: interrupts off */
    outb(f->m, 0x60, 0x44);
    outb(f->m, 0x64, 0x20);
    assert_int_equal(f->seen.irq_level[1], 0);
    assert_int_equal(inb(f->m, 0x60), 0x44);
    outb(f->m, 0x64, 0xaa);                         /* self test */
    assert_int_equal(inb(f->m, 0x60), 0x55);
    outb(f->m, 0x64, 0xab);                         /* keyboard interface test */
    assert_int_equal(inb(f->m, 0x60), 0x00);
    outb(f->m, 0x64, 0xd3);                         /* AUX loopback */
    outb(f->m, 0x60, 0x5a);
    assert_int_equal(inb(f->m, 0x64) & 0x21, 0x21);
    assert_int_equal(inb(f->m, 0x60), 0x5a);
    outb(f->m, 0x64, 0x60);                         /* AUX interrupt on: the loopback raises IRQ 12 */
    outb(f->m, 0x60, 0x46);
    outb(f->m, 0x64, 0xd3);
    outb(f->m, 0x60, 0xa5);
    assert_int_equal(f->seen.irq_level[12], 1);
    assert_int_equal(inb(f->m, 0x60), 0xa5);
    assert_int_equal(f->seen.irq_level[12], 0);
    outb(f->m, 0x60, 0xf2);                         /* to the keyboard: nobody answers */
    assert_int_equal(inb(f->m, 0x64) & 0x61, 0x41); /* OBF, time-out, not AUX */
    assert_int_equal(inb(f->m, 0x60), 0xfe);
    outb(f->m, 0x64, 0xd4);                         /* to the mouse: nobody answers */
    outb(f->m, 0x60, 0xf2);
    assert_int_equal(inb(f->m, 0x64) & 0x61, 0x61);
    assert_int_equal(inb(f->m, 0x60), 0xfe);
    outb(f->m, 0x64, 0xd0);                         /* output port: A20 on, not in reset */
    assert_int_equal(inb(f->m, 0x60), 0x03);
    assert_false(machine_stopped(f->m));
    outb(f->m, 0x64, 0xd1);                         /* output port bit 0 clear: reset */
    outb(f->m, 0x60, 0x02);
    assert_true(machine_stopped(f->m));
    assert_string_equal(f->seen.reason, "reset via i8042");
}

static void test_cmos(void **state)
{
    struct fixture *f = *state;
    outb(f->m, 0x70, 0x0b);
    assert_int_equal(inb(f->m, 0x71) & 0x04, 0); /* BCD */
    outb(f->m, 0x70, 0x0a);
    assert_int_equal(inb(f->m, 0x71) & 0x80, 0); /* no update in progress */
    outb(f->m, 0x70, 0x00);
    uint8_t sec = inb(f->m, 0x71);
    assert_true((sec & 0x0f) < 10 && (sec >> 4) < 6);
    outb(f->m, 0x70, 0x17); /* extended memory: 3 MiB above 1 MiB */
    uint16_t ext = inb(f->m, 0x71);
    outb(f->m, 0x70, 0x18);
    ext |= (uint16_t)(inb(f->m, 0x71) << 8);
    assert_int_equal(ext, 3 * 1024);
    outb(f->m, 0x70, 0x40); /* plain storage */
    outb(f->m, 0x71, 0x5a);
    outb(f->m, 0x70, 0x40);
    assert_int_equal(inb(f->m, 0x71), 0x5a);
}

static void test_uart_output_lines(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(inb(f->m, 0x3fd) & 0x60, 0x60); /* THR empty, transmitter idle */
    for (const char *p = "hello"; *p; p++)
        outb(f->m, 0x3f8, (uint8_t)*p);
    assert_int_equal(f->seen.outlen, 0); /* gathered until the line ends */
    outb(f->m, 0x3f8, '\n');
    assert_int_equal(f->seen.outlen, 6);
    assert_memory_equal(f->seen.out, "hello\n", 6);
    assert_int_equal(f->seen.console_events, 1);
    /* A partial line goes out as soon as the guest does something else: another device, */
    outb(f->m, 0x3f8, '>');
    inb(f->m, 0x3fd);
    assert_int_equal(f->seen.outlen, 6);
    inb(f->m, 0x60);
    assert_int_equal(f->seen.outlen, 7);
    /* another UART register (here: reading a received byte), */
    outb(f->m, 0x3f8, 'a');
    inb(f->m, 0x3f8);
    assert_int_equal(f->seen.outlen, 8);
    /* or polling LSR twice in a row (waiting for input, not transmitting). */
    outb(f->m, 0x3f8, 'b');
    inb(f->m, 0x3fd);
    assert_int_equal(f->seen.outlen, 8);
    inb(f->m, 0x3fd);
    assert_int_equal(f->seen.outlen, 9);
    /* ... or when the machine stops. */
    outb(f->m, 0x3f8, '!');
    machine_stop(f->m, VMCORE_EXIT_STATUS, 0, "done");
    assert_int_equal(f->seen.outlen, 10);
    assert_memory_equal(f->seen.out, "hello\n>ab!", 10);
}

static void test_uart_registers(void **state)
{
    struct fixture *f = *state;
    outb(f->m, 0x3ff, 0xa5); /* scratch */
    assert_int_equal(inb(f->m, 0x3ff), 0xa5);
    outb(f->m, 0x3fb, 0x80); /* DLAB: divisor latch */
    outb(f->m, 0x3f8, 0x01);
    outb(f->m, 0x3f9, 0x00);
    assert_int_equal(inb(f->m, 0x3f8), 0x01);
    outb(f->m, 0x3fb, 0x03); /* 8N1 */
    assert_int_equal(inb(f->m, 0x3fb), 0x03);
    assert_int_equal(f->seen.outlen, 0); /* the divisor write was not output */
    /* Loopback, as Linux's autoconfig checks it: OUT2|RTS -> DCD|CTS. */
    outb(f->m, 0x3fc, 0x10 | 0x0a);
    assert_int_equal(inb(f->m, 0x3fe) & 0xf0, 0x90);
    outb(f->m, 0x3f8, 'L');
    assert_int_equal(inb(f->m, 0x3fd) & 1, 1);
    assert_int_equal(inb(f->m, 0x3f8), 'L');
    outb(f->m, 0x3fc, 0x00);
    assert_int_equal(f->seen.outlen, 0);
    /* FIFO enabled: IIR reports it. */
    outb(f->m, 0x3fa, 0x07);
    assert_int_equal(inb(f->m, 0x3fa) & 0xc0, 0xc0);
}

static void test_uart_rx_and_irq(void **state)
{
    struct fixture *f = *state;
    outb(f->m, 0x3fc, 0x08);        /* OUT2: the interrupt line is connected */
    outb(f->m, 0x3f9, 0x01);        /* receive interrupts */
    assert_int_equal(f->seen.irq_level[4], 0);
    assert_int_equal(machine_console_input(f->m, "ab", 2), 2);
    assert_int_equal(f->seen.irq_level[4], 1);
    assert_int_equal(inb(f->m, 0x3fa) & 0x0f, 0x04); /* IIR: received data */
    assert_int_equal(inb(f->m, 0x3f8), 'a');
    assert_int_equal(f->seen.irq_level[4], 1);
    assert_int_equal(inb(f->m, 0x3f8), 'b');
    assert_int_equal(f->seen.irq_level[4], 0);
    assert_int_equal(inb(f->m, 0x3fd) & 1, 0);
    assert_int_equal(inb(f->m, 0x3fa) & 0x0f, 0x01); /* nothing pending */

    /* THRE: enabling it with an empty holder interrupts; reading IIR acknowledges. */
    outb(f->m, 0x3f9, 0x03);
    assert_int_equal(f->seen.irq_level[4], 1);
    assert_int_equal(inb(f->m, 0x3fa) & 0x0f, 0x02);
    assert_int_equal(f->seen.irq_level[4], 0);
    outb(f->m, 0x3f8, 'x');         /* transmitted at once: THRE again */
    assert_int_equal(f->seen.irq_level[4], 1);
    outb(f->m, 0x3f9, 0x00);
    assert_int_equal(f->seen.irq_level[4], 0);

    /* The receive queue is bounded; what does not fit is reported. */
    static char big[8192];
    size_t n = machine_console_input(f->m, big, sizeof big);
    assert_true(n > 0 && n < sizeof big);
    assert_int_equal(machine_console_input(f->m, "z", 1), 0);
    struct vmcore_err err = { 0 };
    assert_int_equal(machine_console_write(f->m, "z", 1, &err), VMCORE_EBUSY);
    assert_string_equal(err.msg, "console: the serial receive queue is full (0 of 1 bytes queued)");
}

static void test_ram_resident(void **state)
{
    struct fixture *f = *state;
    /* The loader touched the image page (and nothing else for a protected raw image but
     * the GDT page); touching more is counted. */
    uint64_t before = machine_ram_resident(f->m);
    assert_true(before >= 4096 && before < (64u << 10));
    memset(machine_ram(f->m) + (2u << 20), 1, 3 * 4096);
    assert_int_equal(machine_ram_resident(f->m), before + 3 * 4096);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_much_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unclaimed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_debug_exit_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_i8042_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_i8042_controller, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmos, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uart_output_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uart_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uart_rx_and_irq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ram_resident, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
