/*
 * test_bank.c -- bank accounts and transfers: the domain rules (opening
 * balance < 0 is the 400 path, amount <= 0 and the same account are 422s)
 * through the service, and the handlers + idempotent run, against in-memory
 * fake repositories (accounts/transfers and idempotency keys) that answer on
 * the next loop turn like PostgreSQL's. No database, no sockets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/support/fake_http.h"
#include "handlers/bank.h"
#include "handlers/idem.h"
#include "domain/bank.h"
#include "domain/idem.h"
#include "common/of.h"

/* ---- fake bank repository ---- */

#define MAXA 32
#define MAXT 64
#define MAXK 16

static struct bank_account accounts[MAXA];
static char                acc_names[MAXA][256];
static size_t              naccounts;
static struct transfer     transfers[MAXT];
static size_t              ntransfers;
static int                 repo_calls;     /* every repository call */

/* one open fake transaction: the money moves at commit */
struct ftx {
    int   key;           /* index in keys[] claimed here, or -1 */
    bool  has_move;
    struct transfer move;
};

struct later {
    int                    rc;
    enum transfer_outcome  outcome;
    struct bank_account    a;
    struct transfer        t;
    struct bank_account_list al;
    struct transfer_list   tl;
    bank_account_cb        acc_cb;
    bank_account_list_cb   list_cb;
    transfer_list_cb       hist_cb;
    transfer_stmt_cb       xfer_cb;
    idem_begin_cb          begin_cb;
    idem_end_cb            end_cb;
    enum idem_begin        what;
    struct ftx            *tx;
    struct idem_row        row;
    void                  *arg;
};

static void
fire(void *x)
{
    struct later *l = x;
    if (l->acc_cb)
        l->acc_cb(l->rc, l->rc == OF_OK ? &l->a : NULL, l->arg);
    else if (l->list_cb)
        l->list_cb(l->rc, &l->al, l->arg);
    else if (l->hist_cb)
        l->hist_cb(l->rc, l->rc == OF_OK ? &l->tl : NULL, l->arg);
    else if (l->xfer_cb)
        l->xfer_cb(l->rc, l->outcome, l->outcome == TRANSFER_DONE ? &l->t : NULL, l->arg);
    else if (l->begin_cb)
        l->begin_cb(l->rc, l->what, (struct repo_tx *)l->tx, l->what == IDEM_EXISTS ? &l->row : NULL,
                    l->arg);
    else
        l->end_cb(l->rc, l->arg);
    free(l);
}

static struct later *
later_new(void *arg)
{
    struct later *l = calloc(1, sizeof(*l));
    l->arg = arg;
    return l;
}

static struct bank_account *
acc_find(int64_t id)
{
    for (size_t i = 0; i < naccounts; i++)
        if (accounts[i].id == id)
            return &accounts[i];
    return NULL;
}

static int64_t
acc_add(int64_t owner, const char *name, int64_t balance)
{
    struct bank_account *a = &accounts[naccounts];
    snprintf(acc_names[naccounts], sizeof(acc_names[0]), "%s", name);
    a->id = (int64_t)naccounts + 1;
    a->name = acc_names[naccounts];
    a->balance = balance;
    a->owner_id = owner;
    a->created_at = "2026-11-24T01:02:03.123456Z";
    naccounts++;
    return a->id;
}

static void
f_create(void *self, struct of_mem *m, int64_t owner_id, const struct bank_account_input *in,
         bank_account_cb cb, void *arg)
{
    (void)self; (void)m;
    repo_calls++;
    char name[256];
    snprintf(name, sizeof(name), "%.*s", (int)in->name_len, in->name);
    struct later *l = later_new(arg);
    l->acc_cb = cb;
    l->a = *acc_find(acc_add(owner_id, name, in->balance));
    fake_later(fire, l);
}

static void
f_get(void *self, struct of_mem *m, int64_t id, int64_t owner_id, bank_account_cb cb, void *arg)
{
    (void)self; (void)m;
    repo_calls++;
    struct later *l = later_new(arg);
    l->acc_cb = cb;
    struct bank_account *a = acc_find(id);
    if (a == NULL || (owner_id != 0 && a->owner_id != owner_id))
        l->rc = OF_NOTFOUND;
    else
        l->a = *a;
    fake_later(fire, l);
}

