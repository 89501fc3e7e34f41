/*
 * pglisten.h -- one PostgreSQL connection that LISTENs, on the event loop.
 *
 * Used by whoever must hear about committed changes: a worker's product
 * cache (channel of_products) and the jobs process (channel of_events).
 * Writers NOTIFY inside their transaction, so only committed changes are
 * heard.
 *
 * The connection is opened with PQconnectStartParams/PQconnectPoll and never
 * blocks the loop. Once every LISTEN is acknowledged the listener is "up"
 * and on_state(true) fires; each notification then calls on_notify. When the
 * connection breaks (server restart, pg_terminate_backend, network) on_state
 * (false) fires at once -- notifications may have been missed from then on,
 * so a cache must drop everything -- and it redials after 100 ms, doubling
 * up to 5 s. A LISTEN that fails is treated the same way.
 *
 * Callbacks run on the loop, never inside pglisten_create(); on_state fires
 * only on a change. The listener copies conninfo and the channel names.
 */
#ifndef OF_STORE_PGLISTEN_H
#define OF_STORE_PGLISTEN_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
typedef struct pglisten pglisten;

struct pglisten_hooks {
    /* payload is "" when the NOTIFY had none; both valid during the call. */
    void (*on_notify)(void *arg, const char *channel, const char *payload);
    void (*on_state)(void *arg, bool up);
};

/* conninfo: a libpq URL or keyword/value string. channels: n plain names
 * (quoted as identifiers). app_name: application_name of the connection.
 * NULL only on out-of-memory or n == 0. */
pglisten *pglisten_create(struct event_base *base, const char *conninfo, const char *app_name,
                          const char *const *channels, size_t n,
                          const struct pglisten_hooks *hooks, void *arg);
void      pglisten_destroy(pglisten *l);
bool      pglisten_up(const pglisten *l);

#endif
