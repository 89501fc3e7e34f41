/*
 * verr.h -- the list of validation problems behind a 422.
 *
 * Validation collects every problem it finds, each with its location
 * (["body","items",0,"quantity"]), a message and a type, then the handler
 * renders them all. Messages must be string literals or live in the
 * request's arena.
 *
 *   of_verr_add(v, OF_VE_VALUE, "Quantity must be positive",
 *               OF_K("body"), OF_K("items"), OF_I(i), OF_K("quantity"), OF_END);
 */
#ifndef OF_DOMAIN_VERR_H
#define OF_DOMAIN_VERR_H

#include <stdbool.h>
#include <stddef.h>

#define OF_VERR_MAX 32
#define OF_LOC_MAX  6

enum of_verr_type {
    OF_VE_MISSING = 0,   /* "missing" */
    OF_VE_TYPE,          /* "type_error" */
    OF_VE_VALUE,         /* "value_error" */
    OF_VE_JSON,          /* "json_invalid" */
};

struct of_loc {
    const char *key;     /* NULL: an index */
    int         idx;     /* with key NULL: >= 0 an index, -1 end of list */
};

#define OF_K(s) ((struct of_loc){ (s), 0 })
#define OF_I(i) ((struct of_loc){ NULL, (int)(i) })
#define OF_END  ((struct of_loc){ NULL, -1 })

struct of_verr {
    enum of_verr_type type;
    const char       *msg;
    int               nloc;
    struct of_loc     loc[OF_LOC_MAX];
};

struct of_verrs {
    size_t         n;
    struct of_verr e[OF_VERR_MAX];
};

static inline void of_verrs_init(struct of_verrs *v) { v->n = 0; }
static inline bool of_verrs_any(const struct of_verrs *v) { return v->n > 0; }

/* Appends one problem; the location parts end with OF_END. Extra problems
 * beyond OF_VERR_MAX are dropped (the first ones are what matter). */
void of_verr_add(struct of_verrs *v, enum of_verr_type type, const char *msg, ...);

const char *of_verr_type_name(enum of_verr_type t);

#endif
