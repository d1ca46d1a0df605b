/* Boot loaders (lib/machine/loader*.c) driven directly on a RAM buffer: what each format
 * leaves in guest memory and in the boot vCPU state, and how each rejects bad images
 * (hand-made truncated, overlapping, oversized and malformed files). */
#include "vt.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/config.h"
#include "machine/loader.h"

#define RAM_MIB 16
#define RAM_SIZE ((uint64_t)RAM_MIB << 20)

struct fixture {
    uint8_t *ram;
    struct vmcore_config cfg;
    struct x86_boot_state bs;
    struct vmcore_err err;
    char path[64], initrd[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(f->ram != MAP_FAILED);
    snprintf(f->path, sizeof f->path, "/tmp/vmcore-loader-XXXXXX");
    int fd = mkstemp(f->path);
    assert_true(fd >= 0);
    close(fd);
    f->cfg.memory_mib = RAM_MIB;
    f->cfg.vcpus = 1;
    f->cfg.boot.kernel = f->path;
    f->cfg.boot.mode = BOOT_MODE_PROTECTED;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unlink(f->path);
    if (f->initrd[0])
        unlink(f->initrd);
    munmap(f->ram, RAM_SIZE);
    free(f);
    return 0;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

static int load(struct fixture *f, enum boot_format fmt, const void *img, size_t len)
{
    write_file(f->path, img, len);
    f->cfg.boot.format = fmt;
    memset(f->ram, 0, RAM_SIZE);
    memset(&f->err, 0, sizeof f->err);
    return loader_load(f->ram, RAM_SIZE, &f->cfg, &f->bs, &f->err);
}

static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

#define assert_err(f, want, needle) do { \
        assert_int_equal((f)->err.code, want); \
        if (!strstr((f)->err.msg, needle)) \
            fail_msg("message \"%s\" lacks \"%s\"", (f)->err.msg, needle); \
    } while (0)

/* ---------------------------------------------------------------- raw */

static void test_raw_protected(void **state)
{
    struct fixture *f = *state;
    static const uint8_t code[] = { 0xb0, 0x00, 0xe6, 0xf4 };
    assert_int_equal(load(f, BOOT_FORMAT_RAW, code, sizeof code), 0);
    assert_memory_equal(f->ram + 0x100000, code, sizeof code);
    assert_int_equal(f->bs.rip, 0x100000);
    assert_int_equal(f->bs.cs.selector, BOOT_SEL_CODE32);
    assert_int_equal(f->bs.ss.selector, BOOT_SEL_DATA);
    assert_int_equal(f->bs.cs.limit, 0xffffffffu);
    assert_int_equal(f->bs.cr0 & 0x80000001u, 1); /* PE, no paging */
    assert_int_equal(f->bs.gdt.base, BOOT_GDT_ADDR);
    /* The GDT's code32 descriptor: flat, present, execute/read, 32-bit, 4 KiB pages. */
    assert_int_equal(rd64(f->ram + BOOT_GDT_ADDR + 8), 0x00cf9b000000ffffull);
    assert_int_equal(rd64(f->ram + BOOT_GDT_ADDR + 0x10), 0x00af9b000000ffffull);
    assert_int_equal(rd64(f->ram + BOOT_GDT_ADDR + 0x18), 0x00cf93000000ffffull);
}

static void test_raw_real(void **state)
{
    struct fixture *f = *state;
    static const uint8_t code[64] = { 0xf4 };
    f->cfg.boot.mode = BOOT_MODE_REAL;
    assert_int_equal(load(f, BOOT_FORMAT_RAW, code, sizeof code), 0);
    assert_int_equal(f->bs.cs.selector, 0);
    assert_int_equal(f->bs.rip, 0x7c00);
    assert_int_equal(f->bs.cr0 & 1, 0);
    f->cfg.boot.has_load_address = true;
    f->cfg.boot.load_address = 0x12340;
    f->cfg.boot.has_entry = true;
    f->cfg.boot.entry = 0x12345;
    assert_int_equal(load(f, BOOT_FORMAT_RAW, code, sizeof code), 0);
    assert_int_equal(f->bs.cs.selector, 0x1000);
    assert_int_equal(f->bs.cs.base, 0x10000);
    assert_int_equal(f->bs.rip, 0x2345);
    f->cfg.boot.load_address = 0x100000;
    f->cfg.boot.entry = 0x100000;
    assert_int_equal(load(f, BOOT_FORMAT_RAW, code, sizeof code), VMCORE_ECONFIG);
    assert_err(f, VMCORE_ECONFIG, "real mode");
    assert_string_equal(f->err.path, "boot.entry");
}

static void test_raw_long_page_tables(void **state)
{
    struct fixture *f = *state;
    static const uint8_t code[16] = { 0xf4 };
    f->cfg.boot.mode = BOOT_MODE_LONG;
    assert_int_equal(load(f, BOOT_FORMAT_RAW, code, sizeof code), 0);
    assert_int_equal(f->bs.cr3, BOOT_PML4_ADDR);
    assert_int_equal(f->bs.efer & 0x500, 0x500);
    assert_int_equal(f->bs.cr4 & 0x20, 0x20);
    assert_true(f->bs.cr0 & 0x80000000u);
    assert_int_equal(f->bs.cs.selector, BOOT_SEL_CODE64);
    assert_int_equal(rd64(f->ram + BOOT_PML4_ADDR) & ~0xfffull, BOOT_PDPT_ADDR);
    for (uint64_t gb = 0; gb < 4; gb++) {
        uint64_t pdpte = rd64(f->ram + BOOT_PDPT_ADDR + gb * 8);
        assert_int_equal(pdpte & ~0xfffull, BOOT_PD_ADDR + gb * 0x1000);
        /* 2 MiB identity pages: entry j of PD gb maps gb GiB + j * 2 MiB. */
        uint64_t pde = rd64(f->ram + (pdpte & ~0xfffull) + 511 * 8);
        assert_int_equal(pde & ~0xfffull, (gb << 30) + (511ull << 21));
        assert_int_equal(pde & 0x87, 0x87);
    }
}

static void test_raw_bad(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load(f, BOOT_FORMAT_RAW, "", 0), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "empty image");
    assert_non_null(strstr(f->err.msg, f->path));

