/* A bundle's config.json (runtime-spec 1.1) as libvmcore's container configuration
 * (doc/config.md). The library makes the container; this file only translates, and refuses
 * every field it cannot honour by name, so that nothing a caller asked for is dropped. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci.h"

const char *const oci_masked_paths[] = {
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap", NULL,
};
const char *const oci_readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

/* The mounts the library always makes itself (rootfs.c), by destination and type. */
static const struct { const char *dest, *type; } builtin_mounts[] = {
    { "/proc", "proc" }, { "/sys", "sysfs" }, { "/dev", "tmpfs" }, { "/dev/pts", "devpts" },
    { "/dev/shm", "tmpfs" },
};

struct mx {
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 3, 4))) static json_t *fail(struct mx *m, const char *field,
                                                          const char *fmt, ...)
{
    va_list ap;
    size_t n = (size_t)snprintf(m->err, m->errlen, "config.json: %s: ", field);
    va_start(ap, fmt);
    if (n < m->errlen)
        vsnprintf(m->err + n, m->errlen - n, fmt, ap);
    va_end(ap);
    return NULL;
}

static bool in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

/* Every key of @obj must be in @known; the first that is not is reported as unsupported. */
static bool known_keys(struct mx *m, const json_t *obj, const char *path,
                       const char *const *known)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        if (in_list(known, key))
            continue;
        char f[512];
        snprintf(f, sizeof f, "%s%s%s", path, *path ? "." : "", key);
        fail(m, f, "not supported by vmcore-oci yet");
        return false;
    }
    return true;
}

/* An optional key that we accept only empty (a string, array or object without content). */
static bool empty_or_absent(struct mx *m, const json_t *obj, const char *path, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v)) ||
        (json_is_array(v) && json_array_size(v) == 0) || (json_is_object(v) && json_object_size(v) == 0))
        return true;
    char f[512];
    snprintf(f, sizeof f, "%s.%s", path, key);
    fail(m, f, "not supported by vmcore-oci yet");
    return false;
}

static const json_t *get_type(struct mx *m, const json_t *obj, const char *path, const char *key,
                              json_type t, bool required)
{
    static const char *const names[] = { "an object", "an array", "a string", "an integer",
                                         "a number", "a boolean", "a boolean", "null" };
    char f[512];
    snprintf(f, sizeof f, "%s%s%s", path, *path ? "." : "", key);
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            fail(m, f, "missing (required)");
        return NULL;
    }
    bool ok = json_typeof(v) == t || (t == JSON_TRUE && json_is_boolean(v)) ||
              (t == JSON_REAL && json_is_number(v));
    if (!ok) {
        fail(m, f, "must be %s", names[t]);
        return NULL;
    }
    return v;
}

static bool strings_equal_sets(const json_t *a, const json_t *b)
{
    if (json_array_size(a) != json_array_size(b))
        return false;
    size_t i, j;
    json_t *x, *y;
    json_array_foreach(a, i, x) {
        bool found = false;
        json_array_foreach(b, j, y)
            found = found || json_equal(x, y);
        if (!found)
            return false;
    }
    return true;
}

static bool map_caps(struct mx *m, const json_t *caps, bool root_user, json_t *proc)
{
    static const char *const keys[] = { "bounding", "effective", "permitted", "inheritable",
                                        "ambient", NULL };
    if (!json_is_object(caps)) {
        fail(m, "process.capabilities", "must be an object");
        return false;
    }
    if (!known_keys(m, caps, "process.capabilities", keys))
        return false;
    json_t *empty = json_array();
    const json_t *sets[5];
    for (int i = 0; i < 5; i++) {
        const json_t *v = json_object_get(caps, keys[i]);
        if (v && !json_is_array(v)) {
            char f[64];
            snprintf(f, sizeof f, "process.capabilities.%s", keys[i]);
            json_decref(empty);
            fail(m, f, "must be an array");
            return false;
        }
        sets[i] = v ? v : empty;
    }
    /* The library gives uid 0 one set as bounding, effective, permitted and inheritable,
     * and a process of another uid none. */
    const char *bad = NULL;
    if (!strings_equal_sets(sets[1], sets[0]))
        bad = "effective";
    else if (!strings_equal_sets(sets[2], sets[0]))
        bad = "permitted";
    else if (json_array_size(sets[3]) && !strings_equal_sets(sets[3], sets[0]))
        bad = "inheritable";
    else if (json_array_size(sets[4]) && !(root_user && strings_equal_sets(sets[4], sets[0])))
        bad = "ambient";
    else if (!root_user && json_array_size(sets[1]))
        bad = "effective";
    if (bad) {
        char f[64];
        snprintf(f, sizeof f, "process.capabilities.%s", bad);
        json_decref(empty);
        fail(m, f, "not supported by vmcore-oci yet: %s", root_user
             ? "the sets must be equal (bounding = effective = permitted; inheritable and "
               "ambient empty or the same)"
             : "a process whose uid is not 0 gets no capabilities");
        return false;
    }
    json_object_set_new(proc, "capabilities", json_deep_copy(sets[0]));
    json_decref(empty);
    return true;
}

