/*
 * outbox_repo.c -- the jobs process's SQL (store/outbox.h). Each operation
 * is one statement, so one transaction: the fan-out claims events, inserts
 * their deliveries and marks them dispatched together; a claim selects due
 * rows FOR UPDATE SKIP LOCKED and leases them in the same statement.
 */
#include "store/outbox.h"
#include "store/sql.h"
#include "common/of.h"

#include <stdio.h>
#include <string.h>

/* $1 batch, $2 with_mail */
static const struct pool_stmt st_fanout = {
    "outbox_fanout",
    "WITH ev AS (SELECT seq, type, payload FROM events WHERE dispatched_at IS NULL "
    "  ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED), "
    "wh AS (INSERT INTO deliveries (event_seq, kind, webhook_id) "
    "  SELECT ev.seq, 'webhook', w.id FROM ev JOIN webhooks w "
    "    ON w.is_active AND w.events @> ARRAY[ev.type] "
    "  ON CONFLICT ON CONSTRAINT deliveries_one_per_target DO NOTHING), "
    "ml AS (INSERT INTO deliveries (event_seq, kind) "
    "  SELECT ev.seq, 'mail' FROM ev WHERE $2::boolean AND (ev.type = 'order.created' OR "
    "    (ev.type = 'order.status_changed' AND ev.payload->'data'->>'to' IN ('shipped', 'cancelled'))) "
    "  ON CONFLICT ON CONSTRAINT deliveries_one_per_target DO NOTHING) "
    "UPDATE events e SET dispatched_at = now() FROM ev WHERE e.seq = ev.seq RETURNING e.seq",
    2, 0 };

/* The order id of an order event: data.id, or data.order.id. */
#define ORDER_ID "coalesce(e.payload->'data'->>'id', e.payload->'data'->'order'->>'id')"

/* $1 limit, $2 lease seconds */
static const struct pool_stmt st_claim = {
    "outbox_claim",
    "WITH c AS (SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= now() "
    "  AND (lease_until IS NULL OR lease_until < now()) "
    "  ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED), "
    "u AS (UPDATE deliveries d SET lease_until = now() + make_interval(secs => $2::int) FROM c "
    "  WHERE d.id = c.id RETURNING d.id, d.kind, d.attempts, d.event_seq, d.webhook_id) "
    "SELECT u.id, u.kind, u.attempts, e.id, e.type, e.payload::text, e.traceparent, "
    "  w.url, w.secret, cu.email, cu.name, cu.is_active "
    "FROM u JOIN events e ON e.seq = u.event_seq "
    "LEFT JOIN webhooks w ON w.id = u.webhook_id "
    "LEFT JOIN orders o ON u.kind = 'mail' AND " ORDER_ID " ~ '^[0-9]{1,18}$' "
    "  AND o.id = (" ORDER_ID ")::bigint "
    "LEFT JOIN customers cu ON cu.id = o.customer_id",
    2, 0 };

/* $1 jsonb array of {id, st, code, err, delay} */
static const struct pool_stmt st_record = {
    "outbox_record",
    "UPDATE deliveries d SET "
    "  status = CASE WHEN r.st = 'release' THEN d.status ELSE r.st END, "
    "  attempts = d.attempts + CASE WHEN r.st = 'release' THEN 0 ELSE 1 END, "
    "  last_status_code = CASE WHEN r.st = 'release' THEN d.last_status_code ELSE r.code END, "
    "  last_error = CASE WHEN r.st = 'release' THEN d.last_error ELSE left(r.err, 500) END, "
    "  next_attempt_at = CASE WHEN r.st = 'pending' THEN now() + make_interval(secs => r.delay) "
    "    ELSE d.next_attempt_at END, "
    "  delivered_at = CASE WHEN r.st = 'succeeded' THEN now() ELSE d.delivered_at END, "
    "  lease_until = NULL "
    "FROM jsonb_to_recordset($1::jsonb) AS r(id bigint, st text, code int, err text, delay float8) "
    "WHERE d.id = r.id AND d.status = 'pending'",
    1, 0 };

/* $1 days, $2 batch. Succeeded deliveries delivered more than $1 days ago,
 * then dispatched events older than that with no delivery left -- the ones
 * this statement deletes do not count (every CTE sees the same snapshot, so
 * d's rows are excluded by hand): an event goes with its last delivery.
 * Pending and dead deliveries, and their events, stay. */
