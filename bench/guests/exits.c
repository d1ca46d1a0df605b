/* The exit round-trip guest: one console byte, EXITS writes to port 0x80 (each one a full
 * vCPU exit to the machine model), a second console byte, then debug-exit status 0. */
#include "guest.h"

#ifndef EXITS
#define EXITS 100000
#endif

int guest_main(void)
{
    put_char('[');
    for (uint32_t i = 0; i < EXITS; i++)
        outb(0x80, (uint8_t)i);
    put_str("]\n");
    return 0;
}
