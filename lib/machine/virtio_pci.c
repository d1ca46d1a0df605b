/* The virtio 1.x PCI transport (virtio_pci.h; virtio 1.2 section 4.1). */
#include "virtio_pci.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../core/err.h"

/* virtio_pci_cap cfg_type values (4.1.4). */
enum { CAP_COMMON = 1, CAP_NOTIFY = 2, CAP_ISR = 3, CAP_DEVICE = 4 };

/* Common configuration layout (4.1.4.3). */
enum {
    CC_DFSELECT = 0x00, CC_DF = 0x04, CC_GFSELECT = 0x08, CC_GF = 0x0c,
    CC_MSIX_CONFIG = 0x10, CC_NUM_QUEUES = 0x12, CC_STATUS = 0x14, CC_GENERATION = 0x15,
    CC_Q_SELECT = 0x16, CC_Q_SIZE = 0x18, CC_Q_VECTOR = 0x1a, CC_Q_ENABLE = 0x1c,
    CC_Q_NOTIFY_OFF = 0x1e, CC_Q_DESC = 0x20, CC_Q_DRIVER = 0x28, CC_Q_DEVICE = 0x30,
    CC_SIZE = 0x38,
};

static unsigned nvectors(const struct virtio_dev *vd) { return vd->ops->nqueues + 1; }

static atomic_uint_fast64_t count_notify_mmio, count_doorbells;

void virtio_pci_counts(struct virtio_pci_counts *out)
{
    out->notify_mmio = atomic_load(&count_notify_mmio);
    out->doorbells_bound = atomic_load(&count_doorbells);
}

/* An interrupt for @vector (queue or config), or through INTx + ISR when MSI-X is off.
 * Called without vd->lock, so that delivery (the PCI host's lock, then the irqchip's)
 * never runs inside it and a vCPU reading our registers does not wait behind it. */
static void raise_irq(struct virtio_dev *vd, uint16_t vector, uint8_t isr_bit)
{
    if (pci_msix_enabled(&vd->pci)) {
        if (vector != VIRTIO_MSI_NO_VECTOR)
            pci_irq_notify(&vd->pci, vector);
        return;
    }
    __atomic_fetch_or(&vd->isr, isr_bit, __ATOMIC_SEQ_CST);
    pci_intx_set(&vd->pci, true);
}

/* A device reset (status 0, or a PCI reset): queues, features and status back to zero.
 * The caller holds vd->lock. */
static void reset_locked(struct virtio_dev *vd)
{
    vd->driver_features = 0;
    vd->dfselect = vd->gfselect = 0;
    vd->msix_config = VIRTIO_MSI_NO_VECTOR;
    vd->status = 0;
    vd->queue_select = 0;
    __atomic_store_n(&vd->isr, 0, __ATOMIC_SEQ_CST);
    if (vd->thread_started && vd->ops->reset)
        vd->ops->reset(vd);
    vd->pushed = 0;
    vd->broke = false;
    for (unsigned i = 0; i < vd->ops->nqueues; i++) {
        vd->q[i].size = vd->ops->queue_max;
        vd->q[i].vector = VIRTIO_MSI_NO_VECTOR;
        vd->q[i].enable = 0;
        vd->q[i].desc = vd->q[i].driver = vd->q[i].device = 0;
        vq_reset(&vd->q[i].vq);
    }
}

/* The device found the driver broke a rule: DEVICE_NEEDS_RESET (2.1.2); the caller
 * raises the config interrupt after unlocking. */
static void mark_broken_locked(struct virtio_dev *vd)
{
    if (!(vd->status & VIRTIO_STATUS_NEEDS_RESET)) {
        vd->status |= VIRTIO_STATUS_NEEDS_RESET;
        vd->generation++;
    }
}

