/*
 * cursor.c -- see cursor.h. Layout before base64url:
 *   version(1) kind(1) sort(1) fp(8, big-endian) id(8, big-endian) key(n) mac(32)
 * The MAC covers everything before it.
 */
#include "common/cursor.h"
#include "common/of.h"

#include <sodium.h>
#include <string.h>

#define CUR_VERSION 1u
#define CUR_HEAD    19u
#define CUR_MAC     crypto_auth_BYTES
#define CUR_MAXRAW  ((OF_CURSOR_MAX_TEXT / 4) * 3 + 3)

void
of_cursor_key(const void *secret, size_t len, unsigned char key[OF_CURSOR_KEYBYTES])
{
    unsigned char master[crypto_kdf_KEYBYTES];

    crypto_generichash(master, sizeof(master), secret, len, NULL, 0);
    crypto_kdf_derive_from_key(key, OF_CURSOR_KEYBYTES, 1, "ofcursor", master);
    sodium_memzero(master, sizeof(master));
}

uint64_t
of_cursor_fp(const char *filters)
{
    unsigned char h[8];
    uint64_t      v = 0;

    crypto_generichash(h, sizeof(h), (const unsigned char *)filters, strlen(filters), NULL, 0);
    for (size_t i = 0; i < sizeof(h); i++)
        v = v << 8 | h[i];
    return v;
}

static void
put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static uint64_t
get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

char *
of_cursor_encode(struct of_mem *m, const unsigned char key[OF_CURSOR_KEYBYTES],
                 const struct of_cursor *c)
{
    const char   *k = c->key != NULL ? c->key : "";
    size_t        klen = strlen(k);
    size_t        raw_len = CUR_HEAD + klen + CUR_MAC;
    unsigned char *raw = of_mem_alloc(m, raw_len);

    raw[0] = CUR_VERSION;
    raw[1] = (unsigned char)c->kind;
    raw[2] = (unsigned char)c->sort;
    put_u64(raw + 3, c->fp);
    put_u64(raw + 11, (uint64_t)c->id);
    memcpy(raw + CUR_HEAD, k, klen);
    crypto_auth(raw + CUR_HEAD + klen, raw, CUR_HEAD + klen, key);

    size_t cap = sodium_base64_ENCODED_LEN(raw_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char  *out = of_mem_alloc(m, cap);
    sodium_bin2base64(out, cap, raw, raw_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

int
of_cursor_decode(struct of_mem *m, const unsigned char key[OF_CURSOR_KEYBYTES],
                 const char *text, struct of_cursor *out)
{
    size_t tlen = strlen(text);
    if (tlen == 0 || tlen > OF_CURSOR_MAX_TEXT)
        return OF_INVALID;

    unsigned char *raw = of_mem_alloc(m, CUR_MAXRAW);
    size_t         raw_len = 0;
    const char    *end = NULL;
    if (sodium_base642bin(raw, CUR_MAXRAW, text, tlen, NULL, &raw_len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0
        || end != text + tlen || raw_len < CUR_HEAD + CUR_MAC)
        return OF_INVALID;

    size_t klen = raw_len - CUR_HEAD - CUR_MAC;
    if (crypto_auth_verify(raw + CUR_HEAD + klen, raw, CUR_HEAD + klen, key) != 0)
        return OF_INVALID;
    if (raw[0] != CUR_VERSION || memchr(raw + CUR_HEAD, '\0', klen) != NULL)
        return OF_INVALID;

    out->kind = raw[1];
    out->sort = raw[2];
    out->fp = get_u64(raw + 3);
    out->id = (int64_t)get_u64(raw + 11);
    out->key = of_mem_strndup(m, (const char *)raw + CUR_HEAD, klen);
    return OF_OK;
}
