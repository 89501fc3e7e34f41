/*
 * test_cache.c -- common/cache.c, the per-worker cache of rendered answers:
 * hits and misses, LRU eviction by count and by bytes, TTL on an injected
 * clock, invalidation of one key / a group (O(1) epochs) / everything, the
 * token that keeps a fill read before an invalidation from being stored,
 * on/off; and handlers/cached.c's query keys and If-None-Match matching.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/cache.h"
#include "common/of.h"
#include "handlers/cached.h"

static uint64_t fake_now;
static uint64_t fake_clock(void) { return fake_now; }

static cache *
mk(size_t max_entries, size_t max_bytes, struct cache_stats *st)
{
    cache *c = cache_create(max_entries, max_bytes, 10, st);
    assert_non_null(c);
    fake_now = 1000;
    cache_set_clock(c, fake_clock);
    return c;
}

static void
put_id(cache *c, unsigned group, int64_t id, const char *body)
{
    char tag[CACHE_ETAG_CAP];
    cache_etag(body, strlen(body), tag);
    cache_put(c, cache_token(c), group, &id, sizeof(id), body, strlen(body), tag);
}

static bool
has(cache *c, unsigned group, int64_t id, const char *body)
{
    struct cache_hit h;
    if (!cache_get(c, group, &id, sizeof(id), &h))
        return false;
    assert_int_equal(h.len, strlen(body));
    assert_memory_equal(h.body, body, h.len);
    return true;
}

static void
test_hit_miss_and_counters(void **state)
{
    (void)state;
    struct cache_stats st = { 0 };
    cache *c = mk(10, 1 << 20, &st);
    assert_false(has(c, 0, 1, "x"));
    put_id(c, 0, 1, "{\"id\":1}");
    assert_true(has(c, 0, 1, "{\"id\":1}"));
    assert_false(has(c, 1, 1, "{\"id\":1}"));         /* groups are separate */
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 2);
    put_id(c, 0, 1, "{\"id\":1,\"v\":2}");              /* replace, not duplicate */
    assert_int_equal(cache_count(c), 1);
    assert_true(has(c, 0, 1, "{\"id\":1,\"v\":2}"));
    cache_destroy(c);
}

static void
test_etag_is_strong_quoted_and_content_bound(void **state)
{
    (void)state;
    char a[CACHE_ETAG_CAP], b[CACHE_ETAG_CAP], a2[CACHE_ETAG_CAP];
    cache_etag("abc", 3, a);
    cache_etag("abd", 3, b);
    cache_etag("abc", 3, a2);
    assert_int_equal(strlen(a), 34);
    assert_int_equal(a[0], '"');
    assert_int_equal(a[33], '"');
    assert_string_equal(a, a2);
    assert_string_not_equal(a, b);
}

static void
test_lru_eviction_by_count(void **state)
{
    (void)state;
    struct cache_stats st = { 0 };
    cache *c = mk(3, 1 << 20, &st);
    put_id(c, 0, 1, "one");
    put_id(c, 0, 2, "two");
    put_id(c, 0, 3, "three");
    assert_true(has(c, 0, 1, "one"));                  /* 1 is now the most recent */
    put_id(c, 0, 4, "four");                           /* evicts 2, the least recent */
    assert_int_equal(cache_count(c), 3);
    assert_false(has(c, 0, 2, "two"));
    assert_true(has(c, 0, 1, "one"));
    assert_true(has(c, 0, 3, "three"));
    assert_true(has(c, 0, 4, "four"));
    assert_int_equal(st.evictions, 1);
    for (int64_t i = 10; i < 1000; i++)                /* never above the bound */
        put_id(c, 1, i, "body");
    assert_int_equal(cache_count(c), 3);
    assert_int_equal(st.evictions, 1 + 990);
    cache_destroy(c);
}

static void
test_eviction_by_bytes_and_oversized(void **state)
{
    (void)state;
    cache *c = mk(100, 64, NULL);
    char   big[80];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    put_id(c, 0, 1, big);                              /* larger than the budget */
    assert_int_equal(cache_count(c), 0);
    put_id(c, 0, 1, "0123456789012345678901234567");   /* 8 + 28 = 36 bytes */
    put_id(c, 0, 2, "0123456789012345678901234567");   /* 72 > 64: evicts 1 */
    assert_int_equal(cache_count(c), 1);
    assert_true(cache_bytes(c) <= 64);
    assert_false(has(c, 0, 1, "0123456789012345678901234567"));
    assert_true(has(c, 0, 2, "0123456789012345678901234567"));
    cache_destroy(c);
}

