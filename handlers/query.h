/*
 * query.h -- reading application/x-www-form-urlencoded text: the query
 * string (typed parameters and paging, with their 422 problems at
 * ["query", key]) and form bodies (the login form).
 *
 * Values come back percent-decoded ('+' is a space), in the arena, and
 * always valid UTF-8 without NUL: bytes that are no text become U+FFFD, as
 * FastAPI's query parsing does, so they never reach PostgreSQL as text.
 */
#ifndef OF_HDL_QUERY_H
#define OF_HDL_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hdl_req;
struct of_mem;
struct of_verrs;

/* Value of key in an x-www-form-urlencoded string src[0..len), decoded, or
 * NULL; repeated keys: the last wins. */
const char *hdl_form_value(struct of_mem *m, const char *src, size_t len, const char *key);

/* Query-string value (as hdl_form_value) or NULL. */
const char *hdl_query(struct hdl_req *r, const char *key);

/* Integer/boolean query parameters; problems go to v (loc ["query", key]),
 * and false is returned. hdl_query_int: absent → def; not an integer → a
 * type_error; outside [min, max] → a value_error saying bound_msg.
 * hdl_query_bool: *out = -1 absent, 0 false, 1 true. */
bool hdl_query_int(struct hdl_req *r, struct of_verrs *v, const char *key, int64_t def,
                   int64_t min, int64_t max, const char *bound_msg, int64_t *out);
bool hdl_query_bool(struct hdl_req *r, struct of_verrs *v, const char *key, int *out);

/* How a collection is paged (API.md "Conventions"): by page (offset, with
 * the total) or by cursor (keyset: `limit` starts, `cursor` continues). */
struct hdl_page {
    bool        by_cursor;           /* limit or cursor was given */
    int64_t     page, page_size;     /* page mode (defaults 1/20) */
    int64_t     limit;               /* cursor mode: rows per page (default 20) */
    const char *cursor;              /* cursor mode: NULL on the first page */
};

/* The paging parameters, with their bounds per API.md; page or page_size
 * together with cursor or limit is a problem too. Problems go to v. */
void hdl_paging(struct hdl_req *r, struct of_verrs *v, struct hdl_page *pg);

#endif
