/* The boot-time guest: one line on COM1, then debug-exit status 0. */
#include "guest.h"

int guest_main(void)
{
    put_str("hello\n");
    return 0;
}
