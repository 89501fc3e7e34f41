/*
 * util.c -- see util.h.
 */
#include "common/util.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int
of_parse_i64(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
    size_t i = 0;
    bool   neg = false;

    if (len == 0)
        return -1;
    if (s[0] == '-') {
        if (min >= 0 || len == 1)
            return -1;
        neg = true;
        i = 1;
    }
    /* accumulate as negative so INT64_MIN is representable */
    int64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        int d = s[i] - '0';
        if (v < (INT64_MIN + d) / 10)
            return -1;
        v = v * 10 - d;
    }
    if (!neg) {
        if (v == INT64_MIN)
            return -1;
        v = -v;
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

bool
of_parse_id(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 19 || s[0] == '-')
        return false;
    return of_parse_i64(s, len, 1, INT64_MAX, out) == 0;
}

size_t
of_strlcpy(char *dst, const char *src, size_t cap)
{
    size_t n = strlen(src);
    if (cap > 0) {
        size_t c = n < cap - 1 ? n : cap - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

uint64_t
of_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double
of_wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
of_rfc3339_now(char *buf, size_t cap)
{
    /* The seconds part is formatted once per second, per process. */
    static time_t    last_sec = -1;
    static char      prefix[24];
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != last_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(prefix, sizeof(prefix), "%Y-%m-%dT%H:%M:%S", &tm);
        last_sec = ts.tv_sec;
    }
    snprintf(buf, cap, "%s.%06ldZ", prefix, ts.tv_nsec / 1000);
}

long
of_utf8_len(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    long   count = 0;
    size_t i = 0;

    while (i < len) {
        unsigned c = p[i];
        size_t   n;
        uint32_t cp;
        if (c < 0x80) {
            if (c == 0)
                return -1;
            i++; count++; continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1; cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2; cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3; cp = c & 0x07;
        } else {
            return -1;
        }
        if (n >= len - i)
            return -1;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return -1;
        i += n + 1;
        count++;
    }
    return count;
}

void
of_trim(const char **s, size_t *len)
{
    const char *p = *s;
    size_t      n = *len;
    while (n > 0 && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v')) {
        p++;
        n--;
    }
    while (n > 0) {
        char c = p[n - 1];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v')
            break;
        n--;
    }
    *s = p;
    *len = n;
}

bool
of_ct_equal(const void *a, const void *b, size_t len)
{
    return sodium_memcmp(a, b, len) == 0;
}

/* Random bytes for request ids come from a per-process buffer refilled 4 KiB
 * at a time, so a request costs no getrandom(2). A forked child must not
 * reuse its parent's buffer (two workers would hand out the same ids): the
 * atfork handler empties it. */
static unsigned char rnd_buf[4096];
static size_t        rnd_left;
static bool          rnd_atfork;

static void
rnd_forget(void)
{
    rnd_left = 0;
}

void
of_uuid4(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char     b[16];

    if (!rnd_atfork) {
        pthread_atfork(NULL, NULL, rnd_forget);
        rnd_atfork = true;
    }
    if (rnd_left < sizeof(b)) {
        randombytes_buf(rnd_buf, sizeof(rnd_buf));
        rnd_left = sizeof(rnd_buf);
    }
    memcpy(b, rnd_buf + sizeof(rnd_buf) - rnd_left, sizeof(b));
    rnd_left -= sizeof(b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

void
of_ascii_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}
