/*
 * test_jwt.c -- access tokens (worker/jwt.h): what verifies and everything
 * that must not -- expired, forged, alg none/HS384/HS512/RS256, missing or
 * odd claims, garbage, oversized.
 *
 * Hostile tokens are built by hand (libsodium's HMAC-SHA256 and base64url)
 * so the test does not depend on libjwt agreeing to make them, and with
 * libjwt itself for the other HMACs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <jwt.h>
#include <sodium.h>

#include "worker/jwt.h"

static const unsigned char SECRET[] = "0123456789abcdef0123456789abcdef-test";
#define SECRET_LEN (sizeof(SECRET) - 1)
static const unsigned char OTHER[] = "fedcba9876543210fedcba9876543210-other";
#define OTHER_LEN (sizeof(OTHER) - 1)

static char tok[8192];

static void
b64url(const void *bin, size_t len, char *out, size_t cap)
{
    assert_true(sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING) <= cap);
    sodium_bin2base64(out, cap, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* header.payload.HMAC-SHA256(key) -- whatever the header claims. */
static const char *
forge(const char *header, const char *payload, const unsigned char *key, size_t keylen)
{
    char h[1024], p[4096], sig[128];
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;

    b64url(header, strlen(header), h, sizeof(h));
    b64url(payload, strlen(payload), p, sizeof(p));
    snprintf(tok, sizeof(tok), "%s.%s", h, p);
    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)tok, strlen(tok));
    crypto_auth_hmacsha256_final(&st, mac);
    b64url(mac, sizeof(mac), sig, sizeof(sig));
    size_t n = strlen(tok);
    snprintf(tok + n, sizeof(tok) - n, ".%s", sig);
    return tok;
}

static const char *
payload_with(const char *sub_json, long exp_delta)
{
    static char p[512];
    long now = (long)time(NULL);
    snprintf(p, sizeof(p), "{\"sub\":%s,\"role\":\"user\",\"iat\":%ld,\"exp\":%ld}",
             sub_json, now, now + exp_delta);
    return p;
}

#define HS256_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static int
verify(const char *t, int64_t *id, char role[JWT_ROLE_CAP])
{
    return jwt_verify(SECRET, SECRET_LEN, t, id, role);
}

static int
verify_only(const char *t)
{
    int64_t id;
    char    role[JWT_ROLE_CAP];
    return verify(t, &id, role);
}

/* A token signed by libjwt with another algorithm but our key. */
static const char *
libjwt_token(jwt_alg_t alg, int with_sub, long exp_delta)
{
    jwt_t *j = NULL;
    long   now = (long)time(NULL);

    assert_int_equal(jwt_new(&j), 0);
    if (with_sub)
        assert_int_equal(jwt_add_grant(j, "sub", "42"), 0);
    assert_int_equal(jwt_add_grant(j, "role", "admin"), 0);
    assert_int_equal(jwt_add_grant_int(j, "iat", now), 0);
    assert_int_equal(jwt_add_grant_int(j, "exp", now + exp_delta), 0);
    if (alg == JWT_ALG_NONE)
        assert_int_equal(jwt_set_alg(j, alg, NULL, 0), 0);
    else
        assert_int_equal(jwt_set_alg(j, alg, SECRET, (int)SECRET_LEN), 0);
    char *s = jwt_encode_str(j);
    assert_non_null(s);
    snprintf(tok, sizeof(tok), "%s", s);
    free(s);
    jwt_free(j);
    return tok;
}

/* ---- accepted ------------------------------------------------------------- */

static void
test_issued_token_verifies(void **st)
{
    (void)st;
    char    t[1024];
    int64_t id = 0;
    char    role[JWT_ROLE_CAP] = "";

    assert_int_equal(jwt_issue(SECRET, SECRET_LEN, 42, "admin", 3600, t, sizeof(t)), OF_OK);
    assert_int_equal(verify(t, &id, role), OF_OK);
    assert_int_equal(id, 42);
    assert_string_equal(role, "admin");
}

