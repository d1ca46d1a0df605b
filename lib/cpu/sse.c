/* SSE/SSE2: the subset compiled x86-64 code uses (moves, logic, integer and floating-point
 * arithmetic, compares, shuffles, conversions), FXSAVE/FXRSTOR, LDMXCSR/STMXCSR, fences.
 * SSE3: ADDSUBPS/PD, HADDPS/PD, HSUBPS/PD, MOVDDUP, MOVSLDUP, MOVSHDUP, LDDQU (FISTTP is
 * x87.c's; MONITOR/MWAIT are not implemented and not reported).
 * SSSE3 (0F 38, 0F 3A 0F; the 66-prefixed XMM forms): PSHUFB, PHADDW/D/SW, PHSUBW/D/SW,
 * PMADDUBSW, PMULHRSW, PSIGNB/W/D, PABSB/W/D, PALIGNR.
 * SSE4.1 (0F 38, 0F 3A): PMOVSX/ZX*, PMIN/PMAXSB/SD/UW/UD, PMULLD, PMULDQ, PCMPEQQ,
 * PACKUSDW, PTEST, PBLENDW, PBLENDVB/BLENDVPS/BLENDVPD (mask in XMM0), BLENDPS/PD,
 * PEXTRB/W/D/Q, EXTRACTPS, PINSRB/D/Q, INSERTPS, PHMINPOSUW, ROUNDSS/SD/PS/PD (the
 * immediate's rounding mode, or MXCSR.RC when its bit 2 is set), DPPS/DPPD, MPSADBW,
 * MOVNTDQA. Not SSE4.2 (PCMPGTQ, CRC32, the string compares): those opcodes are #UD.
 * MMX forms (no 66 prefix on integer ops) raise #UD: CPUID does not report MMX.
 * Floating point uses the host's SSE through C (same IEEE results; MXCSR exception flags
 * are not accumulated, and rounding control other than round-to-nearest is ignored but by
 * ROUNDxx). */

#include "x86.h"
#include "x87.h"

typedef union {
    uint8_t b[16];
    int8_t sb[16];
    uint16_t w[8];
    int16_t sw[8];
    uint32_t d[4];
    int32_t sd[4];
    uint64_t q[2];
    int64_t sq[2];
    float f[4];
    double fd[2];
} xmm_t;

#define XR(n) ((xmm_t *)&c->xmm[(n)])

static void sse_check(struct cpu *c)
{
    if (!(c->cr4 & CR4_OSFXSR) || (c->cr0 & CR0_EM))
        cpu_ud(c);
    if (c->cr0 & CR0_TS)
        cpu_raise(c, EX_NM, 0, 0);
}

/* Source operand: xmm register or @n bytes of memory (zero-extended); @align16 faults on
 * misaligned 16-byte accesses as the aligned forms do. */
static xmm_t src_rm(struct cpu *c, const struct insn *i, unsigned n, bool align16)
{
    xmm_t v;
    if (i->mod == 3)
        return *XR(i->rm);
    memset(&v, 0, sizeof v);
    uint64_t a = ea(c, i);
    if (align16 && (a & 15))
        cpu_gp0(c);
    if (n == 16) {
        v.q[0] = mem_read(c, a, 8);
        v.q[1] = mem_read(c, a + 8, 8);
    } else {
        v.q[0] = mem_read(c, a, n);
    }
    return v;
}

static void store_rm(struct cpu *c, const struct insn *i, const xmm_t *v, unsigned n, bool align16)
{
    if (i->mod == 3) {
        if (n == 16)
            *XR(i->rm) = *v;
        else
            memcpy(XR(i->rm), v, n);
        return;
    }
    uint64_t a = ea(c, i);
    if (align16 && (a & 15))
        cpu_gp0(c);
    if (n == 16) {
        /* check both halves before writing either */
        (void)mem_read(c, a + 8, 8);
        mem_write(c, a, 8, v->q[0]);
        mem_write(c, a + 8, 8, v->q[1]);
    } else {
        mem_write(c, a, n, v->q[0]);
    }
}

/* No libm: square roots use the host instruction on x86-64 (the CPU this emulator's
 * results are tested against), and rounding is done by hand. */
static double fsqrt(double x)
{
#if defined(__x86_64__)
    double r;
    __asm__("sqrtsd %1, %0" : "=x"(r) : "x"(x));
    return r;
#else
    return __builtin_sqrt(x);
#endif
}

static float fsqrtf(float x)
{
#if defined(__x86_64__)
    float r;
    __asm__("sqrtss %1, %0" : "=x"(r) : "x"(x));
    return r;
#else
    return __builtin_sqrtf(x);
#endif
}

#define isnan(x) ((x) != (x))

/* Round to nearest, ties to even (MXCSR's default), for |x| < 2^52; larger values are
 * already integers. */
static double round_even(double x)
{
    const double big = 4503599627370496.0;     /* 2^52 */
    if (!(x < big && x > -big))
        return x;
    return x >= 0 ? (x + big) - big : (x - big) + big;
}

static int64_t cvt_int(double x, unsigned sz, bool trunc)
{
    double r = trunc ? x : round_even(x);
    if (sz == 4) {
        if (!(r > -2147483649.0 && r < 2147483648.0))
            return INT32_MIN;
        return (int32_t)r;
    }
    if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0))
        return INT64_MIN;
    return (int64_t)r;
}

static inline uint8_t sat_u8(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }
static inline int8_t sat_s8(int v) { return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v); }
static inline uint16_t sat_u16(int v) { return (uint16_t)(v < 0 ? 0 : v > 65535 ? 65535 : v); }
static inline int16_t sat_s16(int v) { return (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v); }

static float fop(unsigned op, float a, float b)
{
    switch (op) {
    case 0x58: return a + b;
    case 0x59: return a * b;
    case 0x5c: return a - b;
    case 0x5d: return a < b ? a : b;    /* MINPS: returns the second operand if unordered */
    case 0x5e: return a / b;
    default: return a > b ? a : b;
    }
}

static double dop(unsigned op, double a, double b)
{
    switch (op) {
    case 0x58: return a + b;
    case 0x59: return a * b;
    case 0x5c: return a - b;
    case 0x5d: return a < b ? a : b;
    case 0x5e: return a / b;
    default: return a > b ? a : b;
    }
}

/* Arithmetic with the SSE NaN rules spelled out, not left to the C compiler's choice of
 * operand order: the first NaN operand (quieted) wins; otherwise the host's result (whose
 * invalid operations give the same default NaN). */
static inline float qnanf(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    u |= 0x00400000u;
    memcpy(&x, &u, 4);
    return x;
}

static inline double qnan(double x)
{
    uint64_t u;
    memcpy(&u, &x, 8);
    u |= 1ULL << 51;
    memcpy(&x, &u, 8);
    return x;
}

