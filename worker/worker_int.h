/*
 * worker_int.h -- the worker's private state, shared by worker.c (the loop,
 * signals, heartbeat, wiring) and http.c (the request life cycle).
 */
#ifndef OF_WORKER_INT_H
#define OF_WORKER_INT_H

#include <event2/event.h>
#include <event2/http.h>
#include <event2/buffer.h>

#include "common/scoreboard.h"
#include "config/config.h"
#include "handlers/services.h"
#include "store/pool.h"
#include "worker/hasher.h"

struct worker {
    const struct of_cfg         *cfg;
    struct event_base           *base;
    struct evhttp               *http;
    struct evhttp_bound_socket  *bound;
    struct of_scoreboard        *sb;
    struct of_sb_slot           *slot;
    pool                        *pool;
    hasher                      *hasher;
    struct evbuffer             *outbuf;      /* reused for every reply */
    struct event                *hb_timer;
    struct event                *stop_timer;
    struct event                *sigs[6];
    struct hdl_services          svc;
    void                        *wiring;      /* repositories and services (wire.c) */
    long                         max_requests;
    uint64_t                     handled;
    long                         outstanding; /* requests not yet fully answered */
    bool                         stopping;
    bool                         drained;
    bool                         accept_paused;
    struct event                *accept_ev;    /* end of an accepting pass (conn.c) */
    struct event                *accept_timer; /* end of a fairness step-back */
    /* Access log lines of one loop pass, written together by one deferred
     * event after the pass: one write(2) per pass, not per request. */
    char                         alog[65536];
    size_t                       alog_len;
    struct event                *alog_ev;
    int                          slot_index;
    pid_t                        pid;
    int                          listen_fd;
    struct event                *warmup;      /* until the pool has tried the database */
    uint64_t                     warmup_start_ns;         /* getpid() is a system call each time */
};

/* The one worker of this process (worker.c). */
struct worker *worker_self(void);

/* http.c */
void http_setup(struct worker *w);
/* Write out buffered access log lines now. */
void http_flush_access_log(struct worker *w);
/* Called when outstanding may have dropped to zero during a graceful stop. */
void worker_maybe_exit(struct worker *w);
/* Begin a graceful stop: stop accepting, finish in-flight, then exit. */
void worker_begin_stop(struct worker *w, const char *why);

/* wire.c: create repositories and services over the pool; fill w->svc. */
int  wire_services(struct worker *w);
void wire_destroy(struct worker *w);
/* wire.c: the worker's pool, over every statement of every repository. */
pool *wire_pool_create(struct event_base *base, const struct of_cfg *cfg);

#endif
