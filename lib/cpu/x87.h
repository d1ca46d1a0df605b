/* x87 FPU (x87.c): the pieces other parts of lib/cpu call. */
#ifndef VMCORE_CPU_X87_H
#define VMCORE_CPU_X87_H

#include "x86.h"

/* Whether x87 instructions work here (CPUID.1:EDX.FPU): they run on the host's own x87,
 * so only on x86-64 hosts; elsewhere every D8-DF opcode is #UD. */
bool x87_available(void);

/* FXSAVE/FXRSTOR's x87 part: bytes 0-23 (FCW, FSW, abridged FTW, FOP, FIP/FDP as zeros)
 * and 32-159 (ST0..ST7, 16 bytes each). Bytes 24-31 (MXCSR) are the caller's. */
void x87_fxsave_area(const struct cpu *c, uint8_t area[160]);
void x87_fxrstor_area(struct cpu *c, const uint8_t area[160]);

/* WAIT/FWAIT (9B). */
OP(op_fwait);

#endif
