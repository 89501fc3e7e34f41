/*
 * cached.c -- see cached.h.
 */
#include "handlers/cached.h"
#include "handlers/hdl.h"
#include "common/urlcode.h"

#include <string.h>

#define QK_MAX_PAIRS 16
#define QK_NAME_CAP  64

struct qk_pair {
    char        name[QK_NAME_CAP];
    size_t      nlen;
    const char *val;           /* raw, as written, without the '=' */
    size_t      vlen;
    bool        has_eq;
};

/* Split query into pairs, decoded names, the last of a name winning.
 * Returns how many, or -1 when it cannot be keyed. */
static int
qk_split(const char *query, struct qk_pair *pairs)
{
    int         n = 0;
    const char *p = query, *end = query + strlen(query);

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;
        struct qk_pair t;
        if ((size_t)(ke - p) >= QK_NAME_CAP)
            return -1;
        t.nlen = of_url_decode(t.name, p, (size_t)(ke - p), OF_URL_FORM, NULL);
        t.name[t.nlen] = '\0';
        t.nlen = strlen(t.name);      /* the parser compares as a C string */
        t.has_eq = eq != NULL;
        t.val = eq ? eq + 1 : pe;
        t.vlen = (size_t)(pe - t.val);
        int i = 0;
        while (i < n && !(pairs[i].nlen == t.nlen && memcmp(pairs[i].name, t.name, t.nlen) == 0))
            i++;
        if (i == n && n++ == QK_MAX_PAIRS)
            return -1;
        pairs[i] = t;
        p = pe + 1;
    }
    return n;
}

static int
qk_cmp(const struct qk_pair *a, const struct qk_pair *b)
{
    size_t m = a->nlen < b->nlen ? a->nlen : b->nlen;
    int    c = memcmp(a->name, b->name, m);
    return c != 0 ? c : (a->nlen > b->nlen) - (a->nlen < b->nlen);
}

size_t
hdl_cache_query_key(const char *query, char *buf)
{
    struct qk_pair pairs[QK_MAX_PAIRS];
    int            n = query != NULL ? qk_split(query, pairs) : 0;
    size_t         o = 0;

    if (n < 0)
        return 0;
    for (int i = 1; i < n; i++)           /* insertion sort: n <= 16 */
        for (int j = i; j > 0 && qk_cmp(&pairs[j - 1], &pairs[j]) > 0; j--) {
            struct qk_pair t = pairs[j];
            pairs[j] = pairs[j - 1];
            pairs[j - 1] = t;
        }
    buf[o++] = 'Q';                       /* the empty query is a key too */
    for (int i = 0; i < n; i++) {
        /* Length-framed, so no name or value can imitate a separator. */
        if (pairs[i].vlen > 255 || o + 3 + pairs[i].nlen + pairs[i].vlen > HDL_CACHE_KEY_CAP)
            return 0;
        buf[o++] = (char)pairs[i].nlen;
        memcpy(buf + o, pairs[i].name, pairs[i].nlen);
        o += pairs[i].nlen;
        buf[o++] = pairs[i].has_eq ? '=' : '-';
        buf[o++] = (char)pairs[i].vlen;
        memcpy(buf + o, pairs[i].val, pairs[i].vlen);
        o += pairs[i].vlen;
    }
    return o;
}

bool
hdl_etag_match(const char *inm, const char *etag)
{
    size_t      elen = strlen(etag);
    const char *p = inm;

    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (*p != '"') {                  /* not an entity-tag: skip it */
            p = strchr(p, ',');
            continue;
        }
        const char *q = strchr(p + 1, '"');
        if (q == NULL)
            return false;
        if ((size_t)(q + 1 - p) == elen && memcmp(p, etag, elen) == 0)
            return true;
        p = q + 1;
    }
    return false;
}

void
hdl_reply_tagged(struct hdl_req *r, const char *body, size_t len, const char *etag)
{
    const char *inm = r->io->header(r, "If-None-Match");

    r->io->add_header(r, "ETag", etag);
    if (inm != NULL && hdl_etag_match(inm, etag))
        r->io->send(r, 304, NULL, "", 0);
    else
        r->io->send(r, 200, "application/json", body, len);
}

const char *
hdl_render(struct hdl_req *r, json_t *body, char *buf, size_t cap, size_t *len)
{
    size_t n = body != NULL ? json_dumpb(body, buf, cap, JSON_COMPACT) : 0;
    if (n > cap) {
        buf = of_mem_alloc(r->mem, n);
        n = json_dumpb(body, buf, n, JSON_COMPACT);
    }
    json_decref(body);
    *len = n;
    return n > 0 ? buf : NULL;
}
