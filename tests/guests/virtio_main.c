/* The virtio guest, freestanding C (multiboot, 32-bit, no paging): a polling virtio-blk
 * driver small enough to run at CPL0 under PVM's emulator. It
 *   - finds the first virtio-blk (1af4:1042) on bus 0 through CF8/CFC;
 *   - moves BAR 4 (64-bit, placed above 4 GiB at registration) to VIRTIO_BAR4 and BAR 1
 *     (the MSI-X table) to VIRTIO_BAR1, after turning memory decoding on at the old place:
 *     so a hypervisor doorbell bound at the first address must follow the BAR;
 *   - walks the vendor capabilities for the common, notify and device configuration;
 *   - points MSI-X entry 1 (queue 0's vector) at the BSP's LAPIC, vector 0x40, with the
 *     LAPIC software-enabled and interrupts left off, so a delivered message shows as the
 *     IRR bit and is never taken;
 *   - does the virtio 1.x initialisation (reset, ACKNOWLEDGE, DRIVER, VERSION_1 only,
 *     FEATURES_OK read back, queue 0 of 8 entries in .bss, DRIVER_OK);
 *   - reads sector 0 and prints "sector 0: <its text up to the first newline>", writes
 *     sector 1 ("written by the virtio guest\n"), reads it back and compares, and waits
 *     for the IRR bit of vector 0x40: "msi-x ok", then "virtio ok".
 * With "irq" on the command line it instead waits for each completion in HLT with
 * interrupts on (8259s and LINT0 masked, vector 0x40 the only gate that returns), and
 * ends with "interrupts: 3" (one per request) before "virtio ok": the vCPU sleeps while
 * the device works and the MSI-X message wakes it.
 * Exit status 0; 2 bad magic, 3 no virtio-blk, 4 no capabilities, 5 FEATURES_OK refused,
 * 6 a request failed, 7 read-back mismatch, 8 queue too small, 9 no MSI-X, 10 an
 * unexpected interrupt (irq mode). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest_io.h"

#define VIRTIO_BAR4 0xd0000000u     /* 16 KiB, in the 32-bit PCI window */
#define VIRTIO_BAR1 0xd0010000u     /* 4 KiB */
#define LAPIC 0xfee00000u
#define MSI_VECTOR 0x40
#define QSZ 8

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

#define barrier() __asm__ volatile("" ::: "memory")

/* GCC may turn loops and struct copies into calls to these. */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n)
{
    for (uint8_t *p = d; n--;)
        *p++ = (uint8_t)c;
    return d;
}
void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *p = d;
    for (const uint8_t *q = s; n--;)
        *p++ = *q++;
    return d;
}

static uint32_t slot;

static uint32_t cfg_read(unsigned off)
{
    outl(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc));
    return inl(0xcfc) >> (8 * (off & 3));
}

static void cfg_write32(unsigned off, uint32_t v)
{
    outl(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc));
    outl(0xcfc, v);
}

static void cfg_write16(unsigned off, uint16_t v)
{
    uint32_t old = cfg_read(off & 0xfc);
    unsigned sh = 8 * (off & 2);
    cfg_write32(off & 0xfc, (old & ~(0xffffu << sh)) | (uint32_t)v << sh);
}

