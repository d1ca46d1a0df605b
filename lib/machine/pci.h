/* PCI devices on the machine's one bus (bus 0), for device code (virtio-pci, ...).
 *
 * The PCI host (pci.c) owns configuration space access (mechanism #1 at 0xcf8/0xcfc and
 * ECAM at PLAT_PCI_ECAM_BASE), places every BAR in the platform windows at registration
 * (we have no firmware to do it), maps a BAR on the machine's bus while the guest has its
 * decode bit on, and routes interrupts: MSI-X, else MSI, else INTx on the GSI
 * plat_pci_intx_gsi() names.
 *
 * A device embeds struct pci_device, and in this order:
 *   pci_device_init()                        IDs, class, interrupt pin
 *   pci_bar_define() ...                     its BARs
 *   pci_cap_add() / pci_msi_init() / pci_msix_init() ...   its capabilities
 *   pci_device_register()                    a slot, BAR addresses; the machine owns it now
 * After registration the machine resets and destroys the device (machine_device_ops);
 * ops->destroy frees the containing struct.
 *
 * Threads: config space accesses come from vCPU threads, pci_irq_notify()/pci_intx_set()
 * from any thread. One recursive lock in the host serialises them, so device hooks
 * (config_read/config_write) may call back into this API; they must not wait for another
 * thread that may itself call into it (that thread would wait for the lock). BAR handlers
 * (the device's machine_dev_ops) run outside that lock, like any bus handler. */
#ifndef VMCORE_MACHINE_PCI_H
#define VMCORE_MACHINE_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "machine.h"

/* Configuration space offsets and bits the devices and the tests use (PCI Local Bus 3.0). */
#define PCI_VENDOR_ID        0x00
#define PCI_DEVICE_ID        0x02
#define PCI_COMMAND          0x04
#define PCI_STATUS           0x06
#define PCI_REVISION_ID      0x08
#define PCI_CLASS_PROG       0x09    /* class code: prog-if 0x09, subclass 0x0a, base 0x0b */
#define PCI_HEADER_TYPE      0x0e
#define PCI_BAR0             0x10
#define PCI_SUBSYSTEM_VENDOR 0x2c
#define PCI_SUBSYSTEM_ID     0x2e
#define PCI_ROM_ADDRESS      0x30
#define PCI_CAPABILITY_LIST  0x34
#define PCI_INTERRUPT_LINE   0x3c
#define PCI_INTERRUPT_PIN    0x3d

#define PCI_COMMAND_IO       0x0001
#define PCI_COMMAND_MEMORY   0x0002
#define PCI_COMMAND_MASTER   0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_INTERRUPT 0x0008
#define PCI_STATUS_CAP_LIST  0x0010

#define PCI_CAP_ID_MSI       0x05
#define PCI_CAP_ID_VNDR      0x09
#define PCI_CAP_ID_MSIX      0x11

#define PCI_SLOTS            32
#define PCI_BARS             6
#define PCI_CONFIG_SIZE      4096     /* legacy 256 bytes + extended space (ECAM only) */
#define PCI_MSI_MAX_VECTORS  32
#define PCI_MSIX_MAX_VECTORS 2048

/* BAR types for pci_bar_define(); PCI_BAR_PREFETCH may be ORed into a memory type. */
enum pci_bar_type {
    PCI_BAR_NONE = 0,
    PCI_BAR_IO = 1,
    PCI_BAR_MEM32 = 2,
    PCI_BAR_MEM64 = 3,                /* takes BARs index and index + 1 */
    PCI_BAR_MEM64_HIGH = 4,           /* (internal: the upper half of a MEM64 BAR) */
};
#define PCI_BAR_PREFETCH 0x100u

struct pci_device;
struct pci_host;

struct pci_device_ops {
    /* The guest changed config space: called after the generic write (masks applied,
     * BARs/MSI/INTx updated) with the access as the guest made it; @off < 4096, @off +
     * @size <= 4096. For registers the device keeps itself. May be NULL. */
    void (*config_write)(struct pci_device *dev, unsigned off, unsigned size, uint32_t value);
    /* The guest reads config space: @value is what the generic code read; return what the
     * guest sees. May be NULL. */
    uint32_t (*config_read)(struct pci_device *dev, unsigned off, unsigned size,
                            uint32_t value);
    /* After the PCI part of a reset (config space back to its registered state, BARs
     * unmapped, MSI/MSI-X off, INTx deasserted). May be NULL. */
    void (*reset)(struct pci_device *dev);
    /* Free the device's own state, the struct embedding pci_device included (the PCI part
     * was already released). May be NULL. */
    void (*destroy)(struct pci_device *dev);
    /* BAR @index was mapped at @addr (@mapped true) or its mapping at @addr went away
     * (@mapped false: the guest moved it or turned decoding off, a reset, the device's
     * end). For what follows a BAR's address, a hypervisor doorbell say. Host lock held
     * (the hook may call into this API); a vCPU thread, or the thread that resets or
     * destroys the machine. May be NULL. */
    void (*bar_map)(struct pci_device *dev, unsigned index, uint64_t addr, bool mapped);
    /* Snapshots: the device's own state after the PCI part (config space, MSI-X table and
     * PBA, INTx level), which pci.c saves and restores. NULL save: the device cannot be
     * saved yet (VMCORE_ENOTSUP). restore runs after the PCI part is back (BARs mapped as
     * the command register says); quiesce as machine_device_ops.quiesce. */
    int (*save)(struct pci_device *dev, struct snap_buf *b);
    int (*restore)(struct pci_device *dev, struct snap_rd *r);
    void (*quiesce)(struct pci_device *dev, bool on);
};

