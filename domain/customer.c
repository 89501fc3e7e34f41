/*
 * customer.c -- customer field rules and the customer service. The service
 * validates and hands over to the repository; uniqueness and the
 * delete-or-deactivate decision belong to the database (store/).
 */
#include "domain/customer.h"
#include "domain/rules.h"
#include "common/of.h"

#include <stdlib.h>
#include <string.h>

static void
validate_name(struct customer_input *in, bool create, struct of_mem *m, struct of_verrs *v)
{
    const char *t;
    size_t      tl;

    if (!in->has_name) {
        if (create)
            of_verr_add(v, OF_VE_MISSING, "Field required", OF_K("body"), OF_K("name"), OF_END);
        return;
    }
    int rc = rules_text(in->name, in->name_len, 1, RULES_NAME_MAX, &t, &tl);
    if (rc != OF_OK) {
        of_verr_add(v, OF_VE_VALUE, rules_text_msg(m, rc, 1, RULES_NAME_MAX),
                    OF_K("body"), OF_K("name"), OF_END);
        return;
    }
    in->name = of_mem_strndup(m, t, tl);
    in->name_len = tl;
}

static void
validate_email(struct customer_input *in, bool create, struct of_mem *m, struct of_verrs *v)
{
    char   norm[RULES_EMAIL_BUFSZ];
    size_t nlen;

    if (!in->has_email) {
        if (create)
            of_verr_add(v, OF_VE_MISSING, "Field required", OF_K("body"), OF_K("email"), OF_END);
        return;
    }
    int rc = rules_email(in->email, in->email_len, norm, sizeof(norm), &nlen);
    if (rc != OF_OK) {
        of_verr_add(v, OF_VE_VALUE, rules_strerror(rc), OF_K("body"), OF_K("email"), OF_END);
        return;
    }
    in->email = of_mem_strndup(m, norm, nlen);
    in->email_len = nlen;
}

void
customer_validate(struct customer_input *in, bool create, struct of_mem *m, struct of_verrs *v)
{
    validate_name(in, create, m, v);
    validate_email(in, create, m, v);
    if (in->has_tier) {
        int rc = rules_tier_parse(in->tier_str, in->tier_len, &in->tier);
        if (rc != OF_OK)
            of_verr_add(v, OF_VE_VALUE, rules_strerror(rc), OF_K("body"), OF_K("tier"), OF_END);
    } else if (create) {
        in->has_tier = true;
        in->tier = RULES_TIER_FREE;
    }
    if (create && !in->has_is_active) {
        in->has_is_active = true;
        in->is_active = true;
    }
}

bool
customer_sort_parse(const char *s, enum customer_sort *out)
{
    static const char *const names[CSORT_COUNT] = { "id", "-id", "name", "-name" };
    for (int i = 0; i < CSORT_COUNT; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum customer_sort)i;
            return true;
        }
    }
    return false;
}

struct customer_svc {
    struct customer_repo repo;
};

struct customer_svc *
customer_svc_create(struct customer_repo repo)
{
    struct customer_svc *s = calloc(1, sizeof(*s));
    if (s != NULL)
        s->repo = repo;
    return s;
}

void
customer_svc_destroy(struct customer_svc *s)
{
    free(s);
}

void
customer_svc_get(struct customer_svc *s, struct of_mem *m, int64_t id, customer_cb cb, void *arg)
{
    s->repo.ops->get(s->repo.self, m, id, cb, arg);
}

void
customer_svc_list(struct customer_svc *s, struct of_mem *m, const struct customer_filter *f,
                  customer_list_cb cb, void *arg)
{
    s->repo.ops->list(s->repo.self, m, f, cb, arg);
}

void
customer_svc_insert(struct customer_svc *s, struct of_mem *m, struct customer_input *in,
                    struct of_verrs *v, customer_cb cb, void *arg)
{
    customer_validate(in, true, m, v);
    if (of_verrs_any(v)) {
        cb(OF_INVALID, NULL, arg);
        return;
    }
    s->repo.ops->create(s->repo.self, m, in, cb, arg);
}

void
customer_svc_update(struct customer_svc *s, struct of_mem *m, int64_t id,
                    struct customer_input *in, struct of_verrs *v, customer_cb cb, void *arg)
{
    customer_validate(in, false, m, v);
    if (of_verrs_any(v)) {
        cb(OF_INVALID, NULL, arg);
        return;
    }
    s->repo.ops->update(s->repo.self, m, id, in, cb, arg);
}

void
customer_svc_delete(struct customer_svc *s, struct of_mem *m, int64_t id,
                    const struct audit_ctx *a, customer_removed_cb cb, void *arg)
{
    s->repo.ops->remove(s->repo.self, m, id, a, cb, arg);
}
