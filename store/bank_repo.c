/*
 * bank_repo.c -- bank accounts and transfers in PostgreSQL (domain/bank.h).
 *
 * A transfer is ONE statement (a data-modifying CTE), so it is atomic on its
 * own (autocommit) and also fits inside an idempotent run's transaction:
 *   lk   locks both account rows, lowest id first (ORDER BY id FOR UPDATE):
 *        every transfer takes its locks in the same order, so two transfers
 *        can wait for each other but never deadlock;
 *   ok   one row when the source is the caller's, holds enough money after
 *        the lock was granted (lk sees the newest committed balance), and the
 *        destination exists;
 *   mv   moves the money (both rows, one UPDATE, gated on ok). The new
 *        balances are computed from lk's values, NOT from b.balance_cents:
 *        the UPDATE's scan uses the statement's snapshot, taken before the
 *        locks were granted, so b may be an older version; PostgreSQL checks
 *        the CHECK constraint on the tuple computed from the version the scan
 *        saw, before it notices the concurrent update and re-evaluates (EPQ).
 *        With b.balance_cents a correct transfer could fail the balance
 *        CHECK under load (reproduced with pgbench); lk holds the newest
 *        committed values and the locks, so computing from it is exact;
 *   t    records the transfer (gated on ok);
 *   e    writes its transfer.created event (domain/event.h; gated on t), the
 *        data rendered as handlers/bank.c renders a transfer; the jobs
 *        process is woken after the COMMIT (store/event_wake.h).
 * The final row says which check failed, if any. The balance CHECK
 * (>= 0), the amount CHECK (> 0) and the distinct-accounts CHECK back the
 * rules; the sum of balances changes by -amount + amount = 0.
 *
 * Reads filter by owner when the caller is not an admin ($n NULL = any).
 * History is transfers out UNION ALL transfers in, each from its own index,
 * newest first; the total comes in the same round trip, and an account the
 * caller may not see gives no row at all (404).
 */
#include "store/repos.h"
#include "store/idem_repo.h"
#include "store/event_wake.h"
#include "store/sql.h"
#include "domain/event.h"
#include "common/log.h"
#include "common/of.h"

#include <string.h>

#define BCOLS(p) p "id, " p "name, " p "balance_cents, " p "owner_id, " SQL_TS(p "created_at")
#define TCOLS(p) p "id, " p "from_account_id, " p "to_account_id, " p "amount_cents, " \
                 SQL_TS(p "created_at")

static const struct pool_stmt st_create = {
    "bank_create",
    "INSERT INTO bank_accounts (owner_id, name, balance_cents) VALUES ($1, $2, $3) "
    "RETURNING " BCOLS(""), 3, 0 };

static const struct pool_stmt st_get = {
    "bank_get",
    "SELECT " BCOLS("") " FROM bank_accounts WHERE id = $1 AND ($2::bigint IS NULL OR owner_id = $2)",
    2, POOL_STMT_READ };

/* $1 owner, $2 limit, $3 offset */
static const struct pool_stmt st_list_own = {
    "bank_list_own",
    "SELECT " BCOLS("a.") ", t.n FROM (SELECT count(*) AS n FROM bank_accounts WHERE owner_id = $1) t "
    "LEFT JOIN LATERAL (SELECT * FROM bank_accounts WHERE owner_id = $1 ORDER BY id "
    "  LIMIT $2 OFFSET $3) a ON true ORDER BY a.id", 3, POOL_STMT_READ };

/* keyset pages (by id): $1 owner, $2 after id, $3 limit / $1 after id, $2 limit */
static const struct pool_stmt st_after_own = {
    "bank_after_own",
    "SELECT " BCOLS("") ", 0 FROM bank_accounts WHERE owner_id = $1 AND id > $2 "
    "ORDER BY id LIMIT $3", 3, POOL_STMT_READ };
static const struct pool_stmt st_after_all = {
    "bank_after_all",
    "SELECT " BCOLS("") ", 0 FROM bank_accounts WHERE id > $1 ORDER BY id LIMIT $2", 2, POOL_STMT_READ };

/* $1 limit, $2 offset */
static const struct pool_stmt st_list_all = {
    "bank_list_all",
    "SELECT " BCOLS("a.") ", t.n FROM (SELECT count(*) AS n FROM bank_accounts) t "
    "LEFT JOIN LATERAL (SELECT * FROM bank_accounts ORDER BY id LIMIT $1 OFFSET $2) a ON true "
    "ORDER BY a.id", 2, POOL_STMT_READ };