static float fadd(float a, float b) { return isnan(a) ? qnanf(a) : isnan(b) ? qnanf(b) : a + b; }
static float fsub(float a, float b) { return isnan(a) ? qnanf(a) : isnan(b) ? qnanf(b) : a - b; }
static float fmul(float a, float b) { return isnan(a) ? qnanf(a) : isnan(b) ? qnanf(b) : a * b; }
static double dadd(double a, double b) { return isnan(a) ? qnan(a) : isnan(b) ? qnan(b) : a + b; }
static double dsub(double a, double b) { return isnan(a) ? qnan(a) : isnan(b) ? qnan(b) : a - b; }
static double dmul(double a, double b) { return isnan(a) ? qnan(a) : isnan(b) ? qnan(b) : a * b; }

static bool fcmp(unsigned pred, double a, double b)
{
    bool un = isnan(a) || isnan(b);
    switch (pred & 7) {
    case 0: return !un && a == b;
    case 1: return !un && a < b;
    case 2: return !un && a <= b;
    case 3: return un;
    case 4: return un || a != b;
    case 5: return un || !(a < b);
    case 6: return un || !(a <= b);
    default: return !un;
    }
}

static void comis(struct cpu *c, double a, double b)
{
    uint64_t f;
    if (isnan(a) || isnan(b))
        f = F_ZF | F_PF | F_CF;
    else if (a < b)
        f = F_CF;
    else if (a > b)
        f = 0;
    else
        f = F_ZF;
    flags_set_arith(c, F_ARITH, f);
}

/* Packed integer ops of the 0F D0..FE block and 60..76 (66 prefix). */
static void pint(unsigned op, xmm_t *d, const xmm_t *s)
{
    xmm_t r = *d;
    unsigned k;
    switch (op) {
    case 0x60: for (k = 0; k < 8; k++) { r.b[2 * k] = d->b[k]; r.b[2 * k + 1] = s->b[k]; } break;
    case 0x61: for (k = 0; k < 4; k++) { r.w[2 * k] = d->w[k]; r.w[2 * k + 1] = s->w[k]; } break;
    case 0x62: for (k = 0; k < 2; k++) { r.d[2 * k] = d->d[k]; r.d[2 * k + 1] = s->d[k]; } break;
    case 0x63: for (k = 0; k < 8; k++) { r.sb[k] = sat_s8(d->sw[k]); r.sb[k + 8] = sat_s8(s->sw[k]); } break;
    case 0x64: for (k = 0; k < 16; k++) r.b[k] = d->sb[k] > s->sb[k] ? 0xff : 0; break;
    case 0x65: for (k = 0; k < 8; k++) r.w[k] = d->sw[k] > s->sw[k] ? 0xffff : 0; break;
    case 0x66: for (k = 0; k < 4; k++) r.d[k] = d->sd[k] > s->sd[k] ? ~0u : 0; break;
    case 0x67: for (k = 0; k < 8; k++) { r.b[k] = sat_u8(d->sw[k]); r.b[k + 8] = sat_u8(s->sw[k]); } break;
    case 0x68: for (k = 0; k < 8; k++) { r.b[2 * k] = d->b[k + 8]; r.b[2 * k + 1] = s->b[k + 8]; } break;
    case 0x69: for (k = 0; k < 4; k++) { r.w[2 * k] = d->w[k + 4]; r.w[2 * k + 1] = s->w[k + 4]; } break;
    case 0x6a: for (k = 0; k < 2; k++) { r.d[2 * k] = d->d[k + 2]; r.d[2 * k + 1] = s->d[k + 2]; } break;
    case 0x6b: for (k = 0; k < 4; k++) { r.sw[k] = sat_s16(d->sd[k]); r.sw[k + 4] = sat_s16(s->sd[k]); } break;
    case 0x6c: r.q[1] = s->q[0]; break;
    case 0x6d: r.q[0] = d->q[1]; r.q[1] = s->q[1]; break;
    case 0x74: for (k = 0; k < 16; k++) r.b[k] = d->b[k] == s->b[k] ? 0xff : 0; break;
    case 0x75: for (k = 0; k < 8; k++) r.w[k] = d->w[k] == s->w[k] ? 0xffff : 0; break;
    case 0x76: for (k = 0; k < 4; k++) r.d[k] = d->d[k] == s->d[k] ? ~0u : 0; break;
    case 0xd1: for (k = 0; k < 8; k++) r.w[k] = s->q[0] > 15 ? 0 : (uint16_t)(d->w[k] >> s->q[0]); break;
    case 0xd2: for (k = 0; k < 4; k++) r.d[k] = s->q[0] > 31 ? 0 : d->d[k] >> s->q[0]; break;
    case 0xd3: for (k = 0; k < 2; k++) r.q[k] = s->q[0] > 63 ? 0 : d->q[k] >> s->q[0]; break;
    case 0xd4: for (k = 0; k < 2; k++) r.q[k] = d->q[k] + s->q[k]; break;
    case 0xd5: for (k = 0; k < 8; k++) r.w[k] = (uint16_t)(d->sw[k] * s->sw[k]); break;
    case 0xd8: for (k = 0; k < 16; k++) r.b[k] = sat_u8(d->b[k] - s->b[k]); break;
    case 0xd9: for (k = 0; k < 8; k++) r.w[k] = sat_u16(d->w[k] - s->w[k]); break;
    case 0xda: for (k = 0; k < 16; k++) r.b[k] = d->b[k] < s->b[k] ? d->b[k] : s->b[k]; break;
    case 0xdb: for (k = 0; k < 2; k++) r.q[k] = d->q[k] & s->q[k]; break;
    case 0xdc: for (k = 0; k < 16; k++) r.b[k] = sat_u8(d->b[k] + s->b[k]); break;
    case 0xdd: for (k = 0; k < 8; k++) r.w[k] = sat_u16(d->w[k] + s->w[k]); break;
    case 0xde: for (k = 0; k < 16; k++) r.b[k] = d->b[k] > s->b[k] ? d->b[k] : s->b[k]; break;
    case 0xdf: for (k = 0; k < 2; k++) r.q[k] = ~d->q[k] & s->q[k]; break;
    case 0xe0: for (k = 0; k < 16; k++) r.b[k] = (uint8_t)((d->b[k] + s->b[k] + 1) >> 1); break;
    case 0xe1: for (k = 0; k < 8; k++) r.sw[k] = (int16_t)(d->sw[k] >> (s->q[0] > 15 ? 15 : s->q[0])); break;
    case 0xe2: for (k = 0; k < 4; k++) r.sd[k] = d->sd[k] >> (s->q[0] > 31 ? 31 : s->q[0]); break;
    case 0xe3: for (k = 0; k < 8; k++) r.w[k] = (uint16_t)((d->w[k] + s->w[k] + 1) >> 1); break;
    case 0xe4: for (k = 0; k < 8; k++) r.w[k] = (uint16_t)(((uint32_t)d->w[k] * s->w[k]) >> 16); break;
    case 0xe5: for (k = 0; k < 8; k++) r.w[k] = (uint16_t)(((int32_t)d->sw[k] * s->sw[k]) >> 16); break;
    case 0xe8: for (k = 0; k < 16; k++) r.sb[k] = sat_s8(d->sb[k] - s->sb[k]); break;
    case 0xe9: for (k = 0; k < 8; k++) r.sw[k] = sat_s16(d->sw[k] - s->sw[k]); break;
    case 0xea: for (k = 0; k < 8; k++) r.sw[k] = d->sw[k] < s->sw[k] ? d->sw[k] : s->sw[k]; break;
    case 0xeb: for (k = 0; k < 2; k++) r.q[k] = d->q[k] | s->q[k]; break;
    case 0xec: for (k = 0; k < 16; k++) r.sb[k] = sat_s8(d->sb[k] + s->sb[k]); break;
    case 0xed: for (k = 0; k < 8; k++) r.sw[k] = sat_s16(d->sw[k] + s->sw[k]); break;
    case 0xee: for (k = 0; k < 8; k++) r.sw[k] = d->sw[k] > s->sw[k] ? d->sw[k] : s->sw[k]; break;
    case 0xef: for (k = 0; k < 2; k++) r.q[k] = d->q[k] ^ s->q[k]; break;
    case 0xf1: for (k = 0; k < 8; k++) r.w[k] = s->q[0] > 15 ? 0 : (uint16_t)(d->w[k] << s->q[0]); break;
    case 0xf2: for (k = 0; k < 4; k++) r.d[k] = s->q[0] > 31 ? 0 : d->d[k] << s->q[0]; break;
    case 0xf3: for (k = 0; k < 2; k++) r.q[k] = s->q[0] > 63 ? 0 : d->q[k] << s->q[0]; break;
    case 0xf4: for (k = 0; k < 2; k++) r.q[k] = (uint64_t)d->d[2 * k] * s->d[2 * k]; break;
    case 0xf5: for (k = 0; k < 4; k++) r.sd[k] = d->sw[2 * k] * s->sw[2 * k] + d->sw[2 * k + 1] * s->sw[2 * k + 1]; break;
    case 0xf6: for (k = 0; k < 2; k++) {
        unsigned sum = 0;
        for (unsigned j = 0; j < 8; j++) {
            int df = d->b[8 * k + j] - s->b[8 * k + j];
            sum += (unsigned)(df < 0 ? -df : df);
        }
        r.q[k] = sum;
    } break;
    case 0xf8: for (k = 0; k < 16; k++) r.b[k] = (uint8_t)(d->b[k] - s->b[k]); break;
    case 0xf9: for (k = 0; k < 8; k++) r.w[k] = (uint16_t)(d->w[k] - s->w[k]); break;
    case 0xfa: for (k = 0; k < 4; k++) r.d[k] = d->d[k] - s->d[k]; break;
    case 0xfb: for (k = 0; k < 2; k++) r.q[k] = d->q[k] - s->q[k]; break;
    case 0xfc: for (k = 0; k < 16; k++) r.b[k] = (uint8_t)(d->b[k] + s->b[k]); break;
    case 0xfd: for (k = 0; k < 8; k++) r.w[k] = (uint16_t)(d->w[k] + s->w[k]); break;
    case 0xfe: for (k = 0; k < 4; k++) r.d[k] = d->d[k] + s->d[k]; break;
    default: return;
    }
    *d = r;
}

