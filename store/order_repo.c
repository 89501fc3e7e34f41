/*
 * order_repo.c -- orders and their items in PostgreSQL (contract:
 * domain/order.h).
 *
 * Create runs inside the idempotent run's transaction (store_tx): one
 * statement reads the customer and every product under FOR NO KEY UPDATE (so
 * neither changes or vanishes before COMMIT), one data-modifying CTE writes
 * the order and all its items (unnest over parameter arrays) and returns the
 * full order. A transition is ONE statement: the row is locked FOR UPDATE,
 * updated only if its status at that moment is an allowed origin, and the
 * audit row (admin) is written with it; the status seen under the lock comes
 * back for the 409 detail. Reads return one row per item (orders joined to
 * their items), grouped here; lists get their total in the same round trip.
 *
 * The outbox (domain/event.h): the create and transition statements also
 * insert their event, its "data" built here in SQL exactly as
 * handlers/orders.c renders the order (money as "39.98" from the cents,
 * timestamps as SQL_TS): the event exists if and only if the change
 * committed. The jobs process is woken after the COMMIT (store/event_wake.h:
 * a NOTIFY inside the transaction would serialise every committing order on
 * PostgreSQL's notify lock). A failing create or transition writes none. The
 * final SELECT counts the event CTE's rows (1 when an event was written).
 */
#include "store/repos.h"
#include "store/idem_repo.h"
#include "store/event_wake.h"
#include "store/sql.h"
#include "domain/order.h"
#include "domain/event.h"
#include "common/of.h"

#include <stdio.h>
#include <string.h>

/* 9 order columns then 5 item columns, from an orders row o (with c the
 * customer) and an items row i. */
#define OCOLS(o, cname) o "id, " o "customer_id, " cname ", " o "status, " o "total_cents, " \
    o "notes, " o "created_by, " SQL_TS(o "created_at") ", " SQL_TS(o "updated_at")
#define ICOLS "i.id, i.product_id, i.product_name, i.quantity, i.unit_price_cents"
#define NOCOLS 14

/* Money as the API sends it ("19.99") from a cents column; exact. */
#define SQL_MONEY(c) "((" c ")::numeric / 100)::numeric(20,2)::text"
/* An order as handlers/orders.c renders it: o an orders row (prefix),
 * cname the customer's name, items a jsonb array expression. */
#define ORDER_JSON(o, cname, items) "jsonb_build_object('id', " o "id, " \
    "'customer_id', " o "customer_id, 'customer_name', " cname ", 'status', " o "status, " \
    "'total', " SQL_MONEY(o "total_cents") ", 'notes', " o "notes, " \
    "'created_by', " o "created_by, 'items', " items ", " \
    "'created_at', " SQL_TS(o "created_at") ", 'updated_at', " SQL_TS(o "updated_at") ")"
/* The items array over rows i of `from` (an items relation and filter). */
#define ITEMS_JSON(from) "(SELECT COALESCE(jsonb_agg(jsonb_build_object('id', i.id, " \
    "'product_id', i.product_id, 'product_name', i.product_name, 'quantity', i.quantity, " \
    "'unit_price', " SQL_MONEY("i.unit_price_cents") ") ORDER BY i.id), '[]'::jsonb) FROM " from ")"
/* The event row: $id the event id, $tp the traceparent, data a jsonb expression. */
#define EVENT_INSERT(id, type, data, tp, from) \
    "e AS (INSERT INTO events (id, type, payload, traceparent) SELECT " id ", '" type "', " \
    "jsonb_build_object('id', " id "::text, 'type', '" type "', " \
    "'timestamp', " SQL_TS("now()") ", 'data', " data "), " tp " FROM " from " " \
    "RETURNING 1) "

