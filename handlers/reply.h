/*
 * reply.h -- answering in API.md's shapes: JSON bodies, the {"detail": ...}
 * error with its headers (WWW-Authenticate on 401, Retry-After on every 429
 * and 503), 422 problem lists, single items and paged lists.
 *
 * Each hdl_reply_* call is the request's one answer (see hdl.h): it ends
 * the request, so nothing may be sent after it.
 */
#ifndef OF_HDL_REPLY_H
#define OF_HDL_REPLY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct hdl_req;
struct of_verrs;

/* Renders body with jansson and sends it; takes the reference to body. */
void hdl_reply_json(struct hdl_req *r, int status, json_t *body);
/* {"detail": detail}; adds WWW-Authenticate for 401, Retry-After: 1 for 429
 * and 503 (hdl_reply_too_many says how long for a 429). */
void hdl_reply_error(struct hdl_req *r, int status, const char *detail);
/* 422 {"detail":"Validation error","errors":[...]} */
void hdl_reply_verrs(struct hdl_req *r, const struct of_verrs *v);
/* Map an OF_* code to its status and API.md's generic detail (404 uses "Not Found"). */
void hdl_reply_rc(struct hdl_req *r, int rc);
void hdl_reply_empty(struct hdl_req *r, int status);   /* 204 */
/* 429 "Too many requests" with Retry-After: retry_after seconds (at least 1). */
void hdl_reply_too_many(struct hdl_req *r, int retry_after);

/* 404 {"detail":"<entity> <first path id> not found"}. */
void hdl_reply_not_found(struct hdl_req *r, const char *entity);

/* Renders one item of a read or a list (items are passed as const void *). */
typedef json_t *(*hdl_render_fn)(const void *item);
/* A read's answer: 200 with render(item); OF_NOTFOUND → hdl_reply_not_found;
 * anything else → its error. */
void hdl_reply_item(struct hdl_req *r, int rc, const void *item, hdl_render_fn render,
                    const char *entity);
/* Answers a list callback: rc != OF_OK → its error; else 200 with the paged
 * envelope of n items of item_size bytes, each rendered by render. */
void hdl_reply_page(struct hdl_req *r, int rc, const void *items, size_t n, size_t item_size,
                    hdl_render_fn render, int64_t page, int64_t page_size, int64_t total);

/* Money as API.md sends it: "19.99". */
json_t *hdl_money(int64_t cents);

#endif
