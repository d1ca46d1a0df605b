/* vmcore-oci: an OCI runtime (runtime-spec 1.1 command line, as runc's) on libvmcore's
 * container backend. oci.c: the commands and the state directory; oci_config.c: the
 * bundle's config.json turned into the library's container configuration. */
#ifndef VMCORE_OCI_H
#define VMCORE_OCI_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* The runtime-spec version this runtime implements (state's ociVersion, features). */
#define OCI_VERSION "1.1.0"
/* A config.json larger than this is refused (runc has no limit; ours keeps memory bounded). */
#define OCI_CONFIG_MAX (4u << 20)

/* What a bundle's config.json asks for besides the library's configuration. */
struct oci_extra {
    bool terminal;
    unsigned rows, cols;        /* process.consoleSize, 0 if not given */
    bool has_oom;
    int oom_score_adj;
    json_t *annotations;        /* object (a new reference), never NULL */
    char rootfs[4096];          /* absolute */
};

/* Turn @oci (a parsed config.json of the bundle in @bundle, absolute) into the library's
 * JSON for a container named after @id that waits on the FIFO @fifo (NULL: none) in
 * cgroup folder @cgroup. NULL with the message in @err ("linux.seccomp: not supported by
 * vmcore-oci yet"): every field it cannot honour is an error naming it. */
json_t *oci_config_map(const json_t *oci, const char *bundle, const char *id, const char *fifo,
                       const char *cgroup, struct oci_extra *extra, char *err, size_t errlen);

/* The default config.json `vmcore-oci spec` writes: only what oci_config_map() honours. */
json_t *oci_config_default(void);

/* The masked and read-only paths the library always applies (rootfs.c's lists). */
extern const char *const oci_masked_paths[];
extern const char *const oci_readonly_paths[];

#endif
