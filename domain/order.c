/*
 * order.c -- order rules (validation, reference checks, totals, sort
 * allowlist, who may transition what) and the order service (contract:
 * order.h). No I/O: the repository and the idempotent run do that.
 */
#include "domain/order.h"
#include "domain/money.h"
#include "common/of.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

/* ---- rules ---- */

struct id_at {
    int64_t id;
    size_t  at;
};

static int
cmp_id_at(const void *a, const void *b)
{
    const struct id_at *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->at < y->at ? -1 : (x->at > y->at);
}

/* A product named twice: a problem at every repeat (not the first).
 * Sorting keeps this O(n log n) however many items a large body has. */
static void
mark_repeats(const struct order_input *in, struct of_mem *m, struct of_verrs *v)
{
    struct id_at *ids = of_mem_alloc(m, sizeof(*ids) * (in->n_items ? in->n_items : 1));
    size_t n = 0;
    for (size_t i = 0; i < in->n_items; i++)
        if (in->items[i].has_product_id)
            ids[n++] = (struct id_at){ in->items[i].product_id, i };
    qsort(ids, n, sizeof(*ids), cmp_id_at);
    bool *repeat = of_mem_calloc(m, in->n_items ? in->n_items : 1);
    for (size_t k = 1; k < n; k++)
        if (ids[k].id == ids[k - 1].id)
            repeat[ids[k].at] = true;
    for (size_t i = 0; i < in->n_items; i++)
        if (repeat[i])
            of_verr_add(v, OF_VE_VALUE, RULES_MSG_DUP_PRODUCT, OF_K("body"), OF_K("items"),
                        OF_I(i), OF_K("product_id"), OF_END);
}

void
order_validate(const struct order_input *in, struct of_mem *m, struct of_verrs *v)
{
    if (in->has_items && in->n_items == 0)
        of_verr_add(v, OF_VE_VALUE, "List should have at least 1 item after validation, not 0",
                    OF_K("body"), OF_K("items"), OF_END);

    int64_t sum = 0;
    for (size_t i = 0; i < in->n_items; i++) {
        const struct order_item_input *it = &in->items[i];
        if (it->has_quantity) {
            if (it->quantity < 1)
                of_verr_add(v, OF_VE_VALUE, RULES_MSG_QTY_POSITIVE, OF_K("body"), OF_K("items"),
                            OF_I(i), OF_K("quantity"), OF_END);
            else if (sum <= RULES_ORDER_QTY_MAX)
                sum = it->quantity > RULES_ORDER_QTY_MAX ? RULES_ORDER_QTY_MAX + 1 : sum + it->quantity;
        }
    }
    if (sum > RULES_ORDER_QTY_MAX)
        of_verr_add(v, OF_VE_VALUE, RULES_MSG_ITEM_LIMIT, OF_K("body"), OF_K("items"), OF_END);
    mark_repeats(in, m, v);

    if (in->notes != NULL) {
        long chars = of_utf8_len(in->notes, in->notes_len);
        if (chars < 0)
            of_verr_add(v, OF_VE_VALUE, rules_strerror(RULES_E_UTF8), OF_K("body"), OF_K("notes"),
                        OF_END);
        else if (chars > RULES_NOTES_MAX)
            of_verr_add(v, OF_VE_VALUE, rules_text_msg(m, RULES_E_TOO_LONG, 0, RULES_NOTES_MAX),
                        OF_K("body"), OF_K("notes"), OF_END);
    }
}

static const struct order_ref_product *
find_product(const struct order_refs *refs, int64_t id)
{
    for (size_t i = 0; i < refs->n_products; i++)
        if (refs->products[i].id == id)
            return &refs->products[i];
    return NULL;
}

int
order_total(const int64_t *quantity, const int64_t *unit_price, size_t n, int64_t *total)
{
    int64_t t = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t line;
        if (money_mul_qty(unit_price[i], quantity[i], &line) != OF_OK
            || money_add(t, line, &t) != OF_OK)
            return OF_ERR;
    }
    *total = t;
    return OF_OK;
}

