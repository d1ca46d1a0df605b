/* The vmcore command-line program (path in $VMCORE_CLI): usage errors exit 2, bad
 * configurations exit non-zero with one line on stderr that names the JSON path; a domain's
 * console reaches stdout, stdin reaches its console, its status becomes the exit code, and
 * SIGTERM shuts it down. */
#include "vt.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct result {
    int code; /* exit status, or 128 + signal */
    char out[16384];
    char err[16384];
};

static char tmpdir[256];

static void drain(int fd, char *buf, size_t size)
{
    size_t len = 0;
    ssize_t n;
    while ((n = read(fd, buf + len, size - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
}

/* Run the CLI with @args (argv[0] is filled in). stdin is /dev/null, or a pipe that
 * carries @input and is then closed. Output is read after the child ends, through
 * temporary files, so no pipe can fill up. */
static void run_cli_input(struct result *res, const char *const *args, const char *input)
{
    const char *cli = getenv("VMCORE_CLI");
    assert_non_null(cli);
    const char *argv[32];
    size_t n = 0;
    argv[n++] = cli;
    for (; args && args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;

    char outp[300], errp[300];
    snprintf(outp, sizeof outp, "%s/stdout", tmpdir);
    snprintf(errp, sizeof errp, "%s/stderr", tmpdir);
    int out = open(outp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err = open(errp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(out >= 0 && err >= 0);
    int in[2] = { -1, -1 };
    if (input)
        assert_int_equal(pipe2(in, O_CLOEXEC), 0);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = input ? in[0] : open("/dev/null", O_RDONLY);
        dup2(fd, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(cli, (char *const *)argv);
        _exit(127);
    }
    if (input) {
        close(in[0]);
        /* Small inputs fit in the pipe, so this never waits for the child. */
        assert_int_equal(write(in[1], input, strlen(input)), (ssize_t)strlen(input));
        close(in[1]);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    res->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    lseek(out, 0, SEEK_SET);
    lseek(err, 0, SEEK_SET);
    drain(out, res->out, sizeof res->out);
    drain(err, res->err, sizeof res->err);
    close(out);
    close(err);
}

static void run_cli(struct result *res, const char *const *args)
{
    run_cli_input(res, args, NULL);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static const char *write_config(const char *name, const char *json)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
    return path;
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/vmcore-test-cli.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    const char *names[] = { "stdout", "stderr", "c.json", "guest.bin", NULL };
    for (int i = 0; names[i]; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
        unlink(p);
    }
    return rmdir(tmpdir);
}

#define RUN(res, ...)                                              \
    do {                                                           \
        const char *args_[] = { __VA_ARGS__, NULL };               \
        run_cli((res), args_);                                     \
    } while (0)

/* --- help, version, usage errors ------------------------------------------------------ */

static void test_help(void **state)
{
    struct result *r = malloc(sizeof *r);
    RUN(r, "--help");
    assert_int_equal(r->code, 0);
    assert_non_null(strstr(r->out, "Usage: vmcore"));
    assert_non_null(strstr(r->out, "run"));
    assert_non_null(strstr(r->out, "probe"));
    RUN(r, "-h");
    assert_int_equal(r->code, 0);
    RUN(r, "run", "--help");
    assert_int_equal(r->code, 0);
    assert_non_null(strstr(r->out, "Usage: vmcore run"));
    RUN(r, "run", "--backend", "kvm", "x.json", "--help");
    assert_int_equal(r->code, 0);
    assert_non_null(strstr(r->out, "Usage: vmcore run"));
    RUN(r, "probe", "--help");
    assert_int_equal(r->code, 0);
    assert_non_null(strstr(r->out, "Usage: vmcore probe"));
    RUN(r, "help", "run");
    assert_int_equal(r->code, 0);
    assert_non_null(strstr(r->out, "Usage: vmcore run"));
    RUN(r, "--version", "--help");
    assert_int_equal(r->code, 0);
    free(r);
}

static void test_version(void **state)
{
    struct result *r = malloc(sizeof *r);
    RUN(r, "--version");
    assert_int_equal(r->code, 0);
    char want[64];
    snprintf(want, sizeof want, "vmcore %s\n", vmcore_version_string());
    assert_string_equal(r->out, want);
    assert_string_equal(r->err, "");
    RUN(r, "version");
    assert_int_equal(r->code, 0);
    assert_string_equal(r->out, want);
    free(r);
}

static void assert_usage_error(struct result *r, const char *needle)
{
    assert_int_equal(r->code, 2);
    assert_true(strncmp(r->err, "vmcore: ", 8) == 0);
    assert_int_equal(count_lines(r->err), 1);
    if (needle && !strstr(r->err, needle))
        fail_msg("stderr lacks \"%s\": %s", needle, r->err);
}

static void test_usage_errors_exit_2(void **state)
{
    struct result *r = malloc(sizeof *r);
    run_cli(r, NULL);
    assert_int_equal(r->code, 2);
    assert_non_null(strstr(r->err, "Usage: vmcore"));
    RUN(r, "--bogus");
    assert_usage_error(r, "--bogus");
    RUN(r, "frobnicate");
    assert_usage_error(r, "frobnicate");
    RUN(r, "run");
    assert_usage_error(r, "CONFIG.json");
    RUN(r, "run", "--bogus", "x.json");
    assert_usage_error(r, "--bogus");
    RUN(r, "run", "a.json", "b.json");
    assert_usage_error(r, "b.json");
    RUN(r, "run", "--backend");
    assert_usage_error(r, "--backend");
    RUN(r, "run", "--backend", "xen", "a.json");
    assert_usage_error(r, "xen");
    RUN(r, "probe", "--bogus");
    assert_usage_error(r, "--bogus");
    RUN(r, "probe", "xen");
    assert_usage_error(r, "xen");
    RUN(r, "version", "extra");
    assert_usage_error(r, NULL);
    free(r);
}

/* --- probe ------------------------------------------------------------------------------ */

static void test_probe_lists_every_backend(void **state)
{
    struct result *r = malloc(sizeof *r);
    RUN(r, "probe");
    assert_int_equal(r->code, 0);
    int lines = 0;
    for (const char *const *b = vmcore_backend_names(); *b; b++, lines++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s: ", *b);
        const char *line = strstr(r->out, prefix);
        if (!line)
            fail_msg("no line for %s in: %s", *b, r->out);
        line += strlen(prefix);
        assert_true(strncmp(line, "available", 9) == 0 ||
                    strncmp(line, "unavailable: ", 13) == 0);
        vmcore_probe_result p = VMCORE_PROBE_RESULT_INIT;
        int rc = vmcore_probe(*b, &p);
        /* The CLI and the library agree, and an unavailable backend says why. */
        if (rc == 0) {
            assert_true(strncmp(line, "available", 9) == 0);
        } else {
            assert_true(strncmp(line, "unavailable: ", 13) == 0);
            assert_true(line[13] != '\n');
        }
        char one[64];
        snprintf(one, sizeof one, "%s", *b);
        RUN(r, "probe", one);
        assert_int_equal(r->code, rc == 0 ? 0 : 1);
        assert_int_equal(count_lines(r->out), 1);
        RUN(r, "probe");
    }
    assert_int_equal(count_lines(r->out), lines);
    free(r);
}

/* --- bad configurations ------------------------------------------------------------------ */

/* Run @json and check the exit is non-zero and stderr is one "vmcore: " line naming @needle. */
static void check_bad_config(const char *json, const char *backend, const char *needle)
{
    struct result *r = malloc(sizeof *r);
    const char *path = write_config("c.json", json);
    if (backend)
        RUN(r, "run", "--backend", backend, path);
    else
        RUN(r, "run", path);
    if (r->code == 0 || r->code == 2)
        fail_msg("%s: exit %d, want a failure other than a usage error", json, r->code);
    assert_int_equal(r->code, 125);
    if (strncmp(r->err, "vmcore: ", 8) != 0 || count_lines(r->err) != 1)
        fail_msg("%s: want one \"vmcore: \" line on stderr, got: %s", json, r->err);
    if (!strstr(r->err, needle))
        fail_msg("%s: stderr does not name \"%s\": %s", json, needle, r->err);
    assert_string_equal(r->out, "");
    free(r);
}

static void test_missing_file(void **state)
{
    struct result *r = malloc(sizeof *r);
    RUN(r, "run", "/nonexistent/vmcore.json");
    assert_int_equal(r->code, 125);
    assert_int_equal(count_lines(r->err), 1);
    assert_non_null(strstr(r->err, "/nonexistent/vmcore.json"));
    RUN(r, "run", "--backend", "emu", "/nonexistent/vmcore.json");
    assert_int_equal(r->code, 125);
    assert_int_equal(count_lines(r->err), 1);
    assert_non_null(strstr(r->err, "/nonexistent/vmcore.json"));
    free(r);
}

static void test_malformed_json(void **state)
{
    check_bad_config("{ \"name\": \"x\", ", NULL, "line");
    check_bad_config("{ \"name\": \"x\", ", "emu", "line");
    check_bad_config("[1, 2", NULL, "c.json");
}

static void test_unknown_key(void **state)
{
    check_bad_config("{ \"name\": \"x\", \"bogus\": 1 }", NULL, "bogus");
    check_bad_config("{ \"name\": \"x\", \"boot\": { \"kernel\": \"k\", \"colour\": 1 } }", NULL,
                     "boot.colour");
    /* The --backend path goes through vmcore_domain_new_jansson(): same validation. */
    check_bad_config("{ \"name\": \"x\", \"bogus\": 1 }", "emu", "bogus");
}

static void test_wrong_type(void **state)
{
    check_bad_config("{ \"name\": \"x\", \"memory_mib\": \"lots\" }", NULL, "memory_mib");
    check_bad_config("{ \"name\": 7 }", NULL, "name");
    check_bad_config("{ \"name\": \"x\", \"backend\": \"container\", \"rootfs\": \"/\","
                     " \"process\": { \"args\": [ 1 ] } }", NULL, "process.args[0]");
}

static void test_out_of_range(void **state)
{
    check_bad_config("{ \"name\": \"x\", \"memory_mib\": -1 }", NULL, "memory_mib");
    check_bad_config("{ \"name\": \"x\", \"vcpus\": 0 }", NULL, "vcpus");
    check_bad_config("{ \"name\": \"x\", \"backend\": \"xen\" }", NULL, "backend");
    check_bad_config("{ \"name\": \"x\", \"backend\": \"container\", \"rootfs\": \"/\","
                     " \"process\": { \"args\": [ \"sh\" ] },"
                     " \"network\": { \"mode\": \"wormhole\" } }", NULL, "network.mode");
}

static void test_missing_kernel_file(void **state)
{
    check_bad_config("{ \"name\": \"x\", \"backend\": \"emu\","
                     " \"boot\": { \"kernel\": \"no-such-kernel.bin\" } }", NULL,
                     "boot.kernel");
}


/* --- running domains ------------------------------------------------------------------- */

/* Tiny raw 32-bit guests (loaded at 1 MiB), assembled from the NASM shown beside them. */
static const unsigned char guest_exit42[] = {
    0x66, 0xba, 0xf8, 0x03, /* mov dx, 0x3f8 */
    0xb0, 0x58, 0xee,       /* mov al, 'X'; out dx, al */
    0xb0, 0x0a, 0xee,       /* mov al, 10; out dx, al */
    0xb0, 0x2a, 0xe6, 0xf4, /* mov al, 42; out 0xf4, al */
    0xf4, 0xeb, 0xfd,       /* hlt; jmp hlt */
};
/* Echo COM1 input back until 'q', then exit with status 7. */
static const unsigned char guest_echo[] = {
    0x66, 0xba, 0xfd, 0x03, /* start: mov dx, 0x3fd (line status) */
    0xec, 0xa8, 0x01,       /* wait: in al, dx; test al, 1 */
    0x74, 0xfb,             /* jz wait */
    0x66, 0xba, 0xf8, 0x03, /* mov dx, 0x3f8 */
    0xec, 0x3c, 0x71,       /* in al, dx; cmp al, 'q' */
    0x74, 0x03,             /* je quit */
    0xee, 0xeb, 0xeb,       /* out dx, al; jmp start */
    0xb0, 0x07, 0xe6, 0xf4, /* quit: mov al, 7; out 0xf4, al */
    0xf4, 0xeb, 0xfd,       /* hlt; jmp hlt */
};
/* Print "R\n", then spin until stopped from outside. */
static const unsigned char guest_spin[] = {
    0x66, 0xba, 0xf8, 0x03, 0xb0, 0x52, 0xee, 0xb0, 0x0a, 0xee, /* print "R\n" */
    0xeb, 0xfe,                                                 /* jmp $ */
};

static const char *write_guest_config(const unsigned char *code, size_t len)
{
    char bin[512];
    snprintf(bin, sizeof bin, "%s/guest.bin", tmpdir);
    FILE *f = fopen(bin, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(code, 1, len, f), len);
    fclose(f);
    /* A relative kernel path: it resolves against the configuration's folder. */
    return write_config("c.json", "{ \"name\": \"cli-test\", \"memory_mib\": 4,"
                                  " \"boot\": { \"kernel\": \"guest.bin\", \"format\": \"raw\","
                                  " \"mode\": \"protected\", \"load_address\": 1048576 } }");
}

static int vm_backend_usable(void)
{
    vmcore_probe_result r = VMCORE_PROBE_RESULT_INIT;
    return vmcore_probe("auto", &r) == 0;
}

static void test_run_vm_exit_status(void **state)
{
    vt_require(vm_backend_usable(), "a usable VM backend (kvm or emu)");
    struct result *r = malloc(sizeof *r);
    const char *path = write_guest_config(guest_exit42, sizeof guest_exit42);
    RUN(r, "run", path);
    if (r->code != 42)
        fail_msg("exit %d, want 42; stderr: %s", r->code, r->err);
    assert_string_equal(r->out, "X\n");
    assert_string_equal(r->err, "");
    /* The same file on each VM backend that can run here, through --backend. */
    const char *backends[] = { "kvm", "emu" };
    for (int i = 0; i < 2; i++) {
        vmcore_probe_result p = VMCORE_PROBE_RESULT_INIT;
        if (vmcore_probe(backends[i], &p) != 0)
            continue;
        RUN(r, "run", "--backend", backends[i], path);
        if (r->code != 42)
            fail_msg("--backend %s: exit %d, want 42; stderr: %s", backends[i], r->code, r->err);
        assert_string_equal(r->out, "X\n");
    }
    free(r);
}

static void test_run_vm_stdin_to_console(void **state)
{
    vt_require(vm_backend_usable(), "a usable VM backend (kvm or emu)");
    struct result *r = malloc(sizeof *r);
    const char *path = write_guest_config(guest_echo, sizeof guest_echo);
    const char *args[] = { "run", path, NULL };
    run_cli_input(r, args, "hello\nq");
    if (r->code != 7)
        fail_msg("exit %d, want 7; stderr: %s", r->code, r->err);
    assert_string_equal(r->out, "hello\n");
    free(r);
}

/* Start the CLI with stdout on a pipe; return its pid once it printed @ready. */
static pid_t spawn_until(const char *const *args, const char *ready, int *out_fd)
{
    const char *cli = getenv("VMCORE_CLI");
    assert_non_null(cli);
    const char *argv[8] = { cli };
    for (int i = 0; args[i] && i < 6; i++)
        argv[i + 1] = args[i];
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        dup2(in, 0);
        dup2(p[1], 1);
        execv(cli, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    char buf[4096];
    size_t len = 0;
    buf[0] = '\0';
    while (!strstr(buf, ready) && len < sizeof buf - 1) {
        ssize_t n = read(p[0], buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            fail_msg("the CLI ended before printing \"%s\": %s", ready, buf);
        len += (size_t)n;
        buf[len] = '\0';
    }
    *out_fd = p[0];
    return pid;
}

static void test_run_vm_sigterm_stops_it(void **state)
{
    vt_require(vm_backend_usable(), "a usable VM backend (kvm or emu)");
    const char *path = write_guest_config(guest_spin, sizeof guest_spin);
    const char *args[] = { "run", path, NULL };
    int fd;
    pid_t pid = spawn_until(args, "R\n", &fd);
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(fd);
    /* Handled: the CLI shut the domain down and exited by itself, not by the signal. */
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 2);
}

static long rss_kib(pid_t pid)
{
    char path[64];
    unsigned long size = 0, resident = 0;
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    return n == 2 ? (long)(resident * (unsigned long)sysconf(_SC_PAGESIZE) / 1024) : -1;
}

/* Wait for @pid; a safety net (not a speed expectation) kills it after a minute. */
static int wait_or_kill(pid_t pid, int *status)
{
    for (int i = 0; i < 60000; i++) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid)
            return 1;
        usleep(1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    return 0;
}

/* A guest floods its console into a CLI whose stdout nobody reads: the CLI's memory stays
 * bounded (the guest is held back), what is read later arrives complete and in order, and
 * SIGTERM still ends it although its stdout is full. */
static void test_run_stdout_blocked(void **state)
{
    vt_require(vm_backend_usable(), "a usable VM backend (kvm or emu)");
    char json[1024];
    snprintf(json, sizeof json, "{ \"name\": \"flood\", \"memory_mib\": 4, \"boot\": {"
             " \"kernel\": \"%s\", \"format\": \"raw\", \"mode\": \"protected\" } }",
             vt_guest("flood.bin"));
    const char *path = write_config("c.json", json);
    const char *args[] = { "run", path, NULL };
    int fd;
    static const char line[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ\n";
    pid_t pid = spawn_until(args, line, &fd);

    /* nobody reads: the pipe fills, then the CLI's buffer, then the domain is held */
    usleep(1000000);
    long kib = rss_kib(pid);
    print_message("CLI RSS %ld KiB with its stdout blocked\n", kib);
    assert_true(kib > 0 && kib < 64 * 1024);

    /* what arrives is complete and in order (checked from the first line end on: spawn_until
     * may have read part of a line) */
    static char buf[65536];
    size_t pos = 0, total = 0;
    bool synced = false;
    while (total < (size_t)4 << 20) {
        ssize_t n = read(fd, buf, sizeof buf);
        assert_true(n > 0);
        for (ssize_t i = 0; i < n; i++) {
            if (!synced) {
                synced = buf[i] == '\n';
                continue;
            }
            if (buf[i] != line[pos])
                fail_msg("stdout byte %zu is '%c', expected '%c'", total + (size_t)i,
                         buf[i], line[pos]);
            pos = (pos + 1) % (sizeof line - 1);
        }
        total += (size_t)n;
    }

    /* blocked again, then SIGTERM */
    usleep(300000);
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status;
    int ended = wait_or_kill(pid, &status);
    close(fd);
    assert_true(ended);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 128 + SIGTERM); /* the domain's status */
}

static const char *container_rootfs(void)
{
    return VT_BINARY_DIR "/examples/configs/rootfs";
}

/* A container running `sh -c SCRIPT`; with @init, under the backend's reaping init (a
 * shell as PID 1 of its namespace would be immune to its own SIGKILL). */
static const char *write_container_config_init(const char *script, bool init)
{
    static char json[2048];
    snprintf(json, sizeof json,
             "{ \"name\": \"cli-test\", \"backend\": \"container\", \"rootfs\": \"%s\","
             " \"process\": { \"args\": [ \"/bin/sh\", \"-c\", \"%s\" ],"
             " \"env\": [ \"PATH=/bin\" ], \"init\": %s } }", container_rootfs(), script,
             init ? "true" : "false");
    return write_config("c.json", json);
}

static const char *write_container_config(const char *script)
{
    return write_container_config_init(script, false);
}

static int container_usable(void)
{
    vmcore_probe_result r = VMCORE_PROBE_RESULT_INIT;
    return vmcore_probe("container", &r) == 0 && access(container_rootfs(), F_OK) == 0;
}

static void test_run_container_streams_and_status(void **state)
{
    vt_require(container_usable(), "the container backend and the examples' busybox rootfs");
    struct result *r = malloc(sizeof *r);
    RUN(r, "run", write_container_config("echo out; echo err >&2; exit 3"));
    if (r->code != 3)
        fail_msg("exit %d, want 3; stderr: %s", r->code, r->err);
    assert_string_equal(r->out, "out\n");
    assert_string_equal(r->err, "err\n");
    RUN(r, "run", write_container_config_init("kill -KILL $$", true));
    assert_int_equal(r->code, 128 + SIGKILL);
    const char *args[] = { "run", write_container_config("cat; exit 5"), NULL };
    run_cli_input(r, args, "piped input\n");
    assert_int_equal(r->code, 5);
    assert_string_equal(r->out, "piped input\n");
    free(r);
}

/* Read what the pty master @fd has for up to @ms into @buf (appending); true once @buf
 * contains @want. */
static bool pty_read_until(int fd, char *buf, size_t size, size_t *len, const char *want,
                           int ms)
{
    for (int waited = 0; !strstr(buf, want) && waited < ms; waited += 10) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 10) == 1) {
            ssize_t n = read(fd, buf + *len, size - 1 - *len);
            if (n <= 0)
                break;
            *len += (size_t)n;
            buf[*len] = '\0';
        }
    }
    return strstr(buf, want) != NULL;
}

/* A container's terminal gets the CLI's terminal size at start, and the new one after
 * SIGWINCH. */
static void test_run_container_terminal_size(void **state)
{
    vt_require(container_usable(), "the container backend and the examples' busybox rootfs");
    static char json[2048];
    snprintf(json, sizeof json,
             "{ \"name\": \"cli-test\", \"backend\": \"container\", \"rootfs\": \"%s\","
             " \"process\": { \"terminal\": true, \"args\": [ \"/bin/sh\", \"-c\","
             " \"stty size; while read x; do stty size; done\" ], \"env\": [ \"PATH=/bin\" ] } }",
             container_rootfs());
    const char *path = write_config("c.json", json);
    int master, slave;
    struct winsize ws = { .ws_row = 33, .ws_col = 111 };
    assert_int_equal(openpty(&master, &slave, NULL, NULL, &ws), 0);
    int in[2];
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    const char *cli = getenv("VMCORE_CLI");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(slave, 1);
        dup2(slave, 2);
        execl(cli, cli, "run", path, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(slave);
    static char out[65536];
    size_t len = 0;
    out[0] = '\0';
    bool first = pty_read_until(master, out, sizeof out, &len, "33 111", 60000);
    ws.ws_row = 44;
    ws.ws_col = 122;
    assert_int_equal(ioctl(master, TIOCSWINSZ, &ws), 0);
    assert_int_equal(kill(pid, SIGWINCH), 0);
    bool second = false;
    for (int i = 0; i < 100 && first && !second; i++) {
        assert_int_equal(write(in[1], "\n", 1), 1); /* one more "stty size" */
        second = pty_read_until(master, out, sizeof out, &len, "44 122", 100);
    }
    close(in[1]); /* end of input: the loop ends, and the container */
    /* keep the pty drained until the CLI has gone (read fails then) */
    pty_read_until(master, out, sizeof out, &len, "\x01never", 60000);
    int status;
    int ended = wait_or_kill(pid, &status);
    close(master);
    if (!first || !second)
        fail_msg("the container saw [%s]", out);
    assert_true(ended);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_run_container_sigterm_is_graceful(void **state)
{
    vt_require(container_usable(), "the container backend and the examples' busybox rootfs");
    const char *args[] = {
        "run", write_container_config("trap 'echo bye; exit 0' TERM; echo ready;"
                                      " while :; do sleep 1; done"), NULL };
    int fd;
    pid_t pid = spawn_until(args, "ready\n", &fd);
    assert_int_equal(kill(pid, SIGTERM), 0);
    char rest[256];
    drain(fd, rest, sizeof rest);
    close(fd);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_non_null(strstr(rest, "bye"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_usage_errors_exit_2),
        cmocka_unit_test(test_probe_lists_every_backend),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_missing_kernel_file),
        cmocka_unit_test(test_run_vm_exit_status),
        cmocka_unit_test(test_run_vm_stdin_to_console),
        cmocka_unit_test(test_run_vm_sigterm_stops_it),
        cmocka_unit_test(test_run_stdout_blocked),
        cmocka_unit_test(test_run_container_streams_and_status),
        cmocka_unit_test(test_run_container_sigterm_is_graceful),
        cmocka_unit_test(test_run_container_terminal_size),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
