/*
 * accesslog.c -- see accesslog.h. Owns the per-pass line buffer, the
 * deferred event that writes it, and the event that waits for a full log
 * pipe (common/log.c's non-blocking descriptor) to take more.
 */
#include "worker/accesslog.h"
#include "common/log.h"
#include "common/of.h"
#include "common/util.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AL_BUF (64 * 1024)

struct accesslog {
    struct event_base *base;
    struct event      *flush_ev;
    struct event      *write_ev;    /* pipe_fd writable again; NULL without a pipe */
    _Atomic uint64_t  *dropped;
    int                pipe_fd;     /* of_log_pipe_fd(): the non-blocking stderr pipe, or -1 */
    long               pid;         /* getpid() is a system call each time */
    size_t             len;
    char               buf[AL_BUF];
};

static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
    OF_UNUSED(fd);
    OF_UNUSED(what);
    accesslog_flush(arg);
}

struct accesslog *
accesslog_create(struct event_base *base, _Atomic uint64_t *dropped)
{
    struct accesslog *al = malloc(sizeof(*al));
    if (al == NULL)
        return NULL;
    al->base = base;
    al->len = 0;
    al->pid = (long)getpid();
    al->dropped = dropped;
    al->write_ev = NULL;
    al->pipe_fd = of_log_pipe_fd();      /* the log's, not ours to close */
    if ((al->flush_ev = event_new(base, -1, 0, on_flush, al)) == NULL)
        goto fail;
    if (al->pipe_fd >= 0 &&
        (al->write_ev = event_new(base, al->pipe_fd, EV_WRITE, on_flush, al)) == NULL)
        goto fail;
    return al;
fail:
    if (al->flush_ev != NULL)
        event_free(al->flush_ev);
    free(al);
    return NULL;
}

static void
drop_lines(struct accesslog *al, const char *p, size_t n)
{
    uint64_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += p[i] == '\n';
    atomic_fetch_add_explicit(al->dropped, lines, memory_order_relaxed);
}

/* The longest run of whole lines at p that is at most cap bytes; 0 when the
 * first line alone is longer. The buffer always ends with a newline. */
static size_t
whole_lines(const char *p, size_t n, size_t cap)
{
    if (n <= cap)
        return n;
    for (size_t i = cap; i > 0; i--)
        if (p[i - 1] == '\n')
            return i;
    return 0;
}

/* Write the buffer to the pipe in whole-line writes of at most PIPE_BUF
 * (each all or nothing on a non-blocking pipe); returns the bytes written.
 * On EAGAIN waits for the pipe to be writable. */
static size_t
write_pipe(struct accesslog *al)
{
    size_t off = 0;
    while (off < al->len) {
        const char *p = al->buf + off;
        size_t      n = whole_lines(p, al->len - off, PIPE_BUF);
        if (n == 0) {          /* a line over PIPE_BUF cannot go whole: drop it */
            n = (size_t)((const char *)memchr(p, '\n', al->len - off) - p) + 1;
            drop_lines(al, p, n);
            off += n;
            continue;
        }
        ssize_t w = write(al->pipe_fd, p, n);
        if (w == (ssize_t)n) {
            off += n;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(al->write_ev, NULL);
            break;
        } else {               /* reader gone (EPIPE) or the like: nowhere to go */
            drop_lines(al, p, al->len - off);
            off = al->len;
        }
    }
    return off;
}

/* At exit: give a full pipe a short while to take the rest, then drop it. */
void
accesslog_destroy(struct accesslog *al)
{
    if (al == NULL)
        return;
    accesslog_flush(al);
    for (int i = 0; i < 10 && al->len > 0 && al->pipe_fd >= 0; i++) {
        struct pollfd p = { .fd = al->pipe_fd, .events = POLLOUT };
        if (poll(&p, 1, 100) > 0)
            accesslog_flush(al);
    }
    if (al->len > 0)
        drop_lines(al, al->buf, al->len);
    event_free(al->flush_ev);
    if (al->write_ev != NULL)
        event_free(al->write_ev);
    free(al);
}

void
accesslog_add(struct accesslog *al, const struct accesslog_entry *e)
{
    char line[1024], path[300], ts[40];
    /* trace_id and span_id are the 2nd and 3rd fields of our traceparent */
    const char *tid = e->traceparent != NULL ? e->traceparent + 3 : "";
    const char *sid = e->traceparent != NULL ? e->traceparent + 36 : "";

    if (of_log_min > OF_LOG_INFO)
        return;
    of_json_escape(path, sizeof(path), e->path ? e->path : "");
    of_rfc3339_now(ts, sizeof(ts));
    int n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%s\",\"level\":\"info\",\"role\":\"worker\",\"pid\":%ld,"
                     "\"msg\":\"access\",\"request_id\":\"%s\",\"method\":\"%s\",\"route\":\"%s\","
                     "\"path\":\"%s\",\"status\":%d,\"bytes\":%zu,\"latency_ms\":%llu.%03llu,"
                     "\"client_ip\":\"%s\",\"scheme\":\"%s\",\"user_id\":%lld,"
                     "\"trace_id\":\"%.32s\",\"span_id\":\"%.16s\"}\n",
                     ts, al->pid, e->request_id, e->method, e->route, path, e->status, e->bytes,
                     (unsigned long long)(e->dur_ns / 1000000u),
                     (unsigned long long)(e->dur_ns / 1000u % 1000u), e->client_ip,
                     e->scheme != NULL ? e->scheme : "http", (long long)e->user_id, tid, sid);
    if (n <= 0 || (size_t)n >= sizeof(line))
        return;
    if (al->len + (size_t)n > sizeof(al->buf))
        accesslog_flush(al);
    if (al->len + (size_t)n > sizeof(al->buf)) {
        atomic_fetch_add_explicit(al->dropped, 1, memory_order_relaxed);
        return;                /* the pipe is full and so is the buffer */
    }
    if (al->len == 0)
        event_active(al->flush_ev, EV_TIMEOUT, 0);
    memcpy(al->buf + al->len, line, (size_t)n);
    al->len += (size_t)n;
}

void
accesslog_flush(struct accesslog *al)
{
    if (al->len == 0)
        return;
    if (al->pipe_fd < 0) {
        of_log_lines(al->buf, al->len);     /* a file (or a terminal) */
        al->len = 0;
        return;
    }
    size_t off = write_pipe(al);
    memmove(al->buf, al->buf + off, al->len - off);
    al->len -= off;
}