static const struct pool_stmt st_prune = {
    "outbox_prune",
    "WITH d AS (DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries "
    "  WHERE status = 'succeeded' AND delivered_at < now() - make_interval(days => $1::int) "
    "  LIMIT $2) RETURNING id), "
    "e AS (DELETE FROM events WHERE seq IN (SELECT ev.seq FROM events ev "
    "  WHERE ev.created_at < now() - make_interval(days => $1::int) AND ev.dispatched_at IS NOT NULL "
    "  AND NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = ev.seq "
    "    AND NOT EXISTS (SELECT 1 FROM d WHERE d.id = x.id)) LIMIT $2) RETURNING 1) "
    "SELECT (SELECT count(*) FROM d) + (SELECT count(*) FROM e)",
    2, 0 };

static const struct pool_stmt st_measure = {
    "outbox_measure",
    "SELECT (SELECT count(*) FROM events WHERE dispatched_at IS NULL), "
    "  (SELECT count(*) FROM deliveries WHERE status = 'pending'), "
    "  coalesce((SELECT extract(epoch FROM now() - min(created_at))::bigint FROM deliveries "
    "    WHERE status = 'pending'), 0)",
    0, POOL_STMT_READ };

const struct pool_stmt *const store_outbox_stmts[] = {
    &st_fanout, &st_claim, &st_record, &st_prune, &st_measure,
};
const size_t store_outbox_nstmts = OF_ARRAY_LEN(store_outbox_stmts);

struct op {
    struct of_mem *m;
    void          *cb;
    void          *arg;
};

static struct op *
op_new(struct of_mem *m, void *cb, void *arg)
{
    struct op *op = of_mem_calloc(m, sizeof(*op));
    op->m = m;
    op->cb = cb;
    op->arg = arg;
    return op;
}

static void
on_count(const struct pool_res *res, void *arg)
{
    struct op      *op = arg;
    outbox_count_cb cb = (outbox_count_cb)op->cb;
    int             rc = sql_rc(res);
    if (rc != OF_OK) {
        cb(rc, 0, op->arg);
        return;
    }
    cb(OF_OK, PQntuples(res->res), op->arg);    /* one row per event dispatched */
}

static void
on_pruned(const struct pool_res *res, void *arg)
{
    struct op      *op = arg;
    outbox_count_cb cb = (outbox_count_cb)op->cb;
    int             rc = sql_rc(res);
    cb(rc, rc == OF_OK && PQntuples(res->res) == 1 ? (int)sql_i64(res->res, 0, 0) : 0, op->arg);
}

void
outbox_fanout(pool *p, struct of_mem *m, int batch, bool with_mail, outbox_count_cb cb, void *arg)
{
    struct op  *op = op_new(m, (void *)cb, arg);
    const char *params[] = { sql_i64_param(m, batch), with_mail ? "true" : "false" };
    pool_query(p, m, &st_fanout, params, on_count, op);
}

static void
fill_job(struct of_mem *m, const PGresult *r, int i, struct outbox_job *j)
{
    j->id = sql_i64(r, i, 0);
    j->mail = strcmp(PQgetvalue(r, i, 1), "mail") == 0;
    j->attempts = (int)sql_i64(r, i, 2);
    j->event_id = sql_str(m, r, i, 3);
    j->event_type = sql_str(m, r, i, 4);
    j->payload = sql_str(m, r, i, 5);
    j->traceparent = sql_str(m, r, i, 6);
    j->url = sql_str(m, r, i, 7);
    j->secret = sql_str(m, r, i, 8);
    j->cust_email = sql_str(m, r, i, 9);
    j->cust_name = sql_str(m, r, i, 10);
    j->cust_active = !sql_isnull(r, i, 11) && sql_bool(r, i, 11);
}

static void
on_claim(const struct pool_res *res, void *arg)
{
    struct op      *op = arg;
    outbox_claim_cb cb = (outbox_claim_cb)op->cb;
    int             rc = sql_rc(res);
    if (rc != OF_OK) {
        cb(rc, NULL, 0, op->arg);
        return;
    }
    int                n = PQntuples(res->res);
    struct outbox_job *jobs = of_mem_calloc(op->m, sizeof(*jobs) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++)
        fill_job(op->m, res->res, i, &jobs[i]);
    cb(OF_OK, jobs, n, op->arg);
}

