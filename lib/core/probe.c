/* The backend registry, the probe API and the rule that picks a backend for a guest. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "machine/loader.h"

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

/* Tests only (backend_probe_override): what a host without /dev/kvm cannot show. */
static backend_probe_fn probe_override;

void backend_probe_override(backend_probe_fn fn) { probe_override = fn; }

/* ops->probe, or what the test override says instead. */
static int backend_probe(const struct backend_ops *ops, vmcore_probe_result *out)
{
    if (probe_override) {
        int rc = probe_override(ops, out);
        if (rc != BACKEND_PROBE_REAL)
            return rc;
    }
    return ops->probe(out);
}

int backend_usable(const struct backend_ops *ops, struct vmcore_err *err)
{
    if (ops->usable && !probe_override)
        return ops->usable(err) == 0 ? 0 : VMCORE_EUNAVAIL;
    vmcore_probe_result pr = VMCORE_PROBE_RESULT_INIT;
    if (backend_probe(ops, &pr) == 0)
        return 0;
    return err_set(err, VMCORE_EUNAVAIL, "%s", pr.reason);
}

/* Whether @cfg boots a Linux kernel: boot.format "linux" or "auto", and a file the loader's
 * own detection takes for a bzImage. That needs only the setup header (the first 0x206
 * bytes; Linux is the first format loader_detect() tries), read here once per create. A
 * file that cannot be read, or "linux" and not a bzImage, is left to the loader, whose
 * image error at create says more than "this backend cannot boot Linux" would. */
static bool boots_linux(const struct vmcore_config *cfg)
{
    if (!cfg || !cfg->boot.kernel ||
        (cfg->boot.format != BOOT_FORMAT_AUTO && cfg->boot.format != BOOT_FORMAT_LINUX))
        return false;
    uint8_t head[0x206];
    int fd = open(cfg->boot.kernel, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = pread(fd, head, sizeof head, 0);
    close(fd);
    return n > 0 && loader_detect(head, (size_t)n) == BOOT_FORMAT_LINUX;
}

int backend_usable_for(const struct backend_ops *ops, const struct vmcore_config *cfg,
                       struct vmcore_err *err)
{
    int rc = backend_usable(ops, err);
    if (rc || !boots_linux(cfg))
        return rc;
    /* A Linux guest needs the probe's verdict, not only an open device: KVM that emulates
     * guest ring 0 in software (PVM) opens and runs, but a kernel would print nothing for
     * minutes and then crash. The measurement is made once per process (kvm_probe.c). */
    vmcore_probe_result pr = VMCORE_PROBE_RESULT_INIT;
    if (backend_probe(ops, &pr) != 0)
        return err_set(err, VMCORE_EUNAVAIL, "%s", pr.reason);
    if (pr.flags & VMCORE_PROBE_LINUX_BOOT)
        return 0;
    return err_set(err, VMCORE_EUNAVAIL,
                   "%s cannot boot a Linux kernel usefully on this host: %s; use \"backend\": "
                   "\"%s\" (or \"auto\", which picks it for a Linux guest here)", ops->name,
                   pr.flags & VMCORE_PROBE_NATIVE_SUPERVISOR
                       ? "its probe does not report VMCORE_PROBE_LINUX_BOOT"
                       : "guest ring 0 runs emulated in software, not on the CPU (as KVM "
                         "does under PVM), under 50 million instructions per second",
                   backend_emu_ops.name);
}

const struct backend_ops *backend_pick_auto(const struct vmcore_config *cfg,
                                            struct vmcore_err *err)
{
    char why[VMCORE_ERR_MSG_MAX] = "";
    for (size_t i = 0; i < sizeof auto_order / sizeof auto_order[0]; i++) {
        const struct backend_ops *ops = backends[auto_order[i]];
        struct vmcore_err e = { 0 };
        if (backend_usable_for(ops, cfg, &e) == 0)
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
    int rc = backend_probe(ops, out);
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
        const struct backend_ops *ops = backend_pick_auto(NULL, &why);
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
