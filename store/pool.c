/*
 * pool.c -- the per-worker asynchronous PostgreSQL pool (contract: pool.h):
 * the pool's life and statistics, the wait queue, dispatch, the done-list,
 * and the plain query. Connections are pgconn.c's, coalesced reads
 * pool_group.c's, transactions pool_tx.c's; what they share is in
 * pool_int.h.
 *
 * Every caller's request becomes a struct pool_op whose type (one table of
 * functions per kind) says how it is sent, completed and failed. An op gets
 * an idle connection at once, or waits in a FIFO for one up to the queue
 * timeout. A queued coalesced-read group stands for all its members: its
 * weight in the statistics is their number, and they expire one by one.
 *
 * Callbacks that cannot come from a socket event (immediate failures, queue
 * timeouts, a transaction handed its connection) go through a done-list
 * drained by one deferred event, so nothing fires inside the call that
 * started it.
 */
#include "store/pool_int.h"
#include "common/log.h"
#include "common/util.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

static void pool_free(pool *p);

/* ---- results ------------------------------------------------------------ */

void
pool_res_fill(struct pool_res *pr, const PGresult *r)
{
    pr->res = NULL;
    pr->sqlstate = NULL;
    pr->constraint = NULL;
    pr->rc = OF_ERR;
    if (r == NULL)
        return;
    switch (PQresultStatus(r)) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
    case PGRES_SINGLE_TUPLE:
        pr->rc = OF_OK;
        pr->res = r;
        return;
    case PGRES_FATAL_ERROR:
    case PGRES_NONFATAL_ERROR:
        pr->res = r;
        pr->sqlstate = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        pr->constraint = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
        /* Connection exceptions, server shutdown and a node that is no
         * longer the primary (25006: the connection redials) are
         * "database down": nothing was written. */
        if (pr->sqlstate != NULL && (strncmp(pr->sqlstate, "08", 2) == 0
                                     || strncmp(pr->sqlstate, "57P0", 4) == 0
                                     || strcmp(pr->sqlstate, "25006") == 0))
            pr->rc = OF_UNAVAILABLE;
        return;
    default:
        return;   /* PGRES_PIPELINE_ABORTED: skipped after an earlier failure */
    }
}

void
pool_op_keep_result(struct pool_op *op, PGresult *r)
{
    if (op->nres < op->cap)
        op->res[op->nres++] = r;
    else
        PQclear(r);
}

void
pool_op_init(struct pool_op *op, const struct pool_op_type *type, struct of_mem *m)
{
    memset(op, 0, sizeof(*op));
    op->type = type;
    op->m = m;
    op->res = op->res_inline;
}

bool
pool_op_expire_whole(pool *p, struct pool_op *op, uint64_t now)
{
    OF_UNUSED(p);
    return op->deadline_ns <= now;
}

bool
pool_op_claim_live(pool *p, struct pool_op *op)
{
    if (!op->m->abandoned)
        return true;
    pool_defer(p, op, OF_UNAVAILABLE);
    return false;
}

/* ---- the observer ------------------------------------------------------- */

void
pool_set_observer(pool *p, const struct pool_observer *o)
{
    if (o == NULL) {
        p->obs = NULL;
        return;
    }
    p->obs_store = *o;
    p->obs = &p->obs_store;
}

void
pool_obs_start(pool *p, struct pool_op *op)
{
    const struct pool_observer *o = p->obs;
    if (o == NULL)
        return;
    op->obs = o;
    op->trace = o->current(o->arg);
    op->queued_ns = of_mono_ns();
}

void *
pool_obs_enter(struct pool_op *op, const PGresult *r, int rc, bool round_trip)
{
    const struct pool_observer *o = op->obs;
    if (o == NULL)
        return NULL;
    struct pool_trace t = {
        .trace = op->trace, .st = op->st, .begin = op->begin, .commit = op->commit,
        .round_trip = round_trip, .rc = rc,
        .rows = r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : 0,
        .queued_ns = op->queued_ns, .sent_ns = op->sent_ns, .done_ns = of_mono_ns(),
    };
    o->round_trip(o->arg, &t);
    return o->resume(o->arg, op->trace);
}

void
pool_obs_leave(const struct pool_observer *o, void *prev)
{
    if (o != NULL)
        o->resume(o->arg, prev);
}

