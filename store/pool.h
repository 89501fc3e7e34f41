/*
 * pool.h -- the per-worker asynchronous PostgreSQL pool (libpq + libevent).
 *
 * Each worker creates one pool on its event base. Connections are opened with
 * PQconnectStart/PQconnectPoll, statements are prepared once per connection at
 * connect time (or sent unnamed when opts->prepared_statements is false),
 * and nothing on these paths ever blocks the loop.
 *
 * Two ways to talk to the database:
 *   pool_query   one statement on any free connection (autocommit). A
 *                statement flagged POOL_STMT_READ by its repository (a plain
 *                read: a SELECT without FOR UPDATE/SHARE and without
 *                side-effect functions such as nextval, pg_advisory_*,
 *                pg_sleep, set_config) is not sent alone: the reads issued in
 *                the same event-loop pass go together in one round trip on
 *                one connection (pipeline, one sync, so one implicit
 *                transaction). A read that fails does not fail its
 *                group-mates. A statement without the flag gets its own
 *                round trip.
 *   pool_tx_*    an interactive transaction: the caller holds one connection
 *                across several round trips, then commits or rolls back.
 *
 * Callbacks fire exactly once, always from the event loop, never from inside
 * the call that started the operation. Statements use text parameters and
 * text results (PQgetvalue). Errors: rc OF_ERR with sqlstate/constraint set
 * (57014 = statement_timeout); connection exceptions, server shutdown,
 * 25006 (read-only: the node is no longer the primary; its connection is
 * closed and redialled after the operation) and "database down" are
 * OF_UNAVAILABLE. When every connection is down and the
 * last attempt to connect failed, operations fail at once (next loop turn)
 * with OF_UNAVAILABLE instead of waiting out the queue timeout. A request
 * waits for a free connection in a FIFO up to opts->queue_timeout_ms, then
 * gets rc = OF_UNAVAILABLE. A broken connection fails its operation with
 * OF_UNAVAILABLE and is reopened with exponential backoff.
 *
 * Operation state is allocated from the caller's of_mem; the caller must keep
 * that arena alive until the callback has fired. If m->abandoned is set (the
 * client went away) when a transaction asks for its next step, the pool rolls
 * the transaction back, releases the connection and reports OF_UNAVAILABLE.
 *
 * The pool keeps its statistics to itself (pool_get_stats); the worker copies
 * them into the scoreboard on its heartbeat.
 */
#ifndef OF_POOL_H
#define OF_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <libpq-fe.h>

#include "common/mem.h"
#include "common/of.h"

struct event_base;
typedef struct pool pool;
typedef struct pool_tx pool_tx;

/* pool_stmt.flags: a plain read (see above) that pool_query may send in one
 * round trip, and one implicit transaction, with other requests' reads. Set
 * it only on a SELECT that neither locks rows nor has side effects. */
#define POOL_STMT_READ  0x1u

/* A statement known to the pool. Repositories define them as static consts
 * and list them in the table given to pool_create(). */
struct pool_stmt {
    const char *name;      /* unique, used as the prepared statement name */
    const char *sql;       /* $1..$n parameters only, never formatted */
    int         nparams;
    unsigned    flags;     /* POOL_STMT_READ or 0 */
};

/* What the pool needs to know, filled by whoever wires it (the worker). */
struct pool_opts {
    const char *url;                   /* NULL or "": every operation fails OF_UNAVAILABLE */
    int         size;                  /* connections; < 1 means 1 */
    int         queue_timeout_ms;      /* longest wait for a free connection */
    int         statement_timeout_ms;  /* sent as statement_timeout; 0 = none */
    int         connect_timeout_s;     /* 0 = none (a prepare still gets 10 s) */
    bool        prepared_statements;   /* false behind PgBouncer < 1.21 */
    const char *application_name;      /* NULL: fallback_application_name "orderflow" */
    bool        prefer_standby;        /* a replica pool: a connection that landed on a
                                          primary redials now and then for a standby */
};

struct pool_res {
    int             rc;        /* OF_OK; OF_UNAVAILABLE (db down, queue timeout,
                                  connection lost); OF_ERR (statement failed) */
    const PGresult *res;       /* valid only during the callback; NULL unless rc == OF_OK
                                  or rc == OF_ERR with a server error */
    const char     *sqlstate;  /* "23505" etc. when a statement failed, else NULL */
    const char     *constraint;/* violated constraint name when known, else NULL */
};

