/*
 * customer.h -- the shared customer base: entity, input validation,
 * repository interface and service.
 *
 * Customers are visible to every authenticated user; only deletion is an
 * admin write (and audited). A customer that has orders is never removed:
 * deletion deactivates it instead (is_active = false), which the repository
 * decides and performs atomically with the audit row.
 *
 * Repositories answer asynchronously: every call ends in exactly one
 * callback with an OF_* code; results live in the caller's arena.
 */
#ifndef OF_DOMAIN_CUSTOMER_H
#define OF_DOMAIN_CUSTOMER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/mem.h"
#include "domain/rules.h"
#include "domain/user.h"
#include "domain/verr.h"

struct customer {
    int64_t          id;
    const char      *name;
    const char      *email;       /* lower-cased */
    enum rules_tier  tier;
    bool             is_active;
    const char      *created_at;
};

/* Not specified by API.md: an allowlist in the style of products. */
enum customer_sort { CSORT_ID = 0, CSORT_ID_DESC, CSORT_NAME, CSORT_NAME_DESC, CSORT_COUNT };

struct customer_filter {
    int                tier;       /* -1 any, else enum rules_tier */
    int                is_active;  /* -1 any, 0, 1 */
    const char        *q;          /* literal substring of name or email,
                                      case-insensitive; NULL any */
    enum customer_sort sort;
    struct page_req    pg;
};

/* A create or a patch: has_* says which fields were given. The raw name,
 * email and tier text are replaced by customer_validate with the trimmed
 * name, the normalised email and the parsed tier. */
struct customer_input {
    bool             has_name, has_email, has_tier, has_is_active;
    const char      *name;
    size_t           name_len;
    const char      *email;
    size_t           email_len;
    const char      *tier_str;
    size_t           tier_len;
    enum rules_tier  tier;
    bool             is_active;
};

struct customer_list {
    const struct customer *items;
    size_t                 n;
    int64_t                total;
};

/* What a delete did: removed the row, or (the customer has orders) set
 * is_active = false. Both are a 204. */
enum customer_removal { CUSTOMER_DELETED = 0, CUSTOMER_DEACTIVATED };

typedef void (*customer_cb)(int rc, const struct customer *c, void *arg);
typedef void (*customer_list_cb)(int rc, const struct customer_list *l, void *arg);
typedef void (*customer_removed_cb)(int rc, enum customer_removal how, void *arg);

struct customer_repo_ops {
    /* OF_NOTFOUND when absent */
    void (*get)(void *self, struct of_mem *m, int64_t id, customer_cb cb, void *arg);
    void (*list)(void *self, struct of_mem *m, const struct customer_filter *f,
                 customer_list_cb cb, void *arg);
    /* OF_CONFLICT on a duplicate email (case-insensitive) */
    void (*create)(void *self, struct of_mem *m, const struct customer_input *in,
                   customer_cb cb, void *arg);
    /* OF_NOTFOUND, OF_CONFLICT; fields without has_* are left as they are */
    void (*update)(void *self, struct of_mem *m, int64_t id, const struct customer_input *in,
                   customer_cb cb, void *arg);
    /* Delete, or deactivate when the customer has orders; the audit row is
     * written in the same transaction. OF_NOTFOUND when absent. */
    void (*remove)(void *self, struct of_mem *m, int64_t id, const struct audit_ctx *a,
                   customer_removed_cb cb, void *arg);
};

struct customer_repo {
    const struct customer_repo_ops *ops;
    void                           *self;
};

/* Field rules: name 1..200 characters trimmed, email as in Auth, tier
 * free|pro|enterprise (default free on create), is_active default true.
 * create: name and email are required. Problems go to v with loc body.*. */
void customer_validate(struct customer_input *in, bool create, struct of_mem *m,
                       struct of_verrs *v);

/* Sort allowlist "id,-id,name,-name"; false if unknown. */
bool customer_sort_parse(const char *s, enum customer_sort *out);

struct customer_svc;
struct customer_svc *customer_svc_create(struct customer_repo repo);
void customer_svc_destroy(struct customer_svc *s);

void customer_svc_get(struct customer_svc *s, struct of_mem *m, int64_t id,
                      customer_cb cb, void *arg);
void customer_svc_list(struct customer_svc *s, struct of_mem *m, const struct customer_filter *f,
                       customer_list_cb cb, void *arg);
/* Validate, then write. OF_INVALID (problems in v; answered synchronously,
 * before anything async starts), OF_CONFLICT, OF_NOTFOUND. */
void customer_svc_insert(struct customer_svc *s, struct of_mem *m, struct customer_input *in,
                         struct of_verrs *v, customer_cb cb, void *arg);
void customer_svc_update(struct customer_svc *s, struct of_mem *m, int64_t id,
                         struct customer_input *in, struct of_verrs *v,
                         customer_cb cb, void *arg);
void customer_svc_delete(struct customer_svc *s, struct of_mem *m, int64_t id,
                         const struct audit_ctx *a, customer_removed_cb cb, void *arg);

#endif
