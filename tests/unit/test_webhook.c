/*
 * test_webhook.c -- the webhook input rules of domain/webhook.h (URL,
 * events, description, create vs patch), event type names
 * (domain/event.h), and the event id / webhook secret generators
 * (common/ids.h). Table-driven; both sides of every bound.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sodium.h>

#include "common/ids.h"
#include "domain/event.h"
#include "domain/webhook.h"

static char long_url[2100];

static const char *
url_of_len(size_t n)
{
    const char *head = "https://hooks.example.com/";
    size_t      h = strlen(head);
    assert_true(n >= h && n < sizeof(long_url));
    memcpy(long_url, head, h);
    memset(long_url + h, 'a', n - h);
    long_url[n] = '\0';
    return long_url;
}

static void
test_url_table(void **state)
{
    (void)state;
    static const struct { const char *url; bool http; enum webhook_url_rc want; } t[] = {
        { "https://hooks.example.com/in", false, WEBHOOK_URL_OK },
        { "HTTPS://Hooks.Example.com:8443/p?q=1#f", false, WEBHOOK_URL_OK },
        { "https://hooks.example.com", false, WEBHOOK_URL_OK },
        { "https://hooks.example.com?x=1", false, WEBHOOK_URL_OK },
        { "https://127.0.0.1:1/", false, WEBHOOK_URL_OK },
        { "https://[::1]/x", false, WEBHOOK_URL_OK },
        { "https://[::1]:65535/x", false, WEBHOOK_URL_OK },
        { "http://hooks.example.com/", false, WEBHOOK_URL_SCHEME },
        { "http://hooks.example.com/", true, WEBHOOK_URL_OK },
        { "ftp://hooks.example.com/", true, WEBHOOK_URL_SCHEME },
        { "hooks.example.com/x", false, WEBHOOK_URL_SCHEME },
        { "", false, WEBHOOK_URL_SCHEME },
        { "https:/x.example.com", false, WEBHOOK_URL_SCHEME },
        { "https://", false, WEBHOOK_URL_HOST },
        { "https:///x", false, WEBHOOK_URL_HOST },
        { "https://:443/x", false, WEBHOOK_URL_HOST },
        { "https://[]/x", false, WEBHOOK_URL_HOST },
        { "https://[::1/x", false, WEBHOOK_URL_HOST },
        { "https://[::1]x/", false, WEBHOOK_URL_HOST },
        { "https://a!b.example.com/", false, WEBHOOK_URL_HOST },
        { "https://u:p@hooks.example.com/", false, WEBHOOK_URL_USERINFO },
        { "https://u@hooks.example.com/", false, WEBHOOK_URL_USERINFO },
        { "https://hooks.example.com/a@b", false, WEBHOOK_URL_OK },     /* '@' in the path */
        { "https://hooks.example.com:0/", false, WEBHOOK_URL_PORT },
        { "https://hooks.example.com:65536/", false, WEBHOOK_URL_PORT },
        { "https://hooks.example.com:/", false, WEBHOOK_URL_PORT },
        { "https://hooks.example.com:8x/", false, WEBHOOK_URL_PORT },
        { "https://[::1]:0/", false, WEBHOOK_URL_PORT },
        { "https://hooks example.com/", false, WEBHOOK_URL_CHARS },
        { "https://hooks.example.com/\xc3\xa9", false, WEBHOOK_URL_CHARS },
        { "https://hooks.example.com/\t", false, WEBHOOK_URL_CHARS },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        enum webhook_url_rc rc = webhook_url_check(t[i].url, strlen(t[i].url), t[i].http);
        if (rc != t[i].want)
            fail_msg("%s: got %d want %d", t[i].url, rc, t[i].want);
        assert_non_null(webhook_url_msg(rc, t[i].http));
    }
    /* a NUL inside the given length is a bad character, not an end */
    assert_int_equal(webhook_url_check("https://a.example.com/\0x", 24, false), WEBHOOK_URL_CHARS);
    /* the length bound: 2000 characters pass, 2001 do not */
    assert_int_equal(webhook_url_check(url_of_len(2000), 2000, false), WEBHOOK_URL_OK);
    assert_int_equal(webhook_url_check(url_of_len(2001), 2001, false), WEBHOOK_URL_LONG);
}

