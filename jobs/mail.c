/*
 * mail.c -- customer mails: which events send one, the message (RFC 5322
 * headers, RFC 2047 encoded-words, a UTF-8 text body in quoted-printable so
 * that no line exceeds 76 octets whatever the names), and the libcurl SMTP
 * setup. Every value taken from the event or the customer row has its control
 * characters replaced by spaces before it is placed anywhere, so no CR/LF from
 * data can start a header or break the body's layout; addresses with anything
 * outside a plain ASCII addr-spec are refused. SMTP dot-stuffing is libcurl's
 * (it escapes "\r\n." on upload); the message here is the bare RFC 5322 text.
 */
#include "jobs/mail.h"
#include "common/log.h"
#include "common/mem.h"

#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAIL_DEFAULT_FROM "orders@localhost"
#define MAIL_ID_MAX       64     /* event ids are evt_ + 26 chars */
#define MAIL_ADDR_MAX     254
#define MAIL_WORD_RAW     39     /* bytes per encoded-word: 52 base64 chars, 64 with framing */
#define MAIL_RAW_PHRASE   60     /* longer ASCII names are encoded too, so lines stay short */
#define MAIL_QP_WIDTH     75     /* + the soft-break '=' = 76 (RFC 2045) */

enum mail_kind { MAIL_CONFIRMED, MAIL_SHIPPED, MAIL_CANCELLED };

static const char *const kind_word[] = { "confirmed", "shipped", "cancelled" };

/* The read position lives behind a pointer so that a const msg can be sent. */
struct mail_cursor {
    size_t pos;
};

struct mail_msg {
    char               *text;
    size_t              len;
    char               *env_from;    /* "<addr>" for MAIL FROM */
    struct curl_slist  *rcpt;        /* "<addr>" for RCPT TO */
    struct mail_cursor *cur;
};

struct mail_ev {
    const char    *id;
    const char    *timestamp;
    json_t        *order;            /* borrowed from the parsed event */
    json_int_t     order_id;
    enum mail_kind kind;
};

/* ---- a growable string; out of memory aborts, as everywhere (mem.h) ---- */

struct sbuf {
    char  *p;
    size_t len;
    size_t cap;
};

static void
sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            of_fatal("mail: out of memory (%zu bytes)", cap);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
sb_puts(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char    small[256];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        of_fatal("mail: vsnprintf failed");
    if ((size_t)n < sizeof(small)) {
        sb_put(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        of_fatal("mail: out of memory");
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_put(b, big, (size_t)n);
    free(big);
}

/* ---- values from data: controls out, edges trimmed ---- */

/* A copy of s with every C0 control and DEL replaced by a space, trimmed. */
static char *
clean(struct of_mem *m, const char *s)
{
    char *c = of_mem_strdup(m, s ? s : "");
    for (char *p = c; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    char *start = c;
    while (*start == ' ')
        start++;
    size_t n = strlen(start);
    while (n > 0 && start[n - 1] == ' ')
        start[--n] = '\0';
    return start;
}

/* A plain ASCII addr-spec: one '@' inside, no space, control, non-ASCII or
 * anything that has a meaning in an address header or an SMTP command. */
static bool
addr_ok(const char *a)
{
    size_t n = a ? strlen(a) : 0;
    const char *at = n ? strchr(a, '@') : NULL;

    if (n == 0 || n > MAIL_ADDR_MAX || at == NULL || at == a || at[1] == '\0' || strchr(at + 1, '@'))
        return false;
    for (const unsigned char *p = (const unsigned char *)a; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || strchr("<>()[]\\\",;:", *p))
            return false;
    return true;
}

/* mail.from is "addr" or "Display Name <addr>" (the name possibly quoted). */
static int
split_from(struct of_mem *m, const char *from, const char **name, const char **addr)
{
    char *f = clean(m, from);
    char *lt = strrchr(f, '<');
    size_t n = strlen(f);

    *name = "";
    *addr = f;
    if (lt != NULL && n > 0 && f[n - 1] == '>') {
        f[n - 1] = '\0';
        *addr = lt + 1;
        *lt = '\0';
        char *nm = clean(m, f);
        size_t k = strlen(nm);
        if (k >= 2 && nm[0] == '"' && nm[k - 1] == '"') {
            nm[k - 1] = '\0';
            nm++;
        }
        *name = nm;
    }
    return addr_ok(*addr) ? OF_OK : OF_ERR;
}

/* ---- headers ---- */

static bool
is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 2047 B encoded-words of s, split at UTF-8 boundaries, folded. */
static void
put_encoded(struct sbuf *b, const char *s, size_t n)
{
    char   b64[sodium_base64_ENCODED_LEN(MAIL_WORD_RAW, sodium_base64_VARIANT_ORIGINAL)];
    size_t i = 0;

    while (i < n) {
        size_t k = n - i < MAIL_WORD_RAW ? n - i : MAIL_WORD_RAW;
        while (k > 1 && i + k < n && ((unsigned char)s[i + k] & 0xC0) == 0x80)
            k--;                         /* never split a character across words */
        sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)s + i, k,
                          sodium_base64_VARIANT_ORIGINAL);
        if (i > 0)
            sb_puts(b, "\r\n ");
        sb_puts(b, "=?UTF-8?B?");
        sb_puts(b, b64);
        sb_puts(b, "?=");
        i += k;
    }
}

/* True when s must be encoded: non-ASCII, long, or looks like an encoded-word. */
static bool
needs_encoding(const char *s, size_t max_raw)
{
    if (strlen(s) > max_raw || strstr(s, "=?") != NULL)
        return true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p >= 0x80)
            return true;
    return false;
}

