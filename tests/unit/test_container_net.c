/* Container networking in mode "user" (libslirp NAT, lib/machine/net_slirp.c), for real:
 * a busybox container gets its tap "eth0" with 10.0.2.100/24 and a default route through
 * 10.0.2.2, fetches from an HTTP server this test runs on 127.0.0.1 through that gateway,
 * is reached through a port forward, shares all that with exec'd processes, and runs
 * rootless too; a busy host port fails the start naming the forward. Mode "bridge": two
 * containers on a bridge the first creates (with NAT) reach each other and the bridge's
 * address; the bridge and its nftables table exist while they run and go with the last. The whole test runs in a network namespace of its own (made in main), so its
 * 127.0.0.1 is its own and no traffic leaves the machine. Needs root (skips otherwise;
 * fails under VMCORE_TEST_STRICT=1). After every test: no thread, fd, child, cgroup or
 * mount is left (run_close). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vt.h"
#include "rootfs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nftables/libnftables.h>

#include "ctrun.h"

static bool have_netns;
static const char *only;
#define ONLY() do { if (only && !strstr(__func__, only)) skip(); } while (0)
#define REQUIRE()                                                                      \
    do {                                                                               \
        ONLY();                                                                        \
        vt_require_root();                                                             \
        vt_require(rootfs != NULL, "needs busybox-static at /bin/busybox");            \
        vt_require(have_netns, "needs a private network namespace for the test");      \
    } while (0)

/* A TCP listener on 127.0.0.1 at a port the kernel picks; *@port gets it. */
static int listen_loopback(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s, 8), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return s;
}

static int free_port(void)
{
    int port;
    close(listen_loopback(&port));
    return port;
}

/* Whether this process could listen on 127.0.0.1:@port: nobody listens there. Closed
 * connections of the port may linger in TIME_WAIT, which SO_REUSEADDR lets a listener
 * ignore (a listening socket it does not). */
static bool port_is_free(int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bool ok = bind(s, (struct sockaddr *)&a, sizeof a) == 0 && listen(s, 1) == 0;
    close(s);
    return ok;
}

/* --- a one-request HTTP server on the host's loopback, on a thread of the test ------- */

#define BODY "bytes from the host's loopback\n"

struct server {
    int fd, port;
    pthread_t thread;
    char request[1024];
    int served;
};