int
order_check_refs(const struct order_input *in, const struct order_refs *refs,
                 struct of_mem *m, struct of_verrs *v, int64_t *unit_prices,
                 int64_t *total, int64_t *out_of_stock)
{
    if (!refs->customer_found)
        of_verr_add(v, OF_VE_VALUE,
                    of_mem_printf(m, "Customer %lld not found", (long long)in->customer_id),
                    OF_K("body"), OF_K("customer_id"), OF_END);
    else if (!refs->customer_active)
        of_verr_add(v, OF_VE_VALUE,
                    of_mem_printf(m, "Customer %lld is inactive", (long long)in->customer_id),
                    OF_K("body"), OF_K("customer_id"), OF_END);

    int64_t oos = 0;
    for (size_t i = 0; i < in->n_items; i++) {
        const struct order_ref_product *p = find_product(refs, in->items[i].product_id);
        if (p == NULL) {
            of_verr_add(v, OF_VE_VALUE,
                        of_mem_printf(m, "Product %lld not found", (long long)in->items[i].product_id),
                        OF_K("body"), OF_K("items"), OF_I(i), OF_K("product_id"), OF_END);
            continue;
        }
        if (!p->in_stock && oos == 0)
            oos = p->id;
        unit_prices[i] = p->price;
    }
    if (of_verrs_any(v))
        return OF_INVALID;
    if (oos != 0) {
        *out_of_stock = oos;
        return OF_CONFLICT;
    }
    int64_t *qty = of_mem_alloc(m, sizeof(*qty) * (in->n_items ? in->n_items : 1));
    for (size_t i = 0; i < in->n_items; i++)
        qty[i] = in->items[i].quantity;
    if (order_total(qty, unit_prices, in->n_items, total) != OF_OK) {
        of_verr_add(v, OF_VE_VALUE, "Order total too large", OF_K("body"), OF_K("items"), OF_END);
        return OF_INVALID;
    }
    return OF_OK;
}

bool
order_sort_parse(const char *s, enum order_sort *out)
{
    static const char *const names[OSORT_COUNT] = {
        "-created_at", "created_at", "total", "-total", "id", "-id",
    };
    for (int i = 0; i < OSORT_COUNT; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum order_sort)i;
            return true;
        }
    }
    return false;
}

/* ---- service ---- */

struct order_svc {
    struct order_repo repo;
    struct idem_repo  idem;
};

struct order_svc *
order_svc_create(struct order_repo repo, struct idem_repo idem)
{
    struct order_svc *s = calloc(1, sizeof(*s));
    if (s != NULL) {
        s->repo = repo;
        s->idem = idem;
    }
    return s;
}

void
order_svc_destroy(struct order_svc *s)
{
    free(s);
}

/* One create, in the request arena. */
struct create {
    struct order_svc         *s;
    struct of_mem            *m;
    const struct order_input *in;
    int64_t                   user_id;
    struct of_verrs          *v;
    struct idem_run          *run;
    struct repo_tx           *tx;
    int64_t                  *product_ids;
    int64_t                  *quantities;
    int64_t                  *unit_prices;
    const char               *customer_name;
    struct order_outcome      out;
};

static void
on_inserted(int rc, const struct order *o, void *arg)
{
    struct create *c = arg;
    if (rc != OF_OK) {
        idem_op_done(c->run, rc, NULL);
        return;
    }
    c->out.order = o;
    idem_op_done(c->run, OF_OK, &c->out);
}

static void
on_refs(int rc, const struct order_refs *refs, void *arg)
{
    struct create *c = arg;
    if (rc != OF_OK) {
        idem_op_done(c->run, rc, NULL);
        return;
    }
    int64_t total = 0;
    rc = order_check_refs(c->in, refs, c->m, c->v, c->unit_prices, &total, &c->out.out_of_stock);
    if (rc != OF_OK) {
        idem_op_done(c->run, rc, rc == OF_CONFLICT ? &c->out : NULL);
        return;
    }
    struct order_new *o = of_mem_calloc(c->m, sizeof(*o));
    o->customer_id = c->in->customer_id;
    o->customer_name = refs->customer_name;
    o->total = total;
    o->notes = c->in->notes != NULL ? of_mem_strndup(c->m, c->in->notes, c->in->notes_len) : NULL;
    o->created_by = c->user_id;
    o->product_ids = c->product_ids;
    o->quantities = c->quantities;
    o->unit_prices = c->unit_prices;
    o->n = c->in->n_items;
    event_meta_new(&o->ev, of_mem_alloc(c->m, OF_EVENT_ID_CAP), c->in->traceparent);
    c->s->repo.ops->insert(c->s->repo.self, c->tx, c->m, o, on_inserted, c);
}

