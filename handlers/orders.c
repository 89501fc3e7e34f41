/*
 * orders.c -- orders over HTTP: JSON <-> order_input / order JSON, then the
 * order service. Rules live in domain/order.c; the idempotent create is
 * domain/idem.h's run, answered through handlers/idem.h.
 */
#include "handlers/list.h"
#include "handlers/orders.h"
#include "handlers/idem.h"
#include "handlers/services.h"
#include "domain/order.h"
#include "common/of.h"

#include <string.h>

#define ORDERS_ROUTE "POST /api/v1/orders"

static json_t *
order_json(const void *item)
{
    const struct order *o = item;
    json_t *items = json_array();
    for (size_t i = 0; i < o->n_items; i++) {
        const struct order_item *it = &o->items[i];
        json_array_append_new(items, json_pack("{s:I,s:o,s:s,s:I,s:o}",
            "id", (json_int_t)it->id,
            "product_id", it->product_id > 0 ? json_integer(it->product_id) : json_null(),
            "product_name", it->product_name ? it->product_name : "",
            "quantity", (json_int_t)it->quantity,
            "unit_price", hdl_money(it->unit_price)));
    }
    return json_pack("{s:I,s:I,s:s,s:s,s:o,s:o,s:o,s:o,s:s,s:s}",
        "id", (json_int_t)o->id,
        "customer_id", (json_int_t)o->customer_id,
        "customer_name", o->customer_name ? o->customer_name : "",
        "status", rules_status_name(o->status),
        "total", hdl_money(o->total),
        "notes", o->notes ? json_string(o->notes) : json_null(),
        "created_by", o->created_by > 0 ? json_integer(o->created_by) : json_null(),
        "items", items,
        "created_at", o->created_at ? o->created_at : "",
        "updated_at", o->updated_at ? o->updated_at : "");
}

/* A status change keeps the status asked for, for its 409's detail. */
struct status_call {
    struct hdl_call call;
    enum rules_status to;
};

static bool
is_admin(const struct hdl_req *r)
{
    return r->who.role == HDL_ROLE_ADMIN;
}

static int64_t
viewer_of(const struct hdl_req *r)
{
    return is_admin(r) ? 0 : r->who.user_id;
}

/* ---- create ---- */

static void
parse_items(struct hdl_req *r, json_t *body, struct of_verrs *v, struct order_input *in)
{
    json_t *items = json_object_get(body, "items");
    if (items == NULL) {
        of_verr_add(v, OF_VE_MISSING, "Field required", OF_K("body"), OF_K("items"), OF_END);
        return;
    }
    if (!json_is_array(items)) {
        of_verr_add(v, OF_VE_TYPE, "Input should be a valid list", OF_K("body"), OF_K("items"), OF_END);
        return;
    }
    size_t n = json_array_size(items);
    in->has_items = true;
    in->n_items = n;
    in->items = of_mem_calloc(r->mem, sizeof(*in->items) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(items, i);
        struct order_item_input *d = &in->items[i];
        if (!json_is_object(it)) {
            of_verr_add(v, OF_VE_TYPE, "Input should be a valid dictionary", OF_K("body"),
                        OF_K("items"), OF_I(i), OF_END);
            continue;
        }
        static const char *const keys[2] = { "product_id", "quantity" };
        for (int k = 0; k < 2; k++) {
            json_t *f = json_object_get(it, keys[k]);
            int64_t val = 0;
            if (f == NULL) {
                of_verr_add(v, OF_VE_MISSING, "Field required", OF_K("body"), OF_K("items"),
                            OF_I(i), OF_K(keys[k]), OF_END);
                continue;
            }
            if (hdl_value_int(f, v, "items", (int)i, keys[k], &val) != FIELD_OK)
                continue;
            if (k == 0) {
                d->product_id = val;
                d->has_product_id = true;
            } else {
                d->quantity = val;
                d->has_quantity = true;
            }
        }
    }
}

static int
create_render(void *arg, int rc, const void *result, const char **body)
{
    struct hdl_call *c = arg;
    const struct order_outcome *out = result;
    c->rc = rc;
    switch (rc) {
    case OF_OK:
        *body = hdl_json_text(c->r, order_json(out->order));
        return 201;
    case OF_CONFLICT:
        if (out == NULL)
            break;
        *body = hdl_json_text(c->r, json_pack("{s:s}", "detail",
            of_mem_printf(c->r->mem, "Product %lld is out of stock", (long long)out->out_of_stock)));
        return 409;
    case OF_INVALID:
        return 422;
    case OF_UNAVAILABLE:
        return 503;
    default:
        break;
    }
    c->rc = OF_ERR;
    return 500;
}

static void
create_done(void *arg, const struct idem_answer *a)
{
    struct hdl_call *c = arg;
    if (hdl_idem_send(c->r, a))
        return;
    if (c->rc == OF_INVALID)
        hdl_reply_verrs(c->r, &c->v);
    else
        hdl_reply_rc(c->r, c->rc == OF_OK ? OF_ERR : c->rc);
}

