/*
 * http.c -- one HTTP request's life in a worker, top to bottom:
 *
 *   on_request   evhttp has read the whole request: make a wreq and run
 *                the middleware table (steps[] below) with req_run().
 *   steps[]      identify, framing, preflight, route, body, auth,
 *                authorize, limits, dispatch: each returns STEP_OK (go on),
 *                STEP_AGAIN (an async operation runs; its callback records
 *                the result and calls req_run again) or STEP_DONE
 *                (answered).
 *   io_send      the handler's one answer: headers, body, access log,
 *                metrics, hooks->request_done. The wreq lives on until
 *                evhttp has written it.
 *   on_complete  the response left; free the wreq.
 *   on_close     the connection died first; free it now, or mark it
 *                abandoned so the handler's eventual answer frees it.
 *
 * Every wreq is freed in exactly one place, wreq_free(). This file owns
 * evhttp, the listening socket's accept state (with conn.c) and the
 * access log (accesslog.c); it never calls back into worker.c, only
 * through struct http_hooks.
 */
#include "worker/http.h"
#include "worker/accesslog.h"
#include "worker/router.h"
#include "worker/conn.h"
#include "worker/jwt.h"
#include "worker/ratelimit.h"
#include "worker/trace.h"
#include "handlers/auth.h"
#include "handlers/services.h"
#include "common/log.h"
#include "common/scoreboard.h"
#include "common/util.h"
#include "common/urlcode.h"
#include "config/config.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* The body limit of the auth routes (RT_SMALL_BODY). */
#define HTTP_SMALL_BODY_MAX 4096
/* A graceful stop accepts what is queued at most this long. */
#define HTTP_DRAIN_MAX_NS 2000000000ull

struct http {
    const struct of_cfg        *cfg;
    struct event_base          *base;
    struct evhttp              *evh;
    struct evhttp_bound_socket *bound;       /* NULL when not accepting */
    struct conns               *conns;
    struct accesslog           *alog;        /* NULL when server.access_log is off */
    struct of_scoreboard       *sb;
    struct of_sb_slot          *slot;
    struct hdl_services        *svc;
    const struct http_hooks    *hooks;
    void                       *hooks_arg;
    struct evbuffer            *outbuf;      /* reused for every reply */
    long                        outstanding; /* requests not yet fully answered */
    bool                        stopping;    /* http_stop() was called */
    uint64_t                    drain_start_ns;
};

struct wreq {
    struct hdl_req             r;
    struct of_mem              mem;
    struct http               *h;
    struct evhttp_request     *ev;
    struct evhttp_connection  *evcon;
    struct wconn              *conn;         /* NULL if conn.c does not follow it */
    struct event               free_ev;
    uint64_t                   start_ns;
    const struct route        *route;
    const char                *method_name;
    const char                *origin;       /* allowed Origin to echo, or NULL */
    int                        method_idx;
    int                        status;
    int                        step;         /* next middleware step */
    int                        auth_rc;      /* the principal lookup's result */
    size_t                     bytes;
    bool                       replied;
    bool                       gone;
    char                       request_id[129];
    char                       client_ip[INET6_ADDRSTRLEN];
    const char                *scheme;       /* "http", or a trusted X-Forwarded-Proto */
    struct trace_req           trace;        /* set by step_trace */
};

static const struct hdl_io wreq_io;

/* Finished wreqs are kept for reuse: a request costs no malloc of its
 * own (a wreq with its inline arena is a few KiB, where malloc is slow). */
#define WREQ_CACHE 128
static struct wreq *wreq_cache[WREQ_CACHE];
static int          wreq_cached;

static struct wreq *
wreq_alloc(void)
{
    if (wreq_cached > 0)
        return wreq_cache[--wreq_cached];
    return malloc(sizeof(struct wreq));
}

static void
wreq_free(struct wreq *q)
{
    struct http *h = q->h;
    of_mem_release(&q->mem);
    if (wreq_cached < WREQ_CACHE)
        wreq_cache[wreq_cached++] = q;
    else
        free(q);
    h->outstanding--;
    if (h->stopping && h->outstanding <= 0 && h->hooks->idle != NULL)
        h->hooks->idle(h->hooks_arg);
}

static void
deferred_free(evutil_socket_t fd, short what, void *arg)
{
    OF_UNUSED(fd);
    OF_UNUSED(what);
    wreq_free(arg);
}

