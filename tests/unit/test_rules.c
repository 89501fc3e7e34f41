/*
 * test_rules.c -- field rules of domain/rules.h: text trimming and Unicode
 * length, email, password, enums, the order transition table, the
 * Idempotency-Key header, fingerprints and paging. Both sides of every bound.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/mem.h"
#include "domain/rules.h"

/* A string of n copies of the UTF-8 sequence unit, in a static buffer. */
static const char *
rep(const char *unit, size_t n)
{
    static char buf[8192];
    size_t      u = strlen(unit), o = 0;
    assert_true(u * n < sizeof(buf));
    for (size_t i = 0; i < n; i++, o += u)
        memcpy(buf + o, unit, u);
    buf[o] = '\0';
    return buf;
}

/* Concatenates the NULL-terminated list of strings into dst. */
static const char *
join(char *dst, size_t cap, ...)
{
    va_list     ap;
    size_t      o = 0;
    const char *part;

    va_start(ap, cap);
    while ((part = va_arg(ap, const char *)) != NULL) {
        size_t n = strlen(part);
        assert_true(o + n < cap);
        memcpy(dst + o, part, n);
        o += n;
    }
    va_end(ap);
    dst[o] = '\0';
    return dst;
}

/* pad + local_n x 'l' + '@' + dom_n x 'd' + ".com" + pad */
static const char *
mk_email(size_t local_n, size_t dom_n, bool pad)
{
    static char buf[1100];
    char        local[512], dom[512];
    join(local, sizeof(local), rep("l", local_n), NULL);
    join(dom, sizeof(dom), rep("d", dom_n), NULL);
    const char *sp = pad ? "  " : "";
    return join(buf, sizeof(buf), sp, local, "@", dom, ".com", sp, NULL);
}

static int
text(const char *s, size_t min, size_t max, const char **out, size_t *outlen)
{
    return rules_text(s, strlen(s), min, max, out, outlen);
}

/* ---- text ---------------------------------------------------------------- */

