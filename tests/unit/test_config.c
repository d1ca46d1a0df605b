/* Config validation: every error path returns its code and names the JSON path. */
#include "vt.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/container/ct.h"
#include "core/backend.h"
#include "core/config.h"

static char tmpdir[] = "/tmp/vmcore-config-XXXXXX";
static char kernel[4200], rootfs[4200];

static int setup_files(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(kernel, sizeof kernel, "%s/kernel.bin", tmpdir);
    snprintf(rootfs, sizeof rootfs, "%s/rootfs", tmpdir);
    FILE *f = fopen(kernel, "w");
    if (!f)
        return -1;
    fputs("\xf4", f);
    fclose(f);
    return mkdir(rootfs, 0755);
}

static int teardown_files(void **state)
{
    (void)state;
    unlink(kernel);
    rmdir(rootfs);
    return rmdir(tmpdir);
}

struct bad_case {
    const char *json;   /* %K = kernel path, %R = rootfs path */
    int code;
    const char *path;   /* expected JSON path, NULL when none */
    const char *needle; /* expected substring of the message */
};

static char *expand(const char *tmpl)
{
    static char buf[16384];
    char *o = buf;
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '%' && (p[1] == 'K' || p[1] == 'R')) {
            o += sprintf(o, "%s", p[1] == 'K' ? kernel : rootfs);
            p++;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return buf;
}

