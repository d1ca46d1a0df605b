/* The backend registry and the probe API. */
#include <stdio.h>
#include <string.h>

#include "backend.h"

static const struct backend_ops *const backends[] = { &backend_kvm_ops, &backend_emu_ops,
                                                      &backend_container_ops };
static const char *const backend_list[] = { "kvm", "emu", "container", NULL };

const struct backend_ops *backend_find(const char *name)
{
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}

VMCORE_API const char *const *vmcore_backend_names(void) { return backend_list; }

static int probe_one(const struct backend_ops *ops, vmcore_probe_result *out)
{
    memset(out, 0, sizeof *out);
    out->version = VMCORE_PROBE_RESULT_VERSION;
    snprintf(out->backend, sizeof out->backend, "%s", ops->name);
    int rc = ops->probe(out);
    out->available = rc == 0;
    if (rc == 0)
        out->reason[0] = '\0';
    else if (!out->reason[0])
        snprintf(out->reason, sizeof out->reason, "%s", "unavailable (no reason given)");
    return rc == 0 ? 0 : VMCORE_EUNAVAIL;
}

VMCORE_API int vmcore_probe(const char *backend, vmcore_probe_result *out)
{
    if (!backend || !out || out->version != VMCORE_PROBE_RESULT_VERSION)
        return VMCORE_EINVAL;
    if (strcmp(backend, "auto") == 0) {
        /* auto runs virtual machines: kvm when usable, else emu. */
        if (probe_one(&backend_kvm_ops, out) == 0)
            return 0;
        char why[sizeof out->reason];
        snprintf(why, sizeof why, "%s", out->reason);
        int rc = probe_one(&backend_emu_ops, out);
        if (rc == 0)
            snprintf(out->details, sizeof out->details, "auto picks emu: kvm unavailable (%s)",
                     why);
        return rc;
    }
    const struct backend_ops *ops = backend_find(backend);
    if (!ops)
        return VMCORE_EINVAL;
    return probe_one(ops, out);
}
