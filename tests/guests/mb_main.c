/* The multiboot guest, freestanding C: checks the boot magic, counts the primes below
 * 10000 with a sieve in .bss (1229), computes the CRC-32 of "123456789" (cbf43926), and
 * prints both on COM1 with what the multiboot information says (command line, upper
 * memory, module). Exit status 0, or 2 for a wrong boot magic. */
#include <stddef.h>
#include <stdint.h>

#include "guest_io.h"
struct mb_info {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
    uint32_t syms[4], mmap_length, mmap_addr;
};
struct mb_module {
    uint32_t start, end, string, reserved;
};

static void puthex(uint32_t v)
{
    for (int s = 28; s >= 0; s -= 4)
        putc("0123456789abcdef"[(v >> s) & 0xf]);
}

static uint8_t composite[10000];

static uint32_t count_primes(void)
{
    uint32_t n = 0;
    for (uint32_t i = 2; i < sizeof composite; i++) {
        if (composite[i])
            continue;
        n++;
        for (uint32_t j = i * i; j < sizeof composite; j += i)
            composite[j] = 1;
    }
    return n;
}

static uint32_t crc32(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xffffffffu;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
    }
    return ~crc;
}

int guest_main(uint32_t magic, const struct mb_info *info)
{
    if (magic != 0x2badb002u) {
        puts("bad multiboot magic\n");
        return 2;
    }
    puts("primes below 10000: ");
    putdec(count_primes());
    puts("\ncrc32: ");
    puthex(crc32((const uint8_t *)"123456789", 9));
    puts("\n");
    if (info->flags & (1u << 2)) {
        puts("cmdline: ");
        puts((const char *)(uintptr_t)info->cmdline);
        puts("\n");
    }
    if (info->flags & 1u) {
        puts("mem_upper: ");
        putdec(info->mem_upper);
        puts(" KiB\n");
    }
    if ((info->flags & (1u << 3)) && info->mods_count) {
        const struct mb_module *mod = (const struct mb_module *)(uintptr_t)info->mods_addr;
        puts("module: ");
        putdec(mod->end - mod->start);
        puts(" bytes, first byte ");
        putc(*(const char *)(uintptr_t)mod->start);
        puts("\n");
    }
    return 0;
}
