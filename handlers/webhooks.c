/*
 * webhooks.c -- webhook subscriptions over HTTP (admin only; the router
 * checks the role). JSON <-> webhook_input, then the webhook service; the
 * rules live in domain/webhook.c. The secret is rendered only in the
 * create's answer (the service sets it there and nowhere else).
 */
#include "handlers/webhooks.h"
#include "handlers/services.h"
#include "handlers/list.h"
#include "domain/webhook.h"
#include "domain/rules.h"
#include "common/of.h"

#include <string.h>

static json_t *
webhook_json(const void *item)
{
    const struct webhook *w = item;
    json_t *events = json_array();
    for (size_t i = 0; i < w->n_events; i++)
        json_array_append_new(events, json_string(w->events[i]));
    json_t *o = json_pack("{s:I,s:s,s:o,s:o,s:b,s:s}", "id", (json_int_t)w->id, "url", w->url,
                          "events", events,
                          "description", w->description ? json_string(w->description) : json_null(),
                          "is_active", w->is_active, "created_at", w->created_at);
    if (o != NULL && w->secret != NULL)
        json_object_set_new(o, "secret", json_string(w->secret));
    return o;
}

static json_t *
opt_str(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static json_t *
delivery_json(const void *item)
{
    const struct webhook_delivery *d = item;
    return json_pack("{s:I,s:o,s:o,s:o,s:I,s:o,s:o,s:o,s:o,s:o}",
        "id", (json_int_t)d->id,
        "event_id", opt_str(d->event_id),
        "event_type", opt_str(d->event_type),
        "status", opt_str(d->status),
        "attempts", (json_int_t)d->attempts,
        "last_status_code", d->has_status_code ? json_integer(d->last_status_code) : json_null(),
        "last_error", opt_str(d->last_error),
        "next_attempt_at", opt_str(d->next_attempt_at),
        "created_at", opt_str(d->created_at),
        "delivered_at", opt_str(d->delivered_at));
}

/* ---- reads ---- */

static void
got(int rc, const struct webhook *w, void *arg)
{
    hdl_reply_item(arg, rc, w, webhook_json, "Webhook");
}

void
hdl_webhooks_get(struct hdl_req *r)
{
    webhook_svc_get(r->svc->webhooks, r->mem, r->ids[0], got, r);
}

/* The cursor's key: both structs start with their id (sorted by id). */
static const char *
id_key(struct of_mem *m, const void *item, unsigned sort, int64_t *id)
{
    OF_UNUSED(m);
    OF_UNUSED(sort);
    *id = *(const int64_t *)item;
    return "";
}

static void
listed(int rc, const struct webhook_list *l, void *arg)
{
    hdl_reply_list(arg, rc, l ? l->items : NULL, l ? l->n : 0, sizeof(*l->items), webhook_json,
                   l ? l->total : 0, id_key);
}

/* The page asked for into *pg (offset, or a cursor of kind bound to the
 * webhook scope); false (422 sent) on problems. */
static bool
paging(struct hdl_call *c, unsigned kind, int64_t scope, struct page_req *pg)
{
    hdl_paging(c->r, &c->v, &c->pg);
    hdl_list_page(c, kind, 0, of_mem_printf(c->r->mem, "webhook=%lld", (long long)scope), pg);
    if (!of_verrs_any(&c->v))
        return true;
    hdl_reply_verrs(c->r, &c->v);
    return false;
}

void
hdl_webhooks_list(struct hdl_req *r)
{
    struct hdl_call *c = hdl_call_new(r);
    struct page_req  pg;
    if (!paging(c, HDL_LIST_WEBHOOKS, 0, &pg))
        return;
    webhook_svc_list(r->svc->webhooks, r->mem, &pg, listed, c);
}

static void
deliveries_listed(int rc, const struct webhook_delivery_list *l, void *arg)
{
    struct hdl_call *c = arg;
    if (rc == OF_NOTFOUND) {
        hdl_reply_not_found(c->r, "Webhook");
        return;
    }
    hdl_reply_list(c, rc, l ? l->items : NULL, l ? l->n : 0, sizeof(*l->items), delivery_json,
                   l ? l->total : 0, id_key);
}

void
hdl_webhooks_deliveries(struct hdl_req *r)
{
    struct hdl_call *c = hdl_call_new(r);
    struct page_req  pg;
    if (!paging(c, HDL_LIST_DELIVERIES, r->ids[0], &pg))
        return;
    webhook_svc_deliveries(r->svc->webhooks, r->mem, r->ids[0], &pg, deliveries_listed, c);
}

/* ---- writes ---- */

/* "events": a list of strings; members that are not strings are reported
 * here (type_error at ["body","events",i]) and left NULL. */
static void
parse_events(struct hdl_call *c, json_t *body, struct webhook_input *in)
{
    json_t *ev = json_object_get(body, "events");
    if (ev == NULL)
        return;
    in->has_events = true;
    if (!json_is_array(ev)) {
        of_verr_add(&c->v, OF_VE_TYPE, "Input should be a valid list", OF_K("body"),
                    OF_K("events"), OF_END);
        in->bad = true;
        return;
    }
    size_t n = json_array_size(ev);
    in->n_events = n;
    in->events = of_mem_calloc(c->r->mem, (n ? n : 1) * sizeof(*in->events));
    in->event_lens = of_mem_calloc(c->r->mem, (n ? n : 1) * sizeof(*in->event_lens));
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(ev, i);
        if (!json_is_string(e)) {
            of_verr_add(&c->v, OF_VE_TYPE, "Input should be a valid string", OF_K("body"),
                        OF_K("events"), OF_I(i), OF_END);
            in->bad = true;
            continue;
        }
        in->events[i] = json_string_value(e);
        in->event_lens[i] = json_string_length(e);
    }
}

