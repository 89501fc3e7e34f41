/*
 * pgconn.c -- one PostgreSQL connection of the pool (contract: pgconn.h).
 *
 * Every connection lives in libpq pipeline mode from the moment it is up. A
 * job is a list of statements followed by one PQpipelineSync; its results
 * are read until the sync arrives; only then does the job complete, so
 * results are always drained before a connection is reused.
 *
 * PgBouncer in transaction mode (tests/e2e/test_pgbouncer.py): with
 * prepared_statements = false nothing is prepared and every statement goes
 * out unnamed (PQsendQueryParams); each sync ends a transaction PgBouncer may
 * give to another server connection, and nothing here relies on session
 * state between syncs. A flight with ONE sync is safe through 1.18 at any
 * size; several syncs in one flight (the connect-time prepares) are not:
 * PgBouncer may switch server connections between them mid-stream (seen:
 * "invalid frontend message type", hangs). Every job is one sync.
 * statement_timeout is sent as the "options" startup parameter; a server
 * refusing it ("unsupported startup parameter") makes the pool warn once and
 * dial without it from then on.
 */
#include "store/pgconn.h"
#include "store/pool_int.h"
#include "common/log.h"
#include "common/util.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define PGC_BACKOFF_MIN_MS     100
#define PGC_BACKOFF_MAX_MS     5000
#define PGC_WATCHDOG_MARGIN_MS 2000
#define PGC_QUICK_BREAK_NS     1000000000ull  /* up for less than this: back off */
#define PGC_STANDBY_RETRY_NS   5000000000ull  /* a replica pool on a primary looks again */

const struct pool_stmt pgconn_st_begin  = { "of_begin", "BEGIN", 0, 0 };
const struct pool_stmt pgconn_st_commit = { "of_commit", "COMMIT", 0, 0 };
static const struct pool_stmt pgconn_st_rollback = { "of_rollback", "ROLLBACK", 0, 0 };
static const struct pool_stmt *const pgconn_internal_stmts[] = {
    &pgconn_st_begin, &pgconn_st_commit, &pgconn_st_rollback,
};

static void pgconn_broken(struct pgconn *c, const char *why);
static void pgconn_connect_step(struct pgconn *c);
static void pgconn_close(struct pgconn *c);
static void pgconn_schedule(struct pgconn *c, int delay_ms);

/* ---- state -------------------------------------------------------------- */

static void
pgconn_set_state(struct pgconn *c, enum pgconn_state st)
{
    struct pgconn_shared *sh = c->sh;
    bool was_busy = c->st == PGC_BUSY || c->st == PGC_ROLLBACK;
    bool is_busy = st == PGC_BUSY || st == PGC_ROLLBACK;
    sh->nopen += (int)pgconn_is_open(st) - (int)pgconn_is_open(c->st);
    sh->nbusy += (int)is_busy - (int)was_busy;
    sh->nidle += (int)(st == PGC_IDLE) - (int)(c->st == PGC_IDLE);
    c->st = st;
}

static void
pgconn_timer_ms(struct pgconn *c, long ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    event_add(c->timer, &tv);
}

/* The message of the last libpq error on c, on one line. */
static const char *
pgconn_errmsg(struct pgconn *c, char *buf, size_t cap)
{
    const char *msg = c->pg != NULL ? PQerrorMessage(c->pg) : "";
    of_strlcpy(buf, msg != NULL && msg[0] != '\0' ? msg : "(no detail)", cap);
    for (char *s = buf; *s != '\0'; s++)
        if (*s == '\n')
            *s = (s[1] == '\0') ? '\0' : ' ';
    return buf;
}

bool
pgconn_in_flight(const struct pgconn *c)
{
    return c->op != NULL;
}

bool
pgconn_in_failed_tx(const struct pgconn *c)
{
    return PQtransactionStatus(c->pg) == PQTRANS_INERROR;
}

const char *
pgconn_role(const struct pgconn *c)
{
    if (c->pg == NULL || !pgconn_is_open(c->st))
        return NULL;
    const char *hs = PQparameterStatus(c->pg, "in_hot_standby");
    if (hs == NULL)
        return "primary";      /* before 14 only a primary takes read-write sessions */
    return strcmp(hs, "on") == 0 ? "standby" : "primary";
}

