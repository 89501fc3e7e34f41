/*
 * bank.c -- bank account and transfer rules, and the bank service (contract:
 * bank.h). Data-free rules are here; funds, ownership and the destination's
 * existence are decided by the repository's single locking statement.
 */
#include "domain/bank.h"
#include "domain/rules.h"
#include "common/of.h"

#include <stdlib.h>
#include <string.h>

#define MSG_REQUIRED  "Field required"
#define MSG_AMOUNT    "Input should be greater than 0"
#define MSG_SAME      "Source and destination accounts must differ"
#define MSG_NO_DEST   "Destination account not found"

void
bank_account_validate(struct bank_account_input *in, struct of_mem *m, struct of_verrs *v)
{
    if (!in->has_name) {
        of_verr_add(v, OF_VE_MISSING, MSG_REQUIRED, OF_K("body"), OF_K("name"), OF_END);
    } else if (in->name != NULL) {          /* NULL: wrong type, already reported */
        const char *t;
        size_t      tl;
        int rc = rules_text(in->name, in->name_len, 1, RULES_NAME_MAX, &t, &tl);
        if (rc != OF_OK) {
            of_verr_add(v, OF_VE_VALUE, rules_text_msg(m, rc, 1, RULES_NAME_MAX),
                        OF_K("body"), OF_K("name"), OF_END);
        } else {
            in->name = of_mem_strndup(m, t, tl);
            in->name_len = tl;
        }
    }
    if (!in->has_balance)
        of_verr_add(v, OF_VE_MISSING, MSG_REQUIRED, OF_K("body"), OF_K("balance"), OF_END);
}

bool
bank_balance_ok(int64_t balance)
{
    return balance >= 0;
}

void
bank_transfer_validate(const struct transfer_input *in, struct of_verrs *v)
{
    if (!in->has_from)
        of_verr_add(v, OF_VE_MISSING, MSG_REQUIRED, OF_K("body"), OF_K("from_account_id"), OF_END);
    if (!in->has_to)
        of_verr_add(v, OF_VE_MISSING, MSG_REQUIRED, OF_K("body"), OF_K("to_account_id"), OF_END);
    if (!in->has_amount)
        of_verr_add(v, OF_VE_MISSING, MSG_REQUIRED, OF_K("body"), OF_K("amount"), OF_END);
    else if (!in->bad_amount && in->amount <= 0)
        of_verr_add(v, OF_VE_VALUE, MSG_AMOUNT, OF_K("body"), OF_K("amount"), OF_END);
    if (in->has_from && in->has_to && !in->bad_from && !in->bad_to
        && in->from_account_id == in->to_account_id)
        of_verr_add(v, OF_VE_VALUE, MSG_SAME, OF_K("body"), OF_K("to_account_id"), OF_END);
}

struct bank_svc {
    struct bank_repo repo;
    struct idem_repo idem;
};

struct bank_svc *
bank_svc_create(struct bank_repo repo, struct idem_repo idem)
{
    struct bank_svc *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->repo = repo;
    s->idem = idem;
    return s;
}

void
bank_svc_destroy(struct bank_svc *s)
{
    free(s);
}

void
bank_svc_open(struct bank_svc *s, struct of_mem *m, int64_t owner_id,
              struct bank_account_input *in, struct of_verrs *v,
              bank_account_cb cb, void *arg)
{
    bank_account_validate(in, m, v);
    if (of_verrs_any(v) || in->bad) {
        cb(OF_INVALID, NULL, arg);
        return;
    }
    if (!bank_balance_ok(in->balance)) {
        cb(OF_BADREQ, NULL, arg);
        return;
    }
    s->repo.ops->create(s->repo.self, m, owner_id, in, cb, arg);
}

static int64_t
owner_filter(const struct bank_viewer *who)
{
    return who->admin ? 0 : who->user_id;
}

void
bank_svc_get(struct bank_svc *s, struct of_mem *m, const struct bank_viewer *who,
             int64_t id, bank_account_cb cb, void *arg)
{
    s->repo.ops->get(s->repo.self, m, id, owner_filter(who), cb, arg);
}