static uint64_t common_read(struct virtio_dev *vd, uint64_t off, unsigned size)
{
    unsigned qs = vd->queue_select;
    bool qok = qs < vd->ops->nqueues;
    uint64_t v = 0;
    uint64_t feats = vd->features;
    switch (off) {
    case CC_DFSELECT: v = vd->dfselect; break;
    case CC_DF: v = vd->dfselect < 2 ? (uint32_t)(feats >> (32 * vd->dfselect)) : 0; break;
    case CC_GFSELECT: v = vd->gfselect; break;
    case CC_GF:
        v = vd->gfselect < 2 ? (uint32_t)(vd->driver_features >> (32 * vd->gfselect)) : 0;
        break;
    case CC_MSIX_CONFIG: v = vd->msix_config; break;
    case CC_NUM_QUEUES: v = vd->ops->nqueues; break;
    case CC_STATUS: v = vd->status; break;
    case CC_GENERATION: v = vd->generation; break;
    case CC_Q_SELECT: v = qs; break;
    case CC_Q_SIZE: v = qok ? vd->q[qs].size : 0; break;
    case CC_Q_VECTOR: v = qok ? vd->q[qs].vector : VIRTIO_MSI_NO_VECTOR; break;
    case CC_Q_ENABLE: v = qok ? vd->q[qs].enable : 0; break;
    case CC_Q_NOTIFY_OFF: v = qok ? qs : 0; break;
    case CC_Q_DESC: case CC_Q_DESC + 4:
        v = qok ? vd->q[qs].desc >> (8 * (off - CC_Q_DESC)) : 0; break;
    case CC_Q_DRIVER: case CC_Q_DRIVER + 4:
        v = qok ? vd->q[qs].driver >> (8 * (off - CC_Q_DRIVER)) : 0; break;
    case CC_Q_DEVICE: case CC_Q_DEVICE + 4:
        v = qok ? vd->q[qs].device >> (8 * (off - CC_Q_DEVICE)) : 0; break;
    default: return 0;
    }
    return size >= 8 ? v : v & ((1ull << (8 * size)) - 1);
}

/* Replace the 32-bit half at byte @half (0 or 4) of a 64-bit field, or all of it. */
static void set64(uint64_t *field, unsigned half, unsigned size, uint64_t v)
{
    if (size == 8 && half == 0) {
        *field = v;
        return;
    }
    unsigned sh = 8 * half;
    *field = (*field & ~(0xffffffffull << sh)) | ((v & 0xffffffffu) << sh);
}

static void write_status(struct virtio_dev *vd, uint8_t v)
{
    if (v == 0) {
        reset_locked(vd);
        return;
    }
    /* FEATURES_OK only for a subset of what we offer that includes VERSION_1 (3.1.1,
     * 6.1: we are not a transitional device). The driver reads it back and gives up. */
    if ((v & VIRTIO_STATUS_FEATURES_OK) && !(vd->status & VIRTIO_STATUS_FEATURES_OK)) {
        if ((vd->driver_features & ~vd->features) ||
            !(vd->driver_features & (1ull << VIRTIO_F_VERSION_1)))
            v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
    }
    /* The driver cannot clear bits without a reset, nor set NEEDS_RESET itself. */
    vd->status = (uint8_t)((vd->status & VIRTIO_STATUS_NEEDS_RESET) | v | vd->status);
}

static void enable_queue(struct virtio_dev *vd, unsigned qs)
{
    if (vd->q[qs].enable)
        return;
    vd->q[qs].enable = 1;
    bool ev = vd->driver_features & (1ull << VIRTIO_F_EVENT_IDX);
    if (vq_setup(&vd->q[qs].vq, vd->m, vd->q[qs].size, vd->ops->queue_max, vd->q[qs].desc,
                 vd->q[qs].driver, vd->q[qs].device, ev) < 0)
        mark_broken_locked(vd);
}

