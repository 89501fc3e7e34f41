/*
 * test_replica.c -- store/replica.c's decision where a public catalog read
 * goes (replica only while connected, freshly measured and within
 * replica_max_lag; the primary otherwise), the route without replicas or
 * with an unreachable one, and /ready naming the node role and the
 * replicas' state (handlers/ops.c) through a fake probe.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/event.h>

#include "common/of.h"
#include "handlers/ops.h"
#include "store/replica.h"
#include "tests/unit/support/fake_http.h"

#define SEC 1000000000ull

static struct replica_view
fresh_view(double lag, uint64_t at)
{
    return (struct replica_view){ .configured = true, .connected = true, .measured = true,
                                  .measured_ns = at, .lag_s = lag };
}

static void
test_usable_within_max_lag(void **state)
{
    (void)state;
    struct replica_view v = fresh_view(0.0, 10 * SEC);
    assert_true(replica_usable(&v, 1.0, 10 * SEC));
    v.lag_s = 1.0;                                  /* the bound itself is allowed */
    assert_true(replica_usable(&v, 1.0, 10 * SEC + SEC / 2));
    v.lag_s = 1.001;
    assert_false(replica_usable(&v, 1.0, 10 * SEC));
    v.lag_s = 0.0;                                  /* max_lag 0: only a caught-up replica */
    assert_true(replica_usable(&v, 0.0, 10 * SEC));
    v.lag_s = -0.5;                                 /* nonsense from a probe */
    assert_false(replica_usable(&v, 1.0, 10 * SEC));
}

static void
test_not_usable_without_connection_or_measurement(void **state)
{
    (void)state;
    struct replica_view v = fresh_view(0.0, 10 * SEC);
    v.configured = false;
    assert_false(replica_usable(&v, 1.0, 10 * SEC));
    v = fresh_view(0.0, 10 * SEC);
    v.connected = false;
    assert_false(replica_usable(&v, 1.0, 10 * SEC));
    v = fresh_view(0.0, 10 * SEC);
    v.measured = false;
    assert_false(replica_usable(&v, 1.0, 10 * SEC));
}

static void
test_stale_measurement_sends_reads_to_primary(void **state)
{
    (void)state;
    struct replica_view v = fresh_view(0.0, 10 * SEC);
    assert_true(replica_usable(&v, 1.0, 10 * SEC + REPLICA_FRESH_NS));
    assert_false(replica_usable(&v, 1.0, 10 * SEC + REPLICA_FRESH_NS + 1));
    assert_false(replica_usable(&v, 1.0, 9 * SEC));   /* measured "in the future" */
}

static void
test_route_without_replica_is_primary(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    pool *primary = (pool *)(uintptr_t)0x1000;        /* never dereferenced */
    struct replica_route *rt = replica_route_create(base, primary, NULL, 1.0);
    assert_non_null(rt);
    bool lagging = true;
    assert_ptr_equal(replica_route_catalog(rt, &lagging), primary);
    assert_false(lagging);
    assert_ptr_equal(replica_route_primary(rt), primary);
    struct replica_stats rs;
    replica_route_stats(rt, &rs);
    assert_false(rs.configured);
    assert_false(rs.usable);
    assert_int_equal(rs.lag_us, -1);
    replica_route_destroy(rt);
    event_base_free(base);
}

static void
test_route_with_unreachable_replica_is_primary(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct pool_opts o = { .url = NULL, .size = 1, .queue_timeout_ms = 100 };
    pool *replica = pool_create(base, &o, NULL, 0);    /* no URL: never connects */
    assert_non_null(replica);
    pool *primary = (pool *)(uintptr_t)0x1000;
    struct replica_route *rt = replica_route_create(base, primary, replica, 86400.0);
    struct timeval t = { 0, 300000 };                   /* past one probe tick */
    event_base_loopexit(base, &t);
    event_base_dispatch(base);
    bool lagging = true;
    assert_ptr_equal(replica_route_catalog(rt, &lagging), primary);
    assert_false(lagging);
    struct replica_stats rs;
    replica_route_stats(rt, &rs);
    assert_true(rs.configured);
    assert_false(rs.usable);
    assert_int_equal(rs.lag_us, -1);
    replica_route_destroy(rt);
    pool_destroy(replica);
    event_base_free(base);
}

/* ---- /ready ---- */

struct probe_state {
    bool        ready;
    const char *role, *replica;
};

static bool probe_ready(void *ctx) { return ((struct probe_state *)ctx)->ready; }
static const char *probe_role(void *ctx) { return ((struct probe_state *)ctx)->role; }
static const char *probe_replica(void *ctx) { return ((struct probe_state *)ctx)->replica; }

static struct fake_req *
ready(struct hdl_services *svc, struct probe_state *ps)
{
    memset(svc, 0, sizeof(*svc));
    svc->probe = (struct hdl_ops_probe){ .db_ready = probe_ready, .db_role = probe_role,
                                         .replica = probe_replica, .ctx = ps };
    struct fake_req *f = fake_req_new(svc, HDL_GET, "/ready", NULL, NULL);
    hdl_ready(&f->r);
    return f;
}

static const char *
field(struct fake_req *f, const char *name)
{
    return json_string_value(json_object_get(f->json, name));
}

static void
test_ready_names_role_and_replica(void **state)
{
    (void)state;
    struct hdl_services svc;
    struct probe_state ps = { true, "primary", NULL };
    struct fake_req *f = ready(&svc, &ps);
    assert_int_equal(f->status, 200);
    assert_string_equal(field(f, "status"), "ready");
    assert_string_equal(field(f, "database"), "ok");
    assert_string_equal(field(f, "role"), "primary");
    assert_null(json_object_get(f->json, "replica"));     /* none configured */
    fake_req_free(f);

    ps = (struct probe_state){ true, "standby", "lagging" };
    f = ready(&svc, &ps);
    assert_int_equal(f->status, 200);
    assert_string_equal(field(f, "role"), "standby");
    assert_string_equal(field(f, "replica"), "lagging");
    fake_req_free(f);
}

static void
test_ready_down_is_503_with_retry_after(void **state)
{
    (void)state;
    struct hdl_services svc;
    struct probe_state ps = { false, NULL, "ok" };
    struct fake_req *f = ready(&svc, &ps);
    assert_int_equal(f->status, 503);
    assert_non_null(fake_out_header(f, "Retry-After"));
    assert_string_equal(field(f, "database"), "down");
    fake_req_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usable_within_max_lag),
        cmocka_unit_test(test_not_usable_without_connection_or_measurement),
        cmocka_unit_test(test_stale_measurement_sends_reads_to_primary),
        cmocka_unit_test(test_route_without_replica_is_primary),
        cmocka_unit_test(test_route_with_unreachable_replica_is_primary),
        cmocka_unit_test(test_ready_names_role_and_replica),
        cmocka_unit_test(test_ready_down_is_503_with_retry_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
