/* The compute guest: runs bench_work(ROUNDS) and prints the checksum on COM1. */
#include "guest.h"
#include "work.h"

#ifndef ROUNDS
#define ROUNDS 200
#endif

int guest_main(void)
{
    uint32_t sum = bench_work(ROUNDS);
    put_str("checksum ");
    put_hex32(sum);
    put_char('\n');
    return 0;
}