struct pool_stats {
    int  open, busy, idle, waiting;
    bool db_ok;                /* at least one connection is up, or the last attempt succeeded */
    unsigned long long queries;   /* operations started: queries and transactions */
};

/* opts is read during the call (url is copied). stmts: every statement any
 * repository will use (copied by pointer; must be static). */
pool *pool_create(struct event_base *base, const struct pool_opts *opts,
                  const struct pool_stmt *const *stmts, size_t nstmts);
/* Closes every connection; pending callbacks are not called. */
void  pool_destroy(pool *p);
void  pool_get_stats(pool *p, struct pool_stats *out);
bool  pool_ready(pool *p);
/* The node an open connection is on: "primary" or "standby" (PostgreSQL's
 * in_hot_standby, kept current by the server), NULL when none is open. */
const char *pool_role(pool *p);
/* Has the first connection attempt finished, either way? (A worker waits
 * for this, briefly, before it takes traffic, so /ready is right at once.) */
bool  pool_settled(pool *p);

typedef void (*pool_cb)(const struct pool_res *r, void *arg);

/* What an observer hears of one finished operation (pool_set_observer).
 * Times are of_mono_ns(); sent_ns is 0 when the op never reached a
 * connection (queue timeout, database down). A transaction step may wrap
 * its statement (st, NULL for a bare COMMIT) in BEGIN and/or COMMIT; a
 * transaction's begin has no round trip of its own (round_trip false: only
 * its wait counts). */
struct pool_trace {
    void                   *trace;      /* observer->current() when the op started */
    const struct pool_stmt *st;
    bool                    begin, commit, round_trip;
    int                     rc;
    int                     rows;       /* PQntuples of st's result, else 0 */
    uint64_t                queued_ns, sent_ns, done_ns;
};

/* Optional, set by the worker: current() names the trace context of the code
 * running now (stored with each op it starts); round_trip() hears each op
 * right before its callback; resume() makes an op's trace current around
 * its callback and returns the one it replaced (to be given back after). An
 * unset observer costs one branch per operation. */
struct pool_observer {
    void *(*current)(void *arg);
    void  (*round_trip)(void *arg, const struct pool_trace *t);
    void *(*resume)(void *arg, void *trace);
    void  *arg;
};
/* o is copied; NULL removes it. Call before the first operation. */
void pool_set_observer(pool *p, const struct pool_observer *o);

/* params: nparams text values (NULL = SQL NULL), copied before return. */
void pool_query(pool *p, struct of_mem *m, const struct pool_stmt *st,
                const char *const *params, pool_cb cb, void *arg);

/* Interactive transactions. begin: cb gets a tx on OF_OK. Each query's cb gets
 * the same tx back. After commit's callback, or after rollback, tx is gone. A
 * failed statement leaves the transaction aborted: the caller must roll back. */
typedef void (*pool_tx_cb)(pool_tx *tx, const struct pool_res *r, void *arg);
void pool_tx_begin(pool *p, struct of_mem *m, pool_tx_cb cb, void *arg);
void pool_tx_query(pool_tx *tx, const struct pool_stmt *st, const char *const *params,
                   pool_tx_cb cb, void *arg);
void pool_tx_commit(pool_tx *tx, pool_tx_cb cb, void *arg);
/* The last statement and COMMIT in one round trip. cb gets the statement's
 * result; rc is OF_OK only if both it and the COMMIT succeeded (a failed
 * statement means nothing was committed). After cb, tx is gone. */
void pool_tx_query_commit(pool_tx *tx, const struct pool_stmt *st, const char *const *params,
                          pool_tx_cb cb, void *arg);
void pool_tx_rollback(pool_tx *tx);
/* fn(p) runs once this transaction's COMMIT has succeeded, before the
 * commit step's callback (store/event_wake.h: work that must follow the
 * commit, never precede it). */
void pool_tx_after_commit(pool_tx *tx, void (*fn)(pool *p));

/* Small result helpers. sqlstate_is: r failed with exactly that SQLSTATE
 * ("23505" unique_violation, "23503" foreign_key_violation, "23514" check,
 * "40001" serialization, "57014" statement timeout). value: NULL for SQL NULL
 * or out of range. */
bool        pool_res_sqlstate_is(const struct pool_res *r, const char *state);
int         pool_res_ntuples(const struct pool_res *r);
const char *pool_res_value(const struct pool_res *r, int row, int col);

#endif
