/*
 * order.h -- orders with items: entity, input validation, total, the
 * repository interface and the order service (API.md, Orders).
 *
 * Creating an order is an idempotent run (domain/idem.h): inside one
 * transaction the repository reads and share-locks the customer and the
 * products (one statement), the domain checks them (unknown/inactive
 * customer, unknown product -> 422; out of stock -> 409) and computes the
 * exact total with overflow-checked money math, then the repository writes
 * the order and its items (one statement). Transitions are one conditional
 * statement: the row is locked, its status at that moment decides, so of two
 * racing transitions exactly one wins. Admin transitions and deletions write
 * their audit row in the same statement. Creates and transitions write their
 * event (domain/event.h) in the same statement as the change.
 *
 * Repositories answer asynchronously, exactly once; results live in the
 * caller's arena.
 */
#ifndef OF_DOMAIN_ORDER_H
#define OF_DOMAIN_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mem.h"
#include "domain/event.h"
#include "domain/idem.h"
#include "domain/rules.h"
#include "domain/user.h"
#include "domain/verr.h"

struct order_item {
    int64_t     id;
    int64_t     product_id;       /* 0: the product was deleted (JSON null) */
    const char *product_name;
    int64_t     quantity;
    int64_t     unit_price;       /* cents */
};

struct order {
    int64_t                  id;
    int64_t                  customer_id;
    const char              *customer_name;
    enum rules_status        status;
    int64_t                  total;       /* cents */
    const char              *notes;       /* NULL: JSON null */
    int64_t                  created_by;  /* 0: the user was deleted (JSON null) */
    const struct order_item *items;
    size_t                   n_items;
    const char              *created_at;
    const char              *updated_at;
};

/* ---- input ---- */

struct order_item_input {
    int64_t product_id;    /* valid when has_product_id */
    int64_t quantity;      /* valid when has_quantity */
    bool    has_product_id, has_quantity;
};

/* The handler fills what it could read; shape problems it found itself
 * (missing, wrong type) are already in v. */
struct order_input {
    bool                     has_customer_id;
    int64_t                  customer_id;
    bool                     has_items;       /* "items" present and an array */
    struct order_item_input *items;
    size_t                   n_items;
    const char              *notes;           /* NULL: absent or null */
    size_t                   notes_len;
    const char              *traceparent;     /* the request's, for the event; NULL: none */
};

/* Field rules: items non-empty (loc ["body","items"]), each quantity >= 1
 * ("Quantity must be positive"), quantities sum to <= 20 ("Order item limit
 * exceeded", ["body","items"]), no product twice (["body","items",i,
 * "product_id"] at the repeat), notes <= 500 characters. Appends to v. */
void order_validate(const struct order_input *in, struct of_mem *m, struct of_verrs *v);

/* What the repository found for a create, read under share locks. */
struct order_ref_product {
    int64_t     id;
    const char *name;
    int64_t     price;
    bool        in_stock;
};

struct order_refs {
    bool                            customer_found;
    bool                            customer_active;
    const char                     *customer_name;
    const struct order_ref_product *products;     /* any order */
    size_t                          n_products;
};

/* Checks in against refs: unknown or inactive customer -> ["body",
 * "customer_id"], unknown product -> ["body","items",i,"product_id"] (all
 * into v, returns OF_INVALID); else the first item whose product is out of
 * stock -> OF_CONFLICT with *out_of_stock = its id; else OF_OK with
 * unit_prices[i] filled and *total = sum of quantity x unit price (OF_INVALID
 * with a problem at ["body","items"] if that overflowed int64). */
int order_check_refs(const struct order_input *in, const struct order_refs *refs,
                     struct of_mem *m, struct of_verrs *v, int64_t *unit_prices,
                     int64_t *total, int64_t *out_of_stock);

/* sum(quantity[i] * price[i]) with overflow checks: OF_OK or OF_ERR. */
int order_total(const int64_t *quantity, const int64_t *unit_price, size_t n, int64_t *total);

/* ---- listing ---- */

enum order_sort { OSORT_CREATED_AT_DESC = 0, OSORT_CREATED_AT, OSORT_TOTAL, OSORT_TOTAL_DESC,
                  OSORT_ID, OSORT_ID_DESC, OSORT_COUNT };

/* "created_at,-created_at,total,-total,id,-id"; false if unknown. */
bool order_sort_parse(const char *s, enum order_sort *out);
#define ORDER_SORT_MSG "Input should be 'created_at', '-created_at', 'total', '-total', 'id' or '-id'"

struct order_filter {
    int64_t         viewer;       /* created_by filter: a user's own id; 0 for an admin (all) */
    int             status;       /* -1 any, else enum rules_status */
    int64_t         customer_id;  /* 0 any */
    enum order_sort sort;
    struct page_req pg;
};

struct order_list {
    const struct order *items;
    size_t              n;
    int64_t             total;
};

