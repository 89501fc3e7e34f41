/*
 * hdl.c -- the per-request state every handler shares: the call context
 * kept across a service callback, and the audit context of a write.
 * Replies, query strings and JSON bodies are reply.c, query.c and body.c.
 */
#include "handlers/hdl.h"

#include <string.h>

void
hdl_call_init(struct hdl_call *c, struct hdl_req *r)
{
    c->r = r;
    of_verrs_init(&c->v);
    memset(&c->pg, 0, sizeof(c->pg));
    c->list_kind = c->list_sort = 0;
    c->list_fp = 0;
    c->rc = 0;
}

struct hdl_call *
hdl_call_new(struct hdl_req *r)
{
    struct hdl_call *c = of_mem_alloc(r->mem, sizeof(*c));
    hdl_call_init(c, r);
    return c;
}

struct audit_ctx *
hdl_audit(struct hdl_req *r)
{
    struct audit_ctx *a = of_mem_alloc(r->mem, sizeof(*a));
    a->actor_id = r->who.user_id;
    a->request_id = r->request_id;
    return a;
}
