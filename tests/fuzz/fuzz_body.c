/*
 * fuzz_body.c -- libFuzzer target: a JSON request body through the real
 * handlers and services (products, customers, orders, bank accounts,
 * transfers), over in-memory repositories that answer at once (the
 * database's part is not under test here: validation, DTOs, money, the
 * idempotent run and the rendering are).
 *
 * Input: byte 0 picks the route, byte 1 some request flags (content type,
 * Idempotency-Key, admin), the rest is the body, as the client sent it --
 * or, for the list routes, the query string.
 *
 * Properties: the handler answers exactly once; with a status this route may
 * give (never 500); the body is JSON with "detail" for an error, and a 422
 * lists its problems; a created product/customer/account echoes a name that
 * is valid UTF-8 of 1..200 characters. ASan/UBSan catch the rest.
 * Build and run: tests/fuzz/build.sh, tests/fuzz/run.sh.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "domain/bank.h"
#include "domain/customer.h"
#include "domain/idem.h"
#include "domain/order.h"
#include "domain/product.h"
#include "handlers/bank.h"
#include "handlers/customers.h"
#include "handlers/hdl.h"
#include "handlers/orders.h"
#include "handlers/products.h"
#include "handlers/services.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define TS "2026-11-24T01:02:03.123456Z"

/* ---- the fake io: one answer captured ---- */

struct freq {
    struct hdl_req r;
    struct of_mem  mem;
    const char    *ctype;
    const char    *idem;
    int            answers;
    int            status;
    char          *body;
    size_t         len;
};

static const char *
io_header(struct hdl_req *r, const char *name)
{
    struct freq *f = (struct freq *)r;
    if (strcasecmp(name, "Content-Type") == 0)
        return f->ctype;
    if (strcasecmp(name, "Idempotency-Key") == 0)
        return f->idem;
    return NULL;
}

static void
io_add_header(struct hdl_req *r, const char *name, const char *value)
{
    (void)r;
    if (name == NULL || value == NULL)
        abort();
}

static void
io_send(struct hdl_req *r, int status, const char *ctype, const char *body, size_t len)
{
    struct freq *f = (struct freq *)r;
    (void)ctype;
    f->answers++;
    f->status = status;
    free(f->body);
    f->body = malloc(len + 1);
    memcpy(f->body, body, len);
    f->body[len] = '\0';
    f->len = len;
}

static const struct hdl_io fio = { io_header, io_add_header, io_send, NULL };

/* ---- repositories that answer at once ---- */

static const char *
dup(struct of_mem *m, const char *s, size_t n)
{
    return s == NULL ? NULL : of_mem_strndup(m, s, n);
}

static void p_get(void *s, struct of_mem *m, int64_t id, product_cb cb, void *a)
{ (void)s; (void)m; (void)id; cb(OF_NOTFOUND, NULL, a); }
static void p_list(void *s, struct of_mem *m, const struct product_filter *f, product_list_cb cb, void *a)
{ (void)s; (void)m; (void)f; struct product_list l = { NULL, 0, 0 }; cb(OF_OK, &l, a); }
static void
p_write(struct of_mem *m, const struct product_input *in, product_cb cb, void *a)
{
    struct product p = { 1, in->has_name ? dup(m, in->name, in->name_len) : "old", in->has_price ? in->price : 100,
                         in->has_in_stock ? in->in_stock : true, TS, TS };
    cb(OF_OK, &p, a);
}
static void p_create(void *s, struct of_mem *m, const struct product_input *in,
                     const struct audit_ctx *au, product_cb cb, void *a)
{ (void)s; (void)au; p_write(m, in, cb, a); }
static void p_update(void *s, struct of_mem *m, int64_t id, const struct product_input *in,
                     const struct audit_ctx *au, product_cb cb, void *a)
{ (void)s; (void)id; (void)au; p_write(m, in, cb, a); }
static void p_remove(void *s, struct of_mem *m, int64_t id, const struct audit_ctx *au,
                     product_done_cb cb, void *a)
{ (void)s; (void)m; (void)id; (void)au; cb(OF_OK, a); }
static const struct product_repo_ops p_ops = { p_get, p_list, p_create, p_update, p_remove };

