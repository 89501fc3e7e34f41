/*
 * test_pool.c -- the pool (store/pool*.c, store/pgconn.c) against a real PostgreSQL 15.
 *
 * Not a fake: the pool's whole job is talking to libpq correctly. The test
 * starts its own throwaway cluster (tests/pg/testpg.sh) because some cases stop
 * and restart PostgreSQL; it fails when PostgreSQL binaries are missing.
 * Each case drives the libevent loop until its callbacks have fired, and
 * waits on what the pool or PostgreSQL reports (pool_get_stats,
 * pg_stat_activity) with a generous outer deadline: no case reads a clock to
 * pass or fail. The throughput loop lives in bench/pool_loop.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "store/pool.h"
#include "store/testq.h"

static char pgdir[256];
static char script[1024];
static char url[1024];
static struct event_base *base;

static const struct pool_stmt st_add = { "t_add", "SELECT $1::int + 1", 1, POOL_STMT_READ };
static const struct pool_stmt st_ins = { "t_ins", "INSERT INTO t_pool (k, v) VALUES ($1, $2)", 2, 0 };
static const struct pool_stmt st_get = { "t_get", "SELECT v FROM t_pool WHERE k = $1", 1, POOL_STMT_READ };
static const struct pool_stmt st_cnt = { "t_cnt", "SELECT count(*) FROM t_pool WHERE k LIKE $1", 1, POOL_STMT_READ };
static const struct pool_stmt st_now = {
    "t_now", "SELECT pg_backend_pid()::text || '/' || now()::text, $1::int", 1, POOL_STMT_READ };
static const struct pool_stmt st_lock = { "t_lock", "SELECT v FROM t_pool WHERE k = $1 FOR UPDATE", 1, 0 };
static const struct pool_stmt st_backends = {
    "t_backends", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'orderflow'", 0, POOL_STMT_READ };
static const struct pool_stmt *const stmts[] = {
    &st_add, &st_ins, &st_get, &st_cnt, &st_backends, &pool_stmt_test_sleep, &st_now, &st_lock,
};

/* ---- helpers ------------------------------------------------------------ */

static int
sh(const char *cmd, const char *arg)
{
    char buf[2048];
    snprintf(buf, sizeof(buf), "%s %s %s >/dev/null", script, cmd, arg);
    return system(buf);
}

