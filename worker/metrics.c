/*
 * metrics.c -- see metrics.h. One pass sums the scoreboard into a private
 * copy (per route: counts by method and status, histogram buckets, sum),
 * a second pass prints it. The master folds a dead worker's counters into
 * retired[] under a sequence counter; the sum is retaken when a retire ran
 * during it, so a worker is never counted twice nor missed.
 */
#include "worker/metrics.h"
#include "worker/router.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/of.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/socket.h>

struct route_sum {
    uint64_t count[OF_SB_N_METHODS][OF_SB_N_STATUS];
    uint64_t hist[OF_SB_N_BUCKETS];
    uint64_t sum_us;
    uint64_t total;
};

struct db_sum {
    uint64_t wait_hist[OF_SB_N_BUCKETS], wait_sum_us;
    uint64_t stmt_count[OF_SB_MAX_STMTS], stmt_sum_us[OF_SB_MAX_STMTS];
    uint64_t spans_exported, spans_dropped;
    uint64_t log_dropped;
    uint64_t accept_yields;
};

struct sums {
    struct route_sum routes[OF_SB_MAX_ROUTES];
    struct db_sum    db;
    int64_t          pool_open, pool_busy, pool_idle, pool_waiting;
    int              workers;
    uint64_t         cache_hits, cache_misses, cache_evictions, cache_invalidations;
    int              cache_listen_up;
    uint64_t         pool_queries[2];
    int              replica_workers, replica_serving;
    int64_t          replica_lag_us;   /* max over workers with a fresh measurement, else -1 */
};

/* A growing text buffer; on allocation failure it stops growing and
 * remembers that (the scrape is then answered short rather than crash). */
struct tbuf {
    char  *p;
    size_t len, cap;
    bool   oom;
};

