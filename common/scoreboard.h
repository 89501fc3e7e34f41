/*
 * scoreboard.h -- the shared-memory region the master maps before forking.
 *
 * One slot per worker; a worker writes only its own slot (relaxed C11 atomics,
 * no locks on the request path), the master reads heartbeats from all of them
 * and /metrics sums them. Route ids index the per-route counters; the router
 * assigns them (0 = unmatched).
 */
#ifndef OF_SCOREBOARD_H
#define OF_SCOREBOARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/cache.h"

#define OF_SB_MAX_WORKERS 256
#define OF_SB_MAX_ROUTES  64
#define OF_SB_N_STATUS    20     /* see of_sb_status_index() */
#define OF_SB_N_METHODS   8      /* GET POST PUT PATCH DELETE HEAD OPTIONS other */
#define OF_SB_N_BUCKETS   12     /* latency histogram upper bounds, last is +Inf */

#define OF_SB_MAX_STMTS   128    /* statement ids: the worker's table order */

/* Database time and tracing, per worker (additive to the route counters). */
struct of_sb_db {
    _Atomic uint64_t wait_hist[OF_SB_N_BUCKETS];   /* pool wait, of_sb_bucket_bounds */
    _Atomic uint64_t wait_sum_us;
    _Atomic uint64_t stmt_count[OF_SB_MAX_STMTS];  /* round trips per statement id */
    _Atomic uint64_t stmt_sum_us[OF_SB_MAX_STMTS]; /* their time on the connection */
    _Atomic uint64_t spans_exported, spans_dropped;
    _Atomic uint64_t log_dropped;                   /* access-log lines dropped */
    _Atomic uint64_t accept_yields;                 /* accept step-backs (conn.c) */
};

enum of_sb_state { OF_SB_FREE = 0, OF_SB_BOOTING, OF_SB_READY, OF_SB_STOPPING };
/* What runs in a slot: a request worker or the jobs process (which uses the
 * slot for its pid, state and heartbeat only). */
enum of_sb_kind { OF_SB_KIND_WORKER = 0, OF_SB_KIND_JOBS };

struct of_sb_route {
    _Atomic uint64_t count[OF_SB_N_METHODS][OF_SB_N_STATUS];
    _Atomic uint64_t hist[OF_SB_N_BUCKETS];   /* cumulative-ready: per-bucket, summed at render */
    _Atomic uint64_t sum_us;
};

struct of_sb_slot {
    _Atomic int      state;
    _Atomic int      kind;            /* enum of_sb_kind */
    _Atomic pid_t    pid;
    _Atomic uint32_t generation;      /* config generation the worker runs */
    _Atomic int64_t  heartbeat;       /* CLOCK_MONOTONIC seconds */
    _Atomic uint64_t requests;        /* handled since start */
    _Atomic int      pool_open, pool_busy, pool_idle, pool_waiting;
    _Atomic int      db_ok;           /* 1 if the worker's pool reached PostgreSQL */
    _Atomic uint64_t pool_queries[2]; /* operations started: [0] primary pool, [1] replica pool */
    _Atomic int64_t  replica_lag_us;  /* measured replay lag; -1 none fresh, -2 no replicas */
    _Atomic int      replica_serving; /* 1 while catalog reads go to the replica */
    _Atomic int      conns;           /* open client connections */
    struct cache_stats cache;         /* the product cache's hits, misses, ... */
    _Atomic int      cache_listen_up; /* 1 while its LISTEN connection is up */
    struct of_sb_route routes[OF_SB_MAX_ROUTES];
    struct of_sb_db    db;
};

/* Token buckets for rate limits, shared by all workers. A bucket is found by
 * its 64-bit key (SipHash of the name under a seed the master draws at start,
 * so names cannot be crafted to collide) with a short linear probe. Only a
 * free bucket or a full one (refilled to its capacity: forgetting it loses
 * nothing) is ever reused for another key; an exhausted bucket is never
 * evicted. When all of the probe window is in use by partly spent buckets the
 * take fails closed (429 with the time until one of them is full again).
 *
 * Each bucket's lock word holds its holder's pid (0 = free), so a holder that
 * died inside the critical section cannot wedge the others: a waiter that has
 * spun OF_SB_LOCK_CHECK times checks whether the holder is alive (kill(pid,0)
 * = ESRCH) and steals the lock; the master also clears the locks of a worker
 * it reaps. A waiter that spins OF_SB_LOCK_SPINS times in all (a live holder
 * starved of CPU) gives up and the take fails open (allowed). */
#define OF_SB_RL_SLOTS 8192
#define OF_SB_RL_PROBE 8
#define OF_SB_LOCK_CHECK 4096
#define OF_SB_LOCK_SPINS (1u << 20)

