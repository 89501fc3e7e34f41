/*
 * jwt.h -- access tokens: JWT HS256 (libjwt) with claims sub, role, iat, exp.
 *
 * The algorithm is pinned: a token is accepted only if its header says
 * exactly "alg":"HS256" (checked on the raw header, before libjwt sees it,
 * and again after decoding), its HMAC-SHA256 verifies with the secret, exp is
 * an integer in the future, and sub is a positive decimal user id. Anything
 * else -- alg none/HS384/HS512/RS*, bad signature, expired, missing claims,
 * garbage, over JWT_TOKEN_MAX bytes -- is OF_UNAUTH, with no detail, as the
 * 401 body is the same for all of them. Nothing here logs a token or secret.
 * Thread-safe; no global state. (libjwt owns the jwt_ prefix too, and
 * libjwt 1.10 exports neither jwt_issue nor jwt_verify.)
 */
#ifndef OF_WORKER_JWT_H
#define OF_WORKER_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "common/of.h"

#define JWT_TOKEN_MAX  4096   /* bytes; longer tokens are refused unparsed */
#define JWT_ROLE_CAP   16     /* role claim incl. NUL */

/* Writes a NUL-terminated token for user_id/role valid for ttl seconds from
 * now into out. ttl <= 0 makes an already expired token (tests only).
 * OF_OK, or OF_ERR on a bad argument, out of memory or cap too small. */
int jwt_issue(const unsigned char *secret, size_t len, int64_t user_id,
              const char *role, long ttl, char *out, size_t cap);

/* Verifies token (NUL-terminated). On OF_OK *user_id and role (the claim as
 * issued, NUL-terminated) are set; the caller still loads the user, whose
 * role in the database is the one that counts. Else OF_UNAUTH. */
int jwt_verify(const unsigned char *secret, size_t len, const char *token,
               int64_t *user_id, char role[JWT_ROLE_CAP]);

#endif
