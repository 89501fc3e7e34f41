/*
 * ratelimit.c -- see ratelimit.h.
 */
#include "worker/ratelimit.h"
#include "worker/worker_int.h"
#include "common/util.h"

#include <stdio.h>

static bool
take(struct worker *w, const char *kind, const char *value, int per_minute, int *retry_after)
{
    if (per_minute <= 0)
        return true;
    double now = (double)of_mono_ns() / 1e9;
    return of_sb_rl_take(w->sb, of_sb_rl_key(kind, value), per_minute, now, retry_after);
}

bool
ratelimit_allow_login_ip(struct worker *w, const char *ip, int *retry_after)
{
    return take(w, "login-ip", ip, w->cfg->rate_limit.login_per_minute, retry_after);
}

bool
ratelimit_allow_login_user(struct worker *w, const char *username, int *retry_after)
{
    return take(w, "login-user", username, w->cfg->rate_limit.login_per_minute, retry_after);
}

bool
ratelimit_allow_write(struct worker *w, int64_t user_id, int *retry_after)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%lld", (long long)user_id);
    return take(w, "write", buf, w->cfg->rate_limit.writes_per_minute, retry_after);
}