/* Type problems go to c->v; the service adds rule problems. description
 * may be null (clears it); url, events and is_active may not. */
static void
parse_input(json_t *body, struct hdl_call *c, struct webhook_input *in)
{
    enum hdl_field f;

    memset(in, 0, sizeof(*in));
    f = hdl_field_str(body, "url", false, &c->v, &in->url, &in->url_len);
    in->has_url = f != FIELD_ABSENT;
    in->bad |= f == FIELD_BAD;
    if (f == FIELD_BAD)
        in->url = NULL;
    parse_events(c, body, in);
    json_t *d = json_object_get(body, "description");
    if (d != NULL && json_is_null(d)) {
        in->has_description = true;
    } else if (d != NULL) {
        f = hdl_field_str(body, "description", false, &c->v, &in->description,
                          &in->description_len);
        in->has_description = true;
        in->bad |= f == FIELD_BAD;
        if (f == FIELD_BAD)
            in->description = NULL;
    }
    f = hdl_field_bool(body, "is_active", false, &c->v, &in->is_active);
    in->has_is_active = f != FIELD_ABSENT;
    in->bad |= f == FIELD_BAD;
}

static void
written(int rc, const struct webhook *w, void *arg, int ok_status)
{
    struct hdl_call *c = arg;
    switch (rc) {
    case OF_OK:       hdl_reply_json(c->r, ok_status, webhook_json(w)); break;
    case OF_INVALID:  hdl_reply_verrs(c->r, &c->v); break;
    case OF_NOTFOUND: hdl_reply_not_found(c->r, "Webhook"); break;
    default:          hdl_reply_rc(c->r, rc); break;
    }
}

static void created(int rc, const struct webhook *w, void *arg) { written(rc, w, arg, 201); }
static void updated(int rc, const struct webhook *w, void *arg) { written(rc, w, arg, 200); }

void
hdl_webhooks_create(struct hdl_req *r)
{
    struct webhook_input in;
    json_t *body = hdl_json_body(r);
    if (body == NULL)
        return;
    struct hdl_call *c = hdl_call_new(r);
    parse_input(body, c, &in);
    webhook_svc_create_one(r->svc->webhooks, r->mem, &in, &c->v, created, c);
}

void
hdl_webhooks_patch(struct hdl_req *r)
{
    struct webhook_input in;
    json_t *body = hdl_json_body(r);
    if (body == NULL)
        return;
    struct hdl_call *c = hdl_call_new(r);
    parse_input(body, c, &in);
    webhook_svc_update(r->svc->webhooks, r->mem, r->ids[0], &in, &c->v, updated, c);
}

static void
deleted(int rc, void *arg)
{
    struct hdl_req *r = arg;
    if (rc == OF_OK)
        hdl_reply_empty(r, 204);
    else if (rc == OF_NOTFOUND)
        hdl_reply_not_found(r, "Webhook");
    else
        hdl_reply_rc(r, rc);
}

void
hdl_webhooks_delete(struct hdl_req *r)
{
    webhook_svc_delete(r->svc->webhooks, r->mem, r->ids[0], deleted, r);
}

static void
retried(int rc, bool webhook_found, const struct webhook_delivery *d, void *arg)
{
    struct hdl_req *r = arg;
    switch (rc) {
    case OF_OK:
        hdl_reply_json(r, 202, delivery_json(d));
        break;
    case OF_NOTFOUND:
        if (!webhook_found)
            hdl_reply_not_found(r, "Webhook");
        else
            hdl_reply_error(r, 404, of_mem_printf(r->mem, "Delivery %lld not found",
                                                  (long long)r->ids[1]));
        break;
    case OF_CONFLICT:
        hdl_reply_error(r, 409, of_mem_printf(r->mem, "Delivery %lld already succeeded",
                                              (long long)r->ids[1]));
        break;
    default:
        hdl_reply_rc(r, rc);
        break;
    }
}

void
hdl_webhooks_retry(struct hdl_req *r)
{
    webhook_svc_retry(r->svc->webhooks, r->mem, r->ids[0], r->ids[1], retried, r);
}
