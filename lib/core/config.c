/* Strict validation of the JSON configuration (schema: doc/config.md).
 * Every error names the JSON path of the offending value. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#define CONFIG_MAX_VCPUS 64
#define CONFIG_MIN_MEMORY_BYTES (4ull << 20)
#define CONFIG_MAX_ARGS 4096
#define CONFIG_PATH_MAX 128

#define BACKEND_NAME_(u, l) #l,
static const char *const backend_names[] = { "auto", VMCORE_BACKENDS(BACKEND_NAME_) NULL };
#undef BACKEND_NAME_
static const char *const format_names[] = { "auto", "raw", "elf", "multiboot", "linux", NULL };
static const char *const mode_names[] = { "real", "protected", "long", NULL };
static const char *const net_names[] = { "none", "host", "veth", "user", "bridge", NULL };

const char *config_backend_name(enum config_backend b)
{
    return (unsigned)b < CONFIG_BACKEND_COUNT ? backend_names[b] : "?";
}

/* Parsing state: where relative paths resolve and where errors go. */
struct cx {
    const char *base_dir;
    struct vmcore_err *err;
};

static void join_path(char *out, const char *parent, const char *key)
{
    if (parent[0])
        snprintf(out, CONFIG_PATH_MAX, "%s.%s", parent, key);
    else
        snprintf(out, CONFIG_PATH_MAX, "%s", key);
}

/* The value at @parent.@key, or NULL when absent; its JSON path goes to @path. */
static const json_t *lookup(const json_t *obj, const char *parent, const char *key,
                            char path[CONFIG_PATH_MAX])
{
    const json_t *v = json_object_get(obj, key);
    if (v)
        join_path(path, parent, key);
    return v;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

static int type_error(struct cx *c, const char *path, const char *want, const json_t *v)
{
    return err_config(c->err, VMCORE_ECONFIG, path, "expected %s, got %s", want,
                      json_type_name(v));
}

/* Reject keys of @obj not in @allowed. */
static int check_keys(struct cx *c, const json_t *obj, const char *path,
                      const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        /* "" would give the path "" (or "boot."): name the object that holds it. */
        if (key[0] == '\0')
            return err_config(c->err, VMCORE_ECONFIG, path[0] ? path : "$",
                              "empty key \"\" (keys are names such as \"%s\")", allowed[0]);
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                ok = 1;
        if (!ok) {
            char p[CONFIG_PATH_MAX];
            join_path(p, path, key);
            return err_config(c->err, VMCORE_ECONFIG, p, "unknown key");
        }
    }
    return 0;
}

static int get_object(struct cx *c, const json_t *obj, const char *parent, const char *key,
                      const json_t **out)
{
    char p[CONFIG_PATH_MAX];
    const json_t *v = lookup(obj, parent, key, p);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_object(v))
        return type_error(c, p, "an object", v);
    *out = v;
    return 0;
}

static int get_string(struct cx *c, const json_t *obj, const char *parent, const char *key,
                      char **out)
{
    char p[CONFIG_PATH_MAX];
    const json_t *v = lookup(obj, parent, key, p);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return type_error(c, p, "a string", v);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return err_config(c->err, VMCORE_ECONFIG, p, "must not contain NUL bytes");
    free(*out);
    *out = strdup(json_string_value(v));
    return *out ? 0 : err_set(c->err, VMCORE_ENOMEM, "out of memory");
}

/* An integer in [min, max]. @present (may be NULL) says whether the key was there. */
static int get_uint(struct cx *c, const json_t *obj, const char *parent, const char *key,
                    uint64_t min, uint64_t max, uint64_t *out, bool *present)
{
    char p[CONFIG_PATH_MAX];
    const json_t *v = lookup(obj, parent, key, p);
    if (present)
        *present = v != NULL;
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return type_error(c, p, "an integer", v);
    json_int_t n = json_integer_value(v);
    if (n < 0 || (uint64_t)n < min || (uint64_t)n > max)
        return err_config(c->err, VMCORE_ECONFIG, p,
                          "%lld is out of range (%llu..%llu)", (long long)n,
                          (unsigned long long)min, (unsigned long long)max);
    *out = (uint64_t)n;
    return 0;
}

static int get_bool(struct cx *c, const json_t *obj, const char *parent, const char *key,
                    bool *out)
{
    char p[CONFIG_PATH_MAX];
    const json_t *v = lookup(obj, parent, key, p);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return type_error(c, p, "a boolean", v);
    *out = json_is_true(v);
    return 0;
}

static int get_enum(struct cx *c, const json_t *obj, const char *parent, const char *key,
                    const char *const *names, int *out)
{
    char p[CONFIG_PATH_MAX];
    const json_t *v = lookup(obj, parent, key, p);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return type_error(c, p, "a string", v);
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], json_string_value(v)) == 0) {
            *out = i;
            return 0;
        }
    char list[160] = "";
    for (int i = 0; names[i]; i++) {
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, "%s%s", i ? "|" : "", names[i]);
    }
    return err_config(c->err, VMCORE_ECONFIG, p, "unknown value \"%s\" (expected %s)",
                      json_string_value(v), list);
}

/* Resolve @rel against the base dir. */
static int resolve(struct cx *c, const char *path, const char *rel, char **out)
{
    if (rel[0] == '\0')
        return err_config(c->err, VMCORE_ECONFIG, path, "must not be empty");
    char *abs;
    if (rel[0] == '/') {
        abs = strdup(rel);
    } else {
        char cwd[PATH_MAX];
        const char *base = c->base_dir;
        if (!base) {
            if (!getcwd(cwd, sizeof cwd))
                return err_sys(c->err, VMCORE_ESYS, errno, "%s: getcwd", path);
            base = cwd;
        }
        if (asprintf(&abs, "%s/%s", base, rel) < 0)
            abs = NULL;
    }
    if (!abs)
        return err_set(c->err, VMCORE_ENOMEM, "out of memory");
    free(*out);
    *out = abs;
    return 0;
}

/* A file-system path that must exist (as a regular file when @want_dir is false). */
static int get_existing_path(struct cx *c, const json_t *obj, const char *parent,
                             const char *key, bool want_dir, char **out)
{
    char p[CONFIG_PATH_MAX];
    char *rel = NULL;
    int rc = get_string(c, obj, parent, key, &rel);
    if (rc || !rel)
        return rc;
    join_path(p, parent, key);
    rc = resolve(c, p, rel, out);
    free(rel);
    if (rc)
        return rc;
    struct stat st;
    if (stat(*out, &st) < 0)
        return err_config(c->err, errno == ENOENT ? VMCORE_ENOENT : VMCORE_EIO, p,
                          "cannot access %s: %s", *out, strerror(errno));
    if (want_dir && !S_ISDIR(st.st_mode))
        return err_config(c->err, VMCORE_ECONFIG, p, "not a directory: %s", *out);
    if (!want_dir && !S_ISREG(st.st_mode))
        return err_config(c->err, VMCORE_ECONFIG, p, "not a regular file: %s", *out);
    return 0;
}

/* A NULL-terminated list of strings. */
static int get_string_array(struct cx *c, const json_t *obj, const char *parent,
                            const char *key, char ***out, size_t *count)
{
    char p[CONFIG_PATH_MAX];
    const json_t *v = lookup(obj, parent, key, p);
    if (!v)
        return 0;
    if (!json_is_array(v))
        return type_error(c, p, "an array of strings", v);
    size_t n = json_array_size(v);
    if (n > CONFIG_MAX_ARGS)
        return err_config(c->err, VMCORE_ECONFIG, p, "too many entries (%zu > %d)", n,
                          CONFIG_MAX_ARGS);
    char **list = calloc(n + 1, sizeof *list);
    if (!list)
        return err_set(c->err, VMCORE_ENOMEM, "out of memory");
    *out = list;
    *count = n;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        char ep[CONFIG_PATH_MAX];
        snprintf(ep, sizeof ep, "%s[%zu]", p, i);
        if (!json_is_string(e))
            return type_error(c, ep, "a string", e);
        if (strlen(json_string_value(e)) != json_string_length(e))
            return err_config(c->err, VMCORE_ECONFIG, ep, "must not contain NUL bytes");
        if (!(list[i] = strdup(json_string_value(e))))
            return err_set(c->err, VMCORE_ENOMEM, "out of memory");
    }
    return 0;
}