/*
 * The array parameters are read through a scalar subquery, `(SELECT $n)`:
 * the planner cannot see their length then, so a custom plan costs what the
 * generic one does and the pool's prepared statement switches to its generic
 * plan after five runs. A bare `$n` array is a constant to the custom plan
 * (2 items, cheaper than the generic plan's guess of 10): every order was
 * planned anew, ~1 ms of PostgreSQL CPU per order (pg_stat_statements with
 * track_planning; see bench/README.md).
 *
 * Locks: FOR NO KEY UPDATE, not FOR SHARE. Two orders that share a product
 * or a customer took shared locks on its row together, which PostgreSQL
 * records as a MultiXact (and the foreign-key checks of the insert add their
 * KEY SHARE to it); an exclusive lock has one holder, so none is created,
 * and the FK checks of the same transaction find their own stronger lock.
 * The guarantee is the same: the row neither changes (price, stock, active)
 * nor vanishes before COMMIT; rows are locked in id order (no deadlock).
 */
#define SQL_ARRAY(p, t) "CAST((SELECT " p "::" t ") AS " t ")"

static const struct pool_stmt st_refs = {
    "order_refs",
    "WITH c AS (SELECT id, name, is_active FROM customers WHERE id = $1 FOR NO KEY UPDATE), "
    "p AS (SELECT id, name, price_cents, in_stock FROM products "
    "      WHERE id = ANY(" SQL_ARRAY("$2", "bigint[]") ") ORDER BY id FOR NO KEY UPDATE) "
    "SELECT c.name, c.is_active, p.id, p.name, p.price_cents, p.in_stock "
    "FROM (VALUES (1)) d LEFT JOIN c ON true LEFT JOIN p ON true", 2, 0 };

static const struct pool_stmt st_insert = {
    "order_insert",
    "WITH o AS (INSERT INTO orders (customer_id, total_cents, notes, created_by) "
    "  VALUES ($1, $2, $3, $4) RETURNING *), "
    "i AS (INSERT INTO order_items (order_id, product_id, product_name, quantity, unit_price_cents) "
    "  SELECT o.id, p.id, p.name, x.qty, x.price FROM o "
    "  CROSS JOIN unnest(" SQL_ARRAY("$5", "bigint[]") ", " SQL_ARRAY("$6", "int[]") ", "
    "    " SQL_ARRAY("$7", "bigint[]") ") WITH ORDINALITY AS x(pid, qty, price, ord) "
    "  JOIN products p ON p.id = x.pid ORDER BY x.ord RETURNING *), "
    EVENT_INSERT("$8", "order.created", ORDER_JSON("o.", "c.name", ITEMS_JSON("i")), "$9",
                 "o JOIN customers c ON c.id = o.customer_id")
    "SELECT " OCOLS("o.", "c.name") ", " ICOLS ", (SELECT count(*) FROM e) "
    "FROM o JOIN customers c ON c.id = o.customer_id "
    "LEFT JOIN i ON true ORDER BY i.id", 9, 0 };

static const struct pool_stmt st_get = {
    "order_get",
    "SELECT " OCOLS("o.", "c.name") ", " ICOLS " FROM orders o "
    "JOIN customers c ON c.id = o.customer_id LEFT JOIN order_items i ON i.order_id = o.id "
    "WHERE o.id = $1 AND ($2::bigint IS NULL OR o.created_by = $2) ORDER BY i.id", 2, POOL_STMT_READ };

/*
 * Lists: one statement per filter combination and sort, as static text (no
 * `$1 IS NULL OR ...` generic plans). Combination bits: 1 created_by (a
 * user's own orders), 2 status, 4 customer_id; filter parameters first in
 * that order, then the page's (as in product_repo.c). The total of offset
 * paging counts through the index of the combination's leading filter.
 */
#define OPAGE(nm, w, nf, p1, p2, inner, outer) { nm, \
    "SELECT " OCOLS("p.", "p.customer_name") ", " ICOLS ", t.n " \
    "FROM (SELECT CASE WHEN " p2 "::bigint >= 0 THEN " \
    "  (SELECT count(*) FROM orders o WHERE " w ") END AS n) t " \
    "LEFT JOIN LATERAL (SELECT o.*, c.name AS customer_name FROM orders o " \
    "  JOIN customers c ON c.id = o.customer_id WHERE " w \
    "  ORDER BY " inner " LIMIT " p1 " OFFSET greatest(" p2 ", 0)) p ON true " \
    "LEFT JOIN order_items i ON i.order_id = p.id ORDER BY " outer ", i.id", nf + 2, POOL_STMT_READ }