static void
f_list(void *self, struct of_mem *m, int64_t owner_id, const struct page_req *pg,
       bank_account_list_cb cb, void *arg)
{
    (void)self;
    repo_calls++;
    struct bank_account *items = of_mem_calloc(m, sizeof(*items) * MAXA);
    struct later *l = later_new(arg);
    l->list_cb = cb;
    int64_t seen = 0;
    for (size_t i = 0; i < naccounts; i++) {
        if (owner_id != 0 && accounts[i].owner_id != owner_id)
            continue;
        if (seen >= pg->offset && (int64_t)l->al.n < pg->limit)
            items[l->al.n++] = accounts[i];
        seen++;
    }
    l->al.items = items;
    l->al.total = seen;
    fake_later(fire, l);
}

static void
f_history(void *self, struct of_mem *m, int64_t id, int64_t owner_id, const struct page_req *pg,
          transfer_list_cb cb, void *arg)
{
    (void)self;
    repo_calls++;
    struct later *l = later_new(arg);
    l->hist_cb = cb;
    struct bank_account *a = acc_find(id);
    if (a == NULL || (owner_id != 0 && a->owner_id != owner_id)) {
        l->rc = OF_NOTFOUND;
        fake_later(fire, l);
        return;
    }
    struct transfer *items = of_mem_calloc(m, sizeof(*items) * MAXT);
    int64_t seen = 0;
    for (size_t i = ntransfers; i-- > 0;) {
        if (transfers[i].from_account_id != id && transfers[i].to_account_id != id)
            continue;
        if (seen >= pg->offset && (int64_t)l->tl.n < pg->limit)
            items[l->tl.n++] = transfers[i];
        seen++;
    }
    l->tl.items = items;
    l->tl.total = seen;
    fake_later(fire, l);
}

static void
apply_move(const struct transfer *t)
{
    acc_find(t->from_account_id)->balance -= t->amount;
    acc_find(t->to_account_id)->balance += t->amount;
    transfers[ntransfers++] = *t;
}

static void
f_transfer(void *self, struct of_mem *m, struct repo_tx *rtx, int64_t caller_id,
           const struct transfer_input *in, transfer_stmt_cb cb, void *arg)
{
    (void)self; (void)m;
    repo_calls++;
    /* the service names the transfer.created event the statement writes */
    assert_non_null(in->ev.id);
    assert_int_equal(strlen(in->ev.id), OF_EVENT_ID_LEN);
    assert_memory_equal(in->ev.id, "evt_", 4);
    struct later *l = later_new(arg);
    l->xfer_cb = cb;
    struct bank_account *src = acc_find(in->from_account_id);
    struct bank_account *dst = acc_find(in->to_account_id);
    if (src == NULL || src->owner_id != caller_id) {
        l->outcome = TRANSFER_NO_SOURCE;
    } else if (dst == NULL) {
        l->outcome = TRANSFER_NO_DEST;
    } else if (src->balance < in->amount) {
        l->outcome = TRANSFER_NO_FUNDS;
    } else {
        l->outcome = TRANSFER_DONE;
        l->t = (struct transfer){ (int64_t)ntransfers + 1, in->from_account_id, in->to_account_id,
                                  in->amount, "2026-11-24T01:02:04.000000Z" };
        if (rtx != NULL) {
            struct ftx *tx = (struct ftx *)rtx;
            tx->has_move = true;
            tx->move = l->t;
        } else {
            apply_move(&l->t);
        }
    }
    fake_later(fire, l);
}

static const struct bank_repo_ops fake_bank_ops = { f_create, f_get, f_list, f_history, f_transfer };

/* ---- fake idempotency repository ---- */

struct fkey {
    bool    used, committed;
    int64_t user_id;
    char    route[64], key[256], fp[IDEM_FP_LEN + 1];
    int     status;
    char    body[1024];
};

static struct fkey keys[MAXK];
static int         n_commit, n_abort;

static int
key_find(const struct idem_key *k)
{
    for (int i = 0; i < MAXK; i++)
        if (keys[i].used && keys[i].user_id == k->user_id && strcmp(keys[i].route, k->route) == 0
            && strcmp(keys[i].key, k->key) == 0)
            return i;
    return -1;
}

