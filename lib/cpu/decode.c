/* Instruction decoder: prefixes, opcode maps, ModRM/SIB, immediates -> struct insn.
 * Table-driven: each opcode names its handler and how its operands are encoded. */
#include "x86.h"
#include "x87.h"

enum { M = 1, B = 2, D64 = 4, NO64 = 8, END = 16, F64 = 32 };
enum { I_NONE, I_B, I_Z, I_V, I_W, I_ENTER, I_FAR, I_MOFFS };

struct opent {
    op_fn fn;
    uint8_t f;
    uint8_t imm;
    uint8_t op;
};

#define ALU(o) \
    [o * 8 + 0] = { op_alu_rm_r, M | B, I_NONE, o }, \
    [o * 8 + 1] = { op_alu_rm_r, M, I_NONE, o }, \
    [o * 8 + 2] = { op_alu_r_rm, M | B, I_NONE, o }, \
    [o * 8 + 3] = { op_alu_r_rm, M, I_NONE, o }, \
    [o * 8 + 4] = { op_alu_a_imm, B, I_B, o }, \
    [o * 8 + 5] = { op_alu_a_imm, 0, I_Z, o }
#define X8(b, ...) [b] = __VA_ARGS__, [b + 1] = __VA_ARGS__, [b + 2] = __VA_ARGS__, \
    [b + 3] = __VA_ARGS__, [b + 4] = __VA_ARGS__, [b + 5] = __VA_ARGS__, \
    [b + 6] = __VA_ARGS__, [b + 7] = __VA_ARGS__

