/*
 * otlp.c -- see otlp.h. Owns the span ring, the JSON encoding of a batch
 * (protobuf JSON mapping: ids as lowercase hex, 64-bit integers as strings,
 * enums as numbers) and the libcurl multi handle on the worker's loop.
 */
#include "worker/otlp.h"
#include "common/log.h"
#include "common/of.h"
#include "common/traceparent.h"

#include <curl/curl.h>
#include <event2/buffer.h>
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
    struct evbuffer   *body;         /* the batch in flight */
    size_t             in_flight;    /* spans in it; 0: none */
};

/* ---- JSON ---- */

static void
add_str_attr(struct evbuffer *b, bool *first, const char *key, const char *val)
{
    evbuffer_add_printf(b, "%s{\"key\":\"%s\",\"value\":{\"stringValue\":\"%s\"}}",
                        *first ? "" : ",", key, val);
    *first = false;
}

static void
add_int_attr(struct evbuffer *b, bool *first, const char *key, long long val)
{
    evbuffer_add_printf(b, "%s{\"key\":\"%s\",\"value\":{\"intValue\":\"%lld\"}}",
                        *first ? "" : ",", key, val);
    *first = false;
}

static void
encode_attrs(struct evbuffer *b, const struct otlp_span *s)
{
    bool first = true;
    switch (s->what) {
    case OTLP_HTTP:
        add_str_attr(b, &first, "http.request.method", s->method);
        add_str_attr(b, &first, "http.route", s->route);
        add_int_attr(b, &first, "http.response.status_code", s->status);
        add_str_attr(b, &first, "client.address", s->client);
        add_str_attr(b, &first, "orderflow.request_id", s->request_id);
        break;
    case OTLP_DB:
        add_str_attr(b, &first, "db.system.name", "postgresql");
        add_str_attr(b, &first, "db.operation.name", s->name);
        add_int_attr(b, &first, "db.response.returned_rows", s->rows);
        break;
    case OTLP_HASH:
        add_str_attr(b, &first, "orderflow.hash", "argon2id");
        break;
    }
}

static void
encode_span(struct evbuffer *b, const struct otlp_span *s, bool first)
{
    char tid[33], sid[17], pid[17];
    tp_hex(tid, s->trace_id, 16);
    tp_hex(sid, s->span_id, 8);
    evbuffer_add_printf(b, "%s{\"traceId\":\"%s\",\"spanId\":\"%s\",", first ? "" : ",", tid, sid);
    if (s->has_parent) {
        tp_hex(pid, s->parent_id, 8);
        evbuffer_add_printf(b, "\"parentSpanId\":\"%s\",", pid);
    }
    evbuffer_add_printf(b, "\"name\":\"%s\",\"kind\":%d,\"startTimeUnixNano\":\"%" PRIu64 "\","
                        "\"endTimeUnixNano\":\"%" PRIu64 "\",\"attributes\":[",
                        s->name, (int)s->kind, s->start_ns, s->end_ns);
    encode_attrs(b, s);
    evbuffer_add_printf(b, "],\"status\":{\"code\":%d}}", s->error ? 2 : 0);
}

/* Moves up to OTLP_BATCH_MAX spans from the ring into x->body. */
static size_t
encode_batch(struct otlp *x)
{
    size_t n = x->count < OTLP_BATCH_MAX ? x->count : OTLP_BATCH_MAX;
    struct evbuffer *b = x->body;
    evbuffer_add_printf(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
                        "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"%s\"}},"
                        "{\"key\":\"process.pid\",\"value\":{\"intValue\":\"%ld\"}}]},"
                        "\"scopeSpans\":[{\"scope\":{\"name\":\"orderflow\",\"version\":\"%s\"},"
                        "\"spans\":[", x->service, x->pid, OF_VERSION);
    for (size_t i = 0; i < n; i++)
        encode_span(b, &x->ring[(x->head + i) % OTLP_QUEUE_MAX], i == 0);
    evbuffer_add_printf(b, "]}]}]}");
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
    evbuffer_drain(x->body, evbuffer_get_length(x->body));
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
    size_t len = evbuffer_get_length(x->body);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, evbuffer_pullup(x->body, -1));
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
    x->body = evbuffer_new();
    x->curl_timer = evtimer_new(base, on_curl_timer, x);
    x->flush_timer = evtimer_new(base, on_flush, x);
    if (x->ring == NULL || x->body == NULL || x->curl_timer == NULL || x->flush_timer == NULL ||
        curl_setup(x) != OF_OK)
        goto fail;
    return x;
fail:
    of_log_error("OTLP exporter setup failed");
    otlp_destroy(x);
    return NULL;
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
    if (x->body != NULL)
        evbuffer_free(x->body);
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
