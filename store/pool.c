/*
 * pool.c -- the per-worker asynchronous PostgreSQL pool (contract: pool.h).
 *
 * Every connection lives in libpq pipeline mode from the moment it is up.
 * An operation is a list of statements followed by PQpipelineSync: one sync
 * for a query or an atomic batch (the statements then form one implicit
 * transaction: a failure rolls back its batch-mates), one sync per statement
 * for a non-atomic batch. Results are read until the expected number of
 * PGRES_PIPELINE_SYNC results has arrived; only then does the connection go
 * back to the pool, so results are always drained.
 *
 * Connection life:  BACKOFF --timer--> CONNECTING --PQconnectPoll ok-->
 *   PREPARING (one PQsendPrepare + sync per statement) --> IDLE <--> BUSY.
 * Any failure closes the connection and re-arms the timer: at once when an
 * established connection broke, else after 100 ms doubling up to 5 s.
 *
 * Plain reads from pool_query (see pool.h) are not given a connection one
 * by one: the first read of a loop pass opens a group and schedules a
 * deferred flush event, which runs after the pass's other callbacks; the
 * group then takes one connection like any operation (or waits in the FIFO,
 * still taking newcomers) and is sent as N statements + one sync. Members
 * after a failed one come back PGRES_PIPELINE_ABORTED and are re-sent.
 * This is the "one sync per loop pass" design of PERFORMANCE-NOTES.
 *
 * Transactions hold a connection (BUSY with nothing in flight) between steps.
 * BEGIN is sent lazily in the same round trip as the first statement. A
 * connection released inside a transaction (failed or abandoned) gets an
 * internal ROLLBACK before it is reused.
 *
 * Callbacks that cannot come from a socket event (immediate failures, a
 * transaction handed its connection) go through a done-list drained by one
 * deferred event, so nothing fires inside the call that started it.
 *
 * The per-connection timer doubles as connect timeout, backoff and query
 * watchdog (statement_timeout x statements + margin): a silent server never
 * hangs a request.
 *
 * PgBouncer in transaction mode (tests/e2e/test_pgbouncer.py): with
 * prepared_statements = false nothing is prepared and every statement goes
 * out unnamed (PQsendQueryParams); each sync ends a transaction PgBouncer may
 * give to another server connection, and nothing here relies on session
 * state between syncs. A flight with ONE sync is safe through 1.18 at any
 * size; several syncs in one flight (the connect-time prepares, a non-atomic
 * pool_batch) are not: PgBouncer may switch server connections between them
 * mid-stream (seen: "invalid frontend message type", hangs). Queries, groups,
 * atomic batches and transaction steps are one sync each; no server path
 * uses non-atomic batches. statement_timeout is sent as the "options"
 * startup parameter; a server refusing it ("unsupported startup parameter")
 * makes the pool warn once and dial without it from then on.
 */
#include "store/pool.h"
#include "common/log.h"
#include "common/scoreboard.h"
#include "common/util.h"

#include <event2/event.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define POOL_BACKOFF_MIN_MS     100
#define POOL_BACKOFF_MAX_MS     5000
#define POOL_WATCHDOG_MARGIN_MS 2000
#define POOL_QUICK_BREAK_NS     1000000000ull  /* up for less than this: back off */
#define POOL_INLINE_RES         3   /* BEGIN + a statement + COMMIT */
#define POOL_STACK_RES          16

enum conn_st { C_DOWN, C_BACKOFF, C_CONNECTING, C_PREPARING, C_IDLE, C_BUSY };
enum op_kind { OP_QUERY, OP_BATCH, OP_TX_BEGIN, OP_TX_STEP, OP_TX_COMMIT, OP_GROUP };
enum conn_internal { INT_NONE, INT_PREPARE, INT_ROLLBACK };

struct pool_op {
    enum op_kind             kind;
    int                      rc;            /* deferred completions only */
    struct of_mem           *m;
    struct pool_op          *next, *prev;   /* wait queue or done list */
    uint64_t                 deadline_ns;
    size_t                   n;             /* user statements */
    const struct pool_stmt *const *sts;     /* batch */
    const char *const *const *params;       /* batch */
    const struct pool_stmt  *st1;           /* query, tx step */
    const char *const       *params1;
    bool                     atomic;
    bool                     begin;         /* send BEGIN first (tx step) */
    bool                     commit;        /* send COMMIT after the statement (tx step) */
    size_t                   nsent, nres;   /* statements sent (BEGIN included), results got */
    PGresult               **res;
    PGresult                *res_inline[POOL_INLINE_RES];
    union { pool_cb q; pool_batch_cb b; pool_tx_cb t; } cb;
    void                    *arg;
    pool_tx                 *tx;
};

struct pool_tx {
    pool           *p;
    struct pconn   *c;          /* NULL once the connection is gone */
    struct of_mem  *m;
    bool            begun;
    struct pool_op  op;         /* begin, then each step in turn */
};

/* Read-only queries of one loop pass, sent together with one sync. The
 * group is pool-owned and recycled; its members are the callers' ops. */
struct pool_group {
    struct pool_op      op;         /* kind OP_GROUP: what queue and connections see */
    pool               *p;
    struct pool_group  *next_free, *next_all;
    bool                queued;
    size_t              n, cap, cur;
    struct pool_op    **member;
    PGresult          **res;
};

#define GROUP_OF(o) ((struct pool_group *)(void *)((char *)(o) - offsetof(struct pool_group, op)))

struct pconn {
    pool               *p;
    int                 idx;
    enum conn_st        st;
    enum conn_internal  internal;
    PGconn             *pg;
    int                 fd;
    struct event       *ev_read;    /* EV_PERSIST while connected */
    struct event       *ev_write;   /* one-shot, only while output is pending */
    struct event       *timer;      /* connect timeout / backoff / watchdog */
    int                 backoff_ms;
    int                 syncs;      /* PGRES_PIPELINE_SYNC results still expected */
    size_t              prep_seen;
    uint64_t            up_since;
    bool                with_options;   /* this attempt sent the "options" parameter */
    struct pool_op     *op;         /* user operation in flight */
    pool_tx            *tx;         /* transaction holding the connection */
};

