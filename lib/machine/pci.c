/* The PCI host bridge (0:0.0), configuration mechanism #1 (0xcf8/0xcfc) and ECAM, BAR
 * placement, capability lists, MSI/MSI-X, INTx on the IOAPIC's PCI pins.
 * Placeholder until the platform work lands: no PCI yet. */
#include "machine_internal.h"

int pci_host_init(struct machine *m, const struct vmcore_config *cfg)
{
    (void)m;
    (void)cfg;
    return 0;
}
