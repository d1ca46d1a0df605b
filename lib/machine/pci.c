/* The PCI host bridge (0:0.0), configuration mechanism #1 (0xcf8/0xcfc) and ECAM, BAR
 * placement and mapping, capability lists, MSI/MSI-X, INTx on the IOAPIC's PCI pins.
 *
 * Config space is a byte array per device with a write mask and a write-1-to-clear mask,
 * so every guest write, of any size at any offset, goes through the same byte loop; what
 * a write means (a BAR moved, decode switched, MSI unmasked) is worked out afterwards by
 * comparing the state with what is mapped and delivered. Both access paths (CF8/CFC and
 * ECAM) end in host_cfg_read()/host_cfg_write(). */
#include "pci.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine_internal.h"
#include "platform.h"

/* The host bridge shows the IDs of the Q35 chipset's DRAM controller (Intel 82G33,
 * 8086:29c0), as QEMU's q35 machine does: guests know it, and it has no registers a
 * driver must find (the chipset's PCIEXBAR is not needed: the MCFG table names ECAM). */
#define PCI_HOST_VENDOR 0x8086
#define PCI_HOST_DEVICE 0x29c0
#define PCI_HOST_NAME   "pci-host"

#define CF8_PORT 0xcf8
#define CFC_PORT 0xcfc
#define CF8_ENABLE 0x80000000u

/* Nothing of a guest's may decode over the interrupt controllers, whether or not they sit
 * on this bus (kvm keeps them in the kernel): the IOAPIC page and the whole MSI address
 * window 0xfee00000..0xfeefffff, where a write is an interrupt. */
#define MSI_WINDOW_SIZE 0x100000ull

struct pci_host {
    struct machine_device base;
    struct machine *m;
    pthread_mutex_t lock;             /* recursive: device hooks may call back into us */
    uint32_t cf8;
    struct pci_device *slot[PCI_SLOTS];
    struct pci_device bridge;
    uint64_t io_next, mem32_next, mem64_next;
    unsigned line_count[8];           /* devices driving GSI 16 + i */
    uint64_t map_failures;
};

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

static const struct machine_device_ops host_dev_ops;
static const struct machine_device_ops pdev_ops;
static const struct machine_dev_ops bar_ops;

static struct pci_host *host_of(struct machine *m)
{
    struct machine_device *d = machine_device_find(m, PCI_HOST_NAME);
    return d && d->ops == &host_dev_ops ? container_of(d, struct pci_host, base) : NULL;
}

/* ---- raw config bytes ---- */

static uint32_t bytes_get(const uint8_t *a, unsigned off, unsigned size)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < size && i < 4; i++)
        if (off + i < PCI_CONFIG_SIZE)
            v |= (uint32_t)a[off + i] << (8 * i);
    return v;
}

static void bytes_set(uint8_t *a, unsigned off, unsigned size, uint32_t v)
{
    for (unsigned i = 0; i < size && i < 4; i++)
        if (off + i < PCI_CONFIG_SIZE)
            a[off + i] = (uint8_t)(v >> (8 * i));
}

/* The host lock, once @dev is registered (before, the device is its creator's alone). */
static void dev_lock(struct pci_device *dev)
{
    if (dev->host)
        pthread_mutex_lock(&dev->host->lock);
}

static void dev_unlock(struct pci_device *dev)
{
    if (dev->host)
        pthread_mutex_unlock(&dev->host->lock);
}

void pci_config_set(struct pci_device *dev, unsigned off, unsigned size, uint32_t value)
{
    dev_lock(dev);
    bytes_set(dev->cfg, off, size, value);
    dev_unlock(dev);
}

uint32_t pci_config_get(struct pci_device *dev, unsigned off, unsigned size)
{
    dev_lock(dev);
    uint32_t v = bytes_get(dev->cfg, off, size);
    dev_unlock(dev);
    return v;
}

void pci_config_set_wmask(struct pci_device *dev, unsigned off, unsigned size, uint32_t mask)
{
    dev_lock(dev);
    bytes_set(dev->wmask, off, size, mask);
    dev_unlock(dev);
}

void pci_config_set_w1c(struct pci_device *dev, unsigned off, unsigned size, uint32_t mask)
{
    dev_lock(dev);
    bytes_set(dev->w1c, off, size, mask);
    dev_unlock(dev);
}

static uint16_t cfg16(const struct pci_device *d, unsigned off)
{
    return (uint16_t)bytes_get(d->cfg, off, 2);
}

static bool is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

/* ---- the device header ---- */

void pci_device_init(struct pci_device *dev, const struct pci_device_ops *ops,
                     const struct pci_id *id)
{
    memset(dev, 0, sizeof *dev);
    dev->ops = ops;
    dev->slot = -1;
    dev->cap_next = 0x40;
    for (unsigned i = 0; i < PCI_BARS; i++) {
        dev->bar[i].dev = dev;
        dev->bar[i].index = i;
    }
    pci_config_set(dev, PCI_VENDOR_ID, 2, id->vendor);
    pci_config_set(dev, PCI_DEVICE_ID, 2, id->device);
    pci_config_set(dev, PCI_REVISION_ID, 1, id->revision);
    pci_config_set(dev, PCI_CLASS_PROG, 3, id->class_code);
    pci_config_set(dev, PCI_HEADER_TYPE, 1, 0);   /* type 0, single function */
    pci_config_set(dev, PCI_SUBSYSTEM_VENDOR, 2, id->subsys_vendor);
    pci_config_set(dev, PCI_SUBSYSTEM_ID, 2, id->subsys);
    pci_config_set(dev, PCI_INTERRUPT_PIN, 1, id->intx_pin <= 4 ? id->intx_pin : 0);
    /* command: I/O, memory, bus master, parity, SERR#, INTx disable */
    pci_config_set_wmask(dev, PCI_COMMAND, 2, 0x0547);
    /* status: parity error, target/master aborts, SERR#, master data parity error */
    pci_config_set_w1c(dev, PCI_STATUS, 2, 0xf900);
    pci_config_set_wmask(dev, 0x0c, 2, 0xffff);   /* cache line size, latency timer */
    pci_config_set_wmask(dev, PCI_INTERRUPT_LINE, 1, 0xff);
}

