/*
 * webhook.h -- the pure parts of delivery: the Standard Webhooks 1.0
 * signature, the retry schedule with jitter, and the address classifier
 * behind the SSRF rule. No I/O; unit-tested in tests/unit/test_jobs.c.
 */
#ifndef OF_JOBS_WEBHOOK_H
#define OF_JOBS_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* "v1,<base64 HMAC-SHA256(key, id + "." + ts + "." + body)>" into out, key
 * being the base64-decoded bytes of secret after "whsec_". OF_OK, or OF_ERR
 * when the secret is not whsec_<base64> or out is too small (>= 48 bytes is
 * enough). */
#define WEBHOOK_SIG_MAX 64
int webhook_sign(const char *secret, const char *msg_id, int64_t ts, const char *body,
                 size_t body_len, char *out, size_t cap);

/* After attempt number `attempt` (1 = the first) failed: the seconds until
 * the next one, schedule[attempt-1] scaled by 0.9 + 0.2 * u (u in [0, 1):
 * +-10 % jitter), or a negative value when the schedule is exhausted (dead). */
double jobs_retry_delay(const int *schedule, size_t n, int attempt, double u);

/* Is sa a public unicast address? False for unspecified, loopback, private
 * (RFC 1918, CGNAT), link-local, unique-local, multicast, broadcast,
 * documentation/benchmark ranges, and IPv4-mapped/NAT64/6to4 forms of those. */
bool jobs_addr_public(const struct sockaddr *sa);

#endif
