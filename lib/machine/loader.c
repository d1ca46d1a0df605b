/* What every loader shares: reading the image, placing ranges in guest RAM without
 * overlaps, the command line, the initrd and the e820 map; and the dispatch on
 * boot.format. */
#include "loader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int loader_fail(struct loader *lc, const char *fmt, ...)
{
    char text[VMCORE_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return err_config(lc->err, VMCORE_EIMAGE, lc->field, "%s: %s", lc->path, text);
}

int loader_claim(struct loader *lc, uint64_t base, uint64_t len, const char *what)
{
    if (base > lc->ram_size || len > lc->ram_size - base)
        return err_config(lc->err, VMCORE_ELIMIT, lc->field,
                          "%s: %s at 0x%llx..0x%llx does not fit in %llu MiB of guest RAM "
                          "(raise memory_mib)", lc->path, what, (unsigned long long)base,
                       (unsigned long long)(base + len), (unsigned long long)(lc->ram_size >> 20));
    if (len == 0)
        return 0;
    for (unsigned i = 0; i < lc->nregions; i++) {
        if (base < lc->region[i].base + lc->region[i].len && lc->region[i].base < base + len)
            return loader_fail(lc, "%s at 0x%llx..0x%llx overlaps %s at 0x%llx..0x%llx", what,
                               (unsigned long long)base, (unsigned long long)(base + len),
                               lc->region[i].what, (unsigned long long)lc->region[i].base,
                               (unsigned long long)(lc->region[i].base + lc->region[i].len));
    }
    if (lc->nregions == LOADER_MAX_REGIONS)
        return loader_fail(lc, "too many separate pieces to place (at most %d)",
                           LOADER_MAX_REGIONS);
    lc->region[lc->nregions].base = base;
    lc->region[lc->nregions].len = len;
    lc->region[lc->nregions].what = what;
    lc->nregions++;
    return 0;
}

int loader_reserve_bios(struct loader *lc)
{
    if (lc->ram_size <= BOOT_LOWMEM_END)
        return 0;
    uint64_t end = lc->ram_size < BOOT_HIGHMEM_START ? lc->ram_size : BOOT_HIGHMEM_START;
    return loader_claim(lc, BOOT_LOWMEM_END, end - BOOT_LOWMEM_END,
                        "the reserved BIOS area (0x9fc00..1 MiB)");
}

int loader_copy(struct loader *lc, uint64_t gpa, const void *src, size_t len, const char *what)
{
    int rc = loader_claim(lc, gpa, len, what);
    if (rc == 0 && len)
        memcpy(lc->ram + gpa, src, len);
    return rc;
}

/* Read what is left of @fd into @buf (@n bytes); 0 or an errno. */
static int read_all(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? errno : EIO;
        got += (size_t)r;
    }
    return 0;
}