/* keyset: after cond (id sorts: id p1, limit p2; others key p1, id p2, limit p3) */
#define OAFTER(nm, w, cond, lim, np, inner, outer) { nm, \
    "SELECT " OCOLS("p.", "p.customer_name") ", " ICOLS ", 0 " \
    "FROM (SELECT o.*, c.name AS customer_name FROM orders o " \
    "  JOIN customers c ON c.id = o.customer_id WHERE " w " AND " cond \
    "  ORDER BY " inner " LIMIT " lim ") p " \
    "LEFT JOIN order_items i ON i.order_id = p.id ORDER BY " outer ", i.id", np, POOL_STMT_READ }
#define OPAGES(tag, w, nf, p1, p2) { \
    OPAGE("order_page_created_desc" tag, w, nf, p1, p2, "o.created_at DESC, o.id DESC", \
          "p.created_at DESC, p.id DESC"), \
    OPAGE("order_page_created" tag, w, nf, p1, p2, "o.created_at, o.id", "p.created_at, p.id"), \
    OPAGE("order_page_total" tag, w, nf, p1, p2, "o.total_cents, o.id", "p.total_cents, p.id"), \
    OPAGE("order_page_total_desc" tag, w, nf, p1, p2, "o.total_cents DESC, o.id DESC", \
          "p.total_cents DESC, p.id DESC"), \
    OPAGE("order_page_id" tag, w, nf, p1, p2, "o.id", "p.id"), \
    OPAGE("order_page_id_desc" tag, w, nf, p1, p2, "o.id DESC", "p.id DESC") }
#define OAFTERS(tag, w, nf, p1, p2, p3) { \
    OAFTER("order_after_created_desc" tag, w, \
           "(o.created_at, o.id) < (" p1 "::timestamptz, " p2 "::bigint)", p3, nf + 3, \
           "o.created_at DESC, o.id DESC", "p.created_at DESC, p.id DESC"), \
    OAFTER("order_after_created" tag, w, \
           "(o.created_at, o.id) > (" p1 "::timestamptz, " p2 "::bigint)", p3, nf + 3, \
           "o.created_at, o.id", "p.created_at, p.id"), \
    OAFTER("order_after_total" tag, w, \
           "(o.total_cents, o.id) > (" p1 "::bigint, " p2 "::bigint)", p3, nf + 3, \
           "o.total_cents, o.id", "p.total_cents, p.id"), \
    OAFTER("order_after_total_desc" tag, w, \
           "(o.total_cents, o.id) < (" p1 "::bigint, " p2 "::bigint)", p3, nf + 3, \
           "o.total_cents DESC, o.id DESC", "p.total_cents DESC, p.id DESC"), \
    OAFTER("order_after_id" tag, w, "o.id > " p1 "::bigint", p2, nf + 2, "o.id", "p.id"), \
    OAFTER("order_after_id_desc" tag, w, "o.id < " p1 "::bigint", p2, nf + 2, \
           "o.id DESC", "p.id DESC") }

#define OCOMBOS 8
#define OW0 "true"
#define OW1 "o.created_by = $1"
#define OW2 "o.status = $1"
#define OW3 "o.created_by = $1 AND o.status = $2"
#define OW4 "o.customer_id = $1"
#define OW5 "o.created_by = $1 AND o.customer_id = $2"
#define OW6 "o.status = $1 AND o.customer_id = $2"
#define OW7 "o.created_by = $1 AND o.status = $2 AND o.customer_id = $3"
static const struct pool_stmt st_page[OCOMBOS][OSORT_COUNT] = {
    OPAGES("", OW0, 0, "$1", "$2"),
    OPAGES("_u", OW1, 1, "$2", "$3"),
    OPAGES("_s", OW2, 1, "$2", "$3"),
    OPAGES("_us", OW3, 2, "$3", "$4"),
    OPAGES("_c", OW4, 1, "$2", "$3"),
    OPAGES("_uc", OW5, 2, "$3", "$4"),
    OPAGES("_sc", OW6, 2, "$3", "$4"),
    OPAGES("_usc", OW7, 3, "$4", "$5"),
};
static const struct pool_stmt st_after[OCOMBOS][OSORT_COUNT] = {
    OAFTERS("", OW0, 0, "$1", "$2", "$3"),
    OAFTERS("_u", OW1, 1, "$2", "$3", "$4"),
    OAFTERS("_s", OW2, 1, "$2", "$3", "$4"),
    OAFTERS("_us", OW3, 2, "$3", "$4", "$5"),
    OAFTERS("_c", OW4, 1, "$2", "$3", "$4"),
    OAFTERS("_uc", OW5, 2, "$3", "$4", "$5"),
    OAFTERS("_sc", OW6, 2, "$3", "$4", "$5"),
    OAFTERS("_usc", OW7, 3, "$4", "$5", "$6"),
};