/* What pci_device_init() writes into the header (type 0, single function). */
struct pci_id {
    uint16_t vendor, device;
    uint16_t subsys_vendor, subsys;
    uint32_t class_code;              /* base << 16 | subclass << 8 | prog-if */
    uint8_t revision;
    uint8_t intx_pin;                 /* 0: no INTx, 1..4: INTA..INTD */
};

/* Internal state; device code uses the functions below. */
struct pci_bar {
    struct pci_device *dev;
    unsigned type;                    /* enum pci_bar_type (| PCI_BAR_PREFETCH) */
    unsigned index;
    uint64_t size;
    uint64_t assigned;                /* where registration placed it */
    const struct machine_dev_ops *ops;
    void *opaque;
    enum { PCI_BAR_UNMAPPED, PCI_BAR_MAPPED, PCI_BAR_FAILED } state;
    uint64_t addr;                    /* mapped at (MAPPED) or refused at (FAILED) */
};

struct pci_device {
    struct machine_device base;
    const struct pci_device_ops *ops;
    struct pci_host *host;            /* set at registration */
    int slot;                         /* -1 until registered */
    uint8_t cfg[PCI_CONFIG_SIZE];
    uint8_t wmask[PCI_CONFIG_SIZE];   /* bits the guest may write */
    uint8_t w1c[PCI_CONFIG_SIZE];     /* bits a guest write of 1 clears */
    uint8_t init[PCI_CONFIG_SIZE];    /* cfg as registered: what a reset restores */
    uint16_t cap_next;                /* first free byte for pci_cap_add(), 0x40.. */
    uint8_t cap_last;                 /* offset of the last capability, 0 if none */
    struct pci_bar bar[PCI_BARS];
    bool intx_level;                  /* what the device asks for (status bit 3) */
    bool intx_out;                    /* what it contributes to its line */
    /* MSI */
    uint8_t msi_cap;                  /* offset, 0 if none */
    uint8_t msi_vectors;
    bool msi_64, msi_mask;
    /* MSI-X */
    uint8_t msix_cap;
    uint16_t msix_vectors;
    unsigned msix_bar;
    uint32_t msix_table_off, msix_pba_off;
    uint8_t *msix_table;              /* msix_vectors x 16 bytes */
    uint64_t *msix_pba;               /* msix_vectors bits */
    /* Per vector: the eventfd that raises its message without a call into the machine
     * (machine_msi_fd_add(): kvm's irqfd), the message it is routed to, and whether
     * binding that message failed (machine_msi() then, until the message changes). */
    struct pci_msix_fd { int fd; bool failed; uint64_t addr; uint32_t data; } *msix_fd;
};

/* Start a device: zero @dev, write the header from @id (read-only IDs, the writable
 * command/status bits, the interrupt pin). @ops may be NULL. */
void pci_device_init(struct pci_device *dev, const struct pci_device_ops *ops,
                     const struct pci_id *id);

/* Define BAR @index: @type is PCI_BAR_IO, PCI_BAR_MEM32 or PCI_BAR_MEM64 (which also takes
 * @index + 1), optionally | PCI_BAR_PREFETCH for memory. @size is a power of two: I/O 4 ..
 * 256 bytes, memory 16 bytes .. 256 MiB (MEM32) or 16 GiB (MEM64). Guest accesses reach
 * @ops with @opaque and the offset in the BAR; @ops may be NULL for a BAR that holds only
 * an MSI-X table (other offsets read 0). VMCORE_EINVAL for a bad index, type or size, a
 * BAR already defined, or a device already registered. */
int pci_bar_define(struct pci_device *dev, unsigned index, unsigned type, uint64_t size,
                   const struct machine_dev_ops *ops, void *opaque);

