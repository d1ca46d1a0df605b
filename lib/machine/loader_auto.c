/* boot.format "auto": look at the file. A bzImage carries "HdrS" in its setup header; a
 * multiboot kernel carries its magic in the first 8 KiB (checked before ELF, since most
 * multiboot kernels are ELF files too); then ELF; anything else is a raw binary.
 * The multiboot magic with a bad checksum makes a bad multiboot image, not raw code:
 * running a broken kernel's bytes as a flat binary would only crash somewhere obscure. */
#include <string.h>

#include "loader.h"


enum boot_format loader_detect(const uint8_t *image, size_t size)
{
    if (size >= 0x206 && memcmp(image + 0x202, "HdrS", 4) == 0 && image[0x1fe] == 0x55 &&
        image[0x1ff] == 0xaa)
        return BOOT_FORMAT_LINUX;
    size_t off;
    if (multiboot_find(image, size, &off) != 0)
        return BOOT_FORMAT_MULTIBOOT;
    if (size >= 4 && memcmp(image, "\177ELF", 4) == 0)
        return BOOT_FORMAT_ELF;
    return BOOT_FORMAT_RAW;
}

int loader_auto(struct loader *lc)
{
    switch (loader_detect(lc->image, lc->image_size)) {
    case BOOT_FORMAT_LINUX: return loader_linux(lc);
    case BOOT_FORMAT_MULTIBOOT: {
        size_t off;
        if (multiboot_find(lc->image, lc->image_size, &off) < 0)
            return loader_fail(lc, "bad multiboot image: the header at offset 0x%zx has a bad "
                               "checksum (boot.format \"auto\" found the multiboot magic; "
                               "set boot.format to load the file another way)", off);
        return loader_multiboot(lc);
    }
    case BOOT_FORMAT_ELF: return loader_elf(lc);
    default: return loader_raw(lc);
    }
}
