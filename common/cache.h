/*
 * cache.h -- a bounded cache of rendered answers (body bytes and their
 * ETag), one per worker: single-threaded, no locks, no HTTP, no database.
 *
 * Entries live in groups (for products: one group of items keyed by id, one
 * of list pages keyed by the normalised query). Dropping a whole group is
 * O(1): each group has an epoch, an entry remembers the epoch it was stored
 * in, and an entry of an older epoch is a miss (freed when met, or evicted).
 * Eviction is LRU, bounded by an entry count and a byte budget; an entry
 * older than ttl is a miss. A hit allocates nothing; a put is one malloc.
 *
 * Lost updates: a miss takes a token (cache_token) before it asks the
 * database and hands it to cache_put; every invalidation moves the token
 * on, so an answer read before an invalidation arrived is never stored
 * after it. While the cache is off (cache_set_enabled(false): the worker's
 * LISTEN connection is down) it is empty, every get misses and every put is
 * dropped.
 */
#ifndef OF_CACHE_H
#define OF_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_GROUPS   4
#define CACHE_ETAG_CAP 35          /* '"' + 32 hex + '"' + NUL */

/* Counters the owner can place in shared memory (the scoreboard slot):
 * written by the cache's one thread, read by anyone. */
struct cache_stats {
    _Atomic uint64_t hits, misses, evictions, invalidations;
};

typedef struct cache cache;

struct cache_hit {
    const char *body;              /* valid until the next call on this cache */
    size_t      len;
    const char *etag;              /* quoted, NUL-terminated */
};

/* max_entries >= 1; max_bytes bounds keys + bodies; ttl_s >= 1. stats may
 * be NULL (then the cache counts into its own). Starts enabled. NULL on
 * out-of-memory. */
cache *cache_create(size_t max_entries, size_t max_bytes, unsigned ttl_s,
                    struct cache_stats *stats);
void   cache_destroy(cache *c);

/* Off: drop everything, refuse puts until turned on again (then empty). */
void   cache_set_enabled(cache *c, bool on);
bool   cache_enabled(const cache *c);

/* true and *hit on a live entry (counted as a hit), else false (a miss). */
bool   cache_get(cache *c, unsigned group, const void *key, size_t klen, struct cache_hit *hit);
/* The token a miss carries to cache_put; 0 while the cache is off. */
uint64_t cache_token(const cache *c);
/* Store a copy of body under key unless token is stale (an invalidation
 * came in since it was taken), the cache is off, or it does not fit. */
void   cache_put(cache *c, uint64_t token, unsigned group, const void *key, size_t klen,
                 const char *body, size_t len, const char *etag);

/* Invalidations (each counted once): one key, a whole group, everything. */
void   cache_drop(cache *c, unsigned group, const void *key, size_t klen);
void   cache_drop_group(cache *c, unsigned group);
void   cache_clear(cache *c);

size_t cache_count(const cache *c);      /* stored entries, stale ones included */
size_t cache_bytes(const cache *c);

/* For tests: the clock TTLs are read from (monotonic nanoseconds). */
void   cache_set_clock(cache *c, uint64_t (*now_ns)(void));

/* A strong ETag for body: '"' + hex BLAKE2b-128 + '"', NUL-terminated. */
void   cache_etag(const void *body, size_t len, char out[CACHE_ETAG_CAP]);

#endif
