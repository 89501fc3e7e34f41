/*
 * pglisten.c -- see pglisten.h.
 *
 *   BACKOFF --timer--> CONNECTING --PQconnectPoll ok--> SUBSCRIBING (one
 *   LISTEN per channel, in one query string) --all results--> UP
 *
 * Any failure goes to BACKOFF (closing the connection). The timer is both
 * the backoff and the connect/subscribe timeout.
 */
#include "store/pglisten.h"

#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "common/log.h"
#include "common/of.h"

#define PGL_BACKOFF_MIN_MS 100
#define PGL_BACKOFF_MAX_MS 5000
#define PGL_CONNECT_MS     10000

enum pgl_state { PGL_BACKOFF, PGL_CONNECTING, PGL_SUBSCRIBING, PGL_UP };

struct pglisten {
    struct event_base          *base;
    const struct pglisten_hooks *hooks;
    void                       *arg;
    char                       *conninfo;
    char                       *app_name;
    char                      **channels;
    size_t                      nchannels;
    PGconn                     *pg;
    struct event               *io;        /* on the socket, re-made when it changes */
    struct event               *timer;
    int                         fd;
    short                       io_what;
    enum pgl_state              st;
    int                         backoff_ms;
    bool                        was_up;    /* on_state(true) reported, false not yet */
    bool                        doomed;    /* the server sent FATAL: about to close */
};

static void pgl_open(pglisten *l);

static void
pgl_timer_ms(pglisten *l, long ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    evtimer_add(l->timer, &tv);
}

static void
pgl_report(pglisten *l, bool up)
{
    if (l->was_up == up)
        return;
    l->was_up = up;
    l->hooks->on_state(l->arg, up);
}

static void
pgl_close(pglisten *l)
{
    if (l->io != NULL) {
        event_free(l->io);
        l->io = NULL;
    }
    l->fd = -1;
    if (l->pg != NULL) {
        PQfinish(l->pg);
        l->pg = NULL;
    }
}

/* Close, tell the owner, and dial again after the backoff. */
static void
pgl_fail(pglisten *l, const char *why)
{
    if (l->st == PGL_UP || l->backoff_ms >= PGL_BACKOFF_MAX_MS || l->was_up)
        of_log_warn("LISTEN connection %s: %s", why,
                    l->pg != NULL ? PQerrorMessage(l->pg) : "no connection");
    pgl_close(l);
    l->st = PGL_BACKOFF;
    pgl_report(l, false);
    pgl_timer_ms(l, l->backoff_ms);
    l->backoff_ms = l->backoff_ms * 2 > PGL_BACKOFF_MAX_MS ? PGL_BACKOFF_MAX_MS : l->backoff_ms * 2;
}

static void pgl_on_io(evutil_socket_t fd, short what, void *arg);

/* Watch the connection's current socket for what (EV_READ or EV_WRITE). */
static int
pgl_watch(pglisten *l, short what)
{
    int fd = PQsocket(l->pg);
    if (fd < 0)
        return OF_ERR;
    if (l->io == NULL || fd != l->fd || what != l->io_what) {
        if (l->io != NULL)
            event_free(l->io);
        l->io = event_new(l->base, fd, what | EV_PERSIST, pgl_on_io, l);
        if (l->io == NULL)
            return OF_ERR;
        l->fd = fd;
        l->io_what = what;
    }
    return event_add(l->io, NULL) == 0 ? OF_OK : OF_ERR;
}

static void
pgl_subscribe(pglisten *l)
{
    char   sql[1024];
    size_t off = 0;

    for (size_t i = 0; i < l->nchannels; i++) {
        char *id = PQescapeIdentifier(l->pg, l->channels[i], strlen(l->channels[i]));
        if (id == NULL) {
            pgl_fail(l, "escape failed");
            return;
        }
        int n = snprintf(sql + off, sizeof(sql) - off, "LISTEN %s;", id);
        PQfreemem(id);
        if (n < 0 || (size_t)n >= sizeof(sql) - off) {
            pgl_fail(l, "channel names too long");
            return;
        }
        off += (size_t)n;
    }
    if (PQsetnonblocking(l->pg, 1) != 0 || !PQsendQuery(l->pg, sql) || PQflush(l->pg) < 0) {
        pgl_fail(l, "LISTEN send failed");
        return;
    }
    l->st = PGL_SUBSCRIBING;
    if (pgl_watch(l, EV_READ) != OF_OK)
        pgl_fail(l, "no socket");
}

static void
pgl_connect_step(pglisten *l)
{
    PostgresPollingStatusType ps = PQconnectPoll(l->pg);

    if (ps == PGRES_POLLING_FAILED) {
        pgl_fail(l, "connect failed");
        return;
    }
    if (ps == PGRES_POLLING_OK) {
        pgl_subscribe(l);
        return;
    }
    if (pgl_watch(l, ps == PGRES_POLLING_READING ? EV_READ : EV_WRITE) != OF_OK)
        pgl_fail(l, "no socket");
}