static void
on_complete(struct evhttp_request *ev, void *arg)
{
    struct wreq *q = arg;
    OF_UNUSED(ev);
    if (q->conn != NULL)
        conn_request_done(q->conn);
    else
        evhttp_connection_set_closecb(q->evcon, NULL, NULL);
    wreq_free(q);
}

static void
req_conn_closed(void *arg)
{
    struct wreq *q = arg;
    if (q->replied) {
        /* the answer was queued but the peer went away before it left */
        wreq_free(q);
        return;
    }
    q->gone = true;
    q->mem.abandoned = true;
}

static void
on_close(struct evhttp_connection *evcon, void *arg)
{
    OF_UNUSED(evcon);
    req_conn_closed(arg);
}

/* ---- middleware pieces ---- */

static bool
request_id_ok(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
        if (n >= 128)
            return false;
    }
    return n >= 1;
}

static void
set_request_id(struct wreq *q, struct evkeyvalq *in)
{
    const char *rid = evhttp_find_header(in, "X-Request-ID");
    if (rid != NULL && request_id_ok(rid))
        of_strlcpy(q->request_id, rid, sizeof(q->request_id));
    else
        of_uuid4(q->request_id);
    q->r.request_id = q->request_id;
}

static bool
ip_parse(const char *s, size_t len, struct sockaddr_storage *ss)
{
    char buf[INET6_ADDRSTRLEN + 2];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in  *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, buf, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, buf, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        return true;
    }
    return false;
}

static void
sockaddr_str(const struct sockaddr *sa, char *out, size_t cap)
{
    out[0] = '\0';
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)cap);
    else
        of_strlcpy(out, "unix", cap);
}

/* X-Forwarded-Proto from a trusted proxy: "https" or "http" (nginx sends
 * $scheme); anything else leaves the scheme of our own listener, "http". */
static const char *
forwarded_scheme(struct evkeyvalq *in)
{
    const char *p = evhttp_find_header(in, "X-Forwarded-Proto");
    if (p == NULL)
        return "http";
    size_t len = strlen(p);
    of_trim(&p, &len);
    if (len == 5 && strncasecmp(p, "https", 5) == 0)
        return "https";
    return "http";
}

/* The peer's address, or -- when the peer is a trusted proxy -- the rightmost
 * X-Forwarded-For entry that is not itself a trusted proxy; and the scheme
 * (X-Forwarded-Proto, trusted the same way). */
static void
set_client_ip(struct wreq *q, struct evkeyvalq *in)
{
    const struct cfg_server *s = &q->h->cfg->server;
    const struct sockaddr   *peer = evhttp_connection_get_addr(q->evcon);
    struct sockaddr_storage  unix_peer;

    if (peer == NULL) {
        memset(&unix_peer, 0, sizeof(unix_peer));
        unix_peer.ss_family = AF_UNIX;
        peer = (const struct sockaddr *)&unix_peer;
    }
    sockaddr_str(peer, q->client_ip, sizeof(q->client_ip));
    q->r.client_ip = q->client_ip;
    q->scheme = "http";

    bool trusted = peer->sa_family == AF_UNIX ||
                   netaddr_cidr_match(s->forwarded_allow, s->n_forwarded_allow, peer);
    if (!trusted)
        return;
    q->scheme = forwarded_scheme(in);
    const char *xff = evhttp_find_header(in, "X-Forwarded-For");
    if (xff == NULL)
        return;
    size_t end = strlen(xff);
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        const char *p = xff + start;
        size_t      len = end - start;
        of_trim(&p, &len);
        struct sockaddr_storage ss;
        if (!ip_parse(p, len, &ss))
            return;          /* garbage: keep what we have */
        sockaddr_str((struct sockaddr *)&ss, q->client_ip, sizeof(q->client_ip));
        if (!netaddr_cidr_match(s->forwarded_allow, s->n_forwarded_allow, (struct sockaddr *)&ss))
            return;
        end = start > 0 ? start - 1 : 0;
    }
}

static void
set_cors_origin(struct wreq *q, struct evkeyvalq *in)
{
    const struct cfg_cors *c = &q->h->cfg->cors;
    const char *origin;

    q->origin = NULL;
    if (c->n_origins == 0 || (origin = evhttp_find_header(in, "Origin")) == NULL)
        return;
    for (size_t i = 0; i < c->n_origins; i++) {
        if (strcmp(c->allow_origins[i], origin) == 0) {
            q->origin = c->allow_origins[i];
            return;
        }
    }
}

