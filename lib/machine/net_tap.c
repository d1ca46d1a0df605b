/* The tap backend of virtio-net: /dev/net/tun in IFF_TAP | IFF_NO_PI | IFF_VNET_HDR mode
 * with a 12-byte vnet header (the virtio 1.x one), so a frame goes from the guest's
 * buffers to the host kernel with one writev() and back with one readv(). Offloads stay
 * off (TUNSETOFFLOAD 0): the host kernel checksums and segments before handing a frame
 * over, which matches a virtio-net device that offers no checksum or GSO features. */
#include "net_backend.h"

#include "core/bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

struct tap {
    struct net_backend nb;
    bool created;                 /* ours: the kernel removes it when the fd closes */
    struct bridge_ref *bridge;    /* mode "bridge": the bridge the tap is a port of */
};

static int tap_send(struct net_backend *nb, const struct iovec *iov, int iovcnt)
{
    return writev(nb->fd, iov, iovcnt) < 0 ? -errno : 0;
}

static ssize_t tap_recv(struct net_backend *nb, const struct iovec *iov, int iovcnt)
{
    ssize_t n = readv(nb->fd, iov, iovcnt);
    return n < 0 ? -errno : n;
}

static void tap_close(struct net_backend *nb)
{
    struct tap *t = (struct tap *)nb;
    if (nb->fd >= 0)
        close(nb->fd);    /* a tap we created is not persistent: this removes it */
    bridge_release(t->bridge); /* after the port is gone: the last one removes a bridge we made */
    free(nb);
}

static const struct net_backend_ops tap_ops = {
    .kind = "tap", .send = tap_send, .recv = tap_recv, .close = tap_close,
};

/* Bring a tap we created up, so the host side only needs an address. */
static int link_up(const char *ifname)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    struct ifreq ifr = { 0 };
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    int rc = 0;
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        rc = -errno;
    else if (!(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
            rc = -errno;
    }
    close(s);
    return rc;
}

int net_tap_open(const struct config_nic *nic, unsigned index, struct net_backend **out,
                 struct vmcore_err *err)
{
    char path[32];
    snprintf(path, sizeof path, "nics[%u].ifname", index);
    *out = NULL;
    bool create = nic->create || !nic->ifname;
    if (!create && if_nametoindex(nic->ifname) == 0)
        return err_config(err, VMCORE_ENOENT, path, "no interface \"%s\" (create a tap "
                          "with `ip tuntap add dev %s mode tap`, or set \"create\": true)",
                          nic->ifname, nic->ifname);
    struct tap *t = calloc(1, sizeof *t);
    if (!t)
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    t->nb.ops = &tap_ops;
    t->nb.fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (t->nb.fd < 0) {
        int e = errno;
        free(t);
        return err_config(err, e == EACCES || e == EPERM ? VMCORE_EPERM : VMCORE_EUNAVAIL,
                          path, "cannot open /dev/net/tun: %s", strerror(e));
    }
    struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
    if (create)
        ifr.ifr_flags |= IFF_TUN_EXCL;       /* fail rather than take over an existing one */
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", nic->ifname ? nic->ifname : "vmtap%d");
    if (ioctl(t->nb.fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        tap_close(&t->nb);
        if (create && e == EBUSY)
            return err_config(err, VMCORE_EBUSY, path, "\"%s\" already exists (\"create\" "
                              "makes a new tap)", nic->ifname);
        if (e == EBUSY)
            return err_config(err, VMCORE_EBUSY, path, "tap \"%s\" is in use by another "
                              "process or domain", nic->ifname);
        if (e == EINVAL && !create)
            return err_config(err, VMCORE_ECONFIG, path, "\"%s\" is not a tap interface",
                              nic->ifname);
        if (e == EPERM)
            return err_config(err, VMCORE_EPERM, path, "not allowed to %s tap \"%s\" "
                              "(CAP_NET_ADMIN, or the tap's owner)",
                              create ? "create" : "attach to",
                              nic->ifname ? nic->ifname : "vmtap%d");
        return err_config(err, VMCORE_ESYS, path, "TUNSETIFF %s: %s",
                          nic->ifname ? nic->ifname : "vmtap%d", strerror(e));
    }
    t->created = create;
    snprintf(t->nb.ifname, sizeof t->nb.ifname, "%s", ifr.ifr_name);
    int hdr = NET_HDR_LEN;
    int e = 0;
    const char *what = NULL;
    if (ioctl(t->nb.fd, TUNSETVNETHDRSZ, &hdr) < 0)
        e = errno, what = "TUNSETVNETHDRSZ";
    else if (ioctl(t->nb.fd, TUNSETOFFLOAD, 0) < 0)
        e = errno, what = "TUNSETOFFLOAD";
    else if (create && (e = -link_up(t->nb.ifname)) != 0)
        what = "bringing the link up";
    if (what) {
        char name[16];
        snprintf(name, sizeof name, "%s", t->nb.ifname);
        tap_close(&t->nb);
        return err_config(err, VMCORE_ESYS, path, "tap %s: %s: %s", name, what, strerror(e));
    }
    *out = &t->nb;
    return 0;
}

int net_bridge_open(const struct config_nic *nic, unsigned index, struct net_backend **out,
                    struct vmcore_err *err)
{
    char path[32];
    snprintf(path, sizeof path, "nics[%u].bridge", index);
    *out = NULL;
    struct bridge_ref *br;
    int rc = bridge_acquire(&nic->bridge, path, &br, err);
    if (rc < 0)
        return rc;
    struct config_nic tapcfg = *nic;   /* a tap the kernel names, ours */
    tapcfg.ifname = NULL;
    tapcfg.create = true;
    struct net_backend *nb;
    if ((rc = net_tap_open(&tapcfg, index, &nb, err)) < 0) {
        bridge_release(br);
        return rc;
    }
    ((struct tap *)nb)->bridge = br;
    if ((rc = bridge_attach(br, nb->ifname, path, err)) < 0) {
        tap_close(nb);
        return rc;
    }
    *out = nb;
    return 0;
}
