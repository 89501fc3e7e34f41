/*
 * bank.h -- bank accounts and transfers: entities, input rules, repository
 * interface and service.
 *
 * Rules (API.md, Bank accounts and transfers):
 *   - an account's name is 1..200 characters, trimmed (422); its opening
 *     balance is required, and < 0 is the domain rule "Invalid balance" (400);
 *   - a transfer's amount is > 0 (422 at ["body","amount"]) and its two
 *     accounts differ (422 at ["body","to_account_id"]); the caller must own
 *     the source (admins too; else 404 "Bank account N not found"); an unknown
 *     destination is 422 at ["body","to_account_id"]; not enough money is 409.
 * Visibility: a user sees their own accounts (and their transfers), an admin
 * all; an account one may not see is "not found".
 *
 * Funds are a rule that must hold under concurrency, so the repository
 * decides it in PostgreSQL: one statement locks both rows in id order
 * (SELECT ... ORDER BY id FOR UPDATE), checks ownership, existence and funds,
 * moves the money and records the transfer. CHECK constraints back it.
 *
 * Transfers honour Idempotency-Key (domain/idem.h): with a key the transfer
 * statement runs inside the idempotent run's transaction; without one it is
 * a single autocommit statement (one round trip).
 */
#ifndef OF_DOMAIN_BANK_H
#define OF_DOMAIN_BANK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/mem.h"
#include "domain/event.h"
#include "domain/page.h"
#include "domain/idem.h"
#include "domain/verr.h"

struct bank_account {
    int64_t     id;
    const char *name;
    int64_t     balance;        /* cents */
    int64_t     owner_id;       /* 0: the owner was deleted (JSON null) */
    const char *created_at;
};

struct transfer {
    int64_t     id;
    int64_t     from_account_id;
    int64_t     to_account_id;
    int64_t     amount;         /* cents */
    const char *created_at;
};

/* has_* : present in the request; a field with the wrong JSON type counts as
 * given, with its problem already reported, and bad set. */
struct bank_account_input {
    bool        has_name, has_balance, bad;
    const char *name;           /* trimmed by bank_account_validate */
    size_t      name_len;
    int64_t     balance;
};

struct transfer_input {
    bool    has_from, has_to, has_amount;          /* present in the request */
    bool    bad_from, bad_to, bad_amount, bad;     /* wrong type (already reported) */
    int64_t from_account_id, to_account_id, amount;
    const char *traceparent;     /* the request's, for the event; NULL: none */
    struct event_meta ev;        /* set by the service: the transfer.created event */
};

/* Who asks: owner filter for reads (admins see everything). */
struct bank_viewer {
    int64_t user_id;
    bool    admin;
};

struct bank_account_list {
    const struct bank_account *items;
    size_t                     n;
    int64_t                    total;
};

struct transfer_list {
    const struct transfer *items;
    size_t                 n;
    int64_t                total;
};

/* What the transfer statement found (repository -> service). */
enum transfer_outcome {
    TRANSFER_DONE = 0,
    TRANSFER_NO_SOURCE,       /* unknown, or not the caller's */
    TRANSFER_NO_DEST,         /* unknown destination */
    TRANSFER_NO_FUNDS,        /* source balance < amount */
};

typedef void (*bank_account_cb)(int rc, const struct bank_account *a, void *arg);
typedef void (*bank_account_list_cb)(int rc, const struct bank_account_list *l, void *arg);
typedef void (*transfer_list_cb)(int rc, const struct transfer_list *l, void *arg);
typedef void (*transfer_stmt_cb)(int rc, enum transfer_outcome o, const struct transfer *t,
                                 void *arg);

struct bank_repo_ops {
    void (*create)(void *self, struct of_mem *m, int64_t owner_id,
                   const struct bank_account_input *in, bank_account_cb cb, void *arg);
    /* owner_id 0: any owner. OF_NOTFOUND when absent or not visible. */
    void (*get)(void *self, struct of_mem *m, int64_t id, int64_t owner_id,
                bank_account_cb cb, void *arg);
    void (*list)(void *self, struct of_mem *m, int64_t owner_id, const struct page_req *pg,
                 bank_account_list_cb cb, void *arg);
    /* Transfers in and out of account id, newest first; OF_NOTFOUND when the
     * account is absent or not visible (owner_id 0: any). */
    void (*history)(void *self, struct of_mem *m, int64_t id, int64_t owner_id,
                    const struct page_req *pg, transfer_list_cb cb, void *arg);
    /* The transfer statement, with its transfer.created event (in->ev) when
     * it moves money. tx NULL: autocommit; else inside that open
     * transaction (never committed or rolled back here). rc is OF_OK with an
     * outcome (t set only for TRANSFER_DONE), or the database's failure. */
    void (*transfer)(void *self, struct of_mem *m, struct repo_tx *tx, int64_t caller_id,
                     const struct transfer_input *in, transfer_stmt_cb cb, void *arg);
};

struct bank_repo {
    const struct bank_repo_ops *ops;
    void                       *self;
};

/* Field rules of an account (name required, 1..200 trimmed; balance
 * required). Problems go to v; trims in->name. The negative balance is not a
 * field rule: see bank_balance_ok. */
void bank_account_validate(struct bank_account_input *in, struct of_mem *m, struct of_verrs *v);
bool bank_balance_ok(int64_t balance);

/* Field rules of a transfer: the three fields required, amount > 0, accounts
 * differ. Problems go to v. */
void bank_transfer_validate(const struct transfer_input *in, struct of_verrs *v);

struct bank_svc;
struct bank_svc *bank_svc_create(struct bank_repo repo, struct idem_repo idem);
void bank_svc_destroy(struct bank_svc *s);

/* OF_INVALID (problems in v; answered synchronously), OF_BADREQ (negative
 * balance: "Invalid balance"), or the repository's answer. */
void bank_svc_open(struct bank_svc *s, struct of_mem *m, int64_t owner_id,
                   struct bank_account_input *in, struct of_verrs *v,
                   bank_account_cb cb, void *arg);
void bank_svc_get(struct bank_svc *s, struct of_mem *m, const struct bank_viewer *who,
                  int64_t id, bank_account_cb cb, void *arg);
void bank_svc_list(struct bank_svc *s, struct of_mem *m, const struct bank_viewer *who,
                   const struct page_req *pg, bank_account_list_cb cb, void *arg);
void bank_svc_history(struct bank_svc *s, struct of_mem *m, const struct bank_viewer *who,
                      int64_t id, const struct page_req *pg, transfer_list_cb cb, void *arg);

/* A transfer, idempotent when key->key is set. The outcome goes through
 * render(arg, rc, transfer, &body) exactly once, then done(arg, answer):
 *   rc OF_OK (transfer), OF_INVALID (problems in v: rule or unknown
 *   destination), OF_NOTFOUND (source not the caller's), OF_CONFLICT
 *   (insufficient funds), OF_UNAVAILABLE / OF_ERR.
 * Field rules are checked first; when they fail, render and done are called
 * synchronously and the database is not touched. Without a key the answer's
 * body is render's, never stored. */
void bank_svc_transfer(struct bank_svc *s, struct of_mem *m, int64_t caller_id,
                       const struct transfer_input *in, const struct idem_key *key,
                       struct of_verrs *v, idem_render_fn render, idem_done_fn done, void *arg);

#endif
