/*
 * outbox.h -- the jobs process's repository over the outbox tables
 * (migrations/0002_events): fan events out into deliveries, claim due
 * deliveries under a lease, record attempts, prune, measure the queue.
 * Every claim uses FOR UPDATE SKIP LOCKED, so any number of jobs processes
 * on any number of hosts share the queue. Each call is one statement (one
 * transaction); callbacks come from the pool, on the loop.
 */
#ifndef OF_STORE_OUTBOX_H
#define OF_STORE_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/pool.h"

extern const struct pool_stmt *const store_outbox_stmts[];
extern const size_t store_outbox_nstmts;

/* Claim up to batch undispatched events, insert their deliveries (one per
 * active webhook subscribed to the type; one mail for order.created and
 * order.status_changed to shipped/cancelled when with_mail), mark them
 * dispatched. cb gets the number of events dispatched. */
typedef void (*outbox_count_cb)(int rc, int n, void *arg);
void outbox_fanout(pool *p, struct of_mem *m, int batch, bool with_mail, outbox_count_cb cb,
                   void *arg);

/* A claimed delivery; strings live in the of_mem given to outbox_claim. */
struct outbox_job {
    int64_t     id;
    bool        mail;            /* kind 'mail', else 'webhook' */
    int         attempts;        /* made before this one */
    const char *event_id, *event_type, *payload, *traceparent;
    const char *url, *secret;    /* webhook */
    const char *cust_email, *cust_name;   /* mail; NULL when the customer is unknown */
    bool        cust_active;
};
typedef void (*outbox_claim_cb)(int rc, struct outbox_job *jobs, int n, void *arg);
/* Lease up to limit due pending deliveries for lease_s seconds. */
void outbox_claim(pool *p, struct of_mem *m, int limit, int lease_s, outbox_claim_cb cb, void *arg);

enum outbox_outcome { OUTBOX_RETRY, OUTBOX_SUCCEEDED, OUTBOX_DEAD, OUTBOX_RELEASE };
/* One finished attempt (or RELEASE: not attempted, give the row back). */
struct outbox_result {
    int64_t             id;
    enum outbox_outcome outcome;
    int                 code;       /* HTTP/SMTP status, 0 = none */
    const char         *err;        /* NULL = none; cut to 500 characters */
    double              delay_s;    /* RETRY: seconds until the next attempt */
};
typedef void (*outbox_done_cb)(int rc, void *arg);
/* Record n results in one statement; every lease they name is cleared. */
void outbox_record(pool *p, struct of_mem *m, const struct outbox_result *r, size_t n,
                   outbox_done_cb cb, void *arg);

/* Delete up to batch succeeded deliveries older than days, and up to batch
 * events older than that with no delivery left. cb gets rows deleted. */
void outbox_prune(pool *p, struct of_mem *m, int days, int batch, outbox_count_cb cb, void *arg);

struct outbox_gauges {
    int64_t pending_events, pending_deliveries, oldest_pending_s;
};
typedef void (*outbox_gauges_cb)(int rc, const struct outbox_gauges *g, void *arg);
void outbox_measure(pool *p, struct of_mem *m, outbox_gauges_cb cb, void *arg);

#endif
