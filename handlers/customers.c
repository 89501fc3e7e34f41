/*
 * customers.c -- customers over HTTP. JSON ⇄ customer_input, then the
 * customer service; the field rules live in domain/customer.c.
 */
#include "handlers/list.h"
#include "handlers/customers.h"
#include "handlers/services.h"
#include "domain/customer.h"
#include "domain/rules.h"
#include "common/of.h"

#include <string.h>

static json_t *
customer_json(const void *item)
{
    const struct customer *c = item;
    return json_pack("{s:I,s:s,s:s,s:s,s:b,s:s}", "id", (json_int_t)c->id, "name", c->name,
                     "email", c->email, "tier", rules_tier_name(c->tier),
                     "is_active", c->is_active, "created_at", c->created_at);
}

/* ---- reads ---- */

static void
got(int rc, const struct customer *item, void *arg)
{
    hdl_reply_item(arg, rc, item, customer_json, "Customer");
}

void
hdl_customers_get(struct hdl_req *r)
{
    customer_svc_get(r->svc->customers, r->mem, r->ids[0], got, r);
}

static const char *
customer_key(struct of_mem *m, const void *item, unsigned sort, int64_t *id)
{
    const struct customer *cu = item;
    (void)m;
    *id = cu->id;
    return sort == CSORT_NAME || sort == CSORT_NAME_DESC ? cu->name : "";
}

static void
listed(int rc, const struct customer_list *l, void *arg)
{
    hdl_reply_list(arg, rc, l ? l->items : NULL, l ? l->n : 0, sizeof(*l->items), customer_json,
                   l ? l->total : 0, customer_key);
}

void
hdl_customers_list(struct hdl_req *r)
{
    struct hdl_call       *c = hdl_call_new(r);
    struct customer_filter f = { .tier = -1, .is_active = -1, .sort = CSORT_ID };

    hdl_paging(r, &c->v, &c->pg);
    hdl_query_bool(r, &c->v, "is_active", &f.is_active);
    const char *tier = hdl_query(r, "tier");
    if (tier != NULL) {
        enum rules_tier t;
        int rc = rules_tier_parse(tier, strlen(tier), &t);
        if (rc == OF_OK)
            f.tier = (int)t;
        else
            of_verr_add(&c->v, OF_VE_VALUE, rules_strerror(rc), OF_K("query"), OF_K("tier"), OF_END);
    }
    f.q = hdl_query(r, "q");
    const char *sort = hdl_query(r, "sort");
    if (sort != NULL && !customer_sort_parse(sort, &f.sort))
        of_verr_add(&c->v, OF_VE_VALUE, "Input should be 'id', '-id', 'name' or '-name'",
                    OF_K("query"), OF_K("sort"), OF_END);
    hdl_list_page(c, HDL_LIST_CUSTOMERS, f.sort,
                  of_mem_printf(r->mem, "tier=%d|is_active=%d|q=%s%s", f.tier, f.is_active,
                                f.q ? "1" : "0", f.q ? f.q : ""), &f.pg);
    if (of_verrs_any(&c->v)) {
        hdl_reply_verrs(r, &c->v);
        return;
    }
    customer_svc_list(r->svc->customers, r->mem, &f, listed, c);
}

/* ---- writes ---- */

/* JSON types only (absent required fields too, for a create); the field
 * rules are the domain's. false when a problem was found. */
static bool
parse_input(json_t *body, bool create, struct hdl_call *c, struct customer_input *in)
{
    memset(in, 0, sizeof(*in));
    in->has_name = hdl_field_str(body, "name", create, &c->v, &in->name, &in->name_len) == FIELD_OK;
    in->has_email = hdl_field_str(body, "email", create, &c->v, &in->email, &in->email_len) == FIELD_OK;
    in->has_tier = hdl_field_str(body, "tier", false, &c->v, &in->tier_str, &in->tier_len) == FIELD_OK;
    in->has_is_active = hdl_field_bool(body, "is_active", false, &c->v, &in->is_active) == FIELD_OK;
    return !of_verrs_any(&c->v);
}

static void
written(int rc, const struct customer *cu, void *arg, int ok_status)
{
    struct hdl_call *c = arg;
    switch (rc) {
    case OF_OK:       hdl_reply_json(c->r, ok_status, customer_json(cu)); break;
    case OF_INVALID:  hdl_reply_verrs(c->r, &c->v); break;
    case OF_CONFLICT: hdl_reply_error(c->r, 409, "Customer email already exists"); break;
    case OF_NOTFOUND: hdl_reply_not_found(c->r, "Customer"); break;
    default:          hdl_reply_rc(c->r, rc); break;
    }
}

static void created(int rc, const struct customer *cu, void *arg) { written(rc, cu, arg, 201); }
static void updated(int rc, const struct customer *cu, void *arg) { written(rc, cu, arg, 200); }

void
hdl_customers_create(struct hdl_req *r)
{
    struct customer_input in;
    json_t *body = hdl_json_body(r);
    if (body == NULL)
        return;
    struct hdl_call *c = hdl_call_new(r);
    if (!parse_input(body, true, c, &in)) {
        customer_validate(&in, false, r->mem, &c->v);   /* the rules of the fields that parsed */
        hdl_reply_verrs(r, &c->v);
        return;
    }
    customer_svc_insert(r->svc->customers, r->mem, &in, &c->v, created, c);
}

void
hdl_customers_patch(struct hdl_req *r)
{
    struct customer_input in;
    json_t *body = hdl_json_body(r);
    if (body == NULL)
        return;
    struct hdl_call *c = hdl_call_new(r);
    if (!parse_input(body, false, c, &in)) {
        customer_validate(&in, false, r->mem, &c->v);
        hdl_reply_verrs(r, &c->v);
        return;
    }
    customer_svc_update(r->svc->customers, r->mem, r->ids[0], &in, &c->v, updated, c);
}

static void
removed(int rc, enum customer_removal how, void *arg)
{
    struct hdl_req *r = arg;
    OF_UNUSED(how);                 /* deleted or deactivated: both are 204 */
    if (rc == OF_OK)
        hdl_reply_empty(r, 204);
    else if (rc == OF_NOTFOUND)
        hdl_reply_not_found(r, "Customer");
    else
        hdl_reply_rc(r, rc);
}

void
hdl_customers_delete(struct hdl_req *r)
{
    customer_svc_delete(r->svc->customers, r->mem, r->ids[0], hdl_audit(r), removed, r);
}
