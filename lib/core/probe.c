/* The backend registry and the probe API. */
#include <stdio.h>
#include <string.h>

#include "backend.h"

#define BACKEND_OPS_(u, l) [CONFIG_BACKEND_##u] = &backend_##l##_ops,
static const struct backend_ops *const backends[CONFIG_BACKEND_COUNT] = {
    VMCORE_BACKENDS(BACKEND_OPS_)
};
#undef BACKEND_OPS_
#define BACKEND_NAME_(u, l) #l,
static const char *const backend_list[] = { VMCORE_BACKENDS(BACKEND_NAME_) NULL };
#undef BACKEND_NAME_

/* What "auto" tries, in order: virtual machines only, hardware first. */
static const enum config_backend auto_order[] = { CONFIG_BACKEND_KVM, CONFIG_BACKEND_EMU };

const struct backend_ops *backend_of(enum config_backend b)
{
    return b > CONFIG_BACKEND_AUTO && b < CONFIG_BACKEND_COUNT ? backends[b] : NULL;
}

const struct backend_ops *backend_find(const char *name)
{
    for (int i = 0; backend_list[i]; i++)
        if (strcmp(backend_list[i], name) == 0)
            return backends[CONFIG_BACKEND_AUTO + 1 + i];
    return NULL;
}

int backend_usable(const struct backend_ops *ops, struct vmcore_err *err)
{
    if (ops->usable)
        return ops->usable(err) == 0 ? 0 : VMCORE_EUNAVAIL;
    vmcore_probe_result pr = VMCORE_PROBE_RESULT_INIT;
    if (ops->probe(&pr) == 0)
        return 0;
    return err_set(err, VMCORE_EUNAVAIL, "%s", pr.reason);
}

const struct backend_ops *backend_pick_auto(struct vmcore_err *err)
{
    char why[VMCORE_ERR_MSG_MAX] = "";
    for (size_t i = 0; i < sizeof auto_order / sizeof auto_order[0]; i++) {
        const struct backend_ops *ops = backends[auto_order[i]];
        struct vmcore_err e = { 0 };
        if (backend_usable(ops, &e) == 0)
            return ops;
        size_t n = strlen(why);
        snprintf(why + n, sizeof why - n, "%s%s: %s", n ? "; " : "", ops->name, e.msg);
    }
    err_set(err, VMCORE_EUNAVAIL, "%s", why);
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
        /* The backend a "backend": "auto" domain would run on, by the same rule. */
        struct vmcore_err why = { 0 };
        const struct backend_ops *ops = backend_pick_auto(&why);
        if (!ops) {
            probe_one(backends[auto_order[sizeof auto_order / sizeof auto_order[0] - 1]], out);
            snprintf(out->reason, sizeof out->reason, "auto: no VM backend is usable (%s)",
                     why.msg);
            out->available = 0;
            return VMCORE_EUNAVAIL;
        }
        int rc = probe_one(ops, out);
        if (rc == 0 && ops != backends[auto_order[0]]) {
            struct vmcore_err first = { 0 };
            backend_usable(backends[auto_order[0]], &first);
            snprintf(out->details, sizeof out->details, "auto picks %s: %s unavailable (%s)",
                     ops->name, backends[auto_order[0]]->name, first.msg);
        }
        return rc;
    }
    const struct backend_ops *ops = backend_find(backend);
    if (!ops)
        return VMCORE_EINVAL;
    return probe_one(ops, out);
}