void pci_device_cleanup(struct pci_device *dev)
{
    free(dev->msix_table);
    free(dev->msix_pba);
    free(dev->msix_fd);
    dev->msix_table = NULL;
    dev->msix_pba = NULL;
    dev->msix_fd = NULL;
}

int pci_bar_define(struct pci_device *dev, unsigned index, unsigned type, uint64_t size,
                   const struct machine_dev_ops *ops, void *opaque)
{
    unsigned kind = type & ~PCI_BAR_PREFETCH;
    bool prefetch = type & PCI_BAR_PREFETCH;
    if (dev->host || index >= PCI_BARS || dev->bar[index].type != PCI_BAR_NONE ||
        !is_pow2(size))
        return VMCORE_EINVAL;
    uint32_t low;
    switch (kind) {
    case PCI_BAR_IO:
        if (prefetch || size < 4 || size > 256)
            return VMCORE_EINVAL;
        low = 0x1;
        break;
    case PCI_BAR_MEM32:
        if (size < 16 || size > (256ull << 20))
            return VMCORE_EINVAL;
        low = prefetch ? 0x8 : 0;
        break;
    case PCI_BAR_MEM64:
        if (index + 1 >= PCI_BARS || dev->bar[index + 1].type != PCI_BAR_NONE || size < 16 ||
            size > (16ull << 30))
            return VMCORE_EINVAL;
        low = 0x4 | (prefetch ? 0x8 : 0);
        break;
    default:
        return VMCORE_EINVAL;
    }
    struct pci_bar *b = &dev->bar[index];
    b->type = type;
    b->size = size;
    b->ops = ops;
    b->opaque = opaque;
    unsigned reg = PCI_BAR0 + 4 * index;
    pci_config_set(dev, reg, 4, low);
    /* The write mask is what makes the sizing protocol work: all-ones written reads back
     * as ~(size - 1) plus the read-only type bits. */
    uint64_t mask = ~(size - 1);
    pci_config_set_wmask(dev, reg, 4, (uint32_t)mask & (kind == PCI_BAR_IO ? ~3u : ~0xfu));
    if (kind == PCI_BAR_MEM64) {
        dev->bar[index + 1].type = PCI_BAR_MEM64_HIGH;
        pci_config_set_wmask(dev, reg + 4, 4, (uint32_t)(mask >> 32));
    }
    return 0;
}

int pci_cap_add(struct pci_device *dev, uint8_t id, unsigned len)
{
    if (dev->host || len < 2 || len > 0xc0)
        return VMCORE_EINVAL;
    unsigned off = dev->cap_next;
    if (off + len > 0x100)
        return VMCORE_ELIMIT;
    dev->cfg[off] = id;
    dev->cfg[off + 1] = 0;
    if (dev->cap_last)
        dev->cfg[dev->cap_last + 1] = (uint8_t)off;
    else
        dev->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
    dev->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
    dev->cap_last = (uint8_t)off;
    dev->cap_next = (uint16_t)align_up(off + len, 4);
    return (int)off;
}

/* MSI capability layout (offsets from the capability): control at 2, address at 4, then
 * (64-bit) the upper address at 8; data at 8 or 12; mask and pending bits after it. */
static unsigned msi_data_off(const struct pci_device *d) { return d->msi_cap + (d->msi_64 ? 12 : 8); }
static unsigned msi_mask_off(const struct pci_device *d) { return d->msi_cap + (d->msi_64 ? 16 : 12); }

int pci_msi_init(struct pci_device *dev, unsigned vectors, bool addr64, bool maskable)
{
    if (dev->msi_cap || !is_pow2(vectors) || vectors > PCI_MSI_MAX_VECTORS)
        return VMCORE_EINVAL;
    unsigned len = (addr64 ? 16 : 12) + (maskable ? 8 : 0);
    int off = pci_cap_add(dev, PCI_CAP_ID_MSI, len);
    if (off < 0)
        return off;
    unsigned log2 = 0;
    while ((1u << log2) < vectors)
        log2++;
    dev->msi_cap = (uint8_t)off;
    dev->msi_vectors = (uint8_t)vectors;
    dev->msi_64 = addr64;
    dev->msi_mask = maskable;
    pci_config_set(dev, off + 2, 2, log2 << 1 | (addr64 ? 0x80 : 0) | (maskable ? 0x100 : 0));
    pci_config_set_wmask(dev, off + 2, 2, 0x0071);        /* enable, multiple message enable */
    pci_config_set_wmask(dev, off + 4, 4, 0xfffffffc);
    if (addr64)
        pci_config_set_wmask(dev, off + 8, 4, 0xffffffff);
    pci_config_set_wmask(dev, msi_data_off(dev), 2, 0xffff);
    if (maskable)
        pci_config_set_wmask(dev, msi_mask_off(dev), 4,
                             vectors == 32 ? 0xffffffffu : (1u << vectors) - 1);
    return off;
}

int pci_msix_init(struct pci_device *dev, unsigned vectors, unsigned bar, uint32_t table_off,
                  uint32_t pba_off)
{
    if (dev->host || dev->msix_cap || vectors < 1 || vectors > PCI_MSIX_MAX_VECTORS ||
        bar >= PCI_BARS)
        return VMCORE_EINVAL;
    unsigned kind = dev->bar[bar].type & ~PCI_BAR_PREFETCH;
    if (kind != PCI_BAR_MEM32 && kind != PCI_BAR_MEM64)
        return VMCORE_EINVAL;
    uint64_t tlen = 16ull * vectors, plen = 8ull * ((vectors + 63) / 64);
    uint64_t size = dev->bar[bar].size;
    if ((table_off & 7) || (pba_off & 7) || table_off + tlen > size || pba_off + plen > size ||
        (table_off < pba_off + plen && pba_off < table_off + tlen))
        return VMCORE_EINVAL;
    uint8_t *table = calloc(vectors, 16);
    uint64_t *pba = calloc((vectors + 63) / 64, 8);
    struct pci_msix_fd *fds = calloc(vectors, sizeof *fds);
    int off = table && pba && fds ? pci_cap_add(dev, PCI_CAP_ID_MSIX, 12) : VMCORE_ENOMEM;
    if (off < 0) {
        free(table);
        free(pba);
        free(fds);
        return off;
    }
    for (unsigned v = 0; v < vectors; v++)
        fds[v].fd = -1;
    dev->msix_fd = fds;
    dev->msix_cap = (uint8_t)off;
    dev->msix_vectors = (uint16_t)vectors;
    dev->msix_bar = bar;
    dev->msix_table_off = table_off;
    dev->msix_pba_off = pba_off;
    dev->msix_table = table;
    dev->msix_pba = pba;
    for (unsigned v = 0; v < vectors; v++)
        table[16 * v + 12] = 1;                               /* masked */
    pci_config_set(dev, off + 2, 2, vectors - 1);
    pci_config_set_wmask(dev, off + 2, 2, 0xc000);            /* enable, function mask */
    pci_config_set(dev, off + 4, 4, table_off | bar);
    pci_config_set(dev, off + 8, 4, pba_off | bar);
    return off;
}