/* ---- the done-list ------------------------------------------------------ */

void
pool_hold(pool *p)
{
    p->looping++;
}

bool
pool_unhold(pool *p)
{
    if (--p->looping > 0 || !p->dying)
        return true;
    pool_free(p);
    return false;
}

void
pool_defer(pool *p, struct pool_op *op, int rc)
{
    op->rc = rc;
    op->next = NULL;
    if (p->done_tail != NULL)
        p->done_tail->next = op;
    else
        p->done_head = op;
    p->done_tail = op;
    event_active(p->ev_done, 0, 1);
}

static void
pool_on_done(evutil_socket_t fd, short what, void *arg)
{
    pool *p = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);

    struct pool_op *op = p->done_head;
    p->done_head = p->done_tail = NULL;
    pool_hold(p);
    while (op != NULL && !p->dying) {
        struct pool_op *next = op->next;
        pool_op_fail(op, op->rc);
        op = next;
    }
    pool_unhold(p);
}

/* ---- wait queue --------------------------------------------------------- */

static void
queue_unlink(pool *p, struct pool_op *op)
{
    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        p->wait_head = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
    else
        p->wait_tail = op->prev;
    op->next = op->prev = NULL;
    p->nwaiting -= op->nwait;
}

static void
queue_arm(pool *p)
{
    if (p->wait_head == NULL) {
        event_del(p->ev_qtimer);
        return;
    }
    /* Not always the head: a queued group's deadline moves as members expire. */
    uint64_t first = UINT64_MAX;
    for (struct pool_op *op = p->wait_head; op != NULL; op = op->next)
        if (op->deadline_ns < first)
            first = op->deadline_ns;
    uint64_t now = of_mono_ns();
    uint64_t d = first > now ? first - now : 0;
    struct timeval tv = { (time_t)(d / 1000000000u), (suseconds_t)((d % 1000000000u) / 1000u) };
    event_add(p->ev_qtimer, &tv);
}

void
pool_copy_params(struct of_mem *m, const struct pool_stmt *st, const char *const **params)
{
    if (*params == NULL || st == NULL || st->nparams == 0)
        return;
    const char **cp = of_mem_alloc(m, (size_t)st->nparams * sizeof(*cp));
    for (int i = 0; i < st->nparams; i++)
        cp[i] = (*params)[i] != NULL ? of_mem_strdup(m, (*params)[i]) : NULL;
    *params = cp;
}

/* op->deadline_ns and op->nwait are set; the op's params are its own. */
void
pool_queue_push(pool *p, struct pool_op *op)
{
    op->next = NULL;
    op->prev = p->wait_tail;
    if (p->wait_tail != NULL)
        p->wait_tail->next = op;
    else
        p->wait_head = op;
    p->wait_tail = op;
    p->nwaiting += op->nwait;
    if (!event_pending(p->ev_qtimer, EV_TIMEOUT, NULL))
        queue_arm(p);
}

static void
pool_on_qtimer(evutil_socket_t fd, short what, void *arg)
{
    pool *p = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);

    uint64_t now = of_mono_ns() + 1000000u;   /* 1 ms slack: timer granularity */
    for (struct pool_op *op = p->wait_head, *next; op != NULL; op = next) {
        next = op->next;
        if (!pool_op_expire(p, op, now))
            continue;
        queue_unlink(p, op);
        pool_defer(p, op, OF_UNAVAILABLE);
    }
    queue_arm(p);
}

/* Can a new operation reasonably wait for a connection? Not when every
 * connection is down and the last attempt to open one failed. */
bool
pool_can_wait(pool *p)
{
    if (p->sh.db_ok || p->sh.nopen > 0)
        return true;
    for (int i = 0; i < p->size; i++)
        if (p->conns[i].st == PGC_CONNECTING)
            return true;
    return false;
}

/* ---- dispatch ----------------------------------------------------------- */

struct pgconn *
pool_idle_conn(pool *p)
{
    if (p->sh.nidle == 0)
        return NULL;
    for (int i = 0; i < p->size; i++)
        if (p->conns[i].st == PGC_IDLE)
            return &p->conns[i];
    return NULL;
}

