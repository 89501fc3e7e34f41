/*
 * hasher.c -- see hasher.h.
 *
 * Two lists under one mutex: queued (loop -> threads, with a condition
 * variable) and done (threads -> loop, with an eventfd the loop watches).
 * Everything else -- the in-flight count, cancel flags, callbacks -- is
 * touched only by the loop thread, so it needs no lock.
 */
#include "worker/hasher.h"
#include "worker/trace.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* argon2id, OPSLIMIT/MEMLIMIT_INTERACTIVE, of a random password nobody
 * knows: hasher_verify_dummy() pays a real verify's cost against it. */
static const char dummy_hash[] =
    "$argon2id$v=19$m=65536,t=2,p=1$/Nh1TsagtLg2/6H9BvdiIw$"
    "kEfL/D0SBNRm+eM0ZQwKXpUfZVCmWOVW+N+2BlgZxlU";

enum job_kind { JOB_HASH, JOB_VERIFY, JOB_DUMMY, JOB_FAILED };

struct hasher_job {
    struct hasher_job *next;
    enum job_kind      kind;
    int                rc;
    bool               cancelled;             /* loop thread only */
    char              *pw;
    size_t             pwlen;
    char               hash[crypto_pwhash_STRBYTES];
    hasher_hash_cb     hash_cb;
    hasher_verify_cb   verify_cb;
    void              *arg;
    struct trace_req  *trace;                 /* the request's, for its span and logs */
    uint64_t           start_ns;              /* set only when the trace is exported */
};

struct job_list {
    struct hasher_job *head, *tail;
};

struct hasher {
    struct event_base *base;
    struct event      *ev;
    int                efd;
    pthread_mutex_t    mu;
    pthread_cond_t     cv;
    struct job_list    queued;                  /* under mu */
    struct job_list    done;                  /* under mu */
    bool               stopping;              /* under mu */
    size_t             inflight;              /* loop thread only */
    int                nthreads;
    pthread_t         *threads;
};