static void *server_main(void *arg)
{
    struct server *sv = arg;
    struct pollfd p = { .fd = sv->fd, .events = POLLIN };
    /* a bound, not a measurement: the container asks within seconds */
    if (poll(&p, 1, 60000) != 1)
        return NULL;
    int c = accept4(sv->fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return NULL;
    size_t n = 0;
    while (n < sizeof sv->request - 1 && !strstr(sv->request, "\r\n\r\n")) {
        ssize_t k = read(c, sv->request + n, sizeof sv->request - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        sv->request[n] = 0;
    }
    char resp[256];
    int len = snprintf(resp, sizeof resp, "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n%s", strlen(BODY), BODY);
    if (write(c, resp, (size_t)len) == len)
        sv->served = 1;
    close(c);
    return NULL;
}

static void server_start(struct server *sv)
{
    memset(sv, 0, sizeof *sv);
    sv->fd = listen_loopback(&sv->port);
    assert_int_equal(pthread_create(&sv->thread, NULL, server_main, sv), 0);
}

static void server_stop(struct server *sv)
{
    shutdown(sv->fd, SHUT_RDWR); /* wakes the poll if nobody came */
    pthread_join(sv->thread, NULL);
    close(sv->fd);
}

/* --- tests ------------------------------------------------------------------------- */

/* The tap inside: its address, the default route, and nothing of the host's. */
static void test_user_address_and_route(void **state)
{
    (void)state;
    REQUIRE();
    int threads = vt_count_threads();
    struct run r;
    sh(&r, "\"network\":{\"mode\":\"user\"},",
       "ls /sys/class/net; ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; "
       "ip route | grep -o '^default via [0-9.]* dev eth0'");
    if (r.exit.status != 0)
        fail_msg("status %d out [%s] err [%s]", r.exit.status, r.out, r.err);
    assert_string_equal(r.out, "eth0\nlo\ninet 10.0.2.100/24\ndefault via 10.0.2.2 dev eth0\n");
    run_close(&r);
    assert_int_equal(vt_count_threads(), threads);
}

/* Out through the NAT: the gateway 10.0.2.2 is the host's loopback. */
static void test_user_fetch_from_host(void **state)
{
    (void)state;
    REQUIRE();
    int threads = vt_count_threads();
    struct server sv;
    server_start(&sv);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "wget -q -O - http://10.0.2.2:%d/page", sv.port);
    struct run r;
    sh(&r, "\"network\":{\"mode\":\"user\"},", cmd);
    if (r.exit.status != 0)
        fail_msg("status %d out [%s] err [%s]", r.exit.status, r.out, r.err);
    assert_string_equal(r.out, BODY);
    run_close(&r);
    server_stop(&sv); /* after run_close, whose fd count includes the listener */
    assert_true(sv.served);
    assert_non_null(strstr(sv.request, "GET /page HTTP/1."));
    assert_int_equal(vt_count_threads(), threads);
}

/* In through a forward: host 127.0.0.1:P reaches the container's port 80. The first
 * connections may come before nc listens (slirp then closes them): retry until the
 * container's greeting arrives, as a client of a starting server would. */
static void test_user_port_forward(void **state)
{
    (void)state;
    REQUIRE();
    int threads = vt_count_threads();
    int port = free_port();
    struct run r;
    int rc = run_new(&r, "{" BASE ",\"network\":{\"mode\":\"user\",\"ports\":[{\"host\":"
                         "\"127.0.0.1:%d\",\"guest\":80}]},\"process\":{\"args\":[\"/bin/sh\","
                         "\"-c\",\"echo forwarded | nc -l -p 80\"]}}", rootfs, port);
    if (rc)
        fail_msg("create: %s", vmcore_ctx_last_error(r.ctx));
    run_start(&r);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    char got[64] = "";
    for (int i = 0; i < 300 && !strstr(got, "forwarded\n"); i++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(s >= 0);
        if (connect(s, (struct sockaddr *)&a, sizeof a) == 0 &&
            write(s, "from the host\n", 14) == 14) {
            size_t n = 0;
            struct pollfd p = { .fd = s, .events = POLLIN };
            while (n < sizeof got - 1 && poll(&p, 1, 10000) == 1) {
                ssize_t k = read(s, got + n, sizeof got - 1 - n);
                if (k <= 0)
                    break;
                n += (size_t)k;
                got[n] = 0;
                if (strstr(got, "forwarded\n"))
                    break;
            }
        }
        close(s);
        if (!strstr(got, "forwarded\n")) {
            got[0] = 0;
            int never = 0;
            vt_run_until(r.ctx, &never, 20);
        }
    }
    assert_string_equal(got, "forwarded\n");
    run_wait(&r);
    assert_int_equal(r.exit.kind, VMCORE_EXIT_STATUS);
    assert_int_equal(r.exit.status, 0);
    /* what the host sent came out of nc inside */
    assert_string_equal(r.out, "from the host\n");
    run_close(&r);
    assert_int_equal(vt_count_threads(), threads);
    /* the forward's listener went with the domain: the port is free again */
    assert_true(port_is_free(port));
}

/* exec'd processes share the container's network, tap and route included; the domain's
 * stats count the tap's traffic. */
static void test_user_exec_shares_network(void **state)
{
    (void)state;
    REQUIRE();
    struct server sv;
    server_start(&sv);
    struct run r;
    int rc = run_new(&r, "{" BASE ",\"network\":{\"mode\":\"user\"},"
                         "\"process\":{\"args\":[\"sleep\",\"1000\"]}}", rootfs);
    if (rc)
        fail_msg("create: %s", vmcore_ctx_last_error(r.ctx));
    run_start(&r);
    char url[64];
    snprintf(url, sizeof url, "http://10.0.2.2:%d/exec", sv.port);
    const char *argv[] = { "wget", "-q", "-O", "-", url, NULL };
    run_exec(&r, argv);
    assert_int_equal(r.exec_exit.status, 0);
    assert_string_equal(r.out, BODY);
    /* vmcore_stats counts the tap's frames as the container saw them: at least the
     * response with the body in, the request out, and a handshake each way */
    vmcore_stats st = VMCORE_STATS_INIT;
    assert_int_equal(vmcore_domain_stats(r.d, &st), 0);
    assert_true(st.net_rx_packets >= 3 && st.net_tx_packets >= 3);
    assert_true(st.net_rx_bytes >= 3 * 54 + strlen(BODY));
    assert_true(st.net_tx_bytes >= 3 * 54 + strlen("GET /exec HTTP/1.0\r\n\r\n"));
    assert_int_equal(vmcore_domain_kill(r.d, NULL, NULL), 0);
    run_wait(&r);
    run_close(&r);
    server_stop(&sv);
    assert_true(sv.served);
}

/* A host port someone else holds: the start fails before any process exists, naming the
 * forward, and leaves nothing behind. */
static void test_user_busy_port(void **state)
{
    (void)state;
    REQUIRE();
    int threads = vt_count_threads();
    int busy;
    int holder = listen_loopback(&busy);
    int port = free_port();
    struct run r;
    int rc = run_new(&r, "{" BASE ",\"network\":{\"mode\":\"user\",\"ports\":["
                         "{\"host\":%d,\"guest\":80},{\"host\":\"127.0.0.1:%d\",\"guest\":81}]},"
                         "\"process\":{\"args\":[\"/bin/true\"]}}", rootfs, port, busy);
    if (rc)
        fail_msg("create: %s", vmcore_ctx_last_error(r.ctx));
    rc = vmcore_domain_start(r.d, NULL, NULL);
    if (rc != VMCORE_EBUSY)
        fail_msg("expected VMCORE_EBUSY, got %s (%s)", vmcore_error_name(rc),
                 vmcore_domain_last_error(r.d));
    if (!strstr(vmcore_domain_last_error(r.d), "network.ports[1].host"))
        fail_msg("message '%s' does not name network.ports[1].host",
                 vmcore_domain_last_error(r.d));
    assert_int_equal(vt_count_children(), 0);
    /* the first forward's listener was closed again */
    assert_true(port_is_free(port));
    run_close(&r);
    close(holder);
    assert_int_equal(vt_count_threads(), threads);
}

/* A start that fails in the child after the tap was made: nothing is left. */
static void test_user_start_failure_leaves_nothing(void **state)
{
    (void)state;
    REQUIRE();
    int threads = vt_count_threads();
    struct run r;
    int rc = run_new(&r, "{" BASE ",\"network\":{\"mode\":\"user\"},\"process\":"
                         "{\"args\":[\"/bin/true\"],\"cwd\":\"/no/such\"}}", rootfs);
    if (rc)
        fail_msg("create: %s", vmcore_ctx_last_error(r.ctx));
    assert_int_not_equal(vmcore_domain_start(r.d, NULL, NULL), 0);
    assert_non_null(strstr(vmcore_domain_last_error(r.d), "process.cwd"));
    run_close(&r);
    assert_int_equal(vt_count_threads(), threads);
}

static void test_user_bad_config(void **state)
{
    (void)state;
    REQUIRE();
    char json[4096];
    snprintf(json, sizeof json, "{" BASE ",\"network\":{\"mode\":\"user\",\"address\":"
                                "\"10.0.2.5/24\"},\"process\":{\"args\":[\"/bin/true\"]}}", rootfs);
    expect_create_error(json, VMCORE_ECONFIG, "network.address");
    snprintf(json, sizeof json, "{" BASE ",\"network\":{\"mode\":\"veth\",\"host_ifname\":"
                                "\"vtx0\",\"address\":\"10.213.0.2/30\",\"ports\":[{\"host\":8080,"
                                "\"guest\":80}]},\"process\":{\"args\":[\"/bin/true\"]}}", rootfs);
    expect_create_error(json, VMCORE_ECONFIG, "network.ports");
    snprintf(json, sizeof json, "{" BASE ",\"network\":{\"mode\":\"user\",\"ports\":[{\"host\":"
                                "\"127.0.0.1:0\",\"guest\":80}]},\"process\":{\"args\":[\"/bin/true\"]}}",
             rootfs);
    expect_create_error(json, VMCORE_ECONFIG, "network.ports[0].host");
}

/* Rootless: a child of this test drops to an unprivileged uid and runs a user-mode
 * container through the API (the user namespace is implied); it fetches from the
 * server, which runs on a thread of this (parent) process. With @tun_mode 0600 the
 * start must fail instead, naming /dev/net/tun. Reports by exit code. */
static int rootless_child(int port, const char *dir, mode_t tun_mode)
{
    /* Hosts differ in who may open /dev/net/tun (udev makes it 0666; this one may not).
     * In a mount namespace of this child only, a node of the same device with
     * @tun_mode on a tmpfs covers it, which is what the containers it starts see. */
    char node[64];
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("tmpfs", dir, "tmpfs", 0, "mode=0755") < 0)
        return 20;
    snprintf(node, sizeof node, "%s/tun", dir);
    if (mknod(node, S_IFCHR | tun_mode, makedev(10, 200)) < 0 || chmod(node, tun_mode) < 0 ||
        mount(node, "/dev/net/tun", NULL, MS_BIND, NULL) < 0)
        return 21;
    if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
        setresuid(65534, 65534, 65534) < 0)
        return 10;
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    struct run r;
    memset(&r, 0, sizeof r);
    if (vmcore_ctx_new(&r.ctx, NULL))
        return 11;
    char json[4096];
    snprintf(json, sizeof json, "{" BASE ",\"network\":{\"mode\":\"user\"},\"process\":{\"args\":"
             "[\"sh\",\"-c\",\"ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; "
             "wget -q -O - http://10.0.2.2:%d/rootless\"]}}", rootfs, port);
    if (vmcore_domain_new_json(&r.d, r.ctx, json)) {
        fprintf(stderr, "create: %s\n", vmcore_ctx_last_error(r.ctx));
        return 12;
    }
    vmcore_domain_subscribe(r.d, VMCORE_EVENT_ALL, on_event, &r);
    int rc = vmcore_domain_start(r.d, NULL, NULL);
    if (tun_mode == 0600) {
        const char *msg = vmcore_domain_last_error(r.d);
        bool named = strstr(msg, "network.mode") && strstr(msg, "/dev/net/tun");
        if (rc != VMCORE_EPERM || !named)
            fprintf(stderr, "start: %s: %s\n", vmcore_error_name(rc), msg);
        vmcore_domain_close(r.d, on_closed, &r);
        vt_run_until(r.ctx, &r.closed, 60000);
        vmcore_ctx_free(r.ctx);
        return rc == VMCORE_EPERM && named ? 0 : 17;
    }
    if (rc) {
        fprintf(stderr, "start: %s\n", vmcore_domain_last_error(r.d));
        return 13;
    }
    if (!vt_run_until(r.ctx, &r.stopped, 60000))
        return 14;
    vmcore_domain_close(r.d, on_closed, &r);
    vt_run_until(r.ctx, &r.closed, 60000);
    vmcore_ctx_free(r.ctx);
    if (strcmp(r.out, "inet 10.0.2.100/24\n" BODY) != 0) {
        fprintf(stderr, "output [%s] err [%s]\n", r.out, r.err);
        return 15;
    }
    return r.exit.kind == VMCORE_EXIT_STATUS && r.exit.status == 0 ? 0 : 16;
}

