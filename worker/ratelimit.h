/*
 * ratelimit.h -- rate limits from config, over the scoreboard's shared token
 * buckets so they hold across all workers of this master. 0 = off.
 */
#ifndef OF_RATELIMIT_H
#define OF_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct of_scoreboard;
struct cfg_rate_limit;

/* The per-IP bucket name of a client address: an IPv6 address stands for
 * its /64 (one subscriber's prefix: rotating inside it changes nothing), an
 * IPv4-mapped one for its IPv4 address; IPv4 as is. */
void ratelimit_ip_key(const char *ip, char *out, size_t cap);

/* Each returns true when allowed; on false, *retry_after is set (seconds). */
bool ratelimit_allow_login_ip(struct of_scoreboard *sb, const struct cfg_rate_limit *rl,
                              const char *ip, int *retry_after);
/* Registrations per client IP: each queues an argon2id hash; the same
 * budget as logins (rate_limit.login_per_minute), its own bucket. */
bool ratelimit_allow_register_ip(struct of_scoreboard *sb, const struct cfg_rate_limit *rl,
                                 const char *ip, int *retry_after);
bool ratelimit_allow_login_user(struct of_scoreboard *sb, const struct cfg_rate_limit *rl,
                                const char *username, int *retry_after);
bool ratelimit_allow_write(struct of_scoreboard *sb, const struct cfg_rate_limit *rl,
                           int64_t user_id, int *retry_after);

#endif
