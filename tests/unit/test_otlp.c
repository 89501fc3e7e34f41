/*
 * test_otlp.c -- the OTLP/HTTP JSON encoder (worker/otlp.c over
 * common/jsonw.c) against the protobuf JSON mapping of
 * ExportTraceServiceRequest: ids as lowercase hex of the right length, 64-bit
 * integers (times, intValue) as decimal strings, enums (kind, status code) as
 * numbers, parentSpanId only on spans that have a parent, attributes as
 * {key, value:{stringValue|intValue}}; strings escaped and kept valid UTF-8.
 * Also the writer on its own, and the exporter's ring: a span that finds it
 * full is dropped and counted. (The e2e module test_tracing.py validates
 * documents from the real server with otlp_schema.json.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/jsonw.h"
#include "common/of.h"
#include "worker/otlp.h"

/* w's text as a NUL-terminated string (static buffer). */
static const char *
text(const struct jsonw *w)
{
    static char out[8192];
    assert_false(w->failed);
    assert_true(w->len < sizeof(out));
    memcpy(out, w->buf, w->len);
    out[w->len] = '\0';
    return out;
}

static void
test_jsonw_values(void **state)
{
    (void)state;
    struct jsonw w;
    jw_init(&w);
    jw_u64(&w, 0);
    JW_LIT(&w, " ");
    jw_u64(&w, UINT64_MAX);
    JW_LIT(&w, " ");
    jw_i64(&w, INT64_MIN);
    JW_LIT(&w, " ");
    jw_i64(&w, -42);
    JW_LIT(&w, " ");
    jw_hex(&w, (const uint8_t *)"\x00\x0f\xa5\xff", 4);
    assert_string_equal(text(&w), "0 18446744073709551615 -9223372036854775808 -42 000fa5ff");
    jw_reset(&w);
    assert_int_equal(w.len, 0);
    jw_cleanup(&w);
}

static void
test_jsonw_strings(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } cases[] = {
        { "plain /api/v1/{id}", "\"plain /api/v1/{id}\"" },
        { "q\"b\\s", "\"q\\\"b\\\\s\"" },
        { "\n\r\t\x01\x1f", "\"\\n\\r\\t\\u0001\\u001f\"" },
        { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"" },
        { "a\xff" "b", "\"a\xef\xbf\xbd" "b\"" },                 /* not UTF-8 */
        { "\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\"" },           /* overlong */
        { "\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" }, /* surrogate */
        { "\xe2\x82", "\"\xef\xbf\xbd\xef\xbf\xbd\"" },           /* cut short */
        { "", "\"\"" },
    };
    struct jsonw w;
    jw_init(&w);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        jw_reset(&w);
        jw_str(&w, cases[i].in);
        assert_string_equal(text(&w), cases[i].out);
        json_error_t err;
        json_t *j = json_loadb(w.buf, w.len, JSON_DECODE_ANY, &err);
        assert_non_null(j);                    /* valid JSON, valid UTF-8 */
        json_decref(j);
    }
    jw_reset(&w);
    jw_str(&w, NULL);
    assert_string_equal(text(&w), "\"\"");
    jw_cleanup(&w);
}

static void
test_jsonw_grows(void **state)
{
    (void)state;
    struct jsonw w;
    jw_init(&w);
    for (int i = 0; i < 100000; i++)
        JW_LIT(&w, "0123456789");
    assert_false(w.failed);
    assert_int_equal(w.len, 1000000);
    assert_true(w.cap >= w.len);
    assert_memory_equal(w.buf + 999990, "0123456789", 10);
    size_t cap = w.cap;
    jw_reset(&w);
    JW_LIT(&w, "x");
    assert_int_equal(w.cap, cap);              /* reused, not reallocated */
    jw_cleanup(&w);
}

/* ---- the document ---- */

static const uint8_t TID[16] = { 0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36 };

static void
fill(struct otlp_span *s, enum otlp_what what, uint8_t sid, bool parent)
{
    memset(s, 0, sizeof(*s));
    memcpy(s->trace_id, TID, 16);
    memset(s->span_id, sid, 8);
    memset(s->parent_id, 0xab, 8);
    s->has_parent = parent;
    s->what = what;
    s->kind = what == OTLP_HTTP ? OTLP_KIND_SERVER : what == OTLP_DB ? OTLP_KIND_CLIENT
                                                                     : OTLP_KIND_INTERNAL;
    s->start_ns = 1764940000123456789ull;      /* > 2^53: only exact as a string */
    s->end_ns = s->start_ns + 1500;
}

static json_t *
attr(json_t *list, const char *key, const char *type)
{
    size_t  i;
    json_t *kv;
    json_array_foreach(list, i, kv) {
        if (strcmp(json_string_value(json_object_get(kv, "key")), key) == 0) {
            json_t *v = json_object_get(json_object_get(kv, "value"), type);
            assert_non_null(v);
            assert_int_equal(json_object_size(json_object_get(kv, "value")), 1);
            return v;
        }
    }
    fail_msg("no attribute %s", key);
    return NULL;
}

