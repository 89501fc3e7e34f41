/*
 * test_auth.c -- the auth service and handlers against in-memory fakes:
 * a user repository, a password hasher (plain "hash:" prefix, counting
 * verifications) and a token issuer. Each fake answers on the next loop turn.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/support/fake_http.h"
#include "handlers/auth.h"
#include "domain/auth_svc.h"
#include "common/of.h"

#define MAXU 16

static struct user users[MAXU];
static char        emails[MAXU][300], hashes[MAXU][300];
static size_t      nusers;
static int         verifications, dummy_verifications;

struct pending {
    int          rc;
    struct user  u;
    user_cb      cb;
    user_done_cb done_cb;
    pw_hash_cb   hash_cb;
    pw_verify_cb verify_cb;
    char         hash[300];
    void        *arg;
};

static void
answer(void *x)
{
    struct pending *q = x;
    if (q->cb)
        q->cb(q->rc, q->rc == OF_OK ? &q->u : NULL, q->arg);
    else if (q->done_cb)
        q->done_cb(q->rc, q->arg);
    else if (q->hash_cb)
        q->hash_cb(q->rc, q->hash, q->arg);
    else
        q->verify_cb(q->rc, q->arg);
    free(q);
}

static struct pending *
pend(void *arg)
{
    struct pending *q = calloc(1, sizeof(*q));
    q->arg = arg;
    return q;
}

static struct user *
by_id(int64_t id)
{
    for (size_t i = 0; i < nusers; i++)
        if (users[i].id == id)
            return &users[i];
    return NULL;
}

static void
r_get(void *self, struct of_mem *m, int64_t id, user_cb cb, void *arg)
{
    struct pending *q = pend(arg);
    (void)self; (void)m;
    q->cb = cb;
    struct user *u = by_id(id);
    q->rc = u ? OF_OK : OF_NOTFOUND;
    if (u)
        q->u = *u;
    fake_later(answer, q);
}

static void
r_get_by_email(void *self, struct of_mem *m, const char *email, user_cb cb, void *arg)
{
    struct pending *q = pend(arg);
    (void)self; (void)m;
    q->cb = cb;
    q->rc = OF_NOTFOUND;
    for (size_t i = 0; i < nusers; i++)
        if (users[i].id > 0 && strcmp(users[i].email, email) == 0) {
            q->u = users[i];
            q->rc = OF_OK;
        }
    fake_later(answer, q);
}

static void
r_create(void *self, struct of_mem *m, const char *email, const char *hash, enum role role,
         user_cb cb, void *arg)
{
    struct pending *q = pend(arg);
    (void)self; (void)m;
    q->cb = cb;
    q->rc = OF_OK;
    for (size_t i = 0; i < nusers; i++)
        if (strcmp(users[i].email, email) == 0)
            q->rc = OF_CONFLICT;
    if (q->rc == OF_OK) {
        snprintf(emails[nusers], sizeof(emails[0]), "%s", email);
        snprintf(hashes[nusers], sizeof(hashes[0]), "%s", hash);
        users[nusers] = (struct user){ (int64_t)nusers + 1, emails[nusers], role, hashes[nusers],
                                       "2026-11-24T00:00:00.000000Z" };
        q->u = users[nusers++];
    }
    fake_later(answer, q);
}

static void
r_list(void *self, struct of_mem *m, const struct page_req *pg, user_list_cb cb, void *arg)
{
    (void)self; (void)m; (void)pg; (void)cb; (void)arg;
    fail_msg("not used");
}

static void
r_set_role(void *self, struct of_mem *m, int64_t id, enum role role, const struct audit_ctx *a,
           user_cb cb, void *arg)
{
    struct pending *q = pend(arg);
    (void)self; (void)m; (void)a;
    q->cb = cb;
    struct user *u = by_id(id);
    q->rc = u ? OF_OK : OF_NOTFOUND;
    if (u) {
        u->role = role;
        q->u = *u;
    }
    fake_later(answer, q);
}

static void
r_remove(void *self, struct of_mem *m, int64_t id, const struct audit_ctx *a, user_done_cb cb, void *arg)
{
    struct pending *q = pend(arg);
    (void)self; (void)m; (void)a;
    q->done_cb = cb;
    struct user *u = by_id(id);
    q->rc = u ? OF_OK : OF_NOTFOUND;
    if (u)
        u->id = -u->id;
    fake_later(answer, q);
}

static const struct user_repo_ops repo_ops = { r_get, r_get_by_email, r_create, r_list, r_set_role, r_remove };

static void
h_hash(void *self, const char *pw, size_t len, pw_hash_cb cb, void *arg)
{
    struct pending *q = pend(arg);
    (void)self;
    q->hash_cb = cb;
    q->rc = OF_OK;
    snprintf(q->hash, sizeof(q->hash), "hash:%.*s", (int)len, pw);
    fake_later(answer, q);
}

static void
h_verify(void *self, const char *hash, const char *pw, size_t len, pw_verify_cb cb, void *arg)
{
    struct pending *q = pend(arg);
    char want[300];
    (void)self;
    q->verify_cb = cb;
    if (hash == NULL) {
        dummy_verifications++;
        q->rc = OF_UNAUTH;
    } else {
        verifications++;
        snprintf(want, sizeof(want), "hash:%.*s", (int)len, pw);
        q->rc = strcmp(want, hash) == 0 ? OF_OK : OF_UNAUTH;
    }
    fake_later(answer, q);
}

static int
t_issue(void *self, int64_t uid, const char *role, char *out, size_t cap)
{
    (void)self;
    snprintf(out, cap, "token-%lld-%s", (long long)uid, role);
    return OF_OK;
}

static struct hdl_services svc;

static int
setup(void **state)
{
    (void)state;
    fake_base = event_base_new();
    nusers = 0;
    verifications = dummy_verifications = 0;
    memset(&svc, 0, sizeof(svc));
    svc.allow_registration = true;
    svc.token_ttl = 3600;
    svc.auth = auth_svc_create((struct user_repo){ &repo_ops, NULL },
                               (struct pw_hasher){ h_hash, h_verify, NULL },
                               (struct token_issuer){ t_issue, NULL });
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    auth_svc_destroy(svc.auth);
    event_base_free(fake_base);
    return 0;
}

static struct fake_req *
run(hdl_fn fn, const char *ctype, const char *body, int64_t who, int64_t id)
{
    struct fake_req *f = fake_req_new(&svc, HDL_POST, "/api/v1/auth", NULL, body);
    if (ctype)
        f->ctype = ctype;
    f->r.who.user_id = who;
    f->r.who.role = HDL_ROLE_ADMIN;
    f->r.ids[0] = id;
    fn(&f->r);
    fake_run(f);
    assert_int_equal(f->answers, 1);
    return f;
}

static const char *
detail(struct fake_req *f)
{
    return json_string_value(json_object_get(f->json, "detail"));
}

static void
test_register_normalises_email_and_hides_hash(void **state)
{
    (void)state;
    struct fake_req *f = run(hdl_auth_register, NULL, "{\"email\":\"  Ada@Example.COM \",\"password\":\"secret123\"}", 0, 0);
    assert_int_equal(f->status, 201);
    assert_string_equal(json_string_value(json_object_get(f->json, "email")), "ada@example.com");
    assert_string_equal(json_string_value(json_object_get(f->json, "role")), "user");
    assert_null(json_object_get(f->json, "password_hash"));
    assert_null(strstr(f->body, "secret123"));
    fake_req_free(f);
}

static void
test_register_duplicate_email_409(void **state)
{
    (void)state;
    fake_req_free(run(hdl_auth_register, NULL, "{\"email\":\"a@b.io\",\"password\":\"secret123\"}", 0, 0));
    struct fake_req *f = run(hdl_auth_register, NULL, "{\"email\":\"A@B.io\",\"password\":\"other1234\"}", 0, 0);
    assert_int_equal(f->status, 409);
    assert_string_equal(detail(f), "Email already registered");
    fake_req_free(f);
}

static void
test_register_validation_422_lists_both(void **state)
{
    (void)state;
    struct fake_req *f = run(hdl_auth_register, NULL, "{\"email\":\"no-at-sign\",\"password\":\"short\"}", 0, 0);
    assert_int_equal(f->status, 422);
    assert_int_equal(json_array_size(json_object_get(f->json, "errors")), 2);
    assert_int_equal(nusers, 0);
    fake_req_free(f);
}

static void
test_register_disabled_404(void **state)
{
    (void)state;
    svc.allow_registration = false;
    struct fake_req *f = run(hdl_auth_register, NULL, "{\"email\":\"a@b.io\",\"password\":\"secret123\"}", 0, 0);
    assert_int_equal(f->status, 404);
    fake_req_free(f);
}

static void
test_login_ok_and_same_answer_for_unknown_or_wrong(void **state)
{
    const char *form = "application/x-www-form-urlencoded";
    (void)state;
    fake_req_free(run(hdl_auth_register, NULL, "{\"email\":\"a@b.io\",\"password\":\"secret123\"}", 0, 0));
    struct fake_req *f = run(hdl_auth_login, form, "username=+A%40b.io+&password=secret123", 0, 0);
    assert_int_equal(f->status, 200);
    assert_string_equal(json_string_value(json_object_get(f->json, "access_token")), "token-1-user");
    assert_string_equal(json_string_value(json_object_get(f->json, "token_type")), "bearer");
    assert_int_equal(json_integer_value(json_object_get(f->json, "expires_in")), 3600);
    fake_req_free(f);

    struct fake_req *wrong = run(hdl_auth_login, form, "username=a%40b.io&password=nope12345", 0, 0);
    struct fake_req *unknown = run(hdl_auth_login, form, "username=x%40b.io&password=nope12345", 0, 0);
    assert_int_equal(wrong->status, 401);
    assert_int_equal(unknown->status, 401);
    assert_string_equal(wrong->body, unknown->body);
    assert_string_equal(detail(wrong), "Incorrect email or password");
    assert_string_equal(fake_out_header(unknown, "WWW-Authenticate"), "Bearer");
    /* the unknown email still paid for one (dummy) verification */
    assert_int_equal(verifications, 2);
    assert_int_equal(dummy_verifications, 1);
    fake_req_free(wrong);
    fake_req_free(unknown);
}