void
pool_submit(pool *p, struct pool_op *op)
{
    struct pgconn *c = pool_idle_conn(p);
    if (c != NULL && p->wait_head == NULL) {
        pgconn_send(c, op);
        return;
    }
    if (!pool_can_wait(p)) {
        pool_defer(p, op, OF_UNAVAILABLE);
        return;
    }
    /* The caller's params must outlive the wait: copy them into its arena. */
    pool_copy_params(op->m, op->st, &op->params);
    op->deadline_ns = of_mono_ns() + (uint64_t)p->queue_timeout_ms * 1000000u;
    op->nwait = 1;
    pool_queue_push(p, op);
}

static void
pool_dispatch(pool *p)
{
    struct pgconn *c;
    while (p->wait_head != NULL && (c = pool_idle_conn(p)) != NULL) {
        struct pool_op *op = p->wait_head;
        queue_unlink(p, op);
        if (pool_op_claim(p, op))
            pgconn_send(c, op);
    }
}

/* ---- what the connections tell the pool --------------------------------- */

static void
pool_conn_idle(void *owner)
{
    pool_dispatch(owner);
}

static void
pool_conn_up(void *owner)
{
    pool *p = owner;
    for (int i = 0; i < p->size; i++)
        pgconn_wake(&p->conns[i]);
}

/* Every connection is down and the last attempt failed: nobody waits. */
static void
pool_conn_failed(void *owner)
{
    pool *p = owner;
    if (pool_can_wait(p))
        return;
    while (p->wait_head != NULL) {
        struct pool_op *op = p->wait_head;
        queue_unlink(p, op);
        if (pool_op_claim(p, op))
            pool_defer(p, op, OF_UNAVAILABLE);
    }
    queue_arm(p);
}

static void
pool_conn_lost(void *owner, struct pool_op *op)
{
    pool_op_clear(op);
    pool_defer(owner, op, OF_UNAVAILABLE);
}

static const struct pgconn_hooks pool_conn_hooks = {
    pool_conn_idle, pool_conn_up, pool_conn_failed, pool_conn_lost,
};

/* ---- the plain query ---------------------------------------------------- */

static int
query_send(struct pgconn *c, struct pool_op *op)
{
    op->nres = 0;
    op->cap = 1;
    return pgconn_stmt(c, op->st, op->params) ? 1 : -1;
}

static void
query_complete(struct pgconn *c, struct pool_op *op)
{
    PGresult *r = op->nres > 0 ? op->res[0] : NULL;
    pool_cb   cb = op->cb.q;
    void     *arg = op->arg;
    const struct pool_observer *obs = op->obs;
    struct pool_res pr;

    op->nres = 0;
    pool_res_fill(&pr, r);
    pgconn_release(c);
    void *prev = pool_obs_enter(op, r, pr.rc, true);
    cb(&pr, arg);
    pool_obs_leave(obs, prev);
    PQclear(r);
}

static void
query_fail(struct pool_op *op, int rc)
{
    struct pool_res pr = { rc, NULL, NULL, NULL };
    const struct pool_observer *obs = op->obs;
    void *prev = pool_obs_enter(op, NULL, rc, false);
    op->cb.q(&pr, op->arg);
    pool_obs_leave(obs, prev);
}

static const struct pool_op_type pool_query_type = {
    .claim = pool_op_claim_live,
    .send = query_send,
    .on_result = pool_op_keep_result,
    .complete = query_complete,
    .fail = query_fail,
    .expire = pool_op_expire_whole,
};

void
pool_query(pool *p, struct of_mem *m, const struct pool_stmt *st,
           const char *const *params, pool_cb cb, void *arg)
{
    struct pool_op *op = of_mem_alloc(m, sizeof(*op));
    pool_op_init(op, &pool_query_type, m);
    op->st = st;
    op->params = params;
    op->cb.q = cb;
    op->arg = arg;
    p->queries++;
    pool_obs_start(p, op);
    if (st->flags & POOL_STMT_READ)
        pool_group_read(p, op);
    else
        pool_submit(p, op);
}

/* ---- the pool ----------------------------------------------------------- */

