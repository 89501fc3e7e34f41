/*
 * jsonw.c -- see jsonw.h. Owns the buffer growth and the string escaping.
 */
#include "common/jsonw.h"

#include <stdlib.h>
#include <string.h>

#define JW_MIN_CAP 4096

void
jw_init(struct jsonw *w)
{
    memset(w, 0, sizeof(*w));
}

void
jw_cleanup(struct jsonw *w)
{
    free(w->buf);
    jw_init(w);
}

void
jw_reset(struct jsonw *w)
{
    w->len = 0;
    w->failed = false;
}

bool
jw_reserve(struct jsonw *w, size_t n)
{
    if (w->failed)
        return false;
    if (w->cap - w->len >= n)
        return true;
    size_t cap = w->cap > 0 ? w->cap : JW_MIN_CAP;
    while (cap - w->len < n) {
        if (cap > SIZE_MAX / 2) {
            w->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(w->buf, cap);
    if (p == NULL) {
        w->failed = true;
        return false;
    }
    w->buf = p;
    w->cap = cap;
    return true;
}

void
jw_raw(struct jsonw *w, const char *s, size_t n)
{
    if (!jw_reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not one
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t
utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t        n;
    uint32_t      cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* One byte (or sequence) that needs care; returns how many input bytes it took. */
static size_t
str_special(struct jsonw *w, const unsigned char *s)
{
    static const char hex[] = "0123456789abcdef";
    char              esc[6] = { '\\', 'u', '0', '0', 0, 0 };
    switch (s[0]) {
    case '"':  JW_LIT(w, "\\\""); return 1;
    case '\\': JW_LIT(w, "\\\\"); return 1;
    case '\n': JW_LIT(w, "\\n"); return 1;
    case '\r': JW_LIT(w, "\\r"); return 1;
    case '\t': JW_LIT(w, "\\t"); return 1;
    default:   break;
    }
    if (s[0] < 0x20) {
        esc[4] = hex[s[0] >> 4];
        esc[5] = hex[s[0] & 15];
        jw_raw(w, esc, sizeof(esc));
        return 1;
    }
    size_t n = utf8_len(s);
    if (n == 0) {
        JW_LIT(w, "\xef\xbf\xbd");     /* U+FFFD */
        return 1;
    }
    jw_raw(w, (const char *)s, n);
    return n;
}

void
jw_str(struct jsonw *w, const char *str)
{
    const unsigned char *s = (const unsigned char *)(str != NULL ? str : "");
    JW_LIT(w, "\"");
    while (*s != '\0') {
        size_t run = 0;             /* bytes that go out as they are */
        while (s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        jw_raw(w, (const char *)s, run);
        s += run;
        if (*s != '\0')
            s += str_special(w, s);
    }
    JW_LIT(w, "\"");
}

void
jw_u64(struct jsonw *w, uint64_t v)
{
    char   d[20];
    size_t i = sizeof(d);
    do {
        d[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    jw_raw(w, d + i, sizeof(d) - i);
}

void
jw_i64(struct jsonw *w, int64_t v)
{
    if (v < 0) {
        JW_LIT(w, "-");
        jw_u64(w, (uint64_t)0 - (uint64_t)v);
    } else {
        jw_u64(w, (uint64_t)v);
    }
}

void
jw_hex(struct jsonw *w, const uint8_t *b, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (n > SIZE_MAX / 2 || !jw_reserve(w, 2 * n))
        return;
    char *o = w->buf + w->len;
    for (size_t i = 0; i < n; i++) {
        o[2 * i] = hex[b[i] >> 4];
        o[2 * i + 1] = hex[b[i] & 15];
    }
    w->len += 2 * n;
}
