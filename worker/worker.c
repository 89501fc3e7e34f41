/*
 * worker.c -- a worker process: set up the loop, evhttp on the inherited
 * socket, the pool and the services; heartbeat every second; stop
 * gracefully on TERM/QUIT (stop accepting, finish what is in flight, close
 * idle keep-alive connections, exit), at once on INT.
 */
#include "worker/worker.h"
#include "worker/worker_int.h"
#include "worker/http.h"
#include "worker/router.h"
#include "worker/trace.h"
#include "store/replica.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A stopping worker lingers at least this long (stragglers on keep-alive). */
#define WORKER_DRAIN_DELAY_NS 200000000ull
/* The last spans' export at exit: at most this long (tracing on only). */
#define WORKER_TRACE_FLUSH_MS 1000

static struct worker *self;

struct worker *
worker_self(void)
{
    return self;
}

static void worker_begin_stop(struct worker *w, const char *why);

static int64_t
mono_s(void)
{
    return (int64_t)(of_mono_ns() / 1000000000u);
}

/* The pool keeps its own counts; /metrics reads them from our slot. */
static void
sb_copy_pool_stats(struct worker *w)
{
    struct pool_stats ps;
    pool_get_stats(w->pool, &ps);
    atomic_store_explicit(&w->slot->pool_open, ps.open, memory_order_relaxed);
    atomic_store_explicit(&w->slot->pool_busy, ps.busy, memory_order_relaxed);
    atomic_store_explicit(&w->slot->pool_idle, ps.idle, memory_order_relaxed);
    atomic_store_explicit(&w->slot->pool_waiting, ps.waiting, memory_order_relaxed);
    atomic_store_explicit(&w->slot->db_ok, ps.db_ok, memory_order_relaxed);
    atomic_store_explicit(&w->slot->pool_queries[0], ps.queries, memory_order_relaxed);
    struct replica_stats rs = { false, false, -2 };
    if (w->route != NULL)
        replica_route_stats(w->route, &rs);
    if (w->replica_pool != NULL) {
        pool_get_stats(w->replica_pool, &ps);
        atomic_store_explicit(&w->slot->pool_queries[1], ps.queries, memory_order_relaxed);
    }
    atomic_store_explicit(&w->slot->replica_lag_us, rs.configured ? rs.lag_us : -2,
                          memory_order_relaxed);
    atomic_store_explicit(&w->slot->replica_serving, rs.usable, memory_order_relaxed);
}

static void
on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);
    atomic_store_explicit(&w->slot->heartbeat, mono_s(), memory_order_relaxed);
    sb_copy_pool_stats(w);
    if (getppid() == 1 && !w->stopping)
        worker_begin_stop(w, "master went away");
}

static _Noreturn void
worker_exit(struct worker *w, int code)
{
    of_log_info("worker exiting after %llu requests", (unsigned long long)w->handled);
    atomic_store(&w->slot->state, OF_SB_STOPPING);
    http_flush_log(w->http);
    trace_flush(WORKER_TRACE_FLUSH_MS);
    /* Sockets, the pool's connections and memory all go with the process;
     * freeing evhttp here would only cost time. */
    exit(code);
}

/* During a graceful stop: exit once the drain delay is over, the listener
 * is closed (its backlog accepted) and no request or connection is left. */
static void
worker_maybe_exit(struct worker *w)
{
    if (w->stopping && w->drained && http_drain_step(w->http))
        event_base_loopbreak(w->base);
}

static void
on_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);
    of_log_warn("graceful_timeout reached with %ld requests in flight",
                http_outstanding(w->http));
    event_base_loopbreak(w->base);
}

/* Every few ms during a stop: the backlog, idle connections, exit. */
static void
on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);
    if (!w->drained && of_mono_ns() - w->stop_ns >= WORKER_DRAIN_DELAY_NS)
        w->drained = true;
    if (w->drained)
        worker_maybe_exit(w);
    else
        http_drain_step(w->http);
}

/* Begin a graceful stop: stop accepting, finish in-flight, then exit. */
static void
worker_begin_stop(struct worker *w, const char *why)
{
    if (w->stopping)
        return;
    w->stopping = true;
    of_log_info("worker stopping: %s", why);
    atomic_store(&w->slot->state, OF_SB_STOPPING);
    w->stop_ns = of_mono_ns();
    if (w->warmup != NULL) {
        /* still booting: take the queued connections all the same, so they
         * are answered rather than reset when the last holder closes */
        event_free(w->warmup);
        w->warmup = NULL;
        if (http_listen(w->http, w->listen_fd) != OF_OK)
            of_log_error("evhttp_accept_socket_with_handle() failed while stopping");
    }
    http_stop(w->http);
    struct timeval tv = { w->cfg->server.graceful_timeout, 0 };
    w->stop_timer = evtimer_new(w->base, on_stop_timeout, w);
    evtimer_add(w->stop_timer, &tv);
    struct timeval tick = { 0, 5000 };
    w->drain_tick = event_new(w->base, -1, EV_PERSIST, on_drain_tick, w);
    event_add(w->drain_tick, &tick);
}