static void shift_imm(struct cpu *c, const struct insn *i)
{
    xmm_t *d;
    unsigned n = (unsigned)(i->imm & 0xff), k, g = i->reg & 7;
    if (i->mod != 3 || !i->pfx66)
        cpu_ud(c);
    d = XR(i->rm);
    switch (i->op << 4 | g) {
    case 0x712: for (k = 0; k < 8; k++) d->w[k] = n > 15 ? 0 : (uint16_t)(d->w[k] >> n); break;
    case 0x714: for (k = 0; k < 8; k++) d->sw[k] = (int16_t)(d->sw[k] >> (n > 15 ? 15 : n)); break;
    case 0x716: for (k = 0; k < 8; k++) d->w[k] = n > 15 ? 0 : (uint16_t)(d->w[k] << n); break;
    case 0x722: for (k = 0; k < 4; k++) d->d[k] = n > 31 ? 0 : d->d[k] >> n; break;
    case 0x724: for (k = 0; k < 4; k++) d->sd[k] = d->sd[k] >> (n > 31 ? 31 : n); break;
    case 0x726: for (k = 0; k < 4; k++) d->d[k] = n > 31 ? 0 : d->d[k] << n; break;
    case 0x732: for (k = 0; k < 2; k++) d->q[k] = n > 63 ? 0 : d->q[k] >> n; break;
    case 0x736: for (k = 0; k < 2; k++) d->q[k] = n > 63 ? 0 : d->q[k] << n; break;
    case 0x733: { xmm_t r; memset(&r, 0, sizeof r); if (n < 16) memcpy(r.b, d->b + n, 16 - n); *d = r; break; }
    case 0x737: { xmm_t r; memset(&r, 0, sizeof r); if (n < 16) memcpy(r.b + n, d->b, 16 - n); *d = r; break; }
    default: cpu_ud(c);
    }
}

