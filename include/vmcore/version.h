/**
 * @file version.h
 * @brief Compile-time and run-time version of libvmcore.
 */
#ifndef VMCORE_VERSION_H
#define VMCORE_VERSION_H

#include "common.h"

VMCORE_BEGIN_DECLS

/** Major version: changes when the ABI breaks (it is the SONAME). */
#define VMCORE_VERSION_MAJOR 0
/** Minor version: grows when functions are added. */
#define VMCORE_VERSION_MINOR 1
/** Patch version: fixes only. */
#define VMCORE_VERSION_PATCH 0
/** The version as one number, `major * 10000 + minor * 100 + patch`. */
#define VMCORE_VERSION_NUMBER \
    (VMCORE_VERSION_MAJOR * 10000 + VMCORE_VERSION_MINOR * 100 + VMCORE_VERSION_PATCH)

/**
 * The version of the library loaded at run time, as "MAJOR.MINOR.PATCH".
 *
 * @return A static string. Never fails.
 */
VMCORE_API const char *vmcore_version_string(void);

/**
 * The version of the library loaded at run time, as #VMCORE_VERSION_NUMBER computes it.
 *
 * @return The version number. Never fails.
 */
VMCORE_API unsigned int vmcore_version(void);

VMCORE_END_DECLS

#endif /* VMCORE_VERSION_H */
