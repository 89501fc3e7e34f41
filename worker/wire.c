/*
 * wire.c -- dependency injection, the C way: make the PostgreSQL
 * repositories over this worker's pool, give them to the services together
 * with the crypto adapters (argon2id thread pool, HS256 tokens), and hand the
 * services to the handlers through w->svc. The pool itself is made here too,
 * from the configuration's database section (store/ does not read config/).
 */
#include "worker/worker_int.h"
#include "worker/jwt.h"
#include "worker/ratelimit.h"
#include "worker/metrics.h"
#include "worker/trace.h"
#include "store/repos.h"
#include "store/replica.h"
#include "store/testq.h"
#include "domain/auth_svc.h"
#include "domain/product.h"
#include "domain/customer.h"
#include "domain/order.h"
#include "domain/bank.h"
#include "domain/audit.h"
#include "domain/webhook.h"
#include "store/idem_repo.h"
#include "store/event_wake.h"
#include "store/pglisten.h"
#include "handlers/products.h"
#include "common/cache.h"
#include "handlers/list.h"
#include "common/log.h"
#include "common/of.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- adapters ---- */

static void
hash_adapter(void *self, const char *pw, size_t len, pw_hash_cb cb, void *arg)
{
    if (hasher_hash(self, pw, len, cb, arg) == NULL)
        cb(OF_UNAVAILABLE, NULL, arg);
}

static void
verify_adapter(void *self, const char *hash, const char *pw, size_t len, pw_verify_cb cb, void *arg)
{
    hasher_job *j = hash != NULL ? hasher_verify(self, hash, pw, len, cb, arg)
                                 : hasher_verify_dummy(self, pw, len, cb, arg);
    if (j == NULL)
        cb(OF_UNAVAILABLE, arg);
}

static int
issue_adapter(void *self, int64_t user_id, const char *role, char *out, size_t cap)
{
    const struct of_cfg *cfg = self;
    return jwt_issue((const unsigned char *)cfg->auth.jwt_secret, cfg->auth.jwt_secret_len,
                     user_id, role, cfg->auth.token_ttl, out, cap);
}

static bool
probe_db_ready(void *ctx)
{
    struct worker *w = ctx;
    return pool_ready(w->pool);
}

static const char *
probe_db_role(void *ctx)
{
    struct worker *w = ctx;
    return pool_role(w->pool);
}

static const char *
probe_replica(void *ctx)
{
    struct worker *w = ctx;
    struct replica_stats rs;
    replica_route_stats(w->route, &rs);
    if (!rs.configured)
        return NULL;
    return rs.usable ? "ok" : pool_ready(w->replica_pool) ? "lagging" : "down";
}

static size_t
probe_metrics(void *ctx, char **out, void *mem)
{
    struct worker *w = ctx;
    return metrics_render(w->sb, mem, out);
}

static bool
probe_metrics_allowed(void *ctx, const char *client_ip)
{
    struct worker *w = ctx;
    return metrics_allowed(w->cfg, client_ip);
}

static bool
limit_login_user(void *ctx, const char *username, int *retry_after)
{
    struct worker *w = ctx;
    return ratelimit_allow_login_user(w->sb, &w->cfg->rate_limit, username, retry_after);
}

/* ---- statements ---- */

static const struct pool_stmt *all_stmts[512];
static const struct pool_stmt *const test_stmts[] = { &pool_stmt_test_sleep };
static const size_t test_nstmts = OF_ARRAY_LEN(test_stmts);

static const struct pool_stmt *const *
wire_statements(size_t *n)
{
    static const struct { const struct pool_stmt *const *t; const size_t *n; } tables[] = {
        { store_user_stmts, &store_user_nstmts },
        { store_product_stmts, &store_product_nstmts },
        { store_customer_stmts, &store_customer_nstmts },
        { store_order_stmts, &store_order_nstmts },
        { store_idem_stmts, &store_idem_nstmts },
        { store_bank_stmts, &store_bank_nstmts },
        { store_audit_stmts, &store_audit_nstmts },
        { store_webhook_stmts, &store_webhook_nstmts },
        { store_event_wake_stmts, &store_event_wake_nstmts },
        { test_stmts, &test_nstmts },
    };
    size_t k = 0;
    for (size_t i = 0; i < OF_ARRAY_LEN(tables); i++)
        for (size_t j = 0; j < *tables[i].n && k < OF_ARRAY_LEN(all_stmts); j++)
            all_stmts[k++] = tables[i].t[j];
    *n = k;
    return all_stmts;
}

