/* bench_vmcore: times our backends through the public API only (vmcore/vmcore.h), for the
 * runner bench/run. Every result is one line of JSON on stdout; errors are one line of JSON
 * with "error" and a non-zero exit status.
 *
 *   bench_vmcore probe BACKEND
 *   bench_vmcore run [--runs R] CONFIG.json
 *       create -> start -> first console byte -> exit -> closed, R times in this process
 *   bench_vmcore idle --count N [--ready TEXT] CONFIG.json
 *       start N copies, wait until each is running (and printed TEXT, if given), report
 *       {"ready": N, "pid": ...}, hold them until stdin closes, then close them all
 *   bench_vmcore density [--max N] [--step S] [--limit-ms MS] [--min-avail-mib M]
 *                        [--ready TEXT] CONFIG.json
 *       keep adding copies (S, then half as many as run); after each step send one byte to
 *       every domain's console and time the echo; stop at the first domain slower than MS
 *       (default 100), at N, or before the host's MemAvailable drops under M (default 4096)
 *
 * The copies differ only in "name". The domain's console must echo what it is sent for
 * `density` (the echo guest, or `cat` in a container). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "vmcore/vmcore.h"

#define CONSOLE_KEEP 256
/* A guard, not a measurement: a hung domain must not hang the whole benchmark run. */
#define GUARD_MS 120000
/* Far beyond the 100 ms a density answer may take; only says "this one is stuck". */
#define PING_GUARD_MS 10000

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void json_str(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static int fail_json(const char *what, int code, const char *detail)
{
    printf("{\"error\": ");
    json_str(stdout, what, strlen(what));
    printf(", \"code\": \"%s\", \"detail\": ", code ? vmcore_error_name(code) : "");
    json_str(stdout, detail ? detail : "", detail ? strlen(detail) : 0);
    printf("}\n");
    fflush(stdout);
    return 1;
}

/* --- one tracked domain ---------------------------------------------------------------- */
struct dom {
    vmcore_domain *d;
    int started, start_status, ended, closed;
    uint64_t t_started, t_first, t_exit, t_closed;
    vmcore_exit exit;
    char exit_reason[256];
    char console[CONSOLE_KEEP];
    size_t console_len;
    size_t pongs;        /* 'p' bytes seen on the console: answers to density pings */
    uint64_t stat_exits, stat_instructions;
};

static void on_event(const vmcore_event *ev, void *arg)
{
    struct dom *m = arg;
    switch (ev->type) {
    case VMCORE_EVENT_CONSOLE:
        if (!m->t_first && ev->u.console.len)
            m->t_first = now_ns();
        for (size_t i = 0; i < ev->u.console.len; i++) {
            if (m->console_len < CONSOLE_KEEP - 1)
                m->console[m->console_len++] = ev->u.console.data[i];
        }
        for (size_t i = 0; i < ev->u.console.len; i++)
            m->pongs += ev->u.console.data[i] == 'p';
        break;
    case VMCORE_EVENT_EXIT:
        m->t_exit = now_ns();
        m->exit = ev->u.exit;
        snprintf(m->exit_reason, sizeof m->exit_reason, "%s",
                 ev->u.exit.reason ? ev->u.exit.reason : "");
        m->exit.reason = m->exit_reason;
        /* Stats are read while the domain is still open (after the exit the counters are
         * final). */
        {
            vmcore_stats st = VMCORE_STATS_INIT;
            if (vmcore_domain_stats(m->d, &st) == 0) {
                m->stat_exits = st.exits;
                m->stat_instructions = st.instructions;
            }
        }
        m->ended = 1;
        break;
    default:
        break;
    }
}

static void on_started(vmcore_domain *d, int status, void *arg)
{
    struct dom *m = arg;
    m->started = 1;
    m->start_status = status;
    m->t_started = now_ns();
}

static void on_closed(vmcore_domain *d, void *arg)
{
    struct dom *m = arg;
    m->closed = 1;
    m->t_closed = now_ns();
}

static int guard_fired;
static void on_guard(uv_timer_t *t) { guard_fired = 1; }

/* Run the loop until @done(@arg) holds or @guard_ms pass (a timer wakes the loop, so a
 * domain that never answers cannot block us). Returns 0, or -1 on the guard. */
static int wait_for(vmcore_ctx *ctx, int (*done)(const void *), const void *arg,
                    uint64_t guard_ms)
{
    uv_timer_t guard;
    uv_timer_init(vmcore_ctx_loop(ctx), &guard);
    guard_fired = 0;
    uv_timer_start(&guard, on_guard, guard_ms, 0);
    while (!done(arg) && !guard_fired)
        vmcore_ctx_run(ctx, VMCORE_RUN_ONCE);
    uv_timer_stop(&guard);
    uv_close((uv_handle_t *)&guard, NULL);
    vmcore_ctx_run(ctx, VMCORE_RUN_NOWAIT);
    return done(arg) ? 0 : -1;
}

static int flag_set(const void *flag) { return *(const volatile int *)flag; }

/* Run the loop until *flag is set or the guard fires. */
static int run_until(vmcore_ctx *ctx, volatile int *flag, uint64_t guard_ms)
{
    return wait_for(ctx, flag_set, (const void *)flag, guard_ms);
}

struct text_wait {
    const struct dom *m;
    const char *text;
};

static int text_seen(const void *arg)
{
    const struct text_wait *w = arg;
    return w->m->ended || strstr(w->m->console, w->text) != NULL;
}

struct pong_wait {
    const struct dom *m;
    size_t before;
};

static int pong_seen(const void *arg)
{
    const struct pong_wait *w = arg;
    return w->m->ended || w->m->pongs > w->before;
}

struct config {
    json_t *root;
    char *base_dir;
};

static int config_load(struct config *c, const char *path)
{
    json_error_t jerr;
    c->root = json_load_file(path, 0, &jerr);
    if (!c->root) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return fail_json("cannot read the config", 0, msg);
    }
    char *tmp = strdup(path);
    c->base_dir = tmp ? strdup(dirname(tmp)) : NULL;
    free(tmp);
    return 0;
}

