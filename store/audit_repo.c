/*
 * audit_repo.c -- reading audit_log (domain/audit.h). One statement per
 * filter shape would multiply statements for little gain: the filters are
 * "$n IS NULL OR col = $n" and the indexes (entity, id DESC) and
 * (actor_id, id DESC) serve the common shapes. Newest (highest id) first;
 * the total comes in the same round trip, even for a page past the end.
 */
#include "store/repos.h"
#include "store/sql.h"
#include "common/of.h"

#include <string.h>

#define ACOLS(p) p "id, " p "actor_id, " p "action, " p "entity, " p "entity_id, " \
                 p "request_id, " SQL_TS(p "at") ", " p "details::text"

/* One statement per filter combination (bits: 1 entity, 2 actor; filter
 * parameters first, then limit, offset -- or, keyset, after id, limit),
 * newest first. */
#define APAGE(nm, w, nf, p1, p2) { nm, \
    "SELECT " ACOLS("a.") ", t.n FROM (SELECT CASE WHEN " p2 "::bigint >= 0 THEN " \
    "  (SELECT count(*) FROM audit_log WHERE " w ") END AS n) t " \
    "LEFT JOIN LATERAL (SELECT * FROM audit_log WHERE " w " ORDER BY id DESC " \
    "  LIMIT " p1 " OFFSET greatest(" p2 ", 0)) a ON true ORDER BY a.id DESC", nf + 2, POOL_STMT_READ }
#define AAFTER(nm, w, nf, p1, p2) { nm, \
    "SELECT " ACOLS("") ", 0 FROM audit_log WHERE " w " AND id < " p1 "::bigint " \
    "ORDER BY id DESC LIMIT " p2, nf + 2, POOL_STMT_READ }

static const struct pool_stmt st_page[4] = {
    APAGE("audit_page", "true", 0, "$1", "$2"),
    APAGE("audit_page_e", "entity = $1", 1, "$2", "$3"),
    APAGE("audit_page_a", "actor_id = $1", 1, "$2", "$3"),
    APAGE("audit_page_ea", "entity = $1 AND actor_id = $2", 2, "$3", "$4"),
};
static const struct pool_stmt st_after[4] = {
    AAFTER("audit_after", "true", 0, "$1", "$2"),
    AAFTER("audit_after_e", "entity = $1", 1, "$2", "$3"),
    AAFTER("audit_after_a", "actor_id = $1", 1, "$2", "$3"),
    AAFTER("audit_after_ea", "entity = $1 AND actor_id = $2", 2, "$3", "$4"),
};

const struct pool_stmt *const store_audit_stmts[] = {
    &st_page[0], &st_page[1], &st_page[2], &st_page[3],
    &st_after[0], &st_after[1], &st_after[2], &st_after[3],
};
const size_t store_audit_nstmts = OF_ARRAY_LEN(store_audit_stmts);

struct op {
    struct of_mem *m;
    audit_list_cb  cb;
    void          *arg;
};

static void
on_list(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    int rc = sql_rc(res);
    if (rc != OF_OK) {
        op->cb(rc, NULL, op->arg);
        return;
    }
    const PGresult *r = res->res;
    int n = PQntuples(r);
    struct audit_list *l = of_mem_calloc(op->m, sizeof(*l));
    struct audit_entry *items = of_mem_alloc(op->m, sizeof(*items) * (size_t)(n ? n : 1));
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (sql_isnull(r, i, 0))
            continue;
        struct audit_entry *e = &items[k++];
        e->id = sql_i64(r, i, 0);
        e->actor_id = sql_i64(r, i, 1);
        e->action = sql_str(op->m, r, i, 2);
        e->entity = sql_str(op->m, r, i, 3);
        e->entity_id = sql_i64(r, i, 4);
        e->request_id = sql_str(op->m, r, i, 5);
        e->at = sql_str(op->m, r, i, 6);
        e->details = sql_str(op->m, r, i, 7);
    }
    l->items = items;
    l->n = k;
    l->total = n > 0 ? sql_i64(r, 0, 8) : 0;
    op->cb(OF_OK, l, op->arg);
}

static void
repo_list(void *self, struct of_mem *m, const struct audit_filter *f, audit_list_cb cb, void *arg)
{
    struct op *op = of_mem_calloc(m, sizeof(*op));
    op->m = m;
    op->cb = cb;
    op->arg = arg;
    const char *p[4];
    int         n = 0;
    unsigned    combo = (f->entity != NULL ? 1u : 0u) | (f->actor_id > 0 ? 2u : 0u);
    if (f->entity != NULL)
        p[n++] = f->entity;
    if (f->actor_id > 0)
        p[n++] = sql_i64_param(m, f->actor_id);
    sql_page_params(m, &f->pg, SQL_PAGE_ID_SORT | SQL_PAGE_GATED_COUNT, p + n);
    pool_query(self, m, f->pg.after ? &st_after[combo] : &st_page[combo], p, on_list, op);
}

static const struct audit_repo_ops pg_audit_ops = {
    .list = repo_list,
};

struct audit_repo
store_audit_repo(pool *p)
{
    return (struct audit_repo){ &pg_audit_ops, p };
}
