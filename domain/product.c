/*
 * product.c -- catalog rules and the product service.
 */
#include "domain/product.h"
#include "domain/rules.h"
#include "domain/money.h"
#include "common/of.h"

#include <stdlib.h>
#include <string.h>

void
product_validate(struct product_input *in, bool create, struct of_mem *m, struct of_verrs *v)
{
    if (in->has_name) {
        const char *t;
        size_t      tl;
        int rc = in->name == NULL ? OF_OK     /* wrong type: already reported */
                 : rules_text(in->name, in->name_len, 1, RULES_NAME_MAX, &t, &tl);
        if (in->name == NULL) {
            /* nothing more to say about it */
        } else if (rc != OF_OK) {
            of_verr_add(v, OF_VE_VALUE, rules_text_msg(m, rc, 1, RULES_NAME_MAX),
                        OF_K("body"), OF_K("name"), OF_END);
        } else {
            in->name = of_mem_strndup(m, t, tl);
            in->name_len = tl;
        }
    } else if (create) {
        of_verr_add(v, OF_VE_MISSING, "Field required", OF_K("body"), OF_K("name"), OF_END);
    }
    if (in->has_price) {
        if (in->price < 0)
            of_verr_add(v, OF_VE_VALUE, "Input should be greater than or equal to 0",
                        OF_K("body"), OF_K("price"), OF_END);
    } else if (create) {
        of_verr_add(v, OF_VE_MISSING, "Field required", OF_K("body"), OF_K("price"), OF_END);
    }
    if (create && !in->has_in_stock) {
        in->has_in_stock = true;
        in->in_stock = true;
    }
}

bool
product_sort_parse(const char *s, enum product_sort *out)
{
    static const char *const names[PSORT_COUNT] = { "id", "-id", "name", "-name", "price", "-price" };
    for (int i = 0; i < PSORT_COUNT; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum product_sort)i;
            return true;
        }
    }
    return false;
}

struct product_svc {
    struct product_repo repo;
};

struct product_svc *
product_svc_create(struct product_repo repo)
{
    struct product_svc *s = calloc(1, sizeof(*s));
    if (s != NULL)
        s->repo = repo;
    return s;
}

void
product_svc_destroy(struct product_svc *s)
{
    free(s);
}

void
product_svc_get(struct product_svc *s, struct of_mem *m, int64_t id, product_cb cb, void *arg)
{
    s->repo.ops->get(s->repo.self, m, id, cb, arg);
}

void
product_svc_list(struct product_svc *s, struct of_mem *m, const struct product_filter *f,
                 product_list_cb cb, void *arg)
{
    s->repo.ops->list(s->repo.self, m, f, cb, arg);
}

void
product_svc_insert(struct product_svc *s, struct of_mem *m, struct product_input *in,
                   const struct audit_ctx *a, struct of_verrs *v, product_cb cb, void *arg)
{
    product_validate(in, true, m, v);
    if (of_verrs_any(v) || in->bad) {
        cb(OF_INVALID, NULL, arg);
        return;
    }
    s->repo.ops->create(s->repo.self, m, in, a, cb, arg);
}

void
product_svc_update(struct product_svc *s, struct of_mem *m, int64_t id,
                   struct product_input *in, const struct audit_ctx *a, struct of_verrs *v,
                   product_cb cb, void *arg)
{
    product_validate(in, false, m, v);
    if (of_verrs_any(v) || in->bad) {
        cb(OF_INVALID, NULL, arg);
        return;
    }
    s->repo.ops->update(s->repo.self, m, id, in, a, cb, arg);
}

void
product_svc_delete(struct product_svc *s, struct of_mem *m, int64_t id,
                   const struct audit_ctx *a, product_done_cb cb, void *arg)
{
    s->repo.ops->remove(s->repo.self, m, id, a, cb, arg);
}
