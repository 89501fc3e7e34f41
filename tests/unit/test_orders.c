/*
 * test_orders.c -- order rules (transition table, totals, validation locs,
 * reference checks), request fingerprints, and the orders handlers + service
 * + idempotent run against in-memory fake repositories (orders and
 * idempotency keys) that answer on the next loop turn, like PostgreSQL's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "tests/unit/support/fake_http.h"
#include "handlers/orders.h"
#include "handlers/idem.h"
#include "domain/order.h"
#include "domain/idem.h"
#include "domain/rules.h"
#include "domain/money.h"
#include "common/of.h"

/* ---- pure rules ---- */

static void
test_transition_table_every_pair(void **state)
{
    (void)state;
    static const bool want[RULES_STATUS_COUNT][RULES_STATUS_COUNT] = {
        /* to:           pend   proc   ship   deliv  canc */
        /* pending */  { false, true,  false, false, true  },
        /* processing */{ false, false, true,  false, true  },
        /* shipped */  { false, false, false, true,  false },
        /* delivered */{ false, false, false, false, false },
        /* cancelled */{ false, false, false, false, false },
    };
    for (int f = 0; f < RULES_STATUS_COUNT; f++) {
        for (int t = 0; t < RULES_STATUS_COUNT; t++) {
            assert_int_equal(rules_transition_ok((enum rules_status)f, (enum rules_status)t), want[f][t]);
            char d[RULES_TRANSITION_DETAIL_CAP], exp[RULES_TRANSITION_DETAIL_CAP];
            rules_transition_detail((enum rules_status)f, (enum rules_status)t, d);
            snprintf(exp, sizeof(exp), "Invalid transition: %s -> %s",
                     rules_status_name((enum rules_status)f), rules_status_name((enum rules_status)t));
            assert_string_equal(d, exp);
        }
    }
}

static void
test_total_exact_and_overflow(void **state)
{
    (void)state;
    int64_t q[3] = { 2, 3, 20 }, p[3] = { 1999, 10, MONEY_INPUT_MAX }, t = -1;
    assert_int_equal(order_total(q, p, 2, &t), OF_OK);
    assert_int_equal(t, 3998 + 30);
    assert_int_equal(order_total(q, p, 3, &t), OF_OK);
    assert_int_equal(t, 4028 + 20 * MONEY_INPUT_MAX);
    char buf[MONEY_FMT_CAP];
    money_format(t, buf);
    assert_string_equal(buf, "2000000040.08");
    assert_int_equal(order_total(q, p, 0, &t), OF_OK);
    assert_int_equal(t, 0);
    /* overflow in a line and in the sum */
    int64_t bq[1] = { 3 }, bp[1] = { INT64_MAX / 2 };
    t = 7;
    assert_int_equal(order_total(bq, bp, 1, &t), OF_ERR);
    assert_int_equal(t, 7);
    int64_t sq[2] = { 1, 1 }, sp[2] = { INT64_MAX - 1, 2 };
    assert_int_equal(order_total(sq, sp, 2, &t), OF_ERR);
}

static bool
has_loc(const struct of_verrs *v, const char *msg, int nloc, ...)
{
    for (size_t i = 0; i < v->n; i++) {
        const struct of_verr *e = &v->e[i];
        if (e->nloc != nloc || (msg && strcmp(e->msg, msg) != 0))
            continue;
        va_list ap;
        va_start(ap, nloc);
        bool ok = true;
        for (int k = 0; k < nloc; k++) {
            const char *key = va_arg(ap, const char *);
            int idx = va_arg(ap, int);
            if (key ? (e->loc[k].key == NULL || strcmp(e->loc[k].key, key) != 0)
                    : (e->loc[k].key != NULL || e->loc[k].idx != idx))
                ok = false;
        }
        va_end(ap);
        if (ok)
            return true;
    }
    return false;
}

