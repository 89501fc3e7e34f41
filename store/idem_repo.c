/*
 * idem_repo.c -- Idempotency-Key rows in PostgreSQL (domain/idem.h has the
 * whole protocol). The claim is one INSERT ... ON CONFLICT on the primary key
 * (user_id, route, key): a fresh key inserts; an expired one is taken over in
 * place; a key held by a transaction still in flight makes the INSERT wait
 * for that transaction, so identical concurrent requests serialise in the
 * database and the later ones see the stored response. The claim, the
 * operation's writes and the stored response share one transaction.
 */
#include "store/idem_repo.h"
#include "store/sql.h"
#include "common/of.h"

#include <string.h>

static const struct pool_stmt st_claim = {
    "idem_claim",
    "INSERT INTO idempotency_keys (user_id, route, key, fingerprint) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (user_id, route, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, "
    "  status = NULL, response_body = NULL, created_at = now(), "
    "  expires_at = now() + interval '24 hours' "
    "WHERE idempotency_keys.expires_at < now() "
    "RETURNING 1", 4, 0 };

static const struct pool_stmt st_lookup = {
    "idem_lookup",
    "SELECT fingerprint, status, response_body FROM idempotency_keys "
    "WHERE user_id = $1 AND route = $2 AND key = $3", 3, POOL_STMT_READ };

static const struct pool_stmt st_store = {
    "idem_store",
    "UPDATE idempotency_keys SET status = $4, response_body = $5 "
    "WHERE user_id = $1 AND route = $2 AND key = $3", 5, 0 };

/* Every worker of every host runs this now and then; the transaction-scoped
 * advisory lock lets one at a time delete (the others count 0). Transaction
 * scope, not session: it is released with the statement, also through a
 * pooler in transaction mode. */
#define IDEM_PURGE_LOCK_KEY "4607382117462626"   /* "OF idem purge"; not migrate.c's */

static const struct pool_stmt st_purge = {
    "idem_purge",
    "WITH l AS (SELECT pg_try_advisory_xact_lock(" IDEM_PURGE_LOCK_KEY ") AS got), "
    "d AS (DELETE FROM idempotency_keys WHERE (SELECT got FROM l) AND expires_at < now() "
    "RETURNING 1) SELECT count(*) FROM d", 0, 0 };

const struct pool_stmt *const store_idem_stmts[] = { &st_claim, &st_lookup, &st_store, &st_purge };
const size_t store_idem_nstmts = OF_ARRAY_LEN(store_idem_stmts);

struct op {
    struct of_mem         *m;
    const struct idem_key *k;
    const char           **params;
    idem_begin_cb          begin_cb;
    idem_end_cb            end_cb;
    void                 (*purge_cb)(int rc, int64_t n, void *arg);
    void                  *arg;
};

static const char **
key_params(struct of_mem *m, const struct idem_key *k)
{
    const char **p = of_mem_alloc(m, 4 * sizeof(*p));
    p[0] = sql_i64_param(m, k->user_id);
    p[1] = k->route;
    p[2] = k->key;
    p[3] = k->fingerprint;
    return p;
}

static void
on_lookup(pool_tx *tx, const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    int rc = sql_rc(res);
    if (rc != OF_OK) {
        pool_tx_rollback(tx);
        op->begin_cb(rc, IDEM_EXISTS, NULL, NULL, op->arg);
        return;
    }
    struct idem_row *row = of_mem_calloc(op->m, sizeof(*row));
    if (PQntuples(res->res) > 0) {
        row->fingerprint = sql_str(op->m, res->res, 0, 0);
        row->status = sql_isnull(res->res, 0, 1) ? 0 : (int)sql_i64(res->res, 0, 1);
        row->body = sql_str(op->m, res->res, 0, 2);
    } else {
        /* vanished between claim and look-up: treat as still in flight */
        row->fingerprint = op->k->fingerprint;
    }
    pool_tx_rollback(tx);
    op->begin_cb(OF_OK, IDEM_EXISTS, NULL, row, op->arg);
}

