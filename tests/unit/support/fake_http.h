/*
 * fake_http.h -- a fake hdl_io for handler unit tests: captures the one
 * answer (status, headers, body) a handler sends, parses the body as JSON.
 * Requests are built with fake_req_new(); fake_run() spins the event loop
 * until the handler has answered (fakes answer on a later loop turn).
 */
#ifndef OF_FAKE_HTTP_H
#define OF_FAKE_HTTP_H

#include <event2/event.h>
#include <jansson.h>

#include "handlers/hdl.h"
#include "handlers/services.h"

struct fake_req {
    struct hdl_req  r;
    struct of_mem   mem;
    const char     *ctype;          /* request Content-Type */
    const char     *headers[8][2];  /* extra request headers */
    int             status;         /* 0 until answered */
    int             answers;
    char            out_headers[8][2][128];
    int             n_out_headers;
    char           *body;
    const char     *static_body;    /* the body, when sent by reference */
    json_t         *json;
};

extern struct event_base *fake_base;

struct fake_req *fake_req_new(struct hdl_services *svc, enum hdl_method m, const char *path,
                              const char *query, const char *body);
void             fake_req_free(struct fake_req *f);
/* Runs the loop until f has an answer (or 2 s pass); returns the status. */
int              fake_run(struct fake_req *f);
const char      *fake_out_header(struct fake_req *f, const char *name);

/* Calls fn(arg) on the next loop turn: how fakes answer asynchronously. */
void             fake_later(void (*fn)(void *), void *arg);

#endif
