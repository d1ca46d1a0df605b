/* The rotate-heavy compute workload (ARX: add, rotate, xor), written for this bench:
 * ChaCha20's block function as a keystream, HalfSipHash-2-4's round function over the
 * buffer, Speck64-style rounds (ROR and ROL by constants), RC5-32 rounds (rotates by a
 * data-dependent count, ROL r32, CL) and a little 8-bit rotate mixing (gcc -march=i686
 * turns the 16-bit rotates there into shifts: no ROL r16 in this binary).
 * It defines the same bench_work() as work.c, so compute.c and compute_host.c link with
 * either; one round is about 0.2 M instructions, like work.c's. Not a crypto library:
 * only the shape of the instruction mix matters, the checksum just has to match. */
#include "work.h"

#define WORDS 2048                      /* 8 KiB of state */
#define KS 256                          /* words of ChaCha20 keystream per round */

static uint32_t buf[WORDS];
static uint32_t rc5_s[26];

static inline uint32_t rol32(uint32_t v, unsigned n) { return (v << (n & 31)) | (v >> (-n & 31)); }
static inline uint32_t ror32(uint32_t v, unsigned n) { return (v >> (n & 31)) | (v << (-n & 31)); }
static inline uint16_t rol16(uint16_t v, unsigned n)
{
    return (uint16_t)((v << (n & 15)) | (v >> (-n & 15)));
}
static inline uint8_t rol8(uint8_t v, unsigned n) { return (uint8_t)((v << (n & 7)) | (v >> (-n & 7))); }

#define QR(a, b, c, d)                                  \
    do {                                                \
        a += b; d ^= a; d = rol32(d, 16);               \
        c += d; b ^= c; b = rol32(b, 12);               \
        a += b; d ^= a; d = rol32(d, 8);                \
        c += d; b ^= c; b = rol32(b, 7);                \
    } while (0)

static void chacha_block(uint32_t *out, const uint32_t *in)
{
    uint32_t x[16];
    for (int i = 0; i < 16; i++)
        x[i] = in[i];
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++)
        out[i] = x[i] + in[i];
}

#define SIPROUND()                                                          \
    do {                                                                    \
        v0 += v1; v1 = rol32(v1, 5); v1 ^= v0; v0 = rol32(v0, 16);          \
        v2 += v3; v3 = rol32(v3, 8); v3 ^= v2;                              \
        v0 += v3; v3 = rol32(v3, 7); v3 ^= v0;                              \
        v2 += v1; v1 = rol32(v1, 13); v1 ^= v2; v2 = rol32(v2, 16);         \
    } while (0)

static uint32_t halfsip(const uint32_t *p, unsigned n, uint32_t k0, uint32_t k1)
{
    uint32_t v0 = k0, v1 = k1, v2 = 0x6c796765u ^ k0, v3 = 0x74656462u ^ k1;
    for (unsigned i = 0; i < n; i++) {
        v3 ^= p[i];
        SIPROUND();
        SIPROUND();
        v0 ^= p[i];
    }
    v2 ^= 0xff;
    SIPROUND();
    SIPROUND();
    SIPROUND();
    SIPROUND();
    return v1 ^ v3;
}

/* Speck64-style: 27 rounds over each pair of words, round keys from a counter. */
static void speck_pass(uint32_t *p, unsigned n, uint32_t k)
{
    for (unsigned i = 0; i + 1 < n; i += 2) {
        uint32_t x = p[i], y = p[i + 1], rk = k;
        for (int r = 0; r < 27; r++) {
            x = (ror32(x, 8) + y) ^ rk;
            y = rol32(y, 3) ^ x;
            rk = ror32(rk, 8) + (uint32_t)r;
        }
        p[i] = x;
        p[i + 1] = y;
    }
}

static void rc5_setup(uint32_t seed)
{
    uint32_t l[4] = { seed, seed ^ 0x01234567u, ~seed, seed * 2654435761u };
    uint32_t a = 0, b = 0;
    rc5_s[0] = 0xb7e15163u;
    for (int i = 1; i < 26; i++)
        rc5_s[i] = rc5_s[i - 1] + 0x9e3779b9u;
    for (int k = 0, i = 0, j = 0; k < 78; k++) {
        a = rc5_s[i] = rol32(rc5_s[i] + a + b, 3);
        b = l[j] = rol32(l[j] + a + b, a + b);
        i = (i + 1) % 26;
        j = (j + 1) % 4;
    }
}

/* RC5-32/12 encryption of every other pair: rotates by CL. */
static void rc5_pass(uint32_t *p, unsigned n)
{
    for (unsigned i = 0; i + 1 < n; i += 4) {
        uint32_t a = p[i] + rc5_s[0], b = p[i + 1] + rc5_s[1];
        for (int r = 1; r <= 12; r++) {
            a = rol32(a ^ b, b) + rc5_s[2 * r];
            b = rol32(b ^ a, a) + rc5_s[2 * r + 1];
        }
        p[i] = a;
        p[i + 1] = b;
    }
}

/* 8-bit (and, in the source, 16-bit) rotates: fold the buffer's halves and bytes. */
static uint32_t small_mix(const uint32_t *p, unsigned n, uint32_t h)
{
    uint16_t w = (uint16_t)h;
    uint8_t c = (uint8_t)(h >> 16);
    for (unsigned i = 0; i < n; i += 8) {
        w = (uint16_t)(rol16((uint16_t)(w ^ p[i]), 5) + (uint16_t)(p[i] >> 16));
        w = rol16(w, 8);
        c = (uint8_t)(rol8((uint8_t)(c ^ p[i]), 3) + (uint8_t)(p[i] >> 8));
    }
    return (uint32_t)w << 16 ^ c ^ h;
}

uint32_t bench_work(uint32_t rounds)
{
    uint32_t in[16], sum = 0;
    for (int i = 0; i < 16; i++)
        in[i] = 0x61707865u * (uint32_t)(i + 1) ^ 0x3320646eu;
    rc5_setup(0x5eed1234u);
    for (uint32_t r = 0; r < rounds; r++) {
        in[12] = r;
        for (unsigned blk = 0; blk < KS / 16; blk++) {
            in[13] = blk;
            chacha_block(buf + 16 * blk, in);
        }
        for (unsigned w = KS; w < WORDS; w++)
            buf[w] ^= buf[w - KS] + w;
        speck_pass(buf, KS, r);
        rc5_pass(buf + KS, WORDS - KS);
        uint32_t h = halfsip(buf, WORDS, sum, r);
        sum = small_mix(buf, WORDS, h) + rol32(sum, 9);
    }
    return sum;
}
