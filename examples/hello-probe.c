/* hello-probe: create a context and ask every backend whether it can run here.
 *
 *   $ ./hello-probe
 *   libvmcore 0.1.0
 *   kvm: available (api 12; ...)
 *   emu: available
 *   container: unavailable: needs root (CAP_SYS_ADMIN) to create namespaces
 *
 * Build against an installed libvmcore:
 *   cc -o hello-probe hello-probe.c $(pkg-config --cflags --libs vmcore)
 */
#include <stdio.h>

#include <vmcore/vmcore.h>

int main(void)
{
    vmcore_ctx *ctx;
    int rc = vmcore_ctx_new(&ctx, NULL); /* NULL: the context creates its own libuv loop */
    if (rc != 0) {
        fprintf(stderr, "vmcore_ctx_new: %s\n", vmcore_strerror(rc));
        return 1;
    }
    printf("libvmcore %s\n", vmcore_version_string());

    for (const char *const *name = vmcore_backend_names(); *name; name++) {
        vmcore_probe_result r = VMCORE_PROBE_RESULT_INIT;
        if (vmcore_probe(*name, &r) == 0)
            printf("%s: available%s%s%s\n", r.backend, r.details[0] ? " (" : "", r.details,
                   r.details[0] ? ")" : "");
        else
            printf("%s: unavailable: %s\n", *name, r.reason);
    }

    vmcore_ctx_free(ctx);
    return 0;
}
