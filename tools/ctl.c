/* The toolstack's shared pieces: the control protocol's parser and framing, the state
 * directory, and the blocking client side (see ctl.h, doc/control.md). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vmcore/vmcore.h"

/* --- requests ---------------------------------------------------------------------------- */

void ctl_request_free(struct ctl_request *req)
{
    if (req->root)
        json_decref(req->root);
    memset(req, 0, sizeof *req);
}

int ctl_parse_request(const char *line, size_t len, struct ctl_request *req, char *err,
                      size_t errlen)
{
    memset(req, 0, sizeof *req);
    json_error_t jerr;
    /* JSON_DISABLE_EOF_CHECK is not used: trailing garbage is an error too. */
    req->root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req->root) {
        snprintf(err, errlen, "request: column %d: %s", jerr.column, jerr.text);
        return VMCORE_EPARSE;
    }
    if (!json_is_object(req->root)) {
        snprintf(err, errlen, "request: expected an object");
        return VMCORE_EINVAL;
    }
    json_t *id = json_object_get(req->root, "id");
    if (id && (json_is_integer(id) || json_is_string(id)))
        req->id = id;
    const char *key;
    json_t *v;
    json_object_foreach(req->root, key, v) {
        if (strcmp(key, "id") && strcmp(key, "method") && strcmp(key, "params")) {
            snprintf(err, errlen, "request: unknown key '%.64s'", key);
            return VMCORE_EINVAL;
        }
    }
    if (id && !req->id) {
        snprintf(err, errlen, "id: expected an integer or a string");
        return VMCORE_EINVAL;
    }
    json_t *m = json_object_get(req->root, "method");
    if (!m) {
        snprintf(err, errlen, "method: missing");
        return VMCORE_EINVAL;
    }
    if (!json_is_string(m) || !json_string_length(m)) {
        snprintf(err, errlen, "method: expected a non-empty string");
        return VMCORE_EINVAL;
    }
    req->method = json_string_value(m);
    if (strlen(req->method) != json_string_length(m)) {
        snprintf(err, errlen, "method: contains a NUL character");
        return VMCORE_EINVAL;
    }
    json_t *p = json_object_get(req->root, "params");
    if (p && !json_is_object(p)) {
        snprintf(err, errlen, "params: expected an object");
        return VMCORE_EINVAL;
    }
    if (!p) {
        p = json_object();
        if (!p || json_object_set_new(req->root, "params", p) != 0) {
            snprintf(err, errlen, "request: out of memory");
            return VMCORE_ENOMEM;
        }
    }
    req->params = p;
    return 0;
}

int ctl_param_bool(const struct ctl_request *req, const char *name, bool *out, char *err,
                   size_t errlen)
{
    json_t *v = json_object_get(req->params, name);
    if (!v)
        return 0;
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "params.%s: expected true or false", name);
        return VMCORE_EINVAL;
    }
    *out = json_is_true(v);
    return 0;
}

int ctl_param_uint(const struct ctl_request *req, const char *name, uint64_t max,
                   uint64_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(req->params, name);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) > max) {
        snprintf(err, errlen, "params.%s: expected an integer from 0 to %llu", name,
                 (unsigned long long)max);
        return VMCORE_EINVAL;
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* --- framing ----------------------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *ctl_base64(const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        out[j++] = b64[v >> 18];
        out[j++] = b64[(v >> 12) & 63];
        out[j++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        out[j++] = i + 2 < len ? b64[v & 63] : '=';
    }
    out[j] = 0;
    return out;
}

long ctl_unbase64(const char *in, unsigned char *out)
{
    size_t n = strlen(in);
    if (n % 4)
        return -1;
    long j = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            const char *c = in[i + k] == '=' ? NULL : strchr(b64, in[i + k]);
            if (in[i + k] == 0 || (!c && in[i + k] != '='))
                return -1;
            if (!c && (i + 4 < n || k < 2 || (k == 2 && in[i + 3] != '=')))
                return -1;
            v[k] = c ? (int)(c - b64) : -1;
        }
        out[j++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        if (v[2] >= 0)
            out[j++] = (unsigned char)(v[1] << 4 | v[2] >> 2);
        if (v[3] >= 0)
            out[j++] = (unsigned char)(v[2] << 6 | v[3]);
    }
    return j;
}

char *ctl_line(json_t *obj, size_t *len)
{
    if (!obj)
        return NULL;
    char *s = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(obj);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = 0;
    *len = n + 1;
    return line;
}

/* --- the state directory ----------------------------------------------------------------- */

bool ctl_valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CTL_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
            return false;
    }
    return true;
}