static const struct opent map1[256] = {
    ALU(0), ALU(1), ALU(2), ALU(3), ALU(4), ALU(5), ALU(6), ALU(7),
    [0x06] = { op_push_seg, NO64, I_NONE, CPU_ES },
    [0x07] = { op_pop_seg, NO64 | END, I_NONE, CPU_ES },
    [0x0e] = { op_push_seg, NO64, I_NONE, CPU_CS },
    [0x16] = { op_push_seg, NO64, I_NONE, CPU_SS },
    [0x17] = { op_pop_seg, NO64 | END, I_NONE, CPU_SS },
    [0x1e] = { op_push_seg, NO64, I_NONE, CPU_DS },
    [0x1f] = { op_pop_seg, NO64 | END, I_NONE, CPU_DS },
    [0x27] = { op_daa, NO64, I_NONE, 0 },
    [0x2f] = { op_das, NO64, I_NONE, 0 },
    [0x37] = { op_aaa, NO64, I_NONE, 0 },
    [0x3f] = { op_aas, NO64, I_NONE, 0 },
    X8(0x40, { op_incdec_r, 0, I_NONE, 0 }),
    X8(0x48, { op_incdec_r, 0, I_NONE, 1 }),
    X8(0x50, { op_push_r, D64, I_NONE, 0 }),
    X8(0x58, { op_pop_r, D64, I_NONE, 0 }),
    [0x60] = { op_pusha, NO64, I_NONE, 0 },
    [0x61] = { op_popa, NO64, I_NONE, 0 },
    [0x63] = { op_movsxd, M, I_NONE, 0 },
    [0x68] = { op_push_imm, D64, I_Z, 0 },
    [0x69] = { op_imul_r_rm_imm, M, I_Z, 0 },
    [0x6a] = { op_push_imm, D64, I_B, 0 },
    [0x6b] = { op_imul_r_rm_imm, M, I_B, 0 },
    [0x6c] = { op_ins, B, I_NONE, 0 },
    [0x6d] = { op_ins, 0, I_NONE, 0 },
    [0x6e] = { op_outs, B, I_NONE, 0 },
    [0x6f] = { op_outs, 0, I_NONE, 0 },
    [0x70] = { op_jcc, F64 | END, I_B, 0 }, [0x71] = { op_jcc, F64 | END, I_B, 1 },
    [0x72] = { op_jcc, F64 | END, I_B, 2 }, [0x73] = { op_jcc, F64 | END, I_B, 3 },
    [0x74] = { op_jcc, F64 | END, I_B, 4 }, [0x75] = { op_jcc, F64 | END, I_B, 5 },
    [0x76] = { op_jcc, F64 | END, I_B, 6 }, [0x77] = { op_jcc, F64 | END, I_B, 7 },
    [0x78] = { op_jcc, F64 | END, I_B, 8 }, [0x79] = { op_jcc, F64 | END, I_B, 9 },
    [0x7a] = { op_jcc, F64 | END, I_B, 10 }, [0x7b] = { op_jcc, F64 | END, I_B, 11 },
    [0x7c] = { op_jcc, F64 | END, I_B, 12 }, [0x7d] = { op_jcc, F64 | END, I_B, 13 },
    [0x7e] = { op_jcc, F64 | END, I_B, 14 }, [0x7f] = { op_jcc, F64 | END, I_B, 15 },
    [0x80] = { op_alu_rm_imm, M | B, I_B, 0 },
    [0x81] = { op_alu_rm_imm, M, I_Z, 0 },
    [0x82] = { op_alu_rm_imm, M | B | NO64, I_B, 0 },
    [0x83] = { op_alu_rm_imm, M, I_B, 0 },
    [0x84] = { op_test_rm_r, M | B, I_NONE, 0 },
    [0x85] = { op_test_rm_r, M, I_NONE, 0 },
    [0x86] = { op_xchg_rm_r, M | B, I_NONE, 0 },
    [0x87] = { op_xchg_rm_r, M, I_NONE, 0 },
    [0x88] = { op_mov_rm_r, M | B, I_NONE, 0 },
    [0x89] = { op_mov_rm_r, M, I_NONE, 0 },
    [0x8a] = { op_mov_r_rm, M | B, I_NONE, 0 },
    [0x8b] = { op_mov_r_rm, M, I_NONE, 0 },
    [0x8c] = { op_mov_rm_seg, M, I_NONE, 0 },
    [0x8d] = { op_lea, M, I_NONE, 0 },
    [0x8e] = { op_mov_seg_rm, M | END, I_NONE, 0 },
    [0x8f] = { op_pop_rm, M | D64, I_NONE, 0 },
    X8(0x90, { op_xchg_a_r, 0, I_NONE, 0 }),
    [0x98] = { op_cbw, 0, I_NONE, 0 },
    [0x99] = { op_cwd, 0, I_NONE, 0 },
    [0x9a] = { op_call_far, NO64 | END, I_FAR, 0 },
    [0x9b] = { op_fwait, 0, I_NONE, 0 },
    [0x9c] = { op_pushf, D64, I_NONE, 0 },
    [0x9d] = { op_popf, D64 | END, I_NONE, 0 },
    [0x9e] = { op_sahf, 0, I_NONE, 0 },
    [0x9f] = { op_lahf, 0, I_NONE, 0 },
    [0xa0] = { op_mov_a_moffs, B, I_MOFFS, 0 },
    [0xa1] = { op_mov_a_moffs, 0, I_MOFFS, 0 },
    [0xa2] = { op_mov_moffs_a, B, I_MOFFS, 0 },
    [0xa3] = { op_mov_moffs_a, 0, I_MOFFS, 0 },
    [0xa4] = { op_movs, B, I_NONE, 0 },
    [0xa5] = { op_movs, 0, I_NONE, 0 },
    [0xa6] = { op_cmps, B, I_NONE, 0 },
    [0xa7] = { op_cmps, 0, I_NONE, 0 },
    [0xa8] = { op_test_a_imm, B, I_B, 0 },
    [0xa9] = { op_test_a_imm, 0, I_Z, 0 },
    [0xaa] = { op_stos, B, I_NONE, 0 },
    [0xab] = { op_stos, 0, I_NONE, 0 },
    [0xac] = { op_lods, B, I_NONE, 0 },
    [0xad] = { op_lods, 0, I_NONE, 0 },
    [0xae] = { op_scas, B, I_NONE, 0 },
    [0xaf] = { op_scas, 0, I_NONE, 0 },
    X8(0xb0, { op_mov_r_imm, B, I_B, 0 }),
    X8(0xb8, { op_mov_r_imm, 0, I_V, 0 }),
    [0xc0] = { op_shift, M | B, I_B, 1 },
    [0xc1] = { op_shift, M, I_B, 1 },
    [0xc2] = { op_ret, F64 | END, I_W, 1 },
    [0xc3] = { op_ret, F64 | END, I_NONE, 0 },
    [0xc4] = { op_lxs, M | NO64 | END, I_NONE, CPU_ES },
    [0xc5] = { op_lxs, M | NO64 | END, I_NONE, CPU_DS },
    [0xc6] = { op_mov_rm_imm, M | B, I_B, 0 },
    [0xc7] = { op_mov_rm_imm, M, I_Z, 0 },
    [0xc8] = { op_enter, D64, I_ENTER, 0 },
    [0xc9] = { op_leave, D64, I_NONE, 0 },
    [0xca] = { op_retf, END, I_W, 1 },
    [0xcb] = { op_retf, END, I_NONE, 0 },
    [0xcc] = { op_int3, END, I_NONE, 0 },
    [0xcd] = { op_int, END, I_B, 0 },
    [0xce] = { op_into, NO64 | END, I_NONE, 0 },
    [0xcf] = { op_iret, END, I_NONE, 0 },
    [0xd0] = { op_shift, M | B, I_NONE, 0 },
    [0xd1] = { op_shift, M, I_NONE, 0 },
    [0xd2] = { op_shift, M | B, I_NONE, 2 },
    [0xd3] = { op_shift, M, I_NONE, 2 },
    [0xd4] = { op_aam, NO64, I_B, 0 },
    [0xd5] = { op_aad, NO64, I_B, 0 },
    [0xd6] = { op_salc, NO64, I_NONE, 0 },
    [0xd7] = { op_xlat, 0, I_NONE, 0 },
    X8(0xd8, { op_x87, M, I_NONE, 0 }),
    [0xe0] = { op_loop, F64 | END, I_B, 0 },
    [0xe1] = { op_loop, F64 | END, I_B, 1 },
    [0xe2] = { op_loop, F64 | END, I_B, 2 },
    [0xe3] = { op_jcxz, F64 | END, I_B, 0 },
    [0xe4] = { op_in, B | END, I_B, 0 },
    [0xe5] = { op_in, END, I_B, 0 },
    [0xe6] = { op_out, B | END, I_B, 0 },
    [0xe7] = { op_out, END, I_B, 0 },
    [0xe8] = { op_call_rel, F64 | END, I_Z, 0 },
    [0xe9] = { op_jmp_rel, F64 | END, I_Z, 0 },
    [0xea] = { op_jmp_far, NO64 | END, I_FAR, 0 },
    [0xeb] = { op_jmp_rel, F64 | END, I_B, 0 },
    [0xec] = { op_in, B | END, I_NONE, 1 },
    [0xed] = { op_in, END, I_NONE, 1 },
    [0xee] = { op_out, B | END, I_NONE, 1 },
    [0xef] = { op_out, END, I_NONE, 1 },
    [0xf1] = { op_int1, END, I_NONE, 0 },
    [0xf4] = { op_hlt, END, I_NONE, 0 },
    [0xf5] = { op_cmc, 0, I_NONE, 0 },
    [0xf6] = { NULL, M | B, I_NONE, 0 },     /* group 3 */
    [0xf7] = { NULL, M, I_NONE, 0 },
    [0xf8] = { op_clc, 0, I_NONE, 0 },
    [0xf9] = { op_stc, 0, I_NONE, 0 },
    [0xfa] = { op_cli, 0, I_NONE, 0 },
    [0xfb] = { op_sti, END, I_NONE, 0 },
    [0xfc] = { op_cld, 0, I_NONE, 0 },
    [0xfd] = { op_std, 0, I_NONE, 0 },
    [0xfe] = { NULL, M | B, I_NONE, 0 },     /* group 4 */
    [0xff] = { NULL, M, I_NONE, 0 },         /* group 5 */
};

