/* The shared library's ABI: only vmcore_* symbols are exported, each one is declared in a
 * public header, every function a public header declares is exported, and the SONAME
 * carries the major version. Reads the ELF dynamic symbol table itself (no nm needed). */
#include "vt.h"

#include <ctype.h>
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LIBRARY VT_BINARY_DIR "/lib/libvmcore.so"
#define HEADERS VT_SOURCE_DIR "/include/vmcore"

struct elf_view {
    const unsigned char *base;
    size_t size;
    const Elf64_Ehdr *eh;
    const Elf64_Shdr *sh;
};

static int elf_open(struct elf_view *v, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        close(fd);
        return -1;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return -1;
    v->base = p;
    v->size = (size_t)st.st_size;
    v->eh = p;
    v->sh = (const Elf64_Shdr *)(v->base + v->eh->e_shoff);
    return 0;
}

static void elf_close(struct elf_view *v) { munmap((void *)v->base, v->size); }

static const Elf64_Shdr *elf_section(const struct elf_view *v, uint32_t type)
{
    for (unsigned i = 0; i < v->eh->e_shnum; i++)
        if (v->sh[i].sh_type == type)
            return &v->sh[i];
    return NULL;
}

/* The names of the defined, exported symbols (NULL-terminated, caller frees). */
static char **exported_symbols(const struct elf_view *v, size_t *count)
{
    const Elf64_Shdr *dynsym = elf_section(v, SHT_DYNSYM);
    assert_non_null(dynsym);
    const Elf64_Shdr *strtab = &v->sh[dynsym->sh_link];
    const Elf64_Sym *syms = (const Elf64_Sym *)(v->base + dynsym->sh_offset);
    size_t n = dynsym->sh_size / sizeof(Elf64_Sym);
    char **out = calloc(n + 1, sizeof *out);
    assert_non_null(out);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const Elf64_Sym *s = &syms[i];
        const char *name = (const char *)(v->base + strtab->sh_offset + s->st_name);
        if (s->st_shndx == SHN_UNDEF || name[0] == '\0')
            continue;
        /* The version node ("VMCORE_0") is an absolute symbol, not code or data. */
        if (s->st_shndx == SHN_ABS && s->st_value == 0 && strncmp(name, "VMCORE_", 7) == 0)
            continue;
        if (ELF64_ST_BIND(s->st_info) == STB_LOCAL)
            continue;
        out[k++] = strdup(name);
    }
    *count = k;
    return out;
}

static void free_names(char **names)
{
    for (char **p = names; *p; p++)
        free(*p);
    free(names);
}

/* All public headers, concatenated. */
static char *read_headers(void)
{
    DIR *d = opendir(HEADERS);
    assert_non_null(d);
    size_t len = 0;
    char *all = calloc(1, 1);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (nl < 3 || strcmp(e->d_name + nl - 2, ".h") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", HEADERS, e->d_name);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char buf[8192];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
            all = realloc(all, len + got + 1);
            assert_non_null(all);
            memcpy(all + len, buf, got);
            len += got;
            all[len] = '\0';
        }
        fclose(f);
    }
    closedir(d);
    return all;
}

/* Does @text declare function @name, as in "name(" after a word boundary? */
static int declares(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
        if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
            continue;
        const char *q = p + n;
        while (*q == ' ')
            q++;
        if (*q == '(')
            return 1;
    }
    return 0;
}

static void test_only_vmcore_symbols_exported(void **state)
{
    struct elf_view v;
    assert_int_equal(elf_open(&v, LIBRARY), 0);
    size_t n = 0;
    char **names = exported_symbols(&v, &n);
    int leaks = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(names[i], "vmcore_", 7) != 0) {
            print_error("exported symbol without the vmcore_ prefix: %s\n", names[i]);
            leaks++;
        }
    assert_true(n > 0);
    free_names(names);
    elf_close(&v);
    assert_int_equal(leaks, 0);
}

static void test_exported_symbols_are_public_api(void **state)
{
    struct elf_view v;
    assert_int_equal(elf_open(&v, LIBRARY), 0);
    size_t n = 0;
    char **names = exported_symbols(&v, &n);
    char *headers = read_headers();
    int stray = 0;
    for (size_t i = 0; i < n; i++)
        if (!declares(headers, names[i])) {
            print_error("exported but not declared in include/vmcore/*.h: %s\n", names[i]);
            stray++;
        }
    free(headers);
    free_names(names);
    elf_close(&v);
    assert_int_equal(stray, 0);
}

static void test_public_functions_are_exported(void **state)
{
    struct elf_view v;
    assert_int_equal(elf_open(&v, LIBRARY), 0);
    size_t n = 0;
    char **names = exported_symbols(&v, &n);
    char *headers = read_headers();
    int missing = 0;
    /* Every "VMCORE_API <type> <name>(" in the headers must be in the library. */
    for (const char *p = strstr(headers, "VMCORE_API "); p; p = strstr(p + 1, "VMCORE_API ")) {
        const char *paren = strchr(p, '(');
        const char *semi = strchr(p, ';');
        if (!paren || (semi && semi < paren))
            continue; /* the macro's own definition, or not a function */
        const char *end = paren;
        while (end > p && end[-1] == ' ')
            end--;
        const char *start = end;
        while (start > p && (isalnum((unsigned char)start[-1]) || start[-1] == '_'))
            start--;
        char name[128];
        size_t len = (size_t)(end - start);
        if (len == 0 || len >= sizeof name)
            continue;
        memcpy(name, start, len);
        name[len] = '\0';
        if (strncmp(name, "vmcore_", 7) != 0)
            continue;
        int found = 0;
        for (size_t i = 0; i < n && !found; i++)
            found = strcmp(names[i], name) == 0;
        if (!found) {
            print_error("declared in a public header but not exported: %s\n", name);
            missing++;
        }
    }
    free(headers);
    free_names(names);
    elf_close(&v);
    assert_int_equal(missing, 0);
}

static void test_soname_has_major_version(void **state)
{
    struct elf_view v;
    assert_int_equal(elf_open(&v, LIBRARY), 0);
    const Elf64_Shdr *dyn = elf_section(&v, SHT_DYNAMIC);
    assert_non_null(dyn);
    const Elf64_Shdr *strtab = &v.sh[dyn->sh_link];
    const Elf64_Dyn *d = (const Elf64_Dyn *)(v.base + dyn->sh_offset);
    const char *soname = NULL;
    for (size_t i = 0; i < dyn->sh_size / sizeof *d && d[i].d_tag != DT_NULL; i++)
        if (d[i].d_tag == DT_SONAME)
            soname = (const char *)(v.base + strtab->sh_offset + d[i].d_un.d_val);
    assert_non_null(soname);
    char want[64];
    snprintf(want, sizeof want, "libvmcore.so.%d", VMCORE_VERSION_MAJOR);
    assert_string_equal(soname, want);
    elf_close(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_vmcore_symbols_exported),
        cmocka_unit_test(test_exported_symbols_are_public_api),
        cmocka_unit_test(test_public_functions_are_exported),
        cmocka_unit_test(test_soname_has_major_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
