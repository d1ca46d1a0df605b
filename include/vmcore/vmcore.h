/**
 * @file vmcore.h
 * @brief Umbrella header: include this one to use libvmcore.
 *
 * @mainpage libvmcore
 * An embeddable library that runs isolated workloads (KVM virtual machines, software-emulated
 * virtual machines, containers) behind one event-driven handle API. Start with ctx.h
 * (a context bound to a libuv loop), then domain.h (create, start, events), probe.h and
 * error.h. The configuration schema is documented in doc/config.md.
 */
#ifndef VMCORE_VMCORE_H
#define VMCORE_VMCORE_H

#include "common.h"
#include "version.h"
#include "error.h"
#include "ctx.h"
#include "probe.h"
#include "event.h"
#include "domain.h"
#include "detach.h"

#endif /* VMCORE_VMCORE_H */