/* $1 account, $2 owner (NULL any), $3 limit, $4 offset.
 * Columns: account id, total, then TCOLS (NULL past the end). */
static const struct pool_stmt st_history = {
    "bank_history",
    "SELECT a.id, "
    "  (SELECT count(*) FROM transfers WHERE from_account_id = a.id) "
    "  + (SELECT count(*) FROM transfers WHERE to_account_id = a.id), "
    "  " TCOLS("x.") " "
    "FROM (SELECT id FROM bank_accounts WHERE id = $1 AND ($2::bigint IS NULL OR owner_id = $2)) a "
    "LEFT JOIN LATERAL (SELECT * FROM ("
    "    (SELECT * FROM transfers WHERE from_account_id = a.id ORDER BY id DESC "
    "       LIMIT $3::bigint + $4::bigint) "
    "    UNION ALL "
    "    (SELECT * FROM transfers WHERE to_account_id = a.id ORDER BY id DESC "
    "       LIMIT $3::bigint + $4::bigint)"
    "  ) u ORDER BY id DESC LIMIT $3 OFFSET $4) x ON true "
    "ORDER BY x.id DESC", 4, POOL_STMT_READ };

/* Keyset: $1 account, $2 owner (NULL any), $3 after id, $4 limit; columns
 * as st_history's (the total is not counted). */
static const struct pool_stmt st_history_after = {
    "bank_history_after",
    "SELECT a.id, 0, " TCOLS("x.") " "
    "FROM (SELECT id FROM bank_accounts WHERE id = $1 AND ($2::bigint IS NULL OR owner_id = $2)) a "
    "LEFT JOIN LATERAL (SELECT * FROM ("
    "    (SELECT * FROM transfers WHERE from_account_id = a.id AND id < $3 ORDER BY id DESC "
    "       LIMIT $4) "
    "    UNION ALL "
    "    (SELECT * FROM transfers WHERE to_account_id = a.id AND id < $3 ORDER BY id DESC "
    "       LIMIT $4)"
    "  ) u ORDER BY id DESC LIMIT $4) x ON true "
    "ORDER BY x.id DESC", 4, POOL_STMT_READ };

/* $1 from, $2 to, $3 amount (cents), $4 caller, $5 event id, $6 traceparent.
 * Columns: source is the caller's, destination exists, funds suffice,
 * then the transfer (NULL unless all three hold). */
static const struct pool_stmt st_transfer = {
    "bank_transfer",
    "WITH lk AS (SELECT id, owner_id, balance_cents FROM bank_accounts "
    "    WHERE id IN ($1, $2) ORDER BY id FOR UPDATE), "
    "ok AS (SELECT 1 FROM lk s WHERE s.id = $1 AND s.owner_id = $4 AND s.balance_cents >= $3 "
    "    AND EXISTS (SELECT 1 FROM lk d WHERE d.id = $2)), "
    "mv AS (UPDATE bank_accounts b SET balance_cents = l.balance_cents "
    "      + CASE WHEN b.id = $1 THEN -($3::bigint) ELSE $3::bigint END "
    "    FROM lk l WHERE b.id = l.id AND EXISTS (SELECT 1 FROM ok) RETURNING b.id), "
    "t AS (INSERT INTO transfers (from_account_id, to_account_id, amount_cents) "
    "    SELECT $1, $2, $3 FROM ok RETURNING *), "
    "e AS (INSERT INTO events (id, type, payload, traceparent) "
    "    SELECT $5, 'transfer.created', jsonb_build_object('id', $5::text, "
    "      'type', 'transfer.created', 'timestamp', " SQL_TS("now()") ", "
    "      'data', jsonb_build_object('id', t.id, 'from_account_id', t.from_account_id, "
    "        'to_account_id', t.to_account_id, "
    "        'amount', ((t.amount_cents)::numeric / 100)::numeric(20,2)::text, "
    "        'created_at', " SQL_TS("t.created_at") ")), $6 FROM t "
    "    RETURNING 1) "
    "SELECT EXISTS (SELECT 1 FROM lk WHERE id = $1 AND owner_id = $4), "
    "  EXISTS (SELECT 1 FROM lk WHERE id = $2), "
    "  COALESCE((SELECT balance_cents >= $3 FROM lk WHERE id = $1), false), "
    "  " TCOLS("t.") ", (SELECT count(*) FROM mv), (SELECT count(*) FROM e) "
    "FROM (SELECT 1) one LEFT JOIN t ON true", 6, 0 };

