/*
 * bank.c -- bank accounts and transfers over HTTP. JSON ⇄ bank_account_input
 * / transfer_input, then the bank service; the rules live in domain/bank.c,
 * funds and locking in store/bank_repo.c.
 *
 * Transfers honour Idempotency-Key through the idempotent run
 * (domain/idem.h): render() turns an outcome into a status and, for the
 * stored outcomes (201, 409), the exact JSON text; done() sends the run's
 * answer, or the handler's own for outcomes that are never stored.
 */
#include "handlers/list.h"
#include "handlers/bank.h"
#include "handlers/idem.h"
#include "handlers/services.h"
#include "domain/bank.h"
#include "domain/rules.h"
#include "common/of.h"

#include <string.h>

#define TRANSFER_ROUTE "POST /api/v1/transfers"

static json_t *
account_json(const void *item)
{
    const struct bank_account *a = item;
    json_t *owner = a->owner_id > 0 ? json_integer((json_int_t)a->owner_id) : json_null();
    return json_pack("{s:I,s:s,s:o,s:o,s:s}", "id", (json_int_t)a->id, "name", a->name,
                     "balance", hdl_money(a->balance), "owner_id", owner,
                     "created_at", a->created_at);
}

static json_t *
transfer_json(const void *item)
{
    const struct transfer *t = item;
    return json_pack("{s:I,s:I,s:I,s:o,s:s}", "id", (json_int_t)t->id,
                     "from_account_id", (json_int_t)t->from_account_id,
                     "to_account_id", (json_int_t)t->to_account_id,
                     "amount", hdl_money(t->amount), "created_at", t->created_at);
}

/* A transfer keeps its source account: the 404 names it. */
struct transfer_call {
    struct hdl_call call;
    int64_t         from_id;
};

static struct bank_viewer
viewer_of(struct hdl_req *r)
{
    return (struct bank_viewer){ r->who.user_id, r->who.role == HDL_ROLE_ADMIN };
}

/* The page asked for into *pg (kind: accounts, or transfers of account
 * scope); false (422 sent) on problems. */
static bool
paging(struct hdl_call *c, unsigned kind, int64_t scope, struct page_req *pg)
{
    struct bank_viewer who = viewer_of(c->r);
    hdl_paging(c->r, &c->v, &c->pg);
    hdl_list_page(c, kind, 0,
                  of_mem_printf(c->r->mem, "viewer=%lld|admin=%d|scope=%lld",
                                (long long)who.user_id, who.admin, (long long)scope), pg);
    if (!of_verrs_any(&c->v))
        return true;
    hdl_reply_verrs(c->r, &c->v);
    return false;
}

/* Accounts and transfers page by id only. */
static const char *
id_key(struct of_mem *m, const void *item, unsigned sort, int64_t *id)
{
    (void)m;
    (void)sort;
    *id = *(const int64_t *)item;   /* both structs start with their id */
    return "";
}

/* ---- accounts ---- */

static void
opened(int rc, const struct bank_account *a, void *arg)
{
    struct hdl_call *c = arg;
    switch (rc) {
    case OF_OK:      hdl_reply_json(c->r, 201, account_json(a)); break;
    case OF_INVALID: hdl_reply_verrs(c->r, &c->v); break;
    case OF_BADREQ:  hdl_reply_error(c->r, 400, "Invalid balance"); break;
    default:         hdl_reply_rc(c->r, rc); break;
    }
}

void
hdl_bank_create(struct hdl_req *r)
{
    struct bank_account_input in;
    enum hdl_field f;

    json_t *body = hdl_json_body(r);
    if (body == NULL)
        return;
    struct hdl_call *c = hdl_call_new(r);
    memset(&in, 0, sizeof(in));
    f = hdl_field_str(body, "name", false, &c->v, &in.name, &in.name_len);
    in.has_name = f != FIELD_ABSENT;
    if (f == FIELD_BAD)
        in.name = NULL;
    in.bad |= f == FIELD_BAD;
    f = hdl_field_money(body, "balance", false, &c->v, &in.balance);
    in.has_balance = f != FIELD_ABSENT;
    in.bad |= f == FIELD_BAD;
    bank_svc_open(r->svc->bank, r->mem, r->who.user_id, &in, &c->v, opened, c);
}

static void
got(int rc, const struct bank_account *a, void *arg)
{
    hdl_reply_item(arg, rc, a, account_json, "Bank account");
}

void
hdl_bank_get(struct hdl_req *r)
{
    struct bank_viewer who = viewer_of(r);
    bank_svc_get(r->svc->bank, r->mem, &who, r->ids[0], got, r);
}

