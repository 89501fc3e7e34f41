/*
 * cache.c -- see cache.h. A chained hash table (power-of-two buckets, keyed
 * SipHash so a client cannot aim list-page keys at one chain) over entries
 * that also sit on one LRU list. An entry is one malloc: header, key, body.
 */
#include "common/cache.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct centry {
    struct centry *hnext;          /* bucket chain */
    struct centry *prev, *next;    /* LRU: head is the most recent */
    uint64_t       hash;
    uint64_t       epoch;          /* of its group when stored */
    uint64_t       expires_ns;
    uint32_t       klen, blen;
    unsigned       group;
    char           etag[CACHE_ETAG_CAP];
    char           data[];         /* key, then body */
};

struct cache {
    struct centry    **buckets;
    size_t             mask;
    struct centry     *head, *tail;
    size_t             count, bytes, max_entries, max_bytes;
    uint64_t           ttl_ns;
    uint64_t           epoch[CACHE_GROUPS];
    uint64_t           token;      /* moves on with every invalidation */
    bool               enabled;
    uint64_t         (*now_ns)(void);
    struct cache_stats *stats;
    struct cache_stats  own_stats;
    unsigned char      hkey[crypto_shorthash_KEYBYTES];
};

static uint64_t
coarse_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
count(_Atomic uint64_t *ctr)
{
    atomic_fetch_add_explicit(ctr, 1, memory_order_relaxed);
}

static uint64_t
key_hash(const cache *c, unsigned group, const void *key, size_t klen)
{
    unsigned char out[crypto_shorthash_BYTES];
    uint64_t      h;

    crypto_shorthash(out, key, klen, c->hkey);
    memcpy(&h, out, sizeof(h));
    return h ^ group;
}

static void
lru_unlink(cache *c, struct centry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
}

static void
lru_push_front(cache *c, struct centry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head != NULL)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

/* Unlink e from its chain and the LRU list and free it. */
static void
entry_free(cache *c, struct centry *e)
{
    struct centry **pp = &c->buckets[e->hash & c->mask];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->count--;
    c->bytes -= (size_t)e->klen + e->blen;
    free(e);
}

static struct centry *
find(cache *c, uint64_t h, unsigned group, const void *key, size_t klen)
{
    for (struct centry *e = c->buckets[h & c->mask]; e != NULL; e = e->hnext)
        if (e->hash == h && e->group == group && e->klen == klen && memcmp(e->data, key, klen) == 0)
            return e;
    return NULL;
}

static bool
entry_live(const cache *c, const struct centry *e, uint64_t now)
{
    return e->epoch == c->epoch[e->group] && now < e->expires_ns;
}

cache *
cache_create(size_t max_entries, size_t max_bytes, unsigned ttl_s, struct cache_stats *stats)
{
    if (max_entries == 0 || ttl_s == 0 || sodium_init() < 0)
        return NULL;
    cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    size_t nb = 16;
    while (nb < max_entries && nb < ((size_t)1 << 30))
        nb <<= 1;
    c->buckets = calloc(nb, sizeof(*c->buckets));
    if (c->buckets == NULL) {
        free(c);
        return NULL;
    }
    c->mask = nb - 1;
    c->max_entries = max_entries;
    c->max_bytes = max_bytes;
    c->ttl_ns = (uint64_t)ttl_s * 1000000000u;
    c->token = 1;
    c->enabled = true;
    c->now_ns = coarse_now_ns;
    c->stats = stats != NULL ? stats : &c->own_stats;
    crypto_shorthash_keygen(c->hkey);
    return c;
}

static void
free_all(cache *c)
{
    struct centry *e = c->head, *next;
    for (; e != NULL; e = next) {
        next = e->next;
        c->buckets[e->hash & c->mask] = NULL;
        free(e);
    }
    c->head = c->tail = NULL;
    c->count = 0;
    c->bytes = 0;
}

void
cache_destroy(cache *c)
{
    if (c == NULL)
        return;
    free_all(c);
    free(c->buckets);
    free(c);
}

