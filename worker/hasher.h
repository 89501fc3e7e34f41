/*
 * hasher.h -- argon2id password hashing off the event loop.
 *
 * A small per-worker pool of threads runs libsodium's crypto_pwhash_str /
 * crypto_pwhash_str_verify (argon2id, OPSLIMIT/MEMLIMIT_INTERACTIVE: ~0.1 s
 * and 64 MiB per job in flight, so keep nthreads small: auth.hash_threads).
 * The loop thread only queues jobs and, when a thread signals completion
 * through an eventfd, runs the callbacks -- always on the loop thread, never
 * from inside hasher_hash()/hasher_verify(), and never after hasher_cancel().
 *
 * Passwords are copied into the job and wiped (sodium_memzero) as soon as
 * the job is done; nothing here logs them.
 *
 * Unknown emails at login: call hasher_verify_dummy() with the submitted
 * password. It verifies against a fixed argon2id hash with the same
 * parameters, so it costs what a real verify costs, and always reports
 * OF_UNAUTH: "unknown email" and "wrong password" take similar time.
 *
 * Not thread-safe: every call but the callbacks' work happens on the loop
 * thread that owns base.
 */
#ifndef OF_WORKER_HASHER_H
#define OF_WORKER_HASHER_H

#include <stddef.h>

#include "common/of.h"

struct event_base;
typedef struct hasher     hasher;
typedef struct hasher_job hasher_job;

#define HASHER_QUEUE_MAX 256   /* jobs waiting; beyond it: OF_UNAVAILABLE */
#define HASHER_STR_BYTES 128   /* an encoded hash with its NUL (crypto_pwhash_STRBYTES) */

/* The one password hash the server stores: argon2id at the cost named at
 * the top of this file, encoded as "$argon2id$..." into out. Blocking
 * (~0.1 s, 64 MiB): the pool's threads run it for registration, and
 * `orderflow user create` calls it directly, so both store the same kind of
 * hash. Call sodium_init() first (hasher_create() does). OF_OK or OF_ERR
 * (out of memory). */
int hasher_hash_now(char out[HASHER_STR_BYTES], const char *password, size_t len);

/* rc OF_OK: hash_str is a NUL-terminated "$argon2id$..." string, valid only
 * during the call. Else OF_ERR (out of memory) or OF_UNAVAILABLE (queue full,
 * answer 503), hash_str NULL. */
typedef void (*hasher_hash_cb)(int rc, const char *hash_str, void *arg);
/* rc OF_OK: password matches; OF_UNAUTH: it does not (or the dummy was used);
 * OF_ERR: hash_str is not an argon2id hash or out of memory;
 * OF_UNAVAILABLE: queue full. */
typedef void (*hasher_verify_cb)(int rc, void *arg);

/* nthreads < 1 is taken as 1. NULL on failure (logged). */
hasher *hasher_create(struct event_base *base, int nthreads);
/* Joins the threads (after their current job); queued and finished jobs are
 * dropped without callbacks. Call when no request waits on it (worker exit). */
void    hasher_destroy(hasher *h);

/* Each returns a handle valid until the callback runs, for hasher_cancel();
 * it may be ignored. NULL only if h is NULL. */
hasher_job *hasher_hash(hasher *h, const char *password, size_t len,
                        hasher_hash_cb cb, void *arg);
hasher_job *hasher_verify(hasher *h, const char *hash_str, const char *password,
                          size_t len, hasher_verify_cb cb, void *arg);
hasher_job *hasher_verify_dummy(hasher *h, const char *password, size_t len,
                                hasher_verify_cb cb, void *arg);

/* The request behind job went away: its callback will not run. Only for a
 * job whose callback has not run yet. The work itself is not interrupted. */
void hasher_cancel(hasher *h, hasher_job *job);

/* The argon2id string the dummy verify checks against (for tests: it must
 * carry the same cost parameters as real hashes). */
const char *hasher_dummy_hash(void);

/* Jobs queued or running (for metrics and tests). */
size_t hasher_pending(const hasher *h);

#endif
