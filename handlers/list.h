/*
 * list.h -- paged collections over HTTP: the page a repository is asked for
 * (by offset, or keyset after a cursor's row) and the answer's two shapes,
 * {"items","page","page_size","total","total_pages"} or
 * {"items","next_cursor"} (API.md "Conventions").
 *
 * A cursor (common/cursor.h) is bound to its collection, its sort and a
 * fingerprint of the filters; one that does not decode, is forged, or was
 * made for another collection, sort or filter is 422 loc ["query","cursor"].
 */
#ifndef OF_HDL_LIST_H
#define OF_HDL_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handlers/hdl.h"
#include "domain/page.h"

enum hdl_list_kind {
    HDL_LIST_PRODUCTS = 1, HDL_LIST_CUSTOMERS, HDL_LIST_ORDERS, HDL_LIST_ACCOUNTS,
    HDL_LIST_TRANSFERS, HDL_LIST_AUDIT, HDL_LIST_USERS, HDL_LIST_WEBHOOKS,
    HDL_LIST_DELIVERIES,
};

/* The cursor key from the server secret; once per process, before serving.
 * Without it (unit tests) the key comes from an empty secret. */
void hdl_list_init_key(const void *secret, size_t len);

/* The repository's page request from c->pg (read by hdl_paging), once the
 * filters are known: filters is a canonical text of them (same filters, same
 * text). A bad cursor adds its problem to c->v. */
void hdl_list_page(struct hdl_call *c, unsigned kind, unsigned sort, const char *filters,
                   struct page_req *out);

/* The sort value of item under sort, as text the repository reads back
 * (NULL or "" for id sorts), and its id. */
typedef const char *(*hdl_key_fn)(struct of_mem *m, const void *item, unsigned sort,
                                  int64_t *id);

/* A list callback's answer: rc != OF_OK → its error; else 200 with the
 * envelope of the paging mode. In cursor mode the repository returned up to
 * limit + 1 rows; the extra one only says that a next page exists. */
void hdl_reply_list(struct hdl_call *c, int rc, const void *items, size_t n, size_t item_size,
                    hdl_render_fn render, int64_t total, hdl_key_fn key);

#endif
