/* Host bridges for network mode "bridge" (bridge.h): rtnetlink messages built by hand
 * (create, address, up, master, delete) and the NAT through libnftables (nft's own
 * library, in process: no nft or iptables program is run). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "core/bridge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* --- rtnetlink ------------------------------------------------------------------------ */

struct nlreq {
    union {
        struct nlmsghdr h;
        char buf[512];
    };
};

static void *nl_start(struct nlreq *m, int type, int flags, size_t hdr)
{
    memset(m, 0, sizeof *m);
    m->h.nlmsg_len = (unsigned)NLMSG_LENGTH(hdr);
    m->h.nlmsg_type = (unsigned short)type;
    m->h.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
    m->h.nlmsg_seq = 1;
    return NLMSG_DATA(&m->h);
}

static struct rtattr *nl_add(struct nlreq *m, int type, const void *data, size_t len)
{
    struct rtattr *a = (struct rtattr *)(m->buf + NLMSG_ALIGN(m->h.nlmsg_len));
    a->rta_type = (unsigned short)type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    if (len)
        memcpy(RTA_DATA(a), data, len);
    m->h.nlmsg_len = NLMSG_ALIGN(m->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
    return a;
}

/* Send @m and wait for its ack: 0 or -errno. */
static int nl_run(struct nlreq *m)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
    int rc = 0;
    if (sendto(fd, m, m->h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0) {
        rc = -errno;
        goto out;
    }
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n);
             h = NLMSG_NEXT(h, n))
            if (h->nlmsg_type == NLMSG_ERROR) {
                rc = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
                goto out;
            }
    }
out:
    close(fd);
    return rc;
}