static void
test_ttl(void **state)
{
    (void)state;
    cache *c = mk(10, 1 << 20, NULL);
    put_id(c, 0, 1, "a");
    fake_now += 9999999999ull;                         /* just under 10 s */
    assert_true(has(c, 0, 1, "a"));
    fake_now += 1;
    assert_false(has(c, 0, 1, "a"));
    assert_int_equal(cache_count(c), 0);               /* freed when met */
    cache_destroy(c);
}

static void
test_invalidation_of_a_key_a_group_everything(void **state)
{
    (void)state;
    struct cache_stats st = { 0 };
    cache *c = mk(100, 1 << 20, &st);
    put_id(c, 0, 1, "p1");
    put_id(c, 0, 2, "p2");
    put_id(c, 1, 1, "l1");
    put_id(c, 1, 2, "l2");
    int64_t one = 1;
    cache_drop(c, 0, &one, sizeof(one));
    assert_false(has(c, 0, 1, "p1"));
    assert_true(has(c, 0, 2, "p2"));
    assert_true(has(c, 1, 1, "l1"));
    cache_drop_group(c, 1);
    assert_false(has(c, 1, 1, "l1"));
    assert_false(has(c, 1, 2, "l2"));
    assert_true(has(c, 0, 2, "p2"));
    put_id(c, 1, 1, "l1b");                            /* the group refills */
    assert_true(has(c, 1, 1, "l1b"));
    cache_clear(c);
    assert_int_equal(cache_count(c), 0);
    assert_false(has(c, 0, 2, "p2"));
    assert_int_equal(st.invalidations, 3);
    cache_destroy(c);
}

static void
test_fill_read_before_an_invalidation_is_not_stored(void **state)
{
    (void)state;
    cache  *c = mk(100, 1 << 20, NULL);
    int64_t id = 7;
    uint64_t t = cache_token(c);                       /* the miss asks the database */
    cache_drop(c, 0, &id, sizeof(id));                 /* the NOTIFY arrives meanwhile */
    cache_put(c, t, 0, &id, sizeof(id), "old", 3, "\"x\"");
    assert_false(has(c, 0, 7, "old"));
    t = cache_token(c);
    cache_drop_group(c, 1);                            /* any invalidation counts */
    cache_put(c, t, 0, &id, sizeof(id), "old", 3, "\"x\"");
    assert_false(has(c, 0, 7, "old"));
    put_id(c, 0, 7, "new");                            /* a fresh token stores */
    assert_true(has(c, 0, 7, "new"));
    cache_destroy(c);
}

static void
test_off_is_empty_and_refuses(void **state)
{
    (void)state;
    cache *c = mk(100, 1 << 20, NULL);
    put_id(c, 0, 1, "a");
    uint64_t t = cache_token(c);
    cache_set_enabled(c, false);                       /* LISTEN lost */
    assert_false(cache_enabled(c));
    assert_int_equal(cache_count(c), 0);
    assert_int_equal(cache_token(c), 0);
    put_id(c, 0, 1, "a");
    assert_int_equal(cache_count(c), 0);
    cache_set_enabled(c, true);                        /* back: empty */
    int64_t id = 1;
    cache_put(c, t, 0, &id, sizeof(id), "a", 1, "\"x\"");  /* a fill from before */
    assert_int_equal(cache_count(c), 0);
    put_id(c, 0, 1, "b");
    assert_true(has(c, 0, 1, "b"));
    cache_destroy(c);
}

static void
test_many_keys_in_few_buckets(void **state)
{
    (void)state;
    cache *c = mk(16, 1 << 20, NULL);                  /* 16 buckets, chains */
    char   key[32];
    for (int i = 0; i < 200; i++) {
        int n = snprintf(key, sizeof(key), "Qpage=%d", i);
        cache_put(c, cache_token(c), 1, key, (size_t)n, key, (size_t)n, "\"t\"");
    }
    assert_int_equal(cache_count(c), 16);
    for (int i = 184; i < 200; i++) {
        struct cache_hit h;
        int n = snprintf(key, sizeof(key), "Qpage=%d", i);
        assert_true(cache_get(c, 1, key, (size_t)n, &h));
        assert_memory_equal(h.body, key, (size_t)n);
        assert_string_equal(h.etag, "\"t\"");
    }
    cache_destroy(c);
}