const struct pool_stmt *const store_bank_stmts[] = {
    &st_create, &st_get, &st_list_own, &st_list_all, &st_history, &st_transfer,
    &st_after_own, &st_after_all, &st_history_after,
};
const size_t store_bank_nstmts = OF_ARRAY_LEN(store_bank_stmts);

struct op {
    struct of_mem        *m;
    bank_account_cb       cb;
    bank_account_list_cb  list_cb;
    transfer_list_cb      hist_cb;
    transfer_stmt_cb      xfer_cb;
    pool                 *wake;      /* a transfer outside a transaction: wake after it */
    void                 *arg;
    int                   missing_rc;
};

static struct op *
op_new(struct of_mem *m, void *arg)
{
    struct op *op = of_mem_calloc(m, sizeof(*op));
    op->m = m;
    op->arg = arg;
    op->missing_rc = OF_NOTFOUND;
    return op;
}

static const char *
owner_param(struct of_mem *m, int64_t owner_id)
{
    return owner_id > 0 ? sql_i64_param(m, owner_id) : NULL;
}

static void
row_to_account(struct of_mem *m, const PGresult *r, int row, int col, struct bank_account *a)
{
    a->id = sql_i64(r, row, col);
    a->name = sql_str(m, r, row, col + 1);
    a->balance = sql_i64(r, row, col + 2);
    a->owner_id = sql_i64(r, row, col + 3);
    a->created_at = sql_str(m, r, row, col + 4);
}

static void
row_to_transfer(struct of_mem *m, const PGresult *r, int row, int col, struct transfer *t)
{
    t->id = sql_i64(r, row, col);
    t->from_account_id = sql_i64(r, row, col + 1);
    t->to_account_id = sql_i64(r, row, col + 2);
    t->amount = sql_i64(r, row, col + 3);
    t->created_at = sql_str(m, r, row, col + 4);
}

/* ---- accounts ---- */

static void
fill_account(struct of_mem *m, const PGresult *r, int row, void *item)
{
    row_to_account(m, r, row, 0, item);
}

static void
on_account(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    int rc;
    struct bank_account *a = sql_one_row(op->m, res, sizeof(*a), fill_account, op->missing_rc, &rc);
    op->cb(rc, a, op->arg);
}

static void
repo_create(void *self, struct of_mem *m, int64_t owner_id, const struct bank_account_input *in,
            bank_account_cb cb, void *arg)
{
    struct op *op = op_new(m, arg);
    op->cb = cb;
    op->missing_rc = OF_ERR;
    const char *p[] = { sql_i64_param(m, owner_id), in->name, sql_i64_param(m, in->balance) };
    pool_query(self, m, &st_create, p, on_account, op);
}

static void
repo_get(void *self, struct of_mem *m, int64_t id, int64_t owner_id, bank_account_cb cb, void *arg)
{
    struct op *op = op_new(m, arg);
    op->cb = cb;
    const char *p[] = { sql_i64_param(m, id), owner_param(m, owner_id) };
    pool_query(self, m, &st_get, p, on_account, op);
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
    struct bank_account_list *l = of_mem_calloc(op->m, sizeof(*l));
    l->items = sql_page_rows(op->m, res->res, sizeof(struct bank_account), fill_account, 5,
                             &l->n, &l->total);
    op->list_cb(OF_OK, l, op->arg);
}

static void
repo_list(void *self, struct of_mem *m, int64_t owner_id, const struct page_req *pg,
          bank_account_list_cb cb, void *arg)
{
    struct op *op = op_new(m, arg);
    op->list_cb = cb;
    const char *p[3];
    int         n = 0;
    if (owner_id > 0)
        p[n++] = sql_i64_param(m, owner_id);
    sql_page_params(m, pg, SQL_PAGE_ID_SORT, p + n);
    const struct pool_stmt *st = owner_id > 0 ? (pg->after ? &st_after_own : &st_list_own)
                                              : (pg->after ? &st_after_all : &st_list_all);
    pool_query(self, m, st, p, on_list, op);
}

/* ---- history ---- */

static void
on_history(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    int rc = sql_rc(res);
    if (rc != OF_OK) {
        op->hist_cb(rc, NULL, op->arg);
        return;
    }
    int n = PQntuples(res->res);
    if (n == 0) {
        op->hist_cb(OF_NOTFOUND, NULL, op->arg);
        return;
    }
    struct transfer_list *l = of_mem_calloc(op->m, sizeof(*l));
    struct transfer *items = of_mem_alloc(op->m, sizeof(*items) * (size_t)n);
    size_t k = 0;
    for (int i = 0; i < n; i++)
        if (!sql_isnull(res->res, i, 2))
            row_to_transfer(op->m, res->res, i, 2, &items[k++]);
    l->items = items;
    l->n = k;
    l->total = sql_i64(res->res, 0, 1);
    op->hist_cb(OF_OK, l, op->arg);
}

