/* The entry point every fuzz target of tests/fuzz/ defines: libFuzzer's, so the same file
 * builds as a fuzzer (clang -fsanitize=fuzzer, VMCORE_FUZZ=ON) and, linked with replay.c,
 * as an ordinary program that runs a corpus through it (the fuzz_replay_* ctest tests). */
#ifndef VMCORE_TESTS_FUZZ_H
#define VMCORE_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A one-byte raw image (HLT) for the targets that need a machine_create()d machine:
 * written once per process, removed at exit. */
static char fuzz_kernel_[64];

static inline void fuzz_kernel_unlink_(void) { unlink(fuzz_kernel_); }

static inline const char *fuzz_hlt_kernel(void)
{
    if (fuzz_kernel_[0])
        return fuzz_kernel_;
    snprintf(fuzz_kernel_, sizeof fuzz_kernel_, "/tmp/vmcore-fuzz-XXXXXX");
    int fd = mkstemp(fuzz_kernel_);
    if (fd < 0 || write(fd, "\xf4", 1) != 1)
        abort();
    close(fd);
    atexit(fuzz_kernel_unlink_);
    return fuzz_kernel_;
}

#endif
