/*
 * conn.h -- the worker's view of its client connections (internal).
 *
 * evhttp owns connections; this module follows each one from accept to
 * close so that the worker can
 *   - share accepts fairly with the other workers on the same socket (a
 *     worker holding clearly more connections than the least busy one
 *     steps back for a millisecond, so a burst is spread out);
 *   - cut off a client that takes longer than server.header_timeout to send
 *     a whole request, or keeps an idle keep-alive connection past
 *     keepalive_timeout + header_timeout (libevent 2.1 only has an idle
 *     timeout, which a client trickling bytes never hits);
 *   - learn when the connection of a request in progress goes away.
 */
#ifndef OF_WORKER_CONN_H
#define OF_WORKER_CONN_H

struct conns;
struct wconn;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_connection;
struct event_base;
struct cfg_server;
struct of_scoreboard;

/* Installs the bufferevent hook on http; call before accepting. slot is
 * this worker's scoreboard slot (its connection count); the other slots
 * tell how busy the other workers are. NULL on allocation failure. */
struct conns *conn_create(struct event_base *base, struct evhttp *http,
                          const struct cfg_server *s, struct of_scoreboard *sb, int slot);
/* After the evhttp it follows was freed. NULL is fine. */
void conn_destroy(struct conns *cs);
/* The socket now accepting connections, or NULL once it no longer does. */
void conn_listening(struct conns *cs, struct evhttp_bound_socket *bound);
/* The tracked connection behind evcon, or NULL. */
struct wconn *conn_of(struct conns *cs, struct evhttp_connection *evcon);
/* A request was read on c: no deadline while it runs; closed(req) is called
 * if the connection goes away before conn_request_done(). */
void conn_request_begin(struct wconn *c, void *req, void (*closed)(void *req));
/* Its response was written: the connection is idle again. */
void conn_request_done(struct wconn *c);
/* Graceful stop: accept every queued connection (no fairness pauses). */
void conn_drain(struct conns *cs);
/* Graceful stop: close the keep-alive connections that sit idle between
 * requests (those mid-request, or not yet at their first, stay). */
void conn_close_idle(struct conns *cs);
/* Connections this worker holds open. */
int  conn_count(const struct conns *cs);

#endif