/* The pool's options from the database section of the configuration. */
pool *
wire_pool_create(struct event_base *base, const struct of_cfg *cfg)
{
    const struct cfg_database *d = &cfg->database;
    static char app_name[32];     /* PostgreSQL sees which worker: pg_stat_activity */
    snprintf(app_name, sizeof(app_name), "orderflow/%ld", (long)getpid());
    struct pool_opts o = {
        .url = d->url,
        .size = d->pool_size,
        .queue_timeout_ms = d->queue_timeout_ms,
        .statement_timeout_ms = d->statement_timeout_ms,
        .connect_timeout_s = d->connect_timeout,
        .prepared_statements = d->prepared_statements,
        .application_name = app_name,
    };
    size_t n;
    const struct pool_stmt *const *st = wire_statements(&n);
    return pool_create(base, &o, st, n);
}

/* The read-replica pool (database.replica_url) and the route catalog reads
 * take; without a replica_url the route sends everything to w->pool. The
 * replica pool is small (catalog reads only) and says so in its
 * application_name. No tracing observer: its statements are not in the
 * tracer's table. */
#define REPLICA_POOL_MAX 2

static int
wire_replica(struct worker *w)
{
    const struct cfg_database *d = &w->cfg->database;
    static char app_name[40];
    if (d->replica_url != NULL && d->replica_url[0] != '\0') {
        snprintf(app_name, sizeof(app_name), "orderflow/%ld-replica", (long)getpid());
        struct pool_opts o = {
            .url = d->replica_url,
            .size = d->pool_size < REPLICA_POOL_MAX ? d->pool_size : REPLICA_POOL_MAX,
            .queue_timeout_ms = d->queue_timeout_ms,
            .statement_timeout_ms = d->statement_timeout_ms,
            .connect_timeout_s = d->connect_timeout,
            .prepared_statements = d->prepared_statements,
            .application_name = app_name,
            .prefer_standby = true,
        };
        w->replica_pool = pool_create(w->base, &o, store_catalog_stmts, store_catalog_nstmts);
        if (w->replica_pool == NULL)
            return OF_ERR;
    }
    w->route = replica_route_create(w->base, w->pool, w->replica_pool, d->replica_max_lag);
    return w->route != NULL ? OF_OK : OF_ERR;
}

/* ---- expired Idempotency-Key purge: every worker, one at a time ----
 * (It ran in scoreboard slot 0 only, and after a HUP no worker sits there;
 * the statement's advisory lock picks one purger, across hosts too.) */

#define IDEM_PURGE_FIRST_S  5
#define IDEM_PURGE_EVERY_S  600

static struct event *idem_purge_ev;
static struct of_mem *idem_purge_mem;   /* non-NULL while a purge is in flight */

static void
idem_purged(int rc, int64_t n, void *arg)
{
    OF_UNUSED(arg);
    if (rc != OF_OK)
        of_log_warn("idempotency key purge failed (rc %d)", rc);
    else if (n > 0)
        of_log_info("purged %lld expired idempotency keys", (long long)n);
    of_mem_release(idem_purge_mem);
    free(idem_purge_mem);
    idem_purge_mem = NULL;
}

static void
idem_purge_tick(evutil_socket_t fd, short what, void *arg)
{
    OF_UNUSED(fd);
    OF_UNUSED(what);
    struct worker *w = arg;
    struct timeval every = { IDEM_PURGE_EVERY_S, 0 };
    event_add(idem_purge_ev, &every);
    if (idem_purge_mem != NULL || w->stopping)
        return;
    idem_purge_mem = malloc(sizeof(*idem_purge_mem));
    if (idem_purge_mem == NULL)
        return;
    of_mem_init(idem_purge_mem);
    struct idem_repo ir = store_idem_repo(w->pool);
    ir.ops->purge(ir.self, idem_purge_mem, idem_purged, NULL);
}

static void
idem_purge_arm(struct worker *w)
{
    idem_purge_ev = evtimer_new(w->base, idem_purge_tick, w);
    if (idem_purge_ev == NULL)
        return;
    struct timeval first = { IDEM_PURGE_FIRST_S, 0 };
    event_add(idem_purge_ev, &first);
}

