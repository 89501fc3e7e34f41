/*
 * test_money.c -- money as cents: string and JSON-number parsing, bounds,
 * formatting and overflow-checked arithmetic (domain/money.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "domain/money.h"

static int
parse(const char *s, int64_t *c)
{
    return money_parse_str(s, strlen(s), c);
}

static void
expect_str(const char *s, int64_t want)
{
    int64_t c = 12345;
    int     rc = parse(s, &c);
    if (rc != OF_OK)
        fail_msg("\"%s\": rc %d", s, rc);
    assert_int_equal(c, want);
}

static void
expect_str_rc(const char *s, int want_rc)
{
    int64_t c = 777;
    int     rc = parse(s, &c);
    if (rc != want_rc)
        fail_msg("\"%s\": rc %d, want %d", s, rc, want_rc);
    assert_int_equal(c, 777);   /* untouched on failure */
}

static void test_str_two_places(void **s) { (void)s; expect_str("19.99", 1999); }
static void test_str_leading_zero_cents(void **s) { (void)s; expect_str("0.10", 10); }
static void test_str_one_place(void **s) { (void)s; expect_str("0.1", 10); expect_str("5.5", 550); }
static void test_str_whole(void **s) { (void)s; expect_str("7", 700); expect_str("0", 0); }
static void test_str_negative(void **s) { (void)s; expect_str("-0.01", -1); expect_str("-5", -500); }
static void test_str_negative_zero(void **s) { (void)s; expect_str("-0.00", 0); }
static void test_str_leading_zeros(void **s) { (void)s; expect_str("007.50", 750); expect_str("0000000000000000000001.00", 100); }
static void test_str_max_ok(void **s) { (void)s; expect_str("99999999.99", 9999999999LL); expect_str("-99999999.99", -9999999999LL); }
static void test_str_over_max(void **s) { (void)s; expect_str_rc("100000000.00", MONEY_E_RANGE); expect_str_rc("100000000", MONEY_E_RANGE); expect_str_rc("-100000000.00", MONEY_E_RANGE); }
static void test_str_huge_no_overflow(void **s) { (void)s; expect_str_rc("99999999999999999999999999999.99", MONEY_E_RANGE); }
static void test_str_three_places(void **s) { (void)s; expect_str_rc("1.234", MONEY_E_PLACES); }
static void test_str_trailing_zero_third_place(void **s) { (void)s; expect_str_rc("19.990", MONEY_E_PLACES); }
static void test_str_letters(void **s) { (void)s; expect_str_rc("abc", MONEY_E_FORMAT); expect_str_rc("1.2a", MONEY_E_FORMAT); expect_str_rc("12x", MONEY_E_FORMAT); }
static void test_str_empty(void **s) { (void)s; expect_str_rc("", MONEY_E_FORMAT); expect_str_rc("-", MONEY_E_FORMAT); }
static void test_str_dot_no_fraction(void **s) { (void)s; expect_str_rc("1.", MONEY_E_FORMAT); }
static void test_str_fraction_no_int(void **s) { (void)s; expect_str_rc(".5", MONEY_E_FORMAT); expect_str_rc("-.5", MONEY_E_FORMAT); }
static void test_str_plus_sign(void **s) { (void)s; expect_str_rc("+1", MONEY_E_FORMAT); }
static void test_str_exponent(void **s) { (void)s; expect_str_rc("1e2", MONEY_E_FORMAT); }
static void test_str_spaces(void **s) { (void)s; expect_str_rc(" 1", MONEY_E_FORMAT); expect_str_rc("1 ", MONEY_E_FORMAT); }
static void test_str_two_dots(void **s) { (void)s; expect_str_rc("1.2.3", MONEY_E_FORMAT); expect_str_rc("--1", MONEY_E_FORMAT); }
static void test_str_comma(void **s) { (void)s; expect_str_rc("1,50", MONEY_E_FORMAT); }

static void
test_str_not_nul_terminated(void **s)
{
    (void)s;
    int64_t c;
    assert_int_equal(money_parse_str("12.34999", 5, &c), OF_OK);
    assert_int_equal(c, 1234);
    assert_int_equal(money_parse_str(NULL, 0, &c), MONEY_E_FORMAT);
}