static void
psql_exec(const char *sql)
{
    PGconn *c = PQconnectdb(url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static long
psql_count(const char *sql)
{
    PGconn *c = PQconnectdb(url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    long n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return n;
}

static struct pool_opts
dbcfg(int size, int queue_ms, int stmt_ms, bool prepared)
{
    struct pool_opts d = { url, size, queue_ms, stmt_ms, 2, prepared, NULL, false };
    return d;
}

static bool
run_until(bool (*cond)(void *), void *arg, int ms)
{
    uint64_t end = of_mono_ns() + (uint64_t)ms * 1000000u;
    while (!cond(arg)) {
        if (of_mono_ns() > end)
            return false;
        struct timeval tv = { 0, 10000 };
        event_base_loopexit(base, &tv);
        event_base_loop(base, EVLOOP_ONCE);
    }
    return true;
}

static bool
cond_ready(void *arg)
{
    return pool_ready(arg);
}

static bool
cond_int_ge(void *arg)
{
    int *v = arg;
    return v[0] >= v[1];
}

static void
run_ms(int ms)
{
    int never[2] = { 0, 1 };
    run_until(cond_int_ge, never, ms);
}

/* The pool's own report of its connections: every one of `want` open and
 * idle (nothing busy, nothing waiting). */
struct idle_want {
    pool *p;
    int   want;
};

static bool
cond_all_idle(void *arg)
{
    struct idle_want *w = arg;
    struct pool_stats s;
    pool_get_stats(w->p, &s);
    return s.idle == w->want && s.open == w->want && s.busy == 0 && s.waiting == 0;
}

static bool
cond_not_ready(void *arg)
{
    return !pool_ready(arg);
}

static long psql_count(const char *sql);

/* A count query, polled until it gives want (the event, not a sleep). */
struct count_want {
    const char *sql;
    long        want;
};

static bool
cond_count(void *arg)
{
    struct count_want *c = arg;
    return psql_count(c->sql) == c->want;
}

static pool *
pool_up(int size, int queue_ms, int stmt_ms, bool prepared)
{
    struct pool_opts d = dbcfg(size, queue_ms, stmt_ms, prepared);
    pool *p = pool_create(base, &d, stmts, OF_ARRAY_LEN(stmts));
    assert_non_null(p);
    assert_true(run_until(cond_ready, p, 20000));
    /* every connection has finished preparing */
    struct idle_want w = { p, size };
    assert_true(run_until(cond_all_idle, &w, 20000));
    return p;
}

/* One query's outcome. */
struct qres {
    int      done;
    int      rc;
    char     val[64];
    char     sqlstate[8];
    uint64_t at_ns;
};

static void
q_cb(const struct pool_res *r, void *arg)
{
    struct qres *q = arg;
    q->done++;
    q->rc = r->rc;
    q->at_ns = of_mono_ns();
    const char *v = pool_res_value(r, 0, 0);
    of_strlcpy(q->val, v != NULL ? v : "", sizeof(q->val));
    of_strlcpy(q->sqlstate, r->sqlstate != NULL ? r->sqlstate : "", sizeof(q->sqlstate));
}

static bool
cond_q_done(void *arg)
{
    return ((struct qres *)arg)->done > 0;
}

struct many {
    struct qres *q;
    int n;
};

static bool
cond_all_done(void *arg)
{
    struct many *m = arg;
    for (int i = 0; i < m->n; i++)
        if (!m->q[i].done)
            return false;
    return true;
}

/* ---- setup -------------------------------------------------------------- */

static int
group_setup(void **state)
{
    (void)state;
    const char *src = getenv("OF_SOURCE_DIR");
    snprintf(script, sizeof(script), "%s/tests/pg/testpg.sh", src != NULL ? src : OF_SOURCE_DIR);
    if (access("/usr/lib/postgresql/15/bin/initdb", X_OK) != 0) {
        fprintf(stderr, "initdb missing: scripts/deps.sh test installs postgresql-15\n");
        return -1;
    }
    snprintf(pgdir, sizeof(pgdir), "/tmp/of-test-pool-%d", (int)getpid());
    if (sh("start", pgdir) != 0)
        return -1;
    char path[300];
    snprintf(path, sizeof(path), "%s/url", pgdir);
    FILE *f = fopen(path, "r");
    if (f == NULL || fgets(url, sizeof(url), f) == NULL)
        return -1;
    fclose(f);
    url[strcspn(url, "\n")] = '\0';
    psql_exec("CREATE TABLE t_pool (k text PRIMARY KEY, v int NOT NULL)");
    base = event_base_new();
    of_log_min = OF_LOG_ERROR;
    return base != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void)state;
    if (base != NULL)
        event_base_free(base);
    if (pgdir[0] != '\0')
        sh("stop", pgdir);
    return 0;
}

static int
need_pg(void **state)
{
    (void)state;
    if (url[0] == '\0')
        fail_msg("no PostgreSQL cluster (group setup failed; scripts/deps.sh test installs postgresql-15)");
    return 0;
}

/* ---- cases -------------------------------------------------------------- */

static void
check_simple_query(bool prepared)
{
    pool *p = pool_up(2, 1000, 5000, prepared);
    struct of_mem m;
    of_mem_init(&m);
    struct qres q = { 0 };
    const char *params[] = { "41" };
    pool_query(p, &m, &st_add, params, q_cb, &q);
    assert_int_equal(q.done, 0);              /* never from inside the call */
    assert_true(run_until(cond_q_done, &q, 3000));
    assert_int_equal(q.rc, OF_OK);
    assert_string_equal(q.val, "42");
    assert_int_equal(q.done, 1);

    /* A failing statement: rc OF_ERR with its SQLSTATE, and the connection is fine after. */
    struct qres e = { 0 };
    const char *bad[] = { "x" };
    pool_query(p, &m, &st_add, bad, q_cb, &e);
    assert_true(run_until(cond_q_done, &e, 3000));
    assert_int_equal(e.rc, OF_ERR);
    assert_string_equal(e.sqlstate, "22P02");
    struct qres q2 = { 0 };
    pool_query(p, &m, &st_add, params, q_cb, &q2);
    assert_true(run_until(cond_q_done, &q2, 3000));
    assert_string_equal(q2.val, "42");
    struct pool_stats s;
    pool_get_stats(p, &s);
    assert_int_equal(s.busy, 0);
    assert_int_equal(s.open, 2);
    of_mem_release(&m);
    pool_destroy(p);
}

static void
test_pool_query_prepared(void **state)
{
    (void)state;
    check_simple_query(true);
}

static void
test_pool_query_unprepared(void **state)
{
    (void)state;
    check_simple_query(false);
}

static void
test_pool_many_concurrent_queued_all_succeed(void **state)
{
    (void)state;
    pool *p = pool_up(2, 5000, 5000, true);
    enum { N = 40 };
    struct qres q[N];
    struct of_mem m;
    of_mem_init(&m);
    memset(q, 0, sizeof(q));
    for (int i = 0; i < N; i++) {
        char num[16];
        snprintf(num, sizeof(num), "%d", 20);     /* 20 ms each */
        const char *params[] = { num };           /* stack: the pool must copy */
        pool_query(p, &m, &pool_stmt_test_sleep, params, q_cb, &q[i]);
    }
    struct pool_stats s;
    pool_get_stats(p, &s);
    assert_int_equal(s.busy, 2);
    assert_int_equal(s.waiting, N - 2);
    struct many all = { q, N };
    assert_true(run_until(cond_all_done, &all, 10000));
    for (int i = 0; i < N; i++)
        assert_int_equal(q[i].rc, OF_OK);
    /* FIFO: completion times never go backwards by more than one slot */
    for (int i = 2; i < N; i++)
        assert_true(q[i].at_ns >= q[i - 2].at_ns);
    pool_get_stats(p, &s);
    assert_int_equal(s.waiting, 0);
    assert_int_equal(s.busy, 0);
    of_mem_release(&m);
    pool_destroy(p);
}

static void
test_pool_queue_timeout_unavailable(void **state)
{
    (void)state;
    /* The one connection is held (a 20 s sleep, cut by the 2.5 s statement
     * timeout) far longer than the queue timeout (300 ms): the waiter
     * queues (the pool reports it waiting), then gives up with
     * OF_UNAVAILABLE while the holder is still running. No clock is read:
     * the order of the events is the proof. */
    pool *p = pool_up(1, 300, 2500, true);
    struct of_mem m;
    of_mem_init(&m);
    struct qres slow = { 0 }, waiter = { 0 };
    const char *ms_hold[] = { "20000" };
    const char *ms_one[] = { "1" };
    pool_query(p, &m, &pool_stmt_test_sleep, ms_hold, q_cb, &slow);
    pool_query(p, &m, &pool_stmt_test_sleep, ms_one, q_cb, &waiter);
    struct pool_stats s;
    pool_get_stats(p, &s);
    assert_int_equal(s.waiting, 1);
    assert_int_equal(waiter.done, 0);
    assert_true(run_until(cond_q_done, &waiter, 15000));
    assert_int_equal(waiter.rc, OF_UNAVAILABLE);
    assert_int_equal(slow.done, 0);
    pool_get_stats(p, &s);
    assert_int_equal(s.waiting, 0);
    assert_int_equal(s.busy, 1);
    assert_true(run_until(cond_q_done, &slow, 30000));
    assert_int_equal(slow.rc, OF_ERR);
    assert_string_equal(slow.sqlstate, "57014");
    of_mem_release(&m);
    pool_destroy(p);
}

static void
test_pool_statement_timeout(void **state)
{
    (void)state;
    pool *p = pool_up(1, 1000, 200, true);
    struct of_mem m;
    of_mem_init(&m);
    struct qres q = { 0 };
    const char *ms[] = { "2000" };
    pool_query(p, &m, &pool_stmt_test_sleep, ms, q_cb, &q);
    assert_true(run_until(cond_q_done, &q, 3000));
    assert_int_equal(q.rc, OF_ERR);
    assert_string_equal(q.sqlstate, "57014");
    of_mem_release(&m);
    pool_destroy(p);
}

/* ---- transactions ------------------------------------------------------- */

/* A scripted transaction: a list of steps run one per callback. */
struct txrun {
    struct of_mem *m;
    pool_tx *tx;
    int      step;
    int      rcs[8];
    char     sqlstate[8][8];
    bool     done;
    const char *key;
    bool     fail_second;     /* insert a duplicate as the second statement */
    bool     rollback;        /* roll back instead of committing */
    bool     abandon;         /* set m->abandoned before the second statement */
    bool     one_trip;        /* second statement + COMMIT in one round trip */
};

static void tx_next(pool_tx *tx, const struct pool_res *r, void *arg);

static void
tx_next(pool_tx *tx, const struct pool_res *r, void *arg)
{
    struct txrun *t = arg;
    t->rcs[t->step] = r->rc;
    of_strlcpy(t->sqlstate[t->step], r->sqlstate ? r->sqlstate : "", 8);
    t->step++;
    if (t->step == 1) {                          /* begun */
        if (r->rc != OF_OK) { t->done = true; return; }
        t->tx = tx;
        static const char *params[2];
        params[0] = t->key;
        params[1] = "1";
        pool_tx_query(tx, &st_ins, params, tx_next, t);
        return;
    }
    if (t->step == 2) {                          /* first insert done */
        if (t->abandon)
            t->m->abandoned = true;
        static const char *dup[2] = { "dup", "9" };
        static const char *mine[2];
        mine[0] = t->key;
        mine[1] = "5";
        if (t->one_trip)
            pool_tx_query_commit(tx, t->fail_second ? &st_ins : &st_get,
                                 t->fail_second ? dup : mine, tx_next, t);
        else
            pool_tx_query(tx, t->fail_second ? &st_ins : &st_get, t->fail_second ? dup : mine,
                          tx_next, t);
        return;
    }
    if (t->step == 3 && t->one_trip) {           /* statement and COMMIT done */
        t->done = true;
        return;
    }
    if (t->step == 3) {                          /* second statement done */
        if (r->rc == OF_UNAVAILABLE) { t->done = true; return; }
        if (t->rollback) {
            pool_tx_rollback(tx);
            t->done = true;
            return;
        }
        pool_tx_commit(tx, tx_next, t);
        return;
    }
    t->done = true;                              /* committed (or not) */
}

static bool
cond_tx_done(void *arg)
{
    return ((struct txrun *)arg)->done;
}

static void
test_pool_tx_commit_and_rollback(void **state)
{
    (void)state;
    pool *p = pool_up(1, 1000, 5000, true);
    struct of_mem m;
    of_mem_init(&m);
    psql_exec("INSERT INTO t_pool VALUES ('dup', 1) ON CONFLICT DO NOTHING");

    struct txrun t = { .m = &m, .key = "tx_commit" };
    pool_tx_begin(p, &m, tx_next, &t);
    assert_int_equal(t.step, 0);
    assert_true(run_until(cond_tx_done, &t, 3000));
    assert_int_equal(t.step, 4);
    assert_int_equal(t.rcs[3], OF_OK);
    assert_int_equal(psql_count("SELECT count(*) FROM t_pool WHERE k = 'tx_commit'"), 1);

    struct txrun t2 = { .m = &m, .key = "tx_rb", .rollback = true };
    pool_tx_begin(p, &m, tx_next, &t2);
    assert_true(run_until(cond_tx_done, &t2, 3000));
    run_ms(50);
    assert_int_equal(psql_count("SELECT count(*) FROM t_pool WHERE k = 'tx_rb'"), 0);

    /* A failed statement aborts the transaction: COMMIT reports failure,
     * nothing is kept, and the connection is clean for the next user. */
    struct txrun t3 = { .m = &m, .key = "tx_fail", .fail_second = true };
    pool_tx_begin(p, &m, tx_next, &t3);
    assert_true(run_until(cond_tx_done, &t3, 3000));
    assert_int_equal(t3.rcs[2], OF_ERR);
    assert_string_equal(t3.sqlstate[2], "23505");
    assert_int_equal(t3.rcs[3], OF_ERR);
    assert_int_equal(psql_count("SELECT count(*) FROM t_pool WHERE k = 'tx_fail'"), 0);
    struct qres q = { 0 };
    const char *one[] = { "1" };
    pool_query(p, &m, &st_add, one, q_cb, &q);
    assert_true(run_until(cond_q_done, &q, 3000));
    assert_int_equal(q.rc, OF_OK);
    struct pool_stats s;
    pool_get_stats(p, &s);
    assert_int_equal(s.busy, 0);
    of_mem_release(&m);
    pool_destroy(p);
}

static void
test_pool_tx_query_commit_one_round_trip(void **state)
{
    (void)state;
    pool *p = pool_up(1, 1000, 5000, true);
    struct of_mem m;
    of_mem_init(&m);
    psql_exec("INSERT INTO t_pool VALUES ('dup', 1) ON CONFLICT DO NOTHING");

    struct txrun t = { .m = &m, .key = "tx_one", .one_trip = true };
    pool_tx_begin(p, &m, tx_next, &t);
    assert_true(run_until(cond_tx_done, &t, 3000));
    assert_int_equal(t.step, 3);
    assert_int_equal(t.rcs[2], OF_OK);
    assert_int_equal(psql_count("SELECT count(*) FROM t_pool WHERE k = 'tx_one'"), 1);

    /* The statement fails: nothing is committed, the caller hears the
     * statement's error, and the connection comes back clean. */
    struct txrun t2 = { .m = &m, .key = "tx_one_fail", .one_trip = true, .fail_second = true };
    pool_tx_begin(p, &m, tx_next, &t2);
    assert_true(run_until(cond_tx_done, &t2, 3000));
    assert_int_equal(t2.rcs[2], OF_ERR);
    assert_string_equal(t2.sqlstate[2], "23505");
    run_ms(50);
    assert_int_equal(psql_count("SELECT count(*) FROM t_pool WHERE k = 'tx_one_fail'"), 0);
    struct qres q = { 0 };
    const char *one[] = { "1" };
    pool_query(p, &m, &st_add, one, q_cb, &q);
    assert_true(run_until(cond_q_done, &q, 3000));
    assert_int_equal(q.rc, OF_OK);
    struct pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.busy, 0);
    of_mem_release(&m);
    pool_destroy(p);
}

static void
test_pool_tx_abandoned_rolls_back_and_releases(void **state)
{
    (void)state;
    pool *p = pool_up(1, 1000, 5000, true);
    struct of_mem m;
    of_mem_init(&m);
    struct txrun t = { .m = &m, .key = "tx_abandon", .abandon = true };
    pool_tx_begin(p, &m, tx_next, &t);
    assert_true(run_until(cond_tx_done, &t, 3000));
    assert_int_equal(t.rcs[2], OF_UNAVAILABLE);
    struct idle_want w = { p, 1 };
    assert_true(run_until(cond_all_idle, &w, 10000));
    assert_int_equal(psql_count("SELECT count(*) FROM t_pool WHERE k = 'tx_abandon'"), 0);
    assert_int_equal(psql_count("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in%'"), 0);
    of_mem_release(&m);
    pool_destroy(p);
}

/* ---- the database going away and coming back ---------------------------- */

static void
test_pool_db_down_fails_fast_then_recovers(void **state)
{
    (void)state;
    /* queue timeout 60 s: an answer well before it is the pool refusing
     * at once, not a queue that timed out */
    pool *p = pool_up(2, 60000, 30000, true);
    struct of_mem m;
    of_mem_init(&m);
    const char *one[] = { "1" };

    /* A query in flight when the server stops fails with OF_UNAVAILABLE. */
    struct qres inflight = { 0 };
    const char *ms[] = { "20000" };
    pool_query(p, &m, &pool_stmt_test_sleep, ms, q_cb, &inflight);
    struct count_want running = {
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'orderflow' "
        "AND state = 'active' AND query LIKE '%pg_sleep%'", 1 };
    assert_true(run_until(cond_count, &running, 10000));
    assert_int_equal(sh("pgstop", pgdir), 0);
    assert_true(run_until(cond_q_done, &inflight, 15000));
    assert_int_equal(inflight.rc, OF_UNAVAILABLE);
    assert_true(run_until(cond_not_ready, p, 15000));

    /* While it is down, queries fail without queueing (the pool reports
     * nothing waiting), not after the queue timeout. */
    for (int i = 0; i < 3; i++) {
        struct qres q = { 0 };
        pool_query(p, &m, &st_add, one, q_cb, &q);
        assert_int_equal(q.done, 0);
        assert_true(run_until(cond_q_done, &q, 15000));
        assert_int_equal(q.rc, OF_UNAVAILABLE);
        struct pool_stats s;
        pool_get_stats(p, &s);
        assert_int_equal(s.waiting, 0);
        run_ms(200);                 /* reconnect attempts go on meanwhile */
    }

    /* Back up: the pool reconnects by itself (backoff capped at 5 s). */
    assert_int_equal(sh("pgstart", pgdir), 0);
    assert_true(run_until(cond_ready, p, 30000));
    struct qres q = { 0 };
    pool_query(p, &m, &st_add, one, q_cb, &q);
    assert_true(run_until(cond_q_done, &q, 3000));
    assert_int_equal(q.rc, OF_OK);
    of_mem_release(&m);
    pool_destroy(p);
}

static void
test_pool_backend_killed_reconnects(void **state)
{
    (void)state;
    pool *p = pool_up(2, 2000, 5000, true);
    struct of_mem m;
    of_mem_init(&m);
    /* Both backends killed: the pool opens two new ones by itself (new
     * backend pids), and reports both open and idle again. */
    PGconn *c = PQconnectdb(url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, "SELECT string_agg(pid::text, ',') FROM pg_stat_activity "
                            "WHERE application_name = 'orderflow'");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    char old[256], sql[512];
    of_strlcpy(old, PQgetvalue(r, 0, 0), sizeof(old));
    PQclear(r);
    PQfinish(c);
    assert_true(old[0] != '\0');
    psql_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'orderflow'");
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
             "'orderflow' AND pid NOT IN (%s)", old);
    struct count_want fresh = { sql, 2 };
    assert_true(run_until(cond_count, &fresh, 15000));
    struct idle_want w = { p, 2 };
    assert_true(run_until(cond_all_idle, &w, 15000));
    const char *one[] = { "1" };
    struct qres q = { 0 };
    pool_query(p, &m, &st_add, one, q_cb, &q);
    assert_true(run_until(cond_q_done, &q, 3000));
    assert_int_equal(q.rc, OF_OK);
    of_mem_release(&m);
    pool_destroy(p);
    struct count_want gone = { "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'orderflow'", 0 };
    assert_true(run_until(cond_count, &gone, 15000));
}

