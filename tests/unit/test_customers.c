/*
 * test_customers.c -- the customer field rules, service and handlers against
 * an in-memory fake repository that answers on the next loop turn, the way
 * the PostgreSQL one does. No database, no sockets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/unit/support/fake_http.h"
#include "handlers/customers.h"
#include "domain/customer.h"
#include "common/of.h"

/* ---- the fake repository ---- */

#define MAXC 32

struct row {
    struct customer c;
    char            name[256], email[256];
    bool            has_orders, gone;
};

static struct row             rows[MAXC];
static size_t                 nrows;
static int                    audit_rows;
static struct customer_filter last_filter;
static enum customer_removal  last_removal;

struct pending {
    int                  rc;
    struct customer      c;
    struct customer_list l;
    enum customer_removal how;
    customer_cb          cb;
    customer_list_cb     list_cb;
    customer_removed_cb  removed_cb;
    void                *arg;
};

static void
answer(void *x)
{
    struct pending *q = x;
    if (q->cb)
        q->cb(q->rc, q->rc == OF_OK ? &q->c : NULL, q->arg);
    else if (q->list_cb)
        q->list_cb(q->rc, &q->l, q->arg);
    else
        q->removed_cb(q->rc, q->how, q->arg);
    free(q);
}

static struct pending *
pending_new(void *arg)
{
    struct pending *q = calloc(1, sizeof(*q));
    q->arg = arg;
    return q;
}

static struct row *
find(int64_t id)
{
    for (size_t i = 0; i < nrows; i++)
        if (rows[i].c.id == id && !rows[i].gone)
            return &rows[i];
    return NULL;
}

static bool
email_taken(const char *email, int64_t except)
{
    for (size_t i = 0; i < nrows; i++)
        if (!rows[i].gone && rows[i].c.id != except && strcasecmp(rows[i].c.email, email) == 0)
            return true;
    return false;
}

static void
apply(struct row *w, const struct customer_input *in)
{
    if (in->has_name) {
        snprintf(w->name, sizeof(w->name), "%s", in->name);
        w->c.name = w->name;
    }
    if (in->has_email) {
        snprintf(w->email, sizeof(w->email), "%s", in->email);
        w->c.email = w->email;
    }
    if (in->has_tier)
        w->c.tier = in->tier;
    if (in->has_is_active)
        w->c.is_active = in->is_active;
}

static void
f_get(void *self, struct of_mem *m, int64_t id, customer_cb cb, void *arg)
{
    struct pending *q = pending_new(arg);
    (void)self; (void)m;
    q->cb = cb;
    struct row *w = find(id);
    q->rc = w ? OF_OK : OF_NOTFOUND;
    if (w)
        q->c = w->c;
    fake_later(answer, q);
}

static void
f_list(void *self, struct of_mem *m, const struct customer_filter *f, customer_list_cb cb, void *arg)
{
    struct pending *q = pending_new(arg);
    (void)self;
    q->list_cb = cb;
    last_filter = *f;
    struct customer *items = of_mem_alloc(m, sizeof(struct customer) * MAXC);
    size_t n = 0;
    int64_t total = 0;
    for (size_t i = 0; i < nrows; i++) {
        const struct customer *c = &rows[i].c;
        if (rows[i].gone || (f->tier >= 0 && (int)c->tier != f->tier) ||
            (f->is_active >= 0 && c->is_active != (f->is_active == 1)))
            continue;
        if (f->q && strcasestr(c->name, f->q) == NULL && strcasestr(c->email, f->q) == NULL)
            continue;
        if (total >= f->pg.offset && (int64_t)n < f->pg.limit)
            items[n++] = *c;
        total++;
    }
    q->l.items = items;
    q->l.n = n;
    q->l.total = total;
    fake_later(answer, q);
}

