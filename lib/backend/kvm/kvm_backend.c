/* Placeholder until the kvm backend lands: reports itself unavailable. */
#include <stdio.h>
#include <string.h>

#include "core/backend.h"

static int kvm_probe(vmcore_probe_result *out)
{
    snprintf(out->backend, sizeof out->backend, "%s", "kvm");
    out->available = 0;
    snprintf(out->reason, sizeof out->reason, "the kvm backend is not built into this version");
    return VMCORE_EUNAVAIL;
}

static int kvm_create(vmcore_domain *d, const struct vmcore_config *cfg, void **priv,
                       struct vmcore_err *err)
{
    return err_set(err, VMCORE_EUNAVAIL, "backend kvm: not built into this version");
}

const struct backend_ops backend_kvm_ops = {
    .name = "kvm",
    .probe = kvm_probe,
    .create = kvm_create,
};