static int check_name(struct cx *c, const char *path, const char *s, size_t max, bool dots)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return err_config(c->err, VMCORE_ECONFIG, path, "length must be 1..%zu", max);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(isalnum(ch) || ch == '-' || ch == '_' || (dots && ch == '.')))
            return err_config(c->err, VMCORE_ECONFIG, path,
                              "invalid character '%c' (allowed: letters, digits, -_%s)",
                              isprint(ch) ? ch : '?', dots ? "." : "");
    }
    return 0;
}

int config_parse_cidr(const char *s, uint32_t *addr_be, unsigned *prefix)
{
    char ip[INET_ADDRSTRLEN];
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || (size_t)(slash - s) >= sizeof ip)
        return -1;
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = '\0';
    struct in_addr a;
    if (inet_pton(AF_INET, ip, &a) != 1)
        return -1;
    /* 1 or 2 decimal digits, nothing else (strtoul would take " +24"). */
    const char *d = slash + 1;
    size_t nd = strspn(d, "0123456789");
    if (nd == 0 || nd > 2 || d[nd] != '\0')
        return -1;
    unsigned p = (unsigned)atoi(d);
    if (p < 1 || p > 32)
        return -1;
    *addr_be = a.s_addr;
    *prefix = p;
    return 0;
}

static int check_cidr(struct cx *c, const char *path, const char *s)
{
    uint32_t a;
    unsigned p;
    if (config_parse_cidr(s, &a, &p) < 0)
        return err_config(c->err, VMCORE_ECONFIG, path,
                          "\"%s\" is not an IPv4 address with a prefix (a.b.c.d/n, n 1..32)", s);
    return 0;
}

/* Whether the path @s has a ".." component. */
static bool has_dotdot(const char *s)
{
    for (const char *p = s; (p = strstr(p, "..")); p += 2)
        if ((p == s || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return true;
    return false;
}

static uint64_t host_memory_mib(void)
{
    struct sysinfo si;
    if (sysinfo(&si) < 0)
        return UINT64_MAX;
    return (uint64_t)si.totalram * si.mem_unit >> 20;
}

static int parse_boot(struct cx *c, const json_t *boot, struct vmcore_config *cfg)
{
    static const char *const keys[] = { "kernel", "format", "initrd", "cmdline",
                                        "load_address", "entry", "mode", NULL };
    int rc, v;
    if ((rc = check_keys(c, boot, "boot", keys)))
        return rc;
    if (!json_object_get(boot, "kernel"))
        return err_config(c->err, VMCORE_ECONFIG, "boot.kernel", "missing (required)");
    if ((rc = get_existing_path(c, boot, "boot", "kernel", false, &cfg->boot.kernel)))
        return rc;
    v = cfg->boot.format;
    if ((rc = get_enum(c, boot, "boot", "format", format_names, &v)))
        return rc;
    cfg->boot.format = (enum boot_format)v;
    if ((rc = get_existing_path(c, boot, "boot", "initrd", false, &cfg->boot.initrd)))
        return rc;
    if ((rc = get_string(c, boot, "boot", "cmdline", &cfg->boot.cmdline)))
        return rc;
    if (cfg->boot.cmdline && strlen(cfg->boot.cmdline) > 4095)
        return err_config(c->err, VMCORE_ECONFIG, "boot.cmdline", "longer than 4095 bytes");
    if ((rc = get_uint(c, boot, "boot", "load_address", 0, UINT64_MAX >> 1,
                       &cfg->boot.load_address, &cfg->boot.has_load_address)))
        return rc;
    if ((rc = get_uint(c, boot, "boot", "entry", 0, UINT64_MAX >> 1, &cfg->boot.entry,
                       &cfg->boot.has_entry)))
        return rc;
    v = cfg->boot.mode;
    if ((rc = get_enum(c, boot, "boot", "mode", mode_names, &v)))
        return rc;
    cfg->boot.mode = (enum boot_mode)v;
    if (json_object_get(boot, "mode") && cfg->boot.format != BOOT_FORMAT_RAW)
        return err_config(c->err, VMCORE_ECONFIG, "boot.mode",
                          "only meaningful with boot.format \"raw\"");
    if (cfg->boot.has_load_address && cfg->boot.format != BOOT_FORMAT_RAW)
        return err_config(c->err, VMCORE_ECONFIG, "boot.load_address",
                          "only meaningful with boot.format \"raw\"");
    if (cfg->boot.load_address >= cfg->memory_mib << 20)
        return err_config(c->err, VMCORE_ECONFIG, "boot.load_address",
                          "0x%llx lies beyond guest memory (%llu MiB)",
                          (unsigned long long)cfg->boot.load_address,
                          (unsigned long long)cfg->memory_mib);
    return 0;
}

/* Capability names as the kernel numbers them (linux/capability.h, 0..40). */
static const char *const cap_names[] = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE", NULL,
};

int config_cap_number(const char *name)
{
    for (int i = 0; cap_names[i]; i++)
        if (strcmp(cap_names[i], name) == 0)
            return i;
    return -1;
}

static int parse_caps(struct cx *c, const json_t *arr, struct vmcore_config *cfg)
{
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return type_error(c, "process.capabilities", "an array", arr);
    cfg->process.has_caps = true;
    cfg->process.caps = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char p[CONFIG_PATH_MAX];
        snprintf(p, sizeof p, "process.capabilities[%zu]", i);
        const json_t *v = json_array_get(arr, i);
        if (!json_is_string(v))
            return type_error(c, p, "a string", v);
        int n = config_cap_number(json_string_value(v));
        if (n < 0)
            return err_config(c->err, VMCORE_ECONFIG, p, "unknown capability \"%s\" (names "
                              "such as \"CAP_CHOWN\")", json_string_value(v));
        cfg->process.caps |= 1ull << n;
    }
    return 0;
}