/* A display name (RFC 5322 phrase): atoms as they are, other ASCII as a
 * quoted-string, anything else as encoded-words. Returns true if encoded. */
static bool
put_phrase(struct sbuf *b, const char *s)
{
    if (needs_encoding(s, MAIL_RAW_PHRASE)) {
        put_encoded(b, s, strlen(s));
        return true;
    }
    bool atoms = true;
    for (const char *p = s; *p; p++)
        if (!is_atext((unsigned char)*p) && !(*p == ' ' && p[1] != ' '))
            atoms = false;
    if (atoms) {
        sb_puts(b, s);
        return false;
    }
    sb_puts(b, "\"");
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_puts(b, "\\");
        sb_put(b, p, 1);
    }
    sb_puts(b, "\"");
    return false;
}

static void
put_mailbox(struct sbuf *b, const char *header, const char *name, const char *addr)
{
    sb_printf(b, "%s: ", header);
    if (*name != '\0') {
        bool encoded = put_phrase(b, name);
        sb_puts(b, encoded ? "\r\n " : " ");   /* keep encoded-word lines short */
    }
    sb_printf(b, "<%s>\r\n", addr);
}

static void
put_unstructured(struct sbuf *b, const char *header, const char *value)
{
    sb_printf(b, "%s: ", header);
    if (needs_encoding(value, 76 - strlen(header) - 2))
        put_encoded(b, value, strlen(value));
    else
        sb_puts(b, value);
    sb_puts(b, "\r\n");
}