struct pool {
    struct event_base       *base;
    char                    *url;
    char                     options[64];
    int                      size;
    int                      queue_timeout_ms;
    int                      stmt_timeout_ms;
    int                      connect_timeout_s;
    bool                     prepared;
    bool                     no_options;    /* server (PgBouncer) refused "options" */
    bool                     db_ok;         /* last connect attempt succeeded */
    bool                     down_logged;
    const struct pool_stmt *const *stmts;
    size_t                   nstmts;
    struct pconn            *conns;
    int                      nopen, nbusy, nidle, nwaiting;
    struct pool_op          *wait_head, *wait_tail;
    struct pool_op          *done_head, *done_tail;
    struct event            *ev_done, *ev_qtimer, *ev_flush;
    struct pool_group       *open_group;    /* collecting reads: pending flush or queued */
    struct pool_group       *free_groups, *all_groups;
    const struct pool_stmt  *read_key[64];  /* cache of stmt_is_read() by pointer */
    bool                     read_val[64];
    struct of_sb_slot       *sb;
    int                      looping;       /* inside a loop that calls back */
    bool                     dying;         /* pool_destroy called from such a callback */
};

static const struct pool_stmt pool_st_begin    = { "of_begin", "BEGIN", 0 };
static const struct pool_stmt pool_st_commit   = { "of_commit", "COMMIT", 0 };
static const struct pool_stmt pool_st_rollback = { "of_rollback", "ROLLBACK", 0 };
static const struct pool_stmt *const pool_internal_stmts[] = {
    &pool_st_begin, &pool_st_commit, &pool_st_rollback,
};

static void conn_open(struct pconn *c);
static void conn_broken(struct pconn *c, const char *why);
static void conn_release(struct pconn *c);
static void conn_on_read(evutil_socket_t fd, short what, void *arg);
static void conn_on_write(evutil_socket_t fd, short what, void *arg);
static void conn_connect_step(struct pconn *c);
static void pool_free(pool *p);
static void pool_dispatch(pool *p);
static void group_put(pool *p, struct pool_group *g);
static void read_add(pool *p, struct pool_op *op);
static struct pconn *pool_idle_conn(pool *p);
static void conn_start(struct pconn *c, struct pool_op *op);
static bool pool_can_wait(pool *p);
static void queue_push(pool *p, struct pool_op *op);

/* ---- bookkeeping -------------------------------------------------------- */

static void
pool_sb_update(pool *p)
{
    struct of_sb_slot *s = p->sb;
    if (s == NULL)
        return;
    atomic_store_explicit(&s->pool_open, p->nopen, memory_order_relaxed);
    atomic_store_explicit(&s->pool_busy, p->nbusy, memory_order_relaxed);
    atomic_store_explicit(&s->pool_idle, p->nidle, memory_order_relaxed);
    atomic_store_explicit(&s->pool_waiting, p->nwaiting, memory_order_relaxed);
    atomic_store_explicit(&s->db_ok, p->db_ok && p->nopen > 0, memory_order_relaxed);
}

static bool
st_is_open(enum conn_st st)
{
    return st == C_PREPARING || st == C_IDLE || st == C_BUSY;
}

static void
conn_set_state(struct pconn *c, enum conn_st st)
{
    pool *p = c->p;
    p->nopen += (int)st_is_open(st) - (int)st_is_open(c->st);
    p->nbusy += (int)(st == C_BUSY) - (int)(c->st == C_BUSY);
    p->nidle += (int)(st == C_IDLE) - (int)(c->st == C_IDLE);
    c->st = st;
    pool_sb_update(p);
}

static void
conn_timer_ms(struct pconn *c, long ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    event_add(c->timer, &tv);
}

/* The message of the last libpq error on c, on one line. */
static const char *
conn_errmsg(struct pconn *c, char *buf, size_t cap)
{
    const char *msg = c->pg != NULL ? PQerrorMessage(c->pg) : "";
    of_strlcpy(buf, msg != NULL && msg[0] != '\0' ? msg : "(no detail)", cap);
    for (char *s = buf; *s != '\0'; s++)
        if (*s == '\n')
            *s = (s[1] == '\0') ? '\0' : ' ';
    return buf;
}

/* ---- completions -------------------------------------------------------- */

static void
res_fill(struct pool_res *pr, const PGresult *r)
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
        /* Connection exceptions and server shutdown are "database down". */
        if (pr->sqlstate != NULL && (strncmp(pr->sqlstate, "08", 2) == 0
                                     || strncmp(pr->sqlstate, "57P0", 4) == 0))
            pr->rc = OF_UNAVAILABLE;
        return;
    default:
        return;   /* PGRES_PIPELINE_ABORTED: skipped after an earlier failure */
    }
}

static void
op_call_failed(struct pool_op *op, int rc)
{
    struct pool_res pr = { rc, NULL, NULL, NULL };
    switch (op->kind) {
    case OP_QUERY:
        op->cb.q(&pr, op->arg);
        break;
    case OP_BATCH: {
        struct pool_res *out = of_mem_alloc(op->m, (op->n ? op->n : 1) * sizeof(*out));
        for (size_t i = 0; i < op->n; i++)
            out[i] = pr;
        op->cb.b(rc, out, op->n, op->arg);
        break;
    }
    case OP_TX_BEGIN:
        op->cb.t(rc == OF_OK ? op->tx : NULL, &pr, op->arg);
        break;
    case OP_TX_STEP:
    case OP_TX_COMMIT:
        if (rc == OF_ERR && op->kind == OP_TX_COMMIT)
            pr.sqlstate = "25P02";   /* in_failed_sql_transaction: committed nothing */
        op->cb.t(op->tx, &pr, op->arg);
        break;
    case OP_GROUP: {
        struct pool_group *g = GROUP_OF(op);
        for (size_t i = 0; i < g->n && !g->p->dying; i++)
            g->member[i]->cb.q(&pr, g->member[i]->arg);
        group_put(g->p, g);
        break;
    }
    }
}

/* Results already read for an operation that will not complete normally. */
static void
op_clear_results(struct pool_op *op)
{
    if (op->kind == OP_GROUP) {
        struct pool_group *g = GROUP_OF(op);
        for (size_t i = 0; i < g->cur; i++)
            PQclear(g->res[i]);
        g->cur = 0;
        return;
    }
    for (size_t i = 0; i < op->nres; i++)
        PQclear(op->res[i]);
    op->nres = 0;
}

/* Complete op from the event loop later, with no results. */
static void
op_defer(pool *p, struct pool_op *op, int rc)
{
    if (op->kind == OP_GROUP && p->open_group == GROUP_OF(op))
        p->open_group = NULL;        /* closed: later reads start a new group */
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
    p->looping++;
    while (op != NULL && !p->dying) {
        struct pool_op *next = op->next;
        op_call_failed(op, op->rc);
        op = next;
    }
    if (--p->looping == 0 && p->dying)
        pool_free(p);
}

/* A connection finished a user operation: release it (or keep it for the
 * transaction), then call back. Nothing of c or op is touched after the
 * callback: it may start the next step on the same op, or free the arena. */
