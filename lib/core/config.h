/* The validated configuration every backend reads (schema: doc/config.md).
 * config_parse() does all checking; backends may trust every field here. */
#ifndef VMCORE_CORE_CONFIG_H
#define VMCORE_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

/* The one list of backends, in the order vmcore_backend_names() gives them: X(ENUM, name)
 * for each; "name" is the config's "backend" value and the ops table backend_<name>_ops
 * (lib/core/backend.h). Everything that lists backends expands this. */
#define VMCORE_BACKENDS(X) \
    X(KVM, kvm)            \
    X(EMU, emu)            \
    X(CONTAINER, container)

#define CONFIG_BACKEND_ENUM_(u, l) CONFIG_BACKEND_##u,
enum config_backend { CONFIG_BACKEND_AUTO, VMCORE_BACKENDS(CONFIG_BACKEND_ENUM_)
                      CONFIG_BACKEND_COUNT };
#undef CONFIG_BACKEND_ENUM_
enum boot_format { BOOT_FORMAT_AUTO, BOOT_FORMAT_RAW, BOOT_FORMAT_ELF, BOOT_FORMAT_MULTIBOOT,
                   BOOT_FORMAT_LINUX };
enum boot_mode { BOOT_MODE_REAL, BOOT_MODE_PROTECTED, BOOT_MODE_LONG };
enum net_mode { NET_MODE_NONE, NET_MODE_HOST, NET_MODE_VETH, NET_MODE_USER, NET_MODE_BRIDGE };

/* The host bridge of network mode "bridge" (doc/config.md "bridge"): a name, or an object. */
struct config_bridge {
    char *name;     /* NULL: not mode "bridge" */
    bool create;    /* the library creates it (it must not exist unless this process made it) */
    char *address;  /* create: CIDR of the bridge, the guests' gateway; NULL: none */
    bool nat;       /* create + address: masquerade the subnet (nftables table vmcore_NAME) */
};

enum config_mount_type { MOUNT_BIND, MOUNT_TMPFS, MOUNT_MQUEUE, MOUNT_CGROUP };
struct config_mount {
    enum config_mount_type type;
    char *source;   /* bind: absolute host path (resolved); NULL for tmpfs and mqueue */
    char *target;   /* absolute path inside the container */
    bool readonly;
    bool nosuid, nodev, noexec;
    char *data;     /* tmpfs: mount options ("size=...,mode=..."), or NULL */
};

/* One kernel parameter of the container's namespaces (doc/config.md "sysctl"). */
struct config_sysctl {
    char *key;      /* "net.ipv4.ping_group_range" */
    char *path;     /* relative to a proc mount: "sys/net/ipv4/ping_group_range" */
    char *value;
};
#define CONFIG_MAX_SYSCTLS 64

/* One resource limit of the container's process (doc/config.md "process.rlimits"). */
struct config_rlimit {
    int resource;   /* RLIMIT_* */
    uint64_t soft, hard;
};
#define CONFIG_MAX_RLIMITS 16

/* One virtio-blk disk of a virtual machine (doc/config.md "disks"). */
struct config_disk {
    char *path;     /* absolute host path (resolved), a regular file */
    bool readonly;
    char *serial;   /* NULL or at most CONFIG_DISK_SERIAL_MAX bytes (VIRTIO_BLK_T_GET_ID) */
};
#define CONFIG_DISK_SERIAL_MAX 20

/* One virtio-console of a virtual machine (doc/config.md "consoles"). */
struct config_console {
    char *output;   /* guest output (transmitq) is appended here; created if missing */
};
#define CONFIG_MAX_CONSOLES 4
#define CONFIG_MAX_DISKS 16

/* One virtio-net card of a virtual machine (doc/config.md "nics"). */
enum config_nic_mode { NIC_MODE_TAP, NIC_MODE_USER, NIC_MODE_BRIDGE };
/* A port forward of a "user" card: the host listens on host_addr:host_port and connects
 * each connection (or datagram) to the guest's guest_port. */
struct config_portfwd {
    bool udp;
    uint32_t host_addr;  /* IPv4, network byte order */
    uint16_t host_port;
    uint16_t guest_port;
};
#define CONFIG_MAX_PORTS 64
struct config_nic {
    enum config_nic_mode mode;
    char *ifname;   /* tap: NULL: a tap the library creates, named by the kernel (vmtapN) */
    bool create;    /* tap: create ifname (it must not exist) and remove it with the domain */
    uint8_t mac[6];
    struct config_portfwd *ports; /* user: port forwards */
    size_t nports;
    struct config_bridge bridge;  /* bridge: a tap the library creates, on this bridge */
};
#define CONFIG_MAX_NICS 8