static void
test_validate_locs(void **state)
{
    (void)state;
    struct of_mem m;
    of_mem_init(&m);
    struct of_verrs v;

    struct order_item_input it[4] = {
        { .product_id = 5, .quantity = 0, .has_product_id = true, .has_quantity = true },
        { .product_id = 6, .quantity = 12, .has_product_id = true, .has_quantity = true },
        { .product_id = 5, .quantity = 9, .has_product_id = true, .has_quantity = true },
        { .product_id = 7, .quantity = -3, .has_product_id = true, .has_quantity = true },
    };
    char notes[502];
    memset(notes, 'n', 501);
    notes[501] = 0;
    struct order_input in = { .has_customer_id = true, .customer_id = 1, .has_items = true,
                              .items = it, .n_items = 4, .notes = notes, .notes_len = 501 };
    of_verrs_init(&v);
    order_validate(&in, &m, &v);
    assert_true(has_loc(&v, RULES_MSG_QTY_POSITIVE, 4, "body", 0, "items", 0, NULL, 0, "quantity", 0));
    assert_true(has_loc(&v, RULES_MSG_QTY_POSITIVE, 4, "body", 0, "items", 0, NULL, 3, "quantity", 0));
    assert_true(has_loc(&v, RULES_MSG_DUP_PRODUCT, 4, "body", 0, "items", 0, NULL, 2, "product_id", 0));
    assert_false(has_loc(&v, RULES_MSG_DUP_PRODUCT, 4, "body", 0, "items", 0, NULL, 0, "product_id", 0));
    assert_true(has_loc(&v, RULES_MSG_ITEM_LIMIT, 2, "body", 0, "items", 0));   /* 12 + 9 */
    assert_true(has_loc(&v, NULL, 2, "body", 0, "notes", 0));
    assert_int_equal(v.n, 5);

    /* exactly 20, 500 chars (multi-byte), nothing to say */
    it[0].quantity = 1; it[2].product_id = 8; it[2].quantity = 6; it[3].quantity = 1;
    char uni[1001];
    for (int i = 0; i < 500; i++) { uni[2 * i] = (char)0xc3; uni[2 * i + 1] = (char)0xa9; }
    uni[1000] = 0;
    in.notes = uni;
    in.notes_len = 1000;
    of_verrs_init(&v);
    order_validate(&in, &m, &v);
    assert_int_equal(v.n, 0);

    /* empty list */
    in.n_items = 0;
    of_verrs_init(&v);
    order_validate(&in, &m, &v);
    assert_int_equal(v.n, 1);
    assert_true(has_loc(&v, NULL, 2, "body", 0, "items", 0));

    /* one huge quantity is the item limit, not an overflow */
    struct order_item_input big = { .product_id = 1, .quantity = INT64_MAX, .has_product_id = true,
                                     .has_quantity = true };
    in.items = &big;
    in.n_items = 1;
    of_verrs_init(&v);
    order_validate(&in, &m, &v);
    assert_true(has_loc(&v, RULES_MSG_ITEM_LIMIT, 2, "body", 0, "items", 0));

    /* a huge body: 100000 items naming one product is still quick (sorted
     * repeat detection), and the problem list stays capped */
    size_t nbig = 100000;
    struct order_item_input *many = calloc(nbig, sizeof(*many));
    for (size_t i = 0; i < nbig; i++)
        many[i] = (struct order_item_input){ .product_id = 1, .quantity = 1, .has_product_id = true,
                                             .has_quantity = true };
    in.items = many;
    in.n_items = nbig;
    of_verrs_init(&v);
    order_validate(&in, &m, &v);
    assert_int_equal(v.n, OF_VERR_MAX);
    assert_true(has_loc(&v, RULES_MSG_ITEM_LIMIT, 2, "body", 0, "items", 0));
    assert_true(has_loc(&v, RULES_MSG_DUP_PRODUCT, 4, "body", 0, "items", 0, NULL, 1, "product_id", 0));
    assert_false(has_loc(&v, RULES_MSG_DUP_PRODUCT, 4, "body", 0, "items", 0, NULL, 0, "product_id", 0));
    free(many);
    of_mem_release(&m);
}

