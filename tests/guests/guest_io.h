/* Port I/O and COM1 output for the freestanding C guests (mb_main.c, smp_main.c): the
 * UART is polled (LSR bit 5), no interrupts. */
#ifndef GUEST_IO_H
#define GUEST_IO_H

#include <stdint.h>

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

static inline void putc(char c)
{
    while (!(inb(0x3fd) & 0x20))
        ;
    outb(0x3f8, (uint8_t)c);
}

static inline void puts(const char *s)
{
    while (*s)
        putc(*s++);
}

static inline void putdec(uint32_t v)
{
    char buf[11];
    int i = 10;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    puts(buf + i);
}

#endif