static void
op_complete(struct pconn *c, struct pool_op *op)
{
    PGresult  *stack[POOL_STACK_RES];
    PGresult **all = stack;
    size_t     nres = op->nres;
    size_t     skip = op->begin ? 1 : 0;
    enum op_kind kind = op->kind;
    void      *arg = op->arg;
    pool_tx   *tx = op->tx;

    if (nres > POOL_STACK_RES && (all = malloc(nres * sizeof(*all))) == NULL)
        of_fatal("malloc failed");
    memcpy(all, op->res, nres * sizeof(*all));

    if (kind == OP_BATCH) {
        size_t n = op->n;
        pool_batch_cb cb = op->cb.b;
        struct pool_res *out = of_mem_alloc(op->m, (n ? n : 1) * sizeof(*out));
        int rc = OF_OK;
        for (size_t i = 0; i < n; i++) {
            res_fill(&out[i], i < nres ? all[i] : NULL);
            if (rc == OF_OK && out[i].rc != OF_OK)
                rc = out[i].rc;
        }
        conn_release(c);
        cb(rc, out, n, arg);
    } else {
        struct pool_res pr;
        res_fill(&pr, skip < nres ? all[skip] : NULL);
        if (kind == OP_QUERY) {
            pool_cb cb = op->cb.q;
            conn_release(c);
            cb(&pr, arg);
        } else {
            pool_tx_cb cb = op->cb.t;
            if (kind == OP_TX_COMMIT) {
                /* COMMIT of an aborted transaction answers "ROLLBACK". With a
                 * statement before it, the statement's result is the answer
                 * and the COMMIT's only has to be there and be a COMMIT. */
                const PGresult *cr = op->commit ? (skip + 1 < nres ? all[skip + 1] : NULL) : pr.res;
                if (pr.rc == OF_OK && (cr == NULL || PQresultStatus(cr) != PGRES_COMMAND_OK ||
                                       strcmp(PQcmdStatus((PGresult *)cr), "COMMIT") != 0)) {
                    pr.rc = OF_ERR;
                    pr.sqlstate = "25P02";
                }
                tx->c = NULL;
                c->tx = NULL;
                conn_release(c);
            }
            cb(tx, &pr, arg);
        }
    }
    for (size_t i = 0; i < nres; i++)
        PQclear(all[i]);
    if (all != stack)
        free(all);
}

/* ---- read groups -------------------------------------------------------- */

static struct pool_group *
group_get(pool *p)
{
    struct pool_group *g = p->free_groups;
    if (g != NULL) {
        p->free_groups = g->next_free;
    } else {
        if ((g = calloc(1, sizeof(*g))) == NULL)
            of_fatal("calloc failed");
        g->p = p;
        g->next_all = p->all_groups;
        p->all_groups = g;
    }
    memset(&g->op, 0, sizeof(g->op));
    g->op.kind = OP_GROUP;
    g->n = g->cur = 0;
    g->queued = false;
    return g;
}

static void
group_put(pool *p, struct pool_group *g)
{
    if (p->open_group == g)
        p->open_group = NULL;
    g->n = g->cur = 0;
    g->next_free = p->free_groups;
    p->free_groups = g;
}

static void
group_add(pool *p, struct pool_group *g, struct pool_op *op)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        struct pool_op **mv = realloc(g->member, cap * sizeof(*mv));
        if (mv == NULL)
            of_fatal("realloc failed");
        g->member = mv;
        PGresult **rv = realloc(g->res, cap * sizeof(*rv));
        if (rv == NULL)
            of_fatal("realloc failed");
        g->res = rv;
        g->cap = cap;
    }
    g->member[g->n++] = op;
    if (g->queued) {
        p->nwaiting++;
        pool_sb_update(p);
    }
}

/* The group's sync arrived. Members after a failed one were skipped by the
 * server (PGRES_PIPELINE_ABORTED): they never ran, so they go again in the
 * next group. Reads before it are valid results. */
static void
group_complete(struct pconn *c, struct pool_group *g)
{
    pool *p = c->p;
    conn_release(c);
    p->looping++;
    for (size_t i = 0; i < g->n; i++) {
        struct pool_op *op = g->member[i];
        PGresult *r = i < g->cur ? g->res[i] : NULL;
        if (p->dying) {
            PQclear(r);
            continue;
        }
        if (r == NULL || PQresultStatus(r) == PGRES_PIPELINE_ABORTED) {
            PQclear(r);
            read_add(p, op);
            continue;
        }
        struct pool_res pr;
        res_fill(&pr, r);
        op->cb.q(&pr, op->arg);
        PQclear(r);
    }
    group_put(p, g);
    if (--p->looping == 0 && p->dying)
        pool_free(p);
}

static void
pool_on_flush(evutil_socket_t fd, short what, void *arg)
{
    pool *p = arg;
    struct pool_group *g = p->open_group;
    OF_UNUSED(fd);
    OF_UNUSED(what);

    if (g == NULL || g->queued)
        return;
    struct pconn *c = p->wait_head == NULL ? pool_idle_conn(p) : NULL;
    if (c != NULL) {
        conn_start(c, &g->op);
        return;
    }
    if (!pool_can_wait(p)) {
        op_defer(p, &g->op, OF_UNAVAILABLE);
        return;
    }
    queue_push(p, &g->op);
}

/* Join the group of this loop pass (made, and its flush scheduled, by the
 * first read of the pass; while it waits for a connection it keeps taking
 * newcomers, so a busy pool sends bigger groups). */
static void
read_add(pool *p, struct pool_op *op)
{
    struct pool_group *g = p->open_group;
    if (g == NULL) {
        g = group_get(p);
        p->open_group = g;
        event_active(p->ev_flush, 0, 1);
    }
    group_add(p, g, op);
}

/* Is the next FOR-clause word a locking one (UPDATE, SHARE, NO KEY, KEY SHARE)? */
static bool
sql_has_locking_clause(const char *s)
{
    for (const char *f = s; (f = strcasestr(f, "for")) != NULL; f += 3) {
        bool left = f == s || strchr(" \t\r\n)", f[-1]) != NULL;
        if (!left || strchr(" \t\r\n", f[3]) == NULL || f[3] == '\0')
            continue;
        const char *w = f + 3;
        while (*w == ' ' || *w == '\t' || *w == '\r' || *w == '\n')
            w++;
        if (strncasecmp(w, "update", 6) == 0 || strncasecmp(w, "share", 5) == 0
            || strncasecmp(w, "no", 2) == 0 || strncasecmp(w, "key", 3) == 0)
            return true;
    }
    return false;
}

