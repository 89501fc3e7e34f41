/*
 * otlp.c -- see otlp.h. Owns the span ring, the JSON encoding of a batch
 * (protobuf JSON mapping: ids as lowercase hex, 64-bit integers as strings,
 * enums as numbers) and the libcurl multi handle on the worker's loop.
 */
#include "worker/otlp.h"
#include "common/log.h"
#include "common/of.h"
#include "common/jsonw.h"
#include "common/util.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct otlp {
    struct event_base *base;
    struct of_sb_db   *counters;
    char              *url;
    char               service[128];
    long               pid;
    struct otlp_span  *ring;
    size_t             head, count;
    CURLM             *multi;
    CURL              *easy;
    struct curl_slist *headers;
    struct event      *curl_timer;   /* CURLMOPT_TIMERFUNCTION's */
    struct event      *flush_timer;  /* OTLP_FLUSH_MS after a first span */
    struct jsonw       body;         /* the batch in flight; its buffer is reused */
    size_t             in_flight;    /* spans in it; 0: none */
};

/* ---- JSON ---- */

static void
attr_str(struct jsonw *b, bool first, const char *key, const char *val)
{
    jw_raw(b, first ? "{\"key\":" : ",{\"key\":", first ? 7 : 8);
    jw_str(b, key);
    JW_LIT(b, ",\"value\":{\"stringValue\":");
    jw_str(b, val);
    JW_LIT(b, "}}");
}

static void
attr_int(struct jsonw *b, bool first, const char *key, int64_t val)
{
    jw_raw(b, first ? "{\"key\":" : ",{\"key\":", first ? 7 : 8);
    jw_str(b, key);
    JW_LIT(b, ",\"value\":{\"intValue\":\"");
    jw_i64(b, val);
    JW_LIT(b, "\"}}");
}

static void
encode_attrs(struct jsonw *b, const struct otlp_span *s)
{
    switch (s->what) {
    case OTLP_HTTP:
        attr_str(b, true, "http.request.method", s->method);
        attr_str(b, false, "http.route", s->route);
        attr_int(b, false, "http.response.status_code", s->status);
        attr_str(b, false, "client.address", s->client);
        attr_str(b, false, "orderflow.request_id", s->request_id);
        break;
    case OTLP_DB:
        attr_str(b, true, "db.system.name", "postgresql");
        attr_str(b, false, "db.operation.name", s->name);
        attr_int(b, false, "db.response.returned_rows", s->rows);
        break;
    case OTLP_HASH:
        attr_str(b, true, "orderflow.hash", "argon2id");
        break;
    }
}

/* A server span is named "<method> <route>" (both static strings). */
static void
encode_name(struct jsonw *b, const struct otlp_span *s)
{
    if (s->what != OTLP_HTTP) {
        jw_str(b, s->name);
        return;
    }
    char   name[sizeof(s->name)];
    size_t m = strnlen(s->method, 16), r = strnlen(s->route, sizeof(name) - 18);
    memcpy(name, s->method, m);
    name[m] = ' ';
    memcpy(name + m + 1, s->route, r);
    name[m + 1 + r] = '\0';
    jw_str(b, name);
}

void
otlp_doc_span(struct jsonw *b, const struct otlp_span *s, bool first)
{
    jw_raw(b, first ? "{\"traceId\":\"" : ",{\"traceId\":\"", first ? 12 : 13);
    jw_hex(b, s->trace_id, 16);
    JW_LIT(b, "\",\"spanId\":\"");
    jw_hex(b, s->span_id, 8);
    if (s->has_parent) {
        JW_LIT(b, "\",\"parentSpanId\":\"");
        jw_hex(b, s->parent_id, 8);
    }
    JW_LIT(b, "\",\"name\":");
    encode_name(b, s);
    JW_LIT(b, ",\"kind\":");
    jw_u64(b, (uint64_t)s->kind);
    JW_LIT(b, ",\"startTimeUnixNano\":\"");
    jw_u64(b, s->start_ns);
    JW_LIT(b, "\",\"endTimeUnixNano\":\"");
    jw_u64(b, s->end_ns);
    JW_LIT(b, "\",\"attributes\":[");
    encode_attrs(b, s);
    JW_LIT(b, "],\"status\":{\"code\":");
    jw_raw(b, s->error ? "2}}" : "0}}", 3);
}