static void
test_check_refs(void **state)
{
    (void)state;
    struct of_mem m;
    of_mem_init(&m);
    struct of_verrs v;
    struct order_item_input it[3] = {
        { .product_id = 5, .quantity = 2, .has_product_id = true, .has_quantity = true },
        { .product_id = 6, .quantity = 1, .has_product_id = true, .has_quantity = true },
        { .product_id = 9, .quantity = 1, .has_product_id = true, .has_quantity = true },
    };
    struct order_input in = { .customer_id = 3, .has_items = true, .items = it, .n_items = 3 };
    struct order_ref_product ps[3] = {
        { 6, "Desk", 10, false }, { 5, "Lamp", 1999, true }, { 9, "Pen", 1, true },
    };
    struct order_refs refs = { true, true, "Ada", ps, 3 };
    int64_t prices[3], total = 0, oos = 0;

    /* unknown customer and unknown product: both, one 422 */
    refs.customer_found = false;
    refs.n_products = 2;                       /* 9 unknown */
    of_verrs_init(&v);
    assert_int_equal(order_check_refs(&in, &refs, &m, &v, prices, &total, &oos), OF_INVALID);
    assert_true(has_loc(&v, "Customer 3 not found", 2, "body", 0, "customer_id", 0));
    assert_true(has_loc(&v, "Product 9 not found", 4, "body", 0, "items", 0, NULL, 2, "product_id", 0));
    assert_int_equal(v.n, 2);

    /* inactive customer */
    refs.customer_found = true;
    refs.customer_active = false;
    refs.n_products = 3;
    of_verrs_init(&v);
    assert_int_equal(order_check_refs(&in, &refs, &m, &v, prices, &total, &oos), OF_INVALID);
    assert_true(has_loc(&v, NULL, 2, "body", 0, "customer_id", 0));

    /* out of stock -> 409 with the product */
    refs.customer_active = true;
    of_verrs_init(&v);
    assert_int_equal(order_check_refs(&in, &refs, &m, &v, prices, &total, &oos), OF_CONFLICT);
    assert_int_equal(oos, 6);

    /* all good: copied prices, exact total */
    ps[0].in_stock = true;
    of_verrs_init(&v);
    assert_int_equal(order_check_refs(&in, &refs, &m, &v, prices, &total, &oos), OF_OK);
    assert_int_equal(prices[0], 1999);
    assert_int_equal(prices[1], 10);
    assert_int_equal(prices[2], 1);
    assert_int_equal(total, 2 * 1999 + 10 + 1);
    of_mem_release(&m);
}

static void
test_sort_allowlist(void **state)
{
    (void)state;
    enum order_sort s;
    const char *ok[] = { "created_at", "-created_at", "total", "-total", "id", "-id" };
    for (size_t i = 0; i < 6; i++)
        assert_true(order_sort_parse(ok[i], &s));
    assert_true(order_sort_parse("-created_at", &s));
    assert_int_equal(s, OSORT_CREATED_AT_DESC);
    assert_false(order_sort_parse("name", &s));
    assert_false(order_sort_parse("", &s));
    assert_false(order_sort_parse("created_at ", &s));
}

/* ---- fake repositories ---- */

struct fake_key {
    int64_t user_id;
    char    route[64], key[256], fp[65];
    int     status;
    char   *body;
    bool    committed, used;
};

#define MAXK 16
#define MAXO 16

static struct fake_key keys[MAXK];
static struct order    orders[MAXO];          /* committed */
static size_t          norders;
static int64_t         next_order_id;
static int             n_begin, n_commit, n_abort;

struct ftx {
    struct fake_key *k;          /* claimed in this tx */
    struct order     pending;    /* inserted in this tx */
    bool             has_pending;
};

struct later {
    void (*begin_cb)(int, enum idem_begin, struct repo_tx *, const struct idem_row *, void *);
    idem_end_cb   end_cb;
    order_refs_cb refs_cb;
    order_cb      order_cb;
    int           rc;
    enum idem_begin what;
    struct ftx   *tx;
    struct idem_row row;
    struct order_refs refs;
    const struct order *o;
    void         *arg;
};

static void
later_fire(void *x)
{
    struct later *l = x;
    if (l->begin_cb)
        l->begin_cb(l->rc, l->what, (struct repo_tx *)l->tx, l->rc == OF_OK ? &l->row : NULL, l->arg);
    else if (l->end_cb)
        l->end_cb(l->rc, l->arg);
    else if (l->refs_cb)
        l->refs_cb(l->rc, &l->refs, l->arg);
    else
        l->order_cb(l->rc, l->o, l->arg);
    free(l);
}

