/*
 * test_ratelimit.c -- the login limits of issue 11 item 5 over a real
 * scoreboard (common/scoreboard.c, worker/ratelimit.c): an IPv6 client is
 * limited per /64, bucket keys are SipHash under a per-scoreboard seed, and
 * an exhausted bucket is never evicted -- keys that all land in its probe
 * window (as crafted FNV collisions did) cannot free a victim, and a full
 * window fails closed until one of its buckets has refilled.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/scoreboard.h"
#include "config/config.h"
#include "worker/ratelimit.h"

static void
test_ip_key(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } cases[] = {
        { "192.0.2.7",                   "192.0.2.7" },
        { "::ffff:192.0.2.7",            "192.0.2.7" },
        { "2001:db8:1:2::1",             "2001:db8:1:2::/64" },
        { "2001:db8:1:2:ffff:ee:dd:cc",  "2001:db8:1:2::/64" },
        { "::1",                         "::/64" },
        { "not-an-address",              "not-an-address" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        ratelimit_ip_key(cases[i].in, out, sizeof(out));
        assert_string_equal(out, cases[i].out);
    }
}

/* Rotating the interface id inside one /64 draws on the same bucket; the
 * next /64 has its own. */
static void
test_v6_rotation_shares_bucket(void **state)
{
    (void)state;
    struct of_scoreboard *sb = of_sb_create();
    struct cfg_rate_limit rl = { 0 };
    int                   retry = 0;
    char                  ip[64];

    assert_non_null(sb);
    rl.login_per_minute = 3;
    for (int i = 0; i < 3; i++) {
        snprintf(ip, sizeof(ip), "2001:db8:aa:bb:%x::%x", i + 1, i * 7 + 1);
        assert_true(ratelimit_allow_login_ip(sb, &rl, ip, &retry));
    }
    assert_false(ratelimit_allow_login_ip(sb, &rl, "2001:db8:aa:bb:dead:beef:0:1", &retry));
    assert_true(retry >= 1);
    assert_true(ratelimit_allow_login_ip(sb, &rl, "2001:db8:aa:bc::1", &retry));
    of_sb_destroy(sb);
}

static void
test_key_is_seeded(void **state)
{
    (void)state;
    struct of_scoreboard *a = of_sb_create(), *b = of_sb_create();
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(of_sb_rl_key(a, "login-user", "victim@x.io"),
                     of_sb_rl_key(a, "login-user", "victim@x.io"));
    assert_int_not_equal(of_sb_rl_key(a, "login-user", "victim@x.io"),
                         of_sb_rl_key(b, "login-user", "victim@x.io"));
    assert_int_not_equal(of_sb_rl_key(a, "login-user", "victim@x.io"),
                         of_sb_rl_key(a, "login-ip", "victim@x.io"));
    of_sb_destroy(a);
    of_sb_destroy(b);
}

/* The victim's bucket is exhausted; 64 keys that share its probe window
 * each take a token. None of them may reset the victim's bucket. */
static void
test_collisions_cannot_evict(void **state)
{
    (void)state;
    struct of_scoreboard *sb = of_sb_create();
    const uint64_t        victim = 12345;
    int                   retry = 0, denied = 0;
    double                now = 1000.0;

    assert_non_null(sb);
    for (int i = 0; i < 5; i++)
        assert_true(of_sb_rl_take(sb, victim, 5, now, &retry));
    assert_false(of_sb_rl_take(sb, victim, 5, now, &retry));
    for (uint64_t n = 1; n <= 64; n++) {
        if (!of_sb_rl_take(sb, victim + n * OF_SB_RL_SLOTS, 5, now + 0.001 * (double)n, &retry)) {
            denied++;          /* window full of partly spent buckets: fail closed */
            assert_true(retry >= 1);
        }
    }
    assert_int_equal(denied, 64 - (OF_SB_RL_PROBE - 1));
    assert_false(of_sb_rl_take(sb, victim, 5, now + 0.1, &retry));
    assert_true(retry >= 1);
    of_sb_destroy(sb);
}

/* Once the buckets of a full window have refilled, a new key reuses one. */
static void
test_full_window_reuses_refilled(void **state)
{
    (void)state;
    struct of_scoreboard *sb = of_sb_create();
    int                   retry = 0;

    assert_non_null(sb);
    for (uint64_t n = 0; n < OF_SB_RL_PROBE; n++)
        assert_true(of_sb_rl_take(sb, 7 + n * OF_SB_RL_SLOTS, 60, 10.0, &retry));
    assert_false(of_sb_rl_take(sb, 7 + 100 * OF_SB_RL_SLOTS, 60, 10.0, &retry));
    assert_int_equal(retry, 1);            /* one token per second at 60/min */
    assert_true(of_sb_rl_take(sb, 7 + 100 * OF_SB_RL_SLOTS, 60, 11.5, &retry));
    of_sb_destroy(sb);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ip_key),
        cmocka_unit_test(test_v6_rotation_shares_bucket),
        cmocka_unit_test(test_key_is_seeded),
        cmocka_unit_test(test_collisions_cannot_evict),
        cmocka_unit_test(test_full_window_reuses_refilled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
