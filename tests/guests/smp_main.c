/* The SMP guest, freestanding C (multiboot). The BSP learns the CPUs from the ACPI MADT
 * (RSDP found by scanning 0xe0000..0xfffff), else from a "cpus=N" command line, else from
 * CPUID leaf 1, and says which:
 *   cpus: <n> (madt|cmdline|cpuid)
 * then wakes every other CPU with INIT, SIPI, SIPI through its local APIC's ICR. Each AP
 * prints "AP <its APIC ID> up" and counts itself in; once all have, the BSP prints
 * "SMP OK <n>" and exits with status 0 (2: bad multiboot magic; 3: more CPUs than the
 * guest has stacks for). With one CPU the local APIC is never touched, so the guest runs
 * on a machine without one. COM1 is shared: every line is printed under a spinlock.
 *
 * With "tramp-selftest" on the command line the BSP instead runs the AP's path itself
 * (tramp_selftest() in smp_start.S: back to real mode, into the copied trampoline as a
 * SIPI would start it), prints its "AP <id> up" line and "trampoline ok", and exits 0:
 * the real-mode start-up tested on a single CPU.
 *
 * With "pit-ioapic" it instead checks the PC's timer wiring: the 8259s and LINT0 masked,
 * IOAPIC pin 2 (where the MADT's override puts ISA IRQ 0) sends vector 0x30 and pin 0
 * vector 0x31 to the BSP, the PIT runs at 100 Hz; three ticks on pin 2, each EOIed at the
 * LAPIC, print "timer on IOAPIC pin 2" and exit 0. Three, not one: KVM's PIT sends its
 * next tick only once the last is acknowledged, and the acknowledgement finds the PIT
 * through the routing of IOAPIC pin 2 back to ISA IRQ 0. A tick on pin 0 exits with 5,
 * any other vector with 4. */
#include <stddef.h>
#include <stdint.h>

#include "guest_io.h"

#define MAX_CPUS 64                 /* smp_start.S has stacks for MAX_CPUS APs */
#define TRAMPOLINE 0x8000u          /* 4 KiB-aligned, below 1 MiB: SIPI vector 0x08 */
#define LAPIC_DEFAULT 0xfee00000u
#define LAPIC_ID 0x020
#define LAPIC_SVR 0x0f0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_PENDING (1u << 12)
#define ICR_ASSERT (1u << 14)
#define ICR_INIT (5u << 8)
#define ICR_STARTUP (6u << 8)

struct mb_info {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
};

extern const char ap_tramp_start[], ap_tramp_end[], selftest_stub[], selftest_stub_end[];
void tramp_selftest(void) __attribute__((noreturn));
#define SELFTEST_STUB 0x7000u       /* below 64 KiB: smp_start.S's 16-bit stub runs there */

static volatile uint32_t print_lock;
static volatile uint32_t aps_up;
static volatile uint32_t lapic_base = LAPIC_DEFAULT;
static volatile uint32_t selftest;

/* A pointer to guest-physical @a (identity mapped, no paging), hidden from the compiler's
 * idea of object bounds. */
static inline const volatile uint8_t *phys(uint32_t a)
{
    const volatile uint8_t *p;
    __asm__("" : "=r"(p) : "0"(a));
    return p;
}

static void lock(void)
{
    for (;;) {
        uint32_t v = 1;
        __asm__ volatile("lock xchgl %0, %1" : "+r"(v), "+m"(print_lock) : : "memory");
        if (v == 0)
            return;
        while (print_lock)
            __asm__ volatile("pause");
    }
}

static void unlock(void)
{
    __asm__ volatile("" : : : "memory");
    print_lock = 0;
}

static uint32_t rd32(uint32_t a) { return *(const volatile uint32_t *)phys(a); }

static uint32_t lapic_read(uint32_t reg) { return rd32(lapic_base + reg); }

static void lapic_write(uint32_t reg, uint32_t v)
{
    *(volatile uint32_t *)phys(lapic_base + reg) = v;
}

static int sum_ok(uint32_t a, uint32_t len)
{
    uint8_t s = 0;
    for (uint32_t i = 0; i < len; i++)
        s = (uint8_t)(s + phys(a)[i]);
    return s == 0;
}

static int sig_is(uint32_t a, const char *sig, int n)
{
    for (int i = 0; i < n; i++)
        if (phys(a)[i] != (uint8_t)sig[i])
            return 0;
    return 1;
}

static uint32_t find_rsdp(void)
{
    for (uint32_t a = 0xe0000; a < 0x100000; a += 16)
        if (sig_is(a, "RSD PTR ", 8) && sum_ok(a, 20))
            return a;
    return 0;
}

/* A table whose header says @sig, with a sane length and a good checksum. */
static int table_ok(uint32_t a, const char *sig)
{
    if (!a || !sig_is(a, sig, 4))
        return 0;
    uint32_t len = rd32(a + 4);
    return len >= 36 && len <= 0x10000 && sum_ok(a, len);
}