static const struct { const char *name; int res; } rlimit_names[] = {
    { "RLIMIT_AS", RLIMIT_AS }, { "RLIMIT_CORE", RLIMIT_CORE }, { "RLIMIT_CPU", RLIMIT_CPU },
    { "RLIMIT_DATA", RLIMIT_DATA }, { "RLIMIT_FSIZE", RLIMIT_FSIZE },
    { "RLIMIT_LOCKS", RLIMIT_LOCKS }, { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
    { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE }, { "RLIMIT_NICE", RLIMIT_NICE },
    { "RLIMIT_NOFILE", RLIMIT_NOFILE }, { "RLIMIT_NPROC", RLIMIT_NPROC },
    { "RLIMIT_RSS", RLIMIT_RSS }, { "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
    { "RLIMIT_RTTIME", RLIMIT_RTTIME }, { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
    { "RLIMIT_STACK", RLIMIT_STACK },
};

static int parse_rlimits(struct cx *c, const json_t *arr, struct vmcore_config *cfg)
{
    static const char *const keys[] = { "type", "soft", "hard", NULL };
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return type_error(c, "process.rlimits", "an array", arr);
    size_t n = json_array_size(arr);
    if (n > CONFIG_MAX_RLIMITS)
        return err_config(c->err, VMCORE_ELIMIT, "process.rlimits", "%zu entries (at most %d)",
                          n, CONFIG_MAX_RLIMITS);
    cfg->process.rlimits = calloc(n ? n : 1, sizeof *cfg->process.rlimits);
    if (!cfg->process.rlimits)
        return err_set(c->err, VMCORE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char p[CONFIG_PATH_MAX], tp[CONFIG_PATH_MAX];
        snprintf(p, sizeof p, "process.rlimits[%zu]", i);
        const json_t *o = json_array_get(arr, i);
        int rc;
        if (!json_is_object(o))
            return type_error(c, p, "an object", o);
        if ((rc = check_keys(c, o, p, keys)))
            return rc;
        for (int k = 0; k < 3; k++)
            if (!json_object_get(o, keys[k])) {
                join_path(tp, p, keys[k]);
                return err_config(c->err, VMCORE_ECONFIG, tp, "missing (required)");
            }
        char *type = NULL;
        if ((rc = get_string(c, o, p, "type", &type)))
            return rc;
        int res = -1;
        for (size_t k = 0; k < sizeof rlimit_names / sizeof rlimit_names[0]; k++)
            if (strcmp(rlimit_names[k].name, type) == 0)
                res = rlimit_names[k].res;
        if (res < 0) {
            join_path(tp, p, "type");
            rc = err_config(c->err, VMCORE_ECONFIG, tp, "unknown limit \"%s\" (names such as "
                            "\"RLIMIT_NOFILE\")", type);
            free(type);
            return rc;
        }
        free(type);
        for (size_t k = 0; k < i; k++)
            if (cfg->process.rlimits[k].resource == res) {
                join_path(tp, p, "type");
                return err_config(c->err, VMCORE_ECONFIG, tp, "given twice");
            }
        struct config_rlimit *r = &cfg->process.rlimits[i];
        r->resource = res;
        if ((rc = get_uint(c, o, p, "soft", 0, UINT64_MAX >> 1, &r->soft, NULL)) ||
            (rc = get_uint(c, o, p, "hard", 0, UINT64_MAX >> 1, &r->hard, NULL)))
            return rc;
        if (r->soft > r->hard) {
            join_path(tp, p, "soft");
            return err_config(c->err, VMCORE_ECONFIG, tp, "%llu is above hard (%llu)",
                              (unsigned long long)r->soft, (unsigned long long)r->hard);
        }
        cfg->process.nrlimits = i + 1;
    }
    return 0;
}

static int parse_process(struct cx *c, const json_t *proc, struct vmcore_config *cfg)
{
    static const char *const keys[] = { "args", "env", "cwd", "uid", "gid", "terminal",
                                        "init", "capabilities", "rlimits", "umask", NULL };
    int rc;
    uint64_t n;
    if ((rc = check_keys(c, proc, "process", keys)))
        return rc;
    if (!json_object_get(proc, "args"))
        return err_config(c->err, VMCORE_ECONFIG, "process.args", "missing (required)");
    if ((rc = get_string_array(c, proc, "process", "args", &cfg->process.args,
                               &cfg->process.nargs)))
        return rc;
    if (cfg->process.nargs == 0)
        return err_config(c->err, VMCORE_ECONFIG, "process.args", "must not be empty");
    if (cfg->process.args[0][0] == '\0')
        return err_config(c->err, VMCORE_ECONFIG, "process.args[0]", "must not be empty");
    if ((rc = get_string_array(c, proc, "process", "env", &cfg->process.env,
                               &cfg->process.nenv)))
        return rc;
    for (size_t i = 0; i < cfg->process.nenv; i++) {
        const char *eq = strchr(cfg->process.env[i], '=');
        if (!eq || eq == cfg->process.env[i]) {
            char p[CONFIG_PATH_MAX];
            snprintf(p, sizeof p, "process.env[%zu]", i);
            return err_config(c->err, VMCORE_ECONFIG, p, "\"%s\" is not of the form NAME=VALUE",
                              cfg->process.env[i]);
        }
    }
    if ((rc = get_string(c, proc, "process", "cwd", &cfg->process.cwd)))
        return rc;
    if (cfg->process.cwd[0] != '/')
        return err_config(c->err, VMCORE_ECONFIG, "process.cwd", "must be an absolute path");
    n = 0;
    if ((rc = get_uint(c, proc, "process", "uid", 0, UINT32_MAX - 1, &n, NULL)))
        return rc;
    cfg->process.uid = (uint32_t)n;
    n = 0;
    if ((rc = get_uint(c, proc, "process", "gid", 0, UINT32_MAX - 1, &n, NULL)))
        return rc;
    cfg->process.gid = (uint32_t)n;
    if ((rc = get_bool(c, proc, "process", "terminal", &cfg->process.terminal)))
        return rc;
    if ((rc = parse_caps(c, json_object_get(proc, "capabilities"), cfg)))
        return rc;
    if ((rc = parse_rlimits(c, json_object_get(proc, "rlimits"), cfg)))
        return rc;
    n = 0;
    if ((rc = get_uint(c, proc, "process", "umask", 0, 0777, &n, &cfg->process.has_umask)))
        return rc;
    cfg->process.umask = (uint32_t)n;
    return get_bool(c, proc, "process", "init", &cfg->process.init);
}

static int parse_limits(struct cx *c, const json_t *lim, struct vmcore_config *cfg)
{
    static const char *const keys[] = { "memory_bytes", "pids", "cpus", NULL };
    int rc;
    if ((rc = check_keys(c, lim, "limits", keys)))
        return rc;
    bool present;
    if ((rc = get_uint(c, lim, "limits", "memory_bytes", CONFIG_MIN_MEMORY_BYTES,
                       UINT64_MAX >> 1, &cfg->limits.memory_bytes, &present)))
        return rc;
    if (present && cfg->limits.memory_bytes >> 20 > host_memory_mib())
        return err_config(c->err, VMCORE_ELIMIT, "limits.memory_bytes",
                          "%llu bytes exceeds the host's %llu MiB",
                          (unsigned long long)cfg->limits.memory_bytes,
                          (unsigned long long)host_memory_mib());
    if ((rc = get_uint(c, lim, "limits", "pids", 1, 4194304, &cfg->limits.pids, NULL)))
        return rc;
    const json_t *v = json_object_get(lim, "cpus");
    if (v) {
        if (!json_is_number(v))
            return type_error(c, "limits.cpus", "a number", v);
        double cpus = json_number_value(v);
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        if (!(cpus >= 0.01) || !isfinite(cpus))
            return err_config(c->err, VMCORE_ECONFIG, "limits.cpus",
                              "%g is below the minimum 0.01", cpus);
        if (ncpu > 0 && cpus > (double)ncpu)
            return err_config(c->err, VMCORE_ELIMIT, "limits.cpus",
                              "%g exceeds the host's %ld CPUs", cpus, ncpu);
        cfg->limits.cpus = cpus;
    }
    return 0;
}

static int parse_ports(struct cx *c, const json_t *arr, const char *parent,
                       struct config_portfwd **out, size_t *count);

/* "bridge" of network mode "bridge" (@path: "network.bridge" or "nics[N].bridge"): a
 * bridge's name, or {"name", "create", "address", "nat"}. */
static int parse_bridge(struct cx *c, const json_t *v, const char *path, struct config_bridge *b)
{
    static const char *const keys[] = { "name", "create", "address", "nat", NULL };
    char p[CONFIG_PATH_MAX];
    int rc;
    if (json_is_string(v)) {
        if (strlen(json_string_value(v)) != json_string_length(v))
            return err_config(c->err, VMCORE_ECONFIG, path, "must not contain NUL bytes");
        if (!(b->name = strdup(json_string_value(v))))
            return err_set(c->err, VMCORE_ENOMEM, "out of memory");
        return check_name(c, path, b->name, 15, true);
    }
    if (!json_is_object(v))
        return type_error(c, path, "a bridge's name or an object", v);
    if ((rc = check_keys(c, v, path, keys)) || (rc = get_string(c, v, path, "name", &b->name)) ||
        (rc = get_bool(c, v, path, "create", &b->create)) ||
        (rc = get_string(c, v, path, "address", &b->address)) ||
        (rc = get_bool(c, v, path, "nat", &b->nat)))
        return rc;
    join_path(p, path, "name");
    if (!b->name)
        return err_config(c->err, VMCORE_ECONFIG, p, "missing (required)");
    if ((rc = check_name(c, p, b->name, 15, true)))
        return rc;
    join_path(p, path, "address");
    if (b->address && !b->create)
        return err_config(c->err, VMCORE_ECONFIG, p, "only with \"create\": true (the library "
                          "leaves the addresses of a bridge it did not create alone)");
    if (b->address) {
        uint32_t a;
        unsigned prefix;
        if ((rc = check_cidr(c, p, b->address)))
            return rc;
        config_parse_cidr(b->address, &a, &prefix);
        uint32_t host = ntohl(a) & (0xffffffffu >> prefix);
        if (prefix > 30 || host == 0 || host == (0xffffffffu >> prefix))
            return err_config(c->err, VMCORE_ECONFIG, p, "%s is not a host address of a subnet "
                              "with room for guests (prefix at most 30)", b->address);
    }
    join_path(p, path, "nat");
    if (b->nat && (!b->create || !b->address))
        return err_config(c->err, VMCORE_ECONFIG, p, "needs \"create\": true and an \"address\" "
                          "(the library NATs only the subnet of a bridge it made)");
    return 0;
}

/* A guest's static @addr (at @path) on the subnet of the bridge's @baddr. */
static int check_on_bridge(struct cx *c, const char *path, const char *addr, const char *baddr)
{
    uint32_t a, b;
    unsigned pa, pb;
    config_parse_cidr(addr, &a, &pa);
    config_parse_cidr(baddr, &b, &pb);
    uint32_t m = pb ? 0xffffffffu << (32 - pb) : 0;
    uint32_t ha = ntohl(a), hb = ntohl(b);
    if ((ha & m) != (hb & m) || pa != pb)
        return err_config(c->err, VMCORE_ECONFIG, path, "%s is not on the bridge's subnet "
                          "(its address is %s)", addr, baddr);
    if (ha == hb)
        return err_config(c->err, VMCORE_ECONFIG, path, "%s is the bridge's own address", addr);
    if ((ha & ~m) == 0 || (ha & ~m) == ~m)
        return err_config(c->err, VMCORE_ECONFIG, path, "%s is the subnet's network or "
                          "broadcast address", addr);
    return 0;
}

/* network.mode "bridge": a veth whose host end is a port of network.bridge. */
static int parse_network_bridge(struct cx *c, const json_t *net, struct vmcore_config *cfg)
{
    int rc;
    static const char *const not_here[] = { "host_address", NULL };
    for (const char *const *k = not_here; *k; k++)
        if (json_object_get(net, *k)) {
            char p[CONFIG_PATH_MAX];
            join_path(p, "network", *k);
            return err_config(c->err, VMCORE_ECONFIG, p, "not valid with network.mode "
                              "\"bridge\" (the host end is a bridge port, without an address)");
        }
    const json_t *b = json_object_get(net, "bridge");
    if (!b)
        return err_config(c->err, VMCORE_ECONFIG, "network.bridge",
                          "missing (required for mode \"bridge\")");
    if ((rc = parse_bridge(c, b, "network.bridge", &cfg->network.bridge)) ||
        (rc = get_string(c, net, "network", "host_ifname", &cfg->network.host_ifname)) ||
        (rc = get_string(c, net, "network", "address", &cfg->network.address)))
        return rc;
    if (cfg->network.host_ifname &&
        (rc = check_name(c, "network.host_ifname", cfg->network.host_ifname, 15, true)))
        return rc;
    if (!cfg->network.address)
        return err_config(c->err, VMCORE_ECONFIG, "network.address",
                          "missing (required for mode \"bridge\": the container's static "
                          "address, a.b.c.d/n)");
    if ((rc = check_cidr(c, "network.address", cfg->network.address)))
        return rc;
    if (cfg->network.bridge.address &&
        (rc = check_on_bridge(c, "network.address", cfg->network.address,
                              cfg->network.bridge.address)))
        return rc;
    return 0;
}

static int parse_network(struct cx *c, const json_t *net, struct vmcore_config *cfg)
{
    static const char *const keys[] = { "mode", "host_ifname", "address", "host_address",
                                        "ports", "bridge", NULL };
    int rc, v = cfg->network.mode;
    if ((rc = check_keys(c, net, "network", keys)))
        return rc;
    if ((rc = get_enum(c, net, "network", "mode", net_names, &v)))
        return rc;
    cfg->network.mode = (enum net_mode)v;
    if (cfg->network.mode != NET_MODE_USER && json_object_get(net, "ports"))
        return err_config(c->err, VMCORE_ECONFIG, "network.ports",
                          "only valid with network.mode \"user\" (the other modes forward "
                          "nothing themselves)");
    if (cfg->network.mode != NET_MODE_BRIDGE && json_object_get(net, "bridge"))
        return err_config(c->err, VMCORE_ECONFIG, "network.bridge",
                          "only valid with network.mode \"bridge\"");
    if (cfg->network.mode == NET_MODE_BRIDGE)
        return parse_network_bridge(c, net, cfg);
    if ((rc = get_string(c, net, "network", "host_ifname", &cfg->network.host_ifname)) ||
        (rc = get_string(c, net, "network", "address", &cfg->network.address)) ||
        (rc = get_string(c, net, "network", "host_address", &cfg->network.host_address)))
        return rc;
    if (cfg->network.mode != NET_MODE_VETH) {
        static const char *const veth_only[] = { "host_ifname", "address", "host_address",
                                                 NULL };
        for (const char *const *k = veth_only; *k; k++)
            if (json_object_get(net, *k)) {
                char p[CONFIG_PATH_MAX];
                join_path(p, "network", *k);
                return err_config(c->err, VMCORE_ECONFIG, p,
                                  cfg->network.mode == NET_MODE_USER
                                      ? "only valid with network.mode \"veth\" (\"user\" "
                                        "always gives the container 10.0.2.100/24)"
                                      : "only valid with network.mode \"veth\"");
            }
        if (json_object_get(net, "ports"))
            return parse_ports(c, json_object_get(net, "ports"), "network",
                               &cfg->network.ports, &cfg->network.nports);
        return 0;
    }
    if (!cfg->network.host_ifname)
        return err_config(c->err, VMCORE_ECONFIG, "network.host_ifname",
                          "missing (required for mode \"veth\")");
    if ((rc = check_name(c, "network.host_ifname", cfg->network.host_ifname, 15, true)))
        return rc;
    if (!cfg->network.address)
        return err_config(c->err, VMCORE_ECONFIG, "network.address",
                          "missing (required for mode \"veth\")");
    if ((rc = check_cidr(c, "network.address", cfg->network.address)))
        return rc;
    if (cfg->network.host_address &&
        (rc = check_cidr(c, "network.host_address", cfg->network.host_address)))
        return rc;
    return 0;
}

static int parse_mounts(struct cx *c, const json_t *arr, struct vmcore_config *cfg)
{
    static const char *const keys[] = { "type", "source", "target", "readonly", "nosuid",
                                        "nodev", "noexec", "data", NULL };
    static const char *const types[] = { "bind", "tmpfs", "mqueue", "cgroup", NULL };
    if (!json_is_array(arr))
        return type_error(c, "mounts", "an array", arr);
    size_t n = json_array_size(arr);
    cfg->mounts = calloc(n ? n : 1, sizeof *cfg->mounts);
    if (!cfg->mounts)
        return err_set(c->err, VMCORE_ENOMEM, "out of memory");
    cfg->nmounts = n;
    for (size_t i = 0; i < n; i++) {
        char p[CONFIG_PATH_MAX], tp[CONFIG_PATH_MAX];
        const json_t *m = json_array_get(arr, i);
        struct config_mount *cm = &cfg->mounts[i];
        int rc;
        snprintf(p, sizeof p, "mounts[%zu]", i);
        if (!json_is_object(m))
            return type_error(c, p, "an object", m);
        if ((rc = check_keys(c, m, p, keys)))
            return rc;
        int type = MOUNT_BIND;
        if ((rc = get_enum(c, m, p, "type", types, &type)))
            return rc;
        cm->type = (enum config_mount_type)type;
        bool bind = cm->type == MOUNT_BIND;
        if (!json_object_get(m, "target") || (bind && !json_object_get(m, "source"))) {
            join_path(tp, p, json_object_get(m, "target") ? "source" : "target");
            return err_config(c->err, VMCORE_ECONFIG, tp, "missing (required)");
        }
        if (!bind && json_object_get(m, "source")) {
            join_path(tp, p, "source");
            return err_config(c->err, VMCORE_ECONFIG, tp, "only for type \"bind\"");
        }
        if (cm->type != MOUNT_TMPFS && json_object_get(m, "data")) {
            join_path(tp, p, "data");
            return err_config(c->err, VMCORE_ECONFIG, tp, "only for type \"tmpfs\"");
        }
        if (bind) {
            char *src = NULL;
            if ((rc = get_string(c, m, p, "source", &src)))
                return rc;
            join_path(tp, p, "source");
            rc = resolve(c, tp, src, &cm->source);
            free(src);
            if (rc)
                return rc;
            struct stat st;
            if (stat(cm->source, &st) < 0)
                return err_config(c->err, VMCORE_ENOENT, tp, "cannot access %s: %s", cm->source,
                                  strerror(errno));
        }
        if ((rc = get_string(c, m, p, "target", &cm->target)))
            return rc;
        if (cm->target[0] != '/' || has_dotdot(cm->target)) {
            join_path(tp, p, "target");
            return err_config(c->err, VMCORE_ECONFIG, tp,
                              "must be an absolute path without \"..\" components");
        }
        if ((rc = get_string(c, m, p, "data", &cm->data)))
            return rc;
        if (cm->data && strlen(cm->data) > 1024) {
            join_path(tp, p, "data");
            return err_config(c->err, VMCORE_ECONFIG, tp, "longer than 1024 bytes");
        }
        if ((rc = get_bool(c, m, p, "readonly", &cm->readonly)) ||
            (rc = get_bool(c, m, p, "nosuid", &cm->nosuid)) ||
            (rc = get_bool(c, m, p, "nodev", &cm->nodev)) ||
            (rc = get_bool(c, m, p, "noexec", &cm->noexec)))
            return rc;
    }
    return 0;
}

/* Only parameters that belong to the container's own namespaces (as runc allows them). */
static bool sysctl_namespaced(const char *k, bool own_net)
{
    static const char *const ipc[] = { "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",
                                       "kernel.sem", "kernel.shmall", "kernel.shmmax",
                                       "kernel.shmmni", "kernel.shm_rmid_forced", NULL };
    for (const char *const *i = ipc; *i; i++)
        if (strcmp(*i, k) == 0)
            return true;
    return strncmp(k, "fs.mqueue.", 10) == 0 || (own_net && strncmp(k, "net.", 4) == 0);
}

static int parse_sysctl(struct cx *c, const json_t *o, struct vmcore_config *cfg)
{
    if (!json_is_object(o))
        return type_error(c, "sysctl", "an object", o);
    size_t n = json_object_size(o);
    if (n > CONFIG_MAX_SYSCTLS)
        return err_config(c->err, VMCORE_ELIMIT, "sysctl", "%zu entries (at most %d)", n,
                          CONFIG_MAX_SYSCTLS);
    cfg->sysctls = calloc(n ? n : 1, sizeof *cfg->sysctls);
    if (!cfg->sysctls)
        return err_set(c->err, VMCORE_ENOMEM, "out of memory");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v) {
        char p[CONFIG_PATH_MAX];
        join_path(p, "sysctl", key);
        size_t kl = strlen(key);
        bool ok = kl > 0 && kl < 200 && key[0] != '.' && key[kl - 1] != '.' && !strstr(key, "..");
        for (size_t i = 0; ok && i < kl; i++)
            ok = islower((unsigned char)key[i]) || isdigit((unsigned char)key[i]) ||
                 strchr("._-", key[i]);
        if (!ok)
            return err_config(c->err, VMCORE_ECONFIG, p, "not a parameter name (such as "
                              "\"net.ipv4.ip_forward\")");
        if (!sysctl_namespaced(key, cfg->network.mode != NET_MODE_HOST))
            return err_config(c->err, VMCORE_ECONFIG, p, "not a parameter of the container's "
                              "own namespaces (net.* without the host's network, fs.mqueue.*, "
                              "kernel.msg*, sem, shm*)");
        if (!json_is_string(v))
            return type_error(c, p, "a string", v);
        const char *val = json_string_value(v);
        if (strlen(val) != json_string_length(v) || strlen(val) > 1024 || strchr(val, '\n'))
            return err_config(c->err, VMCORE_ECONFIG, p, "must be one line of at most 1024 bytes");
        struct config_sysctl *sc = &cfg->sysctls[cfg->nsysctls++];
        sc->key = strdup(key);
        sc->value = strdup(val);
        sc->path = malloc(kl + 5);
        if (!sc->key || !sc->value || !sc->path)
            return err_set(c->err, VMCORE_ENOMEM, "out of memory");
        snprintf(sc->path, kl + 5, "sys/%s", key);
        for (char *d = sc->path + 4; *d; d++)
            if (*d == '.')
                *d = '/';
    }
    return 0;
}

static int parse_detach(struct cx *c, const json_t *o, struct vmcore_config *cfg)
{
    static const char *const keys[] = { "hold", "cgroup", NULL };
    int rc;
    if ((rc = check_keys(c, o, "detach", keys)))
        return rc;
    cfg->detach.enabled = true;
    if ((rc = get_string(c, o, "detach", "hold", &cfg->detach.hold)))
        return rc;
    if (cfg->detach.hold) {
        struct stat st;
        if (cfg->detach.hold[0] != '/')
            return err_config(c->err, VMCORE_ECONFIG, "detach.hold", "must be an absolute path");
        if (stat(cfg->detach.hold, &st) < 0)
            return err_config(c->err, VMCORE_ENOENT, "detach.hold", "cannot access %s: %s",
                              cfg->detach.hold, strerror(errno));
        if (!S_ISFIFO(st.st_mode))
            return err_config(c->err, VMCORE_ECONFIG, "detach.hold", "%s is not a FIFO",
                              cfg->detach.hold);
    }
    if ((rc = get_string(c, o, "detach", "cgroup", &cfg->detach.cgroup)))
        return rc;
    if (cfg->detach.cgroup) {
        /* A name, or a path of names ("a/b", "/a/b"); the last one is the group's own. */
        const char *g = cfg->detach.cgroup;
        size_t len = strlen(g);
        if (len == 0 || len > 1024 || g[len - 1] == '/' || strstr(g, "//"))
            return err_config(c->err, VMCORE_ECONFIG, "detach.cgroup",
                              "must be a folder name or a path of them (at most 1024 bytes)");
        for (const char *comp = g[0] == '/' ? g + 1 : g; *comp;) {
            size_t n = strcspn(comp, "/");
            char part[1025];
            snprintf(part, sizeof part, "%.*s", (int)n, comp);
            if ((rc = check_name(c, "detach.cgroup", part, 200, true)))
                return rc;
            if (part[0] == '.')
                return err_config(c->err, VMCORE_ECONFIG, "detach.cgroup",
                                  "\"%s\": a folder name must not start with \".\"", part);
            comp += n;
            if (*comp == '/')
                comp++;
            if (!*comp && strncmp(part, "vmcore-", 7) == 0)
                return err_config(c->err, VMCORE_ECONFIG, "detach.cgroup",
                                  "must not start with \"vmcore-\" (the library's own names)");
        }
    }
    if (cfg->process.init)
        return err_config(c->err, VMCORE_ECONFIG, "detach", "cannot be combined with process.init");
    /* veth and bridge interfaces, and user mode's NAT, live with this process */
    if (cfg->network.mode == NET_MODE_VETH || cfg->network.mode == NET_MODE_USER ||
        cfg->network.mode == NET_MODE_BRIDGE)
        return err_config(c->err, VMCORE_ECONFIG, "detach",
                          "cannot be combined with network.mode \"%s\"",
                          cfg->network.mode == NET_MODE_VETH   ? "veth"
                          : cfg->network.mode == NET_MODE_USER ? "user"
                                                               : "bridge");
    return 0;
}

static int parse_idmap(struct cx *c, const json_t *obj, const char *key,
                       struct config_idmap **out, size_t *count)
{
    static const char *const keys[] = { "inside", "outside", "count", NULL };
    char p[CONFIG_PATH_MAX];
    const json_t *arr = json_object_get(obj, key);
    if (!arr)
        return 0;
    join_path(p, "userns", key);
    if (!json_is_array(arr))
        return type_error(c, p, "an array", arr);
    size_t n = json_array_size(arr);
    if (n > 340)
        return err_config(c->err, VMCORE_ECONFIG, p, "at most 340 ranges");
    *out = calloc(n ? n : 1, sizeof **out);
    if (!*out)
        return err_set(c->err, VMCORE_ENOMEM, "out of memory");
    *count = n;
    for (size_t i = 0; i < n; i++) {
        char ep[CONFIG_PATH_MAX];
        const json_t *e = json_array_get(arr, i);
        uint64_t vals[3] = { 0, 0, 1 };
        int rc;
        snprintf(ep, sizeof ep, "%s[%zu]", p, i);
        if (!json_is_object(e))
            return type_error(c, ep, "an object", e);
        if ((rc = check_keys(c, e, ep, keys)))
            return rc;
        for (int k = 0; k < 3; k++) {
            char kp[CONFIG_PATH_MAX];
            join_path(kp, ep, keys[k]);
            if (!json_object_get(e, keys[k]))
                return err_config(c->err, VMCORE_ECONFIG, kp, "missing (required)");
            if ((rc = get_uint(c, e, ep, keys[k], k == 2 ? 1 : 0, UINT32_MAX - 1, &vals[k],
                               NULL)))
                return rc;
        }
        (*out)[i] = (struct config_idmap){ (uint32_t)vals[0], (uint32_t)vals[1],
                                           (uint32_t)vals[2] };
    }
    return 0;
}

static int parse_userns(struct cx *c, const json_t *u, struct vmcore_config *cfg)
{
    static const char *const keys[] = { "enabled", "uid_map", "gid_map", NULL };
    int rc;
    if ((rc = check_keys(c, u, "userns", keys)))
        return rc;
    cfg->userns.enabled = true;
    if ((rc = get_bool(c, u, "userns", "enabled", &cfg->userns.enabled)))
        return rc;
    if ((rc = parse_idmap(c, u, "uid_map", &cfg->userns.uid_map, &cfg->userns.nuid_map)))
        return rc;
    return parse_idmap(c, u, "gid_map", &cfg->userns.gid_map, &cfg->userns.ngid_map);
}

/* "emu": settings of the software CPU; "auto" accepts them for when it picks emu. */
static int parse_emu(struct cx *c, const json_t *emu, struct vmcore_config *cfg)
{
    static const char *const keys[] = { "jit", NULL };
    int rc;
    if (cfg->backend == CONFIG_BACKEND_KVM)
        return err_config(c->err, VMCORE_ECONFIG, "emu", "not valid for backend \"kvm\" "
                          "(settings of the emu backend)");
    if ((rc = check_keys(c, emu, "emu", keys)))
        return rc;
    return get_bool(c, emu, "emu", "jit", &cfg->emu.jit);
}

/* "disks": virtio-blk images. */
static int parse_disks(struct cx *c, const json_t *arr, struct vmcore_config *cfg)
{
    static const char *const keys[] = { "path", "readonly", "serial", NULL };
    if (!json_is_array(arr))
        return type_error(c, "disks", "an array", arr);
    size_t n = json_array_size(arr);
    if (n > CONFIG_MAX_DISKS)
        return err_config(c->err, VMCORE_ELIMIT, "disks", "%zu disks, at most %d", n,
                          CONFIG_MAX_DISKS);
    cfg->disks = calloc(n ? n : 1, sizeof *cfg->disks);
    if (!cfg->disks)
        return err_set(c->err, VMCORE_ENOMEM, "out of memory");
    cfg->ndisks = n;
    for (size_t i = 0; i < n; i++) {
        char p[CONFIG_PATH_MAX], tp[CONFIG_PATH_MAX];
        const json_t *d = json_array_get(arr, i);
        struct config_disk *cd = &cfg->disks[i];
        int rc;
        snprintf(p, sizeof p, "disks[%zu]", i);
        if (!json_is_object(d))
            return type_error(c, p, "an object", d);
        if ((rc = check_keys(c, d, p, keys)))
            return rc;
        if (!json_object_get(d, "path")) {
            join_path(tp, p, "path");
            return err_config(c->err, VMCORE_ECONFIG, tp, "missing (required)");
        }
        if ((rc = get_existing_path(c, d, p, "path", false, &cd->path)) ||
            (rc = get_bool(c, d, p, "readonly", &cd->readonly)) ||
            (rc = get_string(c, d, p, "serial", &cd->serial)))
            return rc;
        if (cd->serial && strlen(cd->serial) > CONFIG_DISK_SERIAL_MAX) {
            join_path(tp, p, "serial");
            return err_config(c->err, VMCORE_ECONFIG, tp, "longer than %d bytes",
                              CONFIG_DISK_SERIAL_MAX);
        }
    }
    return 0;
}

/* "nics": virtio-net cards. */
static int parse_mac(const char *s, uint8_t mac[6])
{
    for (int i = 0; i < 6; i++) {
        const char *h = s + 3 * i;
        if (!isxdigit((unsigned char)h[0]) || !isxdigit((unsigned char)h[1]) ||
            h[2] != (i == 5 ? '\0' : ':'))
            return -1;
        mac[i] = (uint8_t)strtoul((char[3]){ h[0], h[1], 0 }, NULL, 16);
    }
    return 0;
}

/* "ports" of a "user" card or container network (@parent: "nics[N]" or "network"):
 * [{"host": "[ADDR:]PORT", "guest": PORT, "proto": "tcp"}]. */
static int parse_ports(struct cx *c, const json_t *arr, const char *parent,
                       struct config_portfwd **out, size_t *count)
{
    static const char *const keys[] = { "host", "guest", "proto", NULL };
    static const char *const protos[] = { "tcp", "udp", NULL };
    char p[CONFIG_PATH_MAX], tp[CONFIG_PATH_MAX];
    join_path(p, parent, "ports");
    if (!json_is_array(arr))
        return type_error(c, p, "an array", arr);
    size_t n = json_array_size(arr);
    if (n > CONFIG_MAX_PORTS)
        return err_config(c->err, VMCORE_ELIMIT, p, "%zu port forwards, at most %d", n,
                          CONFIG_MAX_PORTS);
    struct config_portfwd *ports = calloc(n ? n : 1, sizeof *ports);
    if (!ports)
        return err_set(c->err, VMCORE_ENOMEM, "out of memory");
    *out = ports;
    *count = n;
    for (size_t i = 0; i < n; i++) {
        char ep[CONFIG_PATH_MAX];
        snprintf(ep, sizeof ep, "%s[%zu]", p, i);
        const json_t *e = json_array_get(arr, i);
        struct config_portfwd *f = &ports[i];
        int rc, proto = 0;
        uint64_t guest = 0;
        if (!json_is_object(e))
            return type_error(c, ep, "an object", e);
        if ((rc = check_keys(c, e, ep, keys)) || (rc = get_enum(c, e, ep, "proto", protos, &proto)))
            return rc;
        f->udp = proto == 1;
        join_path(tp, ep, "guest");
        if (!json_object_get(e, "guest"))
            return err_config(c->err, VMCORE_ECONFIG, tp, "missing (required)");
        if ((rc = get_uint(c, e, ep, "guest", 1, 65535, &guest, NULL)))
            return rc;
        f->guest_port = (uint16_t)guest;
        join_path(tp, ep, "host");
        const json_t *h = json_object_get(e, "host");
        if (!h)
            return err_config(c->err, VMCORE_ECONFIG, tp, "missing (required)");
        char buf[64];
        const char *port = NULL;
        f->host_addr = htonl(INADDR_LOOPBACK);
        if (json_is_integer(h)) {
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(h));
            port = buf;
        } else if (json_is_string(h) && json_string_length(h) < sizeof buf) {
            snprintf(buf, sizeof buf, "%s", json_string_value(h));
            char *colon = strrchr(buf, ':');
            port = buf;
            if (colon) {
                *colon = 0;
                port = colon + 1;
                struct in_addr a;
                if (inet_pton(AF_INET, buf, &a) != 1)
                    return err_config(c->err, VMCORE_ECONFIG, tp, "\"%s\" is not an IPv4 "
                                      "address (expected \"127.0.0.1:8080\" or a port)", buf);
                f->host_addr = a.s_addr;
            }
        } else {
            return type_error(c, tp, "\"ADDRESS:PORT\" or a port number", h);
        }
        char *end;
        unsigned long hp = strtoul(port, &end, 10);
        if (!*port || *end || hp < 1 || hp > 65535)
            return err_config(c->err, VMCORE_ECONFIG, tp, "\"%s\" is not a port (1..65535)",
                              port);
        f->host_port = (uint16_t)hp;
        for (size_t j = 0; j < i; j++)
            if (ports[j].udp == f->udp && ports[j].host_port == f->host_port &&
                ports[j].host_addr == f->host_addr)
                return err_config(c->err, VMCORE_ECONFIG, tp, "the same host port as %s[%zu]",
                                  p, j);
    }
    return 0;
}

static int parse_nics(struct cx *c, const json_t *arr, struct vmcore_config *cfg)
{
    static const char *const keys[] = { "mode", "ifname", "create", "mac", "ports", "bridge",
                                        NULL };
    static const char *const modes[] = { "tap", "user", "bridge", NULL };
    if (!json_is_array(arr))
        return type_error(c, "nics", "an array", arr);
    size_t n = json_array_size(arr);
    if (n > CONFIG_MAX_NICS)
        return err_config(c->err, VMCORE_ELIMIT, "nics", "%zu network cards, at most %d", n,
                          CONFIG_MAX_NICS);
    cfg->nics = calloc(n ? n : 1, sizeof *cfg->nics);
    if (!cfg->nics)
        return err_set(c->err, VMCORE_ENOMEM, "out of memory");
    cfg->nnics = n;
    for (size_t i = 0; i < n; i++) {
        char p[CONFIG_PATH_MAX], tp[CONFIG_PATH_MAX];
        const json_t *d = json_array_get(arr, i);
        struct config_nic *cn = &cfg->nics[i];
        char *mac = NULL;
        int rc, mode = 0;
        snprintf(p, sizeof p, "nics[%zu]", i);
        if (!json_is_object(d))
            return type_error(c, p, "an object", d);
        if ((rc = check_keys(c, d, p, keys)) || (rc = get_enum(c, d, p, "mode", modes, &mode)))
            return rc;
        cn->mode = mode == 2 ? NIC_MODE_BRIDGE : mode == 1 ? NIC_MODE_USER : NIC_MODE_TAP;
        join_path(tp, p, "bridge");
        if (cn->mode != NIC_MODE_BRIDGE && json_object_get(d, "bridge"))
            return err_config(c->err, VMCORE_ECONFIG, tp, "only for \"mode\": \"bridge\"");
        if (cn->mode == NIC_MODE_BRIDGE) {
            for (const char *const *k = (const char *const[]){ "ifname", "create", "ports",
                                                               NULL }; *k; k++)
                if (json_object_get(d, *k)) {
                    join_path(tp, p, *k);
                    return err_config(c->err, VMCORE_ECONFIG, tp, "not valid with \"mode\": "
                                      "\"bridge\" (the library creates the tap, vmtapN, and "
                                      "removes it with the domain)");
                }
            if (!json_object_get(d, "bridge"))
                return err_config(c->err, VMCORE_ECONFIG, tp, "missing (required for "
                                  "\"mode\": \"bridge\")");
            if ((rc = parse_bridge(c, json_object_get(d, "bridge"), tp, &cn->bridge)))
                return rc;
        } else if (cn->mode == NIC_MODE_USER) {
            for (const char *const *k = (const char *const[]){ "ifname", "create", NULL }; *k;
                 k++)
                if (json_object_get(d, *k)) {
                    join_path(tp, p, *k);
                    return err_config(c->err, VMCORE_ECONFIG, tp, "only for \"mode\": \"tap\"");
                }
            if (json_object_get(d, "ports") &&
                (rc = parse_ports(c, json_object_get(d, "ports"), p, &cn->ports, &cn->nports)))
                return rc;
        } else if (json_object_get(d, "ports")) {
            join_path(tp, p, "ports");
            return err_config(c->err, VMCORE_ECONFIG, tp, "only for \"mode\": \"user\" (a tap "
                              "forwards nothing itself)");
        }
        if ((rc = get_string(c, d, p, "ifname", &cn->ifname)) ||
            (rc = get_bool(c, d, p, "create", &cn->create)))
            return rc;
        join_path(tp, p, "ifname");
        if (cn->ifname && (rc = check_name(c, tp, cn->ifname, 15, true)))
            return rc;
        for (size_t j = 0; cn->ifname && j < i; j++)
            if (cfg->nics[j].ifname && strcmp(cfg->nics[j].ifname, cn->ifname) == 0)
                return err_config(c->err, VMCORE_ECONFIG, tp, "\"%s\" is also nics[%zu]'s",
                                  cn->ifname, j);
        if (!cn->ifname && json_object_get(d, "create")) {
            join_path(tp, p, "create");
            return err_config(c->err, VMCORE_ECONFIG, tp, "needs ifname (without one, the "
                              "library always creates the tap)");
        }
        /* The default MAC: QEMU's 52:54:00:12:34:56 plus the card's index (locally
         * administered, unicast). */
        memcpy(cn->mac, (uint8_t[6]){ 0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x56 + i) }, 6);
        if ((rc = get_string(c, d, p, "mac", &mac)))
            return rc;
        if (mac) {
            join_path(tp, p, "mac");
            rc = parse_mac(mac, cn->mac);
            free(mac);
            if (rc)
                return err_config(c->err, VMCORE_ECONFIG, tp, "not a MAC address "
                                  "(expected six hex pairs: 52:54:00:12:34:56)");
            if (cn->mac[0] & 1)
                return err_config(c->err, VMCORE_ECONFIG, tp, "a multicast address (the "
                                  "first byte's low bit is set)");
            if (!(cn->mac[0] | cn->mac[1] | cn->mac[2] | cn->mac[3] | cn->mac[4] | cn->mac[5]))
                return err_config(c->err, VMCORE_ECONFIG, tp, "all zeros");
        }
    }
    return 0;
}

