/*
 * audit.c -- GET /api/v1/audit (admin): paged, filters entity and actor_id,
 * newest (highest id) first. details is stored as a JSON object and sent as
 * one.
 */
#include "handlers/list.h"
#include "handlers/audit.h"
#include "handlers/services.h"
#include "domain/audit.h"
#include "domain/rules.h"
#include "common/of.h"

#include <stdint.h>
#include <string.h>

static json_t *
entry_json(const void *item)
{
    const struct audit_entry *e = item;
    json_t *details = e->details != NULL ? json_loads(e->details, 0, NULL) : NULL;
    if (details == NULL)
        details = json_object();
    return json_pack("{s:I,s:o,s:s,s:s,s:I,s:o,s:s,s:o}",
                     "id", (json_int_t)e->id,
                     "actor_id", e->actor_id > 0 ? json_integer((json_int_t)e->actor_id) : json_null(),
                     "action", e->action, "entity", e->entity,
                     "entity_id", (json_int_t)e->entity_id,
                     "request_id", e->request_id != NULL ? json_string(e->request_id) : json_null(),
                     "at", e->at, "details", details);
}

static const char *
entry_key(struct of_mem *m, const void *item, unsigned sort, int64_t *id)
{
    (void)m;
    (void)sort;
    *id = ((const struct audit_entry *)item)->id;
    return "";
}

static void
listed(int rc, const struct audit_list *l, void *arg)
{
    hdl_reply_list(arg, rc, l ? l->items : NULL, l ? l->n : 0, sizeof(*l->items), entry_json,
                   l ? l->total : 0, entry_key);
}

void
hdl_audit_list(struct hdl_req *r)
{
    struct hdl_call *c = hdl_call_new(r);
    struct audit_filter f = { 0 };

    hdl_paging(r, &c->v, &c->pg);
    const char *entity = hdl_query(r, "entity");
    if (entity != NULL) {
        f.entity = audit_entity_parse(entity);
        if (f.entity == NULL)
            of_verr_add(&c->v, OF_VE_VALUE,
                        "Input should be 'product', 'customer', 'order' or 'user'",
                        OF_K("query"), OF_K("entity"), OF_END);
    }
    hdl_query_int(r, &c->v, "actor_id", 0, 1, INT64_MAX,
                  "Input should be greater than or equal to 1", &f.actor_id);
    hdl_list_page(c, HDL_LIST_AUDIT, 0,
                  of_mem_printf(r->mem, "entity=%s|actor_id=%lld", f.entity ? f.entity : "",
                                (long long)f.actor_id), &f.pg);
    if (of_verrs_any(&c->v)) {
        hdl_reply_verrs(r, &c->v);
        return;
    }
    audit_svc_list(r->svc->audit, r->mem, &f, listed, c);
}
