/*
 * hash.h -- SHA-256 as lower-case hex, for fingerprints (idempotency keys).
 *
 * Thin wrappers over libsodium's crypto_hash_sha256 so that domain/ can hash
 * without including <sodium.h>. Not for passwords (see worker/hasher.h) and
 * not a MAC (see worker/jwt.h).
 */
#ifndef OF_HASH_H
#define OF_HASH_H

#include <stddef.h>

#define OF_SHA256_HEX_LEN 64

/* out receives 64 hex chars + NUL. */
void of_sha256_hex(const void *data, size_t len, char out[65]);

/* SHA-256 over n byte strings, each framed by its length as 8 big-endian
 * bytes, so ("ab","c") and ("a","bc") hash differently. parts[i] may be
 * NULL only when lens[i] is 0. */
void of_sha256_hex_parts(const void *const *parts, const size_t *lens, size_t n,
                         char out[65]);

#endif