static void test_user_rootless(void **state)
{
    (void)state;
    REQUIRE();
    vt_require(vt_have_userns(), "needs user namespaces");
    static const mode_t modes[] = { 0666, 0600 };
    for (size_t i = 0; i < 2; i++) {
        char dir[] = "/tmp/vt-tun-XXXXXX"; /* the child's tmpfs goes here, in its namespace */
        assert_non_null(mkdtemp(dir));
        struct server sv;
        server_start(&sv);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            _exit(rootless_child(sv.port, dir, modes[i]));
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        server_stop(&sv);
        assert_int_equal(rmdir(dir), 0);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        assert_int_equal(sv.served, modes[i] == 0666);
    }
    assert_int_equal(count_rootfs_mounts(), 0);
}

/* --- mode "bridge" --------------------------------------------------------------------- */

/* Whether nftables has the table ip @name (libnftables, as `nft list table ip NAME`). */
static bool nft_table_exists(const char *name)
{
    struct nft_ctx *n = nft_ctx_new(NFT_CTX_DEFAULT);
    assert_non_null(n);
    nft_ctx_buffer_output(n);
    nft_ctx_buffer_error(n);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "list table ip %s", name);
    int rc = nft_run_cmd_from_buffer(n, cmd);
    nft_ctx_free(n);
    return rc == 0;
}

