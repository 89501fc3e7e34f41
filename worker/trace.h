/*
 * trace.h -- a request's W3C trace context in the worker, and its spans.
 *
 * Every request gets one (trace_begin): a valid incoming traceparent is
 * continued (same trace id, the caller's span as parent, its sampled flag),
 * anything else starts a new trace (sampled by tracing.sample_ratio). The
 * server's own span id answers in `traceparent`, names the request in the
 * access log and, while the request's code runs (trace_swap), in every log
 * line. Ids come from a per-worker buffer of libsodium random bytes, refilled
 * in bulk.
 *
 * With tracing.otlp_endpoint set, a sampled request exports a server span
 * (trace_server_span), a child per database round trip (through the pool
 * observer, which also feeds the pool-wait and statement-time metrics and
 * the slow-statement log) and a child per password hash (hasher.c). Without
 * it, nothing is allocated and no clock is read for tracing.
 */
#ifndef OF_WORKER_TRACE_H
#define OF_WORKER_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/scoreboard.h"
#include "common/traceparent.h"
#include "config/config.h"
#include "store/pool.h"

struct event_base;

struct trace_req {
    uint8_t     trace_id[16], span_id[8], parent_id[8];
    bool        has_parent;
    bool        exported;                  /* sampled and an exporter runs */
    uint8_t     flags;                     /* TP_FLAG_SAMPLED or 0 */
    const char *tracestate;                /* the valid incoming one, or NULL */
    char        traceparent[TP_LEN + 1];   /* ours: "00-<trace>-<span>-<flags>" */
    char        log_ctx[80];               /* "trace_id":"…","span_id":"…" */
};

/* What the server span says besides the ids (monotonic ns). */
struct trace_server {
    uint64_t    start_ns, end_ns;
    const char *method, *route, *client, *request_id;
    int         status;
};

/* Once per worker, before the first request. stmts: the pool's statement
 * table (their order gives the statement ids of /metrics). OF_OK or OF_ERR. */
int  trace_init(struct event_base *base, const struct cfg_tracing *cfg, struct of_sb_slot *slot,
                const struct pool_stmt *const *stmts, size_t nstmts);
/* At the worker's exit: export the spans still queued, for at most
 * timeout_ms (a graceful stop must not lose the last second's spans). */
void trace_flush(int timeout_ms);
void trace_shutdown(void);

/* Fill t from the request's headers (either may be NULL). */
void trace_begin(struct trace_req *t, const char *traceparent, const char *tracestate);

/* Make t (or NULL) the running request's context -- the one new database
 * operations and hashes inherit and log lines carry; returns the previous one,
 * to be given back with trace_swap(prev) when the code for t returns. */
struct trace_req *trace_swap(struct trace_req *t);
struct trace_req *trace_current(void);

/* The request's answer left: its server span (sampled requests only). */
void trace_server_span(const struct trace_req *t, const struct trace_server *s);

/* Password hashing: trace_hash_start gives the current context (stored in
 * the job) and, when it is exported, the start time; trace_hash_end records
 * the child span. */
struct trace_req *trace_hash_start(uint64_t *start_ns);
void trace_hash_end(const struct trace_req *t, uint64_t start_ns, bool verify);

/* The pool observer this module implements (set by wire.c). */
const struct pool_observer *trace_pool_observer(void);

#endif