static void
test_text_trims_both_ends(void **st)
{
    (void)st;
    const char *o;
    size_t      n;
    assert_int_equal(text(" \t Lamp \n", 1, 200, &o, &n), OF_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(o, "Lamp", 4);
}

static void
test_text_keeps_inner_spaces(void **st)
{
    (void)st;
    const char *o;
    size_t      n;
    assert_int_equal(text("  Desk  Lamp ", 1, 200, &o, &n), OF_OK);
    assert_int_equal(n, 10);
    assert_memory_equal(o, "Desk  Lamp", 10);
}

static void
test_text_min_1_ok(void **st)
{
    (void)st;
    const char *o;
    size_t      n;
    assert_int_equal(text("a", 1, 200, &o, &n), OF_OK);
}

static void
test_text_empty_too_short(void **st)
{
    (void)st;
    const char *o;
    size_t      n;
    assert_int_equal(text("", 1, 200, &o, &n), RULES_E_TOO_SHORT);
}

static void
test_text_blank_too_short_after_trim(void **st)
{
    (void)st;
    const char *o;
    size_t      n;
    assert_int_equal(text("   \t\n ", 1, 200, &o, &n), RULES_E_TOO_SHORT);
}

static void
test_text_max_200_ok(void **st)
{
    (void)st;
    const char *o;
    size_t      n;
    assert_int_equal(text(rep("x", 200), 1, 200, &o, &n), OF_OK);
}

static void
test_text_201_too_long(void **st)
{
    (void)st;
    const char *o;
    size_t      n;
    assert_int_equal(text(rep("x", 201), 1, 200, &o, &n), RULES_E_TOO_LONG);
}

static void
test_text_counts_unicode_chars_not_bytes(void **st)
{
    (void)st;
    const char *o;
    size_t      n;
    /* 200 x "é" (2 bytes), 200 x "€" (3 bytes), 200 x "😀" (4 bytes) */
    assert_int_equal(text(rep("\xc3\xa9", 200), 1, 200, &o, &n), OF_OK);
    assert_int_equal(n, 400);
    assert_int_equal(text(rep("\xe2\x82\xac", 200), 1, 200, &o, &n), OF_OK);
    assert_int_equal(text(rep("\xf0\x9f\x98\x80", 200), 1, 200, &o, &n), OF_OK);
    assert_int_equal(text(rep("\xf0\x9f\x98\x80", 201), 1, 200, &o, &n), RULES_E_TOO_LONG);
}

static void
test_text_length_after_trim(void **st)
{
    (void)st;
    const char *o;
    size_t      n;
    char        buf[256];
    /* 200 chars padded with spaces: fits once trimmed */
    join(buf, sizeof(buf), "   ", rep("y", 200), "   ", NULL);
    assert_int_equal(text(buf, 1, 200, &o, &n), OF_OK);
    assert_int_equal(n, 200);
}

static void
test_text_invalid_utf8(void **st)
{
    (void)st;
    const char *o;
    size_t      n;
    assert_int_equal(text("ab\xff", 1, 200, &o, &n), RULES_E_UTF8);
    assert_int_equal(text("\xc3", 1, 200, &o, &n), RULES_E_UTF8);
    assert_int_equal(rules_text("a\0b", 3, 1, 200, &o, &n), RULES_E_UTF8);
}

static void
test_text_notes_500(void **st)
{
    (void)st;
    const char *o;
    size_t      n;
    assert_int_equal(text(rep("n", RULES_NOTES_MAX), 0, RULES_NOTES_MAX, &o, &n), OF_OK);
    assert_int_equal(text(rep("n", RULES_NOTES_MAX + 1), 0, RULES_NOTES_MAX, &o, &n),
                     RULES_E_TOO_LONG);
    assert_int_equal(text("", 0, RULES_NOTES_MAX, &o, &n), OF_OK);
}

static void
test_text_messages(void **st)
{
    (void)st;
    struct of_mem m;
    of_mem_init(&m);
    assert_string_equal(rules_text_msg(&m, RULES_E_TOO_SHORT, 1, 200),
                        "String should have at least 1 character");
    assert_string_equal(rules_text_msg(&m, RULES_E_TOO_LONG, 1, 200),
                        "String should have at most 200 characters");
    assert_string_equal(rules_text_msg(&m, RULES_E_UTF8, 1, 200),
                        rules_strerror(RULES_E_UTF8));
    of_mem_release(&m);
}

/* ---- email ---------------------------------------------------------------- */

static int
email(const char *s, char out[RULES_EMAIL_BUFSZ])
{
    size_t n;
    return rules_email(s, strlen(s), out, RULES_EMAIL_BUFSZ, &n);
}

static void
test_email_trimmed_and_lowercased(void **st)
{
    (void)st;
    char   out[RULES_EMAIL_BUFSZ];
    size_t n;
    const char *in = "  Ada.Lovelace@Example.COM \t";
    assert_int_equal(rules_email(in, strlen(in), out, sizeof(out), &n), OF_OK);
    assert_string_equal(out, "ada.lovelace@example.com");
    assert_int_equal(n, strlen(out));
}

static void
test_email_minimal_ok(void **st)
{
    (void)st;
    char out[RULES_EMAIL_BUFSZ];
    assert_int_equal(email("a@b.c", out), OF_OK);
}

static void
test_email_254_chars_ok(void **st)
{
    (void)st;
    char out[RULES_EMAIL_BUFSZ];
    /* local 64 + '@' + domain 189 = 254 */
    const char *in = mk_email(64, 185, false);
    assert_int_equal(strlen(in), 254);
    assert_int_equal(email(in, out), OF_OK);
}

static void
test_email_255_chars_too_long(void **st)
{
    (void)st;
    char out[RULES_EMAIL_BUFSZ];
    const char *in = mk_email(65, 185, false);
    assert_int_equal(strlen(in), 255);
    assert_int_equal(email(in, out), RULES_E_EMAIL_LONG);
}

static void
test_email_length_counts_after_trim(void **st)
{
    (void)st;
    char out[RULES_EMAIL_BUFSZ];
    assert_int_equal(email(mk_email(64, 185, true), out), OF_OK);
    assert_int_equal(email(mk_email(65, 185, true), out), RULES_E_EMAIL_LONG);
}

static void
test_email_unicode_chars_counted(void **st)
{
    (void)st;
    char out[RULES_EMAIL_BUFSZ];
    char in[1200];
    /* 250 x "é" + "@b.c" = 254 chars, 504 bytes */
    join(in, sizeof(in), rep("\xc3\xa9", 250), "@b.c", NULL);
    assert_int_equal(email(in, out), OF_OK);
    join(in, sizeof(in), rep("\xc3\xa9", 251), "@b.c", NULL);
    assert_int_equal(email(in, out), RULES_E_EMAIL_LONG);
}

static void test_email_no_at(void **st) { (void)st; char o[RULES_EMAIL_BUFSZ]; assert_int_equal(email("ab.c", o), RULES_E_EMAIL); }
static void test_email_two_ats(void **st) { (void)st; char o[RULES_EMAIL_BUFSZ]; assert_int_equal(email("a@b@c.d", o), RULES_E_EMAIL); assert_int_equal(email("a@@b.c", o), RULES_E_EMAIL); }
static void test_email_empty_local(void **st) { (void)st; char o[RULES_EMAIL_BUFSZ]; assert_int_equal(email("@b.c", o), RULES_E_EMAIL); }
static void test_email_domain_without_dot(void **st) { (void)st; char o[RULES_EMAIL_BUFSZ]; assert_int_equal(email("a@localhost", o), RULES_E_EMAIL); assert_int_equal(email("a@", o), RULES_E_EMAIL); }
static void test_email_dot_only_before_at(void **st) { (void)st; char o[RULES_EMAIL_BUFSZ]; assert_int_equal(email("a.b@c", o), RULES_E_EMAIL); }
static void test_email_domain_dot_at_edge(void **st) { (void)st; char o[RULES_EMAIL_BUFSZ]; assert_int_equal(email("a@.com", o), RULES_E_EMAIL); assert_int_equal(email("a@com.", o), RULES_E_EMAIL); }
static void test_email_empty_and_blank(void **st) { (void)st; char o[RULES_EMAIL_BUFSZ]; assert_int_equal(email("", o), RULES_E_EMAIL); assert_int_equal(email("   ", o), RULES_E_EMAIL); }
static void test_email_inner_space(void **st) { (void)st; char o[RULES_EMAIL_BUFSZ]; assert_int_equal(email("a b@c.d", o), RULES_E_EMAIL); assert_int_equal(email("a@c.d\x01", o), RULES_E_EMAIL); }
static void test_email_invalid_utf8(void **st) { (void)st; char o[RULES_EMAIL_BUFSZ]; assert_int_equal(email("\xff@b.c", o), RULES_E_EMAIL); }

static void
test_email_small_buffer_is_caller_bug(void **st)
{
    (void)st;
    char   out[4];
    size_t n;
    assert_int_equal(rules_email("a@b.c", 5, out, sizeof(out), &n), OF_ERR);
}

/* ---- password ------------------------------------------------------------- */

static void test_password_7_short(void **st) { (void)st; assert_int_equal(rules_password("1234567", 7), RULES_E_PASSWORD_SHORT); }
static void test_password_8_ok(void **st) { (void)st; assert_int_equal(rules_password("12345678", 8), OF_OK); }
static void test_password_128_ok(void **st) { (void)st; assert_int_equal(rules_password(rep("p", 128), 128), OF_OK); }
static void test_password_129_long(void **st) { (void)st; assert_int_equal(rules_password(rep("p", 129), 129), RULES_E_PASSWORD_LONG); }

static void
test_password_counts_unicode_chars(void **st)
{
    (void)st;
    /* 7 x "€" is 21 bytes but 7 characters */
    const char *s = rep("\xe2\x82\xac", 7);
    assert_int_equal(rules_password(s, strlen(s)), RULES_E_PASSWORD_SHORT);
    s = rep("\xe2\x82\xac", 128);
    assert_int_equal(rules_password(s, strlen(s)), OF_OK);
    s = rep("\xe2\x82\xac", 129);
    assert_int_equal(rules_password(s, strlen(s)), RULES_E_PASSWORD_LONG);
}

static void
test_password_not_trimmed(void **st)
{
    (void)st;
    /* spaces count: 8 characters */
    assert_int_equal(rules_password("  abcd  ", 8), OF_OK);
}

static void test_password_invalid_utf8(void **st) { (void)st; assert_int_equal(rules_password("abcdefg\xff", 8), RULES_E_UTF8); }

/* ---- enums ---------------------------------------------------------------- */

static void
test_tier_parse(void **st)
{
    (void)st;
    enum rules_tier t;
    assert_int_equal(rules_tier_parse("free", 4, &t), OF_OK);
    assert_int_equal(t, RULES_TIER_FREE);
    assert_int_equal(rules_tier_parse("pro", 3, &t), OF_OK);
    assert_int_equal(t, RULES_TIER_PRO);
    assert_int_equal(rules_tier_parse("enterprise", 10, &t), OF_OK);
    assert_int_equal(t, RULES_TIER_ENTERPRISE);
    assert_int_equal(rules_tier_parse("Pro", 3, &t), RULES_E_TIER);
    assert_int_equal(rules_tier_parse("pr", 2, &t), RULES_E_TIER);
    assert_int_equal(rules_tier_parse("prox", 4, &t), RULES_E_TIER);
    assert_int_equal(rules_tier_parse("", 0, &t), RULES_E_TIER);
    assert_string_equal(rules_tier_name(RULES_TIER_ENTERPRISE), "enterprise");
}

static void
test_role_parse(void **st)
{
    (void)st;
    enum rules_role r;
    assert_int_equal(rules_role_parse("user", 4, &r), OF_OK);
    assert_int_equal(r, RULES_ROLE_USER);
    assert_int_equal(rules_role_parse("admin", 5, &r), OF_OK);
    assert_int_equal(r, RULES_ROLE_ADMIN);
    assert_int_equal(rules_role_parse("root", 4, &r), RULES_E_ROLE);
    assert_int_equal(rules_role_parse("ADMIN", 5, &r), RULES_E_ROLE);
    assert_string_equal(rules_role_name(RULES_ROLE_ADMIN), "admin");
    assert_string_equal(rules_role_name((enum rules_role)9), "?");
}

static void
test_status_parse_and_names(void **st)
{
    (void)st;
    const char *names[] = { "pending", "processing", "shipped", "delivered", "cancelled" };
    for (int i = 0; i < RULES_STATUS_COUNT; i++) {
        enum rules_status s;
        assert_int_equal(rules_status_parse(names[i], strlen(names[i]), &s), OF_OK);
        assert_int_equal(s, i);
        assert_string_equal(rules_status_name(s), names[i]);
    }
    enum rules_status s;
    assert_int_equal(rules_status_parse("canceled", 8, &s), RULES_E_STATUS);
    assert_int_equal(rules_status_parse("Pending", 7, &s), RULES_E_STATUS);
}

/* ---- transitions ---------------------------------------------------------- */

static void
test_transition_every_pair(void **st)
{
    (void)st;
    /* rows: from, columns: to; P R S D C */
    static const bool want[RULES_STATUS_COUNT][RULES_STATUS_COUNT] = {
        /* pending    */ { false, true,  false, false, true  },
        /* processing */ { false, false, true,  false, true  },
        /* shipped    */ { false, false, false, true,  false },
        /* delivered  */ { false, false, false, false, false },
        /* cancelled  */ { false, false, false, false, false },
    };
    int allowed = 0;
    for (int f = 0; f < RULES_STATUS_COUNT; f++)
        for (int t = 0; t < RULES_STATUS_COUNT; t++) {
            bool got = rules_transition_ok((enum rules_status)f, (enum rules_status)t);
            if (got != want[f][t])
                fail_msg("%s -> %s: got %d", rules_status_name(f), rules_status_name(t), got);
            allowed += got;
        }
    assert_int_equal(allowed, 5);
}

static void
test_transition_same_status_refused(void **st)
{
    (void)st;
    for (int s = 0; s < RULES_STATUS_COUNT; s++)
        assert_false(rules_transition_ok((enum rules_status)s, (enum rules_status)s));
}

static void
test_transition_out_of_range_refused(void **st)
{
    (void)st;
    assert_false(rules_transition_ok((enum rules_status)7, RULES_STATUS_PENDING));
    assert_false(rules_transition_ok(RULES_STATUS_PENDING, (enum rules_status)-1));
}

static void
test_transition_detail_message(void **st)
{
    (void)st;
    char buf[RULES_TRANSITION_DETAIL_CAP];
    rules_transition_detail(RULES_STATUS_DELIVERED, RULES_STATUS_PENDING, buf);
    assert_string_equal(buf, "Invalid transition: delivered -> pending");
    rules_transition_detail(RULES_STATUS_PROCESSING, RULES_STATUS_PROCESSING, buf);
    assert_string_equal(buf, "Invalid transition: processing -> processing");
}

/* ---- Idempotency-Key ------------------------------------------------------ */

static void test_idem_key_1_ok(void **st) { (void)st; assert_int_equal(rules_idem_key("k", 1), OF_OK); }
static void test_idem_key_empty(void **st) { (void)st; assert_int_equal(rules_idem_key("", 0), RULES_E_IDEM_KEY); }
static void test_idem_key_255_ok(void **st) { (void)st; assert_int_equal(rules_idem_key(rep("k", 255), 255), OF_OK); }
static void test_idem_key_256_long(void **st) { (void)st; assert_int_equal(rules_idem_key(rep("k", 256), 256), RULES_E_IDEM_KEY); }

static void
test_idem_key_printable_range(void **st)
{
    (void)st;
    assert_int_equal(rules_idem_key(" ~!{}", 5), OF_OK);             /* 0x20 and 0x7e */
    assert_int_equal(rules_idem_key("a\x1f", 2), RULES_E_IDEM_KEY);   /* below */
    assert_int_equal(rules_idem_key("a\x7f", 2), RULES_E_IDEM_KEY);   /* DEL */
    assert_int_equal(rules_idem_key("\xc3\xa9", 2), RULES_E_IDEM_KEY); /* non-ASCII */
    assert_int_equal(rules_idem_key("a\tb", 3), RULES_E_IDEM_KEY);
}

/* ---- fingerprint ---------------------------------------------------------- */

static void
test_fingerprint_stable_and_hex(void **st)
{
    (void)st;
    char a[65], b[65];
    rules_fingerprint("POST", "/api/v1/orders", "{\"a\":1}", a);
    rules_fingerprint("POST", "/api/v1/orders", "{\"a\":1}", b);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strspn(a, "0123456789abcdef"), 64);
}

