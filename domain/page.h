/*
 * page.h -- what a list asks of its repository: a page by offset (with the
 * total), or a keyset page (cursor paging: rows after the last one seen,
 * in the same order; no total).
 */
#ifndef OF_DOMAIN_PAGE_H
#define OF_DOMAIN_PAGE_H

#include <stdbool.h>
#include <stdint.h>

struct page_req {
    int64_t     offset;      /* rows to skip (offset paging; 0 in keyset mode) */
    int64_t     limit;       /* rows to return (keyset: one more than the page,
                                to see whether another page follows) */
    bool        keyset;      /* cursor paging: the total is not needed */
    bool        after;       /* continue after (after_key, after_id) */
    const char *after_key;   /* the last row's sort value as text; unused for id sorts */
    int64_t     after_id;
};

#endif
