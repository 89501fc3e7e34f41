/*
 * user_repo.c -- users in PostgreSQL. Writes that an admin makes carry
 * their audit row in the same statement (a data-modifying CTE), so the
 * change and its audit entry commit or fail together in one round trip.
 * The one users INSERT serves registration (through the pool) and
 * `orderflow user create` (store_user_create_now, blocking).
 */
#include "store/repos.h"
#include "store/pgblock.h"
#include "store/sql.h"
#include "common/of.h"

#include <stdio.h>
#include <string.h>

#define USER_COLS "id, email, role, " SQL_TS("created_at")

static const struct pool_stmt st_get = {
    "user_get", "SELECT " USER_COLS " FROM users WHERE id = $1", 1, POOL_STMT_READ };
static const struct pool_stmt st_get_by_email = {
    "user_get_by_email", "SELECT " USER_COLS ", password_hash FROM users WHERE lower(email) = $1", 1, POOL_STMT_READ };
static const struct pool_stmt st_create = {
    "user_create",
    "INSERT INTO users (email, password_hash, role) VALUES ($1, $2, $3) "
    "ON CONFLICT DO NOTHING RETURNING " USER_COLS, 3, 0 };
/* Always one row at least, carrying the total, even past the last page. */
static const struct pool_stmt st_list = {
    "user_list",
    "SELECT u.id, u.email, u.role, " SQL_TS("u.created_at") ", t.n "
    "FROM (SELECT count(*) AS n FROM users) t LEFT JOIN LATERAL "
    "(SELECT * FROM users ORDER BY id LIMIT $1 OFFSET $2) u ON true ORDER BY u.id", 2, POOL_STMT_READ };
/* Keyset: $1 after id, $2 limit. */
static const struct pool_stmt st_list_after = {
    "user_list_after",
    "SELECT id, email, role, " SQL_TS("created_at") ", 0 FROM users WHERE id > $1 "
    "ORDER BY id LIMIT $2", 2, POOL_STMT_READ };
static const struct pool_stmt st_set_role = {
    "user_set_role",
    "WITH u AS (UPDATE users SET role = $2 WHERE id = $1 RETURNING id, email, role, created_at, "
    "  (SELECT role FROM users WHERE id = $1) AS old_role), "
    "a AS (INSERT INTO audit_log (actor_id, action, entity, entity_id, request_id, details) "
    "  SELECT $3, 'update', 'user', id, $4, jsonb_build_object('role', jsonb_build_object("
    "    'from', old_role, 'to', role)) FROM u) "
    "SELECT " USER_COLS " FROM u", 4, 0 };
static const struct pool_stmt st_delete = {
    "user_delete",
    "WITH u AS (DELETE FROM users WHERE id = $1 RETURNING id, email), "
    "a AS (INSERT INTO audit_log (actor_id, action, entity, entity_id, request_id, details) "
    "  SELECT $2, 'delete', 'user', id, $3, jsonb_build_object('email', email) FROM u) "
    "SELECT id FROM u", 3, 0 };

const struct pool_stmt *const store_user_stmts[] = {
    &st_get, &st_get_by_email, &st_create, &st_list, &st_list_after, &st_set_role, &st_delete,
};
const size_t store_user_nstmts = OF_ARRAY_LEN(store_user_stmts);

struct op {
    struct of_mem *m;
    user_cb        cb;
    user_list_cb   list_cb;
    user_done_cb   done_cb;
    void          *arg;
};

static struct op *
op_new(struct of_mem *m, void *arg)
{
    struct op *op = of_mem_calloc(m, sizeof(*op));
    op->m = m;
    op->arg = arg;
    return op;
}

static void
row_to_user(struct of_mem *m, const PGresult *r, int row, void *item)
{
    struct user *u = item;
    u->id = sql_i64(r, row, 0);
    u->email = sql_str(m, r, row, 1);
    u->role = strcmp(PQgetvalue(r, row, 2), "admin") == 0 ? ROLE_ADMIN : ROLE_USER;
    u->created_at = sql_str(m, r, row, 3);
    u->password_hash = PQnfields(r) > 4 && PQfnumber(r, "password_hash") == 4
                       ? sql_str(m, r, row, 4) : NULL;
}