/* ---- handlers/cached.c ---- */

static size_t
qkey(const char *q, char *buf)
{
    return hdl_cache_query_key(q, buf);
}

static void
test_query_key_normalises_order_and_repeats(void **state)
{
    (void)state;
    char a[HDL_CACHE_KEY_CAP], b[HDL_CACHE_KEY_CAP];
    size_t na, nb;
    static const char *const same[][2] = {
        { "page=2&q=ab", "q=ab&page=2" },
        { "sort=id&page=2&sort=name", "page=2&sort=name" },      /* last wins */
        { "%70age=2", "page=2" },                                /* names decoded */
        { "p+x=1", "p%20x=1" },
    };
    for (size_t i = 0; i < OF_ARRAY_LEN(same); i++) {
        na = qkey(same[i][0], a);
        nb = qkey(same[i][1], b);
        assert_true(na > 0);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na);
    }
    static const char *const differ[][2] = {
        { "page=2", "page=3" },
        { "page=2&sort=name", "page=2&sort=id" },
        { "q=a%26b", "q=a&b" },                                  /* framing, not separators */
        { "a=b=c", "a=b&=c" },
        { "", "page=1" },
    };
    for (size_t i = 0; i < OF_ARRAY_LEN(differ); i++) {
        na = qkey(differ[i][0], a);
        nb = qkey(differ[i][1], b);
        assert_true(na > 0 && nb > 0);
        assert_false(na == nb && memcmp(a, b, na) == 0);
    }
    assert_true(qkey(NULL, a) > 0);
    char long_q[700];
    memset(long_q, 'x', sizeof(long_q) - 1);
    long_q[0] = 'q';
    long_q[1] = '=';
    long_q[sizeof(long_q) - 1] = '\0';
    assert_int_equal(qkey(long_q, a), 0);                        /* too long: not cached */
    assert_int_equal(qkey("a=1&b=1&c=1&d=1&e=1&f=1&g=1&h=1&i=1&j=1&k=1&l=1&m=1&n=1&o=1&p=1&q=1", a), 0);
}

static void
test_if_none_match(void **state)
{
    (void)state;
    const char *tag = "\"0123456789abcdef0123456789abcdef\"";
    assert_true(hdl_etag_match(tag, tag));
    assert_true(hdl_etag_match("*", tag));
    assert_true(hdl_etag_match("W/\"0123456789abcdef0123456789abcdef\"", tag));
    assert_true(hdl_etag_match("\"a\", \"0123456789abcdef0123456789abcdef\"", tag));
    assert_true(hdl_etag_match("\"a\",W/\"b\",\t\"0123456789abcdef0123456789abcdef\"", tag));
    assert_false(hdl_etag_match("\"a\"", tag));
    assert_false(hdl_etag_match("", tag));
    assert_false(hdl_etag_match("0123456789abcdef0123456789abcdef", tag));
    assert_false(hdl_etag_match("\"0123456789abcdef0123456789abcdef", tag));
    assert_false(hdl_etag_match("\"0123456789abcdef0123456789abcde\"", tag));
    assert_false(hdl_etag_match("garbage, \"b\"", tag));
    assert_false(hdl_etag_match(",,, ", tag));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss_and_counters),
        cmocka_unit_test(test_etag_is_strong_quoted_and_content_bound),
        cmocka_unit_test(test_lru_eviction_by_count),
        cmocka_unit_test(test_eviction_by_bytes_and_oversized),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_invalidation_of_a_key_a_group_everything),
        cmocka_unit_test(test_fill_read_before_an_invalidation_is_not_stored),
        cmocka_unit_test(test_off_is_empty_and_refuses),
        cmocka_unit_test(test_many_keys_in_few_buckets),
        cmocka_unit_test(test_query_key_normalises_order_and_repeats),
        cmocka_unit_test(test_if_none_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