static void
f_create(void *self, struct of_mem *m, const struct customer_input *in, customer_cb cb, void *arg)
{
    struct pending *q = pending_new(arg);
    (void)self; (void)m;
    q->cb = cb;
    if (email_taken(in->email, 0)) {
        q->rc = OF_CONFLICT;
    } else {
        struct row *w = &rows[nrows];
        memset(w, 0, sizeof(*w));
        w->c.id = (int64_t)++nrows;
        w->c.created_at = "2026-11-24T00:00:00.000000Z";
        apply(w, in);
        q->c = w->c;
        q->rc = OF_OK;
    }
    fake_later(answer, q);
}

static void
f_update(void *self, struct of_mem *m, int64_t id, const struct customer_input *in,
         customer_cb cb, void *arg)
{
    struct pending *q = pending_new(arg);
    (void)self; (void)m;
    q->cb = cb;
    struct row *w = find(id);
    if (w == NULL) {
        q->rc = OF_NOTFOUND;
    } else if (in->has_email && email_taken(in->email, id)) {
        q->rc = OF_CONFLICT;
    } else {
        apply(w, in);
        q->c = w->c;
        q->rc = OF_OK;
    }
    fake_later(answer, q);
}

static void
f_remove(void *self, struct of_mem *m, int64_t id, const struct audit_ctx *a,
         customer_removed_cb cb, void *arg)
{
    struct pending *q = pending_new(arg);
    (void)self; (void)m; (void)a;
    q->removed_cb = cb;
    struct row *w = find(id);
    q->rc = w ? OF_OK : OF_NOTFOUND;
    if (w) {
        q->how = w->has_orders ? CUSTOMER_DEACTIVATED : CUSTOMER_DELETED;
        if (w->has_orders)
            w->c.is_active = false;
        else
            w->gone = true;
        last_removal = q->how;
        audit_rows++;
    }
    fake_later(answer, q);
}

static const struct customer_repo_ops fake_ops = { f_get, f_list, f_create, f_update, f_remove };
static struct hdl_services svc;

static int
setup(void **state)
{
    (void)state;
    fake_base = event_base_new();
    nrows = 0;
    audit_rows = 0;
    memset(&last_filter, 0, sizeof(last_filter));
    svc.customers = customer_svc_create((struct customer_repo){ &fake_ops, NULL });
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    customer_svc_destroy(svc.customers);
    event_base_free(fake_base);
    return 0;
}

/* ---- helpers ---- */

static struct fake_req *
call_as(hdl_fn fn, enum hdl_method m, int64_t id, const char *query, const char *body,
        enum hdl_role role)
{
    struct fake_req *f = fake_req_new(&svc, m, "/api/v1/customers", query, body);
    f->r.ids[0] = id;
    f->r.nids = id ? 1 : 0;
    f->r.who.user_id = 1;
    f->r.who.role = role;
    fn(&f->r);
    fake_run(f);
    assert_int_equal(f->answers, 1);
    return f;
}

static struct fake_req *
call(hdl_fn fn, enum hdl_method m, int64_t id, const char *query, const char *body)
{
    return call_as(fn, m, id, query, body, HDL_ROLE_USER);
}

