/* ACPI tables generated per machine. Placeholder until the platform work lands. */
#include "machine_internal.h"

int acpi_build(struct machine *m, const struct vmcore_config *cfg, uint64_t *rsdp_gpa)
{
    (void)m;
    (void)cfg;
    *rsdp_gpa = 0;
    return 0;
}
