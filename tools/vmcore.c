/* Placeholder: the CLI lands with the core issue. */
#include <stdio.h>
#include "vmcore/vmcore.h"
int main(void) { printf("vmcore %s\n", vmcore_version_string()); return 0; }