static void
test_issued_token_has_hs256_header_and_claims(void **st)
{
    (void)st;
    char   t[1024];
    jwt_t *j = NULL;

    assert_int_equal(jwt_issue(SECRET, SECRET_LEN, INT64_MAX, "user", 3600, t, sizeof(t)), OF_OK);
    assert_int_equal(jwt_decode(&j, t, SECRET, (int)SECRET_LEN), 0);
    assert_int_equal(jwt_get_alg(j), JWT_ALG_HS256);
    assert_string_equal(jwt_get_grant(j, "sub"), "9223372036854775807");
    assert_string_equal(jwt_get_grant(j, "role"), "user");
    long iat = jwt_get_grant_int(j, "iat");
    long exp = jwt_get_grant_int(j, "exp");
    assert_int_equal(exp - iat, 3600);
    assert_true(labs(iat - (long)time(NULL)) <= 2);
    jwt_free(j);

    int64_t id;
    char    role[JWT_ROLE_CAP];
    assert_int_equal(verify(t, &id, role), OF_OK);
    assert_int_equal(id, INT64_MAX);
}

static void
test_hand_made_hs256_verifies(void **st)
{
    (void)st;
    int64_t id = 0;
    char    role[JWT_ROLE_CAP];
    assert_int_equal(verify(forge(HS256_HDR, payload_with("\"7\"", 60), SECRET, SECRET_LEN),
                            &id, role), OF_OK);
    assert_int_equal(id, 7);
    assert_string_equal(role, "user");
}

/* ---- expiry --------------------------------------------------------------- */

static void
test_expired_token_401(void **st)
{
    (void)st;
    char t[1024];
    assert_int_equal(jwt_issue(SECRET, SECRET_LEN, 42, "user", -10, t, sizeof(t)), OF_OK);
    assert_int_equal(verify_only(t), OF_UNAUTH);
}

static void
test_exp_now_is_expired(void **st)
{
    (void)st;
    assert_int_equal(verify_only(forge(HS256_HDR, payload_with("\"7\"", 0), SECRET, SECRET_LEN)),
                     OF_UNAUTH);
}

static void
test_missing_exp_401(void **st)
{
    (void)st;
    assert_int_equal(verify_only(forge(HS256_HDR, "{\"sub\":\"7\",\"role\":\"user\"}",
                                       SECRET, SECRET_LEN)), OF_UNAUTH);
}

static void
test_exp_not_integer_401(void **st)
{
    (void)st;
    assert_int_equal(verify_only(forge(HS256_HDR,
        "{\"sub\":\"7\",\"role\":\"user\",\"exp\":\"99999999999\"}", SECRET, SECRET_LEN)), OF_UNAUTH);
    assert_int_equal(verify_only(forge(HS256_HDR,
        "{\"sub\":\"7\",\"role\":\"user\",\"exp\":99999999999.5}", SECRET, SECRET_LEN)), OF_UNAUTH);
    assert_int_equal(verify_only(forge(HS256_HDR,
        "{\"sub\":\"7\",\"role\":\"user\",\"exp\":null}", SECRET, SECRET_LEN)), OF_UNAUTH);
}

/* ---- signature ------------------------------------------------------------ */

static void
test_wrong_secret_401(void **st)
{
    (void)st;
    char t[1024];
    assert_int_equal(jwt_issue(OTHER, OTHER_LEN, 42, "admin", 3600, t, sizeof(t)), OF_OK);
    assert_int_equal(verify_only(t), OF_UNAUTH);
}

