/*
 * customer_repo.c -- customers in PostgreSQL.
 *
 * Uniqueness of the email (case-insensitive) is the customers_email_lower_key
 * index: a create that hits it returns no row (ON CONFLICT DO NOTHING), an
 * update gets 23505; both are OF_CONFLICT. Deletion is one statement: lock
 * the row, remove it when no order references it, else set is_active =
 * false, and write the audit row -- all or nothing, one round trip. List
 * statements are one per sort order from a fixed allowlist, the total in
 * the same round trip, even for a page past the end.
 */
#include "store/repos.h"
#include "store/sql.h"
#include "common/of.h"

#include <string.h>

#define CCOLS(p) p "id, " p "name, " p "email, " p "tier, " p "is_active, " \
                 SQL_TS(p "created_at")

static const struct pool_stmt st_get = {
    "customer_get", "SELECT " CCOLS("") " FROM customers WHERE id = $1", 1, POOL_STMT_READ };

/* $1 tier, $2 is_active, $3 q (literal, case-insensitive; emails are stored
 * lower-cased), $4 limit, $5 offset */
#define CFILTER "($1::text IS NULL OR tier = $1) AND ($2::bool IS NULL OR is_active = $2) AND " \
                "($3::text IS NULL OR strpos(lower(name), lower($3)) > 0 " \
                "  OR strpos(email, lower($3)) > 0)"
#define CLIST(nm, inner, outer) { nm, \
    "SELECT " CCOLS("c.") ", t.n FROM (SELECT count(*) AS n FROM customers WHERE " CFILTER ") t " \
    "LEFT JOIN LATERAL (SELECT * FROM customers WHERE " CFILTER " ORDER BY " inner \
    " LIMIT $4 OFFSET $5) c ON true ORDER BY " outer, 5, POOL_STMT_READ }

static const struct pool_stmt st_list[CSORT_COUNT] = {
    CLIST("customer_list_id", "id", "c.id"),
    CLIST("customer_list_id_desc", "id DESC", "c.id DESC"),
    CLIST("customer_list_name", "name, id", "c.name, c.id"),
    CLIST("customer_list_name_desc", "name DESC, id DESC", "c.name DESC, c.id DESC"),
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

const struct pool_stmt *const store_customer_stmts[] = {
    &st_get, &st_list[0], &st_list[1], &st_list[2], &st_list[3],
    &st_create, &st_update, &st_remove,
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
    const char *p[] = {
        f->tier < 0 ? NULL : rules_tier_name((enum rules_tier)f->tier),
        f->is_active < 0 ? NULL : (f->is_active ? "true" : "false"),
        f->q,
        sql_i64_param(m, f->limit),
        sql_i64_param(m, f->offset),
    };
    pool_query(self, m, &st_list[f->sort], p, on_list, op);
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
