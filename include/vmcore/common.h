/**
 * @file common.h
 * @brief Macros shared by every libvmcore public header.
 */
#ifndef VMCORE_COMMON_H
#define VMCORE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
/** Marks a function as part of the exported ABI. */
#define VMCORE_API __attribute__((visibility("default")))
#else
#define VMCORE_API
#endif

#ifdef __cplusplus
#define VMCORE_BEGIN_DECLS extern "C" {
#define VMCORE_END_DECLS }
#else
/** Opens a C-linkage block in C++. */
#define VMCORE_BEGIN_DECLS
/** Closes a C-linkage block in C++. */
#define VMCORE_END_DECLS
#endif

#endif /* VMCORE_COMMON_H */