static void
test_fingerprint_differs_per_part(void **st)
{
    (void)st;
    char base[65], x[65];
    rules_fingerprint("POST", "/api/v1/orders", "{\"a\":1}", base);
    rules_fingerprint("POST", "/api/v1/orders", "{\"a\":2}", x);
    assert_string_not_equal(base, x);
    rules_fingerprint("POST", "/api/v1/transfers", "{\"a\":1}", x);
    assert_string_not_equal(base, x);
    rules_fingerprint("PATCH", "/api/v1/orders", "{\"a\":1}", x);
    assert_string_not_equal(base, x);
}

static void
test_fingerprint_framing(void **st)
{
    (void)st;
    char a[65], b[65];
    rules_fingerprint("POST", "/ab", "c", a);
    rules_fingerprint("POST", "/a", "bc", b);
    assert_string_not_equal(a, b);
    rules_fingerprint("GET", "/x", NULL, a);
    rules_fingerprint("GET", "/x", "", b);
    assert_string_equal(a, b);
}

/* ---- paging --------------------------------------------------------------- */

static void test_page_0_refused(void **st) { (void)st; assert_int_equal(rules_page(0), RULES_E_MIN1); assert_int_equal(rules_page(-1), RULES_E_MIN1); }
static void test_page_1_ok(void **st) { (void)st; assert_int_equal(rules_page(1), OF_OK); assert_int_equal(rules_page(INT64_MAX), OF_OK); }
static void test_page_size_0_refused(void **st) { (void)st; assert_int_equal(rules_page_size(0), RULES_E_MIN1); }
static void test_page_size_1_ok(void **st) { (void)st; assert_int_equal(rules_page_size(1), OF_OK); }
static void test_page_size_100_ok(void **st) { (void)st; assert_int_equal(rules_page_size(100), OF_OK); }
static void test_page_size_101_refused(void **st) { (void)st; assert_int_equal(rules_page_size(101), RULES_E_MAX100); }

