/*
 * pool_group.c -- coalesced reads: the queries of one event-loop pass whose
 * statement is flagged POOL_STMT_READ go in one round trip (see pool.h).
 *
 * The first read of a loop pass opens a group and schedules a deferred flush
 * event, which runs after the pass's other callbacks; the group then takes
 * one connection like any operation (or waits in the FIFO, still taking
 * newcomers, so a busy pool sends bigger groups) and is sent as N statements
 * + one sync. Members after a failed one come back PGRES_PIPELINE_ABORTED
 * and are re-sent in the next group. This is the "one sync per loop pass"
 * design of PERFORMANCE-NOTES.
 *
 * A group is pool-owned and recycled (no allocation per request once the
 * arrays have grown); its members are the callers' query ops, each with its
 * own deadline, so a queued group's members time out one by one.
 */
#include "store/pool_int.h"
#include "common/log.h"
#include "common/util.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

struct pool_group {
    struct pool_op      op;         /* first: what queue and connections see */
    pool               *p;
    struct pool_group  *next_free, *next_all;
    bool                queued;
    size_t              n, cap;
    struct pool_op    **member;
    PGresult          **res;
};

static const struct pool_op_type pool_group_type;
static void group_join(pool *p, struct pool_op *op);

static struct pool_group *
group_of(struct pool_op *op)
{
    return (struct pool_group *)(void *)op;
}

static struct pool_group *
group_get(pool *p)
{
    struct pool_group *g = p->groups.free;
    if (g != NULL) {
        p->groups.free = g->next_free;
    } else {
        if ((g = calloc(1, sizeof(*g))) == NULL)
            of_fatal("calloc failed");
        g->p = p;
        g->next_all = p->groups.all;
        p->groups.all = g;
    }
    pool_op_init(&g->op, &pool_group_type, NULL);
    g->op.obs = p->obs;      /* only for the send time its members report */
    g->op.res = g->res;
    g->n = 0;
    g->queued = false;
    return g;
}

/* No more newcomers: later reads start a new group. */
static void
group_close(pool *p, struct pool_group *g)
{
    if (p->groups.open == g)
        p->groups.open = NULL;
}

static void
group_put(pool *p, struct pool_group *g)
{
    group_close(p, g);
    g->n = 0;
    g->next_free = p->groups.free;
    p->groups.free = g;
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
        g->res = g->op.res = rv;
        g->cap = cap;
    }
    g->member[g->n++] = op;
    if (g->queued) {
        g->op.nwait++;
        p->nwaiting++;
    }
}

/* ---- the group type ----------------------------------------------------- */

/* Leaving the queue (or the flush) for a connection: closed to newcomers;
 * members whose client left drop out. */
static bool
group_claim(pool *p, struct pool_op *op)
{
    struct pool_group *g = group_of(op);
    size_t k = 0;
    g->queued = false;
    group_close(p, g);
    for (size_t i = 0; i < g->n; i++) {
        if (g->member[i]->m->abandoned)
            pool_defer(p, g->member[i], OF_UNAVAILABLE);
        else
            g->member[k++] = g->member[i];
    }
    g->n = k;
    if (k > 0)
        return true;
    group_put(p, g);
    return false;
}

static int
group_send(struct pgconn *c, struct pool_op *op)
{
    struct pool_group *g = group_of(op);
    op->nres = 0;
    op->cap = g->n;
    for (size_t i = 0; i < g->n; i++)
        if (!pgconn_stmt(c, g->member[i]->st, g->member[i]->params))
            return -1;
    return (int)g->n;
}

/* The group's sync arrived. Members after a failed one were skipped by the
 * server (PGRES_PIPELINE_ABORTED): they never ran, so they go again in the
 * next group. Reads before it are valid results. */