static struct fake_key *
key_find(const struct idem_key *k)
{
    for (int i = 0; i < MAXK; i++)
        if (keys[i].used && keys[i].user_id == k->user_id && strcmp(keys[i].route, k->route) == 0
            && strcmp(keys[i].key, k->key) == 0)
            return &keys[i];
    return NULL;
}

static void
fi_begin(void *self, struct of_mem *m, const struct idem_key *k, idem_begin_cb cb, void *arg)
{
    (void)self;
    struct later *l = calloc(1, sizeof(*l));
    l->begin_cb = cb;
    l->arg = arg;
    l->rc = OF_OK;
    n_begin++;
    struct ftx *tx = of_mem_calloc(m, sizeof(*tx));
    struct fake_key *fk = k ? key_find(k) : NULL;
    if (k != NULL && fk != NULL) {
        l->what = IDEM_EXISTS;
        l->row.fingerprint = fk->fp;
        l->row.status = fk->committed ? fk->status : 0;
        l->row.body = fk->committed ? fk->body : NULL;
    } else {
        l->what = IDEM_FRESH;
        l->tx = tx;
        if (k != NULL) {
            for (int i = 0; i < MAXK; i++) {
                if (!keys[i].used) {
                    fk = &keys[i];
                    break;
                }
            }
            assert_non_null(fk);
            memset(fk, 0, sizeof(*fk));
            fk->used = true;
            fk->user_id = k->user_id;
            snprintf(fk->route, sizeof(fk->route), "%s", k->route);
            snprintf(fk->key, sizeof(fk->key), "%s", k->key);
            memcpy(fk->fp, k->fingerprint, 65);
            tx->k = fk;
        }
    }
    fake_later(later_fire, l);
}

static void
fi_finish(void *self, struct of_mem *m, struct repo_tx *rtx, const struct idem_key *k, int status,
          const char *body, idem_end_cb cb, void *arg)
{
    (void)self; (void)m; (void)k;
    struct ftx *tx = (struct ftx *)rtx;
    if (tx->k) {
        tx->k->status = status;
        tx->k->body = strdup(body);
        tx->k->committed = true;
    }
    if (tx->has_pending) {
        /* committed rows outlive the request: copy out of its arena */
        static struct order_item kept[MAXO][8];
        struct order *o = &orders[norders];
        *o = tx->pending;
        size_t n = o->n_items < 8 ? o->n_items : 8;
        memcpy(kept[norders], o->items, n * sizeof(struct order_item));
        o->items = kept[norders];
        o->n_items = n;
        o->notes = NULL;
        norders++;
    }
    n_commit++;
    struct later *l = calloc(1, sizeof(*l));
    l->end_cb = cb;
    l->arg = arg;
    l->rc = OF_OK;
    fake_later(later_fire, l);
}

static void
fi_abort(void *self, struct repo_tx *rtx)
{
    (void)self;
    struct ftx *tx = (struct ftx *)rtx;
    if (tx->k)
        tx->k->used = false;
    n_abort++;
}

static void
fi_purge(void *self, struct of_mem *m, void (*cb)(int, int64_t, void *), void *arg)
{
    (void)self; (void)m;
    cb(OF_OK, 0, arg);
}

static const struct idem_repo_ops fake_idem_ops = { fi_begin, fi_finish, fi_abort, fi_purge };

/* the catalogue the fake order repository knows */
static const struct order_ref_product catalogue[] = {
    { 5, "Lamp", 1999, true }, { 6, "Desk", 10, true }, { 7, "Sold out", 100, false },
};

static void
fo_lock_refs(void *self, struct repo_tx *tx, struct of_mem *m, int64_t customer_id,
             const int64_t *ids, size_t n, order_refs_cb cb, void *arg)
{
    (void)self; (void)tx;
    struct later *l = calloc(1, sizeof(*l));
    l->refs_cb = cb;
    l->arg = arg;
    l->rc = OF_OK;
    l->refs.customer_found = customer_id == 3 || customer_id == 4;
    l->refs.customer_active = customer_id == 3;
    l->refs.customer_name = "Ada";
    struct order_ref_product *ps = of_mem_calloc(m, sizeof(*ps) * 3);
    size_t k = 0;
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < n; j++)
            if (catalogue[i].id == ids[j]) {
                ps[k++] = catalogue[i];
                break;
            }
    l->refs.products = ps;
    l->refs.n_products = k;
    fake_later(later_fire, l);
}

