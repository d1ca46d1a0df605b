/* SSE/SSE2 (the subset compiled x86-64 code uses), FXSAVE/FXRSTOR, fences, and x87
 * (not implemented: CPUID does not report an FPU). */
#include "x86.h"

OP(op_x87)
{
    cpu_raise(c, EX_NM, 0, 0);
}

OP(op_sse)
{
    cpu_ud(c);
}

OP(op_grp15)
{
    unsigned op = i->reg & 7;
    if (i->mod == 3) {
        if (op >= 5)
            return;     /* LFENCE / MFENCE / SFENCE */
        cpu_ud(c);
    }
    switch (op) {
    case 2:             /* LDMXCSR */
        c->mxcsr = (uint32_t)mem_read(c, ea(c, i), 4) & 0xffff;
        return;
    case 3:             /* STMXCSR */
        mem_write(c, ea(c, i), 4, c->mxcsr);
        return;
    case 7:             /* CLFLUSH */
        (void)mem_read(c, ea(c, i), 1);
        return;
    default:
        cpu_ud(c);
    }
}
