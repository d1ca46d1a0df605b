/* Fuzz target: one boot loader (lib/machine/loader*.c) on the input as the guest image.
 * Built once per format: FUZZ_FORMAT is BOOT_FORMAT_RAW, _ELF, _MULTIBOOT, _LINUX or _AUTO.
 * The raw loader runs the image in all three CPU modes.
 *
 * The configuration around the image comes from the image's last 4 bytes (little-endian;
 * they stay part of the image), so that one input also picks what a config could say:
 *   bits 0-1   guest RAM: 16 MiB, 2 MiB, 1 MiB, 640 KiB
 *   bits 2-7   vcpus - 1 (1..64)
 *   bit  8     a 4095-byte command line instead of a short one
 *   bit  9     raw: boot.load_address = bits 12-31 << 4
 *   bit  10    raw: boot.entry = the load address + bits 16-23 (or - them, with bit 11)
 * Inputs shorter than 4 bytes get 16 MiB, 2 vCPUs, a short command line, the defaults. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/config.h"
#include "fuzz.h"
#include "machine/loader.h"

#ifndef FUZZ_FORMAT
#error "FUZZ_FORMAT must name a boot format"
#endif

#define FUZZ_RAM_SIZE (16ull << 20)

static uint8_t *ram;
static uint64_t ram_size;
static char long_cmdline[4096];

static void load(struct vmcore_config *cfg, const uint8_t *data, size_t size)
{
    struct x86_boot_state bs;
    struct vmcore_err err = { 0 };
    int rc = loader_load_image(ram, ram_size, cfg, data, size, &bs, &err);
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
        memset(long_cmdline, 'c', sizeof long_cmdline - 1);
    }
    static const uint64_t ram_sizes[] = { FUZZ_RAM_SIZE, 2u << 20, 1u << 20, 640u << 10 };
    uint32_t opt = 0x4; /* 16 MiB, 2 vCPUs */
    if (size >= 4)
        memcpy(&opt, data + size - 4, 4);
    ram_size = ram_sizes[opt & 3];
    struct vmcore_config cfg = { 0 };
    cfg.memory_mib = ram_size >> 20 ? ram_size >> 20 : 1;
    cfg.vcpus = 1 + ((opt >> 2) & 63);
    cfg.boot.kernel = (char *)"fuzz-image";
    cfg.boot.cmdline = opt & (1u << 8) ? long_cmdline : (char *)"console=ttyS0";
    cfg.boot.format = FUZZ_FORMAT;
    cfg.boot.mode = BOOT_MODE_PROTECTED;
    if (FUZZ_FORMAT == BOOT_FORMAT_RAW && (opt & (1u << 9))) {
        cfg.boot.has_load_address = true;
        cfg.boot.load_address = (uint64_t)(opt >> 12) << 4;
    }
    if (FUZZ_FORMAT == BOOT_FORMAT_RAW && (opt & (1u << 10))) {
        uint64_t base = cfg.boot.has_load_address ? cfg.boot.load_address : 0x100000;
        uint64_t d = (opt >> 16) & 0xff;
        cfg.boot.has_entry = true;
        cfg.boot.entry = opt & (1u << 11) ? base - d : base + d;
    }
    load(&cfg, data, size);
    if (FUZZ_FORMAT == BOOT_FORMAT_RAW) {
        cfg.boot.mode = BOOT_MODE_REAL;
        load(&cfg, data, size);
        cfg.boot.mode = BOOT_MODE_LONG;
        load(&cfg, data, size);
    }
    return 0;
}