static uint32_t find_madt(void)
{
    uint32_t rsdp = find_rsdp();
    if (!rsdp)
        return 0;
    uint32_t xsdt = rd32(rsdp + 24), rsdt = rd32(rsdp + 16);
    if (phys(rsdp)[15] >= 2 && rd32(rsdp + 28) == 0 && table_ok(xsdt, "XSDT")) {
        uint32_t n = (rd32(xsdt + 4) - 36) / 8;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t t = rd32(xsdt + 36 + i * 8);
            if (rd32(xsdt + 40 + i * 8) == 0 && table_ok(t, "APIC"))
                return t;
        }
    }
    if (table_ok(rsdt, "RSDT")) {
        uint32_t n = (rd32(rsdt + 4) - 36) / 4;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t t = rd32(rsdt + 36 + i * 4);
            if (table_ok(t, "APIC"))
                return t;
        }
    }
    return 0;
}

/* The enabled local APICs the MADT lists (type 0, and type 9 x2APIC entries with an ID an
 * xAPIC can address); returns how many, at most MAX_CPUS + 1 (one too many means "too
 * many"). */
static uint32_t madt_cpus(uint32_t madt, uint32_t *ids)
{
    uint32_t len = rd32(madt + 4), n = 0;
    if (len < 44)
        return 0;
    if (rd32(madt + 36))
        lapic_base = rd32(madt + 36);
    for (uint32_t off = 44; off + 2 <= len && n <= MAX_CPUS;) {
        uint32_t e = madt + off, type = phys(e)[0], elen = phys(e)[1];
        if (elen < 2 || off + elen > len)
            break;
        if (type == 0 && elen >= 8 && (rd32(e + 4) & 1))
            ids[n++] = phys(e)[3];
        else if (type == 9 && elen >= 16 && (rd32(e + 8) & 1) && rd32(e + 4) < 0xff)
            ids[n++] = rd32(e + 4);
        off += elen;
    }
    return n;
}

/* Where @word starts in the command line, or NULL. */
static const char *cmdline_find(const struct mb_info *info, const char *word)
{
    if (!(info->flags & (1u << 2)) || !info->cmdline)
        return 0;
    for (const char *s = (const char *)phys(info->cmdline); *s; s++) {
        int i = 0;
        while (word[i] && s[i] == word[i])
            i++;
        if (!word[i])
            return s;
    }
    return 0;
}

static void copy_low(uint32_t dst_addr, const char *from, const char *to)
{
    volatile char *dst = (volatile char *)phys(dst_addr);
    while (from < to)
        *dst++ = *from++;
}

static uint32_t cmdline_cpus(const struct mb_info *info)
{
    const char *s = cmdline_find(info, "cpus=");
    uint32_t n = 0;
    for (s = s ? s + 5 : ""; *s >= '0' && *s <= '9' && n <= MAX_CPUS; s++)
        n = n * 10 + (uint32_t)(*s - '0');
    return n;
}

static uint32_t cpuid_cpus(void)
{
    uint32_t a = 1, b, c = 0, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    uint32_t n = (b >> 16) & 0xff;
    return (d & (1u << 28)) && n ? n : 1;   /* HTT: EBX[23:16] counts the logical CPUs */
}

/* ---- "pit-ioapic" ---- */

#define IOAPIC_BASE 0xfec00000u     /* lib/machine/platform.h */
#define LAPIC_EOI 0x0b0
#define LAPIC_LVT0 0x350
#define VEC_PIN2 0x30
#define VEC_PIN0 0x31

extern const char isr_timer[], isr_pin0[], isr_other[];

struct idt_gate {
    uint16_t off_lo, sel;
    uint8_t zero, type;
    uint16_t off_hi;
};

static struct idt_gate idt[256];
static volatile uint32_t ticks;

static void set_gate(unsigned v, const char *isr, uint16_t cs)
{
    uint32_t off = (uint32_t)(uintptr_t)isr;
    idt[v] = (struct idt_gate){ .off_lo = (uint16_t)off, .sel = cs, .type = 0x8e,
                                .off_hi = (uint16_t)(off >> 16) };
}

static void ioapic_write(uint32_t reg, uint32_t v)
{
    *(volatile uint32_t *)phys(IOAPIC_BASE) = reg;
    *(volatile uint32_t *)phys(IOAPIC_BASE + 0x10) = v;
}

void timer_isr(void)
{
    ticks++;
    lapic_write(LAPIC_EOI, 0);
}

void pin0_isr(void) __attribute__((noreturn));
void pin0_isr(void)
{
    puts("timer on IOAPIC pin 0, not pin 2\n");
    outb(0xf4, 5);
    for (;;)
        ;
}

void other_isr(void) __attribute__((noreturn));
void other_isr(void)
{
    puts("unexpected interrupt\n");
    outb(0xf4, 4);
    for (;;)
        ;
}

