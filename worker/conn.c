/*
 * conn.c -- see conn.h.
 *
 * evhttp asks for a bufferevent right after accept(2) (evhttp_set_bevcb);
 * at the end of that loop pass the new connection exists and its evhttp
 * object is the bufferevent's callback argument, so it is picked up then:
 * closecb set, deadline armed, indexed by file descriptor (unique among open
 * connections of a process) for conn_of().
 */
#include "worker/conn.h"
#include "worker/worker_int.h"
#include "common/log.h"
#include "common/util.h"

#include <event2/bufferevent.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define YIELD_US        1000     /* step back from accepting this long */
#define YIELD_MAX       10       /* ... at most this many times in a row */
#define FAIR_SLACK      1        /* connections above the least busy worker */

struct wconn {
    struct worker            *w;
    struct bufferevent       *bev;
    struct evhttp_connection *evcon;
    int                       fd;
    void                     *req;
    void                    (*req_closed)(void *req);
    struct event              deadline;
    struct wconn             *next_new;
};

static struct wconn **by_fd;
static size_t         by_fd_cap;
static struct wconn  *fresh;          /* accepted this pass, not yet picked up */
static int            nfresh;
static int            yields;

static void
arm(struct wconn *c, int seconds)
{
    struct timeval tv = { seconds, 0 };
    evtimer_add(&c->deadline, &tv);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct wconn *c = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);
    if (c->req != NULL)
        return;            /* a request runs: its own timeouts apply */
    of_log_debug("closing connection fd %d: no complete request in time", c->fd);
    evhttp_connection_free(c->evcon);     /* calls on_close, which frees c */
}

static void
on_close(struct evhttp_connection *evcon, void *arg)
{
    struct wconn  *c = arg;
    struct worker *w = c->w;
    OF_UNUSED(evcon);
    if (c->fd >= 0 && (size_t)c->fd < by_fd_cap && by_fd[c->fd] == c)
        by_fd[c->fd] = NULL;
    event_del(&c->deadline);
    atomic_fetch_sub_explicit(&w->slot->conns, 1, memory_order_relaxed);
    if (c->req != NULL)
        c->req_closed(c->req);
    free(c);
}

static bool
index_fd(struct wconn *c)
{
    if ((size_t)c->fd >= by_fd_cap) {
        size_t cap = by_fd_cap ? by_fd_cap : 1024;
        while (cap <= (size_t)c->fd)
            cap *= 2;
        struct wconn **n = realloc(by_fd, cap * sizeof(*n));
        if (n == NULL)
            return false;
        memset(n + by_fd_cap, 0, (cap - by_fd_cap) * sizeof(*n));
        by_fd = n;
        by_fd_cap = cap;
    }
    by_fd[c->fd] = c;
    return true;
}

/* Does this worker hold clearly more connections than the least busy live
 * worker? Then it should let the others accept for a moment. */
static bool
should_yield(struct worker *w)
{
    int     mine = atomic_load_explicit(&w->slot->conns, memory_order_relaxed) + nfresh;
    int64_t now = (int64_t)(of_mono_ns() / 1000000000u);
    int     least = INT_MAX;

    for (int i = 0; i < OF_SB_MAX_WORKERS; i++) {
        struct of_sb_slot *s = &w->sb->slots[i];
        if (i == w->slot_index || atomic_load_explicit(&s->state, memory_order_relaxed) != OF_SB_READY ||
            now - atomic_load_explicit(&s->heartbeat, memory_order_relaxed) > 2)
            continue;
        int n = atomic_load_explicit(&s->conns, memory_order_relaxed);
        if (n < least)
            least = n;
    }
    return least != INT_MAX && mine > least + FAIR_SLACK;
}

static void
resume_accepting(struct worker *w)
{
    if (w->accept_paused && w->bound != NULL)
        evconnlistener_enable(evhttp_bound_socket_get_listener(w->bound));
    w->accept_paused = false;
}

static void
on_yield_over(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);
    if (w->bound != NULL && yields < YIELD_MAX && should_yield(w)) {
        struct timeval tv = { 0, YIELD_US };
        yields++;
        evtimer_add(w->accept_timer, &tv);
        return;
    }
    yields = 0;
    resume_accepting(w);
}

/* End of the pass that accepted: pick the new connections up, then decide
 * whether to accept again at once or to let the other workers go first. */
static void
on_pass_end(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);
    while (fresh != NULL) {
        struct wconn *c = fresh;
        void         *cbarg = NULL;
        fresh = c->next_new;
        nfresh--;
        bufferevent_getcb(c->bev, NULL, NULL, NULL, &cbarg);
        c->evcon = cbarg;
        c->fd = (int)bufferevent_getfd(c->bev);
        if (c->evcon == NULL || c->fd < 0 || !index_fd(c)) {
            free(c);           /* evhttp did not keep it; nothing to follow */
            continue;
        }
        evtimer_assign(&c->deadline, w->base, on_deadline, c);
        arm(c, w->cfg->server.header_timeout);
        evhttp_connection_set_closecb(c->evcon, on_close, c);
        atomic_fetch_add_explicit(&w->slot->conns, 1, memory_order_relaxed);
    }
    if (w->accept_paused && should_yield(w)) {
        struct timeval tv = { 0, YIELD_US };
        yields = 1;
        evtimer_add(w->accept_timer, &tv);
        return;
    }
    resume_accepting(w);
}

static struct bufferevent *
on_accepted(struct event_base *base, void *arg)
{
    struct worker *w = arg;
    struct wconn  *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;               /* evhttp makes its own; we just don't follow it */
    c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        free(c);
        return NULL;
    }
    c->w = w;
    c->fd = -1;
    c->next_new = fresh;
    fresh = c;
    nfresh++;
    /* One accept per pass: evconnlistener stops its accept loop when the
     * callback disabled it. on_pass_end turns it back on. */
    if (!w->accept_paused && w->bound != NULL) {
        evconnlistener_disable(evhttp_bound_socket_get_listener(w->bound));
        w->accept_paused = true;
    }
    event_active(w->accept_ev, EV_TIMEOUT, 0);
    return c->bev;
}

int
conn_setup(struct worker *w)
{
    w->accept_ev = event_new(w->base, -1, 0, on_pass_end, w);
    w->accept_timer = evtimer_new(w->base, on_yield_over, w);
    if (w->accept_ev == NULL || w->accept_timer == NULL)
        return OF_ERR;
    evhttp_set_bevcb(w->http, on_accepted, w);
    return OF_OK;
}

struct wconn *
conn_of(struct worker *w, struct evhttp_connection *evcon)
{
    OF_UNUSED(w);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    int fd = bev ? (int)bufferevent_getfd(bev) : -1;
    if (fd < 0 || (size_t)fd >= by_fd_cap || by_fd[fd] == NULL || by_fd[fd]->evcon != evcon)
        return NULL;
    return by_fd[fd];
}

void
conn_request_begin(struct wconn *c, void *req, void (*closed)(void *req))
{
    c->req = req;
    c->req_closed = closed;
    event_del(&c->deadline);
}

void
conn_request_done(struct wconn *c)
{
    const struct cfg_server *s = &c->w->cfg->server;
    c->req = NULL;
    arm(c, s->keepalive_timeout + s->header_timeout);
}