/* Request smuggling guard. evhttp 2.1.12 frames a body by the FIRST
 * Content-Length header, so a second, different one leaves bytes that it then
 * parses as the next request; and it reads no body at all for HEAD and TRACE,
 * so their body bytes become the next request too. A proxy in front may frame
 * such a request differently (request smuggling), so refuse it and close the
 * connection, as nginx does. Likewise a Transfer-Encoding other than exactly
 * "chunked" (RFC 9112 6.3: 400 and close), and a header name that is not a
 * token. (Content-Length together with Transfer-Encoding evhttp already
 * refuses with its own 400.) */
#define TOKEN_CHARS "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

static bool
framing_ok(struct evhttp_request *ev, enum hdl_method m)
{
    struct evkeyval *h;
    int              n_cl = 0, n_te = 0;
    bool             body = false;

    for (h = evhttp_request_get_input_headers(ev)->tqh_first; h != NULL; h = h->next.tqe_next) {
        /* "Transfer-Encoding : chunked" is no Transfer-Encoding to evhttp,
         * but may be one to a proxy: RFC 9112 5.1 says 400 */
        size_t klen = strlen(h->key);
        if (klen == 0 || strspn(h->key, TOKEN_CHARS) != klen)
            return false;
        if (strcasecmp(h->key, "Content-Length") == 0) {
            n_cl++;
            body = body || strcmp(h->value, "0") != 0;
        } else if (strcasecmp(h->key, "Transfer-Encoding") == 0) {
            /* any other coding: evhttp would read no body, the proxy one */
            n_te += strcasecmp(h->value, "chunked") == 0 ? 1 : 2;
            body = true;
        }
    }
    if (n_cl > 1 || n_te > 1 || (n_cl > 0 && n_te > 0))
        return false;
    return !(body && (m == HDL_HEAD || evhttp_request_get_command(ev) == EVHTTP_REQ_TRACE));
}

/* The path as routes see it: percent-decoded, as FastAPI matches
 * (/api/v1/products/%31 is product 1). A NUL or a bad escape leaves it
 * undecoded, which then matches no route. */
static const char *
decode_path(struct of_mem *m, const char *raw, size_t len)
{
    if (memchr(raw, '%', len) == NULL)
        return of_mem_strndup(m, raw, len);
    char *out = of_mem_alloc(m, len + 1);
    bool  exact;
    of_url_decode(out, raw, len, OF_URL_PATH, &exact);
    return exact ? out : of_mem_strndup(m, raw, len);
}

static enum hdl_method
method_of(struct evhttp_request *ev, const char **name)
{
    switch (evhttp_request_get_command(ev)) {
    case EVHTTP_REQ_GET:     *name = "GET";     return HDL_GET;
    case EVHTTP_REQ_POST:    *name = "POST";    return HDL_POST;
    case EVHTTP_REQ_PUT:     *name = "PUT";     return HDL_PUT;
    case EVHTTP_REQ_PATCH:   *name = "PATCH";   return HDL_PATCH;
    case EVHTTP_REQ_DELETE:  *name = "DELETE";  return HDL_DELETE;
    case EVHTTP_REQ_HEAD:    *name = "HEAD";    return HDL_HEAD;
    case EVHTTP_REQ_OPTIONS: *name = "OPTIONS"; return HDL_OPTIONS;
    default:                 *name = "OTHER";   return 0;
    }
}

/* ---- the handler-facing io ---- */

static const char *
io_header(struct hdl_req *r, const char *name)
{
    struct wreq *q = (struct wreq *)r;
    return evhttp_find_header(evhttp_request_get_input_headers(q->ev), name);
}

static void
io_add_header(struct hdl_req *r, const char *name, const char *value)
{
    struct wreq *q = (struct wreq *)r;
    if (!q->gone)
        evhttp_add_header(evhttp_request_get_output_headers(q->ev), name, value);
}

