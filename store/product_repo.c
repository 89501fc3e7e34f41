/*
 * product_repo.c -- the catalog in PostgreSQL. Each write and its audit row
 * are one statement (a data-modifying CTE): one round trip, all or nothing.
 * List statements are one per sort order from a fixed allowlist; the total
 * comes back in the same round trip, even for a page past the end.
 * Public reads (get, list, search) go where the replica route says
 * (store/replica.h); one that the replica could not answer (it went down
 * under it) is asked of the primary once; writes go to the primary.
 */
#include "store/repos.h"
#include "store/sql.h"
#include "store/replica.h"
#include "domain/money.h"
#include "common/of.h"

#include <string.h>

#define PCOLS(p) p "id, " p "name, " p "price_cents, " p "in_stock, " \
                 SQL_TS(p "created_at") ", " SQL_TS(p "updated_at")

static const struct pool_stmt st_get = {
    "product_get", "SELECT " PCOLS("") " FROM products WHERE id = $1", 1, POOL_STMT_READ };

/*
 * Lists: one statement per filter combination and sort, as static text (no
 * `$1 IS NULL OR ...` generic plans). Combination bits: 1 in_stock, 2 q.
 * Filter parameters come first, in that order; the page's follow (PP1..3).
 * The total of offset paging is exact and cheap: product_counts (kept by
 * triggers, migrations/0004) without q; with q, a count over the trigram
 * index. A q search reads its matches through that index behind an OFFSET 0
 * fence, so no plan walks the whole table in sort order looking for them --
 * when the index can narrow q (sql_trgm_useful); a shorter q (1-2
 * characters, usually common) uses combinations 4 and 5 (q, in_stock + q)
 * with strpos() on the raw text, which no trigram index matches: the sort
 * order's index, filtered, stops at the page instead of the planner reading
 * the whole GIN index (it has no trigram to look up).
 * Keyset pages ("after") continue strictly after (sort key, id).
 */
#define PW_0 "products WHERE true"
#define PW_1 "products WHERE in_stock = $1"
#define PW_2 "(SELECT * FROM products WHERE lower(name) LIKE lower($1) OFFSET 0) s WHERE true"
#define PW_3 "(SELECT * FROM products WHERE in_stock = $1 AND lower(name) LIKE lower($2) OFFSET 0) s WHERE true"
#define PW_4 "products WHERE strpos(lower(name), lower($1)) > 0"
#define PW_5 "products WHERE in_stock = $1 AND strpos(lower(name), lower($2)) > 0"
#define PN_4 "(SELECT count(*) FROM " PW_4 ")"
#define PN_5 "(SELECT count(*) FROM " PW_5 ")"
#define PN_0 "(SELECT coalesce(sum(n), 0) FROM product_counts)"
#define PN_1 "(SELECT coalesce(sum(n), 0) FROM product_counts WHERE in_stock = $1)"
#define PN_2 "(SELECT count(*) FROM products WHERE lower(name) LIKE lower($1))"
#define PN_3 "(SELECT count(*) FROM products WHERE in_stock = $1 AND lower(name) LIKE lower($2))"

#define PPAGE(nm, w, cnt, nf, p1, p2, inner, outer) { nm, \
    "SELECT " PCOLS("p.") ", t.n FROM (SELECT CASE WHEN " p2 "::bigint >= 0 THEN " cnt " END AS n) t " \
    "LEFT JOIN LATERAL (SELECT * FROM " w " ORDER BY " inner " LIMIT " p1 \
    " OFFSET greatest(" p2 ", 0)) p ON true ORDER BY " outer, \
    nf + 2, POOL_STMT_READ }
/* id sorts: after id p1, limit p2; others: after (key p1, id p2), limit p3 */
#define PAFTER_ID(nm, w, nf, p1, p2, op, inner) { nm, \
    "SELECT " PCOLS("") ", 0 FROM " w " AND id " op " " p1 "::bigint ORDER BY " inner \
    " LIMIT " p2, nf + 2, POOL_STMT_READ }
#define PAFTER_KEY(nm, w, nf, p1, p2, p3, col, type, op, inner) { nm, \
    "SELECT " PCOLS("") ", 0 FROM " w " AND (" col ", id) " op " (" p1 "::" type ", " p2 \
    "::bigint) ORDER BY " inner " LIMIT " p3, nf + 3, POOL_STMT_READ }