static void
group_complete(struct pgconn *c, struct pool_op *op)
{
    struct pool_group *g = group_of(op);
    pool *p = g->p;
    pgconn_release(c);
    pool_hold(p);
    for (size_t i = 0; i < g->n; i++) {
        struct pool_op *m = g->member[i];
        PGresult *r = i < op->nres ? op->res[i] : NULL;
        if (p->dying) {
            PQclear(r);
            continue;
        }
        if (r == NULL || PQresultStatus(r) == PGRES_PIPELINE_ABORTED) {
            PQclear(r);
            group_join(p, m);
            continue;
        }
        struct pool_res pr;
        const struct pool_observer *obs = m->obs;
        pool_res_fill(&pr, r);
        m->sent_ns = op->sent_ns;
        void *prev = pool_obs_enter(m, r, pr.rc, true);
        m->cb.q(&pr, m->arg);
        pool_obs_leave(obs, prev);
        PQclear(r);
    }
    op->nres = 0;
    group_put(p, g);
    pool_unhold(p);
}

/* Every member fails alike (from the done-list, which guards the pool). */
static void
group_fail(struct pool_op *op, int rc)
{
    struct pool_group *g = group_of(op);
    for (size_t i = 0; i < g->n && !g->p->dying; i++)
        pool_op_fail(g->member[i], rc);
    group_put(g->p, g);
}

/* Members time out one by one (the oldest first); the group is done
 * waiting when none is left. */
static bool
group_expire(pool *p, struct pool_op *op, uint64_t now)
{
    struct pool_group *g = group_of(op);
    size_t k = 0;
    while (k < g->n && g->member[k]->deadline_ns <= now)
        pool_defer(p, g->member[k++], OF_UNAVAILABLE);
    if (k == 0)
        return false;
    memmove(g->member, g->member + k, (g->n - k) * sizeof(*g->member));
    g->n -= k;
    op->nwait -= (int)k;
    p->nwaiting -= (int)k;
    if (g->n > 0) {
        op->deadline_ns = g->member[0]->deadline_ns;
        return false;
    }
    g->queued = false;
    group_close(p, g);
    return true;
}

static const struct pool_op_type pool_group_type = {
    .claim = group_claim,
    .send = group_send,
    .on_result = pool_op_keep_result,
    .complete = group_complete,
    .fail = group_fail,
    .expire = group_expire,
};

/* ---- flush -------------------------------------------------------------- */

static void
group_on_flush(evutil_socket_t fd, short what, void *arg)
{
    pool *p = arg;
    struct pool_group *g = p->groups.open;
    OF_UNUSED(fd);
    OF_UNUSED(what);

    if (g == NULL || g->queued)
        return;
    struct pgconn *c = p->wait_head == NULL ? pool_idle_conn(p) : NULL;
    if (c != NULL) {
        if (group_claim(p, &g->op))
            pgconn_send(c, &g->op);
        return;
    }
    if (!pool_can_wait(p)) {
        group_close(p, g);
        pool_defer(p, &g->op, OF_UNAVAILABLE);
        return;
    }
    g->queued = true;
    g->op.nwait = (int)g->n;
    g->op.deadline_ns = g->member[0]->deadline_ns;
    pool_queue_push(p, &g->op);
}

/* Join the group of this loop pass (made, and its flush scheduled, by the
 * first read of the pass). */
static void
group_join(pool *p, struct pool_op *op)
{
    struct pool_group *g = p->groups.open;
    if (g == NULL) {
        g = group_get(p);
        p->groups.open = g;
        event_active(p->groups.ev_flush, 0, 1);
    }
    group_add(p, g, op);
}

void
pool_group_read(pool *p, struct pool_op *op)
{
    if (p->groups.open == NULL && p->sh.nidle == 0 && !pool_can_wait(p)) {
        pool_defer(p, op, OF_UNAVAILABLE);
        return;
    }
    /* sent on a later loop turn: params must be ours, deadline starts now */
    pool_copy_params(op->m, op->st, &op->params);
    op->deadline_ns = of_mono_ns() + (uint64_t)p->queue_timeout_ms * 1000000u;
    group_join(p, op);
}

/* ---- life --------------------------------------------------------------- */

int
pool_groups_init(pool *p)
{
    p->groups.ev_flush = event_new(p->sh.base, -1, 0, group_on_flush, p);
    return p->groups.ev_flush != NULL ? 0 : -1;
}

void
pool_groups_cleanup(pool *p)
{
    if (p->groups.ev_flush != NULL)
        event_free(p->groups.ev_flush);
    while (p->groups.all != NULL) {
        struct pool_group *g = p->groups.all;
        p->groups.all = g->next_all;
        free(g->member);
        free(g->res);
        free(g);
    }
}