void
pgconn_hold(struct pgconn *c, struct pgconn **holder)
{
    c->holder = holder;
    *holder = c;
}

static void
pgconn_unhold(struct pgconn *c)
{
    if (c->holder != NULL)
        *c->holder = NULL;
    c->holder = NULL;
}

/* ---- sending ------------------------------------------------------------ */

bool
pgconn_stmt(struct pgconn *c, const struct pool_stmt *st, const char *const *params)
{
    if (c->sh->prepared)
        return PQsendQueryPrepared(c->pg, st->name, st->nparams, params, NULL, NULL, 0) == 1;
    return PQsendQueryParams(c->pg, st->sql, st->nparams, NULL, params, NULL, NULL, 0) == 1;
}

static int
pgconn_sync(struct pgconn *c)
{
    if (!PQpipelineSync(c->pg))
        return -1;
    c->syncs++;
    return 0;
}

/* Push pending output; results PQflush pulled into libpq's buffer leave the
 * socket unreadable, so have them processed on the next loop turn. */
static int
pgconn_flush(struct pgconn *c)
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
pgconn_arm_watchdog(struct pgconn *c, size_t nstmts)
{
    int ms = c->sh->stmt_timeout_ms;
    if (ms <= 0)
        return;
    pgconn_timer_ms(c, (long)ms * (long)(nstmts ? nstmts : 1) + PGC_WATCHDOG_MARGIN_MS);
}

/* Statements already queued, then one sync, out on the wire. */
static int
pgconn_sync_flush(struct pgconn *c, size_t nstmts)
{
    if (pgconn_sync(c) != 0 || pgconn_flush(c) != 0)
        return -1;
    pgconn_arm_watchdog(c, nstmts);
    return 0;
}

void
pgconn_send(struct pgconn *c, struct pool_op *op)
{
    pgconn_set_state(c, PGC_BUSY);
    c->op = op;
    if (op->obs != NULL)
        op->sent_ns = of_mono_ns();
    int n = pool_op_send(c, op);
    if (n == 0) {
        c->op = NULL;        /* it took the connection as it is */
        return;
    }
    if (n < 0 || pgconn_sync_flush(c, (size_t)n) != 0)
        pgconn_broken(c, "send failed");
}

static void
pgconn_rollback(struct pgconn *c)
{
    pgconn_set_state(c, PGC_ROLLBACK);
    if (!pgconn_stmt(c, &pgconn_st_rollback, NULL) || pgconn_sync_flush(c, 1) != 0)
        pgconn_broken(c, "rollback send failed");
}

static void
pgconn_ready(struct pgconn *c)
{
    event_del(c->timer);
    pgconn_set_state(c, PGC_IDLE);
    c->sh->hooks->idle(c->sh->owner);
}

/* After a failover the replica pool's connections sit on the new primary
 * (prefer-standby took what was there); once a standby is back they should
 * move to it, or the next switchover takes the catalog reads down with the
 * primary. Redial every few seconds while on a primary, one connection at
 * a time: libpq's target_session_attrs picks the standby when there is one. */
static bool
pgconn_on_wrong_primary(const struct pgconn *c)
{
    if (!c->sh->prefer_standby || of_mono_ns() - c->up_since < PGC_STANDBY_RETRY_NS)
        return false;
    if (c->sh->nopen < 2)
        return false;                    /* never the last one: reads keep a connection */
    const char *role = pgconn_role(c);
    return role != NULL && strcmp(role, "primary") == 0;
}

void
pgconn_release(struct pgconn *c)
{
    c->op = NULL;
    pgconn_unhold(c);
    event_del(c->timer);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        pgconn_broken(c, "connection bad after the operation");
        return;
    }
    if (c->read_only) {
        pgconn_broken(c, "the node is read-only now (25006): finding the primary");
        return;
    }
    if (pgconn_on_wrong_primary(c)) {
        of_log_info("PostgreSQL connection %d: a replica pool on a primary, looking for a standby",
                    c->idx);
        pgconn_close(c);
        pgconn_schedule(c, 0);
        return;
    }
    PGTransactionStatusType ts = PQtransactionStatus(c->pg);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
        pgconn_rollback(c);
        return;
    }
    if (ts != PQTRANS_IDLE) {
        pgconn_broken(c, "connection not idle after the operation");
        return;
    }
    pgconn_ready(c);
}

