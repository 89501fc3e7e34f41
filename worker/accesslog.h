/*
 * accesslog.h -- the access log: one JSON line per answered request,
 * batched so that a loop pass costs one write(2), not one per request.
 *
 * Lines of one pass go into a buffer; a deferred event made active by the
 * first line of the pass writes them all after the pass (or at once when
 * the buffer would overflow). accesslog_flush() writes what is buffered now
 * (at exit).
 *
 * Every write(2) carries whole lines only. When the log is stderr and a pipe
 * (Docker, systemd without journal), each write is at most PIPE_BUF bytes,
 * so the lines of several workers never interleave, and it goes through the
 * process's own non-blocking descriptor of that pipe
 * (of_log_use_nonblocking_pipe, set up when the worker starts): a full pipe
 * never stalls the loop. What the pipe does not take
 * waits in the buffer for the pipe to become writable; a line that does not
 * fit in the buffer then is dropped whole and counted
 * (orderflow_access_log_dropped_total). A log file is written as before.
 */
#ifndef OF_ACCESSLOG_H
#define OF_ACCESSLOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct accesslog;

/* What one line says about a request. Strings are borrowed for the call. */
struct accesslog_entry {
    const char *request_id;
    const char *method;
    const char *route;         /* template, or "unmatched" */
    const char *path;          /* decoded path, may be NULL */
    const char *client_ip;
    const char *scheme;        /* "http" or "https" (trusted X-Forwarded-Proto) */
    int         status;
    size_t      bytes;
    uint64_t    dur_ns;
    int64_t     user_id;       /* 0 when anonymous */
    const char *traceparent;   /* ours ("00-<trace_id>-<span_id>-<flags>"), or NULL */
};

/* NULL on allocation failure. The pid written in each line is taken now;
 * dropped lines are added to *dropped (the worker's scoreboard slot). */
struct accesslog *accesslog_create(struct event_base *base, _Atomic uint64_t *dropped);
void accesslog_destroy(struct accesslog *al);

/* Buffer one line (dropped when the log level is above info). */
void accesslog_add(struct accesslog *al, const struct accesslog_entry *e);
/* Write out the buffered lines now (what a full pipe does not take stays
 * buffered and goes when it is writable). */
void accesslog_flush(struct accesslog *al);

#endif