static void
expect_real(double v, int64_t want)
{
    int64_t c = 12345;
    int     rc = money_from_json_real(v, &c);
    if (rc != OF_OK)
        fail_msg("%.17g: rc %d", v, rc);
    assert_int_equal(c, want);
}

static void
expect_real_rc(double v, int want_rc)
{
    int64_t c = 777;
    int     rc = money_from_json_real(v, &c);
    if (rc != want_rc)
        fail_msg("%.17g: rc %d, want %d", v, rc, want_rc);
    assert_int_equal(c, 777);
}

static void test_real_two_places(void **s) { (void)s; expect_real(19.99, 1999); expect_real(0.29, 29); expect_real(1.15, 115); }
static void test_real_exponent(void **s) { (void)s; expect_real(1e2, 10000); expect_real(1.5e1, 1500); }
static void test_real_one_place(void **s) { (void)s; expect_real(0.1, 10); }
static void test_real_trailing_zero_same_double(void **s) { (void)s; expect_real(19.990, 1999); }
static void test_real_three_places(void **s) { (void)s; expect_real_rc(1.234, MONEY_E_PLACES); expect_real_rc(0.001, MONEY_E_PLACES); expect_real_rc(19.995, MONEY_E_PLACES); }
static void test_real_negative(void **s) { (void)s; expect_real(-0.01, -1); expect_real(-0.0, 0); }
static void test_real_max_ok(void **s) { (void)s; expect_real(99999999.99, 9999999999LL); expect_real(-99999999.99, -9999999999LL); }
static void test_real_over_max(void **s) { (void)s; expect_real_rc(100000000.0, MONEY_E_RANGE); expect_real_rc(1e300, MONEY_E_RANGE); expect_real_rc(-1e8, MONEY_E_RANGE); }
static void test_real_not_finite(void **s) { (void)s; expect_real_rc(__builtin_inf(), MONEY_E_RANGE); expect_real_rc(__builtin_nan(""), MONEY_E_RANGE); }

static void
test_real_every_cent_below_two_units(void **s)
{
    (void)s;
    /* Each c/100 as strtod would parse it round-trips to c. */
    for (int64_t c = -200; c <= 200; c++) {
        char    buf[32];
        int64_t got;
        money_format(c, buf);
        assert_int_equal(money_from_json_real(strtod(buf, NULL), &got), OF_OK);
        assert_int_equal(got, c);
    }
}

static void
test_int_whole_units(void **s)
{
    (void)s;
    int64_t c;
    assert_int_equal(money_from_json_int(100, &c), OF_OK);
    assert_int_equal(c, 10000);
    assert_int_equal(money_from_json_int(99999999, &c), OF_OK);
    assert_int_equal(c, 9999999900LL);
    assert_int_equal(money_from_json_int(-99999999, &c), OF_OK);
    assert_int_equal(money_from_json_int(100000000, &c), MONEY_E_RANGE);
    assert_int_equal(money_from_json_int(-100000000, &c), MONEY_E_RANGE);
    assert_int_equal(money_from_json_int(INT64_MAX, &c), MONEY_E_RANGE);
    assert_int_equal(money_from_json_int(INT64_MIN, &c), MONEY_E_RANGE);
}

static void
expect_fmt(int64_t c, const char *want)
{
    char buf[MONEY_FMT_CAP];
    money_format(c, buf);
    assert_string_equal(buf, want);
}

static void test_fmt_basic(void **s) { (void)s; expect_fmt(1999, "19.99"); expect_fmt(10, "0.10"); expect_fmt(0, "0.00"); expect_fmt(10000, "100.00"); expect_fmt(5, "0.05"); }
static void test_fmt_negative(void **s) { (void)s; expect_fmt(-1, "-0.01"); expect_fmt(-1999, "-19.99"); expect_fmt(-100, "-1.00"); }
static void test_fmt_beyond_input_bound(void **s) { (void)s; expect_fmt(9999999999LL, "99999999.99"); expect_fmt(199999999980LL, "1999999999.80"); }
static void test_fmt_int64_edges(void **s) { (void)s; expect_fmt(INT64_MAX, "92233720368547758.07"); expect_fmt(INT64_MIN, "-92233720368547758.08"); }