    /* Loaded so high that it runs past the end of RAM. */
    static uint8_t big[8192];
    f->cfg.boot.has_load_address = true;
    f->cfg.boot.load_address = RAM_SIZE - 4096;
    assert_int_equal(load(f, BOOT_FORMAT_RAW, big, sizeof big), VMCORE_ELIMIT);
    assert_err(f, VMCORE_ELIMIT, "does not fit");

    /* Over the long-mode page tables. */
    f->cfg.boot.mode = BOOT_MODE_LONG;
    f->cfg.boot.load_address = 0xa000;
    assert_int_equal(load(f, BOOT_FORMAT_RAW, big, sizeof big), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "the identity page tables at 0x9000..0xf000 overlaps the raw "
                                 "image at 0xa000..0xc000");

    /* Entry outside the image. */
    f->cfg.boot.mode = BOOT_MODE_PROTECTED;
    f->cfg.boot.load_address = 0x200000;
    f->cfg.boot.has_entry = true;
    f->cfg.boot.entry = 0x100000;
    assert_int_equal(load(f, BOOT_FORMAT_RAW, big, sizeof big), VMCORE_ECONFIG);
    assert_string_equal(f->err.path, "boot.entry");
}

static void test_file_errors(void **state)
{
    struct fixture *f = *state;
    f->cfg.boot.kernel = "/nonexistent/vmcore-kernel";
    f->cfg.boot.format = BOOT_FORMAT_RAW;
    assert_int_equal(loader_load(f->ram, RAM_SIZE, &f->cfg, &f->bs, &f->err), VMCORE_ENOENT);
    assert_err(f, VMCORE_ENOENT, "boot.kernel: cannot open /nonexistent/vmcore-kernel");
    f->cfg.boot.kernel = "/tmp";
    assert_int_equal(loader_load(f->ram, RAM_SIZE, &f->cfg, &f->bs, &f->err), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "not a regular file");
    assert_string_equal(f->err.path, "boot.kernel");
    /* A regular file whose size stat() does not tell (0 bytes): not an "empty image". */
    f->cfg.boot.kernel = "/proc/self/mem";
    assert_int_equal(loader_load(f->ram, RAM_SIZE, &f->cfg, &f->bs, &f->err), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "boot.kernel: /proc/self/mem cannot be sized");
    assert_string_equal(f->err.path, "boot.kernel");
    assert_null(strstr(f->err.msg, "empty"));
    f->cfg.boot.kernel = "/proc/self/status"; /* readable, but 0 bytes to stat() */
    assert_int_equal(loader_load(f->ram, RAM_SIZE, &f->cfg, &f->bs, &f->err), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "cannot be sized");
    f->cfg.boot.kernel = "/nonexistent/vmcore-kernel";
    assert_int_equal(loader_load(f->ram, RAM_SIZE, &f->cfg, &f->bs, &f->err), VMCORE_ENOENT);
    assert_string_equal(f->err.path, "boot.kernel");
    /* Larger than guest RAM. */
    f->cfg.boot.kernel = f->path;
    size_t n = RAM_SIZE + 1;
    uint8_t *huge = calloc(1, n);
    assert_int_equal(load(f, BOOT_FORMAT_RAW, huge, n), VMCORE_ELIMIT);
    free(huge);
    assert_err(f, VMCORE_ELIMIT, "larger than guest RAM");
    assert_string_equal(f->err.path, "boot.kernel");
}

