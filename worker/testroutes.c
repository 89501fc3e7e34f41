/*
 * testroutes.c -- see testroutes.h.
 */
#include "worker/testroutes.h"
#include "worker/worker_int.h"
#include "store/testq.h"
#include "store/sql.h"
#include "common/util.h"
#include "common/log.h"
#include "common/scoreboard.h"
#include "worker/ratelimit.h"

#include <string.h>
#include <unistd.h>

static int64_t
ms_param(struct hdl_req *r)
{
    const char *s = hdl_query(r, "ms");
    int64_t     ms = 0;
    if (s == NULL || of_parse_i64(s, strlen(s), 0, 60000, &ms) != 0)
        return 100;
    return ms;
}

static void
slow_done(evutil_socket_t fd, short what, void *arg)
{
    OF_UNUSED(fd);
    OF_UNUSED(what);
    hdl_reply_json(arg, 200, json_pack("{s:s}", "status", "slow"));
}

void
test_slow(struct hdl_req *r)
{
    int64_t        ms = ms_param(r);
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    of_log_info("test slow: holding the request for %lld ms", (long long)ms);  /* tests wait on it */
    event_base_once(worker_self()->base, -1, EV_TIMEOUT, slow_done, r, &tv);
}

static void
sleep_done(const struct pool_res *res, void *arg)
{
    int rc = sql_rc(res);
    if (rc != OF_OK) {
        hdl_reply_rc(arg, rc);
        return;
    }
    hdl_reply_json(arg, 200, json_pack("{s:s}", "status", "slept"));
}

void
test_sleep_db(struct hdl_req *r)
{
    int64_t     ms = ms_param(r);
    const char *p[] = { of_mem_printf(r->mem, "%lld", (long long)ms) };
    of_log_info("test sleep_db: pg_sleep of %lld ms queued", (long long)ms);  /* tests wait on it */
    pool_query(worker_self()->pool, r->mem, &pool_stmt_test_sleep, p, sleep_done, r);
}

/* A worker parked inside a rate-limit critical section, as if it had been
 * killed there: the chaos test SIGKILLs it after the log line. */
void
test_rl_park(struct hdl_req *r)
{
    struct of_scoreboard *sb = worker_self()->sb;
    char                  ip[64];
    ratelimit_ip_key(r->client_ip, ip, sizeof(ip));
    uint64_t key = of_sb_rl_key(sb, "login-ip", ip);
    if (!of_sb_lock(&sb->rl[key % OF_SB_RL_SLOTS].lock, getpid())) {
        hdl_reply_error(r, 503, "lock busy");
        return;
    }
    of_log_info("test rl_park: holding the rate-limit lock of login-ip %s", ip);
    for (;;)
        pause();
}
