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
#include "common/log.h"
#include "common/of.h"
#include "common/scoreboard.h"
#include "common/util.h"
#include "config/config.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define YIELD_US        1000     /* step back from accepting this long */
#define YIELD_MAX       10       /* ... at most this many times in a row */
#define FAIR_SLACK      1        /* connections above the least busy worker */
#define READ_SLACK      (64 * 1024)  /* unread input past one whole request */

struct conns {
    struct event_base          *base;
    struct evhttp              *http;
    struct evhttp_bound_socket *bound;       /* NULL when not accepting */
    const struct cfg_server    *cfg;
    struct of_scoreboard       *sb;
    struct of_sb_slot          *slot;
    int                         slot_index;
    bool                        paused;
    bool                        draining;    /* graceful stop: accept until EAGAIN */
    struct event               *pass_ev;     /* end of an accepting pass */
    struct event               *yield_timer; /* end of a fairness step-back */
};

struct wconn {
    struct conns             *cs;
    struct bufferevent       *bev;
    struct evhttp_connection *evcon;
    int                       fd;
    void                     *req;
    void                    (*req_closed)(void *req);
    bool                      served;        /* answered a request already */
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
    struct wconn *c = arg;
    OF_UNUSED(evcon);
    if (c->fd >= 0 && (size_t)c->fd < by_fd_cap && by_fd[c->fd] == c)
        by_fd[c->fd] = NULL;
    event_del(&c->deadline);
    atomic_fetch_sub_explicit(&c->cs->slot->conns, 1, memory_order_relaxed);
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
 * worker? Then it should let the others accept for a moment. Only request
 * workers count: the jobs process's slot is READY too, with no connections
 * ever, and counting it made every worker step back after each accept (a
 * burst of 64 connections took seconds to be accepted). */
static bool
should_yield(struct conns *cs)
{
    int     mine = atomic_load_explicit(&cs->slot->conns, memory_order_relaxed) + nfresh;
    int64_t now = (int64_t)(of_mono_ns() / 1000000000u);
    int     least = INT_MAX;

    for (int i = 0; i < OF_SB_MAX_WORKERS; i++) {
        struct of_sb_slot *s = &cs->sb->slots[i];
        if (i == cs->slot_index || atomic_load_explicit(&s->state, memory_order_relaxed) != OF_SB_READY ||
            atomic_load_explicit(&s->kind, memory_order_relaxed) != OF_SB_KIND_WORKER ||
            now - atomic_load_explicit(&s->heartbeat, memory_order_relaxed) > 2)
            continue;
        int n = atomic_load_explicit(&s->conns, memory_order_relaxed);
        if (n < least)
            least = n;
    }
    return least != INT_MAX && mine > least + FAIR_SLACK;
}

static void
resume_accepting(struct conns *cs)
{
    if (cs->paused && cs->bound != NULL)
        evconnlistener_enable(evhttp_bound_socket_get_listener(cs->bound));
    cs->paused = false;
}

/* Step back from accepting for YIELD_US; counted in /metrics. */
static void
yield_step(struct conns *cs)
{
    struct timeval tv = { 0, YIELD_US };
    atomic_fetch_add_explicit(&cs->slot->db.accept_yields, 1, memory_order_relaxed);
    evtimer_add(cs->yield_timer, &tv);
}

static void
on_yield_over(evutil_socket_t fd, short what, void *arg)
{
    struct conns *cs = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);
    if (cs->bound != NULL && yields < YIELD_MAX && should_yield(cs)) {
        yields++;
        yield_step(cs);
        return;
    }
    yields = 0;
    resume_accepting(cs);
}

/* End of the pass that accepted: pick the new connections up, then decide
 * whether to accept again at once or to let the other workers go first. */
static void
on_pass_end(evutil_socket_t fd, short what, void *arg)
{
    struct conns *cs = arg;
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
        evtimer_assign(&c->deadline, cs->base, on_deadline, c);
        arm(c, cs->cfg->header_timeout);
        evhttp_connection_set_closecb(c->evcon, on_close, c);
        atomic_fetch_add_explicit(&cs->slot->conns, 1, memory_order_relaxed);
    }
    if (cs->paused && !cs->draining && should_yield(cs)) {
        yields = 1;
        yield_step(cs);
        return;
    }
    resume_accepting(cs);
}