static json_t *map_process(struct mx *m, const json_t *p, struct oci_extra *x)
{
    static const char *const keys[] = { "terminal", "consoleSize", "user", "args", "env", "cwd",
                                        "capabilities", "rlimits", "noNewPrivileges",
                                        "oomScoreAdj", "apparmorProfile", "selinuxLabel", NULL };
    if (!known_keys(m, p, "process", keys) || !empty_or_absent(m, p, "process", "apparmorProfile") ||
        !empty_or_absent(m, p, "process", "selinuxLabel"))
        return NULL;
    json_t *out = json_object();
    const json_t *v;
    if ((v = get_type(m, p, "process", "terminal", JSON_TRUE, false)))
        x->terminal = json_is_true(v);
    else if (json_object_get(p, "terminal"))
        goto bad;
    json_object_set_new(out, "terminal", json_boolean(x->terminal));
    if ((v = json_object_get(p, "consoleSize"))) {
        static const char *const ck[] = { "height", "width", NULL };
        const json_t *h, *w;
        if (!json_is_object(v)) {
            fail(m, "process.consoleSize", "must be an object");
            goto bad;
        }
        if (!known_keys(m, v, "process.consoleSize", ck) ||
            !(h = get_type(m, v, "process.consoleSize", "height", JSON_INTEGER, true)) ||
            !(w = get_type(m, v, "process.consoleSize", "width", JSON_INTEGER, true)))
            goto bad;
        if (json_integer_value(h) < 0 || json_integer_value(h) > 65535 ||
            json_integer_value(w) < 0 || json_integer_value(w) > 65535) {
            fail(m, "process.consoleSize", "height and width must be 0..65535");
            goto bad;
        }
        x->rows = (unsigned)json_integer_value(h);
        x->cols = (unsigned)json_integer_value(w);
    }
    const json_t *user = get_type(m, p, "process", "user", JSON_OBJECT, true);
    if (!user)
        goto bad;
    static const char *const uk[] = { "uid", "gid", "additionalGids", "umask", NULL };
    if (!known_keys(m, user, "process.user", uk) ||
        !empty_or_absent(m, user, "process.user", "additionalGids"))
        goto bad;
    if ((v = json_object_get(user, "umask"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 0777) {
            fail(m, "process.user.umask", "must be an integer in 0..0777");
            goto bad;
        }
        json_object_set_new(out, "umask", json_integer(json_integer_value(v)));
    }
    json_int_t uid = 0;
    for (int i = 0; i < 2; i++) {
        const char *k = i ? "gid" : "uid";
        if (!(v = get_type(m, user, "process.user", k, JSON_INTEGER, true)))
            goto bad;
        if (json_integer_value(v) < 0 || json_integer_value(v) > 4294967294LL) {
            char f[32];
            snprintf(f, sizeof f, "process.user.%s", k);
            fail(m, f, "out of range");
            goto bad;
        }
        if (!i)
            uid = json_integer_value(v);
        json_object_set_new(out, k, json_integer(json_integer_value(v)));
    }
    if (!(v = get_type(m, p, "process", "args", JSON_ARRAY, true)))
        goto bad;
    if (json_array_size(v) == 0) {
        fail(m, "process.args", "must not be empty");
        goto bad;
    }
    json_object_set_new(out, "args", json_deep_copy(v));
    if ((v = json_object_get(p, "env"))) {
        if (!json_is_array(v)) {
            fail(m, "process.env", "must be an array");
            goto bad;
        }
        json_object_set_new(out, "env", json_deep_copy(v));
    }
    if (!(v = get_type(m, p, "process", "cwd", JSON_STRING, true)))
        goto bad;
    if (json_string_value(v)[0] != '/') {
        fail(m, "process.cwd", "must be an absolute path");
        goto bad;
    }
    json_object_set_new(out, "cwd", json_deep_copy(v));
    if ((v = json_object_get(p, "capabilities"))) {
        if (!map_caps(m, v, uid == 0, out))
            goto bad;
    } else {
        json_object_set_new(out, "capabilities", json_array()); /* absent: none */
    }
    if ((v = json_object_get(p, "rlimits")))
        json_object_set_new(out, "rlimits", json_deep_copy(v)); /* the same schema */
    if ((v = json_object_get(p, "noNewPrivileges")) && !json_is_true(v)) {
        fail(m, "process.noNewPrivileges", json_is_boolean(v)
             ? "false is not supported by vmcore-oci (the library always sets no_new_privs)"
             : "must be a boolean");
        goto bad;
    }
    if ((v = json_object_get(p, "oomScoreAdj"))) {
        if (!json_is_integer(v) || json_integer_value(v) < -1000 || json_integer_value(v) > 1000) {
            fail(m, "process.oomScoreAdj", "must be an integer in -1000..1000");
            goto bad;
        }
        x->has_oom = true;
        x->oom_score_adj = (int)json_integer_value(v);
    }
    return out;
bad:
    json_decref(out);
    return NULL;
}

static bool bad_path(const char *s)
{
    if (s[0] != '/')
        return true;
    for (const char *p = s; (p = strstr(p, "..")); p += 2)
        if ((p == s || p[-1] == '/') && (p[2] == 0 || p[2] == '/'))
            return true;
    return false;
}

static json_t *map_mount(struct mx *m, const json_t *mt, size_t i, const char *bundle)
{
    static const char *const keys[] = { "destination", "type", "source", "options", NULL };
    char path[64], f[96];
    snprintf(path, sizeof path, "mounts[%zu]", i);
    if (!json_is_object(mt))
        return fail(m, path, "must be an object");
    if (!known_keys(m, mt, path, keys))
        return NULL;
    const json_t *d = get_type(m, mt, path, "destination", JSON_STRING, true);
    if (!d)
        return NULL;
    const char *dest = json_string_value(d);
    snprintf(f, sizeof f, "%s.destination", path);
    if (bad_path(dest))
        return fail(m, f, "\"%s\" must be an absolute path without \"..\" components", dest);
    const json_t *t = json_object_get(mt, "type"), *s = json_object_get(mt, "source");
    if ((t && !json_is_string(t)) || (s && !json_is_string(s))) {
        snprintf(f, sizeof f, "%s.%s", path, t && !json_is_string(t) ? "type" : "source");
        return fail(m, f, "must be a string");
    }
    const char *type = t ? json_string_value(t) : "";
    const json_t *opts = json_object_get(mt, "options");
    if (opts && !json_is_array(opts)) {
        snprintf(f, sizeof f, "%s.options", path);
        return fail(m, f, "must be an array");
    }
    bool bind = strcmp(type, "bind") == 0, ro = false, nosuid = false, nodev = false,
         noexec = false;
    char data[1024] = "";
    size_t k;
    json_t *o;
    json_array_foreach(opts, k, o) {
        const char *op = json_string_value(o);
        if (op && (strcmp(op, "bind") == 0 || strcmp(op, "rbind") == 0))
            bind = true;
    }
    for (size_t b = 0; !bind && b < sizeof builtin_mounts / sizeof builtin_mounts[0]; b++)
        if (strcmp(dest, builtin_mounts[b].dest) == 0) {
            /* (a bind mount there covers the library's mount: handled below) */
            if (strcmp(type, builtin_mounts[b].type) != 0) {
                snprintf(f, sizeof f, "%s.type", path);
                return fail(m, f, "%s is always the library's own %s mount; \"%s\" there is not "
                            "supported by vmcore-oci yet", dest, builtin_mounts[b].type, type);
            }
            return json_null(); /* the library makes it (see doc/oci.md) */
        }
    json_array_foreach(opts, k, o) {
        snprintf(f, sizeof f, "%s.options[%zu]", path, k);
        const char *op = json_string_value(o);
        if (!op)
            return fail(m, f, "must be a string");
        if (strcmp(op, "ro") == 0)
            ro = true;
        else if (strcmp(op, "nosuid") == 0)
            nosuid = true;
        else if (strcmp(op, "nodev") == 0)
            nodev = true;
        else if (strcmp(op, "noexec") == 0)
            noexec = true;
        else if (strcmp(op, "rw") == 0 || strcmp(op, "suid") == 0 || strcmp(op, "dev") == 0 ||
                 strcmp(op, "exec") == 0 || strcmp(op, "bind") == 0 || strcmp(op, "rbind") == 0 ||
                 strcmp(op, "private") == 0 || strcmp(op, "rprivate") == 0 ||
                 strcmp(op, "relatime") == 0)
            ; /* the defaults (bind mounts are always recursive and private; relatime is
                 the kernel's default for a new mount) */
        else if (strcmp(type, "tmpfs") == 0 && !bind &&
                 (strncmp(op, "mode=", 5) == 0 || strncmp(op, "size=", 5) == 0 ||
                  strncmp(op, "nr_inodes=", 10) == 0 || strncmp(op, "uid=", 4) == 0 ||
                  strncmp(op, "gid=", 4) == 0)) {
            size_t n = strlen(data);
            if (n + strlen(op) + 2 > sizeof data)
                return fail(m, f, "too long");
            snprintf(data + n, sizeof data - n, "%s%s", n ? "," : "", op);
        } else
            return fail(m, f, "\"%s\" is not supported by vmcore-oci yet", op);
    }
    json_t *out = json_object();
    json_object_set_new(out, "target", json_string(dest));
    if (bind) {
        if (!s || !*json_string_value(s)) {
            json_decref(out);
            snprintf(f, sizeof f, "%s.source", path);
            return fail(m, f, "missing (required for a bind mount)");
        }
        const char *src = json_string_value(s);
        char abs[8192];
        snprintf(abs, sizeof abs, "%s%s%s", src[0] == '/' ? "" : bundle, src[0] == '/' ? "" : "/",
                 src);
        json_object_set_new(out, "type", json_string("bind"));
        json_object_set_new(out, "source", json_string(abs));
    } else if (strcmp(type, "tmpfs") == 0 || strcmp(type, "mqueue") == 0 ||
               strcmp(type, "cgroup") == 0) {
        json_object_set_new(out, "type", json_string(type));
        if (*data)
            json_object_set_new(out, "data", json_string(data));
    } else {
        json_decref(out);
        snprintf(f, sizeof f, "%s.type", path);
        return fail(m, f, "\"%s\" is not supported by vmcore-oci yet", type);
    }
    json_object_set_new(out, "readonly", json_boolean(ro));
    json_object_set_new(out, "nosuid", json_boolean(nosuid));
    json_object_set_new(out, "nodev", json_boolean(nodev));
    json_object_set_new(out, "noexec", json_boolean(noexec));
    return out;
}

static json_t *map_idmap(struct mx *m, const json_t *arr, const char *path)
{
    static const char *const keys[] = { "containerID", "hostID", "size", NULL };
    if (!json_is_array(arr))
        return fail(m, path, "must be an array");
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        char p[64];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        const json_t *c, *h, *s;
        if (!json_is_object(e) || !known_keys(m, e, p, keys) ||
            !(c = get_type(m, e, p, "containerID", JSON_INTEGER, true)) ||
            !(h = get_type(m, e, p, "hostID", JSON_INTEGER, true)) ||
            !(s = get_type(m, e, p, "size", JSON_INTEGER, true))) {
            if (!json_is_object(e))
                fail(m, p, "must be an object");
            json_decref(out);
            return NULL;
        }
        json_t *r = json_object();
        json_object_set_new(r, "inside", json_integer(json_integer_value(c)));
        json_object_set_new(r, "outside", json_integer(json_integer_value(h)));
        json_object_set_new(r, "count", json_integer(json_integer_value(s)));
        json_array_append_new(out, r);
    }
    return out;
}