void
hdl_orders_create(struct hdl_req *r)
{
    json_t *body = hdl_json_body(r);
    if (body == NULL)
        return;
    struct hdl_call    *c = hdl_call_new(r);
    struct idem_key    *k = of_mem_calloc(r->mem, sizeof(*k));
    struct order_input *in = of_mem_calloc(r->mem, sizeof(*in));

    hdl_idem_key(r, &c->v, k, ORDERS_ROUTE);
    in->has_customer_id = hdl_field_int(body, "customer_id", true, &c->v, &in->customer_id) == FIELD_OK;
    parse_items(r, body, &c->v, in);
    json_t *notes = json_object_get(body, "notes");
    if (notes != NULL && !json_is_null(notes)) {
        if (json_is_string(notes)) {
            in->notes = json_string_value(notes);
            in->notes_len = json_string_length(notes);
        } else {
            of_verr_add(&c->v, OF_VE_TYPE, "Input should be a valid string", OF_K("body"),
                        OF_K("notes"), OF_END);
        }
    }
    in->traceparent = r->traceparent;
    hdl_idem_fingerprint(r, body, k);
    /* the service adds its own problems to v and answers 422 with all of them */
    order_svc_place(r->svc->orders, r->mem, in, r->who.user_id, k, &c->v,
                     create_render, create_done, c);
}

/* ---- reads ---- */

static void
got(int rc, const struct order *o, void *arg)
{
    hdl_reply_item(arg, rc, o, order_json, "Order");
}

void
hdl_orders_get(struct hdl_req *r)
{
    order_svc_get(r->svc->orders, r->mem, r->ids[0], viewer_of(r), got, r);
}

static const char *
order_key(struct of_mem *m, const void *item, unsigned sort, int64_t *id)
{
    const struct order *o = item;
    *id = o->id;
    switch (sort) {
    case OSORT_CREATED_AT: case OSORT_CREATED_AT_DESC: return o->created_at;
    case OSORT_TOTAL: case OSORT_TOTAL_DESC:           return of_mem_printf(m, "%lld", (long long)o->total);
    default:                                           return "";
    }
}

static void
listed(int rc, const struct order_list *l, void *arg)
{
    hdl_reply_list(arg, rc, l ? l->items : NULL, l ? l->n : 0, sizeof(*l->items), order_json,
                   l ? l->total : 0, order_key);
}

void
hdl_orders_list(struct hdl_req *r)
{
    struct hdl_call    *c = hdl_call_new(r);
    struct order_filter f = { .viewer = viewer_of(r), .status = -1, .sort = OSORT_CREATED_AT_DESC };

    hdl_paging(r, &c->v, &c->pg);
    const char *st = hdl_query(r, "status");
    if (st != NULL) {
        enum rules_status s;
        if (rules_status_parse(st, strlen(st), &s) != OF_OK)
            of_verr_add(&c->v, OF_VE_VALUE, rules_strerror(RULES_E_STATUS), OF_K("query"),
                        OF_K("status"), OF_END);
        else
            f.status = (int)s;
    }
    hdl_query_int(r, &c->v, "customer_id", 0, 1, INT64_MAX,
                  "Input should be greater than or equal to 1", &f.customer_id);
    const char *sort = hdl_query(r, "sort");
    if (sort != NULL && !order_sort_parse(sort, &f.sort))
        of_verr_add(&c->v, OF_VE_VALUE, ORDER_SORT_MSG, OF_K("query"), OF_K("sort"), OF_END);
    hdl_list_page(c, HDL_LIST_ORDERS, f.sort,
                  of_mem_printf(r->mem, "viewer=%lld|status=%d|customer_id=%lld",
                                (long long)f.viewer, f.status, (long long)f.customer_id), &f.pg);
    if (of_verrs_any(&c->v)) {
        hdl_reply_verrs(r, &c->v);
        return;
    }
    order_svc_list(r->svc->orders, r->mem, &f, listed, c);
}

/* ---- writes ---- */

static void
transitioned(int rc, const struct order *o, enum rules_status current, void *arg)
{
    struct status_call *s = arg;
    struct hdl_req     *r = s->call.r;
    char detail[RULES_TRANSITION_DETAIL_CAP];
    switch (rc) {
    case OF_OK:
        hdl_reply_json(r, 200, order_json(o));
        break;
    case OF_NOTFOUND:
        hdl_reply_not_found(r, "Order");
        break;
    case OF_CONFLICT:
        rules_transition_detail(current, s->to, detail);
        hdl_reply_error(r, 409, detail);
        break;
    default:
        hdl_reply_rc(r, rc);
        break;
    }
}

void
hdl_orders_status(struct hdl_req *r)
{
    json_t *body = hdl_json_body(r);
    if (body == NULL)
        return;
    struct status_call *c = of_mem_calloc(r->mem, sizeof(*c));
    struct of_verrs    *v = &c->call.v;
    const char         *s;
    size_t              len;

    hdl_call_init(&c->call, r);
    if (hdl_field_str(body, "status", true, v, &s, &len) == FIELD_OK
        && rules_status_parse(s, len, &c->to) != OF_OK)
        of_verr_add(v, OF_VE_VALUE, rules_strerror(RULES_E_STATUS), OF_K("body"),
                    OF_K("status"), OF_END);
    if (of_verrs_any(v)) {
        hdl_reply_verrs(r, v);
        return;
    }
    order_svc_transition(r->svc->orders, r->mem, r->ids[0], c->to, r->who.user_id, is_admin(r),
                         hdl_audit(r), r->traceparent, transitioned, c);
}

static void
deleted(int rc, void *arg)
{
    struct hdl_req *r = arg;
    if (rc == OF_OK)
        hdl_reply_empty(r, 204);
    else if (rc == OF_NOTFOUND)
        hdl_reply_not_found(r, "Order");
    else
        hdl_reply_rc(r, rc);
}

void
hdl_orders_delete(struct hdl_req *r)
{
    order_svc_delete(r->svc->orders, r->mem, r->ids[0], hdl_audit(r), deleted, r);
}
