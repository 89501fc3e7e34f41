/*
 * test_reply.c -- handlers/reply.c: the headers API.md promises with an
 * error (WWW-Authenticate on 401, Retry-After on every 429 and 503, exactly
 * once), the {"detail": ...} shape, and the paged-list envelope.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "common/of.h"
#include "handlers/hdl.h"
#include "tests/unit/support/fake_http.h"

static int
header_count(struct fake_req *f, const char *name)
{
    int n = 0;
    for (int i = 0; i < f->n_out_headers; i++)
        n += strcasecmp(f->out_headers[i][0], name) == 0;
    return n;
}

static const char *
detail(struct fake_req *f)
{
    return json_string_value(json_object_get(f->json, "detail"));
}

static void
test_too_many_429_has_retry_after_seconds_once(void **state)
{
    (void)state;
    struct fake_req *f = fake_req_new(NULL, HDL_POST, "/", NULL, NULL);
    hdl_reply_too_many(&f->r, 17);
    assert_int_equal(f->status, 429);
    assert_int_equal(f->answers, 1);
    assert_int_equal(header_count(f, "Retry-After"), 1);
    assert_string_equal(fake_out_header(f, "Retry-After"), "17");
    assert_string_equal(detail(f), "Too many requests");
    fake_req_free(f);
}

static void
test_too_many_429_retry_after_is_at_least_1(void **state)
{
    (void)state;
    static const int given[] = { 0, -3 };
    for (size_t i = 0; i < OF_ARRAY_LEN(given); i++) {
        struct fake_req *f = fake_req_new(NULL, HDL_POST, "/", NULL, NULL);
        hdl_reply_too_many(&f->r, given[i]);
        assert_int_equal(f->status, 429);
        assert_string_equal(fake_out_header(f, "Retry-After"), "1");
        fake_req_free(f);
    }
}

static void
test_error_429_and_503_have_retry_after_401_www_authenticate(void **state)
{
    (void)state;
    static const struct { int status; const char *header, *value; } cases[] = {
        { 429, "Retry-After", "1" },
        { 503, "Retry-After", "1" },
        { 401, "WWW-Authenticate", "Bearer" },
    };
    for (size_t i = 0; i < OF_ARRAY_LEN(cases); i++) {
        struct fake_req *f = fake_req_new(NULL, HDL_GET, "/", NULL, NULL);
        hdl_reply_error(&f->r, cases[i].status, "x");
        assert_int_equal(f->status, cases[i].status);
        assert_int_equal(f->n_out_headers, 1);
        assert_string_equal(fake_out_header(f, cases[i].header), cases[i].value);
        assert_string_equal(detail(f), "x");
        fake_req_free(f);
    }
}

static void
test_error_404_has_no_extra_headers_and_escapes_detail(void **state)
{
    (void)state;
    struct fake_req *f = fake_req_new(NULL, HDL_GET, "/", NULL, NULL);
    hdl_reply_error(&f->r, 404, "say \"hi\"\n");
    assert_int_equal(f->status, 404);
    assert_int_equal(f->n_out_headers, 0);
    assert_string_equal(detail(f), "say \"hi\"\n");
    fake_req_free(f);
}

static void
test_rc_unavailable_is_503_with_retry_after(void **state)
{
    (void)state;
    struct fake_req *f = fake_req_new(NULL, HDL_GET, "/", NULL, NULL);
    hdl_reply_rc(&f->r, OF_UNAVAILABLE);
    assert_int_equal(f->status, 503);
    assert_int_equal(header_count(f, "Retry-After"), 1);
    fake_req_free(f);
}

static json_t *
int_json(const void *item)
{
    return json_integer(*(const int *)item);
}

static void
test_page_envelope_counts_pages(void **state)
{
    (void)state;
    static const int items[] = { 7, 8, 9 };
    struct fake_req *f = fake_req_new(NULL, HDL_GET, "/", NULL, NULL);
    hdl_reply_page(&f->r, OF_OK, items, 3, sizeof(items[0]), int_json, 2, 3, 7);
    assert_int_equal(f->status, 200);
    assert_int_equal(json_array_size(json_object_get(f->json, "items")), 3);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(f->json, "items"), 2)), 9);
    assert_int_equal(json_integer_value(json_object_get(f->json, "page")), 2);
    assert_int_equal(json_integer_value(json_object_get(f->json, "page_size")), 3);
    assert_int_equal(json_integer_value(json_object_get(f->json, "total")), 7);
    assert_int_equal(json_integer_value(json_object_get(f->json, "total_pages")), 3);
    fake_req_free(f);

    f = fake_req_new(NULL, HDL_GET, "/", NULL, NULL);
    hdl_reply_page(&f->r, OF_OK, NULL, 0, sizeof(int), int_json, 1, 20, 0);
    assert_int_equal(json_integer_value(json_object_get(f->json, "total_pages")), 0);
    fake_req_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_too_many_429_has_retry_after_seconds_once),
        cmocka_unit_test(test_too_many_429_retry_after_is_at_least_1),
        cmocka_unit_test(test_error_429_and_503_have_retry_after_401_www_authenticate),
        cmocka_unit_test(test_error_404_has_no_extra_headers_and_escapes_detail),
        cmocka_unit_test(test_rc_unavailable_is_503_with_retry_after),
        cmocka_unit_test(test_page_envelope_counts_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