void
otlp_doc_open(struct jsonw *b, const char *service, long pid)
{
    JW_LIT(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    attr_str(b, true, "service.name", service);
    attr_int(b, false, "process.pid", pid);
    JW_LIT(b, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"orderflow\",\"version\":");
    jw_str(b, OF_VERSION);
    JW_LIT(b, "},\"spans\":[");
}

void
otlp_doc_close(struct jsonw *b)
{
    JW_LIT(b, "]}]}]}");
}

/* Moves up to OTLP_BATCH_MAX spans from the ring into x->body. */
static size_t
encode_batch(struct otlp *x)
{
    size_t n = x->count < OTLP_BATCH_MAX ? x->count : OTLP_BATCH_MAX;
    jw_reset(&x->body);
    otlp_doc_open(&x->body, x->service, x->pid);
    for (size_t i = 0; i < n; i++)
        otlp_doc_span(&x->body, &x->ring[(x->head + i) % OTLP_QUEUE_MAX], i == 0);
    otlp_doc_close(&x->body);
    x->head = (x->head + n) % OTLP_QUEUE_MAX;
    x->count -= n;
    return n;
}

/* ---- the POST ---- */

static void flush_arm(struct otlp *x, bool now);

static void
post_done(struct otlp *x, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(x->multi, x->easy);
    if (rc == CURLE_OK && status >= 200 && status < 300) {
        atomic_fetch_add_explicit(&x->counters->spans_exported, x->in_flight, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&x->counters->spans_dropped, x->in_flight, memory_order_relaxed);
        of_log_debug("OTLP export of %zu spans failed: %s, HTTP %ld", x->in_flight,
                     curl_easy_strerror(rc), status);
    }
    x->in_flight = 0;
    jw_reset(&x->body);
    if (x->count > 0)
        flush_arm(x, x->count >= OTLP_BATCH_MAX);
}

static void
check_done(struct otlp *x)
{
    CURLMsg *m;
    int      left;
    while ((m = curl_multi_info_read(x->multi, &left)) != NULL)
        if (m->msg == CURLMSG_DONE && m->easy_handle == x->easy)
            post_done(x, m->data.result);
}

static void
post_batch(struct otlp *x)
{
    if (x->in_flight > 0 || x->count == 0)
        return;
    x->in_flight = encode_batch(x);
    if (x->body.failed) {
        post_done(x, CURLE_OUT_OF_MEMORY);
        return;
    }
    /* the buffer stays as it is until post_done: spans go to the ring */
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE, (long)x->body.len);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body.buf);
    if (curl_multi_add_handle(x->multi, x->easy) != CURLM_OK) {
        post_done(x, CURLE_FAILED_INIT);
        return;
    }
    int running;
    curl_multi_socket_action(x->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(x);
}

static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
    OF_UNUSED(fd);
    OF_UNUSED(what);
    post_batch(arg);
}

static void
flush_arm(struct otlp *x, bool now)
{
    if (x->in_flight > 0)
        return;
    if (now)
        evtimer_del(x->flush_timer);
    else if (evtimer_pending(x->flush_timer, NULL))
        return;
    struct timeval tv = { 0, now ? 0 : OTLP_FLUSH_MS * 1000 };
    evtimer_add(x->flush_timer, &tv);
}

/* ---- libcurl on libevent ---- */