static bool map_resources(struct mx *m, const json_t *r, json_t *limits)
{
    static const char *const keys[] = { "memory", "pids", "cpu", "devices", NULL };
    if (!json_is_object(r)) {
        fail(m, "linux.resources", "must be an object");
        return false;
    }
    if (!known_keys(m, r, "linux.resources", keys))
        return false;
    const json_t *v, *o;
    if ((o = json_object_get(r, "memory"))) {
        static const char *const mk[] = { "limit", "swap", NULL };
        if (!json_is_object(o)) {
            fail(m, "linux.resources.memory", "must be an object");
            return false;
        }
        if (!known_keys(m, o, "linux.resources.memory", mk))
            return false;
        json_int_t limit = -1;
        if ((v = json_object_get(o, "limit"))) {
            if (!json_is_integer(v)) {
                fail(m, "linux.resources.memory.limit", "must be an integer");
                return false;
            }
            limit = json_integer_value(v);
            if (limit > 0)
                json_object_set_new(limits, "memory_bytes", json_integer(limit));
        }
        /* memory + swap: the library's hard limit allows no swap, i.e. swap = limit. */
        if ((v = json_object_get(o, "swap")) &&
            !(json_is_integer(v) && limit > 0 && json_integer_value(v) == limit)) {
            fail(m, "linux.resources.memory.swap", "only equal to memory.limit (no swap) is "
                 "supported by vmcore-oci yet");
            return false;
        }
    }
    if ((o = json_object_get(r, "pids"))) {
        static const char *const pk[] = { "limit", NULL };
        if (!json_is_object(o) || !known_keys(m, o, "linux.resources.pids", pk) ||
            !(v = get_type(m, o, "linux.resources.pids", "limit", JSON_INTEGER, true)))
            return json_is_object(o) ? false : !fail(m, "linux.resources.pids", "must be an object");
        if (json_integer_value(v) > 0)
            json_object_set_new(limits, "pids", json_integer(json_integer_value(v)));
    }
    if ((o = json_object_get(r, "cpu"))) {
        static const char *const ck[] = { "quota", "period", NULL };
        if (!json_is_object(o)) {
            fail(m, "linux.resources.cpu", "must be an object");
            return false;
        }
        if (!known_keys(m, o, "linux.resources.cpu", ck))
            return false;
        const json_t *q = json_object_get(o, "quota"), *p = json_object_get(o, "period");
        if ((q && !json_is_integer(q)) || (p && !json_is_integer(p))) {
            fail(m, "linux.resources.cpu", "quota and period must be integers");
            return false;
        }
        json_int_t period = p ? json_integer_value(p) : 100000;
        if (period <= 0) {
            fail(m, "linux.resources.cpu.period", "must be positive");
            return false;
        }
        if (q && json_integer_value(q) > 0)
            json_object_set_new(limits, "cpus", json_real((double)json_integer_value(q) / (double)period));
    }
    if ((o = json_object_get(r, "devices"))) {
        /* Only "deny everything", after which the library's default allow-list applies. */
        const json_t *e = json_array_get(o, 0);
        const json_t *acc = e ? json_object_get(e, "access") : NULL;
        if (!json_is_array(o) || json_array_size(o) > 1 ||
            (e && (!json_is_false(json_object_get(e, "allow")) ||
                   (acc && strcmp(json_string_value(acc) ? json_string_value(acc) : "", "rwm")) ||
                   json_object_get(e, "major") || json_object_get(e, "minor") ||
                   (json_object_get(e, "type") &&
                    strcmp(json_string_value(json_object_get(e, "type")) ?: "", "a"))))) {
            fail(m, "linux.resources.devices", "only [{\"allow\": false, \"access\": \"rwm\"}] "
                 "(the library's default device rules) is supported by vmcore-oci yet");
            return false;
        }
    }
    return true;
}