static const struct bad_case bad_cases[] = {
    { "[]", VMCORE_ECONFIG, "$", "must be an object" },
    { "{\"nmae\":\"x\"}", VMCORE_ECONFIG, "nmae", "unknown key" },
    /* An empty key: the path is the object that holds it, never "" (issue #11). */
    { "{\"\":1}", VMCORE_ECONFIG, "$", "empty key" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\",\"\":1}}", VMCORE_ECONFIG, "boot",
      "empty key" },
    /* Image errors name the key that named the file (the loaders run at creation). */
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"/proc/self/mem\"}}", VMCORE_EIMAGE,
      "boot.kernel", "cannot be sized" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\",\"format\":\"elf\"}}", VMCORE_EIMAGE,
      "boot.kernel", "not an ELF file" },
    { "{\"name\":5}", VMCORE_ECONFIG, "name", "expected a string" },
    { "{\"name\":\"\"}", VMCORE_ECONFIG, "name", "length" },
    { "{\"name\":\"a b\"}", VMCORE_ECONFIG, "name", "invalid character" },
    { "{\"backend\":\"xen\"}", VMCORE_ECONFIG, "backend", "unknown value \"xen\"" },
    { "{\"backend\":\"kvm\"}", VMCORE_ECONFIG, "boot", "missing" },
    { "{\"backend\":\"emu\",\"boot\":{}}", VMCORE_ECONFIG, "boot.kernel", "missing" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"/nonexistent/k\"}}", VMCORE_ENOENT,
      "boot.kernel", "/nonexistent/k" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%R\"}}", VMCORE_ECONFIG, "boot.kernel",
      "not a regular file" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\",\"kernal\":1}}", VMCORE_ECONFIG,
      "boot.kernal", "unknown key" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\",\"format\":\"pe\"}}", VMCORE_ECONFIG,
      "boot.format", "unknown value" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\",\"initrd\":\"/nonexistent/i\"}}",
      VMCORE_ENOENT, "boot.initrd", "cannot access" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\",\"mode\":\"long\"}}", VMCORE_ECONFIG,
      "boot.mode", "only meaningful" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\",\"format\":\"raw\",\"mode\":\"v86\"}}",
      VMCORE_ECONFIG, "boot.mode", "unknown value" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\",\"format\":\"raw\",\"load_address\":-1}}",
      VMCORE_ECONFIG, "boot.load_address", "out of range" },
    { "{\"backend\":\"emu\",\"memory_mib\":2,\"boot\":{\"kernel\":\"%K\",\"format\":\"raw\","
      "\"load_address\":4194304}}", VMCORE_ECONFIG, "boot.load_address", "beyond guest memory" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\",\"cmdline\":7}}", VMCORE_ECONFIG,
      "boot.cmdline", "expected a string" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\",\"entry\":\"0x10\"}}", VMCORE_ECONFIG,
      "boot.entry", "expected an integer" },
    { "{\"backend\":\"emu\",\"boot\":[]}", VMCORE_ECONFIG, "boot", "expected an object" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"disks\":{}}", VMCORE_ECONFIG,
      "disks", "expected an array" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"disks\":[{}]}", VMCORE_ECONFIG,
      "disks[0].path", "missing" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"disks\":[1]}", VMCORE_ECONFIG,
      "disks[0]", "expected an object" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"disks\":[{\"path\":\"%K\"},"
      "{\"path\":\"/nonexistent/d.img\"}]}", VMCORE_ENOENT, "disks[1].path", "/nonexistent/d.img" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"disks\":[{\"path\":\"%R\"}]}",
      VMCORE_ECONFIG, "disks[0].path", "not a regular file" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"disks\":[{\"path\":\"%K\","
      "\"readonly\":1}]}", VMCORE_ECONFIG, "disks[0].readonly", "expected a boolean" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"disks\":[{\"path\":\"%K\","
      "\"serial\":\"123456789012345678901\"}]}", VMCORE_ECONFIG, "disks[0].serial", "20 bytes" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"disks\":[{\"path\":\"%K\","
      "\"size\":1}]}", VMCORE_ECONFIG, "disks[0].size", "unknown key" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"disks\":[{\"path\":\"%K\","
      "\"readonly\":true},{\"path\":\"%K\",\"readonly\":true},{\"path\":\"%K\","
      "\"readonly\":true},{\"path\":\"%K\"},{\"path\":\"%K\"},{\"path\":\"%K\"},{\"path\":\"%K\"},"
      "{\"path\":\"%K\"},{\"path\":\"%K\"},{\"path\":\"%K\"},{\"path\":\"%K\"},{\"path\":\"%K\"},"
      "{\"path\":\"%K\"},{\"path\":\"%K\"},{\"path\":\"%K\"},{\"path\":\"%K\"},{\"path\":\"%K\"}]}",
      VMCORE_ELIMIT, "disks", "at most 16" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":{}}", VMCORE_ECONFIG,
      "nics", "expected an array" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[1]}", VMCORE_ECONFIG,
      "nics[0]", "expected an object" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"bridge\"}]}", VMCORE_ECONFIG,
      "nics[0].bridge", "missing" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"tap\",\"bridge\":\"br0\"}]}", VMCORE_ECONFIG,
      "nics[0].bridge", "only for \"mode\": \"bridge\"" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"bridge\",\"bridge\":\"br0\",\"ifname\":\"t0\"}]}", VMCORE_ECONFIG,
      "nics[0].ifname", "not valid with" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"bridge\",\"bridge\":7}]}", VMCORE_ECONFIG,
      "nics[0].bridge", "a bridge's name or an object" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"bridge\",\"bridge\":\"a-very-long-bridge\"}]}", VMCORE_ECONFIG,
      "nics[0].bridge", "length" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"bridge\",\"bridge\":{\"create\":true}}]}", VMCORE_ECONFIG,
      "nics[0].bridge.name", "missing" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"bridge\",\"bridge\":{\"name\":\"br0\",\"mtu\":1}}]}", VMCORE_ECONFIG,
      "nics[0].bridge.mtu", "unknown key" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"bridge\",\"bridge\":{\"name\":\"br0\",\"address\":\"10.7.0.1/24\"}}]}", VMCORE_ECONFIG,
      "nics[0].bridge.address", "only with \"create\": true" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"bridge\",\"bridge\":{\"name\":\"br0\",\"create\":true,\"address\":\"10.7.0.0/24\"}}]}", VMCORE_ECONFIG,
      "nics[0].bridge.address", "not a host address" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"bridge\",\"bridge\":{\"name\":\"br0\",\"create\":true,\"address\":\"10.7.0.1\"}}]}", VMCORE_ECONFIG,
      "nics[0].bridge.address", "prefix" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"bridge\",\"bridge\":{\"name\":\"br0\",\"nat\":true}}]}", VMCORE_ECONFIG,
      "nics[0].bridge.nat", "needs \"create\": true" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"bridge\",\"bridge\":{\"name\":\"br0\",\"create\":true,\"nat\":true}}]}", VMCORE_ECONFIG,
      "nics[0].bridge.nat", "an \"address\"" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"user\",\"ifname\":\"t0\"}]}", VMCORE_ECONFIG,
      "nics[0].ifname", "only for" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"tap\",\"ports\":[]}]}", VMCORE_ECONFIG,
      "nics[0].ports", "only for" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"user\",\"ports\":{}}]}", VMCORE_ECONFIG,
      "nics[0].ports", "expected an array" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"user\",\"ports\":[{\"host\":8080}]}]}", VMCORE_ECONFIG,
      "nics[0].ports[0].guest", "missing" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"user\",\"ports\":[{\"guest\":80}]}]}", VMCORE_ECONFIG,
      "nics[0].ports[0].host", "missing" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"user\",\"ports\":[{\"guest\":80,\"host\":\"1.2.3:80\"}]}]}", VMCORE_ECONFIG,
      "nics[0].ports[0].host", "not an IPv4 address" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"user\",\"ports\":[{\"guest\":80,\"host\":\"127.0.0.1:0\"}]}]}", VMCORE_ECONFIG,
      "nics[0].ports[0].host", "not a port" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"user\",\"ports\":[{\"guest\":80,\"host\":\"x\"}]}]}", VMCORE_ECONFIG,
      "nics[0].ports[0].host", "not a port" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"user\",\"ports\":[{\"guest\":70000,\"host\":80}]}]}", VMCORE_ECONFIG,
      "nics[0].ports[0].guest", "out of range" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"user\",\"ports\":[{\"guest\":80,\"host\":80,\"proto\":\"sctp\"}]}]}", VMCORE_ECONFIG,
      "nics[0].ports[0].proto", "unknown value" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"user\",\"ports\":[{\"guest\":80,\"host\":8080},{\"guest\":81,\"host\":\"127.0.0.1:8080\"}]}]}", VMCORE_ECONFIG,
      "nics[0].ports[1].host", "the same host port" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"user\",\"ports\":[{\"guest\":80,\"host\":true}]}]}", VMCORE_ECONFIG,
      "nics[0].ports[0].host", "expected" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mode\":\"vde\"}]}", VMCORE_ECONFIG,
      "nics[0].mode", "unknown value" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{},{\"mac\":\"52:54:00:12:34:5g\"}]}", VMCORE_ECONFIG,
      "nics[1].mac", "not a MAC address" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mac\":\"52:54:00:12:34\"}]}", VMCORE_ECONFIG,
      "nics[0].mac", "not a MAC address" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mac\":\"52:54:00:12:34:56:78\"}]}", VMCORE_ECONFIG,
      "nics[0].mac", "not a MAC address" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mac\":\"01:00:5e:00:00:01\"}]}", VMCORE_ECONFIG,
      "nics[0].mac", "multicast" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"mac\":\"00:00:00:00:00:00\"}]}", VMCORE_ECONFIG,
      "nics[0].mac", "all zeros" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"ifname\":\"tap 0\"}]}", VMCORE_ECONFIG,
      "nics[0].ifname", "invalid character" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"ifname\":\"a234567890123456\"}]}", VMCORE_ECONFIG,
      "nics[0].ifname", "length" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"ifname\":\"t0\"},{\"ifname\":\"t0\"}]}", VMCORE_ECONFIG,
      "nics[1].ifname", "also nics[0]" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"create\":true}]}", VMCORE_ECONFIG,
      "nics[0].create", "needs ifname" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{\"ifname\":\"t0\",\"vhost\":true}]}", VMCORE_ECONFIG,
      "nics[0].vhost", "unknown key" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"nics\":[{},{},{},{},{},{},{},{},{}]}", VMCORE_ELIMIT,
      "nics", "at most 8" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"nics\":[]}", VMCORE_ECONFIG, "nics", "virtual machines only" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"vsock\":{\"cid\":2,"
      "\"uds_path\":\"v.sock\"}}", VMCORE_ECONFIG, "vsock.cid", "" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"vsock\":{\"cid\":4294967295,"
      "\"uds_path\":\"v.sock\"}}", VMCORE_ECONFIG, "vsock.cid", "" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"vsock\":{\"cid\":3}}",
      VMCORE_ECONFIG, "vsock.uds_path", "missing" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"vsock\":{\"cid\":3,"
      "\"uds_path\":\"\"}}", VMCORE_ECONFIG, "vsock.uds_path", "empty" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"vsock\":{\"cid\":3,"
      "\"uds_path\":\"v\",\"port\":1}}", VMCORE_ECONFIG, "vsock.port", "unknown key" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"consoles\":{}}", VMCORE_ECONFIG,
      "consoles", "expected an array" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"consoles\":[{}]}", VMCORE_ECONFIG,
      "consoles[0].output", "missing" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"consoles\":[{\"output\":1}]}",
      VMCORE_ECONFIG, "consoles[0].output", "expected a string" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"consoles\":[{\"output\":\"\"}]}",
      VMCORE_ECONFIG, "consoles[0].output", "must not be empty" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"consoles\":[{\"output\":\"o\","
      "\"input\":\"i\"}]}", VMCORE_ECONFIG, "consoles[0].input", "unknown key" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"consoles\":[{\"output\":\"a\"},"
      "{\"output\":\"b\"},{\"output\":\"c\"},{\"output\":\"d\"},{\"output\":\"e\"}]}",
      VMCORE_ELIMIT, "consoles", "at most 4" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"consoles\":[]}", VMCORE_ECONFIG, "consoles", "virtual machines only" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%K\"},\"rng\":\"yes\"}", VMCORE_ECONFIG,
      "rng", "expected a boolean" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"rng\":true}", VMCORE_ECONFIG, "rng", "virtual machines only" },
    { "{\"backend\":\"emu\",\"memory_mib\":-64,\"boot\":{\"kernel\":\"%K\"}}", VMCORE_ECONFIG,
      "memory_mib", "out of range" },
    { "{\"backend\":\"emu\",\"memory_mib\":0,\"boot\":{\"kernel\":\"%K\"}}", VMCORE_ECONFIG,
      "memory_mib", "out of range" },
    { "{\"backend\":\"emu\",\"memory_mib\":1.5,\"boot\":{\"kernel\":\"%K\"}}", VMCORE_ECONFIG,
      "memory_mib", "expected an integer" },
    { "{\"backend\":\"emu\",\"memory_mib\":1073741824,\"boot\":{\"kernel\":\"%K\"}}",
      VMCORE_ELIMIT, "memory_mib", "exceeds the host" },
    { "{\"backend\":\"emu\",\"vcpus\":0,\"boot\":{\"kernel\":\"%K\"}}", VMCORE_ECONFIG, "vcpus",
      "out of range" },
    { "{\"backend\":\"emu\",\"vcpus\":1000,\"boot\":{\"kernel\":\"%K\"}}", VMCORE_ECONFIG,
      "vcpus", "out of range" },
    { "{\"backend\":\"emu\",\"rootfs\":\"%R\",\"boot\":{\"kernel\":\"%K\"}}", VMCORE_ECONFIG,
      "rootfs", "containers only" },
    { "{\"backend\":\"emu\",\"emu\":{\"jit\":1},\"boot\":{\"kernel\":\"%K\"}}", VMCORE_ECONFIG,
      "emu.jit", "expected a boolean" },
    { "{\"backend\":\"emu\",\"emu\":{\"jti\":false},\"boot\":{\"kernel\":\"%K\"}}",
      VMCORE_ECONFIG, "emu.jti", "unknown key" },
    { "{\"backend\":\"emu\",\"emu\":true,\"boot\":{\"kernel\":\"%K\"}}", VMCORE_ECONFIG,
      "emu", "expected an object" },
    { "{\"backend\":\"kvm\",\"emu\":{\"jit\":false},\"boot\":{\"kernel\":\"%K\"}}",
      VMCORE_ECONFIG, "emu", "backend \"kvm\"" },
    { "{\"backend\":\"container\",\"emu\":{}}", VMCORE_ECONFIG, "emu", "virtual machines only" },
    { "{\"boot\":{\"kernel\":\"%K\"},\"process\":{\"args\":[\"x\"]}}", VMCORE_ECONFIG,
      "process", "containers only" },
    { "{\"backend\":\"container\",\"boot\":{\"kernel\":\"%K\"}}", VMCORE_ECONFIG, "boot",
      "virtual machines only" },
    { "{\"backend\":\"container\",\"memory_mib\":5}", VMCORE_ECONFIG, "memory_mib",
      "virtual machines only" },
    { "{\"backend\":\"container\",\"process\":{\"args\":[\"/bin/true\"]}}", VMCORE_ECONFIG,
      "rootfs", "missing" },
    { "{\"backend\":\"container\",\"rootfs\":\"/nonexistent/rootfs\",\"process\":{\"args\":"
      "[\"/bin/true\"]}}", VMCORE_ENOENT, "rootfs", "/nonexistent/rootfs" },
    { "{\"backend\":\"container\",\"rootfs\":\"%K\",\"process\":{\"args\":[\"/bin/true\"]}}",
      VMCORE_ECONFIG, "rootfs", "not a directory" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\"}", VMCORE_ECONFIG, "process", "missing" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{}}", VMCORE_ECONFIG,
      "process.args", "missing" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[]}}", VMCORE_ECONFIG,
      "process.args", "must not be empty" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":\"/bin/sh\"}}",
      VMCORE_ECONFIG, "process.args", "expected an array" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"/bin/sh\",3]}}",
      VMCORE_ECONFIG, "process.args[1]", "expected a string" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"\"]}}",
      VMCORE_ECONFIG, "process.args[0]", "must not be empty" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"],"
      "\"env\":[\"NOEQUALS\"]}}", VMCORE_ECONFIG, "process.env[0]", "NAME=VALUE" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"],"
      "\"cwd\":\"tmp\"}}", VMCORE_ECONFIG, "process.cwd", "absolute" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"],"
      "\"uid\":-1}}", VMCORE_ECONFIG, "process.uid", "out of range" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"],"
      "\"gid\":4294967295}}", VMCORE_ECONFIG, "process.gid", "out of range" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"],"
      "\"terminal\":\"yes\"}}", VMCORE_ECONFIG, "process.terminal", "expected a boolean" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"],"
      "\"user\":\"root\"}}", VMCORE_ECONFIG, "process.user", "unknown key" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"hostname\":\"bad host\","
      "\"process\":{\"args\":[\"x\"]}}", VMCORE_ECONFIG, "hostname", "invalid character" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"limits\":{\"memory_bytes\":1024}}", VMCORE_ECONFIG, "limits.memory_bytes",
      "out of range" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"limits\":{\"memory_bytes\":4611686018427387903}}", VMCORE_ELIMIT,
      "limits.memory_bytes", "exceeds the host" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"limits\":{\"pids\":0}}", VMCORE_ECONFIG, "limits.pids", "out of range" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"limits\":{\"cpus\":0}}", VMCORE_ECONFIG, "limits.cpus", "below the minimum" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"limits\":{\"cpus\":100000}}", VMCORE_ELIMIT, "limits.cpus", "exceeds the host" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"limits\":{\"cpus\":\"1\"}}", VMCORE_ECONFIG, "limits.cpus", "expected a number" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"limits\":{\"swap\":1}}", VMCORE_ECONFIG, "limits.swap", "unknown key" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"bridge\"}}", VMCORE_ECONFIG, "network.bridge",
      "missing" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"bridge\",\"bridge\":\"br0\"}}", VMCORE_ECONFIG, "network.address",
      "missing" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"veth\",\"host_ifname\":\"vh0\",\"address\":\"10.1.2.3/24\",\"bridge\":\"br0\"}}", VMCORE_ECONFIG, "network.bridge",
      "only valid with network.mode \"bridge\"" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"bridge\",\"bridge\":\"br0\",\"address\":\"10.1.2.3/24\",\"host_address\":\"10.1.2.1/24\"}}", VMCORE_ECONFIG, "network.host_address",
      "not valid with" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"bridge\",\"bridge\":\"br0\",\"address\":\"10.1.2.3/24\",\"ports\":[]}}", VMCORE_ECONFIG, "network.ports",
      "only valid with network.mode \"user\"" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"bridge\",\"bridge\":{\"name\":\"br0\",\"create\":true,\"address\":\"10.7.0.1/24\"},\"address\":\"10.8.0.2/24\"}}", VMCORE_ECONFIG, "network.address",
      "not on the bridge's subnet" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"bridge\",\"bridge\":{\"name\":\"br0\",\"create\":true,\"address\":\"10.7.0.1/24\"},\"address\":\"10.7.0.1/24\"}}", VMCORE_ECONFIG, "network.address",
      "the bridge's own address" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"bridge\",\"bridge\":{\"name\":\"br0\",\"create\":true,\"address\":\"10.7.0.1/24\"},\"address\":\"10.7.0.255/24\"}}", VMCORE_ECONFIG, "network.address",
      "broadcast" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"bridge\",\"bridge\":{\"name\":\"br0\",\"create\":true,\"address\":\"10.7.0.1/24\"},\"address\":\"10.7.0.2/16\"}}", VMCORE_ECONFIG, "network.address",
      "not on the bridge's subnet" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"bridge\",\"bridge\":{\"name\":\"br0\",\"nat\":true},\"address\":\"10.7.0.2/24\"}}", VMCORE_ECONFIG, "network.bridge.nat",
      "needs" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"veth\"}}", VMCORE_ECONFIG, "network.host_ifname", "missing" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"veth\",\"host_ifname\":\"a-very-long-interface\"}}",
      VMCORE_ECONFIG, "network.host_ifname", "length" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"veth\",\"host_ifname\":\"vh0\"}}", VMCORE_ECONFIG,
      "network.address", "missing" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"veth\",\"host_ifname\":\"vh0\",\"address\":\"10.1.2.3\"}}",
      VMCORE_ECONFIG, "network.address", "prefix" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"veth\",\"host_ifname\":\"vh0\",\"address\":\"10.1.2.3/24\","
      "\"host_address\":\"300.1.1.1/24\"}}", VMCORE_ECONFIG, "network.host_address", "prefix" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"none\",\"address\":\"10.1.2.3/24\"}}", VMCORE_ECONFIG,
      "network.address", "only valid with network.mode \"veth\"" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"user\",\"address\":\"10.0.2.5/24\"}}", VMCORE_ECONFIG,
      "network.address", "only valid with network.mode \"veth\"" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"user\",\"host_ifname\":\"vh0\"}}", VMCORE_ECONFIG,
      "network.host_ifname", "only valid with network.mode \"veth\"" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"veth\",\"host_ifname\":\"vh0\",\"address\":\"10.1.2.3/24\","
      "\"ports\":[]}}", VMCORE_ECONFIG, "network.ports", "only valid with network.mode \"user\"" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"none\",\"ports\":[{\"host\":8080,\"guest\":80}]}}", VMCORE_ECONFIG,
      "network.ports", "only valid with network.mode \"user\"" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"ports\":[{\"host\":8080,\"guest\":80}]}}", VMCORE_ECONFIG,
      "network.ports", "only valid with network.mode \"user\"" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"user\",\"ports\":{}}}", VMCORE_ECONFIG, "network.ports",
      "expected an array" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"user\",\"ports\":[{\"host\":8080}]}}", VMCORE_ECONFIG,
      "network.ports[0].guest", "missing" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"user\",\"ports\":[{\"guest\":80,\"host\":\"1.2.3:80\"}]}}",
      VMCORE_ECONFIG, "network.ports[0].host", "not an IPv4 address" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"user\",\"ports\":[{\"guest\":80,\"host\":8080},"
      "{\"guest\":81,\"host\":\"127.0.0.1:8080\"}]}}", VMCORE_ECONFIG, "network.ports[1].host",
      "the same host port as network.ports[0]" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"network\":{\"mode\":\"user\",\"ports\":[{\"guest\":80,\"host\":80,\"via\":1}]}}",
      VMCORE_ECONFIG, "network.ports[0].via", "unknown key" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"mounts\":{}}", VMCORE_ECONFIG, "mounts", "expected an array" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"mounts\":[{\"target\":\"/x\"}]}", VMCORE_ECONFIG, "mounts[0].source", "missing" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"mounts\":[{\"source\":\"/nonexistent/src\",\"target\":\"/x\"}]}", VMCORE_ENOENT,
      "mounts[0].source", "/nonexistent/src" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"mounts\":[{\"source\":\"/tmp\",\"target\":\"x\"}]}", VMCORE_ECONFIG,
      "mounts[0].target", "absolute" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"userns\":{\"uid_map\":[{\"inside\":0,\"outside\":1000}]}}", VMCORE_ECONFIG,
      "userns.uid_map[0].count", "missing" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"userns\":{\"gid_map\":[{\"inside\":0,\"outside\":1000,\"count\":0}]}}", VMCORE_ECONFIG,
      "userns.gid_map[0].count", "out of range" },
    /* capabilities, rlimits, typed mounts, detach */
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"],"
      "\"capabilities\":[\"CAP_CHOWN\",\"CAP_FLY\"]}}", VMCORE_ECONFIG,
      "process.capabilities[1]", "unknown capability \"CAP_FLY\"" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"],"
      "\"capabilities\":\"CAP_CHOWN\"}}", VMCORE_ECONFIG, "process.capabilities", "an array" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"],"
      "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":2,\"hard\":1}]}}", VMCORE_ECONFIG,
      "process.rlimits[0].soft", "above hard" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"],"
      "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":1,\"hard\":1},"
      "{\"type\":\"RLIMIT_NOFILE\",\"soft\":1,\"hard\":1}]}}", VMCORE_ECONFIG,
      "process.rlimits[1].type", "given twice" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"],"
      "\"rlimits\":[{\"type\":\"RLIMIT_FOO\",\"soft\":1,\"hard\":1}]}}", VMCORE_ECONFIG,
      "process.rlimits[0].type", "unknown limit" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"],"
      "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":1}]}}", VMCORE_ECONFIG,
      "process.rlimits[0].hard", "missing" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"mounts\":[{\"type\":\"tmpfs\",\"source\":\"/tmp\",\"target\":\"/x\"}]}",
      VMCORE_ECONFIG, "mounts[0].source", "only for type \"bind\"" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"mounts\":[{\"type\":\"mqueue\",\"target\":\"/x\",\"data\":\"size=1\"}]}",
      VMCORE_ECONFIG, "mounts[0].data", "only for type \"tmpfs\"" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"mounts\":[{\"type\":\"nfs\",\"target\":\"/x\"}]}", VMCORE_ECONFIG,
      "mounts[0].type", "unknown value \"nfs\"" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"mounts\":[{\"type\":\"tmpfs\",\"target\":\"/a/../b\"}]}", VMCORE_ECONFIG,
      "mounts[0].target", "absolute" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"detach\":{\"hold\":\"/nonexistent/fifo\"}}", VMCORE_ENOENT, "detach.hold",
      "/nonexistent/fifo" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"detach\":{\"hold\":\"%R\"}}", VMCORE_ECONFIG, "detach.hold", "is not a FIFO" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"detach\":{\"hold\":\"fifo\"}}", VMCORE_ECONFIG, "detach.hold", "absolute" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"detach\":{\"cgroup\":\"vmcore-1-2\"}}", VMCORE_ECONFIG, "detach.cgroup",
      "must not start with \"vmcore-\"" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"detach\":{\"cgroup\":\"a/../b\"}}", VMCORE_ECONFIG, "detach.cgroup",
      "must not start with \".\"" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"detach\":{\"cgroup\":\"a//b\"}}", VMCORE_ECONFIG, "detach.cgroup", "a path of them" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"detach\":{\"cgroup\":\"a/b c\"}}", VMCORE_ECONFIG, "detach.cgroup", "invalid character" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"],"
      "\"init\":true},\"detach\":{}}", VMCORE_ECONFIG, "detach", "process.init" },
    { "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
      "\"detach\":{\"wait\":true}}", VMCORE_ECONFIG, "detach.wait", "unknown key" },
    { "{\"backend\":\"emu\",\"boot\":{\"kernel\":\"%R\"},\"detach\":{}}", VMCORE_ECONFIG,
      "detach", "containers only" },
};