int ctl_root(const char *opt, char *out, size_t size, char *err, size_t errlen)
{
    const char *src = opt ? opt : getenv("VMCORE_ROOT");
    int n;
    if (src && *src) {
        n = snprintf(out, size, "%s", src);
    } else if (geteuid() == 0) {
        n = snprintf(out, size, "/run/vmcore");
    } else {
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        if (!xdg || xdg[0] != '/') {
            snprintf(err, errlen, "XDG_RUNTIME_DIR is not set: give a state directory with "
                                  "--root DIR (or VMCORE_ROOT)");
            return -1;
        }
        n = snprintf(out, size, "%s/vmcore", xdg);
    }
    if (n < 0 || (size_t)n >= size) {
        snprintf(err, errlen, "state directory path too long");
        return -1;
    }
    while (n > 1 && out[n - 1] == '/')
        out[--n] = 0;
    return 0;
}

int ctl_path(char *out, size_t size, const char *root, const char *name, const char *file)
{
    int n = file ? snprintf(out, size, "%s/%s/%s", root, name, file)
                 : snprintf(out, size, "%s/%s", root, name);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

int ctl_lock_held(const char *root, const char *name)
{
    char p[PATH_MAX];
    if (ctl_path(p, sizeof p, root, name, CTL_FILE_LOCK) < 0)
        return -1;
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    int held = 0;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0)
        held = errno == EWOULDBLOCK ? 1 : -1;
    close(fd); /* releases the lock we may just have taken */
    return held;
}

int ctl_remove_dir(const char *root, const char *name)
{
    static const char *const files[] = { CTL_FILE_SOCKET, CTL_FILE_PID, CTL_FILE_CONFIG,
                                         CTL_FILE_META, CTL_FILE_CONSOLE, CTL_FILE_CONSOLE_OLD,
                                         CTL_FILE_STATE, CTL_FILE_MONITOR_LOG, CTL_FILE_LOCK };
    char p[PATH_MAX];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        for (int tmp = 0; tmp < 2; tmp++) {
            if (ctl_path(p, sizeof p, root, name, files[i]) < 0)
                return -1;
            if (tmp)
                strncat(p, ".tmp", sizeof p - strlen(p) - 1);
            unlink(p);
        }
    }
    if (ctl_path(p, sizeof p, root, name, NULL) < 0)
        return -1;
    return rmdir(p);
}

char *ctl_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap >= (1u << 20)) {
                free(buf);
                buf = NULL;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            buf = NULL;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (buf) {
        buf[n] = 0;
        if (len)
            *len = n;
    }
    return buf;
}

int ctl_write_file(const char *path, const char *data, size_t len)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)w;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* --- the client side --------------------------------------------------------------------- */

/* Bytes read past the last line returned, per socket (a client has few). */
struct rbuf {
    int fd;
    size_t len;
    char data[CTL_MAX_LINE];
};
static struct rbuf *rbufs[8];

static struct rbuf *rbuf_for(int fd)
{
    for (size_t i = 0; i < sizeof rbufs / sizeof rbufs[0]; i++)
        if (rbufs[i] && rbufs[i]->fd == fd)
            return rbufs[i];
    for (size_t i = 0; i < sizeof rbufs / sizeof rbufs[0]; i++)
        if (!rbufs[i]) {
            rbufs[i] = calloc(1, sizeof *rbufs[i]);
            if (rbufs[i])
                rbufs[i]->fd = fd;
            return rbufs[i];
        }
    return NULL;
}

size_t ctl_forget(int fd, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof rbufs / sizeof rbufs[0]; i++)
        if (rbufs[i] && rbufs[i]->fd == fd) {
            n = rbufs[i]->len < size ? rbufs[i]->len : size;
            if (out)
                memcpy(out, rbufs[i]->data, n);
            free(rbufs[i]);
            rbufs[i] = NULL;
        }
    return n;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

json_t *ctl_read_msg(int fd, int timeout_ms, char *err, size_t errlen)
{
    struct rbuf *b = rbuf_for(fd);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        char *nl = memchr(b->data, '\n', b->len);
        if (nl) {
            size_t n = (size_t)(nl - b->data);
            json_error_t jerr;
            json_t *msg = json_loadb(b->data, n, JSON_REJECT_DUPLICATES, &jerr);
            memmove(b->data, nl + 1, b->len - n - 1);
            b->len -= n + 1;
            if (!msg || !json_is_object(msg)) {
                json_decref(msg);
                snprintf(err, errlen, "the monitor sent something that is not a JSON object");
                return NULL;
            }
            return msg;
        }
        if (b->len == sizeof b->data) {
            snprintf(err, errlen, "the monitor sent a line longer than %u bytes", CTL_MAX_LINE);
            return NULL;
        }
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0) {
                snprintf(err, errlen, "the monitor did not answer within %d ms", timeout_ms);
                return NULL;
            }
            wait = (int)left;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, wait);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            continue; /* the deadline check above reports it */
        ssize_t got = read(fd, b->data + b->len, sizeof b->data - b->len);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0) {
            snprintf(err, errlen, "the monitor closed the connection%s%s", got < 0 ? ": " : "",
                     got < 0 ? strerror(errno) : "");
            return NULL;
        }
        b->len += (size_t)got;
    }
}