static void common_write(struct virtio_dev *vd, uint64_t off, unsigned size, uint64_t v)
{
    unsigned qs = vd->queue_select;
    bool qok = qs < vd->ops->nqueues;
    /* Queue registers may change only while the queue is disabled (4.1.4.3.2). */
    bool qw = qok && !vd->q[qs].enable;
    switch (off) {
    case CC_DFSELECT: vd->dfselect = (uint32_t)v; break;
    case CC_GFSELECT: vd->gfselect = (uint32_t)v; break;
    case CC_GF:
        if (vd->gfselect < 2 && !(vd->status & VIRTIO_STATUS_FEATURES_OK)) {
            unsigned sh = 32 * vd->gfselect;
            vd->driver_features = (vd->driver_features & ~(0xffffffffull << sh)) |
                                  ((v & 0xffffffffull) << sh);
        }
        break;
    case CC_MSIX_CONFIG:
        vd->msix_config = (uint16_t)v < nvectors(vd) ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
        break;
    case CC_STATUS: write_status(vd, (uint8_t)v); break;
    case CC_Q_SELECT: vd->queue_select = (uint16_t)v; break;
    case CC_Q_SIZE: if (qw) vd->q[qs].size = (uint16_t)v; break;
    case CC_Q_VECTOR:
        if (qok)
            vd->q[qs].vector = (uint16_t)v < nvectors(vd) ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
        break;
    case CC_Q_ENABLE: if (qok && (v & 1)) enable_queue(vd, qs); break;
    case CC_Q_DESC: case CC_Q_DESC + 4:
        if (qw) set64(&vd->q[qs].desc, (unsigned)(off - CC_Q_DESC), size, v);
        break;
    case CC_Q_DRIVER: case CC_Q_DRIVER + 4:
        if (qw) set64(&vd->q[qs].driver, (unsigned)(off - CC_Q_DRIVER), size, v);
        break;
    case CC_Q_DEVICE: case CC_Q_DEVICE + 4:
        if (qw) set64(&vd->q[qs].device, (unsigned)(off - CC_Q_DEVICE), size, v);
        break;
    default: break;       /* read-only or unknown: ignored */
    }
}

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
    struct virtio_dev *vd = opaque;
    uint64_t v = 0;
    if (off < VIRTIO_PCI_COMMON_OFF + CC_SIZE) {
        pthread_mutex_lock(&vd->lock);
        v = common_read(vd, off, size);
        pthread_mutex_unlock(&vd->lock);
    } else if (off == VIRTIO_PCI_ISR_OFF) {
        /* Reading the ISR clears it and deasserts INTx (4.1.4.5). */
        v = __atomic_exchange_n(&vd->isr, 0, __ATOMIC_SEQ_CST);
        pci_intx_set(&vd->pci, false);
    } else if (off >= VIRTIO_PCI_DEVICE_OFF && off - VIRTIO_PCI_DEVICE_OFF < vd->config_len) {
        unsigned o = (unsigned)(off - VIRTIO_PCI_DEVICE_OFF);
        pthread_mutex_lock(&vd->lock);
        for (unsigned i = 0; i < size && o + i < vd->config_len; i++)
            v |= (uint64_t)vd->config[o + i] << (8 * i);
        pthread_mutex_unlock(&vd->lock);
    }
    return v;
}

static void bar_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
    struct virtio_dev *vd = opaque;
    if (off < VIRTIO_PCI_COMMON_OFF + CC_SIZE) {
        pthread_mutex_lock(&vd->lock);
        uint8_t before = vd->status;
        common_write(vd, off, size, v);
        bool broke = !(before & VIRTIO_STATUS_NEEDS_RESET) &&
                     (vd->status & VIRTIO_STATUS_NEEDS_RESET);
        uint16_t vec = vd->msix_config;
        pthread_mutex_unlock(&vd->lock);
        if (broke)
            raise_irq(vd, vec, 2);
    } else if (off >= VIRTIO_PCI_NOTIFY_OFF &&
               off < VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * vd->ops->nqueues) {
        /* The event channel, guest -> host: wake the I/O thread and return at once. */
        unsigned q = (unsigned)(off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT;
        uint64_t one = 1;
        atomic_fetch_add_explicit(&count_notify_mmio, 1, memory_order_relaxed);
        if (write(vd->q[q].efd, &one, sizeof one) < 0) {
            /* EAGAIN: the counter is saturated, the thread is already due to wake. */
        }
    } else if (off >= VIRTIO_PCI_DEVICE_OFF && off - VIRTIO_PCI_DEVICE_OFF < vd->config_len &&
               vd->ops->config_write) {
        unsigned o = (unsigned)(off - VIRTIO_PCI_DEVICE_OFF);
        pthread_mutex_lock(&vd->lock);
        unsigned n = 0;
        for (; n < size && o + n < vd->config_len; n++)
            vd->config[o + n] = (uint8_t)(v >> (8 * n));
        vd->ops->config_write(vd, o, n);
        pthread_mutex_unlock(&vd->lock);
    }
}

