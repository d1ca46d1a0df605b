/* run-config: run the domain a JSON file describes, print its console, exit with its status.
 * The embedding example of doc/guide.md: a context on its own libuv loop, one domain,
 * events, and the close discipline.
 *
 *   $ ./run-config configs/vm-hello.json
 *   hello from a vmcore guest: 1 + 2 + ... + 100 = 5050
 */
#include <stdio.h>

#include <vmcore/vmcore.h>

static int exit_code = 125;

/* Events arrive on the loop thread, inside vmcore_ctx_run(). */
static void on_event(const vmcore_event *ev, void *arg)
{
    switch (ev->type) {
    case VMCORE_EVENT_CONSOLE:
        fwrite(ev->u.console.data, 1, ev->u.console.len,
               ev->u.console.stream == VMCORE_STREAM_STDERR ? stderr : stdout);
        fflush(stdout);
        break;
    case VMCORE_EVENT_EXIT:
        exit_code = vmcore_exit_code(&ev->u.exit);
        fprintf(stderr, "[%s ended: %s]\n", vmcore_domain_name(ev->domain), ev->u.exit.reason);
        break;
    case VMCORE_EVENT_STATE:
        /* Once the domain has ended, close it; the loop then runs out of work. */
        if (ev->u.state.new_state == VMCORE_STATE_STOPPED ||
            ev->u.state.new_state == VMCORE_STATE_CRASHED)
            vmcore_domain_close(ev->domain, NULL, NULL);
        break;
    case VMCORE_EVENT_ERROR:
        fprintf(stderr, "error: %s\n", ev->u.error.message);
        break;
    default:
        break;
    }
}

static void on_started(vmcore_domain *d, int status, void *arg)
{
    if (status != 0) {
        fprintf(stderr, "start: %s\n", vmcore_domain_last_error(d));
        vmcore_domain_close(d, NULL, NULL);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CONFIG.json\n", argv[0]);
        return 2;
    }

    vmcore_ctx *ctx;
    int rc = vmcore_ctx_new(&ctx, NULL);
    if (rc != 0) {
        fprintf(stderr, "vmcore_ctx_new: %s\n", vmcore_strerror(rc));
        return 125;
    }

    vmcore_domain *d;
    rc = vmcore_domain_new_file(&d, ctx, argv[1]);
    if (rc != 0) {
        /* The detail names the JSON path: "memory_mib: -1 is out of range (1..)" */
        fprintf(stderr, "%s: %s\n", argv[1], vmcore_ctx_last_error(ctx));
        vmcore_ctx_free(ctx);
        return 125;
    }

    vmcore_domain_subscribe(d, VMCORE_EVENT_ALL, on_event, NULL);
    rc = vmcore_domain_start(d, on_started, NULL);
    if (rc != 0) {
        fprintf(stderr, "start: %s\n", vmcore_domain_last_error(d));
        vmcore_domain_close(d, NULL, NULL);
    }

    /* Run until the domain has been closed and nothing else keeps the loop alive. */
    vmcore_ctx_run(ctx, VMCORE_RUN_DEFAULT);
    vmcore_ctx_free(ctx);
    return exit_code;
}
