/*
 * traceparent.c -- see traceparent.h. Owns the header grammar of W3C Trace
 * Context level 1: traceparent fields and tracestate list members.
 */
#include "common/traceparent.h"

#include <string.h>

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;     /* upper case is invalid too */
}

/* 2n lowercase hex digits into n bytes; false on any other character. */
static bool
unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool
all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

bool
tp_parse(const char *s, struct tp_ctx *out)
{
    uint8_t version;

    if (s == NULL || strnlen(s, TP_LEN + 1) < TP_LEN)
        return false;
    if (!unhex(s, &version, 1) || version == 0xff)
        return false;
    if (version == 0 && s[TP_LEN] != '\0')
        return false;
    if (version > 0 && s[TP_LEN] != '\0' && s[TP_LEN] != '-')
        return false;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-')
        return false;
    if (!unhex(s + 3, out->trace_id, 16) || !unhex(s + 36, out->parent_id, 8) ||
        !unhex(s + 53, &out->flags, 1))
        return false;
    return !all_zero(out->trace_id, 16) && !all_zero(out->parent_id, 8);
}

static bool
key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '*' || c == '/';
}

/* simple-key = lcalpha 0*255(keychar);
 * multi-tenant-key = (lcalpha / DIGIT) 0*240(keychar) "@" lcalpha 0*13(keychar) */
static bool
key_ok(const char *k, size_t len)
{
    const char *at = memchr(k, '@', len);
    if (at == NULL) {
        if (len < 1 || len > 256 || !(k[0] >= 'a' && k[0] <= 'z'))
            return false;
        for (size_t i = 1; i < len; i++)
            if (!key_char(k[i]))
                return false;
        return true;
    }
    size_t tl = (size_t)(at - k), sl = len - tl - 1;
    if (tl < 1 || tl > 241 || sl < 1 || sl > 14)
        return false;
    if (!((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= '0' && k[0] <= '9')) ||
        !(at[1] >= 'a' && at[1] <= 'z'))
        return false;
    for (size_t i = 1; i < tl; i++)
        if (!key_char(k[i]))
            return false;
    for (size_t i = 2; i <= sl; i++)
        if (!key_char(at[i]))
            return false;
    return true;
}

/* value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr;
 * nblk-chr = %x21-2B / %x2D-3C / %x3E-7E */
static bool
value_ok(const char *v, size_t len)
{
    if (len < 1 || len > 256 || v[len - 1] == ' ')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
            return false;
    }
    return true;
}

/* One list member (optional white space around it already trimmed); its
 * key's place and length go to *key, *klen. */
static bool
member_ok(const char *m, size_t len, const char **key, size_t *klen)
{
    const char *eq = memchr(m, '=', len);
    if (eq == NULL)
        return false;
    *key = m;
    *klen = (size_t)(eq - m);
    return key_ok(m, *klen) && value_ok(eq + 1, len - *klen - 1);
}

bool
tp_state_valid(const char *s)
{
    const char *keys[32];
    size_t      klens[32], nkeys = 0;
    size_t      total = strnlen(s, TP_STATE_MAX + 1);

    if (total > TP_STATE_MAX)
        return false;
    for (const char *p = s; p <= s + total; ) {
        const char *end = memchr(p, ',', (size_t)(s + total - p));
        if (end == NULL)
            end = s + total;
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (a < b) {
            if (nkeys == 32 || !member_ok(a, (size_t)(b - a), &keys[nkeys], &klens[nkeys]))
                return false;
            for (size_t i = 0; i < nkeys; i++)
                if (klens[i] == klens[nkeys] && memcmp(keys[i], keys[nkeys], klens[i]) == 0)
                    return false;
            nkeys++;
        }
        p = end + 1;
    }
    return true;
}

void
tp_hex(char *out, const uint8_t *b, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
}

void
tp_format(char *out, const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags)
{
    out[0] = '0';
    out[1] = '0';
    out[2] = '-';
    tp_hex(out + 3, trace_id, 16);
    out[35] = '-';
    tp_hex(out + 36, span_id, 8);
    out[52] = '-';
    tp_hex(out + 53, &flags, 1);
}