static void
check_span(json_t *sp, const char *sid, const char *parent, int kind, int code)
{
    assert_string_equal(json_string_value(json_object_get(sp, "traceId")),
                        "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(json_string_value(json_object_get(sp, "spanId")), sid);
    if (parent != NULL)
        assert_string_equal(json_string_value(json_object_get(sp, "parentSpanId")), parent);
    else
        assert_null(json_object_get(sp, "parentSpanId"));
    assert_true(json_is_integer(json_object_get(sp, "kind")));
    assert_int_equal(json_integer_value(json_object_get(sp, "kind")), kind);
    assert_string_equal(json_string_value(json_object_get(sp, "startTimeUnixNano")),
                        "1764940000123456789");
    assert_string_equal(json_string_value(json_object_get(sp, "endTimeUnixNano")),
                        "1764940000123458289");
    json_t *st = json_object_get(json_object_get(sp, "status"), "code");
    assert_true(json_is_integer(st));
    assert_int_equal(json_integer_value(st), code);
}

/* The three kinds of span in one document, as the exporter writes it. */
static json_t *
encode_sample(const char *service)
{
    struct otlp_span sp[3];
    fill(&sp[0], OTLP_HTTP, 0x11, false);
    sp[0].method = "GET";
    sp[0].route = "/api/v1/products/{id}";
    sp[0].status = 503;
    sp[0].error = true;
    memcpy(sp[0].client, "::1", 4);
    memcpy(sp[0].request_id, "req-1.a_b", 10);
    fill(&sp[1], OTLP_DB, 0x22, true);
    memcpy(sp[1].name, "BEGIN order_insert COMMIT", 26);
    sp[1].rows = 3;
    fill(&sp[2], OTLP_HASH, 0x33, true);
    memcpy(sp[2].name, "password verify", 16);
    struct jsonw w;
    jw_init(&w);
    otlp_doc_open(&w, service, 4242);
    for (int i = 0; i < 3; i++)
        otlp_doc_span(&w, &sp[i], i == 0);
    otlp_doc_close(&w);
    assert_false(w.failed);
    json_error_t err;
    json_t *doc = json_loadb(w.buf, w.len, 0, &err);
    if (doc == NULL)
        fail_msg("not JSON: %s: %.*s", err.text, (int)w.len, w.buf);
    jw_cleanup(&w);
    return doc;
}

static void
test_otlp_document(void **state)
{
    (void)state;
    const char *service = "of \"test\" \\ caf\xc3\xa9";
    json_t *doc = encode_sample(service);
    json_t *rs = json_array_get(json_object_get(doc, "resourceSpans"), 0);
    json_t *ra = json_object_get(json_object_get(rs, "resource"), "attributes");
    assert_string_equal(json_string_value(attr(ra, "service.name", "stringValue")), service);
    assert_string_equal(json_string_value(attr(ra, "process.pid", "intValue")), "4242");
    json_t *ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ss, "scope"), "name")),
                        "orderflow");
    json_t *spans = json_object_get(ss, "spans");
    assert_int_equal(json_array_size(spans), 3);

    json_t *srv = json_array_get(spans, 0);
    check_span(srv, "1111111111111111", NULL, 2, 2);
    assert_string_equal(json_string_value(json_object_get(srv, "name")),
                        "GET /api/v1/products/{id}");
    json_t *a = json_object_get(srv, "attributes");
    assert_string_equal(json_string_value(attr(a, "http.request.method", "stringValue")), "GET");
    assert_string_equal(json_string_value(attr(a, "http.route", "stringValue")),
                        "/api/v1/products/{id}");
    assert_string_equal(json_string_value(attr(a, "http.response.status_code", "intValue")), "503");
    assert_string_equal(json_string_value(attr(a, "client.address", "stringValue")), "::1");
    assert_string_equal(json_string_value(attr(a, "orderflow.request_id", "stringValue")),
                        "req-1.a_b");

    json_t *db = json_array_get(spans, 1);
    check_span(db, "2222222222222222", "abababababababab", 3, 0);
    assert_string_equal(json_string_value(json_object_get(db, "name")), "BEGIN order_insert COMMIT");
    a = json_object_get(db, "attributes");
    assert_string_equal(json_string_value(attr(a, "db.system.name", "stringValue")), "postgresql");
    assert_string_equal(json_string_value(attr(a, "db.operation.name", "stringValue")),
                        "BEGIN order_insert COMMIT");
    assert_string_equal(json_string_value(attr(a, "db.response.returned_rows", "intValue")), "3");

    json_t *h = json_array_get(spans, 2);
    check_span(h, "3333333333333333", "abababababababab", 1, 0);
    assert_string_equal(json_string_value(json_object_get(h, "name")), "password verify");
    json_decref(doc);
}

/* ---- the ring ---- */

static void
test_otlp_ring_full_drops(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct of_sb_db    counters;
    memset(&counters, 0, sizeof(counters));
    /* the loop never runs: nothing leaves, the ring fills */
    otlp *x = otlp_create(base, "http://127.0.0.1:9/", "t", &counters);
    assert_non_null(x);
    for (int i = 0; i < OTLP_QUEUE_MAX; i++) {
        struct otlp_span *s = otlp_reserve(x);
        assert_non_null(s);
        fill(s, OTLP_HASH, 0x44, true);
        otlp_commit(x);
    }
    assert_int_equal(atomic_load(&counters.spans_dropped), 0);
    assert_null(otlp_reserve(x));
    assert_null(otlp_reserve(x));
    assert_int_equal(atomic_load(&counters.spans_dropped), 2);
    assert_int_equal(atomic_load(&counters.spans_exported), 0);
    otlp_destroy(x);
    event_base_free(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonw_values),
        cmocka_unit_test(test_jsonw_strings),
        cmocka_unit_test(test_jsonw_grows),
        cmocka_unit_test(test_otlp_document),
        cmocka_unit_test(test_otlp_ring_full_drops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
