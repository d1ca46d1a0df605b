#include "work.h"

#define BUF 4096

static uint8_t buf[BUF];
static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32(const uint8_t *p, uint32_t n, uint32_t crc)
{
    crc = ~crc;
    for (uint32_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* Insertion sort of a short window: branchy, load/store heavy. */
static void sort_window(uint8_t *p, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        uint8_t v = p[i];
        uint32_t j = i;
        while (j > 0 && p[j - 1] > v) {
            p[j] = p[j - 1];
            j--;
        }
        p[j] = v;
    }
}

uint32_t bench_work(uint32_t rounds)
{
    uint32_t x = 0x12345678u, sum = 0;
    crc_init();
    for (uint32_t r = 0; r < rounds; r++) {
        for (uint32_t i = 0; i < BUF; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            buf[i] = (uint8_t)(x * 2654435761u >> 24);
        }
        for (uint32_t w = 0; w < BUF; w += 64)
            sort_window(buf + w, 32);
        sum = crc32(buf, BUF, sum) + r;
    }
    return sum;
}