void
cache_set_enabled(cache *c, bool on)
{
    if (!on && c->enabled)
        count(&c->stats->invalidations);
    free_all(c);
    c->token++;
    c->enabled = on;
}

bool
cache_enabled(const cache *c)
{
    return c->enabled;
}

bool
cache_get(cache *c, unsigned group, const void *key, size_t klen, struct cache_hit *hit)
{
    if (!c->enabled || group >= CACHE_GROUPS)
        return false;
    uint64_t       h = key_hash(c, group, key, klen);
    struct centry *e = find(c, h, group, key, klen);
    if (e != NULL && !entry_live(c, e, c->now_ns())) {
        entry_free(c, e);
        e = NULL;
    }
    if (e == NULL) {
        count(&c->stats->misses);
        return false;
    }
    if (c->head != e) {
        lru_unlink(c, e);
        lru_push_front(c, e);
    }
    hit->body = e->data + e->klen;
    hit->len = e->blen;
    hit->etag = e->etag;
    count(&c->stats->hits);
    return true;
}

uint64_t
cache_token(const cache *c)
{
    return c->enabled ? c->token : 0;
}

/* Make room for one entry of need bytes: evict from the LRU tail. */
static void
make_room(cache *c, size_t need)
{
    while (c->tail != NULL && (c->count >= c->max_entries || c->bytes + need > c->max_bytes)) {
        struct centry *e = c->tail;
        if (entry_live(c, e, c->now_ns()))
            count(&c->stats->evictions);
        entry_free(c, e);
    }
}

void
cache_put(cache *c, uint64_t token, unsigned group, const void *key, size_t klen,
          const char *body, size_t len, const char *etag)
{
    if (!c->enabled || token != c->token || group >= CACHE_GROUPS || klen + len > c->max_bytes
        || klen > UINT32_MAX || len > UINT32_MAX)
        return;
    uint64_t       h = key_hash(c, group, key, klen);
    struct centry *old = find(c, h, group, key, klen);
    if (old != NULL)
        entry_free(c, old);
    make_room(c, klen + len);
    struct centry *e = malloc(sizeof(*e) + klen + len);
    if (e == NULL)
        return;
    e->hash = h;
    e->group = group;
    e->epoch = c->epoch[group];
    e->expires_ns = c->now_ns() + c->ttl_ns;
    e->klen = (uint32_t)klen;
    e->blen = (uint32_t)len;
    memcpy(e->data, key, klen);
    memcpy(e->data + klen, body, len);
    size_t elen = strnlen(etag, CACHE_ETAG_CAP - 1);
    memcpy(e->etag, etag, elen);
    e->etag[elen] = '\0';
    e->hnext = c->buckets[h & c->mask];
    c->buckets[h & c->mask] = e;
    lru_push_front(c, e);
    c->count++;
    c->bytes += klen + len;
}

void
cache_drop(cache *c, unsigned group, const void *key, size_t klen)
{
    c->token++;
    count(&c->stats->invalidations);
    if (group >= CACHE_GROUPS)
        return;
    struct centry *e = find(c, key_hash(c, group, key, klen), group, key, klen);
    if (e != NULL)
        entry_free(c, e);
}

void
cache_drop_group(cache *c, unsigned group)
{
    c->token++;
    count(&c->stats->invalidations);
    if (group < CACHE_GROUPS)
        c->epoch[group]++;
}

void
cache_clear(cache *c)
{
    c->token++;
    count(&c->stats->invalidations);
    free_all(c);
}

size_t
cache_count(const cache *c)
{
    return c->count;
}

size_t
cache_bytes(const cache *c)
{
    return c->bytes;
}

void
cache_set_clock(cache *c, uint64_t (*now_ns)(void))
{
    c->now_ns = now_ns != NULL ? now_ns : coarse_now_ns;
}

void
cache_etag(const void *body, size_t len, char out[CACHE_ETAG_CAP])
{
    unsigned char h[16];
    crypto_generichash(h, sizeof(h), body, len, NULL, 0);
    out[0] = '"';
    sodium_bin2hex(out + 1, 33, h, sizeof(h));
    out[33] = '"';
    out[34] = '\0';
}