#define CC16(b, fn, f, imm) \
    [b + 0] = { fn, f, imm, 0 }, [b + 1] = { fn, f, imm, 1 }, [b + 2] = { fn, f, imm, 2 }, \
    [b + 3] = { fn, f, imm, 3 }, [b + 4] = { fn, f, imm, 4 }, [b + 5] = { fn, f, imm, 5 }, \
    [b + 6] = { fn, f, imm, 6 }, [b + 7] = { fn, f, imm, 7 }, [b + 8] = { fn, f, imm, 8 }, \
    [b + 9] = { fn, f, imm, 9 }, [b + 10] = { fn, f, imm, 10 }, [b + 11] = { fn, f, imm, 11 }, \
    [b + 12] = { fn, f, imm, 12 }, [b + 13] = { fn, f, imm, 13 }, \
    [b + 14] = { fn, f, imm, 14 }, [b + 15] = { fn, f, imm, 15 }

#define SSE(b) [b] = { op_sse, M, I_NONE, b }
#define SSEI(b) [b] = { op_sse, M, I_B, b }

static const struct opent map2[256] = {
    [0x00] = { op_grp6, M | END, I_NONE, 0 },
    [0x01] = { op_grp7, M | END, I_NONE, 0 },
    [0x02] = { op_lar, M, I_NONE, 0 },
    [0x03] = { op_lsl, M, I_NONE, 0 },
    [0x05] = { op_syscall, END, I_NONE, 0 },
    [0x06] = { op_clts, 0, I_NONE, 0 },
    [0x07] = { op_sysret, END, I_NONE, 0 },
    [0x08] = { op_invd, 0, I_NONE, 0 },
    [0x09] = { op_invd, 0, I_NONE, 0 },
    [0x0b] = { op_ud, END, I_NONE, 0 },
    [0x0d] = { op_nop, M, I_NONE, 0 },
    X8(0x18, { op_nop, M, I_NONE, 0 }),
    [0x20] = { op_mov_cr, M | F64 | END, I_NONE, 0 },
    [0x21] = { op_mov_dr, M | F64 | END, I_NONE, 0 },
    [0x22] = { op_mov_cr, M | F64 | END, I_NONE, 1 },
    [0x23] = { op_mov_dr, M | F64 | END, I_NONE, 1 },
    SSE(0x10), SSE(0x11), SSE(0x12), SSE(0x13), SSE(0x14), SSE(0x15), SSE(0x16), SSE(0x17),
    SSE(0x28), SSE(0x29), SSE(0x2a), SSE(0x2b), SSE(0x2c), SSE(0x2d), SSE(0x2e), SSE(0x2f),
    [0x30] = { op_wrmsr, END, I_NONE, 0 },
    [0x31] = { op_rdtsc, 0, I_NONE, 0 },
    [0x32] = { op_rdmsr, 0, I_NONE, 0 },
    [0x34] = { op_sysenter, END, I_NONE, 0 },
    [0x35] = { op_sysexit, END, I_NONE, 0 },
    CC16(0x40, op_cmov, M, I_NONE),
    SSE(0x50), SSE(0x51), SSE(0x52), SSE(0x53), SSE(0x54), SSE(0x55), SSE(0x56), SSE(0x57),
    SSE(0x58), SSE(0x59), SSE(0x5a), SSE(0x5b), SSE(0x5c), SSE(0x5d), SSE(0x5e), SSE(0x5f),
    SSE(0x60), SSE(0x61), SSE(0x62), SSE(0x63), SSE(0x64), SSE(0x65), SSE(0x66), SSE(0x67),
    SSE(0x68), SSE(0x69), SSE(0x6a), SSE(0x6b), SSE(0x6c), SSE(0x6d), SSE(0x6e), SSE(0x6f),
    SSEI(0x70), SSEI(0x71), SSEI(0x72), SSEI(0x73), SSE(0x74), SSE(0x75), SSE(0x76),
    SSE(0x7c), SSE(0x7d), SSE(0x7e), SSE(0x7f),
    CC16(0x80, op_jcc, F64 | END, I_Z),
    CC16(0x90, op_setcc, M | B, I_NONE),
    [0xa0] = { op_push_seg, D64, I_NONE, CPU_FS },
    [0xa1] = { op_pop_seg, D64 | END, I_NONE, CPU_FS },
    [0xa2] = { op_cpuid, 0, I_NONE, 0 },
    [0xa3] = { op_bt_rm_r, M, I_NONE, 4 },
    [0xa4] = { op_shld, M, I_B, 0 },
    [0xa5] = { op_shld, M, I_NONE, 1 },
    [0xa8] = { op_push_seg, D64, I_NONE, CPU_GS },
    [0xa9] = { op_pop_seg, D64 | END, I_NONE, CPU_GS },
    [0xab] = { op_bt_rm_r, M, I_NONE, 5 },
    [0xac] = { op_shrd, M, I_B, 0 },
    [0xad] = { op_shrd, M, I_NONE, 1 },
    [0xae] = { op_grp15, M, I_NONE, 0 },
    [0xaf] = { op_imul_r_rm, M, I_NONE, 0 },
    [0xb0] = { op_cmpxchg, M | B, I_NONE, 0 },
    [0xb1] = { op_cmpxchg, M, I_NONE, 0 },
    [0xb2] = { op_lxs, M | END, I_NONE, CPU_SS },
    [0xb3] = { op_bt_rm_r, M, I_NONE, 6 },
    [0xb4] = { op_lxs, M | END, I_NONE, CPU_FS },
    [0xb5] = { op_lxs, M | END, I_NONE, CPU_GS },
    [0xb6] = { op_movzx, M, I_NONE, 1 },
    [0xb7] = { op_movzx, M, I_NONE, 2 },
    [0xb8] = { op_popcnt, M, I_NONE, 0 },
    [0xba] = { op_bt_rm_imm, M, I_B, 0 },
    [0xbb] = { op_bt_rm_r, M, I_NONE, 7 },
    [0xbc] = { op_bsf, M, I_NONE, 0 },
    [0xbd] = { op_bsr, M, I_NONE, 0 },
    [0xbe] = { op_movsx, M, I_NONE, 1 },
    [0xbf] = { op_movsx, M, I_NONE, 2 },
    [0xc0] = { op_xadd, M | B, I_NONE, 0 },
    [0xc1] = { op_xadd, M, I_NONE, 0 },
    SSEI(0xc2), SSE(0xc3), SSEI(0xc4), SSEI(0xc5), SSEI(0xc6),
    [0xc7] = { op_cmpxchg8b, M, I_NONE, 0 },
    X8(0xc8, { op_bswap, 0, I_NONE, 0 }),
    SSE(0xd0), SSE(0xd1), SSE(0xd2), SSE(0xd3), SSE(0xd4), SSE(0xd5), SSE(0xd6), SSE(0xd7),
    SSE(0xd8), SSE(0xd9), SSE(0xda), SSE(0xdb), SSE(0xdc), SSE(0xdd), SSE(0xde), SSE(0xdf),
    SSE(0xe0), SSE(0xe1), SSE(0xe2), SSE(0xe3), SSE(0xe4), SSE(0xe5), SSE(0xe6), SSE(0xe7),
    SSE(0xe8), SSE(0xe9), SSE(0xea), SSE(0xeb), SSE(0xec), SSE(0xed), SSE(0xee), SSE(0xef),
    SSE(0xf0), SSE(0xf1), SSE(0xf2), SSE(0xf3), SSE(0xf4), SSE(0xf5), SSE(0xf6), SSE(0xf7), SSE(0xf8),
    SSE(0xf9), SSE(0xfa), SSE(0xfb), SSE(0xfc), SSE(0xfd), SSE(0xfe),
};