OP(op_sse)
{
    unsigned op = i->op, pf = i->pfx66 ? 0x66 : i->rep;   /* F3/F2 take precedence */
    xmm_t *d = XR(i->reg & 15), s;
    unsigned k;

    if (i->rep)
        pf = i->rep;
    sse_check(c);
    switch (op) {
    case 0x10: case 0x11: {
        unsigned n = pf == 0xf3 ? 4 : pf == 0xf2 ? 8 : 16;
        if (op == 0x10) {
            s = src_rm(c, i, n, false);
            if (n == 16 || i->mod != 3)
                *d = s;                         /* loads of scalars zero the rest */
            else
                memcpy(d, &s, n);
        } else {
            store_rm(c, i, d, n, false);
        }
        return;
    }
    case 0x12: case 0x13:                       /* MOVLPS/PD, MOVHLPS */
        if (op == 0x12 && pf == 0xf2) {         /* MOVDDUP (SSE3) */
            s = src_rm(c, i, 8, false);
            d->q[0] = d->q[1] = s.q[0];
            return;
        }
        if (op == 0x12 && pf == 0xf3) {         /* MOVSLDUP (SSE3) */
            s = src_rm(c, i, 16, true);
            d->d[0] = d->d[1] = s.d[0];
            d->d[2] = d->d[3] = s.d[2];
            return;
        }
        if (pf == 0xf3 || pf == 0xf2)
            cpu_ud(c);
        if (op == 0x13) {
            if (i->mod == 3)
                cpu_ud(c);
            mem_write(c, ea(c, i), 8, d->q[0]);
        } else {
            d->q[0] = i->mod == 3 ? XR(i->rm)->q[1] : mem_read(c, ea(c, i), 8);
        }
        return;
    case 0x16: case 0x17:                       /* MOVHPS/PD, MOVLHPS */
        if (op == 0x16 && pf == 0xf3) {         /* MOVSHDUP (SSE3) */
            s = src_rm(c, i, 16, true);
            d->d[0] = d->d[1] = s.d[1];
            d->d[2] = d->d[3] = s.d[3];
            return;
        }
        if (pf == 0xf3 || pf == 0xf2)
            cpu_ud(c);
        if (op == 0x17) {
            if (i->mod == 3)
                cpu_ud(c);
            mem_write(c, ea(c, i), 8, d->q[1]);
        } else {
            d->q[1] = i->mod == 3 ? XR(i->rm)->q[0] : mem_read(c, ea(c, i), 8);
        }
        return;
    case 0x14: case 0x15: {
        xmm_t r;
        s = src_rm(c, i, 16, true);
        if (pf == 0x66) {
            r.q[0] = op == 0x14 ? d->q[0] : d->q[1];
            r.q[1] = op == 0x14 ? s.q[0] : s.q[1];
        } else {
            unsigned h = op == 0x14 ? 0 : 2;
            r.d[0] = d->d[h]; r.d[1] = s.d[h]; r.d[2] = d->d[h + 1]; r.d[3] = s.d[h + 1];
        }
        *d = r;
        return;
    }
    case 0x28: s = src_rm(c, i, 16, true); *d = s; return;
    case 0x29: case 0x2b:
        if (op == 0x2b && i->mod == 3)
            cpu_ud(c);
        store_rm(c, i, d, 16, true);
        return;
    case 0x2a: {                                /* CVTSI2SS/SD (CVTPI2PS is MMX) */
        int64_t v = sext(rm_read(c, i, i->osz == 8 ? 8 : 4), i->osz == 8 ? 8 : 4);
        if (pf == 0xf3)
            d->f[0] = (float)v;
        else if (pf == 0xf2)
            d->fd[0] = (double)v;
        else
            cpu_ud(c);
        return;
    }
    case 0x2c: case 0x2d: {
        unsigned sz = i->osz == 8 ? 8 : 4;
        double x;
        if (pf == 0xf3)
            x = src_rm(c, i, 4, false).f[0];
        else if (pf == 0xf2)
            x = src_rm(c, i, 8, false).fd[0];
        else
            cpu_ud(c);
        reg_set(c, i->reg, sz, (uint64_t)cvt_int(x, sz, op == 0x2c));
        return;
    }
    case 0x2e: case 0x2f:
        if (pf == 0x66) {
            s = src_rm(c, i, 8, false);
            comis(c, d->fd[0], s.fd[0]);
        } else if (!pf) {
            s = src_rm(c, i, 4, false);
            comis(c, d->f[0], s.f[0]);
        } else {
            cpu_ud(c);
        }
        return;
    case 0x50: {
        uint64_t m = 0;
        if (i->mod != 3)
            cpu_ud(c);
        s = *XR(i->rm);
        if (pf == 0x66)
            m = (s.q[0] >> 63) | (s.q[1] >> 63) << 1;
        else
            for (k = 0; k < 4; k++)
                m |= (uint64_t)(s.d[k] >> 31) << k;
        reg_set(c, i->reg, 4, m);
        return;
    }
    case 0x51:
        switch (pf) {
        case 0: s = src_rm(c, i, 16, true); for (k = 0; k < 4; k++) d->f[k] = fsqrtf(s.f[k]); break;
        case 0x66: s = src_rm(c, i, 16, true); for (k = 0; k < 2; k++) d->fd[k] = fsqrt(s.fd[k]); break;
        case 0xf3: s = src_rm(c, i, 4, false); d->f[0] = fsqrtf(s.f[0]); break;
        default: s = src_rm(c, i, 8, false); d->fd[0] = fsqrt(s.fd[0]); break;
        }
        return;
    case 0x52: case 0x53:                       /* RSQRTPS/SS, RCPPS/SS: exact values, well
                                                 * inside the 1.5 * 2^-12 the ISA allows */
        if (pf == 0) {
            s = src_rm(c, i, 16, true);
            for (k = 0; k < 4; k++)
                d->f[k] = op == 0x52 ? 1.0f / fsqrtf(s.f[k]) : 1.0f / s.f[k];
        } else if (pf == 0xf3) {
            s = src_rm(c, i, 4, false);
            d->f[0] = op == 0x52 ? 1.0f / fsqrtf(s.f[0]) : 1.0f / s.f[0];
        } else {
            cpu_ud(c);
        }
        return;
    case 0xf7: {                                /* MASKMOVDQU: byte-masked store to [rDI] */
        uint64_t a;
        if (pf != 0x66 || i->mod != 3)
            cpu_ud(c);
        s = *XR(i->rm);
        a = seg_lin(c, i->seg, c->r[7] & amask(i->asz));
        for (k = 0; k < 16; k++)
            if (s.b[k] & 0x80)
                mem_write(c, a + k, 1, d->b[k]);
        return;
    }
    case 0x54: case 0x55: case 0x56: case 0x57:
        if (pf == 0xf3 || pf == 0xf2)
            cpu_ud(c);
        s = src_rm(c, i, 16, true);
        for (k = 0; k < 2; k++)
            d->q[k] = op == 0x54 ? d->q[k] & s.q[k] : op == 0x55 ? ~d->q[k] & s.q[k]
                    : op == 0x56 ? d->q[k] | s.q[k] : d->q[k] ^ s.q[k];
        return;
    case 0x58: case 0x59: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
        switch (pf) {
        case 0: s = src_rm(c, i, 16, true); for (k = 0; k < 4; k++) d->f[k] = fop(op, d->f[k], s.f[k]); break;
        case 0x66: s = src_rm(c, i, 16, true); for (k = 0; k < 2; k++) d->fd[k] = dop(op, d->fd[k], s.fd[k]); break;
        case 0xf3: s = src_rm(c, i, 4, false); d->f[0] = fop(op, d->f[0], s.f[0]); break;
        default: s = src_rm(c, i, 8, false); d->fd[0] = dop(op, d->fd[0], s.fd[0]); break;
        }
        return;
    case 0x5a:
        switch (pf) {
        case 0: s = src_rm(c, i, 8, false); d->fd[1] = s.f[1]; d->fd[0] = s.f[0]; break;
        case 0x66: s = src_rm(c, i, 16, true); d->f[0] = (float)s.fd[0]; d->f[1] = (float)s.fd[1]; d->q[1] = 0; break;
        case 0xf3: s = src_rm(c, i, 4, false); d->fd[0] = s.f[0]; break;
        default: s = src_rm(c, i, 8, false); d->f[0] = (float)s.fd[0]; break;
        }
        return;
    case 0x5b:
        s = src_rm(c, i, 16, true);
        if (pf == 0)
            for (k = 0; k < 4; k++) d->f[k] = (float)s.sd[k];
        else if (pf == 0x66 || pf == 0xf3)
            for (k = 0; k < 4; k++) d->sd[k] = (int32_t)cvt_int(s.f[k], 4, pf == 0xf3);
        else
            cpu_ud(c);
        return;
    case 0x6e:
        if (pf != 0x66)
            cpu_ud(c);
        memset(d, 0, sizeof *d);
        d->q[0] = rm_read(c, i, i->osz == 8 ? 8 : 4);
        return;
    case 0x6f:
        if (pf == 0x66 || pf == 0xf3) {
            s = src_rm(c, i, 16, pf == 0x66);
            *d = s;
            return;
        }
        cpu_ud(c);
    case 0x70: {
        xmm_t r;
        unsigned im = (unsigned)(i->imm & 0xff);
        s = src_rm(c, i, 16, pf == 0x66);
        r = s;
        if (pf == 0x66)
            for (k = 0; k < 4; k++) r.d[k] = s.d[(im >> (2 * k)) & 3];
        else if (pf == 0xf3)
            for (k = 0; k < 4; k++) r.w[4 + k] = s.w[4 + ((im >> (2 * k)) & 3)];
        else if (pf == 0xf2)
            for (k = 0; k < 4; k++) r.w[k] = s.w[(im >> (2 * k)) & 3];
        else
            cpu_ud(c);
        *d = r;
        return;
    }
    case 0x71: case 0x72: case 0x73:
        shift_imm(c, i);
        return;
    case 0x7c: case 0x7d: {                     /* HADDPD/PS, HSUBPD/PS (SSE3) */
        xmm_t r;
        s = src_rm(c, i, 16, true);
        if (pf == 0x66) {
            r.fd[0] = op == 0x7c ? dadd(d->fd[0], d->fd[1]) : dsub(d->fd[0], d->fd[1]);
            r.fd[1] = op == 0x7c ? dadd(s.fd[0], s.fd[1]) : dsub(s.fd[0], s.fd[1]);
        } else if (pf == 0xf2) {
            for (k = 0; k < 2; k++) {
                r.f[k] = op == 0x7c ? fadd(d->f[2 * k], d->f[2 * k + 1])
                                    : fsub(d->f[2 * k], d->f[2 * k + 1]);
                r.f[k + 2] = op == 0x7c ? fadd(s.f[2 * k], s.f[2 * k + 1])
                                        : fsub(s.f[2 * k], s.f[2 * k + 1]);
            }
        } else {
            cpu_ud(c);
        }
        *d = r;
        return;
    }
    case 0xd0:                                  /* ADDSUBPD/PS (SSE3) */
        s = src_rm(c, i, 16, true);
        if (pf == 0x66) {
            d->fd[0] = dsub(d->fd[0], s.fd[0]);
            d->fd[1] = dadd(d->fd[1], s.fd[1]);
        } else if (pf == 0xf2) {
            for (k = 0; k < 4; k += 2) {
                d->f[k] = fsub(d->f[k], s.f[k]);
                d->f[k + 1] = fadd(d->f[k + 1], s.f[k + 1]);
            }
        } else {
            cpu_ud(c);
        }
        return;
    case 0xf0:                                  /* LDDQU (SSE3): an unaligned load */
        if (pf != 0xf2 || i->mod == 3)
            cpu_ud(c);
        *d = src_rm(c, i, 16, false);
        return;
    case 0x7e:
        if (pf == 0x66) {
            rm_write(c, i, i->osz == 8 ? 8 : 4, i->osz == 8 ? d->q[0] : d->d[0]);
        } else if (pf == 0xf3) {
            s = src_rm(c, i, 8, false);
            d->q[0] = s.q[0];
            d->q[1] = 0;
        } else {
            cpu_ud(c);
        }
        return;
    case 0x7f:
        if (pf != 0x66 && pf != 0xf3)
            cpu_ud(c);
        store_rm(c, i, d, 16, pf == 0x66);
        return;
    case 0xc2: {
        unsigned p = (unsigned)(i->imm & 7);
        switch (pf) {
        case 0: s = src_rm(c, i, 16, true); for (k = 0; k < 4; k++) d->d[k] = fcmp(p, d->f[k], s.f[k]) ? ~0u : 0; break;
        case 0x66: s = src_rm(c, i, 16, true); for (k = 0; k < 2; k++) d->q[k] = fcmp(p, d->fd[k], s.fd[k]) ? ~0ULL : 0; break;
        case 0xf3: s = src_rm(c, i, 4, false); d->d[0] = fcmp(p, d->f[0], s.f[0]) ? ~0u : 0; break;
        default: s = src_rm(c, i, 8, false); d->q[0] = fcmp(p, d->fd[0], s.fd[0]) ? ~0ULL : 0; break;
        }
        return;
    }
    case 0xc3:                                  /* MOVNTI: an integer store */
        if (i->mod == 3 || pf)
            cpu_ud(c);
        mem_write(c, ea(c, i), i->osz == 8 ? 8 : 4, reg_get(c, i->reg, i->osz == 8 ? 8 : 4));
        return;
    case 0xc4:
        if (pf != 0x66)
            cpu_ud(c);
        d->w[i->imm & 7] = (uint16_t)rm_read(c, i, 2);
        return;
    case 0xc5:
        if (pf != 0x66 || i->mod != 3)
            cpu_ud(c);
        reg_set(c, i->reg, 4, XR(i->rm)->w[i->imm & 7]);
        return;
    case 0xc6: {
        xmm_t r;
        unsigned im = (unsigned)(i->imm & 0xff);
        s = src_rm(c, i, 16, true);
        if (pf == 0x66) {
            r.q[0] = d->q[im & 1];
            r.q[1] = s.q[(im >> 1) & 1];
        } else if (!pf) {
            r.d[0] = d->d[im & 3]; r.d[1] = d->d[(im >> 2) & 3];
            r.d[2] = s.d[(im >> 4) & 3]; r.d[3] = s.d[(im >> 6) & 3];
        } else {
            cpu_ud(c);
        }
        *d = r;
        return;
    }
    case 0xd6:
        if (pf != 0x66)
            cpu_ud(c);
        if (i->mod == 3) {
            XR(i->rm)->q[0] = d->q[0];
            XR(i->rm)->q[1] = 0;
        } else {
            mem_write(c, ea(c, i), 8, d->q[0]);
        }
        return;
    case 0xd7: {
        uint64_t m = 0;
        if (pf != 0x66 || i->mod != 3)
            cpu_ud(c);
        s = *XR(i->rm);
        for (k = 0; k < 16; k++)
            m |= (uint64_t)(s.b[k] >> 7) << k;
        reg_set(c, i->reg, 4, m);
        return;
    }
    case 0xe6:
        s = src_rm(c, i, pf == 0xf3 ? 8 : 16, pf != 0xf3);
        if (pf == 0xf3) {
            d->fd[1] = s.sd[1];
            d->fd[0] = s.sd[0];
        } else if (pf == 0x66 || pf == 0xf2) {
            d->sd[0] = (int32_t)cvt_int(s.fd[0], 4, pf == 0x66);
            d->sd[1] = (int32_t)cvt_int(s.fd[1], 4, pf == 0x66);
            d->q[1] = 0;
        } else {
            cpu_ud(c);
        }
        return;
    case 0xe7:
        if (pf != 0x66 || i->mod == 3)
            cpu_ud(c);
        store_rm(c, i, d, 16, true);
        return;
    default:
        if (pf != 0x66)
            cpu_ud(c);                          /* MMX forms */
        s = src_rm(c, i, 16, true);
        pint(op, d, &s);
        return;
    }
}