static int send_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

int ctl_connect(const char *root, const char *name, char *err, size_t errlen)
{
    char dir[PATH_MAX], path[PATH_MAX];
    struct stat st;
    if (ctl_path(dir, sizeof dir, root, name, NULL) < 0 || stat(dir, &st) < 0) {
        snprintf(err, errlen, "domain '%s' does not exist (in %s)", name, root);
        return -1;
    }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (ctl_path(path, sizeof path, root, name, CTL_FILE_SOCKET) < 0 ||
        strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "%s/%s: the control socket path is longer than a UNIX socket "
                 "address allows (%zu bytes): use a shorter --root", dir, CTL_FILE_SOCKET,
                 sizeof sa.sun_path - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        if (e == ENOENT || e == ECONNREFUSED)
            snprintf(err, errlen, "domain '%s' is not running (its monitor is gone)", name);
        else
            snprintf(err, errlen, "%s: connect: %s", path, strerror(e));
        return -1;
    }
    json_t *hello = ctl_read_msg(fd, 10000, err, errlen);
    json_t *v = hello ? json_object_get(hello, "vmcore_control") : NULL;
    if (!hello || !json_is_integer(v) || json_integer_value(v) != CTL_PROTOCOL_VERSION) {
        if (hello)
            snprintf(err, errlen, "%s: not a vmcore control socket of protocol version %d",
                     path, CTL_PROTOCOL_VERSION);
        json_decref(hello);
        ctl_forget(fd, NULL, 0);
        close(fd);
        return -1;
    }
    json_decref(hello);
    return fd;
}

json_t *ctl_call(int fd, const char *method, json_t *params, int timeout_ms,
                 void (*on_event)(json_t *ev, void *arg), void *arg, char *err, size_t errlen)
{
    static long next_id = 1;
    long id = next_id++;
    json_t *req = json_pack("{s:I, s:s, s:o}", "id", (json_int_t)id, "method", method,
                            "params", params ? params : json_object());
    size_t len;
    char *line = ctl_line(req, &len);
    if (!line) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int rc = send_all(fd, line, len);
    free(line);
    if (rc < 0) {
        snprintf(err, errlen, "the monitor closed the connection: %s", strerror(errno));
        return NULL;
    }
    for (;;) {
        json_t *msg = ctl_read_msg(fd, timeout_ms, err, errlen);
        if (!msg)
            return NULL;
        json_t *mid = json_object_get(msg, "id");
        if (json_is_integer(mid) && json_integer_value(mid) == id)
            return msg;
        if (json_object_get(msg, "event") && on_event)
            on_event(msg, arg);
        json_decref(msg);
    }
}

/* --- creating the domain ----------------------------------------------------------------- */

int ctl_domain_new(vmcore_domain **out, vmcore_ctx *ctx, const char *path, const char *backend,
                   char *err, size_t errlen)
{
    int rc;
    if (!backend) {
        rc = vmcore_domain_new_file(out, ctx, path);
    } else {
        json_error_t jerr;
        json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
            if (access(path, R_OK) != 0)
                snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            else
                snprintf(err, errlen, "%s: line %d column %d: %s", path, jerr.line, jerr.column,
                         jerr.text);
            return VMCORE_EPARSE;
        }
        if (json_is_object(root) &&
            json_object_set_new(root, "backend", json_string(backend)) != 0) {
            json_decref(root);
            snprintf(err, errlen, "%s: out of memory", path);
            return VMCORE_ENOMEM;
        }
        /* Relative paths in the file resolve against the file's folder, as for
         * vmcore_domain_new_file(). */
        char *abs = realpath(path, NULL);
        if (abs) {
            char *slash = strrchr(abs, '/');
            if (slash == abs)
                slash[1] = '\0';
            else if (slash)
                *slash = '\0';
        }
        rc = vmcore_domain_new_jansson(out, ctx, root, abs);
        free(abs);
        json_decref(root);
    }
    if (rc != 0) {
        /* "boot.kernel: no such file" -> "CONFIG.json: boot.kernel: no such file", unless
         * the library already named the file. */
        const char *detail = vmcore_ctx_last_error(ctx);
        if (!detail[0])
            detail = vmcore_strerror(rc);
        if (strstr(detail, path))
            snprintf(err, errlen, "%s", detail);
        else
            snprintf(err, errlen, "%s: %s", path, detail);
        *out = NULL;
    }
    return rc;
}
