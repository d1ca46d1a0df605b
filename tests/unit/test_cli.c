/* The vmcore command-line program (path in $VMCORE_CLI): usage errors exit 2, bad
 * configurations exit non-zero with one line on stderr that names the JSON path. */
#include "vt.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Run the CLI with @argv (argv[0] is filled in), stdin from /dev/null. Output is read
 * after the child ends, through temporary files, so no pipe can fill up. */
static void run_cli(struct result *res, const char *const *args)
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

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(cli, (char *const *)argv);
        _exit(127);
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
    const char *names[] = { "stdout", "stderr", "c.json", NULL };
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
                     " \"network\": { \"mode\": \"bridge\" } }", NULL, "network.mode");
}

static void test_missing_kernel_file(void **state)
{
    check_bad_config("{ \"name\": \"x\", \"backend\": \"emu\","
                     " \"boot\": { \"kernel\": \"no-such-kernel.bin\" } }", NULL,
                     "boot.kernel");
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
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
