/*
 * worker_int.h -- the worker's private state, shared by worker.c (the loop,
 * signals, heartbeat, stopping) and wire.c (the services). The request
 * path keeps its own state in struct http (http.c), which knows nothing of
 * struct worker.
 */
#ifndef OF_WORKER_INT_H
#define OF_WORKER_INT_H

#include <event2/event.h>

#include "common/scoreboard.h"
#include "config/config.h"
#include "handlers/services.h"
#include "store/pool.h"
#include "store/pglisten.h"
#include "worker/hasher.h"

struct http;

struct worker {
    const struct of_cfg         *cfg;
    struct event_base           *base;
    struct http                 *http;        /* evhttp and the request path (http.c) */
    struct of_scoreboard        *sb;
    struct of_sb_slot           *slot;
    pool                        *pool;
    pool                        *replica_pool;   /* database.replica_url, else NULL */
    struct replica_route        *route;          /* where catalog reads go (store/replica.h) */
    hasher                      *hasher;
    struct event                *hb_timer;
    struct event                *stop_timer;
    struct event                *drain_tick;  /* graceful stop: backlog, idle conns, exit */
    uint64_t                     stop_ns;
    struct event                *sigs[6];
    struct hdl_services          svc;
    long                         max_requests;
    uint64_t                     handled;     /* requests answered */
    bool                         stopping;
    bool                         drained;
    int                          slot_index;
    int                          listen_fd;
    struct event                *warmup;      /* until the pool has tried the database */
    uint64_t                     warmup_start_ns;
    struct cache                *pcache;      /* product reads; NULL when cache.enabled = false */
    pglisten                    *pcache_listen;   /* its LISTEN of_products connection */
};

/* The one worker of this process (worker.c). */
struct worker *worker_self(void);

/* wire.c: create repositories and services over the pool; fill w->svc. */
int  wire_services(struct worker *w);
/* wire.c: the worker's pool, over every statement of every repository. */
pool *wire_pool_create(struct event_base *base, const struct of_cfg *cfg);

#endif