static void test_bad_configs(void **state)
{
    (void)state;
    vmcore_ctx *ctx;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        vmcore_domain *d = (vmcore_domain *)0x1;
        const char *json = expand(c->json);
        int rc = vmcore_domain_new_json(&d, ctx, json);
        const char *msg = vmcore_ctx_last_error(ctx);
        const char *path = vmcore_ctx_last_error_path(ctx);
        if (rc != c->code || (c->path && (!path || strcmp(path, c->path) != 0)) ||
            !strstr(msg, c->needle))
            fail_msg("case %zu %s: rc=%s path=%s msg=\"%s\"; want %s path=%s needle=\"%s\"", i,
                     json, vmcore_error_name(rc), path ? path : "(null)", msg,
                     vmcore_error_name(c->code), c->path ? c->path : "(null)", c->needle);
        assert_null(d);
        if (c->path) /* the message starts with the path so a human sees where */
            assert_int_equal(strncmp(msg, c->path, strlen(c->path)), 0);
    }
    assert_int_equal(vmcore_ctx_free(ctx), 0);
}

static void test_malformed_json(void **state)
{
    (void)state;
    vmcore_ctx *ctx;
    vmcore_domain *d;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    assert_int_equal(vmcore_domain_new_json(&d, ctx, "{\"name\": "), VMCORE_EPARSE);
    assert_non_null(strstr(vmcore_ctx_last_error(ctx), "line 1"));
    assert_null(vmcore_ctx_last_error_path(ctx));
    assert_int_equal(vmcore_domain_new_json(&d, ctx, "{\"name\":\"a\",\"name\":\"b\"}"),
                     VMCORE_EPARSE);
    assert_non_null(strstr(vmcore_ctx_last_error(ctx), "duplicate"));
    assert_int_equal(vmcore_ctx_free(ctx), 0);
}

