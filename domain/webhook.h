/*
 * webhook.h -- webhook subscriptions (API.md, Events: Webhooks): entity,
 * input rules, the repository interface and the admin service, plus the
 * read side of their deliveries (listing, manual retry).
 *
 * Rules (pure, unit-tested): url absolute https:// (http:// too when the
 * service was made with allow_http), printable ASCII, at most 2,000
 * characters, a host, no userinfo, a port 1..65535 when one is given;
 * events a non-empty list of known event types (domain/event.h) without
 * repeats; description at most 500 characters (null allowed). Problems are
 * 422s at ["body", field(, index)].
 *
 * The secret ("whsec_" + base64 of 32 random bytes) is made by the service on
 * create and is returned only by that call; reads never carry it.
 * Repositories answer asynchronously, exactly once; results live in the
 * caller's arena.
 */
#ifndef OF_DOMAIN_WEBHOOK_H
#define OF_DOMAIN_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mem.h"
#include "domain/event.h"
#include "domain/page.h"
#include "domain/verr.h"

#define WEBHOOK_URL_MAX   2000   /* characters */
#define WEBHOOK_DESC_MAX  500    /* characters */

struct webhook {
    int64_t            id;
    const char        *url;
    const char *const *events;        /* n_events type names */
    size_t             n_events;
    const char        *description;   /* NULL: JSON null */
    bool               is_active;
    const char        *secret;        /* only in create's answer, else NULL */
    const char        *created_at;
};

struct webhook_delivery {
    int64_t     id;
    const char *event_id;
    const char *event_type;
    const char *status;               /* pending | succeeded | dead */
    int64_t     attempts;
    bool        has_status_code;
    int64_t     last_status_code;
    const char *last_error;           /* NULL: JSON null */
    const char *next_attempt_at;
    const char *created_at;
    const char *delivered_at;         /* NULL: JSON null */
};

/* A create or a patch; has_* says which fields were given. A field with the
 * wrong JSON type counts as given, its problem already reported, and sets
 * bad (its value is not used). events[i] is NULL for a member that was not a
 * string (reported by the handler at ["body","events",i]). */
struct webhook_input {
    bool         has_url, has_events, has_description, has_is_active, bad;
    const char  *url;
    size_t       url_len;
    const char **events;
    size_t      *event_lens;
    size_t       n_events;
    const char  *description;         /* NULL with has_description: null (clears it) */
    size_t       description_len;
    bool         is_active;
};

enum webhook_url_rc {
    WEBHOOK_URL_OK = 0,
    WEBHOOK_URL_SCHEME,     /* not https:// (or http:// when allowed) */
    WEBHOOK_URL_CHARS,      /* not printable ASCII */
    WEBHOOK_URL_LONG,       /* over WEBHOOK_URL_MAX */
    WEBHOOK_URL_USERINFO,   /* user:password@ */
    WEBHOOK_URL_HOST,       /* no host */
    WEBHOOK_URL_PORT,       /* port not 1..65535 */
};

/* The URL rule for s[0..len); its message (a string literal). */
enum webhook_url_rc webhook_url_check(const char *s, size_t len, bool allow_http);
const char *webhook_url_msg(enum webhook_url_rc rc, bool allow_http);

/* Every field rule; create: url and events are required, is_active
 * defaults to true. Problems go to v. */
void webhook_validate(struct webhook_input *in, bool create, bool allow_http, struct of_verrs *v);

struct webhook_list {
    const struct webhook *items;
    size_t                n;
    int64_t               total;
};

struct webhook_delivery_list {
    const struct webhook_delivery *items;
    size_t                         n;
    int64_t                        total;
};

typedef void (*webhook_cb)(int rc, const struct webhook *w, void *arg);
typedef void (*webhook_list_cb)(int rc, const struct webhook_list *l, void *arg);
typedef void (*webhook_done_cb)(int rc, void *arg);
typedef void (*webhook_delivery_list_cb)(int rc, const struct webhook_delivery_list *l, void *arg);
/* rc OF_OK: d is the delivery, pending again. OF_NOTFOUND: no such webhook
 * (webhook_found false) or no such delivery of it. OF_CONFLICT: it already
 * succeeded (d set). */
typedef void (*webhook_retry_cb)(int rc, bool webhook_found, const struct webhook_delivery *d,
                                 void *arg);

struct webhook_repo_ops {
    void (*get)(void *self, struct of_mem *m, int64_t id, webhook_cb cb, void *arg);
    /* by id; pg by offset or keyset (domain/page.h) */
    void (*list)(void *self, struct of_mem *m, const struct page_req *pg,
                 webhook_list_cb cb, void *arg);
    /* the answer carries no secret; the service adds it */
    void (*create)(void *self, struct of_mem *m, const struct webhook_input *in,
                   const char *secret, webhook_cb cb, void *arg);
    /* fields without has_* are left as they are; OF_NOTFOUND */
    void (*update)(void *self, struct of_mem *m, int64_t id, const struct webhook_input *in,
                   webhook_cb cb, void *arg);
    /* its deliveries go with it (pending ones are abandoned); OF_NOTFOUND */
    void (*remove)(void *self, struct of_mem *m, int64_t id, webhook_done_cb cb, void *arg);
    /* newest first (id descending); OF_NOTFOUND when the webhook does not exist */
    void (*deliveries)(void *self, struct of_mem *m, int64_t webhook_id,
                       const struct page_req *pg, webhook_delivery_list_cb cb, void *arg);
    /* dead -> pending, due now, attempts kept; a pending one is made due now
     * unless in flight; NOTIFY so the jobs process looks. */
    void (*retry)(void *self, struct of_mem *m, int64_t webhook_id, int64_t delivery_id,
                  webhook_retry_cb cb, void *arg);
};

struct webhook_repo {
    const struct webhook_repo_ops *ops;
    void                          *self;
};

struct webhook_svc;
struct webhook_svc *webhook_svc_create(struct webhook_repo repo, bool allow_http);
void webhook_svc_destroy(struct webhook_svc *s);

void webhook_svc_get(struct webhook_svc *s, struct of_mem *m, int64_t id, webhook_cb cb, void *arg);
void webhook_svc_list(struct webhook_svc *s, struct of_mem *m, const struct page_req *pg,
                      webhook_list_cb cb, void *arg);
/* Validate (OF_INVALID with problems in v, answered at once), make the
 * secret, write; the answer is the only one that carries the secret. */
void webhook_svc_create_one(struct webhook_svc *s, struct of_mem *m, struct webhook_input *in,
                            struct of_verrs *v, webhook_cb cb, void *arg);
void webhook_svc_update(struct webhook_svc *s, struct of_mem *m, int64_t id,
                        struct webhook_input *in, struct of_verrs *v, webhook_cb cb, void *arg);
void webhook_svc_delete(struct webhook_svc *s, struct of_mem *m, int64_t id,
                        webhook_done_cb cb, void *arg);
void webhook_svc_deliveries(struct webhook_svc *s, struct of_mem *m, int64_t webhook_id,
                            const struct page_req *pg, webhook_delivery_list_cb cb, void *arg);
void webhook_svc_retry(struct webhook_svc *s, struct of_mem *m, int64_t webhook_id,
                       int64_t delivery_id, webhook_retry_cb cb, void *arg);

#endif
