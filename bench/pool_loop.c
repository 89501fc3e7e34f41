/*
 * pool_loop.c -- the pool's single-query path at full tilt: N queries
 * (SELECT $1::int + 1, prepared), 16 in flight on 4 connections, one libevent
 * loop, and the queries/s and CPU µs per query it took. Moved here from
 * tests/unit/test_pool.c (a test must not measure speed).
 *
 *   pool_loop URL [N]    N defaults to 40000; prints one line:
 *   pool_loop: N queries, 16 in flight, 4 connections: Q queries/s, U us CPU/query
 *
 * Built and run by bench/run.sh against its throwaway PostgreSQL; exits 1
 * if any query fails or the loop does not finish within 120 s.
 */
#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "store/pool.h"

static const struct pool_stmt st_add = { "b_add", "SELECT $1::int + 1", 1, POOL_STMT_READ };
static const struct pool_stmt *const stmts[] = { &st_add };

struct loop {
    struct event_base *base;
    pool *p;
    struct of_mem *m;
    long left, inflight, done, failed;
};

static void on_done(const struct pool_res *r, void *arg);

static void
fire(struct loop *b)
{
    static const char *params[] = { "7" };
    b->left--;
    b->inflight++;
    pool_query(b->p, b->m, &st_add, params, on_done, b);
}

static void
on_done(const struct pool_res *r, void *arg)
{
    struct loop *b = arg;
    if (r->rc != OF_OK)
        b->failed++;
    b->inflight--;
    b->done++;
    if (b->left > 0)
        fire(b);
}

/* Runs the loop until cond holds or the deadline passes. */
static bool
run_until(struct loop *b, bool (*cond)(struct loop *), int seconds)
{
    uint64_t end = of_mono_ns() + (uint64_t)seconds * 1000000000u;
    while (!cond(b)) {
        if (of_mono_ns() > end)
            return false;
        struct timeval tv = { 0, 10000 };
        event_base_loopexit(b->base, &tv);
        event_base_loop(b->base, EVLOOP_ONCE);
    }
    return true;
}

static bool
all_idle(struct loop *b)
{
    struct pool_stats s;
    pool_get_stats(b->p, &s);
    return s.idle == 4;
}

static bool
finished(struct loop *b)
{
    return b->left == 0 && b->inflight == 0;
}

static double
cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
         + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int
main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: pool_loop URL [N]\n");
        return 2;
    }
    long n = argc == 3 ? strtol(argv[2], NULL, 10) : 40000;
    if (n < 16)
        n = 16;
    of_log_min = OF_LOG_ERROR;
    struct loop b = { event_base_new(), NULL, NULL, n, 0, 0, 0 };
    struct pool_opts o = { argv[1], 4, 5000, 5000, 2, true, NULL, false };
    b.p = pool_create(b.base, &o, stmts, OF_ARRAY_LEN(stmts));
    struct of_mem m;
    of_mem_init(&m);
    b.m = &m;
    if (b.p == NULL || !run_until(&b, all_idle, 30)) {
        fprintf(stderr, "pool_loop: the pool did not come up\n");
        return 1;
    }
    uint64_t t0 = of_mono_ns();
    double c0 = cpu_seconds();
    for (int i = 0; i < 16; i++)
        fire(&b);
    bool ok = run_until(&b, finished, 120);
    double s = (double)(of_mono_ns() - t0) / 1e9;
    double cpu = cpu_seconds() - c0;
    printf("pool_loop: %ld queries, 16 in flight, 4 connections: %.0f queries/s, "
           "%.1f us CPU/query (client side)\n", b.done, (double)b.done / s, cpu * 1e6 / (double)b.done);
    of_mem_release(&m);
    pool_destroy(b.p);
    event_base_free(b.base);
    if (!ok || b.failed > 0) {
        fprintf(stderr, "pool_loop: %s, %ld failed\n", ok ? "finished" : "timed out", b.failed);
        return 1;
    }
    return 0;
}