static const struct pool_stmt st_transition = {
    "order_transition",
    "WITH cur AS (SELECT id, status FROM orders "
    "  WHERE id = $1 AND ($2::bigint IS NULL OR created_by = $2) FOR UPDATE), "
    "u AS (UPDATE orders o SET status = $3, updated_at = now() FROM cur "
    "  WHERE o.id = cur.id AND cur.status = ANY($4::text[]) RETURNING o.*), "
    "a AS (INSERT INTO audit_log (actor_id, action, entity, entity_id, request_id, details) "
    "  SELECT $5, 'transition', 'order', u.id, $6, "
    "         jsonb_build_object('from', cur.status, 'to', u.status) "
    "  FROM u CROSS JOIN cur WHERE $5::bigint IS NOT NULL), "
    EVENT_INSERT("$7", "order.status_changed",
                 "jsonb_build_object('order', " ORDER_JSON("u.", "uc.name",
                     ITEMS_JSON("order_items i WHERE i.order_id = u.id")) ", "
                 "'from', cur.status, 'to', u.status)", "$8",
                 "u CROSS JOIN cur JOIN customers uc ON uc.id = u.customer_id")
    "SELECT cur.status, " OCOLS("u.", "c.name") ", " ICOLS ", (SELECT count(*) FROM e) FROM cur "
    "LEFT JOIN u ON true LEFT JOIN customers c ON c.id = u.customer_id "
    "LEFT JOIN order_items i ON i.order_id = u.id ORDER BY i.id", 8, 0 };

static const struct pool_stmt st_delete = {
    "order_delete",
    "WITH d AS (DELETE FROM orders WHERE id = $1 RETURNING id, status), "
    "a AS (INSERT INTO audit_log (actor_id, action, entity, entity_id, request_id, details) "
    "  SELECT $2, 'delete', 'order', id, $3, jsonb_build_object('status', status) FROM d) "
    "SELECT id FROM d", 3, 0 };

#define OROW(t, c) &t[c][0], &t[c][1], &t[c][2], &t[c][3], &t[c][4], &t[c][5]
const struct pool_stmt *const store_order_stmts[] = {
    &st_refs, &st_insert, &st_get, &st_transition, &st_delete,
    OROW(st_page, 0), OROW(st_page, 1), OROW(st_page, 2), OROW(st_page, 3),
    OROW(st_page, 4), OROW(st_page, 5), OROW(st_page, 6), OROW(st_page, 7),
    OROW(st_after, 0), OROW(st_after, 1), OROW(st_after, 2), OROW(st_after, 3),
    OROW(st_after, 4), OROW(st_after, 5), OROW(st_after, 6), OROW(st_after, 7),
};
const size_t store_order_nstmts = OF_ARRAY_LEN(store_order_stmts);

struct op {
    struct of_mem       *m;
    order_cb             cb;
    order_list_cb        list_cb;
    order_refs_cb        refs_cb;
    order_done_cb        done_cb;
    order_transition_cb  tr_cb;
    pool                *wake;       /* transition: whom to wake after it */
    void                *arg;
};

static struct op *
op_new(struct of_mem *m, void *arg)
{
    struct op *op = of_mem_calloc(m, sizeof(*op));
    op->m = m;
    op->arg = arg;
    return op;
}

