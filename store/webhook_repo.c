/*
 * webhook_repo.c -- webhook subscriptions and the read/retry side of their
 * deliveries in PostgreSQL (contract: domain/webhook.h; tables:
 * migrations/0002_events).
 *
 * Every operation is one statement. Lists get their total in the same round
 * trip; the deliveries list and the retry also say whether the webhook
 * exists, so an unknown one is a 404 without a second query. Cursor pages
 * (keyset, domain/page.h) continue after the last id seen: webhooks by id,
 * a webhook's deliveries newest first (deliveries_webhook_idx). The retry
 * locks the delivery row, makes a dead one (or an idle pending one) due now
 * with its attempts kept, and NOTIFYs the jobs process's channel in the same
 * statement (only when it changed something). Deleting a webhook cascades to
 * its deliveries: pending ones are abandoned.
 */
#include "store/repos.h"
#include "store/sql.h"
#include "domain/event.h"
#include "common/of.h"

#include <string.h>

#define WCOLS(p) p "id, " p "url, array_to_string(" p "events, ','), " p "description, " \
                 p "is_active, " SQL_TS(p "created_at")
#define NWCOLS 6
#define DCOLS(p) p "id, " p "event_id, " p "event_type, " p "status, " p "attempts, " \
                 p "last_status_code, " p "last_error, " SQL_TS(p "next_attempt_at") ", " \
                 SQL_TS(p "created_at") ", " SQL_TS(p "delivered_at")

static const struct pool_stmt st_get = {
    "webhook_get", "SELECT " WCOLS("") " FROM webhooks WHERE id = $1", 1, POOL_STMT_READ };

/* $1 limit, $2 offset */
static const struct pool_stmt st_list = {
    "webhook_list",
    "SELECT " WCOLS("w.") ", t.n FROM (SELECT count(*) AS n FROM webhooks) t "
    "LEFT JOIN LATERAL (SELECT * FROM webhooks ORDER BY id LIMIT $1 OFFSET $2) w ON true "
    "ORDER BY w.id", 2, POOL_STMT_READ };

/* keyset: $1 after id, $2 limit (no total) */
static const struct pool_stmt st_list_after = {
    "webhook_list_after",
    "SELECT " WCOLS("") ", 0 FROM webhooks WHERE id > $1 ORDER BY id LIMIT $2", 2, POOL_STMT_READ };

static const struct pool_stmt st_create = {
    "webhook_create",
    "INSERT INTO webhooks (url, events, description, secret, is_active) "
    "VALUES ($1, $2::text[], $3, $4, $5) RETURNING " WCOLS(""), 5, 0 };

/* $1 id, $2 url, $3 events, $4 description given, $5 description, $6 is_active */
static const struct pool_stmt st_update = {
    "webhook_update",
    "UPDATE webhooks SET url = COALESCE($2, url), events = COALESCE($3::text[], events), "
    "  description = CASE WHEN $4::bool THEN $5 ELSE description END, "
    "  is_active = COALESCE($6::bool, is_active), "
    "  updated_at = CASE WHEN $2::text IS NULL AND $3::text[] IS NULL AND NOT $4::bool "
    "    AND $6::bool IS NULL THEN updated_at ELSE now() END "
    "WHERE id = $1 RETURNING " WCOLS(""), 6, 0 };

static const struct pool_stmt st_delete = {
    "webhook_delete", "DELETE FROM webhooks WHERE id = $1 RETURNING id", 1, 0 };

/* $1 webhook, $2 limit, $3 offset. Columns: webhook id (no row: unknown),
 * total, then DCOLS (NULL past the end). */
static const struct pool_stmt st_deliveries = {
    "webhook_deliveries",
    "SELECT w.id, t.n, " DCOLS("x.") " "
    "FROM (SELECT id FROM webhooks WHERE id = $1) w "
    "CROSS JOIN LATERAL (SELECT count(*) AS n FROM deliveries WHERE webhook_id = w.id) t "
    "LEFT JOIN LATERAL (SELECT d.*, e.id AS event_id, e.type AS event_type FROM deliveries d "
    "  JOIN events e ON e.seq = d.event_seq WHERE d.webhook_id = w.id "
    "  ORDER BY d.id DESC LIMIT $2 OFFSET $3) x ON true "
    "ORDER BY x.id DESC", 3, POOL_STMT_READ };

