/* Container networking over rtnetlink, messages built by hand (no `ip` at run time).
 * Host side: create the veth pair and raise the host end. Child side (in the new net
 * namespace, before execve): raise lo and configure the inside end; for mode "user",
 * first make the tap and pass its fd to the parent, which attaches it to libslirp. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include "ct.h"

struct nlmsg {
    union {
        struct nlmsghdr h;
        char buf[1024];
    };
};

static void nl_begin(struct nlmsg *m, int type, int flags)
{
    memset(m, 0, sizeof *m);
    m->h.nlmsg_len = NLMSG_LENGTH(0);
    m->h.nlmsg_type = (unsigned short)type;
    m->h.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
    m->h.nlmsg_seq = 1;
}

static void *nl_put(struct nlmsg *m, const void *data, size_t len)
{
    char *p = m->buf + NLMSG_ALIGN(m->h.nlmsg_len);
    if (data)
        memcpy(p, data, len);
    else
        memset(p, 0, len);
    m->h.nlmsg_len = NLMSG_ALIGN(m->h.nlmsg_len) + (unsigned)len;
    return p;
}

static struct rtattr *nl_attr(struct nlmsg *m, int type, const void *data, size_t len)
{
    struct rtattr *a = (struct rtattr *)(m->buf + NLMSG_ALIGN(m->h.nlmsg_len));
    a->rta_type = (unsigned short)type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    if (len)
        memcpy(RTA_DATA(a), data, len);
    m->h.nlmsg_len = NLMSG_ALIGN(m->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
    return a;
}

static void nl_nest_end(struct nlmsg *m, struct rtattr *a)
{
    a->rta_len = (unsigned short)(m->buf + m->h.nlmsg_len - (char *)a);
}

/* Send one request and wait for its ack; returns 0 or -errno. */
/* Send @m and read until its ACK (nl_begin always asks for one): 0 or -errno. Every
 * other message of the reply (a GET's answer) goes to @on_msg first, if given. */
static int nl_talk_reply(struct nlmsg *m, void (*on_msg)(const struct nlmsghdr *h, void *arg),
                         void *arg)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
    int rc;
    if (sendto(fd, m, m->h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0) {
        rc = -errno;
        goto out;
    }
    /* room for a whole RTM_NEWLINK with its statistics */
    char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                rc = e->error;
                goto out;
            }
            if (on_msg)
                on_msg(h, arg);
        }
    }
out:
    close(fd);
    return rc;
}

static int nl_talk(struct nlmsg *m) { return nl_talk_reply(m, NULL, NULL); }