static void
fo_insert(void *self, struct repo_tx *rtx, struct of_mem *m, const struct order_new *o,
          order_cb cb, void *arg)
{
    (void)self;
    /* the service names the order.created event written with the order */
    assert_non_null(o->ev.id);
    assert_int_equal(strlen(o->ev.id), OF_EVENT_ID_LEN);
    assert_memory_equal(o->ev.id, "evt_", 4);
    struct ftx *tx = (struct ftx *)rtx;
    struct order *d = &tx->pending;
    struct order_item *items = of_mem_calloc(m, sizeof(*items) * o->n);
    for (size_t i = 0; i < o->n; i++) {
        items[i].id = (int64_t)i + 1;
        items[i].product_id = o->product_ids[i];
        items[i].product_name = "item";
        items[i].quantity = o->quantities[i];
        items[i].unit_price = o->unit_prices[i];
    }
    d->id = ++next_order_id;
    d->customer_id = o->customer_id;
    d->customer_name = o->customer_name;
    d->status = RULES_STATUS_PENDING;
    d->total = o->total;
    d->notes = o->notes;
    d->created_by = o->created_by;
    d->items = items;
    d->n_items = o->n;
    d->created_at = d->updated_at = "2026-01-01T00:00:00.000000Z";
    tx->has_pending = true;
    struct later *l = calloc(1, sizeof(*l));
    l->order_cb = cb;
    l->arg = arg;
    l->rc = OF_OK;
    l->o = d;
    fake_later(later_fire, l);
}

struct tr_later {
    order_transition_cb cb;
    int rc;
    struct order o;
    enum rules_status cur;
    void *arg;
};

static void
tr_fire(void *x)
{
    struct tr_later *t = x;
    t->cb(t->rc, t->rc == OF_OK ? &t->o : NULL, t->cur, t->arg);
    free(t);
}

static struct order *
order_find(int64_t id)
{
    for (size_t i = 0; i < norders; i++)
        if (orders[i].id == id)
            return &orders[i];
    return NULL;
}

static int audit_rows;

static void
fo_transition(void *self, struct of_mem *m, const struct order_transition *t,
              order_transition_cb cb, void *arg)
{
    (void)self; (void)m;
    assert_non_null(t->ev.id);
    assert_int_equal(strlen(t->ev.id), OF_EVENT_ID_LEN);
    struct tr_later *l = calloc(1, sizeof(*l));
    l->cb = cb;
    l->arg = arg;
    struct order *o = order_find(t->id);
    if (o == NULL || (t->viewer != 0 && o->created_by != t->viewer)) {
        l->rc = OF_NOTFOUND;
    } else {
        l->cur = o->status;
        l->rc = OF_CONFLICT;
        for (size_t i = 0; i < t->n_from_ok; i++) {
            if (t->from_ok[i] == o->status) {
                o->status = t->to;
                l->rc = OF_OK;
                l->o = *o;
                if (t->audit)
                    audit_rows++;
            }
        }
    }
    fake_later(tr_fire, l);
}

static void fo_get(void *s, struct of_mem *m, int64_t id, int64_t viewer, order_cb cb, void *arg)
{ (void)s; (void)m; (void)id; (void)viewer; cb(OF_NOTFOUND, NULL, arg); }
static void fo_list(void *s, struct of_mem *m, const struct order_filter *f, order_list_cb cb, void *arg)
{ (void)s; (void)m; (void)f; cb(OF_ERR, NULL, arg); }
static void fo_remove(void *s, struct of_mem *m, int64_t id, const struct audit_ctx *a,
                      order_done_cb cb, void *arg)
{ (void)s; (void)m; (void)id; (void)a; cb(OF_NOTFOUND, arg); }