/* FXSAVE/FXRSTOR: #UD with CR0.EM, #NM with CR0.TS; no #MF for pending x87 exceptions. */
static void fx_check(struct cpu *c, uint64_t a)
{
    if (c->cr0 & CR0_EM)
        cpu_ud(c);
    if (c->cr0 & CR0_TS)
        cpu_raise(c, EX_NM, 0, 0);
    if (a & 15)
        cpu_gp0(c);
}

static void fxsave(struct cpu *c, uint64_t a)
{
    unsigned n = c->code64 ? 16 : 8;
    uint8_t x87[160];
    fx_check(c, a);
    (void)mem_read(c, a + 511, 1);
    x87_fxsave_area(c, x87);
    mem_write_buf(c, a, x87, 24);
    mem_write(c, a + 24, 4, c->mxcsr);
    mem_write(c, a + 28, 4, 0xffff);
    mem_write_buf(c, a + 32, x87 + 32, 128);
    for (unsigned k = 0; k < n; k++) {
        mem_write(c, a + 160 + 16 * k, 8, c->xmm[k].q[0]);
        mem_write(c, a + 168 + 16 * k, 8, c->xmm[k].q[1]);
    }
}

static void fxrstor(struct cpu *c, uint64_t a)
{
    unsigned n = c->code64 ? 16 : 8;
    uint8_t x87[160];
    uint32_t mx;
    fx_check(c, a);
    mem_read_buf(c, a, x87, 160);
    mx = (uint32_t)mem_read(c, a + 24, 4);
    if (mx & ~0xffffu)
        cpu_gp0(c);
    (void)mem_read(c, a + 511, 1);
    x87_fxrstor_area(c, x87);
    c->mxcsr = mx;
    for (unsigned k = 0; k < n; k++) {
        c->xmm[k].q[0] = mem_read(c, a + 160 + 16 * k, 8);
        c->xmm[k].q[1] = mem_read(c, a + 168 + 16 * k, 8);
    }
}

