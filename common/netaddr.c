/*
 * netaddr.c -- see netaddr.h.
 *
 * A CIDR is stored with its host bits cleared, so a match is a plain
 * prefix compare of the peer's bytes; an IPv4-mapped IPv6 peer is also
 * compared as IPv4.
 */
#include "common/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/of.h"
#include "common/util.h"

int
netaddr_cidr_parse(const char *s, struct netaddr_cidr *out)
{
    char        buf[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(s, '/');
    size_t      alen = slash != NULL ? (size_t)(slash - s) : strlen(s);

    if (alen == 0 || alen >= sizeof(buf))
        return OF_ERR;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        out->prefix = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        out->prefix = 128;
    } else {
        return OF_ERR;
    }
    if (slash != NULL) {
        int64_t p;
        if (of_parse_i64(slash + 1, strlen(slash + 1), 0, out->prefix, &p) != 0)
            return OF_ERR;
        out->prefix = (int)p;
    }
    /* clear host bits so matching is a plain prefix compare */
    int nbytes = out->family == AF_INET ? 4 : 16;
    for (int i = 0; i < nbytes; i++) {
        int bits = out->prefix - i * 8;
        if (bits >= 8)
            continue;
        out->addr[i] &= bits <= 0 ? 0 : (unsigned char)(0xff << (8 - bits));
    }
    return OF_OK;
}

static bool
netaddr_prefix_eq(const unsigned char *a, const unsigned char *b, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char m = (unsigned char)(0xff << (8 - rest));
    return (a[full] & m) == (b[full] & m);
}

bool
netaddr_cidr_match(const struct netaddr_cidr *list, size_t n, const struct sockaddr *sa)
{
    unsigned char v4[4], v6[16];
    bool          have4 = false, have6 = false;

    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        memcpy(v4, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        have4 = true;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        memcpy(v6, a, 16);
        have6 = true;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(v4, v6 + 12, 4);
            have4 = true;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (list[i].family == AF_INET && have4 && netaddr_prefix_eq(list[i].addr, v4, list[i].prefix))
            return true;
        if (list[i].family == AF_INET6 && have6 && netaddr_prefix_eq(list[i].addr, v6, list[i].prefix))
            return true;
    }
    return false;
}

int
netaddr_listen_parse(const char *s, struct netaddr_listen *out)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(s, "unix:", 5) == 0) {
        const char *path = s + 5;
        size_t      len = strlen(path);
        if (len == 0 || len >= sizeof(out->path))
            return OF_ERR;
        out->is_unix = true;
        memcpy(out->path, path, len + 1);
        return OF_OK;
    }

    const char *host = s, *hend, *colon;
    if (s[0] == '[') {
        hend = strchr(s, ']');
        if (hend == NULL || hend[1] != ':')
            return OF_ERR;
        host = s + 1;
        colon = hend + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return OF_ERR;
        hend = colon;
        if (memchr(s, ':', (size_t)(colon - s)) != NULL)
            return OF_ERR;   /* bare IPv6 literal: must be [v6]:port */
    }
    size_t hlen = (size_t)(hend - host);
    if (hlen == 0 || hlen >= sizeof(out->host))
        return OF_ERR;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    if (s[0] == '[') {
        struct in6_addr a6;
        if (inet_pton(AF_INET6, out->host, &a6) != 1)
            return OF_ERR;
    }
    for (size_t i = 0; i < hlen; i++) {
        char c = out->host[i];
        if (c == ' ' || c == '/' || c == '[' || c == ']')
            return OF_ERR;
    }

    const char *port = colon + 1;
    int64_t     p;
    if (of_parse_i64(port, strlen(port), 1, 65535, &p) != 0)
        return OF_ERR;
    snprintf(out->port, sizeof(out->port), "%d", (int)p);
    return OF_OK;
}