static const struct machine_dev_ops bar_ops = { bar_read, bar_write };

static bool running_locked(struct virtio_dev *vd, unsigned q)
{
    return q < vd->ops->nqueues && (vd->status & VIRTIO_STATUS_DRIVER_OK) &&
           !(vd->status & VIRTIO_STATUS_NEEDS_RESET) && vq_ready(&vd->q[q].vq) &&
           pci_bus_master(&vd->pci);
}

bool virtio_pci_running(struct virtio_dev *vd, unsigned q) { return running_locked(vd, q); }

int virtio_pci_pop(struct virtio_dev *vd, unsigned q, struct vq_chain *c)
{
    if (!running_locked(vd, q))
        return 0;
    int r = vq_pop(&vd->q[q].vq, c);
    if (r < 0) {
        mark_broken_locked(vd);
        vd->broke = true;
    }
    return r;
}

void virtio_pci_push(struct virtio_dev *vd, unsigned q, const struct vq_chain *c,
                     uint32_t written)
{
    if (!running_locked(vd, q))
        return;
    vq_push(&vd->q[q].vq, c, written);
    vd->pushed |= 1u << q;
}

bool virtio_pci_rearm(struct virtio_dev *vd, unsigned q)
{
    return running_locked(vd, q) && vq_enable_notify(&vd->q[q].vq);
}

/* The interrupts a hook's pushes call for: collected under the lock, sent after it. */
struct pending_irqs {
    unsigned n;
    uint16_t vec[VIRTIO_PCI_MAX_QUEUES];
    bool config;
    uint16_t config_vec;
};

static void collect_locked(struct virtio_dev *vd, struct pending_irqs *p)
{
    p->n = 0;
    for (unsigned q = 0; q < vd->ops->nqueues; q++)
        if ((vd->pushed & 1u << q) && running_locked(vd, q) &&
            vq_should_notify(&vd->q[q].vq))
            p->vec[p->n++] = vd->q[q].vector;
    vd->pushed = 0;
    p->config = vd->broke;
    p->config_vec = vd->msix_config;
    vd->broke = false;
}

static void deliver(struct virtio_dev *vd, const struct pending_irqs *p)
{
    for (unsigned i = 0; i < p->n; i++)
        raise_irq(vd, p->vec[i], 1);
    if (p->config)
        raise_irq(vd, p->config_vec, 2);
}

/* Queue @q was notified (I/O thread): the device's notify hook, or drain it through
 * request until it is empty. */
static void service_queue(struct virtio_dev *vd, unsigned q)
{
    struct pending_irqs p;
    pthread_mutex_lock(&vd->lock);
    if (vd->ops->notify) {
        if (running_locked(vd, q))
            vd->ops->notify(vd, q);
    } else {
        for (;;) {
            int r;
            while ((r = virtio_pci_pop(vd, q, &vd->chain)) > 0) {
                uint32_t w = vd->ops->request(vd, q, &vd->chain);
                if (w != VIRTIO_REQ_ASYNC)
                    virtio_pci_push(vd, q, &vd->chain, w);
            }
            if (r < 0 || !virtio_pci_rearm(vd, q))
                break;
        }
    }
    collect_locked(vd, &p);
    pthread_mutex_unlock(&vd->lock);
    deliver(vd, &p);
}