static void
fi_begin(void *self, struct of_mem *m, const struct idem_key *k, idem_begin_cb cb, void *arg)
{
    (void)self;
    struct later *l = later_new(arg);
    l->begin_cb = cb;
    int i = k != NULL ? key_find(k) : -1;
    if (i >= 0) {
        l->what = IDEM_EXISTS;
        l->row.fingerprint = keys[i].fp;
        l->row.status = keys[i].committed ? keys[i].status : 0;
        l->row.body = keys[i].committed ? keys[i].body : NULL;
        fake_later(fire, l);
        return;
    }
    struct ftx *tx = of_mem_calloc(m, sizeof(*tx));
    tx->key = -1;
    if (k != NULL) {
        for (i = 0; i < MAXK && keys[i].used; i++)
            ;
        assert_true(i < MAXK);
        memset(&keys[i], 0, sizeof(keys[i]));
        keys[i].used = true;
        keys[i].user_id = k->user_id;
        snprintf(keys[i].route, sizeof(keys[i].route), "%s", k->route);
        snprintf(keys[i].key, sizeof(keys[i].key), "%s", k->key);
        memcpy(keys[i].fp, k->fingerprint, sizeof(keys[i].fp));
        tx->key = i;
    }
    l->what = IDEM_FRESH;
    l->tx = tx;
    fake_later(fire, l);
}

static void
fi_finish(void *self, struct of_mem *m, struct repo_tx *rtx, const struct idem_key *k, int status,
          const char *body, idem_end_cb cb, void *arg)
{
    (void)self; (void)m; (void)k;
    struct ftx *tx = (struct ftx *)rtx;
    if (tx->key >= 0) {
        keys[tx->key].committed = true;
        keys[tx->key].status = status;
        snprintf(keys[tx->key].body, sizeof(keys[0].body), "%s", body);
    }
    if (tx->has_move)
        apply_move(&tx->move);
    n_commit++;
    struct later *l = later_new(arg);
    l->end_cb = cb;
    fake_later(fire, l);
}

static void
fi_abort(void *self, struct repo_tx *rtx)
{
    (void)self;
    struct ftx *tx = (struct ftx *)rtx;
    if (tx->key >= 0)
        keys[tx->key].used = false;
    n_abort++;
}

static void
fi_purge(void *self, struct of_mem *m, void (*cb)(int, int64_t, void *), void *arg)
{
    (void)self; (void)m;
    cb(OF_OK, 0, arg);
}

static const struct idem_repo_ops fake_idem_ops = { fi_begin, fi_finish, fi_abort, fi_purge };

/* ---- fixtures ---- */

static struct hdl_services svc;

static int
setup(void **state)
{
    (void)state;
    fake_base = event_base_new();
    naccounts = ntransfers = 0;
    repo_calls = n_commit = n_abort = 0;
    memset(keys, 0, sizeof(keys));
    svc.bank = bank_svc_create((struct bank_repo){ &fake_bank_ops, NULL },
                               (struct idem_repo){ &fake_idem_ops, NULL });
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    bank_svc_destroy(svc.bank);
    event_base_free(fake_base);
    return 0;
}

/* ---- service-level helpers ---- */

struct got {
    int                  calls;
    int                  rc;
    const struct bank_account *a;      /* &copy: the fake frees its own after the call */
    struct bank_account  copy;
};

static void
on_account(int rc, const struct bank_account *a, void *arg)
{
    struct got *g = arg;
    g->calls++;
    g->rc = rc;
    if (a != NULL)
        g->copy = *a;
    g->a = a != NULL ? &g->copy : NULL;
}

static void
spin(int *calls)
{
    for (int i = 0; i < 2000 && *calls == 0; i++)
        event_base_loop(fake_base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

struct xres {
    int              renders, dones;
    int              rc, status;
    struct idem_answer ans;
};

static int
x_render(void *arg, int rc, const void *result, const char **body)
{
    (void)result;
    (void)body;
    struct xres *x = arg;
    x->renders++;
    x->rc = rc;
    x->status = rc == OF_OK ? 201 : rc == OF_CONFLICT ? 409 : rc == OF_NOTFOUND ? 404
              : rc == OF_INVALID ? 422 : 500;
    return x->status;
}

static void
x_done(void *arg, const struct idem_answer *a)
{
    struct xres *x = arg;
    x->dones++;
    x->ans = *a;
}

static bool
has_loc(const struct of_verrs *v, const char *field, enum of_verr_type type)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->e[i].nloc == 2 && strcmp(v->e[i].loc[0].key, "body") == 0
            && strcmp(v->e[i].loc[1].key, field) == 0 && v->e[i].type == type)
            return true;
    return false;
}