static void
test_paging_check_collects_both(void **st)
{
    (void)st;
    struct of_verrs v;
    of_verrs_init(&v);
    assert_int_equal(rules_paging_check(0, 101, &v), OF_INVALID);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.e[0].loc[0].key, "query");
    assert_string_equal(v.e[0].loc[1].key, "page");
    assert_string_equal(v.e[1].loc[1].key, "page_size");
    assert_int_equal(v.e[1].type, OF_VE_VALUE);
    assert_string_equal(v.e[1].msg, "Input should be less than or equal to 100");

    of_verrs_init(&v);
    assert_int_equal(rules_paging_check(1, 20, &v), OF_OK);
    assert_int_equal(v.n, 0);
}

static void
test_total_pages(void **st)
{
    (void)st;
    assert_int_equal(rules_total_pages(0, 20), 0);
    assert_int_equal(rules_total_pages(1, 20), 1);
    assert_int_equal(rules_total_pages(20, 20), 1);
    assert_int_equal(rules_total_pages(21, 20), 2);
    assert_int_equal(rules_total_pages(INT64_MAX, 1), INT64_MAX);
}

static void
test_page_offset_saturates(void **st)
{
    (void)st;
    assert_int_equal(rules_page_offset(1, 20), 0);
    assert_int_equal(rules_page_offset(3, 20), 40);
    assert_int_equal(rules_page_offset(INT64_MAX, 100), INT64_MAX);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_trims_both_ends),
        cmocka_unit_test(test_text_keeps_inner_spaces),
        cmocka_unit_test(test_text_min_1_ok),
        cmocka_unit_test(test_text_empty_too_short),
        cmocka_unit_test(test_text_blank_too_short_after_trim),
        cmocka_unit_test(test_text_max_200_ok),
        cmocka_unit_test(test_text_201_too_long),
        cmocka_unit_test(test_text_counts_unicode_chars_not_bytes),
        cmocka_unit_test(test_text_length_after_trim),
        cmocka_unit_test(test_text_invalid_utf8),
        cmocka_unit_test(test_text_notes_500),
        cmocka_unit_test(test_text_messages),
        cmocka_unit_test(test_email_trimmed_and_lowercased),
        cmocka_unit_test(test_email_minimal_ok),
        cmocka_unit_test(test_email_254_chars_ok),
        cmocka_unit_test(test_email_255_chars_too_long),
        cmocka_unit_test(test_email_length_counts_after_trim),
        cmocka_unit_test(test_email_unicode_chars_counted),
        cmocka_unit_test(test_email_no_at),
        cmocka_unit_test(test_email_two_ats),
        cmocka_unit_test(test_email_empty_local),
        cmocka_unit_test(test_email_domain_without_dot),
        cmocka_unit_test(test_email_dot_only_before_at),
        cmocka_unit_test(test_email_domain_dot_at_edge),
        cmocka_unit_test(test_email_empty_and_blank),
        cmocka_unit_test(test_email_inner_space),
        cmocka_unit_test(test_email_invalid_utf8),
        cmocka_unit_test(test_email_small_buffer_is_caller_bug),
        cmocka_unit_test(test_password_7_short),
        cmocka_unit_test(test_password_8_ok),
        cmocka_unit_test(test_password_128_ok),
        cmocka_unit_test(test_password_129_long),
        cmocka_unit_test(test_password_counts_unicode_chars),
        cmocka_unit_test(test_password_not_trimmed),
        cmocka_unit_test(test_password_invalid_utf8),
        cmocka_unit_test(test_tier_parse),
        cmocka_unit_test(test_role_parse),
        cmocka_unit_test(test_status_parse_and_names),
        cmocka_unit_test(test_transition_every_pair),
        cmocka_unit_test(test_transition_same_status_refused),
        cmocka_unit_test(test_transition_out_of_range_refused),
        cmocka_unit_test(test_transition_detail_message),
        cmocka_unit_test(test_idem_key_1_ok),
        cmocka_unit_test(test_idem_key_empty),
        cmocka_unit_test(test_idem_key_255_ok),
        cmocka_unit_test(test_idem_key_256_long),
        cmocka_unit_test(test_idem_key_printable_range),
        cmocka_unit_test(test_fingerprint_stable_and_hex),
        cmocka_unit_test(test_fingerprint_differs_per_part),
        cmocka_unit_test(test_fingerprint_framing),
        cmocka_unit_test(test_page_0_refused),
        cmocka_unit_test(test_page_1_ok),
        cmocka_unit_test(test_page_size_0_refused),
        cmocka_unit_test(test_page_size_1_ok),
        cmocka_unit_test(test_page_size_100_ok),
        cmocka_unit_test(test_page_size_101_refused),
        cmocka_unit_test(test_paging_check_collects_both),
        cmocka_unit_test(test_total_pages),
        cmocka_unit_test(test_page_offset_saturates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
