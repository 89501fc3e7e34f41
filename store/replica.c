/*
 * replica.c -- the catalog read route and the replica lag probe
 * (contract: replica.h). One route per worker, on its event loop.
 */
#include "store/replica.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

/* A standby that replayed everything it received has no lag, however old
 * its last replayed transaction (an idle primary writes nothing). A standby
 * that never streamed has no receive LSN: the replay timestamp decides. */
const struct pool_stmt replica_st_lag = {
    "replica_lag",
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0"
    " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    " ELSE COALESCE(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 1e9)"
    " END::float8",
    0, POOL_STMT_READ,
};

struct replica_route {
    pool               *primary, *replica;
    double              max_lag_s;
    struct event       *timer;
    struct of_mem      *probe_mem;   /* non-NULL while a probe is in flight */
    struct replica_view view;
    bool                was_usable;
};

bool
replica_usable(const struct replica_view *v, double max_lag_s, uint64_t now_ns)
{
    if (!v->configured || !v->connected || !v->measured)
        return false;
    if (now_ns < v->measured_ns || now_ns - v->measured_ns > REPLICA_FRESH_NS)
        return false;
    return v->lag_s >= 0 && v->lag_s <= max_lag_s;
}

static bool
route_usable(struct replica_route *rt)
{
    if (rt->replica == NULL)
        return false;
    rt->view.connected = pool_ready(rt->replica);
    bool ok = replica_usable(&rt->view, rt->max_lag_s, of_mono_ns());
    if (ok != rt->was_usable)
        of_log_info("catalog reads go to the %s now", ok ? "replica" : "primary");
    rt->was_usable = ok;
    return ok;
}

static void
probe_done(const struct pool_res *r, void *arg)
{
    struct replica_route *rt = arg;
    const char *v = pool_res_value(r, 0, 0);
    if (r->rc == OF_OK && v != NULL) {
        char *end;
        double lag = strtod(v, &end);
        if (end != v) {
            rt->view.lag_s = lag;
            rt->view.measured = true;
            rt->view.measured_ns = of_mono_ns();
        }
    }
    of_mem_release(rt->probe_mem);
    free(rt->probe_mem);
    rt->probe_mem = NULL;
}

static void
probe_tick(evutil_socket_t fd, short what, void *arg)
{
    struct replica_route *rt = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);
    if (rt->probe_mem != NULL || !pool_ready(rt->replica))
        return;                          /* one probe at a time; none while down */
    if ((rt->probe_mem = malloc(sizeof(*rt->probe_mem))) == NULL)
        return;
    of_mem_init(rt->probe_mem);
    pool_query(rt->replica, rt->probe_mem, &replica_st_lag, NULL, probe_done, rt);
}

struct replica_route *
replica_route_create(struct event_base *base, pool *primary, pool *replica, double max_lag_s)
{
    struct replica_route *rt = calloc(1, sizeof(*rt));
    if (rt == NULL)
        return NULL;
    rt->primary = primary;
    rt->replica = replica;
    rt->max_lag_s = max_lag_s;
    rt->view.configured = replica != NULL;
    if (replica == NULL)
        return rt;
    rt->timer = event_new(base, -1, EV_PERSIST, probe_tick, rt);
    if (rt->timer == NULL) {
        free(rt);
        return NULL;
    }
    struct timeval every = { 0, REPLICA_PROBE_MS * 1000 };
    event_add(rt->timer, &every);
    return rt;
}

/* A probe in flight keeps its arena: the pool (destroyed with the worker)
 * never calls back after this. */
void
replica_route_destroy(struct replica_route *rt)
{
    if (rt == NULL)
        return;
    if (rt->timer != NULL)
        event_free(rt->timer);
    free(rt);
}

pool *
replica_route_catalog(struct replica_route *rt, bool *lagging)
{
    bool r = route_usable(rt);
    *lagging = r;
    return r ? rt->replica : rt->primary;
}

bool
replica_route_has_replica(const struct replica_route *rt)
{
    return rt->replica != NULL;
}

pool *
replica_route_standby(struct replica_route *rt)
{
    return rt->replica != NULL && pool_ready(rt->replica) ? rt->replica : NULL;
}

pool *
replica_route_primary(struct replica_route *rt)
{
    return rt->primary;
}

void
replica_route_stats(struct replica_route *rt, struct replica_stats *out)
{
    out->configured = rt->replica != NULL;
    out->usable = route_usable(rt);
    bool fresh = rt->view.measured && of_mono_ns() - rt->view.measured_ns <= REPLICA_FRESH_NS;
    out->lag_us = fresh ? (int64_t)(rt->view.lag_s * 1e6) : -1;
}
