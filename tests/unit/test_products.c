/*
 * test_products.c -- the products handlers and service against an
 * in-memory fake repository that answers on the next loop turn, the way the
 * PostgreSQL one does. No database, no sockets.
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
#include "handlers/products.h"
#include "domain/product.h"
#include "common/of.h"

/* ---- the fake repository ---- */

#define MAXP 64

static struct product store[MAXP];
static char           names[MAXP][256];
static size_t         nstore;
static int64_t        next_id;
static int            audit_rows;

struct pending {
    int                  rc;
    struct product       p;
    struct product_list  l;
    product_cb           cb;
    product_list_cb      list_cb;
    product_done_cb      done_cb;
    void                *arg;
};

static void
answer(void *x)
{
    struct pending *q = x;
    if (q->cb)
        q->cb(q->rc, q->rc == OF_OK ? &q->p : NULL, q->arg);
    else if (q->list_cb)
        q->list_cb(q->rc, &q->l, q->arg);
    else
        q->done_cb(q->rc, q->arg);
    free(q);
}

static struct pending *
pending_new(void *arg)
{
    struct pending *q = calloc(1, sizeof(*q));
    q->arg = arg;
    return q;
}

static struct product *
find(int64_t id)
{
    for (size_t i = 0; i < nstore; i++)
        if (store[i].id == id)
            return &store[i];
    return NULL;
}

static bool
name_taken(const char *name, int64_t except)
{
    for (size_t i = 0; i < nstore; i++)
        if (store[i].id != except && strcasecmp(store[i].name, name) == 0)
            return true;
    return false;
}

static void
f_get(void *self, struct of_mem *m, int64_t id, product_cb cb, void *arg)
{
    struct pending *q = pending_new(arg);
    (void)self; (void)m;
    q->cb = cb;
    struct product *p = find(id);
    q->rc = p ? OF_OK : OF_NOTFOUND;
    if (p)
        q->p = *p;
    fake_later(answer, q);
}

static void
f_list(void *self, struct of_mem *m, const struct product_filter *f, product_list_cb cb, void *arg)
{
    struct pending *q = pending_new(arg);
    (void)self;
    q->list_cb = cb;
    struct product *items = of_mem_alloc(m, sizeof(struct product) * MAXP);
    size_t n = 0;
    int64_t total = 0;
    for (size_t i = 0; i < nstore; i++) {
        if (f->in_stock >= 0 && store[i].in_stock != (f->in_stock == 1))
            continue;
        if (f->q && strcasestr(store[i].name, f->q) == NULL)
            continue;
        if (total >= f->pg.offset && (int64_t)n < f->pg.limit)
            items[n++] = store[i];
        total++;
    }
    q->l.items = items;
    q->l.n = n;
    q->l.total = total;
    fake_later(answer, q);
}

static void
f_create(void *self, struct of_mem *m, const struct product_input *in, const struct audit_ctx *a,
         product_cb cb, void *arg)
{
    struct pending *q = pending_new(arg);
    (void)self; (void)m; (void)a;
    q->cb = cb;
    if (name_taken(in->name, 0)) {
        q->rc = OF_CONFLICT;
    } else {
        struct product *p = &store[nstore];
        snprintf(names[nstore], sizeof(names[0]), "%s", in->name);
        nstore++;
        *p = (struct product){ ++next_id, names[nstore - 1], in->price, in->in_stock,
                               "2026-11-24T00:00:00.000000Z", "2026-11-24T00:00:00.000000Z", false };
        q->p = *p;
        q->rc = OF_OK;
        audit_rows++;
    }
    fake_later(answer, q);
}

static void
f_update(void *self, struct of_mem *m, int64_t id, const struct product_input *in,
         const struct audit_ctx *a, product_cb cb, void *arg)
{
    struct pending *q = pending_new(arg);
    (void)self; (void)m; (void)a;
    q->cb = cb;
    struct product *p = find(id);
    if (p == NULL) {
        q->rc = OF_NOTFOUND;
    } else if (in->has_name && name_taken(in->name, id)) {
        q->rc = OF_CONFLICT;
    } else {
        size_t i = (size_t)(p - store);
        if (in->has_name) {
            snprintf(names[i], sizeof(names[0]), "%s", in->name);
            p->name = names[i];
        }
        if (in->has_price)
            p->price = in->price;
        if (in->has_in_stock)
            p->in_stock = in->in_stock;
        q->p = *p;
        q->rc = OF_OK;
        audit_rows++;
    }
    fake_later(answer, q);
}

static void
f_remove(void *self, struct of_mem *m, int64_t id, const struct audit_ctx *a,
         product_done_cb cb, void *arg)
{
    struct pending *q = pending_new(arg);
    (void)self; (void)m; (void)a;
    q->done_cb = cb;
    struct product *p = find(id);
    q->rc = p ? OF_OK : OF_NOTFOUND;
    if (p) {
        p->id = -p->id;     /* tombstone */
        audit_rows++;
    }
    fake_later(answer, q);
}

