/* boot.format "elf": an ELF32 (i386) or ELF64 (x86-64) executable. Segments go to their
 * physical addresses (p_paddr); ELF32 starts in protected mode, ELF64 in long mode on the
 * identity page tables, so its entry must be identity-mapped. */
#include <elf.h>
#include <string.h>

#include "loader.h"

struct elf_seg {
    uint32_t type;
    uint64_t offset, vaddr, paddr, filesz, memsz;
};

static void read_phdr(const uint8_t *p, bool is64, struct elf_seg *s)
{
    if (is64) {
        Elf64_Phdr h;
        memcpy(&h, p, sizeof h);
        *s = (struct elf_seg){ h.p_type, h.p_offset, h.p_vaddr, h.p_paddr, h.p_filesz,
                               h.p_memsz };
    } else {
        Elf32_Phdr h;
        memcpy(&h, p, sizeof h);
        *s = (struct elf_seg){ h.p_type, h.p_offset, h.p_vaddr, h.p_paddr, h.p_filesz,
                               h.p_memsz };
    }
}

int loader_elf_segments(struct loader *lc, uint64_t *entry, bool *is64)
{
    const uint8_t *img = lc->image;
    size_t size = lc->image_size;
    if (size < EI_NIDENT || memcmp(img, ELFMAG, SELFMAG) != 0)
        return loader_fail(lc, "not an ELF file (bad magic)");
    if (img[EI_CLASS] != ELFCLASS32 && img[EI_CLASS] != ELFCLASS64)
        return loader_fail(lc, "unknown ELF class %u", img[EI_CLASS]);
    if (img[EI_DATA] != ELFDATA2LSB)
        return loader_fail(lc, "not a little-endian ELF file");
    *is64 = img[EI_CLASS] == ELFCLASS64;
    uint64_t e_entry, phoff;
    unsigned type, machine, phentsize, phnum;
    if (*is64) {
        Elf64_Ehdr h;
        if (size < sizeof h)
            return loader_fail(lc, "truncated ELF header (%zu bytes)", size);
        memcpy(&h, img, sizeof h);
        e_entry = h.e_entry, phoff = h.e_phoff, type = h.e_type, machine = h.e_machine;
        phentsize = h.e_phentsize, phnum = h.e_phnum;
    } else {
        Elf32_Ehdr h;
        if (size < sizeof h)
            return loader_fail(lc, "truncated ELF header (%zu bytes)", size);
        memcpy(&h, img, sizeof h);
        e_entry = h.e_entry, phoff = h.e_phoff, type = h.e_type, machine = h.e_machine;
        phentsize = h.e_phentsize, phnum = h.e_phnum;
    }
    if (type != ET_EXEC)
        return loader_fail(lc, "ELF type %u is not an executable (ET_EXEC)", type);
    if (machine != (*is64 ? EM_X86_64 : EM_386))
        return loader_fail(lc, "ELF machine %u is not %s", machine, *is64 ? "x86-64" : "i386");
    size_t want = *is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    if (phnum == 0)
        return loader_fail(lc, "no program headers");
    if (phentsize < want)
        return loader_fail(lc, "program header size %u is too small", phentsize);
    if (phoff > size || (uint64_t)phnum * phentsize > size - phoff)
        return loader_fail(lc, "truncated: program headers end beyond the file (%zu bytes)",
                           size);
    bool have_entry = false;
    unsigned nload = 0;
    for (unsigned i = 0; i < phnum; i++) {
        struct elf_seg s;
        read_phdr(img + phoff + (uint64_t)i * phentsize, *is64, &s);
        if (s.type != PT_LOAD)
            continue;
        if (s.offset > size || s.filesz > size - s.offset)
            return loader_fail(lc, "truncated: segment %u (offset 0x%llx, 0x%llx bytes) ends "
                               "beyond the file (%zu bytes)", i, (unsigned long long)s.offset,
                               (unsigned long long)s.filesz, size);
        if (s.filesz > s.memsz)
            return loader_fail(lc, "segment %u: file size 0x%llx exceeds memory size 0x%llx", i,
                               (unsigned long long)s.filesz, (unsigned long long)s.memsz);
        if (s.memsz == 0)
            continue;
        int rc = loader_claim(lc, s.paddr, s.memsz, "an ELF segment");
        if (rc)
            return rc;
        memcpy(lc->ram + s.paddr, img + s.offset, s.filesz);
        memset(lc->ram + s.paddr + s.filesz, 0, s.memsz - s.filesz);
        if (s.paddr + s.memsz > lc->image_end)
            lc->image_end = s.paddr + s.memsz;
        if (!have_entry && e_entry - s.vaddr < s.memsz) {
            *entry = s.paddr + (e_entry - s.vaddr);
            have_entry = true;
            if (*is64 && s.vaddr != s.paddr)
                return loader_fail(lc, "64-bit entry 0x%llx is in a segment whose virtual "
                                   "and physical addresses differ (only identity-mapped "
                                   "kernels boot)", (unsigned long long)e_entry);
        }
        nload++;
    }
    if (nload == 0)
        return loader_fail(lc, "no loadable segments");
    if (!have_entry)
        return loader_fail(lc, "entry point 0x%llx is not inside any loadable segment",
                           (unsigned long long)e_entry);
    return 0;
}

int loader_elf(struct loader *lc)
{
    uint64_t entry;
    bool is64;
    int rc = loader_reserve_bios(lc);
    if (rc == 0)
        rc = loader_elf_segments(lc, &entry, &is64);
    if (rc)
        return rc;
    return is64 ? x86_boot_long(lc, entry) : x86_boot_protected(lc, entry);
}