static void
access_log(struct wreq *q, uint64_t dur_ns)
{
    struct accesslog_entry e = {
        .request_id = q->request_id,
        .method = q->method_name,
        .route = q->route ? q->route->tmpl : "unmatched",
        .path = q->r.path,
        .client_ip = q->client_ip,
        .scheme = q->scheme,
        .status = q->status,
        .bytes = q->bytes,
        .dur_ns = dur_ns,
        .user_id = q->r.who.user_id,
        .traceparent = q->trace.traceparent[0] ? q->trace.traceparent : NULL,
    };
    accesslog_add(q->h->alog, &e);
}

static void
server_span(struct wreq *q, uint64_t now)
{
    struct trace_server s = {
        .start_ns = q->start_ns, .end_ns = now, .method = q->method_name,
        .route = q->route ? q->route->tmpl : "unmatched", .client = q->client_ip,
        .request_id = q->request_id, .status = q->status,
    };
    trace_server_span(&q->trace, &s);
}

static void
io_send_body(struct hdl_req *r, int status, const char *ctype, const char *body, size_t len,
             bool by_ref)
{
    struct wreq *q = (struct wreq *)r;
    struct http *h = q->h;

    if (q->replied) {
        of_log_error("request %s answered twice (bug)", q->request_id);
        return;
    }
    q->replied = true;
    q->status = status;
    q->bytes = len;
    uint64_t now = of_mono_ns(), dur = now - q->start_ns;
    of_sb_record(h->slot, q->route ? q->route->id : 0, q->method_idx, status, dur / 1000);
    if (h->alog != NULL)
        access_log(q, dur);
    if (q->trace.exported)
        server_span(q, now);

    struct evkeyvalq *out = evhttp_request_get_output_headers(q->ev);
    if (!q->gone) {
        if (ctype != NULL)
            evhttp_add_header(out, "Content-Type", ctype);
        evhttp_add_header(out, "X-Request-ID", q->request_id);
        if (q->trace.traceparent[0] != '\0') {
            evhttp_add_header(out, "traceparent", q->trace.traceparent);
            if (q->trace.tracestate != NULL)
                evhttp_add_header(out, "tracestate", q->trace.tracestate);
        }
        if (q->origin != NULL) {
            evhttp_add_header(out, "Access-Control-Allow-Origin", q->origin);
            evhttp_add_header(out, "Vary", "Origin");
        }
        if (h->stopping)
            evhttp_add_header(out, "Connection", "close");
    }
    /* evhttp would send a body after a HEAD response too (without a
     * Content-Length), which desynchronises keep-alive clients. */
    if (len > 0 && q->r.method != HDL_HEAD) {
        if (by_ref)
            evbuffer_add_reference(h->outbuf, body, len, NULL, NULL);
        else
            evbuffer_add(h->outbuf, body, len);
    }
    /* A detached request (client gone) is freed inside this call. */
    evhttp_send_reply(q->ev, status, NULL, h->outbuf);
    evbuffer_drain(h->outbuf, evbuffer_get_length(h->outbuf));
    if (q->gone) {
        event_assign(&q->free_ev, h->base, -1, 0, deferred_free, q);
        event_active(&q->free_ev, EV_TIMEOUT, 0);
    }
    if (h->hooks->request_done != NULL)
        h->hooks->request_done(h->hooks_arg);
}

static void
io_send(struct hdl_req *r, int status, const char *ctype, const char *body, size_t len)
{
    io_send_body(r, status, ctype, body, len, false);
}

static void
io_send_static(struct hdl_req *r, int status, const char *ctype, const char *body, size_t len)
{
    io_send_body(r, status, ctype, body, len, true);
}

static const struct hdl_io wreq_io = {
    .header = io_header,
    .add_header = io_add_header,
    .send = io_send,
    .send_static = io_send_static,
};

static void
preflight(struct wreq *q)
{
    const struct cfg_cors *c = &q->h->cfg->cors;
    if (q->origin != NULL) {
        char age[16];
        snprintf(age, sizeof(age), "%d", c->max_age);
        io_add_header(&q->r, "Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS");
        io_add_header(&q->r, "Access-Control-Allow-Headers",
                      "Authorization, Content-Type, Idempotency-Key, X-Request-ID");
        io_add_header(&q->r, "Access-Control-Max-Age", age);
    }
    hdl_reply_empty(&q->r, 204);
}

/* ---- the middleware: one step per concern, in the order of steps[] ---- */

enum step_rc {
    STEP_OK,       /* go on with the next step */
    STEP_AGAIN,    /* an async operation runs; its callback calls req_run */
    STEP_DONE,     /* answered: the wreq may be gone */
};

