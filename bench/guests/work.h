#ifndef BENCH_WORK_H
#define BENCH_WORK_H
#include <stdint.h>
/* The compute workload: integer ALU, multiplies, shifts, byte/word memory traffic and
 * data-dependent branches, deterministic. Returns a checksum. Compiled once into work.o,
 * which is linked unchanged into the guest and into the host build that callgrind counts. */
uint32_t bench_work(uint32_t rounds);
#endif
