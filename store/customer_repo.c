/*
 * customer_repo.c -- customers in PostgreSQL.
 *
 * Uniqueness of the email (case-insensitive) is the customers_email_lower_key
 * index: a create that hits it returns no row (ON CONFLICT DO NOTHING), an
 * update gets 23505; both are OF_CONFLICT. Deletion is one statement: lock
 * the row, remove it when no order references it, else set is_active =
 * false, and write the audit row -- all or nothing, one round trip. Offset
 * pages get their total in the same round trip, even past the end.
 */
#include "store/repos.h"
#include "store/sql.h"
#include "common/of.h"

#include <string.h>

#define CCOLS(p) p "id, " p "name, " p "email, " p "tier, " p "is_active, " \
                 SQL_TS(p "created_at")

static const struct pool_stmt st_get = {
    "customer_get", "SELECT " CCOLS("") " FROM customers WHERE id = $1", 1, POOL_STMT_READ };

/*
 * Lists: one statement per filter combination and sort, as static text (no
 * `$1 IS NULL OR ...` generic plans). Combination bits: 1 tier, 2 is_active,
 * 4 q; filter parameters first in that order, then the page's (as in
 * product_repo.c). Totals without q come from customer_counts (kept by
 * triggers, migrations/0004); q (name or email, literal, case-insensitive;
 * emails are stored lower-cased) is served by the trigram indexes behind an
 * OFFSET 0 fence when they can narrow q (sql_trgm_useful); a shorter q uses
 * combinations 8-11 (as 4-7, with strpos() on the raw text, which no index
 * matches: the sort order's index, filtered, stops at the page).
 */
#define CPAGE(nm, w, cnt, nf, p1, p2, inner, outer) { nm, \
    "SELECT " CCOLS("c.") ", t.n FROM (SELECT CASE WHEN " p2 "::bigint >= 0 THEN " cnt " END AS n) t " \
    "LEFT JOIN LATERAL (SELECT * FROM " w " ORDER BY " inner " LIMIT " p1 \
    " OFFSET greatest(" p2 ", 0)) c ON true ORDER BY " outer, \
    nf + 2, POOL_STMT_READ }
#define CAFTER_ID(nm, w, nf, p1, p2, op, inner) { nm, \
    "SELECT " CCOLS("") ", 0 FROM " w " AND id " op " " p1 "::bigint ORDER BY " inner \
    " LIMIT " p2, nf + 2, POOL_STMT_READ }
#define CAFTER_NAME(nm, w, nf, p1, p2, p3, op, inner) { nm, \
    "SELECT " CCOLS("") ", 0 FROM " w " AND (name, id) " op " (" p1 "::text, " p2 \
    "::bigint) ORDER BY " inner " LIMIT " p3, nf + 3, POOL_STMT_READ }
#define CPAGES(tag, w, cnt, nf, p1, p2) { \
    CPAGE("customer_page_id" tag, w, cnt, nf, p1, p2, "id", "c.id"), \
    CPAGE("customer_page_id_desc" tag, w, cnt, nf, p1, p2, "id DESC", "c.id DESC"), \
    CPAGE("customer_page_name" tag, w, cnt, nf, p1, p2, "name, id", "c.name, c.id"), \
    CPAGE("customer_page_name_desc" tag, w, cnt, nf, p1, p2, "name DESC, id DESC", \
          "c.name DESC, c.id DESC") }
#define CAFTERS(tag, w, nf, p1, p2, p3) { \
    CAFTER_ID("customer_after_id" tag, w, nf, p1, p2, ">", "id"), \
    CAFTER_ID("customer_after_id_desc" tag, w, nf, p1, p2, "<", "id DESC"), \
    CAFTER_NAME("customer_after_name" tag, w, nf, p1, p2, p3, ">", "name, id"), \
    CAFTER_NAME("customer_after_name_desc" tag, w, nf, p1, p2, p3, "<", "name DESC, id DESC") }