static void
repo_history(void *self, struct of_mem *m, int64_t id, int64_t owner_id,
             const struct page_req *pg, transfer_list_cb cb, void *arg)
{
    struct op *op = op_new(m, arg);
    op->hist_cb = cb;
    const char *p[4] = { sql_i64_param(m, id), owner_param(m, owner_id) };
    sql_page_params(m, pg, SQL_PAGE_ID_SORT, p + 2);
    pool_query(self, m, pg->after ? &st_history_after : &st_history, p, on_history, op);
}

/* ---- transfer ---- */

static void
transfer_result(struct op *op, const struct pool_res *res)
{
    if (res->rc != OF_OK) {
        /* never a client's fault here: the checks are in the statement */
        int rc = res->rc == OF_UNAVAILABLE || sql_rc(res) == OF_UNAVAILABLE ? OF_UNAVAILABLE : OF_ERR;
        if (rc == OF_ERR)
            of_log_error("bank transfer failed: sqlstate %s constraint %s",
                         res->sqlstate != NULL ? res->sqlstate : "-",
                         res->constraint != NULL ? res->constraint : "-");
        op->xfer_cb(rc, TRANSFER_DONE, NULL, op->arg);
        return;
    }
    const PGresult *r = res->res;
    if (PQntuples(r) != 1) {
        op->xfer_cb(OF_ERR, TRANSFER_DONE, NULL, op->arg);
        return;
    }
    if (!sql_bool(r, 0, 0)) {
        op->xfer_cb(OF_OK, TRANSFER_NO_SOURCE, NULL, op->arg);
        return;
    }
    if (!sql_bool(r, 0, 1)) {
        op->xfer_cb(OF_OK, TRANSFER_NO_DEST, NULL, op->arg);
        return;
    }
    if (!sql_bool(r, 0, 2)) {
        op->xfer_cb(OF_OK, TRANSFER_NO_FUNDS, NULL, op->arg);
        return;
    }
    if (sql_isnull(r, 0, 3) || sql_i64(r, 0, 8) != 2) {
        of_log_error("bank transfer: checks passed but nothing was moved");
        op->xfer_cb(OF_ERR, TRANSFER_DONE, NULL, op->arg);
        return;
    }
    struct transfer *t = of_mem_alloc(op->m, sizeof(*t));
    row_to_transfer(op->m, r, 0, 3, t);
    if (op->wake != NULL)
        event_wake(op->wake);
    op->xfer_cb(OF_OK, TRANSFER_DONE, t, op->arg);
}

static void
on_transfer(const struct pool_res *res, void *arg)
{
    transfer_result(arg, res);
}

static void
on_transfer_tx(pool_tx *tx, const struct pool_res *res, void *arg)
{
    OF_UNUSED(tx);
    transfer_result(arg, res);
}

static void
repo_transfer(void *self, struct of_mem *m, struct repo_tx *tx, int64_t caller_id,
              const struct transfer_input *in, transfer_stmt_cb cb, void *arg)
{
    struct op *op = op_new(m, arg);
    op->xfer_cb = cb;
    const char **p = of_mem_alloc(m, 6 * sizeof(*p));
    p[0] = sql_i64_param(m, in->from_account_id);
    p[1] = sql_i64_param(m, in->to_account_id);
    p[2] = sql_i64_param(m, in->amount);
    p[3] = sql_i64_param(m, caller_id);
    p[4] = in->ev.id;
    p[5] = in->ev.traceparent;
    if (tx != NULL) {
        pool_tx_after_commit(store_tx(tx), event_wake);
        pool_tx_query(store_tx(tx), &st_transfer, p, on_transfer_tx, op);
    } else {
        op->wake = self;
        pool_query(self, m, &st_transfer, p, on_transfer, op);
    }
}

static const struct bank_repo_ops pg_bank_ops = {
    .create = repo_create,
    .get = repo_get,
    .list = repo_list,
    .history = repo_history,
    .transfer = repo_transfer,
};

struct bank_repo
store_bank_repo(pool *p)
{
    return (struct bank_repo){ &pg_bank_ops, p };
}