static const struct order_repo_ops fake_order_ops = {
    fo_lock_refs, fo_insert, fo_get, fo_list, fo_transition, fo_remove,
};

static struct hdl_services svc;

static int
setup(void **state)
{
    (void)state;
    fake_base = event_base_new();
    for (int i = 0; i < MAXK; i++) {
        if (keys[i].used)
            free(keys[i].body);
    }
    memset(keys, 0, sizeof(keys));
    norders = 0;
    next_order_id = 0;
    n_begin = n_commit = n_abort = 0;
    audit_rows = 0;
    svc.orders = order_svc_create((struct order_repo){ &fake_order_ops, NULL },
                                  (struct idem_repo){ &fake_idem_ops, NULL });
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    order_svc_destroy(svc.orders);
    event_base_free(fake_base);
    return 0;
}

static struct fake_req *
call(hdl_fn fn, enum hdl_method m, int64_t id, const char *body, const char *idem, int64_t user,
     bool admin)
{
    struct fake_req *f = fake_req_new(&svc, m, "/api/v1/orders", NULL, body);
    f->r.ids[0] = id;
    f->r.nids = id ? 1 : 0;
    f->r.who.user_id = user;
    f->r.who.role = admin ? HDL_ROLE_ADMIN : HDL_ROLE_USER;
    if (idem) {
        f->headers[0][0] = "Idempotency-Key";
        f->headers[0][1] = idem;
    }
    fn(&f->r);
    fake_run(f);
    assert_int_equal(f->answers, 1);
    return f;
}

static struct fake_req *
post(const char *body, const char *idem)
{
    return call(hdl_orders_create, HDL_POST, 0, body, idem, 2, false);
}

static bool
json_has_loc(struct fake_req *f, const char *want)
{
    json_t *errs = json_object_get(f->json, "errors");
    size_t i;
    json_t *e;
    json_array_foreach(errs, i, e) {
        char *s = json_dumps(json_object_get(e, "loc"), JSON_COMPACT);
        bool eq = strcmp(s, want) == 0;
        free(s);
        if (eq)
            return true;
    }
    return false;
}

/* ---- fingerprints ---- */

static void
fp_of(const char *body, char out[65])
{
    struct fake_req *f = fake_req_new(&svc, HDL_POST, "/api/v1/orders", NULL, body);
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    struct idem_key k;
    hdl_idem_fingerprint(&f->r, j, &k);
    memcpy(out, k.fingerprint, 65);
    json_decref(j);
    fake_req_free(f);
}

static void
test_fingerprint_same_value_same_print(void **state)
{
    (void)state;
    char a[65], b[65], c[65], d[65];
    fp_of("{\"customer_id\":3,\"items\":[{\"product_id\":5,\"quantity\":2}],\"notes\":\"x\"}", a);
    fp_of("{ \"notes\":\"x\",\n \"items\" : [ {\"quantity\":2, \"product_id\":5} ], \"customer_id\" : 3 }", b);
    fp_of("{\"customer_id\":3,\"items\":[{\"product_id\":5,\"quantity\":3}],\"notes\":\"x\"}", c);
    fp_of("{\"customer_id\":3,\"items\":[{\"product_id\":5,\"quantity\":2}],\"notes\":\"y\"}", d);
    assert_int_equal(strlen(a), 64);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);
    /* the path is part of it */
    char e[65];
    rules_fingerprint("POST", "/api/v1/transfers", "{}", e);
    char g[65];
    rules_fingerprint("POST", "/api/v1/orders", "{}", g);
    assert_string_not_equal(e, g);
}

/* ---- handlers + service + run ---- */

#define GOOD "{\"customer_id\":3,\"items\":[{\"product_id\":5,\"quantity\":2},{\"product_id\":6,\"quantity\":1}]}"

static void
test_create_201(void **state)
{
    (void)state;
    struct fake_req *f = post(GOOD, NULL);
    assert_int_equal(f->status, 201);
    assert_string_equal(json_string_value(json_object_get(f->json, "total")), "40.08");
    assert_string_equal(json_string_value(json_object_get(f->json, "status")), "pending");
    assert_string_equal(json_string_value(json_object_get(f->json, "customer_name")), "Ada");
    assert_true(json_is_null(json_object_get(f->json, "notes")));
    json_t *it = json_array_get(json_object_get(f->json, "items"), 0);
    assert_string_equal(json_string_value(json_object_get(it, "unit_price")), "19.99");
    assert_null(fake_out_header(f, "Idempotent-Replayed"));
    assert_int_equal(norders, 1);
    assert_int_equal(n_commit, 1);
    fake_req_free(f);
}

