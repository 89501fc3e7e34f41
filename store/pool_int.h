/*
 * pool_int.h -- what the pool's files share (internal to store/): the pool
 * itself, the operation every caller's request becomes, and the table of
 * functions each kind of operation fills in (as redis's ConnectionType).
 *
 *   pool.c        the wait queue (FIFO + queue timeout), dispatch to idle
 *                 connections, the done-list of deferred callbacks, and the
 *                 plain query type
 *   pool_group.c  coalesced reads: the group type
 *   pool_tx.c     interactive transactions: the begin and step types
 *   pgconn.c      one connection (pgconn.h)
 */
#ifndef OF_STORE_POOL_INT_H
#define OF_STORE_POOL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/pool.h"
#include "store/pgconn.h"

#define POOL_INLINE_RES 3   /* BEGIN + a statement + COMMIT */

struct pool_op;

/* One per kind of operation. */
struct pool_op_type {
    /* op is about to get a connection (from the queue or a flush): false
     * when it no longer wants one (it was dropped or completed instead). */
    bool (*claim)(pool *p, struct pool_op *op);
    /* Queue its statements on c with pgconn_stmt(); returns how many (0: it
     * took the connection without a round trip), or -1 on failure. */
    int  (*send)(struct pgconn *c, struct pool_op *op);
    /* One result read from c; the op owns r from now on. */
    void (*on_result)(struct pool_op *op, PGresult *r);
    /* Every result arrived: release c (or keep it) and call back. Nothing
     * of c or op may be touched after the callback. */
    void (*complete)(struct pgconn *c, struct pool_op *op);
    /* Call back without results (from the done-list): rc is OF_UNAVAILABLE,
     * OF_ERR, or OF_OK for a transaction handed its connection. */
    void (*fail)(struct pool_op *op, int rc);
    /* In the wait queue at now: true when op's deadline passed. */
    bool (*expire)(pool *p, struct pool_op *op, uint64_t now);
};

struct pool_op {
    const struct pool_op_type *type;
    int                        rc;            /* for the done-list */
    struct of_mem             *m;
    struct pool_op            *next, *prev;   /* wait queue or done-list */
    uint64_t                   deadline_ns;
    int                        nwait;         /* requests it stands for in the queue */
    const struct pool_stmt    *st;
    const char *const         *params;
    PGresult                 **res;           /* results read so far */
    size_t                     nres, cap;
    PGresult                  *res_inline[POOL_INLINE_RES];
    union { pool_cb q; pool_tx_cb t; } cb;
    void                      *arg;
    pool_tx                   *tx;
    bool                       begin;         /* tx step: send BEGIN first */
    bool                       commit;        /* tx step: send COMMIT last */
    const struct pool_observer *obs;          /* the pool's, or NULL: no timing */
    void                      *trace;         /* obs->current() at the start */
    uint64_t                   queued_ns, sent_ns;
};

static inline bool
pool_op_claim(pool *p, struct pool_op *op)
{
    return op->type->claim(p, op);
}

static inline int
pool_op_send(struct pgconn *c, struct pool_op *op)
{
    return op->type->send(c, op);
}

static inline void
pool_op_on_result(struct pool_op *op, PGresult *r)
{
    op->type->on_result(op, r);
}

static inline void
pool_op_complete(struct pgconn *c, struct pool_op *op)
{
    op->type->complete(c, op);
}

static inline void
pool_op_fail(struct pool_op *op, int rc)
{
    op->type->fail(op, rc);
}

static inline bool
pool_op_expire(pool *p, struct pool_op *op, uint64_t now)
{
    return op->type->expire(p, op, now);
}

/* Coalesced reads of the current loop pass (pool_group.c). */
struct pool_group;
struct pool_groups {
    struct event      *ev_flush;
    struct pool_group *open;        /* collecting reads: pending flush or queued */
    struct pool_group *free, *all;
};

struct pool {
    struct pgconn_shared  sh;
    int                   size;
    int                   queue_timeout_ms;
    struct pgconn        *conns;
    int                   nwaiting;
    uint64_t              queries;    /* operations started (pool_query, pool_tx_begin) */
    struct pool_op       *wait_head, *wait_tail;
    struct pool_op       *done_head, *done_tail;
    struct event         *ev_done, *ev_qtimer;
    struct pool_groups    groups;
    int                   looping;    /* inside a loop that calls back */
    bool                  dying;      /* pool_destroy called from such a callback */
    struct pool_observer  obs_store;
    const struct pool_observer *obs;  /* &obs_store when set, else NULL */
};

/* pool.c */
/* Around a loop that calls back: a callback may destroy the pool, which is
 * then freed at pool_unhold. Returns false if it was (stop touching p). */
void pool_hold(pool *p);
bool pool_unhold(pool *p);
/* Complete op from the event loop later, with rc and no results. */
void pool_defer(pool *p, struct pool_op *op, int rc);
/* Give op a connection now, or queue it, or fail it when nothing can come. */
void pool_submit(pool *p, struct pool_op *op);
void pool_queue_push(pool *p, struct pool_op *op);
struct pgconn *pool_idle_conn(pool *p);
bool pool_can_wait(pool *p);
void pool_copy_params(struct of_mem *m, const struct pool_stmt *st, const char *const **params);
void pool_res_fill(struct pool_res *pr, const PGresult *r);
void pool_op_init(struct pool_op *op, const struct pool_op_type *type, struct of_mem *m);
/* Generic parts of a type: keep results up to op->cap; expire at the deadline;
 * claim unless the client went away. */
void pool_op_keep_result(struct pool_op *op, PGresult *r);
bool pool_op_expire_whole(pool *p, struct pool_op *op, uint64_t now);
bool pool_op_claim_live(pool *p, struct pool_op *op);

/* Results already read for an operation that will not complete normally
 * (inline: a connection drops its job's results without calling the pool). */
static inline void
pool_op_clear(struct pool_op *op)
{
    for (size_t i = 0; i < op->nres; i++)
        PQclear(op->res[i]);
    op->nres = 0;
}

/* The observer's part (pool_set_observer): op_start stamps a new op,
 * op_enter reports it and makes its trace current (returns the one to give
 * back to op_leave), around its callback. No-ops when op->obs is NULL. */
void  pool_obs_start(pool *p, struct pool_op *op);
void *pool_obs_enter(struct pool_op *op, const PGresult *r, int rc, bool round_trip);
void  pool_obs_leave(const struct pool_observer *obs, void *prev);

/* pool_group.c */
int  pool_groups_init(pool *p);
void pool_groups_cleanup(pool *p);
/* A POOL_STMT_READ query: join this loop pass's group. */
void pool_group_read(pool *p, struct pool_op *op);

#endif