static void *io_thread(void *arg)
{
    struct virtio_dev *vd = arg;
    unsigned n = vd->ops->nqueues;
    struct pollfd pfd[VIRTIO_PCI_MAX_QUEUES + 1 + VIRTIO_PCI_MAX_POLLFDS];
    for (unsigned i = 0; i < n; i++)
        pfd[i] = (struct pollfd){ .fd = vd->q[i].efd, .events = POLLIN };
    pfd[n] = (struct pollfd){ .fd = vd->stop_efd, .events = POLLIN };
    struct pollfd *extra = pfd + n + 1;
    for (;;) {
        unsigned nx = 0;
        if (vd->ops->poll_fds) {
            pthread_mutex_lock(&vd->lock);
            nx = vd->ops->poll_fds(vd, extra, VIRTIO_PCI_MAX_POLLFDS);
            pthread_mutex_unlock(&vd->lock);
            if (nx > VIRTIO_PCI_MAX_POLLFDS)
                nx = VIRTIO_PCI_MAX_POLLFDS;
        }
        if (poll(pfd, n + 1 + nx, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[n].revents)
            break;
        for (unsigned i = 0; i < n; i++) {
            if (!pfd[i].revents)
                continue;
            uint64_t cnt;
            if (read(vd->q[i].efd, &cnt, sizeof cnt) < 0) {
                /* EAGAIN: someone else drained it; nothing to do but look. */
            }
            service_queue(vd, i);
        }
        bool any = false;
        for (unsigned i = 0; i < nx; i++)
            any |= extra[i].revents != 0;
        if (any && vd->ops->poll_ready) {
            struct pending_irqs p;
            pthread_mutex_lock(&vd->lock);
            vd->ops->poll_ready(vd, extra, nx);
            collect_locked(vd, &p);
            pthread_mutex_unlock(&vd->lock);
            deliver(vd, &p);
        }
    }
    return NULL;
}

/* Stop and join the I/O thread, close the eventfds. */
static void release(struct virtio_dev *vd)
{
    if (vd->thread_started) {
        uint64_t one = 1;
        if (write(vd->stop_efd, &one, sizeof one) < 0) {
            /* cannot fail for a fresh eventfd counter of 1 */
        }
        pthread_join(vd->thread, NULL);
        vd->thread_started = false;
    }
    for (unsigned i = 0; i < VIRTIO_PCI_MAX_QUEUES; i++)
        if (vd->q[i].efd >= 0)
            close(vd->q[i].efd);
    if (vd->stop_efd >= 0)
        close(vd->stop_efd);
    pthread_mutex_destroy(&vd->lock);
}

static void vd_reset(struct pci_device *dev)
{
    struct virtio_dev *vd = (struct virtio_dev *)dev;
    pthread_mutex_lock(&vd->lock);
    reset_locked(vd);
    pthread_mutex_unlock(&vd->lock);
}

static void vd_destroy(struct pci_device *dev)
{
    struct virtio_dev *vd = (struct virtio_dev *)dev;
    release(vd);
    if (vd->ops->destroy)
        vd->ops->destroy(vd);
    free(vd);
}

/* BAR 4 mapped or unmapped (PCI host lock held): bind each queue's notify register to
 * its eventfd as a hypervisor doorbell, or release the bindings. Any length first (one
 * binding whatever width the driver writes), else the 16-bit write virtio drivers make
 * (4.1.5.2); a queue the backend will not bind keeps the MMIO path. */
static void vd_bar_map(struct pci_device *dev, unsigned index, uint64_t addr, bool mapped)
{
    struct virtio_dev *vd = (struct virtio_dev *)dev;
    if (index != VIRTIO_PCI_BAR)
        return;
    for (unsigned q = 0; q < vd->ops->nqueues; q++) {
        uint64_t gpa = addr + VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q;
        if (!mapped) {
            if (vd->doorbell_bound & 1u << q) {
                machine_ioeventfd_del(vd->m, vd->doorbell_gpa + VIRTIO_PCI_NOTIFY_OFF +
                                                 VIRTIO_PCI_NOTIFY_MULT * q,
                                      vd->doorbell_len, vd->q[q].efd);
                atomic_fetch_sub(&count_doorbells, 1);
            }
            continue;
        }
        unsigned len = q == 0 ? 0 : vd->doorbell_len;
        int rc = machine_ioeventfd_add(vd->m, gpa, len, vd->q[q].efd);
        if (rc && q == 0 && rc != VMCORE_ENOTSUP) {
            len = 2;
            rc = machine_ioeventfd_add(vd->m, gpa, len, vd->q[q].efd);
        }
        if (q == 0)
            vd->doorbell_len = len;
        if (rc == 0) {
            vd->doorbell_bound |= 1u << q;
            atomic_fetch_add(&count_doorbells, 1);
        }
    }
    if (mapped)
        vd->doorbell_gpa = addr;
    else
        vd->doorbell_bound = 0;
}

/* Snapshots. Layout of the transport's part: driver features (u64), dfselect gfselect
 * (u32 each), msix_config (u16), status generation isr (u8 each), queue_select (u16),
 * pushed (u32), broke (u8); per queue (the device's count): size vector enable (u16 each),
 * desc driver device (u64 each), last_avail used_idx signalled (u16 each), broken (u8);
 * the device config (u32 length, the bytes); then the device's own part
 * (virtio_dev_ops.save). A device without save cannot be saved yet. The caller quiesced
 * the device (vd->lock held: the I/O thread touches nothing meanwhile). */
static int vd_save(struct pci_device *dev, struct snap_buf *b)
{
    struct virtio_dev *vd = (struct virtio_dev *)dev;
    if (!vd->ops->save)
        return VMCORE_ENOTSUP;
    snap_buf_u64(b, vd->driver_features);
    snap_buf_u32(b, vd->dfselect);
    snap_buf_u32(b, vd->gfselect);
    snap_buf_u16(b, vd->msix_config);
    snap_buf_u8(b, vd->status);
    snap_buf_u8(b, vd->generation);
    snap_buf_u8(b, __atomic_load_n(&vd->isr, __ATOMIC_SEQ_CST));
    snap_buf_u16(b, vd->queue_select);
    snap_buf_u32(b, vd->pushed);
    snap_buf_u8(b, vd->broke);
    for (unsigned i = 0; i < vd->ops->nqueues; i++) {
        snap_buf_u16(b, vd->q[i].size);
        snap_buf_u16(b, vd->q[i].vector);
        snap_buf_u16(b, vd->q[i].enable);
        snap_buf_u64(b, vd->q[i].desc);
        snap_buf_u64(b, vd->q[i].driver);
        snap_buf_u64(b, vd->q[i].device);
        snap_buf_u16(b, vd->q[i].vq.last_avail);
        snap_buf_u16(b, vd->q[i].vq.used_idx);
        snap_buf_u16(b, vd->q[i].vq.signalled);
        snap_buf_u8(b, vd->q[i].vq.broken);
    }
    snap_buf_u32(b, vd->config_len);
    snap_buf_put(b, vd->config, vd->config_len);
    return vd->ops->save(vd, b);
}

static int vd_restore(struct pci_device *dev, struct snap_rd *r)
{
    struct virtio_dev *vd = (struct virtio_dev *)dev;
    if (!vd->ops->restore)
        return snap_rd_fail(r, "%s cannot be restored yet", vd->ops->type);
    uint64_t df = snap_rd_u64(r);
    uint32_t dfs = snap_rd_u32(r), gfs = snap_rd_u32(r);
    uint16_t mcfg = snap_rd_u16(r);
    uint8_t status = snap_rd_u8(r), gen = snap_rd_u8(r), isr = snap_rd_u8(r);
    uint16_t qsel = snap_rd_u16(r);
    uint32_t pushed = snap_rd_u32(r);
    uint8_t broke = snap_rd_u8(r);
    if (r->failed)
        return VMCORE_EIMAGE;
    if (df & ~vd->features)
        return snap_rd_fail(r, "driver features 0x%llx beyond the offered 0x%llx",
                            (unsigned long long)df, (unsigned long long)vd->features);
    if ((mcfg != VIRTIO_MSI_NO_VECTOR && mcfg >= nvectors(vd)) || isr > 3 || broke > 1 ||
        pushed >> vd->ops->nqueues)
        return snap_rd_fail(r, "config vector %u, ISR 0x%x, broke %u or pushed 0x%x out of "
                            "range", mcfg, isr, broke, pushed);
    pthread_mutex_lock(&vd->lock);
    reset_locked(vd);
    vd->driver_features = df;
    vd->dfselect = dfs;
    vd->gfselect = gfs;
    vd->msix_config = mcfg;
    vd->status = status;
    vd->generation = gen;
    __atomic_store_n(&vd->isr, isr, __ATOMIC_SEQ_CST);
    vd->queue_select = qsel;
    vd->pushed = pushed;
    vd->broke = broke;
    bool ev = df & (1ull << VIRTIO_F_EVENT_IDX);
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < vd->ops->nqueues; i++) {
        uint16_t size = snap_rd_u16(r), vec = snap_rd_u16(r), en = snap_rd_u16(r);
        uint64_t desc = snap_rd_u64(r), drv = snap_rd_u64(r), devp = snap_rd_u64(r);
        uint16_t la = snap_rd_u16(r), ui = snap_rd_u16(r), sig = snap_rd_u16(r);
        uint8_t broken = snap_rd_u8(r);
        if (r->failed) {
            rc = VMCORE_EIMAGE;
            break;
        }
        if (en > 1 || broken > 1 || (vec != VIRTIO_MSI_NO_VECTOR && vec >= nvectors(vd))) {
            rc = snap_rd_fail(r, "queue %u: enable %u, broken %u or vector %u out of range",
                              i, en, broken, vec);
            break;
        }
        vd->q[i].size = size;
        vd->q[i].vector = vec;
        vd->q[i].desc = desc;
        vd->q[i].driver = drv;
        vd->q[i].device = devp;
        if (en) {
            vd->q[i].enable = 1;
            if (!broken && vq_setup(&vd->q[i].vq, vd->m, size, vd->ops->queue_max, desc, drv,
                                    devp, ev) < 0) {
                rc = snap_rd_fail(r, "queue %u: %s", i, vd->q[i].vq.why);
                break;
            }
            vd->q[i].vq.last_avail = la;
            vd->q[i].vq.used_idx = ui;
            vd->q[i].vq.signalled = sig;
            vd->q[i].vq.broken = broken;
            if (broken)
                vd->q[i].vq.why = "broken before the snapshot";
        }
    }
    if (rc == 0) {
        uint32_t clen = snap_rd_u32(r);
        if (!r->failed && clen != vd->config_len)
            rc = snap_rd_fail(r, "device config of %u bytes, this device's is %u", clen,
                              vd->config_len);
        else if (!snap_rd_get(r, vd->config, clen))
            rc = VMCORE_EIMAGE;
    }
    if (rc == 0)
        rc = vd->ops->restore(vd, r);
    pthread_mutex_unlock(&vd->lock);
    /* buffers the driver posted before the save may wait for a notify it already gave:
     * look at every queue once */
    for (unsigned i = 0; rc == 0 && i < vd->ops->nqueues; i++) {
        uint64_t one = 1;
        if (vd->q[i].enable && write(vd->q[i].efd, &one, sizeof one) < 0) {
            /* a full counter is a notify already pending */
        }
    }
    return rc;
}

