/*
 * cursor.h -- the opaque cursors of keyset paging (API.md "Conventions").
 *
 * A cursor names a place in one ordered listing: which collection, which
 * sort, a fingerprint of the filters, and the last row's key (its sort
 * value as text, and its id). It travels as URL-safe base64 (no padding) and
 * carries an HMAC (libsodium crypto_auth) under a key derived from the JWT
 * secret, so every worker of every host reads every other's cursors and
 * nobody can forge one. Decoding checks the MAC before reading anything.
 */
#ifndef OF_CURSOR_H
#define OF_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "common/mem.h"

#define OF_CURSOR_KEYBYTES 32
#define OF_CURSOR_MAX_TEXT 2048   /* longest cursor text accepted */

struct of_cursor {
    unsigned    kind;        /* collection, 0..255 */
    unsigned    sort;        /* the collection's sort index, 0..255 */
    uint64_t    fp;          /* of_cursor_fp() of the filters */
    int64_t     id;          /* last row's id */
    const char *key;         /* last row's sort value as text ("" for id sorts) */
};

/* The cursor MAC key from the server secret (same secret, same key). */
void of_cursor_key(const void *secret, size_t len, unsigned char key[OF_CURSOR_KEYBYTES]);

/* Fingerprint of a canonical filter string (e.g. "in_stock=1|q=lamp"). */
uint64_t of_cursor_fp(const char *filters);

/* The cursor as text, in m. */
char *of_cursor_encode(struct of_mem *m, const unsigned char key[OF_CURSOR_KEYBYTES],
                       const struct of_cursor *c);

/* OF_OK with *out filled (out->key in m), or OF_INVALID: not base64url, too
 * short or long, a bad MAC (forged, tampered, truncated, other key), an
 * unknown version, or a key that is not text. */
int of_cursor_decode(struct of_mem *m, const unsigned char key[OF_CURSOR_KEYBYTES],
                     const char *text, struct of_cursor *out);

#endif