/* q: through the trigram indexes (CQ), or for a q they cannot narrow (CQ2) */
#define CQ(n)  "(lower(name) LIKE lower(" n ") OR email LIKE lower(" n "))"
#define CQ2(n) "(strpos(lower(name), lower(" n ")) > 0 OR strpos(email, lower(" n ")) > 0)"
#define CCOMBOS 12
#define CW0 "customers WHERE true"
#define CN0 "(SELECT coalesce(sum(n), 0) FROM customer_counts)"
#define CW1 "customers WHERE tier = $1"
#define CN1 "(SELECT coalesce(sum(n), 0) FROM customer_counts WHERE tier = $1)"
#define CW2 "customers WHERE is_active = $1"
#define CN2 "(SELECT coalesce(sum(n), 0) FROM customer_counts WHERE is_active = $1)"
#define CW3 "customers WHERE tier = $1 AND is_active = $2"
#define CN3 "(SELECT coalesce(sum(n), 0) FROM customer_counts WHERE tier = $1 AND is_active = $2)"
#define CW4 "(SELECT * FROM customers WHERE " CQ("$1") " OFFSET 0) s WHERE true"
#define CN4 "(SELECT count(*) FROM customers WHERE " CQ("$1") ")"
#define CW5 "(SELECT * FROM customers WHERE tier = $1 AND " CQ("$2") " OFFSET 0) s WHERE true"
#define CN5 "(SELECT count(*) FROM customers WHERE tier = $1 AND " CQ("$2") ")"
#define CW6 "(SELECT * FROM customers WHERE is_active = $1 AND " CQ("$2") " OFFSET 0) s WHERE true"
#define CN6 "(SELECT count(*) FROM customers WHERE is_active = $1 AND " CQ("$2") ")"
#define CW7 "(SELECT * FROM customers WHERE tier = $1 AND is_active = $2 AND " CQ("$3") \
            " OFFSET 0) s WHERE true"
#define CN7 "(SELECT count(*) FROM customers WHERE tier = $1 AND is_active = $2 AND " CQ("$3") ")"
#define CW8 "customers WHERE " CQ2("$1")
#define CN8 "(SELECT count(*) FROM " CW8 ")"
#define CW9 "customers WHERE tier = $1 AND " CQ2("$2")
#define CN9 "(SELECT count(*) FROM " CW9 ")"
#define CW10 "customers WHERE is_active = $1 AND " CQ2("$2")
#define CN10 "(SELECT count(*) FROM " CW10 ")"
#define CW11 "customers WHERE tier = $1 AND is_active = $2 AND " CQ2("$3")
#define CN11 "(SELECT count(*) FROM " CW11 ")"
static const struct pool_stmt st_page[CCOMBOS][CSORT_COUNT] = {
    CPAGES("", CW0, CN0, 0, "$1", "$2"),
    CPAGES("_t", CW1, CN1, 1, "$2", "$3"),
    CPAGES("_a", CW2, CN2, 1, "$2", "$3"),
    CPAGES("_ta", CW3, CN3, 2, "$3", "$4"),
    CPAGES("_q", CW4, CN4, 1, "$2", "$3"),
    CPAGES("_tq", CW5, CN5, 2, "$3", "$4"),
    CPAGES("_aq", CW6, CN6, 2, "$3", "$4"),
    CPAGES("_taq", CW7, CN7, 3, "$4", "$5"),
    CPAGES("_q2", CW8, CN8, 1, "$2", "$3"),
    CPAGES("_tq2", CW9, CN9, 2, "$3", "$4"),
    CPAGES("_aq2", CW10, CN10, 2, "$3", "$4"),
    CPAGES("_taq2", CW11, CN11, 3, "$4", "$5"),
};
static const struct pool_stmt st_after[CCOMBOS][CSORT_COUNT] = {
    CAFTERS("", CW0, 0, "$1", "$2", "$3"),
    CAFTERS("_t", CW1, 1, "$2", "$3", "$4"),
    CAFTERS("_a", CW2, 1, "$2", "$3", "$4"),
    CAFTERS("_ta", CW3, 2, "$3", "$4", "$5"),
    CAFTERS("_q", CW4, 1, "$2", "$3", "$4"),
    CAFTERS("_tq", CW5, 2, "$3", "$4", "$5"),
    CAFTERS("_aq", CW6, 2, "$3", "$4", "$5"),
    CAFTERS("_taq", CW7, 3, "$4", "$5", "$6"),
    CAFTERS("_q2", CW8, 1, "$2", "$3", "$4"),
    CAFTERS("_tq2", CW9, 2, "$3", "$4", "$5"),
    CAFTERS("_aq2", CW10, 2, "$3", "$4", "$5"),
    CAFTERS("_taq2", CW11, 3, "$4", "$5", "$6"),
};

static const struct pool_stmt st_create = {
    "customer_create",
    "INSERT INTO customers (name, email, tier, is_active) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT DO NOTHING RETURNING " CCOLS(""), 4, 0 };