static void
test_create_validation_no_db(void **state)
{
    (void)state;
    struct fake_req *f = post("{\"customer_id\":\"x\",\"items\":[{\"product_id\":5,\"quantity\":0},"
                              "{\"product_id\":5},{\"quantity\":30}]}", "");
    assert_int_equal(f->status, 422);
    assert_true(json_has_loc(f, "[\"header\",\"Idempotency-Key\"]"));
    assert_true(json_has_loc(f, "[\"body\",\"customer_id\"]"));
    assert_true(json_has_loc(f, "[\"body\",\"items\",0,\"quantity\"]"));
    assert_true(json_has_loc(f, "[\"body\",\"items\",1,\"quantity\"]"));
    assert_true(json_has_loc(f, "[\"body\",\"items\",1,\"product_id\"]"));
    assert_true(json_has_loc(f, "[\"body\",\"items\",2,\"product_id\"]"));
    assert_true(json_has_loc(f, "[\"body\",\"items\"]"));
    assert_int_equal(n_begin, 0);
    fake_req_free(f);

    f = post("{\"customer_id\":3}", NULL);
    assert_int_equal(f->status, 422);
    assert_true(json_has_loc(f, "[\"body\",\"items\"]"));
    fake_req_free(f);
    f = post("{\"customer_id\":3,\"items\":[]}", NULL);
    assert_int_equal(f->status, 422);
    assert_true(json_has_loc(f, "[\"body\",\"items\"]"));
    fake_req_free(f);
    assert_int_equal(n_begin, 0);
}

static void
test_create_refs_422_rolls_back(void **state)
{
    (void)state;
    struct fake_req *f = post("{\"customer_id\":4,\"items\":[{\"product_id\":5,\"quantity\":1},"
                              "{\"product_id\":99,\"quantity\":1}]}", "key-1");
    assert_int_equal(f->status, 422);
    assert_true(json_has_loc(f, "[\"body\",\"customer_id\"]"));
    assert_true(json_has_loc(f, "[\"body\",\"items\",1,\"product_id\"]"));
    assert_int_equal(n_abort, 1);
    assert_int_equal(norders, 0);
    fake_req_free(f);
    /* nothing stored: the corrected retry with the same key runs afresh */
    f = post(GOOD, "key-1");
    assert_int_equal(f->status, 201);
    assert_null(fake_out_header(f, "Idempotent-Replayed"));
    assert_int_equal(norders, 1);
    fake_req_free(f);
}

static void
test_idempotent_replay_and_mismatch(void **state)
{
    (void)state;
    struct fake_req *a = post(GOOD, "abc");
    assert_int_equal(a->status, 201);
    struct fake_req *b = post("{\"items\":[{\"quantity\":2,\"product_id\":5},{\"quantity\":1,\"product_id\":6}],"
                              " \"customer_id\": 3}", "abc");
    assert_int_equal(b->status, 201);
    assert_string_equal(fake_out_header(b, "Idempotent-Replayed"), "true");
    assert_string_equal(a->body, b->body);
    assert_int_equal(norders, 1);
    struct fake_req *c = post("{\"customer_id\":3,\"items\":[{\"product_id\":5,\"quantity\":1}]}", "abc");
    assert_int_equal(c->status, 422);
    assert_string_equal(json_string_value(json_object_get(c->json, "detail")),
                        "Idempotency-Key reused with a different request");
    assert_null(json_object_get(c->json, "errors"));
    assert_int_equal(norders, 1);
    fake_req_free(a);
    fake_req_free(b);
    fake_req_free(c);
}

