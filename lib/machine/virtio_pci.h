/* The virtio 1.x PCI transport (virtio 1.2 section 4.1), modern only, and the interface a
 * virtio device (blk, rng; later net, vsock, console) plugs into.
 *
 * What the guest sees: vendor 0x1af4, device 0x1040 + the virtio device ID, revision 1;
 * vendor capabilities for the common, notify (multiplier 4, queue q at offset 4 * q), ISR
 * and device configuration, all in 64-bit memory BAR 4 (16 KiB); MSI-X in BAR 1 with one
 * vector per queue plus one for configuration changes. VIRTIO_F_VERSION_1 is required (a
 * driver that does not accept it cannot set FEATURES_OK); no legacy interface.
 *
 * The split-driver model: the guest's driver is the frontend, the device below with its
 * I/O thread is the backend, the virtqueues are the shared rings, and the event channel
 * is a notify eventfd per queue (guest -> host) and MSI-X / INTx (host -> guest). A
 * notify write from a vCPU only signals the queue's eventfd; the device's I/O thread does
 * the work, so a vCPU never waits for a disk. */
#ifndef VMCORE_MACHINE_VIRTIO_PCI_H
#define VMCORE_MACHINE_VIRTIO_PCI_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pci.h"
#include "virtqueue.h"

#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG     4

#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

#define VIRTIO_STATUS_ACKNOWLEDGE  1
#define VIRTIO_STATUS_DRIVER       2
#define VIRTIO_STATUS_DRIVER_OK    4
#define VIRTIO_STATUS_FEATURES_OK  8
#define VIRTIO_STATUS_NEEDS_RESET  0x40
#define VIRTIO_STATUS_FAILED       0x80

#define VIRTIO_PCI_MAX_QUEUES 8
#define VIRTIO_PCI_MAX_POLLFDS 16   /* extra fds one device's I/O thread may wait on */

/* Returned by ops->request when the device keeps the request (an asynchronous disk read,
 * say) and returns it later with virtio_pci_push() from the I/O thread. */
#define VIRTIO_REQ_ASYNC UINT32_MAX
#define VIRTIO_MSI_NO_VECTOR  0xffff

/* BAR 4 layout. */
#define VIRTIO_PCI_BAR          4
#define VIRTIO_PCI_BAR_SIZE     0x4000
#define VIRTIO_PCI_COMMON_OFF   0x0000
#define VIRTIO_PCI_ISR_OFF      0x1000
#define VIRTIO_PCI_DEVICE_OFF   0x2000
#define VIRTIO_PCI_NOTIFY_OFF   0x3000
#define VIRTIO_PCI_NOTIFY_MULT  4
#define VIRTIO_PCI_MSIX_BAR     1

struct virtio_dev;

