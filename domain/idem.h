/*
 * idem.h -- Idempotency-Key (API.md, Orders; reused by transfers): one
 * database transaction that holds the key row AND the operation's writes,
 * so PostgreSQL decides who runs and nothing is ever half done.
 *
 * The run, all on ONE connection (store/idem_repo.c):
 *   BEGIN;
 *   INSERT INTO idempotency_keys (user_id, route, key, fingerprint)
 *     ON CONFLICT (user_id, route, key) DO UPDATE ... WHERE expired RETURNING;
 *       -- a concurrent holder of the key makes this wait until it commits
 *       -- or aborts: identical concurrent requests serialise here
 *   no row -> SELECT fingerprint, status, response_body of the existing row:
 *       other fingerprint  -> ROLLBACK, answer rc OF_INVALID (422 detail only)
 *       stored response    -> ROLLBACK, answer it again, replayed = true
 *       status NULL        -> ROLLBACK, rc OF_CONFLICT (409 "in progress";
 *                             cannot happen with the locking above, kept safe)
 *   the claim gave up waiting (statement/lock timeout) -> 409 "in progress"
 *   op(tx)                  -- the service's writes, same transaction
 *   render(rc, result)      -- handler: outcome -> HTTP status + JSON text
 *   2xx or 409: UPDATE the key row with status + body; COMMIT
 *   anything else: ROLLBACK (nothing created, key not kept: a corrected
 *   retry runs afresh). A crash mid-way aborts everything.
 * Without an Idempotency-Key (key->key == NULL) the same run is simply one
 * transaction: BEGIN, op, render, COMMIT for 2xx/409 else ROLLBACK.
 * Expired keys (24 h) are purged by one periodic job (idem_repo_ops.purge,
 * armed in worker/wire.c on worker slot 0 only).
 *
 * How a handler + service use it (handlers/orders.c and domain/order.c are
 * the reference):
 *   handler:
 *     struct idem_key *k = ...arena...;
 *     hdl_idem_key(r, &v, k, "POST /api/v1/transfers");   // handlers/idem.h
 *         // header invalid -> a problem at ["header","Idempotency-Key"] in v
 *     body checks into v; if (of_verrs_any(&v)) reply 422 now (no DB touched)
 *     hdl_idem_fingerprint(r, body, k);  // method + path + canonical JSON
 *     bank_svc_transfer(svc, m, &in, k, render_cb, done_cb, ctx);
 *   service:
 *     struct idem_spec sp = { .key = k, .op = my_op, .op_arg = svc_ctx,
 *                             .render = render_cb, .done = done_cb, .arg = ctx };
 *     idem_run(s->idem, m, &sp);
 *     my_op(run, tx, arg) { repo->transfer_tx(self, tx, m, ..., cb) and in cb:
 *                           idem_op_done(run, rc, result); }
 *     (the repo function takes the struct repo_tx * and issues its statements
 *      with pool_tx_query(store_tx(tx), ...); it must NOT commit/roll back)
 *   handler callbacks:
 *     int render_cb(void *arg, int rc, const void *result, const char **body)
 *         returns the HTTP status; for 2xx and 409 *body MUST be the exact
 *         JSON text to send (hdl_json_text); otherwise *body may stay NULL
 *         and the handler remembers what to say (e.g. its of_verrs).
 *     void done_cb(void *arg, const struct idem_answer *a)
 *         if (!hdl_idem_send(r, a)) { reply yourself: a->status was yours }
 *
 * Nothing here is HTTP or SQL: the repository does SQL, the handler JSON.
 */
#ifndef OF_DOMAIN_IDEM_H
#define OF_DOMAIN_IDEM_H

#include <stdbool.h>
#include <stdint.h>

#include "common/mem.h"

/* An open database transaction, opaque to the domain (store/ casts it to
 * its pool_tx: store_tx() in store/idem_repo.h). */
struct repo_tx;

#define IDEM_FP_LEN    64
#define IDEM_TTL_HOURS 24