/* Keyset: $1 webhook, $2 after id, $3 limit; columns as st_deliveries's
 * (the total is not counted). */
static const struct pool_stmt st_deliveries_after = {
    "webhook_deliveries_after",
    "SELECT w.id, 0, " DCOLS("x.") " "
    "FROM (SELECT id FROM webhooks WHERE id = $1) w "
    "LEFT JOIN LATERAL (SELECT d.*, e.id AS event_id, e.type AS event_type FROM deliveries d "
    "  JOIN events e ON e.seq = d.event_seq WHERE d.webhook_id = w.id AND d.id < $2 "
    "  ORDER BY d.id DESC LIMIT $3) x ON true "
    "ORDER BY x.id DESC", 3, POOL_STMT_READ };

/* $1 webhook, $2 delivery. Columns: the webhook exists, the delivery's
 * status under the lock (NULL: none), rows changed, then DCOLS. */
static const struct pool_stmt st_retry = {
    "webhook_retry",
    "WITH w AS (SELECT id FROM webhooks WHERE id = $1), "
    "cur AS (SELECT d.id, d.status, d.lease_until FROM deliveries d JOIN w ON w.id = d.webhook_id "
    "  WHERE d.id = $2 FOR UPDATE OF d), "
    "u AS (UPDATE deliveries d SET status = 'pending', next_attempt_at = now(), lease_until = NULL "
    "  FROM cur WHERE d.id = cur.id AND (cur.status = 'dead' OR (cur.status = 'pending' "
    "    AND (cur.lease_until IS NULL OR cur.lease_until <= now()))) RETURNING d.*), "
    "x AS (SELECT * FROM u UNION ALL "
    "  SELECT d.* FROM deliveries d JOIN cur ON cur.id = d.id WHERE NOT EXISTS (SELECT 1 FROM u)) "
    "SELECT (SELECT count(*) FROM w), cur.status, "
    "  (SELECT count(*) FROM (SELECT pg_notify('" EVENT_CHANNEL "', '') FROM u) z), "
    "  " DCOLS("y.") " "
    "FROM (SELECT 1) one LEFT JOIN cur ON true "
    "LEFT JOIN (SELECT x.*, e.id AS event_id, e.type AS event_type FROM x "
    "  JOIN events e ON e.seq = x.event_seq) y ON true", 2, 0 };

const struct pool_stmt *const store_webhook_stmts[] = {
    &st_get, &st_list, &st_create, &st_update, &st_delete, &st_deliveries, &st_retry,
    &st_list_after, &st_deliveries_after,
};
const size_t store_webhook_nstmts = OF_ARRAY_LEN(store_webhook_stmts);

struct op {
    struct of_mem            *m;
    webhook_cb                cb;
    webhook_list_cb           list_cb;
    webhook_done_cb           done_cb;
    webhook_delivery_list_cb  dlist_cb;
    webhook_retry_cb          retry_cb;
    void                     *arg;
    int                       missing_rc;
};

static struct op *
op_new(struct of_mem *m, void *arg, int missing_rc)
{
    struct op *op = of_mem_calloc(m, sizeof(*op));
    op->m = m;
    op->arg = arg;
    op->missing_rc = missing_rc;
    return op;
}

/* "a,b,c" (event type names contain no comma) into an arena array */
static void
split_events(struct of_mem *m, const char *s, struct webhook *w)
{
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += *p == ',';
    const char **ev = of_mem_calloc(m, n * sizeof(*ev));
    size_t k = 0;
    while (*s != '\0' && k < n) {
        size_t l = strcspn(s, ",");
        ev[k++] = of_mem_strndup(m, s, l);
        s += l + (s[l] == ',');
    }
    w->events = ev;
    w->n_events = k;
}