/* One row → user; no row → missing_rc. */
static void
on_user(const struct pool_res *res, void *arg, int missing_rc)
{
    struct op *op = arg;
    int rc;
    struct user *u = sql_one_row(op->m, res, sizeof(*u), row_to_user, missing_rc, &rc);
    op->cb(rc, u, op->arg);
}

static void on_user_or_404(const struct pool_res *r, void *arg) { on_user(r, arg, OF_NOTFOUND); }
static void on_user_or_409(const struct pool_res *r, void *arg) { on_user(r, arg, OF_CONFLICT); }

static void
repo_get(void *self, struct of_mem *m, int64_t id, user_cb cb, void *arg)
{
    struct op *op = op_new(m, arg);
    op->cb = cb;
    const char *p[] = { sql_i64_param(m, id) };
    pool_query(self, m, &st_get, p, on_user_or_404, op);
}

static void
repo_get_by_email(void *self, struct of_mem *m, const char *email, user_cb cb, void *arg)
{
    struct op *op = op_new(m, arg);
    op->cb = cb;
    const char *p[] = { email };
    pool_query(self, m, &st_get_by_email, p, on_user_or_404, op);
}

static void
repo_create(void *self, struct of_mem *m, const char *email, const char *hash,
            enum role role, user_cb cb, void *arg)
{
    struct op *op = op_new(m, arg);
    op->cb = cb;
    const char *p[] = { email, hash, role_name(role) };
    pool_query(self, m, &st_create, p, on_user_or_409, op);
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
    struct user_list *l = of_mem_calloc(op->m, sizeof(*l));
    l->items = sql_page_rows(op->m, res->res, sizeof(struct user), row_to_user, 4, &l->n, &l->total);
    op->list_cb(OF_OK, l, op->arg);
}

static void
repo_list(void *self, struct of_mem *m, const struct page_req *pg, user_list_cb cb, void *arg)
{
    struct op *op = op_new(m, arg);
    op->list_cb = cb;
    const char *p[2];
    sql_page_params(m, pg, SQL_PAGE_ID_SORT, p);
    pool_query(self, m, pg->after ? &st_list_after : &st_list, p, on_list, op);
}

static void
repo_set_role(void *self, struct of_mem *m, int64_t id, enum role role,
              const struct audit_ctx *a, user_cb cb, void *arg)
{
    struct op *op = op_new(m, arg);
    op->cb = cb;
    const char *p[] = { sql_i64_param(m, id), role_name(role), sql_i64_param(m, a->actor_id),
                        a->request_id };
    pool_query(self, m, &st_set_role, p, on_user_or_404, op);
}

static void
on_deleted(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    op->done_cb(sql_rc_found(res), op->arg);
}

static void
repo_remove(void *self, struct of_mem *m, int64_t id, const struct audit_ctx *a,
            user_done_cb cb, void *arg)
{
    struct op *op = op_new(m, arg);
    op->done_cb = cb;
    const char *p[] = { sql_i64_param(m, id), sql_i64_param(m, a->actor_id), a->request_id };
    pool_query(self, m, &st_delete, p, on_deleted, op);
}

static const struct user_repo_ops pg_user_ops = {
    .get = repo_get,
    .get_by_email = repo_get_by_email,
    .create = repo_create,
    .list = repo_list,
    .set_role = repo_set_role,
    .remove = repo_remove,
};

struct user_repo
store_user_repo(pool *p)
{
    return (struct user_repo){ &pg_user_ops, p };
}

int
store_user_create_now(const struct pgblock_target *db, const char *email, const char *hash,
                      const char *role, int64_t *id, char *err, size_t cap)
{
    PGconn *c = pgblock_connect(db, "orderflow-user", err, cap);
    if (c == NULL)
        return OF_ERR;
    const char *p[] = { email, hash, role };
    PGresult   *r = PQexecParams(c, st_create.sql, st_create.nparams, NULL, p, NULL, NULL, 0);
    int         rc = OF_ERR;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, cap, "insert failed: %s", PQerrorMessage(c));
    } else if (PQntuples(r) == 0) {
        rc = OF_CONFLICT;
    } else {
        *id = sql_i64(r, 0, 0);
        rc = OF_OK;
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}