static void req_run(struct wreq *q);

/* What the request is: method, request id, client address (through
 * trusted proxies), CORS origin, decoded path. Always goes on. */
static enum step_rc
step_identify(struct wreq *q)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(q->ev);
    q->r.method = method_of(q->ev, &q->method_name);
    q->method_idx = of_sb_method_index(q->method_name);
    set_request_id(q, in);
    set_client_ip(q, in);
    set_cors_origin(q, in);

    const char *uri = evhttp_request_get_uri(q->ev);
    const char *qm = strchr(uri, '?');
    q->r.path = decode_path(&q->mem, uri, qm ? (size_t)(qm - uri) : strlen(uri));
    q->r.query = qm ? qm + 1 : NULL;
    return STEP_OK;
}

/* W3C trace context: continue a valid traceparent, else start a trace; from
 * here on log lines carry its ids and the answer its traceparent. A second
 * traceparent header makes the pair invalid (the spec's rule). */
static enum step_rc
step_trace(struct wreq *q)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(q->ev);
    const char       *tp = evhttp_find_header(in, "traceparent");
    int               n = 0;

    for (struct evkeyval *kv = in->tqh_first; kv != NULL && tp != NULL; kv = kv->next.tqe_next)
        n += strcasecmp(kv->key, "traceparent") == 0;
    trace_begin(&q->trace, n > 1 ? NULL : tp, evhttp_find_header(in, "tracestate"));
    q->r.traceparent = q->trace.traceparent;
    trace_swap(&q->trace);
    return STEP_OK;
}

/* Ambiguous framing (see framing_ok): 400 and close. */
static enum step_rc
step_framing(struct wreq *q)
{
    if (framing_ok(q->ev, q->r.method))
        return STEP_OK;
    io_add_header(&q->r, "Connection", "close");
    hdl_reply_error(&q->r, 400, "Bad request");
    return STEP_DONE;
}

/* A CORS preflight is answered here, for any path. */
static enum step_rc
step_preflight(struct wreq *q)
{
    if (q->r.method != HDL_OPTIONS ||
        io_header(&q->r, "Access-Control-Request-Method") == NULL)
        return STEP_OK;
    preflight(q);
    return STEP_DONE;
}

/* 404, 405 with Allow, or the route and its typed path ids. */
static enum step_rc
step_route(struct wreq *q)
{
    struct router_match m;
    switch (router_match(q->r.method, q->r.path, &m)) {
    case ROUTER_NOT_FOUND:
        hdl_reply_error(&q->r, 404, "Not Found");
        return STEP_DONE;
    case ROUTER_METHOD_NOT_ALLOWED: {
        char allow[64];
        router_allow_string(m.allow, allow, sizeof(allow));
        io_add_header(&q->r, "Allow", allow);
        hdl_reply_error(&q->r, 405, "Method Not Allowed");
        return STEP_DONE;
    }
    case ROUTER_FOUND:
        break;
    }
    q->route = m.route;
    q->r.ids[0] = m.ids[0];
    q->r.ids[1] = m.ids[1];
    q->r.nids = m.nids;
    return STEP_OK;
}

/* 413 and close past server.max_body_size (HTTP_SMALL_BODY_MAX on the auth
 * routes: a password hash is costly enough without a large body parked in
 * its queue), else a NUL-terminated copy. */
static enum step_rc
step_body(struct wreq *q)
{
    struct evbuffer *body = evhttp_request_get_input_buffer(q->ev);
    size_t           blen = evbuffer_get_length(body);
    size_t           max = q->h->cfg->server.max_body_size;
    if ((q->route->flags & RT_SMALL_BODY) && max > HTTP_SMALL_BODY_MAX)
        max = HTTP_SMALL_BODY_MAX;
    if (blen > max) {
        io_add_header(&q->r, "Connection", "close");
        hdl_reply_error(&q->r, 413, "Request body too large");
        return STEP_DONE;
    }
    char *b = of_mem_alloc(&q->mem, blen + 1);
    if (blen > 0)
        evbuffer_copyout(body, b, blen);
    b[blen] = '\0';
    q->r.body = b;
    q->r.body_len = blen;
    return STEP_OK;
}

static void
on_principal(int rc, struct hdl_req *r)
{
    struct wreq *q = (struct wreq *)r;
    q->auth_rc = rc;
    req_run(q);
}