int loader_read_file(const char *path, const char *field, size_t max, uint8_t **out,
                     size_t *size, struct vmcore_err *err)
{
    *out = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return err_config(err, err_from_errno(errno) == VMCORE_ENOENT ? VMCORE_ENOENT : VMCORE_EIO,
                          field, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return err_config(err, VMCORE_EIO, field, "cannot stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_config(err, VMCORE_EIMAGE, field, "%s is not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return err_config(err, VMCORE_ELIMIT, field,
                          "%s is %llu bytes, larger than guest RAM (%llu)", path,
                          (unsigned long long)st.st_size, (unsigned long long)max);
    }
    size_t n = (size_t)st.st_size;
    if (n == 0) {
        /* An empty file, or one whose size the file system does not tell (/proc/self/mem,
         * /proc/cpuinfo, /sys files report 0): reading tells them apart. */
        uint8_t probe;
        ssize_t r;
        while ((r = read(fd, &probe, 1)) < 0 && errno == EINTR)
            ;
        int e = errno;
        close(fd);
        if (r == 0) {
            *out = malloc(1);
            return *out ? 0 : err_config(err, VMCORE_ENOMEM, field, "out of memory reading %s",
                                         path);
        }
        if (r < 0)
            return err_config(err, VMCORE_EIMAGE, field,
                              "%s cannot be sized (stat() reports 0 bytes, reading fails: %s): "
                              "not an ordinary file", path, strerror(e));
        return err_config(err, VMCORE_EIMAGE, field,
                          "%s cannot be sized (stat() reports 0 bytes but it has content): "
                          "not an ordinary file", path);
    }
    uint8_t *buf = malloc(n);
    if (!buf) {
        close(fd);
        return err_config(err, VMCORE_ENOMEM, field, "out of memory reading %s", path);
    }
    int e = read_all(fd, buf, n);
    close(fd);
    if (e) {
        free(buf);
        return err_config(err, VMCORE_EIO, field, "cannot read %s: %s", path, strerror(e));
    }
    *out = buf;
    *size = n;
    return 0;
}

unsigned loader_e820(uint64_t ram_size, struct e820_entry *out, unsigned max)
{
    struct e820_entry map[4];
    unsigned n = 0;
    uint64_t low = ram_size < BOOT_LOWMEM_END ? ram_size : BOOT_LOWMEM_END;
    map[n++] = (struct e820_entry){ 0, low, 1 };
    if (ram_size > BOOT_LOWMEM_END)
        map[n++] = (struct e820_entry){ BOOT_LOWMEM_END, BOOT_HIGHMEM_START - BOOT_LOWMEM_END, 2 };
    if (ram_size > BOOT_HIGHMEM_START)
        map[n++] = (struct e820_entry){ BOOT_HIGHMEM_START, ram_size - BOOT_HIGHMEM_START, 1 };
    /* The PCI ECAM window: Linux uses the MCFG table's region only if firmware reserved it
     * (here, and in the DSDT's motherboard resources). */
    map[n++] = (struct e820_entry){ PLAT_PCI_ECAM_BASE, PLAT_PCI_ECAM_SIZE, 2 };
    if (n > max)
        n = max;
    memcpy(out, map, n * sizeof *map);
    return n;
}

int loader_cmdline(struct loader *lc, const char *cmdline, uint64_t *gpa)
{
    const char *s = cmdline ? cmdline : "";
    size_t len = strlen(s) + 1;
    if (len > BOOT_CMDLINE_MAX)
        return err_config(lc->err, VMCORE_ECONFIG, "boot.cmdline", "longer than %d bytes",
                          BOOT_CMDLINE_MAX - 1);
    *gpa = BOOT_CMDLINE_ADDR;
    return loader_copy(lc, BOOT_CMDLINE_ADDR, s, len, "the command line");
}

int loader_initrd(struct loader *lc, uint64_t limit, uint64_t *gpa, uint64_t *size)
{
    *gpa = *size = 0;
    if (!lc->cfg->boot.initrd)
        return 0;
    uint8_t *buf;
    size_t n;
    int rc = loader_read_file(lc->cfg->boot.initrd, "boot.initrd", lc->ram_size, &buf, &n,
                              lc->err);
    if (rc)
        return rc;
    uint64_t top = limit < lc->ram_size ? limit : lc->ram_size;
    uint64_t lowest = (lc->image_end + 0xfff) & ~0xfffull;
    uint64_t base = top >= n ? (top - n) & ~0xfffull : 0;
    if (top < n || base < lowest || base < BOOT_HIGHMEM_START) {
        free(buf);
        return err_config(lc->err, VMCORE_ELIMIT, "boot.initrd",
                          "%s (%zu bytes) does not fit between the kernel's end (0x%llx) and "
                          "0x%llx (raise memory_mib)", lc->cfg->boot.initrd, n,
                          (unsigned long long)lowest, (unsigned long long)top);
    }
    /* Placement errors are about the initrd: name its key and file. */
    const char *field = lc->field, *path = lc->path;
    lc->field = "boot.initrd";
    lc->path = lc->cfg->boot.initrd;
    rc = loader_copy(lc, base, buf, n, "the initrd");
    lc->field = field;
    lc->path = path;
    free(buf);
    if (rc)
        return rc;
    *gpa = base;
    *size = n;
    return 0;
}

int loader_load_image(uint8_t *ram, uint64_t ram_size, const struct vmcore_config *cfg,
                      const uint8_t *image, size_t size, struct x86_boot_state *bs,
                      struct vmcore_err *err)
{
    struct loader lc = { .ram = ram, .ram_size = ram_size, .cfg = cfg, .bs = bs, .err = err,
                         .path = cfg->boot.kernel ? cfg->boot.kernel : "(image)",
                         .field = "boot.kernel", .image = image, .image_size = size };
    switch (cfg->boot.format) {
    case BOOT_FORMAT_RAW: return loader_raw(&lc);
    case BOOT_FORMAT_ELF: return loader_elf(&lc);
    case BOOT_FORMAT_MULTIBOOT: return loader_multiboot(&lc);
    case BOOT_FORMAT_LINUX: return loader_linux(&lc);
    default: return loader_auto(&lc);
    }
}

int loader_load(uint8_t *ram, uint64_t ram_size, const struct vmcore_config *cfg,
                struct x86_boot_state *bs, struct vmcore_err *err)
{
    if (!cfg->boot.kernel)
        return err_config(err, VMCORE_ECONFIG, "boot.kernel", "missing (required)");
    uint8_t *image;
    size_t size;
    int rc = loader_read_file(cfg->boot.kernel, "boot.kernel", ram_size, &image, &size, err);
    if (rc)
        return rc;
    rc = loader_load_image(ram, ram_size, cfg, image, size, bs, err);
    free(image);
    return rc;
}