/* "vsock": a virtio-vsock device mapped to host AF_UNIX sockets. */
static int parse_vsock(struct cx *c, const json_t *v, struct vmcore_config *cfg)
{
    static const char *const keys[] = { "cid", "uds_path", NULL };
    char *rel = NULL;
    int rc;
    if (!json_is_object(v))
        return type_error(c, "vsock", "an object", v);
    if ((rc = check_keys(c, v, "vsock", keys)))
        return rc;
    if (!json_object_get(v, "cid"))
        return err_config(c->err, VMCORE_ECONFIG, "vsock.cid", "missing (required)");
    if (!json_object_get(v, "uds_path"))
        return err_config(c->err, VMCORE_ECONFIG, "vsock.uds_path", "missing (required)");
    /* 0-2 are reserved (hypervisor, local, host); 2^32-1 is VMADDR_CID_ANY. */
    if ((rc = get_uint(c, v, "vsock", "cid", 3, UINT32_MAX - 1, &cfg->vsock.cid, NULL)))
        return rc;
    if ((rc = get_string(c, v, "vsock", "uds_path", &rel)))
        return rc;
    rc = resolve(c, "vsock.uds_path", rel, &cfg->vsock.uds_path);
    free(rel);
    if (rc)
        return rc;
    cfg->vsock.enabled = true;
    return 0;
}