/* Errors about the image carry the JSON path of the key that named it (doc/config.md), in
 * vmcore_err.path and at the start of the message, whatever the format. */
static void test_image_errors_name_the_field(void **state)
{
    struct fixture *f = *state;
    uint8_t img[512];
    memset(img, 0, sizeof img);
    static const enum boot_format fmts[] = { BOOT_FORMAT_ELF, BOOT_FORMAT_MULTIBOOT,
                                             BOOT_FORMAT_LINUX };
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        assert_int_equal(load(f, fmts[i], img, sizeof img), VMCORE_EIMAGE);
        assert_string_equal(f->err.path, "boot.kernel");
        assert_int_equal(strncmp(f->err.msg, "boot.kernel: ", 13), 0);
        assert_non_null(strstr(f->err.msg, f->path));
    }
    assert_int_equal(load(f, BOOT_FORMAT_RAW, "", 0), VMCORE_EIMAGE);
    assert_string_equal(f->err.path, "boot.kernel");
    /* Does not fit: still about boot.kernel. */
    static uint8_t big[8192];
    f->cfg.boot.has_load_address = true;
    f->cfg.boot.load_address = RAM_SIZE - 4096;
    assert_int_equal(load(f, BOOT_FORMAT_RAW, big, sizeof big), VMCORE_ELIMIT);
    assert_string_equal(f->err.path, "boot.kernel");
}

/* ---------------------------------------------------------------- elf */

struct elf32_img {
    Elf32_Ehdr eh;
    Elf32_Phdr ph[2];
    uint8_t code[16];
};

