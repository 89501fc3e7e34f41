/*
 * audit.h -- reading the audit log (GET /api/v1/audit, admin).
 *
 * Rows are written by the repositories of the audited writes, in the same
 * statement or transaction as the change; this module only reads them:
 * paged, newest (highest id) first, filtered by entity and actor.
 */
#ifndef OF_DOMAIN_AUDIT_H
#define OF_DOMAIN_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mem.h"
#include "domain/page.h"

struct audit_entry {
    int64_t     id;
    int64_t     actor_id;       /* 0: none (the actor was deleted) */
    const char *action;         /* create | update | delete | transition */
    const char *entity;         /* product | customer | order | user */
    int64_t     entity_id;
    const char *request_id;     /* NULL when none was recorded */
    const char *at;             /* RFC 3339 */
    const char *details;        /* JSON object text */
};

struct audit_filter {
    const char *entity;         /* one of audit_entity_parse's names; NULL: any */
    int64_t     actor_id;       /* 0: any */
    struct page_req     pg;
};

struct audit_list {
    const struct audit_entry *items;
    size_t                    n;
    int64_t                   total;
};

typedef void (*audit_list_cb)(int rc, const struct audit_list *l, void *arg);

struct audit_repo_ops {
    void (*list)(void *self, struct of_mem *m, const struct audit_filter *f,
                 audit_list_cb cb, void *arg);
};

struct audit_repo {
    const struct audit_repo_ops *ops;
    void                        *self;
};

/* The entity names the log knows (exact, case-sensitive): the canonical
 * string literal, or NULL when s is none of them. */
const char *audit_entity_parse(const char *s);

struct audit_svc;
struct audit_svc *audit_svc_create(struct audit_repo repo);
void audit_svc_destroy(struct audit_svc *s);
void audit_svc_list(struct audit_svc *s, struct of_mem *m, const struct audit_filter *f,
                    audit_list_cb cb, void *arg);

#endif
