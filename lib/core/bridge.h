/* Host bridges for network mode "bridge" (containers' network, VMs' nics[N]): a domain
 * takes a reference on the bridge its config names, attaches its veth host end or its tap,
 * and drops the reference when it goes away (doc/config.md "bridge").
 *
 * A bridge this process created ("create": true) is kept in a process-wide table with the
 * number of domains that use it (those that created it and those that merely name it);
 * the last one to go removes it, and its NAT table with it. A bridge the library did not
 * create is never changed beyond its ports. Thread-safe. */
#ifndef VMCORE_CORE_BRIDGE_H
#define VMCORE_CORE_BRIDGE_H

#include "core/config.h"
#include "core/err.h"

struct bridge_ref;

/* Take the bridge @b describes; @path is its JSON path ("network.bridge",
 * "nics[0].bridge"), which every error names (with ".name", ".address" or ".nat").
 * Without b->create it must exist and be a bridge; with it, it is created (with its
 * address, up, and the NAT's nftables table if b->nat), or, when this process created it
 * already for another domain with the same address and nat, shared. On failure nothing is
 * left behind. */
int bridge_acquire(const struct config_bridge *b, const char *path, struct bridge_ref **out,
                   struct vmcore_err *err);
/* Make @ifname (up already) a port of the bridge. Errors name @path. */
int bridge_attach(struct bridge_ref *r, const char *ifname, const char *path,
                  struct vmcore_err *err);
/* Drop the reference (NULL is fine); the last one of a created bridge removes the NAT
 * table and the bridge. */
void bridge_release(struct bridge_ref *r);
/* The nftables table (family ip) of a created bridge's NAT: "vmcore_" plus the bridge's
 * name with every character other than a letter, digit or '_' as '_'. */
void bridge_nat_table(const char *bridge, char *out, size_t len);

#endif
