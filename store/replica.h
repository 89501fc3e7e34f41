/*
 * replica.h -- where a public catalog read goes: the primary pool, or the
 * worker's read-replica pool (database.replica_url) while its measured
 * replay lag is within database.replica_max_lag.
 *
 * The route owns the replica side: every 250 ms it asks the replica pool
 * for the replay lag (0 on a primary, 0 on a standby that has replayed all
 * it received -- an idle primary's old replay timestamp is not lag -- else
 * now() - pg_last_xact_replay_timestamp()). A catalog read goes to the
 * replica when the replica pool is connected, a measurement is fresh (at
 * most 1 s old) and the lag is <= max_lag; otherwise to the primary. The
 * primary's health does not enter into it: while the primary is down, the
 * catalog keeps answering from the replica.
 *
 * The product cache (common/cache.h, invalidated by LISTEN on the primary)
 * is never filled from a replica read: an invalidation arrives when the
 * write commits on the primary, but the replica may replay it up to
 * max_lag later, so an answer read there after the invalidation could be
 * older than it and would then live until the cache's ttl. The answer
 * carries may_lag (domain/product.h) and the handler does not store it.
 * With replicas and the cache both on, the cache fills only from reads
 * that went to the primary (the replica lagging or down).
 *
 * Only the store layer sees this (store/product_repo.c); handlers and
 * domain/ do not know pools exist. Without a replica pool every read goes
 * to the primary and nothing is probed.
 */
#ifndef OF_STORE_REPLICA_H
#define OF_STORE_REPLICA_H

#include <stdbool.h>
#include <stdint.h>

#include "store/pool.h"

struct event_base;
struct replica_route;

#define REPLICA_PROBE_MS     250
#define REPLICA_FRESH_NS     1000000000ull   /* a measurement older than this is none */

/* The statement the probe runs (the replica pool must be created with it). */
extern const struct pool_stmt replica_st_lag;

/* What the decision looks at (pure, for tests). */
struct replica_view {
    bool     configured;     /* a replica pool exists */
    bool     connected;      /* it has a connection up */
    bool     measured;       /* a probe has answered */
    uint64_t measured_ns;    /* of_mono_ns() of that answer */
    double   lag_s;          /* what it measured */
};

/* May a catalog read go to the replica now? */
bool replica_usable(const struct replica_view *v, double max_lag_s, uint64_t now_ns);

/* replica may be NULL (no replica_url). Starts the probe timer when not. */
struct replica_route *replica_route_create(struct event_base *base, pool *primary, pool *replica,
                                           double max_lag_s);
void replica_route_destroy(struct replica_route *rt);

/* The pool for one public catalog read; *lagging is set true when it is
 * the replica (the answer may be up to max_lag old: never cache it). */
pool *replica_route_catalog(struct replica_route *rt, bool *lagging);
/* Everything else. */
pool *replica_route_primary(struct replica_route *rt);
/* A replica pool is configured. */
bool  replica_route_has_replica(const struct replica_route *rt);
/* The replica pool when one is configured and connected, whatever its lag,
 * else NULL: where a catalog read goes when the primary cannot answer. */
pool *replica_route_standby(struct replica_route *rt);

struct replica_stats {
    bool    configured, usable;
    int64_t lag_us;          /* last measured lag, -1 while none is fresh */
};
void replica_route_stats(struct replica_route *rt, struct replica_stats *out);

#endif
