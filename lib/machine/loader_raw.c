/* boot.format "raw": a flat binary copied to boot.load_address and entered at boot.entry
 * (default: the load address) in the CPU mode boot.mode asks for. */
#include "loader.h"

#define RAW_REAL_DEFAULT_LOAD 0x7c00
#define RAW_DEFAULT_LOAD 0x100000
#define REAL_MODE_LIMIT 0x100000

uint64_t loader_raw_load_address(const struct vmcore_config *cfg)
{
    return cfg->boot.has_load_address ? cfg->boot.load_address
           : cfg->boot.mode == BOOT_MODE_REAL ? RAW_REAL_DEFAULT_LOAD : RAW_DEFAULT_LOAD;
}

int loader_raw(struct loader *lc)
{
    const struct vmcore_config *cfg = lc->cfg;
    enum boot_mode mode = cfg->boot.mode;
    uint64_t load = loader_raw_load_address(cfg);
    uint64_t entry = cfg->boot.has_entry ? cfg->boot.entry : load;
    if (lc->image_size == 0)
        return loader_fail(lc, "empty image");
    int rc = loader_copy(lc, load, lc->image, lc->image_size, "the raw image");
    if (rc)
        return rc;
    lc->image_end = load + lc->image_size;
    if (entry < load || entry >= lc->image_end)
        return err_config(lc->err, VMCORE_ECONFIG, "boot.entry",
                          "0x%llx is outside the image loaded at 0x%llx..0x%llx",
                          (unsigned long long)entry, (unsigned long long)load,
                          (unsigned long long)lc->image_end);
    switch (mode) {
    case BOOT_MODE_REAL:
        if (entry >= REAL_MODE_LIMIT)
            return err_config(lc->err, VMCORE_ECONFIG, "boot.entry",
                              "0x%llx is not reachable in real mode (below 1 MiB)",
                              (unsigned long long)entry);
        x86_boot_real(lc->bs, entry);
        return 0;
    case BOOT_MODE_LONG:
        return x86_boot_long(lc, entry);
    default:
        return x86_boot_protected(lc, entry);
    }
}