static struct transfer_input
xin(int64_t from, int64_t to, int64_t amount)
{
    return (struct transfer_input){ .has_from = true, .has_to = true, .has_amount = true,
                                    .from_account_id = from, .to_account_id = to, .amount = amount };
}

/* ---- service: account rules ---- */

static void
test_svc_negative_balance_is_badreq(void **state)
{
    (void)state;
    struct of_mem m;
    struct of_verrs v;
    struct got g = { 0 };
    of_mem_init(&m);
    of_verrs_init(&v);
    struct bank_account_input in = { .has_name = true, .has_balance = true, .name = "Savings",
                                     .name_len = 7, .balance = -1 };
    bank_svc_open(svc.bank, &m, 1, &in, &v, on_account, &g);
    assert_int_equal(g.calls, 1);           /* answered at once */
    assert_int_equal(g.rc, OF_BADREQ);
    assert_int_equal(v.n, 0);
    assert_int_equal(repo_calls, 0);
    of_mem_release(&m);
}

static void
test_svc_shape_problems_win_over_balance(void **state)
{
    (void)state;
    struct of_mem m;
    struct of_verrs v;
    struct got g = { 0 };
    of_mem_init(&m);
    of_verrs_init(&v);
    struct bank_account_input in = { .has_name = true, .has_balance = true, .name = "   ",
                                     .name_len = 3, .balance = -500 };
    bank_svc_open(svc.bank, &m, 1, &in, &v, on_account, &g);
    assert_int_equal(g.rc, OF_INVALID);
    assert_true(has_loc(&v, "name", OF_VE_VALUE));
    assert_int_equal(v.n, 1);
    assert_int_equal(repo_calls, 0);

    of_verrs_init(&v);
    struct bank_account_input none = { 0 };
    bank_svc_open(svc.bank, &m, 1, &none, &v, on_account, &g);
    assert_int_equal(g.rc, OF_INVALID);
    assert_true(has_loc(&v, "name", OF_VE_MISSING));
    assert_true(has_loc(&v, "balance", OF_VE_MISSING));
    of_mem_release(&m);
}

static void
test_svc_open_trims_and_zero_is_fine(void **state)
{
    (void)state;
    struct of_mem m;
    struct of_verrs v;
    struct got g = { 0 };
    of_mem_init(&m);
    of_verrs_init(&v);
    struct bank_account_input in = { .has_name = true, .has_balance = true, .name = "  Pot  ",
                                     .name_len = 7, .balance = 0 };
    bank_svc_open(svc.bank, &m, 9, &in, &v, on_account, &g);
    spin(&g.calls);
    assert_int_equal(g.rc, OF_OK);
    assert_string_equal(g.a->name, "Pot");
    assert_int_equal(g.a->balance, 0);
    assert_int_equal(g.a->owner_id, 9);
    of_mem_release(&m);
}

/* ---- service: transfer rules ---- */

static void
check_transfer_invalid(struct transfer_input in, const char *field, size_t nproblems)
{
    struct of_mem m;
    struct of_verrs v;
    struct xres x = { 0 };
    of_mem_init(&m);
    of_verrs_init(&v);
    bank_svc_transfer(svc.bank, &m, 1, &in, NULL, &v, x_render, x_done, &x);
    assert_int_equal(x.renders, 1);          /* synchronously, no database */
    assert_int_equal(x.dones, 1);
    assert_int_equal(x.rc, OF_INVALID);
    assert_int_equal(x.ans.rc, OF_OK);
    assert_int_equal(x.ans.status, 422);
    assert_null(x.ans.body);
    assert_true(has_loc(&v, field, OF_VE_VALUE));
    assert_int_equal(v.n, nproblems);
    assert_int_equal(repo_calls, 0);
    of_mem_release(&m);
}

static void
test_svc_amount_must_be_positive(void **state)
{
    (void)state;
    check_transfer_invalid(xin(1, 2, 0), "amount", 1);
    check_transfer_invalid(xin(1, 2, -1), "amount", 1);
    check_transfer_invalid(xin(1, 2, INT64_MIN), "amount", 1);
}