static int link_set_up(const char *ifname)
{
    struct nlmsg m;
    nl_begin(&m, RTM_NEWLINK, 0);
    struct ifinfomsg *ifi = nl_put(&m, NULL, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
    nl_attr(&m, IFLA_IFNAME, ifname, strlen(ifname) + 1);
    return nl_talk(&m);
}

/* The configuration's parser (config.c validated these strings with it already). */
int net_parse_cidr(const char *s, uint32_t *addr_be, unsigned *prefix)
{
    return config_parse_cidr(s, addr_be, prefix);
}

static int addr_add(const char *ifname, const char *cidr)
{
    uint32_t a;
    unsigned prefix;
    if (net_parse_cidr(cidr, &a, &prefix) < 0)
        return -EINVAL;
    unsigned idx = if_nametoindex(ifname);
    if (!idx)
        return -errno;
    struct nlmsg m;
    nl_begin(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    struct ifaddrmsg *ifa = nl_put(&m, NULL, sizeof *ifa);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (unsigned char)prefix;
    ifa->ifa_index = idx;
    nl_attr(&m, IFA_LOCAL, &a, 4);
    nl_attr(&m, IFA_ADDRESS, &a, 4);
    if (prefix < 31) {
        uint32_t bcast = a | htonl(prefix ? (0xffffffffu >> prefix) : 0xffffffffu);
        nl_attr(&m, IFA_BROADCAST, &bcast, 4);
    }
    return nl_talk(&m);
}

/* The default route through @gw (IPv4, network byte order) on @ifname. */
static int route_add_default(const char *ifname, uint32_t gw)
{
    unsigned idx = if_nametoindex(ifname);
    if (!idx)
        return -errno;
    struct nlmsg m;
    nl_begin(&m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
    struct rtmsg *rt = nl_put(&m, NULL, sizeof *rt);
    rt->rtm_family = AF_INET;
    rt->rtm_dst_len = 0;
    rt->rtm_table = RT_TABLE_MAIN;
    rt->rtm_protocol = RTPROT_BOOT;
    rt->rtm_scope = RT_SCOPE_UNIVERSE;
    rt->rtm_type = RTN_UNICAST;
    nl_attr(&m, RTA_GATEWAY, &gw, 4);
    uint32_t oif = idx;
    nl_attr(&m, RTA_OIF, &oif, 4);
    return nl_talk(&m);
}

int net_child_setup(const char *ifname, const char *addr, const char *gw,
                    struct ct_child_err *e)
{
    int r = link_set_up("lo");
    if (r < 0)
        return ct_child_fail(e, VMCORE_ESYS, -r, "bring up lo in the container");
    if (ifname && addr) {
        if ((r = addr_add(ifname, addr)) < 0)
            return ct_child_fail(e, VMCORE_ESYS, -r, "network.address: add %s to %s", addr, ifname);
        if ((r = link_set_up(ifname)) < 0)
            return ct_child_fail(e, VMCORE_ESYS, -r, "bring up %s in the container", ifname);
    }
    if (ifname && gw) {
        uint32_t a;
        if (inet_pton(AF_INET, gw, &a) != 1)
            return ct_child_fail(e, VMCORE_EINVAL, 0, "network: bad gateway %s", gw);
        if ((r = route_add_default(ifname, a)) < 0)
            return ct_child_fail(e, VMCORE_ESYS, -r, "network: default route via %s on %s", gw,
                                 ifname);
    }
    return 0;
}

int net_child_tap(int sock, const char *ifname, struct ct_child_err *e)
{
    /* Opened here, in the container's network namespace (a tun file's namespace is its
     * opener's) but still before pivot_root, so it is the host's /dev/net/tun. */
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return ct_child_fail(e, errno == ENOENT ? VMCORE_EUNAVAIL
                                : errno == EACCES || errno == EPERM ? VMCORE_EPERM
                                                                    : VMCORE_ESYS,
                             errno, "network.mode \"user\": open /dev/net/tun%s",
                             errno == EACCES ? " (rootless, it must be open to all users: "
                                               "mode 0666)" : "");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    size_t n = strlen(ifname);
    memcpy(ifr.ifr_name, ifname, n < IFNAMSIZ - 1 ? n : IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int err = errno;
        close(fd);
        return ct_child_fail(e, VMCORE_ESYS, err, "network.mode \"user\": create the tap %s",
                             ifname);
    }
    /* The parent keeps the tap: ours closes at execve, the device lives with its fd. */
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    char byte = 0;
    struct iovec iov = { &byte, 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                         .msg_controllen = sizeof ctl.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t w;
    do
        w = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    int err = errno;
    close(fd);
    if (w != 1)
        return ct_child_fail(e, VMCORE_ESYS, err, "network.mode \"user\": hand the tap to "
                             "the host process");
    return 0;
}

int net_veth_create(const char *host_ifname, const char *peer_ifname, pid_t pid,
                    const char *host_addr, struct vmcore_err *err)
{
    struct nlmsg m;
    nl_begin(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    struct ifinfomsg *ifi = nl_put(&m, NULL, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    nl_attr(&m, IFLA_IFNAME, host_ifname, strlen(host_ifname) + 1);
    struct rtattr *info = nl_attr(&m, IFLA_LINKINFO, NULL, 0);
    nl_attr(&m, IFLA_INFO_KIND, "veth", 5);
    struct rtattr *data = nl_attr(&m, IFLA_INFO_DATA, NULL, 0);
    struct rtattr *peer = nl_attr(&m, VETH_INFO_PEER, NULL, 0);
    struct ifinfomsg *pifi = nl_put(&m, NULL, sizeof *pifi);
    pifi->ifi_family = AF_UNSPEC;
    nl_attr(&m, IFLA_IFNAME, peer_ifname, strlen(peer_ifname) + 1);
    uint32_t npid = (uint32_t)pid;
    nl_attr(&m, IFLA_NET_NS_PID, &npid, 4);
    nl_nest_end(&m, peer);
    nl_nest_end(&m, data);
    nl_nest_end(&m, info);
    int r = nl_talk(&m);
    if (r == -EEXIST)
        return err_set(err, VMCORE_ECONFIG, "network.host_ifname: an interface named %s already exists",
                       host_ifname);
    if (r < 0)
        return err_sys(err, r == -EPERM ? VMCORE_EPERM : VMCORE_ESYS, -r,
                       "network.host_ifname: create veth %s", host_ifname);
    if (host_addr && (r = addr_add(host_ifname, host_addr)) < 0) {
        net_link_delete(host_ifname);
        return err_sys(err, VMCORE_ESYS, -r, "network.host_address: add %s to %s", host_addr,
                       host_ifname);
    }
    if ((r = link_set_up(host_ifname)) < 0) {
        net_link_delete(host_ifname);
        return err_sys(err, VMCORE_ESYS, -r, "bring up %s", host_ifname);
    }
    return 0;
}

int net_link_delete(const char *ifname)
{
    struct nlmsg m;
    nl_begin(&m, RTM_DELLINK, 0);
    struct ifinfomsg *ifi = nl_put(&m, NULL, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    nl_attr(&m, IFLA_IFNAME, ifname, strlen(ifname) + 1);
    int r = nl_talk(&m);
    return r == -ENODEV ? 0 : r;
}

/* RTM_NEWLINK's IFLA_STATS64 into the net_* fields of @arg (a vmcore_stats): the host
 * end's rx is what the container sent. */
static void link_stats(const struct nlmsghdr *h, void *arg)
{
    vmcore_stats *out = arg;
    if (h->nlmsg_type != RTM_NEWLINK)
        return;
    struct ifinfomsg *info = NLMSG_DATA(h);
    int len = (int)IFLA_PAYLOAD(h);
    for (struct rtattr *a = IFLA_RTA(info); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type != IFLA_STATS64 || RTA_PAYLOAD(a) < sizeof(struct rtnl_link_stats64))
            continue;
        struct rtnl_link_stats64 st;
        memcpy(&st, RTA_DATA(a), sizeof st);
        out->net_rx_bytes = st.tx_bytes;
        out->net_rx_packets = st.tx_packets;
        out->net_tx_bytes = st.rx_bytes;
        out->net_tx_packets = st.rx_packets;
    }
}

/* RTM_GETLINK through a netlink socket answers for this process's network namespace
 * (/sys/class/net shows the namespace sysfs was mounted in, which may be another). */
void net_link_counters(const char *ifname, vmcore_stats *out)
{
    unsigned idx = if_nametoindex(ifname);
    if (!idx)
        return;
    struct nlmsg m;
    nl_begin(&m, RTM_GETLINK, 0);
    struct ifinfomsg *ifi = nl_put(&m, NULL, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = (int)idx;
    nl_talk_reply(&m, link_stats, out);
}