static struct bufferevent *
on_accepted(struct event_base *base, void *arg)
{
    struct conns *cs = arg;
    struct wconn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;               /* evhttp makes its own; we just don't follow it */
    c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        free(c);
        return NULL;
    }
    /* Nothing else bounds what the bufferevent reads while no callback
     * drains it (libevent 2.1 stops reading once a request is parsed, other
     * versions keep reading for close detection while a response is
     * written): past this the socket is left unread and the client's bytes
     * wait in the kernel. evhttp keeps a Content-Length body in this buffer
     * until all of it is there, so the bound is one whole request. */
    bufferevent_setwatermark(c->bev, EV_READ, 0,
                             cs->cfg->max_header_size + cs->cfg->max_body_size + READ_SLACK);
    c->cs = cs;
    c->fd = -1;
    c->next_new = fresh;
    fresh = c;
    nfresh++;
    /* One accept per pass: evconnlistener stops its accept loop when the
     * callback disabled it. on_pass_end turns it back on. */
    if (!cs->paused && !cs->draining && cs->bound != NULL) {
        evconnlistener_disable(evhttp_bound_socket_get_listener(cs->bound));
        cs->paused = true;
    }
    event_active(cs->pass_ev, EV_TIMEOUT, 0);
    return c->bev;
}

struct conns *
conn_create(struct event_base *base, struct evhttp *http, const struct cfg_server *s,
            struct of_scoreboard *sb, int slot)
{
    struct conns *cs = calloc(1, sizeof(*cs));
    if (cs == NULL)
        return NULL;
    cs->base = base;
    cs->http = http;
    cs->cfg = s;
    cs->sb = sb;
    cs->slot = &sb->slots[slot];
    cs->slot_index = slot;
    cs->pass_ev = event_new(base, -1, 0, on_pass_end, cs);
    cs->yield_timer = evtimer_new(base, on_yield_over, cs);
    if (cs->pass_ev == NULL || cs->yield_timer == NULL)
        goto fail;
    evhttp_set_bevcb(http, on_accepted, cs);
    return cs;
fail:
    if (cs->pass_ev != NULL)
        event_free(cs->pass_ev);
    if (cs->yield_timer != NULL)
        event_free(cs->yield_timer);
    free(cs);
    return NULL;
}

void
conn_destroy(struct conns *cs)
{
    if (cs == NULL)
        return;
    event_free(cs->pass_ev);
    event_free(cs->yield_timer);
    free(cs);
}

void
conn_listening(struct conns *cs, struct evhttp_bound_socket *bound)
{
    cs->bound = bound;
}

struct wconn *
conn_of(struct conns *cs, struct evhttp_connection *evcon)
{
    OF_UNUSED(cs);
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
    const struct cfg_server *s = c->cs->cfg;
    c->req = NULL;
    c->served = true;
    arm(c, s->keepalive_timeout + s->header_timeout);
}

void
conn_drain(struct conns *cs)
{
    cs->draining = true;
    event_del(cs->yield_timer);
    yields = 0;
    resume_accepting(cs);
}

/* Idle = answered a request and nothing of the next one has been read. A
 * connection that has not sent its first request yet is not idle: it was
 * accepted to be answered, and its request may still be in the socket. */
void
conn_close_idle(struct conns *cs)
{
    OF_UNUSED(cs);
    for (size_t fd = 0; fd < by_fd_cap; fd++) {
        struct wconn *c = by_fd[fd];
        if (c == NULL || c->req != NULL || !c->served ||
            evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
            continue;
        of_log_debug("closing idle keep-alive connection fd %d: stopping", c->fd);
        evhttp_connection_free(c->evcon);     /* calls on_close, which frees c */
    }
}

int
conn_count(const struct conns *cs)
{
    return atomic_load_explicit(&cs->slot->conns, memory_order_relaxed) + nfresh;
}
