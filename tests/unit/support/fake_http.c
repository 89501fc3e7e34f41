/*
 * fake_http.c -- see fake_http.h.
 */
#include "tests/unit/support/fake_http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct event_base *fake_base;

static const char *
io_header(struct hdl_req *r, const char *name)
{
    struct fake_req *f = (struct fake_req *)r;
    if (strcasecmp(name, "Content-Type") == 0)
        return f->ctype;
    for (int i = 0; i < 8 && f->headers[i][0] != NULL; i++)
        if (strcasecmp(f->headers[i][0], name) == 0)
            return f->headers[i][1];
    return NULL;
}

static void
io_add_header(struct hdl_req *r, const char *name, const char *value)
{
    struct fake_req *f = (struct fake_req *)r;
    if (f->n_out_headers >= 8)
        return;
    snprintf(f->out_headers[f->n_out_headers][0], 128, "%s", name);
    snprintf(f->out_headers[f->n_out_headers][1], 128, "%s", value);
    f->n_out_headers++;
}

static void
io_send(struct hdl_req *r, int status, const char *ctype, const char *body, size_t len)
{
    struct fake_req *f = (struct fake_req *)r;
    (void)ctype;
    f->answers++;
    f->status = status;
    f->body = malloc(len + 1);
    memcpy(f->body, body, len);
    f->body[len] = '\0';
    f->json = len > 0 ? json_loadb(body, len, 0, NULL) : NULL;
}

static void
io_send_static(struct hdl_req *r, int status, const char *ctype, const char *body, size_t len)
{
    struct fake_req *f = (struct fake_req *)r;
    io_send(r, status, ctype, body, len);
    f->static_body = body;
}

static const struct hdl_io fake_io = { io_header, io_add_header, io_send, io_send_static };

struct fake_req *
fake_req_new(struct hdl_services *svc, enum hdl_method m, const char *path, const char *query,
             const char *body)
{
    struct fake_req *f = calloc(1, sizeof(*f));
    of_mem_init(&f->mem);
    f->r.mem = &f->mem;
    f->r.io = &fake_io;
    f->r.svc = svc;
    f->r.method = m;
    f->r.path = path;
    f->r.query = query;
    f->r.body = body ? body : "";
    f->r.body_len = body ? strlen(body) : 0;
    f->r.request_id = "test-request-id";
    f->r.client_ip = "127.0.0.1";
    f->ctype = body ? "application/json" : NULL;
    return f;
}

void
fake_req_free(struct fake_req *f)
{
    of_mem_release(&f->mem);
    json_decref(f->json);
    free(f->body);
    free(f);
}

int
fake_run(struct fake_req *f)
{
    for (int i = 0; i < 2000 && f->answers == 0; i++)
        event_base_loop(fake_base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    return f->status;
}

const char *
fake_out_header(struct fake_req *f, const char *name)
{
    for (int i = 0; i < f->n_out_headers; i++)
        if (strcasecmp(f->out_headers[i][0], name) == 0)
            return f->out_headers[i][1];
    return NULL;
}

struct later { void (*fn)(void *); void *arg; };

static void
later_cb(evutil_socket_t fd, short what, void *arg)
{
    struct later l = *(struct later *)arg;
    (void)fd;
    (void)what;
    free(arg);
    l.fn(l.arg);
}

void
fake_later(void (*fn)(void *), void *arg)
{
    struct later *l = malloc(sizeof(*l));
    l->fn = fn;
    l->arg = arg;
    struct timeval zero = { 0, 0 };
    event_base_once(fake_base, -1, EV_TIMEOUT, later_cb, l, &zero);
}