static void test_null_arguments(void **state)
{
    (void)state;
    vmcore_ctx *ctx;
    vmcore_domain *d;
    assert_int_equal(vmcore_ctx_new(NULL, NULL), VMCORE_EINVAL);
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    assert_int_equal(vmcore_domain_new_json(&d, NULL, "{}"), VMCORE_EINVAL);
    assert_int_equal(vmcore_domain_new_json(NULL, ctx, "{}"), VMCORE_EINVAL);
    assert_int_equal(vmcore_domain_new_json(&d, ctx, NULL), VMCORE_EINVAL);
    assert_non_null(strstr(vmcore_ctx_last_error(ctx), "json is NULL"));
    assert_int_equal(vmcore_domain_new_file(&d, ctx, NULL), VMCORE_EINVAL);
    assert_int_equal(vmcore_domain_new_jansson(&d, ctx, NULL, NULL), VMCORE_EINVAL);
    assert_int_equal(vmcore_domain_start(NULL, NULL, NULL), VMCORE_EINVAL);
    assert_int_equal(vmcore_domain_pause(NULL, NULL, NULL), VMCORE_EINVAL);
    assert_int_equal(vmcore_domain_resume(NULL, NULL, NULL), VMCORE_EINVAL);
    assert_int_equal(vmcore_domain_kill(NULL, NULL, NULL), VMCORE_EINVAL);
    assert_int_equal(vmcore_domain_shutdown(NULL, 1, NULL, NULL), VMCORE_EINVAL);
    assert_int_equal(vmcore_domain_console_write(NULL, "x", 1), VMCORE_EINVAL);
    assert_int_equal(vmcore_domain_subscribe(NULL, VMCORE_EVENT_ALL, NULL, NULL),
                     VMCORE_EINVAL);
    assert_int_equal(vmcore_domain_exit(NULL, NULL), VMCORE_EINVAL);
    assert_null(vmcore_domain_backend(NULL));
    vmcore_domain_close(NULL, NULL, NULL);
    assert_int_equal(vmcore_ctx_run(NULL, VMCORE_RUN_NOWAIT), VMCORE_EINVAL);
    vmcore_probe_result pr = VMCORE_PROBE_RESULT_INIT;
    assert_int_equal(vmcore_probe(NULL, &pr), VMCORE_EINVAL);
    assert_int_equal(vmcore_probe("xen", &pr), VMCORE_EINVAL);
    pr.version = 99;
    assert_int_equal(vmcore_probe("kvm", &pr), VMCORE_EINVAL);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
    assert_int_equal(vmcore_ctx_free(NULL), 0);
}