OP(op_grp15)
{
    unsigned op = i->reg & 7;
    if (i->mod == 3) {
        if (op >= 5 && !i->rep)
            return;     /* LFENCE / MFENCE / SFENCE */
        cpu_ud(c);
    }
    switch (op) {
    case 0: fxsave(c, ea(c, i)); return;
    case 1: fxrstor(c, ea(c, i)); return;
    case 2:             /* LDMXCSR */
        sse_check(c);
        {
            uint32_t v = (uint32_t)mem_read(c, ea(c, i), 4);
            if (v & ~0xffffu)
                cpu_gp0(c);
            c->mxcsr = v;
        }
        return;
    case 3:             /* STMXCSR */
        sse_check(c);
        mem_write(c, ea(c, i), 4, c->mxcsr);
        return;
    case 7:             /* CLFLUSH */
        (void)mem_read(c, ea(c, i), 1);
        return;
    default:
        cpu_ud(c);
    }
}

/* ---- the three-byte maps, 66-prefixed XMM forms only (the MMX forms are #UD: CPUID does
 * not report MMX); decode.c lets through only the opcodes implemented here ---- */

static void check_66(struct cpu *c, const struct insn *i)
{
    if (!i->pfx66 || i->rep)
        cpu_ud(c);
    sse_check(c);
}

/* SSE4.1's PMOVSX/PMOVZX: the source's size (the low part of an xmm register, or that many
 * bytes of memory, unaligned) */
static unsigned pmov_size(unsigned op)
{
    switch (op & 0xf) {
    case 0: case 3: case 5: return 8;
    case 1: case 4: return 4;
    default: return 2;
    }
}

