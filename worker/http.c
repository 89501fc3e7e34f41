/*
 * http.c -- one HTTP request's life in a worker, top to bottom:
 *
 *   on_request   evhttp has read the whole request; make a wreq, run the
 *                middleware (request id, client ip, CORS, route, body size,
 *                auth) and hand it to the route's handler.
 *   io_send      the handler's one answer: headers, body, access log,
 *                metrics. The wreq lives on until evhttp has written it.
 *   on_complete  the response left; free the wreq.
 *   on_close     the connection died first; free it now, or mark it
 *                abandoned so the handler's eventual answer frees it.
 *
 * Every wreq is freed in exactly one place, wreq_free().
 */
#include "worker/worker_int.h"
#include "worker/router.h"
#include "worker/conn.h"
#include "worker/jwt.h"
#include "worker/ratelimit.h"
#include "common/log.h"
#include "common/util.h"
#include "common/urlcode.h"
#include "domain/auth_svc.h"

#include <arpa/inet.h>
#include <event2/keyvalq_struct.h>
#include <event2/event_struct.h>
#include <unistd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

struct wreq {
    struct hdl_req             r;
    struct of_mem              mem;
    struct worker             *w;
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
    size_t                     bytes;
    bool                       replied;
    bool                       gone;
    char                       request_id[129];
    char                       client_ip[INET6_ADDRSTRLEN];
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
    struct worker *w = q->w;
    of_mem_release(&q->mem);
    if (wreq_cached < WREQ_CACHE)
        wreq_cache[wreq_cached++] = q;
    else
        free(q);
    w->outstanding--;
    if (w->stopping)
        worker_maybe_exit(w);
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

/* The peer's address, or -- when the peer is a trusted proxy -- the rightmost
 * X-Forwarded-For entry that is not itself a trusted proxy. */
static void
set_client_ip(struct wreq *q, struct evkeyvalq *in)
{
    const struct cfg_server *s = &q->w->cfg->server;
    const struct sockaddr   *peer = evhttp_connection_get_addr(q->evcon);
    struct sockaddr_storage  unix_peer;

    if (peer == NULL) {
        memset(&unix_peer, 0, sizeof(unix_peer));
        unix_peer.ss_family = AF_UNIX;
        peer = (const struct sockaddr *)&unix_peer;
    }
    sockaddr_str(peer, q->client_ip, sizeof(q->client_ip));
    q->r.client_ip = q->client_ip;

    bool trusted = peer->sa_family == AF_UNIX ||
                   netaddr_cidr_match(s->forwarded_allow, s->n_forwarded_allow, peer);
    if (!trusted)
        return;
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
    const struct cfg_cors *c = &q->w->cfg->cors;
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
    char line[1024], path[300], ts[40];

    if (!q->w->cfg->server.access_log || of_log_min > OF_LOG_INFO)
        return;
    of_json_escape(path, sizeof(path), q->r.path ? q->r.path : "");
    of_rfc3339_now(ts, sizeof(ts));
    struct worker *w = q->w;
    int n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%s\",\"level\":\"info\",\"role\":\"worker\",\"pid\":%ld,"
                     "\"msg\":\"access\",\"request_id\":\"%s\",\"method\":\"%s\",\"route\":\"%s\","
                     "\"path\":\"%s\",\"status\":%d,\"bytes\":%zu,\"latency_ms\":%llu.%03llu,"
                     "\"client_ip\":\"%s\",\"user_id\":%lld}\n",
                     ts, (long)w->pid, q->request_id, q->method_name,
                     q->route ? q->route->tmpl : "unmatched", path, q->status, q->bytes,
                     (unsigned long long)(dur_ns / 1000000u), (unsigned long long)(dur_ns / 1000u % 1000u), q->client_ip, (long long)q->r.who.user_id);
    if (n <= 0 || (size_t)n >= sizeof(line))
        return;
    if (w->alog_len + (size_t)n > sizeof(w->alog))
        http_flush_access_log(w);
    if (w->alog_len == 0)
        event_active(w->alog_ev, EV_TIMEOUT, 0);
    memcpy(w->alog + w->alog_len, line, (size_t)n);
    w->alog_len += (size_t)n;
}

void
http_flush_access_log(struct worker *w)
{
    if (w->alog_len == 0)
        return;
    of_log_lines(w->alog, w->alog_len);
    w->alog_len = 0;
}

