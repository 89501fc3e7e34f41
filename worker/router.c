/*
 * router.c -- see router.h. The table is small (a few dozen routes), so a
 * linear scan over pre-split templates is both simple and fast; no
 * allocation happens per request.
 */
#include "worker/router.h"
#include "worker/routes.h"
#include "common/of.h"
#include "common/scoreboard.h"
#include "common/util.h"

#include <stdio.h>
#include <string.h>

#define MAX_SEGS 8

struct seg {
    const char *s;
    size_t      len;       /* 0 with s == NULL: an {id} parameter */
};

struct compiled {
    int        nsegs;
    struct seg segs[MAX_SEGS];
};

static struct compiled compiled[OF_SB_MAX_ROUTES];
static size_t          nroutes;

static int
split(const char *path, struct seg *segs, int max)
{
    int n = 0;
    if (*path != '/')
        return -1;
    while (*path == '/') {
        path++;
        const char *end = strchr(path, '/');
        size_t      len = end ? (size_t)(end - path) : strlen(path);
        if (n == max)
            return -1;
        segs[n].s = path;
        segs[n].len = len;
        n++;
        path += len;
    }
    if (*path != '\0')
        return -1;
    return n;
}

int
router_init(void)
{
    const struct route *t = routes_table(&nroutes);
    if (nroutes >= OF_SB_MAX_ROUTES)
        return OF_ERR;
    for (size_t i = 0; i < nroutes; i++) {
        struct compiled *c = &compiled[i];
        c->nsegs = split(t[i].tmpl, c->segs, MAX_SEGS);
        if (c->nsegs < 0)
            return OF_ERR;
        for (int k = 0; k < c->nsegs; k++) {
            /* any {name} segment is a typed id ({id}, {delivery_id}) */
            if (c->segs[k].len >= 3 && c->segs[k].s[0] == '{'
                && c->segs[k].s[c->segs[k].len - 1] == '}') {
                c->segs[k].s = NULL;
                c->segs[k].len = 0;
            }
        }
        ((struct route *)t)[i].id = (int)i + 1;
    }
    return OF_OK;
}

static bool
match_one(const struct compiled *c, const struct seg *segs, int nsegs, int64_t *ids, int *nids)
{
    if (c->nsegs != nsegs)
        return false;
    *nids = 0;
    for (int k = 0; k < nsegs; k++) {
        const struct seg *want = &c->segs[k];
        if (want->s == NULL) {
            if (*nids >= 2 || !of_parse_id(segs[k].s, segs[k].len, &ids[*nids]))
                return false;
            (*nids)++;
        } else if (want->len != segs[k].len || memcmp(want->s, segs[k].s, want->len) != 0) {
            return false;
        }
    }
    return true;
}

enum router_result
router_match(enum hdl_method method, const char *path, struct router_match *m)
{
    struct seg segs[MAX_SEGS];
    size_t      n;
    const struct route *t = routes_table(&n);

    m->route = NULL;
    m->allow = 0;
    m->nids = 0;
    int nsegs = split(path, segs, MAX_SEGS);
    if (nsegs < 0)
        return ROUTER_NOT_FOUND;
    for (size_t i = 0; i < n; i++) {
        int64_t ids[2];
        int     nids;
        if (!match_one(&compiled[i], segs, nsegs, ids, &nids))
            continue;
        if (t[i].method == method) {
            m->route = &t[i];
            m->ids[0] = ids[0];
            m->ids[1] = ids[1];
            m->nids = nids;
            return ROUTER_FOUND;
        }
        m->allow |= (unsigned)t[i].method;
    }
    return m->allow ? ROUTER_METHOD_NOT_ALLOWED : ROUTER_NOT_FOUND;
}

void
router_allow_string(unsigned allow, char *buf, size_t cap)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        { HDL_GET, "GET" }, { HDL_POST, "POST" }, { HDL_PUT, "PUT" }, { HDL_PATCH, "PATCH" },
        { HDL_DELETE, "DELETE" }, { HDL_HEAD, "HEAD" }, { HDL_OPTIONS, "OPTIONS" },
    };
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < OF_ARRAY_LEN(names); i++) {
        if (!(allow & names[i].bit))
            continue;
        int w = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", names[i].name);
        if (w < 0 || (size_t)w >= cap - used)
            break;
        used += (size_t)w;
    }
}

const struct route *
router_routes(size_t *n)
{
    return routes_table(n);
}

const char *
router_route_name(int id)
{
    size_t n;
    const struct route *t = routes_table(&n);
    if (id <= 0 || (size_t)id > n)
        return "unmatched";
    return t[id - 1].tmpl;
}