static void
on_claim(pool_tx *tx, const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    int rc = sql_rc(res);
    if (pool_res_sqlstate_is(res, "57014") || pool_res_sqlstate_is(res, "55P03")) {
        /* gave up waiting for the transaction that holds the key: it is
         * still in progress (409), whatever it turns out to be */
        pool_tx_rollback(tx);
        struct idem_row *row = of_mem_calloc(op->m, sizeof(*row));
        row->fingerprint = op->k->fingerprint;
        op->begin_cb(OF_OK, IDEM_EXISTS, NULL, row, op->arg);
        return;
    }
    if (rc != OF_OK) {
        pool_tx_rollback(tx);
        op->begin_cb(rc == OF_UNAVAILABLE ? OF_UNAVAILABLE : OF_ERR, IDEM_FRESH, NULL, NULL, op->arg);
        return;
    }
    if (PQntuples(res->res) == 1) {
        op->begin_cb(OF_OK, IDEM_FRESH, store_repo_tx(tx), NULL, op->arg);
        return;
    }
    pool_tx_query(tx, &st_lookup, op->params, on_lookup, op);
}

static void
on_begin(pool_tx *tx, const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    if (res->rc != OF_OK || tx == NULL) {
        op->begin_cb(res->rc == OF_OK ? OF_ERR : res->rc, IDEM_FRESH, NULL, NULL, op->arg);
        return;
    }
    if (op->k == NULL) {
        op->begin_cb(OF_OK, IDEM_FRESH, store_repo_tx(tx), NULL, op->arg);
        return;
    }
    pool_tx_query(tx, &st_claim, op->params, on_claim, op);
}

static void
repo_begin(void *self, struct of_mem *m, const struct idem_key *k, idem_begin_cb cb, void *arg)
{
    struct op *op = of_mem_calloc(m, sizeof(*op));
    op->m = m;
    op->k = k;
    op->begin_cb = cb;
    op->arg = arg;
    if (k != NULL)
        op->params = key_params(m, k);
    pool_tx_begin(self, m, on_begin, op);
}

static void
on_commit(pool_tx *tx, const struct pool_res *res, void *arg)
{
    OF_UNUSED(tx);
    struct op *op = arg;
    op->end_cb(res->rc == OF_OK ? OF_OK : (res->rc == OF_UNAVAILABLE ? OF_UNAVAILABLE : OF_ERR),
               op->arg);
}

static void
repo_finish(void *self, struct of_mem *m, struct repo_tx *rtx, const struct idem_key *k,
            int status, const char *body, idem_end_cb cb, void *arg)
{
    OF_UNUSED(self);
    pool_tx *tx = store_tx(rtx);
    struct op *op = of_mem_calloc(m, sizeof(*op));
    op->m = m;
    op->k = k;
    op->end_cb = cb;
    op->arg = arg;
    if (k == NULL) {
        pool_tx_commit(tx, on_commit, op);
        return;
    }
    const char **p = of_mem_alloc(m, 5 * sizeof(*p));
    p[0] = sql_i64_param(m, k->user_id);
    p[1] = k->route;
    p[2] = k->key;
    p[3] = of_mem_printf(m, "%d", status);
    p[4] = body;
    /* the stored answer and COMMIT go in one round trip; a failure of
     * either commits nothing (on_commit reports it) */
    pool_tx_query_commit(tx, &st_store, p, on_commit, op);
}

static void
repo_abort(void *self, struct repo_tx *tx)
{
    OF_UNUSED(self);
    pool_tx_rollback(store_tx(tx));
}

static void
on_purged(const struct pool_res *res, void *arg)
{
    struct op *op = arg;
    int rc = sql_rc(res);
    int64_t n = rc == OF_OK && PQntuples(res->res) > 0 ? sql_i64(res->res, 0, 0) : 0;
    op->purge_cb(rc, n, op->arg);
}

static void
repo_purge(void *self, struct of_mem *m, void (*cb)(int rc, int64_t n, void *arg), void *arg)
{
    struct op *op = of_mem_calloc(m, sizeof(*op));
    op->m = m;
    op->purge_cb = cb;
    op->arg = arg;
    pool_query(self, m, &st_purge, NULL, on_purged, op);
}

static const struct idem_repo_ops pg_idem_ops = {
    .begin = repo_begin,
    .finish = repo_finish,
    .abort = repo_abort,
    .purge = repo_purge,
};

struct idem_repo
store_idem_repo(pool *p)
{
    return (struct idem_repo){ &pg_idem_ops, p };
}