/* How many interfaces bridge @br has as ports (`ip -o link show master BR`). */
static int bridge_nports(const char *br)
{
    char cmd[128], line[512];
    snprintf(cmd, sizeof cmd, "ip -o link show master %s", br);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int n = 0;
    while (fgets(line, sizeof line, p))
        n++;
    pclose(p);
    return n;
}

#define BR_CREATE "{\"name\":\"vtbr0\",\"create\":true,\"address\":\"10.79.0.1/24\",\"nat\":true}"

/* Two containers on one bridge, which the first creates with NAT: the second (naming the
 * bridge only) has its static address and the default route via the bridge's address,
 * pings the bridge and the first, and sends it a line over TCP. */
static void test_bridge_two_containers(void **state)
{
    (void)state;
    REQUIRE();
    int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "1", 1), 1);
    close(fd);
    int threads = vt_count_threads();
    struct run a, b;
    int rc = run_new(&a, "{" BASE ",\"network\":{\"mode\":\"bridge\",\"bridge\":" BR_CREATE ","
                         "\"address\":\"10.79.0.2/24\"},\"process\":{\"args\":[\"nc\",\"-l\","
                         "\"-p\",\"7000\"]}}", rootfs);
    if (rc)
        fail_msg("create: %s", vmcore_ctx_last_error(a.ctx));
    run_start(&a);
    assert_true(if_nametoindex("vtbr0") > 0);
    assert_true(nft_table_exists("vmcore_vtbr0"));
    assert_int_equal(bridge_nports("vtbr0"), 1);
    /* The second names the bridge without create. */
    const char *cmd =
        "ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; "
        "ip route | grep -o '^default via [0-9.]* dev eth0'; "
        "ping -c 1 -W 10 10.79.0.1 >/dev/null && echo bridge; "
        "ping -c 1 -W 10 10.79.0.2 >/dev/null && echo peer; "
        "for i in $(seq 200); do echo hello | nc 10.79.0.2 7000 && break; sleep 0.05; done";
    char esc[1024];
    size_t j = 0;
    for (const char *p = cmd; *p; p++) {
        if (*p == '"')
            esc[j++] = '\\';
        esc[j++] = *p;
    }
    esc[j] = 0;
    rc = run_new(&b, "{" BASE ",\"network\":{\"mode\":\"bridge\",\"bridge\":\"vtbr0\","
                     "\"address\":\"10.79.0.3/24\"},\"process\":{\"args\":[\"sh\",\"-c\",\"%s\"]}}",
                 rootfs, esc);
    if (rc)
        fail_msg("create: %s", vmcore_ctx_last_error(b.ctx));
    run_start(&b);
    run_wait(&b);
    if (b.exit.status != 0)
        fail_msg("status %d out [%s] err [%s]", b.exit.status, b.out, b.err);
    /* no default route: the bridge was created by another domain, whose address this
     * config does not name */
    assert_string_equal(b.out, "inet 10.79.0.3/24\nbridge\npeer\n");
    run_wait(&a);
    assert_int_equal(a.exit.status, 0);
    assert_string_equal(a.out, "hello\n");
    /* The creator closes first: the other domain still uses the bridge, which stays with
     * its table until that one closes too. (run_close's checks of nothing left run once,
     * for both, at the second.) */
    vmcore_domain_close(a.d, on_closed, &a);
    assert_true(vt_run_until(a.ctx, &a.closed, 60000));
    assert_int_equal(vmcore_ctx_free(a.ctx), 0);
    assert_true(if_nametoindex("vtbr0") > 0);
    assert_true(nft_table_exists("vmcore_vtbr0"));
    assert_int_equal(bridge_nports("vtbr0"), 0); /* both containers' veths went with them */
    b.fds_before = a.fds_before;
    run_close(&b);
    assert_int_equal(if_nametoindex("vtbr0"), 0);
    assert_false(nft_table_exists("vmcore_vtbr0"));
    assert_int_equal(vt_count_threads(), threads);
}

