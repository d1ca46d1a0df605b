/* The entry point every fuzz target of tests/fuzz/ defines: libFuzzer's, so the same file
 * builds as a fuzzer (clang -fsanitize=fuzzer, VMCORE_FUZZ=ON) and, linked with replay.c,
 * as an ordinary program that runs a corpus through it (the fuzz_replay_* ctest tests). */
#ifndef VMCORE_TESTS_FUZZ_H
#define VMCORE_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