static inline void w8(uint32_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void w16(uint32_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline void w32(uint32_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline uint8_t r8(uint32_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t r16(uint32_t a) { return *(volatile uint16_t *)a; }
static inline uint32_t r32(uint32_t a) { return *(volatile uint32_t *)a; }

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct blk_req { uint32_t type, reserved; uint64_t sector; };

static struct desc ring_desc[QSZ] __attribute__((aligned(16)));
static struct { uint16_t flags, idx, ring[QSZ], used_event; } avail __attribute__((aligned(2)));
static struct {
    uint16_t flags, idx;
    struct { uint32_t id, len; } ring[QSZ];
    uint16_t avail_event;
} used __attribute__((aligned(4)));
static struct blk_req hdr;
static uint8_t data[512], status;

static uint32_t common, notify, notify_mult;
static uint16_t last_used;
static bool irq_mode;
static volatile uint32_t irqs;

/* irq mode: the gate of vector 0x40 counts and EOIs; every other vector ends the guest. */
struct idt_gate { uint16_t off_lo, sel; uint8_t zero, type; uint16_t off_hi; };
static struct idt_gate idt[256];
extern const char isr_virtio[], isr_other[];
void virtio_isr(void);
void other_isr(void) __attribute__((noreturn));
__asm__(".text\n"
        "isr_virtio: pushal; cld; call virtio_isr; popal; iret\n"
        "isr_other: cld; call other_isr\n");

void virtio_isr(void)
{
    irqs++;
    *(volatile uint32_t *)(LAPIC + 0xb0) = 0;      /* EOI */
}

void other_isr(void)
{
    puts("unexpected interrupt\n");
    outb(0xf4, 10);
    for (;;)
        ;
}

static void set_gate(unsigned v, const char *isr, uint16_t cs)
{
    uint32_t off = (uint32_t)isr;
    idt[v] = (struct idt_gate){ (uint16_t)off, cs, 0, 0x8e, (uint16_t)(off >> 16) };
}

static void irq_setup(void)
{
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    for (unsigned v = 0; v < 256; v++)
        set_gate(v, v == MSI_VECTOR ? isr_virtio : isr_other, cs);
    struct __attribute__((packed)) { uint16_t limit; uint32_t base; } idtr = {
        sizeof idt - 1, (uint32_t)idt };
    __asm__ volatile("lidt %0" : : "m"(idtr));
    outb(0x21, 0xff);                   /* the 8259s masked, LINT0 masked */
    outb(0xa1, 0xff);
    *(volatile uint32_t *)(LAPIC + 0x350) |= 1u << 16;
}

/* One request: header, 512 data bytes (@write: the device reads them), a status byte. */
static int request(uint32_t type, uint32_t sector)
{
    hdr.type = type;
    hdr.reserved = 0;
    hdr.sector = sector;
    status = 0xff;
    ring_desc[0] = (struct desc){ (uint32_t)&hdr, sizeof hdr, 1, 1 };
    ring_desc[1] = (struct desc){ (uint32_t)data, sizeof data, (uint16_t)(type ? 1 : 3), 2 };
    ring_desc[2] = (struct desc){ (uint32_t)&status, 1, 2, 0 };
    avail.ring[avail.idx % QSZ] = 0;
    barrier();
    avail.idx++;
    barrier();
    w16(notify, 0);                     /* queue 0's notify register: the doorbell */
    /* irq mode: sleep until this request's own interrupt came (not only its used entry:
     * an interrupt still pending when the next one arrives would merge with it). */
    while (*(volatile uint16_t *)&used.idx == last_used ||
           (irq_mode && irqs < (uint32_t)last_used + 1))
        if (irq_mode)
            __asm__ volatile("sti; hlt; cli" : : : "memory");
    last_used++;
    barrier();
    return *(volatile uint8_t *)&status;
}

static void put_line(const uint8_t *p, unsigned n)
{
    for (unsigned i = 0; i < n && p[i] && p[i] != '\n'; i++)
        putc((char)p[i]);
    putc('\n');
}

static bool has_word(const char *s, const char *w)
{
    for (; *s; s++) {
        unsigned i = 0;
        while (w[i] && s[i] == w[i])
            i++;
        if (!w[i] && (s[i] == 0 || s[i] == ' '))
            return true;
    }
    return false;
}

struct mb_info { uint32_t flags, mem_lower, mem_upper, boot_device, cmdline; };

int guest_main(uint32_t magic, const struct mb_info *info)
{
    if (magic != 0x2badb002u)
        return 2;
    irq_mode = (info->flags & (1u << 2)) && has_word((const char *)info->cmdline, "irq");
    if (irq_mode)
        irq_setup();
    for (slot = 1; slot < 32; slot++)
        if (cfg_read(0) == 0x10421af4u)
            break;
    if (slot == 32) {
        puts("no virtio-blk\n");
        return 3;
    }
    /* Decoding on where registration put the BARs, then move both: BAR 4's upper half
     * first (the BAR briefly sits over RAM and is refused), then its lower half. */
    cfg_write16(0x04, 0x0006);          /* memory, bus master */
    cfg_write32(0x10 + 4 * 4 + 4, 0);
    cfg_write32(0x10 + 4 * 4, VIRTIO_BAR4);
    cfg_write32(0x10 + 4 * 1, VIRTIO_BAR1);

    uint32_t msix = 0;
    for (unsigned cap = cfg_read(0x34) & 0xff; cap; cap = (cfg_read(cap) >> 8) & 0xff) {
        uint32_t id = cfg_read(cap) & 0xff;
        if (id == 0x11)
            msix = cap;
        if (id != 0x09)
            continue;
        uint32_t type = (cfg_read(cap) >> 24) & 0xff, off = cfg_read(cap + 8);
        if (type == 1)
            common = VIRTIO_BAR4 + off;
        else if (type == 2) {
            notify = VIRTIO_BAR4 + off;
            notify_mult = cfg_read(cap + 16);
        }
    }
    if (!common || !notify) {
        puts("no virtio capabilities\n");
        return 4;
    }
    if (!msix) {
        puts("no msi-x\n");
        return 9;
    }
    /* MSI-X entry 1 -> the BSP (APIC ID 0), fixed, vector 0x40; the LAPIC on, IF off. */
    uint32_t table = VIRTIO_BAR1 + (cfg_read(msix + 4) & ~7u);
    w32(LAPIC + 0xf0, 0x1ff);
    w32(table + 16, LAPIC);
    w32(table + 20, 0);
    w32(table + 24, MSI_VECTOR);
    w32(table + 28, 0);                 /* unmasked */
    cfg_write16(msix + 2, 0x8000);      /* MSI-X enable */

    w8(common + 0x14, 0);               /* reset */
    w8(common + 0x14, 1);
    w8(common + 0x14, 1 | 2);
    w32(common + 0x00, 1);              /* device features 32..63 */
    if (!(r32(common + 0x04) & 1)) {
        puts("no VERSION_1\n");
        return 5;
    }
    w32(common + 0x08, 0);
    w32(common + 0x0c, 0);
    w32(common + 0x08, 1);
    w32(common + 0x0c, 1);              /* VERSION_1, nothing else */
    w8(common + 0x14, 1 | 2 | 8);
    if (!(r8(common + 0x14) & 8)) {
        puts("FEATURES_OK refused\n");
        return 5;
    }
    w16(common + 0x16, 0);              /* queue 0 */
    if (r16(common + 0x18) < QSZ) {
        puts("queue too small\n");
        return 8;
    }
    w16(common + 0x18, QSZ);
    w16(common + 0x1a, 1);              /* MSI-X vector 1 */
    w32(common + 0x20, (uint32_t)ring_desc);
    w32(common + 0x24, 0);
    w32(common + 0x28, (uint32_t)&avail);
    w32(common + 0x2c, 0);
    w32(common + 0x30, (uint32_t)&used);
    w32(common + 0x34, 0);
    notify += r16(common + 0x1e) * notify_mult;
    w16(common + 0x1c, 1);
    w8(common + 0x14, 1 | 2 | 8 | 4);   /* DRIVER_OK */

    if (request(0, 0)) {
        puts("read failed\n");
        return 6;
    }
    puts("sector 0: ");
    put_line(data, sizeof data);

    static const char msg[] = "written by the virtio guest\n";
    for (unsigned i = 0; i < sizeof data; i++)
        data[i] = i < sizeof msg - 1 ? (uint8_t)msg[i] : 0;
    if (request(1, 1)) {
        puts("write failed\n");
        return 6;
    }
    for (unsigned i = 0; i < sizeof data; i++)
        data[i] = 0xaa;
    if (request(0, 1)) {
        puts("read back failed\n");
        return 6;
    }
    for (unsigned i = 0; i < sizeof msg - 1; i++)
        if (data[i] != (uint8_t)msg[i]) {
            puts("read back differs\n");
            return 7;
        }
    puts("sector 1: ");
    put_line(data, sizeof data);

    if (irq_mode) {
        while (irqs < 3)
            __asm__ volatile("sti; hlt; cli" : : : "memory");
        puts("interrupts: ");
        putdec(irqs);
        puts("\nvirtio ok\n");
        return 0;
    }
    /* The completions' message: IRR bit 0x40 % 32 of IRR register 0x40 / 32. */
    while (!(r32(LAPIC + 0x200 + 0x10 * (MSI_VECTOR / 32)) & (1u << (MSI_VECTOR % 32))))
        ;
    puts("msi-x ok\nvirtio ok\n");
    return 0;
}