/* May this statement share a round trip (and an implicit transaction) with
 * other requests' reads? Plain SELECTs without side effects only. */
static bool
sql_is_plain_read(const char *sql)
{
    static const char *const side_effects[] = {
        "nextval", "setval", "pg_advisory", "pg_sleep", "pg_terminate", "pg_cancel",
        "set_config", "pg_notify", "txid_current", "lo_",
    };
    while (*sql == ' ' || *sql == '\t' || *sql == '\r' || *sql == '\n')
        sql++;
    if (strncasecmp(sql, "select", 6) != 0 || strchr(" \t\r\n", sql[6]) == NULL || sql[6] == '\0')
        return false;
    for (size_t i = 0; i < OF_ARRAY_LEN(side_effects); i++)
        if (strcasestr(sql, side_effects[i]) != NULL)
            return false;
    return !sql_has_locking_clause(sql);
}

static bool
pool_stmt_is_read(pool *p, const struct pool_stmt *st)
{
    size_t h = ((uintptr_t)st >> 4) & 63u;
    if (p->read_key[h] != st) {
        p->read_key[h] = st;
        p->read_val[h] = sql_is_plain_read(st->sql);
    }
    return p->read_val[h];
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
    if (op->kind == OP_GROUP) {
        GROUP_OF(op)->queued = false;
        p->nwaiting -= (int)GROUP_OF(op)->n;
    } else {
        p->nwaiting--;
    }
    pool_sb_update(p);
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

static void
queue_copy_params(struct of_mem *m, const struct pool_stmt *st, const char *const **params)
{
    if (*params == NULL || st->nparams == 0)
        return;
    const char **cp = of_mem_alloc(m, (size_t)st->nparams * sizeof(*cp));
    for (int i = 0; i < st->nparams; i++)
        cp[i] = (*params)[i] != NULL ? of_mem_strdup(m, (*params)[i]) : NULL;
    *params = cp;
}

/* The caller's params must outlive the wait: copy them into its arena. */
static void
queue_push(pool *p, struct pool_op *op)
{
    int weight = 1;
    if (op->kind == OP_GROUP) {
        /* members' params were copied when they joined */
        struct pool_group *g = GROUP_OF(op);
        g->queued = true;
        weight = (int)g->n;
        op->deadline_ns = g->member[0]->deadline_ns;
    } else if (op->kind == OP_QUERY) {
        queue_copy_params(op->m, op->st1, &op->params1);
    } else if (op->kind == OP_BATCH && op->params != NULL) {
        const char *const **pv = of_mem_alloc(op->m, op->n * sizeof(*pv));
        for (size_t i = 0; i < op->n; i++) {
            pv[i] = op->params[i];
            queue_copy_params(op->m, op->sts[i], &pv[i]);
        }
        op->params = (const char *const *const *)pv;
    }
    if (op->kind != OP_GROUP)
        op->deadline_ns = of_mono_ns() + (uint64_t)p->queue_timeout_ms * 1000000u;
    op->next = NULL;
    op->prev = p->wait_tail;
    if (p->wait_tail != NULL)
        p->wait_tail->next = op;
    else
        p->wait_head = op;
    p->wait_tail = op;
    p->nwaiting += weight;
    pool_sb_update(p);
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
    struct pool_op *expired = NULL, **tail = &expired;

    /* Collect first, call back after: callbacks may queue new work. */
    for (struct pool_op *op = p->wait_head, *next; op != NULL; op = next) {
        next = op->next;
        if (op->kind == OP_GROUP) {
            struct pool_group *g = GROUP_OF(op);
            size_t k = 0;
            while (k < g->n && g->member[k]->deadline_ns <= now) {
                *tail = g->member[k++];
                tail = &(*tail)->next;
                *tail = NULL;
            }
            if (k == 0)
                continue;
            memmove(g->member, g->member + k, (g->n - k) * sizeof(*g->member));
            g->n -= k;
            p->nwaiting -= (int)k;
            if (g->n > 0) {
                op->deadline_ns = g->member[0]->deadline_ns;
                continue;
            }
            queue_unlink(p, op);
            group_put(p, g);
            continue;
        }
        if (op->deadline_ns > now)
            continue;
        queue_unlink(p, op);
        *tail = op;
        tail = &op->next;
    }
    pool_sb_update(p);
    queue_arm(p);
    p->looping++;
    for (struct pool_op *op = expired, *next; op != NULL && !p->dying; op = next) {
        next = op->next;
        op_call_failed(op, OF_UNAVAILABLE);
    }
    if (--p->looping == 0 && p->dying)
        pool_free(p);
}

/* Can a new operation reasonably wait for a connection? Not when every
 * connection is down and the last attempt to open one failed. */
static bool
pool_can_wait(pool *p)
{
    if (p->db_ok || p->nopen > 0)
        return true;
    for (int i = 0; i < p->size; i++)
        if (p->conns[i].st == C_CONNECTING)
            return true;
    return false;
}

static void
pool_fail_waiters_if_hopeless(pool *p)
{
    if (pool_can_wait(p))
        return;
    while (p->wait_head != NULL) {
        struct pool_op *op = p->wait_head;
        queue_unlink(p, op);
        op_defer(p, op, OF_UNAVAILABLE);
    }
    queue_arm(p);
}

/* ---- sending ------------------------------------------------------------ */

static int
conn_send_stmt(struct pconn *c, const struct pool_stmt *st, const char *const *params)
{
    if (c->p->prepared)
        return PQsendQueryPrepared(c->pg, st->name, st->nparams, params, NULL, NULL, 0);
    return PQsendQueryParams(c->pg, st->sql, st->nparams, NULL, params, NULL, NULL, 0);
}

static int
conn_sync(struct pconn *c)
{
    if (!PQpipelineSync(c->pg))
        return -1;
    c->syncs++;
    return 0;
}

/* Push pending output; results PQflush pulled into libpq's buffer leave the
 * socket unreadable, so have them processed on the next loop turn. */
static int
conn_flush(struct pconn *c)
{
    int r = PQflush(c->pg);
    if (r < 0)
        return -1;
    if (r == 1)
        event_add(c->ev_write, NULL);
    if (c->syncs > 0 && !PQisBusy(c->pg))
        event_active(c->ev_read, EV_READ, 1);
    return 0;
}

static void
conn_arm_watchdog(struct pconn *c, size_t nstmts)
{
    pool *p = c->p;
    if (p->stmt_timeout_ms <= 0)
        return;
    conn_timer_ms(c, (long)p->stmt_timeout_ms * (long)(nstmts ? nstmts : 1) + POOL_WATCHDOG_MARGIN_MS);
}

static int
conn_send_group(struct pconn *c, struct pool_group *g)
{
    g->cur = 0;
    for (size_t i = 0; i < g->n; i++)
        if (!conn_send_stmt(c, g->member[i]->st1, g->member[i]->params1))
            return -1;
    if (conn_sync(c) != 0 || conn_flush(c) != 0)
        return -1;
    conn_arm_watchdog(c, g->n);
    return 0;
}

static int
conn_send_op(struct pconn *c, struct pool_op *op)
{
    c->op = op;
    if (op->kind == OP_GROUP)
        return conn_send_group(c, GROUP_OF(op));
    op->nres = 0;
    if (op->begin && !conn_send_stmt(c, &pool_st_begin, NULL))
        return -1;
    if (op->kind == OP_BATCH) {
        for (size_t i = 0; i < op->n; i++) {
            if (!conn_send_stmt(c, op->sts[i], op->params != NULL ? op->params[i] : NULL))
                return -1;
            if (!op->atomic && i + 1 < op->n && conn_sync(c) != 0)
                return -1;
        }
    } else if (!conn_send_stmt(c, op->st1, op->params1)) {
        return -1;
    }
    if (op->commit && !conn_send_stmt(c, &pool_st_commit, NULL))
        return -1;
    if (conn_sync(c) != 0 || conn_flush(c) != 0)
        return -1;
    conn_arm_watchdog(c, op->nsent);
    return 0;
}

static int
conn_send_internal(struct pconn *c, enum conn_internal what)
{
    c->internal = what;
    if (!conn_send_stmt(c, &pool_st_rollback, NULL) || conn_sync(c) != 0 || conn_flush(c) != 0)
        return -1;
    conn_arm_watchdog(c, 1);
    return 0;
}

/* Give c (idle) the operation op. */
static void
conn_start(struct pconn *c, struct pool_op *op)
{
    if (op->kind == OP_GROUP) {
        /* Sent now: closed to newcomers; members whose client left drop out. */
        struct pool_group *g = GROUP_OF(op);
        size_t k = 0;
        if (c->p->open_group == g)
            c->p->open_group = NULL;
        for (size_t i = 0; i < g->n; i++) {
            if (g->member[i]->m->abandoned)
                op_defer(c->p, g->member[i], OF_UNAVAILABLE);
            else
                g->member[k++] = g->member[i];
        }
        g->n = k;
        if (k == 0) {
            group_put(c->p, g);
            return;
        }
    }
    conn_set_state(c, C_BUSY);
    if (op->kind == OP_TX_BEGIN) {
        op->tx->c = c;
        c->tx = op->tx;
        op_defer(c->p, op, OF_OK);
        return;
    }
    if (conn_send_op(c, op) != 0)
        conn_broken(c, "send failed");
}

static struct pconn *
pool_idle_conn(pool *p)
{
    if (p->nidle == 0)
        return NULL;
    for (int i = 0; i < p->size; i++)
        if (p->conns[i].st == C_IDLE)
            return &p->conns[i];
    return NULL;
}

static void
pool_submit(pool *p, struct pool_op *op)
{
    struct pconn *c = pool_idle_conn(p);
    if (c != NULL && p->wait_head == NULL) {
        conn_start(c, op);
        return;
    }
    if (!pool_can_wait(p)) {
        op_defer(p, op, OF_UNAVAILABLE);
        return;
    }
    queue_push(p, op);
}

static void
pool_dispatch(pool *p)
{
    struct pconn *c;
    while (p->wait_head != NULL && (c = pool_idle_conn(p)) != NULL) {
        struct pool_op *op = p->wait_head;
        queue_unlink(p, op);
        if (op->kind != OP_GROUP && op->m->abandoned) {
            op_defer(p, op, OF_UNAVAILABLE);
            continue;
        }
        conn_start(c, op);
    }
}

/* The connection's operation is over: reuse it, after a ROLLBACK if it was
 * left inside a transaction. */
static void
conn_release(struct pconn *c)
{
    c->op = NULL;
    c->tx = NULL;
    event_del(c->timer);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        conn_broken(c, "connection bad after the operation");
        return;
    }
    PGTransactionStatusType ts = PQtransactionStatus(c->pg);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
        if (conn_send_internal(c, INT_ROLLBACK) != 0)
            conn_broken(c, "rollback send failed");
        return;
    }
    if (ts != PQTRANS_IDLE) {
        conn_broken(c, "connection not idle after the operation");
        return;
    }
    conn_set_state(c, C_IDLE);
    pool_dispatch(c->p);
}