static void c_get(void *s, struct of_mem *m, int64_t id, customer_cb cb, void *a)
{ (void)s; (void)m; (void)id; cb(OF_NOTFOUND, NULL, a); }
static void c_list(void *s, struct of_mem *m, const struct customer_filter *f, customer_list_cb cb, void *a)
{ (void)s; (void)m; (void)f; struct customer_list l = { NULL, 0, 0 }; cb(OF_OK, &l, a); }
static void
c_write(struct of_mem *m, const struct customer_input *in, customer_cb cb, void *a)
{
    struct customer c = { 1, in->has_name ? dup(m, in->name, in->name_len) : "old",
                          in->has_email ? dup(m, in->email, in->email_len) : "old@x.io",
                          in->has_tier ? in->tier : RULES_TIER_FREE,
                          in->has_is_active ? in->is_active : true, TS };
    cb(OF_OK, &c, a);
}
static void c_create(void *s, struct of_mem *m, const struct customer_input *in, customer_cb cb, void *a)
{ (void)s; c_write(m, in, cb, a); }
static void c_update(void *s, struct of_mem *m, int64_t id, const struct customer_input *in,
                     customer_cb cb, void *a)
{ (void)s; (void)id; c_write(m, in, cb, a); }
static void c_remove(void *s, struct of_mem *m, int64_t id, const struct audit_ctx *au,
                     customer_removed_cb cb, void *a)
{ (void)s; (void)m; (void)id; (void)au; cb(OF_OK, CUSTOMER_DELETED, a); }
static const struct customer_repo_ops c_ops = { c_get, c_list, c_create, c_update, c_remove };

/* Orders: customer ids divisible by 7 are unknown, by 5 inactive; product
 * ids divisible by 5 unknown, by 11 out of stock; prices from the id, huge
 * for huge ids (the total must catch the overflow). */
static void
o_lock_refs(void *s, struct repo_tx *tx, struct of_mem *m, int64_t customer_id,
            const int64_t *ids, size_t n, order_refs_cb cb, void *a)
{
    (void)s; (void)tx;
    struct order_ref_product *ps = of_mem_calloc(m, sizeof(*ps) * (n ? n : 1));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] % 5 == 0)
            continue;
        ps[k].id = ids[i];
        ps[k].name = "Lamp";
        ps[k].price = ids[i] > 1000000 ? ids[i] : ids[i] * 1999;
        ps[k].in_stock = ids[i] % 11 != 0;
        k++;
    }
    struct order_refs r = { customer_id % 7 != 0, customer_id % 5 != 0, "Ada", ps, k };
    cb(OF_OK, &r, a);
}
static void
o_insert(void *s, struct repo_tx *tx, struct of_mem *m, const struct order_new *o, order_cb cb, void *a)
{
    (void)s; (void)tx;
    struct order_item *it = of_mem_calloc(m, sizeof(*it) * (o->n ? o->n : 1));
    for (size_t i = 0; i < o->n; i++) {
        it[i] = (struct order_item){ (int64_t)i + 1, o->product_ids[i], "Lamp", o->quantities[i],
                                     o->unit_prices[i] };
    }
    struct order ord = { 1, o->customer_id, o->customer_name, RULES_STATUS_PENDING, o->total,
                         o->notes, o->created_by, it, o->n, TS, TS };
    cb(OF_OK, &ord, a);
}
static void o_get(void *s, struct of_mem *m, int64_t id, int64_t viewer, order_cb cb, void *a)
{ (void)s; (void)m; (void)id; (void)viewer; cb(OF_NOTFOUND, NULL, a); }
static void o_list(void *s, struct of_mem *m, const struct order_filter *f, order_list_cb cb, void *a)
{ (void)s; (void)m; (void)f; struct order_list l = { NULL, 0, 0 }; cb(OF_OK, &l, a); }
static void o_transition(void *s, struct of_mem *m, const struct order_transition *t,
                         order_transition_cb cb, void *a)
{ (void)s; (void)m; (void)t; cb(OF_NOTFOUND, NULL, RULES_STATUS_PENDING, a); }
static void o_remove(void *s, struct of_mem *m, int64_t id, const struct audit_ctx *au,
                     order_done_cb cb, void *a)
{ (void)s; (void)m; (void)id; (void)au; cb(OF_OK, a); }
static const struct order_repo_ops o_ops = { o_lock_refs, o_insert, o_get, o_list, o_transition,
                                             o_remove };