/* ---- the product cache and its LISTEN connection ---- */

/* Bytes of cached bodies per worker, beside cache.max_entries: a list page
 * of 100 products is ~15 kB, so the entry count alone would not bound it. */
#define PCACHE_MAX_BYTES ((size_t)64 << 20)

static void
pcache_notify(void *arg, const char *channel, const char *payload)
{
    struct worker *w = arg;
    OF_UNUSED(channel);
    hdl_products_invalidate(w->pcache, payload);
}

/* No LISTEN connection, no cache: notifications may be lost while it is
 * down, so the cache is emptied and stays off until LISTEN is back. */
static void
pcache_state(void *arg, bool up)
{
    struct worker *w = arg;
    cache_set_enabled(w->pcache, up);
    atomic_store_explicit(&w->slot->cache_listen_up, up ? 1 : 0, memory_order_relaxed);
    if (up)
        of_log_info("product cache on (LISTEN of_products)");
    else
        of_log_warn("product cache off: LISTEN connection lost");
}

static const struct pglisten_hooks pcache_hooks = { pcache_notify, pcache_state };

static int
wire_product_cache(struct worker *w)
{
    static const char *const channels[] = { "of_products" };
    const struct cfg_cache  *cc = &w->cfg->cache;

    atomic_store(&w->slot->cache_listen_up, 0);
    if (!cc->enabled)
        return OF_OK;
    w->pcache = cache_create((size_t)cc->max_entries, PCACHE_MAX_BYTES, (unsigned)cc->ttl,
                             &w->slot->cache);
    if (w->pcache == NULL)
        return OF_ERR;
    cache_set_enabled(w->pcache, false);       /* until LISTEN is up */
    w->pcache_listen = pglisten_create(w->base, w->cfg->database.url, "orderflow-cache",
                                       channels, 1, &pcache_hooks, w);
    if (w->pcache_listen == NULL)
        return OF_ERR;
    w->svc.product_cache = w->pcache;
    return OF_OK;
}

int
wire_services(struct worker *w)
{
    struct hdl_services *s = &w->svc;

    s->probe.db_ready = probe_db_ready;
    s->probe.db_role = probe_db_role;
    s->probe.replica = probe_replica;
    s->probe.metrics = probe_metrics;
    s->probe.metrics_allowed = probe_metrics_allowed;
    s->probe.ctx = w;
    s->limits.login_user = limit_login_user;
    s->limits.ctx = w;
    s->allow_registration = w->cfg->auth.allow_registration;
    s->token_ttl = w->cfg->auth.token_ttl;
    hdl_list_init_key(w->cfg->auth.jwt_secret, w->cfg->auth.jwt_secret_len);

    size_t nst;
    const struct pool_stmt *const *st = wire_statements(&nst);
    if (trace_init(w->base, &w->cfg->tracing, w->slot, st, nst) != OF_OK)
        return OF_ERR;
    pool_set_observer(w->pool, trace_pool_observer());
    metrics_statements(st, nst);

    struct pw_hasher    ph = { hash_adapter, verify_adapter, w->hasher };
    struct token_issuer ti = { issue_adapter, (void *)w->cfg };
    s->auth = auth_svc_create(store_user_repo(w->pool), ph, ti);
    if (wire_replica(w) != OF_OK)
        return OF_ERR;
    s->products = product_svc_create(store_product_repo(w->route));
    s->customers = customer_svc_create(store_customer_repo(w->pool));
    s->orders = order_svc_create(store_order_repo(w->pool), store_idem_repo(w->pool));
    if (s->orders == NULL)
        return OF_ERR;
    s->bank = bank_svc_create(store_bank_repo(w->pool), store_idem_repo(w->pool));
    s->audit = audit_svc_create(store_audit_repo(w->pool));
    s->webhooks = webhook_svc_create(store_webhook_repo(w->pool), w->cfg->webhooks.allow_http);
    if (s->bank == NULL || s->audit == NULL || s->webhooks == NULL)
        return OF_ERR;
    idem_purge_arm(w);
    if (wire_product_cache(w) != OF_OK)
        return OF_ERR;
    if (s->auth == NULL || s->products == NULL || s->customers == NULL)
        return OF_ERR;
    return OF_OK;
}