static void test_missing_config_file(void **state)
{
    (void)state;
    vmcore_ctx *ctx;
    vmcore_domain *d;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    assert_int_equal(vmcore_domain_new_file(&d, ctx, "/nonexistent/vm.json"), VMCORE_ENOENT);
    assert_non_null(strstr(vmcore_ctx_last_error(ctx), "/nonexistent/vm.json"));
    assert_int_equal(vmcore_ctx_free(ctx), 0);
}

/* Relative paths in a config file resolve against the file's folder, not the cwd. */
static void test_relative_paths(void **state)
{
    (void)state;
    char cfgpath[4300];
    snprintf(cfgpath, sizeof cfgpath, "%s/vm.json", tmpdir);
    FILE *f = fopen(cfgpath, "w");
    assert_non_null(f);
    fputs("{\"backend\":\"emu\",\"boot\":{\"kernel\":\"kernel.bin\",\"format\":\"raw\"}}", f);
    fclose(f);
    json_error_t je;
    json_t *root = json_load_file(cfgpath, 0, &je);
    assert_non_null(root);
    struct vmcore_config *cfg;
    struct vmcore_err err = { 0 };
    assert_int_equal(config_parse(&cfg, root, tmpdir, &err), 0);
    assert_string_equal(cfg->boot.kernel, kernel);
    assert_int_equal(cfg->boot.format, BOOT_FORMAT_RAW);
    assert_int_equal(cfg->memory_mib, 64);
    assert_int_equal(cfg->vcpus, 1);
    config_free(cfg);
    json_decref(root);
    /* Disk paths resolve the same way. */
    root = json_loads("{\"backend\":\"emu\",\"boot\":{\"kernel\":\"kernel.bin\"},"
                      "\"disks\":[{\"path\":\"kernel.bin\",\"readonly\":true,"
                      "\"serial\":\"root\"}],\"rng\":true}", 0, &je);
    assert_non_null(root);
    assert_int_equal(config_parse(&cfg, root, tmpdir, &err), 0);
    assert_int_equal(cfg->ndisks, 1);
    assert_string_equal(cfg->disks[0].path, kernel);
    assert_true(cfg->disks[0].readonly);
    assert_string_equal(cfg->disks[0].serial, "root");
    assert_true(cfg->rng);
    config_free(cfg);
    json_decref(root);
    /* nics: the default MAC counts up from QEMU's; create needs a name. */
    root = json_loads("{\"backend\":\"emu\",\"boot\":{\"kernel\":\"kernel.bin\"},"
                      "\"nics\":[{\"mode\":\"tap\",\"ifname\":\"tap0\"},{},"
                      "{\"ifname\":\"vt1\",\"create\":true,\"mac\":\"0a:Bc:de:f0:12:34\"}]}",
                      0, &je);
    assert_non_null(root);
    assert_int_equal(config_parse(&cfg, root, tmpdir, &err), 0);
    assert_int_equal(cfg->nnics, 3);
    assert_string_equal(cfg->nics[0].ifname, "tap0");
    assert_false(cfg->nics[0].create);
    assert_memory_equal(cfg->nics[0].mac, "\x52\x54\x00\x12\x34\x56", 6);
    assert_null(cfg->nics[1].ifname);
    assert_memory_equal(cfg->nics[1].mac, "\x52\x54\x00\x12\x34\x57", 6);
    assert_true(cfg->nics[2].create);
    assert_memory_equal(cfg->nics[2].mac, "\x0a\xbc\xde\xf0\x12\x34", 6);
    config_free(cfg);
    json_decref(root);
    root = json_loads("{\"backend\":\"emu\",\"boot\":{\"kernel\":\"kernel.bin\"},"
                      "\"disks\":[{\"path\":\"kernel.bin\",\"readonly\":true,"
                      "\"serial\":\"root\"}],\"rng\":true}", 0, &je);
    json_decref(root);
    /* A console output resolves against the same folder (it need not exist). */
    root = json_loads("{\"backend\":\"emu\",\"boot\":{\"kernel\":\"kernel.bin\"},"
                      "\"consoles\":[{\"output\":\"hvc0.out\"}]}", 0, &je);
    assert_non_null(root);
    assert_int_equal(config_parse(&cfg, root, tmpdir, &err), 0);
    assert_int_equal(cfg->nconsoles, 1);
    char want[PATH_MAX];
    snprintf(want, sizeof want, "%s/hvc0.out", tmpdir);
    assert_string_equal(cfg->consoles[0].output, want);
    config_free(cfg);
    /* From another folder the same relative name does not exist. */
    assert_int_equal(config_parse(&cfg, root, "/", &err), VMCORE_ENOENT);
    assert_string_equal(err.path, "boot.kernel");
    json_decref(root);
    unlink(cfgpath);
}

