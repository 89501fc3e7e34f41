/*
 * test_mail.c -- jobs/mail.h: which events send a mail, the rendered message
 * (RFC 5322 header syntax, RFC 2047 encoded-words, quoted-printable UTF-8
 * body), header injection from data, the easy-handle setup and the outcome
 * of a finished SMTP transfer.
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

#include "jobs/mail.h"

#define EVT_ID "evt_01HV3K8Q9W2Y4Z6A8B0C2D4E6F"

/* An order.created event; name and product names are JSON string bodies. */
static char *
order_event(const char *type, const char *cname, const char *pname1, const char *pname2,
            const char *extra)
{
    char *s = NULL;
    int n = asprintf(&s,
        "{\"id\":\"" EVT_ID "\",\"type\":\"%s\",\"timestamp\":\"2024-03-05T12:34:56.123456Z\","
        "\"data\":{\"id\":42,\"customer_id\":7,\"customer_name\":\"%s\",\"status\":\"pending\","
        "\"total\":\"49.97\",\"notes\":null,\"created_by\":1,\"items\":["
        "{\"id\":1,\"product_id\":3,\"product_name\":\"%s\",\"quantity\":2,\"unit_price\":\"19.99\"},"
        "{\"id\":2,\"product_id\":4,\"product_name\":\"%s\",\"quantity\":1,\"unit_price\":\"9.99\"}],"
        "\"created_at\":\"2024-03-05T12:34:56Z\",\"updated_at\":\"2024-03-05T12:34:56Z\"%s}}",
        type, cname, pname1, pname2, extra ? extra : "");
    assert_true(n > 0);
    return s;
}

static struct cfg_mail
cfg_default(void)
{
    struct cfg_mail c = { 0 };
    c.smtp_url = "smtp://127.0.0.1:2525";
    c.from = "OrderFlow Shop <orders@example.com>";
    return c;
}

/* ---- a small RFC 5322 / 2047 / 2045 reader, independent of mail.c ---- */

struct parsed {
    char   names[32][64];
    char   values[32][4096];     /* unfolded, encoded-words decoded */
    size_t n;
    char   body[16384];          /* quoted-printable decoded */
};

static void
decode_words(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    bool   prev_word = false;

    while (*in && o + 1 < cap) {
        const char *end;
        if (strncmp(in, "=?UTF-8?B?", 10) == 0 && (end = strstr(in + 10, "?=")) != NULL) {
            size_t bin = 0;
            assert_int_equal(sodium_base642bin((unsigned char *)out + o, cap - o - 1, in + 10,
                                               (size_t)(end - in - 10), NULL, &bin, NULL,
                                               sodium_base64_VARIANT_ORIGINAL), 0);
            o += bin;
            in = end + 2;
            prev_word = true;
            continue;
        }
        if (prev_word && *in == ' ') {
            const char *p = in;
            while (*p == ' ')
                p++;
            if (strncmp(p, "=?", 2) == 0) {     /* space between two words is not text */
                in = p;
                continue;
            }
        }
        prev_word = false;
        out[o++] = *in++;
    }
    out[o] = '\0';
}