/* ---- BAR mapping ---- */

static uint64_t bar_addr(const struct pci_device *d, unsigned i)
{
    uint32_t lo = bytes_get(d->cfg, PCI_BAR0 + 4 * i, 4);
    switch (d->bar[i].type & ~PCI_BAR_PREFETCH) {
    case PCI_BAR_IO:
        return lo & ~3u;
    case PCI_BAR_MEM32:
        return lo & ~0xfu;
    case PCI_BAR_MEM64:
        return (lo & ~0xfu) | (uint64_t)bytes_get(d->cfg, PCI_BAR0 + 4 * i + 4, 4) << 32;
    default:
        return 0;
    }
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* Map BAR @b at @addr; false when the place is refused (the bus's own checks cover RAM,
 * other ranges and the port space's end). */
static bool bar_try_map(struct pci_device *d, struct pci_bar *b, uint64_t addr)
{
    bool io = (b->type & ~PCI_BAR_PREFETCH) == PCI_BAR_IO;
    if (addr + b->size < addr)
        return false;
    if (!io && (overlaps(addr, b->size, PLAT_IOAPIC_BASE, 0x1000) ||
                overlaps(addr, b->size, PLAT_LAPIC_BASE, MSI_WINDOW_SIZE)))
        return false;
    if (machine_map(d->base.m, io ? MACHINE_PIO : MACHINE_MMIO, addr, b->size, &bar_ops, b,
                    d->base.name, 0) != 0)
        return false;
    if (d->ops && d->ops->bar_map)
        d->ops->bar_map(d, b->index, addr, true);
    return true;
}

static void bar_unmap(struct pci_device *d, struct pci_bar *b)
{
    bool io = (b->type & ~PCI_BAR_PREFETCH) == PCI_BAR_IO;
    if (b->state == PCI_BAR_MAPPED) {
        machine_unmap(d->base.m, io ? MACHINE_PIO : MACHINE_MMIO, b->addr, b);
        if (d->ops && d->ops->bar_map)
            d->ops->bar_map(d, b->index, b->addr, false);
    }
    b->state = PCI_BAR_UNMAPPED;
}

/* A range was released: a BAR refused earlier because it collided may fit now. Retries do
 * not count as new failures. */
static void host_retry_failed(struct pci_host *h)
{
    for (unsigned s = 0; s < PCI_SLOTS; s++) {
        struct pci_device *d = h->slot[s];
        if (!d)
            continue;
        for (unsigned i = 0; i < PCI_BARS; i++)
            if (d->bar[i].state == PCI_BAR_FAILED && bar_try_map(d, &d->bar[i], d->bar[i].addr))
                d->bar[i].state = PCI_BAR_MAPPED;
    }
}

/* Bring the mappings in line with the command register and the BARs. */
static void dev_sync_bars(struct pci_device *d)
{
    struct pci_host *h = d->host;
    uint16_t cmd = cfg16(d, PCI_COMMAND);
    bool released = false;
    for (unsigned i = 0; i < PCI_BARS; i++) {
        struct pci_bar *b = &d->bar[i];
        unsigned kind = b->type & ~PCI_BAR_PREFETCH;
        if (kind != PCI_BAR_IO && kind != PCI_BAR_MEM32 && kind != PCI_BAR_MEM64)
            continue;
        bool want = cmd & (kind == PCI_BAR_IO ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY);
        uint64_t addr = bar_addr(d, i);
        if (b->state == PCI_BAR_MAPPED && (!want || b->addr != addr)) {
            bar_unmap(d, b);
            released = true;
        }
        if (!want) {
            b->state = PCI_BAR_UNMAPPED;
            continue;
        }
        if (b->state == PCI_BAR_UNMAPPED || (b->state == PCI_BAR_FAILED && b->addr != addr)) {
            b->addr = addr;
            if (bar_try_map(d, b, addr)) {
                b->state = PCI_BAR_MAPPED;
            } else {
                b->state = PCI_BAR_FAILED;
                h->map_failures++;
            }
        }
    }
    if (released)
        host_retry_failed(h);
}

/* ---- interrupts ---- */

static bool msi_enabled(const struct pci_device *d)
{
    return d->msi_cap && (d->cfg[d->msi_cap + 2] & 1);
}

static bool msix_enabled(const struct pci_device *d)
{
    return d->msix_cap && (cfg16(d, d->msix_cap + 2) & 0x8000);
}

static void intx_update(struct pci_device *d)
{
    struct pci_host *h = d->host;
    uint8_t pin = d->cfg[PCI_INTERRUPT_PIN];
    if (d->intx_level)
        d->cfg[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
    else
        d->cfg[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
    bool out = d->intx_level && pin >= 1 && pin <= 4 && d->slot > 0 &&
               !(cfg16(d, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE) && !msi_enabled(d) &&
               !msix_enabled(d);
    if (!h || out == d->intx_out)
        return;
    d->intx_out = out;
    unsigned gsi = plat_pci_intx_gsi((unsigned)d->slot, pin - 1u);
    unsigned *count = &h->line_count[gsi - MACHINE_GSI_PCI_FIRST];
    if (out) {
        if ((*count)++ == 0)
            machine_irq_set(h->m, gsi, 1);
    } else if (*count > 0 && --*count == 0) {
        machine_irq_set(h->m, gsi, 0);
    }
}

static void msi_vector(struct pci_device *d, unsigned v)
{
    unsigned c = d->msi_cap;
    unsigned mmc = (d->cfg[c + 2] >> 1) & 7, mme = (d->cfg[c + 2] >> 4) & 7;
    unsigned count = 1u << (mme < mmc ? mme : mmc);
    if (v >= count)
        return;
    if (d->msi_mask) {
        uint32_t mask = bytes_get(d->cfg, msi_mask_off(d), 4);
        if (mask & (1u << v)) {
            uint32_t pend = bytes_get(d->cfg, msi_mask_off(d) + 4, 4);
            bytes_set(d->cfg, msi_mask_off(d) + 4, 4, pend | 1u << v);
            return;
        }
    }
    uint64_t addr = bytes_get(d->cfg, c + 4, 4);
    if (d->msi_64)
        addr |= (uint64_t)bytes_get(d->cfg, c + 8, 4) << 32;
    uint32_t data = bytes_get(d->cfg, msi_data_off(d), 2);
    data = (data & ~(count - 1)) | v;
    machine_msi(d->host->m, addr, data);
}

/* Deliver what waited for an unmask. */
static void msi_flush(struct pci_device *d)
{
    if (!d->msi_mask || !msi_enabled(d))
        return;
    uint32_t pend = bytes_get(d->cfg, msi_mask_off(d) + 4, 4);
    uint32_t mask = bytes_get(d->cfg, msi_mask_off(d), 4);
    uint32_t ready = pend & ~mask;
    if (!ready)
        return;
    bytes_set(d->cfg, msi_mask_off(d) + 4, 4, pend & ~ready);
    for (unsigned v = 0; v < 32; v++)
        if (ready & (1u << v))
            msi_vector(d, v);
}

static bool msix_masked(const struct pci_device *d, unsigned v)
{
    return (cfg16(d, d->msix_cap + 2) & 0x4000) || (d->msix_table[16 * v + 12] & 1);
}

static atomic_uint_fast64_t msix_sent_by_fd, msix_sent_by_call;

void pci_msix_counts(uint64_t *by_fd, uint64_t *by_call)
{
    *by_fd = atomic_load(&msix_sent_by_fd);
    *by_call = atomic_load(&msix_sent_by_call);
}

static void msix_message(const struct pci_device *d, unsigned v, uint64_t *addr,
                         uint32_t *data)
{
    const uint8_t *e = d->msix_table + 16 * v;
    *addr = bytes_get(e, 0, 4) | (uint64_t)bytes_get(e, 4, 4) << 32;
    *data = bytes_get(e, 8, 4);
}

/* Make vector @v's eventfd raise its current message: bind a new one, or re-route the
 * one it has. True when the eventfd may be written for it. A message the backend refused
 * (or a backend without eventfds) is not asked again until the guest changes it, so a
 * delivery costs no system call beyond the write. Host lock held. */
static bool msix_fd_sync(struct pci_device *d, unsigned v)
{
    if (!d->msix_fd)
        return false;                 /* released: the device is going away */
    struct pci_msix_fd *f = &d->msix_fd[v];
    uint64_t addr;
    uint32_t data;
    msix_message(d, v, &addr, &data);
    if ((f->fd >= 0 || f->failed) && f->addr == addr && f->data == data)
        return !f->failed && f->fd >= 0;
    int rc = f->fd >= 0 ? machine_msi_fd_update(d->host->m, f->fd, addr, data)
                        : machine_msi_fd_add(d->host->m, addr, data, &f->fd);
    f->addr = addr;
    f->data = data;
    f->failed = rc != 0;
    return !f->failed && f->fd >= 0;
}

static void msix_fds_release(struct pci_device *d)
{
    if (!d->msix_fd)
        return;
    for (unsigned v = 0; v < d->msix_vectors; v++)
        machine_msi_fd_del(d->host->m, d->msix_fd[v].fd);
    /* The device's I/O thread may still signal until the device's destroy stops it: from
     * here on its messages go through machine_msi(). */
    free(d->msix_fd);
    d->msix_fd = NULL;
}

static void msix_vector(struct pci_device *d, unsigned v)
{
    if (v >= d->msix_vectors)
        return;
    if (msix_masked(d, v)) {
        d->msix_pba[v / 64] |= 1ull << (v % 64);
        return;
    }
    /* The event channel, host -> guest: the vector's eventfd (kvm raises the MSI in the
     * kernel), else a call into the machine (KVM_SIGNAL_MSI, emu's LAPICs). The mask
     * check above stays ours either way, so a masked vector only ever sets its PBA bit. */
    if (msix_fd_sync(d, v)) {
        uint64_t one = 1;
        /* Counted first: whoever sees the message may look at the count. */
        atomic_fetch_add(&msix_sent_by_fd, 1);
        if (write(d->msix_fd[v].fd, &one, sizeof one) == (ssize_t)sizeof one)
            return;
        atomic_fetch_sub(&msix_sent_by_fd, 1);
    }
    uint64_t addr;
    uint32_t data;
    msix_message(d, v, &addr, &data);
    atomic_fetch_add(&msix_sent_by_call, 1);
    machine_msi(d->host->m, addr, data);
}

static void msix_flush_one(struct pci_device *d, unsigned v)
{
    uint64_t bit = 1ull << (v % 64);
    /* An unmasked entry gets its route now (the guest just wrote it or unmasked it), so
     * the device's first interrupt does not wait for the routing table. */
    if (!msix_masked(d, v))
        msix_fd_sync(d, v);
    if ((d->msix_pba[v / 64] & bit) && !msix_masked(d, v)) {
        d->msix_pba[v / 64] &= ~bit;
        msix_vector(d, v);
    }
}

static void msix_flush(struct pci_device *d)
{
    if (!msix_enabled(d))
        return;
    for (unsigned v = 0; v < d->msix_vectors; v++)
        msix_flush_one(d, v);
}

void pci_irq_notify(struct pci_device *dev, unsigned vector)
{
    struct pci_host *h = dev->host;
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    if (msix_enabled(dev)) {
        msix_vector(dev, vector);
    } else if (msi_enabled(dev)) {
        msi_vector(dev, vector);
    } else {
        dev->intx_level = true;
        intx_update(dev);
    }
    pthread_mutex_unlock(&h->lock);
}

void pci_intx_set(struct pci_device *dev, bool level)
{
    struct pci_host *h = dev->host;
    if (!h) {
        dev->intx_level = level;
        return;
    }
    pthread_mutex_lock(&h->lock);
    dev->intx_level = level;
    intx_update(dev);
    pthread_mutex_unlock(&h->lock);
}

bool pci_bus_master(struct pci_device *dev)
{
    dev_lock(dev);
    bool on = dev->host && (cfg16(dev, PCI_COMMAND) & PCI_COMMAND_MASTER);
    dev_unlock(dev);
    return on;
}

bool pci_msi_enabled(struct pci_device *dev)
{
    dev_lock(dev);
    bool on = msi_enabled(dev);
    dev_unlock(dev);
    return on;
}

bool pci_msix_enabled(struct pci_device *dev)
{
    dev_lock(dev);
    bool on = msix_enabled(dev);
    dev_unlock(dev);
    return on;
}

/* ---- the MSI-X table and PBA, inside a memory BAR ---- */

static bool msix_in_table(const struct pci_device *d, uint64_t off)
{
    return off - d->msix_table_off < 16ull * d->msix_vectors;
}

static bool msix_in_pba(const struct pci_device *d, uint64_t off)
{
    return off - d->msix_pba_off < 8ull * ((d->msix_vectors + 63u) / 64u);
}

static bool msix_hit(const struct pci_device *d, const struct pci_bar *b, uint64_t off,
                     unsigned size)
{
    if (!d->msix_cap || b->index != d->msix_bar)
        return false;
    for (unsigned i = 0; i < size; i++)
        if (msix_in_table(d, off + i) || msix_in_pba(d, off + i))
            return true;
    return false;
}

/* Byte-wise, so any size and alignment the guest uses is safe; bytes of the access that
 * fall outside the table and PBA read 0 and are not written. */
static uint64_t msix_read(struct pci_device *d, uint64_t off, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < size && i < 8; i++) {
        uint64_t o = off + i;
        uint8_t byte = 0;
        if (msix_in_table(d, o))
            byte = d->msix_table[o - d->msix_table_off];
        else if (msix_in_pba(d, o))
            byte = ((const uint8_t *)d->msix_pba)[o - d->msix_pba_off];
        v |= (uint64_t)byte << (8 * i);
    }
    return v;
}

static void msix_write(struct pci_device *d, uint64_t off, unsigned size, uint64_t v)
{
    unsigned first = UINT32_MAX, last = 0;
    for (unsigned i = 0; i < size && i < 8; i++) {
        uint64_t o = off + i;
        if (!msix_in_table(d, o))
            continue;                 /* the PBA is read-only */
        unsigned t = (unsigned)(o - d->msix_table_off);
        uint8_t byte = (uint8_t)(v >> (8 * i));
        switch (t % 16) {
        case 0:
            byte &= 0xfc;             /* the address is dword-aligned */
            break;
        case 12:
            byte &= 1;                /* vector control: only the mask bit */
            break;
        case 13: case 14: case 15:
            byte = 0;
            break;
        }
        d->msix_table[t] = byte;
        if (first == UINT32_MAX)
            first = t / 16;
        last = t / 16;
    }
    if (first != UINT32_MAX && msix_enabled(d))
        for (unsigned e = first; e <= last; e++)
            msix_flush_one(d, e);
}

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
    struct pci_bar *b = opaque;
    struct pci_device *d = b->dev;
    if (msix_hit(d, b, off, size)) {
        pthread_mutex_lock(&d->host->lock);
        uint64_t v = msix_read(d, off, size);
        pthread_mutex_unlock(&d->host->lock);
        return v;
    }
    if (b->ops && b->ops->read)
        return b->ops->read(b->opaque, off, size);
    return 0;
}

static void bar_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    struct pci_bar *b = opaque;
    struct pci_device *d = b->dev;
    if (msix_hit(d, b, off, size)) {
        pthread_mutex_lock(&d->host->lock);
        msix_write(d, off, size, value);
        pthread_mutex_unlock(&d->host->lock);
        return;
    }
    if (b->ops && b->ops->write)
        b->ops->write(b->opaque, off, size, value);
}

static const struct machine_dev_ops bar_ops = { bar_read, bar_write };

/* ---- config space access, the one path for CF8/CFC and ECAM ---- */

static bool touches(unsigned off, unsigned size, unsigned start, unsigned len)
{
    return len && off < start + len && start < off + size;
}

static uint32_t dev_cfg_read(struct pci_device *d, unsigned off, unsigned size)
{
    uint32_t v = bytes_get(d->cfg, off, size);
    if (d->ops && d->ops->config_read)
        v = d->ops->config_read(d, off, size, v);
    return v;
}

static void dev_cfg_write(struct pci_device *d, unsigned off, unsigned size, uint32_t v)
{
    for (unsigned i = 0; i < size; i++) {
        unsigned o = off + i;
        uint8_t byte = (uint8_t)(v >> (8 * i));
        d->cfg[o] = (uint8_t)((d->cfg[o] & ~d->wmask[o]) | (byte & d->wmask[o]));
        d->cfg[o] &= (uint8_t)~(byte & d->w1c[o]);
    }
    if (touches(off, size, PCI_COMMAND, 2) || touches(off, size, PCI_BAR0, 4 * PCI_BARS))
        dev_sync_bars(d);
    intx_update(d);
    if (d->msi_cap && touches(off, size, d->msi_cap, d->msi_mask ? 24 : 16))
        msi_flush(d);
    if (d->msix_cap && touches(off, size, d->msix_cap, 12))
        msix_flush(d);
    if (d->ops && d->ops->config_write)
        d->ops->config_write(d, off, size, v);
}

static struct pci_device *host_dev(struct pci_host *h, unsigned bus, unsigned devfn)
{
    /* Bus 0 only, function 0 only: the other functions of a slot are absent. */
    if (bus != 0 || (devfn & 7))
        return NULL;
    return h->slot[devfn >> 3];
}

/* Read @size (1..8) bytes at @reg; bytes at or past @limit (256 through CF8/CFC, 4096
 * through ECAM) or of an absent device read as all-ones. Host lock held. */
static uint64_t host_cfg_read(struct pci_host *h, unsigned bus, unsigned devfn, unsigned reg,
                              unsigned size, unsigned limit)
{
    uint64_t v = UINT64_MAX;
    struct pci_device *d = host_dev(h, bus, devfn);
    if (!d)
        return v;
    for (unsigned done = 0; done < size && reg + done < limit;) {
        unsigned n = size - done > 4 ? 4 : size - done;
        if (reg + done + n > limit)
            n = limit - (reg + done);
        uint64_t bits = n == 4 ? 0xffffffffull : (1ull << (8 * n)) - 1;
        uint64_t x = dev_cfg_read(d, reg + done, n) & bits;
        v = (v & ~(bits << (8 * done))) | x << (8 * done);
        done += n;
    }
    return v;
}

static void host_cfg_write(struct pci_host *h, unsigned bus, unsigned devfn, unsigned reg,
                           unsigned size, uint64_t v, unsigned limit)
{
    struct pci_device *d = host_dev(h, bus, devfn);
    if (!d)
        return;
    for (unsigned done = 0; done < size && reg + done < limit;) {
        unsigned n = size - done > 4 ? 4 : size - done;
        if (reg + done + n > limit)
            n = limit - (reg + done);
        dev_cfg_write(d, reg + done, n, (uint32_t)(v >> (8 * done)));
        done += n;
    }
}

/* Mechanism #1: the address register takes only 32-bit accesses (byte and word accesses
 * to 0xcf8..0xcfb are other registers on real chipsets; here they do nothing, which also
 * makes Linux's mechanism #2 probe fail as it should). */
static uint64_t cf8_read(void *opaque, uint64_t off, unsigned size)
{
    struct pci_host *h = opaque;
    if (off != 0 || size != 4)
        return UINT64_MAX;
    pthread_mutex_lock(&h->lock);
    uint32_t v = h->cf8;
    pthread_mutex_unlock(&h->lock);
    return v;
}

static void cf8_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
    struct pci_host *h = opaque;
    if (off != 0 || size != 4)
        return;
    pthread_mutex_lock(&h->lock);
    h->cf8 = (uint32_t)v & 0x80fffffcu;   /* enable, bus, device, function, register */
    pthread_mutex_unlock(&h->lock);
}

static uint64_t cfc_read(void *opaque, uint64_t off, unsigned size)
{
    struct pci_host *h = opaque;
    uint64_t v = UINT64_MAX;
    pthread_mutex_lock(&h->lock);
    uint32_t a = h->cf8;
    if (a & CF8_ENABLE)
        v = host_cfg_read(h, (a >> 16) & 0xff, (a >> 8) & 0xff, (a & 0xfc) + (unsigned)off,
                          size, 256);
    pthread_mutex_unlock(&h->lock);
    return v;
}

static void cfc_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
    struct pci_host *h = opaque;
    pthread_mutex_lock(&h->lock);
    uint32_t a = h->cf8;
    if (a & CF8_ENABLE)
        host_cfg_write(h, (a >> 16) & 0xff, (a >> 8) & 0xff, (a & 0xfc) + (unsigned)off, size,
                       v, 256);
    pthread_mutex_unlock(&h->lock);
}

