/* Boot loaders: each reads an image into guest RAM and leaves the boot vCPU's state.
 * They work on plain (ram, size) so tests can drive them without a machine.
 *
 * Guest-physical layout the loaders share (all below the 640 KiB mark):
 *   0x00500  boot GDT                     0x07000  Linux zero page (boot_params)
 *   0x01000  multiboot info + mmap + mods 0x09000  PML4, 0x0a000 PDPT, 0x0b000.. 4 PDs
 *   0x20000  command line (4 KiB)         0x80000  initial stack top (raw, elf)
 *   0x9fc00  .. 0x100000  reserved (EBDA, VGA, BIOS) for every format but raw; the ACPI
 *            tables (acpi.c) at 0xe0000.. */
#ifndef VMCORE_MACHINE_LOADER_H
#define VMCORE_MACHINE_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "machine.h"
#include "platform.h"

#define BOOT_GDT_ADDR 0x500
#define BOOT_MBINFO_ADDR 0x1000
#define BOOT_ZEROPAGE_ADDR 0x7000
#define BOOT_PML4_ADDR 0x9000
#define BOOT_PDPT_ADDR 0xa000
#define BOOT_PD_ADDR 0xb000
#define BOOT_PAGETABLES_END 0xf000
#define BOOT_CMDLINE_ADDR 0x20000
#define BOOT_CMDLINE_MAX 4096
#define BOOT_STACK_TOP 0x80000
#define BOOT_LOWMEM_END 0x9fc00
#define BOOT_HIGHMEM_START 0x100000
/* Where acpi_build() puts the RSDP (the start of the ACPI area); loader_linux passes it
 * in boot_params.acpi_rsdp_addr, written before the tables themselves. */
#define BOOT_ACPI_RSDP_ADDR PLAT_ACPI_BASE

/* Selectors of the boot GDT: Linux's 64-bit protocol wants __BOOT_CS=0x10, __BOOT_DS=0x18;
 * multiboot wants a flat 32-bit CS; user selectors serve CPL3 guests. */
#define BOOT_SEL_CODE32 0x08
#define BOOT_SEL_CODE64 0x10
#define BOOT_SEL_DATA 0x18
#define BOOT_SEL_USER_DATA 0x23
#define BOOT_SEL_USER_CODE64 0x2b
#define BOOT_SEL_USER_CODE32 0x33

#define LOADER_MAX_REGIONS 16

/* One loader run: the image file, guest RAM, and the ranges placed so far (for overlap
 * checks and for the e820 map). */
struct loader {
    uint8_t *ram;
    uint64_t ram_size;
    const struct vmcore_config *cfg;
    const char *path;           /* image being loaded, for messages */
    const char *field;          /* the config key that named it ("boot.kernel"): the
                                 * JSON path of every error about the image */
    const uint8_t *image;
    size_t image_size;
    struct x86_boot_state *bs;
    struct vmcore_err *err;
    struct { uint64_t base, len; const char *what; } region[LOADER_MAX_REGIONS];
    unsigned nregions;
    uint64_t image_end;         /* highest guest address the kernel image uses */
};

/* Read the image per cfg->boot.format into @ram and fill @bs. VMCORE_EIMAGE for bad images,
 * VMCORE_ENOENT/VMCORE_EIO if the file cannot be read, VMCORE_ELIMIT if it does not fit. */
int loader_load(uint8_t *ram, uint64_t ram_size, const struct vmcore_config *cfg,
                struct x86_boot_state *bs, struct vmcore_err *err);

/* The same on an image already in memory (@size bytes; cfg->boot.kernel only names it in
 * messages): what the fuzz targets of tests/fuzz/ drive. */
int loader_load_image(uint8_t *ram, uint64_t ram_size, const struct vmcore_config *cfg,
                      const uint8_t *image, size_t size, struct x86_boot_state *bs,
                      struct vmcore_err *err);

/* The formats; each sees the whole file in lc->image. */
int loader_raw(struct loader *lc);
int loader_elf(struct loader *lc);
int loader_multiboot(struct loader *lc);
int loader_linux(struct loader *lc);
/* Place an ELF32/ELF64 executable's PT_LOAD segments at their physical addresses; give
 * the physical entry point and whether it is a 64-bit image. Shared by elf and multiboot. */
int loader_elf_segments(struct loader *lc, uint64_t *entry, bool *is64);
/* Find a multiboot v1 header in the first 8 KiB: 1 with a valid checksum at *off, -1 for
 * the magic with a bad checksum at *off, 0 for none. */
int multiboot_find(const uint8_t *image, size_t size, size_t *off);
/* Detect the format from the file's bytes and run that loader. */
int loader_auto(struct loader *lc);
/* What loader_auto would pick for these bytes (multiboot also for the magic with a bad
 * checksum, which loader_auto then rejects as a bad multiboot image). */
enum boot_format loader_detect(const uint8_t *image, size_t size);

/* Claim [base, base+len) of guest RAM for @what: fails (VMCORE_EIMAGE, message naming the
 * file) when it leaves RAM or overlaps something placed before. */
int loader_claim(struct loader *lc, uint64_t base, uint64_t len, const char *what);
/* Claim the legacy hole [BOOT_LOWMEM_END, 1 MiB) so that no kernel lands in it. */
int loader_reserve_bios(struct loader *lc);
/* Claim and copy. */
int loader_copy(struct loader *lc, uint64_t gpa, const void *src, size_t len, const char *what);
/* Read a whole file (at most @max bytes) into a malloc'd buffer. Errors are configuration
 * errors at @field (the key that named the file): a missing file, one that is not a regular
 * file, or one whose size stat() cannot tell (st_size 0 but readable content or a read
 * error, as /proc files). */
int loader_read_file(const char *path, const char *field, size_t max, uint8_t **out,
                     size_t *size, struct vmcore_err *err);
/* The e820 map of RAM: fills up to @max entries, returns how many. Types are e820's
 * (1 RAM, 2 reserved). */
struct e820_entry { uint64_t addr, size; uint32_t type; } __attribute__((packed));
unsigned loader_e820(uint64_t ram_size, struct e820_entry *out, unsigned max);
/* Put @cmdline (may be NULL) at BOOT_CMDLINE_ADDR; returns its address. */
int loader_cmdline(struct loader *lc, const char *cmdline, uint64_t *gpa);
/* Load cfg->boot.initrd page-aligned as high as possible below @limit. */
int loader_initrd(struct loader *lc, uint64_t limit, uint64_t *gpa, uint64_t *size);

/* Where boot.format "raw" loads the image: boot.load_address, else 0x7c00 in real mode
 * and 1 MiB otherwise. */
uint64_t loader_raw_load_address(const struct vmcore_config *cfg);

/* Little-endian fields of boot structures (the host is x86 too; memcpy keeps them
 * alignment-safe). */
static inline uint16_t le16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline void put_le16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void put_le32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put_le64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* CPU state builders (x86_boot.c). */
void x86_boot_real(struct x86_boot_state *bs, uint64_t entry);
int x86_boot_protected(struct loader *lc, uint64_t entry);
int x86_boot_long(struct loader *lc, uint64_t entry);
/* A loader's failure: VMCORE_EIMAGE at JSON path lc->field, "<field>: <path>: <text>". */
int loader_fail(struct loader *lc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