static void make_elf32(struct elf32_img *e)
{
    memset(e, 0, sizeof *e);
    memcpy(e->eh.e_ident, ELFMAG, SELFMAG);
    e->eh.e_ident[EI_CLASS] = ELFCLASS32;
    e->eh.e_ident[EI_DATA] = ELFDATA2LSB;
    e->eh.e_ident[EI_VERSION] = EV_CURRENT;
    e->eh.e_type = ET_EXEC;
    e->eh.e_machine = EM_386;
    e->eh.e_version = EV_CURRENT;
    e->eh.e_entry = 0xc0200004; /* virtual; the segment maps it at 2 MiB + 4 */
    e->eh.e_phoff = offsetof(struct elf32_img, ph);
    e->eh.e_ehsize = sizeof(Elf32_Ehdr);
    e->eh.e_phentsize = sizeof(Elf32_Phdr);
    e->eh.e_phnum = 2;
    e->ph[0] = (Elf32_Phdr){ .p_type = PT_LOAD, .p_offset = offsetof(struct elf32_img, code),
                             .p_vaddr = 0xc0200000, .p_paddr = 0x200000, .p_filesz = 16,
                             .p_memsz = 0x2000, .p_flags = PF_R | PF_X };
    e->ph[1] = (Elf32_Phdr){ .p_type = PT_NOTE };
    memset(e->code, 0x90, sizeof e->code);
}

static void test_elf32(void **state)
{
    struct fixture *f = *state;
    struct elf32_img e;
    make_elf32(&e);
    assert_int_equal(load(f, BOOT_FORMAT_ELF, &e, sizeof e), 0);
    assert_int_equal(f->bs.rip, 0x200004);
    assert_int_equal(f->bs.cs.selector, BOOT_SEL_CODE32);
    assert_memory_equal(f->ram + 0x200000, e.code, 16);
    assert_int_equal(f->ram[0x200010], 0); /* bss */
    assert_int_equal(loader_detect((const uint8_t *)&e, sizeof e), BOOT_FORMAT_ELF);
}

static void test_elf_bad(void **state)
{
    struct fixture *f = *state;
    struct elf32_img e;

    assert_int_equal(load(f, BOOT_FORMAT_ELF, "#!/bin/sh\n", 10), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "bad magic");

    make_elf32(&e);
    assert_int_equal(load(f, BOOT_FORMAT_ELF, &e, 30), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "truncated ELF header");

    make_elf32(&e);
    assert_int_equal(load(f, BOOT_FORMAT_ELF, &e, sizeof e.eh + 8), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "program headers end beyond the file");

    make_elf32(&e);
    e.ph[0].p_filesz = 4096;
    assert_int_equal(load(f, BOOT_FORMAT_ELF, &e, sizeof e), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "truncated: segment 0");

    make_elf32(&e);
    e.ph[0].p_memsz = 8;
    assert_int_equal(load(f, BOOT_FORMAT_ELF, &e, sizeof e), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "exceeds memory size");

    make_elf32(&e);
    e.eh.e_machine = EM_ARM;
    assert_int_equal(load(f, BOOT_FORMAT_ELF, &e, sizeof e), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "is not i386");

    make_elf32(&e);
    e.eh.e_entry = 0x1234;
    assert_int_equal(load(f, BOOT_FORMAT_ELF, &e, sizeof e), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "not inside any loadable segment");

    make_elf32(&e);
    e.ph[0].p_type = PT_NULL;
    assert_int_equal(load(f, BOOT_FORMAT_ELF, &e, sizeof e), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "no loadable segments");

    make_elf32(&e); /* into the BIOS hole */
    e.ph[0].p_paddr = 0xa0000;
    assert_int_equal(load(f, BOOT_FORMAT_ELF, &e, sizeof e), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "overlaps the reserved BIOS area");

    make_elf32(&e); /* two segments on top of each other */
    e.ph[1] = e.ph[0];
    e.ph[1].p_paddr += 0x1000;
    assert_int_equal(load(f, BOOT_FORMAT_ELF, &e, sizeof e), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "overlaps an ELF segment");

    make_elf32(&e); /* beyond RAM */
    e.ph[0].p_paddr = RAM_SIZE - 0x1000;
    assert_int_equal(load(f, BOOT_FORMAT_ELF, &e, sizeof e), VMCORE_ELIMIT);
    assert_err(f, VMCORE_ELIMIT, "does not fit");
}