/* ECAM: offset bits 19:15 device, 14:12 function, 11:0 register; the window is bus 0's. */
static uint64_t ecam_read(void *opaque, uint64_t off, unsigned size)
{
    struct pci_host *h = opaque;
    pthread_mutex_lock(&h->lock);
    uint64_t v = host_cfg_read(h, 0, (unsigned)(off >> 12) & 0xff, (unsigned)off & 0xfff,
                               size, PCI_CONFIG_SIZE);
    pthread_mutex_unlock(&h->lock);
    return v;
}

static void ecam_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
    struct pci_host *h = opaque;
    pthread_mutex_lock(&h->lock);
    host_cfg_write(h, 0, (unsigned)(off >> 12) & 0xff, (unsigned)off & 0xfff, size, v,
                   PCI_CONFIG_SIZE);
    pthread_mutex_unlock(&h->lock);
}

static const struct machine_dev_ops cf8_ops = { cf8_read, cf8_write };
static const struct machine_dev_ops cfc_ops = { cfc_read, cfc_write };
static const struct machine_dev_ops ecam_ops = { ecam_read, ecam_write };

/* ---- devices on the machine ---- */

static void pdev_reset(struct machine_device *md)
{
    struct pci_device *d = container_of(md, struct pci_device, base);
    struct pci_host *h = d->host;
    pthread_mutex_lock(&h->lock);
    bool released = false;
    for (unsigned i = 0; i < PCI_BARS; i++) {
        released |= d->bar[i].state == PCI_BAR_MAPPED;
        bar_unmap(d, &d->bar[i]);
    }
    /* Back to the registered state: command 0 (nothing decodes), BARs at their assigned
     * addresses, MSI and MSI-X off, every MSI-X entry masked, nothing pending. */
    memcpy(d->cfg, d->init, sizeof d->cfg);
    if (d->msix_table) {
        memset(d->msix_table, 0, 16u * d->msix_vectors);
        for (unsigned v = 0; v < d->msix_vectors; v++)
            d->msix_table[16 * v + 12] = 1;
        memset(d->msix_pba, 0, 8u * ((d->msix_vectors + 63u) / 64u));
    }
    d->intx_level = false;
    intx_update(d);
    if (released)
        host_retry_failed(h);
    pthread_mutex_unlock(&h->lock);
    if (d->ops && d->ops->reset)
        d->ops->reset(d);
}

