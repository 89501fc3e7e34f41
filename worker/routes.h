/*
 * routes.h -- the route table: every method + path of API.md, its auth
 * level, and its handler.
 */
#ifndef OF_ROUTES_H
#define OF_ROUTES_H

#include <stddef.h>

struct route;
const struct route *routes_table(size_t *n);

#endif
