/*
 * verr.c -- see verr.h.
 */
#include "domain/verr.h"

#include <stdarg.h>

void
of_verr_add(struct of_verrs *v, enum of_verr_type type, const char *msg, ...)
{
    va_list ap;

    if (v->n >= OF_VERR_MAX)
        return;
    struct of_verr *e = &v->e[v->n++];
    e->type = type;
    e->msg = msg;
    e->nloc = 0;
    va_start(ap, msg);
    for (;;) {
        struct of_loc l = va_arg(ap, struct of_loc);
        if (l.key == NULL && l.idx < 0)
            break;
        if (e->nloc < OF_LOC_MAX)
            e->loc[e->nloc++] = l;
    }
    va_end(ap);
}

const char *
of_verr_type_name(enum of_verr_type t)
{
    switch (t) {
    case OF_VE_MISSING: return "missing";
    case OF_VE_TYPE:    return "type_error";
    case OF_VE_VALUE:   return "value_error";
    case OF_VE_JSON:    return "json_invalid";
    }
    return "value_error";
}
