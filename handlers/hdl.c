/*
 * hdl.c -- replying in API.md's shapes, and the request helpers every
 * handler shares (JSON body, query string, paging, money).
 */
#include "handlers/hdl.h"
#include "common/log.h"
#include "common/of.h"
#include "common/util.h"
#include "domain/money.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define JSON_CT "application/json"

void
hdl_reply_json(struct hdl_req *r, int status, json_t *body)
{
    char   stack[4096];
    size_t n = json_dumpb(body, stack, sizeof(stack), JSON_COMPACT);
    if (n == 0) {
        json_decref(body);
        hdl_reply_error(r, 500, "Internal server error");
        return;
    }
    if (n <= sizeof(stack)) {
        json_decref(body);
        r->io->send(r, status, JSON_CT, stack, n);
        return;
    }
    char *buf = of_mem_alloc(r->mem, n);
    json_dumpb(body, buf, n, JSON_COMPACT);
    json_decref(body);
    r->io->send(r, status, JSON_CT, buf, n);
}

void
hdl_reply_error(struct hdl_req *r, int status, const char *detail)
{
    char   buf[1024], esc[900];

    of_json_escape(esc, sizeof(esc), detail);
    int n = snprintf(buf, sizeof(buf), "{\"detail\":\"%s\"}", esc);
    if (n < 0 || (size_t)n >= sizeof(buf))
        n = snprintf(buf, sizeof(buf), "{\"detail\":\"Internal server error\"}");
    if (status == 401)
        r->io->add_header(r, "WWW-Authenticate", "Bearer");
    else if (status == 503)
        r->io->add_header(r, "Retry-After", "1");
    r->io->send(r, status, JSON_CT, buf, (size_t)n);
}

static json_t *
verr_json(const struct of_verr *e)
{
    json_t *loc = json_array();
    for (int i = 0; i < e->nloc; i++) {
        if (e->loc[i].key != NULL)
            json_array_append_new(loc, json_string(e->loc[i].key));
        else
            json_array_append_new(loc, json_integer(e->loc[i].idx));
    }
    return json_pack("{s:o,s:s,s:s}", "loc", loc, "msg", e->msg ? e->msg : "Invalid value",
                     "type", of_verr_type_name(e->type));
}

void
hdl_reply_verrs(struct hdl_req *r, const struct of_verrs *v)
{
    json_t *errs = json_array();
    for (size_t i = 0; i < v->n; i++)
        json_array_append_new(errs, verr_json(&v->e[i]));
    hdl_reply_json(r, 422, json_pack("{s:s,s:o}", "detail", "Validation error", "errors", errs));
}

void
hdl_reply_rc(struct hdl_req *r, int rc)
{
    switch (rc) {
    case OF_NOTFOUND:    hdl_reply_error(r, 404, "Not Found"); break;
    case OF_CONFLICT:    hdl_reply_error(r, 409, "Conflict"); break;
    case OF_FORBIDDEN:   hdl_reply_error(r, 403, "Insufficient permissions"); break;
    case OF_UNAUTH:      hdl_reply_error(r, 401, "Could not validate credentials"); break;
    case OF_UNAVAILABLE: hdl_reply_error(r, 503, "Service unavailable"); break;
    case OF_BADREQ:      hdl_reply_error(r, 400, "Bad request"); break;
    case OF_INVALID: {
        struct of_verrs v;
        of_verrs_init(&v);
        of_verr_add(&v, OF_VE_VALUE, "Invalid value", OF_K("body"), OF_END);
        hdl_reply_verrs(r, &v);
        break;
    }
    default:             hdl_reply_error(r, 500, "Internal server error"); break;
    }
}

void
hdl_reply_too_many(struct hdl_req *r, int retry_after)
{
    char buf[16];
    snprintf(buf, sizeof(buf), "%d", retry_after > 0 ? retry_after : 1);
    r->io->add_header(r, "Retry-After", buf);
    hdl_reply_error(r, 429, "Too many requests");
}