#define PPAGES(tag, w, cnt, nf, p1, p2) { \
    PPAGE("product_page_id" tag, w, cnt, nf, p1, p2, "id", "p.id"), \
    PPAGE("product_page_id_desc" tag, w, cnt, nf, p1, p2, "id DESC", "p.id DESC"), \
    PPAGE("product_page_name" tag, w, cnt, nf, p1, p2, "name, id", "p.name, p.id"), \
    PPAGE("product_page_name_desc" tag, w, cnt, nf, p1, p2, "name DESC, id DESC", \
          "p.name DESC, p.id DESC"), \
    PPAGE("product_page_price" tag, w, cnt, nf, p1, p2, "price_cents, id", "p.price_cents, p.id"), \
    PPAGE("product_page_price_desc" tag, w, cnt, nf, p1, p2, "price_cents DESC, id DESC", \
          "p.price_cents DESC, p.id DESC") }
#define PAFTERS(tag, w, nf, p1, p2, p3) { \
    PAFTER_ID("product_after_id" tag, w, nf, p1, p2, ">", "id"), \
    PAFTER_ID("product_after_id_desc" tag, w, nf, p1, p2, "<", "id DESC"), \
    PAFTER_KEY("product_after_name" tag, w, nf, p1, p2, p3, "name", "text", ">", "name, id"), \
    PAFTER_KEY("product_after_name_desc" tag, w, nf, p1, p2, p3, "name", "text", "<", \
               "name DESC, id DESC"), \
    PAFTER_KEY("product_after_price" tag, w, nf, p1, p2, p3, "price_cents", "bigint", ">", \
               "price_cents, id"), \
    PAFTER_KEY("product_after_price_desc" tag, w, nf, p1, p2, p3, "price_cents", "bigint", "<", \
               "price_cents DESC, id DESC") }

#define PCOMBOS 6
static const struct pool_stmt st_page[PCOMBOS][PSORT_COUNT] = {
    PPAGES("", PW_0, PN_0, 0, "$1", "$2"),
    PPAGES("_s", PW_1, PN_1, 1, "$2", "$3"),
    PPAGES("_q", PW_2, PN_2, 1, "$2", "$3"),
    PPAGES("_sq", PW_3, PN_3, 2, "$3", "$4"),
    PPAGES("_q2", PW_4, PN_4, 1, "$2", "$3"),
    PPAGES("_sq2", PW_5, PN_5, 2, "$3", "$4"),
};
static const struct pool_stmt st_after[PCOMBOS][PSORT_COUNT] = {
    PAFTERS("", PW_0, 0, "$1", "$2", "$3"),
    PAFTERS("_s", PW_1, 1, "$2", "$3", "$4"),
    PAFTERS("_q", PW_2, 1, "$2", "$3", "$4"),
    PAFTERS("_sq", PW_3, 2, "$3", "$4", "$5"),
    PAFTERS("_q2", PW_4, 1, "$2", "$3", "$4"),
    PAFTERS("_sq2", PW_5, 2, "$3", "$4", "$5"),
};

#define AUDIT_INSERT(action, details) \
    "a AS (INSERT INTO audit_log (actor_id, action, entity, entity_id, request_id, details) " \
    "SELECT $5, '" action "', 'product', id, $6, " details " FROM p) "

static const struct pool_stmt st_create = {
    "product_create",
    "WITH p AS (INSERT INTO products (name, price_cents, in_stock) VALUES ($1, $2, $3) "
    "  ON CONFLICT DO NOTHING RETURNING *), "
    AUDIT_INSERT("create", "jsonb_build_object('name', name, 'price', $4::text, 'in_stock', in_stock)")
    "SELECT " PCOLS("") " FROM p", 6, 0 };

static const struct pool_stmt st_update = {
    "product_update",
    "WITH p AS (UPDATE products SET name = COALESCE($2, name), "
    "  price_cents = COALESCE($3::bigint, price_cents), in_stock = COALESCE($4::bool, in_stock), "
    "  updated_at = CASE WHEN $2::text IS NULL AND $3::bigint IS NULL AND $4::bool IS NULL "
    "    THEN updated_at ELSE now() END "
    "  WHERE id = $1 RETURNING *), "
    AUDIT_INSERT("update", "jsonb_strip_nulls(jsonb_build_object('name', $2::text, "
                 "'price', $7::text, 'in_stock', $4::bool))")
    "SELECT " PCOLS("") " FROM p", 7, 0 };