static void
row_to_webhook(struct of_mem *m, const PGresult *r, int row, void *item)
{
    struct webhook *w = item;
    w->id = sql_i64(r, row, 0);
    w->url = sql_str(m, r, row, 1);
    split_events(m, PQgetvalue(r, row, 2), w);
    w->description = sql_str(m, r, row, 3);
    w->is_active = sql_bool(r, row, 4);
    w->secret = NULL;
    w->created_at = sql_str(m, r, row, 5);
}

static void
row_to_delivery(struct of_mem *m, const PGresult *r, int row, int c, struct webhook_delivery *d)
{
    d->id = sql_i64(r, row, c);
    d->event_id = sql_str(m, r, row, c + 1);
    d->event_type = sql_str(m, r, row, c + 2);
    d->status = sql_str(m, r, row, c + 3);
    d->attempts = sql_i64(r, row, c + 4);
    d->has_status_code = !sql_isnull(r, row, c + 5);
    d->last_status_code = sql_i64(r, row, c + 5);
    d->last_error = sql_str(m, r, row, c + 6);
    d->next_attempt_at = sql_str(m, r, row, c + 7);
    d->created_at = sql_str(m, r, row, c + 8);
    d->delivered_at = sql_str(m, r, row, c + 9);
}

/* text[] literal of validated event type names (no quotes or backslashes) */
static const char *
events_param(struct of_mem *m, const struct webhook_input *in)
{
    size_t cap = 3;
    for (size_t i = 0; i < in->n_events; i++)
        cap += in->event_lens[i] + 3;
    char *buf = of_mem_alloc(m, cap);
    size_t k = 0;
    buf[k++] = '{';
    for (size_t i = 0; i < in->n_events; i++) {
        if (i)
            buf[k++] = ',';
        buf[k++] = '"';
        memcpy(buf + k, in->events[i], in->event_lens[i]);
        k += in->event_lens[i];
        buf[k++] = '"';
    }
    buf[k++] = '}';
    buf[k] = '\0';
    return buf;
}

/* ---- subscriptions ---- */

static void
on_webhook(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    int rc;
    struct webhook *w = sql_one_row(op->m, res, sizeof(*w), row_to_webhook, op->missing_rc, &rc);
    op->cb(rc, w, op->arg);
}

static void
repo_get(void *self, struct of_mem *m, int64_t id, webhook_cb cb, void *arg)
{
    struct op *op = op_new(m, arg, OF_NOTFOUND);
    op->cb = cb;
    const char *p[] = { sql_i64_param(m, id) };
    pool_query(self, m, &st_get, p, on_webhook, op);
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
    struct webhook_list *l = of_mem_calloc(op->m, sizeof(*l));
    l->items = sql_page_rows(op->m, res->res, sizeof(struct webhook), row_to_webhook, NWCOLS,
                             &l->n, &l->total);
    op->list_cb(OF_OK, l, op->arg);
}

static void
repo_list(void *self, struct of_mem *m, const struct page_req *pg, webhook_list_cb cb,
          void *arg)
{
    struct op *op = op_new(m, arg, OF_NOTFOUND);
    op->list_cb = cb;
    const char *p[2];
    sql_page_params(m, pg, SQL_PAGE_ID_SORT, p);
    pool_query(self, m, pg->after ? &st_list_after : &st_list, p, on_list, op);
}

static void
repo_create(void *self, struct of_mem *m, const struct webhook_input *in, const char *secret,
            webhook_cb cb, void *arg)
{
    struct op *op = op_new(m, arg, OF_ERR);
    op->cb = cb;
    const char *p[] = {
        of_mem_strndup(m, in->url, in->url_len), events_param(m, in),
        in->description != NULL ? of_mem_strndup(m, in->description, in->description_len) : NULL,
        secret, in->is_active ? "true" : "false",
    };
    pool_query(self, m, &st_create, p, on_webhook, op);
}

static void
repo_update(void *self, struct of_mem *m, int64_t id, const struct webhook_input *in,
            webhook_cb cb, void *arg)
{
    struct op *op = op_new(m, arg, OF_NOTFOUND);
    op->cb = cb;
    const char *p[] = {
        sql_i64_param(m, id),
        in->has_url ? of_mem_strndup(m, in->url, in->url_len) : NULL,
        in->has_events ? events_param(m, in) : NULL,
        in->has_description ? "true" : "false",
        in->has_description && in->description != NULL
            ? of_mem_strndup(m, in->description, in->description_len) : NULL,
        in->has_is_active ? (in->is_active ? "true" : "false") : NULL,
    };
    pool_query(self, m, &st_update, p, on_webhook, op);
}

