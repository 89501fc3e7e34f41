/*
 * product.h -- the catalog: entity, input validation, repository interface
 * and service.
 */
#ifndef OF_DOMAIN_PRODUCT_H
#define OF_DOMAIN_PRODUCT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/mem.h"
#include "domain/user.h"
#include "domain/verr.h"

struct product {
    int64_t     id;
    const char *name;
    int64_t     price;          /* cents */
    bool        in_stock;
    const char *created_at;
    const char *updated_at;
    bool        may_lag;        /* read from a copy that may lag the last write: do not cache */
};

enum product_sort { PSORT_ID = 0, PSORT_ID_DESC, PSORT_NAME, PSORT_NAME_DESC,
                    PSORT_PRICE, PSORT_PRICE_DESC, PSORT_COUNT };

struct product_filter {
    int               in_stock;    /* -1 any, 0, 1 */
    const char       *q;           /* literal substring, case-insensitive; NULL any */
    enum product_sort sort;
    struct page_req   pg;
};

/* A create or a patch: has_* says which fields were given (a field given
 * with the wrong JSON type counts as given, its problem already in the list,
 * and its value is not used). name is trimmed by product_validate. */
struct product_input {
    bool        has_name, has_price, has_in_stock;   /* present in the request */
    bool        bad;                                 /* some field had the wrong type */
    const char *name;
    size_t      name_len;
    int64_t     price;
    bool        in_stock;
};

struct product_list {
    const struct product *items;
    size_t                n;
    int64_t               total;
    bool                  may_lag;   /* as struct product's */
};

typedef void (*product_cb)(int rc, const struct product *p, void *arg);
typedef void (*product_list_cb)(int rc, const struct product_list *l, void *arg);
typedef void (*product_done_cb)(int rc, void *arg);

struct product_repo_ops {
    void (*get)(void *self, struct of_mem *m, int64_t id, product_cb cb, void *arg);
    void (*list)(void *self, struct of_mem *m, const struct product_filter *f,
                 product_list_cb cb, void *arg);
    /* OF_CONFLICT on a duplicate name; audit row in the same transaction */
    void (*create)(void *self, struct of_mem *m, const struct product_input *in,
                   const struct audit_ctx *a, product_cb cb, void *arg);
    void (*update)(void *self, struct of_mem *m, int64_t id, const struct product_input *in,
                   const struct audit_ctx *a, product_cb cb, void *arg);
    void (*remove)(void *self, struct of_mem *m, int64_t id, const struct audit_ctx *a,
                   product_done_cb cb, void *arg);
};

struct product_repo {
    const struct product_repo_ops *ops;
    void                          *self;
};

/* Field rules (name 1..200 chars trimmed, price >= 0); trims in->name.
 * create: name and price are required. Problems go to v with loc body.*. */
void product_validate(struct product_input *in, bool create, struct of_mem *m, struct of_verrs *v);

/* Sort allowlist: "id,-id,name,-name,price,-price"; false if unknown. */
bool product_sort_parse(const char *s, enum product_sort *out);

struct product_svc;
struct product_svc *product_svc_create(struct product_repo repo);
void product_svc_destroy(struct product_svc *s);

void product_svc_get(struct product_svc *s, struct of_mem *m, int64_t id, product_cb cb, void *arg);
void product_svc_list(struct product_svc *s, struct of_mem *m, const struct product_filter *f,
                      product_list_cb cb, void *arg);
/* Validate, then write. OF_INVALID (problems in v, answered at once), OF_CONFLICT, OF_NOTFOUND. */
void product_svc_insert(struct product_svc *s, struct of_mem *m, struct product_input *in,
                        const struct audit_ctx *a, struct of_verrs *v, product_cb cb, void *arg);
void product_svc_update(struct product_svc *s, struct of_mem *m, int64_t id,
                        struct product_input *in, const struct audit_ctx *a, struct of_verrs *v,
                        product_cb cb, void *arg);
void product_svc_delete(struct product_svc *s, struct of_mem *m, int64_t id,
                        const struct audit_ctx *a, product_done_cb cb, void *arg);

#endif