static void
test_svc_accounts_must_differ(void **state)
{
    (void)state;
    struct of_mem m;
    struct of_verrs v;
    struct xres x = { 0 };
    of_mem_init(&m);
    of_verrs_init(&v);
    struct transfer_input in = xin(3, 3, 100);
    bank_svc_transfer(svc.bank, &m, 1, &in, NULL, &v, x_render, x_done, &x);
    assert_int_equal(x.rc, OF_INVALID);
    assert_int_equal(v.n, 1);
    assert_true(has_loc(&v, "to_account_id", OF_VE_VALUE));
    /* both problems at once */
    of_verrs_init(&v);
    in = xin(3, 3, 0);
    bank_svc_transfer(svc.bank, &m, 1, &in, NULL, &v, x_render, x_done, &x);
    assert_int_equal(v.n, 2);
    assert_true(has_loc(&v, "to_account_id", OF_VE_VALUE));
    assert_true(has_loc(&v, "amount", OF_VE_VALUE));
    assert_int_equal(repo_calls, 0);
    of_mem_release(&m);
}

static void
test_svc_missing_and_bad_fields(void **state)
{
    (void)state;
    struct of_mem m;
    struct of_verrs v;
    struct xres x = { 0 };
    of_mem_init(&m);
    of_verrs_init(&v);
    struct transfer_input none = { 0 };
    bank_svc_transfer(svc.bank, &m, 1, &none, NULL, &v, x_render, x_done, &x);
    assert_int_equal(v.n, 3);
    assert_true(has_loc(&v, "from_account_id", OF_VE_MISSING));
    assert_true(has_loc(&v, "to_account_id", OF_VE_MISSING));
    assert_true(has_loc(&v, "amount", OF_VE_MISSING));
    /* a wrong-typed amount (reported by the handler) is neither missing nor <= 0 */
    of_verrs_init(&v);
    struct transfer_input bad = xin(1, 2, 0);
    bad.bad_amount = bad.bad = true;
    bank_svc_transfer(svc.bank, &m, 1, &bad, NULL, &v, x_render, x_done, &x);
    assert_int_equal(x.rc, OF_INVALID);
    assert_int_equal(v.n, 0);
    assert_int_equal(repo_calls, 0);
    of_mem_release(&m);
}