/* Append a capability of @len bytes (>= 2, id and next pointer included) with ID @id to
 * the list at 0x34 (status bit 4 is set). Its bytes are zero and read-only to the guest
 * until the device writes them (pci_config_set) and opens bits (pci_config_set_wmask).
 * Returns its offset (0x40..0xfc, dword-aligned), or VMCORE_ELIMIT when the 192 bytes
 * are full, VMCORE_EINVAL for a bad @len or a registered device. */
int pci_cap_add(struct pci_device *dev, uint8_t id, unsigned len);

/* An MSI capability: @vectors a power of two 1..32, a 64-bit address if @addr64,
 * per-vector mask and pending bits if @maskable. Returns its offset or an error as
 * pci_cap_add(); VMCORE_EINVAL if the device already has MSI. */
int pci_msi_init(struct pci_device *dev, unsigned vectors, bool addr64, bool maskable);

/* An MSI-X capability with @vectors (1..2048) entries; the table at @table_off and the
 * PBA at @pba_off (both 8-byte aligned) in memory BAR @bar, already defined and large
 * enough, the two not overlapping. Every entry starts masked. Returns the capability's
 * offset, VMCORE_EINVAL for bad arguments, VMCORE_ENOMEM. */
int pci_msix_init(struct pci_device *dev, unsigned vectors, unsigned bar, uint32_t table_off,
                  uint32_t pba_off);

/* Register @dev in slot @slot (1..31), or in the lowest free slot if @slot < 0, under the
 * unique device name @name (kept, not copied). Places every BAR (naturally aligned, I/O
 * from PLAT_PCI_IO_BASE, MEM32 in the 32-bit window, MEM64 in the 64-bit window), writes
 * the interrupt line register, and adds the device to the machine, which owns it from
 * then on. Errors, with nothing kept: VMCORE_ENOENT (no PCI host), VMCORE_EINVAL (bad
 * slot), VMCORE_EBUSY (slot taken, or @name in use), VMCORE_ELIMIT (no free slot, or a
 * window is full). Not for running machines (no hot-plug). */
int pci_device_register(struct machine *m, struct pci_device *dev, const char *name, int slot);

/* Free what pci_msix_init() allocated, for a device that was never registered (its
 * registration failed): a registered device is the machine's to free. */
void pci_device_cleanup(struct pci_device *dev);

/* Device-side config access, bypassing the guest write masks (for registers and
 * capability bodies the device fills). Out-of-range bytes are ignored / read as 0. A
 * value set before registration is also its reset value. Any thread (the host lock is
 * taken once the device is registered). */
void pci_config_set(struct pci_device *dev, unsigned off, unsigned size, uint32_t value);
uint32_t pci_config_get(struct pci_device *dev, unsigned off, unsigned size);
/* Which bits of [off, off+size) the guest may write, and which a guest write of 1 clears. */
void pci_config_set_wmask(struct pci_device *dev, unsigned off, unsigned size, uint32_t mask);
void pci_config_set_w1c(struct pci_device *dev, unsigned off, unsigned size, uint32_t mask);

/* Signal interrupt @vector: through MSI-X entry @vector if MSI-X is on (pending bit if
 * masked; unmasked, by the vector's eventfd when the backend offers machine_msi_fd_add(),
 * else machine_msi()), else MSI vector @vector if MSI is on (pending if masked), else
 * assert INTx (the device deasserts it with pci_intx_set(dev, false), e.g. when the guest
 * reads its ISR). A vector the guest has not enabled is dropped. Any thread. */
void pci_irq_notify(struct pci_device *dev, unsigned vector);
/* The device's INTx level: reflected in status bit 3, driven on its GSI unless the command
 * register's INTx-disable is set or MSI/MSI-X is on. Lines are shared: a GSI is asserted
 * while any of its devices drives it. Any thread. */
void pci_intx_set(struct pci_device *dev, bool level);

/* Interrupt delivery, process-wide (for tests): MSI-X messages sent by writing a vector's
 * eventfd (the backend's irqfd) and those sent through machine_msi(). */
void pci_msix_counts(uint64_t *by_fd, uint64_t *by_call);

/* Whether the guest let the device master the bus (command bit 2): DMA only when true. */
bool pci_bus_master(struct pci_device *dev);
/* Whether the guest turned MSI / MSI-X on (the capability's enable bit). */
bool pci_msi_enabled(struct pci_device *dev);
bool pci_msix_enabled(struct pci_device *dev);

/* The device in @slot (0 is the host bridge), or NULL; for code that lists devices. */
struct pci_device *pci_device_at(struct machine *m, unsigned slot);

/* How many times a BAR the guest programmed could not be mapped (on RAM, over another
 * range, over the LAPIC/IOAPIC, outside the address space). */
uint64_t pci_bar_map_failures(struct machine *m);

#endif
