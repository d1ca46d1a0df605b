/* Tiny freestanding runtime shared by the bench guests (32-bit, no libc). */
#ifndef BENCH_GUEST_H
#define BENCH_GUEST_H

#include <stdint.h>

#define COM1 0x3f8
#define DEBUG_EXIT 0xf4

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

/* The UART transmitter is always ready on the emulated 8250s we target (ours, QEMU,
 * the Unicorn harness), so no LSR polling: that keeps IN exits out of the timings. */
static inline void put_char(char c) { outb(COM1, (uint8_t)c); }

static inline void put_str(const char *s)
{
    while (*s)
        put_char(*s++);
}

static inline void put_hex32(uint32_t v)
{
    for (int i = 28; i >= 0; i -= 4)
        put_char("0123456789abcdef"[(v >> i) & 0xf]);
}

int guest_main(void);

#endif
