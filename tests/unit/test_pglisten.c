/*
 * test_pglisten.c -- store/pglisten.c against a real PostgreSQL 15: it comes
 * up, hears NOTIFYs sent by another session (only committed ones), reports
 * down the moment its backend is terminated, and comes back by itself.
 * Starts its own throwaway cluster (tests/pg/testpg.sh); every wait is
 * bounded and asserts the event, not its timing.
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
#include "common/util.h"
#include "store/pglisten.h"

static char pgdir[256];
static char script[1024];
static char url[1024];
static struct event_base *base;

struct heard {
    int  ups, downs, notes;
    bool up;
    char channel[64], payload[64];
};

static void
on_notify(void *arg, const char *channel, const char *payload)
{
    struct heard *h = arg;
    h->notes++;
    of_strlcpy(h->channel, channel, sizeof(h->channel));
    of_strlcpy(h->payload, payload, sizeof(h->payload));
}

static void
on_state(void *arg, bool up)
{
    struct heard *h = arg;
    h->up = up;
    if (up)
        h->ups++;
    else
        h->downs++;
}

static const struct pglisten_hooks hooks = { on_notify, on_state };

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

/* Run the loop until *v >= want or 10 s pass (a generous bound, not a timing test). */
static bool
run_until(const int *v, int want)
{
    uint64_t end = of_mono_ns() + 10000000000ull;
    while (*v < want) {
        if (of_mono_ns() > end)
            return false;
        struct timeval tv = { 0, 10000 };
        event_base_loopexit(base, &tv);
        event_base_loop(base, EVLOOP_ONCE);
    }
    return true;
}

static int
sh(const char *cmd, const char *arg)
{
    char buf[2048];
    snprintf(buf, sizeof(buf), "%s %s %s >/dev/null", script, cmd, arg);
    return system(buf);
}

static int
group_setup(void **state)
{
    (void)state;
    const char *src = getenv("OF_SOURCE_DIR");
    snprintf(script, sizeof(script), "%s/tests/pg/testpg.sh", src != NULL ? src : OF_SOURCE_DIR);
    snprintf(pgdir, sizeof(pgdir), "/tmp/of-test-pglisten-%d", (int)getpid());
    if (sh("start", pgdir) != 0)
        return -1;
    char path[300];
    snprintf(path, sizeof(path), "%s/url", pgdir);
    FILE *f = fopen(path, "r");
    if (f == NULL || fgets(url, sizeof(url), f) == NULL)
        return -1;
    fclose(f);
    url[strcspn(url, "\n")] = '\0';
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
    sh("stop", pgdir);
    return 0;
}

static void
test_pglisten_hears_committed_notifies_only(void **state)
{
    (void)state;
    struct heard h = { 0 };
    const char *chans[] = { "of_t1", "of_t2" };
    pglisten *l = pglisten_create(base, url, "orderflow/test", chans, 2, &hooks, &h);
    assert_non_null(l);
    assert_int_equal(h.ups, 0);                  /* never from inside create */
    assert_true(run_until(&h.ups, 1));
    assert_true(pglisten_up(l));

    psql_exec("BEGIN; NOTIFY of_t1, 'rolled'; ROLLBACK");
    psql_exec("NOTIFY of_t2, '42'");
    assert_true(run_until(&h.notes, 1));
    assert_int_equal(h.notes, 1);
    assert_string_equal(h.channel, "of_t2");
    assert_string_equal(h.payload, "42");
    psql_exec("NOTIFY of_t1");
    assert_true(run_until(&h.notes, 2));
    assert_string_equal(h.channel, "of_t1");
    assert_string_equal(h.payload, "");
    pglisten_destroy(l);
}

static void
test_pglisten_reports_down_and_comes_back(void **state)
{
    (void)state;
    struct heard h = { 0 };
    const char *chans[] = { "of_t3" };
    pglisten *l = pglisten_create(base, url, "orderflow/test-kill", chans, 1, &hooks, &h);
    assert_true(run_until(&h.ups, 1));

    psql_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
              "WHERE application_name = 'orderflow/test-kill'");
    assert_true(run_until(&h.downs, 1));
    assert_false(h.up);
    assert_true(run_until(&h.ups, 2));
    assert_true(pglisten_up(l));
    psql_exec("NOTIFY of_t3, 'again'");
    assert_true(run_until(&h.notes, 1));
    assert_string_equal(h.payload, "again");
    pglisten_destroy(l);
}

static void
test_pglisten_unreachable_stays_down(void **state)
{
    (void)state;
    struct heard h = { 0 };
    const char *chans[] = { "of_t4" };
    pglisten *l = pglisten_create(base, "postgresql:///x?host=/nonexistent&port=1", NULL,
                                  chans, 1, &hooks, &h);
    assert_non_null(l);
    struct timeval tv = { 0, 300000 };
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    assert_false(pglisten_up(l));
    assert_int_equal(h.ups, 0);
    assert_int_equal(h.downs, 0);                /* never up, so no change to report */
    pglisten_destroy(l);
    assert_null(pglisten_create(base, url, NULL, chans, 0, &hooks, &h));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pglisten_hears_committed_notifies_only),
        cmocka_unit_test(test_pglisten_reports_down_and_comes_back),
        cmocka_unit_test(test_pglisten_unreachable_stays_down),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
