/*
 * jwt.c -- see jwt.h.
 *
 * libjwt 1.10 verifies with whatever HMAC the token's header names (HS384
 * and HS512 pass with our key) and does not check exp, so the header and the
 * claims are checked here: the raw header first (strict JSON, "alg" must be
 * the string "HS256"), then jwt_get_alg() after jwt_decode() as a second
 * fence, then exp and sub.
 */
#include "worker/jwt.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

#define JWT_HEADER_MAX 512   /* bytes of base64url; ours is 36 */

int
jwt_issue(const unsigned char *secret, size_t len, int64_t user_id,
          const char *role, long ttl, char *out, size_t cap)
{
    jwt_t *j = NULL;
    char  *tok = NULL;
    char   sub[24];
    int    rc = OF_ERR;

    if (secret == NULL || len == 0 || len > INT32_MAX || user_id <= 0 ||
        role == NULL || strlen(role) >= JWT_ROLE_CAP || out == NULL || cap == 0)
        return OF_ERR;
    long now = (long)time(NULL);
    snprintf(sub, sizeof(sub), "%lld", (long long)user_id);

    if (jwt_new(&j) != 0)
        goto fail;
    if (jwt_add_grant(j, "sub", sub) != 0 ||
        jwt_add_grant(j, "role", role) != 0 ||
        jwt_add_grant_int(j, "iat", now) != 0 ||
        jwt_add_grant_int(j, "exp", now + ttl) != 0)
        goto fail;
    if (jwt_set_alg(j, JWT_ALG_HS256, secret, (int)len) != 0)
        goto fail;
    tok = jwt_encode_str(j);
    if (tok == NULL)
        goto fail;
    if (of_strlcpy(out, tok, cap) >= cap) {
        out[0] = '\0';
        goto fail;
    }
    rc = OF_OK;
fail:
    free(tok);
    jwt_free(j);
    return rc;
}

static bool
b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* header.payload.signature, each a non-empty run of base64url chars.
 * Sets *hlen to the header's length. */
static bool
token_shape_ok(const char *t, size_t n, size_t *hlen)
{
    size_t dots[2];
    int    ndots = 0;

    for (size_t i = 0; i < n; i++) {
        if (t[i] == '.') {
            if (ndots == 2)
                return false;
            dots[ndots++] = i;
        } else if (!b64url_char(t[i])) {
            return false;
        }
    }
    if (ndots != 2 || dots[0] == 0 || dots[1] == dots[0] + 1 || dots[1] == n - 1)
        return false;
    *hlen = dots[0];
    return true;
}

/* The decoded header is a JSON object whose "alg" is the string "HS256". */
static bool
header_alg_ok(const char *h, size_t hlen)
{
    unsigned char raw[JWT_HEADER_MAX];
    size_t        rawlen = 0;

    if (hlen > JWT_HEADER_MAX)
        return false;
    if (sodium_base642bin(raw, sizeof(raw), h, hlen, NULL, &rawlen, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return false;
    json_t *js = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, NULL);
    if (js == NULL)
        return false;
    json_t *alg = json_object_get(js, "alg");
    bool    ok = json_is_object(js) && json_is_string(alg) &&
                 strcmp(json_string_value(alg), "HS256") == 0;
    json_decref(js);
    return ok;
}

/* exp must be present, an integer and in the future; sub a positive id;
 * role a short string. */
static int
claims_ok(jwt_t *j, int64_t *user_id, char role[JWT_ROLE_CAP])
{
    errno = 0;
    long exp = jwt_get_grant_int(j, "exp");
    if (errno != 0 || exp <= (long)time(NULL))
        return OF_UNAUTH;

    const char *sub = jwt_get_grant(j, "sub");
    int64_t     id;
    if (sub == NULL || !of_parse_id(sub, strlen(sub), &id))
        return OF_UNAUTH;

    const char *r = jwt_get_grant(j, "role");
    if (r == NULL || strlen(r) >= JWT_ROLE_CAP)
        return OF_UNAUTH;

    *user_id = id;
    of_strlcpy(role, r, JWT_ROLE_CAP);
    return OF_OK;
}

int
jwt_verify(const unsigned char *secret, size_t len, const char *token,
           int64_t *user_id, char role[JWT_ROLE_CAP])
{
    jwt_t *j = NULL;
    size_t hlen;
    int    rc = OF_UNAUTH;

    if (secret == NULL || len == 0 || len > INT32_MAX || token == NULL)
        return OF_UNAUTH;
    size_t n = strnlen(token, JWT_TOKEN_MAX + 1);
    if (n == 0 || n > JWT_TOKEN_MAX)
        return OF_UNAUTH;
    if (!token_shape_ok(token, n, &hlen) || !header_alg_ok(token, hlen))
        return OF_UNAUTH;

    if (jwt_decode(&j, token, secret, (int)len) != 0 || j == NULL)
        goto done;
    if (jwt_get_alg(j) != JWT_ALG_HS256)
        goto done;
    rc = claims_ok(j, user_id, role);
done:
    jwt_free(j);
    return rc;
}
