/*
 * scoreboard.c -- see scoreboard.h.
 */
#include "common/scoreboard.h"

#include <errno.h>
#include <signal.h>
#include <sched.h>
#include <sodium.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

const double of_sb_bucket_bounds[OF_SB_N_BUCKETS - 1] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
};

const int of_sb_status_codes[OF_SB_N_STATUS] = {
    200, 201, 204, 400, 401, 403, 404, 405, 409, 413,
    415, 422, 429, 500, 503, 304, 408, 431, 502, 0,
};

const char *const of_sb_method_names[OF_SB_N_METHODS] = {
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "OTHER",
};

struct of_scoreboard *
of_sb_create(void)
{
    void *p = mmap(NULL, sizeof(struct of_scoreboard), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (sodium_init() < 0) {
        munmap(p, sizeof(struct of_scoreboard));
        return NULL;
    }
    /* anonymous mappings are zero-filled; the seed is this master's own */
    struct of_scoreboard *sb = p;
    randombytes_buf(sb->rl_seed, sizeof(sb->rl_seed));
    return sb;
}

void
of_sb_destroy(struct of_scoreboard *sb)
{
    if (sb != NULL)
        munmap(sb, sizeof(*sb));
}

int
of_sb_status_index(int status)
{
    for (int i = 0; i < OF_SB_N_STATUS - 1; i++)
        if (of_sb_status_codes[i] == status)
            return i;
    return OF_SB_N_STATUS - 1;
}

int
of_sb_method_index(const char *method)
{
    for (int i = 0; i < OF_SB_N_METHODS - 1; i++)
        if (strcmp(of_sb_method_names[i], method) == 0)
            return i;
    return OF_SB_N_METHODS - 1;
}

void
of_sb_record(struct of_sb_slot *slot, int route_id, int method_idx, int status, uint64_t dur_us)
{
    if (route_id < 0 || route_id >= OF_SB_MAX_ROUTES)
        route_id = 0;
    struct of_sb_route *r = &slot->routes[route_id];
    atomic_fetch_add_explicit(&r->count[method_idx][of_sb_status_index(status)], 1, memory_order_relaxed);
    double s = (double)dur_us / 1e6;
    int    b = 0;
    while (b < OF_SB_N_BUCKETS - 1 && s > of_sb_bucket_bounds[b])
        b++;
    atomic_fetch_add_explicit(&r->hist[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->sum_us, dur_us, memory_order_relaxed);
    atomic_fetch_add_explicit(&slot->requests, 1, memory_order_relaxed);
}

static int
bucket_of(uint64_t us)
{
    double s = (double)us / 1e6;
    int    b = 0;
    while (b < OF_SB_N_BUCKETS - 1 && s > of_sb_bucket_bounds[b])
        b++;
    return b;
}

void
of_sb_db_wait(struct of_sb_slot *slot, uint64_t wait_us)
{
    atomic_fetch_add_explicit(&slot->db.wait_hist[bucket_of(wait_us)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&slot->db.wait_sum_us, wait_us, memory_order_relaxed);
}

void
of_sb_db_stmt(struct of_sb_slot *slot, int stmt_id, uint64_t dur_us)
{
    if (stmt_id < 0 || stmt_id >= OF_SB_MAX_STMTS)
        return;
    atomic_fetch_add_explicit(&slot->db.stmt_count[stmt_id], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&slot->db.stmt_sum_us[stmt_id], dur_us, memory_order_relaxed);
}

static void
retire_db(struct of_sb_db *to, struct of_sb_db *from)
{
    for (int b = 0; b < OF_SB_N_BUCKETS; b++)
        atomic_fetch_add(&to->wait_hist[b], atomic_load(&from->wait_hist[b]));
    atomic_fetch_add(&to->wait_sum_us, atomic_load(&from->wait_sum_us));
    for (int i = 0; i < OF_SB_MAX_STMTS; i++) {
        atomic_fetch_add(&to->stmt_count[i], atomic_load(&from->stmt_count[i]));
        atomic_fetch_add(&to->stmt_sum_us[i], atomic_load(&from->stmt_sum_us[i]));
    }
    atomic_fetch_add(&to->spans_exported, atomic_load(&from->spans_exported));
    atomic_fetch_add(&to->spans_dropped, atomic_load(&from->spans_dropped));
    atomic_fetch_add(&to->log_dropped, atomic_load(&from->log_dropped));
}

void
of_sb_jobs_record(struct of_scoreboard *sb, int kind, int outcome, uint64_t dur_us)
{
    struct of_sb_jobs *j = &sb->jobs;
    if (kind < 0 || kind >= OF_SB_JOBS_KINDS || outcome < 0 || outcome >= OF_SB_JOBS_OUTCOMES)
        return;
    atomic_fetch_add_explicit(&j->outcomes[kind][outcome], 1, memory_order_relaxed);
    double s = (double)dur_us / 1e6;
    int    b = 0;
    while (b < OF_SB_N_BUCKETS - 1 && s > of_sb_bucket_bounds[b])
        b++;
    atomic_fetch_add_explicit(&j->hist[kind][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&j->sum_us[kind], dur_us, memory_order_relaxed);
}

void
of_sb_retire(struct of_scoreboard *sb, int slot)
{
    struct of_sb_slot *s = &sb->slots[slot];
    atomic_fetch_add(&sb->retire_seq, 1);
    for (int r = 0; r < OF_SB_MAX_ROUTES; r++) {
        struct of_sb_route *from = &s->routes[r], *to = &sb->retired[r];
        for (int m = 0; m < OF_SB_N_METHODS; m++)
            for (int k = 0; k < OF_SB_N_STATUS; k++)
                atomic_fetch_add(&to->count[m][k], atomic_load(&from->count[m][k]));
        for (int b = 0; b < OF_SB_N_BUCKETS; b++)
            atomic_fetch_add(&to->hist[b], atomic_load(&from->hist[b]));
        atomic_fetch_add(&to->sum_us, atomic_load(&from->sum_us));
    }
    retire_db(&sb->retired_db, &s->db);
    memset((void *)s, 0, sizeof(*s));
    atomic_fetch_add(&sb->retire_seq, 1);
}

uint64_t
of_sb_rl_key(const struct of_scoreboard *sb, const char *kind, const char *value)
{
    /* SipHash(kind ":" SipHash(value)): no buffer for long names. */
    unsigned char vh[crypto_shorthash_BYTES], in[64 + crypto_shorthash_BYTES], out[8];
    size_t        klen = strnlen(kind, 63);
    uint64_t      h;

    crypto_shorthash(vh, (const unsigned char *)value, strlen(value), sb->rl_seed);
    memcpy(in, kind, klen);
    in[klen] = ':';
    memcpy(in + klen + 1, vh, sizeof(vh));
    crypto_shorthash(out, in, klen + 1 + sizeof(vh), sb->rl_seed);
    memcpy(&h, out, sizeof(h));
    return h ? h : 1;
}

static bool
holder_gone(pid_t pid)
{
    return kill(pid, 0) == -1 && errno == ESRCH;
}

bool
of_sb_lock(_Atomic pid_t *lock, pid_t me)
{
    for (uint32_t i = 1; i <= OF_SB_LOCK_SPINS; i++) {
        pid_t cur = 0;
        if (atomic_compare_exchange_weak_explicit(lock, &cur, me, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
        if (i % OF_SB_LOCK_CHECK != 0 || cur == 0)
            continue;
        /* The holder died inside its critical section: take the lock over
         * (only if it is still that holder's). */
        if (holder_gone(cur) &&
            atomic_compare_exchange_strong_explicit(lock, &cur, me, memory_order_acquire,
                                                    memory_order_relaxed))
            return true;
        sched_yield();
    }
    return false;
}

void
of_sb_unlock(_Atomic pid_t *lock)
{
    atomic_store_explicit(lock, 0, memory_order_release);
}

int
of_sb_unlock_dead(struct of_scoreboard *sb, pid_t pid)
{
    int n = 0;
    for (size_t i = 0; i < OF_SB_RL_SLOTS; i++) {
        pid_t cur = pid;
        if (atomic_compare_exchange_strong(&sb->rl[i].lock, &cur, 0))
            n++;
    }
    return n;
}

/* Seconds until b is back to its capacity (0 = full: it may be reused). */
static double
until_full(const struct of_sb_bucket *b, double now)
{
    if (b->key == 0 || b->cap <= 0)
        return 0;
    double rate = b->cap / 60.0;
    double have = b->tokens + (now - b->last) * rate;
    return have >= b->cap ? 0 : (b->cap - have) / rate;
}

/* Lock the bucket of key in its probe window, or a free/full one to reuse.
 * NULL with *fail_open set when a lock could not be had, or with *wait the
 * seconds until a bucket of the (full) window can be reused. */
static struct of_sb_bucket *
rl_find(struct of_scoreboard *sb, uint64_t key, double now, pid_t me, bool *fail_open,
        double *wait)
{
    size_t               start = (size_t)(key % OF_SB_RL_SLOTS);
    struct of_sb_bucket *pick = NULL;

    *wait = 3600;
    for (size_t i = 0; i < OF_SB_RL_PROBE; i++) {
        struct of_sb_bucket *b = &sb->rl[(start + i) % OF_SB_RL_SLOTS];
        if (!of_sb_lock(&b->lock, me)) {
            if (pick != NULL)
                of_sb_unlock(&pick->lock);
            *fail_open = true;
            return NULL;
        }
        double left = b->key == key ? 0 : until_full(b, now);
        if (b->key == key || (left == 0 && pick == NULL)) {
            if (pick != NULL)
                of_sb_unlock(&pick->lock);
            pick = b;
            if (b->key == key)
                break;
            continue;
        }
        if (left < *wait)
            *wait = left;
        of_sb_unlock(&b->lock);
    }
    return pick;
}

bool
of_sb_rl_take(struct of_scoreboard *sb, uint64_t key, int per_minute, double now,
              int *retry_after)
{
    double rate = per_minute / 60.0, wait = 0;
    bool   fail_open = false;

    struct of_sb_bucket *pick = rl_find(sb, key, now, getpid(), &fail_open, &wait);
    if (pick == NULL) {
        if (fail_open)
            return true;       /* a live holder kept the lock too long */
        *retry_after = wait < 1.0 ? 1 : (int)(wait + 0.999);
        return false;          /* every bucket near it is in use: fail closed */
    }
    if (pick->key != key) {
        pick->key = key;
        pick->cap = per_minute;
        pick->tokens = per_minute;
        pick->last = now;
    }
    pick->cap = per_minute;
    pick->tokens += (now - pick->last) * rate;
    if (pick->tokens > per_minute)
        pick->tokens = per_minute;
    pick->last = now;
    bool ok = pick->tokens >= 1.0;
    if (ok) {
        pick->tokens -= 1.0;
    } else {
        double w = (1.0 - pick->tokens) / rate;
        *retry_after = w < 1.0 ? 1 : (int)(w + 0.999);
    }
    of_sb_unlock(&pick->lock);
    return ok;
}