/* "consoles": virtio-console devices (one port each). */
static int parse_consoles(struct cx *c, const json_t *arr, struct vmcore_config *cfg)
{
    static const char *const keys[] = { "output", NULL };
    if (!json_is_array(arr))
        return type_error(c, "consoles", "an array", arr);
    size_t n = json_array_size(arr);
    if (n > CONFIG_MAX_CONSOLES)
        return err_config(c->err, VMCORE_ELIMIT, "consoles", "%zu consoles, at most %d", n,
                          CONFIG_MAX_CONSOLES);
    cfg->consoles = calloc(n ? n : 1, sizeof *cfg->consoles);
    if (!cfg->consoles)
        return err_set(c->err, VMCORE_ENOMEM, "out of memory");
    cfg->nconsoles = n;
    for (size_t i = 0; i < n; i++) {
        char p[CONFIG_PATH_MAX], tp[CONFIG_PATH_MAX];
        const json_t *d = json_array_get(arr, i);
        int rc;
        snprintf(p, sizeof p, "consoles[%zu]", i);
        if (!json_is_object(d))
            return type_error(c, p, "an object", d);
        if ((rc = check_keys(c, d, p, keys)))
            return rc;
        if (!json_object_get(d, "output")) {
            join_path(tp, p, "output");
            return err_config(c->err, VMCORE_ECONFIG, tp, "missing (required)");
        }
        join_path(tp, p, "output");
        char *rel = NULL;
        if ((rc = get_string(c, d, p, "output", &rel)))
            return rc;
        rc = resolve(c, tp, rel, &cfg->consoles[i].output);
        free(rel);
        if (rc)
            return rc;
    }
    return 0;
}