static void pdev_destroy(struct machine_device *md)
{
    struct pci_device *d = container_of(md, struct pci_device, base);
    struct pci_host *h = d->host;
    pthread_mutex_lock(&h->lock);
    for (unsigned i = 0; i < PCI_BARS; i++)
        bar_unmap(d, &d->bar[i]);
    d->intx_level = false;
    intx_update(d);
    msix_fds_release(d);
    h->slot[d->slot] = NULL;
    pthread_mutex_unlock(&h->lock);
    pci_device_cleanup(d);
    if (d->ops && d->ops->destroy)
        d->ops->destroy(d);
}

/* Snapshot layout of a PCI device: its 4096 bytes of configuration space, the MSI-X
 * table (16 bytes per vector) and PBA (8 bytes per 64 vectors) if it has MSI-X, the INTx
 * level it asks for (u8), then the device's own state (pci_device_ops.save). The BAR
 * mappings, the INTx line and MSI-X routes are derived again from these on restore. */
static int pdev_save(struct machine_device *md, struct snap_buf *b)
{
    struct pci_device *d = container_of(md, struct pci_device, base);
    if (!d->ops || !d->ops->save)
        return VMCORE_ENOTSUP;
    pthread_mutex_lock(&d->host->lock);
    snap_buf_put(b, d->cfg, sizeof d->cfg);
    if (d->msix_table) {
        snap_buf_put(b, d->msix_table, 16u * d->msix_vectors);
        snap_buf_put(b, d->msix_pba, 8u * ((d->msix_vectors + 63u) / 64u));
    }
    snap_buf_u8(b, d->intx_level);
    pthread_mutex_unlock(&d->host->lock);
    return d->ops->save(d, b);
}