static enum rules_status
status_of(const char *s)
{
    enum rules_status st = RULES_STATUS_PENDING;
    if (s != NULL)
        rules_status_parse(s, strlen(s), &st);
    return st;
}

/* Rows [row0, row1) are one order starting at column b. */
static void
read_order(struct of_mem *m, const PGresult *r, int row0, int row1, int b, struct order *o)
{
    o->id = sql_i64(r, row0, b + 0);
    o->customer_id = sql_i64(r, row0, b + 1);
    o->customer_name = sql_str(m, r, row0, b + 2);
    o->status = status_of(PQgetvalue(r, row0, b + 3));
    o->total = sql_i64(r, row0, b + 4);
    o->notes = sql_str(m, r, row0, b + 5);
    o->created_by = sql_i64(r, row0, b + 6);
    o->created_at = sql_str(m, r, row0, b + 7);
    o->updated_at = sql_str(m, r, row0, b + 8);
    struct order_item *items = of_mem_calloc(m, sizeof(*items) * (size_t)(row1 - row0));
    size_t n = 0;
    for (int i = row0; i < row1; i++) {
        if (sql_isnull(r, i, b + 9))
            continue;
        struct order_item *it = &items[n++];
        it->id = sql_i64(r, i, b + 9);
        it->product_id = sql_i64(r, i, b + 10);
        it->product_name = sql_str(m, r, i, b + 11);
        it->quantity = sql_i64(r, i, b + 12);
        it->unit_price = sql_i64(r, i, b + 13);
    }
    o->items = items;
    o->n_items = n;
}

/* Groups consecutive rows by order id (column b); rows whose order id is
 * NULL (an empty page, a missed LEFT JOIN) are skipped. */
static size_t
read_orders(struct of_mem *m, const PGresult *r, int b, struct order **out)
{
    int rows = PQntuples(r);
    struct order *os = of_mem_calloc(m, sizeof(*os) * (size_t)(rows ? rows : 1));
    size_t n = 0;
    int i = 0;
    while (i < rows) {
        if (sql_isnull(r, i, b)) {
            i++;
            continue;
        }
        int64_t id = sql_i64(r, i, b);
        int j = i + 1;
        while (j < rows && !sql_isnull(r, j, b) && sql_i64(r, j, b) == id)
            j++;
        read_order(m, r, i, j, b, &os[n++]);
        i = j;
    }
    *out = os;
    return n;
}

static const char *
i64_array(struct of_mem *m, const int64_t *v, size_t n)
{
    size_t cap = 2 + n * 21 + 1;
    char *buf = of_mem_alloc(m, cap);
    size_t k = 0;
    buf[k++] = '{';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(buf + k, cap - k, "%s%lld", i ? "," : "", (long long)v[i]);
        if (w < 0 || (size_t)w >= cap - k)
            break;
        k += (size_t)w;
    }
    if (k + 2 <= cap) {
        buf[k++] = '}';
        buf[k] = '\0';
    }
    return buf;
}

/* ---- create (inside a run's transaction) ---- */

static void
on_refs(pool_tx *tx, const struct pool_res *res, void *arg)
{
    OF_UNUSED(tx);
    struct op *op = arg;
    int rc = sql_rc(res);
    if (rc != OF_OK) {
        op->refs_cb(rc == OF_UNAVAILABLE ? OF_UNAVAILABLE : OF_ERR, NULL, op->arg);
        return;
    }
    const PGresult *r = res->res;
    int rows = PQntuples(r);
    struct order_refs *refs = of_mem_calloc(op->m, sizeof(*refs));
    struct order_ref_product *ps = of_mem_calloc(op->m, sizeof(*ps) * (size_t)(rows ? rows : 1));
    if (rows > 0 && !sql_isnull(r, 0, 0)) {
        refs->customer_found = true;
        refs->customer_name = sql_str(op->m, r, 0, 0);
        refs->customer_active = sql_bool(r, 0, 1);
    }
    size_t n = 0;
    for (int i = 0; i < rows; i++) {
        if (sql_isnull(r, i, 2))
            continue;
        ps[n].id = sql_i64(r, i, 2);
        ps[n].name = sql_str(op->m, r, i, 3);
        ps[n].price = sql_i64(r, i, 4);
        ps[n].in_stock = sql_bool(r, i, 5);
        n++;
    }
    refs->products = ps;
    refs->n_products = n;
    op->refs_cb(OF_OK, refs, op->arg);
}