void
pgconn_drop(struct pgconn *c)
{
    pgconn_unhold(c);
    if (c->op == NULL) {
        pgconn_release(c);
        return;
    }
    pool_op_clear(c->op);
    c->op = NULL;
    pgconn_set_state(c, PGC_ROLLBACK);   /* released when its results are in */
}

/* ---- reading ------------------------------------------------------------ */

/* 25006 read_only_sql_transaction: the node is not the primary (any more). */
static void
pgconn_check_read_only(struct pgconn *c, const PGresult *r)
{
    if (PQresultStatus(r) != PGRES_FATAL_ERROR)
        return;
    const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (ss != NULL && strcmp(ss, "25006") == 0)
        c->read_only = true;
}

static void
pgconn_store(struct pgconn *c, PGresult *r)
{
    pgconn_check_read_only(c, r);
    if (c->op != NULL) {
        pool_op_on_result(c->op, r);
        return;
    }
    if (c->st == PGC_PREPARING && PQresultStatus(r) == PGRES_FATAL_ERROR) {
        struct pgconn_shared *sh = c->sh;
        size_t i = c->prep_seen;
        const char *name = i < sh->nstmts ? sh->stmts[i]->name
                         : pgconn_internal_stmts[i - sh->nstmts]->name;
        of_log_error("preparing statement %s failed: %s", name, PQresultErrorMessage(r));
    }
    c->prep_seen++;
    PQclear(r);
}

/* All syncs of the current work arrived. */
static void
pgconn_complete(struct pgconn *c)
{
    event_del(c->timer);
    if (c->st == PGC_PREPARING) {
        pgconn_ready(c);
        return;
    }
    struct pool_op *op = c->op;
    c->op = NULL;
    if (op == NULL) {                 /* our ROLLBACK, or a dropped job */
        pgconn_release(c);
        return;
    }
    pool_op_complete(c, op);
}

/* Read every result libpq has buffered. In pipeline mode PQgetResult gives
 * NULL between statements and nothing after PGRES_PIPELINE_SYNC: count the
 * syncs and stop at zero. */
static void
pgconn_drain(struct pgconn *c)
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
                pgconn_complete(c);
                return;
            }
            continue;
        }
        pgconn_store(c, r);
    }
    if (PQstatus(c->pg) != CONNECTION_OK)
        pgconn_broken(c, "connection bad");
}

static void
pgconn_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct pgconn *c = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);

    if (c->st == PGC_CONNECTING) {
        pgconn_connect_step(c);
        return;
    }
    if (c->pg == NULL)
        return;
    if (!PQconsumeInput(c->pg)) {
        pgconn_broken(c, "read failed");
        return;
    }
    if (c->syncs == 0) {
        /* Nothing in flight: an idle (or transaction-held) connection woke
         * up. Only a close or a server notice can be waiting. */
        if (PQstatus(c->pg) != CONNECTION_OK)
            pgconn_broken(c, "closed while idle");
        return;
    }
    pgconn_drain(c);
}

static void
pgconn_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct pgconn *c = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);

    if (c->st == PGC_CONNECTING) {
        pgconn_connect_step(c);
        return;
    }
    if (c->pg != NULL && pgconn_flush(c) != 0)
        pgconn_broken(c, "write failed");
}

/* ---- connecting --------------------------------------------------------- */

static void
pgconn_free_events(struct pgconn *c)
{
    if (c->ev_read != NULL)
        event_free(c->ev_read);
    if (c->ev_write != NULL)
        event_free(c->ev_write);
    c->ev_read = c->ev_write = NULL;
    c->fd = -1;
}

static void
pgconn_close(struct pgconn *c)
{
    pgconn_free_events(c);
    if (c->pg != NULL)
        PQfinish(c->pg);
    c->pg = NULL;
    c->syncs = 0;
    c->read_only = false;
    event_del(c->timer);
}

