/*
 * accesslog.c -- see accesslog.h. Owns the per-pass line buffer and the
 * deferred event that writes it.
 */
#include "worker/accesslog.h"
#include "common/log.h"
#include "common/of.h"
#include "common/util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct accesslog {
    struct event *flush_ev;
    long          pid;          /* getpid() is a system call each time */
    size_t        len;
    char          buf[65536];
};

static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
    OF_UNUSED(fd);
    OF_UNUSED(what);
    accesslog_flush(arg);
}

struct accesslog *
accesslog_create(struct event_base *base)
{
    struct accesslog *al = malloc(sizeof(*al));
    if (al == NULL)
        return NULL;
    al->len = 0;
    al->pid = (long)getpid();
    if ((al->flush_ev = event_new(base, -1, 0, on_flush, al)) == NULL) {
        free(al);
        return NULL;
    }
    return al;
}

void
accesslog_destroy(struct accesslog *al)
{
    if (al == NULL)
        return;
    accesslog_flush(al);
    event_free(al->flush_ev);
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
    of_log_lines(al->buf, al->len);
    al->len = 0;
}
