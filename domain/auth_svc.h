/*
 * auth_svc.h -- registration, login, the current user, and user admin.
 *
 * Password hashing and token signing are not the domain's business: the
 * service receives them as interfaces (the worker supplies argon2id on a
 * thread pool and HS256 JWTs). Callbacks fire once, later, on the loop.
 */
#ifndef OF_DOMAIN_AUTH_SVC_H
#define OF_DOMAIN_AUTH_SVC_H

#include <stddef.h>

#include "domain/user.h"
#include "domain/verr.h"

typedef void (*pw_hash_cb)(int rc, const char *hash, void *arg);
typedef void (*pw_verify_cb)(int rc, void *arg);     /* OF_OK match, OF_UNAUTH mismatch */

struct pw_hasher {
    void (*hash)(void *self, const char *pw, size_t len, pw_hash_cb cb, void *arg);
    /* hash NULL: verify against a fixed dummy hash (same cost), always OF_UNAUTH */
    void (*verify)(void *self, const char *hash, const char *pw, size_t len, pw_verify_cb cb, void *arg);
    void  *self;
};

struct token_issuer {
    /* Writes a signed token for the user into out; OF_OK or OF_ERR. */
    int  (*issue)(void *self, int64_t user_id, const char *role, char *out, size_t cap);
    void  *self;
};

struct auth_svc;

struct auth_svc *auth_svc_create(struct user_repo repo, struct pw_hasher hasher,
                                 struct token_issuer tokens);
void auth_svc_destroy(struct auth_svc *s);

/* Register: validates email and password (problems into v → OF_INVALID),
 * hashes, creates a ROLE_USER. OF_CONFLICT when the email is taken. */
void auth_svc_register(struct auth_svc *s, struct of_mem *m, const char *email, size_t email_len,
                       const char *password, size_t pw_len, struct of_verrs *v,
                       user_cb cb, void *arg);

typedef void (*auth_login_cb)(int rc, const char *token, void *arg);
/* OF_UNAUTH for an unknown email or a wrong password (same work for both). */
void auth_svc_login(struct auth_svc *s, struct of_mem *m, const char *username,
                    const char *password, auth_login_cb cb, void *arg);

/* The user behind a verified token, role fresh from the repository;
 * OF_UNAUTH when the user no longer exists. */
void auth_svc_current(struct auth_svc *s, struct of_mem *m, int64_t user_id, user_cb cb, void *arg);

void auth_svc_list(struct auth_svc *s, struct of_mem *m, const struct page_req *pg,
                   user_list_cb cb, void *arg);
/* OF_CONFLICT when an admin changes their own role. */
void auth_svc_set_role(struct auth_svc *s, struct of_mem *m, const struct audit_ctx *a,
                       int64_t id, enum role role, user_cb cb, void *arg);
/* OF_CONFLICT when an admin deletes themselves. */
void auth_svc_delete(struct auth_svc *s, struct of_mem *m, const struct audit_ctx *a,
                     int64_t id, user_done_cb cb, void *arg);

#endif
