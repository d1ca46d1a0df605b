/* boot.format "multiboot": Multiboot v1 as GRUB legacy and QEMU's -kernel load it. The
 * image is placed by its header's address fields (flag 16, the "a.out kludge") or else
 * by its ELF32 program headers; the kernel starts in flat 32-bit protected mode with
 * EAX=0x2BADB002 and EBX pointing at the multiboot information (memory, map, command
 * line, and boot.initrd as the one module). */
#include <string.h>

#include "loader.h"

#define MB_MAGIC 0x1badb002u
#define MB_BOOT_MAGIC 0x2badb002u
#define MB_SEARCH 8192
#define MB_FLAG_PAGE_ALIGN (1u << 0)
#define MB_FLAG_MEMINFO (1u << 1)
#define MB_FLAG_VIDEO (1u << 2)
#define MB_FLAG_AOUT_KLUDGE (1u << 16)

#define MBI_MEM (1u << 0)
#define MBI_CMDLINE (1u << 2)
#define MBI_MODS (1u << 3)
#define MBI_MMAP (1u << 6)
#define MBI_LOADER_NAME (1u << 9)

/* Offsets inside the info page at BOOT_MBINFO_ADDR. */
#define MBI_INFO 0x000
#define MBI_MMAP_OFF 0x080
#define MBI_MODS_OFF 0x100
#define MBI_NAME_OFF 0x120
#define MBI_MODSTR_OFF 0x140
#define MBI_PAGE 0x1000


int multiboot_find(const uint8_t *image, size_t size, size_t *off)
{
    for (size_t o = 0; o + 12 <= size && o < MB_SEARCH; o += 4) {
        uint32_t magic = le32(image + o);
        if (magic != MB_MAGIC)
            continue;
        *off = o;
        return (uint32_t)(magic + le32(image + o + 4) + le32(image + o + 8)) == 0 ? 1 : -1;
    }
    return 0;
}

static int find_header(struct loader *lc, size_t *off)
{
    switch (multiboot_find(lc->image, lc->image_size, off)) {
    case 1:
        return 0;
    case -1:
        return loader_fail(lc, "multiboot header at offset 0x%zx has a bad checksum", *off);
    default:
        return loader_fail(lc, "no multiboot header in the first %d bytes", MB_SEARCH);
    }
}

static int load_kludge(struct loader *lc, size_t hoff, uint64_t *entry)
{
    if (hoff + 32 > lc->image_size)
        return loader_fail(lc, "truncated multiboot header (address fields missing)");
    const uint8_t *h = lc->image + hoff;
    uint32_t header_addr = le32(h + 12), load_addr = le32(h + 16);
    uint32_t load_end = le32(h + 20), bss_end = le32(h + 24), entry_addr = le32(h + 28);
    if (header_addr < load_addr || header_addr - load_addr > hoff)
        return loader_fail(lc, "multiboot header_addr 0x%x and load_addr 0x%x do not match "
                           "the header's file offset 0x%zx", header_addr, load_addr, hoff);
    size_t file_off = hoff - (header_addr - load_addr);
    uint64_t load_size = load_end ? (uint64_t)load_end - load_addr
                                  : (uint64_t)(lc->image_size - file_off);
    if (load_end && load_end < load_addr)
        return loader_fail(lc, "multiboot load_end_addr 0x%x is below load_addr 0x%x", load_end,
                           load_addr);
    if (load_size > lc->image_size - file_off)
        return loader_fail(lc, "truncated: multiboot header asks for 0x%llx bytes from file "
                           "offset 0x%zx, the file has %zu", (unsigned long long)load_size,
                           file_off, lc->image_size);
    uint64_t end = load_addr + load_size;
    if (bss_end) {
        if (bss_end < end)
            return loader_fail(lc, "multiboot bss_end_addr 0x%x is below the loaded end 0x%llx",
                               bss_end, (unsigned long long)end);
        end = bss_end;
    }
    int rc = loader_claim(lc, load_addr, end - load_addr, "the multiboot kernel");
    if (rc)
        return rc;
    memcpy(lc->ram + load_addr, lc->image + file_off, load_size);
    lc->image_end = end;
    if (entry_addr < load_addr || entry_addr >= end)
        return loader_fail(lc, "multiboot entry_addr 0x%x is outside the image 0x%x..0x%llx",
                           entry_addr, load_addr, (unsigned long long)end);
    *entry = entry_addr;
    return 0;
}