static void
on_alog_flush(evutil_socket_t fd, short what, void *arg)
{
    OF_UNUSED(fd);
    OF_UNUSED(what);
    http_flush_access_log(arg);
}

static void
io_send(struct hdl_req *r, int status, const char *ctype, const char *body, size_t len)
{
    struct wreq   *q = (struct wreq *)r;
    struct worker *w = q->w;

    if (q->replied) {
        of_log_error("request %s answered twice (bug)", q->request_id);
        return;
    }
    q->replied = true;
    q->status = status;
    q->bytes = len;
    uint64_t dur = of_mono_ns() - q->start_ns;
    of_sb_record(w->slot, q->route ? q->route->id : 0, q->method_idx, status, dur / 1000);
    access_log(q, dur);
    w->handled++;

    struct evkeyvalq *out = evhttp_request_get_output_headers(q->ev);
    if (!q->gone) {
        if (ctype != NULL)
            evhttp_add_header(out, "Content-Type", ctype);
        evhttp_add_header(out, "X-Request-ID", q->request_id);
        if (q->origin != NULL) {
            evhttp_add_header(out, "Access-Control-Allow-Origin", q->origin);
            evhttp_add_header(out, "Vary", "Origin");
        }
        if (w->stopping)
            evhttp_add_header(out, "Connection", "close");
    }
    /* evhttp would send a body after a HEAD response too (without a
     * Content-Length), which desynchronises keep-alive clients. */
    if (len > 0 && q->r.method != HDL_HEAD)
        evbuffer_add(w->outbuf, body, len);
    /* A detached request (client gone) is freed inside this call. */
    evhttp_send_reply(q->ev, status, NULL, w->outbuf);
    evbuffer_drain(w->outbuf, evbuffer_get_length(w->outbuf));
    if (q->gone) {
        event_assign(&q->free_ev, w->base, -1, 0, deferred_free, q);
        event_active(&q->free_ev, EV_TIMEOUT, 0);
    }
    if (w->max_requests > 0 && (long)w->handled >= w->max_requests && !w->stopping)
        worker_begin_stop(w, "max_requests reached");
}

static const struct hdl_io wreq_io = {
    .header = io_header,
    .add_header = io_add_header,
    .send = io_send,
};

/* ---- dispatch ---- */

static void
too_many(struct wreq *q, int retry_after)
{
    hdl_reply_too_many(&q->r, retry_after);
}

static void
dispatch(struct wreq *q)
{
    q->route->fn(&q->r);
}

static void
on_principal(int rc, const struct user *u, void *arg)
{
    struct wreq *q = arg;

    if (rc == OF_UNAVAILABLE) {
        hdl_reply_error(&q->r, 503, "Service unavailable");
        return;
    }
    if (rc != OF_OK) {
        hdl_reply_error(&q->r, rc == OF_ERR ? 500 : 401,
                        rc == OF_ERR ? "Internal server error" : "Could not validate credentials");
        return;
    }
    q->r.who.user_id = u->id;
    q->r.who.role = u->role == ROLE_ADMIN ? HDL_ROLE_ADMIN : HDL_ROLE_USER;
    q->r.who.email = of_mem_strdup(&q->mem, u->email);
    q->r.who.created_at = of_mem_strdup(&q->mem, u->created_at);
    if (q->route->auth == RT_ADMIN && q->r.who.role != HDL_ROLE_ADMIN) {
        hdl_reply_error(&q->r, 403, "Insufficient permissions");
        return;
    }
    int retry;
    if ((q->route->flags & RT_WRITE) && !ratelimit_allow_write(q->w, q->r.who.user_id, &retry)) {
        too_many(q, retry);
        return;
    }
    dispatch(q);
}

static void
authenticate(struct wreq *q)
{
    const struct cfg_auth *a = &q->w->cfg->auth;
    const char *h = io_header(&q->r, "Authorization");
    int64_t     uid;
    char        role[16];

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0 ||
        jwt_verify((const unsigned char *)a->jwt_secret, a->jwt_secret_len, h + 7, &uid, role) != OF_OK) {
        hdl_reply_error(&q->r, 401, "Could not validate credentials");
        return;
    }
    auth_svc_current(q->w->svc.auth, &q->mem, uid, on_principal, q);
}