static bool subset(struct mx *m, const json_t *arr, const char *path, const char *const *lib)
{
    if (!json_is_array(arr)) {
        fail(m, path, "must be an array");
        return false;
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        char f[64];
        snprintf(f, sizeof f, "%s[%zu]", path, i);
        if (!json_is_string(v) || !in_list(lib, json_string_value(v))) {
            fail(m, f, "%s%s%s is not supported by vmcore-oci yet (the library applies its own "
                 "fixed list: see doc/oci.md)", json_is_string(v) ? "\"" : "",
                 json_is_string(v) ? json_string_value(v) : "this entry",
                 json_is_string(v) ? "\"" : "");
            return false;
        }
    }
    return true;
}

static bool map_linux(struct mx *m, const json_t *l, json_t *cfg)
{
    static const char *const keys[] = { "namespaces", "uidMappings", "gidMappings", "resources",
                                        "maskedPaths", "readonlyPaths", "rootfsPropagation",
                                        "sysctl", "devices", "mountLabel", "cgroupsPath", NULL };
    if (!known_keys(m, l, "linux", keys) || !empty_or_absent(m, l, "linux", "devices") || !empty_or_absent(m, l, "linux", "mountLabel"))
        return false;
    const json_t *ns = get_type(m, l, "linux", "namespaces", JSON_ARRAY, true);
    if (!ns)
        return false;
    bool have[7] = { false };
    static const char *const types[] = { "pid", "network", "ipc", "uts", "mount", "cgroup",
                                         "user", NULL };
    size_t i;
    json_t *e;
    json_array_foreach(ns, i, e) {
        char p[64];
        snprintf(p, sizeof p, "linux.namespaces[%zu]", i);
        static const char *const nk[] = { "type", "path", NULL };
        const json_t *t;
        if (!json_is_object(e)) {
            fail(m, p, "must be an object");
            return false;
        }
        if (!known_keys(m, e, p, nk) || !(t = get_type(m, e, p, "type", JSON_STRING, true)))
            return false;
        int k = -1;
        for (int j = 0; types[j]; j++)
            if (strcmp(types[j], json_string_value(t)) == 0)
                k = j;
        if (k < 0) {
            strcat(p, ".type");
            fail(m, p, "\"%s\" is not supported by vmcore-oci yet", json_string_value(t));
            return false;
        }
        if (json_object_get(e, "path")) {
            strcat(p, ".path");
            fail(m, p, "joining an existing namespace is not supported by vmcore-oci yet");
            return false;
        }
        have[k] = true;
    }
    for (int j = 0; j < 5; j++)
        if (j != 1 && !have[j]) {
            fail(m, "linux.namespaces", "sharing the host's %s namespace is not supported by "
                 "vmcore-oci yet (list {\"type\": \"%s\"})", types[j], types[j]);
            return false;
        }
    json_t *net = json_object();
    json_object_set_new(net, "mode", json_string(have[1] ? "none" : "host"));
    json_object_set_new(cfg, "network", net);
    const json_t *um = json_object_get(l, "uidMappings"), *gm = json_object_get(l, "gidMappings");
    if ((um || gm) && !have[6]) {
        fail(m, um ? "linux.uidMappings" : "linux.gidMappings", "needs a user namespace in "
             "linux.namespaces");
        return false;
    }
    if (have[6]) {
        json_t *u = json_object();
        json_object_set_new(u, "enabled", json_true());
        json_object_set_new(cfg, "userns", u);
        json_t *map;
        if (um) {
            if (!(map = map_idmap(m, um, "linux.uidMappings")))
                return false;
            json_object_set_new(u, "uid_map", map);
        }
        if (gm) {
            if (!(map = map_idmap(m, gm, "linux.gidMappings")))
                return false;
            json_object_set_new(u, "gid_map", map);
        }
    }
    const json_t *v;
    if ((v = json_object_get(l, "sysctl"))) {
        if (!json_is_object(v)) {
            fail(m, "linux.sysctl", "must be an object");
            return false;
        }
        json_object_set_new(cfg, "sysctl", json_deep_copy(v)); /* the same schema */
    }
    if ((v = json_object_get(l, "resources"))) {
        json_t *limits = json_object();
        json_object_set_new(cfg, "limits", limits);
        if (!map_resources(m, v, limits))
            return false;
        if (json_object_size(limits) == 0)
            json_object_del(cfg, "limits");
    }
    if ((v = json_object_get(l, "maskedPaths")) && !subset(m, v, "linux.maskedPaths", oci_masked_paths))
        return false;
    if ((v = json_object_get(l, "readonlyPaths")) &&
        !subset(m, v, "linux.readonlyPaths", oci_readonly_paths))
        return false;
    if ((v = json_object_get(l, "rootfsPropagation")) &&
        !(json_is_string(v) && (strcmp(json_string_value(v), "private") == 0 ||
                                strcmp(json_string_value(v), "rprivate") == 0))) {
        fail(m, "linux.rootfsPropagation", "only \"private\" and \"rprivate\" are supported by "
             "vmcore-oci yet");
        return false;
    }
    return true;
}