static void
listed(int rc, const struct bank_account_list *l, void *arg)
{
    hdl_reply_list(arg, rc, l ? l->items : NULL, l ? l->n : 0, sizeof(*l->items), account_json,
                   l ? l->total : 0, id_key);
}

void
hdl_bank_list(struct hdl_req *r)
{
    struct hdl_call *c = hdl_call_new(r);
    struct page_req  pg;
    if (!paging(c, HDL_LIST_ACCOUNTS, 0, &pg))
        return;
    struct bank_viewer who = viewer_of(r);
    bank_svc_list(r->svc->bank, r->mem, &who, &pg, listed, c);
}

static void
history(int rc, const struct transfer_list *l, void *arg)
{
    struct hdl_call *c = arg;
    if (rc == OF_NOTFOUND) {
        hdl_reply_not_found(c->r, "Bank account");
        return;
    }
    hdl_reply_list(c, rc, l ? l->items : NULL, l ? l->n : 0, sizeof(*l->items), transfer_json,
                   l ? l->total : 0, id_key);
}

void
hdl_bank_history(struct hdl_req *r)
{
    struct hdl_call *c = hdl_call_new(r);
    struct page_req  pg;
    if (!paging(c, HDL_LIST_TRANSFERS, r->ids[0], &pg))
        return;
    struct bank_viewer who = viewer_of(r);
    bank_svc_history(r->svc->bank, r->mem, &who, r->ids[0], &pg, history, c);
}

/* ---- transfers ---- */

static int
status_of(int rc)
{
    switch (rc) {
    case OF_OK:          return 201;
    case OF_NOTFOUND:    return 404;
    case OF_CONFLICT:    return 409;
    case OF_INVALID:     return 422;
    case OF_UNAVAILABLE: return 503;
    default:             return 500;
    }
}

static int
render(void *arg, int rc, const void *result, const char **body)
{
    struct transfer_call *t = arg;
    struct hdl_call      *c = &t->call;
    c->rc = rc;
    if (rc == OF_OK && result != NULL)
        *body = hdl_json_text(c->r, transfer_json(result));
    else if (rc == OF_CONFLICT)
        *body = hdl_json_text(c->r, json_pack("{s:s}", "detail", "Insufficient funds"));
    else if (rc == OF_OK)
        c->rc = OF_ERR;
    return status_of(c->rc);
}

static void
done(void *arg, const struct idem_answer *a)
{
    struct transfer_call *t = arg;
    struct hdl_call      *c = &t->call;
    if (hdl_idem_send(c->r, a))
        return;
    switch (c->rc) {
    case OF_NOTFOUND:
        hdl_reply_error(c->r, 404, of_mem_printf(c->r->mem, "Bank account %lld not found",
                                                 (long long)t->from_id));
        break;
    case OF_INVALID:  hdl_reply_verrs(c->r, &c->v); break;
    case OF_OK:       hdl_reply_rc(c->r, OF_ERR); break;
    default:          hdl_reply_rc(c->r, c->rc); break;
    }
}

void
hdl_transfers_create(struct hdl_req *r)
{
    struct transfer_input in;
    enum hdl_field f;

    json_t *body = hdl_json_body(r);
    if (body == NULL)
        return;
    struct transfer_call *t = of_mem_calloc(r->mem, sizeof(*t));
    struct of_verrs      *v = &t->call.v;
    struct idem_key      *k = of_mem_calloc(r->mem, sizeof(*k));
    hdl_call_init(&t->call, r);
    hdl_idem_key(r, v, k, TRANSFER_ROUTE);

    memset(&in, 0, sizeof(in));
    f = hdl_field_int(body, "from_account_id", false, v, &in.from_account_id);
    in.has_from = f != FIELD_ABSENT;
    in.bad_from = f == FIELD_BAD;
    f = hdl_field_int(body, "to_account_id", false, v, &in.to_account_id);
    in.has_to = f != FIELD_ABSENT;
    in.bad_to = f == FIELD_BAD;
    f = hdl_field_money(body, "amount", false, v, &in.amount);
    in.has_amount = f != FIELD_ABSENT;
    in.bad_amount = f == FIELD_BAD;
    in.bad = in.bad_from || in.bad_to || in.bad_amount;
    in.traceparent = r->traceparent;
    t->from_id = in.from_account_id;
    if (k->key != NULL)
        hdl_idem_fingerprint(r, body, k);
    bank_svc_transfer(r->svc->bank, r->mem, r->who.user_id, &in, k, v, render, done, t);
}