static const struct pool_stmt st_delete = {
    "product_delete",
    "WITH p AS (DELETE FROM products WHERE id = $1 RETURNING id, name), "
    "a AS (INSERT INTO audit_log (actor_id, action, entity, entity_id, request_id, details) "
    "  SELECT $2, 'delete', 'product', id, $3, jsonb_build_object('name', name) FROM p) "
    "SELECT id FROM p", 3, 0 };

#define PROW(t, c) &t[c][0], &t[c][1], &t[c][2], &t[c][3], &t[c][4], &t[c][5]
const struct pool_stmt *const store_product_stmts[] = {
    &st_get, &st_create, &st_update, &st_delete,
    PROW(st_page, 0), PROW(st_page, 1), PROW(st_page, 2), PROW(st_page, 3),
    PROW(st_page, 4), PROW(st_page, 5),
    PROW(st_after, 0), PROW(st_after, 1), PROW(st_after, 2), PROW(st_after, 3),
    PROW(st_after, 4), PROW(st_after, 5),
};
const size_t store_product_nstmts = OF_ARRAY_LEN(store_product_stmts);

/* What a replica pool runs: the catalog reads and the lag probe. */
const struct pool_stmt *const store_catalog_stmts[] = {
    &st_get,
    PROW(st_page, 0), PROW(st_page, 1), PROW(st_page, 2), PROW(st_page, 3),
    PROW(st_page, 4), PROW(st_page, 5),
    PROW(st_after, 0), PROW(st_after, 1), PROW(st_after, 2), PROW(st_after, 3),
    PROW(st_after, 4), PROW(st_after, 5),
    &replica_st_lag,
};
const size_t store_catalog_nstmts = OF_ARRAY_LEN(store_catalog_stmts);

struct op {
    struct of_mem   *m;
    product_cb       cb;
    product_list_cb  list_cb;
    product_done_cb  done_cb;
    void            *arg;
    int              missing_rc;
    bool             may_lag;       /* read from a replica */
    bool             retried;       /* asked of the other side once already */
    /* A catalog read, to be asked once of the other side if the one it went
     * to failed as a server (the catalog answers, no 503): the primary when
     * the replica went away under it, a connected replica (however far
     * behind) when the primary is down and not yet replaced. */
    struct replica_route   *rt;
    const struct pool_stmt *st;
    const char *const      *params;
};

/* A catalog read: to the replica or the primary, as rt says. */
static void
catalog_query(struct replica_route *rt, struct op *op, const struct pool_stmt *st,
              const char *const *params, pool_cb cb)
{
    pool *pl = replica_route_catalog(rt, &op->may_lag);
    if (replica_route_has_replica(rt)) {
        op->rt = rt;
        op->st = st;
        const char **cp = of_mem_alloc(op->m, (size_t)st->nparams * sizeof(*cp) + 1);
        for (int i = 0; i < st->nparams; i++)
            cp[i] = params[i] != NULL ? of_mem_strdup(op->m, params[i]) : NULL;
        op->params = cp;
    }
    pool_query(pl, op->m, st, params, cb, op);
}

/* The side asked failed as a server, not the read: ask the other once. */
static bool
catalog_retry(struct op *op, const struct pool_res *res, pool_cb cb)
{
    if (res->rc != OF_UNAVAILABLE || op->rt == NULL || op->retried)
        return false;
    pool *other = op->may_lag ? replica_route_primary(op->rt) : replica_route_standby(op->rt);
    if (other == NULL)
        return false;
    op->retried = true;
    op->may_lag = !op->may_lag;
    pool_query(other, op->m, op->st, op->params, cb, op);
    return true;
}

static struct op *
op_new(struct of_mem *m, void *arg, int missing_rc)
{
    struct op *op = of_mem_calloc(m, sizeof(*op));
    op->m = m;
    op->arg = arg;
    op->missing_rc = missing_rc;
    return op;
}

static void
row_to_product(struct of_mem *m, const PGresult *r, int row, void *item)
{
    struct product *p = item;
    p->id = sql_i64(r, row, 0);
    p->name = sql_str(m, r, row, 1);
    p->price = sql_i64(r, row, 2);
    p->in_stock = sql_bool(r, row, 3);
    p->created_at = sql_str(m, r, row, 4);
    p->updated_at = sql_str(m, r, row, 5);
}

static void
on_product(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    int rc;
    if (catalog_retry(op, res, on_product))
        return;
    struct product *p = sql_one_row(op->m, res, sizeof(*p), row_to_product, op->missing_rc, &rc);
    if (p != NULL)
        p->may_lag = op->may_lag;
    op->cb(rc, p, op->arg);
}

