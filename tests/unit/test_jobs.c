/*
 * test_jobs.c -- the pure parts of jobs/webhook.c: the Standard Webhooks
 * signature (the specification's published test vector), the retry
 * schedule with its +-10 % jitter, and the address classifier behind the
 * SSRF rule.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "common/of.h"
#include "jobs/webhook.h"

static void
test_signature_vector(void **state)
{
    (void)state;
    char        out[WEBHOOK_SIG_MAX];
    const char *body = "{\"test\": 2432232314}";
    assert_int_equal(webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                  "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
                                  out, sizeof(out)), OF_OK);
    assert_string_equal(out, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* another timestamp, another signature */
    char other[WEBHOOK_SIG_MAX];
    assert_int_equal(webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                  "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, strlen(body),
                                  other, sizeof(other)), OF_OK);
    assert_string_not_equal(out, other);
}

static void
test_signature_bad_secret(void **state)
{
    (void)state;
    char out[WEBHOOK_SIG_MAX];
    assert_int_equal(webhook_sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, "{}", 2, out, sizeof(out)), OF_ERR);
    assert_int_equal(webhook_sign("whsec_", "m", 1, "{}", 2, out, sizeof(out)), OF_ERR);
    assert_int_equal(webhook_sign("whsec_!!!notbase64", "m", 1, "{}", 2, out, sizeof(out)), OF_ERR);
    assert_int_equal(webhook_sign(NULL, "m", 1, "{}", 2, out, sizeof(out)), OF_ERR);
    assert_int_equal(webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, "{}", 2, out, 10), OF_ERR);
}

static void
test_retry_schedule(void **state)
{
    (void)state;
    const int s[] = { 5, 300, 1800 };
    /* attempt k failed -> schedule[k-1] * (0.9 .. 1.1) */
    assert_true(jobs_retry_delay(s, 3, 1, 0.0) >= 4.5 - 1e-9);
    assert_true(jobs_retry_delay(s, 3, 1, 0.0) <= 4.5 + 1e-9);
    assert_true(jobs_retry_delay(s, 3, 1, 0.5) > 5.0 - 1e-9 && jobs_retry_delay(s, 3, 1, 0.5) < 5.0 + 1e-9);
    assert_true(jobs_retry_delay(s, 3, 2, 0.999999) < 330.0);
    assert_true(jobs_retry_delay(s, 3, 2, 0.999999) > 329.9);
    assert_true(jobs_retry_delay(s, 3, 3, 0.25) > 1800 * 0.9);
    /* out-of-range u is clamped into the +-10 % band */
    assert_true(jobs_retry_delay(s, 3, 3, 7.0) <= 1800 * 1.1);
    assert_true(jobs_retry_delay(s, 3, 3, -1.0) >= 1800 * 0.9);
    /* after the last scheduled retry: dead */
    assert_true(jobs_retry_delay(s, 3, 4, 0.5) < 0);
    assert_true(jobs_retry_delay(s, 0, 1, 0.5) < 0);
    assert_true(jobs_retry_delay(s, 3, 0, 0.5) < 0);
}

static bool
pub(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in  *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
    else
        fail_msg("bad test address %s", ip);
    return jobs_addr_public((struct sockaddr *)&ss);
}

static void
test_address_classifier(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "0.0.0.0", "127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255",
        "192.168.1.1", "169.254.169.254", "100.64.0.1", "224.0.0.1", "239.255.255.250",
        "255.255.255.255", "240.0.0.1", "192.0.2.1", "198.18.0.1",
        "::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1",
        "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::7f00:1", "2001:db8::1",
        "2002:7f00:1::1", "::127.0.0.1",
    };
    static const char *const allowed[] = {
        "8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.128.0.1", "193.0.2.1",
        "2606:4700:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8", "64:ff9b::808:808",
    };
    for (size_t i = 0; i < OF_ARRAY_LEN(refused); i++)
        if (pub(refused[i]))
            fail_msg("%s classified public", refused[i]);
    for (size_t i = 0; i < OF_ARRAY_LEN(allowed); i++)
        if (!pub(allowed[i]))
            fail_msg("%s classified non-public", allowed[i]);
    struct sockaddr un = { .sa_family = AF_UNIX };
    assert_false(jobs_addr_public(&un));
    assert_false(jobs_addr_public(NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_vector),
        cmocka_unit_test(test_signature_bad_secret),
        cmocka_unit_test(test_retry_schedule),
        cmocka_unit_test(test_address_classifier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