static void vd_quiesce(struct pci_device *dev, bool on)
{
    struct virtio_dev *vd = (struct virtio_dev *)dev;
    if (on)
        pthread_mutex_lock(&vd->lock);
    else
        pthread_mutex_unlock(&vd->lock);
}

static const struct pci_device_ops vd_pci_ops = {
    .reset = vd_reset,
    .destroy = vd_destroy,
    .bar_map = vd_bar_map,
    .save = vd_save,
    .restore = vd_restore,
    .quiesce = vd_quiesce,
};

/* One vendor capability (struct virtio_pci_cap, 4.1.4), @extra bytes after it. */
static int add_cap(struct pci_device *dev, uint8_t type, uint32_t off, uint32_t len,
                   bool notify)
{
    int at = pci_cap_add(dev, PCI_CAP_ID_VNDR, notify ? 20 : 16);
    if (at < 0)
        return at;
    pci_config_set(dev, (unsigned)at + 2, 1, notify ? 20 : 16);  /* cap_len */
    pci_config_set(dev, (unsigned)at + 3, 1, type);
    pci_config_set(dev, (unsigned)at + 4, 1, VIRTIO_PCI_BAR);
    pci_config_set(dev, (unsigned)at + 8, 4, off);
    pci_config_set(dev, (unsigned)at + 12, 4, len);
    if (notify)
        pci_config_set(dev, (unsigned)at + 16, 4, VIRTIO_PCI_NOTIFY_MULT);
    return 0;
}

