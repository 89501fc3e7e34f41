/*
 * ratelimit.c -- see ratelimit.h.
 */
#include "worker/ratelimit.h"
#include "common/scoreboard.h"
#include "common/util.h"
#include "config/config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static bool
take(struct of_scoreboard *sb, const char *kind, const char *value, int per_minute,
     int *retry_after)
{
    if (per_minute <= 0)
        return true;
    double now = (double)of_mono_ns() / 1e9;
    return of_sb_rl_take(sb, of_sb_rl_key(sb, kind, value), per_minute, now, retry_after);
}

void
ratelimit_ip_key(const char *ip, char *out, size_t cap)
{
    struct in6_addr a6;
    char            txt[INET6_ADDRSTRLEN];

    if (inet_pton(AF_INET6, ip, &a6) != 1) {
        of_strlcpy(out, ip, cap);              /* IPv4 (or not an address) as is */
        return;
    }
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        inet_ntop(AF_INET, &a6.s6_addr[12], txt, sizeof(txt));
        of_strlcpy(out, txt, cap);
        return;
    }
    memset(&a6.s6_addr[8], 0, 8);               /* one subscriber = one /64 */
    inet_ntop(AF_INET6, &a6, txt, sizeof(txt));
    snprintf(out, cap, "%s/64", txt);
}

bool
ratelimit_allow_login_ip(struct of_scoreboard *sb, const struct cfg_rate_limit *rl,
                         const char *ip, int *retry_after)
{
    char key[64];
    ratelimit_ip_key(ip, key, sizeof(key));
    return take(sb, "login-ip", key, rl->login_per_minute, retry_after);
}

bool
ratelimit_allow_register_ip(struct of_scoreboard *sb, const struct cfg_rate_limit *rl,
                            const char *ip, int *retry_after)
{
    char key[64];
    ratelimit_ip_key(ip, key, sizeof(key));
    return take(sb, "register-ip", key, rl->login_per_minute, retry_after);
}

bool
ratelimit_allow_login_user(struct of_scoreboard *sb, const struct cfg_rate_limit *rl,
                           const char *username, int *retry_after)
{
    return take(sb, "login-user", username, rl->login_per_minute, retry_after);
}

bool
ratelimit_allow_write(struct of_scoreboard *sb, const struct cfg_rate_limit *rl,
                      int64_t user_id, int *retry_after)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%lld", (long long)user_id);
    return take(sb, "write", buf, rl->writes_per_minute, retry_after);
}
