/*
 * hash.c -- see hash.h.
 */
#include "common/hash.h"

#include <sodium.h>
#include <stdint.h>

static void
hash_hex(const unsigned char d[crypto_hash_sha256_BYTES], char out[65])
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < crypto_hash_sha256_BYTES; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

void
of_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char d[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(d, data, len);
    hash_hex(d, out);
}

void
of_sha256_hex_parts(const void *const *parts, const size_t *lens, size_t n,
                    char out[65])
{
    crypto_hash_sha256_state st;
    unsigned char            d[crypto_hash_sha256_BYTES];

    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < n; i++) {
        unsigned char    frame[8];
        unsigned long long l = lens[i];
        for (int k = 7; k >= 0; k--) {
            frame[k] = (unsigned char)(l & 0xff);
            l >>= 8;
        }
        crypto_hash_sha256_update(&st, frame, sizeof(frame));
        if (lens[i] > 0)
            crypto_hash_sha256_update(&st, parts[i], lens[i]);
    }
    crypto_hash_sha256_final(&st, d);
    hash_hex(d, out);
}