void
hdl_reply_empty(struct hdl_req *r, int status)
{
    r->io->send(r, status, NULL, "", 0);
}

static void
json_cleanup(void *p)
{
    json_decref(p);
}

/* application/json, optionally with parameters ("; charset=utf-8"). */
static bool
is_json_ctype(const char *ct)
{
    if (ct == NULL)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "application/json", 16) != 0)
        return false;
    ct += 16;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

json_t *
hdl_json_body(struct hdl_req *r)
{
    struct of_verrs v;

    if (!is_json_ctype(r->io->header(r, "Content-Type"))) {
        hdl_reply_error(r, 415, "Unsupported media type");
        return NULL;
    }
    of_verrs_init(&v);
    if (r->body_len == 0) {
        of_verr_add(&v, OF_VE_MISSING, "Field required", OF_K("body"), OF_END);
        hdl_reply_verrs(r, &v);
        return NULL;
    }
    json_error_t err;
    json_t *j = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, &err);
    if (j == NULL) {
        of_verr_add(&v, OF_VE_JSON, "JSON decode error", OF_K("body"), OF_END);
        hdl_reply_verrs(r, &v);
        return NULL;
    }
    of_mem_cleanup_add(r->mem, json_cleanup, j);
    if (!json_is_object(j)) {
        of_verr_add(&v, OF_VE_TYPE, "Input should be a valid dictionary or object",
                    OF_K("body"), OF_END);
        hdl_reply_verrs(r, &v);
        return NULL;
    }
    return j;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode (and '+' → ' ') src[0..len) into the arena. */
