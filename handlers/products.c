/*
 * products.c -- the catalog over HTTP. JSON ⇄ product_input, then the
 * product service; rules live in domain/product.c.
 */
#include "handlers/products.h"
#include "handlers/list.h"
#include "handlers/services.h"
#include "domain/product.h"
#include "common/of.h"

#include <string.h>

static json_t *
product_json(const void *item)
{
    const struct product *p = item;
    return json_pack("{s:I,s:s,s:o,s:b,s:s,s:s}", "id", (json_int_t)p->id, "name", p->name,
                     "price", hdl_money(p->price), "in_stock", p->in_stock,
                     "created_at", p->created_at, "updated_at", p->updated_at);
}

/* ---- reads ---- */

static void
got(int rc, const struct product *item, void *arg)
{
    hdl_reply_item(arg, rc, item, product_json, "Product");
}

void
hdl_products_get(struct hdl_req *r)
{
    product_svc_get(r->svc->products, r->mem, r->ids[0], got, r);
}

/* The cursor key of a product under a sort (domain/product.h's order). */
static const char *
product_key(struct of_mem *m, const void *item, unsigned sort, int64_t *id)
{
    const struct product *p = item;
    *id = p->id;
    switch (sort) {
    case PSORT_NAME: case PSORT_NAME_DESC:   return p->name;
    case PSORT_PRICE: case PSORT_PRICE_DESC: return of_mem_printf(m, "%lld", (long long)p->price);
    default:                                 return "";
    }
}

static void
listed(int rc, const struct product_list *l, void *arg)
{
    hdl_reply_list(arg, rc, l ? l->items : NULL, l ? l->n : 0, sizeof(*l->items), product_json,
                   l ? l->total : 0, product_key);
}

void
hdl_products_list(struct hdl_req *r)
{
    struct hdl_call      *c = hdl_call_new(r);
    struct product_filter f = { .in_stock = -1, .sort = PSORT_ID };

    hdl_paging(r, &c->v, &c->pg);
    hdl_query_bool(r, &c->v, "in_stock", &f.in_stock);
    f.q = hdl_query(r, "q");
    const char *sort = hdl_query(r, "sort");
    if (sort != NULL && !product_sort_parse(sort, &f.sort))
        of_verr_add(&c->v, OF_VE_VALUE,
                    "Input should be 'id', '-id', 'name', '-name', 'price' or '-price'",
                    OF_K("query"), OF_K("sort"), OF_END);
    hdl_list_page(c, HDL_LIST_PRODUCTS, f.sort,
                  of_mem_printf(r->mem, "in_stock=%d|q=%s%s", f.in_stock, f.q ? "1" : "0",
                                f.q ? f.q : ""), &f.pg);
    if (of_verrs_any(&c->v)) {
        hdl_reply_verrs(r, &c->v);
        return;
    }
    product_svc_list(r->svc->products, r->mem, &f, listed, c);
}

/* ---- writes (admin) ---- */

/* Type problems go to c->v; the service adds rule problems and answers
 * OF_INVALID with all of them. */
static void
parse_input(json_t *body, struct hdl_call *c, struct product_input *in)
{
    enum hdl_field f;

    memset(in, 0, sizeof(*in));
    f = hdl_field_str(body, "name", false, &c->v, &in->name, &in->name_len);
    in->has_name = f != FIELD_ABSENT;
    if (f == FIELD_BAD)
        in->name = NULL;
    in->bad |= f == FIELD_BAD;
    f = hdl_field_money(body, "price", false, &c->v, &in->price);
    in->has_price = f != FIELD_ABSENT;
    in->bad |= f == FIELD_BAD;
    f = hdl_field_bool(body, "in_stock", false, &c->v, &in->in_stock);
    in->has_in_stock = f != FIELD_ABSENT;
    in->bad |= f == FIELD_BAD;
}

static void
written(int rc, const struct product *p, void *arg, int ok_status)
{
    struct hdl_call *c = arg;
    switch (rc) {
    case OF_OK:       hdl_reply_json(c->r, ok_status, product_json(p)); break;
    case OF_INVALID:  hdl_reply_verrs(c->r, &c->v); break;
    case OF_CONFLICT: hdl_reply_error(c->r, 409, "Product already exists"); break;
    case OF_NOTFOUND: hdl_reply_not_found(c->r, "Product"); break;
    default:          hdl_reply_rc(c->r, rc); break;
    }
}

static void created(int rc, const struct product *p, void *arg) { written(rc, p, arg, 201); }
static void updated(int rc, const struct product *p, void *arg) { written(rc, p, arg, 200); }

void
hdl_products_create(struct hdl_req *r)
{
    struct product_input in;
    json_t *body = hdl_json_body(r);
    if (body == NULL)
        return;
    struct hdl_call *c = hdl_call_new(r);
    parse_input(body, c, &in);
    product_svc_insert(r->svc->products, r->mem, &in, hdl_audit(r), &c->v, created, c);
}

void
hdl_products_patch(struct hdl_req *r)
{
    struct product_input in;
    json_t *body = hdl_json_body(r);
    if (body == NULL)
        return;
    struct hdl_call *c = hdl_call_new(r);
    parse_input(body, c, &in);
    product_svc_update(r->svc->products, r->mem, r->ids[0], &in, hdl_audit(r), &c->v, updated, c);
}

static void
deleted(int rc, void *arg)
{
    struct hdl_req *r = arg;
    if (rc == OF_OK)
        hdl_reply_empty(r, 204);
    else if (rc == OF_NOTFOUND)
        hdl_reply_not_found(r, "Product");
    else
        hdl_reply_rc(r, rc);
}

void
hdl_products_delete(struct hdl_req *r)
{
    product_svc_delete(r->svc->products, r->mem, r->ids[0], hdl_audit(r), deleted, r);
}
