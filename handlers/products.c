/*
 * products.c -- the catalog over HTTP. JSON ⇄ product_input, then the
 * product service; rules live in domain/product.c.
 */
#include "handlers/products.h"
#include "handlers/list.h"
#include "handlers/services.h"
#include "handlers/cached.h"
#include "domain/product.h"
#include "common/cache.h"
#include "common/of.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static json_t *
product_json(const void *item)
{
    const struct product *p = item;
    return json_pack("{s:I,s:s,s:o,s:b,s:s,s:s}", "id", (json_int_t)p->id, "name", p->name,
                     "price", hdl_money(p->price), "in_stock", p->in_stock,
                     "created_at", p->created_at, "updated_at", p->updated_at);
}

/* ---- the cache: reads answered through a tee ---- */

/* A read's answer goes out through tee_io: a 200 gains its ETag (or becomes
 * a 304) and a copy goes into the cache under the read's key; any other
 * answer passes as it is. The reply helpers call send synchronously, and a
 * worker is one thread, so the tee of the answer in progress can be a static. */
struct tee {
    const struct hdl_io *io;       /* the worker's */
    unsigned             group;
    const void          *key;
    size_t               klen;
    uint64_t             token;    /* from before the read; 0 = do not store */
};
static struct tee *tee_now;

static const char *
tee_header(struct hdl_req *r, const char *name)
{
    return tee_now->io->header(r, name);
}

static void
tee_add_header(struct hdl_req *r, const char *name, const char *value)
{
    tee_now->io->add_header(r, name, value);
}

static void
tee_send(struct hdl_req *r, int status, const char *ctype, const char *body, size_t len)
{
    struct tee *t = tee_now;
    char        etag[CACHE_ETAG_CAP];

    r->io = t->io;                 /* before sending: r may be gone after */
    if (status != 200) {
        r->io->send(r, status, ctype, body, len);
        return;
    }
    cache_etag(body, len, etag);
    if (r->svc->product_cache != NULL && t->token != 0)
        cache_put(r->svc->product_cache, t->token, t->group, t->key, t->klen, body, len, etag);
    hdl_reply_tagged(r, body, len, etag);
}

static const struct hdl_io tee_io = { tee_header, tee_add_header, tee_send, NULL };

static void
tee_begin(struct hdl_req *r, struct tee *t)
{
    t->io = r->io;
    tee_now = t;
    r->io = &tee_io;
}

/* A read's cache context: its key, and the token taken before the
 * database was asked. */
struct pget {
    struct hdl_req *r;
    struct tee      t;
    int64_t         id;
};
struct plist {
    struct hdl_call c;
    struct tee      t;
    char            key[HDL_CACHE_KEY_CAP];
};

/* Answer from the cache if it can; else arm t for the miss. */
static bool
from_cache(struct hdl_req *r, struct tee *t, unsigned group, const void *key, size_t klen)
{
    struct cache     *c = r->svc->product_cache;
    struct cache_hit  h;

    t->group = group;
    t->key = key;
    t->klen = klen;
    t->token = 0;
    if (c == NULL || klen == 0)
        return false;
    if (cache_get(c, group, key, klen, &h)) {
        hdl_reply_tagged(r, h.body, h.len, h.etag);
        return true;
    }
    t->token = cache_token(c);
    return false;
}

/* Product id changed: its read and every list page go. */
static void
invalidate_id(struct cache *c, int64_t id)
{
    if (c == NULL)
        return;
    cache_drop(c, HDL_PCACHE_ITEMS, &id, sizeof(id));
    cache_drop_group(c, HDL_PCACHE_LISTS);
}

void
hdl_products_invalidate(struct cache *c, const char *payload)
{
    char     *end;
    long long id;

    if (c == NULL)
        return;
    errno = 0;
    id = strtoll(payload, &end, 10);
    if (errno != 0 || end == payload || *end != '\0') {
        cache_clear(c);                    /* "*" or anything unexpected: all */
        return;
    }
    invalidate_id(c, id);
}

/* ---- reads ---- */

static void
got(int rc, const struct product *item, void *arg)
{
    struct pget *p = arg;
    if (item != NULL && item->may_lag)
        p->t.token = 0;            /* a replica's answer may predate an invalidation */
    tee_begin(p->r, &p->t);
    hdl_reply_item(p->r, rc, item, product_json, "Product");
    tee_now = NULL;
}

void
hdl_products_get(struct hdl_req *r)
{
    struct pget *p = of_mem_alloc(r->mem, sizeof(*p));
    p->r = r;
    p->id = r->ids[0];
    if (from_cache(r, &p->t, HDL_PCACHE_ITEMS, &p->id, sizeof(p->id)))
        return;
    product_svc_get(r->svc->products, r->mem, r->ids[0], got, p);
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
    struct plist    *p = arg;
    struct hdl_call *c = &p->c;
    if (l != NULL && l->may_lag)
        p->t.token = 0;            /* a replica's answer may predate an invalidation */
    tee_begin(c->r, &p->t);
    hdl_reply_list(c, rc, l ? l->items : NULL, l ? l->n : 0, sizeof(*l->items), product_json,
                   l ? l->total : 0, product_key);
    tee_now = NULL;
}

void
hdl_products_list(struct hdl_req *r)
{
    struct plist         *p = of_mem_alloc(r->mem, sizeof(*p));
    struct hdl_call      *c = &p->c;
    struct product_filter f = { .in_stock = -1, .sort = PSORT_ID };

    hdl_call_init(c, r);
    if (from_cache(r, &p->t, HDL_PCACHE_LISTS, p->key, hdl_cache_query_key(r->query, p->key)))
        return;
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
    product_svc_list(r->svc->products, r->mem, &f, listed, p);
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
    /* This worker reads its own writes at once; the others (and this one
     * again) hear the NOTIFY the write sent when it committed. */
    if (rc == OF_OK)
        invalidate_id(c->r->svc->product_cache, p->id);
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
    if (rc == OF_OK) {
        invalidate_id(r->svc->product_cache, r->ids[0]);
        hdl_reply_empty(r, 204);
    } else if (rc == OF_NOTFOUND)
        hdl_reply_not_found(r, "Product");
    else
        hdl_reply_rc(r, rc);
}

void
hdl_products_delete(struct hdl_req *r)
{
    product_svc_delete(r->svc->products, r->mem, r->ids[0], hdl_audit(r), deleted, r);
}
