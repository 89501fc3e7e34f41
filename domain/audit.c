/*
 * audit.c -- the audit log reader (contract: audit.h).
 */
#include "domain/audit.h"

#include <stdlib.h>
#include <string.h>

const char *
audit_entity_parse(const char *s)
{
    static const char *const names[] = { "product", "customer", "order", "user" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i]) == 0)
            return names[i];
    return NULL;
}

struct audit_svc {
    struct audit_repo repo;
};

struct audit_svc *
audit_svc_create(struct audit_repo repo)
{
    struct audit_svc *s = calloc(1, sizeof(*s));
    if (s != NULL)
        s->repo = repo;
    return s;
}

void
audit_svc_destroy(struct audit_svc *s)
{
    free(s);
}

void
audit_svc_list(struct audit_svc *s, struct of_mem *m, const struct audit_filter *f,
               audit_list_cb cb, void *arg)
{
    s->repo.ops->list(s->repo.self, m, f, cb, arg);
}