/* The creator's own view: its default route through the bridge's address. */
static void test_bridge_default_route(void **state)
{
    (void)state;
    REQUIRE();
    struct run r;
    sh(&r, "\"network\":{\"mode\":\"bridge\",\"bridge\":{\"name\":\"vtbr1\",\"create\":true,"
           "\"address\":\"10.81.0.1/24\"},\"address\":\"10.81.0.9/24\"},",
       "ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; "
       "ip route | grep -o '^default via [0-9.]* dev eth0'; "
       "ping -c 1 -W 10 10.81.0.1 >/dev/null && echo bridge");
    if (r.exit.status != 0)
        fail_msg("status %d out [%s] err [%s]", r.exit.status, r.out, r.err);
    assert_string_equal(r.out, "inet 10.81.0.9/24\ndefault via 10.81.0.1 dev eth0\nbridge\n");
    assert_false(nft_table_exists("vmcore_vtbr1")); /* no nat asked */
    run_close(&r);
    assert_int_equal(if_nametoindex("vtbr1"), 0);
}

static int count_links(void)
{
    struct if_nameindex *l = if_nameindex();
    assert_non_null(l);
    int n = 0;
    while (l[n].if_index)
        n++;
    if_freenameindex(l);
    return n;
}

/* A start that fails on the bridge leaves no veth, bridge, table, process or fd. */
static void expect_start_error(const char *net, const char *cwd, int code, const char *path,
                               const char *needle)
{
    struct run r;
    int links = count_links();
    int rc = run_new(&r, "{" BASE ",\"network\":%s,\"process\":{\"args\":[\"/bin/true\"],"
                     "\"cwd\":\"%s\"}}", rootfs, net, cwd);
    if (rc)
        fail_msg("create: %s", vmcore_ctx_last_error(r.ctx));
    rc = vmcore_domain_start(r.d, NULL, NULL);
    if (code ? rc != code : rc == 0)
        fail_msg("expected %s, got %s (%s)", vmcore_error_name(code), vmcore_error_name(rc),
                 vmcore_domain_last_error(r.d));
    const char *msg = vmcore_domain_last_error(r.d);
    if (!strstr(msg, path) || !strstr(msg, needle))
        fail_msg("message '%s' does not name %s with '%s'", msg, path, needle);
    assert_int_equal(vt_count_children(), 0);
    assert_int_equal(count_links(), links);
    run_close(&r);
}

