/*
 * ratelimit.c -- see ratelimit.h.
 */
#include "worker/ratelimit.h"
#include "common/scoreboard.h"
#include "common/util.h"
#include "config/config.h"

#include <stdio.h>

static bool
take(struct of_scoreboard *sb, const char *kind, const char *value, int per_minute,
     int *retry_after)
{
    if (per_minute <= 0)
        return true;
    double now = (double)of_mono_ns() / 1e9;
    return of_sb_rl_take(sb, of_sb_rl_key(kind, value), per_minute, now, retry_after);
}

bool
ratelimit_allow_login_ip(struct of_scoreboard *sb, const struct cfg_rate_limit *rl,
                         const char *ip, int *retry_after)
{
    return take(sb, "login-ip", ip, rl->login_per_minute, retry_after);
}

bool
ratelimit_allow_register_ip(struct of_scoreboard *sb, const struct cfg_rate_limit *rl,
                            const char *ip, int *retry_after)
{
    return take(sb, "register-ip", ip, rl->login_per_minute, retry_after);
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