static int link_create_bridge(const char *name)
{
    struct nlreq m;
    struct ifinfomsg *ifi = nl_start(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    nl_add(&m, IFLA_IFNAME, name, strlen(name) + 1);
    struct rtattr *info = nl_add(&m, IFLA_LINKINFO, NULL, 0);
    nl_add(&m, IFLA_INFO_KIND, "bridge", 7);
    info->rta_len = (unsigned short)(m.buf + m.h.nlmsg_len - (char *)info);
    return nl_run(&m);
}

/* Up, and (@master > 0) a port of the bridge with that index. */
static int link_set(unsigned index, unsigned master)
{
    struct nlreq m;
    struct ifinfomsg *ifi = nl_start(&m, RTM_NEWLINK, 0, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = (int)index;
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
    if (master) {
        uint32_t mi = master;
        nl_add(&m, IFLA_MASTER, &mi, 4);
    }
    return nl_run(&m);
}

static int link_delete(unsigned index)
{
    struct nlreq m;
    struct ifinfomsg *ifi = nl_start(&m, RTM_DELLINK, 0, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = (int)index;
    return nl_run(&m);
}

static int addr_add(unsigned index, uint32_t a, unsigned prefix)
{
    struct nlreq m;
    struct ifaddrmsg *ifa = nl_start(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof *ifa);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (unsigned char)prefix;
    ifa->ifa_index = index;
    nl_add(&m, IFA_LOCAL, &a, 4);
    nl_add(&m, IFA_ADDRESS, &a, 4);
    if (prefix < 31) {
        uint32_t bcast = a | htonl(0xffffffffu >> prefix);
        nl_add(&m, IFA_BROADCAST, &bcast, 4);
    }
    return nl_run(&m);
}

/* The driver of interface @name ("bridge", "veth", "tun", ...), through ethtool, which
 * answers for the caller's network namespace (sysfs may show another one's). */
static int link_driver(const char *name, char *out, size_t len)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    struct ethtool_drvinfo di = { .cmd = ETHTOOL_GDRVINFO };
    struct ifreq ifr = { 0 };
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    ifr.ifr_data = (void *)&di;
    int rc = ioctl(s, SIOCETHTOOL, &ifr) < 0 ? -errno : 0;
    close(s);
    if (rc == 0)
        snprintf(out, len, "%.*s", (int)sizeof di.driver, di.driver);
    return rc;
}

/* --- the NAT ---------------------------------------------------------------------------- */

void bridge_nat_table(const char *bridge, char *out, size_t len)
{
    int n = snprintf(out, len, "vmcore_%s", bridge);
    for (int i = 7; i < n && (size_t)i < len; i++)
        if (!((out[i] >= 'a' && out[i] <= 'z') || (out[i] >= 'A' && out[i] <= 'Z') ||
              (out[i] >= '0' && out[i] <= '9') || out[i] == '_'))
            out[i] = '_';
}

/* Run @cmds (nft's plain syntax) in one transaction; on failure, nft's message in @msg. */
static int nft_run(const char *cmds, char *msg, size_t len)
{
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!nft) {
        snprintf(msg, len, "nft_ctx_new failed");
        return -1;
    }
    nft_ctx_buffer_output(nft);
    nft_ctx_buffer_error(nft);
    int rc = nft_run_cmd_from_buffer(nft, cmds);
    if (rc != 0) {
        const char *e = nft_ctx_get_error_buffer(nft);
        snprintf(msg, len, "%s", e && *e ? e : "failed");
        size_t n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
            msg[--n] = 0;
        for (char *p = msg; *p; p++)
            if (*p == '\n')
                *p = ' ';
    }
    nft_ctx_free(nft);
    return rc;
}

static int nat_add(const char *bridge, uint32_t net, unsigned prefix, char *msg, size_t len)
{
    char table[32], sub[INET_ADDRSTRLEN], cmds[1024];
    bridge_nat_table(bridge, table, sizeof table);
    inet_ntop(AF_INET, &net, sub, sizeof sub);
    /* "create" fails on a table of that name (left by a crashed process, or another's)
     * rather than adding to it. */
    snprintf(cmds, sizeof cmds,
             "create table ip %s\n"
             "add chain ip %s postrouting { type nat hook postrouting priority srcnat; "
             "policy accept; }\n"
             "add rule ip %s postrouting ip saddr %s/%u ip daddr != %s/%u masquerade\n",
             table, table, table, sub, prefix, sub, prefix);
    return nft_run(cmds, msg, len);
}

static void nat_delete(const char *bridge)
{
    char table[32], cmds[64], msg[256];
    bridge_nat_table(bridge, table, sizeof table);
    snprintf(cmds, sizeof cmds, "delete table ip %s\n", table);
    nft_run(cmds, msg, sizeof msg);
}

/* --- the table of bridges this process created --------------------------------------- */

struct bridge_ref {
    struct bridge_ref *next;    /* in `owned` */
    char name[IFNAMSIZ];
    unsigned index;             /* its ifindex */
    bool owned;                 /* created by this process: in `owned`, refcounted */
    int refs;
    uint32_t addr;              /* owned: its address (0: none) */
    unsigned prefix;
    bool nat;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bridge_ref *owned;

static struct bridge_ref *find_owned(const char *name)
{
    for (struct bridge_ref *r = owned; r; r = r->next)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

static uint32_t mask_of(unsigned prefix)
{
    return htonl(prefix ? 0xffffffffu << (32 - prefix) : 0);
}

/* An interface of the host with an IPv4 subnet overlapping @a/@prefix: its name in @who. */
static bool subnet_in_use(uint32_t a, unsigned prefix, char *who, size_t len)
{
    struct ifaddrs *ifs, *i;
    bool clash = false;
    if (getifaddrs(&ifs) < 0)
        return false;
    for (i = ifs; i && !clash; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_netmask)
            continue;
        uint32_t b = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
        uint32_t bm = ((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr;
        uint32_t m = mask_of(prefix) & bm; /* the shorter of the two prefixes */
        if ((a & m) == (b & m)) {
            char ip[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &b, ip, sizeof ip);
            snprintf(who, len, "%s (%s)", i->ifa_name, ip);
            clash = true;
        }
    }
    freeifaddrs(ifs);
    return clash;
}

static int forwarding_on(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_forward", "re");
    int v = -1;
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static int create_locked(const struct config_bridge *b, const char *path,
                         struct bridge_ref **out, struct vmcore_err *err)
{
    char p[VMCORE_ERR_PATH_MAX], who[64];
    uint32_t a = 0;
    unsigned prefix = 0;
    if (b->address && config_parse_cidr(b->address, &a, &prefix) < 0)
        return err_config(err, VMCORE_ECONFIG, path, "bad address %s", b->address);
    struct bridge_ref *r = find_owned(b->name);
    if (r) {
        snprintf(p, sizeof p, "%s.address", path);
        if (r->addr != a || r->prefix != prefix)
            return err_config(err, VMCORE_ECONFIG, p, "bridge %s was created by another "
                              "domain with %s address", b->name,
                              r->addr ? "another" : "no");
        snprintf(p, sizeof p, "%s.nat", path);
        if (r->nat != b->nat)
            return err_config(err, VMCORE_ECONFIG, p, "bridge %s was created by another "
                              "domain with nat %s", b->name, r->nat ? "true" : "false");
        r->refs++;
        *out = r;
        return 0;
    }
    snprintf(p, sizeof p, "%s.name", path);
    if (if_nametoindex(b->name))
        return err_config(err, VMCORE_EBUSY, p, "an interface named %s exists already "
                          "(\"create\" makes a new bridge; without it the domain attaches to "
                          "an existing one)", b->name);
    snprintf(p, sizeof p, "%s.address", path);
    if (a && subnet_in_use(a, prefix, who, sizeof who))
        return err_config(err, VMCORE_ECONFIG, p, "%s clashes with the address of %s",
                          b->address, who);
    snprintf(p, sizeof p, "%s.nat", path);
    if (b->nat && forwarding_on() != 1)
        return err_config(err, VMCORE_EUNAVAIL, p, "the host does not forward IPv4 "
                          "(net.ipv4.ip_forward is not 1; the library does not change it)");
    r = calloc(1, sizeof *r);
    if (!r)
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    snprintf(r->name, sizeof r->name, "%s", b->name);
    r->owned = true;
    r->refs = 1;
    r->addr = a;
    r->prefix = prefix;
    r->nat = b->nat;
    snprintf(p, sizeof p, "%s.name", path);
    int rc = link_create_bridge(b->name);
    if (rc < 0) {
        free(r);
        return err_config(err, rc == -EPERM ? VMCORE_EPERM : rc == -EEXIST ? VMCORE_EBUSY
                                                                             : VMCORE_ESYS,
                          p, "create bridge %s: %s", b->name, strerror(-rc));
    }
    r->index = if_nametoindex(b->name);
    const char *what = NULL;
    if (!r->index)
        rc = -errno, what = "find it";
    else if (a && (rc = addr_add(r->index, a, prefix)) < 0)
        what = "add its address", snprintf(p, sizeof p, "%s.address", path);
    else if ((rc = link_set(r->index, 0)) < 0)
        what = "bring it up";
    if (what) {
        if (r->index)
            link_delete(r->index);
        free(r);
        return err_config(err, VMCORE_ESYS, p, "bridge %s: %s: %s", b->name, what,
                          strerror(-rc));
    }
    if (b->nat) {
        char msg[256];
        if (nat_add(b->name, a & mask_of(prefix), prefix, msg, sizeof msg) != 0) {
            link_delete(r->index);
            free(r);
            snprintf(p, sizeof p, "%s.nat", path);
            return err_config(err, VMCORE_ESYS, p, "nftables: %s", msg);
        }
    }
    r->next = owned;
    owned = r;
    *out = r;
    return 0;
}

int bridge_acquire(const struct config_bridge *b, const char *path, struct bridge_ref **out,
                   struct vmcore_err *err)
{
    *out = NULL;
    pthread_mutex_lock(&lock);
    int rc;
    if (b->create) {
        rc = create_locked(b, path, out, err);
        pthread_mutex_unlock(&lock);
        return rc;
    }
    char p[VMCORE_ERR_PATH_MAX], drv[40];
    snprintf(p, sizeof p, "%s.name", path);
    struct bridge_ref *r = find_owned(b->name);
    if (r) {
        r->refs++;
        *out = r;
        pthread_mutex_unlock(&lock);
        return 0;
    }
    pthread_mutex_unlock(&lock);
    unsigned index = if_nametoindex(b->name);
    if (!index)
        return err_config(err, VMCORE_ENOENT, p, "no interface %s (create the bridge first, "
                          "or set \"create\": true)", b->name);
    if ((rc = link_driver(b->name, drv, sizeof drv)) < 0 || strcmp(drv, "bridge") != 0)
        return err_config(err, VMCORE_ECONFIG, p, "%s is not a bridge (driver %s)", b->name,
                          rc < 0 ? "unknown" : drv);
    r = calloc(1, sizeof *r);
    if (!r)
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    snprintf(r->name, sizeof r->name, "%s", b->name);
    r->index = index;
    r->refs = 1;
    *out = r;
    return 0;
}

int bridge_attach(struct bridge_ref *r, const char *ifname, const char *path,
                  struct vmcore_err *err)
{
    unsigned idx = if_nametoindex(ifname);
    if (!idx)
        return err_config(err, VMCORE_ESYS, path, "%s: %s", ifname, strerror(errno));
    unsigned master = if_nametoindex(r->name);
    if (!master)
        return err_config(err, VMCORE_ENOENT, path, "bridge %s is gone", r->name);
    int rc = link_set(idx, master);
    if (rc < 0)
        return err_config(err, VMCORE_ESYS, path, "attach %s to bridge %s: %s", ifname,
                          r->name, strerror(-rc));
    return 0;
}

void bridge_release(struct bridge_ref *r)
{
    if (!r)
        return;
    if (!r->owned) {
        free(r);
        return;
    }
    pthread_mutex_lock(&lock);
    if (--r->refs > 0) {
        pthread_mutex_unlock(&lock);
        return;
    }
    for (struct bridge_ref **pp = &owned; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    /* Under the lock: a domain creating it anew waits until it is gone. */
    if (r->nat)
        nat_delete(r->name);
    link_delete(r->index);
    pthread_mutex_unlock(&lock);
    free(r);
}