void
outbox_claim(pool *p, struct of_mem *m, int limit, int lease_s, outbox_claim_cb cb, void *arg)
{
    struct op  *op = op_new(m, (void *)cb, arg);
    const char *params[] = { sql_i64_param(m, limit), sql_i64_param(m, lease_s) };
    pool_query(p, m, &st_claim, params, on_claim, op);
}

/* ---- recording: the results go as one JSON array ---- */

struct jbuf {
    char  *p;
    size_t len, cap;
};

static void
jb_put(struct of_mem *m, struct jbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t ncap = (b->cap + n + 1) * 2;
        char  *np = of_mem_alloc(m, ncap);
        if (b->len > 0)
            memcpy(np, b->p, b->len);
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* A JSON string of at most 500 characters of s; bytes outside printable
 * ASCII become '?', so the text is valid UTF-8 whatever came in. */
static void
jb_string(struct of_mem *m, struct jbuf *b, const char *s)
{
    jb_put(m, b, "\"", 1);
    for (size_t i = 0; s[i] != '\0' && i < 500; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char)c };
            jb_put(m, b, esc, 2);
        } else {
            char one = c >= 0x20 && c < 0x7f ? (char)c : '?';
            jb_put(m, b, &one, 1);
        }
    }
    jb_put(m, b, "\"", 1);
}

static const char *
outcome_name(enum outbox_outcome o)
{
    switch (o) {
    case OUTBOX_SUCCEEDED: return "succeeded";
    case OUTBOX_DEAD:      return "dead";
    case OUTBOX_RELEASE:   return "release";
    default:               return "pending";
    }
}

static void
on_done(const struct pool_res *res, void *arg)
{
    struct op     *op = arg;
    outbox_done_cb cb = (outbox_done_cb)op->cb;
    cb(sql_rc(res), op->arg);
}

void
outbox_record(pool *p, struct of_mem *m, const struct outbox_result *r, size_t n,
              outbox_done_cb cb, void *arg)
{
    struct op  *op = op_new(m, (void *)cb, arg);
    struct jbuf b = { 0 };
    char        num[128];

    jb_put(m, &b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(num, sizeof(num), "%s{\"id\":%lld,\"st\":\"%s\",\"code\":", i ? "," : "",
                         (long long)r[i].id, outcome_name(r[i].outcome));
        jb_put(m, &b, num, (size_t)k);
        k = r[i].code > 0 ? snprintf(num, sizeof(num), "%d", r[i].code) : snprintf(num, sizeof(num), "null");
        jb_put(m, &b, num, (size_t)k);
        jb_put(m, &b, ",\"err\":", 7);
        if (r[i].err != NULL)
            jb_string(m, &b, r[i].err);
        else
            jb_put(m, &b, "null", 4);
        k = snprintf(num, sizeof(num), ",\"delay\":%.3f}", r[i].delay_s > 0 ? r[i].delay_s : 0.0);
        jb_put(m, &b, num, (size_t)k);
    }
    jb_put(m, &b, "]", 1);
    const char *params[] = { b.p };
    pool_query(p, m, &st_record, params, on_done, op);
}

void
outbox_prune(pool *p, struct of_mem *m, int days, int batch, outbox_count_cb cb, void *arg)
{
    struct op  *op = op_new(m, (void *)cb, arg);
    const char *params[] = { sql_i64_param(m, days), sql_i64_param(m, batch) };
    pool_query(p, m, &st_prune, params, on_pruned, op);
}

static void
on_measure(const struct pool_res *res, void *arg)
{
    struct op           *op = arg;
    outbox_gauges_cb     cb = (outbox_gauges_cb)op->cb;
    struct outbox_gauges g = { 0 };
    int                  rc = sql_rc(res);
    if (rc == OF_OK && PQntuples(res->res) == 1) {
        g.pending_events = sql_i64(res->res, 0, 0);
        g.pending_deliveries = sql_i64(res->res, 0, 1);
        g.oldest_pending_s = sql_i64(res->res, 0, 2);
    }
    cb(rc, &g, op->arg);
}

void
outbox_measure(pool *p, struct of_mem *m, outbox_gauges_cb cb, void *arg)
{
    pool_query(p, m, &st_measure, NULL, on_measure, op_new(m, (void *)cb, arg));
}
