/*
 * webhook.c -- see webhook.h: signing, the retry arithmetic and the address
 * classifier.
 */
#include "jobs/webhook.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sodium.h>
#include <sys/socket.h>

#include "common/of.h"

#define WHSEC_PREFIX "whsec_"
#define WHSEC_KEY_MAX 256

int
webhook_sign(const char *secret, const char *msg_id, int64_t ts, const char *body,
             size_t body_len, char *out, size_t cap)
{
    unsigned char key[WHSEC_KEY_MAX], mac[crypto_auth_hmacsha256_BYTES];
    size_t        klen = 0, plen = strlen(WHSEC_PREFIX);
    char          tsbuf[32];

    if (secret == NULL || strncmp(secret, WHSEC_PREFIX, plen) != 0 ||
        cap < 3 + sodium_base64_ENCODED_LEN(sizeof(mac), sodium_base64_VARIANT_ORIGINAL))
        return OF_ERR;
    const char *b64 = secret + plen;
    if (sodium_base642bin(key, sizeof(key), b64, strlen(b64), NULL, &klen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 || klen == 0)
        return OF_ERR;
    int tn = snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts);

    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, klen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg_id, strlen(msg_id));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)tsbuf, (size_t)tn);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, body_len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(key, sizeof(key));
    sodium_memzero(&st, sizeof(st));

    memcpy(out, "v1,", 3);
    sodium_bin2base64(out + 3, cap - 3, mac, sizeof(mac), sodium_base64_VARIANT_ORIGINAL);
    return OF_OK;
}

double
jobs_retry_delay(const int *schedule, size_t n, int attempt, double u)
{
    if (attempt < 1 || (size_t)attempt > n)
        return -1.0;
    if (u < 0.0)
        u = 0.0;
    if (u >= 1.0)
        u = 0.999999;
    return (double)schedule[attempt - 1] * (0.9 + 0.2 * u);
}

/* ---- the address classifier ---- */

struct v4net { uint32_t net; int bits; };

static const struct v4net v4_blocked[] = {
    { 0x00000000u, 8 },   /* "this network", 0.0.0.0 */
    { 0x0A000000u, 8 },   /* 10/8 */
    { 0x64400000u, 10 },  /* 100.64/10 CGNAT */
    { 0x7F000000u, 8 },   /* loopback */
    { 0xA9FE0000u, 16 },  /* link-local */
    { 0xAC100000u, 12 },  /* 172.16/12 */
    { 0xC0000000u, 24 },  /* IETF protocol assignments */
    { 0xC0000200u, 24 },  /* TEST-NET-1 */
    { 0xC0A80000u, 16 },  /* 192.168/16 */
    { 0xC6120000u, 15 },  /* benchmarking */
    { 0xC6336400u, 24 },  /* TEST-NET-2 */
    { 0xCB007100u, 24 },  /* TEST-NET-3 */
    { 0xE0000000u, 4 },   /* multicast */
    { 0xF0000000u, 4 },   /* reserved + broadcast */
};

static bool
v4_public(uint32_t a)
{
    for (size_t i = 0; i < OF_ARRAY_LEN(v4_blocked); i++) {
        uint32_t mask = 0xFFFFFFFFu << (32 - v4_blocked[i].bits);
        if ((a & mask) == v4_blocked[i].net)
            return false;
    }
    return true;
}

static uint32_t
be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool
v6_public(const uint8_t *b)
{
    static const uint8_t zero[12] = { 0 };
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };

    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return v4_public(be32_at(b + 12));
    if (memcmp(b, zero, 12) == 0)
        return false;                     /* ::, ::1, IPv4-compatible (deprecated) */
    if (b[0] == 0xff)
        return false;                     /* multicast */
    if ((b[0] & 0xfe) == 0xfc)
        return false;                     /* unique-local fc00::/7 */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return false;                     /* link-local fe80::/10 */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
        return false;                     /* site-local fec0::/10 (deprecated) */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
        return false;                     /* documentation 2001:db8::/32 */
    if (b[0] == 0x20 && b[1] == 0x02)
        return v4_public(be32_at(b + 2)); /* 6to4 2002::/16 embeds an IPv4 */
    if (b[0] == 0x01 && b[1] == 0 && memcmp(b + 2, zero, 6) == 0)
        return false;                     /* discard-only 100::/64 */
    return true;
}

bool
jobs_addr_public(const struct sockaddr *sa)
{
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)(const void *)sa;
        return v4_public(ntohl(v4->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)(const void *)sa;
        return v6_public(v6->sin6_addr.s6_addr);
    }
    return false;
}