static void
test_out_of_stock_409_stored(void **state)
{
    (void)state;
    const char *body = "{\"customer_id\":3,\"items\":[{\"product_id\":5,\"quantity\":1},"
                       "{\"product_id\":7,\"quantity\":1}]}";
    struct fake_req *a = post(body, "oos");
    assert_int_equal(a->status, 409);
    assert_string_equal(json_string_value(json_object_get(a->json, "detail")), "Product 7 is out of stock");
    assert_int_equal(n_commit, 1);       /* the 409 is kept */
    struct fake_req *b = post(body, "oos");
    assert_int_equal(b->status, 409);
    assert_string_equal(fake_out_header(b, "Idempotent-Replayed"), "true");
    assert_string_equal(a->body, b->body);
    assert_int_equal(norders, 0);
    fake_req_free(a);
    fake_req_free(b);
}

static void
test_key_in_flight_409(void **state)
{
    (void)state;
    /* a claimed, uncommitted key (what a crashed-but-not-yet-aborted or
     * concurrent holder looks like) answers 409 in progress */
    keys[0].used = true;
    keys[0].user_id = 2;
    snprintf(keys[0].route, sizeof(keys[0].route), "POST /api/v1/orders");
    snprintf(keys[0].key, sizeof(keys[0].key), "busy");
    char fp[65];
    fp_of(GOOD, fp);
    memcpy(keys[0].fp, fp, 65);
    struct fake_req *f = post(GOOD, "busy");
    assert_int_equal(f->status, 409);
    assert_string_equal(json_string_value(json_object_get(f->json, "detail")),
                        "A request with this Idempotency-Key is in progress");
    fake_req_free(f);
}

static void
test_transitions_rights(void **state)
{
    (void)state;
    fake_req_free(post(GOOD, NULL));
    assert_int_equal(norders, 1);
    /* user asking for anything but cancelled: 403, no DB */
    struct fake_req *f = call(hdl_orders_status, HDL_PATCH, 1, "{\"status\":\"processing\"}", NULL, 2, false);
    assert_int_equal(f->status, 403);
    fake_req_free(f);
    /* someone else's order: 404 with the id */
    f = call(hdl_orders_status, HDL_PATCH, 1, "{\"status\":\"cancelled\"}", NULL, 9, false);
    assert_int_equal(f->status, 404);
    assert_string_equal(json_string_value(json_object_get(f->json, "detail")), "Order 1 not found");
    fake_req_free(f);
    /* admin: pending -> processing, audited */
    f = call(hdl_orders_status, HDL_PATCH, 1, "{\"status\":\"processing\"}", NULL, 1, true);
    assert_int_equal(f->status, 200);
    assert_string_equal(json_string_value(json_object_get(f->json, "status")), "processing");
    assert_int_equal(audit_rows, 1);
    fake_req_free(f);
    /* the same again: 409 from the status at the update */
    f = call(hdl_orders_status, HDL_PATCH, 1, "{\"status\":\"processing\"}", NULL, 1, true);
    assert_int_equal(f->status, 409);
    assert_string_equal(json_string_value(json_object_get(f->json, "detail")),
                        "Invalid transition: processing -> processing");
    fake_req_free(f);
    /* the owner cannot cancel once processing */
    f = call(hdl_orders_status, HDL_PATCH, 1, "{\"status\":\"cancelled\"}", NULL, 2, false);
    assert_int_equal(f->status, 409);
    assert_string_equal(json_string_value(json_object_get(f->json, "detail")),
                        "Invalid transition: processing -> cancelled");
    fake_req_free(f);
    /* bad status value: 422 at body.status */
    f = call(hdl_orders_status, HDL_PATCH, 1, "{\"status\":\"Pending\"}", NULL, 1, true);
    assert_int_equal(f->status, 422);
    assert_true(json_has_loc(f, "[\"body\",\"status\"]"));
    fake_req_free(f);
    assert_int_equal(audit_rows, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transition_table_every_pair),
        cmocka_unit_test(test_total_exact_and_overflow),
        cmocka_unit_test(test_validate_locs),
        cmocka_unit_test(test_check_refs),
        cmocka_unit_test(test_sort_allowlist),
        cmocka_unit_test_setup_teardown(test_fingerprint_same_value_same_print, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_201, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_validation_no_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_refs_422_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_replay_and_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_stock_409_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_in_flight_409, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transitions_rights, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
