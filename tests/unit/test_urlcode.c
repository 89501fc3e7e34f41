/*
 * test_urlcode.c -- common/urlcode.c, the one percent-decoder: the form
 * flavour (query strings, login bodies) reads '+' as a space, the path
 * flavour does not; a bad escape is kept as written and %00 becomes U+FFFD,
 * and both say so through *exact (the worker then keeps the raw path).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/of.h"
#include "common/urlcode.h"

#define FFFD "\xef\xbf\xbd"

static void
test_decode_table(void **state)
{
    (void)state;
    static const struct {
        const char      *in;
        enum of_url_mode mode;
        const char      *out;
        bool             exact;
    } cases[] = {
        { "",              OF_URL_FORM, "",           true },
        { "plain",         OF_URL_PATH, "plain",      true },
        { "a+b%20c",       OF_URL_FORM, "a b c",      true },
        { "a+b%20c",       OF_URL_PATH, "a+b c",      true },
        { "%2B%2b",        OF_URL_FORM, "++",         true },
        { "/products/%31", OF_URL_PATH, "/products/1", true },
        { "caf%C3%A9",     OF_URL_FORM, "caf\xc3\xa9", true },
        { "100%",          OF_URL_FORM, "100%",       false },
        { "%4",            OF_URL_FORM, "%4",         false },
        { "%zz1",          OF_URL_PATH, "%zz1",       false },
        { "%%41",          OF_URL_FORM, "%A",         false },
        { "1%00",          OF_URL_FORM, "1" FFFD,     false },
        { "a%00b",         OF_URL_PATH, "a" FFFD "b", false },
    };
    for (size_t i = 0; i < OF_ARRAY_LEN(cases); i++) {
        size_t len = strlen(cases[i].in);
        char   out[64];
        bool   exact = !cases[i].exact;
        size_t n = of_url_decode(out, cases[i].in, len, cases[i].mode, &exact);
        assert_string_equal(out, cases[i].out);
        assert_int_equal(n, strlen(cases[i].out));
        assert_true(n <= len);
        assert_int_equal(exact, cases[i].exact);
    }
}

static void
test_decode_does_not_read_past_len(void **state)
{
    (void)state;
    char out[8];
    /* "%41" cut after "%4": the escape is incomplete within len */
    assert_int_equal(of_url_decode(out, "x%41", 3, OF_URL_FORM, NULL), 3);
    assert_string_equal(out, "x%4");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_table),
        cmocka_unit_test(test_decode_does_not_read_past_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