static void
test_svc_outcomes(void **state)
{
    (void)state;
    int64_t a = acc_add(1, "a", 1000), b = acc_add(2, "b", 0);
    struct { struct transfer_input in; int rc; const char *loc; } cases[] = {
        { xin(a, b, 1001), OF_CONFLICT, NULL },
        { xin(b, a, 1), OF_NOTFOUND, NULL },           /* not the caller's */
        { xin(99, b, 1), OF_NOTFOUND, NULL },
        { xin(a, 99, 1), OF_INVALID, "to_account_id" },
        { xin(a, b, 1000), OF_OK, NULL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct of_mem m;
        struct of_verrs v;
        struct xres x = { 0 };
        of_mem_init(&m);
        of_verrs_init(&v);
        bank_svc_transfer(svc.bank, &m, 1, &cases[i].in, NULL, &v, x_render, x_done, &x);
        spin(&x.dones);
        assert_int_equal(x.dones, 1);
        assert_int_equal(x.rc, cases[i].rc);
        if (cases[i].loc != NULL)
            assert_true(has_loc(&v, cases[i].loc, OF_VE_VALUE));
        of_mem_release(&m);
    }
    assert_int_equal(acc_find(a)->balance, 0);
    assert_int_equal(acc_find(b)->balance, 1000);
    assert_int_equal(ntransfers, 1);
}

/* ---- handlers ---- */

static struct fake_req *
call(hdl_fn fn, enum hdl_method m, const char *path, int64_t id, const char *query,
     const char *body, const char *idem, int64_t user, bool admin)
{
    struct fake_req *f = fake_req_new(&svc, m, path, query, body);
    f->r.ids[0] = id;
    f->r.nids = id ? 1 : 0;
    f->r.who.user_id = user;
    f->r.who.role = admin ? HDL_ROLE_ADMIN : HDL_ROLE_USER;
    if (idem != NULL) {
        f->headers[0][0] = "Idempotency-Key";
        f->headers[0][1] = idem;
    }
    fn(&f->r);
    fake_run(f);
    assert_int_equal(f->answers, 1);
    return f;
}

static struct fake_req *
post_transfer(const char *body, const char *idem, int64_t user)
{
    return call(hdl_transfers_create, HDL_POST, "/api/v1/transfers", 0, NULL, body, idem, user, false);
}

static const char *
jstr(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

static bool
json_has_loc(struct fake_req *f, const char *want)
{
    json_t *errs = json_object_get(f->json, "errors");
    size_t i;
    json_t *e;
    json_array_foreach(errs, i, e) {
        char *s = json_dumps(json_object_get(e, "loc"), JSON_COMPACT);
        bool eq = strcmp(s, want) == 0;
        free(s);
        if (eq)
            return true;
    }
    return false;
}

static void
test_http_create_account(void **state)
{
    (void)state;
    struct fake_req *f = call(hdl_bank_create, HDL_POST, "/api/v1/bank-accounts", 0, NULL,
                              "{\"name\":\"  Main \",\"balance\":\"100.5\"}", NULL, 4, false);
    assert_int_equal(f->status, 201);
    assert_string_equal(jstr(f->json, "name"), "Main");
    assert_string_equal(jstr(f->json, "balance"), "100.50");
    assert_int_equal(json_integer_value(json_object_get(f->json, "owner_id")), 4);
    fake_req_free(f);

    f = call(hdl_bank_create, HDL_POST, "/api/v1/bank-accounts", 0, NULL,
             "{\"name\":\"x\",\"balance\":\"-0.01\"}", NULL, 4, false);
    assert_int_equal(f->status, 400);
    assert_string_equal(f->body, "{\"detail\":\"Invalid balance\"}");
    fake_req_free(f);

    f = call(hdl_bank_create, HDL_POST, "/api/v1/bank-accounts", 0, NULL,
             "{\"name\":7,\"balance\":\"1.234\"}", NULL, 4, false);
    assert_int_equal(f->status, 422);
    assert_true(json_has_loc(f, "[\"body\",\"name\"]"));
    assert_true(json_has_loc(f, "[\"body\",\"balance\"]"));
    assert_int_equal(json_array_size(json_object_get(f->json, "errors")), 2);
    fake_req_free(f);
    assert_int_equal((int)naccounts, 1);
}

static void
test_http_visibility(void **state)
{
    (void)state;
    int64_t a = acc_add(1, "mine", 500);
    struct fake_req *f = call(hdl_bank_get, HDL_GET, "/api/v1/bank-accounts/1", a, NULL, NULL, NULL, 2, false);
    assert_int_equal(f->status, 404);
    assert_string_equal(f->body, "{\"detail\":\"Bank account 1 not found\"}");
    fake_req_free(f);
    f = call(hdl_bank_get, HDL_GET, "/api/v1/bank-accounts/1", a, NULL, NULL, NULL, 2, true);
    assert_int_equal(f->status, 200);
    assert_string_equal(jstr(f->json, "balance"), "5.00");
    fake_req_free(f);
    f = call(hdl_bank_list, HDL_GET, "/api/v1/bank-accounts", 0, NULL, NULL, NULL, 2, false);
    assert_int_equal(f->status, 200);
    assert_int_equal(json_integer_value(json_object_get(f->json, "total")), 0);
    fake_req_free(f);
    f = call(hdl_bank_history, HDL_GET, "/api/v1/bank-accounts/1/transfers", a, NULL, NULL, NULL, 2, false);
    assert_int_equal(f->status, 404);
    fake_req_free(f);
    f = call(hdl_bank_list, HDL_GET, "/api/v1/bank-accounts", 0, "page_size=0", NULL, NULL, 1, false);
    assert_int_equal(f->status, 422);
    fake_req_free(f);
}

static void
test_http_transfer_statuses(void **state)
{
    (void)state;
    acc_add(1, "a", 1000);   /* id 1, user 1 */
    acc_add(2, "b", 0);      /* id 2, user 2 */
    struct fake_req *f = post_transfer("{\"from_account_id\":1,\"to_account_id\":2,\"amount\":\"2.50\"}", NULL, 1);
    assert_int_equal(f->status, 201);
    assert_string_equal(jstr(f->json, "amount"), "2.50");
    fake_req_free(f);
    f = post_transfer("{\"from_account_id\":1,\"to_account_id\":2,\"amount\":\"100\"}", NULL, 1);
    assert_int_equal(f->status, 409);
    assert_string_equal(f->body, "{\"detail\":\"Insufficient funds\"}");
    fake_req_free(f);
    f = post_transfer("{\"from_account_id\":2,\"to_account_id\":1,\"amount\":\"1\"}", NULL, 1);
    assert_int_equal(f->status, 404);
    assert_string_equal(f->body, "{\"detail\":\"Bank account 2 not found\"}");
    fake_req_free(f);
    f = post_transfer("{\"from_account_id\":1,\"to_account_id\":77,\"amount\":\"1\"}", NULL, 1);
    assert_int_equal(f->status, 422);
    assert_true(json_has_loc(f, "[\"body\",\"to_account_id\"]"));
    fake_req_free(f);
    f = post_transfer("{\"from_account_id\":1,\"to_account_id\":1,\"amount\":0}", NULL, 1);
    assert_int_equal(f->status, 422);
    assert_true(json_has_loc(f, "[\"body\",\"to_account_id\"]"));
    assert_true(json_has_loc(f, "[\"body\",\"amount\"]"));
    fake_req_free(f);
    f = post_transfer("{\"from_account_id\":\"1\",\"to_account_id\":2,\"amount\":null}", "k" , 1);
    assert_int_equal(f->status, 422);
    assert_true(json_has_loc(f, "[\"body\",\"from_account_id\"]"));
    assert_true(json_has_loc(f, "[\"body\",\"amount\"]"));
    assert_int_equal(json_array_size(json_object_get(f->json, "errors")), 2);
    fake_req_free(f);
    assert_int_equal(acc_find(1)->balance, 750);
    assert_int_equal(acc_find(2)->balance, 250);
}

static void
test_http_transfer_idempotent(void **state)
{
    (void)state;
    acc_add(1, "a", 1000);
    acc_add(2, "b", 0);
    const char *body = "{\"from_account_id\":1,\"to_account_id\":2,\"amount\":\"3.00\"}";
    struct fake_req *f1 = post_transfer(body, "key-1", 1);
    assert_int_equal(f1->status, 201);
    assert_null(fake_out_header(f1, "Idempotent-Replayed"));
    struct fake_req *f2 = post_transfer("{ \"amount\":\"3.00\", \"to_account_id\":2, \"from_account_id\":1 }",
                                        "key-1", 1);
    assert_int_equal(f2->status, 201);
    assert_string_equal(f2->body, f1->body);
    assert_string_equal(fake_out_header(f2, "Idempotent-Replayed"), "true");
    assert_int_equal(ntransfers, 1);
    assert_int_equal(acc_find(1)->balance, 700);
    fake_req_free(f2);
    f2 = post_transfer("{\"from_account_id\":1,\"to_account_id\":2,\"amount\":\"4.00\"}", "key-1", 1);
    assert_int_equal(f2->status, 422);
    assert_string_equal(f2->body, "{\"detail\":\"Idempotency-Key reused with a different request\"}");
    fake_req_free(f2);
    fake_req_free(f1);

    /* a 409 is stored and replayed; a 404 is not stored */
    f1 = post_transfer("{\"from_account_id\":1,\"to_account_id\":2,\"amount\":\"99\"}", "key-2", 1);
    assert_int_equal(f1->status, 409);
    f2 = post_transfer("{\"from_account_id\":1,\"to_account_id\":2,\"amount\":\"99\"}", "key-2", 1);
    assert_int_equal(f2->status, 409);
    assert_string_equal(fake_out_header(f2, "Idempotent-Replayed"), "true");
    fake_req_free(f1);
    fake_req_free(f2);
    int aborts = n_abort;
    f1 = post_transfer("{\"from_account_id\":2,\"to_account_id\":1,\"amount\":\"1\"}", "key-3", 1);
    assert_int_equal(f1->status, 404);
    assert_int_equal(n_abort, aborts + 1);
    fake_req_free(f1);
    f1 = post_transfer("{\"from_account_id\":1,\"to_account_id\":2,\"amount\":\"1\"}", "key-3", 1);
    assert_int_equal(f1->status, 201);
    assert_null(fake_out_header(f1, "Idempotent-Replayed"));
    fake_req_free(f1);
    assert_int_equal(ntransfers, 2);
    assert_int_equal(acc_find(1)->balance, 600);
    assert_int_equal(acc_find(2)->balance, 400);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_svc_negative_balance_is_badreq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_svc_shape_problems_win_over_balance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_svc_open_trims_and_zero_is_fine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_svc_amount_must_be_positive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_svc_accounts_must_differ, setup, teardown),
        cmocka_unit_test_setup_teardown(test_svc_missing_and_bad_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_svc_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_create_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_visibility, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_transfer_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_transfer_idempotent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