/* Take traffic once the pool has tried PostgreSQL (or after 2 s at most):
 * the first requests then find a connection instead of waiting for one,
 * and /ready is true from the start -- during a HUP the master waits for
 * READY before it stops the old workers, so readiness does not flap. */
static void
on_warmup(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);
    if (!pool_settled(w->pool) && of_mono_ns() - w->warmup_start_ns < 2000000000ull)
        return;
    event_free(w->warmup);
    w->warmup = NULL;
    if (w->stopping)
        return;
    if (http_listen(w->http, w->listen_fd) != OF_OK)
        of_fatal("evhttp_accept_socket_with_handle() failed");
    sb_copy_pool_stats(w);
    atomic_store(&w->slot->state, OF_SB_READY);
    of_log_info("worker ready (slot %d, generation %u)", w->slot_index,
                atomic_load(&w->slot->generation));
}

/* ---- what the request path reports (struct http_hooks) ---- */

static void
on_request_done(void *arg)
{
    struct worker *w = arg;
    w->handled++;
    if (w->max_requests > 0 && (long)w->handled >= w->max_requests && !w->stopping)
        worker_begin_stop(w, "max_requests reached");
}

/* Called from inside evhttp's callbacks: look on the next loop pass, where
 * closing connections is safe. */
static void
on_http_idle(void *arg)
{
    struct worker *w = arg;
    if (w->drain_tick != NULL)
        event_active(w->drain_tick, EV_TIMEOUT, 0);
}

static const struct http_hooks http_hooks = {
    .request_done = on_request_done,
    .idle = on_http_idle,
};

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct worker *w = arg;
    OF_UNUSED(what);
    switch (sig) {
    case SIGTERM:
    case SIGQUIT:
        worker_begin_stop(w, sig == SIGTERM ? "SIGTERM" : "SIGQUIT");
        break;
    case SIGINT:
        worker_exit(w, 0);
    case SIGUSR1:
        if (of_log_reopen() != 0)
            of_log_errno(OF_LOG_ERROR, errno, "reopening the log failed");
        break;
    default:
        break;
    }
}

static void
reset_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    static const int dfl[] = { SIGCHLD, SIGALRM, SIGTTIN, SIGTTOU, SIGUSR2, SIGWINCH };
    for (size_t i = 0; i < OF_ARRAY_LEN(dfl); i++)
        sigaction(dfl[i], &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTTIN, &sa, NULL);
    sigaction(SIGTTOU, &sa, NULL);
}

static struct event_base *
make_base(void)
{
    struct event_config *ec = event_config_new();
    if (ec == NULL)
        return NULL;
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *b = event_base_new_with_config(ec);
    event_config_free(ec);
    return b;
}

_Noreturn void
worker_run(const struct worker_args *a)
{
    static struct worker w;    /* one per process; static so callbacks outlive this frame */

    reset_signals();
    of_log_set_role("worker");
    memset(&w, 0, sizeof(w));
    self = &w;
    w.cfg = a->cfg;
    w.sb = a->sb;
    w.slot = &a->sb->slots[a->slot];
    w.slot_index = a->slot;
    w.max_requests = a->max_requests;

    atomic_store(&w.slot->pid, getpid());
    atomic_store(&w.slot->generation, a->generation);
    atomic_store(&w.slot->heartbeat, mono_s());
    atomic_store(&w.slot->state, OF_SB_BOOTING);

    if ((w.base = make_base()) == NULL)
        of_fatal("event_base_new() failed");
    if (router_init() != OF_OK)
        of_fatal("route table is invalid");
    struct http_env env = { .sb = w.sb, .slot = w.slot_index, .svc = &w.svc };
    if ((w.http = http_create(w.base, w.cfg, &env, &http_hooks, &w)) == NULL)
        of_fatal("setting up HTTP failed");
    w.listen_fd = a->listen_fd;
    if ((w.pool = wire_pool_create(w.base, a->cfg)) == NULL)
        of_fatal("pool_create() failed");
    if ((w.hasher = hasher_create(w.base, a->cfg->auth.hash_threads)) == NULL)
        of_fatal("hasher_create() failed");
    if (wire_services(&w) != OF_OK)
        of_fatal("wiring services failed");

    static const int sigs[] = { SIGTERM, SIGQUIT, SIGINT, SIGUSR1 };
    for (size_t i = 0; i < OF_ARRAY_LEN(sigs); i++) {
        w.sigs[i] = evsignal_new(w.base, sigs[i], on_signal, &w);
        event_add(w.sigs[i], NULL);
    }
    w.hb_timer = event_new(w.base, -1, EV_PERSIST, on_heartbeat, &w);
    struct timeval one = { 1, 0 };
    event_add(w.hb_timer, &one);

    w.warmup_start_ns = of_mono_ns();
    w.warmup = event_new(w.base, -1, EV_PERSIST, on_warmup, &w);
    struct timeval ten_ms = { 0, 10000 };
    event_add(w.warmup, &ten_ms);
    event_base_dispatch(w.base);
    worker_exit(&w, 0);
}