json_t *oci_config_map(const json_t *oci, const char *bundle, const char *id, const char *fifo,
                       const char *cgroup, struct oci_extra *x, char *err, size_t errlen)
{
    static const char *const keys[] = { "ociVersion", "process", "root", "hostname", "mounts",
                                        "linux", "annotations", "hooks", "domainname", NULL };
    struct mx mx = { err, errlen }, *m = &mx;
    memset(x, 0, sizeof *x);
    if (!json_is_object(oci))
        return fail(m, "$", "must be a JSON object");
    if (!known_keys(m, oci, "", keys) || !empty_or_absent(m, oci, "", "domainname"))
        return NULL;
    const json_t *v = get_type(m, oci, "", "ociVersion", JSON_STRING, true);
    if (!v)
        return NULL;
    const char *ver = json_string_value(v);
    if (strncmp(ver, "1.", 2) != 0)
        return fail(m, "ociVersion", "\"%s\" is not supported (vmcore-oci implements 1.x, up to "
                    OCI_VERSION ")", ver);
    if ((v = json_object_get(oci, "hooks"))) {
        if (!json_is_object(v))
            return fail(m, "hooks", "must be an object");
        const char *key;
        json_t *h;
        json_object_foreach((json_t *)v, key, h)
            if (!json_is_array(h) || json_array_size(h)) {
                char f[96];
                snprintf(f, sizeof f, "hooks.%s", key);
                return fail(m, f, "not supported by vmcore-oci yet");
            }
    }
    json_t *cfg = json_object();
    char name[65];
    size_t n = 0;
    for (const char *c = id; *c && n < 64; c++)
        name[n++] = (char)((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                                   (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.'
                               ? *c : '-');
    name[n] = 0;
    if (name[0] == '.' || name[0] == '-' || name[0] == '_')
        name[0] = 'c';
    json_object_set_new(cfg, "name", json_string(name));
    json_object_set_new(cfg, "backend", json_string("container"));
    const json_t *root = get_type(m, oci, "", "root", JSON_OBJECT, true);
    if (!root)
        goto bad;
    static const char *const rk[] = { "path", "readonly", NULL };
    if (!known_keys(m, root, "root", rk) || !(v = get_type(m, root, "root", "path", JSON_STRING, true)))
        goto bad;
    const char *rp = json_string_value(v);
    snprintf(x->rootfs, sizeof x->rootfs, "%s%s%s", rp[0] == '/' ? "" : bundle,
             rp[0] == '/' ? "" : "/", rp);
    json_object_set_new(cfg, "rootfs", json_string(x->rootfs));
    if ((v = json_object_get(root, "readonly"))) {
        if (!json_is_boolean(v)) {
            fail(m, "root.readonly", "must be a boolean");
            goto bad;
        }
        json_object_set_new(cfg, "rootfs_readonly", json_boolean(json_is_true(v)));
    }
    if ((v = json_object_get(oci, "hostname"))) {
        if (!json_is_string(v)) {
            fail(m, "hostname", "must be a string");
            goto bad;
        }
        if (*json_string_value(v))
            json_object_set_new(cfg, "hostname", json_deep_copy(v));
    }
    const json_t *p = get_type(m, oci, "", "process", JSON_OBJECT, true);
    json_t *proc = p ? map_process(m, p, x) : NULL;
    if (!proc)
        goto bad;
    json_object_set_new(cfg, "process", proc);
    const json_t *mounts = json_object_get(oci, "mounts");
    if (mounts) {
        if (!json_is_array(mounts)) {
            fail(m, "mounts", "must be an array");
            goto bad;
        }
        json_t *out = json_array();
        json_object_set_new(cfg, "mounts", out);
        size_t i;
        json_t *mt;
        json_array_foreach(mounts, i, mt) {
            json_t *lm = map_mount(m, mt, i, bundle);
            if (!lm)
                goto bad;
            if (json_is_null(lm))
                continue;
            json_array_append_new(out, lm);
        }
    }
    const json_t *l = get_type(m, oci, "", "linux", JSON_OBJECT, true);
    if (!l || !map_linux(m, l, cfg))
        goto bad;
    json_t *a = json_object_get(oci, "annotations");
    if (a && !json_is_object(a)) {
        fail(m, "annotations", "must be an object");
        goto bad;
    }
    x->annotations = a ? json_deep_copy(a) : json_object();
    json_t *det = json_object();
    if (fifo)
        json_object_set_new(det, "hold", json_string(fifo));
    const json_t *cp = json_object_get(l, "cgroupsPath");
    if (cp && (!json_is_string(cp) || strchr(json_string_value(cp), ':'))) {
        fail(m, "linux.cgroupsPath", json_is_string(cp)
             ? "\"%s\": systemd's slice:prefix:name form is not supported (cgroupfs paths only)"
             : "must be a string", json_string_value(cp));
        json_decref(det);
        goto bad;
    }
    json_object_set_new(det, "cgroup", json_string(cp && *json_string_value(cp)
                                                       ? json_string_value(cp) : cgroup));
    json_object_set_new(cfg, "detach", det);
    return cfg;
bad:
    json_decref(cfg);
    return NULL;
}

json_t *oci_config_default(void)
{
    const char *caps = "[\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"]";
    char text[4096];
    snprintf(text, sizeof text,
        "{\"ociVersion\": \"" OCI_VERSION "\","
        " \"process\": {\"terminal\": false, \"user\": {\"uid\": 0, \"gid\": 0},"
        "  \"args\": [\"sh\"],"
        "  \"env\": [\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\", \"TERM=xterm\"],"
        "  \"cwd\": \"/\","
        "  \"capabilities\": {\"bounding\": %s, \"effective\": %s, \"permitted\": %s, \"ambient\": %s},"
        "  \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024}],"
        "  \"noNewPrivileges\": true},"
        " \"root\": {\"path\": \"rootfs\", \"readonly\": true},"
        " \"hostname\": \"vmcore\","
        " \"mounts\": ["
        "  {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},"
        "  {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\"},"
        "  {\"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\"},"
        "  {\"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\"},"
        "  {\"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": \"mqueue\","
        "   \"options\": [\"nosuid\", \"noexec\", \"nodev\"]},"
        "  {\"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\"}],"
        " \"linux\": {\"resources\": {\"devices\": [{\"allow\": false, \"access\": \"rwm\"}]},"
        "  \"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"network\"}, {\"type\": \"ipc\"},"
        "   {\"type\": \"uts\"}, {\"type\": \"mount\"}, {\"type\": \"cgroup\"}]}}",
        caps, caps, caps, caps);
    json_t *d = json_loads(text, 0, NULL);
    json_t *lin = json_object_get(d, "linux"), *mp = json_array(), *rp = json_array();
    for (int i = 0; oci_masked_paths[i]; i++)
        json_array_append_new(mp, json_string(oci_masked_paths[i]));
    for (int i = 0; oci_readonly_paths[i]; i++)
        json_array_append_new(rp, json_string(oci_readonly_paths[i]));
    json_object_set_new(lin, "maskedPaths", mp);
    json_object_set_new(lin, "readonlyPaths", rp);
    return d;
}