static char *
form_decode(struct of_mem *m, const char *src, size_t len)
{
    char  *out = of_mem_alloc(m, len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '+') {
            out[o++] = ' ';
        } else if (src[i] == '%' && i + 2 < len && hexval(src[i + 1]) >= 0 &&
                   hexval(src[i + 2]) >= 0) {
            char c = (char)(hexval(src[i + 1]) * 16 + hexval(src[i + 2]));
            if (c == '\0') {
                /* %00 would silently cut the value short ("page=1%00" read as
                 * 1): U+FFFD, like the other bytes that are no text (3 bytes
                 * in place of 3) */
                memcpy(out + o, "\xef\xbf\xbd", 3);
                o += 3;
            } else {
                out[o++] = c;
            }
            i += 2;
        } else {
            out[o++] = src[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* A decoded value that is not valid UTF-8 would reach PostgreSQL as text and
 * fail there (sqlstate 22021: a 500 for "?q=%ff"). Replace each offending
 * byte with U+FFFD, as FastAPI's query parsing does. */
static const char *
utf8_sanitize(struct of_mem *m, const char *s)
{
    size_t len = strlen(s);
    if (of_utf8_len(s, len) >= 0)
        return s;
    char  *out = of_mem_alloc(m, len * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned c = (unsigned char)s[i];
        size_t   n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (n > 0 && n <= len - i && of_utf8_len(s + i, n) == 1) {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

const char *
hdl_form_value(struct of_mem *m, const char *src, size_t len, const char *key)
{
    size_t      klen = strlen(key);
    const char *found = NULL;
    size_t      flen = 0;
    const char *p = src, *end = src + len;

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;
        char       *k = form_decode(m, p, (size_t)(ke - p));
        if (strlen(k) == klen && memcmp(k, key, klen) == 0) {
            found = eq ? eq + 1 : pe;
            flen = (size_t)(pe - found);
        }
        p = pe + 1;
    }
    return found ? utf8_sanitize(m, form_decode(m, found, flen)) : NULL;
}

const char *
hdl_query(struct hdl_req *r, const char *key)
{
    if (r->query == NULL)
        return NULL;
    return hdl_form_value(r->mem, r->query, strlen(r->query), key);
}

/* One integer query parameter with bounds: type_error if not an integer,
 * value_error if out of bounds. */
bool
hdl_query_int(struct hdl_req *r, struct of_verrs *v, const char *key, int64_t def,
              int64_t min, int64_t max, const char *bound_msg, int64_t *out)
{
    const char *s = hdl_query(r, key);
    *out = def;
    if (s == NULL)
        return true;
    int64_t val;
    if (of_parse_i64(s, strlen(s), INT64_MIN, INT64_MAX, &val) != 0) {
        of_verr_add(v, OF_VE_TYPE, "Input should be a valid integer", OF_K("query"), OF_K(key), OF_END);
        return false;
    }
    if (val < min || val > max) {
        of_verr_add(v, OF_VE_VALUE, bound_msg, OF_K("query"), OF_K(key), OF_END);
        return false;
    }
    *out = val;
    return true;
}

bool
hdl_query_bool(struct hdl_req *r, struct of_verrs *v, const char *key, int *out)
{
    const char *s = hdl_query(r, key);
    *out = -1;
    if (s == NULL)
        return true;
    /* pydantic's (FastAPI's) spellings, case-insensitive */
    static const char *const yes[] = { "true", "1", "t", "y", "yes", "on" };
    static const char *const no[] = { "false", "0", "f", "n", "no", "off" };
    for (size_t i = 0; i < OF_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return true;
        }
    }
    of_verr_add(v, OF_VE_TYPE, "Input should be a valid boolean", OF_K("query"), OF_K(key), OF_END);
    return false;
}

void
hdl_paging(struct hdl_req *r, struct of_verrs *v, int64_t *page, int64_t *page_size)
{
    hdl_query_int(r, v, "page", 1, 1, INT32_MAX, "Input should be greater than or equal to 1", page);
    hdl_query_int(r, v, "page_size", 20, 1, 100, "Input should be between 1 and 100", page_size);
}

json_t *
hdl_page(json_t *items, int64_t page, int64_t page_size, int64_t total)
{
    int64_t pages = total == 0 ? 0 : (total + page_size - 1) / page_size;
    return json_pack("{s:o,s:I,s:I,s:I,s:I}", "items", items, "page", (json_int_t)page,
                     "page_size", (json_int_t)page_size, "total", (json_int_t)total,
                     "total_pages", (json_int_t)pages);
}

void
hdl_reply_page(struct hdl_req *r, int rc, const void *items, size_t n, size_t item_size,
               hdl_render_fn render, int64_t page, int64_t page_size, int64_t total)
{
    if (rc != OF_OK) {
        hdl_reply_rc(r, rc);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, render((const char *)items + i * item_size));
    hdl_reply_json(r, 200, hdl_page(arr, page, page_size, total));
}

struct hdl_call *
hdl_call_new(struct hdl_req *r)
{
    struct hdl_call *c = of_mem_alloc(r->mem, sizeof(*c));
    c->r = r;
    of_verrs_init(&c->v);
    c->page = c->page_size = 0;
    return c;
}

void
hdl_reply_not_found(struct hdl_req *r, const char *entity)
{
    hdl_reply_error(r, 404, of_mem_printf(r->mem, "%s %lld not found", entity, (long long)r->ids[0]));
}

void
hdl_reply_item(struct hdl_req *r, int rc, const void *item, hdl_render_fn render, const char *entity)
{
    if (rc == OF_NOTFOUND)
        hdl_reply_not_found(r, entity);
    else if (rc != OF_OK)
        hdl_reply_rc(r, rc);
    else
        hdl_reply_json(r, 200, render(item));
}

struct audit_ctx *
hdl_audit(struct hdl_req *r)
{
    struct audit_ctx *a = of_mem_alloc(r->mem, sizeof(*a));
    a->actor_id = r->who.user_id;
    a->request_id = r->request_id;
    return a;
}

json_t *
hdl_money(int64_t cents)
{
    char buf[32];
    money_format(cents, buf);
    return json_string(buf);
}

static enum hdl_field
field_get(json_t *body, const char *key, bool required, struct of_verrs *v, json_t **out)
{
    json_t *j = json_object_get(body, key);
    if (j == NULL) {
        if (required)
            of_verr_add(v, OF_VE_MISSING, "Field required", OF_K("body"), OF_K(key), OF_END);
        return FIELD_ABSENT;
    }
    *out = j;
    return FIELD_OK;
}

enum hdl_field
hdl_field_str(json_t *body, const char *key, bool required, struct of_verrs *v,
              const char **out, size_t *len)
{
    json_t *j;
    if (field_get(body, key, required, v, &j) != FIELD_OK)
        return FIELD_ABSENT;
    if (!json_is_string(j)) {
        of_verr_add(v, OF_VE_TYPE, "Input should be a valid string", OF_K("body"), OF_K(key), OF_END);
        return FIELD_BAD;
    }
    *out = json_string_value(j);
    *len = json_string_length(j);
    return FIELD_OK;
}

enum hdl_field
hdl_field_bool(json_t *body, const char *key, bool required, struct of_verrs *v, bool *out)
{
    json_t *j;
    if (field_get(body, key, required, v, &j) != FIELD_OK)
        return FIELD_ABSENT;
    if (!json_is_boolean(j)) {
        of_verr_add(v, OF_VE_TYPE, "Input should be a valid boolean", OF_K("body"), OF_K(key), OF_END);
        return FIELD_BAD;
    }
    *out = json_is_true(j);
    return FIELD_OK;
}

enum hdl_field
hdl_value_int(json_t *j, struct of_verrs *v, const char *arr, int idx, const char *key, int64_t *out)
{
    bool ok = json_is_integer(j);
    if (!ok && json_is_real(j)) {
        double d = json_real_value(j);
        /* range first: casting an out-of-range double (1e300) is UB */
        if (d > -9.2e18 && d < 9.2e18 && d == (double)(int64_t)d) {
            *out = (int64_t)d;
            return FIELD_OK;
        }
    }
    if (!ok) {
        if (arr != NULL)
            of_verr_add(v, OF_VE_TYPE, "Input should be a valid integer", OF_K("body"), OF_K(arr),
                        OF_I(idx), OF_K(key), OF_END);
        else
            of_verr_add(v, OF_VE_TYPE, "Input should be a valid integer", OF_K("body"), OF_K(key), OF_END);
        return FIELD_BAD;
    }
    *out = (int64_t)json_integer_value(j);
    return FIELD_OK;
}

enum hdl_field
hdl_field_int(json_t *body, const char *key, bool required, struct of_verrs *v, int64_t *out)
{
    json_t *j;
    if (field_get(body, key, required, v, &j) != FIELD_OK)
        return FIELD_ABSENT;
    return hdl_value_int(j, v, NULL, -1, key, out);
}

enum hdl_field
hdl_field_money(json_t *body, const char *key, bool required, struct of_verrs *v, int64_t *cents)
{
    json_t *j;
    int     rc;

    if (field_get(body, key, required, v, &j) != FIELD_OK)
        return FIELD_ABSENT;
    if (json_is_string(j))
        rc = money_parse_str(json_string_value(j), json_string_length(j), cents);
    else if (json_is_integer(j))
        rc = money_from_json_int((long long)json_integer_value(j), cents);
    else if (json_is_real(j))
        rc = money_from_json_real(json_real_value(j), cents);
    else {
        of_verr_add(v, OF_VE_TYPE, "Input should be a valid decimal", OF_K("body"), OF_K(key), OF_END);
        return FIELD_BAD;
    }
    if (rc == OF_OK)
        return FIELD_OK;
    const char *msg = rc == MONEY_E_PLACES ? "Decimal input should have no more than 2 decimal places"
                    : rc == MONEY_E_RANGE  ? "Input should be less than or equal to 99999999.99"
                    : "Input should be a valid decimal";
    of_verr_add(v, OF_VE_VALUE, msg, OF_K("body"), OF_K(key), OF_END);
    return FIELD_BAD;
}