static void
test_login_requires_form_encoding(void **state)
{
    (void)state;
    struct fake_req *f = run(hdl_auth_login, "application/json", "{\"username\":\"a@b.io\"}", 0, 0);
    assert_int_equal(f->status, 415);
    fake_req_free(f);
    f = run(hdl_auth_login, "application/x-www-form-urlencoded", "username=a%40b.io", 0, 0);
    assert_int_equal(f->status, 422);
    fake_req_free(f);
}

static void
current_cb(int rc, const struct user *u, void *arg)
{
    (void)u;
    *(int *)arg = rc;
}

static void
test_current_user_gone_is_unauth(void **state)
{
    struct of_mem m;
    int           rc = 1;
    (void)state;
    of_mem_init(&m);
    auth_svc_current(svc.auth, &m, 42, current_cb, &rc);
    for (int i = 0; i < 100 && rc == 1; i++)
        event_base_loop(fake_base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_equal(rc, OF_UNAUTH);
    of_mem_release(&m);
}

static void
test_admin_cannot_change_own_role_or_delete_self(void **state)
{
    (void)state;
    fake_req_free(run(hdl_auth_register, NULL, "{\"email\":\"a@b.io\",\"password\":\"secret123\"}", 0, 0));
    struct fake_req *f = run(hdl_users_patch, NULL, "{\"role\":\"user\"}", 1, 1);
    assert_int_equal(f->status, 409);
    fake_req_free(f);
    f = run(hdl_users_delete, NULL, NULL, 1, 1);
    assert_int_equal(f->status, 409);
    fake_req_free(f);
    f = run(hdl_users_patch, NULL, "{\"role\":\"root\"}", 2, 1);
    assert_int_equal(f->status, 422);
    fake_req_free(f);
    f = run(hdl_users_patch, NULL, "{\"role\":\"admin\"}", 2, 1);
    assert_int_equal(f->status, 200);
    assert_string_equal(json_string_value(json_object_get(f->json, "role")), "admin");
    fake_req_free(f);
    f = run(hdl_users_delete, NULL, NULL, 2, 7);
    assert_int_equal(f->status, 404);
    assert_string_equal(detail(f), "User 7 not found");
    fake_req_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_normalises_email_and_hides_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_duplicate_email_409, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_validation_422_lists_both, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_disabled_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_ok_and_same_answer_for_unknown_or_wrong, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_requires_form_encoding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_current_user_gone_is_unauth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_cannot_change_own_role_or_delete_self, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
