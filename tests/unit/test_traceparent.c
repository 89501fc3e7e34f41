/*
 * test_traceparent.c -- common/traceparent.c: the W3C traceparent grammar
 * (version 00 exactly, future versions by their first four fields, lowercase
 * hex, non-zero ids, version ff refused), tracestate list members, and the
 * format the server answers with.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/of.h"
#include "common/traceparent.h"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define SID "00f067aa0ba902b7"

static void
test_traceparent_table(void **state)
{
    (void)state;
    static const struct { const char *in; bool ok; uint8_t flags; } cases[] = {
        { "00-" TID "-" SID "-01",             true,  0x01 },
        { "00-" TID "-" SID "-00",             true,  0x00 },
        { "00-" TID "-" SID "-09",             true,  0x09 },
        { "01-" TID "-" SID "-01",             true,  0x01 },   /* future version */
        { "cc-" TID "-" SID "-01-what-ever",   true,  0x01 },   /* future, longer */
        { "cc-" TID "-" SID "-01x",            false, 0 },      /* no dash after flags */
        { "00-" TID "-" SID "-01-extra",       false, 0 },      /* 00 is exactly 55 */
        { "ff-" TID "-" SID "-01",             false, 0 },
        { "00-" "4BF92F3577B34DA6A3CE929D0E0E4736" "-" SID "-01", false, 0 },
        { "00-00000000000000000000000000000000-" SID "-01", false, 0 },
        { "00-" TID "-0000000000000000-01",    false, 0 },
        { "00-" TID "-" SID "-0g",             false, 0 },
        { "00-" TID "-" SID,                   false, 0 },
        { "00_" TID "-" SID "-01",             false, 0 },
        { "0-" TID "-" SID "-01",              false, 0 },
        { "",                                  false, 0 },
        { "00-" TID "-" SID "-01 ",            false, 0 },
        { " 00-" TID "-" SID "-01",            false, 0 },
        { "xx-" TID "-" SID "-01",             false, 0 },
    };
    for (size_t i = 0; i < OF_ARRAY_LEN(cases); i++) {
        struct tp_ctx c;
        bool ok = tp_parse(cases[i].in, &c);
        if (ok != cases[i].ok)
            fail_msg("case %zu (%s): got %d", i, cases[i].in, ok);
        if (ok)
            assert_int_equal(c.flags, cases[i].flags);
    }
    assert_false(tp_parse(NULL, &(struct tp_ctx){ 0 }));
}

static void
test_traceparent_roundtrip(void **state)
{
    (void)state;
    struct tp_ctx c;
    char          out[TP_LEN + 1];
    assert_true(tp_parse("00-" TID "-" SID "-01", &c));
    assert_int_equal(c.trace_id[0], 0x4b);
    assert_int_equal(c.parent_id[7], 0xb7);
    tp_format(out, c.trace_id, c.parent_id, c.flags);
    assert_string_equal(out, "00-" TID "-" SID "-01");
    char hex[17];
    tp_hex(hex, c.parent_id, 8);
    assert_string_equal(hex, SID);
}

static void
test_tracestate_table(void **state)
{
    (void)state;
    static const struct { const char *in; bool ok; } cases[] = {
        { "",                                 true },
        { "congo=t61rcWkgMzE",                true },
        { "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", true },
        { " rojo=1 , congo=2 ",               true },
        { "rojo=1,,congo=2",                  true },
        { "tenant@vendor=x",                  true },
        { "1tenant@vendor=x",                 true },
        { "a*/_-b=v a l",                     true },
        { "Rojo=1",                           false },   /* upper-case key */
        { "1abc=1",                           false },   /* simple key starts lcalpha */
        { "rojo=1,rojo=2",                    false },   /* duplicate key */
        { "rojo",                             false },
        { "rojo=",                            false },
        { "rojo=a=b",                         false },
        { "rojo=trailing ",                   true },    /* OWS trimmed before the value check */
        { "=1",                               false },
        { "t@=1",                             false },
        { "t@Vendor=1",                       false },
        { "t@vendorvendorvendor=1",           false },   /* system id over 14 */
        { "ro\x01jo=1",                       false },
        { "rojo=\x7f",                        false },
    };
    for (size_t i = 0; i < OF_ARRAY_LEN(cases); i++)
        if (tp_state_valid(cases[i].in) != cases[i].ok)
            fail_msg("case %zu (%s)", i, cases[i].in);
}

static void
test_tracestate_limits(void **state)
{
    (void)state;
    char buf[1024];
    size_t n = 0;
    for (int i = 0; i < 33; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%sk%d=v", i ? "," : "", i);
    assert_false(tp_state_valid(buf));          /* 33 members */
    char *last = strrchr(buf, ',');
    *last = '\0';
    assert_true(tp_state_valid(buf));           /* 32 */
    memset(buf, 'a', 600);
    buf[0] = 'k';
    buf[1] = '=';
    buf[600] = '\0';
    assert_false(tp_state_valid(buf));          /* longer than TP_STATE_MAX */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traceparent_table),
        cmocka_unit_test(test_traceparent_roundtrip),
        cmocka_unit_test(test_tracestate_table),
        cmocka_unit_test(test_tracestate_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
