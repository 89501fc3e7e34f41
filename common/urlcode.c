/*
 * urlcode.c -- see urlcode.h.
 */
#include "common/urlcode.h"

#include <string.h>

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t
of_url_decode(char *out, const char *src, size_t len, enum of_url_mode mode, bool *exact)
{
    size_t o = 0;
    bool   ok = true;

    for (size_t i = 0; i < len; i++) {
        if (src[i] == '+' && mode == OF_URL_FORM) {
            out[o++] = ' ';
            continue;
        }
        if (src[i] != '%') {
            out[o++] = src[i];
            continue;
        }
        int hi = i + 2 < len ? hexval(src[i + 1]) : -1;
        int lo = i + 2 < len ? hexval(src[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            out[o++] = '%';         /* not an escape: kept as written */
            ok = false;
            continue;
        }
        if ((hi | lo) == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            ok = false;
        } else {
            out[o++] = (char)(hi * 16 + lo);
        }
        i += 2;
    }
    out[o] = '\0';
    if (exact != NULL)
        *exact = ok;
    return o;
}
