/*
 * test_form.c -- the urlencoded form lookup login uses (handlers/query.c):
 * values found and decoded, and no arena memory spent per '&' (issue 11:
 * it took 16 bytes per pair, twice per login, for a body of many '&').
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/mem.h"
#include "handlers/query.h"

static void
test_values_found_and_decoded(void **state)
{
    (void)state;
    struct of_mem m;
    of_mem_init(&m);
    const char *body = "grant_type=password&user%6Eame=a%40b.io&password=p+w%21&password2=x";
    assert_string_equal(hdl_form_value(&m, body, strlen(body), "username"), "a@b.io");
    assert_string_equal(hdl_form_value(&m, body, strlen(body), "password"), "p w!");
    assert_null(hdl_form_value(&m, body, strlen(body), "scope"));
    /* the last occurrence wins, as before */
    const char *twice = "username=a&username=b";
    assert_string_equal(hdl_form_value(&m, twice, strlen(twice), "username"), "b");
    /* a key that decodes to something longer or with a NUL is not the key */
    const char *nul = "username%00=x&usernamex=y";
    assert_null(hdl_form_value(&m, nul, strlen(nul), "username"));
    of_mem_release(&m);
}

static void
test_many_pairs_cost_no_arena_memory(void **state)
{
    (void)state;
    size_t n = 200000;
    char  *body = malloc(n + 64);
    assert_non_null(body);
    static const char first[] = "username=u%40x.io&";
    size_t            len = sizeof(first) - 1;
    memcpy(body, first, len);
    memset(body + len, '&', n);
    len += n;
    memcpy(body + len, "password=pw", 11);
    len += 11;

    struct of_mem m;
    of_mem_init(&m);
    assert_string_equal(hdl_form_value(&m, body, len, "username"), "u@x.io");
    assert_string_equal(hdl_form_value(&m, body, len, "password"), "pw");
    /* everything fit in the arena's inline block: not one chunk was added */
    assert_null(m.chunks);
    assert_true(m.first_used < 256);
    of_mem_release(&m);
    free(body);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_found_and_decoded),
        cmocka_unit_test(test_many_pairs_cost_no_arena_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
