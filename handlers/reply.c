/*
 * reply.c -- see reply.h. Every error body goes through send_detail, so
 * the {"detail": ...} shape is written once.
 */
#include "handlers/reply.h"
#include "handlers/hdl.h"
#include "common/log.h"
#include "common/of.h"
#include "domain/money.h"

#include <stdio.h>

#define JSON_CT "application/json"

void
hdl_reply_json(struct hdl_req *r, int status, json_t *body)
{
    char   stack[4096];
    size_t n = json_dumpb(body, stack, sizeof(stack), JSON_COMPACT);
    if (n == 0) {
        json_decref(body);
        hdl_reply_error(r, 500, "Internal server error");
        return;
    }
    if (n <= sizeof(stack)) {
        json_decref(body);
        r->io->send(r, status, JSON_CT, stack, n);
        return;
    }
    char *buf = of_mem_alloc(r->mem, n);
    json_dumpb(body, buf, n, JSON_COMPACT);
    json_decref(body);
    r->io->send(r, status, JSON_CT, buf, n);
}

/* {"detail": detail}, without headers of its own. */
static void
send_detail(struct hdl_req *r, int status, const char *detail)
{
    char   buf[1024], esc[900];

    of_json_escape(esc, sizeof(esc), detail);
    int n = snprintf(buf, sizeof(buf), "{\"detail\":\"%s\"}", esc);
    if (n < 0 || (size_t)n >= sizeof(buf))
        n = snprintf(buf, sizeof(buf), "{\"detail\":\"Internal server error\"}");
    r->io->send(r, status, JSON_CT, buf, (size_t)n);
}

void
hdl_reply_error(struct hdl_req *r, int status, const char *detail)
{
    if (status == 401)
        r->io->add_header(r, "WWW-Authenticate", "Bearer");
    else if (status == 429 || status == 503)
        r->io->add_header(r, "Retry-After", "1");
    send_detail(r, status, detail);
}

void
hdl_reply_too_many(struct hdl_req *r, int retry_after)
{
    char buf[16];
    snprintf(buf, sizeof(buf), "%d", retry_after > 0 ? retry_after : 1);
    r->io->add_header(r, "Retry-After", buf);
    send_detail(r, 429, "Too many requests");
}

static json_t *
verr_json(const struct of_verr *e)
{
    json_t *loc = json_array();
    for (int i = 0; i < e->nloc; i++) {
        if (e->loc[i].key != NULL)
            json_array_append_new(loc, json_string(e->loc[i].key));
        else
            json_array_append_new(loc, json_integer(e->loc[i].idx));
    }
    return json_pack("{s:o,s:s,s:s}", "loc", loc, "msg", e->msg ? e->msg : "Invalid value",
                     "type", of_verr_type_name(e->type));
}

void
hdl_reply_verrs(struct hdl_req *r, const struct of_verrs *v)
{
    json_t *errs = json_array();
    for (size_t i = 0; i < v->n; i++)
        json_array_append_new(errs, verr_json(&v->e[i]));
    hdl_reply_json(r, 422, json_pack("{s:s,s:o}", "detail", "Validation error", "errors", errs));
}

void
hdl_reply_rc(struct hdl_req *r, int rc)
{
    switch (rc) {
    case OF_NOTFOUND:    hdl_reply_error(r, 404, "Not Found"); break;
    case OF_CONFLICT:    hdl_reply_error(r, 409, "Conflict"); break;
    case OF_FORBIDDEN:   hdl_reply_error(r, 403, "Insufficient permissions"); break;
    case OF_UNAUTH:      hdl_reply_error(r, 401, "Could not validate credentials"); break;
    case OF_UNAVAILABLE: hdl_reply_error(r, 503, "Service unavailable"); break;
    case OF_BADREQ:      hdl_reply_error(r, 400, "Bad request"); break;
    case OF_INVALID: {
        struct of_verrs v;
        of_verrs_init(&v);
        of_verr_add(&v, OF_VE_VALUE, "Invalid value", OF_K("body"), OF_END);
        hdl_reply_verrs(r, &v);
        break;
    }
    default:             hdl_reply_error(r, 500, "Internal server error"); break;
    }
}

void
hdl_reply_empty(struct hdl_req *r, int status)
{
    r->io->send(r, status, NULL, "", 0);
}

void
hdl_reply_not_found(struct hdl_req *r, const char *entity)
{
    hdl_reply_error(r, 404, of_mem_printf(r->mem, "%s %lld not found", entity, (long long)r->ids[0]));
}

void
hdl_reply_item(struct hdl_req *r, int rc, const void *item, hdl_render_fn render, const char *entity)
{
    if (rc == OF_NOTFOUND)
        hdl_reply_not_found(r, entity);
    else if (rc != OF_OK)
        hdl_reply_rc(r, rc);
    else
        hdl_reply_json(r, 200, render(item));
}

/* The paged collection envelope; takes the reference to items. */
static json_t *
page_json(json_t *items, int64_t page, int64_t page_size, int64_t total)
{
    int64_t pages = total == 0 ? 0 : (total + page_size - 1) / page_size;
    return json_pack("{s:o,s:I,s:I,s:I,s:I}", "items", items, "page", (json_int_t)page,
                     "page_size", (json_int_t)page_size, "total", (json_int_t)total,
                     "total_pages", (json_int_t)pages);
}

void
hdl_reply_page(struct hdl_req *r, int rc, const void *items, size_t n, size_t item_size,
               hdl_render_fn render, int64_t page, int64_t page_size, int64_t total)
{
    if (rc != OF_OK) {
        hdl_reply_rc(r, rc);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, render((const char *)items + i * item_size));
    hdl_reply_json(r, 200, page_json(arr, page, page_size, total));
}

json_t *
hdl_money(int64_t cents)
{
    char buf[32];
    money_format(cents, buf);
    return json_string(buf);
}