/* libpq may switch sockets while connecting (next host, SSL retry). */
static int
pgconn_bind_socket(struct pgconn *c)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return -1;
    if (fd == c->fd && c->ev_read != NULL)
        return 0;
    pgconn_free_events(c);
    c->fd = fd;
    c->ev_read = event_new(c->sh->base, fd, EV_READ | EV_PERSIST, pgconn_on_read, c);
    c->ev_write = event_new(c->sh->base, fd, EV_WRITE, pgconn_on_write, c);
    if (c->ev_read == NULL || c->ev_write == NULL)
        of_fatal("event_new failed");
    return 0;
}

static void
pgconn_schedule(struct pgconn *c, int delay_ms)
{
    pgconn_set_state(c, PGC_BACKOFF);
    pgconn_timer_ms(c, delay_ms);
}

static int
pgconn_next_backoff(struct pgconn *c)
{
    c->backoff_ms = c->backoff_ms <= 0 ? PGC_BACKOFF_MIN_MS
                  : c->backoff_ms >= PGC_BACKOFF_MAX_MS / 2 ? PGC_BACKOFF_MAX_MS
                  : c->backoff_ms * 2;
    return c->backoff_ms;
}

void
pgconn_wake(struct pgconn *c)
{
    if (c->st == PGC_BACKOFF)
        pgconn_timer_ms(c, 0);
}

static void
pgconn_connect_failed(struct pgconn *c, const char *why)
{
    struct pgconn_shared *sh = c->sh;
    char msg[512];

    pgconn_errmsg(c, msg, sizeof(msg));
    /* PgBouncer (1.18, no ignore_startup_parameters = options) refuses the
     * startup packet. The pool's connections dial at once, so several may be
     * refused before the first refusal flips no_options: each one that sent
     * "options" just redials without it; only the first one says so. */
    if (c->with_options && strstr(msg, "unsupported startup parameter") != NULL) {
        if (!sh->no_options)
            of_log_warn("database refused the options startup parameter (PgBouncer?): "
                        "connecting without it; statement_timeout must come from the role");
        sh->no_options = true;
        pgconn_close(c);
        pgconn_schedule(c, 0);
        return;
    }
    if (sh->db_ok || !sh->down_logged)
        of_log_warn("cannot connect to PostgreSQL (%s): %s", why, msg);
    else
        of_log_debug("cannot connect to PostgreSQL (%s): %s", why, msg);
    sh->down_logged = true;
    sh->db_ok = false;
    pgconn_close(c);
    pgconn_schedule(c, pgconn_next_backoff(c));
    sh->hooks->failed(sh->owner);
}

/* One PQsendPrepare + sync per statement. */
static void
pgconn_prepare(struct pgconn *c)
{
    struct pgconn_shared *sh = c->sh;
    pgconn_set_state(c, PGC_PREPARING);
    size_t total = sh->nstmts + OF_ARRAY_LEN(pgconn_internal_stmts);
    for (size_t i = 0; i < total; i++) {
        const struct pool_stmt *st = i < sh->nstmts ? sh->stmts[i]
                                   : pgconn_internal_stmts[i - sh->nstmts];
        if (!PQsendPrepare(c->pg, st->name, st->sql, st->nparams, NULL) || pgconn_sync(c) != 0) {
            pgconn_broken(c, "prepare send failed");
            return;
        }
    }
    if (pgconn_flush(c) != 0) {
        pgconn_broken(c, "prepare flush failed");
        return;
    }
    pgconn_timer_ms(c, (long)(sh->connect_timeout_s > 0 ? sh->connect_timeout_s : 10) * 1000);
}

static void
pgconn_connected(struct pgconn *c)
{
    struct pgconn_shared *sh = c->sh;

    if (pgconn_bind_socket(c) != 0 || PQsetnonblocking(c->pg, 1) != 0 || !PQenterPipelineMode(c->pg)) {
        pgconn_connect_failed(c, "setup");
        return;
    }
    event_del(c->ev_write);
    event_add(c->ev_read, NULL);
    if (!sh->db_ok && sh->down_logged)
        of_log_info("PostgreSQL reachable again");
    sh->db_ok = true;
    sh->down_logged = false;
    c->up_since = of_mono_ns();
    c->prep_seen = 0;
    event_del(c->timer);
    sh->hooks->up(sh->owner);     /* peers waiting out a backoff: try them now */

    if (!sh->prepared) {
        pgconn_ready(c);
        return;
    }
    pgconn_prepare(c);
}