/* ---- reading ------------------------------------------------------------ */

static void
conn_store(struct pconn *c, PGresult *r)
{
    struct pool_op *op = c->op;
    if (op != NULL && op->kind == OP_GROUP) {
        struct pool_group *g = GROUP_OF(op);
        if (g->cur < g->n)
            g->res[g->cur++] = r;
        else
            PQclear(r);
        return;
    }
    if (op != NULL) {
        if (op->nres < op->nsent)
            op->res[op->nres++] = r;
        else
            PQclear(r);
        return;
    }
    if (c->internal == INT_PREPARE && PQresultStatus(r) == PGRES_FATAL_ERROR) {
        pool *p = c->p;
        size_t i = c->prep_seen;
        const char *name = i < p->nstmts ? p->stmts[i]->name
                         : pool_internal_stmts[i - p->nstmts]->name;
        of_log_error("preparing statement %s failed: %s", name, PQresultErrorMessage(r));
    }
    c->prep_seen++;
    PQclear(r);
}

static void
conn_ready(struct pconn *c)
{
    event_del(c->timer);
    c->internal = INT_NONE;
    conn_set_state(c, C_IDLE);
    pool_dispatch(c->p);
}

/* All syncs of the current work arrived. */
static void
conn_complete(struct pconn *c)
{
    event_del(c->timer);
    if (c->internal == INT_PREPARE) {
        conn_ready(c);
        return;
    }
    if (c->internal == INT_ROLLBACK) {
        c->internal = INT_NONE;
        conn_release(c);
        return;
    }
    struct pool_op *op = c->op;
    c->op = NULL;
    if (op == NULL) {                 /* its transaction was rolled back mid-step */
        conn_release(c);
        return;
    }
    if (op->kind == OP_GROUP) {
        group_complete(c, GROUP_OF(op));
        return;
    }
    op_complete(c, op);
}

/* Read every result libpq has buffered. In pipeline mode PQgetResult gives
 * NULL between statements and nothing after PGRES_PIPELINE_SYNC: count the
 * syncs and stop at zero. */
