/*
 * test_cursor.c -- the keyset cursor codec (common/cursor.h): round trips,
 * and every way a cursor can be wrong (tampered, truncated, extended, other
 * key, not base64url) is OF_INVALID.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sodium.h>

#include "common/cursor.h"
#include "common/mem.h"
#include "common/of.h"

static const char SECRET[] = "0123456789abcdef0123456789abcdef-test";

static void
make_key(unsigned char key[OF_CURSOR_KEYBYTES], const char *secret)
{
    of_cursor_key(secret, strlen(secret), key);
}

static void
test_cursor_round_trip(void **state)
{
    (void)state;
    struct of_mem m;
    unsigned char key[OF_CURSOR_KEYBYTES];
    of_mem_init(&m);
    make_key(key, SECRET);
    static const char *const keys[] = { "", "Lamp", "a|b\\c%_", "Ünïcödé ☃", "12345" };
    for (size_t i = 0; i < OF_ARRAY_LEN(keys); i++) {
        struct of_cursor in = { .kind = 3, .sort = 5, .fp = of_cursor_fp("q=1lamp"),
                                .id = INT64_MAX - (int64_t)i, .key = keys[i] };
        char *text = of_cursor_encode(&m, key, &in);
        for (const char *p = text; *p; p++)   /* URL-safe without escaping */
            assert_true((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
                        || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_');
        struct of_cursor out;
        assert_int_equal(of_cursor_decode(&m, key, text, &out), OF_OK);
        assert_int_equal(out.kind, 3);
        assert_int_equal(out.sort, 5);
        assert_true(out.fp == in.fp);
        assert_true(out.id == in.id);
        assert_string_equal(out.key, keys[i]);
    }
    of_mem_release(&m);
}

static void
test_cursor_fp_differs_per_filter(void **state)
{
    (void)state;
    assert_true(of_cursor_fp("in_stock=1|q=0") != of_cursor_fp("in_stock=0|q=0"));
    assert_true(of_cursor_fp("q=1a") == of_cursor_fp("q=1a"));
}

static void
test_cursor_tampered_byte_is_invalid(void **state)
{
    (void)state;
    struct of_mem m;
    unsigned char key[OF_CURSOR_KEYBYTES];
    of_mem_init(&m);
    make_key(key, SECRET);
    struct of_cursor in = { .kind = 1, .sort = 2, .fp = 7, .id = 42, .key = "name" };
    char *text = of_cursor_encode(&m, key, &in);
    size_t len = strlen(text);
    for (size_t i = 0; i < len; i++) {
        char *t = of_mem_strdup(&m, text);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        struct of_cursor out;
        assert_int_equal(of_cursor_decode(&m, key, t, &out), OF_INVALID);
    }
    of_mem_release(&m);
}

static void
test_cursor_truncated_or_extended_is_invalid(void **state)
{
    (void)state;
    struct of_mem m;
    unsigned char key[OF_CURSOR_KEYBYTES];
    of_mem_init(&m);
    make_key(key, SECRET);
    struct of_cursor in = { .kind = 1, .sort = 0, .fp = 1, .id = 9, .key = "" };
    char *text = of_cursor_encode(&m, key, &in);
    size_t len = strlen(text);
    struct of_cursor out;
    for (size_t n = 0; n < len; n++)
        assert_int_equal(of_cursor_decode(&m, key, of_mem_strndup(&m, text, n), &out), OF_INVALID);
    assert_int_equal(of_cursor_decode(&m, key, of_mem_printf(&m, "%sAA", text), &out), OF_INVALID);
    of_mem_release(&m);
}

static void
test_cursor_wrong_key_is_invalid(void **state)
{
    (void)state;
    struct of_mem m;
    unsigned char key[OF_CURSOR_KEYBYTES], other[OF_CURSOR_KEYBYTES], same[OF_CURSOR_KEYBYTES];
    of_mem_init(&m);
    make_key(key, SECRET);
    make_key(other, "another-secret-of-at-least-32-bytes!!");
    make_key(same, SECRET);
    struct of_cursor in = { .kind = 1, .sort = 0, .fp = 1, .id = 9, .key = "k" };
    char *text = of_cursor_encode(&m, key, &in);
    struct of_cursor out;
    assert_int_equal(of_cursor_decode(&m, other, text, &out), OF_INVALID);
    assert_int_equal(of_cursor_decode(&m, same, text, &out), OF_OK);   /* another worker */
    of_mem_release(&m);
}

static void
test_cursor_garbage_is_invalid(void **state)
{
    (void)state;
    struct of_mem m;
    unsigned char key[OF_CURSOR_KEYBYTES];
    of_mem_init(&m);
    make_key(key, SECRET);
    static const char *const bad[] = { "", "!!!!", "abc=", "a+b/c", "AAAA",
                                       "eyJzb3J0IjoiaWQiLCJpZCI6MTB9" };
    struct of_cursor out;
    for (size_t i = 0; i < OF_ARRAY_LEN(bad); i++)
        assert_int_equal(of_cursor_decode(&m, key, bad[i], &out), OF_INVALID);
    char *huge = of_mem_alloc(&m, OF_CURSOR_MAX_TEXT + 2);
    memset(huge, 'A', OF_CURSOR_MAX_TEXT + 1);
    huge[OF_CURSOR_MAX_TEXT + 1] = '\0';
    assert_int_equal(of_cursor_decode(&m, key, huge, &out), OF_INVALID);
    of_mem_release(&m);
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cursor_round_trip),
        cmocka_unit_test(test_cursor_fp_differs_per_filter),
        cmocka_unit_test(test_cursor_tampered_byte_is_invalid),
        cmocka_unit_test(test_cursor_truncated_or_extended_is_invalid),
        cmocka_unit_test(test_cursor_wrong_key_is_invalid),
        cmocka_unit_test(test_cursor_garbage_is_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