static void
test_fmt_parse_round_trip(void **s)
{
    (void)s;
    const int64_t vals[] = { 0, 1, -1, 99, 100, 101, 1999, -1999, 9999999999LL, -9999999999LL };
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        char    buf[MONEY_FMT_CAP];
        int64_t back;
        money_format(vals[i], buf);
        assert_int_equal(parse(buf, &back), OF_OK);
        assert_int_equal(back, vals[i]);
    }
}

static void
test_add_and_overflow(void **s)
{
    (void)s;
    int64_t r = 5;
    assert_int_equal(money_add(1999, 1, &r), OF_OK);
    assert_int_equal(r, 2000);
    assert_int_equal(money_add(INT64_MAX, 0, &r), OF_OK);
    r = 5;
    assert_int_equal(money_add(INT64_MAX, 1, &r), OF_ERR);
    assert_int_equal(money_add(INT64_MIN, -1, &r), OF_ERR);
    assert_int_equal(r, 5);
}

static void
test_mul_qty_and_overflow(void **s)
{
    (void)s;
    int64_t r = 5;
    assert_int_equal(money_mul_qty(1999, 2, &r), OF_OK);
    assert_int_equal(r, 3998);
    /* 20 items at the input maximum: far beyond the input bound, exact. */
    assert_int_equal(money_mul_qty(9999999999LL, 20, &r), OF_OK);
    assert_int_equal(r, 199999999980LL);
    r = 5;
    assert_int_equal(money_mul_qty(INT64_MAX / 2 + 1, 2, &r), OF_ERR);
    assert_int_equal(money_mul_qty(INT64_MIN, -1, &r), OF_ERR);
    assert_int_equal(r, 5);
}

static void
test_strerror_distinct(void **s)
{
    (void)s;
    assert_string_not_equal(money_strerror(MONEY_E_FORMAT), money_strerror(MONEY_E_PLACES));
    assert_string_not_equal(money_strerror(MONEY_E_PLACES), money_strerror(MONEY_E_RANGE));
    assert_non_null(money_strerror(12345));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str_two_places),
        cmocka_unit_test(test_str_leading_zero_cents),
        cmocka_unit_test(test_str_one_place),
        cmocka_unit_test(test_str_whole),
        cmocka_unit_test(test_str_negative),
        cmocka_unit_test(test_str_negative_zero),
        cmocka_unit_test(test_str_leading_zeros),
        cmocka_unit_test(test_str_max_ok),
        cmocka_unit_test(test_str_over_max),
        cmocka_unit_test(test_str_huge_no_overflow),
        cmocka_unit_test(test_str_three_places),
        cmocka_unit_test(test_str_trailing_zero_third_place),
        cmocka_unit_test(test_str_letters),
        cmocka_unit_test(test_str_empty),
        cmocka_unit_test(test_str_dot_no_fraction),
        cmocka_unit_test(test_str_fraction_no_int),
        cmocka_unit_test(test_str_plus_sign),
        cmocka_unit_test(test_str_exponent),
        cmocka_unit_test(test_str_spaces),
        cmocka_unit_test(test_str_two_dots),
        cmocka_unit_test(test_str_comma),
        cmocka_unit_test(test_str_not_nul_terminated),
        cmocka_unit_test(test_real_two_places),
        cmocka_unit_test(test_real_exponent),
        cmocka_unit_test(test_real_one_place),
        cmocka_unit_test(test_real_trailing_zero_same_double),
        cmocka_unit_test(test_real_three_places),
        cmocka_unit_test(test_real_negative),
        cmocka_unit_test(test_real_max_ok),
        cmocka_unit_test(test_real_over_max),
        cmocka_unit_test(test_real_not_finite),
        cmocka_unit_test(test_real_every_cent_below_two_units),
        cmocka_unit_test(test_int_whole_units),
        cmocka_unit_test(test_fmt_basic),
        cmocka_unit_test(test_fmt_negative),
        cmocka_unit_test(test_fmt_beyond_input_bound),
        cmocka_unit_test(test_fmt_int64_edges),
        cmocka_unit_test(test_fmt_parse_round_trip),
        cmocka_unit_test(test_add_and_overflow),
        cmocka_unit_test(test_mul_qty_and_overflow),
        cmocka_unit_test(test_strerror_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