static const char *
jstr(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

/* True if the 422 lists a problem at [where, field] of that type. */
static bool
has_error(struct fake_req *f, const char *where, const char *field, const char *type)
{
    json_t *errs = json_object_get(f->json, "errors");
    size_t  i;
    json_t *e;
    json_array_foreach(errs, i, e) {
        json_t *loc = json_object_get(e, "loc");
        if (json_array_size(loc) == 2 && strcmp(json_string_value(json_array_get(loc, 0)), where) == 0 &&
            strcmp(json_string_value(json_array_get(loc, 1)), field) == 0 &&
            strcmp(jstr(e, "type"), type) == 0)
            return true;
    }
    return false;
}

static size_t
n_errors(struct fake_req *f)
{
    return json_array_size(json_object_get(f->json, "errors"));
}

static void
make(const char *body)
{
    struct fake_req *f = call(hdl_customers_create, HDL_POST, 0, NULL, body);
    if (f->status != 201)
        fail_msg("create %s: %d %s", body, f->status, f->body);
    fake_req_free(f);
}

/* ---- domain rules ---- */

static void
test_validate_name_bounds(void **state)
{
    static const struct { size_t n; bool ok; } cases[] = { { 0, false }, { 1, true }, { 200, true },
                                                          { 201, false } };
    (void)state;
    for (size_t i = 0; i < OF_ARRAY_LEN(cases); i++) {
        struct of_mem   m;
        struct of_verrs v;
        char            name[256];
        of_mem_init(&m);
        of_verrs_init(&v);
        memset(name, 'n', cases[i].n);
        name[cases[i].n] = '\0';
        struct customer_input in = { .has_name = true, .name = name, .name_len = cases[i].n,
                                     .has_email = true, .email = "a@b.io", .email_len = 6 };
        customer_validate(&in, true, &m, &v);
        if (of_verrs_any(&v) == cases[i].ok)
            fail_msg("name of %zu chars: ok=%d expected", cases[i].n, cases[i].ok);
        of_mem_release(&m);
    }
}

static void
test_validate_defaults_and_normalises(void **state)
{
    struct of_mem   m;
    struct of_verrs v;
    (void)state;
    of_mem_init(&m);
    of_verrs_init(&v);
    struct customer_input in = { .has_name = true, .name = "  Ada\t", .name_len = 6,
                                 .has_email = true, .email = " Ada@EXAMPLE.com ", .email_len = 17 };
    customer_validate(&in, true, &m, &v);
    assert_false(of_verrs_any(&v));
    assert_string_equal(in.name, "Ada");
    assert_string_equal(in.email, "ada@example.com");
    assert_true(in.has_tier && in.tier == RULES_TIER_FREE);
    assert_true(in.has_is_active && in.is_active);
    of_mem_release(&m);
}

static void
test_validate_patch_requires_nothing(void **state)
{
    struct of_mem   m;
    struct of_verrs v;
    (void)state;
    of_mem_init(&m);
    of_verrs_init(&v);
    struct customer_input in = { 0 };
    customer_validate(&in, false, &m, &v);
    assert_false(of_verrs_any(&v));
    assert_false(in.has_tier || in.has_is_active || in.has_name || in.has_email);
    customer_validate(&in, true, &m, &v);
    assert_int_equal(v.n, 2);        /* name and email missing */
    of_mem_release(&m);
}

static void
test_sort_allowlist(void **state)
{
    enum customer_sort s;
    (void)state;
    assert_true(customer_sort_parse("id", &s) && s == CSORT_ID);
    assert_true(customer_sort_parse("-id", &s) && s == CSORT_ID_DESC);
    assert_true(customer_sort_parse("name", &s) && s == CSORT_NAME);
    assert_true(customer_sort_parse("-name", &s) && s == CSORT_NAME_DESC);
    assert_false(customer_sort_parse("email", &s));
    assert_false(customer_sort_parse("", &s));
    assert_false(customer_sort_parse("ID", &s));
}

/* ---- handlers over the fake ---- */

static void
test_create_201_trims_lowercases_defaults(void **state)
{
    (void)state;
    struct fake_req *f = call(hdl_customers_create, HDL_POST, 0, NULL,
                              "{\"name\":\"  Ada \",\"email\":\" Ada@Example.COM\"}");
    assert_int_equal(f->status, 201);
    assert_string_equal(jstr(f->json, "name"), "Ada");
    assert_string_equal(jstr(f->json, "email"), "ada@example.com");
    assert_string_equal(jstr(f->json, "tier"), "free");
    assert_true(json_is_true(json_object_get(f->json, "is_active")));
    assert_int_equal(json_object_size(f->json), 6);
    fake_req_free(f);
}

static void
test_create_duplicate_email_409(void **state)
{
    (void)state;
    make("{\"name\":\"A\",\"email\":\"a@x.io\"}");
    struct fake_req *f = call(hdl_customers_create, HDL_POST, 0, NULL,
                              "{\"name\":\"B\",\"email\":\"A@X.IO\"}");
    assert_int_equal(f->status, 409);
    assert_string_equal(jstr(f->json, "detail"), "Customer email already exists");
    fake_req_free(f);
}

static void
test_create_reports_every_problem(void **state)
{
    (void)state;
    struct fake_req *f = call(hdl_customers_create, HDL_POST, 0, NULL,
                              "{\"name\":\" \",\"email\":\"nope\",\"tier\":\"gold\",\"is_active\":1}");
    assert_int_equal(f->status, 422);
    assert_true(has_error(f, "body", "name", "value_error"));
    assert_true(has_error(f, "body", "email", "value_error"));
    assert_true(has_error(f, "body", "tier", "value_error"));
    assert_true(has_error(f, "body", "is_active", "type_error"));
    assert_int_equal(n_errors(f), 4);
    assert_int_equal(nrows, 0);
    fake_req_free(f);
    f = call(hdl_customers_create, HDL_POST, 0, NULL, "{\"tier\":\"pro\"}");
    assert_int_equal(f->status, 422);
    assert_true(has_error(f, "body", "name", "missing"));
    assert_true(has_error(f, "body", "email", "missing"));
    assert_int_equal(n_errors(f), 2);
    fake_req_free(f);
}

static void
test_patch_null_empty_subset_conflict(void **state)
{
    (void)state;
    make("{\"name\":\"A\",\"email\":\"a@x.io\"}");
    make("{\"name\":\"B\",\"email\":\"b@x.io\",\"tier\":\"pro\"}");
    struct fake_req *f = call(hdl_customers_patch, HDL_PATCH, 2, NULL, "{\"email\":null}");
    assert_int_equal(f->status, 422);
    assert_true(has_error(f, "body", "email", "type_error"));
    fake_req_free(f);
    f = call(hdl_customers_patch, HDL_PATCH, 2, NULL, "{}");
    assert_int_equal(f->status, 200);
    assert_string_equal(jstr(f->json, "email"), "b@x.io");
    assert_string_equal(jstr(f->json, "tier"), "pro");
    fake_req_free(f);
    f = call(hdl_customers_patch, HDL_PATCH, 2, NULL, "{\"tier\":\"enterprise\",\"is_active\":false}");
    assert_int_equal(f->status, 200);
    assert_string_equal(jstr(f->json, "tier"), "enterprise");
    assert_true(json_is_false(json_object_get(f->json, "is_active")));
    assert_string_equal(jstr(f->json, "name"), "B");
    fake_req_free(f);
    f = call(hdl_customers_patch, HDL_PATCH, 2, NULL, "{\"email\":\" A@x.io\"}");
    assert_int_equal(f->status, 409);
    fake_req_free(f);
    f = call(hdl_customers_patch, HDL_PATCH, 77, NULL, "{\"name\":\"x\"}");
    assert_int_equal(f->status, 404);
    assert_string_equal(jstr(f->json, "detail"), "Customer 77 not found");
    fake_req_free(f);
}

static void
test_get_unknown_404_with_id(void **state)
{
    (void)state;
    struct fake_req *f = call(hdl_customers_get, HDL_GET, 7, NULL, NULL);
    assert_int_equal(f->status, 404);
    assert_string_equal(jstr(f->json, "detail"), "Customer 7 not found");
    fake_req_free(f);
}

static void
test_delete_or_deactivate_both_204(void **state)
{
    (void)state;
    make("{\"name\":\"Plain\",\"email\":\"p@x.io\"}");
    make("{\"name\":\"Buyer\",\"email\":\"b@x.io\"}");
    rows[1].has_orders = true;
    struct fake_req *f = call_as(hdl_customers_delete, HDL_DELETE, 1, NULL, NULL, HDL_ROLE_ADMIN);
    assert_int_equal(f->status, 204);
    assert_int_equal(last_removal, CUSTOMER_DELETED);
    fake_req_free(f);
    f = call_as(hdl_customers_delete, HDL_DELETE, 2, NULL, NULL, HDL_ROLE_ADMIN);
    assert_int_equal(f->status, 204);
    assert_int_equal(last_removal, CUSTOMER_DEACTIVATED);
    fake_req_free(f);
    f = call(hdl_customers_get, HDL_GET, 2, NULL, NULL);
    assert_int_equal(f->status, 200);
    assert_true(json_is_false(json_object_get(f->json, "is_active")));
    fake_req_free(f);
    f = call_as(hdl_customers_delete, HDL_DELETE, 1, NULL, NULL, HDL_ROLE_ADMIN);
    assert_int_equal(f->status, 404);
    assert_string_equal(jstr(f->json, "detail"), "Customer 1 not found");
    fake_req_free(f);
    assert_int_equal(audit_rows, 2);
}

static void
test_list_filters_paging_and_bounds(void **state)
{
    (void)state;
    make("{\"name\":\"Ann\",\"email\":\"ann@x.io\",\"tier\":\"pro\"}");
    make("{\"name\":\"Ben\",\"email\":\"ben@corp.io\"}");
    make("{\"name\":\"Cid\",\"email\":\"cid@x.io\",\"tier\":\"pro\",\"is_active\":false}");
    struct fake_req *f = call(hdl_customers_list, HDL_GET, 0, "tier=pro&is_active=true&q=an&sort=-name", NULL);
    assert_int_equal(f->status, 200);
    assert_int_equal(last_filter.tier, RULES_TIER_PRO);
    assert_int_equal(last_filter.is_active, 1);
    assert_string_equal(last_filter.q, "an");
    assert_int_equal(last_filter.sort, CSORT_NAME_DESC);
    assert_int_equal(json_integer_value(json_object_get(f->json, "total")), 1);
    fake_req_free(f);
    f = call(hdl_customers_list, HDL_GET, 0, "page=2&page_size=2", NULL);
    assert_int_equal(f->status, 200);
    assert_int_equal(last_filter.pg.offset, 2);
    assert_int_equal(last_filter.pg.limit, 2);
    assert_int_equal(last_filter.tier, -1);
    assert_int_equal(last_filter.is_active, -1);
    assert_null(last_filter.q);
    assert_int_equal(json_integer_value(json_object_get(f->json, "total_pages")), 2);
    assert_int_equal(json_array_size(json_object_get(f->json, "items")), 1);
    fake_req_free(f);
    static const struct { const char *q, *field; } bad[] = {
        { "tier=gold", "tier" }, { "is_active=maybe", "is_active" }, { "sort=email", "sort" },
        { "page=0", "page" }, { "page_size=101", "page_size" },
    };
    for (size_t i = 0; i < OF_ARRAY_LEN(bad); i++) {
        f = call(hdl_customers_list, HDL_GET, 0, bad[i].q, NULL);
        if (f->status != 422)
            fail_msg("%s: %d", bad[i].q, f->status);
        assert_true(has_error(f, "query", bad[i].field, json_string_value(json_object_get(
            json_array_get(json_object_get(f->json, "errors"), 0), "type"))));
        assert_int_equal(n_errors(f), 1);
        fake_req_free(f);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_name_bounds),
        cmocka_unit_test(test_validate_defaults_and_normalises),
        cmocka_unit_test(test_validate_patch_requires_nothing),
        cmocka_unit_test(test_sort_allowlist),
        cmocka_unit_test_setup_teardown(test_create_201_trims_lowercases_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_duplicate_email_409, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_reports_every_problem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch_null_empty_subset_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_unknown_404_with_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_or_deactivate_both_204, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_filters_paging_and_bounds, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