static int pit_ioapic(void)
{
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    for (unsigned v = 0; v < 256; v++)
        set_gate(v, isr_other, cs);
    set_gate(VEC_PIN2, isr_timer, cs);
    set_gate(VEC_PIN0, isr_pin0, cs);
    struct __attribute__((packed)) { uint16_t limit; uint32_t base; } idtr = {
        sizeof idt - 1, (uint32_t)(uintptr_t)idt };
    __asm__ volatile("lidt %0" : : "m"(idtr));
    outb(0x21, 0xff);           /* both 8259s masked: the IOAPIC alone delivers */
    outb(0xa1, 0xff);
    lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | 0x1ff);
    lapic_write(LAPIC_LVT0, lapic_read(LAPIC_LVT0) | (1u << 16));
    uint32_t self = lapic_read(LAPIC_ID) >> 24;
    /* Redirection entries: fixed, physical, edge, active high, unmasked, to the BSP. */
    ioapic_write(0x10 + 2 * 2 + 1, self << 24);
    ioapic_write(0x10 + 2 * 2, VEC_PIN2);
    ioapic_write(0x10 + 2 * 0 + 1, self << 24);
    ioapic_write(0x10 + 2 * 0, VEC_PIN0);
    outb(0x43, 0x34);           /* channel 0, lobyte/hibyte, mode 2 (rate generator) */
    outb(0x40, 11932 & 0xff);   /* 1193182 Hz / 11932: 100 Hz */
    outb(0x40, 11932 >> 8);
    while (ticks < 3)
        __asm__ volatile("sti; hlt; cli" : : : "memory");
    puts("timer on IOAPIC pin 2\n");
    return 0;
}

static void ipi(uint32_t apic_id, uint32_t icr)
{
    lapic_write(LAPIC_ICR_HI, apic_id << 24);
    lapic_write(LAPIC_ICR_LO, icr);
    while (lapic_read(LAPIC_ICR_LO) & ICR_PENDING)
        __asm__ volatile("pause");
}

void ap_main(void)
{
    uint32_t id = lapic_read(LAPIC_ID) >> 24;
    lock();
    puts("AP ");
    putdec(id);
    puts(" up\n");
    unlock();
    /* Counted after the line is out, so "SMP OK" follows every AP's line. */
    __asm__ volatile("lock incl %0" : "+m"(aps_up) : : "memory");
    if (selftest) {
        lock();
        puts("trampoline ok\n");
        unlock();
        outb(0xf4, 0);
    }
}

int smp_main(uint32_t magic, const struct mb_info *info)
{
    if (magic != 0x2badb002u) {
        puts("bad multiboot magic\n");
        return 2;
    }
    if (cmdline_find(info, "tramp-selftest")) {
        selftest = 1;
        copy_low(TRAMPOLINE, ap_tramp_start, ap_tramp_end);
        copy_low(SELFTEST_STUB, selftest_stub, selftest_stub_end);
        tramp_selftest();
    }
    if (cmdline_find(info, "pit-ioapic"))
        return pit_ioapic();
    static uint32_t ids[MAX_CPUS + 1];
    const char *from = "madt";
    uint32_t madt = find_madt(), n = madt ? madt_cpus(madt, ids) : 0;
    if (!n) {
        from = "cmdline";
        n = cmdline_cpus(info);
        if (!n) {
            from = "cpuid";
            n = cpuid_cpus();
        }
        for (uint32_t i = 0; i < n && i <= MAX_CPUS; i++)
            ids[i] = i;
    }
    puts("cpus: ");
    putdec(n);
    puts(" (");
    puts(from);
    puts(")\n");
    if (n > MAX_CPUS) {
        puts("more CPUs than this guest has stacks for\n");
        return 3;
    }
    uint32_t woken = 0;
    if (n > 1) {
        copy_low(TRAMPOLINE, ap_tramp_start, ap_tramp_end);
        /* Software-enable the BSP's local APIC (spurious vector 0xff) before using it. */
        lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | 0x1ff);
        uint32_t self = lapic_read(LAPIC_ID) >> 24;
        /* The SDM's waits (10 ms after INIT, 200 us between the SIPIs) are for real
         * hardware; KVM's LAPIC takes INIT and SIPI in order, and ignores a SIPI to a CPU
         * that already runs, so the second one is harmless there. */
        for (uint32_t i = 0; i < n; i++) {
            if (ids[i] == self)
                continue;
            ipi(ids[i], ICR_ASSERT | ICR_INIT);
            ipi(ids[i], ICR_ASSERT | ICR_STARTUP | (TRAMPOLINE >> 12));
            ipi(ids[i], ICR_ASSERT | ICR_STARTUP | (TRAMPOLINE >> 12));
            woken++;
        }
        while (aps_up < woken)
            __asm__ volatile("pause");
    }
    lock();
    puts("SMP OK ");
    putdec(woken + 1);
    puts("\n");
    unlock();
    return 0;
}