static const struct product_repo_ops fake_ops = { f_get, f_list, f_create, f_update, f_remove };
static struct hdl_services svc;

static int
setup(void **state)
{
    (void)state;
    fake_base = event_base_new();
    nstore = 0;
    next_id = 0;
    audit_rows = 0;
    svc.products = product_svc_create((struct product_repo){ &fake_ops, NULL });
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    product_svc_destroy(svc.products);
    event_base_free(fake_base);
    return 0;
}

/* ---- helpers ---- */

static struct fake_req *
call(hdl_fn fn, enum hdl_method m, int64_t id, const char *query, const char *body)
{
    struct fake_req *f = fake_req_new(&svc, m, "/api/v1/products", query, body);
    f->r.ids[0] = id;
    f->r.nids = id ? 1 : 0;
    f->r.who.user_id = 1;
    f->r.who.role = HDL_ROLE_ADMIN;
    fn(&f->r);
    fake_run(f);
    assert_int_equal(f->answers, 1);
    return f;
}

static const char *
jstr(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

/* True if the 422 lists a problem at ["body", field] of that type. */
static bool
has_error(struct fake_req *f, const char *field, const char *type)
{
    json_t *errs = json_object_get(f->json, "errors");
    size_t  i;
    json_t *e;
    json_array_foreach(errs, i, e) {
        json_t *loc = json_object_get(e, "loc");
        if (json_array_size(loc) == 2 && strcmp(json_string_value(json_array_get(loc, 0)), "body") == 0 &&
            strcmp(json_string_value(json_array_get(loc, 1)), field) == 0 &&
            strcmp(jstr(e, "type"), type) == 0)
            return true;
    }
    return false;
}

/* ---- tests ---- */

static void
test_create_201_trims_name_defaults_in_stock(void **state)
{
    (void)state;
    struct fake_req *f = call(hdl_products_create, HDL_POST, 0, NULL, "{\"name\":\"  Lamp  \",\"price\":\"19.99\"}");
    assert_int_equal(f->status, 201);
    assert_string_equal(jstr(f->json, "name"), "Lamp");
    assert_string_equal(jstr(f->json, "price"), "19.99");
    assert_true(json_is_true(json_object_get(f->json, "in_stock")));
    assert_int_equal(audit_rows, 1);
    fake_req_free(f);
}

static void
test_create_duplicate_name_any_case_409(void **state)
{
    (void)state;
    fake_req_free(call(hdl_products_create, HDL_POST, 0, NULL, "{\"name\":\"Lamp\",\"price\":1}"));
    struct fake_req *f = call(hdl_products_create, HDL_POST, 0, NULL, "{\"name\":\"LAMP\",\"price\":1}");
    assert_int_equal(f->status, 409);
    assert_string_equal(jstr(f->json, "detail"), "Product already exists");
    assert_int_equal(audit_rows, 1);
    fake_req_free(f);
}

static void
test_create_reports_every_problem(void **state)
{
    (void)state;
    struct fake_req *f = call(hdl_products_create, HDL_POST, 0, NULL,
                              "{\"name\":\"   \",\"price\":\"1.234\",\"in_stock\":null}");
    assert_int_equal(f->status, 422);
    assert_string_equal(jstr(f->json, "detail"), "Validation error");
    assert_true(has_error(f, "name", "value_error"));
    assert_true(has_error(f, "price", "value_error"));
    assert_true(has_error(f, "in_stock", "type_error"));
    assert_int_equal(json_array_size(json_object_get(f->json, "errors")), 3);
    assert_int_equal(nstore, 0);
    fake_req_free(f);
}

static void
test_create_missing_fields_422(void **state)
{
    (void)state;
    struct fake_req *f = call(hdl_products_create, HDL_POST, 0, NULL, "{}");
    assert_int_equal(f->status, 422);
    assert_true(has_error(f, "name", "missing"));
    assert_true(has_error(f, "price", "missing"));
    fake_req_free(f);
}

static void
test_create_wrong_type_is_not_also_missing(void **state)
{
    (void)state;
    struct fake_req *f = call(hdl_products_create, HDL_POST, 0, NULL, "{\"name\":5,\"price\":true}");
    assert_int_equal(f->status, 422);
    assert_true(has_error(f, "name", "type_error"));
    assert_true(has_error(f, "price", "type_error"));
    assert_int_equal(json_array_size(json_object_get(f->json, "errors")), 2);
    fake_req_free(f);
}

static void
test_price_forms(void **state)
{
    static const struct { const char *price; int status; const char *want; } cases[] = {
        { "1e2", 201, "100.00" }, { "\"0.10\"", 201, "0.10" }, { "19.99", 201, "19.99" },
        { "0", 201, "0.00" }, { "\"99999999.99\"", 201, "99999999.99" },
        { "-0.01", 422, NULL }, { "\"-1\"", 422, NULL }, { "\"19.990\"", 422, NULL },
        { "\"abc\"", 422, NULL }, { "100000000", 422, NULL }, { "null", 422, NULL },
    };
    (void)state;
    for (size_t i = 0; i < OF_ARRAY_LEN(cases); i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"name\":\"P%zu\",\"price\":%s}", i, cases[i].price);
        struct fake_req *f = call(hdl_products_create, HDL_POST, 0, NULL, body);
        if (f->status != cases[i].status)
            fail_msg("price %s: status %d, want %d (%s)", cases[i].price, f->status, cases[i].status, f->body);
        if (cases[i].want)
            assert_string_equal(jstr(f->json, "price"), cases[i].want);
        else
            assert_true(has_error(f, "price", strcmp(cases[i].price, "null") == 0 ? "type_error" : "value_error"));
        fake_req_free(f);
    }
}