struct of_sb_bucket {
    _Atomic pid_t lock;       /* 0 = free, else the holder's pid */
    int         cap;          /* the per_minute it was filled with */
    uint64_t    key;          /* 0 = free */
    double      tokens;
    double      last;         /* monotonic seconds of the last refill */
};

/* The jobs processes' delivery metrics (every jobs process of this master
 * adds to the counters; the gauges are whatever one of them measured last). */
#define OF_SB_JOBS_KINDS    2      /* 0 mail, 1 webhook */
#define OF_SB_JOBS_OUTCOMES 3      /* 0 succeeded, 1 failed attempt (retried), 2 dead */
struct of_sb_jobs {
    _Atomic uint64_t outcomes[OF_SB_JOBS_KINDS][OF_SB_JOBS_OUTCOMES];
    _Atomic uint64_t hist[OF_SB_JOBS_KINDS][OF_SB_N_BUCKETS];   /* attempt duration */
    _Atomic uint64_t sum_us[OF_SB_JOBS_KINDS];
    _Atomic int64_t  pending_events;       /* undispatched events */
    _Atomic int64_t  pending_deliveries;
    _Atomic int64_t  oldest_pending_s;     /* age of the oldest pending delivery */
    _Atomic int      measured;             /* 1 once the gauges were filled */
};

struct of_scoreboard {
    _Atomic pid_t    master_pid;
    _Atomic int64_t  start_time;         /* unix seconds */
    _Atomic uint64_t worker_restarts;    /* workers replaced after death or timeout */
    _Atomic int      workers_target;
    /* Odd while the master folds a dead worker into retired[]: readers that
     * sum slots + retired retry when it changed under them (a seqlock). */
    _Atomic uint32_t retire_seq;
    /* Counters of workers that have exited, so totals do not go backwards. */
    struct of_sb_route retired[OF_SB_MAX_ROUTES];
    struct of_sb_db    retired_db;
    struct of_sb_slot slots[OF_SB_MAX_WORKERS];
    struct of_sb_bucket rl[OF_SB_RL_SLOTS];
    unsigned char    rl_seed[16];        /* crypto_shorthash key, drawn in of_sb_create */
    struct of_sb_jobs jobs;
};

extern const double of_sb_bucket_bounds[OF_SB_N_BUCKETS - 1];   /* seconds */
extern const int    of_sb_status_codes[OF_SB_N_STATUS];         /* 0 = other */
extern const char  *const of_sb_method_names[OF_SB_N_METHODS];

/* mmap(MAP_SHARED|MAP_ANONYMOUS) a zeroed scoreboard; NULL on failure. */
struct of_scoreboard *of_sb_create(void);
void of_sb_destroy(struct of_scoreboard *sb);

int  of_sb_status_index(int status);
int  of_sb_method_index(const char *method);
/* Record one finished request in the worker's slot. */
void of_sb_record(struct of_sb_slot *slot, int route_id, int method_idx, int status, uint64_t dur_us);
/* A wait for a free connection; one statement's round trip (id < OF_SB_MAX_STMTS). */
void of_sb_db_wait(struct of_sb_slot *slot, uint64_t wait_us);
void of_sb_db_stmt(struct of_sb_slot *slot, int stmt_id, uint64_t dur_us);
/* Record one finished delivery attempt (kind 0 mail / 1 webhook, outcome
 * 0 succeeded / 1 failed, will retry / 2 dead). */
void of_sb_jobs_record(struct of_scoreboard *sb, int kind, int outcome, uint64_t dur_us);
/* Fold a dead worker's counters into sb->retired and clear its slot. */
void of_sb_retire(struct of_scoreboard *sb, int slot);

/* Take one token from the bucket of key (capacity per_minute, refilled at
 * per_minute/60 per second). Returns true if allowed; otherwise false with
 * *retry_after the whole seconds until a token is back (>= 1). */
bool of_sb_rl_take(struct of_scoreboard *sb, uint64_t key, int per_minute, double now,
                   int *retry_after);
/* The bucket key of a (kind, name): SipHash-2-4 under sb->rl_seed; never 0. */
uint64_t of_sb_rl_key(const struct of_scoreboard *sb, const char *kind, const char *value);

/* A lock word in shared memory: take it as pid me, stealing it from a holder
 * that no longer exists; false after OF_SB_LOCK_SPINS spins (fail open). */
bool of_sb_lock(_Atomic pid_t *lock, pid_t me);
void of_sb_unlock(_Atomic pid_t *lock);
/* The master reaped pid: free every rate-limit lock it still held. Returns
 * how many it freed. */
int  of_sb_unlock_dead(struct of_scoreboard *sb, pid_t pid);

#endif