/* 0F 38: SSSE3 and SSE4.1 */
OP(op_sse38)
{
    xmm_t *d = XR(i->reg & 15), s, r;
    const xmm_t *x0 = XR(0);
    unsigned k, op = i->op;

    check_66(c, i);
    if ((op & 0xe8) == 0x20 && (op & 7) < 6) {          /* PMOVSX/ZX: 20-25, 30-35 */
        s = src_rm(c, i, pmov_size(op), false);
    } else {
        if (op == 0x2a && i->mod == 3)                  /* MOVNTDQA: memory only */
            cpu_ud(c);
        s = src_rm(c, i, 16, true);
    }
    r = *d;
    switch (op) {
    case 0x00:                                  /* PSHUFB */
        for (k = 0; k < 16; k++)
            r.b[k] = (s.b[k] & 0x80) ? 0 : d->b[s.b[k] & 15];
        break;
    case 0x01: case 0x03: case 0x05: case 0x07: /* PHADDW, PHADDSW, PHSUBW, PHSUBSW */
        for (k = 0; k < 8; k++) {
            const xmm_t *v = k < 4 ? d : &s;
            int a = v->sw[2 * (k & 3)], b = v->sw[2 * (k & 3) + 1];
            int x = op <= 0x03 ? a + b : a - b;
            r.sw[k] = (op & 2) ? sat_s16(x) : (int16_t)x;
        }
        break;
    case 0x02: case 0x06:                       /* PHADDD, PHSUBD */
        for (k = 0; k < 4; k++) {
            const xmm_t *v = k < 2 ? d : &s;
            uint32_t a = v->d[2 * (k & 1)], b = v->d[2 * (k & 1) + 1];
            r.d[k] = op == 0x02 ? a + b : a - b;
        }
        break;
    case 0x04:                                  /* PMADDUBSW: unsigned dest x signed source */
        for (k = 0; k < 8; k++)
            r.sw[k] = sat_s16(d->b[2 * k] * s.sb[2 * k] + d->b[2 * k + 1] * s.sb[2 * k + 1]);
        break;
    case 0x08:                                  /* PSIGNB */
        for (k = 0; k < 16; k++)
            r.b[k] = s.sb[k] < 0 ? (uint8_t)-d->b[k] : s.sb[k] ? d->b[k] : 0;
        break;
    case 0x09:                                  /* PSIGNW */
        for (k = 0; k < 8; k++)
            r.w[k] = s.sw[k] < 0 ? (uint16_t)-d->w[k] : s.sw[k] ? d->w[k] : 0;
        break;
    case 0x0a:                                  /* PSIGND */
        for (k = 0; k < 4; k++)
            r.d[k] = s.sd[k] < 0 ? -d->d[k] : s.sd[k] ? d->d[k] : 0;
        break;
    case 0x0b:                                  /* PMULHRSW */
        for (k = 0; k < 8; k++)
            r.w[k] = (uint16_t)((((int32_t)d->sw[k] * s.sw[k] >> 14) + 1) >> 1);
        break;
    case 0x1c:                                  /* PABSB */
        for (k = 0; k < 16; k++)
            r.b[k] = (uint8_t)(s.sb[k] < 0 ? -s.sb[k] : s.sb[k]);
        break;
    case 0x1d:                                  /* PABSW */
        for (k = 0; k < 8; k++)
            r.w[k] = (uint16_t)(s.sw[k] < 0 ? -s.sw[k] : s.sw[k]);
        break;
    case 0x1e:                                  /* PABSD */
        for (k = 0; k < 4; k++)
            r.d[k] = s.sd[k] < 0 ? 0u - s.d[k] : s.d[k];
        break;
    /* SSE4.1 */
    case 0x10:                                  /* PBLENDVB: XMM0's sign bits select */
        for (k = 0; k < 16; k++)
            if (x0->b[k] & 0x80)
                r.b[k] = s.b[k];
        break;
    case 0x14:                                  /* BLENDVPS */
        for (k = 0; k < 4; k++)
            if (x0->d[k] >> 31)
                r.d[k] = s.d[k];
        break;
    case 0x15:                                  /* BLENDVPD */
        for (k = 0; k < 2; k++)
            if (x0->q[k] >> 63)
                r.q[k] = s.q[k];
        break;
    case 0x17: {                                /* PTEST */
        uint64_t f = 0;
        if (!((d->q[0] & s.q[0]) | (d->q[1] & s.q[1])))
            f |= F_ZF;
        if (!((~d->q[0] & s.q[0]) | (~d->q[1] & s.q[1])))
            f |= F_CF;
        flags_set_arith(c, F_ARITH, f);
        return;
    }
    case 0x20: for (k = 0; k < 8; k++) r.sw[k] = s.sb[k]; break;     /* PMOVSXBW */
    case 0x21: for (k = 0; k < 4; k++) r.sd[k] = s.sb[k]; break;     /* PMOVSXBD */
    case 0x22: for (k = 0; k < 2; k++) r.sq[k] = s.sb[k]; break;     /* PMOVSXBQ */
    case 0x23: for (k = 0; k < 4; k++) r.sd[k] = s.sw[k]; break;     /* PMOVSXWD */
    case 0x24: for (k = 0; k < 2; k++) r.sq[k] = s.sw[k]; break;     /* PMOVSXWQ */
    case 0x25: for (k = 0; k < 2; k++) r.sq[k] = s.sd[k]; break;     /* PMOVSXDQ */
    case 0x30: for (k = 0; k < 8; k++) r.w[k] = s.b[k]; break;       /* PMOVZXBW */
    case 0x31: for (k = 0; k < 4; k++) r.d[k] = s.b[k]; break;       /* PMOVZXBD */
    case 0x32: for (k = 0; k < 2; k++) r.q[k] = s.b[k]; break;       /* PMOVZXBQ */
    case 0x33: for (k = 0; k < 4; k++) r.d[k] = s.w[k]; break;       /* PMOVZXWD */
    case 0x34: for (k = 0; k < 2; k++) r.q[k] = s.w[k]; break;       /* PMOVZXWQ */
    case 0x35: for (k = 0; k < 2; k++) r.q[k] = s.d[k]; break;       /* PMOVZXDQ */
    case 0x28:                                  /* PMULDQ */
        for (k = 0; k < 2; k++)
            r.sq[k] = (int64_t)d->sd[2 * k] * s.sd[2 * k];
        break;
    case 0x29:                                  /* PCMPEQQ */
        for (k = 0; k < 2; k++)
            r.q[k] = d->q[k] == s.q[k] ? ~0ULL : 0;
        break;
    case 0x2a:                                  /* MOVNTDQA: an aligned load */
        r = s;
        break;
    case 0x2b:                                  /* PACKUSDW */
        for (k = 0; k < 4; k++) {
            r.w[k] = d->sd[k] < 0 ? 0 : d->sd[k] > 65535 ? 65535 : (uint16_t)d->sd[k];
            r.w[k + 4] = s.sd[k] < 0 ? 0 : s.sd[k] > 65535 ? 65535 : (uint16_t)s.sd[k];
        }
        break;
    case 0x38: for (k = 0; k < 16; k++) r.sb[k] = d->sb[k] < s.sb[k] ? d->sb[k] : s.sb[k]; break;
    case 0x39: for (k = 0; k < 4; k++) r.sd[k] = d->sd[k] < s.sd[k] ? d->sd[k] : s.sd[k]; break;
    case 0x3a: for (k = 0; k < 8; k++) r.w[k] = d->w[k] < s.w[k] ? d->w[k] : s.w[k]; break;
    case 0x3b: for (k = 0; k < 4; k++) r.d[k] = d->d[k] < s.d[k] ? d->d[k] : s.d[k]; break;
    case 0x3c: for (k = 0; k < 16; k++) r.sb[k] = d->sb[k] > s.sb[k] ? d->sb[k] : s.sb[k]; break;
    case 0x3d: for (k = 0; k < 4; k++) r.sd[k] = d->sd[k] > s.sd[k] ? d->sd[k] : s.sd[k]; break;
    case 0x3e: for (k = 0; k < 8; k++) r.w[k] = d->w[k] > s.w[k] ? d->w[k] : s.w[k]; break;
    case 0x3f: for (k = 0; k < 4; k++) r.d[k] = d->d[k] > s.d[k] ? d->d[k] : s.d[k]; break;
    case 0x40:                                  /* PMULLD: the low halves */
        for (k = 0; k < 4; k++)
            r.d[k] = d->d[k] * s.d[k];
        break;
    case 0x41: {                                /* PHMINPOSUW: the first minimum, its index */
        unsigned m = 0;
        for (k = 1; k < 8; k++)
            if (s.w[k] < s.w[m])
                m = k;
        memset(&r, 0, sizeof r);
        r.w[0] = s.w[m];
        r.w[1] = (uint16_t)m;
        break;
    }
    default:
        cpu_ud(c);
    }
    *d = r;
}

/* ROUNDxx: @x rounded to an integer by @mode (0 nearest-even, 1 down, 2 up, 3 toward
 * zero); NaNs are quieted, infinities and values of 2^52 or more are integers already; a
 * zero result keeps the operand's sign. Floats go through here exactly (every float below
 * 2^24 is a double below 2^52, and the rounded value fits a float again). */