/* ---- whole inputs ---- */

struct case_ {
    const char *name;
    bool        create;
    const char *url;           /* NULL: absent */
    const char *events[4];     /* first NULL ends; "-" marks a non-string member */
    int         n_events;      /* -1: absent */
    const char *description;   /* NULL: absent */
    size_t      want;          /* problems */
    const char *loc0;          /* field of the first problem */
};

static void
fill(const struct case_ *c, struct webhook_input *in, const char **ev, size_t *lens)
{
    memset(in, 0, sizeof(*in));
    if (c->url != NULL) {
        in->has_url = true;
        in->url = c->url;
        in->url_len = strlen(c->url);
    }
    if (c->n_events >= 0) {
        in->has_events = true;
        in->events = ev;
        in->event_lens = lens;
        in->n_events = (size_t)c->n_events;
        for (int i = 0; i < c->n_events; i++) {
            bool non_string = strcmp(c->events[i], "-") == 0;
            ev[i] = non_string ? NULL : c->events[i];
            lens[i] = non_string ? 0 : strlen(c->events[i]);
        }
    }
    if (c->description != NULL) {
        in->has_description = true;
        in->description = c->description;
        in->description_len = strlen(c->description);
    }
}

static void
test_validate_table(void **state)
{
    (void)state;
    static char d500[1001], d501[1003];
    for (int i = 0; i < 500; i++)
        memcpy(d500 + 2 * i, "\xc3\xa9", 2);          /* 500 characters, 1000 bytes */
    memcpy(d501, d500, 1000);
    memcpy(d501 + 1000, "\xc3\xa9", 2);
    const char *U = "https://h.example.com/";
    const struct case_ t[] = {
        { "ok", true, U, { "order.created" }, 1, NULL, 0, NULL },
        { "all three", true, U, { "order.created", "order.status_changed", "transfer.created" }, 3,
          NULL, 0, NULL },
        { "missing both", true, NULL, { NULL }, -1, NULL, 2, "url" },
        { "missing events", true, U, { NULL }, -1, NULL, 1, "events" },
        { "empty events", true, U, { NULL }, 0, NULL, 1, "events" },
        { "unknown", true, U, { "order.deleted" }, 1, NULL, 1, "events" },
        { "prefix only", true, U, { "order" }, 1, NULL, 1, "events" },
        { "duplicate", true, U, { "order.created", "order.created" }, 2, NULL, 1, "events" },
        { "non-string member", true, U, { "-", "order.created" }, 2, NULL, 0, NULL },
        { "bad url and event", true, "ftp://x", { "nope" }, 1, NULL, 2, "url" },
        { "desc 500", true, U, { "order.created" }, 1, d500, 0, NULL },
        { "desc 501", true, U, { "order.created" }, 1, d501, 1, "description" },
        { "patch empty", false, NULL, { NULL }, -1, NULL, 0, NULL },
        { "patch url", false, "http://h.example.com", { NULL }, -1, NULL, 1, "url" },
        { "patch events empty", false, NULL, { NULL }, 0, NULL, 1, "events" },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct webhook_input in;
        const char *ev[4];
        size_t      lens[4];
        struct of_verrs v;
        of_verrs_init(&v);
        fill(&t[i], &in, ev, lens);
        webhook_validate(&in, t[i].create, false, &v);
        if (v.n != t[i].want)
            fail_msg("%s: %zu problems, want %zu", t[i].name, v.n, t[i].want);
        if (t[i].loc0 != NULL && strcmp(v.e[0].loc[1].key, t[i].loc0) != 0)
            fail_msg("%s: first problem at %s", t[i].name, v.e[0].loc[1].key);
        if (t[i].create && t[i].want == 0)
            assert_true(in.has_is_active && in.is_active);   /* default true */
    }
}

