/* Fuzz target: the JSON configuration parser and validator (lib/core/config.c), the way
 * vmcore_domain_new_json() reads it (duplicate keys rejected), without creating a domain.
 * Relative paths resolve against "/", so inputs can name files that exist on any host
 * ("/proc/self/exe" as a kernel, "/" as a rootfs, "/tmp" as a mount source). */
#include <stdlib.h>

#include <jansson.h>

#include "core/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return 0;
    struct vmcore_err err = { 0 };
    struct vmcore_config *cfg = NULL;
    int rc = config_parse(&cfg, root, "/", &err);
    /* Every failure says what and, for a value of the document, where. */
    if (rc != 0 && (cfg || err.code != rc || !err.msg[0]))
        abort();
    if (rc == VMCORE_ECONFIG && !err.path[0])
        abort();
    config_free(cfg);
    json_decref(root);
    return 0;
}