struct virtio_dev_ops {
    const char *type;             /* "virtio-blk", ...: the machine device type */
    uint16_t device_id;           /* VIRTIO_ID_* */
    uint32_t class_code;          /* PCI class (base << 16 | sub << 8) */
    unsigned nqueues;             /* 1..VIRTIO_PCI_MAX_QUEUES */
    uint16_t queue_max;           /* power of two, <= VQ_MAX_SIZE */
    /* One request taken from queue @q on the I/O thread; returns how many bytes it wrote
     * into the chain's writable segments (vq_push's length). May be called only while the
     * driver has the device running; the transport's lock is held. */
    uint32_t (*request)(struct virtio_dev *vd, unsigned q, struct vq_chain *c);
    /* The optional hooks below run on the device's I/O thread with the transport's lock
     * held, like request; inside them the device may take and return chains of any queue
     * itself (virtio_pci_pop/virtio_pci_push); the transport sends the interrupts the
     * driver asked for after the hook returns.
     *
     * notify: queue @q was notified. When set, the transport calls it instead of draining
     * the queue through request: for a queue whose buffers the device fills only when it
     * has data (a network card's receive queue, vsock's event and rx queues). */
    void (*notify)(struct virtio_dev *vd, unsigned q);
    /* poll_fds: the extra fds (a tap, sockets, an io_uring's completion eventfd) the I/O
     * thread should wait on, filled into @pfd (at most @max); returns how many. Called
     * before every wait, so the set and the events may change (stop polling a tap while
     * the guest has no receive buffers). poll_ready then gets them back with revents. */
    unsigned (*poll_fds)(struct virtio_dev *vd, struct pollfd *pfd, unsigned max);
    void (*poll_ready)(struct virtio_dev *vd, const struct pollfd *pfd, unsigned n);
    /* reset: the driver reset the device (status 0, or a PCI reset): forget every chain
     * the device still holds (wait for in-flight I/O first; do not push them). The
     * transport's lock is held; may run on a vCPU thread. May be NULL. */
    void (*reset)(struct virtio_dev *vd);
    /* The guest wrote device config bytes (already stored in vd->config). May be NULL. */
    void (*config_write)(struct virtio_dev *vd, unsigned off, unsigned size);
    /* Release the device's own state (not the struct virtio_dev: the transport frees it
     * after this). May be NULL. */
    void (*destroy)(struct virtio_dev *vd);
    /* Snapshots (doc/snapshot.md): the device's own state after the transport's, the
     * transport's lock held and the I/O thread quiet. NULL save: the device cannot be
     * saved yet (a save fails naming it). A device that holds chains (requests in flight)
     * must complete or refuse them here. */
    int (*save)(struct virtio_dev *vd, struct snap_buf *b);
    int (*restore)(struct virtio_dev *vd, struct snap_rd *r);
};

struct virtio_dev {
    struct pci_device pci;
    const struct virtio_dev_ops *ops;
    void *opaque;                 /* the device's own state */
    struct machine *m;
    char name[32];
    uint64_t features;            /* offered (VERSION_1 etc. added by the transport) */
    uint64_t driver_features;
    uint32_t dfselect, gfselect;
    uint16_t msix_config;
    uint8_t status;
    uint8_t generation;
    uint8_t isr;                  /* bit 0 queue, bit 1 config */
    uint16_t queue_select;
    struct {
        uint16_t size, vector, enable;
        uint64_t desc, driver, device;
        struct virtqueue vq;
        int efd;                  /* notify eventfd; see virtio_pci_queue_eventfd() */
    } q[VIRTIO_PCI_MAX_QUEUES];
    uint8_t config[256];          /* device-specific configuration, @config_len bytes */
    unsigned config_len;
    /* The transport's lock: common config from vCPUs against the I/O thread's requests. */
    pthread_mutex_t lock;
    pthread_t thread;
    bool thread_started;
    int stop_efd;
    uint32_t pushed;              /* queues pushed to since the last notify check (bits) */
    bool broke;                   /* a queue broke: raise the config interrupt */
    struct vq_chain chain;        /* the I/O thread's scratch chain (large: kept here) */
    /* The notify registers bound as hypervisor doorbells (machine_ioeventfd_add) while
     * BAR 4 is mapped at @doorbell_gpa: a bit per queue, the length they were bound with
     * (0: any). Under the PCI host lock (pci_device_ops.bar_map). */
    uint64_t doorbell_gpa;
    uint32_t doorbell_bound;
    unsigned doorbell_len;
};

/* Create and register a virtio device named @name (kept, copied): @features the device
 * features, @config the initial device config (@config_len <= 256 bytes), @opaque the
 * device's own state, handed to ops->destroy. On success the machine owns everything;
 * on failure nothing is kept, ops->destroy is not called and @opaque stays the caller's.
 * Starts the device's I/O thread. */
int virtio_pci_create(struct machine *m, const struct virtio_dev_ops *ops, void *opaque,
                      uint64_t features, const void *config, unsigned config_len,
                      const char *name, struct virtio_dev **out);