static void test_bridge_start_errors(void **state)
{
    (void)state;
    REQUIRE();
    expect_start_error("{\"mode\":\"bridge\",\"bridge\":\"nosuchbr\",\"address\":\"10.82.0.2/24\"}",
                       "/", VMCORE_ENOENT, "network.bridge.name", "no interface nosuchbr");
    expect_start_error("{\"mode\":\"bridge\",\"bridge\":\"lo\",\"address\":\"10.82.0.2/24\"}",
                       "/", VMCORE_ECONFIG, "network.bridge.name", "not a bridge");
    expect_start_error("{\"mode\":\"bridge\",\"bridge\":{\"name\":\"vtbr2\",\"create\":true,"
                       "\"address\":\"127.0.0.2/8\"},\"address\":\"127.0.0.3/8\"}", "/",
                       VMCORE_ECONFIG, "network.bridge.address", "clashes");
    assert_int_equal(if_nametoindex("vtbr2"), 0);
    /* The child fails after the veth was made and attached: all of it goes. */
    expect_start_error("{\"mode\":\"bridge\",\"bridge\":{\"name\":\"vtbr2\",\"create\":true,"
                       "\"address\":\"10.82.0.1/24\",\"nat\":true},\"address\":\"10.82.0.2/24\"}",
                       "/no/such", 0, "process.cwd", "");
    assert_int_equal(if_nametoindex("vtbr2"), 0);
    assert_false(nft_table_exists("vmcore_vtbr2"));
}

int main(void)
{
    only = getenv("VT_ONLY");
    /* A private network namespace for the whole test, with its own loopback: the
     * forwards' 127.0.0.1 and the server the containers reach through 10.0.2.2 are the
     * test's, not the host's. */
    if (vt_is_root() && unshare(CLONE_NEWNET) == 0) {
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = { 0 };
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
        if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
            ifr.ifr_flags |= IFF_UP;
            have_netns = ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
        }
        if (s >= 0)
            close(s);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_address_and_route),
        cmocka_unit_test(test_user_fetch_from_host),
        cmocka_unit_test(test_user_port_forward),
        cmocka_unit_test(test_user_exec_shares_network),
        cmocka_unit_test(test_user_busy_port),
        cmocka_unit_test(test_user_start_failure_leaves_nothing),
        cmocka_unit_test(test_user_bad_config),
        cmocka_unit_test(test_user_rootless),
        cmocka_unit_test(test_bridge_two_containers),
        cmocka_unit_test(test_bridge_default_route),
        cmocka_unit_test(test_bridge_start_errors),
    };
    return cmocka_run_group_tests(tests, ctrun_setup, ctrun_teardown);
}
