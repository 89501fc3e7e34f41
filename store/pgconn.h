/*
 * pgconn.h -- one PostgreSQL connection of the pool (internal to store/).
 *
 * Owns the life of one libpq connection on the event loop: dialling
 * (PQconnectStart/PQconnectPoll), backoff after a failure, preparing the
 * statements, and the pipeline: pgconn_send() puts a job's statements and
 * one sync on the wire, results are drained as they come and handed to the
 * job's type (store/pool_int.h), and when the sync arrives the job's
 * complete() runs; the job then releases the connection (pgconn_release) or,
 * for a transaction, keeps holding it.
 *
 * One state enum says everything about the connection:
 *
 *   BACKOFF --timer--> CONNECTING --PQconnectPoll ok--> PREPARING (one
 *   PQsendPrepare + sync per statement) --> IDLE <--> BUSY (a job in flight,
 *   or held by a transaction between steps); BUSY --> ROLLBACK (our own
 *   ROLLBACK, or what is left of a job nobody waits for any more, in flight)
 *   --> IDLE.
 *
 * Any failure closes the connection and re-arms the timer: at once when an
 * established connection broke, else after 100 ms doubling up to 5 s. A
 * statement answered 25006 (read_only_sql_transaction: the node was demoted
 * under us, a switchover) marks the connection: once its job is over it is
 * closed and dialled again, so libpq's multi-host target_session_attrs
 * finds whichever node is primary now; the session is never reused. The
 * timer doubles as connect timeout, backoff and query watchdog
 * (statement_timeout x statements + margin): a silent server never hangs a
 * request.
 *
 * What the pool must hear about goes through struct pgconn_hooks: a
 * connection became idle, came up, failed, or broke with a job in flight.
 */
#ifndef OF_STORE_PGCONN_H
#define OF_STORE_PGCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "store/pool.h"

struct event;
struct pool_op;

enum pgconn_state {
    PGC_DOWN, PGC_BACKOFF, PGC_CONNECTING,
    PGC_PREPARING, PGC_IDLE, PGC_BUSY, PGC_ROLLBACK,
};

struct pgconn_hooks {
    void (*idle)(void *owner);                      /* a connection is free for work */
    void (*up)(void *owner);                        /* a connection came up */
    void (*failed)(void *owner);                    /* an attempt failed or a connection broke */
    void (*lost)(void *owner, struct pool_op *op);  /* op's connection broke under it */
};

/* What all connections of one pool share: settings, counters, the owner. */
struct pgconn_shared {
    struct event_base             *base;
    char                          *url;
    char                          *app_name;     /* application_name, or NULL */
    char                           options[64];  /* "-c statement_timeout=..." or "" */
    int                            stmt_timeout_ms;
    int                            connect_timeout_s;
    bool                           prepared;
    bool                           no_options;   /* server (PgBouncer) refused "options" */
    bool                           prefer_standby; /* see pool_opts */
    bool                           db_ok;        /* last connect attempt succeeded */
    bool                           down_logged;
    const struct pool_stmt *const *stmts;
    size_t                         nstmts;
    int                            nopen, nbusy, nidle;
    const struct pgconn_hooks     *hooks;
    void                          *owner;
};

struct pgconn {
    struct pgconn_shared *sh;
    int                   idx;
    enum pgconn_state     st;
    PGconn               *pg;
    int                   fd;
    struct event         *ev_read;    /* EV_PERSIST while connected */
    struct event         *ev_write;   /* one-shot, only while output is pending */
    struct event         *timer;      /* connect timeout / backoff / watchdog */
    int                   backoff_ms;
    int                   syncs;      /* PGRES_PIPELINE_SYNC results still expected */
    size_t                prep_seen;
    uint64_t              up_since;
    bool                  with_options;   /* this attempt sent the "options" parameter */
    bool                  read_only;      /* a statement failed with 25006: the node is no
                                             longer the primary; redial after the job */
    struct pool_op       *op;         /* job in flight */
    struct pgconn       **holder;     /* a transaction's pointer to us, NULLed when we go */
};

/* The statements every connection has besides the repositories'. */
extern const struct pool_stmt pgconn_st_begin, pgconn_st_commit;

int  pgconn_init(struct pgconn *c, struct pgconn_shared *sh, int idx);
/* Start dialling (from DOWN). */
void pgconn_open(struct pgconn *c);
/* Close and free; returns the job that was in flight (its results kept), or NULL. */
struct pool_op *pgconn_cleanup(struct pgconn *c);
/* A peer came up: stop waiting out a backoff. */
void pgconn_wake(struct pgconn *c);

static inline bool
pgconn_is_open(enum pgconn_state st)
{
    return st == PGC_PREPARING || st == PGC_IDLE || st == PGC_BUSY || st == PGC_ROLLBACK;
}

/* Put op on the wire (c idle, or held by op's transaction): its type's
 * send() queues its statements, then one sync. A send that queued nothing
 * took the connection as it is (c stays BUSY, no job in flight). On a send
 * failure the connection is broken and op reported lost. */
void pgconn_send(struct pgconn *c, struct pool_op *op);
/* One statement into the pipeline (called from a type's send()). */
bool pgconn_stmt(struct pgconn *c, const struct pool_stmt *st, const char *const *params);
/* The job is over: reuse c, after a ROLLBACK if it was left in a transaction. */
void pgconn_release(struct pgconn *c);
/* Remember where a transaction keeps its pointer to c (cleared when c goes). */
void pgconn_hold(struct pgconn *c, struct pgconn **holder);
/* Nobody waits for the job in flight any more: drop it, roll back after it. */
void pgconn_drop(struct pgconn *c);
/* Is a job's round trip in flight? */
bool pgconn_in_flight(const struct pgconn *c);
bool pgconn_in_failed_tx(const struct pgconn *c);
/* An open connection's node: "primary", "standby" (in_hot_standby, which the
 * server reports and updates on promotion, PostgreSQL 14+), or NULL. */
const char *pgconn_role(const struct pgconn *c);

#endif