static void
on_sock(evutil_socket_t fd, short what, void *arg)
{
    struct otlp *x = arg;
    int running, ev = (what & EV_READ ? CURL_CSELECT_IN : 0) |
                      (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(x->multi, fd, ev, &running);
    check_done(x);
}

static int
sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct otlp  *x = userp;
    struct event *ev = socketp;
    OF_UNUSED(e);
    if (ev != NULL) {
        event_free(ev);
        curl_multi_assign(x->multi, s, NULL);
    }
    if (what == CURL_POLL_REMOVE)
        return 0;
    short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
                 (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if ((ev = event_new(x->base, s, kind, on_sock, x)) == NULL)
        return -1;
    event_add(ev, NULL);
    curl_multi_assign(x->multi, s, ev);
    return 0;
}

static void
on_curl_timer(evutil_socket_t fd, short what, void *arg)
{
    struct otlp *x = arg;
    int running;
    OF_UNUSED(fd);
    OF_UNUSED(what);
    curl_multi_socket_action(x->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(x);
}

static int
timer_cb(CURLM *m, long ms, void *userp)
{
    struct otlp *x = userp;
    OF_UNUSED(m);
    if (ms < 0) {
        evtimer_del(x->curl_timer);
        return 0;
    }
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    evtimer_add(x->curl_timer, &tv);
    return 0;
}

static size_t
discard(char *p, size_t sz, size_t n, void *u)
{
    OF_UNUSED(p);
    OF_UNUSED(u);
    return sz * n;
}

static int
curl_setup(struct otlp *x)
{
    if ((x->multi = curl_multi_init()) == NULL || (x->easy = curl_easy_init()) == NULL)
        return OF_ERR;
    curl_multi_setopt(x->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(x->multi, CURLMOPT_SOCKETDATA, x);
    curl_multi_setopt(x->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(x->multi, CURLMOPT_TIMERDATA, x);
    x->headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(x->easy, CURLOPT_URL, x->url);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    return x->headers != NULL ? OF_OK : OF_ERR;
}

otlp *
otlp_create(struct event_base *base, const char *endpoint, const char *service_name,
            struct of_sb_db *counters)
{
    static bool curl_ready;
    if (!curl_ready && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    curl_ready = true;
    struct otlp *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NULL;
    x->base = base;
    x->counters = counters;
    x->pid = (long)getpid();
    snprintf(x->service, sizeof(x->service), "%s", service_name);
    size_t ulen = strlen(endpoint) + sizeof("/v1/traces");
    if ((x->url = malloc(ulen)) == NULL)
        goto fail;
    size_t elen = strlen(endpoint);
    while (elen > 0 && endpoint[elen - 1] == '/')
        elen--;
    snprintf(x->url, ulen, "%.*s/v1/traces", (int)elen, endpoint);
    x->ring = malloc(OTLP_QUEUE_MAX * sizeof(*x->ring));
    jw_init(&x->body);
    x->curl_timer = evtimer_new(base, on_curl_timer, x);
    x->flush_timer = evtimer_new(base, on_flush, x);
    if (x->ring == NULL || x->curl_timer == NULL || x->flush_timer == NULL ||
        curl_setup(x) != OF_OK)
        goto fail;
    return x;
fail:
    of_log_error("OTLP exporter setup failed");
    otlp_destroy(x);
    return NULL;
}

void
otlp_flush_now(otlp *x, int timeout_ms)
{
    if (x == NULL || (x->count == 0 && x->in_flight == 0))
        return;
    /* The loop is no longer dispatched: libcurl is driven here, blocking. */
    uint64_t deadline = of_mono_ns() + (uint64_t)timeout_ms * 1000000u, now;
    while ((x->count > 0 || x->in_flight > 0) && (now = of_mono_ns()) < deadline) {
        post_batch(x);                    /* a no-op while one is in flight */
        int running = 0;
        if (curl_multi_perform(x->multi, &running) != CURLM_OK)
            break;
        check_done(x);
        if (x->in_flight > 0) {           /* at most 100 ms, never past the deadline */
            uint64_t left_ms = (deadline - now) / 1000000u + 1;
            curl_multi_poll(x->multi, NULL, 0, left_ms < 100 ? (int)left_ms : 100, NULL);
        }
    }
    if (x->count > 0 || x->in_flight > 0) {
        atomic_fetch_add_explicit(&x->counters->spans_dropped, x->count + x->in_flight,
                                  memory_order_relaxed);
        of_log_warn("OTLP: %zu spans not exported at exit", x->count + x->in_flight);
    }
}

void
otlp_destroy(otlp *x)
{
    if (x == NULL)
        return;
    if (x->multi != NULL && x->easy != NULL && x->in_flight > 0)
        curl_multi_remove_handle(x->multi, x->easy);
    if (x->easy != NULL)
        curl_easy_cleanup(x->easy);
    if (x->multi != NULL)
        curl_multi_cleanup(x->multi);
    curl_slist_free_all(x->headers);
    if (x->curl_timer != NULL)
        event_free(x->curl_timer);
    if (x->flush_timer != NULL)
        event_free(x->flush_timer);
    jw_cleanup(&x->body);
    free(x->ring);
    free(x->url);
    free(x);
}

struct otlp_span *
otlp_reserve(otlp *x)
{
    if (x->count == OTLP_QUEUE_MAX) {
        atomic_fetch_add_explicit(&x->counters->spans_dropped, 1, memory_order_relaxed);
        return NULL;
    }
    return &x->ring[(x->head + x->count) % OTLP_QUEUE_MAX];
}

void
otlp_commit(otlp *x)
{
    x->count++;
    if (x->count == 1 || x->count >= OTLP_BATCH_MAX)
        flush_arm(x, x->count >= OTLP_BATCH_MAX);
}