static void
repo_lock_refs(void *self, struct repo_tx *tx, struct of_mem *m, int64_t customer_id,
               const int64_t *product_ids, size_t n, order_refs_cb cb, void *arg)
{
    OF_UNUSED(self);
    struct op *op = op_new(m, arg);
    op->refs_cb = cb;
    const char **p = of_mem_alloc(m, 2 * sizeof(*p));
    p[0] = sql_i64_param(m, customer_id);
    p[1] = i64_array(m, product_ids, n);
    pool_tx_query(store_tx(tx), &st_refs, p, on_refs, op);
}

static void
on_order_tx(pool_tx *tx, const struct pool_res *res, void *arg)
{
    OF_UNUSED(tx);
    struct op *op = arg;
    int rc = sql_rc(res);
    if (rc != OF_OK) {
        op->cb(rc == OF_UNAVAILABLE ? OF_UNAVAILABLE : OF_ERR, NULL, op->arg);
        return;
    }
    struct order *os;
    if (read_orders(op->m, res->res, 0, &os) != 1) {
        op->cb(OF_ERR, NULL, op->arg);
        return;
    }
    op->cb(OF_OK, os, op->arg);
}

static void
repo_insert(void *self, struct repo_tx *tx, struct of_mem *m, const struct order_new *o,
            order_cb cb, void *arg)
{
    OF_UNUSED(self);
    struct op *op = op_new(m, arg);
    op->cb = cb;
    const char **p = of_mem_alloc(m, 9 * sizeof(*p));
    p[0] = sql_i64_param(m, o->customer_id);
    p[1] = sql_i64_param(m, o->total);
    p[2] = o->notes;
    p[3] = sql_i64_param(m, o->created_by);
    p[4] = i64_array(m, o->product_ids, o->n);
    p[5] = i64_array(m, o->quantities, o->n);
    p[6] = i64_array(m, o->unit_prices, o->n);
    p[7] = o->ev.id;
    p[8] = o->ev.traceparent;
    pool_tx_after_commit(store_tx(tx), event_wake);
    pool_tx_query(store_tx(tx), &st_insert, p, on_order_tx, op);
}

/* ---- reads ---- */

static void
on_order(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    int rc = sql_rc(res);
    if (rc != OF_OK) {
        op->cb(rc, NULL, op->arg);
        return;
    }
    struct order *os;
    if (read_orders(op->m, res->res, 0, &os) != 1) {
        op->cb(OF_NOTFOUND, NULL, op->arg);
        return;
    }
    op->cb(OF_OK, os, op->arg);
}

static void
repo_get(void *self, struct of_mem *m, int64_t id, int64_t viewer, order_cb cb, void *arg)
{
    struct op *op = op_new(m, arg);
    op->cb = cb;
    const char **p = of_mem_alloc(m, 2 * sizeof(*p));
    p[0] = sql_i64_param(m, id);
    p[1] = viewer > 0 ? sql_i64_param(m, viewer) : NULL;
    pool_query(self, m, &st_get, p, on_order, op);
}

static void
on_list(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    int rc = sql_rc(res);
    if (rc != OF_OK) {
        op->list_cb(rc, NULL, op->arg);
        return;
    }
    struct order_list *l = of_mem_calloc(op->m, sizeof(*l));
    struct order *os;
    l->n = read_orders(op->m, res->res, 0, &os);
    l->items = os;
    l->total = PQntuples(res->res) > 0 ? sql_i64(res->res, 0, NOCOLS) : 0;
    op->list_cb(OF_OK, l, op->arg);
}