static void
qp_decode(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (in[i] == '=' && i + 2 < n && in[i + 1] == '\r' && in[i + 2] == '\n') {
            i += 2;                               /* soft line break */
        } else if (in[i] == '=' && i + 2 < n) {
            unsigned v = 0;
            assert_int_equal(sscanf(in + i + 1, "%2X", &v), 1);
            out[o++] = (char)v;
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
}

/* Checks the syntax line by line as it goes: CRLF only, header lines
 * "Name: value" or a fold, none over 78 octets, a blank line, then the body
 * (quoted-printable: lines of at most 76 octets). */
static void
parse_msg(const struct mail_msg *msg, struct parsed *p)
{
    size_t      len;
    const char *t = mail_msg_text(msg, &len);
    const char *end = t + len;
    char        raw[4096];

    memset(p, 0, sizeof(*p));
    assert_non_null(t);
    assert_int_equal(strlen(t), len);
    for (const char *c = t; c < end; c++) {       /* CR and LF only as a pair */
        if (*c == '\r')
            assert_true(c + 1 < end && c[1] == '\n');
        if (*c == '\n')
            assert_true(c > t && c[-1] == '\r');
    }
    const char *line = t;
    while (line < end) {
        const char *eol = strstr(line, "\r\n");
        assert_non_null(eol);
        size_t n = (size_t)(eol - line);
        assert_true(n <= 78);
        if (n == 0) {
            line = eol + 2;
            break;
        }
        if (line[0] == ' ' || line[0] == '\t') {
            assert_true(p->n > 0);
            strncat(raw, line, n);
        } else {
            if (p->n > 0)
                decode_words(raw, p->values[p->n - 1], sizeof(p->values[0]));
            const char *colon = memchr(line, ':', n);
            assert_non_null(colon);
            for (const char *c = line; c < colon; c++)
                assert_true(*c > 32 && *c < 127);
            assert_true(colon + 1 < eol && colon[1] == ' ');
            assert_true(p->n < 32);
            snprintf(p->names[p->n], sizeof(p->names[0]), "%.*s", (int)(colon - line), line);
            snprintf(raw, sizeof(raw), "%.*s", (int)(eol - colon - 2), colon + 2);
            p->n++;
        }
        line = eol + 2;
    }
    assert_true(p->n > 0);
    decode_words(raw, p->values[p->n - 1], sizeof(p->values[0]));
    for (const char *l = line; l < end;) {
        const char *eol = strstr(l, "\r\n");
        assert_non_null(eol);
        assert_true(eol - l <= 76);
        l = eol + 2;
    }
    qp_decode(line, (size_t)(end - line), p->body, sizeof(p->body));
}

static int
count_header(const struct parsed *p, const char *name)
{
    int c = 0;
    for (size_t i = 0; i < p->n; i++)
        c += strcasecmp(p->names[i], name) == 0;
    return c;
}

static const char *
header(const struct parsed *p, const char *name)
{
    assert_int_equal(count_header(p, name), 1);
    for (size_t i = 0; i < p->n; i++)
        if (strcasecmp(p->names[i], name) == 0)
            return p->values[i];
    return NULL;
}

/* A header value with quoted-strings read back (quotes off, escapes undone). */
static const char *
unquote(const char *in)
{
    static char out[4096];
    size_t      o = 0;
    bool        q = false;

    for (; *in && o + 1 < sizeof(out); in++) {
        if (*in == '"') {
            q = !q;
            continue;
        }
        if (q && *in == '\\' && in[1] != '\0')
            in++;
        out[o++] = *in;
    }
    out[o] = '\0';
    return out;
}

static struct mail_msg *
render_ok(const char *ev, const char *email, const char *name, struct parsed *p)
{
    struct cfg_mail  c = cfg_default();
    struct mail_msg *m = NULL;

    assert_int_equal(mail_render(&c, ev, email, name, true, &m), OF_OK);
    assert_non_null(m);
    parse_msg(m, p);
    return m;
}

/* ---- confirmation ---- */

static void
test_confirmation_headers_and_body(void **s)
{
    (void)s;
    static struct parsed p;
    char *ev = order_event("order.created", "Ann Smith", "Widget", "Gadget", NULL);
    struct mail_msg *m = render_ok(ev, "ann@example.com", "Ann Smith", &p);

    assert_string_equal(header(&p, "From"), "OrderFlow Shop <orders@example.com>");
    assert_string_equal(header(&p, "To"), "Ann Smith <ann@example.com>");
    assert_string_equal(header(&p, "Subject"), "Order #42 confirmed");
    assert_string_equal(header(&p, "Message-ID"), "<" EVT_ID "@orderflow>");
    assert_string_equal(header(&p, "Date"), "Tue, 05 Mar 2024 12:34:56 +0000");
    assert_string_equal(header(&p, "MIME-Version"), "1.0");
    assert_string_equal(header(&p, "Content-Type"), "text/plain; charset=UTF-8");
    assert_string_equal(header(&p, "Content-Transfer-Encoding"), "quoted-printable");
    assert_non_null(strstr(p.body, "Hello Ann Smith,\r\n"));
    assert_non_null(strstr(p.body, "order #42"));
    assert_non_null(strstr(p.body, "\r\nWidget\r\n    Quantity: 2, unit price: 19.99\r\n"));
    assert_non_null(strstr(p.body, "\r\nGadget\r\n    Quantity: 1, unit price: 9.99\r\n"));
    assert_non_null(strstr(p.body, "Total: 49.97\r\n"));
    assert_null(strstr(p.body, "Status:"));
    mail_msg_free(m);
    free(ev);
}

static void
test_render_is_deterministic_for_duplicates(void **s)
{
    (void)s;
    struct cfg_mail  c = cfg_default();
    struct mail_msg *a = NULL, *b = NULL;
    size_t la, lb;
    char *ev = order_event("order.created", "Ann", "Widget", "Gadget", NULL);

    assert_int_equal(mail_render(&c, ev, "ann@example.com", "Ann", true, &a), OF_OK);
    assert_int_equal(mail_render(&c, ev, "ann@example.com", "Ann", true, &b), OF_OK);
    const char *ta = mail_msg_text(a, &la), *tb = mail_msg_text(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ta, tb, la);
    mail_msg_free(a);
    mail_msg_free(b);
    free(ev);
}

static void
test_name_falls_back_to_order_customer_name(void **s)
{
    (void)s;
    static struct parsed p;
    char *ev = order_event("order.created", "Bob Jones", "Widget", "Gadget", NULL);
    struct mail_msg *m = render_ok(ev, "bob@example.com", NULL, &p);

    assert_string_equal(header(&p, "To"), "Bob Jones <bob@example.com>");
    assert_non_null(strstr(p.body, "Hello Bob Jones,"));
    mail_msg_free(m);
    free(ev);
}

static void
test_default_from_and_empty_name(void **s)
{
    (void)s;
    static struct parsed p;
    struct cfg_mail  c = cfg_default();
    struct mail_msg *m = NULL;
    char *ev = order_event("order.created", "", "Widget", "Gadget", NULL);

    c.from = NULL;
    assert_int_equal(mail_render(&c, ev, "x@example.com", "", true, &m), OF_OK);
    parse_msg(m, &p);
    assert_string_equal(header(&p, "From"), "<orders@localhost>");
    assert_string_equal(header(&p, "To"), "<x@example.com>");
    assert_non_null(strstr(p.body, "Hello,\r\n"));
    mail_msg_free(m);
    free(ev);
}

/* ---- names: quoting and encoded-words ---- */

struct name_case {
    const char *json;       /* as written inside the event JSON */
    const char *utf8;       /* what a reader must get back */
    const char *to_raw;     /* expected start of the raw To header, or NULL */
};

static void
test_display_names_round_trip(void **s)
{
    (void)s;
    static const struct name_case cases[] = {
        { "Zo\\u00eb \\u00c4rger", "Zo\xc3\xab \xc3\x84rger", "To: =?UTF-8?B?" },
        { "\\u5c71\\u7530 \\u592a\\u90ce", "\xe5\xb1\xb1\xe7\x94\xb0 \xe5\xa4\xaa\xe9\x83\x8e", "To: =?UTF-8?B?" },
        { "Smith, John \\\"JJ\\\"", "Smith, John \"JJ\"", "To: \"Smith, John \\\"JJ\\\"\" <" },
        { "O'Brien-Smith", "O'Brien-Smith", "To: O'Brien-Smith <" },
        { "=?UTF-8?B?QUJD?=", "=?UTF-8?B?QUJD?=", "To: =?UTF-8?B?" },   /* a look-alike is encoded */
    };
    static struct parsed p;

    for (size_t i = 0; i < OF_ARRAY_LEN(cases); i++) {
        char *ev = order_event("order.created", cases[i].json, "Widget", "Gadget", NULL);
        struct mail_msg *m = render_ok(ev, "c@example.com", NULL, &p);
        char want[256];
        snprintf(want, sizeof(want), "%s <c@example.com>", cases[i].utf8);
        if (strcmp(unquote(header(&p, "To")), want) != 0)
            fail_msg("case %zu: To '%s', want '%s'", i, header(&p, "To"), want);
        assert_non_null(strstr(mail_msg_text(m, NULL), cases[i].to_raw));
        snprintf(want, sizeof(want), "Hello %s,", cases[i].utf8);
        assert_non_null(strstr(p.body, want));
        mail_msg_free(m);
        free(ev);
    }
}

static void
test_long_utf8_name_split_on_characters(void **s)
{
    (void)s;
    static struct parsed p;
    char json[200 * 6 + 1] = "", utf8[200 * 2 + 1] = "";

    for (int i = 0; i < 200; i++) {          /* 200 x U+00E4, 400 octets */
        strcat(json, "\\u00e4");
        strcat(utf8, "\xc3\xa4");
    }
    char *ev = order_event("order.created", json, "Widget", "Gadget", NULL);
    struct mail_msg *m = render_ok(ev, "c@example.com", NULL, &p);
    char want[512];
    snprintf(want, sizeof(want), "%s <c@example.com>", utf8);
    assert_string_equal(header(&p, "To"), want);
    /* each word decodes alone to whole characters: an even octet count of ä */
    const char *t = mail_msg_text(m, NULL);
    int words = 0;
    for (const char *w = strstr(t, "=?UTF-8?B?"); w && w < strstr(t, "\r\n\r\n"); w = strstr(w + 1, "=?UTF-8?B?")) {
        unsigned char bin[64];
        size_t n = 0;
        const char *e = strstr(w + 10, "?=");
        assert_int_equal(sodium_base642bin(bin, sizeof(bin), w + 10, (size_t)(e - w - 10), NULL, &n,
                                           NULL, sodium_base64_VARIANT_ORIGINAL), 0);
        assert_int_equal(n % 2, 0);
        assert_int_equal(bin[0], 0xc3);
        words++;
    }
    assert_true(words > 5);
    mail_msg_free(m);
    free(ev);
}

static void
test_utf8_product_names_in_body(void **s)
{
    (void)s;
    static struct parsed p;
    char *ev = order_event("order.created", "Ann", "Caf\\u00e9 cr\\u00e8me", "\\u6771\\u4eac = Tokyo", NULL);
    struct mail_msg *m = render_ok(ev, "ann@example.com", NULL, &p);

    assert_non_null(strstr(p.body, "\r\nCaf\xc3\xa9 cr\xc3\xa8me\r\n"));
    assert_non_null(strstr(p.body, "\r\n\xe6\x9d\xb1\xe4\xba\xac = Tokyo\r\n"));
    assert_null(strstr(mail_msg_text(m, NULL), "\xc3"));   /* 7-bit on the wire */
    mail_msg_free(m);
    free(ev);
}

static void
test_long_product_name_soft_breaks(void **s)
{
    (void)s;
    static struct parsed p;
    char name[201];

    for (int i = 0; i < 200; i++)
        name[i] = (char)('a' + i % 26);
    name[200] = '\0';
    char *ev = order_event("order.created", "Ann", name, ".", NULL);
    struct mail_msg *m = render_ok(ev, "ann@example.com", NULL, &p);   /* lines <= 76 checked */
    char want[210];
    snprintf(want, sizeof(want), "\r\n%s\r\n", name);
    assert_non_null(strstr(p.body, want));
    assert_non_null(strstr(p.body, "\r\n.\r\n"));   /* a lone dot: libcurl stuffs it */
    mail_msg_free(m);
    free(ev);
}

/* ---- header injection ---- */

static void
test_crlf_in_names_never_starts_a_header(void **s)
{
    (void)s;
    static struct parsed p;
    char *ev = order_event("order.created", "Eve\\r\\nBcc: victim@example.net",
                           "Widget\\r\\nSubject: pwned", "X\\n\\r\\n.\\r\\nRCPT TO:<a@b.cd>", NULL);
    struct mail_msg *m = render_ok(ev, "eve@example.com", NULL, &p);

    assert_int_equal(count_header(&p, "Bcc"), 0);
    assert_int_equal(count_header(&p, "Subject"), 1);
    assert_string_equal(header(&p, "Subject"), "Order #42 confirmed");
    assert_string_equal(header(&p, "To"), "\"Eve  Bcc: victim@example.net\" <eve@example.com>");
    assert_non_null(strstr(p.body, "\r\nWidget  Subject: pwned\r\n"));
    assert_non_null(strstr(p.body, "\r\nX   .  RCPT TO:<a@b.cd>\r\n"));
    mail_msg_free(m);
    /* a name passed in by the caller is cleaned the same way */
    m = render_ok(ev, "eve@example.com", "Mallory\r\nBcc: x@example.net\r\n", &p);
    assert_int_equal(count_header(&p, "Bcc"), 0);
    assert_string_equal(header(&p, "To"), "\"Mallory  Bcc: x@example.net\" <eve@example.com>");
    mail_msg_free(m);
    free(ev);
}

static void
test_bad_addresses_and_ids_refused(void **s)
{
    (void)s;
    static const char *const bad_rcpt[] = {
        "a@b.cd\r\nBcc: x@y.zz", "a b@c.de", "<a@b.cd>", "nobody", "@b.cd", "a@", "a@b@c.de",
        "a@b.cd>\r\nDATA", "j\xc3\xb6rg@example.com",
    };
    static const char *const bad_from[] = {
        "orders@example.com\r\nBcc: x@y.zz", "Shop <orders@example.com\r\nBcc: x@y.zz>", "not an address",
    };
    struct cfg_mail  c = cfg_default();
    struct mail_msg *m = (struct mail_msg *)&c;
    char *ev = order_event("order.created", "Ann", "Widget", "Gadget", NULL);

    for (size_t i = 0; i < OF_ARRAY_LEN(bad_rcpt); i++) {
        if (mail_render(&c, ev, bad_rcpt[i], "Ann", true, &m) != OF_ERR)
            fail_msg("recipient %zu accepted", i);
        assert_null(m);
    }
    for (size_t i = 0; i < OF_ARRAY_LEN(bad_from); i++) {
        c.from = (char *)bad_from[i];
        assert_int_equal(mail_render(&c, ev, "ann@example.com", "Ann", true, &m), OF_ERR);
    }
    free(ev);
}

/* ---- which events mail whom ---- */

struct decide_case {
    const char *event;
    bool        active;
    const char *email;
    int         rc;
    const char *subject;
    const char *status_line;
};

#define ORDER_OBJ "{\"id\":9,\"customer_id\":7,\"customer_name\":\"Ann\",\"status\":\"%s\",\"total\":\"1.00\"," \
                  "\"items\":[{\"id\":1,\"product_id\":2,\"product_name\":\"W\",\"quantity\":1,\"unit_price\":\"1.00\"}]"
#define EV(type, data) "{\"id\":\"evt_01ABC\",\"type\":\"" type "\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"data\":" data "}"
#define WRAPPED(to) EV("order.status_changed", "{\"order\":" ORDER_OBJ "},\"from\":\"paid\",\"to\":\"" to "\"}")
#define FLAT(to) EV("order.status_changed", ORDER_OBJ ",\"from\":\"paid\",\"to\":\"" to "\"}")

static void
test_which_events_send_mail(void **s)
{
    (void)s;
    static const struct decide_case cases[] = {
        { WRAPPED("shipped"),    true,  "a@b.cd", OF_OK,       "Order #9 shipped",   "Status: shipped" },
        { WRAPPED("cancelled"),  true,  "a@b.cd", OF_OK,       "Order #9 cancelled", "Status: cancelled" },
        { FLAT("shipped"),       true,  "a@b.cd", OF_OK,       "Order #9 shipped",   "Status: shipped" },
        { FLAT("cancelled"),     true,  "a@b.cd", OF_OK,       "Order #9 cancelled", "Status: cancelled" },
        { WRAPPED("paid"),       true,  "a@b.cd", OF_NOTFOUND, NULL, NULL },
        { WRAPPED("pending"),    true,  "a@b.cd", OF_NOTFOUND, NULL, NULL },
        { FLAT("processing"),    true,  "a@b.cd", OF_NOTFOUND, NULL, NULL },
        { FLAT("delivered"),     true,  "a@b.cd", OF_NOTFOUND, NULL, NULL },
        { WRAPPED("shipped"),    false, "a@b.cd", OF_NOTFOUND, NULL, NULL },
        { EV("order.created", ORDER_OBJ "}"), false, "a@b.cd", OF_NOTFOUND, NULL, NULL },
        { EV("order.created", ORDER_OBJ "}"), true,  NULL,     OF_NOTFOUND, NULL, NULL },
        { EV("order.created", ORDER_OBJ "}"), true,  "",       OF_NOTFOUND, NULL, NULL },
        { EV("order.created", ORDER_OBJ "}"), true,  "a@b.cd", OF_OK, "Order #9 confirmed", NULL },
        { EV("transfer.created", "{\"id\":1,\"amount\":\"5.00\"}"), true, "a@b.cd", OF_NOTFOUND, NULL, NULL },
        { EV("order.deleted", "{\"id\":1}"), true, "a@b.cd", OF_NOTFOUND, NULL, NULL },
    };
    struct cfg_mail c = cfg_default();
    static struct parsed p;

    for (size_t i = 0; i < OF_ARRAY_LEN(cases); i++) {
        char ev[2048];
        struct mail_msg *m = NULL;
        snprintf(ev, sizeof(ev), cases[i].event, "paid");
        int rc = mail_render(&c, ev, cases[i].email, "Ann", cases[i].active, &m);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d, want %d", i, rc, cases[i].rc);
        if (rc != OF_OK) {
            assert_null(m);
            continue;
        }
        parse_msg(m, &p);
        assert_string_equal(header(&p, "Subject"), cases[i].subject);
        assert_string_equal(header(&p, "Message-ID"), "<evt_01ABC@orderflow>");
        if (cases[i].status_line)
            assert_non_null(strstr(p.body, cases[i].status_line));
        assert_non_null(strstr(p.body, "\r\nW\r\n    Quantity: 1, unit price: 1.00\r\n"));
        assert_non_null(strstr(p.body, "Total: 1.00"));
        mail_msg_free(m);
    }
}

static void
test_malformed_events_err(void **s)
{
    (void)s;
    static const char *const bad[] = {
        "", "not json", "[]", "{\"id\":\"evt_1\",\"type\":\"order.created\"}",
        EV("order.created", "[]"),
        "{\"type\":\"order.created\",\"data\":{}}",
        "{\"id\":\"evt_1\r\nBcc: x@y.zz\",\"type\":\"order.created\",\"data\":{}}",
        "{\"id\":\"evt_1>\\r\\nBcc: x@y.zz\",\"type\":\"order.created\",\"timestamp\":\"x\",\"data\":"
            "{\"id\":9,\"total\":\"1.00\",\"items\":[]}}",
        "{\"id\":\"msg_1\",\"type\":\"order.created\",\"data\":{\"id\":9,\"total\":\"1.00\",\"items\":[]}}",
        "{\"id\":7,\"type\":\"order.created\",\"data\":{\"id\":9,\"total\":\"1.00\",\"items\":[]}}",
        EV("order.created", "{\"id\":\"9\",\"total\":\"1.00\",\"items\":[]}"),
        EV("order.created", "{\"id\":0,\"total\":\"1.00\",\"items\":[]}"),
        EV("order.created", "{\"id\":9,\"total\":1.00,\"items\":[]}"),
        EV("order.created", "{\"id\":9,\"total\":\"1.00\"}"),
        EV("order.created", "{\"id\":9,\"total\":\"1.00\",\"items\":[{\"product_name\":\"W\",\"quantity\":\"1\",\"unit_price\":\"1.00\"}]}"),
        EV("order.created", "{\"id\":9,\"total\":\"1.00\",\"items\":[{\"quantity\":1,\"unit_price\":\"1.00\"}]}"),
        EV("order.created", "{\"id\":9,\"total\":\"1.00\",\"items\":[7]}"),
        EV("order.status_changed", "{\"order\":{\"id\":9,\"total\":\"1.00\",\"items\":[]},\"from\":\"paid\"}"),
        EV("order.status_changed", "{\"order\":{\"id\":9},\"to\":\"shipped\"}"),
        EV("order.created", "{\"id\":9,\"id\":10,\"total\":\"1.00\",\"items\":[]}"),
    };
    struct cfg_mail c = cfg_default();

    for (size_t i = 0; i < OF_ARRAY_LEN(bad); i++) {
        struct mail_msg *m = NULL;
        int rc = mail_render(&c, bad[i], "a@b.cd", "Ann", true, &m);
        if (rc != OF_ERR)
            fail_msg("case %zu: rc %d, want OF_ERR", i, rc);
        assert_null(m);
    }
    assert_int_equal(mail_render(&c, NULL, "a@b.cd", "Ann", true, &(struct mail_msg *){ NULL }), OF_ERR);
    assert_int_equal(mail_render(NULL, bad[4], "a@b.cd", "Ann", true, &(struct mail_msg *){ NULL }), OF_ERR);
}

/* ---- libcurl ---- */

static void
test_outcome_table(void **s)
{
    (void)s;
    static const struct { CURLcode rc; long code; int want; } cases[] = {
        { CURLE_OK, 250, OF_OK },
        { CURLE_SEND_ERROR, 421, OF_AGAIN },
        { CURLE_WEIRD_SERVER_REPLY, 421, OF_AGAIN },
        { CURLE_SEND_ERROR, 450, OF_AGAIN },
        { CURLE_SEND_ERROR, 451, OF_AGAIN },
        { CURLE_WEIRD_SERVER_REPLY, 452, OF_AGAIN },
        { CURLE_LOGIN_DENIED, 454, OF_AGAIN },
        { CURLE_SEND_ERROR, 550, OF_ERR },
        { CURLE_WEIRD_SERVER_REPLY, 554, OF_ERR },
        { CURLE_LOGIN_DENIED, 535, OF_ERR },
        { CURLE_COULDNT_CONNECT, 0, OF_AGAIN },
        { CURLE_COULDNT_RESOLVE_HOST, 0, OF_AGAIN },
        { CURLE_OPERATION_TIMEDOUT, 0, OF_AGAIN },
        { CURLE_OPERATION_TIMEDOUT, 250, OF_AGAIN },
        { CURLE_GOT_NOTHING, 0, OF_AGAIN },
        { CURLE_RECV_ERROR, 0, OF_AGAIN },
        { CURLE_USE_SSL_FAILED, 0, OF_AGAIN },
        { CURLE_PEER_FAILED_VERIFICATION, 0, OF_AGAIN },
        { CURLE_UNSUPPORTED_PROTOCOL, 0, OF_ERR },
        { CURLE_URL_MALFORMAT, 0, OF_ERR },
    };
    for (size_t i = 0; i < OF_ARRAY_LEN(cases); i++)
        if (mail_outcome(cases[i].rc, cases[i].code) != cases[i].want)
            fail_msg("case %zu (%d, %ld): %d, want %d", i, cases[i].rc, cases[i].code,
                     mail_outcome(cases[i].rc, cases[i].code), cases[i].want);
}

static void
test_easy_setup(void **s)
{
    (void)s;
    static const struct { const char *url; bool starttls; const char *user; int want; } cases[] = {
        { "smtp://127.0.0.1:2525", false, NULL, OF_OK },
        { "SMTP://mail.example.com", true, "u", OF_OK },
        { "smtps://mail.example.com:465", false, "u", OF_OK },
        { NULL, false, NULL, OF_ERR },
        { "", false, NULL, OF_ERR },
        { "http://127.0.0.1:2525", false, NULL, OF_ERR },
        { "file:///etc/passwd", false, NULL, OF_ERR },
    };
    struct mail_msg *m = NULL;
    struct cfg_mail  c = cfg_default();
    char *ev = order_event("order.created", "Ann", "Widget", "Gadget", NULL);

    assert_int_equal(mail_render(&c, ev, "ann@example.com", NULL, true, &m), OF_OK);
    for (size_t i = 0; i < OF_ARRAY_LEN(cases); i++) {
        CURL *e = curl_easy_init();
        assert_non_null(e);
        c.smtp_url = (char *)cases[i].url;
        c.starttls = cases[i].starttls;
        c.smtp_user = (char *)cases[i].user;
        c.smtp_password = cases[i].user ? "secret" : NULL;
        if (mail_easy_setup(e, &c, m, 10) != cases[i].want)
            fail_msg("case %zu", i);
        curl_easy_cleanup(e);
    }
    CURL *e = curl_easy_init();
    c.smtp_url = "smtp://127.0.0.1:2525";
    assert_int_equal(mail_easy_setup(e, &c, m, 0), OF_ERR);
    assert_int_equal(mail_easy_setup(e, &c, NULL, 10), OF_ERR);
    assert_int_equal(mail_easy_setup(NULL, &c, m, 10), OF_ERR);
    curl_easy_cleanup(e);
    mail_msg_free(m);
    mail_msg_free(NULL);
    free(ev);
}

static int
setup_curl(void **s)
{
    (void)s;
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK && sodium_init() >= 0 ? 0 : -1;
}

static int
teardown_curl(void **s)
{
    (void)s;
    curl_global_cleanup();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_confirmation_headers_and_body),
        cmocka_unit_test(test_render_is_deterministic_for_duplicates),
        cmocka_unit_test(test_name_falls_back_to_order_customer_name),
        cmocka_unit_test(test_default_from_and_empty_name),
        cmocka_unit_test(test_display_names_round_trip),
        cmocka_unit_test(test_long_utf8_name_split_on_characters),
        cmocka_unit_test(test_utf8_product_names_in_body),
        cmocka_unit_test(test_long_product_name_soft_breaks),
        cmocka_unit_test(test_crlf_in_names_never_starts_a_header),
        cmocka_unit_test(test_bad_addresses_and_ids_refused),
        cmocka_unit_test(test_which_events_send_mail),
        cmocka_unit_test(test_malformed_events_err),
        cmocka_unit_test(test_outcome_table),
        cmocka_unit_test(test_easy_setup),
    };
    return cmocka_run_group_tests(tests, setup_curl, teardown_curl);
}