/* Opcodes of the 0F 38 and 0F 3A maps that sse.c implements (bit n % 32 of word n / 32):
 * SSSE3's 0F 38 00-0B, 1C-1E and 0F 3A 0F; SSE4.1's 0F 38 10, 14, 15, 17, 20-25, 28-2B,
 * 30-35, 38-41 and 0F 3A 08-0E, 14-17, 20-22, 40-42. */
static const uint32_t map38[8] = { 0x70b10fffu, 0xff3f0f3fu, 0x00000003u };
static const uint32_t map3a[8] = { 0x00f0ff00u, 0x00000007u, 0x00000007u };

/* 16-bit addressing: (base, index) per ModRM.rm. */
static const uint8_t ea16[8][2] = {
    { 3, 6 }, { 3, 7 }, { 5, 6 }, { 5, 7 }, { 6, 0xff }, { 7, 0xff }, { 5, 0xff }, { 3, 0xff },
};

unsigned decode(struct cpu *c, const uint8_t *buf, unsigned avail, struct insn *out)
{
    unsigned n = 0, rex = 0, osz, asz, b, imm;
    bool p66 = false, p67 = false;
    const struct opent *e;
    struct opent e3;
    struct insn *i = out;
    int csz = c->csz;
    int segov = -1;

    memset(i, 0, sizeof *i);
    i->seg = CPU_DS;
    i->base = i->index = 0xff;
#define NEED(k) do { if (n + (k) > avail) return 0; if (n + (k) > 15) goto ud; } while (0)
    for (;;) {
        NEED(1);
        b = buf[n];
        switch (b) {
        case 0x26: segov = CPU_ES; break;
        case 0x2e: segov = CPU_CS; break;
        case 0x36: segov = CPU_SS; break;
        case 0x3e: segov = CPU_DS; break;
        case 0x64: segov = CPU_FS; break;
        case 0x65: segov = CPU_GS; break;
        case 0x66: p66 = true; break;
        case 0x67: p67 = true; break;
        case 0xf0: i->lock = 1; break;
        case 0xf2: case 0xf3: i->rep = (uint8_t)b; break;
        default: goto prefixes_done;
        }
        n++;
        rex = 0;
    }
prefixes_done:
    if (csz == 8 && (b & 0xf0) == 0x40) {
        rex = b;
        n++;
        NEED(1);
        b = buf[n];
    }
    n++;
    if (b == 0x0f) {
        NEED(1);
        b = buf[n++];
        if (b == 0x38 || b == 0x3a) {
            /* the three-byte maps: what sse.c implements, every other opcode #UD */
            unsigned map = b;
            NEED(1);
            b = buf[n++];
            if (!((map == 0x38 ? map38 : map3a)[b >> 5] >> (b & 31) & 1))
                goto ud;
            e3.fn = map == 0x38 ? op_sse38 : op_sse3a;
            e3.f = M;
            e3.imm = map == 0x38 ? I_NONE : I_B;
            e3.op = (uint8_t)b;
            e = &e3;
            b |= map == 0x38 ? 0x200 : 0x300;
        } else {
            e = &map2[b];
            b |= 0x100;
        }
    } else {
        e = &map1[b];
        if (csz == 8 && (b == 0xc4 || b == 0xc5))
            goto ud;    /* VEX: AVX is not implemented */
    }
    i->pfx66 = p66;
    if (!e->fn && (b == 0xf6 || b == 0xf7 || b == 0xfe || b == 0xff)) {
        /* resolved after ModRM */
    } else if (!e->fn) {
        goto ud;
    }
    if ((e->f & NO64) && csz == 8)
        goto ud;

    /* operand and address sizes */
    if (e->f & B) {
        osz = 1;
    } else if (csz == 8) {
        if (rex & 8)
            osz = 8;
        else if ((e->f & F64))
            osz = 8;
        else if ((e->f & D64))
            osz = p66 ? 2 : 8;
        else
            osz = p66 ? 2 : 4;
    } else {
        osz = (csz == 4) ^ p66 ? 4 : 2;
    }
    if (csz == 8)
        asz = p67 ? 4 : 8;
    else
        asz = (csz == 4) ^ p67 ? 4 : 2;
    i->osz = (uint8_t)osz;
    i->asz = (uint8_t)asz;
    i->op = e->op;
    i->fn = e->fn;
    i->flags = (e->f & END) ? INSN_ENDS_BLOCK : 0;

    /* register in the opcode byte */
    if ((b >= 0x40 && b <= 0x5f) || (b >= 0x90 && b <= 0x97) || (b >= 0xb0 && b <= 0xbf) ||
        (b >= 0x1c8 && b <= 0x1cf)) {
        unsigned r = (b & 7) | ((rex & 1) << 3);
        if (osz == 1 && !rex && r >= 4 && r < 8)
            r = 0x10 | (r - 4);
        i->rm = (uint8_t)r;
        i->mod = 3;
    }

    if (e->f & M) {
        unsigned modrm, mod, reg, rm;
        NEED(1);
        modrm = buf[n++];
        mod = modrm >> 6;
        if (b >= 0x120 && b <= 0x123)
            mod = 3;    /* MOV CR/DR ignore mod: always a register */
        reg = ((modrm >> 3) & 7);
        rm = modrm & 7;
        i->mod = (uint8_t)mod;
        /* group opcodes keep the raw reg field in op */
        if (b == 0x80 || b == 0x81 || b == 0x82 || b == 0x83 || b == 0xc0 || b == 0xc1 ||
            (b >= 0xd0 && b <= 0xd3) || b == 0x8f || b == 0xc6 || b == 0xc7 ||
            b == 0x100 || b == 0x101 || b == 0x1ba || b == 0x1c7 || b == 0x1ae ||
            (b >= 0xd8 && b <= 0xdf) ) {
            i->op = (uint8_t)((b >= 0xc0 && b <= 0xd3 ? (e->op << 4) : 0) | reg);
            if (b >= 0xd8 && b <= 0xdf)
                i->op = (uint8_t)(((b & 7) << 3) | reg);
        }
        reg |= (rex & 4) << 1;
        if ((e->f & B) && !rex && reg >= 4 && reg < 8)
            reg = 0x10 | (reg - 4);
        i->reg = (uint8_t)reg;
        if (b == 0xf6 || b == 0xf7) {
            static const op_fn g3[8] = { op_test_rm_imm, op_test_rm_imm, op_not, op_neg,
                                         op_mul1, op_imul1, op_div, op_idiv };
            i->fn = g3[(modrm >> 3) & 7];
            i->op = (uint8_t)((modrm >> 3) & 7);
        } else if (b == 0xfe) {
            if (((modrm >> 3) & 7) > 1)
                goto ud;
            i->fn = op_incdec_rm;
            i->op = (uint8_t)((modrm >> 3) & 7);
        } else if (b == 0xff) {
            static const op_fn g5[8] = { op_incdec_rm, op_incdec_rm, op_call_rm, op_call_far_m,
                                         op_jmp_rm, op_jmp_far_m, op_push_rm, NULL };
            i->fn = g5[reg & 7];
            i->op = (uint8_t)(reg & 7);
            if (!i->fn)
                goto ud;
            if ((reg & 7) >= 2)
                i->flags |= INSN_ENDS_BLOCK;
            if ((reg & 7) == 2 || (reg & 7) == 4) {
                if (csz == 8)
                    osz = 8;
            } else if ((reg & 7) == 6) {
                if (csz == 8 && !(rex & 8))
                    osz = p66 ? 2 : 8;
            }
            if ((reg & 7) == 6 && osz == 4 && csz == 8)
                osz = 8;
            i->osz = (uint8_t)osz;
        }
        if (mod == 3) {
            rm |= (rex & 1) << 3;
            if (((e->f & B) || b == 0x1b6 || b == 0x1be) && !rex && rm >= 4 && rm < 8)
                rm = 0x10 | (rm - 4);
            i->rm = (uint8_t)rm;
        } else if (asz == 2) {
            i->base = ea16[rm][0];
            i->index = ea16[rm][1];
            if (mod == 0 && rm == 6) {
                i->base = 0xff;
                NEED(2);
                i->disp = (int16_t)(buf[n] | buf[n + 1] << 8);
                n += 2;
            } else if (mod == 1) {
                NEED(1);
                i->disp = (int8_t)buf[n++];
            } else if (mod == 2) {
                NEED(2);
                i->disp = (int16_t)(buf[n] | buf[n + 1] << 8);
                n += 2;
            }
            if (rm == 2 || rm == 3 || (rm == 6 && mod != 0))
                i->seg = CPU_SS;
        } else {
            if (rm == 4) {
                unsigned sib, base, index;
                NEED(1);
                sib = buf[n++];
                base = (sib & 7) | ((rex & 1) << 3);
                index = ((sib >> 3) & 7) | ((rex & 2) << 2);
                i->scale = (uint8_t)(sib >> 6);
                i->index = index == 4 ? 0xff : (uint8_t)index;
                if ((sib & 7) == 5 && mod == 0) {
                    i->base = 0xff;
                    NEED(4);
                    memcpy(&i->disp, buf + n, 4);
                    n += 4;
                } else {
                    i->base = (uint8_t)base;
                }
            } else if (rm == 5 && mod == 0) {
                i->base = csz == 8 ? 0xfe : 0xff;
                NEED(4);
                memcpy(&i->disp, buf + n, 4);
                n += 4;
            } else {
                i->base = (uint8_t)(rm | ((rex & 1) << 3));
            }
            if (mod == 1) {
                NEED(1);
                i->disp = (int8_t)buf[n++];
            } else if (mod == 2) {
                NEED(4);
                memcpy(&i->disp, buf + n, 4);
                n += 4;
            }
            if (i->base == 4 || i->base == 5)
                i->seg = CPU_SS;
        }
    }
    if (segov >= 0)
        i->seg = (uint8_t)segov;

    /* immediates */
    imm = e->imm;
    if ((b == 0xf6 || b == 0xf7) && (i->op < 2))
        imm = b == 0xf6 ? I_B : I_Z;
    switch (imm) {
    case I_B:
        NEED(1);
        i->imm = (uint64_t)(int64_t)(int8_t)buf[n];
        n += 1;
        break;
    case I_W:
        NEED(2);
        i->imm = (uint16_t)(buf[n] | buf[n + 1] << 8);
        n += 2;
        break;
    case I_Z:
        if (osz == 2) {
            NEED(2);
            i->imm = (uint64_t)(int64_t)(int16_t)(buf[n] | buf[n + 1] << 8);
            n += 2;
        } else {
            int32_t v;
            NEED(4);
            memcpy(&v, buf + n, 4);
            i->imm = (uint64_t)(int64_t)v;
            n += 4;
        }
        break;
    case I_V:
        NEED(osz);
        i->imm = 0;
        memcpy(&i->imm, buf + n, osz);
        n += osz;
        break;
    case I_ENTER:
        NEED(3);
        i->imm = (uint16_t)(buf[n] | buf[n + 1] << 8);
        i->imm2 = buf[n + 2];
        n += 3;
        break;
    case I_FAR:
        NEED(osz + 2);
        i->imm = 0;
        memcpy(&i->imm, buf + n, osz);
        i->imm2 = (uint16_t)(buf[n + osz] | buf[n + osz + 1] << 8);
        n += osz + 2;
        break;
    case I_MOFFS:
        NEED(asz);
        i->imm = 0;
        memcpy(&i->imm, buf + n, asz);
        n += asz;
        break;
    default:
        break;
    }
    /* LOCK is only valid on read-modify-write memory forms, and never on SSE */
    if (i->lock && (i->mod == 3 || !(e->f & M) || e->fn == op_sse || e->fn == op_sse38 ||
                    e->fn == op_sse3a))
        goto ud;
    i->len = (uint8_t)n;
    specialize(i);
    return n;
ud:
    memset(i, 0, sizeof *i);
    i->fn = op_ud;
    i->flags = INSN_ENDS_BLOCK;
    i->len = (uint8_t)(n ? n : 1);
    if (i->len > 15)
        i->len = 15;
    return i->len;
#undef NEED
}