/* ---- repository ---- */

/* What the repository writes for a create (inside the run's transaction). */
struct order_new {
    int64_t        customer_id;
    const char    *customer_name;
    int64_t        total;
    const char    *notes;          /* NULL: SQL NULL */
    int64_t        created_by;
    const int64_t *product_ids;    /* n each, in request order */
    const int64_t *quantities;
    const int64_t *unit_prices;
    size_t         n;
    struct event_meta ev;          /* the order.created event written with it */
};

/* A transition: the statuses it may start from (decided in the domain),
 * and, for an admin, who writes the audit row. */
struct order_transition {
    int64_t            id;
    int64_t            viewer;      /* 0: admin (any order), else only created_by = viewer */
    enum rules_status  to;
    enum rules_status  from_ok[RULES_STATUS_COUNT];
    size_t             n_from_ok;
    const struct audit_ctx *audit;  /* NULL: no audit row (a user's cancel) */
    struct event_meta  ev;          /* the order.status_changed event written with it */
};

typedef void (*order_cb)(int rc, const struct order *o, void *arg);
typedef void (*order_list_cb)(int rc, const struct order_list *l, void *arg);
typedef void (*order_refs_cb)(int rc, const struct order_refs *r, void *arg);
typedef void (*order_done_cb)(int rc, void *arg);
/* rc OF_OK: o is the updated order. OF_CONFLICT: *current is the status the
 * row had when locked (o NULL). OF_NOTFOUND: no such (visible) order. */
typedef void (*order_transition_cb)(int rc, const struct order *o, enum rules_status current,
                                    void *arg);

struct order_repo_ops {
    /* Inside tx: customer + products (ids deduplicated or not) FOR SHARE. */
    void (*lock_refs)(void *self, struct repo_tx *tx, struct of_mem *m, int64_t customer_id,
                      const int64_t *product_ids, size_t n, order_refs_cb cb, void *arg);
    /* Inside tx: order + items + its order.created event (o->ev; one
     * statement), returns the full order. */
    void (*insert)(void *self, struct repo_tx *tx, struct of_mem *m, const struct order_new *o,
                   order_cb cb, void *arg);
    /* viewer 0: any order; else only one created by viewer (OF_NOTFOUND otherwise). */
    void (*get)(void *self, struct of_mem *m, int64_t id, int64_t viewer, order_cb cb, void *arg);
    void (*list)(void *self, struct of_mem *m, const struct order_filter *f,
                 order_list_cb cb, void *arg);
    void (*transition)(void *self, struct of_mem *m, const struct order_transition *t,
                       order_transition_cb cb, void *arg);
    /* admin; audit row in the same statement; OF_NOTFOUND */
    void (*remove)(void *self, struct of_mem *m, int64_t id, const struct audit_ctx *a,
                   order_done_cb cb, void *arg);
};

struct order_repo {
    const struct order_repo_ops *ops;
    void                        *self;
};

/* ---- service ---- */

struct order_svc;
struct order_svc *order_svc_create(struct order_repo repo, struct idem_repo idem);
void order_svc_destroy(struct order_svc *s);

/* What a create's render callback gets as result: the order (rc OF_OK), or
 * the out-of-stock product (rc OF_CONFLICT). rc OF_INVALID: problems in v. */
struct order_outcome {
    const struct order *order;
    int64_t             out_of_stock;
};

/* Validate (problems: render(OF_INVALID) then done, synchronously), then an
 * idempotent run (k may be NULL / have no key) that locks the references,
 * checks them and writes. v must live until done. */
void order_svc_place(struct order_svc *s, struct of_mem *m, const struct order_input *in,
                      int64_t user_id, const struct idem_key *k, struct of_verrs *v,
                      idem_render_fn render, idem_done_fn done, void *arg);

void order_svc_get(struct order_svc *s, struct of_mem *m, int64_t id, int64_t viewer,
                   order_cb cb, void *arg);
void order_svc_list(struct order_svc *s, struct of_mem *m, const struct order_filter *f,
                    order_list_cb cb, void *arg);

/* The caller's rights: admin -> any transition of the table on any order,
 * audited; user -> only "cancelled" (else OF_FORBIDDEN, synchronously), only
 * on their own orders, only from pending. OF_CONFLICT: *current says from
 * what (for rules_transition_detail). A transition that happens writes an
 * order.status_changed event (with traceparent, NULL: none) in its statement. */
void order_svc_transition(struct order_svc *s, struct of_mem *m, int64_t id,
                          enum rules_status to, int64_t user_id, bool admin,
                          const struct audit_ctx *a, const char *traceparent,
                          order_transition_cb cb, void *arg);
void order_svc_delete(struct order_svc *s, struct of_mem *m, int64_t id,
                      const struct audit_ctx *a, order_done_cb cb, void *arg);

#endif