static void
repo_list(void *self, struct of_mem *m, const struct order_filter *f, order_list_cb cb, void *arg)
{
    struct op *op = op_new(m, arg);
    op->list_cb = cb;
    const char *p[6];
    int         n = 0;
    unsigned    combo = (f->viewer > 0 ? 1u : 0u) | (f->status >= 0 ? 2u : 0u)
                        | (f->customer_id != 0 ? 4u : 0u);

    if (f->viewer > 0)
        p[n++] = sql_i64_param(m, f->viewer);
    if (f->status >= 0)
        p[n++] = rules_status_name((enum rules_status)f->status);
    if (f->customer_id != 0)
        p[n++] = sql_i64_param(m, f->customer_id);
    unsigned    pf = SQL_PAGE_GATED_COUNT | (f->sort == OSORT_ID || f->sort == OSORT_ID_DESC ? SQL_PAGE_ID_SORT : 0u);
    n += sql_page_params(m, &f->pg, pf, p + n);
    const struct pool_stmt *st = f->pg.after ? &st_after[combo][f->sort] : &st_page[combo][f->sort];
    pool_query(self, m, st, p, on_list, op);
}

/* ---- writes ---- */

static void
on_transition(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    int rc = sql_rc(res);
    if (rc != OF_OK) {
        op->tr_cb(rc, NULL, RULES_STATUS_PENDING, op->arg);
        return;
    }
    const PGresult *r = res->res;
    if (PQntuples(r) == 0) {
        op->tr_cb(OF_NOTFOUND, NULL, RULES_STATUS_PENDING, op->arg);
        return;
    }
    enum rules_status cur = status_of(PQgetvalue(r, 0, 0));
    if (sql_isnull(r, 0, 1)) {
        op->tr_cb(OF_CONFLICT, NULL, cur, op->arg);
        return;
    }
    struct order *os;
    if (read_orders(op->m, r, 1, &os) != 1) {
        op->tr_cb(OF_ERR, NULL, cur, op->arg);
        return;
    }
    event_wake(op->wake);          /* one statement: committed already */
    op->tr_cb(OF_OK, os, cur, op->arg);
}

static void
repo_transition(void *self, struct of_mem *m, const struct order_transition *t,
                order_transition_cb cb, void *arg)
{
    struct op *op = op_new(m, arg);
    op->tr_cb = cb;
    op->wake = self;
    char *from = of_mem_alloc(m, 16 * RULES_STATUS_COUNT + 3);
    size_t k = 0;
    from[k++] = '{';
    for (size_t i = 0; i < t->n_from_ok; i++) {
        const char *nm = rules_status_name(t->from_ok[i]);
        if (i)
            from[k++] = ',';
        size_t l = strlen(nm);
        memcpy(from + k, nm, l);
        k += l;
    }
    from[k++] = '}';
    from[k] = '\0';
    const char **p = of_mem_alloc(m, 8 * sizeof(*p));
    p[0] = sql_i64_param(m, t->id);
    p[1] = t->viewer > 0 ? sql_i64_param(m, t->viewer) : NULL;
    p[2] = rules_status_name(t->to);
    p[3] = from;
    p[4] = t->audit != NULL ? sql_i64_param(m, t->audit->actor_id) : NULL;
    p[5] = t->audit != NULL ? t->audit->request_id : NULL;
    p[6] = t->ev.id;
    p[7] = t->ev.traceparent;
    pool_query(self, m, &st_transition, p, on_transition, op);
}

static void
on_deleted(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    op->done_cb(sql_rc_found(res), op->arg);
}

static void
repo_remove(void *self, struct of_mem *m, int64_t id, const struct audit_ctx *a,
            order_done_cb cb, void *arg)
{
    struct op *op = op_new(m, arg);
    op->done_cb = cb;
    const char **p = of_mem_alloc(m, 3 * sizeof(*p));
    p[0] = sql_i64_param(m, id);
    p[1] = sql_i64_param(m, a->actor_id);
    p[2] = a->request_id;
    pool_query(self, m, &st_delete, p, on_deleted, op);
}

static const struct order_repo_ops pg_order_ops = {
    .lock_refs = repo_lock_refs,
    .insert = repo_insert,
    .get = repo_get,
    .list = repo_list,
    .transition = repo_transition,
    .remove = repo_remove,
};

struct order_repo
store_order_repo(pool *p)
{
    return (struct order_repo){ &pg_order_ops, p };
}
