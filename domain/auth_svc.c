/*
 * auth_svc.c -- see auth_svc.h. Each operation is a short chain of async
 * steps; its state lives in the request's arena.
 */
#include "domain/auth_svc.h"
#include "domain/rules.h"
#include "common/of.h"

#include <stdlib.h>
#include <string.h>

struct auth_svc {
    struct user_repo    repo;
    struct pw_hasher    hasher;
    struct token_issuer tokens;
};

struct auth_svc *
auth_svc_create(struct user_repo repo, struct pw_hasher hasher, struct token_issuer tokens)
{
    struct auth_svc *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->repo = repo;
    s->hasher = hasher;
    s->tokens = tokens;
    return s;
}

void
auth_svc_destroy(struct auth_svc *s)
{
    free(s);
}

/* ---- register: validate → hash → create ---- */

struct reg_op {
    struct auth_svc *s;
    struct of_mem   *m;
    const char      *email;
    user_cb          cb;
    void            *arg;
};

static void
reg_hashed(int rc, const char *hash, void *arg)
{
    struct reg_op *op = arg;
    if (rc != OF_OK) {
        op->cb(rc, NULL, op->arg);
        return;
    }
    const struct user_repo *r = &op->s->repo;
    r->ops->create(r->self, op->m, op->email, hash, ROLE_USER, op->cb, op->arg);
}

void
auth_svc_register(struct auth_svc *s, struct of_mem *m, const char *email, size_t email_len,
                  const char *password, size_t pw_len, struct of_verrs *v,
                  user_cb cb, void *arg)
{
    char   norm[RULES_EMAIL_BUFSZ];
    size_t nlen;

    int erc = rules_email(email, email_len, norm, sizeof(norm), &nlen);
    if (erc != OF_OK)
        of_verr_add(v, OF_VE_VALUE, rules_strerror(erc), OF_K("body"), OF_K("email"), OF_END);
    int prc = rules_password(password, pw_len);
    if (prc != OF_OK)
        of_verr_add(v, OF_VE_VALUE, rules_strerror(prc), OF_K("body"), OF_K("password"), OF_END);
    if (of_verrs_any(v)) {
        cb(OF_INVALID, NULL, arg);    /* synchronous: nothing async has started */
        return;
    }
    struct reg_op *op = of_mem_alloc(m, sizeof(*op));
    op->s = s;
    op->m = m;
    op->email = of_mem_strndup(m, norm, nlen);
    op->cb = cb;
    op->arg = arg;
    s->hasher.hash(s->hasher.self, password, pw_len, reg_hashed, op);
}

/* ---- login: find user → verify (dummy verify when unknown) → token ---- */

struct login_op {
    struct auth_svc   *s;
    struct of_mem     *m;
    const char        *password;
    const struct user *u;          /* points at copy, or NULL for an unknown email */
    struct user        copy;
    auth_login_cb      cb;
    void              *arg;
};

static void
login_verified(int rc, void *arg)
{
    struct login_op *op = arg;
    char             token[1024];

    if (rc != OF_OK || op->u == NULL) {
        op->cb(rc == OF_ERR ? OF_ERR : OF_UNAUTH, NULL, op->arg);
        return;
    }
    if (op->s->tokens.issue(op->s->tokens.self, op->u->id, role_name(op->u->role),
                            token, sizeof(token)) != OF_OK) {
        op->cb(OF_ERR, NULL, op->arg);
        return;
    }
    op->cb(OF_OK, of_mem_strdup(op->m, token), op->arg);
}

static void
login_found(int rc, const struct user *u, void *arg)
{
    struct login_op *op = arg;
    struct pw_hasher *h = &op->s->hasher;

    if (rc != OF_OK && rc != OF_NOTFOUND) {
        op->cb(rc, NULL, op->arg);
        return;
    }
    op->u = NULL;
    if (rc == OF_OK) {
        /* the repository's result need not outlive its callback */
        op->copy = *u;
        op->copy.email = of_mem_strdup(op->m, u->email);
        op->copy.password_hash = u->password_hash ? of_mem_strdup(op->m, u->password_hash) : NULL;
        op->copy.created_at = of_mem_strdup(op->m, u->created_at);
        op->u = &op->copy;
    }
    /* An unknown email still costs one argon2id verification. */
    h->verify(h->self, op->u ? op->u->password_hash : NULL, op->password,
              strlen(op->password), login_verified, op);
}

void
auth_svc_login(struct auth_svc *s, struct of_mem *m, const char *username,
               const char *password, auth_login_cb cb, void *arg)
{
    char   norm[RULES_EMAIL_BUFSZ];
    size_t nlen;

    struct login_op *op = of_mem_calloc(m, sizeof(*op));
    op->s = s;
    op->m = m;
    op->password = password;
    op->cb = cb;
    op->arg = arg;
    if (rules_email(username, strlen(username), norm, sizeof(norm), &nlen) != OF_OK) {
        /* not even an email: answer like an unknown one, after the same work */
        login_found(OF_NOTFOUND, NULL, op);
        return;
    }
    s->repo.ops->get_by_email(s->repo.self, m, of_mem_strndup(m, norm, nlen), login_found, op);
}

/* ---- the rest are thin: rules, then the repository ---- */

struct cur_op {
    user_cb cb;
    void   *arg;
};

static void
current_found(int rc, const struct user *u, void *arg)
{
    struct cur_op *op = arg;
    op->cb(rc == OF_NOTFOUND ? OF_UNAUTH : rc, u, op->arg);
}

void
auth_svc_current(struct auth_svc *s, struct of_mem *m, int64_t user_id, user_cb cb, void *arg)
{
    struct cur_op *op = of_mem_alloc(m, sizeof(*op));
    op->cb = cb;
    op->arg = arg;
    s->repo.ops->get(s->repo.self, m, user_id, current_found, op);
}

void
auth_svc_list(struct auth_svc *s, struct of_mem *m, const struct page_req *pg,
              user_list_cb cb, void *arg)
{
    s->repo.ops->list(s->repo.self, m, pg, cb, arg);
}

void
auth_svc_set_role(struct auth_svc *s, struct of_mem *m, const struct audit_ctx *a,
                  int64_t id, enum role role, user_cb cb, void *arg)
{
    if (id == a->actor_id) {
        cb(OF_CONFLICT, NULL, arg);
        return;
    }
    s->repo.ops->set_role(s->repo.self, m, id, role, a, cb, arg);
}

void
auth_svc_delete(struct auth_svc *s, struct of_mem *m, const struct audit_ctx *a,
                int64_t id, user_done_cb cb, void *arg)
{
    if (id == a->actor_id) {
        cb(OF_CONFLICT, arg);
        return;
    }
    s->repo.ops->remove(s->repo.self, m, id, a, cb, arg);
}