static void
create_op(struct idem_run *run, struct repo_tx *tx, void *arg)
{
    struct create *c = arg;
    c->run = run;
    c->tx = tx;
    c->s->repo.ops->lock_refs(c->s->repo.self, tx, c->m, c->in->customer_id, c->product_ids,
                              c->in->n_items, on_refs, c);
}

void
order_svc_place(struct order_svc *s, struct of_mem *m, const struct order_input *in,
                int64_t user_id, const struct idem_key *k, struct of_verrs *v,
                 idem_render_fn render, idem_done_fn done, void *arg)
{
    order_validate(in, m, v);
    if (of_verrs_any(v)) {
        struct idem_answer a = { .rc = OF_OK };
        a.status = render(arg, OF_INVALID, NULL, &a.body);
        done(arg, &a);
        return;
    }
    struct create *c = of_mem_calloc(m, sizeof(*c));
    size_t n = in->n_items ? in->n_items : 1;
    c->s = s;
    c->m = m;
    c->in = in;
    c->user_id = user_id;
    c->v = v;
    c->product_ids = of_mem_calloc(m, n * sizeof(int64_t));
    c->quantities = of_mem_calloc(m, n * sizeof(int64_t));
    c->unit_prices = of_mem_calloc(m, n * sizeof(int64_t));
    for (size_t i = 0; i < in->n_items; i++) {
        c->product_ids[i] = in->items[i].product_id;
        c->quantities[i] = in->items[i].quantity;
    }
    struct idem_spec sp = {
        .key = k, .op = create_op, .op_arg = c, .render = render, .done = done, .arg = arg,
    };
    idem_run(s->idem, m, &sp);
}

void
order_svc_get(struct order_svc *s, struct of_mem *m, int64_t id, int64_t viewer,
              order_cb cb, void *arg)
{
    s->repo.ops->get(s->repo.self, m, id, viewer, cb, arg);
}

void
order_svc_list(struct order_svc *s, struct of_mem *m, const struct order_filter *f,
               order_list_cb cb, void *arg)
{
    s->repo.ops->list(s->repo.self, m, f, cb, arg);
}

void
order_svc_transition(struct order_svc *s, struct of_mem *m, int64_t id,
                     enum rules_status to, int64_t user_id, bool admin,
                     const struct audit_ctx *a, const char *traceparent,
                     order_transition_cb cb, void *arg)
{
    if (!admin && to != RULES_STATUS_CANCELLED) {
        cb(OF_FORBIDDEN, NULL, RULES_STATUS_PENDING, arg);
        return;
    }
    struct order_transition *t = of_mem_calloc(m, sizeof(*t));
    t->id = id;
    t->to = to;
    if (admin) {
        t->viewer = 0;
        t->audit = a;
        for (int from = 0; from < RULES_STATUS_COUNT; from++)
            if (rules_transition_ok((enum rules_status)from, to))
                t->from_ok[t->n_from_ok++] = (enum rules_status)from;
    } else {
        t->viewer = user_id;
        t->audit = NULL;
        t->from_ok[t->n_from_ok++] = RULES_STATUS_PENDING;
    }
    event_meta_new(&t->ev, of_mem_alloc(m, OF_EVENT_ID_CAP), traceparent);
    s->repo.ops->transition(s->repo.self, m, t, cb, arg);
}

void
order_svc_delete(struct order_svc *s, struct of_mem *m, int64_t id,
                 const struct audit_ctx *a, order_done_cb cb, void *arg)
{
    s->repo.ops->remove(s->repo.self, m, id, a, cb, arg);
}
