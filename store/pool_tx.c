/*
 * pool_tx.c -- interactive transactions (pool_tx_* in pool.h).
 *
 * A transaction waits for a connection like any operation (the begin type),
 * then holds it (BUSY with nothing in flight) between steps. BEGIN is sent
 * lazily in the same round trip as the first statement; COMMIT goes in the
 * same round trip as the last one with pool_tx_query_commit. Every step
 * reuses the transaction's one op (the step type). A connection given back
 * inside a transaction (failed or abandoned) is rolled back by pgconn
 * before it is reused.
 */
#include "store/pool_int.h"
#include "common/log.h"
#include "common/util.h"

#include <string.h>

struct pool_tx {
    pool           *p;
    struct pgconn  *c;          /* NULL once the connection is gone */
    struct of_mem  *m;
    bool            begun;
    void          (*after_commit)(pool *p);   /* pool_tx_after_commit */
    struct pool_op  op;         /* begin, then each step in turn */
};

/* ---- begin: wait for a connection, then hold it ------------------------- */

static int
tx_begin_send(struct pgconn *c, struct pool_op *op)
{
    pgconn_hold(c, &op->tx->c);
    pool_defer(op->tx->p, op, OF_OK);
    return 0;
}

static void
tx_begin_fail(struct pool_op *op, int rc)
{
    struct pool_res pr = { rc, NULL, NULL, NULL };
    const struct pool_observer *obs = op->obs;
    void *prev = pool_obs_enter(op, NULL, rc, false);
    op->cb.t(rc == OF_OK ? op->tx : NULL, &pr, op->arg);
    pool_obs_leave(obs, prev);
}

/* Never called: a begin has no round trip. */
static void
tx_begin_complete(struct pgconn *c, struct pool_op *op)
{
    OF_UNUSED(op);
    pgconn_release(c);
}

static const struct pool_op_type pool_tx_begin_type = {
    .claim = pool_op_claim_live,
    .send = tx_begin_send,
    .on_result = pool_op_keep_result,
    .complete = tx_begin_complete,
    .fail = tx_begin_fail,
    .expire = pool_op_expire_whole,
};

/* ---- a step: [BEGIN] [statement] [COMMIT], one round trip --------------- */

static int
tx_step_send(struct pgconn *c, struct pool_op *op)
{
    const struct pool_stmt *st[POOL_INLINE_RES];
    const char *const      *pv[POOL_INLINE_RES];
    int n = 0;

    if (op->begin) {
        st[n] = &pgconn_st_begin;
        pv[n++] = NULL;
    }
    if (op->st != NULL) {
        st[n] = op->st;
        pv[n++] = op->params;
    }
    if (op->commit) {
        st[n] = &pgconn_st_commit;
        pv[n++] = NULL;
    }
    op->nres = 0;
    op->cap = (size_t)n;
    for (int i = 0; i < n; i++)
        if (!pgconn_stmt(c, st[i], pv[i]))
            return -1;
    return n;
}

/* COMMIT of an aborted transaction answers "ROLLBACK". With a statement
 * before it, the statement's result is the answer and the COMMIT's only has
 * to be there and be a COMMIT. */
static void
tx_check_commit(struct pool_res *pr, const PGresult *cr)
{
    if (pr->rc == OF_OK && (cr == NULL || PQresultStatus(cr) != PGRES_COMMAND_OK ||
                            strcmp(PQcmdStatus((PGresult *)cr), "COMMIT") != 0)) {
        pr->rc = OF_ERR;
        pr->sqlstate = "25P02";
    }
}

/* The callback may start the next step on the same op: take its results
 * out first. */
static void
tx_step_complete(struct pgconn *c, struct pool_op *op)
{
    PGresult  *all[POOL_INLINE_RES] = { NULL, NULL, NULL };
    size_t     nres = op->nres;
    size_t     skip = op->begin ? 1 : 0;
    size_t     last = op->cap - 1;
    pool_tx   *tx = op->tx;
    pool_tx_cb cb = op->cb.t;
    void      *arg = op->arg;
    struct pool_res pr;

    memcpy(all, op->res, nres * sizeof(*all));
    op->nres = 0;
    pool_res_fill(&pr, skip < nres ? all[skip] : NULL);
    if (op->commit) {
        tx_check_commit(&pr, last < nres ? all[last] : NULL);
        pgconn_release(c);     /* forgets tx->c */
        if (pr.rc == OF_OK && tx->after_commit != NULL)
            tx->after_commit(tx->p);
    }
    const struct pool_observer *obs = op->obs;
    void *prev = pool_obs_enter(op, skip < nres ? all[skip] : NULL, pr.rc, true);
    cb(tx, &pr, arg);
    pool_obs_leave(obs, prev);
    for (size_t i = 0; i < nres; i++)
        PQclear(all[i]);
}

