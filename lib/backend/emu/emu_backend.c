/* Placeholder until the emu backend lands: reports itself unavailable. */
#include <stdio.h>
#include <string.h>

#include "core/backend.h"

static int emu_probe(vmcore_probe_result *out)
{
    snprintf(out->backend, sizeof out->backend, "%s", "emu");
    out->available = 0;
    snprintf(out->reason, sizeof out->reason, "the emu backend is not built into this version");
    return VMCORE_EUNAVAIL;
}

static int emu_create(vmcore_domain *d, const struct vmcore_config *cfg, void **priv,
                       struct vmcore_err *err)
{
    return err_set(err, VMCORE_EUNAVAIL, "backend emu: not built into this version");
}

const struct backend_ops backend_emu_ops = {
    .name = "emu",
    .probe = emu_probe,
    .create = emu_create,
};