static int the_tx;
static void i_begin(void *s, struct of_mem *m, const struct idem_key *k, idem_begin_cb cb, void *a)
{ (void)s; (void)m; (void)k; cb(OF_OK, IDEM_FRESH, (struct repo_tx *)&the_tx, NULL, a); }
static void i_finish(void *s, struct of_mem *m, struct repo_tx *tx, const struct idem_key *k,
                     int status, const char *body, idem_end_cb cb, void *a)
{ (void)s; (void)m; (void)tx; (void)k; (void)status; (void)body; cb(OF_OK, a); }
static void i_abort(void *s, struct repo_tx *tx) { (void)s; (void)tx; }
static void i_purge(void *s, struct of_mem *m, void (*cb)(int rc, int64_t n, void *arg), void *a)
{ (void)s; (void)m; cb(OF_OK, 0, a); }
static const struct idem_repo_ops i_ops = { i_begin, i_finish, i_abort, i_purge };

static void
b_create(void *s, struct of_mem *m, int64_t owner, const struct bank_account_input *in,
         bank_account_cb cb, void *a)
{
    (void)s;
    struct bank_account acc = { 1, dup(m, in->name, in->name_len), in->balance, owner, TS };
    cb(OF_OK, &acc, a);
}
static void b_get(void *s, struct of_mem *m, int64_t id, int64_t owner, bank_account_cb cb, void *a)
{ (void)s; (void)m; (void)id; (void)owner; cb(OF_NOTFOUND, NULL, a); }
static void b_list(void *s, struct of_mem *m, int64_t owner, const struct page_req *pg,
                   bank_account_list_cb cb, void *a)
{ (void)s; (void)m; (void)owner; (void)pg; struct bank_account_list l = { NULL, 0, 0 }; cb(OF_OK, &l, a); }
static void b_history(void *s, struct of_mem *m, int64_t id, int64_t owner, const struct page_req *pg,
                      transfer_list_cb cb, void *a)
{ (void)s; (void)m; (void)id; (void)owner; (void)pg; cb(OF_NOTFOUND, NULL, a); }
static void
b_transfer(void *s, struct of_mem *m, struct repo_tx *tx, int64_t caller,
           const struct transfer_input *in, transfer_stmt_cb cb, void *a)
{
    (void)s; (void)m; (void)tx; (void)caller;
    enum transfer_outcome o = in->from_account_id % 3 == 0 ? TRANSFER_NO_SOURCE
                            : in->to_account_id % 3 == 0   ? TRANSFER_NO_DEST
                            : in->amount % 3 == 0          ? TRANSFER_NO_FUNDS
                            : TRANSFER_DONE;
    struct transfer t = { 1, in->from_account_id, in->to_account_id, in->amount, TS };
    cb(OF_OK, o, o == TRANSFER_DONE ? &t : NULL, a);
}
static const struct bank_repo_ops b_ops = { b_create, b_get, b_list, b_history, b_transfer };

/* ---- the target ---- */

static struct hdl_services svc;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    struct idem_repo idem = { &i_ops, NULL };
    svc.products = product_svc_create((struct product_repo){ &p_ops, NULL });
    svc.customers = customer_svc_create((struct customer_repo){ &c_ops, NULL });
    svc.orders = order_svc_create((struct order_repo){ &o_ops, NULL }, idem);
    svc.bank = bank_svc_create((struct bank_repo){ &b_ops, NULL }, idem);
    if (!svc.products || !svc.customers || !svc.orders || !svc.bank)
        abort();
    return 0;
}