int virtio_pci_create(struct machine *m, const struct virtio_dev_ops *ops, void *opaque,
                      uint64_t features, const void *config, unsigned config_len,
                      const char *name, struct virtio_dev **out)
{
    if (!ops->nqueues || ops->nqueues > VIRTIO_PCI_MAX_QUEUES ||
        config_len > sizeof ((struct virtio_dev *)0)->config)
        return VMCORE_EINVAL;
    struct virtio_dev *vd = calloc(1, sizeof *vd);
    if (!vd)
        return VMCORE_ENOMEM;
    vd->stop_efd = -1;
    for (unsigned i = 0; i < VIRTIO_PCI_MAX_QUEUES; i++)
        vd->q[i].efd = -1;
    vd->ops = ops;
    vd->opaque = opaque;
    vd->m = m;
    snprintf(vd->name, sizeof vd->name, "%s", name);
    vd->features = features | 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX |
                   1ull << VIRTIO_F_INDIRECT_DESC;
    if (config_len)
        memcpy(vd->config, config, config_len);
    vd->config_len = config_len;
    if (pthread_mutex_init(&vd->lock, NULL)) {
        free(vd);
        return VMCORE_ENOMEM;
    }
    for (unsigned i = 0; i < ops->nqueues; i++)
        vd->q[i].vq.m = m;
    reset_locked(vd);

    int rc = VMCORE_ESYS;
    vd->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vd->stop_efd < 0)
        goto fail;
    for (unsigned i = 0; i < ops->nqueues; i++)
        if ((vd->q[i].efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
            goto fail;

    pci_device_init(&vd->pci, &vd_pci_ops,
                    &(struct pci_id){ .vendor = 0x1af4, .device = 0x1040 + ops->device_id,
                                      .subsys_vendor = 0x1af4, .subsys = 0x1100,
                                      .class_code = ops->class_code, .revision = 1,
                                      .intx_pin = 1 });
    if ((rc = pci_bar_define(&vd->pci, VIRTIO_PCI_MSIX_BAR, PCI_BAR_MEM32, 0x1000, NULL,
                             NULL)) ||
        (rc = pci_bar_define(&vd->pci, VIRTIO_PCI_BAR, PCI_BAR_MEM64 | PCI_BAR_PREFETCH,
                             VIRTIO_PCI_BAR_SIZE, &bar_ops, vd)))
        goto fail;
    int at = pci_msix_init(&vd->pci, nvectors(vd), VIRTIO_PCI_MSIX_BAR, 0, 0x800);
    if (at < 0) {
        rc = at;
        goto fail;
    }
    if ((rc = add_cap(&vd->pci, CAP_COMMON, VIRTIO_PCI_COMMON_OFF, 0x1000, false)) ||
        (rc = add_cap(&vd->pci, CAP_NOTIFY, VIRTIO_PCI_NOTIFY_OFF, 0x1000, true)) ||
        (rc = add_cap(&vd->pci, CAP_ISR, VIRTIO_PCI_ISR_OFF, 0x1000, false)) ||
        (config_len &&
         (rc = add_cap(&vd->pci, CAP_DEVICE, VIRTIO_PCI_DEVICE_OFF, 0x1000, false))))
        goto fail_pci;
    if (pthread_create(&vd->thread, NULL, io_thread, vd)) {
        rc = VMCORE_ESYS;
        goto fail_pci;
    }
    vd->thread_started = true;
    if ((rc = pci_device_register(m, &vd->pci, vd->name, -1)))
        goto fail_pci;
    if (out)
        *out = vd;
    return 0;
fail_pci:
    pci_device_cleanup(&vd->pci);
fail:
    release(vd);
    free(vd);
    return rc;
}

int virtio_pci_queue_eventfd(struct virtio_dev *vd, unsigned q)
{
    return q < vd->ops->nqueues ? vd->q[q].efd : -1;
}

int virtio_devices_create(struct machine *m, const struct vmcore_config *cfg,
                          struct vmcore_err *err)
{
    int rc;
    for (size_t i = 0; i < cfg->ndisks; i++)
        if ((rc = virtio_blk_create(m, &cfg->disks[i], (unsigned)i, err)))
            return rc;
    for (size_t i = 0; i < cfg->nnics; i++)
        if ((rc = virtio_net_create(m, &cfg->nics[i], (unsigned)i, err)))
            return rc;
    if (cfg->rng && (rc = virtio_rng_create(m, err)))
        return rc;
    for (size_t i = 0; i < cfg->nconsoles; i++)
        if ((rc = virtio_console_create(m, &cfg->consoles[i], (unsigned)i, err)))
            return rc;
    if (cfg->vsock.enabled &&
        (rc = virtio_vsock_create(m, cfg->vsock.cid, cfg->vsock.uds_path, err)))
        return rc;
    return 0;
}
