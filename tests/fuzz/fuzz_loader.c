/* Fuzz target: one boot loader (lib/machine/loader*.c) on the input as the guest image,
 * into 16 MiB of guest RAM. Built once per format: FUZZ_FORMAT is BOOT_FORMAT_RAW, _ELF,
 * _MULTIBOOT, _LINUX or _AUTO. The raw loader runs the image in all three CPU modes. */
#include <stdlib.h>
#include <sys/mman.h>

#include "core/config.h"
#include "fuzz.h"
#include "machine/loader.h"

#ifndef FUZZ_FORMAT
#error "FUZZ_FORMAT must name a boot format"
#endif

#define FUZZ_RAM_SIZE (16ull << 20)

static uint8_t *ram;

static void load(struct vmcore_config *cfg, const uint8_t *data, size_t size)
{
    struct x86_boot_state bs;
    struct vmcore_err err = { 0 };
    int rc = loader_load_image(ram, FUZZ_RAM_SIZE, cfg, data, size, &bs, &err);
    /* A rejected image always says why, and names the field (boot.kernel, ...). */
    if (rc != 0 && (err.code != rc || !err.msg[0] || !err.path[0]))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ram) {
        ram = mmap(NULL, FUZZ_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
        if (ram == MAP_FAILED)
            abort();
    }
    struct vmcore_config cfg = { 0 };
    cfg.memory_mib = FUZZ_RAM_SIZE >> 20;
    cfg.vcpus = 2;
    cfg.boot.kernel = (char *)"fuzz-image";
    cfg.boot.cmdline = (char *)"console=ttyS0";
    cfg.boot.format = FUZZ_FORMAT;
    cfg.boot.mode = BOOT_MODE_PROTECTED;
    load(&cfg, data, size);
    if (FUZZ_FORMAT == BOOT_FORMAT_RAW) {
        cfg.boot.mode = BOOT_MODE_REAL;
        load(&cfg, data, size);
        cfg.boot.mode = BOOT_MODE_LONG;
        load(&cfg, data, size);
    }
    return 0;
}
