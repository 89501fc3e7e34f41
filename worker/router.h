/*
 * router.h -- method + path template matching with typed path parameters.
 *
 * Templates are literal segments and "{id}", which matches only a positive
 * 64-bit integer (1..2^63-1, digits only). A path that matches no template is
 * 404; a path that matches some template but not with this method is 405 and
 * the Allow header lists the methods that would have matched.
 */
#ifndef OF_ROUTER_H
#define OF_ROUTER_H

#include <stdint.h>

#include "handlers/hdl.h"

enum route_auth { RT_PUBLIC = 0, RT_USER, RT_ADMIN };

enum route_flags {
    RT_WRITE     = 1,      /* counts against rate_limit.writes_per_minute */
    RT_LOGIN     = 2,      /* counts against rate_limit.login_per_minute */
    RT_NO_ACCESS_LOG_BODY = 4,
    RT_REGISTER  = 8,      /* per client IP, as logins (rate_limit.login_per_minute) */
    RT_SMALL_BODY = 16,    /* body capped at HTTP_SMALL_BODY_MAX (auth routes) */
};

struct route {
    enum hdl_method method;
    const char     *tmpl;
    enum route_auth auth;
    unsigned        flags;
    hdl_fn          fn;
    int             id;        /* assigned by router_init: index + 1, scoreboard route id */
};

enum router_result { ROUTER_FOUND, ROUTER_NOT_FOUND, ROUTER_METHOD_NOT_ALLOWED };

struct router_match {
    const struct route *route;
    int64_t             ids[2];
    int                 nids;
    unsigned            allow;      /* with METHOD_NOT_ALLOWED: methods of the path */
};

/* Prepares the route table (split templates, assign ids). Returns OF_OK. */
int  router_init(void);
enum router_result router_match(enum hdl_method method, const char *path, struct router_match *m);
/* "GET, POST" for an Allow header. */
void router_allow_string(unsigned allow, char *buf, size_t cap);
/* The route table, for /metrics labels and the OpenAPI consistency test. */
const struct route *router_routes(size_t *n);
/* Route template for a scoreboard route id ("unmatched" for 0). */
const char *router_route_name(int id);

#endif