static void
conn_drain(struct pconn *c)
{
    int nulls = 0;
    while (c->syncs > 0) {
        if (PQisBusy(c->pg))
            break;
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL) {
            if (++nulls > 1)
                break;
            continue;
        }
        nulls = 0;
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            if (--c->syncs == 0) {
                conn_complete(c);
                return;
            }
            continue;
        }
        conn_store(c, r);
    }
    if (PQstatus(c->pg) != CONNECTION_OK)
        conn_broken(c, "connection bad");
}

static void
conn_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct pconn *c = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);

    if (c->st == C_CONNECTING) {
        conn_connect_step(c);
        return;
    }
    if (c->pg == NULL)
        return;
    if (!PQconsumeInput(c->pg)) {
        conn_broken(c, "read failed");
        return;
    }
    if (c->syncs == 0) {
        /* Nothing in flight: an idle (or transaction-held) connection woke
         * up. Only a close or a server notice can be waiting. */
        if (PQstatus(c->pg) != CONNECTION_OK)
            conn_broken(c, "closed while idle");
        return;
    }
    conn_drain(c);
}

static void
conn_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct pconn *c = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);

    if (c->st == C_CONNECTING) {
        conn_connect_step(c);
        return;
    }
    if (c->pg != NULL && conn_flush(c) != 0)
        conn_broken(c, "write failed");
}

/* ---- connecting --------------------------------------------------------- */

static void
conn_free_events(struct pconn *c)
{
    if (c->ev_read != NULL)
        event_free(c->ev_read);
    if (c->ev_write != NULL)
        event_free(c->ev_write);
    c->ev_read = c->ev_write = NULL;
    c->fd = -1;
}

static void
conn_close(struct pconn *c)
{
    conn_free_events(c);
    if (c->pg != NULL)
        PQfinish(c->pg);
    c->pg = NULL;
    c->syncs = 0;
    c->internal = INT_NONE;
    event_del(c->timer);
}

/* libpq may switch sockets while connecting (next host, SSL retry). */
static int
conn_bind_socket(struct pconn *c)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return -1;
    if (fd == c->fd && c->ev_read != NULL)
        return 0;
    conn_free_events(c);
    c->fd = fd;
    c->ev_read = event_new(c->p->base, fd, EV_READ | EV_PERSIST, conn_on_read, c);
    c->ev_write = event_new(c->p->base, fd, EV_WRITE, conn_on_write, c);
    if (c->ev_read == NULL || c->ev_write == NULL)
        of_fatal("event_new failed");
    return 0;
}

static void
conn_schedule(struct pconn *c, int delay_ms)
{
    conn_set_state(c, C_BACKOFF);
    conn_timer_ms(c, delay_ms);
}

static int
conn_next_backoff(struct pconn *c)
{
    c->backoff_ms = c->backoff_ms <= 0 ? POOL_BACKOFF_MIN_MS
                  : c->backoff_ms >= POOL_BACKOFF_MAX_MS / 2 ? POOL_BACKOFF_MAX_MS
                  : c->backoff_ms * 2;
    return c->backoff_ms;
}

static void
conn_connect_failed(struct pconn *c, const char *why)
{
    pool *p = c->p;
    char  msg[512];

    conn_errmsg(c, msg, sizeof(msg));
    /* PgBouncer (1.18, no ignore_startup_parameters = options) refuses the
     * startup packet. The pool's connections dial at once, so several may be
     * refused before the first refusal flips no_options: each one that sent
     * "options" just redials without it; only the first one says so. */
    if (c->with_options && strstr(msg, "unsupported startup parameter") != NULL) {
        if (!p->no_options)
            of_log_warn("database refused the options startup parameter (PgBouncer?): "
                        "connecting without it; statement_timeout must come from the role");
        p->no_options = true;
        conn_close(c);
        conn_schedule(c, 0);
        return;
    }
    if (p->db_ok || !p->down_logged)
        of_log_warn("cannot connect to PostgreSQL (%s): %s", why, msg);
    else
        of_log_debug("cannot connect to PostgreSQL (%s): %s", why, msg);
    p->down_logged = true;
    p->db_ok = false;
    conn_close(c);
    conn_schedule(c, conn_next_backoff(c));
    pool_fail_waiters_if_hopeless(p);
}

static void
conn_connected(struct pconn *c)
{
    pool *p = c->p;

    if (conn_bind_socket(c) != 0 || PQsetnonblocking(c->pg, 1) != 0 || !PQenterPipelineMode(c->pg)) {
        conn_connect_failed(c, "setup");
        return;
    }
    event_del(c->ev_write);
    event_add(c->ev_read, NULL);
    if (!p->db_ok && p->down_logged)
        of_log_info("PostgreSQL reachable again");
    p->db_ok = true;
    p->down_logged = false;
    c->up_since = of_mono_ns();
    c->prep_seen = 0;
    event_del(c->timer);

    /* Peers waiting out a backoff: the database is back, try them now. */
    for (int i = 0; i < p->size; i++)
        if (p->conns[i].st == C_BACKOFF)
            conn_timer_ms(&p->conns[i], 0);

    if (!p->prepared) {
        conn_ready(c);
        return;
    }
    conn_set_state(c, C_PREPARING);
    c->internal = INT_PREPARE;
    size_t total = p->nstmts + OF_ARRAY_LEN(pool_internal_stmts);
    for (size_t i = 0; i < total; i++) {
        const struct pool_stmt *st = i < p->nstmts ? p->stmts[i]
                                   : pool_internal_stmts[i - p->nstmts];
        if (!PQsendPrepare(c->pg, st->name, st->sql, st->nparams, NULL) || conn_sync(c) != 0) {
            conn_broken(c, "prepare send failed");
            return;
        }
    }
    if (conn_flush(c) != 0) {
        conn_broken(c, "prepare flush failed");
        return;
    }
    conn_timer_ms(c, (long)(p->connect_timeout_s > 0 ? p->connect_timeout_s : 10) * 1000);
}

static void
conn_connect_step(struct pconn *c)
{
    PostgresPollingStatusType ps = PQconnectPoll(c->pg);
    if (ps == PGRES_POLLING_FAILED) {
        conn_connect_failed(c, "connect");
        return;
    }
    if (ps == PGRES_POLLING_OK) {
        conn_connected(c);
        return;
    }
    if (conn_bind_socket(c) != 0) {
        conn_connect_failed(c, "no socket");
        return;
    }
    if (ps == PGRES_POLLING_READING) {
        event_del(c->ev_write);
        event_add(c->ev_read, NULL);
    } else {
        event_del(c->ev_read);
        event_add(c->ev_write, NULL);
    }
}

