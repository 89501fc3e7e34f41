/*
 * otlp.h -- the worker's span exporter: OTLP/HTTP JSON (POST
 * {endpoint}/v1/traces, the protobuf JSON mapping of
 * ExportTraceServiceRequest) in batches, never blocking the loop.
 *
 * Spans go into a bounded ring (OTLP_QUEUE_MAX). A batch leaves when
 * OTLP_BATCH_MAX spans wait or OTLP_FLUSH_MS after the first one, through
 * libcurl's multi interface driven by the worker's libevent loop; one POST
 * is in flight at a time. A span that finds the ring full is dropped, and so
 * is a batch the receiver did not take (connection refused, timeout, non-2xx):
 * both count in the slot's spans_dropped (orderflow_trace_spans_dropped_total).
 *
 * The span path is cheap by construction: a span is a fixed-size record
 * written in place in the ring (no allocation, no formatting), and a batch is
 * encoded by a hand-written writer for this fixed schema (common/jsonw.h)
 * into one buffer reused for every batch; the curl easy handle (and so its
 * keep-alive connection to the collector) is reused as well.
 */
#ifndef OF_WORKER_OTLP_H
#define OF_WORKER_OTLP_H

#include <stdbool.h>
#include <stdint.h>

#include "common/jsonw.h"
#include "common/scoreboard.h"

struct event_base;
typedef struct otlp otlp;

#define OTLP_QUEUE_MAX 4096
#define OTLP_BATCH_MAX 512
#define OTLP_FLUSH_MS  1000

enum otlp_kind { OTLP_KIND_INTERNAL = 1, OTLP_KIND_SERVER = 2, OTLP_KIND_CLIENT = 3 };
enum otlp_what { OTLP_HTTP, OTLP_DB, OTLP_HASH };

struct otlp_span {
    uint8_t         trace_id[16], span_id[8], parent_id[8];
    bool            has_parent;
    bool            error;
    enum otlp_kind  kind;
    enum otlp_what  what;          /* which attributes it carries */
    uint64_t        start_ns, end_ns;   /* unix time */
    char            name[112];          /* OTLP_DB, OTLP_HASH; a server span
                                           is named "<method> <route>" */
    const char     *method, *route;     /* static strings (OTLP_HTTP) */
    int             status;             /* HTTP status (OTLP_HTTP) */
    int             rows;               /* rows returned (OTLP_DB) */
    char            client[46];
    char            request_id[129];
};

/* endpoint: the collector's base URL ("http://host:4318"); copied. counters:
 * where drops and exports are counted. NULL on failure (logged). */
otlp *otlp_create(struct event_base *base, const char *endpoint, const char *service_name,
                  struct of_sb_db *counters);
void  otlp_destroy(otlp *x);
/* At a worker's exit, its loop no longer running: send what the ring holds
 * (and finish the batch in flight), blocking for at most timeout_ms; what
 * is left then is counted as dropped. */
void  otlp_flush_now(otlp *x, int timeout_ms);

/* A span to fill, then otlp_commit(); NULL when the ring is full (the drop
 * is counted). No other call may come between the two. */
struct otlp_span *otlp_reserve(otlp *x);
void              otlp_commit(otlp *x);

/* The ExportTraceServiceRequest document, in three parts: open (the
 * resource and scope), each span (first: the first of the document), close. */
void otlp_doc_open(struct jsonw *b, const char *service, long pid);
void otlp_doc_span(struct jsonw *b, const struct otlp_span *s, bool first);
void otlp_doc_close(struct jsonw *b);

#endif
