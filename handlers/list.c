/*
 * list.c -- see list.h. The cursor key is process-wide: every worker
 * derives it from the same secret, so a cursor made by one is read by all.
 */
#include "handlers/list.h"
#include "common/cursor.h"
#include "common/log.h"
#include "common/of.h"

#include <sodium.h>
#include <string.h>

static unsigned char list_key[OF_CURSOR_KEYBYTES];
static bool          list_key_set;

void
hdl_list_init_key(const void *secret, size_t len)
{
    if (sodium_init() < 0)
        of_fatal("sodium_init() failed");
    of_cursor_key(secret, len, list_key);
    list_key_set = true;
}

static const unsigned char *
key(void)
{
    if (!list_key_set)
        hdl_list_init_key("", 0);
    return list_key;
}

static void
bad_cursor(struct hdl_call *c)
{
    of_verr_add(&c->v, OF_VE_VALUE, "Invalid cursor", OF_K("query"), OF_K("cursor"), OF_END);
}

void
hdl_list_page(struct hdl_call *c, unsigned kind, unsigned sort, const char *filters,
              struct page_req *out)
{
    memset(out, 0, sizeof(*out));
    c->list_kind = kind;
    c->list_sort = sort;
    c->list_fp = of_cursor_fp(filters);
    if (!c->pg.by_cursor) {
        out->limit = c->pg.page_size;
        if (__builtin_mul_overflow(c->pg.page - 1, c->pg.page_size, &out->offset))
            out->offset = INT64_MAX;
        return;
    }
    out->keyset = true;
    out->limit = c->pg.limit + 1;
    if (c->pg.cursor == NULL || c->pg.cursor[0] == '\0')
        return;
    struct of_cursor cur;
    if (of_cursor_decode(c->r->mem, key(), c->pg.cursor, &cur) != OF_OK
        || cur.kind != kind || cur.sort != sort || cur.fp != c->list_fp) {
        bad_cursor(c);
        return;
    }
    out->after = true;
    out->after_key = cur.key;
    out->after_id = cur.id;
}

static json_t *
page_json(const struct hdl_page *pg, json_t *items, int64_t total)
{
    int64_t pages = total == 0 ? 0 : total / pg->page_size + (total % pg->page_size != 0);
    return json_pack("{s:o,s:I,s:I,s:I,s:I}", "items", items, "page", (json_int_t)pg->page,
                     "page_size", (json_int_t)pg->page_size, "total", (json_int_t)total,
                     "total_pages", (json_int_t)pages);
}

static json_t *
next_cursor(struct hdl_call *c, const void *last, hdl_key_fn keyfn)
{
    struct of_cursor cur = { .kind = c->list_kind, .sort = c->list_sort, .fp = c->list_fp };
    cur.key = keyfn(c->r->mem, last, c->list_sort, &cur.id);
    return json_string(of_cursor_encode(c->r->mem, key(), &cur));
}

void
hdl_reply_list(struct hdl_call *c, int rc, const void *items, size_t n, size_t item_size,
               hdl_render_fn render, int64_t total, hdl_key_fn keyfn)
{
    if (rc != OF_OK) {
        hdl_reply_rc(c->r, rc);
        return;
    }
    bool   more = c->pg.by_cursor && n > (size_t)c->pg.limit;
    size_t shown = more ? (size_t)c->pg.limit : n;
    json_t *arr = json_array();
    for (size_t i = 0; i < shown; i++)
        json_array_append_new(arr, render((const char *)items + i * item_size));
    if (!c->pg.by_cursor) {
        hdl_reply_json(c->r, 200, page_json(&c->pg, arr, total));
        return;
    }
    json_t *next = more ? next_cursor(c, (const char *)items + (shown - 1) * item_size, keyfn)
                        : json_null();
    hdl_reply_json(c->r, 200, json_pack("{s:o,s:o}", "items", arr, "next_cursor", next));
}
