/*
 * hdl.h -- what a handler sees of an HTTP request, and how it answers.
 *
 * The worker parses the request (route, path ids, auth, body) into a struct
 * hdl_req and calls the route's handler. A handler parses and validates the
 * JSON body (body.h) and the query (query.h) into a DTO, calls a service,
 * and answers exactly once through reply.h — possibly later, from a
 * service callback.
 * Handlers never see libevent or libpq; unit tests give them a fake io.
 *
 * Memory: everything lives in r->mem until the reply has been sent (or the
 * client is gone), then the worker releases it. A handler must always answer,
 * also when r->mem->abandoned is set: that answer is dropped, and it is what
 * frees the request.
 */
#ifndef OF_HDL_H
#define OF_HDL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/mem.h"
#include "domain/verr.h"
#include "domain/user.h"

/* The toolkit every handler uses; included here so that whoever includes
 * hdl.h (handlers, the worker, tests) keeps seeing all of it. */
#include "handlers/body.h"
#include "handlers/query.h"
#include "handlers/reply.h"

enum hdl_method { HDL_GET = 1, HDL_POST = 2, HDL_PUT = 4, HDL_PATCH = 8, HDL_DELETE = 16,
                  HDL_HEAD = 32, HDL_OPTIONS = 64 };

enum hdl_role { HDL_ROLE_NONE = 0, HDL_ROLE_USER, HDL_ROLE_ADMIN };

struct hdl_principal {
    int64_t       user_id;     /* 0 when anonymous */
    enum hdl_role role;        /* read from the database on this request */
    const char   *email;
    const char   *created_at;
};

struct hdl_req;
struct hdl_services;

/* Supplied by the worker (or a unit test's fake). */
struct hdl_io {
    const char *(*header)(struct hdl_req *r, const char *name);     /* NULL if absent */
    void (*add_header)(struct hdl_req *r, const char *name, const char *value);
    /* Send status with body (copied) and Content-Type; ends the request. */
    void (*send)(struct hdl_req *r, int status, const char *ctype, const char *body, size_t len);
    /* The same for a body in static storage (the embedded assets): sent by
     * reference, never copied. May be NULL (then send is used). */
    void (*send_static)(struct hdl_req *r, int status, const char *ctype, const char *body,
                        size_t len);
};

struct hdl_req {
    struct of_mem             *mem;
    const struct hdl_io       *io;
    void                      *owner;        /* the worker's request */
    struct hdl_services       *svc;
    enum hdl_method            method;
    const char                *path;         /* decoded path, no query */
    const char                *query;        /* raw query string or NULL */
    const char                *body;         /* NUL-terminated copy, may be "" */
    size_t                     body_len;
    int64_t                    ids[2];       /* typed {id} path params in order */
    int                        nids;
    const char                *request_id;
    const char                *client_ip;    /* resolved through trusted proxies */
    const char                *traceparent;  /* W3C traceparent naming this request's
                                                server span, or NULL (tracing fills it;
                                                events made by the request keep it) */
    struct hdl_principal       who;
};

typedef void (*hdl_fn)(struct hdl_req *r);

/* What a handler keeps across its service's callback: the request, the
 * problem list the service may add to, the page asked for, and the outcome
 * an idempotent run's render saw (for the answers such a run does not store).
 * A handler that keeps more embeds it first in its own struct and calls
 * hdl_call_init; both live in r->mem. */
struct hdl_call {
    struct hdl_req *r;
    struct of_verrs v;
    struct hdl_page pg;          /* a list's paging (list.h) */
    unsigned        list_kind;   /* a list's collection and sort, and the */
    unsigned        list_sort;   /* fingerprint of its filters, for cursors */
    uint64_t        list_fp;
    int             rc;
};
struct hdl_call *hdl_call_new(struct hdl_req *r);
void             hdl_call_init(struct hdl_call *c, struct hdl_req *r);

/* Who writes, under which request id: for the audit row of an admin write. */
struct audit_ctx *hdl_audit(struct hdl_req *r);

#endif
