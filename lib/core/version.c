#include "vmcore/version.h"

#define VMCORE_STR2(x) #x
#define VMCORE_STR(x) VMCORE_STR2(x)

VMCORE_API const char *vmcore_version_string(void)
{
    return VMCORE_STR(VMCORE_VERSION_MAJOR) "." VMCORE_STR(VMCORE_VERSION_MINOR) "."
        VMCORE_STR(VMCORE_VERSION_PATCH);
}

VMCORE_API unsigned int vmcore_version(void) { return VMCORE_VERSION_NUMBER; }
