/* Placeholder until the container backend lands: reports itself unavailable. */
#include <stdio.h>
#include <string.h>

#include "core/backend.h"

static int container_probe(vmcore_probe_result *out)
{
    snprintf(out->backend, sizeof out->backend, "%s", "container");
    out->available = 0;
    snprintf(out->reason, sizeof out->reason, "the container backend is not built into this version");
    return VMCORE_EUNAVAIL;
}

static int container_create(vmcore_domain *d, const struct vmcore_config *cfg, void **priv,
                       struct vmcore_err *err)
{
    return err_set(err, VMCORE_EUNAVAIL, "backend container: not built into this version");
}

const struct backend_ops backend_container_ops = {
    .name = "container",
    .probe = container_probe,
    .create = container_create,
};
