/* The idle guest for the density row: it programs the 8259 PIC and the 8250 UART's receive
 * interrupt, prints "ready\n" and then sleeps in HLT with interrupts on, so an idle VM costs
 * no CPU. Every received byte is echoed back, as a line, from the IRQ 4 handler; 'q' ends the guest
 * with debug-exit status 0. A CPU exception ends it with status 3.
 *
 * The handlers never IRET: the only thing an interrupt can interrupt is the idle loop, so
 * each handler starts on a fresh stack and jumps back into that loop. This keeps the guest
 * off IRET, which software-assisted KVM (PVM) fails to emulate at CPL 0 ("KVM internal
 * error, suberror 1"). */
#include "guest.h"

#define PIC1 0x20
#define PIC2 0xa0
#define IRQ_BASE 0x20
#define KCODE 0x08
#define KDATA 0x10

/* Our own flat GDT: multiboot leaves GDTR undefined, and interrupt gates need a code
 * selector that is valid. */
static const uint64_t gdt[3] = { 0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull };
static uint64_t idt[256];
/* Read by echo_idle (asm), hence not static. */
volatile int quit;

struct __attribute__((packed)) dtr {
    uint16_t limit;
    uint32_t base;
};

void echo_irq(void);
void echo_irq_other(void);
void echo_fault(void);
void echo_idle(void) __attribute__((noreturn));

/* Used by the stubs below (asm), hence not static. */
uint8_t echo_irq_stack[4096] __attribute__((aligned(16)));

/* Interrupt entry stubs: fresh stack, C handler, acknowledge the PIC, back to idle. */
__asm__(".text\n"
        ".globl echo_irq\n"
        "echo_irq:\n"
        "  movl $echo_irq_stack + 4096, %esp\n  cld\n  call uart_irq\n"
        "  movb $0x20, %al\n  outb %al, $0x20\n  jmp echo_idle\n"
        ".globl echo_irq_other\n"
        "echo_irq_other:\n"
        "  movl $echo_irq_stack + 4096, %esp\n"
        "  movb $0x20, %al\n  outb %al, $0xa0\n  outb %al, $0x20\n  jmp echo_idle\n"
        ".globl echo_fault\n"
        "echo_fault:\n"
        "  movb $3, %al\n  outb %al, $0xf4\n1: hlt\n  jmp 1b\n"
        /* Sleep until the next interrupt; after 'q', leave through debug-exit. */
        ".globl echo_idle\n"
        "echo_idle:\n"
        "  cmpl $0, quit\n  jne 2f\n  sti\n  hlt\n  jmp echo_idle\n"
        "2: movb $0, %al\n  outb %al, $0xf4\n3: hlt\n  jmp 3b\n");

void uart_irq(void);
void uart_irq(void)
{
    while (inb(COM1 + 5) & 1) { /* LSR: data ready */
        uint8_t c = inb(COM1);
        /* Answer with a whole line: the machine model sends console output on to the
         * host per line (or on the next non-UART exit), and an idle guest makes none. */
        put_char((char)c);
        if (c != '\n')
            put_char('\n');
        if (c == 'q')
            quit = 1;
    }
}

static void set_gate(int vec, void (*fn)(void))
{
    uint32_t a = (uint32_t)(uintptr_t)fn;
    idt[vec] = (a & 0xffffu) | ((uint64_t)KCODE << 16) | ((uint64_t)0x8e00 << 32) |
               ((uint64_t)(a >> 16) << 48);
}

int guest_main(void)
{
    struct dtr g = { sizeof gdt - 1, (uint32_t)(uintptr_t)gdt };
    struct dtr i = { sizeof idt - 1, (uint32_t)(uintptr_t)idt };

    __asm__ volatile("lgdt %0\n"
                     "ljmp %1, $1f\n"
                     "1: movw %2, %%ax\n"
                     "movw %%ax, %%ds\n movw %%ax, %%es\n movw %%ax, %%ss\n"
                     "movw %%ax, %%fs\n movw %%ax, %%gs\n"
                     : : "m"(g), "i"(KCODE), "i"(KDATA) : "eax", "memory");
    for (int v = 0; v < 32; v++)
        set_gate(v, echo_fault);
    for (int v = 32; v < 256; v++)
        set_gate(v, echo_irq_other);
    set_gate(IRQ_BASE + 4, echo_irq);
    __asm__ volatile("lidt %0" : : "m"(i));

    /* 8259: edge triggered, cascade, vectors 0x20/0x28, 8086 mode; unmask IRQ 4 only. */
    outb(PIC1, 0x11); outb(PIC2, 0x11);
    outb(PIC1 + 1, IRQ_BASE); outb(PIC2 + 1, IRQ_BASE + 8);
    outb(PIC1 + 1, 4); outb(PIC2 + 1, 2);
    outb(PIC1 + 1, 1); outb(PIC2 + 1, 1);
    outb(PIC1 + 1, 0xef); outb(PIC2 + 1, 0xff);

    /* 8250: receive-data interrupt on, OUT2 (gates the IRQ line on a PC). */
    outb(COM1 + 1, 0x01);
    outb(COM1 + 4, 0x08);

    put_str("ready\n");
    echo_idle();
}