static void test_elf64_guest(void **state)
{
    struct fixture *f = *state;
    f->cfg.boot.kernel = (char *)vt_guest("long.elf");
    f->cfg.boot.format = BOOT_FORMAT_ELF;
    assert_int_equal(loader_load(f->ram, RAM_SIZE, &f->cfg, &f->bs, &f->err), 0);
    assert_int_equal(f->bs.rip, 0x100000);
    assert_int_equal(f->bs.cs.selector, BOOT_SEL_CODE64);
    assert_int_equal(f->bs.efer & 0x500, 0x500);
}

/* ---------------------------------------------------------------- multiboot */

static void make_mb_kludge(uint8_t *img, size_t len, uint32_t flags)
{
    memset(img, 0x90, len);
    uint8_t *h = img + 64; /* the header 64 bytes into the file, which loads at 2 MiB */
    wr32(h, 0x1badb002);
    wr32(h + 4, flags);
    wr32(h + 8, (uint32_t)-(0x1badb002u + flags));
    wr32(h + 12, 0x200040);          /* header_addr */
    wr32(h + 16, 0x200000);          /* load_addr */
    wr32(h + 20, 0x200000 + (uint32_t)len); /* load_end_addr */
    wr32(h + 24, 0x210000);          /* bss_end_addr */
    wr32(h + 28, 0x200080);          /* entry_addr */
}

static void test_multiboot_kludge(void **state)
{
    struct fixture *f = *state;
    uint8_t img[512];
    make_mb_kludge(img, sizeof img, 0x10003);
    f->cfg.boot.cmdline = "console=ttyS0 answer=42";
    snprintf(f->initrd, sizeof f->initrd, "/tmp/vmcore-initrd-XXXXXX");
    int fd = mkstemp(f->initrd);
    assert_true(fd >= 0);
    close(fd);
    write_file(f->initrd, "INITRD-BYTES", 12);
    f->cfg.boot.initrd = f->initrd;
    assert_int_equal(load(f, BOOT_FORMAT_MULTIBOOT, img, sizeof img), 0);
    assert_int_equal(loader_detect(img, sizeof img), BOOT_FORMAT_MULTIBOOT);

    assert_int_equal(f->bs.gpr[X86_RAX], 0x2badb002);
    assert_int_equal(f->bs.rip, 0x200080);
    assert_int_equal(f->bs.cs.selector, BOOT_SEL_CODE32);
    assert_int_equal(f->bs.cr0 & 0x80000001u, 1);
    assert_memory_equal(f->ram + 0x200000, img, sizeof img);
    const uint8_t *info = f->ram + f->bs.gpr[X86_RBX];
    uint32_t flags = rd32(info);
    assert_int_equal(flags & 0x24d, 0x24d); /* mem, cmdline, mods, mmap, loader name */
    assert_int_equal(rd32(info + 4), 639);
    assert_int_equal(rd32(info + 8), (RAM_SIZE - 0x100000) >> 10);
    assert_string_equal((const char *)f->ram + rd32(info + 16), "console=ttyS0 answer=42");
    /* The module: the initrd, page-aligned, after the kernel's bss, inside RAM. */
    assert_int_equal(rd32(info + 20), 1);
    const uint8_t *mod = f->ram + rd32(info + 24);
    uint32_t start = rd32(mod), end = rd32(mod + 4);
    assert_int_equal(start & 0xfff, 0);
    assert_true(start >= 0x210000);
    assert_int_equal(end - start, 12);
    assert_memory_equal(f->ram + start, "INITRD-BYTES", 12);
    /* Memory map: low RAM, the BIOS hole, high RAM, the PCI ECAM window. */
    assert_int_equal(rd32(info + 44), 4 * 24);
    const uint8_t *mm = f->ram + rd32(info + 48);
    assert_int_equal(rd32(mm), 20);
    assert_int_equal(rd64(mm + 4), 0);
    assert_int_equal(rd64(mm + 12), 0x9fc00);
    assert_int_equal(rd32(mm + 20), 1);
    assert_int_equal(rd32(mm + 24 + 20), 2);
    assert_int_equal(rd64(mm + 48 + 4), 0x100000);
    assert_int_equal(rd64(mm + 48 + 12), RAM_SIZE - 0x100000);
    assert_int_equal(rd64(mm + 72 + 4), 0xe0000000u);
    assert_int_equal(rd32(mm + 72 + 20), 2);
}

