/*
 * hdl.h -- what a handler sees of an HTTP request, and how it answers.
 *
 * The worker parses the request (route, path ids, auth, body) into a struct
 * hdl_req and calls the route's handler. A handler parses and validates the
 * JSON body into a DTO, calls a service, and answers exactly once through
 * the reply functions below — possibly later, from a service callback.
 * Handlers never see libevent or libpq; unit tests give them a fake io.
 *
 * Memory: everything lives in r->mem until the reply has been sent (or the
 * client is gone), then the worker releases it. A handler must always answer,
 * also when r->mem->abandoned is set: that answer is dropped, and it is what
 * frees the request.
 */
#ifndef OF_HDL_H
#define OF_HDL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/mem.h"
#include "domain/verr.h"
#include "domain/user.h"

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
    struct hdl_principal       who;
};

typedef void (*hdl_fn)(struct hdl_req *r);

/* ---- replying (hdl.c) ---- */
/* Renders body with jansson and sends it; takes the reference to body. */
void hdl_reply_json(struct hdl_req *r, int status, json_t *body);
/* {"detail": detail}; adds WWW-Authenticate for 401 and Retry-After for 429/503. */
void hdl_reply_error(struct hdl_req *r, int status, const char *detail);
/* 422 {"detail":"Validation error","errors":[...]} */
void hdl_reply_verrs(struct hdl_req *r, const struct of_verrs *v);
/* Map an OF_* code to its status and API.md's generic detail (404 uses "Not Found"). */
void hdl_reply_rc(struct hdl_req *r, int rc);
void hdl_reply_empty(struct hdl_req *r, int status);   /* 204 */
/* 429 with Retry-After. */
void hdl_reply_too_many(struct hdl_req *r, int retry_after);

/* ---- request helpers (hdl.c) ---- */
/* Body must be application/json (parameters allowed): else 415 is sent and
 * NULL returned. Malformed JSON: 422 json_invalid sent, NULL returned.
 * A body that is not an object: 422 type_error. On success the caller owns
 * the reference (freed via the arena's cleanup already registered). */
json_t *hdl_json_body(struct hdl_req *r);

/* Query-string value (decoded, from the arena) or NULL; repeated keys: the last wins. */
const char *hdl_query(struct hdl_req *r, const char *key);

/* Value of key in an x-www-form-urlencoded string, decoded, or NULL. */
const char *hdl_form_value(struct of_mem *m, const char *src, size_t len, const char *key);
/* Integer/boolean query parameters; problems go to v (loc ["query", key]).
 * hdl_query_bool: *out = -1 absent, 0 false, 1 true. */
bool hdl_query_int(struct hdl_req *r, struct of_verrs *v, const char *key, int64_t def,
                   int64_t min, int64_t max, const char *bound_msg, int64_t *out);
bool hdl_query_bool(struct hdl_req *r, struct of_verrs *v, const char *key, int *out);

/* page/page_size from the query (defaults 1/20, bounds per API.md); adds
 * problems to v. */
void hdl_paging(struct hdl_req *r, struct of_verrs *v, int64_t *page, int64_t *page_size);

/* Paged collection envelope; takes the reference to items. */
json_t *hdl_page(json_t *items, int64_t page, int64_t page_size, int64_t total);

/* Reading one body field. Absent: a "missing" problem when required.
 * null or the wrong JSON type: a "type_error" problem. Returns FIELD_OK
 * with the value, else FIELD_ABSENT or FIELD_BAD. */
enum hdl_field { FIELD_ABSENT = 0, FIELD_OK, FIELD_BAD };
enum hdl_field hdl_field_str(json_t *body, const char *key, bool required, struct of_verrs *v,
                             const char **out, size_t *len);
enum hdl_field hdl_field_bool(json_t *body, const char *key, bool required, struct of_verrs *v,
                              bool *out);
/* A positive 64-bit integer (ids, quantities: bounds are the caller's). */
enum hdl_field hdl_field_int(json_t *body, const char *key, bool required, struct of_verrs *v,
                             int64_t *out);
/* Money: "19.99" or 19.99 or 1e2; more than 2 places, other strings, or
 * beyond 99,999,999.99 is a value_error. */
enum hdl_field hdl_field_money(json_t *body, const char *key, bool required, struct of_verrs *v,
                               int64_t *cents);
/* The same over an already-fetched value, with a loc prefix of body,
 * items, idx (for array members; idx < 0 means no array). */
enum hdl_field hdl_value_int(json_t *j, struct of_verrs *v, const char *arr, int idx,
                             const char *key, int64_t *out);

/* Renders one item of a list (items are passed as const void *). */
typedef json_t *(*hdl_render_fn)(const void *item);
/* Answers a list callback: rc != OF_OK → its error; else 200 with the paged
 * envelope of n items of item_size bytes, each rendered by render. */
void hdl_reply_page(struct hdl_req *r, int rc, const void *items, size_t n, size_t item_size,
                    hdl_render_fn render, int64_t page, int64_t page_size, int64_t total);

/* What a handler keeps across its service's callback: the request, the
 * problem list the service may add to, and the page asked for. */
struct hdl_call {
    struct hdl_req *r;
    struct of_verrs v;
    int64_t         page, page_size;
};
struct hdl_call *hdl_call_new(struct hdl_req *r);

/* 404 {"detail":"<entity> <first path id> not found"}. */
void hdl_reply_not_found(struct hdl_req *r, const char *entity);
/* A read's answer: 200 with render(item); OF_NOTFOUND → hdl_reply_not_found;
 * anything else → its error. */
void hdl_reply_item(struct hdl_req *r, int rc, const void *item, hdl_render_fn render,
                    const char *entity);

/* Who writes, under which request id: for the audit row of an admin write. */
struct audit_ctx *hdl_audit(struct hdl_req *r);

/* Money as API.md sends it: "19.99". */
json_t *hdl_money(int64_t cents);

#endif
