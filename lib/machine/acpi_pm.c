/* ACPI power management: PM1 event/control blocks, PM timer, SCI, power button, S5.
 * Placeholder until the platform work lands. */
#include "machine_internal.h"

int acpi_pm_init(struct machine *m)
{
    (void)m;
    return 0;
}