static int parse_text(const char *json, struct vmcore_err *err)
{
    json_t *root = json_loads(expand(json), 0, NULL);
    assert_non_null(root);
    struct vmcore_config *cfg = NULL;
    memset(err, 0, sizeof *err);
    int rc = config_parse(&cfg, root, NULL, err);
    config_free(cfg);
    json_decref(root);
    return rc;
}

/* Container checks live in config.c alone (issue #11): the parser rejects what the
 * container backend used to catch only at creation, with the same JSON paths. */
static void test_container_checks_in_config(void **state)
{
    (void)state;
    struct vmcore_err err;
    static const char *const bad_targets[] = { "/a/../b", "/..", "/mnt/..", "/../etc" };
    for (size_t i = 0; i < sizeof bad_targets / sizeof bad_targets[0]; i++) {
        char json[512];
        snprintf(json, sizeof json, "{\"backend\":\"container\",\"rootfs\":\"%%R\","
                 "\"process\":{\"args\":[\"x\"]},\"mounts\":[{\"source\":\"/tmp\","
                 "\"target\":\"%s\"}]}", bad_targets[i]);
        assert_int_equal(parse_text(json, &err), VMCORE_ECONFIG);
        assert_string_equal(err.path, "mounts[0].target");
        assert_non_null(strstr(err.msg, ".."));
    }
    /* ".." inside a name is not a ".." component. */
    assert_int_equal(parse_text("{\"backend\":\"container\",\"rootfs\":\"%R\","
                                "\"process\":{\"args\":[\"x\"]},\"mounts\":[{\"source\":"
                                "\"/tmp\",\"target\":\"/a..b/..c/d..\"}]}", &err), 0);
    /* The prefix is 1 or 2 digits, nothing else (strtol took " 24" and "+24"). */
    assert_int_equal(parse_text("{\"backend\":\"container\",\"rootfs\":\"%R\","
                                "\"process\":{\"args\":[\"x\"]},\"network\":{\"mode\":"
                                "\"veth\",\"host_ifname\":\"vh0\",\"address\":"
                                "\"10.1.2.3/+24\"}}", &err), VMCORE_ECONFIG);
    assert_string_equal(err.path, "network.address");
}

/* One CIDR parser: what the configuration accepts is what the container's netlink code
 * parses. */