static void
test_tampered_payload_401(void **st)
{
    (void)st;
    char t[1024], evil[1024];
    assert_int_equal(jwt_issue(SECRET, SECRET_LEN, 42, "user", 3600, t, sizeof(t)), OF_OK);
    /* swap in a payload claiming sub 1 / admin, keep the old signature */
    const char *sig = strrchr(t, '.');
    char        hdr[256], pl[512];
    size_t      hl = (size_t)(strchr(t, '.') - t);
    memcpy(hdr, t, hl);
    hdr[hl] = '\0';
    long now = (long)time(NULL);
    char raw[256];
    snprintf(raw, sizeof(raw), "{\"sub\":\"1\",\"role\":\"admin\",\"iat\":%ld,\"exp\":%ld}", now, now + 3600);
    b64url(raw, strlen(raw), pl, sizeof(pl));
    snprintf(evil, sizeof(evil), "%s.%s%s", hdr, pl, sig);
    assert_int_equal(verify_only(evil), OF_UNAUTH);
}

static void
test_truncated_or_altered_signature_401(void **st)
{
    (void)st;
    char t[1024];
    assert_int_equal(jwt_issue(SECRET, SECRET_LEN, 42, "user", 3600, t, sizeof(t)), OF_OK);
    size_t n = strlen(t);
    t[n - 1] = t[n - 1] == 'A' ? 'B' : 'A';
    assert_int_equal(verify_only(t), OF_UNAUTH);
    t[n - 5] = '\0';
    assert_int_equal(verify_only(t), OF_UNAUTH);
}

/* ---- algorithm pinning ---------------------------------------------------- */

static void
test_alg_none_unsigned_401(void **st)
{
    (void)st;
    char h[128], p[512];
    const char *hdr = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
    const char *pay = payload_with("\"42\"", 3600);
    b64url(hdr, strlen(hdr), h, sizeof(h));
    b64url(pay, strlen(pay), p, sizeof(p));
    snprintf(tok, sizeof(tok), "%s.%s.", h, p);
    assert_int_equal(verify_only(tok), OF_UNAUTH);
}

static void
test_alg_none_from_libjwt_401(void **st)
{
    (void)st;
    assert_int_equal(verify_only(libjwt_token(JWT_ALG_NONE, 1, 3600)), OF_UNAUTH);
}

static void
test_alg_none_with_valid_hmac_401(void **st)
{
    (void)st;
    /* a real HS256 MAC over a header that says none */
    assert_int_equal(verify_only(forge("{\"alg\":\"none\"}", payload_with("\"42\"", 3600),
                                       SECRET, SECRET_LEN)), OF_UNAUTH);
}

static void
test_alg_hs512_same_key_401(void **st)
{
    (void)st;
    const char *t = libjwt_token(JWT_ALG_HS512, 1, 3600);
    /* libjwt itself accepts it with our key: the pin is ours to enforce */
    jwt_t *j = NULL;
    assert_int_equal(jwt_decode(&j, t, SECRET, (int)SECRET_LEN), 0);
    jwt_free(j);
    assert_int_equal(verify_only(t), OF_UNAUTH);
}

static void
test_alg_hs384_same_key_401(void **st)
{
    (void)st;
    assert_int_equal(verify_only(libjwt_token(JWT_ALG_HS384, 1, 3600)), OF_UNAUTH);
}

static void
test_alg_rs256_header_with_hmac_401(void **st)
{
    (void)st;
    assert_int_equal(verify_only(forge("{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
                                       payload_with("\"42\"", 3600), SECRET, SECRET_LEN)),
                     OF_UNAUTH);
}

static void
test_alg_case_and_type_401(void **st)
{
    (void)st;
    const char *pay = payload_with("\"42\"", 3600);
    assert_int_equal(verify_only(forge("{\"alg\":\"hs256\"}", pay, SECRET, SECRET_LEN)), OF_UNAUTH);
    assert_int_equal(verify_only(forge("{\"alg\":[\"HS256\"]}", pay, SECRET, SECRET_LEN)), OF_UNAUTH);
    assert_int_equal(verify_only(forge("{\"typ\":\"JWT\"}", pay, SECRET, SECRET_LEN)), OF_UNAUTH);
    assert_int_equal(verify_only(forge("[\"HS256\"]", pay, SECRET, SECRET_LEN)), OF_UNAUTH);
}