static void
pgconn_connect_step(struct pgconn *c)
{
    PostgresPollingStatusType ps = PQconnectPoll(c->pg);
    if (ps == PGRES_POLLING_FAILED) {
        pgconn_connect_failed(c, "connect");
        return;
    }
    if (ps == PGRES_POLLING_OK) {
        pgconn_connected(c);
        return;
    }
    if (pgconn_bind_socket(c) != 0) {
        pgconn_connect_failed(c, "no socket");
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
pgconn_notice(void *arg, const PGresult *r)
{
    OF_UNUSED(arg);
    of_log_debug("PostgreSQL notice: %s", PQresultErrorMessage(r));
}

void
pgconn_open(struct pgconn *c)
{
    struct pgconn_shared *sh = c->sh;
    const char *keys[4], *vals[4];   /* dbname, options, name, NULL */
    int k = 0;

    keys[k] = "dbname";
    vals[k++] = sh->url;
    c->with_options = !sh->no_options && sh->options[0] != '\0';
    if (c->with_options) {
        keys[k] = "options";
        vals[k++] = sh->options;
    }
    if (sh->app_name != NULL) {
        keys[k] = "application_name";       /* after dbname: wins over the URL's */
        vals[k++] = sh->app_name;
    } else {
        keys[k] = "fallback_application_name";
        vals[k++] = "orderflow";
    }
    keys[k] = NULL;
    vals[k] = NULL;

    c->pg = PQconnectStartParams(keys, vals, 1);
    if (c->pg == NULL)
        of_fatal("PQconnectStartParams: out of memory");
    pgconn_set_state(c, PGC_CONNECTING);
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        pgconn_connect_failed(c, "start");
        return;
    }
    PQsetNoticeReceiver(c->pg, pgconn_notice, NULL);
    if (sh->connect_timeout_s > 0)
        pgconn_timer_ms(c, (long)sh->connect_timeout_s * 1000);
    if (pgconn_bind_socket(c) != 0) {
        pgconn_connect_failed(c, "no socket");
        return;
    }
    event_add(c->ev_write, NULL);   /* libpq: start as if POLLING_WRITING */
}

/* A connection that was up failed: report what it carried and reopen it. */
static void
pgconn_broken(struct pgconn *c, const char *why)
{
    struct pgconn_shared *sh = c->sh;
    char msg[512];

    bool was_up = pgconn_is_open(c->st);
    of_log_warn("PostgreSQL connection %d lost (%s): %s", c->idx, why,
                pgconn_errmsg(c, msg, sizeof(msg)));
    struct pool_op *op = c->op;
    c->op = NULL;
    pgconn_unhold(c);
    if (op != NULL)
        sh->hooks->lost(sh->owner, op);
    pgconn_close(c);
    bool quick = was_up && of_mono_ns() - c->up_since > PGC_QUICK_BREAK_NS;
    if (quick)
        c->backoff_ms = 0;
    pgconn_schedule(c, quick ? 0 : pgconn_next_backoff(c));
    sh->hooks->failed(sh->owner);
}

static void
pgconn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct pgconn *c = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);

    switch (c->st) {
    case PGC_BACKOFF:
    case PGC_DOWN:
        pgconn_open(c);
        break;
    case PGC_CONNECTING:
        pgconn_connect_failed(c, "connect timeout");
        break;
    case PGC_PREPARING:
    case PGC_BUSY:
    case PGC_ROLLBACK:
        if (c->syncs > 0)
            pgconn_broken(c, "no answer in time (watchdog)");
        break;
    case PGC_IDLE:
        break;
    }
}

/* ---- life --------------------------------------------------------------- */

int
pgconn_init(struct pgconn *c, struct pgconn_shared *sh, int idx)
{
    c->sh = sh;
    c->idx = idx;
    c->fd = -1;
    c->st = PGC_DOWN;
    c->timer = evtimer_new(sh->base, pgconn_on_timer, c);
    return c->timer != NULL ? 0 : -1;
}

struct pool_op *
pgconn_cleanup(struct pgconn *c)
{
    struct pool_op *op = c->op;
    c->op = NULL;
    pgconn_unhold(c);
    if (c->timer == NULL)
        return op;
    pgconn_close(c);
    event_free(c->timer);
    c->timer = NULL;
    return op;
}