struct config_idmap {
    uint32_t inside, outside, count;
};

struct vmcore_config {
    char *name;
    enum config_backend backend;
    char *base_dir;             /* folder relative paths were resolved against */

    /* virtual machines (kvm, emu) */
    uint64_t memory_mib;        /* default 64 */
    unsigned vcpus;             /* default 1 */
    struct {
        char *kernel;           /* absolute path; NULL for containers */
        enum boot_format format;
        char *initrd;           /* absolute path or NULL */
        char *cmdline;          /* NULL if not given */
        bool has_load_address;
        uint64_t load_address;
        bool has_entry;
        uint64_t entry;
        enum boot_mode mode;    /* raw only; default protected */
    } boot;
    struct {
        bool jit;               /* default true: compile hot code (emu backend only) */
    } emu;
    struct config_disk *disks;  /* virtio-blk disks, in PCI slot order */
    size_t ndisks;
    struct config_console *consoles; /* virtio-console devices, after the disks and rng */
    size_t nconsoles;
    bool rng;                   /* a virtio-rng device */
    struct config_nic *nics;    /* virtio-net cards, in PCI slot order after the disks */
    size_t nnics;
    struct {
        bool enabled;           /* "vsock" given: a virtio-vsock device */
        uint64_t cid;           /* the guest's CID, 3 .. 2^32-2 */
        char *uds_path;         /* absolute host path of the AF_UNIX listener */
    } vsock;

    /* containers */
    char *rootfs;               /* absolute path */
    bool rootfs_readonly;
    char *hostname;             /* NULL: use name */
    struct {
        char **args;            /* NULL-terminated */
        size_t nargs;
        char **env;             /* NULL-terminated "K=V" list */
        size_t nenv;
        char *cwd;              /* default "/" */
        uint32_t uid, gid;
        bool terminal;          /* allocate a pty */
        bool init;              /* run a tiny reaping init as PID 1 */
        bool has_caps;          /* "capabilities" given: caps replaces the default set */
        uint64_t caps;          /* bit mask of CAP_* */
        struct config_rlimit *rlimits;
        size_t nrlimits;
        bool has_umask;
        uint32_t umask;         /* "umask" given: the file mode creation mask */
    } process;
    struct {
        uint64_t memory_bytes;  /* 0 = unlimited */
        uint64_t pids;          /* 0 = unlimited */
        double cpus;            /* 0 = unlimited */
    } limits;
    struct {
        enum net_mode mode;
        char *host_ifname;      /* veth: the host end's name; bridge: NULL (generated) or it */
        char *address;          /* veth, bridge: CIDR inside ("10.200.0.2/24") */
        struct config_bridge bridge; /* bridge: the bridge the host end is a port of */
        char *host_address;     /* veth: CIDR on the host end */
        struct config_portfwd *ports; /* user: port forwards to the container's 10.0.2.100 */
        size_t nports;
    } network;
    struct config_mount *mounts;
    size_t nmounts;
    struct {
        bool enabled;
        struct config_idmap *uid_map, *gid_map;
        size_t nuid_map, ngid_map;
    } userns;
    struct config_sysctl *sysctls;
    size_t nsysctls;
    struct {
        bool enabled;           /* "detach" given: the container may outlive this process */
        char *hold;             /* absolute path of a FIFO to wait on before exec, or NULL */
        char *cgroup;           /* the group's folder name, or NULL (the library's own) */
    } detach;
};

/* Parse and validate @root. @base_dir resolves relative paths (NULL: cwd). On failure
 * returns a VMCORE_E* code and fills @err with the message and JSON path. */
int config_parse(struct vmcore_config **out, const json_t *root, const char *base_dir,
                 struct vmcore_err *err);
void config_free(struct vmcore_config *cfg);

const char *config_backend_name(enum config_backend b);

/* The number of a capability named as in linux/capability.h ("CAP_CHOWN"), or -1. */
int config_cap_number(const char *name);

/* The one parser of network.address and network.host_address: "a.b.c.d/n" with n 1..32.
 * 0 with the address (network byte order) and the prefix, or -1. */
int config_parse_cidr(const char *s, uint32_t *addr_be, unsigned *prefix);

#endif