static void
preflight(struct wreq *q)
{
    const struct cfg_cors *c = &q->w->cfg->cors;
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

static void
on_request(struct evhttp_request *ev, void *arg)
{
    struct worker *w = arg;
    struct wreq   *q = wreq_alloc();
    if (q == NULL) {
        evhttp_send_error(ev, 503, NULL);
        return;
    }
    memset(&q->r, 0, sizeof(q->r));
    of_mem_init(&q->mem);
    q->w = w;
    q->ev = ev;
    q->evcon = evhttp_request_get_connection(ev);
    q->start_ns = of_mono_ns();
    q->route = NULL;
    q->replied = q->gone = false;
    q->status = 0;
    q->bytes = 0;
    q->r.mem = &q->mem;
    q->r.io = &wreq_io;
    q->r.owner = q;
    q->r.svc = &w->svc;
    w->outstanding++;
    q->conn = conn_of(w, q->evcon);
    if (q->conn != NULL)
        conn_request_begin(q->conn, q, req_conn_closed);
    else
        evhttp_connection_set_closecb(q->evcon, on_close, q);
    evhttp_request_set_on_complete_cb(ev, on_complete, q);

    struct evkeyvalq *in = evhttp_request_get_input_headers(ev);
    q->r.method = method_of(ev, &q->method_name);
    q->method_idx = of_sb_method_index(q->method_name);
    set_request_id(q, in);
    set_client_ip(q, in);
    set_cors_origin(q, in);

    const char *uri = evhttp_request_get_uri(ev);
    const char *qm = strchr(uri, '?');
    q->r.path = decode_path(&q->mem, uri, qm ? (size_t)(qm - uri) : strlen(uri));
    q->r.query = qm ? qm + 1 : NULL;

    if (!framing_ok(ev, q->r.method)) {
        io_add_header(&q->r, "Connection", "close");
        hdl_reply_error(&q->r, 400, "Bad request");
        return;
    }
    if (q->r.method == HDL_OPTIONS && evhttp_find_header(in, "Access-Control-Request-Method")) {
        preflight(q);
        return;
    }
    struct router_match m;
    switch (router_match(q->r.method, q->r.path, &m)) {
    case ROUTER_NOT_FOUND:
        hdl_reply_error(&q->r, 404, "Not Found");
        return;
    case ROUTER_METHOD_NOT_ALLOWED: {
        char allow[64];
        router_allow_string(m.allow, allow, sizeof(allow));
        io_add_header(&q->r, "Allow", allow);
        hdl_reply_error(&q->r, 405, "Method Not Allowed");
        return;
    }
    case ROUTER_FOUND:
        break;
    }
    q->route = m.route;
    q->r.ids[0] = m.ids[0];
    q->r.ids[1] = m.ids[1];
    q->r.nids = m.nids;

    struct evbuffer *body = evhttp_request_get_input_buffer(ev);
    size_t blen = evbuffer_get_length(body);
    if (blen > w->cfg->server.max_body_size) {
        io_add_header(&q->r, "Connection", "close");
        hdl_reply_error(&q->r, 413, "Request body too large");
        return;
    }
    char *b = of_mem_alloc(&q->mem, blen + 1);
    if (blen > 0)
        evbuffer_copyout(body, b, blen);
    b[blen] = '\0';
    q->r.body = b;
    q->r.body_len = blen;

    int retry;
    if ((m.route->flags & RT_LOGIN) && !ratelimit_allow_login_ip(w, q->client_ip, &retry)) {
        too_many(q, retry);
        return;
    }
    if (m.route->auth != RT_PUBLIC) {
        authenticate(q);
        return;
    }
    dispatch(q);
}

void
http_setup(struct worker *w)
{
    const struct cfg_server *s = &w->cfg->server;

    evhttp_set_gencb(w->http, on_request, w);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                               EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD |
                               EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
    evhttp_set_max_headers_size(w->http, (ev_ssize_t)s->max_header_size);
    /* evhttp answers bodies past its own limit with an HTML 413 before we see
     * them; keep its limit well above ours so the usual oversized body gets
     * API.md's JSON 413 from on_request, while memory per connection stays
     * bounded. */
    evhttp_set_max_body_size(w->http, (ev_ssize_t)(s->max_body_size * 4 + 65536));
    evhttp_set_timeout(w->http, s->timeout);
    w->outbuf = evbuffer_new();
    w->alog_ev = event_new(w->base, -1, 0, on_alog_flush, w);
    if (w->outbuf == NULL || w->alog_ev == NULL || conn_setup(w) != OF_OK)
        of_fatal("setting up HTTP failed");
}
