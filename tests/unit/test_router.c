/*
 * test_router.c -- the route table: literal and {id} segments, typed ids,
 * 404 versus 405 with the Allow list.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "worker/router.h"
#include "common/of.h"

static int
setup(void **state)
{
    OF_UNUSED(state);
    return router_init() == OF_OK ? 0 : -1;
}

static void
test_literal_route_matches(void **state)
{
    struct router_match m;
    OF_UNUSED(state);
    assert_int_equal(router_match(HDL_GET, "/health", &m), ROUTER_FOUND);
    assert_string_equal(m.route->tmpl, "/health");
    assert_int_equal(m.nids, 0);
}

static void
test_id_param_is_parsed(void **state)
{
    struct router_match m;
    OF_UNUSED(state);
    assert_int_equal(router_match(HDL_GET, "/api/v1/products/42", &m), ROUTER_FOUND);
    assert_string_equal(m.route->tmpl, "/api/v1/products/{id}");
    assert_int_equal(m.nids, 1);
    assert_int_equal(m.ids[0], 42);
    assert_int_equal(router_match(HDL_GET, "/api/v1/products/9223372036854775807", &m), ROUTER_FOUND);
    assert_int_equal(m.ids[0], INT64_MAX);
}

static void
test_bad_ids_are_404(void **state)
{
    static const char *const bad[] = {
        "/api/v1/products/abc", "/api/v1/products/0", "/api/v1/products/-1",
        "/api/v1/products/9223372036854775808", "/api/v1/products/99999999999999999999",
        "/api/v1/products/+5", "/api/v1/products/ 5", "/api/v1/products/5x",
        "/api/v1/products/", "/api/v1/products/1/", "/api/v1/products//1",
    };
    struct router_match m;
    OF_UNUSED(state);
    for (size_t i = 0; i < OF_ARRAY_LEN(bad); i++) {
        enum router_result rr = router_match(HDL_GET, bad[i], &m);
        if (rr != ROUTER_NOT_FOUND)
            fail_msg("%s matched (%d)", bad[i], rr);
    }
}

static void
test_unknown_path_is_404(void **state)
{
    struct router_match m;
    OF_UNUSED(state);
    assert_int_equal(router_match(HDL_GET, "/nope", &m), ROUTER_NOT_FOUND);
    assert_int_equal(router_match(HDL_GET, "", &m), ROUTER_NOT_FOUND);
    assert_int_equal(router_match(HDL_GET, "health", &m), ROUTER_NOT_FOUND);
    assert_int_equal(router_match(HDL_GET, "/health/", &m), ROUTER_NOT_FOUND);
    assert_int_equal(router_match(HDL_GET, "/a/b/c/d/e/f/g/h/i/j/k", &m), ROUTER_NOT_FOUND);
}

static void
test_wrong_method_is_405_with_allow(void **state)
{
    struct router_match m;
    char                allow[64];
    OF_UNUSED(state);
    assert_int_equal(router_match(HDL_PUT, "/api/v1/products/7", &m), ROUTER_METHOD_NOT_ALLOWED);
    router_allow_string(m.allow, allow, sizeof(allow));
    assert_string_equal(allow, "GET, PATCH, DELETE");
    assert_int_equal(router_match(HDL_DELETE, "/health", &m), ROUTER_METHOD_NOT_ALLOWED);
    router_allow_string(m.allow, allow, sizeof(allow));
    assert_string_equal(allow, "GET");
}

static void
test_every_template_matches_itself(void **state)
{
    size_t n;
    const struct route *t = router_routes(&n);
    OF_UNUSED(state);
    assert_true(n > 5);
    for (size_t i = 0; i < n; i++) {
        char path[256];
        const char *s = t[i].tmpl;
        size_t o = 0;
        while (*s != '\0' && o < sizeof(path) - 3) {
            if (*s == '{' && strchr(s, '}') != NULL) {     /* {id}, {delivery_id} */
                path[o++] = '7';
                s = strchr(s, '}') + 1;
            } else {
                path[o++] = *s++;
            }
        }
        path[o] = '\0';
        struct router_match m;
        assert_int_equal(router_match(t[i].method, path, &m), ROUTER_FOUND);
        assert_ptr_equal(m.route, &t[i]);
        assert_int_equal(m.route->id, (int)i + 1);
        assert_string_equal(router_route_name(m.route->id), t[i].tmpl);
    }
    assert_string_equal(router_route_name(0), "unmatched");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_route_matches),
        cmocka_unit_test(test_id_param_is_parsed),
        cmocka_unit_test(test_bad_ids_are_404),
        cmocka_unit_test(test_unknown_path_is_404),
        cmocka_unit_test(test_wrong_method_is_405_with_allow),
        cmocka_unit_test(test_every_template_matches_itself),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