/* Routes that need a user: a valid bearer token (else 401), then who that
 * user is now, looked up through the handlers' auth service. */
static enum step_rc
step_auth(struct wreq *q)
{
    const struct cfg_auth *a = &q->h->cfg->auth;
    int64_t                uid;
    char                   role[16];

    if (q->route->auth == RT_PUBLIC)
        return STEP_OK;
    const char *hv = io_header(&q->r, "Authorization");
    if (hv == NULL || strncasecmp(hv, "Bearer ", 7) != 0 ||
        jwt_verify((const unsigned char *)a->jwt_secret, a->jwt_secret_len, hv + 7, &uid,
                   role) != OF_OK) {
        hdl_reply_error(&q->r, 401, "Could not validate credentials");
        return STEP_DONE;
    }
    hdl_auth_current(&q->r, uid, on_principal);
    return STEP_AGAIN;
}

/* The lookup's answer: 503, 500, 401 (no such user), 403 (not an admin). */
static enum step_rc
step_authorize(struct wreq *q)
{
    if (q->route->auth == RT_PUBLIC)
        return STEP_OK;
    switch (q->auth_rc) {
    case OF_OK:
        break;
    case OF_UNAVAILABLE:
        hdl_reply_error(&q->r, 503, "Service unavailable");
        return STEP_DONE;
    case OF_ERR:
        hdl_reply_error(&q->r, 500, "Internal server error");
        return STEP_DONE;
    default:
        hdl_reply_error(&q->r, 401, "Could not validate credentials");
        return STEP_DONE;
    }
    if (q->route->auth == RT_ADMIN && q->r.who.role != HDL_ROLE_ADMIN) {
        hdl_reply_error(&q->r, 403, "Insufficient permissions");
        return STEP_DONE;
    }
    return STEP_OK;
}

/* 429 with Retry-After: logins per client address, writes per user. */
static enum step_rc
step_limits(struct wreq *q)
{
    const struct cfg_rate_limit *rl = &q->h->cfg->rate_limit;
    unsigned                     f = q->route->flags;
    int                          retry;

    if ((f & RT_LOGIN) && !ratelimit_allow_login_ip(q->h->sb, rl, q->client_ip, &retry)) {
        hdl_reply_too_many(&q->r, retry);
        return STEP_DONE;
    }
    if ((f & RT_REGISTER) && !ratelimit_allow_register_ip(q->h->sb, rl, q->client_ip, &retry)) {
        hdl_reply_too_many(&q->r, retry);
        return STEP_DONE;
    }
    if ((f & RT_WRITE) && q->route->auth != RT_PUBLIC &&
        !ratelimit_allow_write(q->h->sb, rl, q->r.who.user_id, &retry)) {
        hdl_reply_too_many(&q->r, retry);
        return STEP_DONE;
    }
    return STEP_OK;
}

/* The route's handler answers, now or from a service callback. */
static enum step_rc
step_dispatch(struct wreq *q)
{
    q->route->fn(&q->r);
    return STEP_DONE;
}

static enum step_rc (*const steps[])(struct wreq *q) = {
    step_identify,
    step_trace,
    step_framing,
    step_preflight,
    step_route,
    step_body,
    step_auth,
    step_authorize,
    step_limits,
    step_dispatch,
};

/* Runs the steps from q->step on until one answers or waits. */
static void
req_run(struct wreq *q)
{
    struct trace_req *prev = trace_swap(q->step > 0 ? &q->trace : NULL);
    while (q->step < (int)OF_ARRAY_LEN(steps)) {
        if (steps[q->step++](q) != STEP_OK)
            break;
    }
    trace_swap(prev);
}

/* ---- evhttp's entry point ---- */

static void
on_request(struct evhttp_request *ev, void *arg)
{
    struct http *h = arg;
    struct wreq *q = wreq_alloc();
    if (q == NULL) {
        evhttp_send_error(ev, 503, NULL);
        return;
    }
    memset(&q->r, 0, sizeof(q->r));
    of_mem_init(&q->mem);
    q->h = h;
    q->ev = ev;
    q->evcon = evhttp_request_get_connection(ev);
    q->start_ns = of_mono_ns();
    q->route = NULL;
    q->replied = q->gone = false;
    q->status = 0;
    q->bytes = 0;
    q->step = 0;
    q->auth_rc = OF_ERR;
    q->trace.traceparent[0] = '\0';
    q->trace.exported = false;
    q->trace.tracestate = NULL;
    q->r.mem = &q->mem;
    q->r.io = &wreq_io;
    q->r.owner = q;
    q->r.svc = h->svc;
    h->outstanding++;
    q->conn = conn_of(h->conns, q->evcon);
    if (q->conn != NULL)
        conn_request_begin(q->conn, q, req_conn_closed);
    else
        evhttp_connection_set_closecb(q->evcon, on_close, q);
    evhttp_request_set_on_complete_cb(ev, on_complete, q);
    req_run(q);
}