/* Keys that belong to one family of backends, for a clear error when mixed up. */
static const char *const vm_only_keys[] = { "boot", "memory_mib", "vcpus", "emu", "disks",
                                            "rng", "nics", "vsock", "consoles", NULL };
static const char *const container_only_keys[] = { "rootfs", "rootfs_readonly", "hostname",
                                                   "process", "limits", "network", "mounts",
                                                   "userns", "detach", "sysctl", NULL };

static int parse_root(struct cx *c, const json_t *root, struct vmcore_config *cfg)
{
    static const char *const keys[] = { "name", "backend", "memory_mib", "vcpus", "boot", "emu",
                                        "rootfs", "rootfs_readonly", "hostname", "process",
                                        "limits", "network", "mounts", "userns", "disks", "rng",
                                        "nics", "vsock", "consoles", "detach", "sysctl", NULL };
    int rc, v;
    const json_t *obj;

    if (!json_is_object(root))
        return err_config(c->err, VMCORE_ECONFIG, "$", "the configuration must be an object, got %s",
                          json_type_name(root));
    if ((rc = check_keys(c, root, "", keys)))
        return rc;

    if ((rc = get_string(c, root, "", "name", &cfg->name)))
        return rc;
    if ((rc = check_name(c, "name", cfg->name, 64, true)))
        return rc;
    v = cfg->backend;
    if ((rc = get_enum(c, root, "", "backend", backend_names, &v)))
        return rc;
    cfg->backend = (enum config_backend)v;

    bool container = cfg->backend == CONFIG_BACKEND_CONTAINER;
    for (const char *const *k = container ? vm_only_keys : container_only_keys; *k; k++)
        if (json_object_get(root, *k))
            return err_config(c->err, VMCORE_ECONFIG, *k, "not valid for backend \"%s\"%s",
                              config_backend_name(cfg->backend),
                              container ? " (virtual machines only)" : " (containers only)");

    if (!container) {
        uint64_t host = host_memory_mib();
        bool present;
        if ((rc = get_uint(c, root, "", "memory_mib", 1, UINT64_MAX >> 21, &cfg->memory_mib,
                           &present)))
            return rc;
        if (cfg->memory_mib > host)
            return err_config(c->err, VMCORE_ELIMIT, "memory_mib",
                              "%llu MiB exceeds the host's %llu MiB",
                              (unsigned long long)cfg->memory_mib, (unsigned long long)host);
        uint64_t n = cfg->vcpus;
        if ((rc = get_uint(c, root, "", "vcpus", 1, CONFIG_MAX_VCPUS, &n, NULL)))
            return rc;
        cfg->vcpus = (unsigned)n;
        if ((rc = get_object(c, root, "", "emu", &obj)))
            return rc;
        if (obj && (rc = parse_emu(c, obj, cfg)))
            return rc;
        if ((rc = get_object(c, root, "", "boot", &obj)))
            return rc;
        if (!obj)
            return err_config(c->err, VMCORE_ECONFIG, "boot", "missing (required for backend \"%s\")",
                              config_backend_name(cfg->backend));
        if ((rc = parse_boot(c, obj, cfg)))
            return rc;
        if (json_object_get(root, "disks") &&
            (rc = parse_disks(c, json_object_get(root, "disks"), cfg)))
            return rc;
        if (json_object_get(root, "nics") &&
            (rc = parse_nics(c, json_object_get(root, "nics"), cfg)))
            return rc;
        if (json_object_get(root, "vsock") &&
            (rc = parse_vsock(c, json_object_get(root, "vsock"), cfg)))
            return rc;
        if (json_object_get(root, "consoles") &&
            (rc = parse_consoles(c, json_object_get(root, "consoles"), cfg)))
            return rc;
        return get_bool(c, root, "", "rng", &cfg->rng);
    }

    if (!json_object_get(root, "rootfs"))
        return err_config(c->err, VMCORE_ECONFIG, "rootfs", "missing (required for containers)");
    if ((rc = get_existing_path(c, root, "", "rootfs", true, &cfg->rootfs)))
        return rc;
    if ((rc = get_bool(c, root, "", "rootfs_readonly", &cfg->rootfs_readonly)))
        return rc;
    if ((rc = get_string(c, root, "", "hostname", &cfg->hostname)))
        return rc;
    if (cfg->hostname && (rc = check_name(c, "hostname", cfg->hostname, 64, true)))
        return rc;
    if ((rc = get_object(c, root, "", "process", &obj)))
        return rc;
    if (!obj)
        return err_config(c->err, VMCORE_ECONFIG, "process", "missing (required for containers)");
    if ((rc = parse_process(c, obj, cfg)))
        return rc;
    if ((rc = get_object(c, root, "", "limits", &obj)))
        return rc;
    if (obj && (rc = parse_limits(c, obj, cfg)))
        return rc;
    if ((rc = get_object(c, root, "", "network", &obj)))
        return rc;
    if (obj && (rc = parse_network(c, obj, cfg)))
        return rc;
    if (json_object_get(root, "mounts") &&
        (rc = parse_mounts(c, json_object_get(root, "mounts"), cfg)))
        return rc;
    if ((rc = get_object(c, root, "", "userns", &obj)))
        return rc;
    if (obj && (rc = parse_userns(c, obj, cfg)))
        return rc;
    if (json_object_get(root, "sysctl") &&
        (rc = parse_sysctl(c, json_object_get(root, "sysctl"), cfg)))
        return rc;
    if ((rc = get_object(c, root, "", "detach", &obj)))
        return rc;
    if (obj && (rc = parse_detach(c, obj, cfg)))
        return rc;
    return 0;
}