/* The eventfd the notify register of queue @q signals, or -1. While the guest has BAR 4
 * mapped, the transport binds it to the notify address (BAR 4 base +
 * VIRTIO_PCI_NOTIFY_OFF + 4 * q) with machine_ioeventfd_add(): on kvm a KVM_IOEVENTFD,
 * so the kernel signals it without a vCPU exit; the binding follows the BAR when the
 * guest moves it and goes with the mapping. Where there is no such binding (emu, or a
 * write the kernel does not match), the notify register's MMIO handler writes the same
 * eventfd from the vCPU thread and returns: the I/O thread cannot tell the difference. */
int virtio_pci_queue_eventfd(struct virtio_dev *vd, unsigned q);

/* Process-wide, for tests: notify writes that reached the MMIO handler (each a vCPU exit
 * on kvm), and queue notify registers currently bound as doorbells. */
struct virtio_pci_counts {
    uint64_t notify_mmio;
    uint64_t doorbells_bound;
};
void virtio_pci_counts(struct virtio_pci_counts *out);

/* For the device's hooks (I/O thread, transport lock held). virtio_pci_pop takes the next
 * chain of queue @q: 1 with @c filled, 0 when none is available or the queue is not
 * running, -1 when the queue broke (the transport marks the device DEVICE_NEEDS_RESET and
 * tells the driver). virtio_pci_push returns a chain with @written bytes written; the
 * interrupt follows when the hook returns. virtio_pci_running says whether queue @q may
 * be used now (DRIVER_OK, not broken, set up, bus mastering on). virtio_pci_rearm: call
 * before giving up on an empty queue (EVENT_IDX's avail_event); true if chains arrived
 * meanwhile. */
int virtio_pci_pop(struct virtio_dev *vd, unsigned q, struct vq_chain *c);
void virtio_pci_push(struct virtio_dev *vd, unsigned q, const struct vq_chain *c,
                     uint32_t written);
bool virtio_pci_running(struct virtio_dev *vd, unsigned q);
bool virtio_pci_rearm(struct virtio_dev *vd, unsigned q);

/* Create the virtio devices the config asks for (disks, nics, rng). Called by machine_create
 * after pci_host_init(). Errors name the config key ("disks[1].path"). */
int virtio_devices_create(struct machine *m, const struct vmcore_config *cfg,
                          struct vmcore_err *err);

/* For tests: the virtio-blk / virtio-rng / virtio-net constructors virtio_devices_create() uses. */
int virtio_blk_create(struct machine *m, const struct config_disk *disk, unsigned index,
                      struct vmcore_err *err);
/* Whether virtio-blk device @vd runs its reads, writes and flushes through io_uring
 * (false: the thread pool or the synchronous path: VMCORE_BLK_URING=0 or io_uring
 * unavailable). */
bool virtio_blk_uses_uring(const struct virtio_dev *vd);
/* How many worker threads the pool of virtio-blk device @vd has: 0 when it uses
 * io_uring or the synchronous path (VMCORE_BLK_THREADS=0, or no thread could start). */
unsigned virtio_blk_pool_threads(const struct virtio_dev *vd);
int virtio_rng_create(struct machine *m, struct vmcore_err *err);
int virtio_console_create(struct machine *m, const struct config_console *cc, unsigned index,
                          struct vmcore_err *err);
/* virtio-net card nics[@index] on its tap (lib/machine/virtio_net.c, net_tap.c); errors
 * name nics[@index].ifname. */
int virtio_net_create(struct machine *m, const struct config_nic *nic, unsigned index,
                      struct vmcore_err *err);
/* virtio-vsock (virtio_vsock.h): listens on @uds_path (removed when the device goes; a stale
 * socket there is replaced; a live one or any other file is an error naming vsock.uds_path). */
int virtio_vsock_create(struct machine *m, uint64_t cid, const char *uds_path,
                        struct vmcore_err *err);

#endif