static const struct pool_stmt st_update = {
    "customer_update",
    "UPDATE customers SET name = COALESCE($2, name), email = COALESCE($3, email), "
    "  tier = COALESCE($4, tier), is_active = COALESCE($5::bool, is_active), "
    "  updated_at = CASE WHEN $2::text IS NULL AND $3::text IS NULL AND $4::text IS NULL "
    "    AND $5::bool IS NULL THEN updated_at ELSE now() END "
    "WHERE id = $1 RETURNING " CCOLS(""), 5, 0 };

/* $1 id, $2 actor, $3 request id. Returns (id, deactivated) or no row. */
static const struct pool_stmt st_remove = {
    "customer_remove",
    "WITH c AS (SELECT id, name, email, "
    "    EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = customers.id) AS has_orders "
    "  FROM customers WHERE id = $1 FOR UPDATE), "
    "d AS (DELETE FROM customers WHERE id = (SELECT id FROM c WHERE NOT has_orders) RETURNING id), "
    "u AS (UPDATE customers SET is_active = false, updated_at = now() "
    "  WHERE id = (SELECT id FROM c WHERE has_orders) RETURNING id), "
    "a AS (INSERT INTO audit_log (actor_id, action, entity, entity_id, request_id, details) "
    "  SELECT $2, 'delete', 'customer', id, $3, CASE WHEN has_orders "
    "    THEN jsonb_build_object('deactivated', true) "
    "    ELSE jsonb_build_object('name', name, 'email', email) END FROM c) "
    "SELECT id, has_orders FROM c", 3, 0 };

#define CROW(t, c) &t[c][0], &t[c][1], &t[c][2], &t[c][3]
const struct pool_stmt *const store_customer_stmts[] = {
    &st_get, &st_create, &st_update, &st_remove,
    CROW(st_page, 0), CROW(st_page, 1), CROW(st_page, 2), CROW(st_page, 3),
    CROW(st_page, 4), CROW(st_page, 5), CROW(st_page, 6), CROW(st_page, 7),
    CROW(st_page, 8), CROW(st_page, 9), CROW(st_page, 10), CROW(st_page, 11),
    CROW(st_after, 0), CROW(st_after, 1), CROW(st_after, 2), CROW(st_after, 3),
    CROW(st_after, 4), CROW(st_after, 5), CROW(st_after, 6), CROW(st_after, 7),
    CROW(st_after, 8), CROW(st_after, 9), CROW(st_after, 10), CROW(st_after, 11),
};
const size_t store_customer_nstmts = OF_ARRAY_LEN(store_customer_stmts);

struct op {
    pool                *pool;
    struct of_mem       *m;
    customer_cb          cb;
    customer_list_cb     list_cb;
    customer_removed_cb  removed_cb;
    void                *arg;
    int                  missing_rc;
    const char         **params;      /* kept for the one retry of a removal */
    bool                 retried;
};

static struct op *
op_new(pool *p, struct of_mem *m, void *arg, int missing_rc)
{
    struct op *op = of_mem_calloc(m, sizeof(*op));
    op->pool = p;
    op->m = m;
    op->arg = arg;
    op->missing_rc = missing_rc;
    return op;
}

static enum rules_tier
tier_of(const char *s)
{
    enum rules_tier t = RULES_TIER_FREE;
    if (s != NULL)
        rules_tier_parse(s, strlen(s), &t);
    return t;
}

static void
row_to_customer(struct of_mem *m, const PGresult *r, int row, void *item)
{
    struct customer *c = item;
    c->id = sql_i64(r, row, 0);
    c->name = sql_str(m, r, row, 1);
    c->email = sql_str(m, r, row, 2);
    c->tier = tier_of(PQgetvalue(r, row, 3));
    c->is_active = sql_bool(r, row, 4);
    c->created_at = sql_str(m, r, row, 5);
}

/* One row → customer; no row → op->missing_rc. */
static void
on_customer(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    int rc;
    struct customer *c = sql_one_row(op->m, res, sizeof(*c), row_to_customer, op->missing_rc, &rc);
    op->cb(rc, c, op->arg);
}

static void
repo_get(void *self, struct of_mem *m, int64_t id, customer_cb cb, void *arg)
{
    struct op *op = op_new(self, m, arg, OF_NOTFOUND);
    op->cb = cb;
    const char *p[] = { sql_i64_param(m, id) };
    pool_query(self, m, &st_get, p, on_customer, op);
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
    struct customer_list *l = of_mem_calloc(op->m, sizeof(*l));
    l->items = sql_page_rows(op->m, res->res, sizeof(struct customer), row_to_customer, 6, &l->n, &l->total);
    op->list_cb(OF_OK, l, op->arg);
}