/* RFC 5322 date of the event (so a duplicate renders the same), else now. */
static void
put_date(struct sbuf *b, const char *ts)
{
    static const char *const wday[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;
    time_t    t = (time_t)-1;

    memset(&tm, 0, sizeof(tm));
    if (ts != NULL && strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm) != NULL)
        t = timegm(&tm);
    if (t == (time_t)-1)
        t = time(NULL);
    gmtime_r(&t, &tm);
    sb_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", wday[tm.tm_wday],
              tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void
put_headers(struct sbuf *b, struct of_mem *m, const struct mail_ev *ev, const char *const from[2],
            const char *const to[2])
{
    put_mailbox(b, "From", from[0], from[1]);
    put_mailbox(b, "To", to[0], to[1]);
    put_unstructured(b, "Subject", of_mem_printf(m, "Order #%lld %s", (long long)ev->order_id,
                                                 kind_word[ev->kind]));
    put_date(b, ev->timestamp);
    sb_printf(b, "Message-ID: <%s@orderflow>\r\n", ev->id);
    sb_puts(b, "Auto-Submitted: auto-generated\r\n"
               "MIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=UTF-8\r\n"
               "Content-Transfer-Encoding: quoted-printable\r\n"
               "\r\n");
}

/* ---- body ---- */

/* One line of text as quoted-printable (RFC 2045 6.7), CRLF-terminated. */
static void
put_qp_line(struct sbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char enc[3] = { (char)c, 0, 0 };
        size_t w = 1;
        bool plain = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && i + 1 < n);
        if (!plain) {
            enc[0] = '=';
            enc[1] = hex[c >> 4];
            enc[2] = hex[c & 15];
            w = 3;
        }
        if (col + w > MAIL_QP_WIDTH) {
            sb_puts(b, "=\r\n");
            col = 0;
        }
        sb_put(b, enc, w);
        col += w;
    }
    sb_puts(b, "\r\n");
}

static void
put_qp(struct sbuf *b, const char *text)
{
    const char *p = text;

    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        put_qp_line(b, p, n);
        p += n + (nl ? 1 : 0);
    }
}