struct route_case {
    hdl_fn          fn;
    enum hdl_method method;
    int             ok;        /* the success status */
    bool            query;     /* the input is the query string, not the body */
};

static const struct route_case routes[] = {
    { hdl_products_create,  HDL_POST,  201 },
    { hdl_products_patch,   HDL_PATCH, 200 },
    { hdl_customers_create, HDL_POST,  201 },
    { hdl_customers_patch,  HDL_PATCH, 200 },
    { hdl_orders_create,    HDL_POST,  201 },
    { hdl_bank_create,      HDL_POST,  201 },
    { hdl_transfers_create, HDL_POST,  201 },
    { hdl_products_list,    HDL_GET,   200, true },
    { hdl_customers_list,   HDL_GET,   200, true },
    { hdl_orders_list,      HDL_GET,   200, true },
    { hdl_bank_list,        HDL_GET,   200, true },
};

static bool
status_allowed(int st, int ok)
{
    return st == ok || st == 400 || st == 403 || st == 404 || st == 409 || st == 415 ||
           st == 422;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const struct route_case *rc = &routes[data[0] % (sizeof(routes) / sizeof(routes[0]))];
    uint8_t flags = data[1];
    /* exact-size heap copy + NUL, as the worker hands bodies over */
    char *body = malloc(size - 2 + 1);
    memcpy(body, data + 2, size - 2);
    body[size - 2] = '\0';

    struct freq *f = calloc(1, sizeof(*f));
    of_mem_init(&f->mem);
    f->r.mem = &f->mem;
    f->r.io = &fio;
    f->r.svc = &svc;
    f->r.method = rc->method;
    f->r.path = "/fuzz";
    f->r.body = rc->query ? "" : body;
    f->r.body_len = rc->query ? 0 : size - 2;
    f->r.query = rc->query ? body : NULL;
    f->r.ids[0] = 1 + (flags >> 4);
    f->r.nids = 1;
    f->r.request_id = "fuzz";
    f->r.client_ip = "127.0.0.1";
    f->r.who.user_id = 2;
    f->r.who.role = (flags & 1) ? HDL_ROLE_ADMIN : HDL_ROLE_USER;
    f->ctype = (flags & 6) == 0 ? "text/plain" : (flags & 6) == 2 ? "application/json; charset=utf-8"
                                                                   : "application/json";
    f->idem = (flags & 8) ? "fuzz-key-1" : NULL;

    rc->fn(&f->r);

    if (f->answers != 1) {
        fprintf(stderr, "answers: %d\n", f->answers);
        abort();
    }
    if (!status_allowed(f->status, rc->ok)) {
        fprintf(stderr, "status %d: %s\n", f->status, f->body);
        abort();
    }
    json_error_t err;
    json_t *j = json_loadb(f->body, f->len, 0, &err);
    if (j == NULL || !json_is_object(j)) {
        fprintf(stderr, "answer is not a JSON object: %s\n", f->body);
        abort();
    }
    if (f->status >= 400 && !json_is_string(json_object_get(j, "detail")))
        abort();
    if (f->status == 422 && json_object_get(j, "errors") != NULL &&
        json_array_size(json_object_get(j, "errors")) == 0)
        abort();
    if (f->status == rc->ok && rc->ok == 201) {
        json_t *name = json_object_get(j, "name");
        if (name != NULL) {
            const char *s = json_string_value(name);
            long n = s ? of_utf8_len(s, strlen(s)) : -1;
            if (n < 1 || n > 200) {
                fprintf(stderr, "created with name of %ld characters\n", n);
                abort();
            }
        }
    }
    json_decref(j);
    of_mem_release(&f->mem);
    free(f->body);
    free(f);
    free(body);
    return 0;
}