/* ---- the worker's interface ---- */

static void
http_limits(struct evhttp *evh, const struct cfg_server *s)
{
    evhttp_set_allowed_methods(evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                               EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD |
                               EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE);
    /* (no CONNECT: evhttp would parse the tunnel's bytes as the next request;
     * refused, it gets a JSON 501 and a closed connection, see httperr.c) */
    evhttp_set_max_headers_size(evh, (ev_ssize_t)s->max_header_size);
    /* A body past the limit is refused while it is read (JSON 413 and close,
     * httperr.c), so a connection never buffers more than max_body_size. */
    evhttp_set_max_body_size(evh, (ev_ssize_t)s->max_body_size);
    evhttp_set_timeout(evh, s->timeout);
}

struct http *
http_create(struct event_base *base, const struct of_cfg *cfg, const struct http_env *env,
            const struct http_hooks *hooks, void *hooks_arg)
{
    struct http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->cfg = cfg;
    h->base = base;
    h->sb = env->sb;
    h->slot = &env->sb->slots[env->slot];
    h->svc = env->svc;
    h->hooks = hooks;
    h->hooks_arg = hooks_arg;
    if ((h->evh = evhttp_new(base)) == NULL || (h->outbuf = evbuffer_new()) == NULL)
        goto fail;
    if (cfg->server.access_log && (h->alog = accesslog_create(base, &h->slot->db.log_dropped)) == NULL)
        goto fail;
    if ((h->conns = conn_create(base, h->evh, &cfg->server, env->sb, env->slot)) == NULL)
        goto fail;
    evhttp_set_gencb(h->evh, on_request, h);
    http_limits(h->evh, &cfg->server);
    return h;
fail:
    http_destroy(h);
    return NULL;
}

void
http_destroy(struct http *h)
{
    if (h == NULL)
        return;
    if (h->evh != NULL)
        evhttp_free(h->evh);
    if (h->outbuf != NULL)
        evbuffer_free(h->outbuf);
    accesslog_destroy(h->alog);
    conn_destroy(h->conns);
    free(h);
}

int
http_listen(struct http *h, int listen_fd)
{
    if ((h->bound = evhttp_accept_socket_with_handle(h->evh, listen_fd)) == NULL)
        return OF_ERR;
    conn_listening(h->conns, h->bound);
    return OF_OK;
}

/* Graceful stop. The listen socket is not closed yet: connections that
 * completed their handshake sit in its backlog, and the last process to
 * close it would reset them. Accept them all first (http_drain_step). */
void
http_stop(struct http *h)
{
    h->stopping = true;
    h->drain_start_ns = of_mono_ns();
    if (h->bound != NULL)
        conn_drain(h->conns);
}

/* Is a connection waiting in the listen backlog? */
static bool
backlog_pending(struct http *h)
{
    struct pollfd p = { .fd = evhttp_bound_socket_get_fd(h->bound), .events = POLLIN };
    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
}

bool
http_drain_step(struct http *h)
{
    if (h->bound != NULL) {
        /* the listener accepts until EAGAIN on each wake; close it once a
         * look finds the backlog empty (bounded, if clients keep coming) */
        if (backlog_pending(h) && of_mono_ns() - h->drain_start_ns < HTTP_DRAIN_MAX_NS)
            return false;
        evhttp_del_accept_socket(h->evh, h->bound);
        h->bound = NULL;
        conn_listening(h->conns, NULL);
    }
    conn_close_idle(h->conns);
    return h->outstanding <= 0 && conn_count(h->conns) == 0;
}

long
http_outstanding(const struct http *h)
{
    return h->outstanding;
}

void
http_flush_log(struct http *h)
{
    if (h->alog != NULL)
        accesslog_flush(h->alog);
}
