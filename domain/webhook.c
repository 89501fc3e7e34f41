/*
 * webhook.c -- webhook input rules and the webhook admin service (see
 * webhook.h).
 */
#include "domain/webhook.h"
#include "common/ids.h"
#include "common/of.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool
has_prefix_ci(const char *s, size_t len, const char *p)
{
    size_t pl = strlen(p);
    return len >= pl && strncasecmp(s, p, pl) == 0;
}

static bool
port_ok(const char *s, size_t len)
{
    int64_t port;
    return len >= 1 && len <= 5 && of_parse_i64(s, len, 1, 65535, &port) == 0;
}

/* host[:port] or [v6][:port], no '@' (checked by the caller) */
static enum webhook_url_rc
authority_check(const char *a, size_t len)
{
    const char *host = a, *colon = NULL;
    size_t      hlen = len;
    if (len > 0 && a[0] == '[') {
        const char *end = memchr(a, ']', len);
        if (end == NULL || end == a + 1)
            return WEBHOOK_URL_HOST;
        size_t rest = len - (size_t)(end + 1 - a);
        if (rest == 0)
            return WEBHOOK_URL_OK;
        if (end[1] != ':')
            return WEBHOOK_URL_HOST;
        return port_ok(end + 2, rest - 1) ? WEBHOOK_URL_OK : WEBHOOK_URL_PORT;
    }
    for (size_t i = 0; i < len; i++)
        if (a[i] == ':')
            colon = a + i;
    if (colon != NULL)
        hlen = (size_t)(colon - a);
    if (hlen == 0)
        return WEBHOOK_URL_HOST;
    for (size_t i = 0; i < hlen; i++) {
        char c = host[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                  || c == '-' || c == '.' || c == '_' || c == '%';
        if (!ok)
            return WEBHOOK_URL_HOST;
    }
    if (colon != NULL && !port_ok(colon + 1, len - hlen - 1))
        return WEBHOOK_URL_PORT;
    return WEBHOOK_URL_OK;
}

enum webhook_url_rc
webhook_url_check(const char *s, size_t len, bool allow_http)
{
    size_t skip;
    if (has_prefix_ci(s, len, "https://"))
        skip = 8;
    else if (allow_http && has_prefix_ci(s, len, "http://"))
        skip = 7;
    else
        return WEBHOOK_URL_SCHEME;
    if (len > WEBHOOK_URL_MAX)
        return WEBHOOK_URL_LONG;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return WEBHOOK_URL_CHARS;
    const char *a = s + skip;
    size_t      alen = 0;
    while (alen < len - skip && a[alen] != '/' && a[alen] != '?' && a[alen] != '#')
        alen++;
    if (memchr(a, '@', alen) != NULL)
        return WEBHOOK_URL_USERINFO;
    return authority_check(a, alen);
}

const char *
webhook_url_msg(enum webhook_url_rc rc, bool allow_http)
{
    switch (rc) {
    case WEBHOOK_URL_OK:       return "";
    case WEBHOOK_URL_SCHEME:
        return allow_http ? "URL must be an absolute http:// or https:// URL"
                          : "URL must be an absolute https:// URL";
    case WEBHOOK_URL_CHARS:    return "URL must be printable ASCII without spaces";
    case WEBHOOK_URL_LONG:     return "URL should have at most 2000 characters";
    case WEBHOOK_URL_USERINFO: return "URL must not contain credentials";
    case WEBHOOK_URL_HOST:     return "URL must have a valid host";
    case WEBHOOK_URL_PORT:     return "URL has an invalid port";
    }
    return "Invalid URL";
}

#define MSG_EVENTS_EMPTY "List should have at least 1 item"
#define MSG_EVENT_UNKNOWN \
    "Input should be 'order.created', 'order.status_changed' or 'transfer.created'"
#define MSG_EVENT_DUP    "Duplicate event type"

static void
events_validate(const struct webhook_input *in, struct of_verrs *v)
{
    bool seen[EVENT_TYPE_COUNT] = { false };
    if (in->n_events == 0) {
        of_verr_add(v, OF_VE_VALUE, MSG_EVENTS_EMPTY, OF_K("body"), OF_K("events"), OF_END);
        return;
    }
    for (size_t i = 0; i < in->n_events; i++) {
        enum event_type t;
        if (in->events[i] == NULL)
            continue;       /* not a string: already reported */
        if (!event_type_parse(in->events[i], in->event_lens[i], &t))
            of_verr_add(v, OF_VE_VALUE, MSG_EVENT_UNKNOWN, OF_K("body"), OF_K("events"),
                        OF_I(i), OF_END);
        else if (seen[t])
            of_verr_add(v, OF_VE_VALUE, MSG_EVENT_DUP, OF_K("body"), OF_K("events"), OF_I(i), OF_END);
        else
            seen[t] = true;
    }
}

void
webhook_validate(struct webhook_input *in, bool create, bool allow_http, struct of_verrs *v)
{
    if (in->has_url && in->url != NULL) {
        enum webhook_url_rc rc = webhook_url_check(in->url, in->url_len, allow_http);
        if (rc != WEBHOOK_URL_OK)
            of_verr_add(v, OF_VE_VALUE, webhook_url_msg(rc, allow_http), OF_K("body"),
                        OF_K("url"), OF_END);
    } else if (!in->has_url && create) {
        of_verr_add(v, OF_VE_MISSING, "Field required", OF_K("body"), OF_K("url"), OF_END);
    }
    if (in->has_events && in->events != NULL)
        events_validate(in, v);
    else if (!in->has_events && create)
        of_verr_add(v, OF_VE_MISSING, "Field required", OF_K("body"), OF_K("events"), OF_END);
    if (in->has_description && in->description != NULL) {
        long n = of_utf8_len(in->description, in->description_len);
        if (n < 0 || n > WEBHOOK_DESC_MAX)
            of_verr_add(v, OF_VE_VALUE, "String should have at most 500 characters",
                        OF_K("body"), OF_K("description"), OF_END);
    }
    if (create && !in->has_is_active) {
        in->has_is_active = true;
        in->is_active = true;
    }
}

/* ---- service ---- */

struct webhook_svc {
    struct webhook_repo repo;
    bool                allow_http;
};

struct webhook_svc *
webhook_svc_create(struct webhook_repo repo, bool allow_http)
{
    struct webhook_svc *s = calloc(1, sizeof(*s));
    if (s != NULL) {
        s->repo = repo;
        s->allow_http = allow_http;
    }
    return s;
}

void
webhook_svc_destroy(struct webhook_svc *s)
{
    free(s);
}

void
webhook_svc_get(struct webhook_svc *s, struct of_mem *m, int64_t id, webhook_cb cb, void *arg)
{
    s->repo.ops->get(s->repo.self, m, id, cb, arg);
}

void
webhook_svc_list(struct webhook_svc *s, struct of_mem *m, const struct page_req *pg,
                 webhook_list_cb cb, void *arg)
{
    s->repo.ops->list(s->repo.self, m, pg, cb, arg);
}

/* The create's answer gets the secret, which only the service knows. */
struct created {
    const char *secret;
    webhook_cb  cb;
    void       *arg;
    struct of_mem *m;
};

static void
on_created(int rc, const struct webhook *w, void *arg)
{
    struct created *c = arg;
    if (rc != OF_OK || w == NULL) {
        c->cb(rc == OF_OK ? OF_ERR : rc, NULL, c->arg);
        return;
    }
    struct webhook *out = of_mem_alloc(c->m, sizeof(*out));
    *out = *w;
    out->secret = c->secret;
    c->cb(OF_OK, out, c->arg);
}

void
webhook_svc_create_one(struct webhook_svc *s, struct of_mem *m, struct webhook_input *in,
                       struct of_verrs *v, webhook_cb cb, void *arg)
{
    webhook_validate(in, true, s->allow_http, v);
    if (of_verrs_any(v) || in->bad) {
        cb(OF_INVALID, NULL, arg);
        return;
    }
    struct created *c = of_mem_calloc(m, sizeof(*c));
    char *secret = of_mem_alloc(m, OF_WHSEC_CAP);
    of_webhook_secret_new(secret);
    c->secret = secret;
    c->cb = cb;
    c->arg = arg;
    c->m = m;
    s->repo.ops->create(s->repo.self, m, in, secret, on_created, c);
}

void
webhook_svc_update(struct webhook_svc *s, struct of_mem *m, int64_t id,
                   struct webhook_input *in, struct of_verrs *v, webhook_cb cb, void *arg)
{
    webhook_validate(in, false, s->allow_http, v);
    if (of_verrs_any(v) || in->bad) {
        cb(OF_INVALID, NULL, arg);
        return;
    }
    s->repo.ops->update(s->repo.self, m, id, in, cb, arg);
}

void
webhook_svc_delete(struct webhook_svc *s, struct of_mem *m, int64_t id, webhook_done_cb cb,
                   void *arg)
{
    s->repo.ops->remove(s->repo.self, m, id, cb, arg);
}

void
webhook_svc_deliveries(struct webhook_svc *s, struct of_mem *m, int64_t webhook_id,
                       const struct page_req *pg, webhook_delivery_list_cb cb, void *arg)
{
    s->repo.ops->deliveries(s->repo.self, m, webhook_id, pg, cb, arg);
}

void
webhook_svc_retry(struct webhook_svc *s, struct of_mem *m, int64_t webhook_id,
                  int64_t delivery_id, webhook_retry_cb cb, void *arg)
{
    s->repo.ops->retry(s->repo.self, m, webhook_id, delivery_id, cb, arg);
}