static int write_info(struct loader *lc)
{
    int rc = loader_claim(lc, BOOT_MBINFO_ADDR, MBI_PAGE, "the multiboot information");
    if (rc)
        return rc;
    uint64_t cmdline;
    if ((rc = loader_cmdline(lc, lc->cfg->boot.cmdline, &cmdline)))
        return rc;
    uint64_t initrd, initrd_size;
    if ((rc = loader_initrd(lc, lc->ram_size, &initrd, &initrd_size)))
        return rc;

    uint8_t *page = lc->ram + BOOT_MBINFO_ADDR, *info = page + MBI_INFO;
    memset(page, 0, MBI_PAGE);
    uint32_t flags = MBI_MEM | MBI_CMDLINE | MBI_MMAP | MBI_LOADER_NAME;
    put_le32(info + 4, 639);  /* mem_lower, KiB */
    uint64_t upper = lc->ram_size > BOOT_HIGHMEM_START ? (lc->ram_size - BOOT_HIGHMEM_START) >> 10 : 0;
    put_le32(info + 8, (uint32_t)upper);
    put_le32(info + 16, (uint32_t)cmdline);

    struct e820_entry map[4];
    unsigned n = loader_e820(lc->ram_size, map, 4);
    for (unsigned i = 0; i < n; i++) {
        uint8_t *e = page + MBI_MMAP_OFF + i * 24;
        put_le32(e, 20); /* size of the rest of the entry */
        put_le64(e + 4, map[i].addr);
        put_le64(e + 12, map[i].size);
        put_le32(e + 20, map[i].type);
    }
    put_le32(info + 44, n * 24);
    put_le32(info + 48, BOOT_MBINFO_ADDR + MBI_MMAP_OFF);

    static const char name[] = "libvmcore";
    memcpy(page + MBI_NAME_OFF, name, sizeof name);
    put_le32(info + 64, BOOT_MBINFO_ADDR + MBI_NAME_OFF);

    if (initrd_size) {
        static const char modname[] = "initrd";
        memcpy(page + MBI_MODSTR_OFF, modname, sizeof modname);
        uint8_t *mod = page + MBI_MODS_OFF;
        put_le32(mod, (uint32_t)initrd);
        put_le32(mod + 4, (uint32_t)(initrd + initrd_size));
        put_le32(mod + 8, BOOT_MBINFO_ADDR + MBI_MODSTR_OFF);
        put_le32(info + 20, 1);
        put_le32(info + 24, BOOT_MBINFO_ADDR + MBI_MODS_OFF);
        flags |= MBI_MODS;
    }
    put_le32(info, flags);
    return 0;
}

int loader_multiboot(struct loader *lc)
{
    size_t hoff = 0;
    int rc = find_header(lc, &hoff);
    if (rc)
        return rc;
    uint32_t flags = le32(lc->image + hoff + 4);
    uint32_t unknown = flags & 0xfff8u;
    if (unknown)
        return loader_fail(lc, "multiboot header requires features this loader lacks "
                           "(flags 0x%x)", unknown);
    if ((rc = loader_reserve_bios(lc)))
        return rc;
    uint64_t entry = 0;
    if (flags & MB_FLAG_AOUT_KLUDGE) {
        rc = load_kludge(lc, hoff, &entry);
    } else {
        bool is64;
        rc = loader_elf_segments(lc, &entry, &is64);
        if (rc == 0 && is64)
            rc = loader_fail(lc, "multiboot v1 kernels are 32-bit; this is an ELF64 file "
                             "(use boot.format \"elf\")");
    }
    if (rc || (rc = write_info(lc)) || (rc = x86_boot_protected(lc, entry)))
        return rc;
    lc->bs->gpr[X86_RAX] = MB_BOOT_MAGIC;
    lc->bs->gpr[X86_RBX] = BOOT_MBINFO_ADDR + MBI_INFO;
    return 0;
}
