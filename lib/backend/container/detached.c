/* Containers that outlive the process that made them (include/vmcore/detach.h): the
 * calls a later process makes on a detached container's cgroup, from the state that
 * vmcore_domain_detach() handed out. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "core/internal.h"
#include "ct.h"

static int report(vmcore_ctx *ctx, struct vmcore_err *e)
{
    if (ctx)
        ctx_set_error(ctx, e);
    return e->code;
}

/* Parse @state into @cg (created, no watcher): only folders under /sys/fs/cgroup. */
static int parse_state(const char *state, struct ct_cgroup *cg, struct vmcore_err *err)
{
    memset(cg, 0, sizeof *cg);
    cg->v2_fd = -1;
    if (!state)
        return err_set(err, VMCORE_EINVAL, "detached state: NULL");
    json_error_t je;
    json_t *o = json_loads(state, 0, &je);
    json_t *groups = o ? json_object_get(o, "cgroups") : NULL;
    if (!json_is_object(groups) || !json_is_boolean(json_object_get(o, "v2"))) {
        json_decref(o);
        return err_set(err, VMCORE_EINVAL, "detached state: not what vmcore_domain_detach() wrote");
    }
    cg->v2 = json_is_true(json_object_get(o, "v2"));
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach(groups, key, v) {
        int i = -1;
        if (cg->v2 && strcmp(key, "unified") == 0)
            i = 0;
        for (int k = 0; !cg->v2 && k < CG_NCTRL; k++)
            if (strcmp(key, ct_cgroup_ctrl_names[k]) == 0)
                i = k;
        const char *path = json_string_value(v);
        if (i < 0 || !path || strncmp(path, "/sys/fs/cgroup/", 15) != 0 || strstr(path, "/..") ||
            strlen(path) >= sizeof cg->path[i]) {
            rc = err_set(err, VMCORE_EINVAL, "detached state: bad cgroup entry \"%s\"", key);
            break;
        }
        snprintf(cg->path[i], sizeof cg->path[i], "%s", path);
        cg->created = true;
    }
    json_decref(o);
    return rc;
}

static const char *procs_dir(const struct ct_cgroup *cg)
{
    for (int i = 0; i < (cg->v2 ? 1 : CG_NCTRL); i++)
        if (cg->path[i][0])
            return cg->path[i];
    return NULL;
}

VMCORE_API int vmcore_detached_freeze(vmcore_ctx *ctx, const char *state, int frozen)
{
    struct vmcore_err err = { 0 };
    struct ct_cgroup cg;
    if (parse_state(state, &cg, &err) < 0)
        return report(ctx, &err);
    const char *dir = cg.v2 ? cg.path[0] : cg.path[CG_FREEZER];
    struct stat st;
    if (*dir && stat(dir, &st) < 0) {
        err_set(&err, VMCORE_ENOENT, "the container's cgroup %s is gone", dir);
        return report(ctx, &err);
    }
    if (cgroup_freeze(&cg, frozen != 0, &err) < 0)
        return report(ctx, &err);
    return 0;
}

VMCORE_API int vmcore_detached_frozen(const char *state)
{
    struct vmcore_err err = { 0 };
    struct ct_cgroup cg;
    if (parse_state(state, &cg, &err) < 0)
        return err.code;
    const char *dir = cg.v2 ? cg.path[0] : cg.path[CG_FREEZER];
    if (!*dir)
        return 0;
    char p[4200], buf[512];
    snprintf(p, sizeof p, "%s/%s", dir, cg.v2 ? "cgroup.events" : "freezer.state");
    FILE *f = fopen(p, "re");
    if (!f)
        return errno == ENOENT ? VMCORE_ENOENT : VMCORE_ESYS;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (cg.v2)
        return strstr(buf, "frozen 1") != NULL;
    /* v1: FREEZING counts as frozen (the kernel is getting there). */
    return strncmp(buf, "FROZEN", 6) == 0 || strncmp(buf, "FREEZING", 8) == 0;
}

VMCORE_API int vmcore_detached_pids(vmcore_ctx *ctx, const char *state, int **pids, size_t *n)
{
    struct vmcore_err err = { 0 };
    struct ct_cgroup cg;
    if (!pids || !n)
        return VMCORE_EINVAL;
    *pids = NULL;
    *n = 0;
    if (parse_state(state, &cg, &err) < 0)
        return report(ctx, &err);
    const char *dir = procs_dir(&cg);
    if (!dir)
        return 0;
    char p[4200];
    snprintf(p, sizeof p, "%s/cgroup.procs", dir);
    FILE *f = fopen(p, "re");
    if (!f) {
        int e = errno;
        err_sys(&err, e == ENOENT ? VMCORE_ENOENT : VMCORE_ESYS, e, "open %s", p);
        return report(ctx, &err);
    }
    size_t cap = 0;
    int pid;
    while (fscanf(f, "%d", &pid) == 1) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            int *np = realloc(*pids, ncap * sizeof *np);
            if (!np) {
                fclose(f);
                free(*pids);
                *pids = NULL;
                *n = 0;
                err_set(&err, VMCORE_ENOMEM, "out of memory");
                return report(ctx, &err);
            }
            *pids = np;
            cap = ncap;
        }
        (*pids)[(*n)++] = pid;
    }
    fclose(f);
    return 0;
}

VMCORE_API int vmcore_detached_signal_all(vmcore_ctx *ctx, const char *state, int sig)
{
    int *pids;
    size_t n;
    int rc = vmcore_detached_pids(ctx, state, &pids, &n);
    if (rc)
        return rc;
    int count = 0;
    for (size_t i = 0; i < n; i++)
        if (kill(pids[i], sig) == 0)
            count++;
    free(pids);
    if (sig == SIGKILL && vmcore_detached_frozen(state) == 1)
        vmcore_detached_freeze(NULL, state, 0);
    return count;
}

VMCORE_API int vmcore_detached_destroy(vmcore_ctx *ctx, const char *state)
{
    struct vmcore_err err = { 0 };
    struct ct_cgroup cg;
    if (parse_state(state, &cg, &err) < 0)
        return report(ctx, &err);
    char first[4096] = "";
    const char *dir = procs_dir(&cg);
    if (dir)
        snprintf(first, sizeof first, "%s", dir);
    cgroup_kill_all(&cg);
    int r = cgroup_destroy(&cg);
    if (r < 0) {
        err_sys(&err, VMCORE_ESYS, -r, "remove the container's cgroup %s", first);
        return report(ctx, &err);
    }
    return 0;
}