static void config_free(struct config *c)
{
    json_decref(c->root);
    free(c->base_dir);
}

static int dom_create(struct dom *m, vmcore_ctx *ctx, const struct config *c, unsigned idx)
{
    json_t *copy = json_deep_copy(c->root);
    const char *base = json_string_value(json_object_get(c->root, "name"));
    char name[128];
    snprintf(name, sizeof name, "%s-%d-%u", base ? base : "bench", (int)getpid(), idx);
    json_object_set_new(copy, "name", json_string(name));
    memset(m, 0, sizeof *m);
    int rc = vmcore_domain_new_jansson(&m->d, ctx, copy, c->base_dir);
    json_decref(copy);
    if (rc < 0)
        return rc;
    vmcore_domain_subscribe(m->d, VMCORE_EVENT_ALL, on_event, m);
    return 0;
}

static void dom_close_all(vmcore_ctx *ctx, struct dom *doms, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (doms[i].d && !doms[i].closed)
            vmcore_domain_close(doms[i].d, on_closed, &doms[i]);
    for (unsigned i = 0; i < n; i++)
        if (doms[i].d)
            run_until(ctx, &doms[i].closed, GUARD_MS);
}

/* One "Key: N kB" line of a /proc/self file. */
static long self_kb(const char *file, const char *key)
{
    FILE *f = fopen(file, "r");
    char line[256];
    long kb = -1;
    size_t klen = strlen(key);
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, klen) && sscanf(line + klen, " %ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* --- probe ----------------------------------------------------------------------------- */
static int cmd_probe(const char *backend)
{
    vmcore_probe_result r = VMCORE_PROBE_RESULT_INIT;
    int rc = vmcore_probe(backend, &r);
    printf("{\"backend\": ");
    json_str(stdout, backend, strlen(backend));
    printf(", \"available\": %d, \"code\": \"%s\", \"reason\": ", rc == 0 && r.available,
           vmcore_error_name(rc));
    json_str(stdout, r.reason, sizeof r.reason);
    printf(", \"details\": ");
    json_str(stdout, r.details, sizeof r.details);
    printf("}\n");
    return 0;
}

/* --- run ------------------------------------------------------------------------------- */
static int cmd_run(const struct config *c, unsigned runs)
{
    vmcore_ctx *ctx;
    int rc = vmcore_ctx_new(&ctx, NULL);
    if (rc < 0)
        return fail_json("vmcore_ctx_new", rc, "");
    int status = 0;
    for (unsigned r = 0; r < runs && status == 0; r++) {
        struct dom m;
        uint64_t t0 = now_ns();
        rc = dom_create(&m, ctx, c, r);
        if (rc < 0) {
            status = fail_json("vmcore_domain_new_jansson", rc, vmcore_ctx_last_error(ctx));
            break;
        }
        uint64_t t_new = now_ns();
        rc = vmcore_domain_start(m.d, on_started, &m);
        if (rc < 0) {
            status = fail_json("vmcore_domain_start", rc, vmcore_domain_last_error(m.d));
        } else if (run_until(ctx, &m.ended, GUARD_MS) < 0) {
            status = fail_json("the domain did not end", VMCORE_ETIMEDOUT,
                               vmcore_domain_last_error(m.d));
        }
        vmcore_domain_close(m.d, on_closed, &m);
        run_until(ctx, &m.closed, GUARD_MS);
        if (status)
            break;
        printf("{\"new_ns\": %llu, \"started_ns\": %llu, \"first_byte_ns\": %llu, "
               "\"exit_ns\": %llu, \"closed_ns\": %llu, \"exit_kind\": %d, \"exit_status\": %d, "
               "\"exits\": %llu, \"instructions\": %llu, \"console\": ",
               (unsigned long long)(t_new - t0),
               (unsigned long long)(m.started ? m.t_started - t0 : 0),
               (unsigned long long)(m.t_first ? m.t_first - t0 : 0),
               (unsigned long long)(m.t_exit - t0), (unsigned long long)(m.t_closed - t0),
               (int)m.exit.kind, m.exit.status, (unsigned long long)m.stat_exits,
               (unsigned long long)m.stat_instructions);
        json_str(stdout, m.console, m.console_len);
        printf(", \"reason\": ");
        json_str(stdout, m.exit_reason, strlen(m.exit_reason));
        printf("}\n");
        fflush(stdout);
    }
    if (vmcore_ctx_free(ctx) < 0 && status == 0)
        status = fail_json("vmcore_ctx_free", VMCORE_EBUSY, "domains still open");
    return status;
}

/* Start doms[from..to) and wait until each runs and (if @ready) has printed it. */
static int start_range(vmcore_ctx *ctx, const struct config *c, struct dom *doms, unsigned from,
                       unsigned to, const char *ready)
{
    for (unsigned i = from; i < to; i++) {
        int rc = dom_create(&doms[i], ctx, c, i);
        if (rc < 0)
            return fail_json("vmcore_domain_new_jansson", rc, vmcore_ctx_last_error(ctx));
        rc = vmcore_domain_start(doms[i].d, on_started, &doms[i]);
        if (rc < 0)
            return fail_json("vmcore_domain_start", rc, vmcore_domain_last_error(doms[i].d));
    }
    for (unsigned i = from; i < to; i++) {
        if (run_until(ctx, &doms[i].started, GUARD_MS) < 0 || doms[i].start_status < 0)
            return fail_json("start did not complete", doms[i].start_status,
                             vmcore_domain_last_error(doms[i].d));
        if (ready) {
            struct text_wait w = { &doms[i], ready };
            wait_for(ctx, text_seen, &w, GUARD_MS);
            if (!strstr(doms[i].console, ready))
                return fail_json("the domain never printed its ready text", 0, ready);
        }
    }
    return 0;
}

/* --- idle ------------------------------------------------------------------------------ */
static int cmd_idle(const struct config *c, unsigned count, const char *ready)
{
    vmcore_ctx *ctx;
    int rc = vmcore_ctx_new(&ctx, NULL);
    if (rc < 0)
        return fail_json("vmcore_ctx_new", rc, "");
    struct dom *doms = calloc(count, sizeof *doms);
    /* The runner subtracts what this process used before any domain existed. */
    long pss0 = self_kb("/proc/self/smaps_rollup", "Pss:");
    long rss0 = self_kb("/proc/self/status", "VmRSS:");
    int status = doms ? start_range(ctx, c, doms, 0, count, ready)
                      : fail_json("calloc", VMCORE_ENOMEM, "");
    if (status == 0) {
        printf("{\"ready\": %u, \"pid\": %d, \"pss_before_kb\": %ld, \"rss_before_kb\": %ld, "
               "\"rss_after_kb\": %ld}\n",
               count, (int)getpid(), pss0, rss0, self_kb("/proc/self/status", "VmRSS:"));
        fflush(stdout);
        char buf[64];
        while (read(0, buf, sizeof buf) > 0) /* the runner measures us meanwhile */
            ;
    }
    if (doms)
        dom_close_all(ctx, doms, count);
    free(doms);
    vmcore_ctx_free(ctx);
    return status;
}

/* --- density --------------------------------------------------------------------------- */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmd_density(const struct config *c, unsigned max, unsigned step, unsigned limit_ms,
                       unsigned min_avail_mib, const char *ready)
{
    vmcore_ctx *ctx;
    int rc = vmcore_ctx_new(&ctx, NULL);
    if (rc < 0)
        return fail_json("vmcore_ctx_new", rc, "");
    struct dom *doms = calloc(max, sizeof *doms);
    uint64_t *lat = calloc(max, sizeof *lat);
    unsigned n = 0, good = 0;
    const char *why = "reached --max";
    int status = 0;
    if (!doms || !lat) {
        status = fail_json("calloc", VMCORE_ENOMEM, "");
        goto out;
    }
    while (n < max) {
        /* Grow by half of what runs (at least --step): the ping rounds stay cheap. */
        unsigned add = n / 2 > step ? n / 2 : step;
        unsigned to = n + add > max ? max : n + add;
        long avail = self_kb("/proc/meminfo", "MemAvailable:");
        if (avail >= 0 && avail < (long)min_avail_mib * 1024) {
            why = "kept the host's memory reserve (--min-avail-mib)";
            break;
        }
        if (start_range(ctx, c, doms, n, to, ready) != 0) {
            why = "a start failed (see the error line above)";
            /* Not one domain ran: that is an error, not a density of zero. */
            status = good == 0;
            n = to;
            break;
        }
        n = to;
        /* Ping every domain in turn; each answer is timed on its own. */
        uint64_t worst = 0;
        int dead = 0;
        for (unsigned i = 0; i < n; i++) {
            struct pong_wait w = { &doms[i], doms[i].pongs };
            uint64_t t0 = now_ns();
            int wrc = vmcore_domain_console_write(doms[i].d, "p", 1);
            if (wrc == 0)
                wait_for(ctx, pong_seen, &w, PING_GUARD_MS);
            if (doms[i].pongs == w.before) {
                char detail[512];
                snprintf(detail, sizeof detail, "domain %u of %u: console_write %s; no answer in %d ms; "
                         "state %s; exit reason \"%s\"; last error \"%s\"", i, n, vmcore_error_name(wrc),
                         PING_GUARD_MS, vmcore_state_name(vmcore_domain_state(doms[i].d)), doms[i].exit_reason,
                         vmcore_domain_last_error(doms[i].d));
                fail_json("a domain stopped answering", wrc, detail);
                dead = 1;
                break;
            }
            lat[i] = now_ns() - t0;
            if (lat[i] > worst)
                worst = lat[i];
        }
        if (dead) {
            why = "a domain stopped answering";
            break;
        }
        qsort(lat, n, sizeof *lat, cmp_u64);
        printf("{\"count\": %u, \"median_ms\": %.3f, \"max_ms\": %.3f}\n", n,
               lat[n / 2] / 1e6, worst / 1e6);
        fflush(stdout);
        if (worst > (uint64_t)limit_ms * 1000000u) {
            why = "a domain answered slower than the limit";
            break;
        }
        good = n;
    }
    printf("{\"density\": %u, \"tried\": %u, \"stopped\": \"%s\"}\n", good, n, why);
    fflush(stdout);
out:
    if (doms)
        dom_close_all(ctx, doms, n);
    free(doms);
    free(lat);
    vmcore_ctx_free(ctx);
    return status;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: bench_vmcore probe BACKEND\n"
            "       bench_vmcore run [--runs R] CONFIG.json\n"
            "       bench_vmcore idle --count N [--ready TEXT] CONFIG.json\n"
            "       bench_vmcore density [--max N] [--step S] [--limit-ms MS] "
            "[--min-avail-mib M] [--ready TEXT] CONFIG.json\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "probe"))
        return cmd_probe(argv[2]);
    unsigned runs = 5, count = 1, max = 64, step = 8, limit_ms = 100, min_avail_mib = 4096;
    const char *ready = NULL, *path = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--runs") && v) runs = (unsigned)strtoul(v, NULL, 0), i++;
        else if (!strcmp(a, "--count") && v) count = (unsigned)strtoul(v, NULL, 0), i++;
        else if (!strcmp(a, "--max") && v) max = (unsigned)strtoul(v, NULL, 0), i++;
        else if (!strcmp(a, "--step") && v) step = (unsigned)strtoul(v, NULL, 0), i++;
        else if (!strcmp(a, "--limit-ms") && v) limit_ms = (unsigned)strtoul(v, NULL, 0), i++;
        else if (!strcmp(a, "--min-avail-mib") && v)
            min_avail_mib = (unsigned)strtoul(v, NULL, 0), i++;
        else if (!strcmp(a, "--ready") && v) ready = v, i++;
        else if (a[0] != '-' && !path) path = a;
        else return usage();
    }
    if (!path || !runs || !count || !max || !step)
        return usage();
    struct config c;
    if (config_load(&c, path))
        return 1;
    int rc;
    if (!strcmp(cmd, "run"))
        rc = cmd_run(&c, runs);
    else if (!strcmp(cmd, "idle"))
        rc = cmd_idle(&c, count, ready);
    else if (!strcmp(cmd, "density"))
        rc = cmd_density(&c, max, step, limit_ms, min_avail_mib, ready);
    else
        rc = usage();
    config_free(&c);
    return rc;
}
