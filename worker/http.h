/*
 * http.h -- the HTTP side of a worker: evhttp on the listen socket, the
 * middleware every request goes through, and the handler-facing io.
 *
 * http.c never decides the worker's fate: it reports through hooks and
 * reads only what it is told (http_stop: answer with "Connection: close"
 * from now on), as nginx's HTTP code only reads ngx_exiting. The worker
 * (worker.c) counts requests, decides to stop and exits.
 */
#ifndef OF_HTTP_H
#define OF_HTTP_H

#include <stdbool.h>

struct event_base;
struct of_cfg;
struct of_scoreboard;
struct hdl_services;
struct http;

/* Called on the loop; arg is http_create's hooks_arg. Either may be NULL. */
struct http_hooks {
    /* One request got its answer (queued to the client). */
    void (*request_done)(void *arg);
    /* After http_stop(), a request was freed and none is left in flight.
     * (Not called for an http that had none in flight when stopped: ask
     * http_outstanding().) */
    void (*idle)(void *arg);
};

/* What requests need besides the config: the scoreboard (slot is this
 * worker's: metrics and connection count; all slots: rate limits and
 * fair accepting) and the services every handler gets (filled in later is
 * fine: only the pointer is kept). */
struct http_env {
    struct of_scoreboard *sb;
    int                   slot;
    struct hdl_services  *svc;
};

/* hooks must not be NULL (its members may be). Sets evhttp up on base with cfg's limits; accepts nothing yet. NULL on
 * failure. cfg, env->sb, env->svc and hooks must outlive the struct http. */
struct http *http_create(struct event_base *base, const struct of_cfg *cfg,
                         const struct http_env *env, const struct http_hooks *hooks,
                         void *hooks_arg);
/* Writes the buffered access log, frees evhttp and what http owns. */
void http_destroy(struct http *h);

/* Accept connections on listen_fd. Returns OF_OK or OF_ERR. */
int  http_listen(struct http *h, int listen_fd);
/* Graceful stop: answer with "Connection: close"; requests in flight go
 * on; the listener is closed by http_drain_step once its backlog is empty.
 * hooks->idle fires when no request is left. */
void http_stop(struct http *h);
/* During a graceful stop, every few ms: closes the listener once its backlog
 * is empty (accepting what was queued first), then idle keep-alive
 * connections. True when no listener, connection or request is left. */
bool http_drain_step(struct http *h);
/* Requests not yet fully answered (or freed after their client left). */
long http_outstanding(const struct http *h);
/* Write buffered access log lines now (before exit). */
void http_flush_log(struct http *h);

#endif