static void
test_event_problem_locations(void **state)
{
    (void)state;
    const char *ev[3] = { "order.created", "bogus", "order.created" };
    size_t lens[3] = { 13, 5, 13 };
    struct webhook_input in = { .has_url = true, .url = "https://x.example.com", .url_len = 21,
                                .has_events = true, .events = ev, .event_lens = lens, .n_events = 3 };
    struct of_verrs v;
    of_verrs_init(&v);
    webhook_validate(&in, true, false, &v);
    assert_int_equal(v.n, 2);
    assert_int_equal(v.e[0].nloc, 3);
    assert_int_equal(v.e[0].loc[2].idx, 1);    /* unknown at index 1 */
    assert_int_equal(v.e[1].loc[2].idx, 2);    /* the repeat at index 2 */
    assert_int_equal(v.e[0].type, OF_VE_VALUE);
}

static void
test_event_types(void **state)
{
    (void)state;
    for (int i = 0; i < EVENT_TYPE_COUNT; i++) {
        enum event_type t;
        const char *n = event_type_name((enum event_type)i);
        assert_true(event_type_parse(n, strlen(n), &t));
        assert_int_equal(t, i);
    }
    enum event_type t;
    assert_false(event_type_parse("order.created ", 14, &t));
    assert_false(event_type_parse("order.create", 12, &t));
    assert_false(event_type_parse("", 0, &t));
    assert_string_equal(event_type_name(EVENT_ORDER_STATUS_CHANGED), "order.status_changed");
}

/* ---- ids ---- */

static void
test_event_id_encoding(void **state)
{
    (void)state;
    char out[OF_EVENT_ID_CAP];
    unsigned char zero[10] = { 0 }, ones[10];
    memset(ones, 0xff, sizeof(ones));
    of_event_id_encode(0, zero, out);
    assert_string_equal(out, "evt_00000000000000000000000000");
    of_event_id_encode((UINT64_C(1) << 48) - 1, ones, out);
    assert_string_equal(out, "evt_7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    /* the ULID spec's example time 1469918176385 ms -> "01ARYZ6S41" */
    of_event_id_encode(UINT64_C(1469918176385), zero, out);
    assert_memory_equal(out + 4, "01ARYZ6S41", 10);
    unsigned char r[10] = { 0, 0, 0, 0, 1, 0, 0, 0, 0, 32 };
    of_event_id_encode(0, r, out);
    assert_string_equal(out, "evt_0000000000" "00000001" "00000010");
    /* later times sort later */
    char a[OF_EVENT_ID_CAP], b[OF_EVENT_ID_CAP];
    of_event_id_encode(1000, ones, a);
    of_event_id_encode(1001, zero, b);
    assert_true(strcmp(a, b) < 0);
}

static void
test_event_id_new_shape_and_unique(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    char prev[OF_EVENT_ID_CAP] = "";
    for (int i = 0; i < 1000; i++) {
        char id[OF_EVENT_ID_CAP];
        of_event_id_new(id);
        assert_int_equal(strlen(id), OF_EVENT_ID_LEN);
        assert_memory_equal(id, "evt_", 4);
        for (int k = 4; k < OF_EVENT_ID_LEN; k++)
            assert_non_null(strchr(alphabet, id[k]));
        assert_true(strcmp(prev, id) != 0);
        memcpy(prev, id, sizeof(prev));
    }
}

static void
test_webhook_secret(void **state)
{
    (void)state;
    char s1[OF_WHSEC_CAP], s2[OF_WHSEC_CAP];
    of_webhook_secret_new(s1);
    of_webhook_secret_new(s2);
    assert_int_equal(strlen(s1), 50);
    assert_memory_equal(s1, "whsec_", 6);
    assert_true(strcmp(s1, s2) != 0);
    unsigned char raw[64];
    size_t n = 0;
    assert_int_equal(sodium_base642bin(raw, sizeof(raw), s1 + 6, 44, NULL, &n, NULL,
                                       sodium_base64_VARIANT_ORIGINAL), 0);
    assert_int_equal(n, 32);
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_table),
        cmocka_unit_test(test_validate_table),
        cmocka_unit_test(test_event_problem_locations),
        cmocka_unit_test(test_event_types),
        cmocka_unit_test(test_event_id_encoding),
        cmocka_unit_test(test_event_id_new_shape_and_unique),
        cmocka_unit_test(test_webhook_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