static void
test_pool_no_url_fails_unavailable(void **state)
{
    (void)state;
    struct pool_opts d = dbcfg(1, 1000, 5000, true);
    d.url = NULL;
    pool *p = pool_create(base, &d, stmts, OF_ARRAY_LEN(stmts));
    assert_non_null(p);
    assert_false(pool_ready(p));
    struct of_mem m;
    of_mem_init(&m);
    struct qres q = { 0 };
    const char *one[] = { "1" };
    pool_query(p, &m, &st_add, one, q_cb, &q);
    assert_int_equal(q.done, 0);
    assert_true(run_until(cond_q_done, &q, 1000));
    assert_int_equal(q.rc, OF_UNAVAILABLE);
    of_mem_release(&m);
    pool_destroy(p);
}

/* Reads issued in one loop pass share one round trip (one implicit
 * transaction: same backend, same now()); a failing one does not take its
 * group-mates down (they are re-sent); an abandoned one is dropped. */
static void
test_pool_reads_of_one_pass_grouped(void **state)
{
    (void)state;
    pool *p = pool_up(2, 1000, 5000, true);
    struct of_mem m;
    of_mem_init(&m);
    enum { N = 6 };
    struct qres q[N];
    memset(q, 0, sizeof(q));
    for (int i = 0; i < N; i++) {
        char num[8];
        snprintf(num, sizeof(num), "%d", i);
        const char *params[] = { num };
        pool_query(p, &m, &st_now, params, q_cb, &q[i]);
    }
    struct many all = { q, N };
    assert_true(run_until(cond_all_done, &all, 3000));
    for (int i = 0; i < N; i++) {
        assert_int_equal(q[i].rc, OF_OK);
        assert_string_equal(q[i].val, q[0].val);
    }

    /* one bad parameter in the middle of a group */
    const char *v1[] = { "1" }, *bad[] = { "x" }, *v3[] = { "3" }, *v4[] = { "4" };
    struct qres a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
    pool_query(p, &m, &st_add, v1, q_cb, &a);
    pool_query(p, &m, &st_add, bad, q_cb, &b);
    pool_query(p, &m, &st_add, v3, q_cb, &c);
    pool_query(p, &m, &st_add, v4, q_cb, &d);
    assert_true(run_until(cond_q_done, &d, 3000));
    assert_true(run_until(cond_q_done, &c, 3000));
    assert_int_equal(a.rc, OF_OK);
    assert_string_equal(a.val, "2");
    assert_int_equal(b.rc, OF_ERR);
    assert_string_equal(b.sqlstate, "22P02");
    assert_int_equal(c.rc, OF_OK);
    assert_string_equal(c.val, "4");
    assert_int_equal(d.rc, OF_OK);
    assert_string_equal(d.val, "5");
    assert_int_equal(a.done + b.done + c.done + d.done, 4);

    /* an abandoned request's read is not sent */
    struct of_mem gone;
    of_mem_init(&gone);
    struct qres g = { 0 };
    pool_query(p, &gone, &st_add, v1, q_cb, &g);
    gone.abandoned = true;
    assert_true(run_until(cond_q_done, &g, 3000));
    assert_int_equal(g.rc, OF_UNAVAILABLE);
    of_mem_release(&gone);

    /* locking reads are not grouped (they still work) */
    psql_exec("INSERT INTO t_pool VALUES ('lockme', 7) ON CONFLICT DO NOTHING");
    struct qres l = { 0 };
    const char *lk[] = { "lockme" };
    pool_query(p, &m, &st_lock, lk, q_cb, &l);
    assert_true(run_until(cond_q_done, &l, 3000));
    assert_int_equal(l.rc, OF_OK);
    assert_string_equal(l.val, "7");
    of_mem_release(&m);
    pool_destroy(p);
}