static double round_mode(double x, unsigned mode)
{
    const double big = 4503599627370496.0;     /* 2^52 */
    double t;
    uint64_t ub, ux;
    if (isnan(x))
        return qnan(x);
    if (!(x < big && x > -big))
        return x;
    if (mode == 0) {
        t = round_even(x);
    } else {
        t = (double)(int64_t)x;                 /* toward zero */
        if (mode == 1 && t > x)
            t -= 1;
        else if (mode == 2 && t < x)
            t += 1;
    }
    memcpy(&ub, &t, 8);
    memcpy(&ux, &x, 8);
    ub = (ub & ~(1ULL << 63)) | (ux & (1ULL << 63));
    memcpy(&t, &ub, 8);
    return t;
}

static float round_mode_f(float x, unsigned mode)
{
    return isnan(x) ? qnanf(x) : (float)round_mode(x, mode);
}

/* 0F 3A: SSSE3's PALIGNR and SSE4.1 */
OP(op_sse3a)
{
    xmm_t *d = XR(i->reg & 15), s, r;
    unsigned k, im = (unsigned)(i->imm & 0xff);
    unsigned mode = (im & 4) ? (c->mxcsr >> 13) & 3 : im & 3;
    bool q = i->osz == 8;                       /* REX.W: PEXTRQ, PINSRQ */

    check_66(c, i);
    switch (i->op) {
    case 0x08:                                  /* ROUNDPS */
        s = src_rm(c, i, 16, true);
        for (k = 0; k < 4; k++)
            d->f[k] = round_mode_f(s.f[k], mode);
        return;
    case 0x09:                                  /* ROUNDPD */
        s = src_rm(c, i, 16, true);
        for (k = 0; k < 2; k++)
            d->fd[k] = round_mode(s.fd[k], mode);
        return;
    case 0x0a:                                  /* ROUNDSS: the rest of dest is kept */
        s = src_rm(c, i, 4, false);
        d->f[0] = round_mode_f(s.f[0], mode);
        return;
    case 0x0b:                                  /* ROUNDSD */
        s = src_rm(c, i, 8, false);
        d->fd[0] = round_mode(s.fd[0], mode);
        return;
    case 0x0c:                                  /* BLENDPS */
        s = src_rm(c, i, 16, true);
        for (k = 0; k < 4; k++)
            if (im >> k & 1)
                d->d[k] = s.d[k];
        return;
    case 0x0d:                                  /* BLENDPD */
        s = src_rm(c, i, 16, true);
        for (k = 0; k < 2; k++)
            if (im >> k & 1)
                d->q[k] = s.q[k];
        return;
    case 0x0e:                                  /* PBLENDW */
        s = src_rm(c, i, 16, true);
        for (k = 0; k < 8; k++)
            if (im >> k & 1)
                d->w[k] = s.w[k];
        return;
    /* PEXTRx/EXTRACTPS r/m, xmm (ModRM.reg), imm: a register destination is zero-extended
     * to 64 bits */
    case 0x14:                                  /* PEXTRB */
        if (i->mod == 3)
            reg_set(c, i->rm, 8, d->b[im & 15]);
        else
            mem_write(c, ea(c, i), 1, d->b[im & 15]);
        return;
    case 0x15:                                  /* PEXTRW */
        if (i->mod == 3)
            reg_set(c, i->rm, 8, d->w[im & 7]);
        else
            mem_write(c, ea(c, i), 2, d->w[im & 7]);
        return;
    case 0x16:                                  /* PEXTRD, PEXTRQ */
        if (i->mod == 3)
            reg_set(c, i->rm, 8, q ? d->q[im & 1] : d->d[im & 3]);
        else
            mem_write(c, ea(c, i), q ? 8 : 4, q ? d->q[im & 1] : d->d[im & 3]);
        return;
    case 0x17:                                  /* EXTRACTPS */
        if (i->mod == 3)
            reg_set(c, i->rm, 8, d->d[im & 3]);
        else
            mem_write(c, ea(c, i), 4, d->d[im & 3]);
        return;
    case 0x20:                                  /* PINSRB xmm, r32/m8 */
        d->b[im & 15] = (uint8_t)(i->mod == 3 ? c->r[i->rm] : mem_read(c, ea(c, i), 1));
        return;
    case 0x21: {                                /* INSERTPS */
        uint32_t v;
        if (i->mod == 3)
            v = XR(i->rm)->d[im >> 6];
        else
            v = (uint32_t)mem_read(c, ea(c, i), 4);
        d->d[(im >> 4) & 3] = v;
        for (k = 0; k < 4; k++)
            if (im >> k & 1)
                d->d[k] = 0;
        return;
    }
    case 0x22:                                  /* PINSRD, PINSRQ */
        if (q)
            d->q[im & 1] = i->mod == 3 ? c->r[i->rm] : mem_read(c, ea(c, i), 8);
        else
            d->d[im & 3] = (uint32_t)(i->mod == 3 ? c->r[i->rm] : mem_read(c, ea(c, i), 4));
        return;
    case 0x40: {                                /* DPPS: ((p0 + p1) + (p2 + p3)) */
        float p[4];
        s = src_rm(c, i, 16, true);
        for (k = 0; k < 4; k++)
            p[k] = (im >> (4 + k) & 1) ? fmul(d->f[k], s.f[k]) : 0.0f;
        float sum = fadd(fadd(p[0], p[1]), fadd(p[2], p[3]));
        for (k = 0; k < 4; k++)
            d->f[k] = (im >> k & 1) ? sum : 0.0f;
        return;
    }
    case 0x41: {                                /* DPPD */
        double p[2];
        s = src_rm(c, i, 16, true);
        for (k = 0; k < 2; k++)
            p[k] = (im >> (4 + k) & 1) ? dmul(d->fd[k], s.fd[k]) : 0.0;
        double sum = dadd(p[0], p[1]);
        for (k = 0; k < 2; k++)
            d->fd[k] = (im >> k & 1) ? sum : 0.0;
        return;
    }
    case 0x42: {                                /* MPSADBW */
        unsigned o1 = (im >> 2 & 1) * 4, o2 = (im & 3) * 4;
        s = src_rm(c, i, 16, true);
        for (k = 0; k < 8; k++) {
            unsigned sum = 0;
            for (unsigned j = 0; j < 4; j++) {
                int df = d->b[o1 + k + j] - s.b[o2 + j];
                sum += (unsigned)(df < 0 ? -df : df);
            }
            r.w[k] = (uint16_t)sum;
        }
        *d = r;
        return;
    }
    case 0x0f:                                  /* PALIGNR: (dest:src) >> 8 * imm */
        s = src_rm(c, i, 16, true);
        for (k = 0; k < 16; k++) {
            unsigned x = im + k;
            r.b[k] = x < 16 ? s.b[x] : x < 32 ? d->b[x - 16] : 0;
        }
        *d = r;
        return;
    default:
        cpu_ud(c);
    }
}