static void test_multiboot_bad(void **state)
{
    struct fixture *f = *state;
    uint8_t img[512];

    memset(img, 0, sizeof img);
    assert_int_equal(load(f, BOOT_FORMAT_MULTIBOOT, img, sizeof img), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "no multiboot header");

    make_mb_kludge(img, sizeof img, 0x10003);
    wr32(img + 64 + 8, 0);
    assert_int_equal(load(f, BOOT_FORMAT_MULTIBOOT, img, sizeof img), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "bad checksum");
    /* "auto" must not run a broken multiboot kernel as raw code. */
    assert_int_equal(loader_detect(img, sizeof img), BOOT_FORMAT_MULTIBOOT);
    assert_int_equal(load(f, BOOT_FORMAT_AUTO, img, sizeof img), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "bad multiboot image");
    assert_string_equal(f->err.path, "boot.kernel");

    make_mb_kludge(img, sizeof img, 0x10003 | 0x100);
    assert_int_equal(load(f, BOOT_FORMAT_MULTIBOOT, img, sizeof img), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "requires features");

    make_mb_kludge(img, sizeof img, 0x10003); /* load_end beyond the file */
    wr32(img + 64 + 20, 0x200000 + 4096);
    assert_int_equal(load(f, BOOT_FORMAT_MULTIBOOT, img, sizeof img), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "truncated");

    make_mb_kludge(img, sizeof img, 0x10003); /* header_addr inconsistent with its offset */
    wr32(img + 64 + 12, 0x201000);
    assert_int_equal(load(f, BOOT_FORMAT_MULTIBOOT, img, sizeof img), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "do not match");

    make_mb_kludge(img, sizeof img, 0x10003);
    wr32(img + 64 + 28, 0x300000);
    assert_int_equal(load(f, BOOT_FORMAT_MULTIBOOT, img, sizeof img), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "entry_addr");

    make_mb_kludge(img, sizeof img, 0x10003); /* over the multiboot info page */
    wr32(img + 64 + 12, 0x1040);
    wr32(img + 64 + 16, 0x1000);
    wr32(img + 64 + 20, 0x1000 + sizeof img);
    wr32(img + 64 + 24, 0);
    wr32(img + 64 + 28, 0x1080);
    assert_int_equal(load(f, BOOT_FORMAT_MULTIBOOT, img, sizeof img), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "overlaps");

    make_mb_kludge(img, sizeof img, 0x00003); /* no kludge: must be ELF, is not */
    assert_int_equal(load(f, BOOT_FORMAT_MULTIBOOT, img, sizeof img), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "not an ELF file");
}

static void test_multiboot_guest_elf(void **state)
{
    struct fixture *f = *state;
    f->cfg.boot.kernel = (char *)vt_guest("multiboot.elf");
    f->cfg.boot.format = BOOT_FORMAT_AUTO;
    assert_int_equal(loader_load(f->ram, RAM_SIZE, &f->cfg, &f->bs, &f->err), 0);
    assert_int_equal(f->bs.gpr[X86_RAX], 0x2badb002);
    assert_int_equal(f->bs.rip & ~0xfffffull, 0x100000);
}

/* ---------------------------------------------------------------- linux */