static const char *
str_field(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The body text, '\n' line ends; every value from data is cleaned. */
static void
compose_body(struct sbuf *t, struct of_mem *m, const struct mail_ev *ev, const char *name)
{
    static const char *const lead[] = {
        "Thank you for your order #%lld. We have received it and will let you know when it ships.",
        "Your order #%lld has been shipped.",
        "Your order #%lld has been cancelled.",
    };
    json_t *items = json_object_get(ev->order, "items");
    size_t  i;
    json_t *it;

    if (*name != '\0')
        sb_printf(t, "Hello %s,\n\n", name);
    else
        sb_puts(t, "Hello,\n\n");
    sb_printf(t, lead[ev->kind], (long long)ev->order_id);
    sb_puts(t, "\n\n");
    if (ev->kind != MAIL_CONFIRMED)
        sb_printf(t, "Status: %s\n\n", kind_word[ev->kind]);
    sb_puts(t, "Items:\n\n");
    json_array_foreach(items, i, it) {
        sb_printf(t, "%s\n    Quantity: %lld, unit price: %s\n\n",
                  clean(m, str_field(it, "product_name")),
                  (long long)json_integer_value(json_object_get(it, "quantity")),
                  clean(m, str_field(it, "unit_price")));
    }
    sb_printf(t, "Total: %s\n\n-- \nOrderFlow\n", clean(m, str_field(ev->order, "total")));
}

/* ---- the event ---- */

static bool
event_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;

    if (n <= 4 || n > MAIL_ID_MAX || strncmp(id, "evt_", 4) != 0)
        return false;
    return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

/* data is {"order":{...},"from","to"} or the order with "from"/"to" added. */
static int
parse_status_change(json_t *data, struct mail_ev *ev)
{
    json_t     *order = json_object_get(data, "order");
    const char *to = str_field(data, "to");

    ev->order = json_is_object(order) ? order : data;
    if (to == NULL)
        return OF_ERR;
    if (strcmp(to, "shipped") == 0)
        ev->kind = MAIL_SHIPPED;
    else if (strcmp(to, "cancelled") == 0)
        ev->kind = MAIL_CANCELLED;
    else
        return OF_NOTFOUND;
    return OF_OK;
}

static bool
order_ok(json_t *order, json_int_t *id)
{
    json_t *jid = json_object_get(order, "id");
    json_t *items = json_object_get(order, "items");
    size_t  i;
    json_t *it;

    if (!json_is_integer(jid) || json_integer_value(jid) <= 0 || !json_is_array(items) ||
        str_field(order, "total") == NULL)
        return false;
    json_array_foreach(items, i, it) {
        if (str_field(it, "product_name") == NULL || str_field(it, "unit_price") == NULL ||
            !json_is_integer(json_object_get(it, "quantity")))
            return false;
    }
    *id = json_integer_value(jid);
    return true;
}

static int
parse_event(json_t *root, struct mail_ev *ev)
{
    const char *type = str_field(root, "type");
    json_t     *data = json_object_get(root, "data");
    int         rc = OF_OK;

    memset(ev, 0, sizeof(*ev));
    ev->id = str_field(root, "id");
    ev->timestamp = str_field(root, "timestamp");
    if (type == NULL || !event_id_ok(ev->id) || !json_is_object(data))
        return OF_ERR;
    if (strcmp(type, "order.created") == 0) {
        ev->kind = MAIL_CONFIRMED;
        ev->order = data;
    } else if (strcmp(type, "order.status_changed") == 0) {
        rc = parse_status_change(data, ev);
    } else {
        return OF_NOTFOUND;               /* transfer.created and anything new */
    }
    if (rc != OF_OK)
        return rc;
    return order_ok(ev->order, &ev->order_id) ? OF_OK : OF_ERR;
}

/* ---- render ---- */

static struct mail_msg *
msg_new(struct sbuf *text, const char *from_addr, const char *to_addr)
{
    struct mail_msg *msg = calloc(1, sizeof(*msg));
    struct sbuf      env = { 0 }, rcpt = { 0 };

    if (msg == NULL || (msg->cur = calloc(1, sizeof(*msg->cur))) == NULL)
        of_fatal("mail: out of memory");
    msg->text = text->p;
    msg->len = text->len;
    sb_printf(&env, "<%s>", from_addr);
    msg->env_from = env.p;
    sb_printf(&rcpt, "<%s>", to_addr);
    msg->rcpt = curl_slist_append(NULL, rcpt.p);
    free(rcpt.p);
    if (msg->rcpt == NULL)
        of_fatal("mail: out of memory");
    return msg;
}

static int
compose(const struct cfg_mail *cfg, const struct mail_ev *ev, const char *email,
        const char *name, struct mail_msg **out)
{
    struct of_mem m;
    const char   *from[2], *to[2];
    struct sbuf   msg = { 0 }, body = { 0 };

    of_mem_init(&m);
    if (split_from(&m, cfg->from && *cfg->from ? cfg->from : MAIL_DEFAULT_FROM, &from[0], &from[1]) != OF_OK ||
        !addr_ok(email)) {
        of_mem_release(&m);
        return OF_ERR;
    }
    to[0] = clean(&m, name ? name : str_field(ev->order, "customer_name"));
    to[1] = email;
    put_headers(&msg, &m, ev, from, to);
    compose_body(&body, &m, ev, to[0]);
    put_qp(&msg, body.p);
    free(body.p);
    *out = msg_new(&msg, from[1], email);
    of_mem_release(&m);
    return OF_OK;
}

int
mail_render(const struct cfg_mail *cfg, const char *event_json, const char *customer_email,
            const char *customer_name, bool customer_active, struct mail_msg **out)
{
    json_error_t   jerr;
    struct mail_ev ev;

    if (out == NULL)
        return OF_ERR;
    *out = NULL;
    if (cfg == NULL || event_json == NULL)
        return OF_ERR;
    json_t *root = json_loads(event_json, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return OF_ERR;
    int rc = parse_event(root, &ev);
    if (rc == OF_OK && (!customer_active || customer_email == NULL || *customer_email == '\0'))
        rc = OF_NOTFOUND;
    if (rc == OF_OK)
        rc = compose(cfg, &ev, customer_email, customer_name, out);
    json_decref(root);
    return rc;
}

/* ---- libcurl ---- */

static size_t
read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
    const struct mail_msg *msg = arg;
    size_t room = size * nitems;
    size_t left = msg->len - msg->cur->pos;
    size_t n = left < room ? left : room;

    memcpy(buf, msg->text + msg->cur->pos, n);
    msg->cur->pos += n;
    return n;
}

static int
seek_cb(void *arg, curl_off_t offset, int origin)
{
    const struct mail_msg *msg = arg;

    if (origin != SEEK_SET || offset < 0 || (size_t)offset > msg->len)
        return CURL_SEEKFUNC_CANTSEEK;
    msg->cur->pos = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static bool
smtp_url_ok(const char *url)
{
    return url != NULL && (strncasecmp(url, "smtp://", 7) == 0 || strncasecmp(url, "smtps://", 8) == 0);
}

#define MAIL_SETOPT(rc, easy, opt, val) \
    do { if ((rc) == CURLE_OK) (rc) = curl_easy_setopt((easy), (opt), (val)); } while (0)

int
mail_easy_setup(CURL *easy, const struct cfg_mail *cfg, const struct mail_msg *msg, long timeout_s)
{
    CURLcode rc = CURLE_OK;

    if (easy == NULL || cfg == NULL || msg == NULL || !smtp_url_ok(cfg->smtp_url) || timeout_s <= 0)
        return OF_ERR;
    msg->cur->pos = 0;
    MAIL_SETOPT(rc, easy, CURLOPT_URL, cfg->smtp_url);
    MAIL_SETOPT(rc, easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    MAIL_SETOPT(rc, easy, CURLOPT_NOSIGNAL, 1L);
    MAIL_SETOPT(rc, easy, CURLOPT_MAIL_FROM, msg->env_from);
    MAIL_SETOPT(rc, easy, CURLOPT_MAIL_RCPT, msg->rcpt);
    MAIL_SETOPT(rc, easy, CURLOPT_UPLOAD, 1L);
    MAIL_SETOPT(rc, easy, CURLOPT_READFUNCTION, read_cb);
    MAIL_SETOPT(rc, easy, CURLOPT_READDATA, (void *)msg);
    MAIL_SETOPT(rc, easy, CURLOPT_SEEKFUNCTION, seek_cb);
    MAIL_SETOPT(rc, easy, CURLOPT_SEEKDATA, (void *)msg);
    MAIL_SETOPT(rc, easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)msg->len);
    MAIL_SETOPT(rc, easy, CURLOPT_CONNECTTIMEOUT, timeout_s);
    MAIL_SETOPT(rc, easy, CURLOPT_TIMEOUT, timeout_s);
    if (cfg->starttls)
        MAIL_SETOPT(rc, easy, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (cfg->smtp_user != NULL && *cfg->smtp_user != '\0') {
        MAIL_SETOPT(rc, easy, CURLOPT_USERNAME, cfg->smtp_user);
        MAIL_SETOPT(rc, easy, CURLOPT_PASSWORD, cfg->smtp_password ? cfg->smtp_password : "");
    }
    return rc == CURLE_OK ? OF_OK : OF_ERR;
}

int
mail_outcome(CURLcode rc, long smtp_code)
{
    if (rc == CURLE_OK)
        return OF_OK;
    if (smtp_code >= 500 && smtp_code <= 599)
        return OF_ERR;
    if (smtp_code >= 400 && smtp_code <= 499)
        return OF_AGAIN;
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
        return OF_ERR;                   /* our setup, not the server: retrying cannot help */
    default:
        return OF_AGAIN;                 /* refused, reset, timed out, TLS failed, ... */
    }
}

const char *
mail_msg_text(const struct mail_msg *msg, size_t *len)
{
    if (len != NULL)
        *len = msg ? msg->len : 0;
    return msg ? msg->text : NULL;
}

void
mail_msg_free(struct mail_msg *msg)
{
    if (msg == NULL)
        return;
    curl_slist_free_all(msg->rcpt);
    free(msg->env_from);
    free(msg->text);
    free(msg->cur);
    free(msg);
}