static void
on_deleted(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    op->done_cb(sql_rc_found(res), op->arg);
}

static void
repo_remove(void *self, struct of_mem *m, int64_t id, webhook_done_cb cb, void *arg)
{
    struct op *op = op_new(m, arg, OF_NOTFOUND);
    op->done_cb = cb;
    const char *p[] = { sql_i64_param(m, id) };
    pool_query(self, m, &st_delete, p, on_deleted, op);
}

/* ---- deliveries ---- */

static void
on_deliveries(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    int rc = sql_rc(res);
    if (rc != OF_OK) {
        op->dlist_cb(rc, NULL, op->arg);
        return;
    }
    int rows = PQntuples(res->res);
    if (rows == 0) {
        op->dlist_cb(OF_NOTFOUND, NULL, op->arg);
        return;
    }
    struct webhook_delivery_list *l = of_mem_calloc(op->m, sizeof(*l));
    struct webhook_delivery *items = of_mem_calloc(op->m, sizeof(*items) * (size_t)rows);
    size_t k = 0;
    for (int i = 0; i < rows; i++)
        if (!sql_isnull(res->res, i, 2))
            row_to_delivery(op->m, res->res, i, 2, &items[k++]);
    l->items = items;
    l->n = k;
    l->total = sql_i64(res->res, 0, 1);
    op->dlist_cb(OF_OK, l, op->arg);
}

static void
repo_deliveries(void *self, struct of_mem *m, int64_t webhook_id, const struct page_req *pg,
                webhook_delivery_list_cb cb, void *arg)
{
    struct op *op = op_new(m, arg, OF_NOTFOUND);
    op->dlist_cb = cb;
    const char *p[3] = { sql_i64_param(m, webhook_id) };
    sql_page_params(m, pg, SQL_PAGE_ID_SORT, p + 1);
    pool_query(self, m, pg->after ? &st_deliveries_after : &st_deliveries, p, on_deliveries, op);
}

static void
on_retry(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    int rc = sql_rc(res);
    if (rc != OF_OK || PQntuples(res->res) != 1) {
        op->retry_cb(rc != OF_OK ? rc : OF_ERR, false, NULL, op->arg);
        return;
    }
    const PGresult *r = res->res;
    if (sql_i64(r, 0, 0) == 0) {
        op->retry_cb(OF_NOTFOUND, false, NULL, op->arg);
        return;
    }
    if (sql_isnull(r, 0, 1) || sql_isnull(r, 0, 3)) {
        op->retry_cb(OF_NOTFOUND, true, NULL, op->arg);
        return;
    }
    struct webhook_delivery *d = of_mem_calloc(op->m, sizeof(*d));
    row_to_delivery(op->m, r, 0, 3, d);
    bool done = strcmp(PQgetvalue(r, 0, 1), "succeeded") == 0;
    op->retry_cb(done ? OF_CONFLICT : OF_OK, true, d, op->arg);
}

static void
repo_retry(void *self, struct of_mem *m, int64_t webhook_id, int64_t delivery_id,
           webhook_retry_cb cb, void *arg)
{
    struct op *op = op_new(m, arg, OF_NOTFOUND);
    op->retry_cb = cb;
    const char *p[] = { sql_i64_param(m, webhook_id), sql_i64_param(m, delivery_id) };
    pool_query(self, m, &st_retry, p, on_retry, op);
}

static const struct webhook_repo_ops pg_webhook_ops = {
    .get = repo_get,
    .list = repo_list,
    .create = repo_create,
    .update = repo_update,
    .remove = repo_remove,
    .deliveries = repo_deliveries,
    .retry = repo_retry,
};

struct webhook_repo
store_webhook_repo(pool *p)
{
    return (struct webhook_repo){ &pg_webhook_ops, p };
}
