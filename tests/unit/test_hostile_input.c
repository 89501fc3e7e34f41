/*
 * test_hostile_input.c -- regression tests for what hostile input found
 * (issue 7): each case here is also an input in tests/fuzz/corpus/.
 *
 * - "?q=%ff" reached PostgreSQL as invalid UTF-8 text: a 500. Decoded
 *   query/form values now carry U+FFFD for bytes that are no UTF-8
 *   (corpus/query/regress-invalid-utf8).
 * - "page=1%00" was read as page 1 (the value cut at the NUL); %00 is now
 *   U+FFFD too, so it is a 422 (corpus/query/regress-nul).
 * - a JSON real far outside int64 (1e300) as an id or quantity was cast
 *   before its range was checked: undefined behaviour, caught by UBSan
 *   (corpus/body/regress-order-quantity-1e300).
 * - libconfig 1.5 leaks on `x "y"`; our loader must still refuse it with a
 *   message (corpus/config/regress-libconfig-leak, leak suppressed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/of.h"
#include "common/util.h"
#include "config/config.h"
#include "handlers/hdl.h"

#define FFFD "\xef\xbf\xbd"

static const char *
form(struct of_mem *m, const char *src, const char *key)
{
    return hdl_form_value(m, src, strlen(src), key);
}

static void
test_invalid_utf8_in_values_becomes_replacement_chars(void **state)
{
    (void)state;
    struct of_mem m;
    of_mem_init(&m);
    assert_string_equal(form(&m, "q=%ff%fe", "q"), FFFD FFFD);
    assert_string_equal(form(&m, "q=a%c3", "q"), "a" FFFD);            /* truncated sequence */
    assert_string_equal(form(&m, "q=%c0%af", "q"), FFFD FFFD);         /* overlong */
    assert_string_equal(form(&m, "q=%ed%a0%80x", "q"), FFFD FFFD FFFD "x");   /* surrogate */
    assert_string_equal(form(&m, "q=caf%C3%A9+%E2%82%AC", "q"), "caf\xc3\xa9 \xe2\x82\xac");
    assert_string_equal(form(&m, "q=plain", "q"), "plain");
    const char *v = form(&m, "q=%ff%41%e2%82", "q");
    assert_true(of_utf8_len(v, strlen(v)) >= 0);
    of_mem_release(&m);
}

static void
test_nul_does_not_cut_a_value_short(void **state)
{
    (void)state;
    struct of_mem m;
    of_mem_init(&m);
    assert_string_equal(form(&m, "page=1%00", "page"), "1" FFFD);
    assert_string_equal(form(&m, "password=se%00cret", "password"), "se" FFFD "cret");

    struct hdl_req r;
    memset(&r, 0, sizeof(r));
    r.mem = &m;
    r.query = "page=1%00";
    struct of_verrs v;
    of_verrs_init(&v);
    int64_t page = 0;
    assert_false(hdl_query_int(&r, &v, "page", 1, 1, 100, "bound", &page));
    assert_int_equal(v.n, 1);
    assert_int_equal(v.e[0].type, OF_VE_TYPE);
    of_mem_release(&m);
}

static void
test_huge_reals_are_type_errors_not_ub(void **state)
{
    (void)state;
    static const double bad[] = { 1e300, -1e300, 9.3e18, -9.3e18, 1.5 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct of_verrs v;
        of_verrs_init(&v);
        json_t *j = json_real(bad[i]);
        int64_t out = 77;
        assert_int_equal(hdl_value_int(j, &v, "items", 0, "quantity", &out), FIELD_BAD);
        assert_int_equal(out, 77);
        assert_int_equal(v.n, 1);
        json_decref(j);
    }
    struct of_verrs v;
    of_verrs_init(&v);
    json_t *j = json_real(3.0);
    int64_t out = 0;
    assert_int_equal(hdl_value_int(j, &v, NULL, -1, "customer_id", &out), FIELD_OK);
    assert_int_equal(out, 3);
    json_decref(j);
}

static void
test_libconfig_syntax_error_is_refused_with_a_message(void **state)
{
    (void)state;
    char path[] = "/tmp/of-test-hostile-XXXXXX";
    int  fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x \"y\"\n", 6), 6);
    close(fd);
    unsetenv("ORDERFLOW_DATABASE_URL");
    unsetenv("ORDERFLOW_LISTEN");
    unsetenv("ORDERFLOW_WORKERS");
    struct of_cfg cfg;
    char          err[512] = "";
    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(cfg_load(&cfg, path, false, err, sizeof(err)), OF_ERR);
    assert_non_null(strstr(err, ":1:"));
    unlink(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_utf8_in_values_becomes_replacement_chars),
        cmocka_unit_test(test_nul_does_not_cut_a_value_short),
        cmocka_unit_test(test_huge_reals_are_type_errors_not_ub),
        cmocka_unit_test(test_libconfig_syntax_error_is_refused_with_a_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