static int
pool_init(pool *p, struct event_base *base, const struct pool_opts *o)
{
    struct pgconn_shared *sh = &p->sh;
    p->size = o->size > 0 ? o->size : 1;
    p->queue_timeout_ms = o->queue_timeout_ms > 0 ? o->queue_timeout_ms : 0;
    sh->base = base;
    sh->stmt_timeout_ms = o->statement_timeout_ms;
    sh->connect_timeout_s = o->connect_timeout_s;
    sh->prepared = o->prepared_statements;
    sh->prefer_standby = o->prefer_standby;
    sh->hooks = &pool_conn_hooks;
    sh->owner = p;
    if (sh->stmt_timeout_ms > 0)
        snprintf(sh->options, sizeof(sh->options), "-c statement_timeout=%d", sh->stmt_timeout_ms);
    if (o->url != NULL && o->url[0] != '\0' && (sh->url = strdup(o->url)) == NULL)
        return -1;
    if (o->application_name != NULL && (sh->app_name = strdup(o->application_name)) == NULL)
        return -1;
    p->conns = calloc((size_t)p->size, sizeof(*p->conns));
    p->ev_done = event_new(base, -1, 0, pool_on_done, p);
    p->ev_qtimer = evtimer_new(base, pool_on_qtimer, p);
    if (p->conns == NULL || p->ev_done == NULL || p->ev_qtimer == NULL || pool_groups_init(p) != 0)
        return -1;
    for (int i = 0; i < p->size; i++)
        if (pgconn_init(&p->conns[i], sh, i) != 0)
            return -1;
    return 0;
}

pool *
pool_create(struct event_base *base, const struct pool_opts *opts,
            const struct pool_stmt *const *stmts, size_t nstmts)
{
    pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->sh.stmts = stmts;
    p->sh.nstmts = nstmts;
    if (pool_init(p, base, opts) != 0) {
        pool_free(p);
        return NULL;
    }
    for (size_t i = 0; i < nstmts; i++)
        of_log_debug("statement %s: %s", stmts[i]->name, (stmts[i]->flags & POOL_STMT_READ)
                     ? "plain read, grouped per loop pass" : "own round trip");
    if (p->sh.url == NULL) {
        of_log_error("no database URL (database.url / ORDERFLOW_DATABASE_URL): every query fails");
        return p;
    }
    for (int i = 0; i < p->size; i++)
        pgconn_open(&p->conns[i]);
    return p;
}

void
pool_destroy(pool *p)
{
    if (p == NULL)
        return;
    if (p->looping > 0) {
        p->dying = true;      /* freed when the calling-back loop unwinds */
        return;
    }
    pool_free(p);
}

static void
pool_free(pool *p)
{
    if (p->conns != NULL) {
        for (int i = 0; i < p->size; i++) {
            struct pool_op *op = pgconn_cleanup(&p->conns[i]);
            if (op != NULL)
                pool_op_clear(op);
        }
        free(p->conns);
    }
    if (p->ev_done != NULL)
        event_free(p->ev_done);
    if (p->ev_qtimer != NULL)
        event_free(p->ev_qtimer);
    pool_groups_cleanup(p);
    free(p->sh.url);
    free(p->sh.app_name);
    free(p);
}

void
pool_get_stats(pool *p, struct pool_stats *out)
{
    out->open = p->sh.nopen;
    out->busy = p->sh.nbusy;
    out->idle = p->sh.nidle;
    out->waiting = p->nwaiting;
    out->db_ok = p->sh.db_ok && p->sh.nopen > 0;
    out->queries = p->queries;
}

const char *
pool_role(pool *p)
{
    for (int i = 0; i < p->size; i++) {
        const char *r = pgconn_role(&p->conns[i]);
        if (r != NULL)
            return r;
    }
    return NULL;
}

bool
pool_ready(pool *p)
{
    return p->sh.db_ok && p->sh.nopen > 0;
}

bool
pool_settled(pool *p)
{
    return (p->sh.db_ok && p->sh.nopen > 0) || p->sh.down_logged;
}

bool
pool_res_sqlstate_is(const struct pool_res *r, const char *state)
{
    return r->sqlstate != NULL && strcmp(r->sqlstate, state) == 0;
}

int
pool_res_ntuples(const struct pool_res *r)
{
    return r->rc == OF_OK && r->res != NULL ? PQntuples(r->res) : 0;
}

const char *
pool_res_value(const struct pool_res *r, int row, int col)
{
    if (r->res == NULL || row >= PQntuples(r->res) || col >= PQnfields(r->res)
        || PQgetisnull(r->res, row, col))
        return NULL;
    return PQgetvalue(r->res, row, col);
}