static void
pool_notice(void *arg, const PGresult *r)
{
    OF_UNUSED(arg);
    of_log_debug("PostgreSQL notice: %s", PQresultErrorMessage(r));
}

static void
conn_open(struct pconn *c)
{
    pool *p = c->p;
    const char *keys[4], *vals[4];
    int k = 0;

    keys[k] = "dbname";
    vals[k++] = p->url;
    c->with_options = !p->no_options && p->options[0] != '\0';
    if (c->with_options) {
        keys[k] = "options";
        vals[k++] = p->options;
    }
    keys[k] = "fallback_application_name";
    vals[k++] = "orderflow";
    keys[k] = NULL;
    vals[k] = NULL;

    c->pg = PQconnectStartParams(keys, vals, 1);
    if (c->pg == NULL)
        of_fatal("PQconnectStartParams: out of memory");
    conn_set_state(c, C_CONNECTING);
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_connect_failed(c, "start");
        return;
    }
    PQsetNoticeReceiver(c->pg, pool_notice, NULL);
    if (p->connect_timeout_s > 0)
        conn_timer_ms(c, (long)p->connect_timeout_s * 1000);
    if (conn_bind_socket(c) != 0) {
        conn_connect_failed(c, "no socket");
        return;
    }
    event_add(c->ev_write, NULL);   /* libpq: start as if POLLING_WRITING */
}

/* A connection that was up failed: fail what it carried and reopen it. */
static void
conn_broken(struct pconn *c, const char *why)
{
    pool *p = c->p;
    char  msg[512];

    bool was_up = st_is_open(c->st);
    of_log_warn("PostgreSQL connection %d lost (%s): %s", c->idx, why, conn_errmsg(c, msg, sizeof(msg)));
    struct pool_op *op = c->op;
    c->op = NULL;
    if (c->tx != NULL)
        c->tx->c = NULL;
    c->tx = NULL;
    if (op != NULL) {
        op_clear_results(op);
        op_defer(p, op, OF_UNAVAILABLE);
    }
    conn_close(c);
    bool quick = was_up && of_mono_ns() - c->up_since > POOL_QUICK_BREAK_NS;
    if (quick)
        c->backoff_ms = 0;
    conn_schedule(c, quick ? 0 : conn_next_backoff(c));
    pool_fail_waiters_if_hopeless(p);
}

static void
conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct pconn *c = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);

    switch (c->st) {
    case C_BACKOFF:
    case C_DOWN:
        conn_open(c);
        break;
    case C_CONNECTING:
        conn_connect_failed(c, "connect timeout");
        break;
    case C_PREPARING:
    case C_BUSY:
        if (c->syncs > 0)
            conn_broken(c, "no answer in time (watchdog)");
        break;
    case C_IDLE:
        break;
    }
}

/* ---- public API --------------------------------------------------------- */

pool *
pool_create(struct event_base *base, const struct cfg_database *cfg,
            const struct pool_stmt *const *stmts, size_t nstmts)
{
    pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->base = base;
    p->size = cfg->pool_size > 0 ? cfg->pool_size : 1;
    p->queue_timeout_ms = cfg->queue_timeout_ms > 0 ? cfg->queue_timeout_ms : 0;
    p->stmt_timeout_ms = cfg->statement_timeout_ms;
    p->connect_timeout_s = cfg->connect_timeout;
    p->prepared = cfg->prepared_statements;
    p->stmts = stmts;
    p->nstmts = nstmts;
    if (p->stmt_timeout_ms > 0)
        snprintf(p->options, sizeof(p->options), "-c statement_timeout=%d", p->stmt_timeout_ms);
    if (cfg->url != NULL && cfg->url[0] != '\0' && (p->url = strdup(cfg->url)) == NULL)
        goto fail;
    p->conns = calloc((size_t)p->size, sizeof(*p->conns));
    p->ev_done = event_new(base, -1, 0, pool_on_done, p);
    p->ev_qtimer = evtimer_new(base, pool_on_qtimer, p);
    p->ev_flush = event_new(base, -1, 0, pool_on_flush, p);
    if (p->conns == NULL || p->ev_done == NULL || p->ev_qtimer == NULL || p->ev_flush == NULL)
        goto fail;
    for (int i = 0; i < p->size; i++) {
        struct pconn *c = &p->conns[i];
        c->p = p;
        c->idx = i;
        c->fd = -1;
        if ((c->timer = evtimer_new(base, conn_on_timer, c)) == NULL)
            goto fail;
    }
    for (size_t i = 0; i < nstmts; i++)
        of_log_debug("statement %s: %s", stmts[i]->name,
                     sql_is_plain_read(stmts[i]->sql) ? "plain read, grouped per loop pass" : "own round trip");
    if (p->url == NULL) {
        of_log_error("no database URL (database.url / ORDERFLOW_DATABASE_URL): every query fails");
        return p;
    }
    for (int i = 0; i < p->size; i++)
        conn_open(&p->conns[i]);
    return p;
fail:
    pool_destroy(p);
    return NULL;
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
            struct pconn *c = &p->conns[i];
            if (c->tx != NULL)
                c->tx->c = NULL;
            if (c->op != NULL)
                op_clear_results(c->op);
            if (c->timer != NULL)
                conn_close(c);
            if (c->timer != NULL)
                event_free(c->timer);
        }
        free(p->conns);
    }
    if (p->ev_done != NULL)
        event_free(p->ev_done);
    if (p->ev_qtimer != NULL)
        event_free(p->ev_qtimer);
    if (p->ev_flush != NULL)
        event_free(p->ev_flush);
    while (p->all_groups != NULL) {
        struct pool_group *g = p->all_groups;
        p->all_groups = g->next_all;
        free(g->member);
        free(g->res);
        free(g);
    }
    if (p->sb != NULL) {
        p->nopen = p->nbusy = p->nidle = p->nwaiting = 0;
        p->db_ok = false;
        pool_sb_update(p);
    }
    free(p->url);
    free(p);
}

void
pool_set_scoreboard(pool *p, struct of_sb_slot *slot)
{
    p->sb = slot;
    pool_sb_update(p);
}

void
pool_get_stats(pool *p, struct pool_stats *out)
{
    out->open = p->nopen;
    out->busy = p->nbusy;
    out->idle = p->nidle;
    out->waiting = p->nwaiting;
    out->db_ok = p->db_ok && p->nopen > 0;
}

bool
pool_ready(pool *p)
{
    return p->db_ok && p->nopen > 0;
}