static int pdev_restore(struct machine_device *md, struct snap_rd *r, int64_t shift_ns)
{
    struct pci_device *d = container_of(md, struct pci_device, base);
    (void)shift_ns;
    if (!d->ops || !d->ops->restore)
        return snap_rd_fail(r, "this PCI device cannot be restored yet");
    uint8_t *cfg = malloc(PCI_CONFIG_SIZE);
    size_t tlen = d->msix_table ? 16u * d->msix_vectors : 0;
    size_t plen = d->msix_table ? 8u * ((d->msix_vectors + 63u) / 64u) : 0;
    uint8_t *tab = malloc(tlen + plen + 1);
    if (!cfg || !tab) {
        free(cfg);
        free(tab);
        return snap_rd_fail(r, "out of memory");
    }
    snap_rd_get(r, cfg, PCI_CONFIG_SIZE);
    snap_rd_get(r, tab, tlen + plen);
    uint8_t intx = snap_rd_u8(r);
    int rc = r->failed ? VMCORE_EIMAGE : 0;
    /* only what the guest can write may differ from the registered state (the status
     * register's interrupt bit follows the INTx level) */
    for (unsigned k = 0; rc == 0 && k < PCI_CONFIG_SIZE; k++) {
        uint8_t ro = (uint8_t)(~d->wmask[k] & ~d->w1c[k]);
        if (k == PCI_STATUS)
            ro &= (uint8_t)~PCI_STATUS_INTERRUPT;
        if ((cfg[k] ^ d->init[k]) & ro)
            rc = snap_rd_fail(r, "config byte 0x%x is 0x%02x, read-only 0x%02x", k, cfg[k],
                              d->init[k]);
    }
    if (rc == 0 && intx > 1)
        rc = snap_rd_fail(r, "an INTx level that is neither 0 nor 1");
    if (rc == 0) {
        pthread_mutex_lock(&d->host->lock);
        memcpy(d->cfg, cfg, PCI_CONFIG_SIZE);
        if (d->msix_table) {
            memcpy(d->msix_table, tab, tlen);
            memcpy(d->msix_pba, tab + tlen, plen);
        }
        d->intx_level = intx;
        dev_sync_bars(d);
        intx_update(d);
        pthread_mutex_unlock(&d->host->lock);
        rc = d->ops->restore(d, r);
    }
    free(cfg);
    free(tab);
    return rc;
}