void
bank_svc_list(struct bank_svc *s, struct of_mem *m, const struct bank_viewer *who,
              const struct page_req *pg, bank_account_list_cb cb, void *arg)
{
    s->repo.ops->list(s->repo.self, m, owner_filter(who), pg, cb, arg);
}

void
bank_svc_history(struct bank_svc *s, struct of_mem *m, const struct bank_viewer *who,
                 int64_t id, const struct page_req *pg, transfer_list_cb cb, void *arg)
{
    s->repo.ops->history(s->repo.self, m, id, owner_filter(who), pg, cb, arg);
}

/* ---- transfers ---- */

struct xfer {
    struct bank_svc      *s;
    struct of_mem        *m;
    int64_t               caller_id;
    struct transfer_input in;
    struct of_verrs      *v;
    idem_render_fn        render;
    idem_done_fn          done;
    void                 *arg;
    struct idem_run      *run;
};

/* Outcome of the statement -> service code (problems added to v). */
static int
outcome_rc(struct xfer *x, int rc, enum transfer_outcome o)
{
    if (rc != OF_OK)
        return rc;
    switch (o) {
    case TRANSFER_DONE:      return OF_OK;
    case TRANSFER_NO_SOURCE: return OF_NOTFOUND;
    case TRANSFER_NO_FUNDS:  return OF_CONFLICT;
    case TRANSFER_NO_DEST:
        of_verr_add(x->v, OF_VE_VALUE, MSG_NO_DEST, OF_K("body"), OF_K("to_account_id"), OF_END);
        return OF_INVALID;
    }
    return OF_ERR;
}

/* Answer without a stored response: render, then done with render's body. */
static void
answer_now(struct xfer *x, int rc, const struct transfer *t)
{
    struct idem_answer a = { .rc = OF_OK, .replayed = false };
    a.body = NULL;
    a.status = x->render(x->arg, rc, t, &a.body);
    x->done(x->arg, &a);
}

static void
on_plain(int rc, enum transfer_outcome o, const struct transfer *t, void *arg)
{
    struct xfer *x = arg;
    rc = outcome_rc(x, rc, o);
    answer_now(x, rc, rc == OF_OK ? t : NULL);
}

static void
on_in_run(int rc, enum transfer_outcome o, const struct transfer *t, void *arg)
{
    struct xfer *x = arg;
    rc = outcome_rc(x, rc, o);
    idem_op_done(x->run, rc, rc == OF_OK ? t : NULL);
}

static void
run_op(struct idem_run *run, struct repo_tx *tx, void *arg)
{
    struct xfer *x = arg;
    x->run = run;
    x->s->repo.ops->transfer(x->s->repo.self, x->m, tx, x->caller_id, &x->in, on_in_run, x);
}

static int
run_render(void *arg, int rc, const void *result, const char **body)
{
    struct xfer *x = arg;
    return x->render(x->arg, rc, result, body);
}

static void
run_done(void *arg, const struct idem_answer *a)
{
    struct xfer *x = arg;
    x->done(x->arg, a);
}

void
bank_svc_transfer(struct bank_svc *s, struct of_mem *m, int64_t caller_id,
                  const struct transfer_input *in, const struct idem_key *key,
                  struct of_verrs *v, idem_render_fn render, idem_done_fn done, void *arg)
{
    struct xfer *x = of_mem_calloc(m, sizeof(*x));
    x->s = s;
    x->m = m;
    x->caller_id = caller_id;
    x->in = *in;
    event_meta_new(&x->in.ev, of_mem_alloc(m, OF_EVENT_ID_CAP), in->traceparent);
    x->v = v;
    x->render = render;
    x->done = done;
    x->arg = arg;

    bank_transfer_validate(in, v);
    if (of_verrs_any(v) || in->bad || in->bad_from || in->bad_to || in->bad_amount) {
        answer_now(x, OF_INVALID, NULL);
        return;
    }
    if (key == NULL || key->key == NULL) {
        s->repo.ops->transfer(s->repo.self, m, NULL, caller_id, &x->in, on_plain, x);
        return;
    }
    struct idem_spec sp = { .key = key, .op = run_op, .render = run_render,
                            .done = run_done, .arg = x };
    idem_run(s->idem, m, &sp);
}