int config_parse(struct vmcore_config **out, const json_t *root, const char *base_dir,
                 struct vmcore_err *err)
{
    struct cx c = { .base_dir = base_dir, .err = err };
    struct vmcore_config *cfg = calloc(1, sizeof *cfg);
    *out = NULL;
    if (!cfg)
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    cfg->name = strdup("vmcore");
    cfg->process.cwd = strdup("/");
    cfg->memory_mib = 64;
    cfg->vcpus = 1;
    cfg->emu.jit = true;
    cfg->boot.mode = BOOT_MODE_PROTECTED;
    if (base_dir)
        cfg->base_dir = strdup(base_dir);
    else
        cfg->base_dir = getcwd(NULL, 0);
    if (!cfg->name || !cfg->process.cwd || !cfg->base_dir) {
        config_free(cfg);
        return err_set(err, VMCORE_ENOMEM, "out of memory");
    }
    int rc = parse_root(&c, root, cfg);
    if (rc) {
        config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

static void free_list(char **list)
{
    if (!list)
        return;
    for (char **p = list; *p; p++)
        free(*p);
    free(list);
}

void config_free(struct vmcore_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->name);
    free(cfg->base_dir);
    free(cfg->boot.kernel);
    free(cfg->boot.initrd);
    free(cfg->boot.cmdline);
    free(cfg->rootfs);
    free(cfg->hostname);
    free_list(cfg->process.args);
    free_list(cfg->process.env);
    free(cfg->process.cwd);
    free(cfg->network.host_ifname);
    free(cfg->network.address);
    free(cfg->network.host_address);
    free(cfg->network.ports);
    free(cfg->network.bridge.name);
    free(cfg->network.bridge.address);
    for (size_t i = 0; i < cfg->nmounts; i++) {
        free(cfg->mounts[i].source);
        free(cfg->mounts[i].target);
        free(cfg->mounts[i].data);
    }
    free(cfg->process.rlimits);
    for (size_t i = 0; i < cfg->nsysctls; i++) {
        free(cfg->sysctls[i].key);
        free(cfg->sysctls[i].path);
        free(cfg->sysctls[i].value);
    }
    free(cfg->sysctls);
    free(cfg->detach.hold);
    free(cfg->detach.cgroup);
    free(cfg->mounts);
    for (size_t i = 0; i < cfg->ndisks; i++) {
        free(cfg->disks[i].path);
        free(cfg->disks[i].serial);
    }
    free(cfg->disks);
    for (size_t i = 0; i < cfg->nnics; i++) {
        free(cfg->nics[i].ifname);
        free(cfg->nics[i].ports);
        free(cfg->nics[i].bridge.name);
        free(cfg->nics[i].bridge.address);
    }
    free(cfg->nics);
    free(cfg->vsock.uds_path);
    for (size_t i = 0; i < cfg->nconsoles; i++)
        free(cfg->consoles[i].output);
    free(cfg->consoles);
    free(cfg->userns.uid_map);
    free(cfg->userns.gid_map);
    free(cfg);
}
