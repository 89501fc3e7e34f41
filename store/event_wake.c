/*
 * event_wake.c -- the post-commit wake of the jobs process (event_wake.h):
 * one statement, one in flight per process, the rest coalesced.
 */
#include "store/event_wake.h"
#include "store/sql.h"
#include "domain/event.h"
#include "common/log.h"
#include "common/of.h"

#include <stdbool.h>
#include <stdlib.h>

/* A transaction of its own; set_config(..., true) lasts until its commit,
 * so that commit does not wait for its WAL flush. */
static const struct pool_stmt st_wake = {
    "event_wake",
    "SELECT set_config('synchronous_commit', 'off', true), pg_notify('" EVENT_CHANNEL "', '')",
    0, 0 };

const struct pool_stmt *const store_event_wake_stmts[] = { &st_wake };
const size_t store_event_wake_nstmts = OF_ARRAY_LEN(store_event_wake_stmts);

static struct {
    bool          in_flight;
    bool          again;      /* asked for while one was in flight */
    unsigned long sent, coalesced;
} wake;

struct wake_op {
    struct of_mem m;
    pool         *p;
};

static void send_wake(pool *p);

static void
on_woken(const struct pool_res *res, void *arg)
{
    struct wake_op *op = arg;
    pool           *p = op->p;
    if (sql_rc(res) != OF_OK)
        of_log_debug("event wake failed; the jobs process's poll finds the event");
    of_mem_release(&op->m);
    free(op);
    wake.in_flight = false;
    if (wake.again) {
        wake.again = false;
        send_wake(p);
    }
}

static void
send_wake(pool *p)
{
    struct wake_op *op = malloc(sizeof(*op));
    if (op == NULL)
        return;                 /* the poll finds the event */
    of_mem_init(&op->m);
    op->p = p;
    wake.in_flight = true;
    wake.sent++;
    pool_query(p, &op->m, &st_wake, NULL, on_woken, op);
}

void
event_wake(pool *p)
{
    if (wake.in_flight) {
        if (!wake.again)
            wake.again = true;
        else
            wake.coalesced++;
        return;
    }
    send_wake(p);
}

void
event_wake_counts(unsigned long *sent, unsigned long *coalesced)
{
    *sent = wake.sent;
    *coalesced = wake.coalesced;
}