static void
test_patch_null_422_and_empty_unchanged(void **state)
{
    (void)state;
    fake_req_free(call(hdl_products_create, HDL_POST, 0, NULL, "{\"name\":\"Desk\",\"price\":\"5.00\"}"));
    struct fake_req *f = call(hdl_products_patch, HDL_PATCH, 1, NULL, "{\"name\":null}");
    assert_int_equal(f->status, 422);
    assert_true(has_error(f, "name", "type_error"));
    fake_req_free(f);
    f = call(hdl_products_patch, HDL_PATCH, 1, NULL, "{}");
    assert_int_equal(f->status, 200);
    assert_string_equal(jstr(f->json, "name"), "Desk");
    assert_string_equal(jstr(f->json, "price"), "5.00");
    fake_req_free(f);
    f = call(hdl_products_patch, HDL_PATCH, 1, NULL, "{\"in_stock\":false}");
    assert_int_equal(f->status, 200);
    assert_true(json_is_false(json_object_get(f->json, "in_stock")));
    fake_req_free(f);
}

static void
test_get_unknown_404_with_id(void **state)
{
    (void)state;
    struct fake_req *f = call(hdl_products_get, HDL_GET, 99, NULL, NULL);
    assert_int_equal(f->status, 404);
    assert_string_equal(jstr(f->json, "detail"), "Product 99 not found");
    fake_req_free(f);
    f = call(hdl_products_delete, HDL_DELETE, 99, NULL, NULL);
    assert_int_equal(f->status, 404);
    fake_req_free(f);
}

static void
test_list_paging_and_bounds(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        char body[64];
        snprintf(body, sizeof(body), "{\"name\":\"Item %d\",\"price\":1}", i);
        fake_req_free(call(hdl_products_create, HDL_POST, 0, NULL, body));
    }
    struct fake_req *f = call(hdl_products_list, HDL_GET, 0, "page=2&page_size=2", NULL);
    assert_int_equal(f->status, 200);
    assert_int_equal(json_integer_value(json_object_get(f->json, "total")), 5);
    assert_int_equal(json_integer_value(json_object_get(f->json, "total_pages")), 3);
    assert_int_equal(json_array_size(json_object_get(f->json, "items")), 2);
    fake_req_free(f);
    f = call(hdl_products_list, HDL_GET, 0, "page=9", NULL);
    assert_int_equal(f->status, 200);
    assert_int_equal(json_array_size(json_object_get(f->json, "items")), 0);
    fake_req_free(f);
    static const char *const bad[] = { "page=0", "page_size=0", "page_size=101", "page=abc",
                                       "sort=secret", "in_stock=maybe" };
    for (size_t i = 0; i < OF_ARRAY_LEN(bad); i++) {
        f = call(hdl_products_list, HDL_GET, 0, bad[i], NULL);
        if (f->status != 422)
            fail_msg("%s: %d", bad[i], f->status);
        json_t *loc = json_object_get(json_array_get(json_object_get(f->json, "errors"), 0), "loc");
        assert_string_equal(json_string_value(json_array_get(loc, 0)), "query");
        fake_req_free(f);
    }
}

static void
test_body_content_type_and_json(void **state)
{
    (void)state;
    struct fake_req *f = fake_req_new(&svc, HDL_POST, "/api/v1/products", NULL, "name=x");
    f->ctype = "application/x-www-form-urlencoded";
    hdl_products_create(&f->r);
    assert_int_equal(f->status, 415);
    assert_string_equal(jstr(f->json, "detail"), "Unsupported media type");
    fake_req_free(f);
    f = call(hdl_products_create, HDL_POST, 0, NULL, "{\"name\": ");
    assert_int_equal(f->status, 422);
    assert_true(strstr(f->body, "json_invalid") != NULL);
    fake_req_free(f);
    f = fake_req_new(&svc, HDL_POST, "/api/v1/products", NULL, "{\"name\":\"Ok\",\"price\":1}");
    f->ctype = "application/json; charset=utf-8";
    hdl_products_create(&f->r);
    fake_run(f);
    assert_int_equal(f->status, 201);
    fake_req_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_201_trims_name_defaults_in_stock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_duplicate_name_any_case_409, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_reports_every_problem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_missing_fields_422, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_wrong_type_is_not_also_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_price_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch_null_422_and_empty_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_unknown_404_with_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_paging_and_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_content_type_and_json, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
