/*
 * auth.c -- registration, login (OAuth2 password form), the current user,
 * and user administration. HTTP ⇄ DTO only; the rules are in auth_svc.
 */
#include "handlers/list.h"
#include "handlers/auth.h"
#include "handlers/services.h"
#include "domain/auth_svc.h"
#include "domain/rules.h"
#include "common/of.h"

#include <string.h>
#include <strings.h>

json_t *
hdl_user_json(const struct user *u)
{
    return json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)u->id, "email", u->email,
                     "role", role_name(u->role), "created_at", u->created_at);
}

/* ---- the current principal (for the worker's auth middleware) ---- */

struct principal_ctx {
    struct hdl_req  *r;
    hdl_principal_cb cb;
};

static void
principal_found(int rc, const struct user *u, void *arg)
{
    struct principal_ctx *c = arg;
    struct hdl_req       *r = c->r;
    if (rc == OF_OK) {
        r->who.user_id = u->id;
        r->who.role = u->role == ROLE_ADMIN ? HDL_ROLE_ADMIN : HDL_ROLE_USER;
        r->who.email = of_mem_strdup(r->mem, u->email);
        r->who.created_at = of_mem_strdup(r->mem, u->created_at);
    }
    c->cb(rc, r);
}

void
hdl_auth_current(struct hdl_req *r, int64_t user_id, hdl_principal_cb cb)
{
    struct principal_ctx *c = of_mem_alloc(r->mem, sizeof(*c));
    c->r = r;
    c->cb = cb;
    auth_svc_current(r->svc->auth, r->mem, user_id, principal_found, c);
}

/* A required string field: missing / type problems into v, NULL then. */
static const char *
str_field(json_t *body, const char *key, struct of_verrs *v, size_t *len)
{
    json_t *j = json_object_get(body, key);
    if (j == NULL) {
        of_verr_add(v, OF_VE_MISSING, "Field required", OF_K("body"), OF_K(key), OF_END);
        return NULL;
    }
    if (!json_is_string(j)) {
        of_verr_add(v, OF_VE_TYPE, "Input should be a valid string", OF_K("body"), OF_K(key), OF_END);
        return NULL;
    }
    *len = json_string_length(j);
    return json_string_value(j);
}

/* ---- register ---- */

struct reg_ctx {
    struct hdl_req *r;
    struct of_verrs v;
};

static void
registered(int rc, const struct user *u, void *arg)
{
    struct reg_ctx *c = arg;
    switch (rc) {
    case OF_OK:       hdl_reply_json(c->r, 201, hdl_user_json(u)); break;
    case OF_INVALID:  hdl_reply_verrs(c->r, &c->v); break;
    case OF_CONFLICT: hdl_reply_error(c->r, 409, "Email already registered"); break;
    default:          hdl_reply_rc(c->r, rc); break;
    }
}

void
hdl_auth_register(struct hdl_req *r)
{
    size_t elen = 0, plen = 0;

    if (!r->svc->allow_registration) {
        hdl_reply_error(r, 404, "Not Found");
        return;
    }
    json_t *body = hdl_json_body(r);
    if (body == NULL)
        return;
    struct reg_ctx *c = of_mem_alloc(r->mem, sizeof(*c));
    c->r = r;
    of_verrs_init(&c->v);
    const char *email = str_field(body, "email", &c->v, &elen);
    const char *pw = str_field(body, "password", &c->v, &plen);
    if (of_verrs_any(&c->v)) {
        hdl_reply_verrs(r, &c->v);
        return;
    }
    /* the request waits in the hash queue: keep the two strings, not the tree */
    email = of_mem_strndup(r->mem, email, elen);
    pw = of_mem_strndup(r->mem, pw, plen);
    json_object_clear(body);
    auth_svc_register(r->svc->auth, r->mem, email, elen, pw, plen, &c->v, registered, c);
}

/* ---- login: application/x-www-form-urlencoded only ---- */

static bool
is_form(const char *ct)
{
    if (ct == NULL)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0)
        return false;
    ct += 33;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static void
logged_in(int rc, const char *token, void *arg)
{
    struct hdl_req *r = arg;
    if (rc == OF_UNAUTH) {
        hdl_reply_error(r, 401, "Incorrect email or password");
        return;
    }
    if (rc != OF_OK) {
        hdl_reply_rc(r, rc);
        return;
    }
    hdl_reply_json(r, 200, json_pack("{s:s,s:s,s:I}", "access_token", token, "token_type", "bearer",
                                     "expires_in", (json_int_t)r->svc->token_ttl));
}

/* The per-username limit counts an account, not a spelling: trimmed and
 * lower-cased as login itself does; anything that is not an email as is. */
static const char *
limit_key(struct of_mem *m, const char *user)
{
    char   norm[RULES_EMAIL_BUFSZ];
    size_t nlen;

    if (rules_email(user, strlen(user), norm, sizeof(norm), &nlen) != OF_OK)
        return user;
    return of_mem_strndup(m, norm, nlen);
}

