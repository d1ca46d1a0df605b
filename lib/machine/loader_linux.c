/* boot.format "linux": the x86 Linux boot protocol (Documentation/arch/x86/boot.rst) with
 * the 64-bit direct entry that Firecracker and kvmtool use: the protected-mode kernel of a
 * bzImage goes to 1 MiB, a zero page (struct boot_params) carries the setup header, the
 * e820 map, the command line and initrd addresses and the ACPI RSDP (the CPUs, the
 * IOAPIC and the devices are in the ACPI tables, acpi.c), and the boot vCPU starts in long mode at load address + 0x200 with RSI pointing at the
 * zero page. */
#include <string.h>

#include "loader.h"

/* Offsets in boot_params / the setup header. */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_SETUP_SECTS 0x1f1
#define BP_BOOT_FLAG 0x1fe
#define BP_JUMP 0x200
#define BP_HEADER 0x202
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_HEAP_END_PTR 0x224
#define BP_CMD_LINE_PTR 0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_XLOADFLAGS 0x236
#define BP_CMDLINE_SIZE 0x238
#define BP_INIT_SIZE 0x260
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
#define BP_SIZE 0x1000

#define LOADFLAGS_LOADED_HIGH 0x01
#define LOADFLAGS_CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01
#define LINUX_MIN_VERSION 0x020c /* 2.12: xloadflags, the 64-bit entry */
#define LINUX_KERNEL_ADDR 0x100000
#define LINUX_ENTRY64_OFFSET 0x200


int loader_linux(struct loader *lc)
{
    const uint8_t *img = lc->image;
    size_t size = lc->image_size;
    if (size < 0x264 || le16(img + BP_BOOT_FLAG) != 0xaa55 ||
        memcmp(img + BP_HEADER, "HdrS", 4) != 0)
        return loader_fail(lc, "not a bzImage (no \"HdrS\" setup header at 0x202)");
    uint16_t version = le16(img + BP_VERSION);
    if (version < LINUX_MIN_VERSION)
        return loader_fail(lc, "boot protocol %u.%u is too old (64-bit entry needs 2.12)",
                           version >> 8, version & 0xff);
    if (!(img[BP_LOADFLAGS] & LOADFLAGS_LOADED_HIGH))
        return loader_fail(lc, "a zImage (not loaded high) is not supported");
    if (!(le16(img + BP_XLOADFLAGS) & XLF_KERNEL_64))
        return loader_fail(lc, "kernel has no 64-bit entry point (XLF_KERNEL_64 clear)");
    unsigned setup_sects = img[BP_SETUP_SECTS] ? img[BP_SETUP_SECTS] : 4;
    size_t setup_size = (size_t)(setup_sects + 1) * 512;
    if (setup_size >= size)
        return loader_fail(lc, "truncated: %u setup sectors but the file has %zu bytes",
                           setup_sects, size);
    size_t kernel_size = size - setup_size;
    uint64_t init_size = le32(img + BP_INIT_SIZE);
    uint64_t footprint = init_size > kernel_size ? init_size : kernel_size;

    int rc = loader_reserve_bios(lc);
    if (rc || (rc = loader_claim(lc, LINUX_KERNEL_ADDR, footprint,
                                 "the kernel (with its init_size)")))
        return rc;
    memcpy(lc->ram + LINUX_KERNEL_ADDR, img + setup_size, kernel_size);
    lc->image_end = LINUX_KERNEL_ADDR + footprint;

    if ((rc = loader_claim(lc, BOOT_ZEROPAGE_ADDR, BP_SIZE, "the zero page")))
        return rc;
    uint8_t *bp = lc->ram + BOOT_ZEROPAGE_ADDR;
    memset(bp, 0, BP_SIZE);
    /* The setup header runs from 0x1f1 to the end the jump at 0x200 points to. */
    size_t hdr_end = 0x202 + img[BP_JUMP + 1];
    if (hdr_end > size || hdr_end > BP_E820_TABLE)
        return loader_fail(lc, "setup header length 0x%zx is invalid", hdr_end - BP_SETUP_SECTS);
    memcpy(bp + BP_SETUP_SECTS, img + BP_SETUP_SECTS, hdr_end - BP_SETUP_SECTS);
    bp[BP_TYPE_OF_LOADER] = 0xff; /* undefined boot loader */
    bp[BP_LOADFLAGS] |= LOADFLAGS_CAN_USE_HEAP;
    put_le16(bp + BP_HEAP_END_PTR, 0xfe00);

    const char *cmdline = lc->cfg->boot.cmdline ? lc->cfg->boot.cmdline : "";
    uint32_t cmdline_size = le32(img + BP_CMDLINE_SIZE);
    if (strlen(cmdline) > cmdline_size)
        return err_config(lc->err, VMCORE_ECONFIG, "boot.cmdline",
                          "%zu bytes, this kernel accepts at most %u", strlen(cmdline),
                          cmdline_size);
    uint64_t cmdline_gpa;
    if ((rc = loader_cmdline(lc, cmdline, &cmdline_gpa)))
        return rc;
    put_le32(bp + BP_CMD_LINE_PTR, (uint32_t)cmdline_gpa);
    put_le32(bp + BP_EXT_CMD_LINE_PTR, 0);

    uint64_t initrd, initrd_size, initrd_max = le32(img + BP_INITRD_ADDR_MAX);
    if ((rc = loader_initrd(lc, initrd_max + 1, &initrd, &initrd_size)))
        return rc;
    put_le32(bp + BP_RAMDISK_IMAGE, (uint32_t)initrd);
    put_le32(bp + BP_RAMDISK_SIZE, (uint32_t)initrd_size);
    put_le32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd >> 32));
    put_le32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(initrd_size >> 32));

    struct e820_entry map[BP_E820_MAX];
    unsigned n = loader_e820(lc->ram_size, map, BP_E820_MAX);
    memcpy(bp + BP_E820_TABLE, map, n * sizeof map[0]);
    bp[BP_E820_ENTRIES] = (uint8_t)n;

    /* Kernels since boot protocol 2.14 take the RSDP from here instead of scanning the
     * BIOS area for it (older ones find it there, at the same address). */
    put_le64(bp + BP_ACPI_RSDP_ADDR, BOOT_ACPI_RSDP_ADDR);
    if ((rc = x86_boot_long(lc, LINUX_KERNEL_ADDR + LINUX_ENTRY64_OFFSET)))
        return rc;
    lc->bs->gpr[X86_RSI] = BOOT_ZEROPAGE_ADDR;
    return 0;
}
