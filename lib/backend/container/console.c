/* A container's stdin: bytes from vmcore_domain_console_write() queued and written to a
 * non-blocking pipe as it drains.
 *
 * Not a uv_pipe_t + uv_write(): once the container stops reading, write() on the pipe
 * raises SIGPIPE, which would kill a host process that left it at the default; a library
 * may not change process-wide signal dispositions. Here every write runs with SIGPIPE
 * blocked on the loop thread and a SIGPIPE it caused is consumed before unblocking. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ct.h"

struct chunk {
    struct chunk *next;
    size_t len, off;
    char data[];
};

struct ct_stdin {
    uv_poll_t poll;             /* first: the close callback frees the struct */
    int fd;
    bool polling, eof, closing;
    struct chunk *head, *tail;
    struct ct_stdin **slot;     /* the owner's pointer, cleared when we close */
};

static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t n = write(fd, buf, len);
    int e = errno;
    if (n < 0 && e == EPIPE && !was_pending) {
        struct timespec zero = { 0, 0 };
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return n;
}

static void free_chunks(struct ct_stdin *s)
{
    while (s->head) {
        struct chunk *c = s->head;
        s->head = c->next;
        free(c);
    }
    s->tail = NULL;
}

static void closed_cb(uv_handle_t *h)
{
    struct ct_stdin *s = (struct ct_stdin *)h;
    if (s->fd >= 0)
        close(s->fd);
    free_chunks(s);
    free(s);
}

void ct_stdin_close(struct ct_stdin *s)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    if (s->slot && *s->slot == s)
        *s->slot = NULL;
    uv_close((uv_handle_t *)&s->poll, closed_cb);
}

static void writable_cb(uv_poll_t *p, int status, int events);

/* Write what the pipe takes; wait for POLLOUT if it is full. */
static void flush(struct ct_stdin *s)
{
    while (s->head) {
        struct chunk *c = s->head;
        ssize_t n = write_nosigpipe(s->fd, c->data + c->off, c->len - c->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (!s->polling && uv_poll_start(&s->poll, UV_WRITABLE, writable_cb) == 0)
                s->polling = true;
            return;
        }
        if (n < 0) {
            /* EPIPE: nobody reads stdin any more; what is queued can never arrive. */
            free_chunks(s);
            s->eof = true;
            break;
        }
        c->off += (size_t)n;
        if (c->off == c->len) {
            s->head = c->next;
            if (!s->head)
                s->tail = NULL;
            free(c);
        }
    }
    if (s->polling) {
        uv_poll_stop(&s->poll);
        s->polling = false;
    }
    if (s->eof)
        ct_stdin_close(s);
}

static void writable_cb(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    flush((struct ct_stdin *)p);
}

int ct_stdin_open(uv_loop_t *loop, int fd, struct ct_stdin **slot)
{
    struct ct_stdin *s = calloc(1, sizeof *s);
    if (!s)
        return VMCORE_ENOMEM;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || uv_poll_init(loop, &s->poll, fd) < 0) {
        free(s);
        return VMCORE_ESYS;
    }
    s->fd = fd;
    s->slot = slot;
    *slot = s;
    return 0;
}

int ct_stdin_write(struct ct_stdin *s, const void *data, size_t len)
{
    if (!s || s->closing || s->eof)
        return VMCORE_ESTATE;
    if (len == 0) {
        s->eof = true;
        if (!s->head)
            ct_stdin_close(s);
        return 0;
    }
    struct chunk *c = malloc(sizeof *c + len);
    if (!c)
        return VMCORE_ENOMEM;
    c->next = NULL;
    c->len = len;
    c->off = 0;
    memcpy(c->data, data, len);
    if (s->tail)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
    if (!s->polling)
        flush(s);
    return 0;
}

bool ct_stdin_is_open(const struct ct_stdin *s)
{
    return s && !s->closing && !s->eof;
}
