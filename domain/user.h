/*
 * user.h -- users, and the repository interface the auth service talks to.
 *
 * Repositories answer asynchronously: every call ends in exactly one
 * callback, on a later turn of the event loop, with an OF_* code. Results
 * passed to callbacks live in the request's arena.
 */
#ifndef OF_DOMAIN_USER_H
#define OF_DOMAIN_USER_H

#include <stdint.h>
#include <stdbool.h>

#include "common/mem.h"
#include "domain/page.h"

enum role { ROLE_USER = 1, ROLE_ADMIN = 2 };

struct user {
    int64_t     id;
    const char *email;
    enum role   role;
    const char *password_hash;   /* only filled by get_by_email */
    const char *created_at;      /* RFC 3339 */
};

struct user_list {
    const struct user *items;
    size_t             n;
    int64_t            total;
};

typedef void (*user_cb)(int rc, const struct user *u, void *arg);
typedef void (*user_list_cb)(int rc, const struct user_list *l, void *arg);
typedef void (*user_done_cb)(int rc, void *arg);

/* Who did a write and under which request id: for the audit log. */
struct audit_ctx {
    int64_t     actor_id;
    const char *request_id;
};

struct user_repo_ops {
    void (*get)(void *self, struct of_mem *m, int64_t id, user_cb cb, void *arg);
    /* email already normalised; OF_NOTFOUND when absent */
    void (*get_by_email)(void *self, struct of_mem *m, const char *email, user_cb cb, void *arg);
    /* OF_CONFLICT when the email exists */
    void (*create)(void *self, struct of_mem *m, const char *email, const char *hash,
                   enum role role, user_cb cb, void *arg);
    void (*list)(void *self, struct of_mem *m, const struct page_req *pg,
                 user_list_cb cb, void *arg);
    /* OF_NOTFOUND; audit row in the same transaction */
    void (*set_role)(void *self, struct of_mem *m, int64_t id, enum role role,
                     const struct audit_ctx *a, user_cb cb, void *arg);
    void (*remove)(void *self, struct of_mem *m, int64_t id, const struct audit_ctx *a,
                   user_done_cb cb, void *arg);
};

struct user_repo {
    const struct user_repo_ops *ops;
    void                       *self;
};

const char *role_name(enum role r);
/* "user"/"admin" → role; false otherwise */
bool        role_parse(const char *s, enum role *out);

#endif