static void test_one_cidr_parser(void **state)
{
    (void)state;
    static const struct { const char *s; int ok; unsigned prefix; } cases[] = {
        { "10.200.0.2/24", 1, 24 }, { "1.2.3.4/32", 1, 32 }, { "1.2.3.4/1", 1, 1 },
        { "1.2.3.4", 0, 0 }, { "1.2.3.4/0", 0, 0 }, { "1.2.3.4/33", 0, 0 },
        { "1.2.3.4/ 24", 0, 0 }, { "1.2.3.4/+24", 0, 0 }, { "1.2.3.4/24x", 0, 0 },
        { "1.2.3.4/024", 0, 0 }, { "/24", 0, 0 }, { "300.1.1.1/24", 0, 0 }, { "", 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t a1 = 0, a2 = 0;
        unsigned p1 = 0, p2 = 0;
        int r1 = config_parse_cidr(cases[i].s, &a1, &p1);
        int r2 = net_parse_cidr(cases[i].s, &a2, &p2);
        if ((r1 == 0) != cases[i].ok || r1 != r2 || a1 != a2 || p1 != p2 ||
            (cases[i].ok && p1 != cases[i].prefix))
            fail_msg("\"%s\": config %d/%u, net %d/%u; want ok=%d /%u", cases[i].s, r1, p1,
                     r2, p2, cases[i].ok, cases[i].prefix);
    }
}

/* One list of backend names: the config's "backend" values, vmcore_backend_names(), the
 * registry and the ops tables agree. */
static void test_backend_table(void **state)
{
    (void)state;
    const char *const *names = vmcore_backend_names();
    int n = 0;
    for (; names[n]; n++) {
        const struct backend_ops *ops = backend_find(names[n]);
        assert_non_null(ops);
        assert_string_equal(ops->name, names[n]);
        assert_ptr_equal(backend_of((enum config_backend)(CONFIG_BACKEND_AUTO + 1 + n)), ops);
        assert_string_equal(config_backend_name((enum config_backend)(CONFIG_BACKEND_AUTO + 1 + n)),
                            names[n]);
    }
    assert_int_equal(n + 1, CONFIG_BACKEND_COUNT);
    assert_null(backend_find("auto"));
    assert_null(backend_of(CONFIG_BACKEND_AUTO));
    assert_string_equal(config_backend_name(CONFIG_BACKEND_AUTO), "auto");
}

/* One auto rule: vmcore_probe("auto") names the backend an "auto" domain runs on. */
static void test_auto_rule(void **state)
{
    (void)state;
    vmcore_probe_result r = VMCORE_PROBE_RESULT_INIT;
    struct vmcore_err err = { 0 };
    const struct backend_ops *ops = backend_pick_auto(NULL, &err);
    int rc = vmcore_probe("auto", &r);
    if (!ops) {
        assert_int_equal(rc, VMCORE_EUNAVAIL);
        assert_non_null(strstr(r.reason, "kvm"));
        return;
    }
    assert_int_equal(rc, 0);
    assert_string_equal(r.backend, ops->name);
    vmcore_ctx *ctx;
    vmcore_domain *d;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    assert_int_equal(vmcore_domain_new_json(&d, ctx, expand("{\"memory_mib\":2,\"boot\":"
                                                            "{\"kernel\":\"%K\"}}")), 0);
    assert_string_equal(vmcore_domain_backend(d), r.backend);
    vmcore_domain_close(d, NULL, NULL);
    vmcore_ctx_run(ctx, VMCORE_RUN_DEFAULT);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
}

/* kvm as a PVM host has it (faked: no test may need such a host): usable, guest CPL3 native, CPL0
 * emulated, so no VMCORE_PROBE_LINUX_BOOT; or, with fake_kvm_native, a real VMX/SVM one. */
static bool fake_kvm_native;

static int fake_kvm_probe(const struct backend_ops *ops, vmcore_probe_result *out)
{
    if (strcmp(ops->name, "kvm") != 0)
        return BACKEND_PROBE_REAL;
    snprintf(out->backend, sizeof out->backend, "kvm");
    out->available = 1;
    out->flags = VMCORE_PROBE_NATIVE_USER;
    if (fake_kvm_native)
        out->flags |= VMCORE_PROBE_NATIVE_SUPERVISOR | VMCORE_PROBE_LINUX_BOOT;
    snprintf(out->details, sizeof out->details, "guest CPL0 %s",
             fake_kvm_native ? "native" : "emulated by the host kernel");
    return 0;
}

static int reset_probe(void **state)
{
    (void)state;
    backend_probe_override(NULL);
    fake_kvm_native = false;
    return 0;
}

static const char *pick_for(const char *json)
{
    json_error_t jerr;
    json_t *root = json_loads(expand(json), 0, &jerr);
    assert_non_null(root);
    struct vmcore_config *cfg = NULL;
    struct vmcore_err err = { 0 };
    assert_int_equal(config_parse(&cfg, root, tmpdir, &err), 0);
    const struct backend_ops *ops = backend_pick_auto(cfg, &err);
    assert_non_null(ops);
    config_free(cfg);
    json_decref(root);
    return ops->name;
}

/* On a host whose KVM cannot run a Linux kernel at a useful speed, auto hands a Linux guest
 * (format "linux" or "auto", and a bzImage) to emu and everything else to kvm; an explicit
 * kvm Linux boot fails at create saying why and naming emu. */
static void test_auto_linux_without_linux_boot(void **state)
{
    (void)state;
    char bz[4300];
    snprintf(bz, sizeof bz, "%s/bzImage", tmpdir);
    uint8_t head[0x400] = { 0 };
    head[0x1fe] = 0x55;
    head[0x1ff] = 0xaa;
    memcpy(head + 0x202, "HdrS", 4);
    FILE *f = fopen(bz, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(head, 1, sizeof head, f), sizeof head);
    fclose(f);
    char linux_auto[4400], linux_format[4400], linux_explicit[4400];
    snprintf(linux_auto, sizeof linux_auto, "{\"boot\":{\"kernel\":\"%s\"}}", bz);
    snprintf(linux_format, sizeof linux_format,
             "{\"boot\":{\"kernel\":\"%s\",\"format\":\"linux\"}}", bz);
    snprintf(linux_explicit, sizeof linux_explicit,
             "{\"backend\":\"kvm\",\"boot\":{\"kernel\":\"%s\",\"format\":\"linux\"}}", bz);

    backend_probe_override(fake_kvm_probe);
    vmcore_probe_result r = VMCORE_PROBE_RESULT_INIT;
    assert_int_equal(vmcore_probe("kvm", &r), 0);
    assert_false(r.flags & VMCORE_PROBE_LINUX_BOOT);
    assert_string_equal(pick_for(linux_auto), "emu");
    assert_string_equal(pick_for(linux_format), "emu");
    /* "linux" and not a bzImage: the loader's image error at create says more */
    assert_string_equal(pick_for("{\"boot\":{\"kernel\":\"%K\",\"format\":\"linux\"}}"), "kvm");
    assert_string_equal(pick_for("{\"boot\":{\"kernel\":\"%K\"}}"), "kvm");
    assert_string_equal(pick_for("{\"boot\":{\"kernel\":\"%K\",\"format\":\"raw\"}}"), "kvm");
    /* the probe for "auto" knows no guest: kvm, usable */
    assert_int_equal(vmcore_probe("auto", &r), 0);
    assert_string_equal(r.backend, "kvm");

    vmcore_ctx *ctx;
    vmcore_domain *d = NULL;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    assert_int_equal(vmcore_domain_new_json(&d, ctx, linux_explicit), VMCORE_EUNAVAIL);
    const char *msg = vmcore_ctx_last_error(ctx);
    assert_non_null(strstr(msg, "backend kvm unavailable: kvm cannot boot a Linux kernel"));
    assert_non_null(strstr(msg, "guest ring 0 runs emulated in software"));
    assert_non_null(strstr(msg, "use \"backend\": \"emu\""));
    assert_null(d);

    /* where kvm boots Linux natively, auto keeps it for Linux too */
    fake_kvm_native = true;
    assert_string_equal(pick_for(linux_auto), "kvm");
    reset_probe(NULL);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
    unlink(bz);
}

/* emu refuses SMP for what it lacks (SMP), not for a local APIC it has (lib/machine/lapic.c). */
/* err_config() never leaves the path empty (vmcore_ctx_last_error_path() would be NULL). */
static void test_err_config_path_never_empty(void **state)
{
    (void)state;
    struct vmcore_err e = { 0 };
    assert_int_equal(err_config(&e, VMCORE_ECONFIG, "", "x"), VMCORE_ECONFIG);
    assert_string_equal(e.path, "$");
    assert_string_equal(e.msg, "$: x");
    err_config(&e, VMCORE_ECONFIG, NULL, "y");
    assert_string_equal(e.path, "$");
    err_config(&e, VMCORE_ECONFIG, "boot.kernel", "z");
    assert_string_equal(e.path, "boot.kernel");
}

static void test_emu_vcpus_message(void **state)
{
    (void)state;
    vmcore_ctx *ctx;
    vmcore_domain *d = NULL;
    assert_int_equal(vmcore_ctx_new(&ctx, NULL), 0);
    assert_int_equal(vmcore_domain_new_json(&d, ctx, expand("{\"backend\":\"emu\",\"vcpus\":2,"
                                                            "\"boot\":{\"kernel\":\"%K\"}}")),
                     VMCORE_ENOTSUP);
    assert_string_equal(vmcore_ctx_last_error_path(ctx), "vcpus");
    const char *msg = vmcore_ctx_last_error(ctx);
    assert_non_null(strstr(msg, "one vCPU"));
    if (strstr(msg, "APIC, which is not implemented"))
        fail_msg("stale message: %s", msg);
    assert_int_equal(vmcore_ctx_free(ctx), 0);
}

static void test_full_container_config(void **state)
{
    (void)state;
    const char *json = expand(
        "{\"name\":\"web-1\",\"backend\":\"container\",\"rootfs\":\"%R\",\"rootfs_readonly\":true,"
        "\"hostname\":\"box\",\"process\":{\"args\":[\"/bin/sh\",\"-c\",\"echo hi\"],"
        "\"env\":[\"A=1\",\"PATH=/bin\"],\"cwd\":\"/tmp\",\"uid\":1000,\"gid\":100,"
        "\"terminal\":false,\"init\":true},\"limits\":{\"memory_bytes\":67108864,\"pids\":64,"
        "\"cpus\":0.5},\"network\":{\"mode\":\"veth\",\"host_ifname\":\"vh-web1\","
        "\"address\":\"10.213.0.2/30\",\"host_address\":\"10.213.0.1/30\"},"
        "\"mounts\":[{\"source\":\"%R\",\"target\":\"/mnt\",\"readonly\":true}],"
        "\"userns\":{\"uid_map\":[{\"inside\":0,\"outside\":100000,\"count\":65536}]}}");
    json_t *root = json_loads(json, 0, NULL);
    assert_non_null(root);
    struct vmcore_config *cfg;
    struct vmcore_err err = { 0 };
    int rc = config_parse(&cfg, root, NULL, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_string_equal(cfg->name, "web-1");
    assert_int_equal(cfg->backend, CONFIG_BACKEND_CONTAINER);
    assert_true(cfg->rootfs_readonly);
    assert_int_equal(cfg->process.nargs, 3);
    assert_null(cfg->process.args[3]);
    assert_string_equal(cfg->process.env[1], "PATH=/bin");
    assert_int_equal(cfg->process.uid, 1000);
    assert_true(cfg->process.init);
    assert_int_equal(cfg->limits.pids, 64);
    assert_true(cfg->limits.cpus > 0.49 && cfg->limits.cpus < 0.51);
    assert_int_equal(cfg->network.mode, NET_MODE_VETH);
    assert_string_equal(cfg->network.host_ifname, "vh-web1");
    assert_int_equal(cfg->nmounts, 1);
    assert_true(cfg->mounts[0].readonly);
    assert_true(cfg->userns.enabled);
    assert_int_equal(cfg->userns.uid_map[0].outside, 100000);
    config_free(cfg);
    json_decref(root);
}

/* network.mode "user" with forwards: the same parser as the VM cards' ports. */
static void test_container_user_network(void **state)
{
    (void)state;
    const char *json = expand(
        "{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":{\"args\":[\"x\"]},"
        "\"network\":{\"mode\":\"user\",\"ports\":[{\"host\":\"127.0.0.1:8080\",\"guest\":80},"
        "{\"host\":5353,\"guest\":53,\"proto\":\"udp\"},{\"host\":\"0.0.0.0:2222\",\"guest\":22,"
        "\"proto\":\"tcp\"}]}}");
    json_t *root = json_loads(json, 0, NULL);
    assert_non_null(root);
    struct vmcore_config *cfg;
    struct vmcore_err err = { 0 };
    int rc = config_parse(&cfg, root, NULL, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg->network.mode, NET_MODE_USER);
    assert_int_equal(cfg->network.nports, 3);
    assert_false(cfg->network.ports[0].udp);
    assert_int_equal(cfg->network.ports[0].host_addr, htonl(INADDR_LOOPBACK));
    assert_int_equal(cfg->network.ports[0].host_port, 8080);
    assert_int_equal(cfg->network.ports[0].guest_port, 80);
    assert_true(cfg->network.ports[1].udp);
    assert_int_equal(cfg->network.ports[1].host_addr, htonl(INADDR_LOOPBACK)); /* default */
    assert_int_equal(cfg->network.ports[1].host_port, 5353);
    assert_int_equal(cfg->network.ports[2].host_addr, htonl(INADDR_ANY));
    assert_null(cfg->network.address);
    config_free(cfg);
    json_decref(root);
    /* without ports: no forwards */
    root = json_loads(expand("{\"backend\":\"container\",\"rootfs\":\"%R\",\"process\":"
                             "{\"args\":[\"x\"]},\"network\":{\"mode\":\"user\"}}"), 0, NULL);
    assert_int_equal(config_parse(&cfg, root, NULL, &err), 0);
    assert_int_equal(cfg->network.mode, NET_MODE_USER);
    assert_int_equal(cfg->network.nports, 0);
    config_free(cfg);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_missing_config_file),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_full_container_config),
        cmocka_unit_test(test_container_user_network),
        cmocka_unit_test(test_container_checks_in_config),
        cmocka_unit_test(test_one_cidr_parser),
        cmocka_unit_test(test_backend_table),
        cmocka_unit_test(test_auto_rule),
        cmocka_unit_test_teardown(test_auto_linux_without_linux_boot, reset_probe),
        cmocka_unit_test(test_emu_vcpus_message),
        cmocka_unit_test(test_err_config_path_never_empty),
    };
    return cmocka_run_group_tests(tests, setup_files, teardown_files);
}
