/*
 * idem.c -- Idempotency-Key over HTTP (contract: idem.h; protocol:
 * domain/idem.h): header validation, fingerprint of the canonical body,
 * sending a run's answer byte for byte.
 */
#include "handlers/idem.h"
#include "domain/rules.h"
#include "common/of.h"

#include <stdlib.h>
#include <string.h>

#define JSON_CT "application/json"

void
hdl_idem_key(struct hdl_req *r, struct of_verrs *v, struct idem_key *k, const char *route)
{
    k->user_id = r->who.user_id;
    k->route = route;
    k->key = NULL;
    k->fingerprint[0] = '\0';
    const char *h = r->io->header(r, "Idempotency-Key");
    if (h == NULL)
        return;
    if (rules_idem_key(h, strlen(h)) != OF_OK) {
        of_verr_add(v, OF_VE_VALUE, rules_strerror(RULES_E_IDEM_KEY),
                    OF_K("header"), OF_K("Idempotency-Key"), OF_END);
        return;
    }
    k->key = of_mem_strdup(r->mem, h);
}

static const char *
method_name(enum hdl_method m)
{
    switch (m) {
    case HDL_GET:     return "GET";
    case HDL_POST:    return "POST";
    case HDL_PUT:     return "PUT";
    case HDL_PATCH:   return "PATCH";
    case HDL_DELETE:  return "DELETE";
    case HDL_HEAD:    return "HEAD";
    case HDL_OPTIONS: return "OPTIONS";
    }
    return "?";
}

void
hdl_idem_fingerprint(struct hdl_req *r, json_t *body, struct idem_key *k)
{
    char *canon = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    rules_fingerprint(method_name(r->method), r->path, canon, k->fingerprint);
    free(canon);
}

const char *
hdl_json_text(struct hdl_req *r, json_t *j)
{
    if (j == NULL)
        return NULL;
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s == NULL)
        return NULL;
    const char *out = of_mem_strdup(r->mem, s);
    free(s);
    return out;
}

bool
hdl_idem_send(struct hdl_req *r, const struct idem_answer *a)
{
    switch (a->rc) {
    case OF_OK:
        if (a->body == NULL)
            return false;
        if (a->replayed)
            r->io->add_header(r, "Idempotent-Replayed", "true");
        r->io->send(r, a->status, JSON_CT, a->body, strlen(a->body));
        return true;
    case OF_INVALID:
        hdl_reply_error(r, 422, "Idempotency-Key reused with a different request");
        return true;
    case OF_CONFLICT:
        hdl_reply_error(r, 409, "A request with this Idempotency-Key is in progress");
        return true;
    default:
        hdl_reply_rc(r, a->rc);
        return true;
    }
}