static void
repo_list(void *self, struct of_mem *m, const struct customer_filter *f,
          customer_list_cb cb, void *arg)
{
    struct op *op = op_new(self, m, arg, OF_NOTFOUND);
    op->list_cb = cb;
    const char *p[6];
    int         n = 0;
    unsigned    combo = (f->tier >= 0 ? 1u : 0u) | (f->is_active >= 0 ? 2u : 0u)
                        | (f->q != NULL ? 4u : 0u);
    if (f->q != NULL && !sql_trgm_useful(f->q))
        combo += 4;                       /* 4..7 -> 8..11: no trigram fence */

    if (f->tier >= 0)
        p[n++] = rules_tier_name((enum rules_tier)f->tier);
    if (f->is_active >= 0)
        p[n++] = f->is_active ? "true" : "false";
    if (f->q != NULL)
        p[n++] = combo >= 8 ? f->q : sql_like_contains(m, f->q);
    unsigned    pf = SQL_PAGE_GATED_COUNT | (f->sort == CSORT_ID || f->sort == CSORT_ID_DESC ? SQL_PAGE_ID_SORT : 0u);
    n += sql_page_params(m, &f->pg, pf, p + n);
    const struct pool_stmt *st = f->pg.after ? &st_after[combo][f->sort] : &st_page[combo][f->sort];
    pool_query(self, m, st, p, on_list, op);
}

static void
repo_create(void *self, struct of_mem *m, const struct customer_input *in,
            customer_cb cb, void *arg)
{
    struct op *op = op_new(self, m, arg, OF_CONFLICT);
    op->cb = cb;
    const char *p[] = {
        in->name, in->email, rules_tier_name(in->tier), in->is_active ? "true" : "false",
    };
    pool_query(self, m, &st_create, p, on_customer, op);
}

static void
repo_update(void *self, struct of_mem *m, int64_t id, const struct customer_input *in,
            customer_cb cb, void *arg)
{
    struct op *op = op_new(self, m, arg, OF_NOTFOUND);
    op->cb = cb;
    const char *p[] = {
        sql_i64_param(m, id),
        in->has_name ? in->name : NULL,
        in->has_email ? in->email : NULL,
        in->has_tier ? rules_tier_name(in->tier) : NULL,
        in->has_is_active ? (in->is_active ? "true" : "false") : NULL,
    };
    pool_query(self, m, &st_update, p, on_customer, op);
}

/* An order created for this customer between the statement's snapshot and
 * its DELETE makes the DELETE fail on the foreign key (23503): run it once
 * more, and the fresh snapshot sees the order and deactivates instead. */
static void
on_removed(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    if (!op->retried && pool_res_sqlstate_is(res, "23503") && !op->m->abandoned) {
        op->retried = true;
        pool_query(op->pool, op->m, &st_remove, op->params, on_removed, op);
        return;
    }
    int rc = sql_rc(res);
    if (rc != OF_OK) {
        op->removed_cb(rc == OF_INVALID ? OF_CONFLICT : rc, CUSTOMER_DELETED, op->arg);
        return;
    }
    if (PQntuples(res->res) == 0) {
        op->removed_cb(OF_NOTFOUND, CUSTOMER_DELETED, op->arg);
        return;
    }
    op->removed_cb(OF_OK, sql_bool(res->res, 0, 1) ? CUSTOMER_DEACTIVATED : CUSTOMER_DELETED,
                   op->arg);
}

static void
repo_remove(void *self, struct of_mem *m, int64_t id, const struct audit_ctx *a,
            customer_removed_cb cb, void *arg)
{
    struct op *op = op_new(self, m, arg, OF_NOTFOUND);
    op->removed_cb = cb;
    op->params = of_mem_alloc(m, 3 * sizeof(*op->params));
    op->params[0] = sql_i64_param(m, id);
    op->params[1] = sql_i64_param(m, a->actor_id);
    op->params[2] = a->request_id;
    pool_query(self, m, &st_remove, op->params, on_removed, op);
}

static const struct customer_repo_ops pg_customer_ops = {
    .get = repo_get,
    .list = repo_list,
    .create = repo_create,
    .update = repo_update,
    .remove = repo_remove,
};

struct customer_repo
store_customer_repo(pool *p)
{
    return (struct customer_repo){ &pg_customer_ops, p };
}