void
hdl_auth_login(struct hdl_req *r)
{
    struct of_verrs v;

    if (!is_form(r->io->header(r, "Content-Type"))) {
        hdl_reply_error(r, 415, "Unsupported media type");
        return;
    }
    of_verrs_init(&v);
    const char *user = hdl_form_value(r->mem, r->body, r->body_len, "username");
    const char *pw = hdl_form_value(r->mem, r->body, r->body_len, "password");
    if (user == NULL)
        of_verr_add(&v, OF_VE_MISSING, "Field required", OF_K("body"), OF_K("username"), OF_END);
    if (pw == NULL)
        of_verr_add(&v, OF_VE_MISSING, "Field required", OF_K("body"), OF_K("password"), OF_END);
    if (of_verrs_any(&v)) {
        hdl_reply_verrs(r, &v);
        return;
    }
    int retry;
    const struct hdl_limits *lim = &r->svc->limits;
    if (lim->login_user != NULL && !lim->login_user(lim->ctx, limit_key(r->mem, user), &retry)) {
        hdl_reply_too_many(r, retry);
        return;
    }
    auth_svc_login(r->svc->auth, r->mem, user, pw, logged_in, r);
}

/* ---- me ---- */

void
hdl_auth_me(struct hdl_req *r)
{
    struct user u = {
        .id = r->who.user_id,
        .email = r->who.email,
        .role = r->who.role == HDL_ROLE_ADMIN ? ROLE_ADMIN : ROLE_USER,
        .created_at = r->who.created_at,
    };
    hdl_reply_json(r, 200, hdl_user_json(&u));
}

/* ---- admin: list, change role, delete ---- */

static json_t *
user_item_json(const void *item)
{
    return hdl_user_json(item);
}

static const char *
user_key(struct of_mem *m, const void *item, unsigned sort, int64_t *id)
{
    (void)m;
    (void)sort;
    *id = ((const struct user *)item)->id;
    return "";
}

static void
users_listed(int rc, const struct user_list *l, void *arg)
{
    hdl_reply_list(arg, rc, l ? l->items : NULL, l ? l->n : 0, sizeof(*l->items), user_item_json,
                   l ? l->total : 0, user_key);
}

void
hdl_users_list(struct hdl_req *r)
{
    struct hdl_call *c = hdl_call_new(r);
    struct page_req  pg;

    hdl_paging(r, &c->v, &c->pg);
    hdl_list_page(c, HDL_LIST_USERS, 0, "", &pg);
    if (of_verrs_any(&c->v)) {
        hdl_reply_verrs(r, &c->v);
        return;
    }
    auth_svc_list(r->svc->auth, r->mem, &pg, users_listed, c);
}

static void
user_not_found(struct hdl_req *r)
{
    hdl_reply_error(r, 404, of_mem_printf(r->mem, "User %lld not found", (long long)r->ids[0]));
}

static void
role_set(int rc, const struct user *u, void *arg)
{
    struct hdl_req *r = arg;
    switch (rc) {
    case OF_OK:       hdl_reply_json(r, 200, hdl_user_json(u)); break;
    case OF_NOTFOUND: user_not_found(r); break;
    case OF_CONFLICT: hdl_reply_error(r, 409, "You cannot change your own role"); break;
    default:          hdl_reply_rc(r, rc); break;
    }
}

void
hdl_users_patch(struct hdl_req *r)
{
    struct of_verrs v;
    enum role       role;

    json_t *body = hdl_json_body(r);
    if (body == NULL)
        return;
    of_verrs_init(&v);
    json_t *j = json_object_get(body, "role");
    if (j == NULL)
        of_verr_add(&v, OF_VE_MISSING, "Field required", OF_K("body"), OF_K("role"), OF_END);
    else if (!json_is_string(j))
        of_verr_add(&v, OF_VE_TYPE, "Input should be a valid string", OF_K("body"), OF_K("role"), OF_END);
    else if (!role_parse(json_string_value(j), &role))
        of_verr_add(&v, OF_VE_VALUE, "Input should be 'user' or 'admin'", OF_K("body"), OF_K("role"), OF_END);
    if (of_verrs_any(&v)) {
        hdl_reply_verrs(r, &v);
        return;
    }
    auth_svc_set_role(r->svc->auth, r->mem, hdl_audit(r), r->ids[0], role, role_set, r);
}

static void
user_deleted(int rc, void *arg)
{
    struct hdl_req *r = arg;
    switch (rc) {
    case OF_OK:       hdl_reply_empty(r, 204); break;
    case OF_NOTFOUND: user_not_found(r); break;
    case OF_CONFLICT: hdl_reply_error(r, 409, "You cannot delete yourself"); break;
    default:          hdl_reply_rc(r, rc); break;
    }
}

void
hdl_users_delete(struct hdl_req *r)
{
    auth_svc_delete(r->svc->auth, r->mem, hdl_audit(r), r->ids[0], user_deleted, r);
}