static void
list_push(struct job_list *l, struct hasher_job *j)
{
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

static struct hasher_job *
list_pop(struct job_list *l)
{
    struct hasher_job *j = l->head;
    if (j) {
        l->head = j->next;
        if (l->head == NULL)
            l->tail = NULL;
    }
    return j;
}

static void
job_wipe_pw(struct hasher_job *j)
{
    if (j->pw == NULL)
        return;
    sodium_memzero(j->pw, j->pwlen);
    free(j->pw);
    j->pw = NULL;
    j->pwlen = 0;
}

static void
job_free(struct hasher_job *j)
{
    job_wipe_pw(j);
    sodium_memzero(j->hash, sizeof(j->hash));
    free(j);
}

static void
signal_loop(hasher *h)
{
    uint64_t one = 1;
    /* Fails only if the counter would overflow: the loop wakes anyway. */
    ssize_t  n = write(h->efd, &one, sizeof(one));
    OF_UNUSED(n);
}

_Static_assert(HASHER_STR_BYTES == crypto_pwhash_STRBYTES, "HASHER_STR_BYTES");

int
hasher_hash_now(char out[HASHER_STR_BYTES], const char *password, size_t len)
{
    return crypto_pwhash_str(out, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0 ? OF_OK : OF_ERR;
}

/* Runs on a pool thread; h->mu not held. */
static void
job_run(struct hasher_job *j)
{
    switch (j->kind) {
    case JOB_HASH:
        j->rc = hasher_hash_now(j->hash, j->pw, j->pwlen);
        break;
    case JOB_VERIFY:
    case JOB_DUMMY:
        errno = 0;
        if (crypto_pwhash_str_verify(j->hash, j->pw, j->pwlen) == 0)
            j->rc = j->kind == JOB_DUMMY ? OF_UNAUTH : OF_OK;
        else
            j->rc = errno == ENOMEM ? OF_ERR : OF_UNAUTH;
        break;
    case JOB_FAILED:
        break;
    }
    job_wipe_pw(j);
}

static void *
hasher_thread(void *arg)
{
    hasher *h = arg;

    for (;;) {
        pthread_mutex_lock(&h->mu);
        while (!h->stopping && h->queued.head == NULL)
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->stopping) {
            pthread_mutex_unlock(&h->mu);
            return NULL;
        }
        struct hasher_job *j = list_pop(&h->queued);
        pthread_mutex_unlock(&h->mu);

        job_run(j);

        pthread_mutex_lock(&h->mu);
        list_push(&h->done, j);
        pthread_mutex_unlock(&h->mu);
        signal_loop(h);
    }
}

/* Loop thread: the job's span (a real hash or verify), and its request's
 * trace made current for the callback; returns the one to give back. */
static struct trace_req *
job_trace_enter(struct hasher_job *j)
{
    if (j->kind != JOB_FAILED)
        trace_hash_end(j->trace, j->start_ns, j->kind != JOB_HASH);
    return trace_swap(j->trace);
}

/* Loop thread: deliver every finished job, oldest first. */
static void
hasher_on_done(evutil_socket_t fd, short what, void *arg)
{
    hasher  *h = arg;
    uint64_t v;

    OF_UNUSED(what);
    ssize_t n = read(fd, &v, sizeof(v));
    OF_UNUSED(n);

    pthread_mutex_lock(&h->mu);
    struct hasher_job *j = h->done.head;
    h->done.head = h->done.tail = NULL;
    pthread_mutex_unlock(&h->mu);

    while (j) {
        struct hasher_job *next = j->next;
        h->inflight--;
        struct trace_req *prev = j->cancelled ? NULL : job_trace_enter(j);
        if (!j->cancelled && j->hash_cb)
            j->hash_cb(j->rc, j->rc == OF_OK ? j->hash : NULL, j->arg);
        else if (!j->cancelled && j->verify_cb)
            j->verify_cb(j->rc, j->arg);
        if (!j->cancelled)
            trace_swap(prev);
        job_free(j);
        j = next;
    }
}

static struct hasher_job *
job_new(enum job_kind kind, const char *password, size_t len)
{
    struct hasher_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        of_fatal("hasher: out of memory");
    j->kind = kind;
    j->pw = malloc(len > 0 ? len : 1);
    if (j->pw == NULL)
        of_fatal("hasher: out of memory");
    if (len > 0)
        memcpy(j->pw, password, len);
    j->pwlen = len;
    j->trace = trace_hash_start(&j->start_ns);
    return j;
}

/* Queues j for a thread, or -- queue full or already failed -- straight
 * onto the done list so its callback still runs on a later loop turn. */
static hasher_job *
job_submit(hasher *h, struct hasher_job *j)
{
    bool full = h->inflight >= HASHER_QUEUE_MAX + (size_t)h->nthreads;

    h->inflight++;
    if (full && j->kind != JOB_FAILED) {
        j->kind = JOB_FAILED;
        j->rc = OF_UNAVAILABLE;
    }
    pthread_mutex_lock(&h->mu);
    if (j->kind == JOB_FAILED) {
        job_wipe_pw(j);
        list_push(&h->done, j);
    } else {
        list_push(&h->queued, j);
        pthread_cond_signal(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    if (j->kind == JOB_FAILED)
        signal_loop(h);
    return j;
}

hasher_job *
hasher_hash(hasher *h, const char *password, size_t len, hasher_hash_cb cb, void *arg)
{
    if (h == NULL || cb == NULL)
        return NULL;
    struct hasher_job *j = job_new(JOB_HASH, password, len);
    j->hash_cb = cb;
    j->arg = arg;
    return job_submit(h, j);
}

static hasher_job *
verify_submit(hasher *h, enum job_kind kind, const char *hash_str,
              const char *password, size_t len, hasher_verify_cb cb, void *arg)
{
    if (h == NULL || cb == NULL)
        return NULL;
    struct hasher_job *j = job_new(kind, password, len);
    j->verify_cb = cb;
    j->arg = arg;
    if (hash_str == NULL || strncmp(hash_str, "$argon2id$", 10) != 0 ||
        of_strlcpy(j->hash, hash_str, sizeof(j->hash)) >= sizeof(j->hash)) {
        j->kind = JOB_FAILED;
        j->rc = OF_ERR;
    }
    return job_submit(h, j);
}

hasher_job *
hasher_verify(hasher *h, const char *hash_str, const char *password, size_t len,
              hasher_verify_cb cb, void *arg)
{
    return verify_submit(h, JOB_VERIFY, hash_str, password, len, cb, arg);
}

hasher_job *
hasher_verify_dummy(hasher *h, const char *password, size_t len,
                    hasher_verify_cb cb, void *arg)
{
    return verify_submit(h, JOB_DUMMY, dummy_hash, password, len, cb, arg);
}

void
hasher_cancel(hasher *h, hasher_job *job)
{
    OF_UNUSED(h);
    if (job)
        job->cancelled = true;
}

size_t
hasher_pending(const hasher *h)
{
    return h ? h->inflight : 0;
}

/* Threads start with every signal blocked: signals are the loop's business. */
static int
start_threads(hasher *h, int n)
{
    sigset_t all, old;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (h->nthreads = 0; h->nthreads < n; h->nthreads++) {
        int err = pthread_create(&h->threads[h->nthreads], NULL, hasher_thread, h);
        if (err != 0) {
            of_log_errno(OF_LOG_ERROR, err, "hasher: pthread_create() failed");
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return h->nthreads == n ? OF_OK : OF_ERR;
}

hasher *
hasher_create(struct event_base *base, int nthreads)
{
    if (sodium_init() < 0) {
        of_log_error("hasher: sodium_init() failed");
        return NULL;
    }
    if (nthreads < 1)
        nthreads = 1;
    hasher *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->base = base;
    h->efd = -1;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);

    h->threads = calloc((size_t)nthreads, sizeof(*h->threads));
    if (h->threads == NULL)
        goto fail;
    h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->efd < 0) {
        of_log_errno(OF_LOG_ERROR, errno, "hasher: eventfd() failed");
        goto fail;
    }
    h->ev = event_new(base, h->efd, EV_READ | EV_PERSIST, hasher_on_done, h);
    if (h->ev == NULL || event_add(h->ev, NULL) != 0)
        goto fail;
    if (start_threads(h, nthreads) != OF_OK)
        goto fail;
    return h;
fail:
    hasher_destroy(h);
    return NULL;
}

static void
drop_list(struct job_list *l)
{
    struct hasher_job *j;
    while ((j = list_pop(l)) != NULL)
        job_free(j);
}

void
hasher_destroy(hasher *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    for (int i = 0; i < h->nthreads; i++)
        pthread_join(h->threads[i], NULL);

    drop_list(&h->queued);
    drop_list(&h->done);
    if (h->ev)
        event_free(h->ev);
    if (h->efd >= 0)
        close(h->efd);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h->threads);
    free(h);
}

const char *
hasher_dummy_hash(void)
{
    return dummy_hash;
}