bool
pool_settled(pool *p)
{
    return (p->db_ok && p->nopen > 0) || p->down_logged;
}

static struct pool_op *
op_new(struct of_mem *m, enum op_kind kind)
{
    struct pool_op *op = of_mem_alloc(m, sizeof(*op));
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->m = m;
    op->res = op->res_inline;
    return op;
}

void
pool_query(pool *p, struct of_mem *m, const struct pool_stmt *st,
           const char *const *params, pool_cb cb, void *arg)
{
    struct pool_op *op = op_new(m, OP_QUERY);
    op->n = 1;
    op->st1 = st;
    op->params1 = params;
    op->atomic = true;
    op->nsent = 1;
    op->cb.q = cb;
    op->arg = arg;
    if (pool_stmt_is_read(p, st)) {
        if (p->open_group == NULL && p->nidle == 0 && !pool_can_wait(p)) {
            op_defer(p, op, OF_UNAVAILABLE);
            return;
        }
        /* sent on a later loop turn: params must be ours, deadline starts now */
        queue_copy_params(m, st, &op->params1);
        op->deadline_ns = of_mono_ns() + (uint64_t)p->queue_timeout_ms * 1000000u;
        read_add(p, op);
        return;
    }
    pool_submit(p, op);
}

void
pool_batch(pool *p, struct of_mem *m, size_t n, const struct pool_stmt *const *sts,
           const char *const *const *params, bool atomic, pool_batch_cb cb, void *arg)
{
    struct pool_op *op = op_new(m, OP_BATCH);
    op->n = n;
    op->sts = sts;
    op->params = params;
    op->atomic = atomic;
    op->nsent = n;
    if (n > POOL_INLINE_RES)
        op->res = of_mem_alloc(m, n * sizeof(*op->res));
    op->cb.b = cb;
    op->arg = arg;
    if (n == 0) {
        op_defer(p, op, OF_OK);
        return;
    }
    pool_submit(p, op);
}

void
pool_tx_begin(pool *p, struct of_mem *m, pool_tx_cb cb, void *arg)
{
    pool_tx *tx = of_mem_alloc(m, sizeof(*tx));
    memset(tx, 0, sizeof(*tx));
    tx->p = p;
    tx->m = m;
    tx->op.kind = OP_TX_BEGIN;
    tx->op.m = m;
    tx->op.res = tx->op.res_inline;
    tx->op.tx = tx;
    tx->op.cb.t = cb;
    tx->op.arg = arg;
    pool_submit(p, &tx->op);
}

/* Reset tx->op for the next step. */
static struct pool_op *
tx_step(pool_tx *tx, enum op_kind kind, const struct pool_stmt *st,
        const char *const *params, pool_tx_cb cb, void *arg)
{
    struct pool_op *op = &tx->op;
    op->kind = kind;
    op->n = 1;
    op->st1 = st;
    op->params1 = params;
    op->atomic = true;
    op->begin = false;
    op->commit = false;
    op->nsent = 1;
    op->nres = 0;
    op->res = op->res_inline;
    op->cb.t = cb;
    op->arg = arg;
    op->next = op->prev = NULL;
    return op;
}

/* Give the connection back (rolling back whatever is open) and forget it. */
static void
tx_detach(pool_tx *tx)
{
    struct pconn *c = tx->c;
    if (c == NULL)
        return;
    tx->c = NULL;
    c->tx = NULL;
    if (c->op != NULL) {
        /* A step is still in flight: drop its callback, roll back after it. */
        of_log_error("pool: transaction ended while a statement was in flight");
        op_clear_results(c->op);
        c->op = NULL;
        c->internal = INT_ROLLBACK;
        return;
    }
    conn_release(c);
}

/* A step while another is in flight is a caller bug: fail the new one only. */
static bool
tx_step_in_flight(pool_tx *tx, pool_tx_cb cb, void *arg)
{
    if (tx->c == NULL || tx->c->op == NULL)
        return false;
    of_log_error("pool: transaction step requested while another is in flight");
    /* tx->op is busy: report through a fresh op from the arena. */
    struct pool_op *op = of_mem_alloc(tx->m, sizeof(*op));
    memset(op, 0, sizeof(*op));
    op->kind = OP_TX_STEP;
    op->m = tx->m;
    op->tx = tx;
    op->cb.t = cb;
    op->arg = arg;
    op_defer(tx->p, op, OF_ERR);
    return true;
}

/* One step of a transaction: BEGIN (first step only), the statement, and
 * with commit a COMMIT after it, all in one round trip. */
static void
tx_send_step(pool_tx *tx, const struct pool_stmt *st, const char *const *params,
             bool commit, pool_tx_cb cb, void *arg)
{
    if (tx_step_in_flight(tx, cb, arg))
        return;
    struct pool_op *op = tx_step(tx, commit ? OP_TX_COMMIT : OP_TX_STEP, st, params, cb, arg);
    struct pconn *c = tx->c;

    if (c == NULL) {
        op_defer(tx->p, op, OF_UNAVAILABLE);
        return;
    }
    if (tx->m->abandoned) {
        tx_detach(tx);
        op_defer(tx->p, op, OF_UNAVAILABLE);
        return;
    }
    op->begin = !tx->begun;
    op->commit = commit;
    op->nsent = (op->begin ? 2 : 1) + (commit ? 1 : 0);
    tx->begun = true;
    if (conn_send_op(c, op) != 0)
        conn_broken(c, "send failed");
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
    if (tx_step_in_flight(tx, cb, arg))
        return;
    struct pool_op *op = tx_step(tx, OP_TX_COMMIT, &pool_st_commit, NULL, cb, arg);
    struct pconn *c = tx->c;

    if (c == NULL) {
        op_defer(tx->p, op, OF_UNAVAILABLE);
        return;
    }
    if (tx->m->abandoned) {
        tx_detach(tx);
        op_defer(tx->p, op, OF_UNAVAILABLE);
        return;
    }
    if (!tx->begun || PQtransactionStatus(c->pg) == PQTRANS_INERROR) {
        /* Nothing to commit, or nothing that can be: answer without a round trip. */
        int rc = tx->begun ? OF_ERR : OF_OK;
        tx_detach(tx);
        op_defer(tx->p, op, rc);
        return;
    }
    if (conn_send_op(c, op) != 0)
        conn_broken(c, "send failed");
}

void
pool_tx_query_commit(pool_tx *tx, const struct pool_stmt *st, const char *const *params,
                     pool_tx_cb cb, void *arg)
{
    tx_send_step(tx, st, params, true, cb, arg);
}

void
pool_tx_rollback(pool_tx *tx)
{
    tx_detach(tx);
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
