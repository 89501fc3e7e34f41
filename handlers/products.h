/*
 * products.h -- /api/v1/products: public reads, admin writes.
 */
#ifndef OF_HDL_PRODUCTS_H
#define OF_HDL_PRODUCTS_H

#include "handlers/hdl.h"

struct cache;

/* The product cache's groups (common/cache.h): reads by id, list pages. */
enum { HDL_PCACHE_ITEMS = 0, HDL_PCACHE_LISTS = 1 };

/* Apply one of_products notification (payload "<id>": that product and
 * every list page; anything else: everything) to the cache c (may be NULL).
 * Also called after this worker's own successful writes. */
void hdl_products_invalidate(struct cache *c, const char *payload);

void hdl_products_list(struct hdl_req *r);
void hdl_products_get(struct hdl_req *r);
void hdl_products_create(struct hdl_req *r);
void hdl_products_patch(struct hdl_req *r);
void hdl_products_delete(struct hdl_req *r);

#endif