struct idem_key {
    int64_t     user_id;
    const char *route;                    /* scope with the user: "POST /api/v1/orders" */
    const char *key;                      /* validated header value; NULL: no header */
    char        fingerprint[IDEM_FP_LEN + 1];   /* rules_fingerprint() */
};

/* What the run says the handler should answer. */
struct idem_answer {
    int         rc;        /* OF_OK: status/body below; OF_INVALID: key reused
                              with a different request (422 {"detail"} only);
                              OF_CONFLICT: in progress (409); OF_UNAVAILABLE
                              (503) / OF_ERR (500): the database failed */
    int         status;    /* with rc OF_OK: the render callback's (or stored) status */
    const char *body;      /* JSON text in the arena; NULL when render left it
                              NULL (non-stored outcome: handler replies itself) */
    bool        replayed;  /* add "Idempotent-Replayed: true" */
};

/* Stored row as the repository found it (begin callback). */
struct idem_row {
    const char *fingerprint;
    int         status;     /* 0: no response stored (in flight) */
    const char *body;
};

enum idem_begin { IDEM_FRESH = 0,   /* key row inserted (or no key): tx open, run the op */
                  IDEM_EXISTS };    /* key held by a finished request: row filled, tx closed */

typedef void (*idem_begin_cb)(int rc, enum idem_begin what, struct repo_tx *tx,
                              const struct idem_row *row, void *arg);
typedef void (*idem_end_cb)(int rc, void *arg);

struct idem_repo_ops {
    /* BEGIN + claim the key (k->key may be NULL: BEGIN only, lazily sent
     * with the op's first statement). rc != OF_OK: tx already gone. */
    void (*begin)(void *self, struct of_mem *m, const struct idem_key *k,
                  idem_begin_cb cb, void *arg);
    /* store status + body in the key row (when k->key != NULL), then COMMIT.
     * rc OF_OK only when the COMMIT succeeded. tx is gone afterwards. */
    void (*finish)(void *self, struct of_mem *m, struct repo_tx *tx, const struct idem_key *k,
                   int status, const char *body, idem_end_cb cb, void *arg);
    /* ROLLBACK, synchronously; tx is gone. */
    void (*abort)(void *self, struct repo_tx *tx);
    /* DELETE expired keys (autocommit); cb gets OF_OK and *n deleted rows. */
    void (*purge)(void *self, struct of_mem *m, void (*cb)(int rc, int64_t n, void *arg),
                  void *arg);
};

struct idem_repo {
    const struct idem_repo_ops *ops;
    void                       *self;
};

struct idem_run;
typedef void (*idem_op_fn)(struct idem_run *run, struct repo_tx *tx, void *arg);
typedef int  (*idem_render_fn)(void *arg, int rc, const void *result, const char **body);
typedef void (*idem_done_fn)(void *arg, const struct idem_answer *a);

struct idem_spec {
    const struct idem_key *key;     /* NULL or key->key NULL: no Idempotency-Key */
    idem_op_fn             op;      /* runs the writes in tx; ends with idem_op_done */
    idem_render_fn         render;  /* outcome -> status (+ JSON text for 2xx/409) */
    idem_done_fn           done;    /* exactly once, always on a later loop turn */
    void                  *arg;     /* given to render and done (the handler's) */
    void                  *op_arg;  /* given to op (the service's); NULL: arg */
};

/* Runs spec as described above. The spec is copied; m must outlive done. */
void idem_run(struct idem_repo repo, struct of_mem *m, const struct idem_spec *spec);
/* The op reports its outcome exactly once (result lives in the arena and is
 * handed to render). The transaction stays open; the run commits or rolls
 * back. Decide 409s without failing a statement (read, then decide; or
 * ON CONFLICT DO NOTHING): a failed statement aborts the transaction, so
 * its outcome cannot be stored or committed -- the run then answers 500. */
void idem_op_done(struct idem_run *run, int rc, const void *result);

/* Responses that are kept for replay (and committed): 2xx and 409. */
bool idem_storable(int status);

#endif
