/*
 * netaddr.h -- addresses as settings name them: CIDR lists and listen
 * addresses.
 *
 * Owns the parsing of "10.0.0.0/8" / "::1" entries and of server.listen
 * ("host:port", "[v6]:port", "unix:/path"), and the match of a peer address
 * against a CIDR list. config/ parses with it when it loads the settings;
 * worker/ matches every request's peer with it (trusted proxies, /metrics),
 * and master/ parses server.listen with it before binding. No allocation,
 * no logging, no I/O.
 */
#ifndef OF_NETADDR_H
#define OF_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* An address or CIDR (forwarded_allow_ips, metrics.allow). */
struct netaddr_cidr {
    int           family;      /* AF_INET or AF_INET6 */
    unsigned char addr[16];    /* host bits past prefix cleared */
    int           prefix;      /* 0..32 or 0..128 */
};

/* Parse "127.0.0.1", "10.0.0.0/8", "::1", "::1/128" (host bits past the
 * prefix are cleared). Returns OF_OK or OF_ERR. */
int  netaddr_cidr_parse(const char *s, struct netaddr_cidr *out);

/* Does the address match any entry of the list? An IPv4-mapped IPv6 peer
 * (::ffff:a.b.c.d) matches IPv4 entries. sa may be NULL (no match). */
bool netaddr_cidr_match(const struct netaddr_cidr *list, size_t n, const struct sockaddr *sa);

/* A parsed server.listen: either a unix socket path or host + port. */
struct netaddr_listen {
    bool is_unix;
    char path[108];                /* sizeof(sun_path) */
    char host[256];                /* without the [] of an IPv6 literal */
    char port[8];
};

/* Parse "host:port", "[v6]:port" or "unix:/path". Returns OF_OK or OF_ERR. */
int  netaddr_listen_parse(const char *s, struct netaddr_listen *out);

#endif
