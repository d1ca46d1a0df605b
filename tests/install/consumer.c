/* A program built against an installed libvmcore with nothing but
 * `pkg-config --cflags --libs vmcore`: it creates a context, probes every backend and
 * prints "NAME: available" or "NAME: unavailable: REASON". Exits non-zero if the library
 * misbehaves: an unavailable backend without a reason, a version mismatch between the
 * header and the loaded library, or an unknown backend name that is not refused. */
#include <stdio.h>
#include <string.h>

#include <vmcore/vmcore.h>

int main(void)
{
    int failures = 0;
    if (vmcore_version() != VMCORE_VERSION_NUMBER) {
        fprintf(stderr, "header version %d, library %u\n", VMCORE_VERSION_NUMBER,
                vmcore_version());
        failures++;
    }

    vmcore_ctx *ctx = NULL;
    int rc = vmcore_ctx_new(&ctx, NULL);
    if (rc != 0) {
        fprintf(stderr, "vmcore_ctx_new: %s\n", vmcore_strerror(rc));
        return 1;
    }
    printf("libvmcore %s on loop %p\n", vmcore_version_string(), (void *)vmcore_ctx_loop(ctx));

    for (const char *const *name = vmcore_backend_names(); *name; name++) {
        vmcore_probe_result r = VMCORE_PROBE_RESULT_INIT;
        rc = vmcore_probe(*name, &r);
        if (rc == 0) {
            printf("%s: available\n", *name);
        } else if (rc == VMCORE_EUNAVAIL && r.reason[0]) {
            printf("%s: unavailable: %s\n", *name, r.reason);
        } else {
            printf("%s: probe failed without a reason: %s\n", *name, vmcore_strerror(rc));
            failures++;
        }
    }

    vmcore_probe_result r = VMCORE_PROBE_RESULT_INIT;
    rc = vmcore_probe("no-such-backend", &r);
    if (rc != VMCORE_EINVAL) {
        printf("probing an unknown backend returned %s, want VMCORE_EINVAL\n",
               vmcore_error_name(rc));
        failures++;
    }

    rc = vmcore_ctx_free(ctx);
    if (rc != 0) {
        printf("vmcore_ctx_free: %s\n", vmcore_strerror(rc));
        failures++;
    }
    return failures ? 1 : 0;
}