/* While the only connection is busy, reads pile up in one waiting group and
 * all get their answers when it frees up. */
static void
test_pool_reads_wait_as_one_group(void **state)
{
    (void)state;
    pool *p = pool_up(1, 3000, 5000, true);
    struct of_mem m;
    of_mem_init(&m);
    struct qres hold = { 0 };
    const char *ms[] = { "1500" };    /* outlasts the 5 loop passes below */
    pool_query(p, &m, &pool_stmt_test_sleep, ms, q_cb, &hold);
    enum { N = 50 };
    struct qres q[N];
    memset(q, 0, sizeof(q));
    for (int i = 0; i < N; i++) {
        char num[8];
        snprintf(num, sizeof(num), "%d", i);
        const char *params[] = { num };
        pool_query(p, &m, &st_add, params, q_cb, &q[i]);
        if (i % 10 == 9)
            run_ms(5);           /* spread over several loop passes */
    }
    struct pool_stats s;
    pool_get_stats(p, &s);
    assert_int_equal(s.busy, 1);
    assert_int_equal(s.waiting, N);
    struct many all = { q, N };
    assert_true(run_until(cond_all_done, &all, 15000));
    for (int i = 0; i < N; i++) {
        char want[8];
        snprintf(want, sizeof(want), "%d", i + 1);
        assert_int_equal(q[i].rc, OF_OK);
        assert_string_equal(q[i].val, want);
    }
    pool_get_stats(p, &s);
    assert_int_equal(s.waiting, 0);
    of_mem_release(&m);
    pool_destroy(p);
}

int
main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);   /* e.g. "*tx*" */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_pool_query_prepared, need_pg),
        cmocka_unit_test_setup(test_pool_query_unprepared, need_pg),
        cmocka_unit_test_setup(test_pool_many_concurrent_queued_all_succeed, need_pg),
        cmocka_unit_test_setup(test_pool_queue_timeout_unavailable, need_pg),
        cmocka_unit_test_setup(test_pool_statement_timeout, need_pg),
        cmocka_unit_test_setup(test_pool_tx_commit_and_rollback, need_pg),
        cmocka_unit_test_setup(test_pool_tx_query_commit_one_round_trip, need_pg),
        cmocka_unit_test_setup(test_pool_tx_abandoned_rolls_back_and_releases, need_pg),
        cmocka_unit_test_setup(test_pool_backend_killed_reconnects, need_pg),
        cmocka_unit_test_setup(test_pool_no_url_fails_unavailable, need_pg),
        cmocka_unit_test_setup(test_pool_reads_of_one_pass_grouped, need_pg),
        cmocka_unit_test_setup(test_pool_reads_wait_as_one_group, need_pg),
        cmocka_unit_test_setup(test_pool_db_down_fails_fast_then_recovers, need_pg),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