#define BZ_SETUP_SECTS 3
#define BZ_KERNEL 8192

static uint8_t *make_bzimage(size_t *len)
{
    *len = (BZ_SETUP_SECTS + 1) * 512 + BZ_KERNEL;
    uint8_t *img = calloc(1, *len);
    img[0x1f1] = BZ_SETUP_SECTS;
    wr16(img + 0x1fe, 0xaa55);
    img[0x200] = 0xeb;
    img[0x201] = 0x66;                      /* setup header ends at 0x268 */
    memcpy(img + 0x202, "HdrS", 4);
    wr16(img + 0x206, 0x020f);              /* protocol 2.15 */
    img[0x211] = 0x01;                      /* LOADED_HIGH */
    wr32(img + 0x22c, 0x37ffffff);          /* initrd_addr_max */
    wr32(img + 0x230, 0x200000);            /* kernel_alignment */
    wr16(img + 0x236, 0x0003);              /* XLF_KERNEL_64 | CAN_BE_LOADED_ABOVE_4G */
    wr32(img + 0x238, 255);                 /* cmdline_size */
    wr32(img + 0x260, 0x40000);             /* init_size */
    for (size_t i = 0; i < BZ_KERNEL; i++)
        img[(BZ_SETUP_SECTS + 1) * 512 + i] = (uint8_t)i;
    return img;
}

static void test_linux_boot_params(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *img = make_bzimage(&len);
    f->cfg.boot.cmdline = "console=ttyS0 root=/dev/vda";
    snprintf(f->initrd, sizeof f->initrd, "/tmp/vmcore-initrd-XXXXXX");
    int fd = mkstemp(f->initrd);
    assert_true(fd >= 0);
    close(fd);
    static uint8_t initrd[10000];
    memset(initrd, 0xab, sizeof initrd);
    write_file(f->initrd, initrd, sizeof initrd);
    f->cfg.boot.initrd = f->initrd;
    assert_int_equal(load(f, BOOT_FORMAT_LINUX, img, len), 0);
    assert_int_equal(loader_detect(img, len), BOOT_FORMAT_LINUX);

    /* The protected-mode kernel at 1 MiB, the 64-bit entry 0x200 into it. */
    assert_memory_equal(f->ram + 0x100000, img + (BZ_SETUP_SECTS + 1) * 512, BZ_KERNEL);
    assert_int_equal(f->bs.rip, 0x100200);
    assert_int_equal(f->bs.gpr[X86_RSI], BOOT_ZEROPAGE_ADDR);
    assert_int_equal(f->bs.cs.selector, 0x10); /* __BOOT_CS */
    assert_int_equal(f->bs.ds.selector, 0x18); /* __BOOT_DS */
    assert_int_equal(f->bs.ss.selector, 0x18);
    assert_int_equal(f->bs.efer & 0x500, 0x500);
    assert_int_equal(f->bs.cr3, BOOT_PML4_ADDR);
    assert_int_equal(f->bs.rflags & 0x200, 0); /* interrupts off */

    const uint8_t *bp = f->ram + BOOT_ZEROPAGE_ADDR;
    assert_memory_equal(bp + 0x202, "HdrS", 4);        /* header copied */
    assert_int_equal(rd32(bp + 0x260), 0x40000);
    assert_int_equal(bp[0x210], 0xff);                 /* type_of_loader */
    assert_int_equal(bp[0x211] & 0x81, 0x81);          /* LOADED_HIGH | CAN_USE_HEAP */
    uint32_t cmd = rd32(bp + 0x228);
    assert_int_equal(cmd, BOOT_CMDLINE_ADDR);
    assert_string_equal((const char *)f->ram + cmd, "console=ttyS0 root=/dev/vda");
    /* initrd: page-aligned, above the kernel's init_size, within RAM and initrd_addr_max. */
    uint32_t rd = rd32(bp + 0x218), rdsize = rd32(bp + 0x21c);
    assert_int_equal(rdsize, sizeof initrd);
    assert_int_equal(rd & 0xfff, 0);
    assert_true(rd >= 0x100000 + 0x40000);
    assert_true((uint64_t)rd + rdsize <= RAM_SIZE);
    assert_memory_equal(f->ram + rd, initrd, sizeof initrd);
    /* The RSDP's address, where acpi_build puts it (boot_params.acpi_rsdp_addr). */
    assert_int_equal(rd64(bp + 0x070), 0xe0000);
    /* e820: low RAM, the legacy hole, high RAM, the PCI ECAM window. */
    assert_int_equal(bp[0x1e8], 4);
    const uint8_t *e = bp + 0x2d0;
    assert_int_equal(rd64(e), 0);
    assert_int_equal(rd64(e + 8), 0x9fc00);
    assert_int_equal(rd32(e + 16), 1);
    assert_int_equal(rd64(e + 20), 0x9fc00);
    assert_int_equal(rd32(e + 36), 2);
    assert_int_equal(rd64(e + 40), 0x100000);
    assert_int_equal(rd64(e + 48), RAM_SIZE - 0x100000);
    assert_int_equal(rd32(e + 56), 1);
    assert_int_equal(rd64(e + 60), 0xe0000000u);
    assert_int_equal(rd64(e + 68), 0x100000);
    assert_int_equal(rd32(e + 76), 2);
    /* Identity page tables cover the kernel, the zero page and the command line. */
    assert_int_equal(rd64(f->ram + BOOT_PD_ADDR) & ~0xfffull, 0);
    free(img);
}