static void
tx_step_fail(struct pool_op *op, int rc)
{
    struct pool_res pr = { rc, NULL, NULL, NULL };
    if (rc == OF_ERR && op->commit)
        pr.sqlstate = "25P02";   /* in_failed_sql_transaction: committed nothing */
    const struct pool_observer *obs = op->obs;
    void *prev = pool_obs_enter(op, NULL, rc, false);
    op->cb.t(op->tx, &pr, op->arg);
    pool_obs_leave(obs, prev);
}

static const struct pool_op_type pool_tx_step_type = {
    .claim = pool_op_claim_live,
    .send = tx_step_send,
    .on_result = pool_op_keep_result,
    .complete = tx_step_complete,
    .fail = tx_step_fail,
    .expire = pool_op_expire_whole,
};

/* ---- the API ------------------------------------------------------------ */

void
pool_tx_begin(pool *p, struct of_mem *m, pool_tx_cb cb, void *arg)
{
    pool_tx *tx = of_mem_alloc(m, sizeof(*tx));
    memset(tx, 0, sizeof(*tx));
    tx->p = p;
    tx->m = m;
    pool_op_init(&tx->op, &pool_tx_begin_type, m);
    tx->op.tx = tx;
    tx->op.cb.t = cb;
    tx->op.arg = arg;
    p->queries++;
    pool_obs_start(p, &tx->op);
    pool_submit(p, &tx->op);
}

/* Give the connection back (rolling back whatever is open) and forget it. */
static void
tx_detach(pool_tx *tx)
{
    struct pgconn *c = tx->c;
    if (c == NULL)
        return;
    if (pgconn_in_flight(c))
        of_log_error("pool: transaction ended while a statement was in flight");
    pgconn_drop(c);
}

/* A step while another is in flight is a caller bug: fail the new one only. */
static bool
tx_step_in_flight(pool_tx *tx, pool_tx_cb cb, void *arg)
{
    if (tx->c == NULL || !pgconn_in_flight(tx->c))
        return false;
    of_log_error("pool: transaction step requested while another is in flight");
    /* tx->op is busy: report through a fresh op from the arena. */
    struct pool_op *op = of_mem_alloc(tx->m, sizeof(*op));
    pool_op_init(op, &pool_tx_step_type, tx->m);
    op->tx = tx;
    op->cb.t = cb;
    op->arg = arg;
    pool_obs_start(tx->p, op);
    pool_defer(tx->p, op, OF_ERR);
    return true;
}

/* Every step goes through here: the statement st (NULL: COMMIT alone),
 * BEGIN before it on the first step, COMMIT after it with commit. */
static void
tx_send_step(pool_tx *tx, const struct pool_stmt *st, const char *const *params,
             bool commit, pool_tx_cb cb, void *arg)
{
    if (tx_step_in_flight(tx, cb, arg))
        return;
    struct pool_op *op = &tx->op;
    struct pgconn  *c = tx->c;
    pool_op_init(op, &pool_tx_step_type, tx->m);
    op->tx = tx;
    op->st = st;
    op->params = params;
    op->commit = commit;
    op->cb.t = cb;
    op->arg = arg;
    pool_obs_start(tx->p, op);

    if (c == NULL) {
        pool_defer(tx->p, op, OF_UNAVAILABLE);
        return;
    }
    if (tx->m->abandoned) {
        tx_detach(tx);
        pool_defer(tx->p, op, OF_UNAVAILABLE);
        return;
    }
    if (st == NULL && (!tx->begun || pgconn_in_failed_tx(c))) {
        /* Nothing to commit, or nothing that can be: answer without a round trip. */
        int rc = tx->begun ? OF_ERR : OF_OK;
        tx_detach(tx);
        pool_defer(tx->p, op, rc);
        return;
    }
    op->begin = !tx->begun;
    tx->begun = true;
    pgconn_send(c, op);
}

void
pool_tx_query(pool_tx *tx, const struct pool_stmt *st, const char *const *params,
              pool_tx_cb cb, void *arg)
{
    tx_send_step(tx, st, params, false, cb, arg);
}

void
pool_tx_commit(pool_tx *tx, pool_tx_cb cb, void *arg)
{
    tx_send_step(tx, NULL, NULL, true, cb, arg);
}

void
pool_tx_query_commit(pool_tx *tx, const struct pool_stmt *st, const char *const *params,
                     pool_tx_cb cb, void *arg)
{
    tx_send_step(tx, st, params, true, cb, arg);
}

void
pool_tx_after_commit(pool_tx *tx, void (*fn)(pool *p))
{
    tx->after_commit = fn;
}

void
pool_tx_rollback(pool_tx *tx)
{
    tx_detach(tx);
}