static void pdev_quiesce(struct machine_device *md, bool on)
{
    struct pci_device *d = container_of(md, struct pci_device, base);
    if (d->ops && d->ops->quiesce)
        d->ops->quiesce(d, on);
}

static const struct machine_device_ops pdev_ops = {
    .type = "pci-device",
    .reset = pdev_reset,
    .destroy = pdev_destroy,
    .save = pdev_save,
    .restore = pdev_restore,
    .quiesce = pdev_quiesce,
};

/* Place @size bytes at *@next (naturally aligned, to at least @min_align) below @end. */
static int window_take(uint64_t *next, uint64_t end, uint64_t size, uint64_t min_align,
                       uint64_t *addr)
{
    uint64_t a = align_up(*next, size > min_align ? size : min_align);
    if (a < *next || a > end || size > end - a)
        return VMCORE_ELIMIT;
    *addr = a;
    *next = a + size;
    return 0;
}

int pci_device_register(struct machine *m, struct pci_device *dev, const char *name, int slot)
{
    struct pci_host *h = host_of(m);
    if (!h)
        return VMCORE_ENOENT;
    if (!dev || !name || dev->host || slot == 0 || slot >= PCI_SLOTS)
        return VMCORE_EINVAL;
    pthread_mutex_lock(&h->lock);
    int rc = 0;
    if (slot < 0) {
        for (slot = 1; slot < PCI_SLOTS && h->slot[slot]; slot++)
            ;
        if (slot == PCI_SLOTS)
            rc = VMCORE_ELIMIT;
    } else if (h->slot[slot]) {
        rc = VMCORE_EBUSY;
    }
    /* Firmware's job, done here: every BAR gets an address in its window. Pages are the
     * smallest unit for memory, so two devices never share a page (kvm maps by page). */
    uint64_t io = h->io_next, m32 = h->mem32_next, m64 = h->mem64_next;
    for (unsigned i = 0; rc == 0 && i < PCI_BARS; i++) {
        struct pci_bar *b = &dev->bar[i];
        uint64_t a = 0;
        switch (b->type & ~PCI_BAR_PREFETCH) {
        case PCI_BAR_IO:
            rc = window_take(&io, PLAT_PCI_IO_END, b->size, 4, &a);
            break;
        case PCI_BAR_MEM32:
            rc = window_take(&m32, PLAT_PCI_MMIO32_END, b->size, 4096, &a);
            break;
        case PCI_BAR_MEM64:
            rc = window_take(&m64, PLAT_PCI_MMIO64_END, b->size, 4096, &a);
            break;
        default:
            continue;
        }
        if (rc)
            break;
        b->assigned = a;
        unsigned reg = PCI_BAR0 + 4 * i;
        uint32_t low = bytes_get(dev->cfg, reg, 4) & ((b->type & ~PCI_BAR_PREFETCH) ==
                                                      PCI_BAR_IO ? 3u : 0xfu);
        pci_config_set(dev, reg, 4, (uint32_t)a | low);
        if ((b->type & ~PCI_BAR_PREFETCH) == PCI_BAR_MEM64)
            pci_config_set(dev, reg + 4, 4, (uint32_t)(a >> 32));
    }
    if (rc == 0 && (rc = machine_device_add(m, &dev->base, &pdev_ops, name)) == 0) {
        uint8_t pin = dev->cfg[PCI_INTERRUPT_PIN];
        if (pin >= 1 && pin <= 4)
            dev->cfg[PCI_INTERRUPT_LINE] = (uint8_t)plat_pci_intx_gsi((unsigned)slot, pin - 1u);
        h->io_next = io;
        h->mem32_next = m32;
        h->mem64_next = m64;
        h->slot[slot] = dev;
        dev->slot = slot;
        dev->host = h;
        memcpy(dev->init, dev->cfg, sizeof dev->init);
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

struct pci_device *pci_device_at(struct machine *m, unsigned slot)
{
    struct pci_host *h = host_of(m);
    if (!h || slot >= PCI_SLOTS)
        return NULL;
    pthread_mutex_lock(&h->lock);
    struct pci_device *d = h->slot[slot];
    pthread_mutex_unlock(&h->lock);
    return d;
}

uint64_t pci_bar_map_failures(struct machine *m)
{
    struct pci_host *h = host_of(m);
    if (!h)
        return 0;
    pthread_mutex_lock(&h->lock);
    uint64_t n = h->map_failures;
    pthread_mutex_unlock(&h->lock);
    return n;
}

/* ---- the host ---- */

static void host_reset(struct machine_device *md)
{
    struct pci_host *h = container_of(md, struct pci_host, base);
    pthread_mutex_lock(&h->lock);
    h->cf8 = 0;
    memcpy(h->bridge.cfg, h->bridge.init, sizeof h->bridge.cfg);
    pthread_mutex_unlock(&h->lock);
}

/* After every PCI device (added later, so destroyed earlier). */
static void host_destroy(struct machine_device *md)
{
    struct pci_host *h = container_of(md, struct pci_host, base);
    machine_unmap(h->m, MACHINE_PIO, CF8_PORT, h);
    machine_unmap(h->m, MACHINE_PIO, CFC_PORT, h);
    machine_unmap(h->m, MACHINE_MMIO, PLAT_PCI_ECAM_BASE, h);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* Snapshot layout: the 0xcf8 address register (u32), the host bridge's configuration
 * space (4096 bytes), the BAR mapping failures so far (u64). The bridge has no BARs or
 * interrupts; the PCI devices (pdev_ops) save themselves, or cannot yet. */
static int host_save(struct machine_device *md, struct snap_buf *b)
{
    struct pci_host *h = container_of(md, struct pci_host, base);
    pthread_mutex_lock(&h->lock);
    snap_buf_u32(b, h->cf8);
    snap_buf_put(b, h->bridge.cfg, sizeof h->bridge.cfg);
    snap_buf_u64(b, h->map_failures);
    pthread_mutex_unlock(&h->lock);
    return 0;
}

static int host_restore(struct machine_device *md, struct snap_rd *r, int64_t shift_ns)
{
    struct pci_host *h = container_of(md, struct pci_host, base);
    uint8_t cfg[PCI_CONFIG_SIZE];
    (void)shift_ns;
    uint32_t cf8 = snap_rd_u32(r);
    snap_rd_get(r, cfg, sizeof cfg);
    uint64_t failures = snap_rd_u64(r);
    if (r->failed)
        return VMCORE_EIMAGE;
    /* only what the guest could have written may differ from the registered state */
    for (unsigned k = 0; k < PCI_CONFIG_SIZE; k++)
        if ((cfg[k] ^ h->bridge.init[k]) & ~h->bridge.wmask[k] & ~h->bridge.w1c[k])
            return snap_rd_fail(r, "host bridge config byte 0x%x is 0x%02x, read-only 0x%02x",
                                k, cfg[k], h->bridge.init[k]);
    pthread_mutex_lock(&h->lock);
    h->cf8 = cf8;
    memcpy(h->bridge.cfg, cfg, sizeof cfg);
    h->map_failures = failures;
    pthread_mutex_unlock(&h->lock);
    return 0;
}

static const struct machine_device_ops host_dev_ops = {
    .type = PCI_HOST_NAME,
    .reset = host_reset,
    .destroy = host_destroy,
    .save = host_save,
    .restore = host_restore,
};

int pci_host_init(struct machine *m, const struct vmcore_config *cfg)
{
    (void)cfg; /* no configurable PCI devices yet */
    struct pci_host *h = calloc(1, sizeof *h);
    if (!h)
        return VMCORE_ENOMEM;
    pthread_mutexattr_t attr;
    if (pthread_mutexattr_init(&attr)) {
        free(h);
        return VMCORE_ENOMEM;
    }
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    int e = pthread_mutex_init(&h->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    if (e) {
        free(h);
        return VMCORE_ENOMEM;
    }
    h->m = m;
    h->io_next = PLAT_PCI_IO_BASE;
    h->mem32_next = PLAT_PCI_MMIO32_BASE;
    h->mem64_next = PLAT_PCI_MMIO64_BASE;
    pci_device_init(&h->bridge, NULL, &(struct pci_id){ .vendor = PCI_HOST_VENDOR,
                                                        .device = PCI_HOST_DEVICE,
                                                        .class_code = 0x060000 });
    h->bridge.base.m = m;
    h->bridge.base.name = PCI_HOST_NAME;
    h->bridge.slot = 0;
    h->bridge.host = h;
    memcpy(h->bridge.init, h->bridge.cfg, sizeof h->bridge.init);
    h->slot[0] = &h->bridge;
    int rc = machine_device_add(m, &h->base, &host_dev_ops, PCI_HOST_NAME);
    if (rc) {
        pthread_mutex_destroy(&h->lock);
        free(h);
        return rc;
    }
    /* From here the machine owns the host: a failure leaves it to machine_destroy(). */
    for (unsigned g = MACHINE_GSI_PCI_FIRST; g < MACHINE_GSI_PCI_FIRST + 8; g++)
        if ((rc = machine_irq_claim(m, g, PCI_HOST_NAME)))
            return rc;
    if ((rc = machine_map(m, MACHINE_PIO, CF8_PORT, 4, &cf8_ops, h, "pci-cf8", 0)) ||
        (rc = machine_map(m, MACHINE_PIO, CFC_PORT, 4, &cfc_ops, h, "pci-cfc", 0)) ||
        (rc = machine_map(m, MACHINE_MMIO, PLAT_PCI_ECAM_BASE, PLAT_PCI_ECAM_SIZE, &ecam_ops, h,
                          "pci-ecam", 0)))
        return rc;
    return 0;
}