/* Results of the LISTEN query: all must be COMMAND_OK. */
static void
pgl_subscribed(pglisten *l)
{
    PGresult *r;
    bool      ok = true;

    while (!PQisBusy(l->pg) && (r = PQgetResult(l->pg)) != NULL) {
        ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    if (PQisBusy(l->pg))
        return;                 /* more to come */
    if (!ok) {
        pgl_fail(l, "LISTEN failed");
        return;
    }
    event_del(l->timer);
    l->st = PGL_UP;
    l->backoff_ms = PGL_BACKOFF_MIN_MS;
    pgl_report(l, true);
}

static void
pgl_drain_notifies(pglisten *l)
{
    PGnotify *n;

    while (l->pg != NULL && (n = PQnotifies(l->pg)) != NULL) {
        l->hooks->on_notify(l->arg, n->relname, n->extra != NULL ? n->extra : "");
        PQfreemem(n);
    }
}

static void
pgl_on_io(evutil_socket_t fd, short what, void *arg)
{
    pglisten *l = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);

    if (l->st == PGL_CONNECTING) {
        pgl_connect_step(l);
        return;
    }
    if (!PQconsumeInput(l->pg) || l->doomed) {
        pgl_fail(l, l->doomed ? "ended by the server" : "lost");
        return;
    }
    if (l->st == PGL_SUBSCRIBING)
        pgl_subscribed(l);
    if (l->st == PGL_UP) {
        PGresult *r;
        while (!PQisBusy(l->pg) && (r = PQgetResult(l->pg)) != NULL)
            PQclear(r);         /* e.g. an error the server sent before closing */
        pgl_drain_notifies(l);
        if (l->pg != NULL && (PQstatus(l->pg) == CONNECTION_BAD || l->doomed))
            pgl_fail(l, l->doomed ? "ended by the server" : "lost");
    }
}

static void
pgl_on_timer(evutil_socket_t fd, short what, void *arg)
{
    pglisten *l = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);

    if (l->st == PGL_BACKOFF)
        pgl_open(l);
    else if (l->st != PGL_UP)
        pgl_fail(l, "timed out");
}

/* Notices go to the debug log (libpq would print them raw to stderr, which
 * is the JSON log). A FATAL (pg_terminate_backend, shutdown) means the
 * backend is going: the connection counts as lost now, not when its socket
 * closes, which can come tens of ms later. */
static void
pgl_notice(void *arg, const PGresult *r)
{
    pglisten   *l = arg;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);

    if (sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
        l->doomed = true;
    of_log_debug("PostgreSQL notice (LISTEN connection): %s", PQresultErrorMessage(r));
}

static void
pgl_open(pglisten *l)
{
    const char *keys[] = { "dbname", "application_name", NULL };
    const char *vals[] = { l->conninfo, l->app_name, NULL };

    l->pg = PQconnectStartParams(keys, vals, 1);
    if (l->pg == NULL)
        of_fatal("PQconnectStartParams: out of memory");
    PQsetNoticeReceiver(l->pg, pgl_notice, l);
    l->doomed = false;
    l->st = PGL_CONNECTING;
    if (PQstatus(l->pg) == CONNECTION_BAD) {
        pgl_fail(l, "connect failed");
        return;
    }
    pgl_timer_ms(l, PGL_CONNECT_MS);
    if (pgl_watch(l, EV_WRITE) != OF_OK)   /* libpq: start as if POLLING_WRITING */
        pgl_fail(l, "no socket");
}

pglisten *
pglisten_create(struct event_base *base, const char *conninfo, const char *app_name,
                const char *const *channels, size_t n, const struct pglisten_hooks *hooks,
                void *arg)
{
    if (n == 0)
        return NULL;
    pglisten *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->base = base;
    l->hooks = hooks;
    l->arg = arg;
    l->fd = -1;
    l->backoff_ms = PGL_BACKOFF_MIN_MS;
    l->conninfo = strdup(conninfo != NULL ? conninfo : "");
    l->app_name = strdup(app_name != NULL ? app_name : "orderflow");
    l->channels = calloc(n, sizeof(char *));
    l->timer = evtimer_new(base, pgl_on_timer, l);
    if (l->conninfo == NULL || l->app_name == NULL || l->channels == NULL || l->timer == NULL)
        goto fail;
    l->nchannels = n;
    for (size_t i = 0; i < n; i++)
        if ((l->channels[i] = strdup(channels[i])) == NULL)
            goto fail;
    /* Dial from the loop, so no callback fires inside create. */
    l->st = PGL_BACKOFF;
    pgl_timer_ms(l, 0);
    return l;
fail:
    pglisten_destroy(l);
    return NULL;
}

void
pglisten_destroy(pglisten *l)
{
    if (l == NULL)
        return;
    pgl_close(l);
    if (l->timer != NULL)
        event_free(l->timer);
    for (size_t i = 0; l->channels != NULL && i < l->nchannels; i++)
        free(l->channels[i]);
    free(l->channels);
    free(l->conninfo);
    free(l->app_name);
    free(l);
}

bool
pglisten_up(const pglisten *l)
{
    return l != NULL && l->st == PGL_UP;
}