static void test_linux_bad(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *img = make_bzimage(&len);

    assert_int_equal(load(f, BOOT_FORMAT_LINUX, img, 0x300), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "truncated");

    memcpy(img + 0x202, "HdrX", 4);
    assert_int_equal(load(f, BOOT_FORMAT_LINUX, img, len), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "not a bzImage");
    memcpy(img + 0x202, "HdrS", 4);

    wr16(img + 0x206, 0x0204);
    assert_int_equal(load(f, BOOT_FORMAT_LINUX, img, len), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "too old");
    wr16(img + 0x206, 0x020f);

    wr16(img + 0x236, 0);
    assert_int_equal(load(f, BOOT_FORMAT_LINUX, img, len), VMCORE_EIMAGE);
    assert_err(f, VMCORE_EIMAGE, "no 64-bit entry");
    wr16(img + 0x236, 3);

    char longline[300];
    memset(longline, 'x', sizeof longline - 1);
    longline[sizeof longline - 1] = 0;
    f->cfg.boot.cmdline = longline;
    assert_int_equal(load(f, BOOT_FORMAT_LINUX, img, len), VMCORE_ECONFIG);
    assert_string_equal(f->err.path, "boot.cmdline");
    f->cfg.boot.cmdline = NULL;

    /* init_size larger than RAM. */
    wr32(img + 0x260, 64u << 20);
    assert_int_equal(load(f, BOOT_FORMAT_LINUX, img, len), VMCORE_ELIMIT);
    assert_err(f, VMCORE_ELIMIT, "does not fit");
    free(img);
}

static void test_detect(void **state)
{
    static const uint8_t raw[16] = { 0xb0, 0x2a, 0xe6, 0xf4 };
    assert_int_equal(loader_detect(raw, sizeof raw), BOOT_FORMAT_RAW);
    assert_int_equal(loader_detect(raw, 0), BOOT_FORMAT_RAW);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_raw_protected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_real, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_long_page_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_errors_name_the_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_elf32, setup, teardown),
        cmocka_unit_test_setup_teardown(test_elf_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_elf64_guest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiboot_kludge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiboot_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiboot_guest_elf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linux_boot_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linux_bad, setup, teardown),
        cmocka_unit_test(test_detect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