static void
repo_get(void *self, struct of_mem *m, int64_t id, product_cb cb, void *arg)
{
    struct op *op = op_new(m, arg, OF_NOTFOUND);
    op->cb = cb;
    const char *p[] = { sql_i64_param(m, id) };
    catalog_query(self, op, &st_get, p, on_product);
}

static void
on_list(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    if (catalog_retry(op, res, on_list))
        return;
    int rc = sql_rc(res);
    if (rc != OF_OK) {
        op->list_cb(rc, NULL, op->arg);
        return;
    }
    struct product_list *l = of_mem_calloc(op->m, sizeof(*l));
    l->items = sql_page_rows(op->m, res->res, sizeof(struct product), row_to_product, 6, &l->n, &l->total);
    l->may_lag = op->may_lag;
    op->list_cb(OF_OK, l, op->arg);
}

static void
repo_list(void *self, struct of_mem *m, const struct product_filter *f, product_list_cb cb, void *arg)
{
    struct op *op = op_new(m, arg, OF_NOTFOUND);
    op->list_cb = cb;
    const char *p[5];
    int         n = 0;
    unsigned    combo = (f->in_stock >= 0 ? 1u : 0u) | (f->q != NULL ? 2u : 0u);
    if (f->q != NULL && !sql_trgm_useful(f->q))
        combo += 2;                       /* 2 -> 4, 3 -> 5: no trigram fence */

    if (f->in_stock >= 0)
        p[n++] = f->in_stock ? "true" : "false";
    if (f->q != NULL)
        p[n++] = combo >= 4 ? f->q : sql_like_contains(m, f->q);
    unsigned    pf = SQL_PAGE_GATED_COUNT | (f->sort == PSORT_ID || f->sort == PSORT_ID_DESC ? SQL_PAGE_ID_SORT : 0u);
    n += sql_page_params(m, &f->pg, pf, p + n);
    const struct pool_stmt *st = f->pg.after ? &st_after[combo][f->sort] : &st_page[combo][f->sort];
    catalog_query(self, op, st, p, on_list);
}

static const char *
price_param(struct of_mem *m, const struct product_input *in)
{
    if (!in->has_price)
        return NULL;
    char *buf = of_mem_alloc(m, MONEY_FMT_CAP);
    money_format(in->price, buf);
    return buf;
}

static void
repo_create(void *self, struct of_mem *m, const struct product_input *in,
            const struct audit_ctx *a, product_cb cb, void *arg)
{
    struct op *op = op_new(m, arg, OF_CONFLICT);
    op->cb = cb;
    const char *p[] = {
        in->name, sql_i64_param(m, in->price), in->in_stock ? "true" : "false",
        price_param(m, in), sql_i64_param(m, a->actor_id), a->request_id,
    };
    pool_query(replica_route_primary(self), m, &st_create, p, on_product, op);
}

static void
repo_update(void *self, struct of_mem *m, int64_t id, const struct product_input *in,
            const struct audit_ctx *a, product_cb cb, void *arg)
{
    struct op *op = op_new(m, arg, OF_NOTFOUND);
    op->cb = cb;
    const char *p[] = {
        sql_i64_param(m, id),
        in->has_name ? in->name : NULL,
        in->has_price ? sql_i64_param(m, in->price) : NULL,
        in->has_in_stock ? (in->in_stock ? "true" : "false") : NULL,
        sql_i64_param(m, a->actor_id), a->request_id,
        price_param(m, in),
    };
    pool_query(replica_route_primary(self), m, &st_update, p, on_product, op);
}

static void
on_deleted(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    op->done_cb(sql_rc_found(res), op->arg);
}

static void
repo_remove(void *self, struct of_mem *m, int64_t id, const struct audit_ctx *a,
            product_done_cb cb, void *arg)
{
    struct op *op = op_new(m, arg, OF_NOTFOUND);
    op->done_cb = cb;
    const char *p[] = { sql_i64_param(m, id), sql_i64_param(m, a->actor_id), a->request_id };
    pool_query(replica_route_primary(self), m, &st_delete, p, on_deleted, op);
}

static const struct product_repo_ops pg_product_ops = {
    .get = repo_get,
    .list = repo_list,
    .create = repo_create,
    .update = repo_update,
    .remove = repo_remove,
};

struct product_repo
store_product_repo(struct replica_route *rt)
{
    return (struct product_repo){ &pg_product_ops, rt };
}