static void
test_alg_duplicate_key_401(void **st)
{
    (void)st;
    assert_int_equal(verify_only(forge("{\"alg\":\"HS256\",\"alg\":\"none\"}",
                                       payload_with("\"42\"", 3600), SECRET, SECRET_LEN)),
                     OF_UNAUTH);
}

/* ---- claims --------------------------------------------------------------- */

static void
test_missing_sub_401(void **st)
{
    (void)st;
    assert_int_equal(verify_only(libjwt_token(JWT_ALG_HS256, 0, 3600)), OF_UNAUTH);
}

static void
test_sub_not_a_number_401(void **st)
{
    (void)st;
    const char *bad[] = { "\"abc\"", "\"12a\"", "\"\"", "\" 7\"", "\"+7\"", "\"7.0\"",
                          "\"9223372036854775808\"" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (verify_only(forge(HS256_HDR, payload_with(bad[i], 3600), SECRET, SECRET_LEN)) != OF_UNAUTH)
            fail_msg("sub %s accepted", bad[i]);
}

static void
test_sub_not_positive_401(void **st)
{
    (void)st;
    assert_int_equal(verify_only(forge(HS256_HDR, payload_with("\"0\"", 3600), SECRET, SECRET_LEN)), OF_UNAUTH);
    assert_int_equal(verify_only(forge(HS256_HDR, payload_with("\"-5\"", 3600), SECRET, SECRET_LEN)), OF_UNAUTH);
}

static void
test_sub_json_number_401(void **st)
{
    (void)st;
    /* sub is a string claim (RFC 7519); a bare number is refused */
    assert_int_equal(verify_only(forge(HS256_HDR, payload_with("42", 3600), SECRET, SECRET_LEN)), OF_UNAUTH);
}

static void
test_missing_or_long_role_401(void **st)
{
    (void)st;
    long now = (long)time(NULL);
    char p[256];
    snprintf(p, sizeof(p), "{\"sub\":\"7\",\"exp\":%ld}", now + 60);
    assert_int_equal(verify_only(forge(HS256_HDR, p, SECRET, SECRET_LEN)), OF_UNAUTH);
    snprintf(p, sizeof(p), "{\"sub\":\"7\",\"role\":\"0123456789abcdef\",\"exp\":%ld}", now + 60);
    assert_int_equal(verify_only(forge(HS256_HDR, p, SECRET, SECRET_LEN)), OF_UNAUTH);
}

static void
test_payload_not_object_401(void **st)
{
    (void)st;
    assert_int_equal(verify_only(forge(HS256_HDR, "[1,2]", SECRET, SECRET_LEN)), OF_UNAUTH);
    assert_int_equal(verify_only(forge(HS256_HDR, "not json", SECRET, SECRET_LEN)), OF_UNAUTH);
}

/* ---- garbage -------------------------------------------------------------- */

static void
test_garbage_401(void **st)
{
    (void)st;
    const char *bad[] = {
        "", "abc", "a.b", "a.b.c", "..", "a..c", ".b.c", "a.b.", "a.b.c.d",
        "Bearer x.y.z", "eyJ hbGciOi.x.y", "\xff\xfe.\x01.z",
        "eyJhbGciOiJIUzI1NiJ9.e30.", "eyJhbGciOiJIUzI1NiJ9.!!!.abc",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (verify_only(bad[i]) != OF_UNAUTH)
            fail_msg("garbage #%zu accepted", i);
    assert_int_equal(verify_only(NULL), OF_UNAUTH);
}

static void
test_oversized_token_401(void **st)
{
    (void)st;
    /* a validly signed token just over 4 KiB, padded in a claim */
    static char pad[5000], pay[6000];
    memset(pad, 'x', 4000);
    pad[4000] = '\0';
    long now = (long)time(NULL);
    snprintf(pay, sizeof(pay), "{\"sub\":\"7\",\"role\":\"user\",\"exp\":%ld,\"pad\":\"%s\"}", now + 60, pad);
    char  *big = malloc(16384);
    char   h[128], p[8192];
    assert_non_null(big);
    b64url(HS256_HDR, strlen(HS256_HDR), h, sizeof(h));
    b64url(pay, strlen(pay), p, sizeof(p));
    snprintf(big, 16384, "%s.%s.sig", h, p);
    assert_true(strlen(big) > JWT_TOKEN_MAX);
    assert_int_equal(verify_only(big), OF_UNAUTH);
    free(big);
}

static void
test_empty_or_missing_secret_refused(void **st)
{
    (void)st;
    char    t[1024];
    int64_t id;
    char    role[JWT_ROLE_CAP];
    assert_int_equal(jwt_issue(SECRET, 0, 42, "user", 3600, t, sizeof(t)), OF_ERR);
    assert_int_equal(jwt_issue(NULL, 32, 42, "user", 3600, t, sizeof(t)), OF_ERR);
    assert_int_equal(jwt_issue(SECRET, SECRET_LEN, 42, "user", 3600, t, sizeof(t)), OF_OK);
    assert_int_equal(jwt_verify(SECRET, 0, t, &id, role), OF_UNAUTH);
    assert_int_equal(jwt_verify(NULL, 32, t, &id, role), OF_UNAUTH);
}

static void
test_issue_bad_arguments(void **st)
{
    (void)st;
    char t[1024], small[16];
    assert_int_equal(jwt_issue(SECRET, SECRET_LEN, 0, "user", 3600, t, sizeof(t)), OF_ERR);
    assert_int_equal(jwt_issue(SECRET, SECRET_LEN, -1, "user", 3600, t, sizeof(t)), OF_ERR);
    assert_int_equal(jwt_issue(SECRET, SECRET_LEN, 1, "0123456789abcdef", 3600, t, sizeof(t)), OF_ERR);
    assert_int_equal(jwt_issue(SECRET, SECRET_LEN, 1, "user", 3600, small, sizeof(small)), OF_ERR);
    assert_string_equal(small, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issued_token_verifies),
        cmocka_unit_test(test_issued_token_has_hs256_header_and_claims),
        cmocka_unit_test(test_hand_made_hs256_verifies),
        cmocka_unit_test(test_expired_token_401),
        cmocka_unit_test(test_exp_now_is_expired),
        cmocka_unit_test(test_missing_exp_401),
        cmocka_unit_test(test_exp_not_integer_401),
        cmocka_unit_test(test_wrong_secret_401),
        cmocka_unit_test(test_tampered_payload_401),
        cmocka_unit_test(test_truncated_or_altered_signature_401),
        cmocka_unit_test(test_alg_none_unsigned_401),
        cmocka_unit_test(test_alg_none_from_libjwt_401),
        cmocka_unit_test(test_alg_none_with_valid_hmac_401),
        cmocka_unit_test(test_alg_hs512_same_key_401),
        cmocka_unit_test(test_alg_hs384_same_key_401),
        cmocka_unit_test(test_alg_rs256_header_with_hmac_401),
        cmocka_unit_test(test_alg_case_and_type_401),
        cmocka_unit_test(test_alg_duplicate_key_401),
        cmocka_unit_test(test_missing_sub_401),
        cmocka_unit_test(test_sub_not_a_number_401),
        cmocka_unit_test(test_sub_not_positive_401),
        cmocka_unit_test(test_sub_json_number_401),
        cmocka_unit_test(test_missing_or_long_role_401),
        cmocka_unit_test(test_payload_not_object_401),
        cmocka_unit_test(test_garbage_401),
        cmocka_unit_test(test_oversized_token_401),
        cmocka_unit_test(test_empty_or_missing_secret_refused),
        cmocka_unit_test(test_issue_bad_arguments),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
