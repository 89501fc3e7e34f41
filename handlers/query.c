/*
 * query.c -- see query.h. Percent-decoding is common/urlcode.c's; what is
 * here is the key lookup, the UTF-8 repair and the typed parameters.
 */
#include "handlers/query.h"
#include "handlers/hdl.h"
#include "common/of.h"
#include "common/urlcode.h"
#include "common/util.h"

#include <string.h>
#include <strings.h>

/* Percent-decode (and '+' → ' ') src[0..len) into the arena. */
static char *
form_decode(struct of_mem *m, const char *src, size_t len)
{
    char *out = of_mem_alloc(m, len + 1);
    of_url_decode(out, src, len, OF_URL_FORM, NULL);
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

/* Does the raw (encoded) form key src[0..len) decode to key? No allocation:
 * a body of many '&' must not cost arena memory per pair. An encoded byte
 * takes 1 to 3 characters, so only a raw key of klen..3*klen can match. */
static bool
key_matches(const char *src, size_t len, const char *key, size_t klen)
{
    char buf[3 * 32 + 1];
    if (len < klen || len > 3 * klen || len >= sizeof(buf))
        return false;
    size_t n = of_url_decode(buf, src, len, OF_URL_FORM, NULL);
    return n == klen && memcmp(buf, key, klen) == 0;
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
        size_t      rklen = (size_t)((eq ? eq : pe) - p);
        if (key_matches(p, rklen, key, klen)) {
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
hdl_paging(struct hdl_req *r, struct of_verrs *v, struct hdl_page *pg)
{
    bool by_page = hdl_query(r, "page") != NULL || hdl_query(r, "page_size") != NULL;

    hdl_query_int(r, v, "page", 1, 1, INT32_MAX, "Input should be greater than or equal to 1",
                  &pg->page);
    hdl_query_int(r, v, "page_size", 20, 1, 100, "Input should be between 1 and 100",
                  &pg->page_size);
    hdl_query_int(r, v, "limit", 20, 1, 100, "Input should be between 1 and 100", &pg->limit);
    pg->cursor = hdl_query(r, "cursor");
    pg->by_cursor = pg->cursor != NULL || hdl_query(r, "limit") != NULL;
    if (pg->cursor != NULL && pg->cursor[0] == '\0')
        of_verr_add(v, OF_VE_VALUE, "Invalid cursor", OF_K("query"), OF_K("cursor"), OF_END);
    if (by_page && pg->by_cursor)
        of_verr_add(v, OF_VE_VALUE, "page and page_size cannot be combined with cursor or limit",
                    OF_K("query"), OF_K(hdl_query(r, "page") != NULL ? "page" : "page_size"),
                    OF_END);
}