static void __attribute__((format(printf, 2, 3)))
tb_printf(struct tbuf *b, const char *fmt, ...)
{
    for (;;) {
        if (b->oom)
            return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2 + (size_t)n;
        char  *np = realloc(b->p, ncap);
        if (np == NULL) {
            b->oom = true;
            b->p[b->len] = '\0';
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

static void
add_route(struct route_sum *to, struct of_sb_route *from)
{
    for (int m = 0; m < OF_SB_N_METHODS; m++) {
        for (int s = 0; s < OF_SB_N_STATUS; s++) {
            uint64_t v = atomic_load_explicit(&from->count[m][s], memory_order_relaxed);
            to->count[m][s] += v;
            to->total += v;
        }
    }
    for (int b = 0; b < OF_SB_N_BUCKETS; b++)
        to->hist[b] += atomic_load_explicit(&from->hist[b], memory_order_relaxed);
    to->sum_us += atomic_load_explicit(&from->sum_us, memory_order_relaxed);
}

static const struct pool_stmt *const *stmt_table;   /* metrics_statements() */
static size_t                          stmt_n;

void
metrics_statements(const struct pool_stmt *const *stmts, size_t n)
{
    stmt_table = stmts;
    stmt_n = n < OF_SB_MAX_STMTS ? n : OF_SB_MAX_STMTS;
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void
add_db(struct db_sum *to, struct of_sb_db *from)
{
    for (int b = 0; b < OF_SB_N_BUCKETS; b++)
        to->wait_hist[b] += LOAD(from->wait_hist[b]);
    to->wait_sum_us += LOAD(from->wait_sum_us);
    for (size_t i = 0; i < stmt_n; i++) {
        to->stmt_count[i] += LOAD(from->stmt_count[i]);
        to->stmt_sum_us[i] += LOAD(from->stmt_sum_us[i]);
    }
    to->spans_exported += LOAD(from->spans_exported);
    to->spans_dropped += LOAD(from->spans_dropped);
    to->log_dropped += LOAD(from->log_dropped);
    to->accept_yields += LOAD(from->accept_yields);
}

/* Replica routing: queries per pool, the measured lag (worst worker). */
static void
add_replica(struct sums *s, struct of_sb_slot *slot)
{
    for (int i = 0; i < 2; i++)
        s->pool_queries[i] += atomic_load_explicit(&slot->pool_queries[i], memory_order_relaxed);
    int64_t lag = atomic_load_explicit(&slot->replica_lag_us, memory_order_relaxed);
    if (lag == -2)
        return;
    if (s->replica_workers++ == 0)
        s->replica_lag_us = -1;
    if (lag > s->replica_lag_us)
        s->replica_lag_us = lag;
    s->replica_serving += atomic_load_explicit(&slot->replica_serving, memory_order_relaxed);
}

static void
add_cache(struct sums *s, struct of_sb_slot *slot)
{
    s->cache_hits += atomic_load_explicit(&slot->cache.hits, memory_order_relaxed);
    s->cache_misses += atomic_load_explicit(&slot->cache.misses, memory_order_relaxed);
    s->cache_evictions += atomic_load_explicit(&slot->cache.evictions, memory_order_relaxed);
    s->cache_invalidations += atomic_load_explicit(&slot->cache.invalidations, memory_order_relaxed);
    s->cache_listen_up += atomic_load_explicit(&slot->cache_listen_up, memory_order_relaxed);
}

static void
collect_once(struct of_scoreboard *sb, size_t nroutes, struct sums *s)
{
    for (int i = 0; i < OF_SB_MAX_WORKERS; i++) {
        struct of_sb_slot *slot = &sb->slots[i];
        /* A free slot's counters are zero (of_sb_retire clears it), so
         * summing every slot is right whatever its state. */
        for (size_t r = 0; r <= nroutes; r++)
            add_route(&s->routes[r], &slot->routes[r]);
        add_db(&s->db, &slot->db);
        if (atomic_load_explicit(&slot->pid, memory_order_relaxed) == 0 ||
            atomic_load_explicit(&slot->kind, memory_order_relaxed) == OF_SB_KIND_JOBS)
            continue;
        s->workers++;
        s->pool_open += atomic_load_explicit(&slot->pool_open, memory_order_relaxed);
        s->pool_busy += atomic_load_explicit(&slot->pool_busy, memory_order_relaxed);
        s->pool_idle += atomic_load_explicit(&slot->pool_idle, memory_order_relaxed);
        s->pool_waiting += atomic_load_explicit(&slot->pool_waiting, memory_order_relaxed);
        add_cache(s, slot);
        add_replica(s, slot);
    }
    for (size_t r = 0; r <= nroutes; r++)
        add_route(&s->routes[r], &sb->retired[r]);
    add_db(&s->db, &sb->retired_db);
}

static void
collect(struct of_scoreboard *sb, size_t nroutes, struct sums *s)
{
    for (int tries = 0; tries < 1000; tries++) {
        uint32_t before = atomic_load(&sb->retire_seq);
        if (before & 1u) {
            sched_yield();     /* a retire is half done: let the master finish */
            continue;
        }
        memset(s, 0, sizeof(*s));
        collect_once(sb, nroutes, s);
        if (atomic_load(&sb->retire_seq) == before)
            return;
    }
    /* the master kept retiring for 1000 rounds: answer with the last sum */
}

/* Several route ids share a template (GET and PATCH /api/v1/products/{id});
 * the route label is the template, so fold ids with the same template into
 * the first one of them. Afterwards s->routes[r].total is 0 for folded ids and
 * skip[r] says which ids are no series of their own. */
static void
fold_by_template(struct sums *s, size_t nroutes, bool *skip)
{
    for (size_t r = 1; r <= nroutes; r++) {
        skip[r] = false;
        const char *name = router_route_name((int)r);
        for (size_t first = 1; first < r; first++) {
            if (skip[first] || strcmp(router_route_name((int)first), name) != 0)
                continue;
            struct route_sum *to = &s->routes[first], *from = &s->routes[r];
            for (int m = 0; m < OF_SB_N_METHODS; m++)
                for (int k = 0; k < OF_SB_N_STATUS; k++)
                    to->count[m][k] += from->count[m][k];
            for (int b = 0; b < OF_SB_N_BUCKETS; b++)
                to->hist[b] += from->hist[b];
            to->sum_us += from->sum_us;
            to->total += from->total;
            skip[r] = true;
            break;
        }
    }
    skip[0] = false;
}

/* Label values: escape backslash, double quote and newline. */
static const char *
label_escape(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = in; *p != '\0' && o + 3 < cap; p++) {
        if (*p == '\\' || *p == '"') {
            out[o++] = '\\';
            out[o++] = *p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return out;
}

static void
status_label(int k, char *buf, size_t cap)
{
    int code = of_sb_status_codes[k];
    if (code == 0)
        snprintf(buf, cap, "other");
    else
        snprintf(buf, cap, "%d", code);
}

static void
print_requests(struct tbuf *b, const struct sums *s, const bool *skip, size_t nroutes)
{
    tb_printf(b, "# HELP http_requests_total HTTP requests answered, by method, route template and status.\n"
                 "# TYPE http_requests_total counter\n");
    for (size_t r = 0; r <= nroutes; r++) {
        const struct route_sum *rs = &s->routes[r];
        if (skip[r] || rs->total == 0)
            continue;
        char route[256];
        label_escape(router_route_name((int)r), route, sizeof(route));
        for (int m = 0; m < OF_SB_N_METHODS; m++) {
            for (int k = 0; k < OF_SB_N_STATUS; k++) {
                if (rs->count[m][k] == 0)
                    continue;
                char status[16];
                status_label(k, status, sizeof(status));
                tb_printf(b, "http_requests_total{method=\"%s\",route=\"%s\",status=\"%s\"} %llu\n",
                          of_sb_method_names[m], route, status,
                          (unsigned long long)rs->count[m][k]);
            }
        }
    }
}

static void
print_histograms(struct tbuf *b, const struct sums *s, const bool *skip, size_t nroutes)
{
    tb_printf(b, "# HELP http_request_duration_seconds Time from the request's arrival to its answer, by route template.\n"
                 "# TYPE http_request_duration_seconds histogram\n");
    /* Every known route, so dashboards see zeros; "unmatched" only once seen. */
    for (size_t r = 0; r <= nroutes; r++) {
        const struct route_sum *rs = &s->routes[r];
        if (skip[r] || (r == 0 && rs->total == 0))
            continue;
        char     route[256];
        uint64_t cum = 0;
        label_escape(router_route_name((int)r), route, sizeof(route));
        for (int k = 0; k < OF_SB_N_BUCKETS - 1; k++) {
            cum += rs->hist[k];
            tb_printf(b, "http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                      route, of_sb_bucket_bounds[k], (unsigned long long)cum);
        }
        cum += rs->hist[OF_SB_N_BUCKETS - 1];
        tb_printf(b, "http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                  route, (unsigned long long)cum);
        tb_printf(b, "http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
                  route, (double)rs->sum_us / 1e6);
        tb_printf(b, "http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                  route, (unsigned long long)cum);
    }
}

static void
print_replica(struct tbuf *b, const struct sums *s)
{
    tb_printf(b,
              "# HELP db_pool_queries_total Operations started per pool (queries and transactions), live workers.\n"
              "# TYPE db_pool_queries_total counter\n"
              "db_pool_queries_total{pool=\"primary\"} %llu\n"
              "db_pool_queries_total{pool=\"replica\"} %llu\n",
              (unsigned long long)s->pool_queries[0], (unsigned long long)s->pool_queries[1]);
    if (s->replica_workers == 0)
        return;
    tb_printf(b,
              "# HELP db_replica_serving Workers whose catalog reads go to the replica now.\n"
              "# TYPE db_replica_serving gauge\n"
              "db_replica_serving %d\n",
              s->replica_serving);
    if (s->replica_lag_us < 0)
        return;
    tb_printf(b,
              "# HELP db_replica_lag_seconds Replay lag of the read replica as measured (worst worker).\n"
              "# TYPE db_replica_lag_seconds gauge\n"
              "db_replica_lag_seconds %.6f\n",
              (double)s->replica_lag_us / 1e6);
}

static void
print_process(struct tbuf *b, struct of_scoreboard *sb, const struct sums *s)
{
    print_replica(b, s);
    tb_printf(b,
              "# HELP db_pool_connections PostgreSQL connections of all workers' pools, by state.\n"
              "# TYPE db_pool_connections gauge\n"
              "db_pool_connections{state=\"open\"} %lld\n"
              "db_pool_connections{state=\"busy\"} %lld\n"
              "db_pool_connections{state=\"idle\"} %lld\n",
              (long long)s->pool_open, (long long)s->pool_busy, (long long)s->pool_idle);
    tb_printf(b,
              "# HELP db_pool_waiting Requests queued for a free PostgreSQL connection, all workers.\n"
              "# TYPE db_pool_waiting gauge\n"
              "db_pool_waiting %lld\n",
              (long long)s->pool_waiting);
    tb_printf(b,
              "# HELP orderflow_workers Worker processes alive.\n"
              "# TYPE orderflow_workers gauge\n"
              "orderflow_workers %d\n",
              s->workers);
    tb_printf(b,
              "# HELP orderflow_worker_restarts_total Workers replaced after dying or missing their heartbeat.\n"
              "# TYPE orderflow_worker_restarts_total counter\n"
              "orderflow_worker_restarts_total %llu\n",
              (unsigned long long)atomic_load(&sb->worker_restarts));
    tb_printf(b,
              "# HELP process_start_time_seconds Start time of the master process since unix epoch in seconds.\n"
              "# TYPE process_start_time_seconds gauge\n"
              "process_start_time_seconds %lld\n",
              (long long)atomic_load(&sb->start_time));
}

/* The jobs process's delivery metrics (scoreboard jobs section). */
static void
print_jobs(struct tbuf *b, struct of_scoreboard *sb)
{
    static const char *const kinds[OF_SB_JOBS_KINDS] = { "mail", "webhook" };
    static const char *const outcomes[OF_SB_JOBS_OUTCOMES] = { "succeeded", "failed", "dead" };
    struct of_sb_jobs *j = &sb->jobs;

    tb_printf(b, "# HELP orderflow_events_pending Events not yet fanned out into deliveries.\n"
                 "# TYPE orderflow_events_pending gauge\n"
                 "orderflow_events_pending %lld\n"
                 "# HELP orderflow_deliveries_pending Deliveries waiting for a (next) attempt.\n"
                 "# TYPE orderflow_deliveries_pending gauge\n"
                 "orderflow_deliveries_pending %lld\n"
                 "# HELP orderflow_deliveries_oldest_pending_seconds Age of the oldest pending delivery.\n"
                 "# TYPE orderflow_deliveries_oldest_pending_seconds gauge\n"
                 "orderflow_deliveries_oldest_pending_seconds %lld\n",
              (long long)atomic_load(&j->pending_events), (long long)atomic_load(&j->pending_deliveries),
              (long long)atomic_load(&j->oldest_pending_s));
    tb_printf(b, "# HELP orderflow_delivery_attempts_total Delivery attempts by kind and outcome "
                 "(failed = will be retried).\n# TYPE orderflow_delivery_attempts_total counter\n");
    for (int k = 0; k < OF_SB_JOBS_KINDS; k++)
        for (int o = 0; o < OF_SB_JOBS_OUTCOMES; o++)
            tb_printf(b, "orderflow_delivery_attempts_total{kind=\"%s\",outcome=\"%s\"} %llu\n",
                      kinds[k], outcomes[o], (unsigned long long)atomic_load(&j->outcomes[k][o]));
    tb_printf(b, "# HELP orderflow_delivery_duration_seconds Duration of one delivery attempt, by kind.\n"
                 "# TYPE orderflow_delivery_duration_seconds histogram\n");
    for (int k = 0; k < OF_SB_JOBS_KINDS; k++) {
        uint64_t cum = 0;
        for (int i = 0; i < OF_SB_N_BUCKETS - 1; i++) {
            cum += atomic_load(&j->hist[k][i]);
            tb_printf(b, "orderflow_delivery_duration_seconds_bucket{kind=\"%s\",le=\"%g\"} %llu\n",
                      kinds[k], of_sb_bucket_bounds[i], (unsigned long long)cum);
        }
        cum += atomic_load(&j->hist[k][OF_SB_N_BUCKETS - 1]);
        tb_printf(b, "orderflow_delivery_duration_seconds_bucket{kind=\"%s\",le=\"+Inf\"} %llu\n"
                     "orderflow_delivery_duration_seconds_sum{kind=\"%s\"} %.6f\n"
                     "orderflow_delivery_duration_seconds_count{kind=\"%s\"} %llu\n",
                  kinds[k], (unsigned long long)cum, kinds[k],
                  (double)atomic_load(&j->sum_us[k]) / 1e6, kinds[k], (unsigned long long)cum);
    }
}

static void
print_cache(struct tbuf *b, const struct sums *s)
{
    tb_printf(b,
              "# HELP orderflow_cache_requests_total Product reads looked up in the workers' caches, by result.\n"
              "# TYPE orderflow_cache_requests_total counter\n"
              "orderflow_cache_requests_total{result=\"hit\"} %llu\n"
              "orderflow_cache_requests_total{result=\"miss\"} %llu\n",
              (unsigned long long)s->cache_hits, (unsigned long long)s->cache_misses);
    tb_printf(b,
              "# HELP orderflow_cache_evictions_total Live cache entries evicted to make room.\n"
              "# TYPE orderflow_cache_evictions_total counter\n"
              "orderflow_cache_evictions_total %llu\n"
              "# HELP orderflow_cache_invalidations_total Cache invalidations (notifications, own writes, LISTEN loss).\n"
              "# TYPE orderflow_cache_invalidations_total counter\n"
              "orderflow_cache_invalidations_total %llu\n",
              (unsigned long long)s->cache_evictions, (unsigned long long)s->cache_invalidations);
    tb_printf(b,
              "# HELP orderflow_cache_listen_up Workers whose cache LISTEN connection is up.\n"
              "# TYPE orderflow_cache_listen_up gauge\n"
              "orderflow_cache_listen_up %d\n",
              s->cache_listen_up);
}

static void
print_db(struct tbuf *b, const struct db_sum *d)
{
    uint64_t cum = 0;
    tb_printf(b, "# HELP orderflow_db_pool_wait_seconds Time an operation waited for a free PostgreSQL connection.\n"
                 "# TYPE orderflow_db_pool_wait_seconds histogram\n");
    for (int k = 0; k < OF_SB_N_BUCKETS - 1; k++) {
        cum += d->wait_hist[k];
        tb_printf(b, "orderflow_db_pool_wait_seconds_bucket{le=\"%g\"} %llu\n",
                  of_sb_bucket_bounds[k], (unsigned long long)cum);
    }
    cum += d->wait_hist[OF_SB_N_BUCKETS - 1];
    tb_printf(b, "orderflow_db_pool_wait_seconds_bucket{le=\"+Inf\"} %llu\n"
                 "orderflow_db_pool_wait_seconds_sum %.6f\n"
                 "orderflow_db_pool_wait_seconds_count %llu\n",
              (unsigned long long)cum, (double)d->wait_sum_us / 1e6, (unsigned long long)cum);
    tb_printf(b, "# HELP orderflow_db_statement_duration_seconds Round trips on a connection, by statement name.\n"
                 "# TYPE orderflow_db_statement_duration_seconds summary\n");
    for (size_t i = 0; i < stmt_n; i++) {
        tb_printf(b, "orderflow_db_statement_duration_seconds_sum{statement=\"%s\"} %.6f\n"
                     "orderflow_db_statement_duration_seconds_count{statement=\"%s\"} %llu\n",
                  stmt_table[i]->name, (double)d->stmt_sum_us[i] / 1e6,
                  stmt_table[i]->name, (unsigned long long)d->stmt_count[i]);
    }
    tb_printf(b, "# HELP orderflow_trace_spans_exported_total Spans the OTLP receiver accepted.\n"
                 "# TYPE orderflow_trace_spans_exported_total counter\n"
                 "orderflow_trace_spans_exported_total %llu\n"
                 "# HELP orderflow_trace_spans_dropped_total Spans dropped: export queue full or receiver failed.\n"
                 "# TYPE orderflow_trace_spans_dropped_total counter\n"
                 "orderflow_trace_spans_dropped_total %llu\n",
              (unsigned long long)d->spans_exported, (unsigned long long)d->spans_dropped);
    tb_printf(b, "# HELP orderflow_access_log_dropped_total Access-log lines dropped: the log pipe was full.\n"
                 "# TYPE orderflow_access_log_dropped_total counter\n"
                 "orderflow_access_log_dropped_total %llu\n",
              (unsigned long long)d->log_dropped);
    tb_printf(b, "# HELP orderflow_accept_yields_total Times a worker stepped back from accepting "
                 "(1 ms) because another worker held fewer connections.\n"
                 "# TYPE orderflow_accept_yields_total counter\n"
                 "orderflow_accept_yields_total %llu\n",
              (unsigned long long)d->accept_yields);
}

static void
free_fn(void *p)
{
    free(p);
}

size_t
metrics_render(struct of_scoreboard *sb, struct of_mem *m, char **out)
{
    size_t nroutes = 0;
    router_routes(&nroutes);
    if (nroutes > OF_SB_MAX_ROUTES - 1)
        nroutes = OF_SB_MAX_ROUTES - 1;

    struct sums *s = of_mem_calloc(m, sizeof(*s));
    bool         skip[OF_SB_MAX_ROUTES];
    collect(sb, nroutes, s);
    fold_by_template(s, nroutes, skip);

    struct tbuf b = { .p = malloc(16384), .len = 0, .cap = 16384, .oom = false };
    if (b.p == NULL)
        of_fatal("out of memory rendering /metrics");
    b.p[0] = '\0';
    print_requests(&b, s, skip, nroutes);
    print_histograms(&b, s, skip, nroutes);
    print_process(&b, sb, s);
    print_db(&b, &s->db);
    print_cache(&b, s);
    print_jobs(&b, sb);
    if (b.oom)
        of_log_error("out of memory rendering /metrics; answer truncated");
    of_mem_cleanup_add(m, free_fn, b.p);
    *out = b.p;
    return b.len;
}

bool
metrics_allowed(const struct of_cfg *cfg, const char *client_ip)
{
    struct sockaddr_storage ss;
    struct sockaddr_in     *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6    *v6 = (struct sockaddr_in6 *)&ss;

    if (client_ip == NULL)
        return false;
    if (strcmp(client_ip, "unix") == 0)
        client_ip = "127.0.0.1";
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, client_ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
    } else if (inet_pton(AF_INET6, client_ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
    } else {
        return false;
    }
    return netaddr_cidr_match(cfg->metrics.allow, cfg->metrics.n_allow, (struct sockaddr *)&ss);
}
